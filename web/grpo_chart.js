// The GRPO Train node's live reward chart as an SVG string: plain functions, no ComfyUI import, tested with
// `node --test`. Points come from the node's `spatialscore.grpo.progress` events and its `spatialscore_grpo` UI
// output: {step, mean, std, kept, eval} per GRPO step (any field but step may be absent).

export const COLOURS = { band: "rgba(90, 150, 230, 0.25)", mean: "#5a96e6", kept: "#e6a23c", eval: "#3fbf6f" };

// The status line under the chart, from the node's `spatialscore.grpo.status` events {node, text, kind} and its
// final UI text: the phase in progress, what Cancel saved, a run in the way of a new one, what a finished run saved.
export const STATUS_COLOURS = { phase: "#aaa", saved: "#e6a23c", problem: "#e06c6c", done: "#3fbf6f" };

/** The status line's text and colour for an event's detail; null when the detail carries no text. */
export function statusLine(detail) {
  const text = typeof detail?.text === "string" ? detail.text.trim() : "";
  if (!text) return null;
  return { text, colour: STATUS_COLOURS[detail.kind] ?? STATUS_COLOURS.phase };
}

/** The points with `point` added: a step already there is replaced (a resumed run repeats none), sorted by step. */
export function mergePoint(points, point) {
  if (!point || !Number.isFinite(point.step)) return points;
  const out = points.filter((p) => p.step !== point.step);
  out.push(point);
  out.sort((a, b) => a.step - b.step);
  return out;
}

function finite(x) {
  return typeof x === "number" && Number.isFinite(x);
}

/** The value range the chart must show: mean +- std, kept and eval of every point; null when nothing to draw. */
export function valueRange(points) {
  const values = [];
  for (const p of points) {
    if (finite(p.mean)) {
      const s = finite(p.std) ? p.std : 0;
      values.push(p.mean - s, p.mean + s);
    }
    if (finite(p.kept)) values.push(p.kept);
    if (finite(p.eval)) values.push(p.eval);
  }
  if (!values.length) return null;
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-6) {
    lo -= 0.5;
    hi += 0.5;
  }
  const pad = (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

function fmt(x) {
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function escapeXml(text) {
  return String(text).replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]);
}

/** Plot geometry: maps a step and a value to pixels inside the margins. */
export function chartScales(points, width, height, margin = { left: 40, right: 8, top: 22, bottom: 18 }) {
  const range = valueRange(points);
  if (!range) return null;
  const steps = points.map((p) => p.step);
  const s0 = Math.min(...steps);
  const s1 = Math.max(...steps, s0 + 1);
  const pw = Math.max(1, width - margin.left - margin.right);
  const ph = Math.max(1, height - margin.top - margin.bottom);
  return {
    margin, range, steps: [s0, s1],
    x: (step) => margin.left + ((step - s0) / (s1 - s0)) * pw,
    y: (v) => margin.top + (1 - (v - range[0]) / (range[1] - range[0])) * ph,
  };
}

function polyline(points, key, sc) {
  return points.filter((p) => finite(p[key])).map((p) => `${sc.x(p.step).toFixed(1)},${sc.y(p[key]).toFixed(1)}`).join(" ");
}

/** The whole chart as an SVG document string (width x height px). */
export function chartSvg(points, width, height) {
  const head = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`;
  const bg = `<rect x="0" y="0" width="${width}" height="${height}" fill="#1b1b1b" rx="4"/>`;
  const sc = chartScales(points, width, height);
  if (!sc) {
    const msg = `<text x="${width / 2}" y="${height / 2}" fill="#999" font-size="11" text-anchor="middle" font-family="sans-serif">reward chart: waiting for the first GRPO step</text>`;
    return `${head}${bg}${msg}</svg>`;
  }
  const parts = [head, bg];
  const { margin, range } = sc;
  const withMean = points.filter((p) => finite(p.mean));
  // grid and axis labels: 3 value ticks, first and last step
  for (const v of [range[0], (range[0] + range[1]) / 2, range[1]]) {
    const y = sc.y(v).toFixed(1);
    parts.push(`<line x1="${margin.left}" x2="${width - margin.right}" y1="${y}" y2="${y}" stroke="#333" stroke-width="1"/>`);
    parts.push(`<text x="${margin.left - 3}" y="${y}" fill="#999" font-size="9" text-anchor="end" dominant-baseline="middle" font-family="sans-serif">${fmt(v)}</text>`);
  }
  for (const s of sc.steps) {
    parts.push(`<text x="${sc.x(s).toFixed(1)}" y="${height - 4}" fill="#999" font-size="9" text-anchor="middle" font-family="sans-serif">${s}</text>`);
  }
  if (withMean.length) {
    const upper = withMean.map((p) => `${sc.x(p.step).toFixed(1)},${sc.y(p.mean + (finite(p.std) ? p.std : 0)).toFixed(1)}`);
    const lower = withMean.map((p) => `${sc.x(p.step).toFixed(1)},${sc.y(p.mean - (finite(p.std) ? p.std : 0)).toFixed(1)}`).reverse();
    parts.push(`<polygon class="band" points="${[...upper, ...lower].join(" ")}" fill="${COLOURS.band}" stroke="none"/>`);
  }
  for (const key of ["mean", "kept"]) {
    const line = polyline(points, key, sc);
    if (line) parts.push(`<polyline class="${key}" points="${line}" fill="none" stroke="${COLOURS[key]}" stroke-width="1.5"/>`);
  }
  const evals = points.filter((p) => finite(p.eval));
  if (evals.length > 1) parts.push(`<polyline class="eval" points="${polyline(points, "eval", sc)}" fill="none" stroke="${COLOURS.eval}" stroke-width="1" stroke-dasharray="3,2"/>`);
  for (const p of evals) {
    parts.push(`<circle class="eval" cx="${sc.x(p.step).toFixed(1)}" cy="${sc.y(p.eval).toFixed(1)}" r="2.5" fill="${COLOURS.eval}"/>`);
  }
  // legend with the latest values
  const last = withMean[withMean.length - 1];
  const lastEval = evals[evals.length - 1];
  const legend = [
    [COLOURS.mean, last ? `mean ${fmt(last.mean)} ± ${fmt(finite(last.std) ? last.std : 0)}` : "mean"],
    [COLOURS.kept, last && finite(last.kept) ? `kept ${fmt(last.kept)}` : "kept"],
    [COLOURS.eval, lastEval ? `eval ${fmt(lastEval.eval)}` : "eval"],
  ];
  let x = margin.left;
  for (const [colour, label] of legend) {
    parts.push(`<rect x="${x}" y="7" width="8" height="8" fill="${colour}"/>`);
    parts.push(`<text x="${x + 11}" y="14" fill="#ddd" font-size="10" font-family="sans-serif">${escapeXml(label)}</text>`);
    x += 14 + label.length * 5.6;
  }
  const stepText = `step ${points[points.length - 1].step}`;
  parts.push(`<text x="${width - margin.right}" y="14" fill="#999" font-size="10" text-anchor="end" font-family="sans-serif">${stepText}</text>`);
  parts.push("</svg>");
  return parts.join("");
}

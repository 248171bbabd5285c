// Text, colour and place of the SpatialScore Evaluate node's win-rate badge: plain functions, no ComfyUI import,
// tested with `node --test tests/nodes/web/evaluate_badge.test.mjs`.

function pct(x, unit = "%") {
  return Number.isFinite(x) ? `${(100 * x).toFixed(1)}${unit}` : "n/a";
}

/** The badge's lines, from the node's `spatialscore_evaluate` UI record:
 * {label, win_rate, low, high, prompts, mean_gain, judge?: {win_rate, low, high}, oracle?: {a, b}}. */
export function evaluateBadgeLines(row) {
  if (!row || !Number.isFinite(row.win_rate)) return [];
  const lines = [`${row.label}: wins ${pct(row.win_rate)} [${pct(row.low, "")}, ${pct(row.high, "")}] of ${row.prompts} prompts`];
  const more = [];
  if (row.judge && Number.isFinite(row.judge.win_rate)) {
    more.push(`judge ${pct(row.judge.win_rate)} [${pct(row.judge.low, "")}, ${pct(row.judge.high, "")}]`);
  }
  if (row.oracle) more.push(`oracle all relations ${pct(row.oracle.a)} -> ${pct(row.oracle.b)}`);
  if (more.length) lines.push(more.join("  "));
  return lines;
}

/** Green when the whole 95% interval is above one half (the LoRA wins), red when below, grey when it holds 1/2. */
export function evaluateBadgeColour(row) {
  if (row?.low > 0.5) return "rgba(20, 110, 40, 0.9)";
  if (row?.high < 0.5) return "rgba(150, 30, 30, 0.9)";
  return "rgba(70, 70, 70, 0.9)";
}

/** Where the badge goes in node coordinates: just below the node, left-aligned (above it, the frontend draws the
 * node's source badge), one line of `lineHeight` a line. */
export function evaluateBadgeBox(lines, textWidth, nodeHeight, lineHeight = 14, pad = 4) {
  const h = lines.length * lineHeight + 2 * pad;
  return { x: 0, y: nodeHeight + 6, w: textWidth + 2 * pad, h, pad, lineHeight };
}

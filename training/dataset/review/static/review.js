// The review page: one pair at a time (or a grid), driven by the keyboard. Verdicts are shown at once and posted
// in order in the background; the server appends them to DIR/reviews.jsonl. Plain ES module, no build step.
import { countVerdicts, filterQueue, isDecided, resumePosition } from "./queue.js";

const DIR = new URLSearchParams(location.search).get("dir"); // set when the page runs inside ComfyUI
const GRID_PAGE = 12;
const PREFETCH = 3;
const $ = (id) => document.getElementById(id);

const state = {
  entries: [], verdicts: {}, queue: [], pos: 0, mode: "single", undo: [], details: new Map(),
  later: { oracle: new Map(), scorer: new Map() }, scorerName: null, pending: Promise.resolve(), inflight: 0, token: 0, navStart: null, filters: {},
};
// Read by the browser test: when the first pair was on screen, how long each move took, what is shown.
const probe = (window.__review = { openMs: null, navMs: [], shown: null, saved: 0, errors: [], renders: 0 });

function url(path, params = {}) {
  const q = new URLSearchParams(params);
  if (DIR) q.set("dir", DIR);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

async function getJson(path, params) {
  const r = await fetch(url(path, params));
  const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(body.error || String(r.status));
  return body;
}

function status(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
  if (isError) probe.errors.push(text);
}

function pair(i) {
  if (!state.details.has(i)) {
    const p = getJson("api/pair", { i });
    p.catch(() => state.details.delete(i)); // a failed fetch is retried next time
    state.details.set(i, p);
  }
  return state.details.get(i);
}

function imageUrl(i, side) {
  return url("img", { i, side });
}

function prefetch(pos) {
  for (let k = 1; k <= PREFETCH && pos + k < state.queue.length; k++) {
    const i = state.queue[pos + k];
    pair(i).catch(() => {});
    for (const side of ["chosen", "rejected"]) {
      if (!state.entries[i].missing?.includes(side)) new Image().src = imageUrl(i, side);
    }
  }
}

function segments(el, parts) {
  el.replaceChildren(...parts.map(({ text, changed }) => {
    const span = document.createElement("span");
    span.textContent = text;
    if (changed) span.className = "chg";
    return span;
  }));
}

function verdictBadge(el, verdict) {
  el.className = verdict ? `verdict v-${verdict}` : "verdict";
  el.textContent = verdict ? { accept: "accepted", reject: "rejected", swap: "swapped", skip: "skipped" }[verdict] : "";
}

function mark(ok) {
  const span = document.createElement("span");
  span.className = ok ? "ok" : "bad";
  span.textContent = ok ? "✓" : "✗";
  return span;
}

function line(...parts) {
  const div = document.createElement("div");
  div.append(...parts);
  return div;
}

function renderAuto(auto) {
  const out = [];
  if (auto.oracle) {
    out.push(line("oracle at build: chosen satisfies the prompt ", mark(auto.oracle.chosen),
      " · rejected breaks it ", mark(auto.oracle.rejected)));
  }
  const live = auto.oracle_images;
  if (live === true) out.push(line("oracle on the image files: …"));
  else if (live?.error) out.push(line(`oracle on the image files: ${live.error}`));
  else if (live) {
    const table = document.createElement("table");
    for (const r of live.relations) {
      const tr = table.insertRow();
      const text = tr.insertCell();
      if (r.changed) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "changed";
        text.append(tag);
      }
      text.append(r.text);
      tr.insertCell().append("chosen ", mark(r.chosen));
      tr.insertCell().append(r.changed ? "rejected breaks it " : "rejected keeps it ", mark(r.changed ? !r.rejected : r.rejected));
    }
    out.push(line(line("oracle on the image files: chosen satisfies every relation ", mark(live.chosen_all),
      " · rejected breaks exactly the changed ones ", mark(live.rejected_exact)), table));
  }
  if (auto.scorer && typeof auto.scorer.margin === "number") {
    out.push(line(`scorer margin (chosen − rejected): ${auto.scorer.margin.toFixed(3)} `, mark(auto.scorer.margin > 0)));
  }
  const computed = auto.scorer_computed;
  if (computed === true) out.push(line(`${state.scorerName} margin: …`));
  else if (computed?.error) out.push(line(`${computed.scorer} margin: ${computed.error}`));
  else if (computed) {
    out.push(line(`${computed.scorer} margin (chosen − rejected, computed now): ${computed.margin.toFixed(3)} `,
      mark(computed.margin > 0)));
  }
  if (!out.length) out.push(line("no automatic verdict for this pair"));
  $("auto").replaceChildren(...out);
}

async function setImage(side, i, d) {
  const frame = $(`${side}-frame`);
  const img = $(side);
  const missing = d.missing?.includes(side);
  frame.classList.toggle("is-missing", !!missing);
  frame.querySelector(".missing").textContent = missing ? `${side} image missing: ${d.files?.[side] ?? "?"}` : "";
  if (missing) {
    img.removeAttribute("src");
    return;
  }
  img.src = imageUrl(i, side);
  try {
    await img.decode();
  } catch {
    frame.classList.add("is-missing");
    frame.querySelector(".missing").textContent = `${side} image could not be loaded`;
  }
}

function showHeader(entry) {
  $("position").textContent = `${state.pos + 1} / ${state.queue.length}`;
  $("pair-id").textContent = entry.id;
  $("meta").textContent = [entry.split, `${entry.n} change${entry.n === 1 ? "" : "s"}`, entry.rel.join(", ")]
    .filter(Boolean).join(" · ");
  verdictBadge($("verdict"), state.verdicts[entry.id]);
  $("doubts").replaceChildren(...entry.doubt.map((d) => {
    const s = document.createElement("span");
    s.className = "doubt";
    s.textContent = d;
    return s;
  }));
}

async function showSingle() {
  const token = ++state.token;
  const entry = state.entries[state.queue[state.pos]];
  showHeader(entry);
  const d = await pair(entry.i).catch((e) => status(`pair ${entry.id}: ${e.message}`, true));
  if (!d || token !== state.token) return;
  segments($("prompt"), d.prompt);
  segments($("perturbed"), d.perturbed);
  $("changes").replaceChildren(...d.changes.map((c) => {
    const li = document.createElement("li");
    li.textContent = `${c.op}: “${c.before ?? "?"}” → “${c.after ?? "?"}”`;
    return li;
  }));
  renderAuto(d.auto);
  await Promise.all([setImage("chosen", entry.i, d), setImage("rejected", entry.i, d)]);
  if (token !== state.token) return;
  shown(entry.id);
  prefetch(state.pos);
  // slower checks after the pair is on screen: the oracle on the image files, a scorer's margin (--scorer)
  const auto = { ...d.auto, scorer_computed: !!state.scorerName };
  const extra = [];
  if (auto.oracle_images === true) {
    extra.push(later("oracle", "api/oracle", entry.i).then((v) => { auto.oracle_images = v; }));
  }
  if (state.scorerName) {
    extra.push(later("scorer", "api/scorer", entry.i).then((v) => { auto.scorer_computed = v; }));
  }
  renderAuto(auto);
  for (const p of extra) {
    await p;
    if (token === state.token) renderAuto(auto);
  }
}

// one request per pair and kind, kept for the session (a failed one is retried next time)
function later(kind, path, i) {
  const cache = state.later[kind];
  if (!cache.has(i)) {
    const p = getJson(path, { i }).catch((e) => {
      cache.delete(i);
      return { error: e.message };
    });
    cache.set(i, p);
  }
  return cache.get(i);
}

function shown(id) {
  document.body.dataset.shown = id;
  probe.shown = id;
  probe.renders++;
  const now = performance.now();
  if (probe.openMs === null) probe.openMs = now; // since navigation start
  if (state.navStart !== null) probe.navMs.push(now - state.navStart);
  state.navStart = null;
}

// -- grid mode ------------------------------------------------------------------------------------------------
function gridColumns() {
  const cells = [...$("grid").children];
  if (!cells.length) return 1;
  return Math.max(1, cells.filter((c) => c.offsetTop === cells[0].offsetTop).length);
}

function cellFor(i, pos) {
  const entry = state.entries[i];
  const cell = document.createElement("div");
  cell.className = "cell";
  cell.dataset.pos = pos;
  cell.dataset.id = entry.id;
  const imgs = document.createElement("div");
  imgs.className = "imgs";
  for (const side of ["chosen", "rejected"]) {
    const box = document.createElement("div");
    if (entry.missing?.includes(side)) {
      box.className = "missing";
      box.textContent = `${side} missing`;
    } else {
      const img = document.createElement("img");
      img.src = imageUrl(i, side);
      img.alt = side;
      box.append(img);
    }
    imgs.append(box);
  }
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = entry.id;
  pair(i).then((d) => segments(text, d.perturbed)).catch(() => {});
  cell.append(imgs, text);
  cell.addEventListener("click", () => { state.pos = pos; render(); });
  cell.addEventListener("dblclick", () => { state.pos = pos; setMode("single"); });
  return cell;
}

function showGrid() {
  const start = Math.floor(state.pos / GRID_PAGE) * GRID_PAGE;
  const grid = $("grid");
  if (grid.dataset.start !== String(start) || grid.dataset.queue !== state.queueKey) {
    grid.replaceChildren(...state.queue.slice(start, start + GRID_PAGE).map((i, k) => cellFor(i, start + k)));
    grid.dataset.start = String(start);
    grid.dataset.queue = state.queueKey;
  }
  for (const cell of grid.children) {
    const verdict = state.verdicts[cell.dataset.id];
    cell.className = `cell${verdict ? ` v-${verdict}` : ""}${Number(cell.dataset.pos) === state.pos ? " focus" : ""}`;
  }
  $("position").textContent = `${state.pos + 1} / ${state.queue.length}`;
  shown(state.entries[state.queue[state.pos]].id);
}

// -- state changes ---------------------------------------------------------------------------------------------
function updateProgress() {
  const c = countVerdicts(state.entries, state.verdicts);
  for (const k of ["accept", "swap", "reject", "skip"]) $(`bar-${k}`).style.width = `${(100 * c[k]) / c.total}%`;
  $("progress-text").textContent = `${c.reviewed} / ${c.total} reviewed · ${c.accept} accepted · ${c.swap} swapped · ` +
    `${c.reject} rejected · ${c.skip} skipped` + (state.inflight ? " · saving…" : "");
}

function render() {
  const empty = !state.queue.length;
  $("empty").hidden = !empty;
  $("single").style.visibility = empty ? "hidden" : "";
  if (empty) return;
  state.pos = Math.min(Math.max(state.pos, 0), state.queue.length - 1);
  if (state.mode === "grid") showGrid();
  else showSingle();
}

function setMode(mode) {
  state.mode = mode;
  document.body.dataset.mode = mode;
  render();
}

function move(delta) {
  if (!state.queue.length) return;
  const pos = Math.min(Math.max(state.pos + delta, 0), state.queue.length - 1);
  if (pos === state.pos) {
    status(delta > 0 ? "end of the queue" : "start of the queue");
    return;
  }
  status("");
  state.navStart = performance.now();
  state.pos = pos;
  render();
}

function post(body) {
  state.inflight++;
  state.pending = state.pending.then(async () => {
    const r = await fetch(url("api/verdict"), {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const answer = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
    if (!r.ok) throw new Error(answer.error || String(r.status));
    if (answer.verdict) state.verdicts[body.id] = answer.verdict;
    else delete state.verdicts[body.id];
    probe.saved++;
  }).catch((e) => status(`verdict NOT saved (${body.id} ${body.verdict}): ${e.message}`, true))
    .finally(() => { state.inflight--; updateProgress(); });
}

function setVerdict(pos, verdict) {
  const id = state.entries[state.queue[pos]].id;
  state.undo.push({ id, pos, previous: state.verdicts[id] });
  state.verdicts[id] = verdict;
  post({ id, verdict, reviewer: $("reviewer").value.trim() || undefined });
}

function give(verdict) {
  if (!state.queue.length) return;
  setVerdict(state.pos, verdict);
  updateProgress();
  if (state.pos < state.queue.length - 1) move(1);
  else { render(); status("end of the queue: every pair here has a verdict or a skip"); }
}

function acceptGridPage() {
  const start = Math.floor(state.pos / GRID_PAGE) * GRID_PAGE;
  let n = 0;
  for (let pos = start; pos < Math.min(start + GRID_PAGE, state.queue.length); pos++) {
    if (!isDecided(state.verdicts[state.entries[state.queue[pos]].id])) { setVerdict(pos, "accept"); n++; }
  }
  status(`accepted ${n} pair(s) on this page (U undoes them one by one)`);
  updateProgress();
  render();
}

function undo() {
  const last = state.undo.pop();
  if (!last) {
    status("nothing to undo in this tab");
    return;
  }
  if (last.previous) state.verdicts[last.id] = last.previous;
  else delete state.verdicts[last.id];
  post({ id: last.id, verdict: "undo" });
  status(`undid the verdict on ${last.id}`);
  state.navStart = performance.now();
  state.pos = last.pos;
  updateProgress();
  render();
}

function applyFilters(resume = true) {
  state.filters = { only: $("f-only").value, split: $("f-split").value, rel: $("f-rel").value, n: $("f-n").value };
  state.queue = filterQueue(state.entries, state.verdicts, state.filters);
  state.queueKey = JSON.stringify(state.filters) + state.queue.length;
  if (resume) state.pos = resumePosition(state.queue, state.entries, state.verdicts);
  render();
}

function onKey(e) {
  if (e.target.matches("input, select, textarea")) {
    if (e.key === "Escape" || e.key === "Enter") e.target.blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") { e.preventDefault(); undo(); }
    return;
  }
  const grid = state.mode === "grid";
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const actions = {
    a: () => (grid && e.shiftKey ? acceptGridPage() : give("accept")), r: () => give("reject"),
    s: () => give("swap"), " ": () => give("skip"), u: () => undo(), g: () => setMode(grid ? "single" : "grid"),
    "?": () => document.body.classList.toggle("nohelp"),
    ArrowRight: () => move(1), ArrowLeft: () => move(-1), n: () => move(grid ? GRID_PAGE : 1),
    p: () => move(grid ? -GRID_PAGE : -1), PageDown: () => move(GRID_PAGE), PageUp: () => move(-GRID_PAGE),
    ArrowDown: () => grid && move(gridColumns()), ArrowUp: () => grid && move(-gridColumns()),
    Enter: () => grid && setMode("single"), Escape: () => grid || setMode("grid"),
  };
  const action = actions[key];
  if (action) {
    e.preventDefault();
    action();
  }
}

function fillSelect(id, values) {
  const select = $(id);
  for (const v of values) select.append(new Option(String(v), String(v)));
}

async function pollVerdicts() {
  if (state.inflight) return; // our own verdicts in flight would be overwritten by an older answer
  try {
    const { verdicts } = await getJson("api/verdicts");
    if (state.inflight) return;
    state.verdicts = verdicts;
    updateProgress();
    if (state.mode === "grid") showGrid();
    else if (state.queue.length) verdictBadge($("verdict"), state.verdicts[state.entries[state.queue[state.pos]].id]);
  } catch (e) {
    status(`cannot reach the review server: ${e.message}`, true);
  }
}

async function loadIndex() {
  const early = window.__reviewIndex; // started by index.html before this script loaded
  if (!early) return getJson("api/index");
  const r = await early;
  const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(body.error || String(r.status));
  return body;
}

async function main() {
  let index;
  try {
    index = await loadIndex();
  } catch (e) {
    status(e.message, true);
    $("single").style.visibility = "hidden";
    return;
  }
  state.entries = index.entries;
  state.verdicts = index.verdicts;
  state.scorerName = index.scorer;
  $("folder").textContent = index.folder + (index.split !== "all" ? ` (split ${index.split})` : "");
  fillSelect("f-split", [...new Set(index.entries.map((e) => e.split))].filter(Boolean).sort());
  fillSelect("f-rel", index.relations);
  fillSelect("f-n", index.perturbations);
  $("f-only").value = index.only;
  $("reviewer").value = localStorage.getItem("spatialreview.reviewer") || index.reviewer;
  $("reviewer").addEventListener("change", () => localStorage.setItem("spatialreview.reviewer", $("reviewer").value));
  for (const id of ["f-only", "f-split", "f-rel", "f-n"]) {
    $(id).addEventListener("change", (e) => { e.target.blur(); applyFilters(); });
  }
  $("grid-toggle").addEventListener("click", (e) => { e.target.blur(); setMode(state.mode === "grid" ? "single" : "grid"); });
  $("help-toggle").addEventListener("click", (e) => { e.target.blur(); document.body.classList.toggle("nohelp"); });
  if (index.bad_review_lines.length) {
    status(`reviews.jsonl: skipped ${index.bad_review_lines.length} line(s) that are not verdicts (a torn last line ` +
      "is what a killed server leaves)");
  }
  document.addEventListener("keydown", onKey);
  updateProgress();
  applyFilters();
  setInterval(pollVerdicts, 4000);
}

main();

// node --test tests/nodes/web/grpo_chart.test.mjs
import assert from "node:assert/strict";
import { test } from "node:test";

import { STATUS_COLOURS, chartScales, chartSvg, mergePoint, statusLine, valueRange } from "../../../web/grpo_chart.js";

const POINTS = [
  { step: 1, mean: 0.2, std: 0.1, kept: 0.3 },
  { step: 2, mean: 0.4, std: 0.2, kept: 0.5, eval: 0.35 },
  { step: 3, mean: 0.5, std: 0.05, kept: 0.6 },
];

test("points merge by step, sorted; a repeated step replaces the old one", () => {
  let pts = [];
  for (const p of [POINTS[2], POINTS[0], POINTS[1]]) pts = mergePoint(pts, p);
  assert.deepEqual(pts.map((p) => p.step), [1, 2, 3]);
  pts = mergePoint(pts, { step: 2, mean: 9 });
  assert.equal(pts.length, 3);
  assert.equal(pts[1].mean, 9);
  assert.equal(mergePoint(pts, { mean: 1 }), pts); // no step: ignored
});

test("the value range covers mean ± std, kept and eval, with a margin", () => {
  const [lo, hi] = valueRange(POINTS);
  assert.ok(lo < 0.1 && lo > 0.05, lo); // 0.2 - 0.1 minus 5% padding
  assert.ok(hi > 0.6 && hi < 0.7, hi);
  assert.equal(valueRange([{ step: 1 }]), null);
  const [a, b] = valueRange([{ step: 1, mean: 2, std: 0 }]);
  assert.ok(a < 2 && b > 2); // a flat curve still gets a range
});

test("scales put the first step left, the last right, larger rewards higher", () => {
  const sc = chartScales(POINTS, 300, 180);
  assert.equal(sc.x(1), sc.margin.left);
  assert.equal(sc.x(3), 300 - sc.margin.right);
  assert.ok(sc.y(0.6) < sc.y(0.2));
});

test("the svg has the std band, the mean and kept lines and one dot per eval", () => {
  const svg = chartSvg(POINTS, 300, 180);
  assert.match(svg, /^<svg [^>]*width="300" height="180"/);
  assert.equal((svg.match(/<polygon class="band"/g) ?? []).length, 1);
  assert.equal((svg.match(/<polyline class="mean" points="([^"]+)"/)[1].split(" ")).length, 3);
  assert.equal((svg.match(/<polyline class="kept" points="([^"]+)"/)[1].split(" ")).length, 3);
  assert.equal((svg.match(/<circle class="eval"/g) ?? []).length, 1);
  assert.match(svg, /mean 0\.50 ± 0\.05/);
  assert.match(svg, /eval 0\.35/);
  assert.match(svg, /step 3/);
  assert.ok(!svg.includes("NaN"));
});

test("before the first step the chart says it is waiting", () => {
  assert.match(chartSvg([], 300, 180), /waiting for the first GRPO step/);
});

test("the status line shows the node's text in the colour of its kind", () => {
  const saved = "Cancelled: saved models/loras/my_lora.safetensors, the LoRA of step 6 of 40 (checkpoint step_000006)";
  assert.deepEqual(statusLine({ node: "3", text: saved, kind: "saved" }), { text: saved, colour: STATUS_COLOURS.saved });
  assert.equal(statusLine({ text: "step 3/40: sampling 8/24 images", kind: "phase" }).colour, STATUS_COLOURS.phase);
  assert.equal(statusLine({ text: "lora_name 'x' already has a run", kind: "problem" }).colour, STATUS_COLOURS.problem);
  assert.equal(statusLine({ text: " done ", kind: "done" }).text, "done");
  assert.equal(statusLine({ text: "x", kind: "other" }).colour, STATUS_COLOURS.phase);
  assert.notEqual(STATUS_COLOURS.saved, STATUS_COLOURS.phase); // what Cancel saved stands out from the progress
  assert.equal(statusLine({ text: "  " }), null);
  assert.equal(statusLine(undefined), null);
});

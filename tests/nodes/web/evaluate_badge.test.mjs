// node --test tests/nodes/web/evaluate_badge.test.mjs
import assert from "node:assert/strict";
import { test } from "node:test";

import { evaluateBadgeBox, evaluateBadgeColour, evaluateBadgeLines } from "../../../web/evaluate_badge.js";

const ROW = { label: "shapes-grpo vs base", win_rate: 0.838, low: 0.8, high: 0.872, prompts: 400, mean_gain: 0.3 };

test("the badge says the win rate, its interval and the number of prompts", () => {
  assert.deepEqual(evaluateBadgeLines(ROW), ["shapes-grpo vs base: wins 83.8% [80.0, 87.2] of 400 prompts"]);
});

test("the judge's and the oracle's figures make a second line when the run had them", () => {
  const lines = evaluateBadgeLines({ ...ROW, judge: { win_rate: 0.6, low: 0.55, high: 0.65 }, oracle: { a: 0.288, b: 0.5525 } });
  assert.equal(lines.length, 2);
  assert.equal(lines[1], "judge 60.0% [55.0, 65.0]  oracle all relations 28.8% -> 55.3%");
});

test("no record, or one without a win rate, draws nothing", () => {
  assert.deepEqual(evaluateBadgeLines(null), []);
  assert.deepEqual(evaluateBadgeLines({ label: "x" }), []);
});

test("green only when the whole interval is above one half, red when below, grey when it holds one half", () => {
  assert.match(evaluateBadgeColour(ROW), /20, 110, 40/);
  assert.match(evaluateBadgeColour({ ...ROW, low: 0.1, high: 0.45 }), /150, 30, 30/);
  assert.match(evaluateBadgeColour({ ...ROW, low: 0.45, high: 0.6 }), /70, 70, 70/);
});

test("the badge sits just under the node, as tall as its lines", () => {
  const box = evaluateBadgeBox(["a", "b"], 100, 300);
  assert.equal(box.h, 2 * 14 + 8);
  assert.equal(box.y, 306);
  assert.equal(box.w, 108);
});

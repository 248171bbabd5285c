// node --test tests/dataset/web/review_queue.test.mjs : the review page's queue logic and the ComfyUI entry's helpers
import assert from "node:assert/strict";
import { test } from "node:test";

import { countVerdicts, filterQueue, resumePosition } from "../../../training/dataset/review/static/queue.js";
import { cleanFolder, reviewUrl } from "../../../web/review_link.js";

const entries = [
  { i: 0, id: "a", split: "train", n: 1, rel: ["above"], doubt: [] },
  { i: 1, id: "b", split: "train", n: 2, rel: ["above", "left_of"], doubt: ["no automatic check"] },
  { i: 2, id: "c", split: "val", n: 1, rel: ["below"], doubt: [] },
  { i: 3, id: "d", split: "train", n: 3, rel: ["left_of"], doubt: ["chosen image missing"] },
];

test("filters by split, relation type, perturbation count and review state", () => {
  const verdicts = { a: "accept", d: "skip" };
  assert.deepEqual(filterQueue(entries, verdicts, { only: "all" }), [0, 1, 2, 3]);
  assert.deepEqual(filterQueue(entries, verdicts, { only: "unreviewed" }), [1, 2, 3]); // a skip is not a verdict
  assert.deepEqual(filterQueue(entries, verdicts, { only: "doubtful" }), [1, 3]);
  assert.deepEqual(filterQueue(entries, { b: "reject" }, { only: "doubtful" }), [3]);
  assert.deepEqual(filterQueue(entries, {}, { only: "all", rel: "left_of" }), [1, 3]);
  assert.deepEqual(filterQueue(entries, {}, { only: "all", n: "1" }), [0, 2]);
  assert.deepEqual(filterQueue(entries, {}, { only: "all", split: "train", rel: "above", n: 2 }), [1]);
});

test("a returning reviewer resumes at the first pair nobody looked at, then at the first skipped one", () => {
  const queue = [0, 1, 2, 3];
  assert.equal(resumePosition(queue, entries, {}), 0);
  assert.equal(resumePosition(queue, entries, { a: "accept", b: "swap" }), 2);
  assert.equal(resumePosition(queue, entries, { a: "accept", b: "skip", c: "reject", d: "accept" }), 1);
  assert.equal(resumePosition(queue, entries, { a: "accept", b: "accept", c: "reject", d: "accept" }), 0);
  assert.equal(resumePosition([], entries, {}), 0);
});

test("counts", () => {
  const c = countVerdicts(entries, { a: "accept", b: "swap", c: "skip" });
  assert.deepEqual(c, { accept: 1, reject: 0, swap: 1, skip: 1, unreviewed: 1, total: 4, reviewed: 2 });
});

test("the ComfyUI entry builds the page address and cleans a pasted folder", () => {
  assert.equal(reviewUrl((r) => `/sub/api${r}`, "/data/my set"), "/sub/api/spatialscore/review/?dir=%2Fdata%2Fmy+set");
  assert.equal(reviewUrl(null, "x"), "/spatialscore/review/?dir=x");
  assert.equal(cleanFolder('  "/data/a b"  '), "/data/a b");
  assert.equal(cleanFolder(undefined), "");
});

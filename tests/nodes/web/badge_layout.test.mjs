// node --test tests/nodes/web/badge_layout.test.mjs
import assert from "node:assert/strict";
import { test } from "node:test";

import { WARNED_COLOUR, badgeBox, badgeColour, badgeText, fitInCell, previewImageRects } from "../../../web/badge_layout.js";

test("badge text for Score and Rerank", () => {
  const row = { position: 0, index: 5, mean: 1.23456, std: 0.5 };
  assert.equal(badgeText(row, false), "1.235 ± 0.500");
  assert.equal(badgeText(row, true), "#1  1.235 ± 0.500  (img 5)");
  assert.equal(badgeText({ ...row, mean: null }, false), "n/a ± 0.500");
});

test("a score the scorer cannot judge (words it does not know) says so on its badge, in amber", () => {
  const row = { position: 0, index: 2, mean: 3.1, std: 0.2, warning: "the prompt has words the shapes scorer does not know (cat, sofa)", flag: "unknown words" };
  assert.equal(badgeText(row, false), "3.100 ± 0.200  unknown words");
  assert.equal(badgeText(row, true), "#1  3.100 ± 0.200  (img 2)  unknown words");
  assert.equal(badgeColour(row, false), WARNED_COLOUR);
  assert.equal(badgeColour(row, true), WARNED_COLOUR); // not the winner's green
  const plain = { position: 0, index: 2, mean: 3.1, std: 0.2 };
  assert.notEqual(badgeColour(plain, true), WARNED_COLOUR);
  assert.notEqual(badgeColour({ ...plain, position: 1 }, true), WARNED_COLOUR);
});

test("an image is fitted and centred in its cell", () => {
  assert.deepEqual(fitInCell(200, 100, [0, 50, 100, 100]), [0, 75, 100, 50]);
  assert.deepEqual(fitInCell(100, 200, [10, 0, 100, 100]), [35, 0, 50, 100]);
});

test("grid previews use the frontend's cells", () => {
  const imgs = [1, 2, 3].map(() => ({ naturalWidth: 64, naturalHeight: 64 }));
  const node = { size: [300, 400], imgs, imageIndex: null, imageRects: [[0, 100, 100, 100], [100, 100, 100, 100], [200, 100, 100, 100]] };
  const rects = previewImageRects(node, 100);
  assert.equal(rects.length, 3);
  assert.deepEqual(rects[2], { index: 2, rect: [200, 100, 100, 100] });
});

test("a single shown image is centred below the widgets and never upscaled", () => {
  const node = { size: [400, 300], imgs: [{ naturalWidth: 100, naturalHeight: 50 }], imageIndex: undefined };
  const [only] = previewImageRects(node, 100);
  assert.deepEqual(only, { index: 0, rect: [150, 175, 100, 50] });
  const big = { size: [200, 300], imgs: [{ naturalWidth: 400, naturalHeight: 400 }, { naturalWidth: 400, naturalHeight: 400 }], imageIndex: 1 };
  assert.deepEqual(previewImageRects(big, 100, 15), [{ index: 1, rect: [7.5, 100, 185, 185] }]);
});

test("no images, no badges; tiny images get none", () => {
  assert.deepEqual(previewImageRects({ size: [100, 100], imgs: [] }, 0), []);
  assert.equal(badgeBox([0, 0, 20, 10], 50), null);
  const box = badgeBox([10, 20, 200, 200], 80);
  assert.equal(box.x, 10);
  assert.equal(box.y, 20);
  assert.ok(box.fontSize >= 7 && box.fontSize <= 14);
  assert.ok(box.w <= 200);
});

test("the best reranked image is highlighted", () => {
  assert.notEqual(badgeColour({ position: 0 }, true), badgeColour({ position: 1 }, true));
  assert.equal(badgeColour({ position: 0 }, false), badgeColour({ position: 1 }, false));
});

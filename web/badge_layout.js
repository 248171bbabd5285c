// Geometry and text of SpatialScore's score badges: plain functions, no ComfyUI import, tested with `node --test`.
//
// The rectangles mirror how ComfyUI's frontend (ImagePreviewWidget / renderPreview) lays out a node's preview:
// a grid of cells, each image fitted inside its cell, or one image centred when a single image is shown.

/** The text of one badge, from a record of the node's `spatialscore` UI payload; a record whose score means little
 * (the scorer's `flag`, e.g. "unknown words") says so after the score. */
export function badgeText(row, ranked) {
  const score = `${fmt(row.mean)} ± ${fmt(row.std)}`;
  const text = ranked ? `#${row.position + 1}  ${score}  (img ${row.index})` : score;
  return row.flag ? `${text}  ${row.flag}` : text;
}

function fmt(x) {
  return Number.isFinite(x) ? x.toFixed(3) : "n/a";
}

/** An image of natural size (w, h) fitted (contain) and centred in a cell [x, y, cw, ch]. */
export function fitInCell(w, h, [x, y, cw, ch]) {
  const ratio = Math.min(cw / w, ch / h);
  const iw = w * ratio;
  const ih = h * ratio;
  return [x + (cw - iw) / 2, y + (ch - ih) / 2, iw, ih];
}

/**
 * Where each visible preview image lies in node coordinates, as [{ index, rect: [x, y, w, h] }].
 * `node` needs size, imgs (HTMLImageElement-like: naturalWidth/naturalHeight), imageIndex, imageRects.
 * `shiftY` is the preview widget's y; `sizeTextHeight` is 15 when the frontend draws "W × H" under the image.
 */
export function previewImageRects(node, shiftY, sizeTextHeight = 0) {
  const imgs = node.imgs ?? [];
  if (!imgs.length) return [];
  const dw = node.size[0];
  const dh = node.size[1] - shiftY - sizeTextHeight;
  const single = imgs.length === 1 ? 0 : node.imageIndex;
  if (single == null) {
    const cells = node.imageRects ?? [];
    return cells.slice(0, imgs.length).map((cell, i) => ({
      index: i,
      rect: fitInCell(imgs[i].naturalWidth || imgs[i].width, imgs[i].naturalHeight || imgs[i].height, cell),
    }));
  }
  const img = imgs[single];
  if (!img) return [];
  let w = img.naturalWidth || img.width;
  let h = img.naturalHeight || img.height;
  const scale = Math.min(dw / w, dh / h, 1);
  w *= scale;
  h *= scale;
  return [{ index: single, rect: [(dw - w) / 2, (dh - h) / 2 + shiftY, w, h] }];
}

/** Font size and box of a badge in the top-left corner of an image rect; null when the image is too small. */
export function badgeBox([x, y, w, h], textWidthAt10px) {
  const fontSize = Math.max(7, Math.min(14, h / 9, (w * 0.92 * 10) / Math.max(textWidthAt10px, 1)));
  if (h < 16 || w < 24) return null;
  const pad = Math.max(2, Math.round(fontSize / 4));
  const boxW = Math.min(w, (textWidthAt10px * fontSize) / 10 + 2 * pad);
  return { x, y, w: boxW, h: fontSize + 2 * pad, pad, fontSize };
}

export const WARNED_COLOUR = "rgba(160, 90, 0, 0.85)"; // amber, as the badge baked into the preview pixels

/** Background colour of a badge: a score that means little amber (never the winner's green), the best image of a
 * Rerank green, the rest neutral. */
export function badgeColour(row, ranked) {
  if (row.flag) return WARNED_COLOUR;
  return ranked && row.position === 0 ? "rgba(20, 110, 40, 0.85)" : "rgba(0, 0, 0, 0.72)";
}

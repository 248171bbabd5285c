// SpatialScore badges: each preview image of the Score and Rerank nodes gets its score (mean ± std) drawn on it,
// from the `spatialscore` records the nodes send in their UI output.
//
// Classic canvas: drawn on the canvas right after the preview widget. The Vue node renderer ("Nodes 2.0") never
// calls the canvas drawing hooks and shows the previews as <img> elements: there each badge is a small DOM element
// over its image, matched to its record by the image's file name (so a carousel that shows one image at a time,
// as in frontend 1.27, or a grid, as in 1.58, both get the right score).
import { app } from "../../scripts/app.js";
import { badgeBox, badgeColour, badgeText, previewImageRects } from "./badge_layout.js";
import { everyVueTick, vueNodeElement } from "./vue_nodes.js";

const NODES = { SpatialScoreScore: false, SpatialScoreRerank: true, SpatialScoreEditScore: false, SpatialScoreEditRerank: true, SpatialScoreBestOfNSampler: true }; // node id -> ranked
const PREVIEW_WIDGET = "$$canvas-image-preview";

function sizeTextHeight() {
  try {
    return app.extensionManager?.setting?.get("Comfy.Node.AllowImageSizeDraw") ? 15 : 0;
  } catch {
    return 0;
  }
}

function rowsFor(node) {
  return node.spatialScoreRows ?? app.nodeOutputs?.[String(node.id)]?.spatialscore ?? null;
}

export function drawScoreBadges(node, ctx, shiftY, ranked) {
  const rows = rowsFor(node);
  if (!rows?.length || !node.imgs?.length || rows.length !== node.imgs.length) return 0;
  let drawn = 0;
  ctx.save();
  ctx.font = "10px sans-serif";
  for (const { index, rect } of previewImageRects(node, shiftY, sizeTextHeight())) {
    const row = rows[index];
    if (!row) continue;
    const text = badgeText(row, ranked);
    const box = badgeBox(rect, ctx.measureText(text).width);
    if (!box) continue;
    ctx.fillStyle = badgeColour(row, ranked);
    ctx.beginPath();
    ctx.roundRect(box.x, box.y, box.w, box.h, [0, 0, 4, 0]);
    ctx.fill();
    ctx.font = `${box.fontSize}px sans-serif`;
    ctx.fillStyle = "#fff";
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(text, box.x + box.pad, box.y + box.pad, box.w - 2 * box.pad);
    ctx.font = "10px sans-serif";
    drawn += 1;
  }
  ctx.restore();
  node.spatialScoreBadgesDrawn = drawn; // read by the headless browser check
  return drawn;
}

function fileOf(img) {
  try {
    return new URL(img.src, window.location.href).searchParams.get("filename");
  } catch {
    return null;
  }
}

export function placeVueBadges(node, ranked) {
  const rows = rowsFor(node);
  const files = node.spatialScoreFiles;
  const host = vueNodeElement(node);
  if (!rows?.length || !files?.length || !host) return 0;
  let placed = 0;
  for (const img of host.querySelectorAll("img")) {
    const index = files.indexOf(fileOf(img));
    const row = index >= 0 ? rows[index] : null;
    const parent = img.parentElement;
    if (!row || !parent) continue;
    if (getComputedStyle(parent).position === "static") parent.style.position = "relative";
    let badge = [...parent.children].find((el) => el.classList?.contains("spatialscore-badge"));
    if (!badge) {
      badge = document.createElement("div");
      badge.className = "spatialscore-badge";
      parent.appendChild(badge);
    }
    badge.textContent = badgeText(row, ranked);
    badge.style.cssText = `position:absolute;left:${img.offsetLeft}px;top:${img.offsetTop}px;z-index:1;` +
      `background:${badgeColour(row, ranked)};color:#fff;font:10px sans-serif;padding:1px 4px;` +
      "border-radius:0 0 4px 0;pointer-events:none;white-space:nowrap;";
    placed += 1;
  }
  node.spatialScoreVueBadges = placed; // read by the headless browser check
  return placed;
}

// The preview widget draws after onDrawForeground, so the badges are drawn right after the widget itself.
function hookPreviewWidget(node, ranked) {
  const widget = node.widgets?.find((w) => w.name === PREVIEW_WIDGET);
  if (!widget || widget.spatialScoreHooked) return;
  const ownDraw = typeof widget.draw === "function" ? widget.draw : null;
  widget.draw = function (ctx, drawNode, width, y, height, lowQuality) {
    if (ownDraw) ownDraw.call(this, ctx, drawNode, width, y, height, lowQuality);
    else this.drawWidget(ctx, { width, showText: !lowQuality });
    if (!lowQuality) drawScoreBadges(node, ctx, this.y ?? y, ranked);
  };
  widget.spatialScoreHooked = true;
}

app.registerExtension({
  name: "SpatialScore.ScoreBadges",
  setup() {
    // the Vue renderer re-creates its <img> elements (a new run, a loaded workflow, a level-of-detail change)
    everyVueTick((node) => {
      if (node.type in NODES && node.spatialScoreRows) placeVueBadges(node, NODES[node.type]);
    });
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!(nodeData.name in NODES)) return;
    const ranked = NODES[nodeData.name];

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      const result = onExecuted?.apply(this, arguments);
      this.spatialScoreRows = output?.spatialscore ?? null;
      this.spatialScoreFiles = (output?.images ?? []).map((image) => image.filename);
      this.setDirtyCanvas?.(true, true);
      return result;
    };

    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function () {
      const result = onDrawForeground?.apply(this, arguments);
      hookPreviewWidget(this, ranked);
      return result;
    };
  },
});

// SpatialScore Evaluate: the LoRA's win rate against the base (with its 95% interval, and the pairwise judge's and
// the oracle's when the run had them) as a badge under the node, from the node's `spatialscore_evaluate` UI record.
//
// As the score badges (spatialscore_badges.js): drawn on the classic canvas in onDrawForeground; the Vue node
// renderer ("Nodes 2.0") never calls the canvas hooks, so there the badge is a small DOM element placed over the
// node's element, put back whenever the renderer re-creates that element.
import { app } from "../../scripts/app.js";
import { evaluateBadgeBox, evaluateBadgeColour, evaluateBadgeLines } from "./evaluate_badge.js";
import { everyVueTick, vueNodeElement } from "./vue_nodes.js";

const NODE = "SpatialScoreEvaluate";

function recordOf(node) {
  return node.spatialScoreEvaluate ?? app.nodeOutputs?.[String(node.id)]?.spatialscore_evaluate?.[0] ?? null;
}

function drawBadge(node, ctx) {
  const row = recordOf(node);
  const lines = evaluateBadgeLines(row);
  if (!lines.length) return;
  ctx.save();
  ctx.font = "11px sans-serif";
  const width = Math.max(...lines.map((l) => ctx.measureText(l).width));
  const box = evaluateBadgeBox(lines, width, node.size?.[1] ?? 0);
  ctx.fillStyle = evaluateBadgeColour(row);
  ctx.beginPath();
  ctx.roundRect(box.x, box.y, box.w, box.h, 4);
  ctx.fill();
  ctx.fillStyle = "#fff";
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  lines.forEach((line, i) => ctx.fillText(line, box.x + box.pad, box.y + box.pad + i * box.lineHeight));
  ctx.restore();
  node.spatialScoreEvaluateDrawn = lines.length; // read by headless browser checks
}

function placeVueBadge(node) {
  const host = vueNodeElement(node);
  const row = recordOf(node);
  const lines = evaluateBadgeLines(row);
  if (!host || !lines.length) return;
  if (getComputedStyle(host).position === "static") host.style.position = "relative";
  let el = host.querySelector(":scope > .spatialscore-evaluate-badge");
  if (!el) {
    el = document.createElement("div");
    el.className = "spatialscore-evaluate-badge";
    host.appendChild(el);
  }
  el.textContent = lines.join("\n");
  el.style.cssText = `position:absolute;left:0;top:calc(100% + 6px);z-index:1;white-space:pre;` +
    `background:${evaluateBadgeColour(row)};color:#fff;font:11px/14px sans-serif;padding:4px;border-radius:4px;` +
    "pointer-events:none;";
  node.spatialScoreEvaluateDrawn = lines.length;
}

app.registerExtension({
  name: "SpatialScore.EvaluateBadge",
  setup() {
    everyVueTick((node) => {
      if (node.type === NODE && node.spatialScoreEvaluate) placeVueBadge(node);
    });
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      const result = onExecuted?.apply(this, arguments);
      this.spatialScoreEvaluate = output?.spatialscore_evaluate?.[0] ?? null;
      placeVueBadge(this);
      this.setDirtyCanvas?.(true, true);
      return result;
    };
    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx) {
      const result = onDrawForeground?.apply(this, arguments);
      drawBadge(this, ctx);
      return result;
    };
  },
});

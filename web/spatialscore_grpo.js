// SpatialScore GRPO Train: a live reward chart on the node (reward mean ± std, the kept samples' reward, the eval
// reward per step) with a status line under it (the phase in progress, what Cancel saved), and the Score / Rerank
// nodes' per-image score text.
//
// Both are our own DOM elements (an SVG chart, a read-only textarea), never canvas drawing, so they work in both
// renderers:
// - the classic LiteGraph canvas: a DOM widget (node.addDOMWidget), which the frontend positions over the node;
// - the Vue node renderer ("Nodes 2.0", which never calls onDrawForeground): it renders each widget with a Vue
//   component of its own for the widget's type and mounts no foreign element (frontend 1.27); its textarea and chart
//   components read the widget's value once, when they mount (1.27's useWidgetValue watches a plain value; 1.58 keeps
//   values in a store a DOM widget's setter never reaches), so a value-carrying widget stays empty there. Instead
//   the widget has a type no Vue component claims: newer frontends (checked: 1.58) then mount the element itself in
//   the Vue node, and for 1.27, which leaves such a widget out, `mountInVueNode` puts the same element into the
//   node's own element ([data-node-id], below its widgets), again whenever the renderer re-creates it.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { chartSvg, mergePoint, statusLine } from "./grpo_chart.js";
import { everyVueTick, vueNodeElement, vueNodesEnabled } from "./vue_nodes.js";

const GRPO_NODE = "SpatialScoreGRPOTrain";
const PROGRESS_EVENT = "spatialscore.grpo.progress";
const STATUS_EVENT = "spatialscore.grpo.status";
const TEXT_NODES = ["SpatialScoreScore", "SpatialScoreRerank", "SpatialScoreEditScore", "SpatialScoreEditRerank",
  "SpatialScoreEvaluate"];
const CHART_HEIGHT = 180;
const STATUS_HEIGHT = 44; // three lines of 14 px: "Cancelled: saved models/loras/<name>.safetensors, ..." wraps
const VIEW_TYPE = "spatialscore_view"; // no Vue widget component has this type
const VUE_SLOT = "spatialscore-vue-slot";

function domWidget(node, name, element, height) {
  const widget = node.addDOMWidget(name, VIEW_TYPE, element, {
    serialize: false, // a view, not a setting: never part of the saved widget values or the prompt
    hideOnZoom: false,
    getMinHeight: () => height,
    getHeight: () => height,
  });
  widget.serialize = false;
  element.dataset.spatialscoreView = name;
  element.spatialScoreHeight = height;
  return widget;
}

// The Vue renderer: the node's element is [data-node-id]. Newer frontends mount a DOM widget's element into it
// themselves; frontend 1.27 does not, and then our element goes into a slot at the end of the node's widget list
// (`.lg-node-widgets`), after it has stayed outside the node for two checks (so a frontend that mounts it itself,
// a moment later, is never raced). A no-op on the classic canvas, where the frontend places the DOM widget.
function mountInVueNode(node, el) {
  if (!el || !vueNodesEnabled()) return false;
  const host = vueNodeElement(node);
  if (!host) return false;
  const slot = host.querySelector(`.${VUE_SLOT}[data-view="${el.dataset.spatialscoreView}"]`);
  if (host.contains(el)) {
    if (slot && !slot.contains(el)) slot.remove(); // the frontend mounted it itself: our slot is not needed
    el.spatialScoreOutside = 0;
    return true;
  }
  el.spatialScoreOutside = (el.spatialScoreOutside ?? 0) + 1;
  if (el.spatialScoreOutside < 2) return false;
  const list = host.querySelector(".lg-node-widgets");
  if (!list) return false; // a renderer whose layout we do not know: leave it alone
  const holder = slot ?? document.createElement("div");
  if (!slot) {
    holder.className = VUE_SLOT;
    holder.dataset.view = el.dataset.spatialscoreView;
    holder.style.cssText = `width:100%;height:${el.spatialScoreHeight}px;box-sizing:border-box;`;
    list.appendChild(holder);
  }
  el.style.position = "static";
  el.style.transform = "none";
  el.style.display = "";
  holder.appendChild(el);
  return true;
}

function mountViews(node) {
  mountInVueNode(node, node.spatialScoreChart);
  mountInVueNode(node, node.spatialScoreText);
}

// ----- reward chart -----

function drawChart(node) {
  const el = node.spatialScoreChart;
  if (!el) return;
  const points = node.spatialScorePoints ?? [];
  const width = Math.max(200, Math.round(el.clientWidth || node.size?.[0] - 20 || 300));
  node.spatialScoreChartSvg.innerHTML = chartSvg(points, width, CHART_HEIGHT - 6);
  mountViews(node);
  node.spatialScoreChartDrawn = points.length; // read by the headless browser check
  node.setDirtyCanvas?.(true, true);
}

function addChart(node) {
  const el = document.createElement("div");
  el.className = "spatialscore-grpo-chart";
  el.style.cssText = `width:100%;height:${CHART_HEIGHT + STATUS_HEIGHT - 6}px;overflow:hidden;`;
  const svg = document.createElement("div");
  svg.style.cssText = `width:100%;height:${CHART_HEIGHT - 6}px;`;
  const status = document.createElement("div");
  status.className = "spatialscore-grpo-status";
  status.style.cssText = `height:${STATUS_HEIGHT}px;overflow:hidden;font:11px/14px sans-serif;color:#aaa;` +
    "padding:1px 4px;box-sizing:border-box;overflow-wrap:anywhere;";
  el.append(svg, status);
  node.spatialScoreChart = el;
  node.spatialScoreChartSvg = svg;
  node.spatialScoreStatus = status;
  node.spatialScorePoints = [];
  domWidget(node, "reward_chart", el, CHART_HEIGHT + STATUS_HEIGHT);
  if (typeof ResizeObserver !== "undefined") new ResizeObserver(() => drawChart(node)).observe(el);
  drawChart(node);
}

function graphNode(id) {
  return app.graph?.getNodeById?.(Number(id)) ?? app.graph?.getNodeById?.(id);
}

function showStatus(node, detail) {
  const line = statusLine(detail);
  if (!line || !node.spatialScoreStatus) return;
  node.spatialScoreStatus.textContent = line.text;
  node.spatialScoreStatus.title = line.text; // the whole line on hover when it is cut
  node.spatialScoreStatus.style.color = line.colour;
  node.setDirtyCanvas?.(true, true);
}

function onStatus(event) {
  const node = graphNode(event.detail?.node);
  if (node) showStatus(node, event.detail);
}

function onProgress(event) {
  const { node: id, point } = event.detail ?? {};
  const node = graphNode(id);
  if (!node?.spatialScoreChart) return;
  // step 1 starts a new run (a resumed run never repeats it): the previous run's points go
  const previous = point?.step === 1 ? [] : node.spatialScorePoints ?? [];
  node.spatialScorePoints = mergePoint(previous, point);
  drawChart(node);
}

// ----- score text -----

function addTextView(node) {
  const el = document.createElement("textarea");
  el.className = "comfy-multiline-input spatialscore-score-text";
  el.readOnly = true;
  el.placeholder = "per-image scores appear here after a run";
  el.style.cssText = "width:100%;height:100%;font-family:monospace;font-size:11px;resize:none;";
  node.spatialScoreText = el;
  domWidget(node, "score_text", el, 90);
}

app.registerExtension({
  name: "SpatialScore.GRPOChartAndScoreText",
  setup() {
    api.addEventListener(PROGRESS_EVENT, onProgress);
    api.addEventListener(STATUS_EVENT, onStatus);
    // the Vue renderer re-creates a node's element (a loaded workflow, collapse, a level-of-detail change): put our
    // views back; cheap (a query per node that has one), and nothing at all on the classic canvas
    everyVueTick((node) => {
      if (node.spatialScoreChart || node.spatialScoreText) mountViews(node);
    });
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    const isGrpo = nodeData.name === GRPO_NODE;
    const isText = TEXT_NODES.includes(nodeData.name);
    if (!isGrpo && !isText) return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      if (isGrpo) addChart(this);
      else addTextView(this);
      return result;
    };

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      const result = onExecuted?.apply(this, arguments);
      if (isGrpo && Array.isArray(output?.spatialscore_grpo)) {
        // the run's whole history (a resumed run included) replaces what the live events drew
        this.spatialScorePoints = output.spatialscore_grpo.reduce(mergePoint, []);
        drawChart(this);
        showStatus(this, { text: [].concat(output.text ?? []).join(" "), kind: "done" });
      }
      if (isText && this.spatialScoreText && output?.text) {
        const text = [].concat(output.text).join("\n");
        this.spatialScoreText.value = text;
        mountViews(this);
        this.setDirtyCanvas?.(true, true);
      }
      return result;
    };
  },
});

// SpatialScore GRPO Train: a live reward chart on the node (reward mean ± std, the kept samples' reward, the eval
// reward per step), and the Score / Rerank nodes' per-image score text.
//
// Both are DOM widgets (node.addDOMWidget), not canvas drawing: the classic LiteGraph canvas positions them over the
// node, and the Vue node renderer ("Nodes 2.0"), which never calls onDrawForeground, mounts them in the node's body.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { chartSvg, mergePoint } from "./grpo_chart.js";

const GRPO_NODE = "SpatialScoreGRPOTrain";
const PROGRESS_EVENT = "spatialscore.grpo.progress";
const TEXT_NODES = ["SpatialScoreScore", "SpatialScoreRerank", "SpatialScoreEditScore", "SpatialScoreEditRerank"];
const CHART_HEIGHT = 180;

function domWidget(node, name, element, height) {
  const widget = node.addDOMWidget(name, "spatialscore_view", element, {
    serialize: false, // a view, not a setting: never part of the saved widget values or the prompt
    hideOnZoom: false,
    getMinHeight: () => height,
    getHeight: () => height,
  });
  widget.serialize = false;
  return widget;
}

// ----- reward chart -----

function drawChart(node) {
  const el = node.spatialScoreChart;
  if (!el) return;
  const width = Math.max(200, Math.round(el.clientWidth || node.size?.[0] - 20 || 300));
  el.innerHTML = chartSvg(node.spatialScorePoints ?? [], width, CHART_HEIGHT - 6);
  node.spatialScoreChartDrawn = (node.spatialScorePoints ?? []).length; // read by the headless browser check
}

function addChart(node) {
  const el = document.createElement("div");
  el.className = "spatialscore-grpo-chart";
  el.style.cssText = `width:100%;height:${CHART_HEIGHT - 6}px;overflow:hidden;`;
  node.spatialScoreChart = el;
  node.spatialScorePoints = [];
  domWidget(node, "reward_chart", el, CHART_HEIGHT);
  if (typeof ResizeObserver !== "undefined") new ResizeObserver(() => drawChart(node)).observe(el);
  drawChart(node);
}

function onProgress(event) {
  const { node: id, point } = event.detail ?? {};
  const node = app.graph?.getNodeById?.(Number(id)) ?? app.graph?.getNodeById?.(id);
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
      }
      if (isText && this.spatialScoreText && output?.text) {
        this.spatialScoreText.value = [].concat(output.text).join("\n");
      }
      return result;
    };
  },
});

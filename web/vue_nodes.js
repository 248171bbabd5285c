// The Vue node renderer ("Nodes 2.0") in one place for the pack's views: whether it is on, a node's element, and one
// shared timer that puts views back after the renderer re-creates a node's element (a loaded workflow, a new run, a
// level-of-detail change). Nothing runs on the classic canvas.
import { app } from "../../scripts/app.js";

const TICK_MS = 500;
const onTick = [];
let timer = null;

export function vueNodesEnabled() {
  try {
    return Boolean(app.extensionManager?.setting?.get?.("Comfy.VueNodes.Enabled"));
  } catch {
    return false;
  }
}

export function vueNodeElement(node) {
  return document.querySelector(`[data-node-id="${node.id}"]`);
}

/** Call `fn(node)` for every node of the graph every TICK_MS while the Vue renderer is on. */
export function everyVueTick(fn) {
  onTick.push(fn);
  timer ??= setInterval(() => {
    if (!vueNodesEnabled()) return;
    for (const node of app.graph?._nodes ?? []) for (const f of onTick) f(node);
  }, TICK_MS);
}

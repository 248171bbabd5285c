// SpatialScore dataset review inside ComfyUI: a sidebar tab and a menu entry (Extensions > SpatialScore) open the
// keyboard review page of a dataset folder, served by ComfyUI itself under /spatialscore/review/ (no second server).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { FOLDER_KEY, cleanFolder, reviewUrl } from "./review_link.js";

const apiURL = (route) => api.apiURL(route);

// The page over the whole window, in an iframe, so that its keys work as on the command-line server.
function openOverlay(folder) {
  document.getElementById("spatialscore-review-overlay")?.remove();
  const overlay = document.createElement("div");
  overlay.id = "spatialscore-review-overlay";
  overlay.style.cssText = "position:fixed;inset:0;z-index:10000;background:#16181d;display:flex;flex-direction:column";
  const bar = document.createElement("div");
  bar.style.cssText = "display:flex;justify-content:flex-end;gap:8px;padding:4px 8px;background:#1f232b";
  const tab = document.createElement("a");
  tab.textContent = "open in a browser tab";
  tab.href = reviewUrl(apiURL, folder);
  tab.target = "_blank";
  tab.style.color = "#8bb4ff";
  const close = document.createElement("button");
  close.textContent = "close review";
  close.onclick = () => overlay.remove();
  bar.append(tab, close);
  const frame = document.createElement("iframe");
  frame.src = reviewUrl(apiURL, folder);
  frame.style.cssText = "flex:1;border:0;width:100%";
  frame.onload = () => frame.contentWindow?.focus();
  overlay.append(bar, frame);
  document.body.append(overlay);
}

function askFolder() {
  const folder = cleanFolder(window.prompt("Dataset folder to review (the folder with manifest.jsonl):",
    localStorage.getItem(FOLDER_KEY) || ""));
  if (folder) {
    localStorage.setItem(FOLDER_KEY, folder);
    openOverlay(folder);
  }
}

function renderTab(el) {
  el.replaceChildren();
  const box = document.createElement("div");
  box.style.cssText = "padding:10px;display:flex;flex-direction:column;gap:8px";
  const help = document.createElement("p");
  help.textContent = "Review the preference pairs of a SpatialReward dataset by keyboard. Verdicts go to " +
    "reviews.jsonl in the dataset folder; training reads them.";
  const input = document.createElement("input");
  input.placeholder = "/path/to/dataset (folder with manifest.jsonl)";
  input.value = localStorage.getItem(FOLDER_KEY) || "";
  const open = document.createElement("button");
  open.textContent = "Open review";
  open.onclick = () => {
    const folder = cleanFolder(input.value);
    if (!folder) return input.focus();
    localStorage.setItem(FOLDER_KEY, folder);
    openOverlay(folder);
  };
  input.addEventListener("keydown", (e) => e.key === "Enter" && open.click());
  box.append(help, input, open);
  el.append(box);
}

app.registerExtension({
  name: "SpatialScore.DatasetReview",
  commands: [{ id: "SpatialScore.ReviewDataset", label: "Review a SpatialReward dataset", icon: "pi pi-check-square",
    function: askFolder }],
  menuCommands: [{ path: ["Extensions", "SpatialScore"], commands: ["SpatialScore.ReviewDataset"] }],
  async setup() {
    app.extensionManager?.registerSidebarTab?.({
      id: "spatialscore-review", icon: "pi pi-check-square", title: "Dataset review",
      tooltip: "SpatialScore: review a SpatialReward dataset", type: "custom", render: renderTab,
    });
  },
});

// Drive the real ComfyUI frontend in headless Chromium (playwright-core + Debian's chromium), 127.0.0.1 only.
//
//   node scripts/comfyui_browser.mjs build-workflows <url> <workflows dir> <fixtures dir>
//       builds the example graphs with the frontend's own node definitions, saves them in UI format with
//       same-name .jpg thumbnails (the scoring graph is run first so its thumbnail shows the score badges), and
//       into <fixtures dir> their API form as the frontend converts it plus the /object_info of the node types
//       they use, for the offline test of tests/nodes/comfyui_harness.ui_to_api.
//   node scripts/comfyui_browser.mjs build-edit-workflow <url> <workflows dir> <fixtures dir>
//       the same for the edit example only (spatialscore_edit_rerank; run with the built-in shapes-edit scorer and
//       input/spatialscore_edit_source.png + input/spatialscore_edit_candidates.png), adding its node types to <fixtures dir>/object_info.json
//   node scripts/comfyui_browser.mjs build-one-workflow <url> <name> <workflows dir> <fixtures dir>
//       the same for any one example of GRAPHS, e.g. spatialscore_best_of_n_pruned (runs on the shipped shapes
//       generator and scorer)
//       or of GRPO_GRAPHS (scripts/comfyui_grpo_graphs.mjs: spatialscore_shapes_grpo, run once so the thumbnail shows
//       the reward chart; spatialscore_flux_grpo, not run)
//       or of EVALUATE_GRAPHS (scripts/comfyui_evaluate_graphs.mjs: spatialscore_evaluate_shapes, run once so the
//       thumbnail shows the win-rate badge)
//   node scripts/comfyui_browser.mjs grpo-view-check <url> <out dir>
//       runs a 3-step GRPO graph and a Score graph on the classic canvas, then in the Vue node renderer ("Nodes
//       2.0"), and checks the GRPO node's reward chart (with its status line saying what the run saved), the Score
//       node's text and its badges are visible with their content (one prompt outside the scorer's words: the text's
//       first line and that image's badge say so)
//   node scripts/comfyui_browser.mjs badge-check <url> <out dir>
//       runs a Score graph and a Rerank graph on an 8-frame batch (input/candidates.png) and checks that every
//       preview image got its badge; writes screenshots and a JSON report.
//
// playwright-core is found through SPATIALSCORE_NODE_MODULES (a node_modules folder) or the usual resolution.
// scripts/comfyui_badge_check.sh makes every prerequisite (playwright-core, the input files, a running ComfyUI).
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EVALUATE_GRAPHS } from "./comfyui_evaluate_graphs.mjs";
import { GRPO_GRAPHS, GRPO_HELPERS, VIEW_CHECK_GRAPH, viewState } from "./comfyui_grpo_graphs.mjs";

const require = createRequire(process.env.SPATIALSCORE_NODE_MODULES ? join(process.env.SPATIALSCORE_NODE_MODULES, "x.js") : import.meta.url);
let chromium;
try {
  ({ chromium } = require("playwright-core"));
} catch {
  console.error("playwright-core not found: `npm install playwright-core` in a folder and set SPATIALSCORE_NODE_MODULES " +
    "to its node_modules, or run scripts/comfyui_badge_check.sh, which does it");
  process.exit(2);
}

const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--disable-quic", "--no-first-run", "--disable-features=Translate,MediaRouter"];

async function openComfy(url, viewport = { width: 1500, height: 940 }) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport, deviceScaleFactor: 1 });
  const origin = new URL(url).origin;
  // Nothing leaves this machine: the frontend's update check and the like are answered locally.
  await page.route("**/*", (route) => (route.request().url().startsWith(origin) ? route.continue() : route.abort()));
  // errors: from this pack's extension (fail the check); other: from the frontend itself (reported only)
  const errors = [];
  const other = [];
  const ours = (text) => /extensions\/comfyui-spatialscore|SpatialScore/i.test(text);
  page.on("pageerror", (e) => { const t = String(e.stack ?? e); (ours(t) ? errors : other).push(t.split("\n")[0]); });
  page.on("console", (m) => { if (m.type() === "error" && ours(m.text() + (m.location()?.url ?? ""))) errors.push(m.text()); });
  await page.goto(url, { waitUntil: "domcontentloaded", timeout: 180000 }); // a busy shared machine serves slowly
  await page.waitForFunction(() => window.LiteGraph?.registered_node_types?.SpatialScoreRerank && window.comfyAPI?.app?.app?.canvas,
    null, { timeout: 180000 });
  await page.waitForTimeout(1500);
  await page.keyboard.press("Escape"); // any welcome dialog
  return { browser, page, errors, other };
}

// ----- code that runs in the page -----
const PAGE_HELPERS = () => {
  const app = window.comfyAPI.app.app;
  const H = {
    app,
    clear() { app.graph.clear(); },
    add(type, pos, widgets = {}, opts = {}) {
      const node = window.LiteGraph.createNode(type);
      if (!node) throw new Error(`unknown node type ${type}`);
      node.pos = pos;
      app.graph.add(node);
      for (const [name, value] of Object.entries(widgets)) {
        const w = node.widgets?.find((x) => x.name === name);
        if (!w) throw new Error(`${type} has no widget ${name}: ${node.widgets?.map((x) => x.name)}`);
        w.value = value;
      }
      if (opts.title) node.title = opts.title;
      if (opts.width) node.size = [opts.width, node.computeSize()[1]];
      if (opts.size) node.size = opts.size;
      if (opts.color) { node.color = opts.color[0]; node.bgcolor = opts.color[1]; }
      return node;
    },
    link(src, outName, dst, inName) {
      const o = src.outputs.findIndex((s) => s.name === outName);
      const i = dst.inputs.findIndex((s) => s.name === inName);
      if (o < 0 || i < 0) throw new Error(`cannot link ${src.type}.${outName} -> ${dst.type}.${inName}`);
      src.connect(o, dst, i);
    },
    frame(margin = 30) {
      const nodes = app.graph._nodes;
      const title = window.LiteGraph.NODE_TITLE_HEIGHT;
      const x0 = Math.min(...nodes.map((n) => n.pos[0])), y0 = Math.min(...nodes.map((n) => n.pos[1] - title));
      const x1 = Math.max(...nodes.map((n) => n.pos[0] + n.size[0])), y1 = Math.max(...nodes.map((n) => n.pos[1] + n.size[1]));
      const el = app.canvas.canvas;
      const w = el.clientWidth, h = el.clientHeight - 50;
      const scale = Math.min((w - 2 * margin) / (x1 - x0), (h - 2 * margin) / (y1 - y0), 1.25);
      app.canvas.ds.scale = scale;
      app.canvas.ds.offset = [(w / scale - (x1 - x0)) / 2 - x0, (h / scale - (y1 - y0)) / 2 - y0 + 50 / scale];
      app.canvas.setDirty(true, true);
      return { x0, y0, x1, y1, scale };
    },
    async run(timeoutMs = 300000) {
      const done = new Promise((resolve, reject) => {
        const api = window.comfyAPI.api.api;
        const ok = () => { cleanup(); resolve("success"); };
        const bad = (e) => { cleanup(); reject(new Error(JSON.stringify(e.detail))); };
        const cleanup = () => { api.removeEventListener("execution_success", ok); api.removeEventListener("execution_error", bad); };
        api.addEventListener("execution_success", ok);
        api.addEventListener("execution_error", bad);
        setTimeout(() => { cleanup(); reject(new Error(`no result within ${timeoutMs / 1000} s: was the graph refused (missing input file, scorer or model)? see the ComfyUI log`)); }, timeoutMs);
      });
      await app.queuePrompt(0, 1);
      return await done;
    },
  };
  window.__ss = H;
};

// ----- the example graphs -----
const GRAPHS = {
  spatialscore_score_images: () => {
    const H = window.__ss;
    H.clear();
    const note = H.add("MarkdownNote", [40, 40], {}, { size: [380, 330] });
    note.widgets[0].value = [
      "## SpatialScore: score images",
      "Scores how well each image shows the **spatial relations** in its prompt.",
      "",
      "Runs as it is: the loader picks the built-in **shapes** scorer (it ships with the pack), and Load Image reads `spatialscore_shapes_example.png`, which the pack puts into ComfyUI's `input/` folder: four pictures, the first one right, the other three breaking the prompt. The first should score highest.",
      "",
      "The shapes scorer knows only red/green/blue/yellow circles, squares and triangles left of / right of / above / below each other on a plain background; for other pictures or words it warns in the node text. For real images put a trained SpatialScore folder (with `spatialscore.json`) or a plain **Qwen2.5-VL** folder (zero-shot) in `models/spatialscore/`, press R, and pick it in the loader.",
      "",
      "One prompt line for all images, or one line per image. The node shows *mean ± std* on each preview; `scores`/`stds` are per-image float lists; `preview` has the score drawn in.",
    ].join("\n");
    // runs as it is: the built-in scorer and the picture the pack copies into input/ (nodes/logic/examples.py)
    const loader = H.add("SpatialScoreLoader", [40, 410], { scorer: "shapes" }, { width: 380 });
    const image = H.add("LoadImage", [460, 40], { image: "spatialscore_shapes_example.png" }, { size: [320, 420] });
    const score = H.add("SpatialScoreScore", [820, 40], {
      prompt: "a red circle to the left of a blue square",
    }, { size: [400, 560] });
    const save = H.add("SaveImage", [1260, 40], { filename_prefix: "spatialscore/scored" }, { size: [320, 420] });
    H.link(loader, "scorer", score, "scorer");
    H.link(image, "IMAGE", score, "images");
    H.link(score, "preview", save, "images");
    return { run: true, badgeNode: score.id };
  },
  spatialscore_flux_best_of_n: () => {
    const H = window.__ss;
    H.clear();
    const note = H.add("MarkdownNote", [40, 40], {}, { size: [400, 380] });
    note.widgets[0].value = [
      "## Flux.1-dev best-of-N with SpatialScore",
      "Generates **8 candidates** of one prompt, scores each with SpatialScore and saves the **top 2**.",
      "",
      "**Download first** (none ship with the pack):",
      "- `flux1-dev.safetensors` (black-forest-labs/FLUX.1-dev) -> `models/diffusion_models/`",
      "- `clip_l.safetensors` and `t5xxl_fp16.safetensors` (comfyanonymous/flux_text_encoders) -> `models/text_encoders/`",
      "- `ae.safetensors` (the FLUX.1-dev VAE) -> `models/vae/`",
      "- a scorer folder -> `models/spatialscore/<name>/`: a trained SpatialScore (has `spatialscore.json`), or the plain **Qwen/Qwen2.5-VL-7B-Instruct** folder for zero-shot scoring; then press R and pick it in the loader (the name `SpatialScore-Qwen2.5-VL-7B` below is a placeholder). The built-in `shapes` scorer runs without a download but only understands flat coloured shapes, not Flux images.",
      "",
      "The scorer is moved to the GPU only while it scores (keep_loaded off), so Flux keeps the memory.",
      "`top_latent` carries the kept latents in the same order (e.g. for an upscale pass).",
      "Risk-averse ranking: set rank_by to *mean - lambda\\*std*.",
    ].join("\n");
    const prompt = H.add("PrimitiveStringMultiline", [40, 460], {
      value: "a red apple to the left of a green cup, with a blue book lying on top of the cup",
    }, { size: [400, 150], title: "Prompt" });
    const unet = H.add("UNETLoader", [480, 40], { unet_name: "flux1-dev.safetensors" }, { width: 320 });
    const clip = H.add("DualCLIPLoader", [480, 170], { clip_name1: "clip_l.safetensors", clip_name2: "t5xxl_fp16.safetensors", type: "flux" }, { width: 320 });
    const vae = H.add("VAELoader", [480, 360], { vae_name: "ae.safetensors" }, { width: 320 });
    const encode = H.add("CLIPTextEncode", [480, 460], {}, { size: [320, 100] });
    const guidance = H.add("FluxGuidance", [840, 40], { guidance: 3.5 }, { width: 260 });
    const zero = H.add("ConditioningZeroOut", [840, 160], {}, { width: 260 });
    const latent = H.add("EmptySD3LatentImage", [840, 250], { width: 1024, height: 1024, batch_size: 8 }, { width: 260 });
    const sampler = H.add("KSampler", [1140, 40], { seed: 0, steps: 20, cfg: 1.0, sampler_name: "euler", scheduler: "simple", denoise: 1.0 }, { width: 300 });
    const decode = H.add("VAEDecode", [1140, 340], {}, { width: 300 });
    const loader = H.add("SpatialScoreLoader", [840, 470], { scorer: "SpatialScore-Qwen2.5-VL-7B" }, { width: 260 });
    const rerank = H.add("SpatialScoreRerank", [1480, 40], { top_k: 2 }, { size: [420, 600] });
    const save = H.add("SaveImage", [1940, 40], { filename_prefix: "spatialscore/flux_best" }, { size: [360, 420] });
    H.link(clip, "CLIP", encode, "clip");
    H.link(prompt, "STRING", encode, "text");
    H.link(encode, "CONDITIONING", guidance, "conditioning");
    H.link(encode, "CONDITIONING", zero, "conditioning");
    H.link(unet, "MODEL", sampler, "model");
    H.link(guidance, "CONDITIONING", sampler, "positive");
    H.link(zero, "CONDITIONING", sampler, "negative");
    H.link(latent, "LATENT", sampler, "latent_image");
    H.link(sampler, "LATENT", decode, "samples");
    H.link(vae, "VAE", decode, "vae");
    H.link(loader, "scorer", rerank, "scorer");
    H.link(decode, "IMAGE", rerank, "images");
    H.link(prompt, "STRING", rerank, "prompt");
    H.link(sampler, "LATENT", rerank, "latent");
    H.link(rerank, "top_images", save, "images");
    return { run: false };
  },
  spatialscore_edit_rerank: () => {
    const H = window.__ss;
    H.clear();
    const note = H.add("MarkdownNote", [40, 40], {}, { size: [380, 380] });
    note.widgets[0].value = [
      "## SpatialScore: score and rerank image edits",
      "Scores each **edited** image against the **source** and the **instruction** (SpatialReward): did the edit happen where it should, and nothing else?",
      "",
      "1. `shapes-edit` is the built-in demo (flat shapes only); for real edits put an edit scorer (`spatialreward.json`) or a local **Qwen2.5-VL / Qwen3-VL** judge in `models/spatialscore/`.",
      "2. Feed the edit candidates (e.g. a Flux Kontext or Qwen-Image-Edit batch) into `edited`.",
      "",
      "The preview outlines the predicted edit regions; Edit Rerank keeps the best `top_k`.",
    ].join("\n");
    const loader = H.add("SpatialScoreEditLoader", [40, 460], { edit_scorer: "shapes-edit" }, { width: 380 });
    const source = H.add("LoadImage", [460, 40], { image: "spatialscore_edit_source.png" }, { size: [300, 360], title: "Source image" });
    const edited = H.add("LoadImage", [460, 440], { image: "spatialscore_edit_candidates.png" }, { size: [300, 360], title: "Edit candidates" });
    const instruction = "move the red circle to the left of the blue square";
    const score = H.add("SpatialScoreEditScore", [800, 40], { instruction }, { size: [400, 520] });
    const rerank = H.add("SpatialScoreEditRerank", [1240, 40], { instruction, top_k: 1 }, { size: [360, 520] });
    const save = H.add("SaveImage", [1640, 40], { filename_prefix: "spatialscore/best_edit" }, { size: [300, 360] });
    for (const node of [score, rerank]) {
      H.link(loader, "edit_scorer", node, "edit_scorer");
      H.link(source, "IMAGE", node, "source");
      H.link(edited, "IMAGE", node, "edited");
    }
    H.link(rerank, "top_images", save, "images");
    return { run: true, badgeNode: score.id };
  },
  spatialscore_best_of_n_pruned: () => {
    const H = window.__ss;
    H.clear();
    const note = H.add("MarkdownNote", [40, 40], {}, { size: [400, 420] });
    note.widgets[0].value = [
      "## Best-of-N that stops paying for losers",
      "Samples **16 candidates** of one prompt as one batch. After a third of the steps it decodes every candidate's *predicted clean image* (x0), scores it with SpatialScore and keeps the **8** best; at half way the **2** best; only those are finished. The top `keep` come out best first, with badges.",
      "",
      "Runs as it is on a CPU: the **shapes generator** (a 64 px FLUX.1 of flat shapes, 6 steps) and the built-in **shapes** scorer ship with the pack. About half the model forwards of a full best-of-16 for the same best image (docs/bestofn.md).",
      "",
      "For Flux: replace the generator loader by Load Diffusion Model + DualCLIPLoader + Load VAE (+ FluxGuidance on the conditioning), a real scorer in the loader, 1024 px, 20 steps. `schedule`: `KEEP@FRACTION,...`, `none` for plain best-of-N. The `report` output (JSON; connect a Preview Any) lists who was dropped when, with what score.",
    ].join("\n");
    const prompt = H.add("PrimitiveStringMultiline", [40, 500], {
      value: "a yellow circle to the left of a blue triangle, the yellow circle above a red square, and the red square to the left of the blue triangle",
    }, { size: [400, 150], title: "Prompt" });
    const gen = H.add("SpatialScoreShapesGeneratorLoader", [480, 40], { generator: "shapes" }, { width: 320 });
    const encode = H.add("CLIPTextEncode", [480, 200], {}, { size: [320, 100] });
    const loader = H.add("SpatialScoreLoader", [480, 360], { scorer: "shapes" }, { width: 320 });
    const sampler = H.add("SpatialScoreBestOfNSampler", [840, 40], {
      n: 16, keep: 2, schedule: "default", sampler_name: "euler", scheduler: "simple", steps: 6, cfg: 1.0, seed: 0,
      control_after_generate: "fixed", width: 64, height: 64,
    }, { size: [420, 640] });
    const save = H.add("SaveImage", [1300, 40], { filename_prefix: "spatialscore/best_of_n" }, { size: [300, 360] });
    H.link(gen, "CLIP", encode, "clip");
    H.link(prompt, "STRING", encode, "text");
    H.link(gen, "MODEL", sampler, "model");
    H.link(encode, "CONDITIONING", sampler, "positive");
    H.link(gen, "VAE", sampler, "vae");
    H.link(loader, "scorer", sampler, "scorer");
    H.link(prompt, "STRING", sampler, "prompt");
    H.link(sampler, "images", save, "images");
    return { run: true, badgeNode: sampler.id };
  },
  // not an example: the Rerank badge check on an 8-image batch with latents and masks
  rerank_check: () => {
    const H = window.__ss;
    H.clear();
    const loader = H.add("SpatialScoreLoader", [40, 40], { scorer: "shapes", batch_size: 3 }, { width: 340 });
    const image = H.add("LoadImage", [40, 260], { image: "candidates.png" }, { size: [340, 380] });
    const latent = H.add("LoadLatent", [40, 680], { latent: "candidates.latent" }, { width: 340 });
    const rerank = H.add("SpatialScoreRerank", [420, 40], { prompt: "a red circle to the left of a blue square", top_k: 3 }, { size: [520, 700] });
    const score = H.add("SpatialScoreScore", [980, 40], { prompt: "a red circle to the left of a blue square" }, { size: [480, 700] });
    H.link(loader, "scorer", rerank, "scorer");
    H.link(loader, "scorer", score, "scorer");
    H.link(image, "IMAGE", rerank, "images");
    H.link(image, "MASK", rerank, "mask");
    H.link(latent, "LATENT", rerank, "latent");
    H.link(image, "IMAGE", score, "images");
    return { run: true, badgeNodes: [rerank.id, score.id] };
  },
};

async function build(page, name) {
  if (name in GRPO_GRAPHS) await page.evaluate(GRPO_HELPERS);
  const fromFile = GRPO_GRAPHS[name] ?? EVALUATE_GRAPHS[name];
  const meta = fromFile ? await page.evaluate(fromFile.graph, fromFile.arg()) : await page.evaluate(GRAPHS[name]);
  await page.evaluate(() => window.__ss.frame());
  await page.waitForTimeout(500);
  return meta;
}

// The previews load asynchronously after execution: wait until every node shows its images and has drawn badges.
async function waitForBadges(page, ids, timeout = 30000) {
  try {
    await page.waitForFunction((ids) => ids.every((id) => {
      const n = window.__ss.app.graph.getNodeById(id);
      const rows = n.spatialScoreRows?.length ?? 0;
      return rows > 0 && n.imgs?.length === rows && n.imgs.every((im) => im.complete) && n.spatialScoreBadgesDrawn === rows;
    }), ids, { timeout, polling: 250 });
  } catch {
    // reported as a failed check below
  }
}

async function badgeState(page, ids) {
  return await page.evaluate((ids) => ids.map((id) => {
    const n = window.__ss.app.graph.getNodeById(id);
    return { id, type: n.type, images: n.imgs?.length ?? 0, rows: n.spatialScoreRows?.length ?? 0, drawn: n.spatialScoreBadgesDrawn ?? 0 };
  }), ids);
}

async function canvasShot(page, path, quality) {
  const box = await page.evaluate(() => { const r = window.__ss.app.canvas.canvas.getBoundingClientRect(); return { x: r.x, y: r.y + 50, width: r.width, height: r.height - 50 }; });
  await page.screenshot({ path, clip: box, ...(quality ? { type: "jpeg", quality } : {}) });
}

async function buildWorkflows(url, outDir, apiDir) {
  mkdirSync(outDir, { recursive: true });
  mkdirSync(apiDir, { recursive: true });
  const report = {};
  const errors = [];
  const other = [];
  for (const name of ["spatialscore_score_images", "spatialscore_flux_best_of_n"]) {
    // a fresh page per graph: previews of the previous graph must not show through
    const session = await openComfy(url);
    const { page } = session;
    await page.evaluate(PAGE_HELPERS);
    const meta = await build(page, name);
    const { workflow, output } = await page.evaluate(async () => await window.__ss.app.graphToPrompt());
    if (meta.run) {
      await page.evaluate(async () => await window.__ss.run());
      await waitForBadges(page, [meta.badgeNode]);
      await page.waitForTimeout(300);
      report[name] = await badgeState(page, [meta.badgeNode]);
    }
    writeFileSync(join(outDir, `${name}.json`), JSON.stringify(workflow, null, 2) + "\n");
    writeFileSync(join(apiDir, `${name}.api.json`), JSON.stringify(output, null, 2) + "\n");
    await canvasShot(page, join(outDir, `${name}.jpg`), 82);
    errors.push(...session.errors);
    other.push(...session.other);
    await session.browser.close();
  }
  // the server's definitions of the node types the graphs use, for the offline converter test
  const info = await (await fetch(`${url}/object_info`)).json();
  const used = new Set();
  for (const name of ["spatialscore_score_images", "spatialscore_flux_best_of_n"]) {
    for (const n of JSON.parse(readFileSync(join(outDir, `${name}.json`), "utf8")).nodes) used.add(n.type);
  }
  const subset = Object.fromEntries([...used].filter((t) => t in info).sort().map((t) => [t, info[t]]));
  writeFileSync(join(apiDir, "object_info.json"), JSON.stringify(subset, null, 1) + "\n");
  console.log(JSON.stringify({ report, errors, frontend_errors: other }, null, 1));
  if (errors.length) process.exit(1);
}

// One example (the others untouched): its UI json, thumbnail and API form, and its node types added to the
// fixtures' object_info.json (entries already there are kept as they are). The graph is run first, for the badges.
async function buildOneWorkflow(url, name, outDir, apiDir) {
  const session = await openComfy(url);
  const { page } = session;
  await page.evaluate(PAGE_HELPERS);
  const meta = await build(page, name);
  const { workflow, output } = await page.evaluate(async () => await window.__ss.app.graphToPrompt());
  let report = null;
  if (meta.run !== false) {
    await page.evaluate(async (ms) => await window.__ss.run(ms), meta.runTimeoutMs ?? 300000);
    if (meta.badgeNode != null) {
      await waitForBadges(page, [meta.badgeNode]);
      await page.waitForTimeout(300);
      report = await badgeState(page, [meta.badgeNode]);
    }
    if (meta.chartNode != null) report = await page.evaluate(async (id) => {
      await new Promise((r) => setTimeout(r, 1000));
      const n = window.__ss.app.graph.getNodeById(id);
      return { id, type: n.type, points: n.spatialScorePoints?.length ?? 0, drawn: n.spatialScoreChartDrawn ?? 0,
        in_page: Boolean(n.spatialScoreChart?.isConnected) };
    }, meta.chartNode);
    if (meta.evaluateNode != null) report = await page.evaluate(async (id) => {
      await new Promise((r) => setTimeout(r, 1000));
      const n = window.__ss.app.graph.getNodeById(id);
      return { id, type: n.type, badge: n.spatialScoreEvaluate ?? null, drawn: n.spatialScoreEvaluateDrawn ?? 0 };
    }, meta.evaluateNode);
  }
  for (let i = 0; i < 3; i++) { await page.keyboard.press("Escape"); await page.waitForTimeout(400); } // a late welcome dialog
  // the minimap would cover the bottom right of the thumbnail (a user setting, saved in this throwaway base folder)
  await page.evaluate(async () => { try { await window.__ss.app.extensionManager.setting.set("Comfy.Minimap.Visible", false); } catch {} });
  await page.waitForTimeout(300);
  await page.evaluate(() => window.__ss.frame());
  await page.waitForTimeout(500);
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify(workflow, null, 2) + "\n");
  writeFileSync(join(apiDir, `${name}.api.json`), JSON.stringify(output, null, 2) + "\n");
  await canvasShot(page, join(outDir, `${name}.jpg`), 82);
  await session.browser.close();
  const info = await (await fetch(`${url}/object_info`)).json();
  const path = join(apiDir, "object_info.json");
  const subset = JSON.parse(readFileSync(path, "utf8"));
  for (const n of workflow.nodes) if (!(n.type in subset) && n.type in info) subset[n.type] = info[n.type];
  const sorted = Object.fromEntries(Object.keys(subset).sort().map((t) => [t, subset[t]]));
  writeFileSync(path, JSON.stringify(sorted, null, 1) + "\n");
  console.log(JSON.stringify({ report, errors: session.errors, frontend_errors: session.other }, null, 1));
  if (session.errors.length) process.exit(1);
}

async function badgeCheck(url, outDir) {
  const { browser, page, errors, other } = await openComfy(url);
  mkdirSync(outDir, { recursive: true });
  await page.evaluate(PAGE_HELPERS);
  const meta = await build(page, "rerank_check");
  await page.evaluate(async () => await window.__ss.run());
  await waitForBadges(page, meta.badgeNodes);
  await page.waitForTimeout(300);
  const state = await badgeState(page, meta.badgeNodes);
  await canvasShot(page, join(outDir, "badges_grid.png"));
  // one image at a time, as after a click on a preview image
  await page.evaluate((id) => { const n = window.__ss.app.graph.getNodeById(id); n.imageIndex = 0; window.__ss.app.canvas.setDirty(true, true); }, meta.badgeNodes[0]);
  await page.waitForTimeout(500);
  const single = await badgeState(page, [meta.badgeNodes[0]]);
  await canvasShot(page, join(outDir, "badges_single.png"));
  const report = { grid: state, single, errors, frontend_errors: other };
  writeFileSync(join(outDir, "badge_check.json"), JSON.stringify(report, null, 1));
  console.log(JSON.stringify(report, null, 1));
  await browser.close();
  const ok = state.every((s) => s.images > 0 && s.drawn === s.images && s.rows === s.images) && single[0].drawn === 1 && !errors.length;
  process.exit(ok ? 0 : 1);
}

// The GRPO chart and the score text, classic canvas then Vue nodes: both must be visible with their content.
async function grpoViewCheck(url, outDir) {
  mkdirSync(outDir, { recursive: true });
  const report = {};
  let ok = true;
  for (const vue of process.env.SPATIALSCORE_VIEW_MODES === "vue" ? [true] : [false, true]) {
    // a wide page: at 100% zoom (below) the whole graph is in view
    const session = await openComfy(url, { width: 2300, height: 1300 });
    const { page } = session;
    await page.evaluate(PAGE_HELPERS);
    // built on the classic canvas, then loaded as a saved workflow with the renderer chosen (the Vue layer renders
    // what a loaded graph holds)
    const ids = await page.evaluate(VIEW_CHECK_GRAPH, { loraName: `view_check_${vue ? "vue" : "classic"}_${Date.now()}` });
    await page.evaluate(async (vue) => {
      const app = window.comfyAPI.app.app;
      const workflow = app.graph.serialize();
      await app.extensionManager.setting.set("Comfy.VueNodes.Enabled", vue);
      await app.loadGraphData(workflow);
    }, vue);
    await page.waitForTimeout(2000);
    await page.evaluate(() => window.__ss.frame());
    await page.waitForTimeout(1500);
    await page.evaluate(async () => await window.__ss.run(600000));
    await page.waitForTimeout(2000);
    // 100% zoom: below about 80% the Vue renderer draws only its "essential" widgets (numbers, toggles, combos) and
    // leaves out every text, textarea and chart widget, the node's own prompt box included (its level of detail)
    await page.evaluate(() => {
      const app = window.comfyAPI.app.app;
      const xs = app.graph._nodes.map((n) => n.pos[0]);
      const ys = app.graph._nodes.map((n) => n.pos[1]);
      app.canvas.ds.scale = 1;
      app.canvas.ds.offset = [40 - Math.min(...xs), 100 - Math.min(...ys)];
      app.canvas.setDirty(true, true);
    });
    await page.waitForTimeout(1500);
    const state = await viewState(page, ids);
    const mode = vue ? "vue" : "classic";
    await page.screenshot({ path: join(outDir, `grpo_view_${mode}.png`) });
    for (const [what, id] of Object.entries(ids)) {
      await page.locator(`[data-node-id="${id}"]`).screenshot({ path: join(outDir, `grpo_view_${mode}_${what}.png`), timeout: 5000 }).catch(() => {});
    }
    state.errors = session.errors;
    report[mode] = state;
    ok &&= state.vue === vue && state.chart.visible && state.chart.mean_points === 3 && state.chart.band &&
      state.chart.status.startsWith("Saved models/loras/") && state.score_text.visible && state.score_text.lines >= 4 &&
      state.score_text.first.startsWith("warning (image 0): the prompt has words the shapes scorer does not know") &&
      state.badges.shown >= 1 && state.badges.flagged === 1 && (!vue || state.badges.first.includes("unknown words")) &&
      !session.errors.length;
    await session.browser.close();
  }
  writeFileSync(join(outDir, "grpo_view_check.json"), JSON.stringify(report, null, 1));
  console.log(JSON.stringify(report, null, 1));
  process.exit(ok ? 0 : 1);
}

const [cmd, url, a, b] = process.argv.slice(2);
if (cmd === "build-workflows") await buildWorkflows(url, a, b);
else if (cmd === "build-edit-workflow") await buildOneWorkflow(url, "spatialscore_edit_rerank", a, b);
else if (cmd === "build-one-workflow") await buildOneWorkflow(url, a, b, process.argv[6]);
else if (cmd === "grpo-view-check") await grpoViewCheck(url, a);
else if (cmd === "badge-check") await badgeCheck(url, a);
else { console.error("usage: comfyui_browser.mjs build-workflows <url> <workflows dir> <api dir> | badge-check <url> <out dir>"); process.exit(2); }

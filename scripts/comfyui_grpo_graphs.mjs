// The GRPO example graphs, built in the real frontend by scripts/comfyui_browser.mjs (build-one-workflow).
// Each graph function runs in the page (window.__ss helpers) and gets `arg` from its `arg()`, evaluated in Node.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
// The shapes example trains on the first 200 of the headless preset's 2,000 training prompts (none held out), so
// `python -m training.grpo --preset shapes --prompts.train_file <these 200>` runs the same experiment headless.
export const SHAPES_EXAMPLE_PROMPTS = 200;

function shapesPrompts() {
  const lines = readFileSync(join(ROOT, "training/grpo/configs/shapes_prompts.txt"), "utf8").split("\n");
  return lines.map((l) => l.trim()).filter((l) => l && !l.startsWith("#")).slice(0, SHAPES_EXAMPLE_PROMPTS).join("\n");
}

// Run in the page before a graph (page functions cannot share closures): installs window.__ssBeforeAfter, the shared
// tail of both graphs: the same prompt, seed and noise sampled by the base MODEL and by the trained one, decoded and
// saved side by side (the first half of the batch before, the second after).
export const GRPO_HELPERS = () => {
  window.__ssBeforeAfter = (H, { base, trained, clip, vae, prompt, latent, sampler, flux, negativeNode }) => {
    const [x, y] = [920, 340];
    const encode = H.add("CLIPTextEncode", [x, y], { text: prompt }, { size: [280, 110], title: "Before/after prompt" });
    H.link(clip, "CLIP", encode, "clip");
    let positive = encode;
    let negative = encode;
    if (flux) {
      positive = H.add("FluxGuidance", [x, y + 150], { guidance: 3.5 }, { width: 280 });
      H.link(encode, "CONDITIONING", positive, "conditioning");
      negative = H.add("ConditioningZeroOut", [x, y + 240], {}, { width: 280 });
      H.link(encode, "CONDITIONING", negative, "conditioning");
    }
    if (negativeNode) negative = negativeNode; // true CFG (Qwen-Image): the graph's own negative prompt
    const empty = H.add(latent.type, [x, y + (flux ? 310 : 150)], latent.widgets, { width: 280, title: latent.title });
    const decoded = [];
    for (const [i, [model, title]] of [[base, "before (base MODEL)"], [trained, "after (with the LoRA)"]].entries()) {
      const ks = H.add("KSampler", [x + 310, y + i * 300], sampler, { width: 270, title: `KSampler: ${title}` });
      H.link(model, "MODEL", ks, "model");
      H.link(positive, "CONDITIONING", ks, "positive");
      H.link(negative, "CONDITIONING", ks, "negative");
      H.link(empty, "LATENT", ks, "latent_image");
      const dec = H.add("VAEDecode", [x + 610, y + i * 300], {}, { width: 170 });
      H.link(ks, "LATENT", dec, "samples");
      H.link(vae, "VAE", dec, "vae");
      decoded.push(dec);
    }
    const batch = H.add("ImageBatch", [x + 610, y + 150], {}, { width: 170, title: "before | after" });
    H.link(decoded[0], "IMAGE", batch, "image1");
    H.link(decoded[1], "IMAGE", batch, "image2");
    const save = H.add("SaveImage", [x + 660, 40], { filename_prefix: "spatialscore/grpo_before_after" }, { size: [300, 260] });
    H.link(batch, "IMAGE", save, "images");
  };
};

export const GRPO_GRAPHS = {
  spatialscore_shapes_grpo: {
    arg: () => ({ prompts: shapesPrompts() }),
    graph: ({ prompts }) => {
      const H = window.__ss;
      H.clear();
      const note = H.add("MarkdownNote", [40, 40], {}, { size: [380, 420] });
      note.widgets[0].value = [
        "## Spatial GRPO in the graph, on a CPU",
        "Trains a LoRA for the **shapes generator** (a 64 px FLUX.1 that ships with the pack) against the built-in **shapes** scorer: each step samples a group of 24 pictures of one prompt, scores them, and reinforces the better-placed ones (top 6 against bottom 6).",
        "",
        "Runs as it is, in minutes on one CPU core. The chart on the node shows the reward (mean ± std), the kept samples' reward and the eval reward per step. Cancel stops within a step; the last complete LoRA stays in `models/loras/`; `resume` continues the run.",
        "",
        "Writes `models/loras/spatialscore_shapes_grpo.safetensors` (load it later with **LoraLoaderModelOnly**). The MODEL output already carries the LoRA: the right-hand KSamplers draw the same prompt, seed and noise before and after.",
        "",
        "The 200 prompts are the first of the headless preset's training prompts; `python -m training.grpo --preset shapes` runs the same recipe outside ComfyUI. (The empty latent is 128 px: ComfyUI assumes an 8x VAE, this one is 4x, so it samples 64 px pictures.)",
      ].join("\n");
      const gen = H.add("SpatialScoreShapesGeneratorLoader", [40, 500], { generator: "shapes" }, { width: 380 });
      const scorer = H.add("SpatialScoreLoader", [40, 640], { scorer: "shapes" }, { width: 380 });
      const grpo = H.add("SpatialScoreGRPOTrain", [460, 40], {
        prompts, steps: 40, group_size: 24, top_k: 6, learning_rate: 0.001, lora_rank: 32, lora_alpha: 32,
        sampling_steps: 6, noise_level: 0.7, width: 64, height: 64, seed: 0, control_after_generate: "fixed", kl_beta: 0, lora_name: "spatialscore_shapes_grpo",
        resume: false,
      }, { width: 420 });
      H.link(gen, "MODEL", grpo, "model");
      H.link(gen, "CLIP", grpo, "clip");
      H.link(gen, "VAE", grpo, "vae");
      H.link(scorer, "scorer", grpo, "scorer");
      const curve = H.add("PreviewImage", [920, 40], {}, { size: [300, 260], title: "Reward curve" });
      const samples = H.add("PreviewImage", [1250, 40], {}, { size: [300, 260], title: "Eval samples (trained)" });
      H.link(grpo, "reward_curve", curve, "images");
      H.link(grpo, "eval_samples", samples, "images");
      window.__ssBeforeAfter(H, {
        base: gen, trained: grpo, clip: gen, vae: gen, flux: false,
        prompt: "a red circle to the left of a blue square, and a yellow triangle above the blue square",
        latent: { type: "EmptyLatentImage", widgets: { width: 128, height: 128, batch_size: 4 }, title: "Empty latent (64 px pictures)" },
        sampler: { seed: 0, control_after_generate: "fixed", steps: 6, cfg: 1.0, sampler_name: "euler", scheduler: "simple", denoise: 1.0 },
      });
      // run once for the thumbnail: the chart, the curve and the before/after pictures filled in
      return { run: true, runTimeoutMs: 3600000, chartNode: grpo.id };
    },
  },
  spatialscore_flux_grpo: {
    arg: () => ({}),
    graph: () => {
      const H = window.__ss;
      H.clear();
      const note = H.add("MarkdownNote", [40, 40], {}, { size: [380, 440] });
      note.widgets[0].value = [
        "## Spatial GRPO of a FLUX.1-dev LoRA against SpatialScore",
        "Trains a LoRA on **your loaded Flux** (no diffusers copy): groups of samples per prompt, scored by SpatialScore, the better-placed ones reinforced. Then draws the same prompt, seed and noise before and after.",
        "",
        "**Download first** (none ship with the pack):",
        "- `flux1-dev.safetensors` (black-forest-labs/FLUX.1-dev) -> `models/diffusion_models/`",
        "- `clip_l.safetensors` and `t5xxl_fp16.safetensors` (comfyanonymous/flux_text_encoders) -> `models/text_encoders/`",
        "- `ae.safetensors` (the FLUX.1-dev VAE) -> `models/vae/`",
        "- a scorer folder -> `models/spatialscore/<name>/`: a trained SpatialScore (has `spatialscore.json`) or the plain **Qwen/Qwen2.5-VL-7B-Instruct** folder; press R and pick it in the loader (`SpatialScore-Qwen2.5-VL-7B` below is a placeholder).",
        "",
        "**Memory**: see docs/nodes.md (GRPO memory plan): an 80 GB card trains at 512 px; 48 GB needs the text encoders and the scorer off the GPU between uses (the loader's keep_loaded off).",
        "",
        "The LoRA goes to `models/loras/spatialscore_flux_grpo.safetensors`. The node's MODEL output already carries it. To reuse the file in another graph, use **LoraLoaderModelOnly** (below, muted: ComfyUI refuses a LoRA name that is not in `models/loras/` yet, so un-mute it once the file exists). `resume` continues an interrupted run.",
      ].join("\n");
      const unet = H.add("UNETLoader", [40, 520], { unet_name: "flux1-dev.safetensors" }, { width: 380 });
      const clip = H.add("DualCLIPLoader", [40, 630], { clip_name1: "clip_l.safetensors", clip_name2: "t5xxl_fp16.safetensors", type: "flux" }, { width: 380 });
      const vae = H.add("VAELoader", [40, 800], { vae_name: "ae.safetensors" }, { width: 380 });
      const scorer = H.add("SpatialScoreLoader", [40, 910], { scorer: "SpatialScore-Qwen2.5-VL-7B" }, { width: 380 });
      const prompts = [
        "a red apple to the left of a green cup",
        "a cat sitting below a wooden table, a lamp on top of the table",
        "a blue car to the right of a yellow house",
        "a dog in front of a bicycle, a tree behind the bicycle",
        "three books stacked on a chair, a plant to the left of the chair",
        "a clock above a door, a bench to the right of the door",
      ].join("\n");
      const grpo = H.add("SpatialScoreGRPOTrain", [460, 40], {
        prompts, steps: 300, group_size: 12, top_k: 3, learning_rate: 0.0003, lora_rank: 16, lora_alpha: 16,
        sampling_steps: 6, noise_level: 0.9, width: 512, height: 512, seed: 0, control_after_generate: "fixed", kl_beta: 0, lora_name: "spatialscore_flux_grpo",
        resume: false,
      }, { width: 420 });
      H.link(unet, "MODEL", grpo, "model");
      H.link(clip, "CLIP", grpo, "clip");
      H.link(vae, "VAE", grpo, "vae");
      H.link(scorer, "scorer", grpo, "scorer");
      const curve = H.add("PreviewImage", [920, 40], {}, { size: [300, 260], title: "Reward curve" });
      const samples = H.add("PreviewImage", [1250, 40], {}, { size: [300, 260], title: "Eval samples (trained)" });
      H.link(grpo, "reward_curve", curve, "images");
      H.link(grpo, "eval_samples", samples, "images");
      const reuse = H.add("LoraLoaderModelOnly", [460, 880], { lora_name: "spatialscore_flux_grpo.safetensors", strength_model: 1.0 },
        { width: 420, title: "Reuse the trained LoRA (un-mute once the file exists)" });
      H.link(unet, "MODEL", reuse, "model");
      reuse.mode = 2; // muted ("never"): not part of the prompt until the user un-mutes it
      window.__ssBeforeAfter(H, {
        base: unet, trained: grpo, clip, vae, flux: true,
        prompt: "a red apple to the left of a green cup, with a blue book lying on top of the cup",
        latent: { type: "EmptySD3LatentImage", widgets: { width: 512, height: 512, batch_size: 2 }, title: "Empty latent" },
        sampler: { seed: 0, control_after_generate: "fixed", steps: 20, cfg: 1.0, sampler_name: "euler", scheduler: "simple", denoise: 1.0 },
      });
      return { run: false };
    },
  },
  spatialscore_qwen_image_grpo: {
    arg: () => ({}),
    graph: () => {
      const H = window.__ss;
      H.clear();
      const note = H.add("MarkdownNote", [40, 40], {}, { size: [380, 460] });
      note.widgets[0].value = [
        "## Spatial GRPO of a Qwen-Image LoRA against SpatialScore",
        "Trains a LoRA on **your loaded Qwen-Image** (ComfyUI's own model, no diffusers copy) with true CFG against the negative prompt: groups of samples per prompt, scored by SpatialScore, the better-placed ones reinforced. Then draws the same prompt, seed and noise before and after.",
        "",
        "**Download first** (none ship with the pack; Comfy-Org/Qwen-Image_ComfyUI):",
        "- `qwen_image_fp8_e4m3fn.safetensors` -> `models/diffusion_models/`",
        "- `qwen_2.5_vl_7b_fp8_scaled.safetensors` -> `models/text_encoders/`",
        "- `qwen_image_vae.safetensors` -> `models/vae/`",
        "- a scorer folder -> `models/spatialscore/<name>/`: a trained SpatialScore (has `spatialscore.json`) or the plain **Qwen/Qwen2.5-VL-7B-Instruct** folder; press R and pick it in the loader (`SpatialScore-Qwen2.5-VL-7B` below is a placeholder).",
        "",
        "**Memory**: Qwen-Image is a 20B model; docs/memory_plan.md has the plan (one 80 GB card with the scorer off the GPU between uses, the loader's keep_loaded off; a 141 GB card holds both).",
        "",
        "The LoRA goes to `models/loras/spatialscore_qwen_image_grpo.safetensors` (diffusers keys: QwenImagePipeline.load_lora_weights reads it too). The node's MODEL output already carries it. To reuse the file in another graph, use **LoraLoaderModelOnly** (below, muted until the file exists). `resume` continues an interrupted run.",
      ].join("\n");
      const unet = H.add("UNETLoader", [40, 540], { unet_name: "qwen_image_fp8_e4m3fn.safetensors" }, { width: 380 });
      const clip = H.add("CLIPLoader", [40, 650], { clip_name: "qwen_2.5_vl_7b_fp8_scaled.safetensors", type: "qwen_image" }, { width: 380 });
      const vae = H.add("VAELoader", [40, 790], { vae_name: "qwen_image_vae.safetensors" }, { width: 380 });
      const scorer = H.add("SpatialScoreLoader", [40, 900], { scorer: "SpatialScore-Qwen2.5-VL-7B", keep_loaded: false }, { width: 380 });
      const negative = H.add("CLIPTextEncode", [460, 1010], { text: " " }, { size: [420, 120], title: "Negative prompt (true CFG)" });
      H.link(clip, "CLIP", negative, "clip");
      const prompts = [
        "a red apple to the left of a green cup",
        "a cat sitting below a wooden table, a lamp on top of the table",
        "a blue car to the right of a yellow house",
        "a dog in front of a bicycle, a tree behind the bicycle",
        "three books stacked on a chair, a plant to the left of the chair",
        "a clock above a door, a bench to the right of the door",
      ].join("\n");
      const grpo = H.add("SpatialScoreGRPOTrain", [460, 40], {
        prompts, steps: 300, group_size: 12, top_k: 3, learning_rate: 0.0003, lora_rank: 64, lora_alpha: 128,
        sampling_steps: 10, noise_level: 1.2, width: 512, height: 512, seed: 0, control_after_generate: "fixed", kl_beta: 0, lora_name: "spatialscore_qwen_image_grpo",
        resume: false,
      }, { width: 420 });
      H.link(unet, "MODEL", grpo, "model");
      H.link(clip, "CLIP", grpo, "clip");
      H.link(vae, "VAE", grpo, "vae");
      H.link(scorer, "scorer", grpo, "scorer");
      H.link(negative, "CONDITIONING", grpo, "negative");
      const curve = H.add("PreviewImage", [920, 40], {}, { size: [300, 260], title: "Reward curve" });
      const samples = H.add("PreviewImage", [1250, 40], {}, { size: [300, 260], title: "Eval samples (trained)" });
      H.link(grpo, "reward_curve", curve, "images");
      H.link(grpo, "eval_samples", samples, "images");
      const reuse = H.add("LoraLoaderModelOnly", [460, 880], { lora_name: "spatialscore_qwen_image_grpo.safetensors", strength_model: 1.0 },
        { width: 420, title: "Reuse the trained LoRA (un-mute once the file exists)" });
      H.link(unet, "MODEL", reuse, "model");
      reuse.mode = 2; // muted ("never"): not part of the prompt until the user un-mutes it
      window.__ssBeforeAfter(H, {
        base: unet, trained: grpo, clip, vae, flux: false, negativeNode: negative,
        prompt: "a red apple to the left of a green cup, with a blue book lying on top of the cup",
        latent: { type: "EmptySD3LatentImage", widgets: { width: 512, height: 512, batch_size: 2 }, title: "Empty latent" },
        sampler: { seed: 0, control_after_generate: "fixed", steps: 20, cfg: 4.0, sampler_name: "euler", scheduler: "simple", denoise: 1.0 },
      });
      return { run: false };
    },
  },
};

// ----- the view check: the reward chart and the score text render, on the classic canvas and in Vue nodes -----
// Runs a 3-step GRPO graph and a Score graph in the real frontend; `vue` turns on the Vue node renderer ("Nodes
// 2.0", setting Comfy.VueNodes.Enabled), which never calls onDrawForeground. Returns what it found per node.
export const VIEW_CHECK_GRAPH = ({ loraName }) => {
  const H = window.__ss;
  H.clear();
  const gen = H.add("SpatialScoreShapesGeneratorLoader", [40, 40], { generator: "shapes" }, { width: 320 });
  const scorer = H.add("SpatialScoreLoader", [40, 200], { scorer: "shapes" }, { width: 320 });
  const grpo = H.add("SpatialScoreGRPOTrain", [400, 40], {
    prompts: "a red circle to the left of a blue square\na green triangle above a yellow circle", steps: 3,
    group_size: 4, top_k: 1, learning_rate: 0.001, lora_rank: 4, lora_alpha: 4, sampling_steps: 3, noise_level: 0.7,
    width: 64, height: 64, seed: 0, control_after_generate: "fixed", kl_beta: 0, lora_name: loraName, resume: false,
  }, { width: 420 });
  H.link(gen, "MODEL", grpo, "model");
  H.link(gen, "CLIP", grpo, "clip");
  H.link(gen, "VAE", grpo, "vae");
  H.link(scorer, "scorer", grpo, "scorer");
  const curve = H.add("PreviewImage", [860, 40], {}, { size: [300, 260] });
  H.link(grpo, "reward_curve", curve, "images");
  const image = H.add("LoadImage", [860, 340], { image: "spatialscore_shapes_example.png" }, { size: [300, 360] });
  // one prompt a frame; the first is outside the shapes scorer's words, so its badge must say "unknown words"
  const prompt = ["a cat on a sofa", ...Array(3).fill("a red circle to the left of a blue square")].join("\n");
  const score = H.add("SpatialScoreScore", [1200, 40], { prompt }, { size: [360, 600] });
  H.link(scorer, "scorer", score, "scorer");
  H.link(image, "IMAGE", score, "images");
  return { grpo: grpo.id, score: score.id };
};

export async function viewState(page, ids) {
  return await page.evaluate(({ grpo, score }) => {
    const app = window.__ss.app;
    const vue = Boolean(app.extensionManager?.setting?.get("Comfy.VueNodes.Enabled"));
    const box = (el) => {
      const r = el?.getBoundingClientRect();
      return r ? { w: Math.round(r.width), h: Math.round(r.height), visible: r.width > 20 && r.height > 20 && el.isConnected } : { visible: false };
    };
    const grpoNode = app.graph.getNodeById(grpo);
    const scoreNode = app.graph.getNodeById(score);
    let chart, text;
    // the same elements in both renderers: the Vue renderer must hold them inside the node's own element
    const grpoEl = grpoNode.spatialScoreChart;
    const textEl = scoreNode.spatialScoreText;
    const inside = (el, id) => Boolean(document.querySelector(`[data-node-id="${id}"]`)?.contains(el));
    const mean = grpoEl?.querySelector("svg polyline.mean")?.getAttribute("points") ?? "";
    chart = { ...box(grpoEl), mean_points: mean ? mean.split(" ").length : 0, band: Boolean(grpoEl?.querySelector("polygon.band")),
      status: grpoEl?.querySelector(".spatialscore-grpo-status")?.textContent ?? "" };
    text = { ...box(textEl), value: textEl?.value ?? "" };
    if (vue) {
      chart.in_vue_node = inside(grpoEl, grpo);
      text.in_vue_node = inside(textEl, score);
      chart.visible &&= chart.in_vue_node;
      text.visible &&= text.in_vue_node;
    }
    // the Score node's badges: canvas drawing on the classic canvas, DOM elements over its <img>s in the Vue renderer
    const badgeEls = [...(document.querySelector(`[data-node-id="${score}"]`)?.querySelectorAll(".spatialscore-badge") ?? [])];
    const badges = vue ? { shown: badgeEls.filter((b) => b.getBoundingClientRect().width > 10).length, first: badgeEls[0]?.textContent ?? "" }
      : { shown: scoreNode.spatialScoreBadgesDrawn ?? 0 };
    badges.flagged = (scoreNode.spatialScoreRows ?? []).filter((r) => r.flag === "unknown words").length;
    const lines = text.value.split("\n").filter(Boolean);
    return { vue, chart, score_text: { ...text, value: undefined, lines: lines.length, first: lines[0] ?? "" }, badges };
  }, ids);
}

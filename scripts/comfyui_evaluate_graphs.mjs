// The Evaluate example graph, built in the real frontend by scripts/comfyui_browser.mjs (build-one-workflow
// spatialscore_evaluate_shapes). Each graph function runs in the page (window.__ss helpers) and gets `arg` from its
// `arg()`, evaluated in Node, as in comfyui_grpo_graphs.mjs.

// The example's prompts: the first of the 400 held-out ones (0 in the node: all 400, a few minutes on a CPU).
export const EVALUATE_EXAMPLE_PROMPTS = 100;

export const EVALUATE_GRAPHS = {
  spatialscore_evaluate_shapes: {
    arg: () => ({ numPrompts: EVALUATE_EXAMPLE_PROMPTS }),
    graph: ({ numPrompts }) => {
      const H = window.__ss;
      H.clear();
      const note = H.add("MarkdownNote", [40, 40], {}, { size: [380, 400] });
      note.widgets[0].value = [
        "## Did the LoRA learn space?",
        "**SpatialScore Evaluate** draws the same prompts from the same noise with the base MODEL and with a LoRA, scores every picture with SpatialScore and says how often the LoRA wins, per prompt, with a 95% interval (the badge under the node), per relation word and number of objects, and shows the prompts it gained and lost most on.",
        "",
        `Runs as it is on a CPU, in about a minute: the shipped **shapes generator** without and with the shipped **shapes-grpo** LoRA on the first ${numPrompts} of the shapes world's 400 held-out prompts (num_prompts 0: all), judged by the built-in **shapes** scorer. In the shapes world the pixel oracle's rates join the report.`,
        "",
        "For your Flux: the stock loaders, your LoRA in `lora_name` (or a LoraLoaderModelOnly MODEL into `model_with_lora`), a Qwen2.5-VL scorer and a public prompt set (geneval-position, t2i-compbench-spatial, unigenbench-layout, dpg). The report shows in the node and is written to `output/spatialscore_evaluate/`; `python -m training.grpo.evaluate` does the same headless.",
      ].join("\n");
      const gen = H.add("SpatialScoreShapesGeneratorLoader", [40, 480], { generator: "shapes" }, { width: 380 });
      const scorer = H.add("SpatialScoreLoader", [40, 620], { scorer: "shapes" }, { width: 380 });
      const evaluate = H.add("SpatialScoreEvaluate", [470, 120], {
        prompt_set: "shapes-heldout", custom_prompts: "", num_prompts: numPrompts, images_per_prompt: 1, seed: 0,
        steps: 6, guidance: 0, width: 64, height: 64, lora_name: "shapes-grpo",
      }, { width: 400 });
      H.link(gen, "MODEL", evaluate, "model");
      H.link(gen, "CLIP", evaluate, "clip");
      H.link(gen, "VAE", evaluate, "vae");
      H.link(scorer, "scorer", evaluate, "scorer");
      // the report is also the node's own text (and output/spatialscore_evaluate/eval_N/report.md)
      const save = H.add("SaveImage", [910, 120], { filename_prefix: "spatialscore/evaluate_gains_losses" }, { size: [460, 330], title: "Largest gains and losses (base above, LoRA below)" });
      H.link(evaluate, "gains_losses", save, "images");
      // run once for the thumbnail: the badge, the report and the gains/losses grid filled in
      return { run: true, runTimeoutMs: 1800000, evaluateNode: evaluate.id };
    },
  },
};

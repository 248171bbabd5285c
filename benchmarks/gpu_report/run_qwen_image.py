"""grpo-qwen-image, in its own process: GRPO steps of one group each with the shipped qwen_image_spatial preset.

At --shape full: the dry run's own full-size Qwen-Image pipeline
(benchmarks.dryrun.qwen_image.build_qwen_image_pipeline: QwenImageTransformer2DModel() at its published 20.4 B
parameters, about 41 GB in bf16, AutoencoderKLQwenImage(), and the text encoder as the dry run has it: Qwen2.5-VL-7B's
shape, vision tower included, with the tiny tokenizer and every prompt encoded at 128 text tokens, since the real
tokenizer is not here), built at random in bf16 straight on the GPU (the
transformer's Linear layers re-initialised at std 0.02, as bench_grpo does for Flux, so 60 random blocks stay finite in
bf16). QwenImagePolicy wraps it as the dry run does (the text encoder offloaded to the CPU at once), then the dry
run's SpatialScore-7B is built on the GPU, and the real trainer runs. One override makes it the dry run's
configuration for one group: one prompt a step (the preset's 8 groups a step would take 8x as long for the same
per-group figures). The first step warms up; the second is timed. The scorer leaves the GPU after each reward phase
(the preset's reward.keep_loaded = false), so the peak is the dry run's "text encoders offloaded, scorer offloaded".

At --shape mini: the tiny_qwen_image preset (training/common/tiny_qwen_image.py's pipeline and the tiny scorer, built
offline and loaded back by the trainer), one prompt a step, on the CPU.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from .predictions import GRPO_TEXT_TOKENS

# shape -> (preset, GRPO steps: the first warms up, overrides on top of the preset)
SHAPES = {"full": ("qwen_image_spatial", 2, {"prompts.per_step": 1}),
          "mini": ("tiny_qwen_image", 2, {"prompts.per_step": 1})}


def build_full(config, device, record, shapes: tuple[str, str] = ("qwen-image", "7b")):
    """The dry run's full-size pipeline and scorer on `device` with random bf16 weights; the policy and the scorer.
    (`shapes`: the dry run's pipeline and scorer shapes; "tiny-qwen-image" and "tiny" check this code on a CPU.)"""
    import torch

    from benchmarks.dryrun.qwen_image import build_qwen_image_pipeline
    from benchmarks.dryrun.score import build_scorer_model
    from training.grpo.qwen_image_policy import QwenImagePolicy
    from training.reward.scorer import Scorer

    started = time.perf_counter()
    with torch.device(device):
        pipeline = build_qwen_image_pipeline(shapes[0], fake=False, dtype=torch.bfloat16,
                                             text_tokens=GRPO_TEXT_TOKENS)
        for module in pipeline.transformer.modules():
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
    encode = pipeline.encode_prompt  # the dry run's fixed-length encoding makes its ids on the default device

    def encode_prompt(*args, **kwargs):
        with torch.device(pipeline.text_encoder.device):
            return encode(*args, **kwargs)

    pipeline.encode_prompt = encode_prompt
    lo, m = config.lora, config.model
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # the LoRA in the base's dtype, as the dry run builds it
    try:
        policy = QwenImagePolicy(pipeline, device, lora_rank=lo.rank, lora_alpha=lo.alpha, lora_targets=lo.targets,
                                 seed=config.train.seed, gradient_checkpointing=m.gradient_checkpointing,
                                 offload_text_encoders=m.offload_text_encoders, vae_batch_size=m.vae_batch_size,
                                 negative_prompt=config.sample.negative_prompt, max_sequence_length=GRPO_TEXT_TOKENS,
                                 weight_dtype=m.weight_dtype)  # fmt: skip
    finally:
        torch.set_default_dtype(previous)
    with torch.device(device):
        scorer = Scorer(build_scorer_model(shapes[1], fake=False, px=config.sample.height),
                        batch_size=config.reward.batch_size)
    if device.type == "cuda":
        torch.cuda.synchronize()
    params = sum(p.numel() for p in pipeline.transformer.parameters())
    record.info("build_s", time.perf_counter() - started)
    record.info("models", f"Qwen-Image transformer {params / 1e9:.1f} B parameters (LoRA included), bf16, "
                          f"random, on {device}; text encoder: the dry run's Qwen2.5-VL-7B shape with the tiny "
                          f"tokenizer, {GRPO_TEXT_TOKENS} tokens a prompt, offloaded; SpatialScore-7B random")
    return policy, scorer


def run(shape: str, record) -> None:
    import torch

    from training.grpo.config import load_config
    from training.grpo.trainer import train

    preset, steps, extra = SHAPES[shape]
    cuda = torch.cuda.is_available()
    if shape == "full" and not cuda:
        raise SystemExit("--shape full needs a CUDA GPU (about 60 GB: 40 GB transformer, 16 GB scorer, training)")
    if not cuda:
        torch.set_num_threads(1)  # toy sizes: one thread is the fastest on a shared CPU
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"train.steps": steps, "prompts.num_eval": 0, "output.checkpoint_every": 0,
                     "output.dir": str(Path(tmp) / "run"), **extra}
        if shape == "full":
            # the paths are never read: the models are built here and handed to the trainer
            overrides.update({"model.path": "@tiny_qwen_image", "reward.path": "@tiny"})
            config = load_config(preset=preset, overrides=overrides)
            policy, scorer = build_full(config, torch.device("cuda"), record)
            torch.cuda.reset_peak_memory_stats()
        else:
            from training.grpo.tiny import materialize_tiny_models

            config = materialize_tiny_models(load_config(preset=preset, overrides=overrides))
            policy = scorer = None
        wall = time.perf_counter()
        result = train(config, policy=policy, scorer=scorer)
        record.info("run_wall_s", time.perf_counter() - wall)
    timed = result.records[1:] if len(result.records) > 1 else result.records  # step 1 warms up
    phases = {k: sorted(r[k] for r in timed)[len(timed) // 2] for k in ("time_sample", "time_reward", "time_train")}
    record.measured("s_group", sum(phases.values()))  # one group a step
    for phase, key in (("sampling", "time_sample"), ("reward", "time_reward"), ("training", "time_train")):
        record.measured(f"s_{phase}", phases[key])
    if cuda:
        record.measured("peak_gib", torch.cuda.max_memory_allocated() / 2**30)
    record.info("config", {"preset": preset, "group_size": config.sample.group_size,
                           "num_steps": config.sample.num_steps, "px": config.sample.height,
                           "top_k": config.train.top_k, "lora_rank": config.lora.rank,
                           "train_batch": config.train.batch_size, "steps_timed": len(timed)})

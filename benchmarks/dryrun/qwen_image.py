"""Qwen-Image for the GRPO dry run: the pipeline at its published shapes on fake tensors, and the multi-card plans.

`python -m benchmarks.dryrun grpo --shape qwen-image` runs grpo.py's step (the trainer's own pieces, in its order)
with `QwenImagePolicy` on this pipeline and the `qwen_image_spatial` preset; this module adds what Flux's dry run
does not have: the 141 GB card, and 8 cards with the policy sharded by FSDP (computed from the measured phases).

Shapes: diffusers' `QwenImageTransformer2DModel()` defaults are Qwen-Image's (60 blocks, 24 heads x 128,
joint_attention_dim 3584, in_channels 64, RoPE axes 16/56/56: 20.4 B parameters); `AutoencoderKLQwenImage()`
defaults are its VAE (base 96, z 16, 8x); the text encoder is Qwen2.5-VL-7B (fake.py's "7b", vision tower
included, as the pipeline loads it).
"""

from __future__ import annotations

import torch

from .fake import build_qwen, building, to_fake
from .measure import CONTEXT_GIB, FRAGMENTATION, GIB, Phase

TEMPLATE_TOKENS = 34  # QwenImagePipeline.prompt_template_encode_start_idx: the template tokens dropped
NUM_BLOCKS = {"qwen-image": 60, "tiny-qwen-image": 2}  # transformer blocks: FSDP units
H200_GIB = 140.4  # an H200's 141 GB as the driver reports it (143771 MiB)


def build_qwen_image_pipeline(shape: str, fake: bool, dtype: torch.dtype = torch.bfloat16, seed: int = 0,
                              text_tokens: int = 128):
    """A QwenImagePipeline: "qwen-image" (published shapes, fake tensors) or "tiny-qwen-image" (real or fake)."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )

    from training.common.tiny_qwen_image import QWEN_IMAGE_SCHEDULER, build_tiny_qwen_image_pipeline

    if shape == "tiny-qwen-image":
        with building(False, dtype):
            pipe = build_tiny_qwen_image_pipeline(seed)
        if fake:
            for module in (pipe.transformer, pipe.vae, pipe.text_encoder):
                to_fake(module)
    else:
        vlm, processor = build_qwen("7b", fake, 512, dtype, seed)
        with torch.random.fork_rng(devices=[]), building(fake, dtype):
            torch.manual_seed(seed)
            transformer = QwenImageTransformer2DModel().eval()
            vae = AutoencoderKLQwenImage().eval()
        pipe = QwenImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(**QWEN_IMAGE_SCHEDULER), vae=vae,
                                 text_encoder=vlm, tokenizer=processor.tokenizer, transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    _fixed_length_encoding(pipe, text_tokens)
    return pipe


def _fixed_length_encoding(pipe, text_tokens: int) -> None:
    """encode_prompt as the pipeline's (template + prompt through the text encoder, the first 34 tokens dropped),
    with every prompt `text_tokens` long: the real tokenizer is not here, and the pipeline's masked split of the
    hidden states has a data-dependent shape fake tensors cannot take."""

    def encode_prompt(prompt, device=None, max_sequence_length=1024, **_):
        prompts = [prompt] if isinstance(prompt, str) else prompt
        ids = torch.full((len(prompts), TEMPLATE_TOKENS + text_tokens), 100, dtype=torch.long)
        hidden = pipe.text_encoder(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
        return hidden.hidden_states[-1][:, TEMPLATE_TOKENS:], None

    pipe.encode_prompt = encode_prompt


def card_limit(usable_gib: float) -> float:
    """The highest phase peak a card holds (measure.card_limit_gib's rule for any card size)."""
    return usable_gib * FRAGMENTATION - CONTEXT_GIB


def fsdp_phases(phases: list[Phase], transformer_bytes: int, lora_bytes: int, num_blocks: int,
                world: int) -> list[Phase]:
    """Per-card phases with the transformer's frozen base fully sharded over `world` cards (training/grpo/sharding.py).

    FSDP2 with one unit per transformer block: each card keeps 1/world of every frozen weight and gathers a block's
    full weights just before using it, with one block prefetched: two gathered blocks on top of the shard. The LoRA,
    its gradients and AdamW state stay replicated (sharding.py leaves them out), so they are unchanged; so are the
    activations (each card runs its own micro-batches) and the other modules (VAE, text encoder, scorer: replicated).
    Each card runs 1/world of the step's work: the predicted time divides by `world` (communication not counted).
    """
    base = transformer_bytes - lora_bytes
    saved_params = base * (1 - 1 / world) - 2 * base / num_blocks
    out = []
    for p in phases:
        by_kind = dict(p.by_kind)
        if "transformer" in p.resident:
            by_kind["Parameter"] = by_kind.get("Parameter", 0) - saved_params
        out.append(Phase(p.name, by_kind, p.flops, p.repeat / world, p.wall_s, p.note, p.resident))
    return out


def plan_lines(variants: dict[str, list[Phase]], weights: dict[str, int], num_blocks: int, groups: int,
               utilisation: float) -> tuple[list[str], dict]:
    """The three plans of docs/memory_plan.md's Qwen-Image section: one 80 GB card, one 141 GB card, 8 x 80 GB."""
    from .measure import CARDS

    lines, out = ["", "plans (peak GiB per card; limit = 95% of the card less 1 GiB):"], {}
    single = variants["text encoders offloaded, scorer offloaded"]
    lora_bytes = max(p.by_kind.get("Gradient", 0) for p in single)  # the LoRA's gradients: one per LoRA weight
    rows = [("1 x 80 GB, text encoder + scorer offloaded", single, CARDS["80"], 1),
            ("1 x 141 GB, text encoder + scorer offloaded", single, H200_GIB, 1),
            ("1 x 141 GB, text encoder offloaded, scorer resident",
             variants["text encoders offloaded, scorer resident"], H200_GIB, 1)]
    for world in (8,):
        rows.append((f"{world} x 80 GB FSDP, text encoder + scorer offloaded",
                     fsdp_phases(single, weights["transformer"], lora_bytes, num_blocks, world), CARDS["80"], world))
        rows.append((f"{world} x 80 GB FSDP, text encoder offloaded, scorer resident",
                     fsdp_phases(variants["text encoders offloaded, scorer resident"], weights["transformer"],
                                 lora_bytes, num_blocks, world), CARDS["80"], world))
    for name, phases, usable, world in rows:
        peak = max(p.peak for p in phases) / GIB
        worst = max(phases, key=lambda p: p.peak).name
        limit = card_limit(usable)
        seconds = sum(p.predicted_s(utilisation) for p in phases)
        verdict = "fits" if peak <= limit else f"does not fit ({worst} over the {limit:.1f} GiB limit)"
        lines.append(f"  {name:<54} peak {peak:7.2f} ({worst}); {verdict}; predicted {seconds:7.1f} s a step, "
                     f"{seconds / groups:6.1f} s a group")
        out[name] = {"peak_gib": round(peak, 3), "peak_phase": worst, "limit_gib": round(limit, 2),
                     "fits": peak <= limit, "predicted_step_s": round(seconds, 2), "cards": world,
                     "predicted_group_s": round(seconds / groups, 2),
                     "phases": {p.name: round(p.peak / GIB, 3) for p in phases}}
    tflop = sum(p.tflop() for p in single)
    lines.append(f"  TFLOP a step {tflop:.0f}, a group {tflop / groups:.0f} ({groups} groups a step)")
    return lines, {"plans": out, "tflop_per_group": round(tflop / groups, 1)}

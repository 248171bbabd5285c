"""A tiny random QwenImagePipeline built in code, offline and deterministically.

Qwen-Image's architecture at toy size: a 2-layer Qwen2.5-VL text encoder (the tiny one the reward tests build, with
its tokenizer written out in code), the Wan-style `AutoencoderKLQwenImage` with the real 16 latent channels and 8x
downsampling but 16 base channels, and a 2-block `QwenImageTransformer2DModel` without guidance embedding (true CFG).
The scheduler is Qwen-Image's published one (dynamic exponential shift 0.5 -> 0.9 over 256 -> 8192 tokens, shift
terminal 0.02), so the tiny run exercises the schedule, the prompt template, the masks and CFG of the 20B model.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

LATENT_CHANNELS = 16  # as Qwen-Image (and ComfyUI's Wan21 latent format, whose mean/std have 16 entries)
TEXT_HIDDEN = 32

# Qwen/Qwen-Image scheduler/scheduler_config.json (the values the issue lists; diffusers' QwenImagePipeline reads
# base/max_image_seq_len and base/max_shift from it to compute mu)
QWEN_IMAGE_SCHEDULER = {
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 0.9,
    "base_image_seq_len": 256,
    "max_image_seq_len": 8192,
    "shift_terminal": 0.02,
    "time_shift_type": "exponential",
}


def build_tiny_qwen_image_transformer(seed: int = 0):
    from diffusers import QwenImageTransformer2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # axes_dims_rope must sum to attention_head_dim; in_channels = 4 x latent channels (2x2 packing)
        transformer = QwenImageTransformer2DModel(
            patch_size=2, in_channels=4 * LATENT_CHANNELS, out_channels=LATENT_CHANNELS, num_layers=2,
            attention_head_dim=16, num_attention_heads=2, joint_attention_dim=TEXT_HIDDEN, guidance_embeds=False,
            axes_dims_rope=(4, 6, 6),
        )  # fmt: skip
    return transformer.eval()


def build_tiny_qwen_image_pipeline(seed: int = 0):
    """A random tiny `diffusers.QwenImagePipeline`; the same seed gives the same weights. All modules in eval mode."""
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImagePipeline
    from transformers import Qwen2_5_VLForConditionalGeneration

    from .tiny_qwen import SPECIAL_TOKENS, build_tiny_tokenizer, tiny_qwen25vl_config

    tokenizer = build_tiny_tokenizer()
    token_ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = tiny_qwen25vl_config(len(tokenizer), token_ids, text_hidden=TEXT_HIDDEN, heads=2, kv_heads=2,
                                  vision_hidden=16, rope_theta=1e6)  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = Qwen2_5_VLForConditionalGeneration(config)
        # three temporal/spatial downsamplings like the real VAE: pixels -> latents is the real factor 8
        vae = AutoencoderKLQwenImage(base_dim=16, z_dim=LATENT_CHANNELS, dim_mult=[1, 2, 4, 4], num_res_blocks=1,
                                     temperal_downsample=[False, True, True])  # fmt: skip
    transformer = build_tiny_qwen_image_transformer(seed + 1)
    for module in (text_encoder, vae):
        module.eval()
    return QwenImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**QWEN_IMAGE_SCHEDULER),
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
    )  # fmt: skip


def save_tiny_qwen_image_pipeline(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a tiny folder loadable with `QwenImagePipeline.from_pretrained(path, local_files_only=True)`."""
    path = Path(path)
    pipe = build_tiny_qwen_image_pipeline(seed)
    path.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(path, safe_serialization=True)
    return path

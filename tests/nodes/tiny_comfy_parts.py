"""Stand-ins for a tiny model's CLIP and VAE as ComfyUI's nodes hand them over, with no import of this project (so a
test-only custom node in a real ComfyUI server loads this file by path: there `nodes` is ComfyUI's own module)."""

from __future__ import annotations

import zlib

import torch


class FixedClip:
    """tokenize / encode_from_tokens as ComfyUI's CLIP: a fixed random encoding per prompt (`length(prompt)` tokens),
    with a pooled vector when `pooled` > 0 (SD3) and none otherwise (Chroma's T5)."""

    def __init__(self, width: int, pooled: int = 0, length=lambda prompt: 7):
        self.width, self.pooled, self.length = width, pooled, length

    def tokenize(self, text):
        return text

    def encode_from_tokens(self, text, return_pooled=False, return_dict=False):
        generator = torch.Generator().manual_seed(zlib.crc32(text.encode()))
        cond = torch.randn(1, self.length(text), self.width, generator=generator)
        pooled = torch.randn(1, self.pooled, generator=generator) if self.pooled else None
        return {"cond": cond, "pooled_output": pooled}


class LatentVae:
    """decode as ComfyUI's VAE (raw latents [B, C, h, w] -> IMAGE [B, H, W, 3] in 0..1) by upsampling 3 channels."""

    downscale_ratio = 8
    latent_channels = 16
    vae_dtype = torch.float32  # what the nodes' memory check reads of ComfyUI's VAE, with memory_used_decode

    def memory_used_decode(self, shape, dtype):
        """ComfyUI's generic VAE estimate (comfy/sd.py's default): 2178 x latent cells x 64 x the dtype's bytes."""
        return 2178 * shape[2] * shape[3] * 64 * torch.finfo(dtype).bits // 8

    def decode(self, raw):
        pixels = torch.nn.functional.interpolate(raw[:, :3].float(), scale_factor=self.downscale_ratio)
        return torch.sigmoid(pixels).permute(0, 2, 3, 1)

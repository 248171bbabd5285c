"""A tiny Qwen-Image as ComfyUI MODEL / CLIP / VAE, for the tests of the ComfyUI Qwen-Image backend.

MODEL: ComfyUI's own `model_base.QwenImage` (comfy/ldm/qwen_image), configured from a diffusers
QwenImageTransformer2DModel's config and loaded with its weights (ComfyUI keeps the diffusers names), in a
ModelPatcher. ComfyUI's stock loaders cannot load it: model detection reads only in_channels and the block count
and keeps the 20B model's widths. CLIP and VAE are stand-ins answering what the GRPO policy asks of them through the
diffusers pipeline: ComfyUI's Qwen2.5-VL-7B text encoder has a fixed config, and its Wan VAE fixed widths.
"""

from __future__ import annotations

import torch


def comfy_qwen_image_model(transformer):
    """ComfyUI's QwenImage MODEL with `transformer`'s weights (anything with .config and .state_dict())."""
    import comfy.model_patcher
    import comfy.supported_models

    c = transformer.config
    unet = {"image_model": "qwen_image", "in_channels": c.in_channels, "out_channels": c.out_channels,
            "num_layers": c.num_layers, "attention_head_dim": c.attention_head_dim,
            "num_attention_heads": c.num_attention_heads, "joint_attention_dim": c.joint_attention_dim,
            "axes_dims_rope": tuple(c.axes_dims_rope), "patch_size": c.patch_size}  # fmt: skip
    model_config = comfy.supported_models.QwenImage(unet)
    model_config.set_inference_dtype(torch.float32, None)
    sd = {k: v.detach().clone() for k, v in transformer.state_dict().items()}
    model = model_config.get_model(sd, "", device=torch.device("cpu"))
    model.load_model_weights(sd, "")
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))


class PipelineClip:
    """tokenize / encode_from_tokens as ComfyUI's CLIP, answered by the diffusers pipeline's encode_prompt."""

    def __init__(self, pipeline):
        self.pipeline = pipeline

    def tokenize(self, text):
        return text

    def encode_from_tokens(self, text, return_pooled=False, return_dict=False):
        with torch.no_grad():
            embeds, _ = self.pipeline.encode_prompt(prompt=[text], device="cpu")
        return {"cond": embeds, "pooled_output": None}


class PipelineVae:
    """decode as ComfyUI's Wan VAE: raw latents [B, C, 1, h, w] -> IMAGE frames [B, 1, H, W, 3] in 0..1."""

    downscale_ratio = 8
    latent_channels = 16
    vae_dtype = torch.float32  # what the nodes' memory check reads of ComfyUI's VAE, with first_stage_model

    def __init__(self, pipeline):
        self.vae = pipeline.vae
        # ComfyUI's WanVAE keeps its decoder's base width and multipliers as the diffusers config does
        config = pipeline.vae.config
        decoder = type("Decoder", (), {"dim": config.base_dim, "dim_mult": list(config.dim_mult)})()
        self.first_stage_model = type("WanVAE", (), {"decoder": decoder})()

    def decode(self, raw):
        with torch.no_grad():
            pixels = self.vae.decode(raw.to(self.vae.dtype), return_dict=False)[0]  # [B, 3, 1, H, W]
        return (pixels.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1)

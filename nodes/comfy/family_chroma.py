"""Chroma (ComfyUI `model_base.Chroma`, comfy/ldm/chroma) as a GRPO policy.

Chroma is FLUX.1-schnell's blocks with the per-block modulation layers replaced by one "distilled guidance" approximator
(its input: the timestep, a guidance value ComfyUI and diffusers both leave at 0, and the modulation index), no pooled
CLIP vector and one T5 text encoder. So:
- LoRA layout: Flux's (ComfyUI's fused qkv / linear1 rows, `comfy.utils.flux_to_diffusers`, the map comfy/lora.py
  loads Chroma LoRAs with), and Flux's default targets; the diffusers names are ChromaTransformer2DModel's.
- conditioning: ComfyUI's Chroma text encoder does not pad (each prompt its own T5 length, ending in </s>) and the
  model takes no text mask, so prompts of different lengths run as separate forwards, unpadded, as the Qwen-Image
  family does (family_qwen_image.ComfyQwenImagePolicy's length grouping, reused).
- true CFG against the negative conditioning, plain neg + g (cond - neg), as diffusers' ChromaPipeline (negative
  prompt "" by default), in sampling and in the recomputed log-probs.
- with gradients, every LayerNorm of the blocks normalises a copy of its input (policy.norm_input_copies says why:
  Chroma's blocks add their residuals in place into the tensors their norms saved).
"""

from __future__ import annotations

import torch

from .family_qwen_image import ComfyQwenImagePolicy
from .family_sd3 import plain_cfg
from .policy import ComfyFlowPolicy, lora_layout

CHROMA_NEGATIVE_PROMPT = ""  # ChromaPipeline: `negative_prompt or ""`


class ComfyChromaPolicy(ComfyQwenImagePolicy):
    """A ComfyUI Chroma MODEL, its CLIP (T5-XXL) and VAE (FLUX.1's) behind the `FlowPolicy` interface."""

    copy_norm_inputs = True

    def __init__(self, model, clip, vae, *, negative=None, negative_prompt: str = CHROMA_NEGATIVE_PROMPT, **kwargs):
        super().__init__(model, clip, vae, negative=negative, negative_prompt=negative_prompt, **kwargs)

    def _lora_layout(self, unet_config: dict, shapes: dict, targets: list[str]) -> dict[str, list]:
        return lora_layout(unet_config, shapes, targets, family="Chroma")

    def _call(self, x: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor, options: dict) -> torch.Tensor:
        # guidance 0: what model_base.Chroma passes when the conditioning has none, and what diffusers always passes
        guidance = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        return self.base.diffusion_model(x, timestep, context=context, guidance=guidance, transformer_options=options)

    def _blocks(self) -> list:
        return [*self.base.diffusion_model.double_blocks, *self.base.diffusion_model.single_blocks]

    def _combine(self, cond: torch.Tensor, uncond: torch.Tensor, guidance: float) -> torch.Tensor:
        return plain_cfg(cond, uncond, guidance)


    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return ComfyFlowPolicy.decode(self, latents)

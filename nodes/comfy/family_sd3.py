"""SD3 / SD3.5 (ComfyUI `model_base.SD3`, the MMDiT of comfy/ldm/modules/diffusionmodules/mmdit.py) as a GRPO policy.

What differs from Flux (the adapters, placement, prompt cache, schedule, noise and export are ComfyFlowPolicy's):
- LoRA layout: ComfyUI's MMDiT fuses each stream's q, k, v into one `qkv` Linear (x_block / context_block of
  `joint_blocks.N`); the diffusers modules are SD3Transformer2DModel's `transformer_blocks.N.attn.to_q`, ... The row
  map is ComfyUI's own `comfy.utils.mmdit_to_diffusers`, the map comfy/lora.py reads diffusers LoRA files with, so the
  export loads back onto exactly the rows that were trained.
- conditioning: the CLIP-L + CLIP-G + T5 context [L, 4096] and the pooled CLIP-L + CLIP-G vector [2048] (what
  ComfyUI's SD3 CLIP returns as cond and pooled_output); the timestep is ComfyUI's (sigma * 1000, ModelSamplingDiscrete
  Flow with shift 3).
- no guidance embedding: true CFG against the negative conditioning, plain neg + g (cond - neg), as diffusers'
  StableDiffusion3Pipeline (no rescale, no skip-layer guidance), in sampling and in the recomputed log-probs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .policy import ComfyFlowPolicy, checkpointing, lora_layout

SD3_LORA_TARGETS = [
    # every JointTransformerBlock (transformer_blocks.N.*): joint attention of the image and text streams and both
    # streams' feed-forward (the last block has no text output: no to_add_out, no ff_context there)
    "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0",
    "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out",
    "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2",
]  # fmt: skip
SD3_NEGATIVE_PROMPT = ""  # StableDiffusion3Pipeline encodes "" when no negative prompt is given


@dataclass
class PooledCfgEmbeds:
    """Conditioning with a pooled vector, the prompts' and the negative prompt's (one row, shared by the batch)."""

    prompt_embeds: torch.Tensor  # [N, L, D]
    pooled: torch.Tensor  # [N, P]
    negative_embeds: torch.Tensor  # [1, L_neg, D]
    negative_pooled: torch.Tensor  # [1, P]

    def __len__(self) -> int:
        return self.prompt_embeds.shape[0]

    def select(self, index) -> PooledCfgEmbeds:
        index = torch.as_tensor(index, dtype=torch.long, device=self.prompt_embeds.device)
        return PooledCfgEmbeds(self.prompt_embeds.index_select(0, index), self.pooled.index_select(0, index),
                               self.negative_embeds, self.negative_pooled)  # fmt: skip

    def to(self, device) -> PooledCfgEmbeds:
        return PooledCfgEmbeds(self.prompt_embeds.to(device), self.pooled.to(device), self.negative_embeds.to(device),
                               self.negative_pooled.to(device))  # fmt: skip

    def clone(self) -> PooledCfgEmbeds:
        return PooledCfgEmbeds(self.prompt_embeds.clone(), self.pooled.clone(), self.negative_embeds.clone(),
                               self.negative_pooled.clone())  # fmt: skip


def plain_cfg(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """True CFG as StableDiffusion3Pipeline and ChromaPipeline combine it: neg + g (cond - neg)."""
    return uncond + scale * (cond - uncond)


def sd3_layout(unet_config: dict, shapes: dict, targets: list[str]) -> dict[str, list]:
    import comfy.utils

    return lora_layout(unet_config, shapes, targets, key_map=comfy.utils.mmdit_to_diffusers, family="SD3")


def _pooled_cond(conditioning) -> tuple[torch.Tensor, torch.Tensor]:
    """ComfyUI CONDITIONING [[cond [1, L, D], {"pooled_output": [1, P]}], ...] -> (cond [L, D], pooled [P])."""
    cond, extra = conditioning[0][0], conditioning[0][1]
    pooled = extra.get("pooled_output")
    if pooled is None:
        raise ValueError("the negative CONDITIONING has no pooled_output: SD3 needs the CLIP-L/G pooled vector (use "
                         "CLIPTextEncode with the SD3 CLIP, not ConditioningZeroOut of another model's)")
    return cond[0].float().cpu().clone(), pooled[0].float().cpu().clone()


class ComfySD3Policy(ComfyFlowPolicy):
    """A ComfyUI SD3 / SD3.5 MODEL, its CLIP (CLIP-L, CLIP-G, T5) and VAE behind the `FlowPolicy` interface."""

    def __init__(self, model, clip, vae, *, negative=None, negative_prompt: str = SD3_NEGATIVE_PROMPT, **kwargs):
        super().__init__(model, clip, vae, **kwargs)
        self.negative_prompt = negative_prompt
        self._negative = _pooled_cond(negative) if negative is not None else None

    def _lora_layout(self, unet_config: dict, shapes: dict, targets: list[str]) -> dict[str, list]:
        return sd3_layout(unet_config, shapes, targets)

    # ------------------------------------------------------------------------------------------------ prompts

    def _encode(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.clip.encode_from_tokens(self.clip.tokenize(prompt), return_pooled=True, return_dict=True)
        return _pooled_cond([[out["cond"], out]])

    def encode_prompts(self, prompts: Sequence[str]) -> PooledCfgEmbeds:
        rows = self.cached_encodings(prompts, self._encode)
        if self._negative is None:
            self._negative = self._encode(self.negative_prompt)
        self.check_one_length(rows, "SD3")
        negative, negative_pooled = self._negative
        return PooledCfgEmbeds(torch.stack([r[0] for r in rows]).to(self.device),
                               torch.stack([r[1] for r in rows]).to(self.device),
                               negative[None].to(self.device), negative_pooled[None].to(self.device))  # fmt: skip

    # ------------------------------------------------------------------------------------------------ model

    def _call(self, x: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor, pooled: torch.Tensor):
        b = x.shape[0]
        options = dict(self.patcher.model_options.get("transformer_options", {}))
        out = self.base.diffusion_model(x.to(self.device, self.dtype), timestep,
                                        context=context.expand(b, -1, -1).to(self.device, self.dtype),
                                        y=pooled.expand(b, -1).to(self.device, self.dtype),
                                        transformer_options=options)  # fmt: skip
        return out.float()

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, embeds: PooledCfgEmbeds, guidance: float) -> torch.Tensor:
        self._ensure_loaded()
        # inputs computed from inference-mode tensors (ComfyUI's CLIP output) are copied into normal tensors
        x, embeds = x.clone(), embeds.clone()
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=self.device).expand(x.shape[0])
        timestep = self.patcher.get_model_object("model_sampling").timestep(sigma).float()
        blocks = self.base.diffusion_model.joint_blocks
        with checkpointing(blocks, self.gradient_checkpointing and torch.is_grad_enabled()):
            prediction = self._call(x, timestep, embeds.prompt_embeds, embeds.pooled)
            if guidance > 1:
                negative = self._call(x, timestep, embeds.negative_embeds, embeds.negative_pooled)
                prediction = plain_cfg(prediction, negative, guidance)
        return prediction  # SD3 predicts the velocity (noise - x_0), as Flux: ComfyUI's CONST sampling

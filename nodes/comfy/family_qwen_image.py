"""Qwen-Image (ComfyUI `model_base.QwenImage`, comfy/ldm/qwen_image) as a GRPO policy.

ComfyUI's Qwen-Image transformer keeps the diffusers module names (transformer_blocks.N.attn.to_q,
img_mlp.net.0.proj, ...), and comfy/lora.py maps "transformer.<module>" onto "diffusion_model.<module>.weight", so each
diffusers target is one ComfyUI weight, whole. No guidance embedding: true CFG against the negative conditioning,
combined and rescaled exactly as diffusers' QwenImagePipeline (training/grpo/qwen_image_policy.cfg_combine), in
sampling and in the recomputed log-probs. Prompts keep their own text length and rows of one length run together,
unpadded (no mask): what diffusers' masked attention computes. Chroma's policy (family_chroma.py) reuses that.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from ..logic.training_import import import_training
from .policy import ComfyFlowPolicy, checkpointing, spatial_ratio

import_training("grpo")
from training.grpo.flux_policy import FluxPolicy  # noqa: E402
from training.grpo.lora import target_regex  # noqa: E402
from training.grpo.qwen_image_policy import (  # noqa: E402
    DEFAULT_NEGATIVE_PROMPT,
    MaskedPromptEmbeds,
    cfg_combine,
    padded,
)


def qwen_image_layout(shapes: dict[str, torch.Size], targets: list[str]) -> dict[str, list]:
    """{ComfyUI weight key: [(diffusers module, 0, rows)]}: the names are diffusers', one weight per module."""
    pattern = target_regex(targets)
    layout = {}
    for key, shape in shapes.items():
        module = key.removeprefix("diffusion_model.").removesuffix(".weight")
        if key.startswith("diffusion_model.") and re.fullmatch(pattern, module):
            layout[key] = [(module, 0, int(shape[0]))]
    missing = [t for t in targets if not any(parts[0][0].endswith("." + t) for parts in layout.values())]
    if not layout or missing:
        raise ValueError(f"LoRA targets {missing or targets} match no module of this Qwen-Image model's blocks")
    return layout


def _first_cond(conditioning) -> tuple[torch.Tensor, torch.Tensor | None]:
    """ComfyUI CONDITIONING [[cond [1, L, D], {"attention_mask": ...}], ...] -> (cond row [L', D], None)."""
    cond, extra = conditioning[0][0], conditioning[0][1]
    row = cond[0]
    mask = extra.get("attention_mask")
    if mask is not None:
        row = row[mask[0].bool()]
    return row.float().cpu().clone(), None


class ComfyQwenImagePolicy(ComfyFlowPolicy):
    """A ComfyUI Qwen-Image MODEL, its CLIP (Qwen2.5-VL) and VAE (Wan 2.1) behind the `FlowPolicy` interface."""

    copy_norm_inputs = False  # policy.norm_input_copies: Qwen-Image's blocks add their residuals out of place

    def __init__(self, model, clip, vae, *, negative=None, negative_prompt: str = DEFAULT_NEGATIVE_PROMPT,
                 **kwargs):
        super().__init__(model, clip, vae, **kwargs)
        self.negative_prompt = negative_prompt
        self._negative = _first_cond(negative)[0] if negative is not None else None

    def _lora_layout(self, unet_config: dict, shapes: dict, targets: list[str]) -> dict[str, list]:
        return qwen_image_layout(shapes, targets)

    # ------------------------------------------------------------------------------------------------ prompts

    def _encode(self, prompt: str) -> torch.Tensor:
        out = self.clip.encode_from_tokens(self.clip.tokenize(prompt), return_pooled=True, return_dict=True)
        return _first_cond([[out["cond"], out]])[0]

    def encode_prompts(self, prompts: Sequence[str]) -> MaskedPromptEmbeds:
        rows = self.cached_encodings(prompts, self._encode)
        if self._negative is None:
            self._negative = self._encode(self.negative_prompt)
        embeds, mask = padded(rows)
        negative, negative_mask = padded([self._negative])
        return MaskedPromptEmbeds(embeds.to(self.device), mask.to(self.device), negative.to(self.device),
                                  negative_mask.to(self.device))  # fmt: skip

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        ratio = spatial_ratio(self.vae) if self.vae is not None else 8
        return 2 * (height // (ratio * 2)), 2 * (width // (ratio * 2))

    # ------------------------------------------------------------------------------------------------ model

    def _forward(self, x: torch.Tensor, timestep: torch.Tensor, embeds: torch.Tensor, mask: torch.Tensor):
        """The prediction for x [B, C, h, w]; rows are grouped by text length and run unpadded (no mask), which is
        what diffusers' masked attention computes."""
        out = torch.empty(x.shape, dtype=torch.float32, device=self.device)
        if embeds.shape[0] != x.shape[0]:
            embeds, mask = embeds.expand(x.shape[0], -1, -1), mask.expand(x.shape[0], -1)
        lengths = mask.sum(1).tolist()
        options = dict(self.patcher.model_options.get("transformer_options", {}))
        for length in sorted(set(lengths)):
            rows = [i for i, n in enumerate(lengths) if n == length]
            index = torch.tensor(rows, device=self.device)
            out[index] = self._call(x[index].to(self.device, self.dtype), timestep[index],
                                    embeds[index, : int(length)].to(self.device, self.dtype), options).float()
        return out

    def _call(self, x: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor, options: dict) -> torch.Tensor:
        """One forward of ComfyUI's transformer on rows that share a text length (Qwen-Image: one video frame)."""
        return self.base.diffusion_model(x[:, :, None], timestep, context=context, transformer_options=options)[:, :, 0]

    def _blocks(self) -> list:
        """The blocks checkpointed in a forward with gradients."""
        return list(self.base.diffusion_model.transformer_blocks)

    def _combine(self, cond: torch.Tensor, uncond: torch.Tensor, guidance: float) -> torch.Tensor:
        """True CFG of latents [B, C, h, w]; Qwen-Image rescales per packed token (2x2 latent patch x channels), as
        QwenImagePipeline."""
        combined = cfg_combine(FluxPolicy.pack(None, cond), FluxPolicy.pack(None, uncond), guidance)
        return FluxPolicy.unpack(None, combined, *cond.shape[-2:])

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, embeds: MaskedPromptEmbeds, guidance: float) -> torch.Tensor:
        self._ensure_loaded()
        # inputs computed from inference-mode tensors (ComfyUI's CLIP output) are copied into normal tensors
        x = x.clone()
        embeds = MaskedPromptEmbeds(embeds.prompt_embeds.clone(), embeds.mask.clone(), embeds.negative_embeds.clone(),
                                    embeds.negative_mask.clone())  # fmt: skip
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=self.device).expand(x.shape[0])
        timestep = self.patcher.get_model_object("model_sampling").timestep(sigma).float()
        checkpoint = self.gradient_checkpointing and torch.is_grad_enabled()
        with checkpointing(self._blocks(), checkpoint, self.copy_norm_inputs):
            prediction = self._forward(x, timestep, embeds.prompt_embeds, embeds.mask)
            if guidance > 1:
                negative = self._forward(x, timestep, embeds.negative_embeds, embeds.negative_mask)
                prediction = self._combine(prediction, negative, guidance)
        return prediction

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        raw = self.base.latent_format.process_out(latents.float().cpu()[:, :, None])
        images = self.vae.decode(raw).float().cpu().clamp(0, 1)
        return images.reshape(-1, *images.shape[-3:])  # the Wan VAE's one frame: [B, 1, H, W, 3] -> [B, H, W, 3]

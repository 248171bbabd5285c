"""`FlowPolicy` on a diffusers `QwenImagePipeline` from a local folder (Qwen-Image, or the tiny test one).

What differs from Flux (everything else, the schedule code, the 2x2 packing, the LoRA, its export, the noise, is
`FluxPolicy`'s, inherited):
- one text encoder, Qwen2.5-VL, through the pipeline's own `encode_prompt` (its chat template, the first 34 template
  tokens dropped, a padding mask); prompts keep their own length and a batch is padded with the mask, so a prompt's
  conditioning does not depend on which prompts share its batch;
- no guidance embedding: true classifier-free guidance. With `guidance` > 1 each velocity is two forwards, the
  prompt's and the negative prompt's (cached like the prompts), combined as neg + g (cond - neg) and rescaled, token
  by token, to the norm of the conditional prediction, exactly as `QwenImagePipeline.__call__`. The recomputed
  log-probabilities of training go through the same `velocity`, so CFG is in the trained policy too;
- the Wan-style VAE: 5-D latents with one frame, normalised by per-channel latents_mean / latents_std;
- the schedule's dynamic shift comes from the scheduler config (Qwen-Image: exponential, 0.5 -> 0.9 over 256 ->
  8192 tokens, shift_terminal 0.02), which `FluxPolicy.sigmas` already reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .flux_policy import PROMPT_CACHE_SIZE, FluxPolicy

QWEN_IMAGE_LORA_TARGETS = [
    # every QwenImageTransformerBlock (transformer_blocks.N.*): joint attention of the image and text streams, and
    # each stream's feed-forward; the targets of yifan123/flow_grpo's Qwen-Image config
    "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0",
    "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out",
    "img_mlp.net.0.proj", "img_mlp.net.2", "txt_mlp.net.0.proj", "txt_mlp.net.2",
]  # fmt: skip
DEFAULT_NEGATIVE_PROMPT = " "  # flow_grpo's Qwen-Image negative prompt; diffusers enables CFG with any negative prompt


@dataclass
class MaskedPromptEmbeds:
    """Qwen-Image conditioning: one padded row per prompt with its mask, and the negative prompt's (one row)."""

    prompt_embeds: torch.Tensor  # [N, L, D]
    mask: torch.Tensor  # [N, L] bool
    negative_embeds: torch.Tensor  # [1, L_neg, D]
    negative_mask: torch.Tensor  # [1, L_neg] bool

    def __len__(self) -> int:
        return self.prompt_embeds.shape[0]

    def select(self, index) -> MaskedPromptEmbeds:
        index = torch.as_tensor(index, dtype=torch.long, device=self.prompt_embeds.device)
        return MaskedPromptEmbeds(self.prompt_embeds.index_select(0, index), self.mask.index_select(0, index),
                                  self.negative_embeds, self.negative_mask)  # fmt: skip

    def to(self, device) -> MaskedPromptEmbeds:
        return MaskedPromptEmbeds(self.prompt_embeds.to(device), self.mask.to(device), self.negative_embeds.to(device),
                                  self.negative_mask.to(device))  # fmt: skip


def padded(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Unpadded [L_i, D] rows -> ([N, max L, D] zero-padded, [N, max L] bool mask)."""
    length = max(r.shape[0] for r in rows)
    embeds = torch.stack([torch.cat([r, r.new_zeros(length - r.shape[0], r.shape[1])]) for r in rows])
    mask = torch.stack([torch.arange(length) < r.shape[0] for r in rows])
    return embeds, mask


def cfg_combine(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """QwenImagePipeline's true CFG on packed tokens [B, N, D]: neg + s (cond - neg), rescaled to cond's norm."""
    combined = uncond + scale * (cond - uncond)
    return combined * (torch.norm(cond, dim=-1, keepdim=True) / torch.norm(combined, dim=-1, keepdim=True))


class QwenImagePolicy(FluxPolicy):
    """A QwenImagePipeline's transformer with a trainable LoRA, behind the `FlowPolicy` interface."""

    PIPELINE = "QwenImagePipeline"

    def __init__(self, pipeline, device: torch.device | str, *, max_sequence_length: int = 1024,
                 negative_prompt: str = DEFAULT_NEGATIVE_PROMPT, **kwargs):
        """FluxPolicy's arguments; the prompt cache holds unpadded [L, D] embeddings on the CPU."""
        self.negative_prompt = negative_prompt
        super().__init__(pipeline, device, max_sequence_length=max_sequence_length or 1024, **kwargs)

    @staticmethod
    def text_encoders(pipeline) -> tuple:
        return (pipeline.text_encoder,)

    @staticmethod
    def vae_scale(pipeline) -> int:
        return pipeline.vae_scale_factor

    # ------------------------------------------------------------------------------------------------ prompts

    @torch.no_grad()
    def _encode_new(self, prompts: Sequence[str]) -> None:
        new = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        if not new:
            return
        encoder = self.pipeline.text_encoder
        # the transformer (with its LoRA) steps off while Qwen2.5-VL visits: the two never share the card
        visiting = self.offload_transformer and self.offload_text_encoders
        if visiting:
            self.transformer.to("cpu")
        if self.offload_text_encoders:
            encoder.to(self.device)
        try:
            embeds, mask = self.pipeline.encode_prompt(prompt=new, device=self.device,
                                                       max_sequence_length=self.max_sequence_length)  # fmt: skip
        finally:
            if self.offload_text_encoders:
                encoder.to("cpu")
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
            if visiting:
                self.transformer.to(self.device)
        lengths = [embeds.shape[1]] * len(new) if mask is None else mask.sum(1).tolist()
        for i, prompt in enumerate(new):
            self._cache[prompt] = embeds[i, : int(lengths[i])].cpu()

    def encode_prompts(self, prompts: Sequence[str]) -> MaskedPromptEmbeds:
        self._encode_new([*prompts, self.negative_prompt])
        for p in (*prompts, self.negative_prompt):
            self._cache.move_to_end(p)
        while len(self._cache) > max(PROMPT_CACHE_SIZE, len(set(prompts)) + 1):
            self._cache.popitem(last=False)
        embeds, mask = padded([self._cache[p] for p in prompts])
        negative, negative_mask = padded([self._cache[self.negative_prompt]])
        return MaskedPromptEmbeds(embeds.to(self.device, self.dtype), mask.to(self.device),
                                  negative.to(self.device, self.dtype), negative_mask.to(self.device))  # fmt: skip

    def fit_sequence_length(self, prompts: Sequence[str], bucket: int = 64, cap: int = 1024) -> int:
        """Nothing to fit: each prompt keeps its own length and padding is masked (the pipeline's cap of 1024)."""
        return self.max_sequence_length

    # ------------------------------------------------------------------------------------------------ model

    def _forward(self, tokens: torch.Tensor, sigma: torch.Tensor, embeds: torch.Tensor, mask: torch.Tensor,
                 h: int, w: int) -> torch.Tensor:
        b = tokens.shape[0]
        if embeds.shape[0] != b:
            embeds, mask = embeds.expand(b, -1, -1), mask.expand(b, -1)
        return self.transformer(
            hidden_states=tokens,
            timestep=sigma.to(self.dtype),  # the pipeline passes t / 1000, i.e. sigma
            encoder_hidden_states=embeds,
            encoder_hidden_states_mask=None if bool(mask.all()) else mask,  # as encode_prompt: all-valid -> None
            img_shapes=[[(1, h // 2, w // 2)]] * b,
            return_dict=False,
        )[0]

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, embeds: MaskedPromptEmbeds, guidance: float) -> torch.Tensor:
        b, _, h, w = x.shape
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=self.device).expand(b)
        tokens = self.pack(x.to(self.device, self.dtype))
        prediction = self._forward(tokens, sigma, embeds.prompt_embeds, embeds.mask, h, w)
        if guidance > 1:
            negative = self._forward(tokens, sigma, embeds.negative_embeds, embeds.negative_mask, h, w)
            prediction = cfg_combine(prediction, negative, guidance)
        return self.unpack(prediction.float(), h, w)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        vae = self.pipeline.vae
        mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
        std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
        images = []
        for start in range(0, latents.shape[0], self.vae_batch_size):
            chunk = latents[start:start + self.vae_batch_size].to(self.device, vae.dtype)[:, :, None]
            chunk = chunk * std.to(chunk) + mean.to(chunk)
            pixels = vae.decode(chunk, return_dict=False)[0][:, :, 0]
            images.append((pixels.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu())
        return torch.cat(images)

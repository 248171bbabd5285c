"""The policy GRPO trains, as a small interface: what the trainer needs from a flow model with a LoRA.

The trainer and the sampler only talk to a `FlowPolicy`, so the ComfyUI node can drive the same training loop with
the Flux the user already loaded (a ComfyUI model patcher behind the same methods), and tests can drive it with the
tiny diffusers Flux. `training.grpo.flux_policy.FluxPolicy` is the diffusers implementation.

Latents cross the interface image-shaped, [B, C, h, w] (ComfyUI's LATENT layout for Flux), in the flow's
convention x_sigma = sigma * noise + (1 - sigma) * x_0: sigma 1 is pure noise, sigma 0 the clean latent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass
class PromptEmbeds:
    """Text conditioning for a batch, one row per prompt: the T5 sequence and the pooled CLIP vector."""

    prompt_embeds: torch.Tensor  # [N, L, D]
    pooled: torch.Tensor  # [N, D_pooled]

    def __len__(self) -> int:
        return self.prompt_embeds.shape[0]

    def select(self, index: torch.Tensor | Sequence[int]) -> PromptEmbeds:
        """Rows `index` (with repeats): the conditioning of each sample from the conditioning of each prompt."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.prompt_embeds.device)
        return PromptEmbeds(self.prompt_embeds.index_select(0, index), self.pooled.index_select(0, index))

    def to(self, device: torch.device | str) -> PromptEmbeds:
        return PromptEmbeds(self.prompt_embeds.to(device), self.pooled.to(device))


@runtime_checkable
class FlowPolicy(Protocol):
    """A rectified-flow text-to-image model with one trainable LoRA adapter."""

    device: torch.device

    def encode_prompts(self, prompts: Sequence[str]) -> PromptEmbeds:
        """Conditioning for `prompts`, computed once per distinct prompt (text encoders need not stay loaded)."""
        ...

    def sigmas(self, num_steps: int, height: int, width: int) -> torch.Tensor:
        """The sampling schedule, fp32 [num_steps + 1] from 1 down to 0, as the model's own pipeline uses it."""
        ...

    def initial_noise(self, generators: Sequence[torch.Generator], height: int, width: int) -> torch.Tensor:
        """x at sigma = 1, [B, C, h, w] fp32 on `device`, one draw per generator (batch-composition invariant)."""
        ...

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, embeds: PromptEmbeds, guidance: float) -> torch.Tensor:
        """The predicted flow velocity (noise - x_0) at x [B, C, h, w] and sigma [B]; fp32, same shape as x."""
        ...

    def reference(self) -> contextlib.AbstractContextManager:
        """Context in which `velocity` is the reference policy: the same model with the LoRA switched off."""
        ...

    def named_trainable_parameters(self) -> dict[str, torch.nn.Parameter]:
        """The LoRA weights being trained (fp32), by stable names (what checkpoints store)."""
        ...

    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        """The LoRA in diffusers keys (transformer.<module>.lora_A.weight / lora_B.weight), scale folded into B."""
        ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images for clean latents [B, C, h, w]: float32 [B, H, W, 3] in 0..1 on the CPU (ComfyUI's IMAGE)."""
        ...


def trainable_parameters(policy: FlowPolicy) -> list[torch.nn.Parameter]:
    return list(policy.named_trainable_parameters().values())


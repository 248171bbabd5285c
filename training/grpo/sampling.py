"""Trajectory collection: sample with the SDE, keep every intermediate latent and each step's log-probability.

Every sample draws all of its randomness (initial noise, then one noise per step) from its own generator, seeded
from (run seed, GRPO step, global sample index). A sample is therefore the same whichever process draws it and
whatever batch it shares: this is what makes a 2-process run equal a 1-process run, and a resumed run equal an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .policy import FlowPolicy, PromptEmbeds
from .sde import step_fn


def sample_seed(seed: int, step: int, index: int, stream: str = "train") -> int:
    """A 63-bit seed for one sample, stable across processes and machines."""
    digest = hashlib.sha256(f"{stream}:{seed}:{step}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def sample_generators(seed: int, step: int, indices: Sequence[int], stream: str = "train") -> list[torch.Generator]:
    return [torch.Generator("cpu").manual_seed(sample_seed(seed, step, int(i), stream)) for i in indices]


@dataclass
class Trajectories:
    """One batch of sampled trajectories."""

    latents: torch.Tensor  # [B, T + 1, C, h, w] fp32: latents[:, 0] is the noise, latents[:, T] the final sample
    log_probs: torch.Tensor  # [B, T] fp32: log-probability of latents[:, j + 1] given latents[:, j]

    def to(self, device) -> Trajectories:
        return Trajectories(self.latents.to(device), self.log_probs.to(device))


@torch.no_grad()
def sample_trajectories(
    policy: FlowPolicy,
    embeds: PromptEmbeds,
    generators: Sequence[torch.Generator],
    sigmas: torch.Tensor,
    noise_levels: Sequence[float],
    *,
    guidance: float,
    height: int,
    width: int,
    sde_type: str = "sde",
) -> Trajectories:
    """Sample len(generators) trajectories conditioned on `embeds` (one row per sample).

    sigmas [T + 1] from 1 to 0; noise_levels[j] is step j's noise level (0: a deterministic ODE step).
    """
    step = step_fn(sde_type)
    x = policy.initial_noise(generators, height, width)
    latents, log_probs = [x], []
    for j in range(len(sigmas) - 1):
        sigma = sigmas[j].item()
        velocity = policy.velocity(x, torch.full((x.shape[0],), sigma), embeds, guidance)
        x, log_prob, _, _ = step(velocity, x, sigma, sigmas[j + 1].item(), noise_levels[j], generator=list(generators))
        latents.append(x)
        log_probs.append(log_prob)
    return Trajectories(torch.stack(latents, dim=1), torch.stack(log_probs, dim=1))


def step_log_prob(
    policy: FlowPolicy,
    latents: torch.Tensor,
    next_latents: torch.Tensor,
    sigma: float,
    sigma_next: float,
    noise_level: float,
    embeds: PromptEmbeds,
    *,
    guidance: float,
    sde_type: str = "sde",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Recompute one step under the current policy (with grad): (log_prob [B], mean, std) of next_latents."""
    velocity = policy.velocity(latents, torch.full((latents.shape[0],), sigma), embeds, guidance)
    _, log_prob, mean, std = step_fn(sde_type)(velocity, latents, sigma, sigma_next, noise_level, prev_sample=next_latents)
    return log_prob, mean, std

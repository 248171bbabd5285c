"""Sampling a flow policy: GRPO's trajectories, and plain pictures of a prompt list from a generator folder.

Trajectory collection: sample with the SDE, keep every intermediate latent and each step's log-probability.

Every sample draws all of its randomness (initial noise, then one noise per step) from its own generator, seeded
from (run seed, GRPO step, global sample index). A sample is therefore the same whichever process draws it and
whatever batch it shares: this is what makes a 2-process run equal a 1-process run, and a resumed run equal an
uninterrupted one.

Pictures from a generator folder (and a LoRA), at noise 0 with each prompt's noise from (seed, its index), which
`python -m training.grpo.sample`, best-of-N and the generator evaluations draw: the model's own sampling settings
(`settings_for`), a memory check before anything loads (`check_memory`), the policy (`load_policy`) and the
pictures (`generate`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .policy import FlowPolicy, PromptEmbeds
from .sde import step_fn

VAE_BATCH = 4  # FluxPolicy's default vae_batch_size: images decoded at once
DEFAULTS = {"num_steps": 28, "guidance": 3.5, "height": 1024, "width": 1024, "max_sequence_length": 512}


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


def settings_for(model: Path, args) -> dict:
    from .shapes_generator import read_sampling

    own = read_sampling(model)
    settings = dict(DEFAULTS) if own is None else {k: getattr(own, k) for k in DEFAULTS}
    for key in ("num_steps", "guidance", "height", "width"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    return settings


def check_memory(model: Path, settings: dict, device: str, batch_size: int, prompts: int) -> None:
    """Before anything loads: sides this model takes, and a run that fits in the free memory (ValueError naming the
    largest batch or size that would). Each batch keeps every step's latents; all images stay in RAM until written."""
    from ..common.memory_guard import check_fits, checked_folder_sizes, free_memory, sampling_need

    height, width = settings["height"], settings["width"]
    device, sizes = checked_folder_sizes(model, device, settings)

    def need(rows: int, h: int, w: int):
        return sampling_need(sizes, rows=rows, height=h, width=w, stored_latents=settings["num_steps"] + 1,
                             decode_rows=VAE_BATCH, held_images=prompts)  # fmt: skip

    check_fits("--batch-size ", min(batch_size, prompts), height, width, need, free_memory(device), sizes.multiple)


def load_policy(model: Path, lora: Path | None, device: str, max_sequence_length: int, dtype: str = "auto",
                weight_dtype: str = "default"):
    """A FluxPolicy for sampling: the LoRA file's own rank and targets, or no adapter effect without one;
    `weight_dtype` "fp8_e4m3fn" / "fp8_e5m2" stores the transformer's block weights in fp8 (weight_storage.py)."""
    import torch

    from .config import FLUX_LORA_TARGETS
    from .flux_policy import FluxPolicy
    from .shipped import lora_file_spec

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if torch.device(device).type == "cuda" else "float32"
    rank, targets = lora_file_spec(lora) if lora else (1, FLUX_LORA_TARGETS)
    policy = FluxPolicy.from_folder(model, device, dtype=dtype, lora_rank=rank, lora_alpha=float(rank),
                                    lora_targets=targets, gradient_checkpointing=False,
                                    max_sequence_length=max_sequence_length, weight_dtype=weight_dtype)  # fmt: skip
    if lora:
        policy.load_lora(lora)
    return policy


def generate(policy, prompts: list[str], settings: dict, seed: int, batch_size: int, lora: bool, progress=None):
    """Images [N, H, W, 3] in 0..1 for `prompts` at noise 0; prompt i's noise is seeded by (seed, i)."""
    import contextlib

    import torch

    sigmas = policy.sigmas(settings["num_steps"], settings["height"], settings["width"])
    images = []
    context = contextlib.nullcontext() if lora else policy.reference()
    with context, torch.no_grad():
        for first in range(0, len(prompts), batch_size):
            chunk = prompts[first:first + batch_size]
            trajectories = sample_trajectories(
                policy, policy.encode_prompts(chunk), sample_generators(seed, 0, range(first, first + len(chunk)),
                                                                        stream="eval"),
                sigmas, [0.0] * settings["num_steps"], guidance=settings["guidance"], height=settings["height"],
                width=settings["width"],
            )  # fmt: skip
            images.append(policy.decode(trajectories.latents[:, -1]))
            if progress is not None:
                progress(len(chunk))
    return torch.cat(images)

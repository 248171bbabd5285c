"""Stage 1 of the shapes generator: an AutoencoderKL for 64x64 shapes pictures (4x down, 8 latent channels).

Trained on freshly rendered scenes (half of them random re-layouts with overlaps, the arbitrary pictures a young
generator draws) with an L2 reconstruction loss and a small KL term that keeps the latents smooth. Afterwards the
latents' mean and standard deviation become the VAE's shift_factor and scaling_factor, as FLUX's VAE has them,
so the flow model sees unit-variance latents and FluxPipeline decodes them as it decodes FLUX.1-dev's.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from ...dataset.scene import random_relayout, sample_scene
from ..shapes_generator import GeneratorShape, build_autoencoder
from .shapes_data import render_batch
from .shapes_fit import fit

KL_WEIGHT = 1e-6


def scenes_for_step(seed: int, step: int, batch: int) -> list:
    rng = random.Random(seed * 1_000_003 + step)
    scenes = []
    while len(scenes) < batch:
        scene = sample_scene("shapes", rng)
        if rng.random() < 0.5:
            scene = random_relayout(scene, rng) or scene
        scenes.append(scene)
    return scenes


def train_autoencoder(out: Path, shape: GeneratorShape, *, steps: int = 800, batch: int = 8, lr: float = 2e-3,
                      seed: int = 0):
    """Train (or resume) the autoencoder under `out`; returns it with its scaling and shift factors set."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = build_autoencoder(shape)
    vae.train()
    params = dict(vae.named_parameters())

    def loss_at(step: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        images = render_batch(scenes_for_step(seed, step, batch)[rank::world])
        posterior = vae.encode(images).latent_dist
        generator = torch.Generator().manual_seed(seed * 7919 + step + 1_000_000 * rank)
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        recon = vae.decode(z).sample
        kl = posterior.kl().mean() / z[0].numel()
        return torch.nn.functional.mse_loss(recon, images) + KL_WEIGHT * kl

    weights = fit(out, params, loss_at, steps=steps, lr=lr, warmup=50, desc="autoencoder")
    with torch.no_grad():
        for name, p in vae.named_parameters():
            p.copy_(weights[name])
    vae.eval()
    set_latent_statistics(vae, seed)
    return vae


@torch.no_grad()
def set_latent_statistics(vae, seed: int, n: int = 512) -> None:
    """shift_factor = the latents' mean, scaling_factor = 1 / their std (over n fresh pictures)."""
    latents = torch.cat([vae.encode(render_batch(scenes_for_step(seed + 1, 10_000 + i, 64))).latent_dist.mean
                         for i in range(n // 64)])  # fmt: skip
    vae.register_to_config(shift_factor=float(latents.mean()), scaling_factor=float(1.0 / latents.std()))


@torch.no_grad()
def reconstruction_error(vae, seed: int = 99, n: int = 256) -> float:
    """Mean absolute pixel error (0..255 scale) of encode-mean -> decode on fresh pictures."""
    errors = []
    for i in range(n // 64):
        images = render_batch(scenes_for_step(seed, i, 64))
        recon = vae.decode(vae.encode(images).latent_dist.mean).sample.clamp(-1, 1)
        errors.append((recon - images).abs().mean().item() * 127.5)
    return sum(errors) / len(errors)

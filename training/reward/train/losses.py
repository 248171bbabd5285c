"""Pairwise losses for a Gaussian reward: P(chosen beats rejected), and -log of it.

Each scorer output is a Gaussian N(mean, std^2) with std = exp(log_std). With d = mean_c - mean_r and
s = sqrt(std_c^2 + std_r^2) (the two rewards are independent, so d ~ N(d, s^2)):

- "gaussian_bt"      (the paper): P = Phi(d / s), loss = -log Phi(d / s). Closed form, no sampling.
- "mc_gaussian_bt"   (HPSv3 style): z_k = d + s * eps_k with eps_k ~ N(0, 1) (reparameterised, so the gradient
                     reaches s), loss = mean_k -log sigmoid(z_k): a Monte-Carlo estimate of E[-log sigmoid(z)].
- "bt"               plain Bradley-Terry on the means: loss = -log sigmoid(d); std gets no gradient.

All functions take [B] tensors and return per-pair [B] values in float32; the trainer sums and normalises.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOSSES = ("gaussian_bt", "mc_gaussian_bt", "bt")


def pair_std(log_std_c: torch.Tensor, log_std_r: torch.Tensor) -> torch.Tensor:
    """sqrt(exp(2 a) + exp(2 b)), computed as exp(logaddexp(2a, 2b) / 2) so tiny stds do not underflow."""
    return torch.exp(0.5 * torch.logaddexp(2 * log_std_c.float(), 2 * log_std_r.float()))


def gaussian_bt_loss(mean_c, log_std_c, mean_r, log_std_r) -> torch.Tensor:
    """-log Phi((mu_c - mu_r) / sqrt(s_c^2 + s_r^2)), stable far into the tail (log_ndtr)."""
    z = (mean_c.float() - mean_r.float()) / pair_std(log_std_c, log_std_r)
    return -torch.special.log_ndtr(z)


def mc_gaussian_bt_loss(mean_c, log_std_c, mean_r, log_std_r, noise: torch.Tensor) -> torch.Tensor:
    """mean over samples of -log sigmoid(d + s * eps); `noise` is eps, [B, S] standard normal."""
    if noise.dim() != 2 or noise.shape[0] != mean_c.shape[0]:
        raise ValueError(f"noise must be [batch, samples] = [{mean_c.shape[0]}, S], got {tuple(noise.shape)}")
    d = (mean_c.float() - mean_r.float()).unsqueeze(1)
    s = pair_std(log_std_c, log_std_r).unsqueeze(1)
    z = d + s * noise.to(d.device, torch.float32)
    return F.softplus(-z).mean(dim=1)  # softplus(-z) == -log sigmoid(z), without its overflow


def bt_loss(mean_c, mean_r) -> torch.Tensor:
    return F.softplus(-(mean_c.float() - mean_r.float()))


def pair_loss(kind: str, mean_c, log_std_c, mean_r, log_std_r, noise: torch.Tensor | None = None,
              mc_samples: int = 1000, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-pair loss [B] of the named kind (see LOSSES). For "mc_gaussian_bt" give `noise` or it is drawn."""
    if kind == "gaussian_bt":
        return gaussian_bt_loss(mean_c, log_std_c, mean_r, log_std_r)
    if kind == "mc_gaussian_bt":
        if noise is None:
            noise = torch.randn(mean_c.shape[0], mc_samples, generator=generator, device=mean_c.device)
        return mc_gaussian_bt_loss(mean_c, log_std_c, mean_r, log_std_r, noise)
    if kind == "bt":
        return bt_loss(mean_c, mean_r)
    raise ValueError(f"unknown loss {kind!r}; expected one of {', '.join(LOSSES)}")


def preference_probability(kind: str, mean_c, log_std_c, mean_r, log_std_r) -> torch.Tensor:
    """P(chosen beats rejected) under the loss's model: Phi(d / s) for the Gaussian losses, sigmoid(d) for "bt".

    For "mc_gaussian_bt" this is the exact probability that z > 0 (the sampled objective's own target).
    """
    d = mean_c.float() - mean_r.float()
    if kind == "bt":
        return torch.sigmoid(d)
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; expected one of {', '.join(LOSSES)}")
    return torch.special.ndtr(d / pair_std(log_std_c, log_std_r))


def pair_noise(seed: int, step: int, n_pairs: int, samples: int) -> torch.Tensor:
    """The Monte-Carlo eps of one optimizer step, [n_pairs, samples], a pure function of (seed, step).

    Drawn for the whole global batch and sliced per process, so the loss does not depend on the number of
    processes, and a resumed run draws exactly what the uninterrupted one drew.
    """
    g = torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63 - 1))
    return torch.randn(n_pairs, samples, generator=g)


LOG2 = math.log(2.0)

"""The GRPO objective for one sampling step of a batch of kept samples.

    ratio  = exp(log_prob - old_log_prob)
    policy = max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)),   A = clip(advantage, -adv_clip, adv_clip)
    kl     = mean over elements of (mean - ref_mean)^2 / (2 std^2)
    loss   = policy + beta * kl

The KL is the closed form between the step's Gaussian under the policy and under the reference (same std, the
LoRA switched off), per element and averaged like the log-probability. Losses are returned per sample so that
the trainer can normalise by the number of kept samples over all processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def step_kl(mean: torch.Tensor, ref_mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, std^2) || N(ref_mean, std^2)) averaged over non-batch dims, [B]; 0 where std == 0."""
    deterministic = std == 0
    safe_std = torch.where(deterministic, torch.ones_like(std), std)
    kl = (mean.float() - ref_mean.float()) ** 2 / (2.0 * safe_std**2)
    kl = torch.where(deterministic, torch.zeros_like(kl), kl)
    return kl.mean(dim=tuple(range(1, kl.ndim)))


@dataclass
class StepLoss:
    loss: torch.Tensor  # [B] per-sample objective (differentiable)
    policy_loss: torch.Tensor  # [B]
    kl: torch.Tensor  # [B]
    ratio: torch.Tensor  # [B], detached
    clipped: torch.Tensor  # [B] bool: |ratio - 1| > clip_range


def grpo_step_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    clip_range: float,
    adv_clip: float = 5.0,
    beta: float = 0.0,
    mean: torch.Tensor | None = None,
    ref_mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
) -> StepLoss:
    advantages = advantages.float().clamp(-adv_clip, adv_clip)
    ratio = torch.exp(log_prob - old_log_prob.float())
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    policy_loss = torch.maximum(unclipped, clipped)
    if beta > 0:
        if mean is None or ref_mean is None or std is None:
            raise ValueError("beta > 0 needs the step means under the policy and the reference, and the std")
        kl = step_kl(mean, ref_mean, std)
    else:
        kl = torch.zeros_like(policy_loss)
    return StepLoss(
        loss=policy_loss + beta * kl,
        policy_loss=policy_loss.detach(),
        kl=kl.detach(),
        ratio=ratio.detach(),
        clipped=((ratio.detach() - 1.0).abs() > clip_range),
    )

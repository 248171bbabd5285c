"""The DiffusionNFT objective (Zheng et al., "DiffusionNFT: Online Diffusion Reinforcement with Forward Process",
arXiv 2509.16117; NVlabs/DiffusionNFT scripts/train_nft_sd3.py), for one noised batch.

Reinforcement on the forward process: a clean sample x0 the policy generated is noised afresh, x_t = (1 - t) x0 + t
noise, and the flow-matching loss is applied to two implicit policies built from the old (sampling) velocity and the
trained one,

    v+ = (1 - beta) v_old + beta v_theta        (the implicit positive policy)
    v- = (1 + beta) v_old - beta v_theta        (the implicit negative policy)

weighted by the reward's optimality probability r in [0, 1]: positives pull v+ towards the sample, negatives pull v-
towards it (and so v_theta away). As in the reference code, the matching is measured on the x0 predictions
x0+- = x_t - t v+- with an adaptive per-sample weight (the detached mean |x0+- - x0|, at least 1e-5), and

    r    = clip(clip(A, -c, c) / c / 2 + 1/2, 0, 1)          c = adv_clip
    loss = c * (r * ||x0+ - x0||^2 / w+ + (1 - r) * ||x0- - x0||^2 / w-) / beta

Because x0+- - x0 = t (v_target - v+-) with v_target = noise - x0, this is the flow-matching loss
r ||v+ - v_target||^2 + (1 - r) ||v- - v_target||^2 with a per-sample weight t^2 / w. No log-probabilities: the
sampler may be any solver (the reference samples with a deterministic 2nd-order solver). Per-sample values [B].
"""

from __future__ import annotations

import torch

from .loss import StepLoss


def optimality(advantages: torch.Tensor, adv_clip: float) -> torch.Tensor:
    """DiffusionNFT's r in [0, 1] from group-normalised advantages (train_nft_sd3.py: `normalized_advantages_clip`)."""
    clipped = advantages.float().clamp(-adv_clip, adv_clip)
    return (clipped / adv_clip / 2.0 + 0.5).clamp(0.0, 1.0)


def _adaptive_mse(x0_prediction: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    dims = tuple(range(1, x0.ndim))
    with torch.no_grad():
        weight = (x0_prediction.double() - x0.double()).abs().mean(dim=dims, keepdim=True).clamp(min=1e-5)
    return ((x0_prediction - x0) ** 2 / weight).mean(dim=dims)


def nft_step_loss(
    velocity: torch.Tensor,
    old_velocity: torch.Tensor,
    x_t: torch.Tensor,
    x0: torch.Tensor,
    t: torch.Tensor,
    advantages: torch.Tensor,
    beta: float,
    adv_clip: float = 5.0,
    kl_weight: float = 0.0,
    ref_velocity: torch.Tensor | None = None,
) -> StepLoss:
    """velocity (with grad), old_velocity (detached), x_t, x0: [B, ...]; t, advantages: [B].

    kl_weight > 0 adds kl_weight * mean((v_theta - v_ref)^2), the reference code's KL to the LoRA-less model.
    """
    t = t.float().view(-1, *([1] * (x0.ndim - 1)))
    old = old_velocity.detach()
    positive = beta * velocity + (1.0 - beta) * old
    negative = (1.0 + beta) * old - beta * velocity
    r = optimality(advantages, adv_clip).to(velocity.device)
    positive_loss = _adaptive_mse(x_t - t * positive, x0)
    negative_loss = _adaptive_mse(x_t - t * negative, x0)
    policy_loss = adv_clip * (r * positive_loss + (1.0 - r) * negative_loss) / beta
    if kl_weight > 0:
        if ref_velocity is None:
            raise ValueError("kl_weight > 0 needs the reference velocity")
        kl = ((velocity - ref_velocity.detach()) ** 2).mean(dim=tuple(range(1, velocity.ndim)))
    else:
        kl = torch.zeros_like(policy_loss)
    ones = torch.ones_like(policy_loss).detach()
    return StepLoss(loss=policy_loss + kl_weight * kl, policy_loss=policy_loss.detach(), kl=kl.detach(), ratio=ones,
                    clipped=torch.zeros_like(ones, dtype=torch.bool))

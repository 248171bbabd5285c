"""The AWM objective (Xue et al., "Advantage Weighted Matching: Aligning RL with Pretraining in Diffusion Models",
arXiv 2509.25050; as implemented in X-GenGroup/Flow-Factory src/flow_factory/trainers/awm.py), for one noised batch.

The pretraining loss, weighted by the advantage: a clean sample x0 the policy generated is noised afresh,
x_t = (1 - t) x0 + t noise, and

    l    = mean over elements of (v_theta(x_t, t) - (noise - x0))^2      (times t with weighting "t")
    loss = A * l,        A = clip(advantage, -adv_clip, adv_clip)

so high-reward samples are matched (like pretraining on them) and low-reward samples unmatched. Flow-Factory wraps
-l as a "log-probability" in a PPO ratio exp(l_old - l) with clipping, against l_old of the sampling policy; at
the policy that sampled (the ratio 1, every update here: one optimizer step per GRPO step by default) the clipped
objective's gradient is exactly A * grad l, this loss's. No log-probabilities of the sampler: any solver.
Per-sample values [B].
"""

from __future__ import annotations

import torch

from .loss import StepLoss

WEIGHTINGS = ("uniform", "t")  # Flow-Factory's "Uniform" (its default) and "t"


def awm_step_loss(
    velocity: torch.Tensor,
    noise: torch.Tensor,
    x0: torch.Tensor,
    t: torch.Tensor,
    advantages: torch.Tensor,
    adv_clip: float = 5.0,
    weighting: str = "uniform",
    kl_weight: float = 0.0,
    ref_velocity: torch.Tensor | None = None,
) -> StepLoss:
    """velocity (with grad), noise, x0: [B, ...]; t, advantages: [B]. kl_weight > 0 adds
    kl_weight * mean((v_theta - v_ref)^2) (Flow-Factory's v-based KL to the reference)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    dims = tuple(range(1, velocity.ndim))
    matching = ((velocity.float() - (noise.float() - x0.float())) ** 2).mean(dim=dims)
    if weighting == "t":
        matching = matching * t.float().to(matching.device)
    advantages = advantages.float().clamp(-adv_clip, adv_clip).to(matching.device)
    policy_loss = advantages * matching
    if kl_weight > 0:
        if ref_velocity is None:
            raise ValueError("kl_weight > 0 needs the reference velocity")
        kl = ((velocity - ref_velocity.detach()) ** 2).mean(dim=dims)
    else:
        kl = torch.zeros_like(policy_loss)
    ones = torch.ones_like(policy_loss).detach()
    return StepLoss(loss=policy_loss + kl_weight * kl, policy_loss=policy_loss.detach(), kl=kl.detach(), ratio=ones,
                    clipped=torch.zeros_like(ones, dtype=torch.bool))

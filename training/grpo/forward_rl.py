"""The forward-process algorithms' training step: DiffusionNFT (nft_loss.py) and AWM (awm_loss.py).

Both train on the clean samples x0 = the last latent of each trajectory, noised afresh at the sampling sigmas of the
trained steps, x_t = sigma * noise + (1 - sigma) * x0 (the flow's convention, policy.py), with the velocity target
noise - x0. Neither needs the sampler's log-probabilities, so they train the same way whatever sampled x0.

Each sample's fresh noise comes from its own generator (seeded from run seed, GRPO step, global sample index, as
the sampling noise, on a stream of its own): the same on any process split and after a resume.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .awm_loss import awm_step_loss
from .ema import swapped_weights
from .loss import StepLoss
from .nft_loss import nft_step_loss
from .policy import FlowPolicy, PromptEmbeds
from .sampling import sample_generators


class OldPolicy:
    """The LoRA as it sampled this step (DiffusionNFT's v_old), for the updates after the step's first.

    DiffusionNFT's reference code keeps v_old as a second adapter, samples with it, and moves it towards the policy
    after every round of samples with a decay (its decay_type 1, the default: min(0.001 * step, 0.5); decay_type 0
    copies the policy). Here v_old is the policy that sampled, decay_type 0, so that sampling stays the trainer's
    shared sampling with the live LoRA; with the default schedule the two differ by a decay of at most 0.05 in the
    first 50 rounds.
    """

    def __init__(self, params: dict[str, torch.nn.Parameter]):
        self.weights = {n: p.detach().clone() for n, p in params.items()}

    def swapped_in(self, params: dict[str, torch.nn.Parameter]):
        return swapped_weights(params, self.weights)


def forward_noise(policy: FlowPolicy, seed: int, step: int, indices: Sequence[int], count: int, height: int,
                  width: int) -> torch.Tensor:
    """[B, count, C, h, w]: `count` fresh noises for each sample (one per trained step), on the CPU."""
    generators = sample_generators(seed, step, indices, stream="forward")
    return torch.stack([policy.initial_noise(generators, height, width).cpu() for _ in range(count)], dim=1)


def forward_step_loss(policy: FlowPolicy, config, x0: torch.Tensor, noise: torch.Tensor, sigma: float,
                      embeds: PromptEmbeds, advantages: torch.Tensor, named_params: dict[str, torch.nn.Parameter],
                      old: OldPolicy | None) -> StepLoss:
    """One trained sigma of a batch under train.algorithm "nft" or "awm". `old` None: the live LoRA is the one that
    sampled (the step's first update), so v_old is the trained forward, detached; else `old` is swapped in."""
    t, s = config.train, config.sample
    x0, noise = x0.to(policy.device).float(), noise.to(policy.device).float()
    sigmas = torch.full((len(x0),), sigma, dtype=torch.float32, device=policy.device)
    x_t = sigma * noise + (1.0 - sigma) * x0
    old_velocity = None
    if t.algorithm == "nft" and old is not None:  # before the trained forward: the swap writes the LoRA in place
        with torch.no_grad(), old.swapped_in(named_params):
            old_velocity = policy.velocity(x_t, sigmas, embeds, s.guidance)
    velocity = policy.velocity(x_t, sigmas, embeds, s.guidance)
    ref_velocity = None
    if t.beta > 0:
        with torch.no_grad(), policy.reference():
            ref_velocity = policy.velocity(x_t, sigmas, embeds, s.guidance)
    advantages = advantages.to(policy.device)
    if t.algorithm == "awm":
        return awm_step_loss(velocity, noise, x0, sigmas, advantages, t.adv_clip, t.awm_weighting, t.beta,
                             ref_velocity)  # fmt: skip
    if old_velocity is None:
        old_velocity = velocity.detach()
    return nft_step_loss(velocity, old_velocity, x_t, x0, sigmas, advantages, t.nft_beta, t.adv_clip, t.beta,
                         ref_velocity)  # fmt: skip

"""The clipped-ratio objective and the KL term on hand-made numbers."""

from __future__ import annotations

import math

import pytest
import torch

from training.grpo.loss import grpo_step_loss, step_kl


def test_clipped_objective_takes_the_pessimistic_side():
    old = torch.zeros(4)
    log_prob = torch.log(torch.tensor([1.5, 0.5, 1.5, 0.5]))
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0])
    terms = grpo_step_loss(log_prob, old, advantages, clip_range=0.2)
    # A>0, ratio 1.5: min gain -> -1.2; A>0, ratio 0.5: -0.5; A<0, ratio 1.5: +1.5; A<0, ratio 0.5: +0.8
    torch.testing.assert_close(terms.policy_loss, torch.tensor([-1.2, -0.5, 1.5, 0.8]))
    assert terms.clipped.tolist() == [True, True, True, True]
    torch.testing.assert_close(terms.ratio, torch.tensor([1.5, 0.5, 1.5, 0.5]))


def test_advantages_are_clipped_to_plus_minus_adv_clip():
    terms = grpo_step_loss(torch.zeros(3), torch.zeros(3), torch.tensor([-20.0, 3.0, 20.0]), 1e-4, adv_clip=5.0)
    torch.testing.assert_close(terms.policy_loss, torch.tensor([5.0, -3.0, -5.0]))


def test_gradient_inside_the_clip_range_is_minus_advantage_times_ratio():
    log_prob = torch.tensor([0.01, -0.01], requires_grad=True)
    terms = grpo_step_loss(log_prob, torch.zeros(2), torch.tensor([2.0, -3.0]), clip_range=0.1)
    terms.loss.sum().backward()
    expected = torch.tensor([-2.0 * math.exp(0.01), 3.0 * math.exp(-0.01)])
    torch.testing.assert_close(log_prob.grad, expected)
    # outside the range on the clipped side there is no gradient
    log_prob = torch.tensor([0.5], requires_grad=True)
    grpo_step_loss(log_prob, torch.zeros(1), torch.tensor([1.0]), clip_range=0.1).loss.sum().backward()
    assert log_prob.grad.item() == 0.0


def test_kl_is_the_gaussian_kl_per_element_and_weighted_by_beta():
    mean, ref, std = torch.full((2, 3), 1.0), torch.zeros(2, 3), torch.full((2, 1), 0.5)
    torch.testing.assert_close(step_kl(mean, ref, std), torch.full((2,), 1.0 / (2 * 0.25)))
    torch.testing.assert_close(step_kl(ref, ref, std), torch.zeros(2))
    assert torch.all(step_kl(mean, ref, torch.zeros(2, 1)) == 0)  # deterministic step: no KL
    terms = grpo_step_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), 1e-4, beta=0.1, mean=mean, ref_mean=ref,
                           std=std)  # fmt: skip
    torch.testing.assert_close(terms.loss, torch.full((2,), 0.1 * 2.0))
    with pytest.raises(ValueError, match="beta > 0 needs"):
        grpo_step_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), 1e-4, beta=0.1)

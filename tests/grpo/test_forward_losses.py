"""DiffusionNFT's and AWM's losses on hand-made tensors, against the formulas written out here."""

from __future__ import annotations

import pytest
import torch

from training.grpo.awm_loss import awm_step_loss
from training.grpo.nft_loss import nft_step_loss, optimality


def _tensors(seed=0, b=3):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(b, 2, 4, 4, generator=g)
    noise = torch.randn(b, 2, 4, 4, generator=g)
    t = torch.tensor([0.9, 0.5, 0.2])[:b]
    x_t = t.view(-1, 1, 1, 1) * noise + (1 - t.view(-1, 1, 1, 1)) * x0
    v = torch.randn(b, 2, 4, 4, generator=g)
    v_old = v + 0.1 * torch.randn(b, 2, 4, 4, generator=g)
    return x0, noise, t, x_t, v, v_old


def test_optimality_maps_clipped_advantages_to_0_1():
    a = torch.tensor([-9.0, -5.0, 0.0, 2.5, 5.0, 7.0])
    assert optimality(a, 5.0).tolist() == [0.0, 0.0, 0.5, 0.75, 1.0, 1.0]


@pytest.mark.parametrize("beta", [1.0, 0.1])
def test_nft_loss_is_the_weighted_matching_of_the_implicit_policies(beta):
    x0, noise, t, x_t, v, v_old = _tensors()
    adv = torch.tensor([2.0, -1.0, 0.0])
    terms = nft_step_loss(v, v_old, x_t, x0, t, adv, beta, adv_clip=5.0)
    target = noise - x0
    for i in range(3):
        r = min(max(adv[i].item() / 5.0 / 2 + 0.5, 0.0), 1.0)
        vp = (1 - beta) * v_old[i] + beta * v[i]
        vn = (1 + beta) * v_old[i] - beta * v[i]
        # x0 prediction error = t (v_target - v): the matching loss in velocity space, adaptively weighted
        ep, en = t[i] * (target[i] - vp), t[i] * (target[i] - vn)
        pos = (ep**2).mean() / ep.abs().mean()
        neg = (en**2).mean() / en.abs().mean()
        expected = 5.0 * (r * pos + (1 - r) * neg) / beta
        assert terms.loss[i].item() == pytest.approx(expected.item(), rel=1e-5)


def test_nft_gradient_pushes_towards_the_target_for_good_samples_and_away_for_bad():
    x0, noise, t, x_t, v, _ = _tensors(b=2)
    target = noise - x0
    v = (0.5 * target + 0.5 * v).requires_grad_(True)
    for adv, sign in ((torch.tensor([5.0, 5.0]), -1), (torch.tensor([-5.0, -5.0]), 1)):
        v.grad = None
        nft_step_loss(v, v.detach(), x_t, x0, t, adv, 1.0).loss.sum().backward()
        # a gradient step -lr * grad moves v towards the target (sign -1: grad . (target - v) < 0) or away
        assert sign * (v.grad * (target - v.detach())).sum().item() > 0


def test_nft_kl_is_the_velocity_mse_to_the_reference():
    x0, noise, t, x_t, v, v_old = _tensors()
    ref = v_old * 0.5
    adv = torch.zeros(3)
    plain = nft_step_loss(v, v_old, x_t, x0, t, adv, 1.0)
    with_kl = nft_step_loss(v, v_old, x_t, x0, t, adv, 1.0, kl_weight=0.3, ref_velocity=ref)
    kl = ((v - ref) ** 2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(with_kl.loss, plain.loss + 0.3 * kl)


@pytest.mark.parametrize("weighting", ["uniform", "t"])
def test_awm_loss_is_the_advantage_times_the_matching_loss(weighting):
    x0, noise, t, _, v, _ = _tensors()
    adv = torch.tensor([7.0, -1.5, 0.25])
    terms = awm_step_loss(v, noise, x0, t, adv, adv_clip=5.0, weighting=weighting)
    for i in range(3):
        matching = ((v[i] - (noise[i] - x0[i])) ** 2).mean()
        if weighting == "t":
            matching = matching * t[i]
        expected = min(max(adv[i].item(), -5.0), 5.0) * matching
        assert terms.loss[i].item() == pytest.approx(expected.item(), rel=1e-6)


def test_awm_gradient_equals_the_ppo_form_at_ratio_one():
    """Flow-Factory's AWM: max(-A r, -A clip(r)) with r = exp(l_old - l); at l = l_old the gradient is A grad l."""
    x0, noise, t, _, v, _ = _tensors()
    adv = torch.tensor([1.0, -2.0, 0.5])
    a = v.clone().requires_grad_(True)
    awm_step_loss(a, noise, x0, t, adv).loss.sum().backward()
    b = v.clone().requires_grad_(True)
    ell = ((b - (noise - x0)) ** 2).mean(dim=(1, 2, 3))
    ratio = torch.exp(ell.detach() - ell)
    ppo = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - 1e-4, 1 + 1e-4))
    ppo.sum().backward()
    torch.testing.assert_close(a.grad, b.grad)

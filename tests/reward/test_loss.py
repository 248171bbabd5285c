"""The three pairwise losses on hand-made cases: values computed by hand, tails, gradients, MC convergence."""

import math

import numpy as np
import pytest
import torch

from training.reward.train.losses import (
    LOSSES,
    bt_loss,
    gaussian_bt_loss,
    mc_gaussian_bt_loss,
    pair_loss,
    pair_noise,
    preference_probability,
)  # fmt: skip


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_gaussian_bt_matches_the_formula_by_hand():
    # d = 1, std_c = std_r = 1/sqrt(2) -> s = 1 -> z = 1
    ls = math.log(1 / math.sqrt(2))
    loss = gaussian_bt_loss(t(1.0), t(ls), t(0.0), t(ls))
    assert loss.item() == pytest.approx(-math.log(phi(1.0)), rel=1e-6)  # 0.17275...
    # d = -0.5, std_c = 2, std_r = 1 -> z = -0.5 / sqrt(5)
    loss = gaussian_bt_loss(t(0.25), t(math.log(2)), t(0.75), t(0.0))
    assert loss.item() == pytest.approx(-math.log(phi(-0.5 / math.sqrt(5))), rel=1e-6)
    # equal means: P = 1/2 whatever the stds
    assert gaussian_bt_loss(t(3.0, -1.0), t(0.0, 2.0), t(3.0, -1.0), t(-1.0, 0.5)).tolist() == \
        pytest.approx([math.log(2)] * 2, rel=1e-6)


def test_gaussian_bt_is_finite_far_in_the_tail():
    # z = -40: Phi underflows in float32; -log Phi(z) ~ z^2/2 + log(-z) + log(sqrt(2 pi))
    mean_c = t(-40.0).requires_grad_()
    loss = gaussian_bt_loss(mean_c, t(math.log(1 / math.sqrt(2))), t(0.0), t(math.log(1 / math.sqrt(2))))
    expected = 800 + math.log(40) + 0.5 * math.log(2 * math.pi)
    assert loss.item() == pytest.approx(expected, rel=1e-3)
    loss.backward()
    assert torch.isfinite(mean_c.grad).all() and mean_c.grad.item() < -39  # d/dz ~ -z
    # tiny stds (log_std -7) do not underflow the pair std
    assert torch.isfinite(gaussian_bt_loss(t(0.1), t(-7.0), t(0.0), t(-7.0))).all()


def test_gaussian_bt_gradients_point_the_right_way():
    mean_c, mean_r = t(0.5).requires_grad_(), t(0.0).requires_grad_()
    log_std_c, log_std_r = t(0.0).requires_grad_(), t(0.0).requires_grad_()
    gaussian_bt_loss(mean_c, log_std_c, mean_r, log_std_r).backward()
    assert mean_c.grad < 0 < mean_r.grad  # raise the chosen, lower the rejected
    assert log_std_c.grad > 0  # right order: more certainty (smaller std) lowers the loss
    wrong_c, wrong_ls = t(-0.5).requires_grad_(), t(0.0).requires_grad_()
    gaussian_bt_loss(wrong_c, wrong_ls, t(0.0), t(0.0)).backward()
    assert wrong_ls.grad < 0  # wrong order: a larger std lowers the loss (uncertainty absorbs the error)


def test_plain_bt_by_hand_and_ignores_std():
    assert bt_loss(t(0.0), t(0.0)).item() == pytest.approx(math.log(2))
    assert bt_loss(t(math.log(3)), t(0.0)).item() == pytest.approx(-math.log(0.75), rel=1e-6)
    assert bt_loss(t(-100.0), t(0.0)).item() == pytest.approx(100.0, rel=1e-6)  # no overflow
    log_std = t(0.3).requires_grad_()
    loss = pair_loss("bt", t(1.0), log_std, t(0.0), t(0.0))
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    assert not loss.requires_grad or torch.autograd.grad(loss, log_std, allow_unused=True)[0] is None


def test_mc_loss_with_given_noise_by_hand():
    # d = 1, s = 1, eps = (+1, -1): z = (2, 0) -> mean(softplus(-2), softplus(0))
    ls = math.log(1 / math.sqrt(2))
    noise = torch.tensor([[1.0, -1.0]])
    loss = mc_gaussian_bt_loss(t(1.0), t(ls), t(0.0), t(ls), noise)
    expected = 0.5 * (math.log(1 + math.exp(-2)) + math.log(2))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # the noise is reparameterised: the std gets a gradient
    log_std = t(0.0).requires_grad_()
    mc_gaussian_bt_loss(t(1.0), log_std, t(0.0), t(0.0), torch.tensor([[1.0, -1.0]])).backward()
    assert log_std.grad is not None and log_std.grad.item() != 0


def test_mc_loss_converges_to_the_gaussian_expectation():
    # E[-log sigmoid(z)], z ~ N(d, s^2), by Gauss-Hermite quadrature; compare with 200k samples.
    d, s = 0.7, 1.3
    x, w = np.polynomial.hermite_e.hermegauss(80)
    expected = float(np.sum(w * np.logaddexp(0.0, -(d + s * x))) / np.sqrt(2 * np.pi))
    ls = math.log(s / math.sqrt(2))
    noise = torch.randn(1, 200_000, generator=torch.Generator().manual_seed(0))
    loss = mc_gaussian_bt_loss(t(d), t(ls), t(0.0), t(ls), noise)
    assert loss.item() == pytest.approx(expected, abs=5e-3)
    # and with a vanishing std it is plain BT
    tiny = mc_gaussian_bt_loss(t(d), t(-7.0), t(0.0), t(-7.0), torch.randn(1, 64))
    assert tiny.item() == pytest.approx(math.log(1 + math.exp(-d)), rel=1e-3)


def test_pair_loss_dispatch_and_probability():
    args = (t(0.4, -0.2), t(0.1, 0.0), t(0.0, 0.3), t(-0.2, 0.5))
    for kind in LOSSES:
        loss = pair_loss(kind, *args, mc_samples=32, generator=torch.Generator().manual_seed(1))
        assert loss.shape == (2,) and torch.isfinite(loss).all()
        p = preference_probability(kind, *args)
        assert ((p > 0.5) == (args[0] > args[2])).all()
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        pair_loss("hinge", *args)
    with pytest.raises(ValueError, match="noise must be"):
        mc_gaussian_bt_loss(*args, torch.zeros(3, 4))


def test_pair_noise_is_a_function_of_seed_and_step():
    a = pair_noise(0, 5, 8, 16)
    assert torch.equal(a, pair_noise(0, 5, 8, 16))
    assert not torch.equal(a, pair_noise(0, 6, 8, 16)) and not torch.equal(a, pair_noise(1, 5, 8, 16))
    # a process's slice of the global batch is the same whatever the split
    assert torch.equal(pair_noise(0, 5, 8, 16)[4:8], a[4:8])

"""sde_step / cps_step: the ODE limit, diffusers equivalence, and the log-probability against an independent density."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.grpo.sde import cps_step, gaussian_log_prob, sde_step

SIGMA_PAIRS = [(1.0, 0.8), (0.8, 0.55), (0.3, 0.1), (0.1, 0.0)]


def _random(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("step", [sde_step, cps_step])
@pytest.mark.parametrize("sigma,sigma_next", SIGMA_PAIRS)
def test_noise_level_zero_is_the_euler_ode_step(step, sigma, sigma_next):
    x, v = _random((3, 4, 8, 8), 0), _random((3, 4, 8, 8), 1)
    prev, log_prob, mean, std = step(v, x, sigma, sigma_next, 0.0, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(prev, x + v * (sigma_next - sigma), rtol=0, atol=1e-6)
    torch.testing.assert_close(mean, prev)
    assert torch.all(std == 0)
    assert torch.all(log_prob == 0)  # a deterministic step carries no log-probability


def test_ode_trajectory_equals_diffusers_flow_match_euler():
    """A whole noise-0 trajectory equals FlowMatchEulerDiscreteScheduler.step for the same (shifted) sigmas."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / 6, 6), mu=0.8)
    sigmas = scheduler.sigmas
    velocity_field = _random((2, 16, 8, 8), 7)  # a fixed linear "model": v = W * x + b
    bias = _random((2, 16, 8, 8), 8)
    x_ours = x_theirs = _random((2, 16, 8, 8), 9)
    for i, t in enumerate(scheduler.timesteps):
        x_theirs = scheduler.step(0.3 * velocity_field * x_theirs + bias, t, x_theirs, return_dict=False)[0]
        v = 0.3 * velocity_field * x_ours + bias
        x_ours = sde_step(v, x_ours, sigmas[i].item(), sigmas[i + 1].item(), 0.0)[0]
    torch.testing.assert_close(x_ours, x_theirs, rtol=0, atol=1e-5)


def _reference_sde(x, v, sigma, sigma_next, a):
    """The issue's formulas, written independently in float64 numpy."""
    x, v = x.double().numpy(), v.double().numpy()
    dt = sigma_next - sigma
    std_t = a * math.sqrt(sigma / (1 - (sigma_next if sigma == 1 else sigma)))
    mean = x * (1 + std_t**2 * dt / (2 * sigma)) + v * (1 + std_t**2 * (1 - sigma) / (2 * sigma)) * dt
    return mean, std_t * math.sqrt(-dt)


def _normal_logpdf_mean(sample, mean, std):
    """log N(sample; mean, std^2) per element, averaged over non-batch dims (float64 numpy)."""
    logpdf = -0.5 * ((sample - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return logpdf.reshape(logpdf.shape[0], -1).mean(axis=1)


@pytest.mark.parametrize("sigma,sigma_next", SIGMA_PAIRS)
def test_sde_mean_std_and_log_prob_match_an_independent_gaussian(sigma, sigma_next):
    x, v = _random((4, 4, 6, 6), 2), _random((4, 4, 6, 6), 3)
    prev, log_prob, mean, std = sde_step(v, x, sigma, sigma_next, 0.9, generator=torch.Generator().manual_seed(4))
    ref_mean, ref_std = _reference_sde(x, v, sigma, sigma_next, 0.9)
    np.testing.assert_allclose(mean.numpy(), ref_mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std.flatten().numpy(), ref_std, rtol=1e-5)
    expected = _normal_logpdf_mean(prev.double().numpy(), ref_mean, ref_std)
    np.testing.assert_allclose(log_prob.numpy(), expected, rtol=1e-5, atol=1e-5)
    # torch's own Normal agrees too, for a given prev_sample
    other = _random((4, 4, 6, 6), 11)
    lp = sde_step(v, x, sigma, sigma_next, 0.9, prev_sample=other)[1]
    torch_lp = torch.distributions.Normal(torch.from_numpy(ref_mean), ref_std).log_prob(other.double()).mean((1, 2, 3))
    torch.testing.assert_close(lp.double(), torch_lp, rtol=1e-5, atol=1e-5)


def test_per_sample_sigmas_equal_scalar_steps():
    x, v = _random((3, 2, 4, 4), 0), _random((3, 2, 4, 4), 1)
    sigma, sigma_next = torch.tensor([1.0, 0.6, 0.2]), torch.tensor([0.7, 0.3, 0.0])
    target = _random((3, 2, 4, 4), 2)
    _, lp, mean, std = sde_step(v, x, sigma, sigma_next, 0.7, prev_sample=target)
    for i in range(3):
        _, lp_i, mean_i, std_i = sde_step(v[i:i + 1], x[i:i + 1], sigma[i].item(), sigma_next[i].item(), 0.7,
                                          prev_sample=target[i:i + 1])
        torch.testing.assert_close(mean[i:i + 1], mean_i)
        torch.testing.assert_close(lp[i:i + 1], lp_i)
        torch.testing.assert_close(std[i].flatten(), std_i.flatten())


def test_samples_follow_the_step_gaussian():
    """Drawn samples have the step's mean and std (checks the noise is scaled and added correctly)."""
    x, v = torch.zeros(1, 20000), torch.ones(1, 20000)
    prev, _, mean, std = sde_step(v, x, 0.6, 0.4, 0.9, generator=torch.Generator().manual_seed(0))
    residual = (prev - mean) / std
    assert abs(residual.mean().item()) < 0.03 and abs(residual.std().item() - 1) < 0.03


def test_generator_list_makes_each_sample_independent_of_its_batch():
    x, v = _random((4, 3, 4, 4), 0), _random((4, 3, 4, 4), 1)

    def gens(seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    full = sde_step(v, x, 0.5, 0.3, 0.9, generator=gens([10, 11, 12, 13]))[0]
    part = sde_step(v[2:], x[2:], 0.5, 0.3, 0.9, generator=gens([12, 13]))[0]
    torch.testing.assert_close(full[2:], part, rtol=0, atol=0)


def test_cps_keeps_the_noise_coefficient_and_log_prob_is_gaussian():
    x, v = _random((2, 3, 4, 4), 0), _random((2, 3, 4, 4), 1)
    sigma, sigma_next, a = 0.7, 0.4, 0.8
    prev, lp, mean, std = cps_step(v, x, sigma, sigma_next, a, generator=torch.Generator().manual_seed(3))
    expected_std = sigma_next * math.sin(a * math.pi / 2)
    np.testing.assert_allclose(std.flatten().numpy(), expected_std, rtol=1e-6)
    x0, x1 = x - sigma * v, x + (1 - sigma) * v
    coefficient = math.sqrt(sigma_next**2 - expected_std**2)
    torch.testing.assert_close(mean, (1 - sigma_next) * x0 + coefficient * x1, rtol=1e-5, atol=1e-6)
    # fresh noise variance + kept noise coefficient^2 == sigma_next^2: the marginal's noise level is preserved
    assert math.isclose(coefficient**2 + expected_std**2, sigma_next**2, rel_tol=1e-9)
    expected = _normal_logpdf_mean(prev.double().numpy(), mean.double().numpy(), expected_std)
    np.testing.assert_allclose(lp.numpy(), expected, rtol=1e-5)


def test_gaussian_log_prob_is_fp32_and_batched():
    x = torch.zeros(2, 3, dtype=torch.bfloat16)
    lp = gaussian_log_prob(x.float(), torch.zeros(2, 3), torch.ones(2, 1))
    assert lp.shape == (2,) and lp.dtype == torch.float32
    np.testing.assert_allclose(lp.numpy(), -0.5 * np.log(2 * np.pi), rtol=1e-6)


def test_bad_sigma_shape_is_refused():
    with pytest.raises(ValueError, match="sigma must be"):
        sde_step(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0.5, 0.4, 0.3]), 0.2, 0.9)

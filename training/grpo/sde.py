"""One reverse step of the flow-matching sampler as a Gaussian policy, with its log-probability.

Flux is trained as a flow x_t = (1 - t) x_0 + t x_1 (x_1 noise) with a velocity v = x_1 - x_0, and samples by
integrating the ODE dx = v dt from t = 1 to t = 0. Flow-GRPO turns the ODE into an SDE with the same marginals so
that each step is a Gaussian whose log-density can be differentiated: that is the "policy" GRPO trains.

`sde_step` (the Flow-GRPO SDE, Euler-Maruyama):
    dt    = sigma_next - sigma                      (negative)
    std_t = a * sqrt(sigma / (1 - sigma))           (1 - sigma_next in the denominator when sigma == 1)
    mean  = x * (1 + std_t^2 dt / (2 sigma)) + v * (1 + std_t^2 (1 - sigma) / (2 sigma)) * dt
    std   = std_t * sqrt(-dt)

`cps_step` (coefficients-preserving sampling, Wang & Yu 2025): the next sample keeps the noise coefficient of the
flow exactly, mixing a fresh noise of std sigma_next * sin(a pi / 2) with the predicted noise:
    x0_hat = x - sigma v,  x1_hat = x + (1 - sigma) v
    std    = sigma_next * sin(a pi / 2)
    mean   = (1 - sigma_next) x0_hat + sqrt(sigma_next^2 - std^2) x1_hat

Both return log_prob as the true Gaussian log-density of prev_sample (fp32), averaged over all non-batch
dimensions so that it does not scale with the image size. A step whose std is 0 (noise level 0, or the last CPS
step) is deterministic: prev_sample is the mean and log_prob is 0, i.e. the step carries no policy gradient.
"""

from __future__ import annotations

import math

import torch

SDE_TYPES = ("sde", "cps")
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _per_sample(value: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A float or a [B] tensor as fp32 of shape [B, 1, ..., 1], broadcastable against `like`."""
    t = torch.as_tensor(value, dtype=torch.float32, device=like.device)
    if t.ndim == 0:
        t = t.expand(like.shape[0])
    if t.ndim != 1 or t.shape[0] != like.shape[0]:
        raise ValueError(f"sigma must be a float or a tensor of shape [{like.shape[0]}], got shape {tuple(t.shape)}")
    return t.view(-1, *([1] * (like.ndim - 1)))


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, std^2) averaged over non-batch dims, shape [B]; 0 where std == 0 (a deterministic step)."""
    deterministic = std == 0
    safe_std = torch.where(deterministic, torch.ones_like(std), std)
    elementwise = -((x - mean) ** 2) / (2.0 * safe_std**2) - torch.log(safe_std) - _LOG_SQRT_2PI
    elementwise = torch.where(deterministic, torch.zeros_like(elementwise), elementwise)
    return elementwise.mean(dim=tuple(range(1, x.ndim)))


def _draw(mean: torch.Tensor, std: torch.Tensor, generator) -> torch.Tensor:
    """mean + std * noise; `generator` is one torch.Generator or a list of one per sample (batch-invariant draws)."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != mean.shape[0]:
            raise ValueError(f"got {len(generator)} generators for a batch of {mean.shape[0]}")
        noise = torch.stack(
            [torch.randn(mean.shape[1:], generator=g, device=g.device, dtype=torch.float32) for g in generator]
        ).to(mean.device)
    else:
        device = generator.device if generator is not None else mean.device
        noise = torch.randn(mean.shape, generator=generator, device=device, dtype=torch.float32).to(mean.device)
    return mean + std * noise


def sde_step(
    velocity: torch.Tensor,
    sample: torch.Tensor,
    sigma: float | torch.Tensor,
    sigma_next: float | torch.Tensor,
    noise_level: float,
    prev_sample: torch.Tensor | None = None,
    generator: torch.Generator | list[torch.Generator] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flow-GRPO SDE step from `sigma` to `sigma_next`: returns (prev_sample, log_prob [B], mean, std), all fp32.

    `prev_sample` given: its log-probability under this step (training); otherwise one is drawn with `generator`.
    """
    # bf16 loses the small std_t^2 corrections and overflows the squares: the step is always computed in fp32.
    velocity, sample = velocity.float(), sample.float()
    sigma_b, sigma_next_b = _per_sample(sigma, sample), _per_sample(sigma_next, sample)
    dt = sigma_next_b - sigma_b
    denominator = 1.0 - torch.where(sigma_b >= 1.0, sigma_next_b, sigma_b)
    std_t = noise_level * torch.sqrt(sigma_b / denominator)
    mean = (
        sample * (1.0 + std_t**2 * dt / (2.0 * sigma_b))
        + velocity * (1.0 + std_t**2 * (1.0 - sigma_b) / (2.0 * sigma_b)) * dt
    )
    std = std_t * torch.sqrt(-dt)
    if prev_sample is None:
        prev_sample = _draw(mean, std, generator)
    prev_sample = prev_sample.float()
    return prev_sample, gaussian_log_prob(prev_sample.detach(), mean, std), mean, std


def cps_step(
    velocity: torch.Tensor,
    sample: torch.Tensor,
    sigma: float | torch.Tensor,
    sigma_next: float | torch.Tensor,
    noise_level: float,
    prev_sample: torch.Tensor | None = None,
    generator: torch.Generator | list[torch.Generator] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Coefficients-preserving step (same signature and outputs as `sde_step`)."""
    velocity, sample = velocity.float(), sample.float()
    sigma_b, sigma_next_b = _per_sample(sigma, sample), _per_sample(sigma_next, sample)
    std = sigma_next_b * math.sin(noise_level * math.pi / 2.0)
    predicted_x0 = sample - sigma_b * velocity
    predicted_noise = sample + (1.0 - sigma_b) * velocity
    noise_coefficient = torch.sqrt(torch.clamp(sigma_next_b**2 - std**2, min=0.0))
    mean = (1.0 - sigma_next_b) * predicted_x0 + noise_coefficient * predicted_noise
    if prev_sample is None:
        prev_sample = _draw(mean, std, generator)
    prev_sample = prev_sample.float()
    return prev_sample, gaussian_log_prob(prev_sample.detach(), mean, std), mean, std


def step_fn(sde_type: str):
    """The step function for a config's `sample.sde_type`."""
    if sde_type == "sde":
        return sde_step
    if sde_type == "cps":
        return cps_step
    raise ValueError(f"sde_type must be one of {SDE_TYPES}, got {sde_type!r}")

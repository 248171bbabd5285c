"""Stop a training run at the first NaN or infinity, before it is written anywhere.

A diverged run must not checkpoint or export its weights (a NaN LoRA or scorer loads fine and then produces
nothing but NaNs), and its metrics must not quietly turn NaN into null. Each check raises NonFiniteError naming
what went non-finite and at which step; the trainers add where the last good checkpoint is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class NonFiniteError(RuntimeError):
    """Training produced a NaN or infinite loss, reward, gradient or weight; nothing non-finite was saved."""


def _bad(value) -> bool:
    if isinstance(value, torch.Tensor):
        return not bool(torch.isfinite(value.detach()).all())
    return not math.isfinite(float(value))


def require_finite(what: str, value, step: int | None = None, hint: str = "") -> None:
    """Raise NonFiniteError if `value` (a number or a tensor) holds a NaN or an infinity."""
    if _bad(value):
        scalar = not isinstance(value, torch.Tensor) or value.numel() == 1
        shown = f"is {float(value)}" if scalar else "holds NaN or infinite values"
        at = f"step {step}: " if step is not None else ""
        raise NonFiniteError(f"{at}{what} {shown}; training stopped before it was used or saved"
                             + (f". {hint}" if hint else ""))


def first_non_finite(named: Iterable[tuple[str, torch.Tensor]]) -> str | None:
    """The name of the first tensor holding a NaN or an infinity, or None."""
    for name, tensor in named:
        if _bad(tensor):
            return name
    return None


def require_finite_weights(named: Iterable[tuple[str, torch.Tensor]], what: str, step: int | None = None,
                           hint: str = "") -> None:
    name = first_non_finite(named)
    if name is not None:
        at = f"step {step}: " if step is not None else ""
        raise NonFiniteError(f"{at}{what}: {name} holds NaN or infinite values; nothing was saved"
                             + (f". {hint}" if hint else ""))


class NonFiniteScoreError(NonFiniteError, FloatingPointError, ValueError):
    """A scorer gave a NaN or infinite reward mean or std (fp16/bf16 overflow, or a broken checkpoint).

    Why the three bases: every CLI and node already reports NonFiniteError or ValueError as one line, and callers
    of Scorer.score written against its earlier FloatingPointError keep working.
    """


def require_finite_scores(mean: torch.Tensor, std: torch.Tensor, what: str = "the scorer") -> None:
    """Raise NonFiniteScoreError if any reward mean or std is NaN or infinite, saying how many and why."""
    bad = ~(torch.isfinite(mean) & torch.isfinite(std))
    if bool(bad.any()):
        raise NonFiniteScoreError(
            f"{what} gave NaN or infinite scores for {int(bad.sum())} of {bad.numel()} images: its weights overflow "
            "in this precision or are broken; load it in fp32, or check the checkpoint")

"""Pruning schedules: "K1@F1,K2@F2,...": after a fraction F of the sampling steps keep the K best candidates.

A fraction maps to the step after which candidates are scored: round(F * steps), at least 1 and at most steps - 1
(scoring after the last step is the final ranking, not pruning). The x0 scored at that point is the prediction of
the forward just made, so a pruning point costs a decode and a score per living candidate, never a forward.
"none" (or an empty text) is plain best-of-N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The best schedule measured on the shapes world (docs/bestofn.md: the highest top-1 oracle rate of best-of-16 at no
# more than half its forwards, with and without the shapes-grpo LoRA); default_schedule scales it to other N and K.
DEFAULT_SCHEDULE = "8@0.34,2@0.5"


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message says which part and what was expected."""


@dataclass(frozen=True)
class Stage:
    keep: int  # survivors after this point
    fraction: float  # as written
    step: int  # number of steps done when the candidates are scored (1 .. steps - 1)


def parse_schedule(text: str | None) -> list[tuple[int, float]]:
    """(keep, fraction) pairs in the order written; checks the syntax, the fractions and that keep shrinks."""
    text = (text or "").strip()
    if text.lower() in ("", "none"):
        return []
    pairs = []
    for part in text.split(","):
        part = part.strip()
        keep_text, at, fraction_text = part.partition("@")
        if not at:
            raise ScheduleError(f"--prune {text!r}: {part!r} is not KEEP@FRACTION (for example 4@0.25)")
        try:
            keep, fraction = int(keep_text), float(fraction_text)
        except ValueError:
            raise ScheduleError(f"--prune {text!r}: {part!r} is not KEEP@FRACTION with a whole KEEP and a number "
                                "FRACTION (for example 4@0.25)") from None
        if not (math.isfinite(fraction) and 0.0 < fraction < 1.0):
            raise ScheduleError(f"--prune {text!r}: fraction {fraction_text} lies outside (0, 1)")
        if keep < 1:
            raise ScheduleError(f"--prune {text!r}: keep {keep} must be at least 1")
        pairs.append((keep, fraction))
    for (k0, f0), (k1, f1) in zip(pairs, pairs[1:], strict=False):
        if not f1 > f0:
            raise ScheduleError(f"--prune {text!r}: fractions must increase ({f0:g} then {f1:g})")
        if not k1 < k0:
            raise ScheduleError(f"--prune {text!r}: the schedule does not shrink ({k0} then {k1} survivors)")
    return pairs


def resolve_schedule(text: str | None, n: int, keep: int, steps: int) -> list[Stage]:
    """The stages for N candidates, K kept images and `steps` sampling steps, or a ScheduleError."""
    if n < 1:
        raise ScheduleError(f"--n {n}: expected at least 1 candidate")
    if not 1 <= keep <= n:
        raise ScheduleError(f"--keep {keep}: expected 1 <= K <= N (N = {n})")
    pairs = parse_schedule(text)
    stages = []
    for k, fraction in pairs:
        if k >= (stages[-1].keep if stages else n):
            raise ScheduleError(f"--prune {text!r}: {k}@{fraction:g} does not shrink the "
                                f"{stages[-1].keep if stages else n} candidates alive at that point")
        if k < keep:
            raise ScheduleError(f"--prune {text!r}: {k}@{fraction:g} keeps fewer candidates than --keep {keep}")
        step = min(steps - 1, max(1, round(fraction * steps)))
        if steps < 2:
            raise ScheduleError(f"--prune {text!r}: pruning needs at least 2 sampling steps, got {steps}")
        if stages and step <= stages[-1].step:
            raise ScheduleError(f"--prune {text!r}: {k}@{fraction:g} falls on step {step} of {steps}, the same "
                                f"step as the point before it; spread the fractions further apart")
        stages.append(Stage(k, fraction, step))
    return stages


def default_schedule(n: int, keep: int, steps: int) -> str:
    """DEFAULT_SCHEDULE's rule for N candidates and K kept: half of them after a third of the steps, then max(2, K)
    at half way; points that would not shrink, or that fall on the same step, are left out; "none" when nothing is
    left to prune."""
    half, last = n // 2, max(2, keep)
    candidates = [[f"{half}@0.34", f"{last}@0.5"], [f"{last}@0.5"]]  # never fewer than 2 before half way
    for points in candidates:
        text = ",".join(points)
        try:
            if parse_schedule(text) and resolve_schedule(text, n, keep, steps):
                return text
        except ScheduleError:
            continue
    return "none"


def forwards(n: int, stages: list[Stage], steps: int) -> int:
    """Transformer forwards one prompt costs (one forward per living candidate per step)."""
    total, alive, done = 0, n, 0
    for stage in stages:
        total += alive * (stage.step - done)
        alive, done = stage.keep, stage.step
    return total + alive * (steps - done)

"""The settings of one best-of-N run, checked before anything loads."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .schedule import ScheduleError, default_schedule, parse_schedule


@dataclass
class BestOfNConfig:
    model: str  # a FluxPipeline folder, or "shapes"
    scorer: str  # a scorer folder, or "shapes"
    prompts: Path  # .txt (one a line) or .jsonl ("prompt")
    out: Path
    n: int = 16
    keep: int = 1
    prune: str | None = None  # "none": plain best-of-N; None: default_schedule(N, K, steps)
    lora: str | None = None
    seed: int = 0
    num_steps: int | None = None  # None: the model's own settings
    guidance: float | None = None
    height: int | None = None
    width: int | None = None
    device: str = "auto"
    trace: bool = False  # score every step's x0 as well (rank correlations; costs decodes and scores)
    oracle: bool = False  # judge the top-1 images with the shapes pixel oracle (shapes world only)
    limit: int | None = None  # only the first `limit` prompts

    def __post_init__(self):
        self.default_prune = self.prune is None
        if self.default_prune:  # settled again for the model's own step count once it is known (settle_steps)
            self.prune = default_schedule(self.n, self.keep, self.num_steps or 100)

    def settle_steps(self, steps: int) -> None:
        """The default schedule for the real step count (a very short sampling may drop a point)."""
        if self.default_prune:
            self.prune = default_schedule(self.n, self.keep, steps)

    def validate(self) -> None:
        """Everything that can be checked without loading a model; raises ScheduleError / ValueError."""
        if self.n < 1:
            raise ScheduleError(f"--n {self.n}: expected at least 1 candidate")
        if not 1 <= self.keep <= self.n:
            raise ScheduleError(f"--keep {self.keep}: expected 1 <= K <= N, and N is {self.n}")
        pairs = parse_schedule(self.prune)
        if pairs and pairs[0][0] >= self.n:
            raise ScheduleError(f"--prune {self.prune!r}: the first point keeps {pairs[0][0]} of {self.n} "
                                "candidates; a schedule must shrink")
        if pairs and pairs[-1][0] < self.keep:
            raise ScheduleError(f"--prune {self.prune!r}: the last point keeps {pairs[-1][0]}, fewer than "
                                f"--keep {self.keep}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit {self.limit}: expected at least 1")
        from training.common.device import check_device

        check_device(self.device)  # `--device cuda` on a machine without one: one line, before the models load
        if self.guidance is not None and not math.isfinite(self.guidance):
            # a guidance embedding turns NaN into NaN images; a model without one ignores it, and report.json
            # would record NaN as the setting
            raise ValueError(f"--guidance {self.guidance}: expected a finite number, e.g. 3.5")

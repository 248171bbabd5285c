"""What an edit scorer says about a batch of edits (a trained scorer and the generative judge alike)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class EditScoreResult:
    mean: torch.Tensor  # [N] float32
    std: torch.Tensor  # [N] float32 (0 for a generative judge)
    regions: list[list[list[float]]]  # per edit: boxes [x0, y0, x1, y1] in 0..1
    mode: str  # "reward" or "judge"
    reasoning: list[str] = field(default_factory=list)  # a generative judge's text per edit ([] otherwise)
    details: list[dict] = field(default_factory=list)  # a generative judge's parsed scores per edit

    def rows(self) -> list[dict]:
        rows = [{"mean": float(m), "std": float(s), "regions": r}
                for m, s, r in zip(self.mean, self.std, self.regions, strict=True)]
        for row, text in zip(rows, self.reasoning, strict=False):
            row["reasoning"] = text
        for row, d in zip(rows, self.details, strict=False):
            row["judge"] = d
        return rows

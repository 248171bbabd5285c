"""Who is alive during a pruned best-of-N, and the record of who was dropped when with what score.

Model-agnostic: the headless sampler (sampler.py) and the ComfyUI node (nodes/logic/bestofn_node.py) step their own
models and call `Pruner.after_step` with the scores of the living candidates' x0 previews. Ranking is on absolute
scores, highest first, ties in candidate order (the same rule as the Rerank node), so `--prune none` followed by
the final ranking is exactly plain sampling followed by Rerank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .schedule import Stage


def order_by_score(scores: torch.Tensor) -> list[int]:
    """Positions sorted by score, highest first; ties keep their order (stable)."""
    return torch.sort(torch.as_tensor(scores, dtype=torch.float32).flatten(), descending=True,
                      stable=True).indices.tolist()  # fmt: skip


@dataclass
class Pruner:
    n: int
    stages: list[Stage]
    steps: int
    alive: list[int] = field(init=False)  # candidate ids still sampled, in batch order
    dropped: list[dict] = field(default_factory=list)  # {"candidate", "step", "fraction", "score"}
    trace: dict[int, list[float | None]] = field(default_factory=dict)  # candidate -> x0 score per step

    def __post_init__(self):
        self.alive = list(range(self.n))
        self._by_step = {s.step: s for s in self.stages}

    def wants_scores(self, step_done: int) -> bool:
        """Whether the candidates' x0 must be scored after `step_done` steps (a pruning point)."""
        return step_done in self._by_step

    def note(self, step_done: int, scores: Sequence[float]) -> None:
        """Record x0 scores (for the rank-correlation trace) of the living candidates after `step_done` steps."""
        for candidate, score in zip(self.alive, scores, strict=True):
            self.trace.setdefault(candidate, [None] * self.steps)[step_done - 1] = float(score)

    def after_step(self, step_done: int, scores: torch.Tensor) -> list[int] | None:
        """At a pruning point: the batch positions to keep (best first is not kept: batch order stays), else None."""
        stage = self._by_step.get(step_done)
        if stage is None:
            return None
        scores = torch.as_tensor(scores, dtype=torch.float32).flatten()
        if scores.numel() != len(self.alive):
            raise ValueError(f"{scores.numel()} scores for {len(self.alive)} living candidates")
        ranked = order_by_score(scores)
        keep = sorted(ranked[:stage.keep])
        for position in ranked[stage.keep:]:
            self.dropped.append({"candidate": self.alive[position], "step": step_done, "fraction": stage.fraction,
                                 "score": float(scores[position])})  # fmt: skip
        self.alive = [self.alive[p] for p in keep]
        return keep

    def final(self, scores: torch.Tensor, keep: int) -> list[tuple[int, int, float]]:
        """(batch position, candidate id, score) of the top `keep` survivors by final score, best first."""
        scores = torch.as_tensor(scores, dtype=torch.float32).flatten()
        if scores.numel() != len(self.alive):
            raise ValueError(f"{scores.numel()} final scores for {len(self.alive)} survivors")
        if keep > len(self.alive):
            # cannot happen once resolve_schedule checked that every stage keeps >= K: guard, not an expected case
            raise ValueError(f"keep {keep} but only {len(self.alive)} candidates survived")
        self.note(self.steps, scores)
        return [(p, self.alive[p], float(scores[p])) for p in order_by_score(scores)[:keep]]

    def record(self) -> dict:
        return {"dropped": list(self.dropped), "survivors": list(self.alive)}


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman rank correlation (average ranks for ties); None when either side is constant or too short."""
    if len(a) < 2:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = (ra.square().sum() * rb.square().sum()).sqrt()
    if denominator == 0:
        return None
    return float((ra * rb).sum() / denominator)


def _ranks(values: Sequence[float]) -> torch.Tensor:
    v = torch.as_tensor(list(values), dtype=torch.float64)
    order = torch.argsort(v, stable=True)
    ranks = torch.empty_like(v)
    ranks[order] = torch.arange(len(v), dtype=torch.float64)
    for value in torch.unique(v):  # ties share their average rank
        tied = v == value
        ranks[tied] = ranks[tied].mean()
    return ranks

"""The generative judge's reward: a weighted geometric mean of its scores (SpatialReward's aggregation).

    semantic = success^(ws / (ws + wo)) * over_editing^(wo / (ws + wo))        (scores divided by score_max)
    quality  = naturalness^(wn / (wn + wa)) * artifacts^(wa / (wn + wa))        (second pass; 1 when it is off)
    reward   = semantic^semantic_exponent * quality^quality_exponent
Defaults are the paper's: success 0.6, over-editing 0.4, naturalness 0.5, artifacts 0.5, exponent 0.8 on the
semantic part (and, as our reading of "exponent 0.8 on the semantic part", 0.2 on the quality part). Every score
is high-is-good: over-editing 0 means the edit changed far too much, artifacts 0 means heavy artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

SEMANTIC = ("instruction_success", "over_editing")
QUALITY = ("naturalness", "artifacts")


@dataclass
class Aggregation:
    success_weight: float = 0.6
    over_editing_weight: float = 0.4
    naturalness_weight: float = 0.5
    artifacts_weight: float = 0.5
    semantic_exponent: float = 0.8
    quality_exponent: float = 0.2
    score_max: float = 10.0

    def __post_init__(self):
        bad = [f.name for f in fields(self) if not isinstance(getattr(self, f.name), (int, float))
               or getattr(self, f.name) < 0]
        if bad or self.score_max <= 0 or self.success_weight + self.over_editing_weight <= 0 \
                or self.naturalness_weight + self.artifacts_weight <= 0:
            raise ValueError(f"judge aggregation: weights and exponents must be numbers >= 0 (with positive sums) and "
                             f"score_max > 0; check {', '.join(bad) or 'the weight sums / score_max'}")

    @classmethod
    def from_dict(cls, data: dict | None) -> Aggregation:
        data = dict(data or {})
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"judge aggregation: unknown fields {unknown}; known: "
                             f"{', '.join(f.name for f in fields(cls))}")
        return cls(**data)


def _unit(value: float, score_max: float) -> float:
    return min(1.0, max(0.0, float(value) / score_max))


def _weighted_geometric(a: float, wa: float, b: float, wb: float) -> float:
    total = wa + wb
    return (a ** (wa / total)) * (b ** (wb / total))


def aggregate(scores: dict, agg: Aggregation | None = None) -> float | None:
    """The reward in [0, 1] from a judge's scores; None when a semantic score is missing."""
    agg = agg or Aggregation()
    if any(scores.get(k) is None for k in SEMANTIC):
        return None
    semantic = _weighted_geometric(_unit(scores["instruction_success"], agg.score_max), agg.success_weight,
                                   _unit(scores["over_editing"], agg.score_max), agg.over_editing_weight)
    reward = semantic ** agg.semantic_exponent
    if all(scores.get(k) is not None for k in QUALITY):
        quality = _weighted_geometric(_unit(scores["naturalness"], agg.score_max), agg.naturalness_weight,
                                      _unit(scores["artifacts"], agg.score_max), agg.artifacts_weight)
        reward *= quality ** agg.quality_exponent
    return reward

"""Pairwise evaluation as in the paper's Table 1: does a judge prefer the perfect image to the perturbed one?

A judge turns each pair into a margin (> 0: prefers chosen, < 0: prefers rejected, 0: no preference). A pair
counts 1 when the margin is positive, 1/2 on a tie (a constant scorer gets 50%, not 0%), 0 otherwise.
Accuracy is reported overall, by perturbation count ("1", "2-3") and by the type of the changed relation.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .train.pairs import Pair, load_pair_images

BUCKETS = ("1", "2-3")


def pair_credit(margins: np.ndarray) -> np.ndarray:
    margins = np.asarray(margins, dtype=np.float64)
    return np.where(margins > 0, 1.0, np.where(margins == 0, 0.5, 0.0))


def _acc(credit: np.ndarray) -> dict:
    return {"accuracy": float(credit.mean()) if len(credit) else None, "pairs": int(len(credit))}


def accuracy_report(pairs: Sequence[Pair], margins) -> dict:
    """{"pairwise_accuracy", "pairs", "by_perturbations": {"1": {accuracy, pairs}, "2-3": ...}, "by_relation"}."""
    margins = np.asarray(margins, dtype=np.float64)
    if len(margins) != len(pairs):
        raise ValueError(f"{len(margins)} margins for {len(pairs)} pairs")
    credit = pair_credit(margins)
    by_count: dict[str, list[float]] = {b: [] for b in BUCKETS}
    by_relation: dict[str, list[float]] = defaultdict(list)
    for pair, c in zip(pairs, credit, strict=True):
        bucket = pair.perturbation_bucket
        if bucket is not None:
            by_count.setdefault(bucket, []).append(c)
        for rel in sorted(set(pair.relations)):
            by_relation[rel].append(c)
    return {
        "pairwise_accuracy": float(credit.mean()) if len(credit) else None,
        "pairs": int(len(credit)),
        "by_perturbations": {k: _acc(np.asarray(v)) for k, v in by_count.items()},
        "by_relation": {k: _acc(np.asarray(v)) for k, v in sorted(by_relation.items())},
    }


# ------------------------------------------------------------------------------------------------ judges


@dataclass
class PairScores:
    """What a judge said about pairs: a margin per pair, plus the pointwise Gaussians when it has them."""

    margin: np.ndarray
    mean_chosen: np.ndarray | None = None
    mean_rejected: np.ndarray | None = None
    std_chosen: np.ndarray | None = None
    std_rejected: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def chunks(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


@torch.no_grad()
def score_pairs_forward(model, pairs: Sequence[Pair], micro_batch: int,
                        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
                        ) -> tuple[torch.Tensor, ...]:
    """(mean_c, log_std_c, mean_r, log_std_r) [N] fp32 on CPU with the training forward (chosen and rejected
    of a micro-batch in one pass). Used for validation inside the trainer."""
    out = [[], [], [], []]
    for batch_pairs in chunks(pairs, micro_batch):
        images = [load_pair_images(p) for p in batch_pairs]
        chosen, rejected = [c for c, _ in images], [r for _, r in images]
        prompts = [p.prompt for p in batch_pairs]
        with autocast():
            mean, log_std = model(model_encode(model, chosen + rejected, prompts + prompts))
        n = len(batch_pairs)
        for dst, src in zip(out, (mean[:n], log_std[:n], mean[n:], log_std[n:]), strict=True):
            dst.append(src.detach().float().cpu())
    return tuple(torch.cat(o) for o in out)


def model_encode(model, images, prompts):
    """encode() of a SpatialScoreModel, seen through a DDP wrapper if there is one."""
    inner = model.module if hasattr(model, "module") else model
    return inner.encode(images, prompts)


def pointwise_pair_scores(scorer, pairs: Sequence[Pair], chunk_pairs: int = 32, progress=None) -> PairScores:
    """Score chosen and rejected independently with a Scorer (trained or zero-shot); margin = mean_c - mean_r."""
    means, stds = [], []
    for batch_pairs in chunks(pairs, chunk_pairs):
        images = [load_pair_images(p) for p in batch_pairs]
        flat = [im for pair_images in images for im in pair_images]
        prompts = [p.prompt for p in batch_pairs for _ in range(2)]
        result = scorer.score(flat, prompts)
        means.append(result.mean.view(-1, 2).numpy())
        stds.append(result.std.view(-1, 2).numpy())
        if progress is not None:
            progress(len(batch_pairs))
    mean, std = np.concatenate(means), np.concatenate(stds)
    return PairScores(margin=mean[:, 0] - mean[:, 1], mean_chosen=mean[:, 0], mean_rejected=mean[:, 1],
                      std_chosen=std[:, 0], std_rejected=std[:, 1])


# ------------------------------------------------------------------------------------------------ report


@dataclass
class EvalRow:
    name: str  # what the table shows
    kind: str  # "SpatialScore", "zero-shot (pointwise)", "pairwise judge (both orders)"
    model: str  # folder
    report: dict

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "model": self.model, **self.report}


def _pct(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


def markdown_table(rows: Sequence[EvalRow]) -> str:
    """The paper's Table 1 layout: a row per judge; accuracy overall and by number of perturbed relations."""
    buckets = list(BUCKETS)
    for row in rows:
        buckets += [b for b in row.report["by_perturbations"] if b not in buckets]
    head = ["Model", "Type", "Overall (%)"] + [f"{b} perturbation{'s' if b != '1' else ''} (%)" for b in buckets]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for row in rows:
        r = row.report
        cells = [row.name, row.kind, _pct(r["pairwise_accuracy"])]
        cells += [_pct(r["by_perturbations"].get(b, {}).get("accuracy")) for b in buckets]
        lines.append("| " + " | ".join(cells) + " |")
    counts = rows[0].report if rows else None
    if counts:
        per = ", ".join(f"{b}: {counts['by_perturbations'].get(b, {}).get('pairs', 0)}" for b in buckets)
        lines.append(f"\n{counts['pairs']} pairs ({per} by perturbation count).")
    relations = sorted({k for row in rows for k in row.report.get("by_relation", {})})
    if relations:
        lines += ["", "| Model | " + " | ".join(f"{k} (%)" for k in relations) + " |",
                  "|---|" + "|".join(["---:"] * len(relations)) + "|"]
        for row in rows:
            rel = row.report["by_relation"]
            lines.append(f"| {row.name} | " + " | ".join(_pct(rel.get(k, {}).get("accuracy")) for k in relations)
                         + " |")
    return "\n".join(lines)

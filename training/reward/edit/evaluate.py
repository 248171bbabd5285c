"""Edit-pair evaluation: pairwise accuracy overall, by edit kind and by kind of mistake, and edit-region IoU.

A pair counts 1 when the scorer prefers the chosen edit, 1/2 on a tie, 0 otherwise (as for SpatialScore). The
edit-region IoU is measured on the chosen (correct) edits whose true region is known: the predicted boxes' union
against the true boxes' union; the report gives its mean and the share of edits at IoU >= 0.5.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from ..evaluate import pair_credit
from .pairs import EditPair, load_edit_images
from .regions import region_iou

IOU_THRESHOLD = 0.5


def _acc(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {"accuracy": float(values.mean()) if len(values) else None, "pairs": int(len(values))}


def edit_report(pairs: Sequence[EditPair], margins, predicted_regions: Sequence | None = None) -> dict:
    margins = np.asarray(margins, dtype=np.float64)
    if len(margins) != len(pairs):
        raise ValueError(f"{len(margins)} margins for {len(pairs)} pairs")
    credit = pair_credit(margins)
    by_kind, by_mistake = defaultdict(list), defaultdict(list)
    for p, c in zip(pairs, credit, strict=True):
        if p.edit_kind:
            by_kind[p.edit_kind].append(c)
        if p.mistake:
            by_mistake[p.mistake].append(c)
    report = {"pairwise_accuracy": float(credit.mean()) if len(credit) else None, "pairs": int(len(credit)),
              "by_edit_kind": {k: _acc(v) for k, v in sorted(by_kind.items())},
              "by_mistake": {k: _acc(v) for k, v in sorted(by_mistake.items())}}
    if predicted_regions is not None:
        ious = [region_iou(pred, p.chosen_region) for p, pred in zip(pairs, predicted_regions, strict=True)
                if p.chosen_region is not None and pred is not None]
        report["region_iou"] = {
            "mean": float(np.mean(ious)) if ious else None,
            f"share_at_least_{IOU_THRESHOLD}": float(np.mean(np.asarray(ious) >= IOU_THRESHOLD)) if ious else None,
            "edits": len(ious)}
    return report


@torch.no_grad()
def forward_pairs(model, pairs: Sequence[EditPair], batch: int = 64):
    """(mean_c, log_std_c, mean_r, log_std_r, chosen regions predicted) with the training forward."""
    cols, regions = [[], [], [], []], []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start:start + batch]
        imgs = [load_edit_images(p) for p in chunk]
        n = len(chunk)
        ins = [p.instruction for p in chunk]
        out = model(model.encode([s for s, _, _ in imgs] * 2, [c for _, c, _ in imgs] + [r for _, _, r in imgs],
                                 ins + ins))
        for dst, src in zip(cols, (out.mean[:n], out.log_std[:n], out.mean[n:], out.log_std[n:]), strict=True):
            dst.append(src.float().cpu())
        regions += model.predict_regions(out)[:n]
    return (*(torch.cat(c) for c in cols), regions)


def _pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def format_report(report: dict, name: str = "") -> str:
    lines = [f"{name + ': ' if name else ''}{_pct(report['pairwise_accuracy'])}% of {report['pairs']} edit pairs"]
    for key, title in (("by_edit_kind", "by edit kind"), ("by_mistake", "by mistake")):
        if report.get(key):
            lines.append(f"  {title}: " + ", ".join(f"{k} {_pct(v['accuracy'])}% ({v['pairs']})"
                                                   for k, v in report[key].items()))
    iou = report.get("region_iou")
    if iou and iou["edits"]:
        lines.append(f"  edit-region IoU on {iou['edits']} correct edits: mean {iou['mean']:.3f}, "
                     f">= {IOU_THRESHOLD}: {_pct(iou[f'share_at_least_{IOU_THRESHOLD}'])}%")
    return "\n".join(lines)

"""Training records: metrics.jsonl (one JSON object a line), optional TensorBoard, and the curves PNG.

Records have a "kind": "train" (per logged step: loss, batch accuracy, lr, grad norm, ...) or "val" (per
validation: accuracy, loss, by perturbation count). On resume, records after the checkpoint's step are dropped,
so a killed-and-resumed run ends with the same file as an uninterrupted one (timings aside).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ...common.atomic import atomic_path, write_text

METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"


class MetricsLog:
    def __init__(self, out: str | Path, resume_step: int | None = None):
        self.path = Path(out) / METRICS_FILE
        self.records: list[dict] = []
        if self.path.is_file():
            if resume_step is None:
                self.path.unlink()  # a fresh run (the trainer refused to start over checkpoints)
            else:
                self.records = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
                write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.records))

    def log(self, record: dict) -> None:
        self.records.append(record)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()


def read_metrics(path: str | Path) -> list[dict]:
    """Records of a metrics.jsonl; a torn last line (a kill mid-write) is ignored."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction (the first points are not pulled towards 0)."""
    out, avg = [], 0.0
    for i, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight ** (i + 1)))
    return out


def plot_curves(records: list[dict], path: str | Path, title: str = "SpatialScore training") -> Path:
    """Loss (train, smoothed, and validation) and validation pairwise accuracy against the step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("kind") == "train" and math.isfinite(r.get("loss", math.nan))]
    val = [r for r in records if r.get("kind") == "val"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    if train:
        steps = [r["step"] for r in train]
        losses = [r["loss"] for r in train]
        ax_loss.plot(steps, losses, color="#9ecae1", lw=0.8, label="train (per step)")
        ax_loss.plot(steps, _smooth(losses), color="#08519c", lw=1.6, label="train (smoothed)")
        if any("grounding" in r for r in train):  # the coords backbone's auxiliary loss, on its own log axis
            ground = [(r["step"], r["grounding"]) for r in train if "grounding" in r]
            ax_ground = ax_loss.twinx()
            ax_ground.plot([s for s, _ in ground], _smooth([g for _, g in ground]), color="#756bb1", lw=1.0,
                           ls="--", label="grounding aux (smoothed, right axis)")
            ax_ground.set_yscale("log")
            ax_ground.set_ylabel("grounding aux loss", color="#756bb1")
            ax_ground.legend(fontsize=8, loc="lower left")
    if val:
        ax_loss.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", color="#e6550d", ms=3,
                     label="validation")
        ax_acc.plot([r["step"] for r in val], [r["val_accuracy"] for r in val], "o-", color="#31a354", ms=3,
                    label="validation accuracy")
        for bucket, style in (("1", ":"), ("2-3", "--")):
            pts = [(r["step"], r["val_by_perturbations"][bucket]["accuracy"]) for r in val
                   if r.get("val_by_perturbations", {}).get(bucket, {}).get("accuracy") is not None]
            if pts:
                ax_acc.plot(*zip(*pts, strict=True), style, color="#31a354", lw=1,
                            label=f"{bucket} perturbation{'s' if bucket != '1' else ''}")
    ax_loss.axhline(math.log(2), color="grey", lw=0.6, ls=":")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss (-log P(chosen > rejected))")
    ax_loss.legend(fontsize=8)
    ax_acc.axhline(0.5, color="grey", lw=0.6, ls=":")
    ax_acc.set_ylim(0, 1.02)
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("pairwise accuracy")
    if val:
        ax_acc.legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path

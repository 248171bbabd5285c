"""The memory plan's tables (docs/memory_plan.md) from dry-run JSON files.

    python -m benchmarks.dryrun.plan DIR     # DIR holds score_b{1,8,16}.json, rt_mb{1,2,4}.json, grpo_tb{1,2,4}.json

A configuration without its own file is interpolated linearly in the batch between the two nearest measured ones
(at a fixed image size every activation is proportional to the batch, weights are not) and marked so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .measure import CARDS, CONTEXT_GIB, FRAGMENTATION

GRPO_VARIANTS = ("text encoders offloaded, scorer resident", "text encoders offloaded, scorer offloaded",
                 "text encoders resident, scorer resident", "text encoders resident, scorer offloaded")


def limit(card: str) -> float:
    return CARDS[card] * FRAGMENTATION - CONTEXT_GIB


def load(folder: Path, stem: str, sizes: list[int]) -> dict[int, tuple[dict, bool]]:
    """{batch: (result, measured)} for every size, interpolating the missing ones."""
    measured = {n: json.loads((folder / f"{stem}{n}.json").read_text()) for n in sizes
                if (folder / f"{stem}{n}.json").is_file()}
    out = {n: (r, True) for n, r in measured.items()}
    for n in sizes:
        if n in out or len(measured) < 2:
            continue
        lo = max((m for m in measured if m < n), default=min(measured))
        hi = min((m for m in measured if m > n), default=max(measured))
        if lo == hi:
            continue
        out[n] = (_interpolate(measured[lo], measured[hi], (n - lo) / (hi - lo)), False)
    return out


def _interpolate(a: dict, b: dict, w: float) -> dict:
    def mix(x, y):
        if isinstance(x, dict):
            return {k: mix(x[k], y[k]) for k in x if k in y}
        if isinstance(x, list):
            return [mix(p, q) for p, q in zip(x, y, strict=True)]
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            return x + w * (y - x)
        return x

    return mix(a, b)


def peak_of(phases: list[dict]) -> tuple[float, str]:
    worst = max(phases, key=lambda p: p["peak_gib"])
    return worst["peak_gib"], worst["name"]


def cell(peak: float, phase: str, card: str, advice: str) -> str:
    if peak <= limit(card):
        return f"fits, {peak:.1f} GiB"
    return f"**no**, {peak:.1f} GiB ({phase}): {advice}"


def score_table(rows) -> list[str]:
    out = ["| batch | " + " | ".join(f"{c} GB" for c in CARDS) + " | predicted s per image |", "|---|---|---|---|---|"]
    for n, (r, measured) in sorted(rows.items()):
        peak, phase = peak_of(r["phases"])
        per_image = r["predicted_step_s"] / n
        out.append(f"| {n}{'' if measured else ' (interp.)'} | "
                   + " | ".join(cell(peak, phase, c, "lower the batch") for c in CARDS) + f" | {per_image:.3f} |")
    return out


def reward_table(rows) -> list[str]:
    out = ["| micro-batch (pairs) | " + " | ".join(f"{c} GB" for c in CARDS) + " | predicted s per pair |",
           "|---|---|---|---|---|"]
    for n, (r, measured) in sorted(rows.items()):
        peak, phase = peak_of(r["phases"])
        out.append(f"| {n}{'' if measured else ' (interp.)'} | "
                   + " | ".join(cell(peak, phase, c, "micro-batch 1 with accumulation") for c in CARDS)
                   + f" | {r['predicted_step_s'] / n:.3f} |")
    return out


def grpo_table(rows) -> list[str]:
    out = ["| train batch | text encoders / scorer on the GPU | " + " | ".join(f"{c} GB" for c in CARDS)
           + " | predicted s per group |", "|---|---|---|---|---|---|"]
    for n, (r, measured) in sorted(rows.items()):
        for name in GRPO_VARIANTS:
            v = r["residency"][name]
            peak, phase = peak_of(v["phases"])
            enc = "resident" if "encoders resident" in name else "offloaded"
            sc = "resident" if "scorer resident" in name else "offloaded"
            advice = _grpo_advice(name)
            out.append(f"| {n}{'' if measured else ' (interp.)'} | encoders {enc}, scorer {sc} | "
                       + " | ".join(cell(peak, phase, c, advice) for c in CARDS)
                       + f" | {r['predicted_step_s']:.1f} |")
    return out


def _grpo_advice(variant: str) -> str:
    if "encoders resident" in variant:
        return "offload the text encoders"
    if "scorer resident" in variant:
        return "offload the scorer (reward.keep_loaded = false) or give it its own GPU (reward.device)"
    return "even with both offloaded: lower the sample / train batch or a bigger card"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m benchmarks.dryrun.plan DIR (a folder of dry-run JSON files)", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    print("\n".join(["### Scoring", *score_table(load(folder, "score_b", [1, 8, 16])), "",
                     "### Reward training", *reward_table(load(folder, "rt_mb", [1, 2, 4])), "",
                     "### GRPO", *grpo_table(load(folder, "grpo_tb", [1, 2, 4]))]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

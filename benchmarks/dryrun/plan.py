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


def cell(phases: list[dict], card: str, remedy: str) -> str:
    """"fits, peak", or "no, peak (every phase over the card's limit): what to change"."""
    peak, _ = peak_of(phases)
    if peak <= limit(card):
        return f"fits, {peak:.1f} GiB"
    over = [p["name"] for p in phases if p["peak_gib"] > limit(card)]
    broken = "every phase" if len(over) == len(phases) > 1 else ", ".join(over)
    return f"**no**, {peak:.1f} GiB ({broken}): {remedy}"


def fits_card(phases: list[dict], card: str) -> bool:
    return peak_of(phases)[0] <= limit(card)


def score_table(rows) -> list[str]:
    out = ["| batch | " + " | ".join(f"{c} GB" for c in CARDS) + " | predicted s per image |", "|---|---|---|---|---|"]
    for n, (r, measured) in sorted(rows.items()):
        cells = []
        for c in CARDS:
            smaller = [m for m, (q, _) in sorted(rows.items()) if m < n and fits_card(q["phases"], c)]
            cells.append(cell(r["phases"], c, f"batch {smaller[-1]}" if smaller else "nothing measured fits"))
        out.append(f"| {n}{'' if measured else ' (interp.)'} | " + " | ".join(cells)
                   + f" | {r['predicted_step_s'] / n:.3f} |")
    return out


def reward_table(rows) -> list[str]:
    out = ["| micro-batch (pairs) | " + " | ".join(f"{c} GB" for c in CARDS) + " | predicted s per pair |",
           "|---|---|---|---|---|"]
    for n, (r, measured) in sorted(rows.items()):
        cells = []
        for c in CARDS:
            smaller = [m for m, (q, _) in sorted(rows.items()) if m < n and fits_card(q["phases"], c)]
            remedy = (f"micro-batch {smaller[-1]} with accumulation {n // smaller[-1]}" if smaller
                      else "nothing measured fits")
            cells.append(cell(r["phases"], c, remedy))
        out.append(f"| {n}{'' if measured else ' (interp.)'} | " + " | ".join(cells)
                   + f" | {r['predicted_step_s'] / n:.3f} |")
    return out


def _offloaded(variant: str) -> set[str]:
    return {thing for thing in ("text encoders", "scorer") if f"{thing} offloaded" in variant}


OFFLOAD_SETTING = {"text encoders": "the text encoders (model.offload_text_encoders)",
                   "scorer": "the scorer (reward.keep_loaded = false)"}


def grpo_remedy(rows, n: int, variant: str, card: str) -> str:
    """The smallest measured changes that fit the card: offloading more at the same train batch, or a smaller
    train batch with the same residency (both named when both fit); else the two together."""
    now = _offloaded(variant)
    fitting = []  # (smaller batch?, things to offload, train batch)
    for m, (r, _) in rows.items():
        for other in GRPO_VARIANTS:
            more = _offloaded(other)
            if m <= n and more >= now and (m, other) != (n, variant) and fits_card(r["residency"][other]["phases"],
                                                                                      card):
                fitting.append((m < n, more - now, m))

    def say(smaller, extra, m):
        steps = ([f"offload {' and '.join(OFFLOAD_SETTING[t] for t in sorted(extra))}"] if extra else []) \
            + ([f"train batch {m}"] if smaller else [])
        return "; ".join(steps)

    offload_only = sorted((o for o in fitting if not o[0]), key=lambda o: len(o[1]))
    batch_only = sorted((o for o in fitting if o[0] and not o[1]), key=lambda o: -o[2])
    simple = [say(*o[0]) for o in (offload_only, batch_only) if o]
    if simple:
        return " or ".join(simple)
    both = sorted((o for o in fitting if o[0] and o[1]), key=lambda o: (len(o[1]), -o[2]))
    if both:
        return say(*both[0])
    transformer = rows[n][0]["weights_gib"]["transformer"]
    return f"nothing measured fits (the transformer with its LoRA alone is {transformer:.1f} GiB)"


def grpo_table(rows) -> list[str]:
    out = ["| train batch | text encoders / scorer on the GPU | " + " | ".join(f"{c} GB" for c in CARDS)
           + " | predicted s per group |", "|---|---|---|---|---|---|"]
    for n, (r, measured) in sorted(rows.items()):
        for name in GRPO_VARIANTS:
            phases = r["residency"][name]["phases"]
            enc = "resident" if "encoders resident" in name else "offloaded"
            sc = "resident" if "scorer resident" in name else "offloaded"
            out.append(f"| {n}{'' if measured else ' (interp.)'} | encoders {enc}, scorer {sc} | "
                       + " | ".join(cell(phases, c, grpo_remedy(rows, n, name, c)) for c in CARDS)
                       + f" | {r['predicted_step_s'] / r.get('groups_per_step', 1):.1f} |")
    return out


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

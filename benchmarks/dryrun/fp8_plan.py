"""The fp8 table of docs/memory_plan.md: which card holds a GRPO step with the policy's weights stored in fp8.

    python -m benchmarks.dryrun.fp8_plan benchmarks/dryrun/results_fp8

reads the JSON files of `python -m benchmarks.dryrun grpo --weight-dtype ... --json` and prints, per model, weight
storage and residency, the peak of each phase and, for 16, 24, 32, 48 and 80 GB cards, whether the step fits under
the same rule as the other tables (peak + 1 GiB of CUDA context within 95% of the card), or by how much it does
not. The residencies: everything but the policy offloaded between its phases (the text encoders visit to encode,
the scorer visits to score: model.offload_text_encoders, reward.keep_loaded = false), and "phases apart", where the
transformer and its LoRA also leave while the text encoders or the scorer are on the card (model.offload_transformer;
ComfyUI's model management does the same in the node). A run written before "phases apart" was a residency of the
dry run gets it computed here the way __main__.grpo_residency does: the transformer's weights left out of the
encode and reward phases.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .measure import CONTEXT_GIB, FRAGMENTATION

# usable GiB as the driver reports them: RTX 4080/5080 16 GB, RTX 3090/4090 24 GB, RTX 5090 32 GB, RTX 6000 Ada /
# A6000 48 GB, H100 80 GB
CARDS = {"16": 15.99, "24": 23.99, "32": 31.84, "48": 47.99, "80": 79.65}
OFFLOADED = "text encoders offloaded, scorer offloaded"
APART = "phases apart (all offloaded, transformer off while encoding and scoring)"
SHOWN = {OFFLOADED: "encoders and scorer offloaded", APART: "phases apart (+ transformer off for encode, reward)"}


def limit(card: str) -> float:
    return CARDS[card] * FRAGMENTATION - CONTEXT_GIB


def phases_of(run: dict, residency: str) -> dict[str, float]:
    """{phase: peak GiB} of one residency of a run."""
    if residency in run["residency"]:
        return {p["name"]: p["peak_gib"] for p in run["residency"][residency]["phases"]}
    base = phases_of(run, OFFLOADED)
    transformer = run["weights_gib"]["transformer"]
    return {name: peak - transformer if name in ("encode", "reward") else peak for name, peak in base.items()}


def verdict(peaks: dict[str, float], card: str) -> str:
    worst = max(peaks.values())
    over = [f"{name} {peak:.1f}" for name, peak in peaks.items() if peak > limit(card)]
    if not over:
        return f"fits ({limit(card) - worst:.1f} GiB spare)"
    return f"**no**, {worst - limit(card):.1f} GiB over ({', '.join(over)})"


def rows(folder: Path) -> list[str]:
    out = ["| model, weights | residency | peak GiB by phase (encode / sampling / decode / reward / training) | "
           + " | ".join(f"{c} GB" for c in CARDS) + " |",
           "|---|---|---|" + "---|" * len(CARDS)]
    for path in sorted(folder.glob("*.json")):
        run = json.loads(path.read_text())
        shape = run["command"].split("--shape ")[1].split()[0]
        weights = run.get("weight_dtype", "default")
        name = f"{shape}, {'bf16' if weights == 'default' else weights} (transformer + LoRA {run['weights_gib']['transformer']:.1f} GiB)"
        for residency, shown in SHOWN.items():
            peaks = phases_of(run, residency)
            cells = " / ".join(f"{peaks[p]:.1f}" for p in ("encode", "sampling", "decode", "reward", "training"))
            out.append(f"| {name} | {shown} | {cells} | " + " | ".join(verdict(peaks, c) for c in CARDS) + " |")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else Path(__file__).parent / "results_fp8")
    print("limits on the peak (GiB): " + ", ".join(f"{c} GB {limit(c):.1f}" for c in CARDS))
    print("\n".join(rows(folder)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

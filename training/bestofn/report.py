"""The report of a best-of-N run, one format for the CLI's report.json and the ComfyUI node's report output.

Totals: "transformer_forwards" (one per candidate row through the model, per model call), "decodes", "scores",
"wall_time_s"; the settings ("n", "keep", "prune", "stages"); per prompt who was dropped at which step with what
x0 score, the survivors, and the kept images (candidate, rank, final score).
"""

from __future__ import annotations

from .pruning import Pruner
from .schedule import Stage


def prompt_record(prompt: str, index: int, pruner: Pruner, kept: list[dict], trace: bool = False) -> dict:
    record = {"prompt": prompt, "index": index, **pruner.record(), "kept": kept}
    if trace:
        record["trace"] = {str(c): s for c, s in sorted(pruner.trace.items())}
    return record


def totals(forwards: int, decodes: int, scores: int, wall_time_s: float, n: int, keep: int, prune: str,
           stages: list[Stage]) -> dict:
    return {"transformer_forwards": forwards, "decodes": decodes, "scores": scores,
            "wall_time_s": round(wall_time_s, 3), "n": n, "keep": keep, "prune": prune,
            "stages": [s.__dict__ for s in stages]}  # fmt: skip

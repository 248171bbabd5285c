"""The report's pictures: per pair of variants, the prompts where the second variant gained most and lost most by the
scorer, both variants' images of the same noise one above the other (image 0 of each prompt)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..oracle_judge import oracle_verdicts
from ..reports import save_comparison_grid


def pair_file_name(a: str, b: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{b}_vs_{a}")
    return f"gains_losses_{safe}.png"


def save_gains_losses(report: dict, images: dict[str, torch.Tensor], out: Path) -> list[Path]:
    """One grid per pair (columns: the largest gains, then the largest losses; rows: a above b), framed green / red
    by the pixel oracle in the shapes world. Returns the files written (a pair with no gain and no loss has none)."""
    prompts = [row["prompt"] for row in report["per_prompt"]]
    written = []
    for pair in report["pairs"]:
        a, b = pair["a"], pair["b"]
        picks = pair["largest_gains"] + pair["largest_losses"]
        if not picks:
            continue
        captions = []
        for i in picks:
            gain = sum(pair_gain(report, a, b, i)) / len(report["per_prompt"][i]["scores"][a])
            captions.append(f"{'gain' if gain > 0 else 'loss'} {gain:+.2f}: {prompts[i]}")
        rows = [(f"{a}", images[a][picks, 0]), (f"{b}", images[b][picks, 0])]
        marks = None
        if report["oracle"]:
            marks = {label: [all(v["relations"]) for v in oracle_verdicts(imgs, [prompts[i] for i in picks])]
                     for label, imgs in rows}  # fmt: skip
        path = save_comparison_grid(rows, captions, out / pair_file_name(a, b), marks=marks)
        written.append(path)
    return written


def pair_gain(report: dict, a: str, b: str, i: int) -> list[float]:
    scores = report["per_prompt"][i]["scores"]
    return [sb - sa for sa, sb in zip(scores[a], scores[b], strict=True)]

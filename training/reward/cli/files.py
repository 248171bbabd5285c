"""What `python -m training.reward score` reads and prints, for single images and edits alike: image files (and
.npy arrays) named on the command line, and the scores as a table or JSON (also written to --output)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...common.atomic import write_text
from ...common.images import ImageInputError, load_image_file


def read_image(path: str):
    if path.endswith(".npy"):
        if not Path(path).is_file():
            raise ImageInputError(f"image file not found: {path}")
        from ...common.images import to_pil_list

        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise ImageInputError(f"cannot read image array {path}: {exc}") from exc
        try:
            return to_pil_list(arr)[0]
        except ImageInputError as exc:
            raise ImageInputError(f"{path}: {exc}") from exc
    return load_image_file(path)


def print_scores(args: argparse.Namespace, result, column: tuple[str, Callable[[dict], str]] | None = None) -> None:
    """One row per image of args.images: warnings go to stderr, the JSON list to --output, then the JSON (--json)
    or a table of mean and std, with `column` (title, cell of a row) last; a judge's reasoning under its row."""
    rows = [{"image": path, **row, "mode": result.mode} for path, row in zip(args.images, result.rows(), strict=True)]
    for row in rows:
        if row.get("warning"):
            print(f"warning: {row['image']}: {row['warning']}", file=sys.stderr)
    text = json.dumps(rows, indent=2)
    if args.output:
        write_text(args.output, text + "\n")
    if args.json:
        print(text)
        return
    width = max(len(p) for p in args.images)
    print(f"mode: {result.mode}  model: {args.model}")
    print(f"{'image':<{width}}  {'mean':>9}  {'std':>7}" + (f"  {column[0]}" if column else ""))
    for r in rows:
        print(f"{r['image']:<{width}}  {r['mean']:>9.4f}  {r['std']:>7.4f}" + (f"  {column[1](r)}" if column else ""))
        if r.get("reasoning"):
            print(f"  reasoning: {r['reasoning']}")

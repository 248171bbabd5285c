"""Reproduce the shipped shapes-edit scorer (`--model shapes-edit`) from an empty folder.

    python -m training.reward.recipes.shapes_edit --out runs/shapes_edit            # data, training, evaluation
    python -m training.reward.recipes.shapes_edit --out runs/shapes_edit --ship     # and copy it into the package

Stages (each skipped when its output exists; a killed training stage continues from its last checkpoint):
  1. datasets   python -m training.dataset build --world shapes-edit: training pairs (seed 1, 80/10/10 splits)
                and held-out pairs (seed 777: other scenes, never seen in training)
  2. reward     python -m training.reward train --preset shapes_edit_coords (coords backbone on two images,
                Gaussian Bradley-Terry + region grounding, from scratch)
  3. evaluate   python -m training.reward evaluate on every held-out pair: accuracy overall, by edit kind, by
                mistake, and the edit-region IoU of the correct edits
--ship copies the scorer folder to training/reward/assets/shapes-edit/ (self-contained, about 1.1 MB).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..models.loading import ASSETS
from . import shapes
from .shapes import run_command

PRESET = "shapes_edit_coords"
NAME = "shapes-edit"


def build_data(out: Path, train_pairs: int, heldout_pairs: int) -> tuple[Path, Path]:
    train, heldout = out / "train", out / "heldout"
    for folder, n, seed, splits in ((train, train_pairs, 1, "0.8,0.1,0.1"), (heldout, heldout_pairs, 777, "0,0,1")):
        if not (folder / "manifest.jsonl").is_file() or len((folder / "manifest.jsonl").read_text().splitlines()) < n:
            run_command(["-m", "training.dataset", "build", "--world", "shapes-edit", "--pairs", str(n), "--seed",
                         str(seed), "--splits", splits, "--out", str(folder), "--no-progress"])
    return train, heldout


def train_scorer(train: Path, run: Path, steps: int = 0) -> Path:
    return shapes.train_scorer(train, run, steps, preset=PRESET)


def evaluate(scorer: Path, heldout: Path, out: Path) -> dict:
    run_command(["-m", "training.reward", "evaluate", "--model", str(scorer), "--data", str(heldout), "--split",
                 "all", "--json", str(out / "heldout_eval.json")])
    return json.loads((out / "heldout_eval.json").read_text(encoding="utf-8"))


def ship(scorer: Path, notes: dict, assets: Path = ASSETS, name: str = NAME) -> Path:
    """Copy an edit scorer folder into the package as `name` (atomically), adding `notes` to its config; it reads
    the shapes-edit forms only, and refuses other wordings."""
    return shapes.ship(scorer, notes, assets, name, config_file="spatialreward.json",
                       fields={"instructions": "shapes-edit"})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="run folder (created; stages found there are skipped)")
    ap.add_argument("--train-pairs", type=int, default=12000, help="pairs built for training (80%% train split)")
    ap.add_argument("--heldout-pairs", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=0, help=f"override the {PRESET} preset's steps")
    ap.add_argument("--ship", action="store_true", help=f"copy the scorer into training/reward/assets/{NAME}/")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    train, heldout = build_data(out, args.train_pairs, args.heldout_pairs)
    scorer = train_scorer(train, out / "reward", args.steps)
    report = evaluate(scorer, heldout, out)
    if args.ship:
        keep = ("pairwise_accuracy", "pairs", "by_edit_kind", "by_mistake", "region_iou")
        notes = {"recipe": f"python -m training.reward.recipes.shapes_edit --out DIR --ship (preset {PRESET})",
                 "heldout": {k: report[k] for k in keep if k in report}}
        print("shipped:", ship(scorer, notes))
    print(f"recipe done in {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Reproduce the shipped shapes scorer (`--model shapes`) from an empty folder.

    python -m training.reward.recipes.shapes --out runs/shapes            # data, training, held-out evaluation
    python -m training.reward.recipes.shapes --out runs/shapes --ship     # and copy it into the package

Stages (each skipped when its output exists; a killed training stage continues from its last checkpoint):
  1. datasets   python -m training.dataset build --world shapes: training pairs (seed 1) and held-out pairs
                (seed 777: other scenes, never seen in training)
  2. negatives  per training row, a random re-layout of its objects that the oracle rejects, as an extra pair
                (shapes_relayout.py): rerankers and GRPO see arbitrary layouts, not only minimal perturbations
  3. reward     python -m training.reward train --preset shapes_coords (the coords backbone, Gaussian
                Bradley-Terry + grounding auxiliary loss, from scratch)
  4. evaluate   python -m training.reward evaluate on every held-out pair, plus the 2- / 3-object split
--ship copies the scorer folder to training/reward/assets/shapes/ (self-contained, about 1.5 MB).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ...common.atomic import atomic_dir
from ..models.loading import ASSETS

PRESET = "shapes_coords"


def _run(args: list[str]) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True)


def build_data(out: Path, train_pairs: int, heldout_pairs: int) -> tuple[Path, Path]:
    train, heldout = out / "train", out / "heldout"
    for folder, n, seed in ((train, train_pairs, 1), (heldout, heldout_pairs, 777)):
        if not (folder / "build.json").is_file():
            _run(["-m", "training.dataset", "build", "--world", "shapes", "--pairs", str(n), "--seed", str(seed),
                  "--out", str(folder)])
    return train, heldout


def train_scorer(train: Path, run: Path, steps: int = 0) -> Path:
    scorer = run / "scorer"
    summary = run / "summary.json"
    if not summary.is_file():
        cmd = ["-m", "training.reward", "train", "--preset", PRESET, "--data", str(train), "--out", str(run)]
        if steps:
            cmd += ["--steps", str(steps)]
        if (run / "checkpoints").is_dir():
            cmd.append("--resume")
        _run(cmd)
    return scorer


def evaluate(scorer: Path, heldout: Path, out: Path) -> dict:
    from .shapes_eval import accuracy_by_objects

    _run(["-m", "training.reward", "evaluate", "--model", str(scorer), "--data", str(heldout), "--split", "all",
          "--json", str(out / "heldout_eval.json"), "--markdown", str(out / "heldout_eval.md")])
    by_objects = accuracy_by_objects(str(scorer), heldout)
    (out / "heldout_by_objects.json").write_text(json.dumps(by_objects, indent=2) + "\n")
    for k, v in by_objects.items():
        print(f"{k:18s} {100 * v['accuracy']:6.2f}%  ({v['pairs']} pairs)")
    return by_objects


def ship(scorer: Path, notes: dict, assets: Path = ASSETS, name: str = "shapes", base_model: str | None = None
         ) -> Path:
    """Copy a scorer folder into the package as `name` (atomically), adding `notes` (and a base_model reference)."""
    with atomic_dir(assets / name) as tmp:
        shutil.copytree(scorer, tmp, dirs_exist_ok=True)
        cfg = json.loads((tmp / "spatialscore.json").read_text(encoding="utf-8"))
        cfg["notes"] = {**cfg.get("notes", {}), **notes}
        if base_model is not None:
            cfg["base_model"] = base_model
        (tmp / "spatialscore.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    return assets / name


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="run folder (created; stages found there are skipped)")
    ap.add_argument("--train-pairs", type=int, default=16000, help="pairs built for training (80%% train split)")
    ap.add_argument("--heldout-pairs", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=0, help=f"override the {PRESET} preset's steps")
    ap.add_argument("--relayouts", type=int, default=1,
                    help="extra negatives per training row: its objects at random places (0: none)")
    ap.add_argument("--ship", action="store_true", help="copy the scorer into training/reward/assets/shapes/")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    train, heldout = build_data(out, args.train_pairs, args.heldout_pairs)
    if args.relayouts:
        from .shapes_relayout import build_mix

        print(f"$ relayout negatives ({args.relayouts} per row) -> {out / 'train_mix'}", flush=True)
        train = build_mix(train, out / "train_mix", per_row=args.relayouts)
    scorer = train_scorer(train, out / "reward", args.steps)
    by_objects = evaluate(scorer, heldout, out)
    if args.ship:
        notes = {"recipe": f"python -m training.reward.recipes.shapes --out DIR --ship (preset {PRESET})",
                 "heldout": {k: v for k, v in by_objects.items()}}
        print("shipped:", ship(scorer, notes))
    print(f"recipe done in {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

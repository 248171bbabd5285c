"""The reward-side stages of the shapes scorer recipe (data, training, held-out evaluation, shipping).

    python -m training.reward.recipes.shapes --out runs/shapes            # data, training, held-out evaluation
    python -m training.reward.recipes.shapes --out runs/shapes --ship     # and copy it into the package

This module, run as above, is a forwarder: it runs training.recipes.shapes_scorer as __main__ (runpy), the whole
recipe with its stages and options (`--help`), because the `shapes-gen` stages need the shapes generator and a GRPO
round, which the reward stage must not import. The functions here are the stages that need only the reward's parts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from ...common.atomic import atomic_dir
from ..models.loading import ASSETS

PRESET = "shapes_coords"


def run_command(args: list[str]) -> None:
    """`python ARGS...` (a stage's command line), echoed first; a failure stops the recipe."""
    print("$", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True)


def build_data(out: Path, train_pairs: int, heldout_pairs: int) -> tuple[Path, Path]:
    train, heldout = out / "train", out / "heldout"
    for folder, n, seed in ((train, train_pairs, 1), (heldout, heldout_pairs, 777)):
        if not (folder / "build.json").is_file():
            run_command(["-m", "training.dataset", "build", "--world", "shapes", "--pairs", str(n), "--seed",
                         str(seed), "--out", str(folder)])
    return train, heldout


def combine_pairs(files: list[Path], out: Path, seed: int = 0) -> Path:
    """One pairs JSONL of every row of `files` in a seeded random order, so that the trainer's validation rows (the
    first `data.val_pairs` of split "val") are drawn from every source; skipped when it exists."""
    import random

    from ...common.atomic import write_text

    result = out / "pairs.jsonl"
    if not result.is_file():
        rows = [x for f in files for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
        random.Random(seed).shuffle(rows)
        out.mkdir(parents=True, exist_ok=True)
        write_text(result, "".join(x + "\n" for x in rows))
    return result


def train_scorer(train: Path, run: Path, steps: int = 0, init_from: Path | None = None, preset: str = PRESET
                 ) -> Path:
    """Stage 5 (from scratch) or, with `init_from`, stage 6 (that scorer trained on: lr 3e-4, 20 warm-up steps);
    a killed run continues from its last checkpoint, a finished one is skipped."""
    scorer = run / "scorer"
    summary = run / "summary.json"
    if not summary.is_file():
        cmd = ["-m", "training.reward", "train", "--preset", preset, "--data", str(train), "--out", str(run)]
        if steps:
            cmd += ["--steps", str(steps)]
        if init_from is not None:
            cmd += ["--init-from", str(init_from), "--set", "train.learning_rate=3e-4", "--set",
                    "train.warmup_steps=20"]
        if (run / "checkpoints").is_dir():
            cmd.append("--resume")
        run_command(cmd)
    return scorer


def evaluate(scorer: Path, heldout: Path, out: Path) -> dict:
    from .shapes_eval import accuracy_by_objects, object_fault_accuracy, rerank_accuracy

    run_command(["-m", "training.reward", "evaluate", "--model", str(scorer), "--data", str(heldout), "--split",
                 "all", "--json", str(out / "heldout_eval.json"), "--markdown", str(out / "heldout_eval.md")])
    by_objects = accuracy_by_objects(str(scorer), heldout)
    (out / "heldout_by_objects.json").write_text(json.dumps(by_objects, indent=2) + "\n")
    faults = object_fault_accuracy(str(scorer), heldout)
    (out / "heldout_object_faults.json").write_text(json.dumps(faults, indent=2) + "\n")
    rerank = rerank_accuracy(str(scorer), heldout)
    (out / "heldout_rerank.json").write_text(json.dumps(rerank, indent=2) + "\n")
    for k, v in [*by_objects.items(), *((f"fault {k}", v) for k, v in faults.items())]:
        print(f"{k:18s} {100 * v['accuracy']:6.2f}%  ({v['pairs']} pairs)")
    print("rerank (perfect among 7 re-layouts):", json.dumps(rerank))
    return {**by_objects, **{f"object_faults={k}": v for k, v in faults.items()}, "rerank": rerank}


def ship(scorer: Path, notes: dict, assets: Path = ASSETS, name: str = "shapes", base_model: str | None = None,
         config_file: str = "spatialscore.json", fields: dict | None = None) -> Path:
    """Copy a scorer folder into the package as `name` (atomically), adding `notes` (and a base_model reference, and
    other `fields`) to its config file (an edit scorer's: config_file="spatialreward.json")."""
    with atomic_dir(assets / name) as tmp:
        shutil.copytree(scorer, tmp, dirs_exist_ok=True)
        cfg = json.loads((tmp / config_file).read_text(encoding="utf-8"))
        cfg["notes"] = {**cfg.get("notes", {}), **notes}
        if base_model is not None:
            cfg["base_model"] = base_model
        cfg.update(fields or {})
        (tmp / config_file).write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    return assets / name


if __name__ == "__main__":  # the recipe's command name: forwarded to the composing recipe above the stages
    import runpy

    runpy.run_module("training.recipes.shapes_scorer", run_name="__main__", alter_sys=True)

"""The tiny Qwen2.5-VL shapes scorer (research path; it did not reach the 90% bar, see
research/shapes_scorer/NOTES.md). The shipped scorer is training.reward.recipes.shapes (the coords backbone).

    python -m research.shapes_scorer.shapes_qwen --out runs/shapes_qwen            # everything, then evaluate
    python -m research.shapes_scorer.shapes_qwen --out runs/shapes_qwen --ship     # and copy in as `shapes-qwen`

Stages (each skipped when its output already exists, so a killed run continues where it stopped):
  1. datasets   python -m training.dataset build --world shapes: training pairs (seed 1) and held-out pairs
                (seed 777: other scenes)
  2. base       dense yes/no pretraining of a tiny Qwen2.5-VL (shapes_pretrain.py): the "pretrained VLM"
  3. init       the LoRA scorer on that base, reward token and head started from the base's Yes/No answer
  4. reward     python -m training.reward train --config shapes_lora.toml --init-from <init> (Bradley-Terry, LoRA)
  5. evaluate   python -m training.reward evaluate on the held-out pairs (+ the 2- / 3-object split)
--ship copies the base to training/reward/assets/shapes-qwen-base/ and the scorer to .../shapes-qwen/
(base_model "../shapes-qwen-base"), so that `--model shapes-qwen` names it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import fields
from pathlib import Path

from training.common.atomic import atomic_dir
from training.reward.models.loading import ASSETS
from training.reward.recipes.shapes import build_data
from training.reward.recipes.shapes import run_command as _run
from training.reward.recipes.shapes import ship as ship_scorer

from .shapes_pretrain import PretrainConfig, pretrain

CONFIG = Path(__file__).with_name("shapes_lora.toml")  # the reward stage's settings (was the preset shapes_lora)


def ship(base: Path, scorer: Path, assets: Path = ASSETS) -> Path:
    """Copy base and scorer into the package as `shapes-qwen-base` and `shapes-qwen` (never over the shipped
    `shapes`); the scorer refers to its base relatively."""
    with atomic_dir(assets / "shapes-qwen-base") as tmp:
        shutil.copytree(base, tmp, dirs_exist_ok=True)
    return ship_scorer(scorer, {}, assets, name="shapes-qwen", base_model="../shapes-qwen-base")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="run folder (created; stages found there are skipped)")
    ap.add_argument("--train-pairs", type=int, default=12000)
    ap.add_argument("--heldout-pairs", type=int, default=1000)
    ap.add_argument("--reward-steps", type=int, default=0, help="override shapes_lora.toml's steps")
    ap.add_argument("--ship", action="store_true", help="copy the result into training/reward/assets/")
    for f in fields(PretrainConfig):
        ap.add_argument(f"--pretrain-{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    train, heldout = build_data(out, args.train_pairs, args.heldout_pairs)
    base = out / "base" / "pretrained"
    if not (base / "config.json").is_file():
        cfg = PretrainConfig(**{f.name: getattr(args, f"pretrain_{f.name}") for f in fields(PretrainConfig)})
        pretrain(train, heldout, out / "base", cfg, progress=lambda s: print(s, flush=True))
    init = out / "init_scorer"
    if not (init / "spatialscore.json").is_file():
        from .shapes_init import make_initial_scorer

        make_initial_scorer(base, init)
    reward = out / "reward"
    if not (reward / "scorer" / "spatialscore.json").is_file():
        cmd = ["-m", "training.reward", "train", "--config", str(CONFIG), "--init-from", str(init),
               "--data", str(train), "--out", str(reward)]
        if args.reward_steps:
            cmd += ["--steps", str(args.reward_steps)]
        if (reward / "checkpoints").is_dir():
            cmd.append("--resume")
        _run(cmd)
    scorer = reward / "scorer"
    _run(["-m", "training.reward", "evaluate", "--model", str(scorer), "--data", str(heldout), "--split", "all",
          "--no-baselines", "--json", str(out / "heldout_eval.json"), "--markdown", str(out / "heldout_eval.md")])
    from training.reward.recipes.shapes_eval import accuracy_by_objects

    by_objects = accuracy_by_objects(str(scorer), heldout)
    (out / "heldout_by_objects.json").write_text(json.dumps(by_objects, indent=2) + "\n")
    for k, v in by_objects.items():
        print(f"{k:18s} {100 * v['accuracy']:6.2f}%  ({v['pairs']} pairs)")
    if args.ship:
        print("shipped:", ship(base, scorer))
    print(f"recipe done in {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

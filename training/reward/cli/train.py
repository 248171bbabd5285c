"""`python -m training.reward train`: train a SpatialScore on preference pairs.

    python -m training.reward train --preset tiny --data runs/shapes --out runs/reward_tiny
    python -m training.reward train --preset qwen25vl_7b_lora --base /models/Qwen2.5-VL-7B-Instruct \
        --data /data/spatialreward --out runs/spatialscore_7b
    accelerate launch --num_processes 8 -m training.reward train --preset qwen25vl_7b_lora ...
    python -m training.reward train ... --resume            # continue from the newest checkpoint in --out

Any config field: --set section.field=value (repeatable), e.g. --set train.learning_rate=5e-5 --set
lora.targets=q_proj,v_proj. Outputs in --out: metrics.jsonl, curves.png, checkpoints/, scorer/ (the best
checkpoint as a scorer folder), summary.json.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub) -> None:
    from ..train.train_config import presets

    p = sub.add_parser("train", help="train a SpatialScore reward model on preference pairs",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--config", help="a TOML config file")
    source.add_argument("--preset", choices=sorted(presets()), help="a shipped config")
    p.add_argument("--base", help="base Qwen2.5-VL folder, or @tiny (model.base)")
    p.add_argument("--init-from", help="continue training this scorer folder or shipped name (model.init_from)")
    p.add_argument("--data", help="dataset folder or pairs .jsonl (data.train)")
    p.add_argument("--val", help="validation dataset folder / .jsonl, or 'none' (data.val)")
    p.add_argument("--out", help="output folder (output.dir)")
    p.add_argument("--steps", type=int, help="optimizer steps (train.steps)")
    p.add_argument("--loss", help="gaussian_bt, mc_gaussian_bt or bt (train.loss)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="set any config field (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    reviews = p.add_mutually_exclusive_group()
    reviews.add_argument("--reviewed-only", action="store_const", const="reviewed-only", dest="reviews",
                         help="train only on pairs a reviewer accepted (or swapped) in the dataset's reviews.jsonl "
                              "(data.reviews); by default rejected pairs are dropped and swapped ones swapped")
    reviews.add_argument("--ignore-reviews", action="store_const", const="ignore", dest="reviews",
                         help="use every pair as built, whatever reviews.jsonl says (data.reviews=ignore)")
    p.add_argument("--dry-run", action="store_true", help="check the config and data, print the config, load no model")
    p.set_defaults(func=run)


def overrides_from(args: argparse.Namespace) -> dict[str, str]:
    from ..train.train_config import ConfigError

    overrides: dict[str, str] = {}
    for item in args.set:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. train.learning_rate=1e-4")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value
    shortcuts = {"base": "model.base", "init_from": "model.init_from", "data": "data.train", "val": "data.val",
                 "out": "output.dir", "steps": "train.steps", "loss": "train.loss", "reviews": "data.reviews"}
    for attr, key in shortcuts.items():
        value = getattr(args, attr)
        if value is not None:
            overrides[key] = str(value)
    return overrides


def run(args: argparse.Namespace) -> int:
    from ..train.checkpoint import CheckpointError
    from ..train.pairs import PairsFileError
    from ..train.train_config import ConfigError, load_config

    try:
        from .edit import edit_data, run_train_edit

        config = load_config(args.config, args.preset, overrides_from(args), check=False)
        if edit_data(config):  # pairs lines with a `source` key: edit pairs (training/reward/edit)
            return run_train_edit(config, args)
        config = load_config(args.config, args.preset, overrides_from(args))
        if args.dry_run:
            from ..train.trainer import load_data

            train_pairs, val_pairs = load_data(config)
            print(json.dumps(config.to_dict(), indent=2))
            print(f"{len(train_pairs)} training pairs, {len(val_pairs)} validation pairs")
            return 0
        from ..train.trainer import train

        result = train(config, resume=args.resume)
    except (ConfigError, CheckpointError, PairsFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.scorer_path is not None:
        best = result.best or {}
        acc = best.get("val_accuracy")
        print(f"scorer: {result.scorer_path} (step {best.get('step')}"
              + (f", validation accuracy {acc:.4f})" if acc is not None else ")"))
        out = config.output.dir
        print(f"metrics: {out}/metrics.jsonl  curves: {out}/curves.png  summary: {out}/summary.json")
    return 0

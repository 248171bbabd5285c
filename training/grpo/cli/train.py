r"""python -m training.grpo: Spatial GRPO of a Flux LoRA against SpatialScore.

    python -m training.grpo --preset tiny --steps 4 --out runs/tiny
    python -m training.grpo --preset flux_dev_spatial --model.path /models/FLUX.1-dev \
        --reward.path /models/spatialscore-7b --out runs/spatial_grpo
    accelerate launch --multi_gpu --num_processes 8 -m training.grpo --config my.toml --prompts.per_step 8 --out x
    torchrun --standalone --nproc_per_node 2 -m training.grpo --preset tiny --out runs/tiny2   # 2 CPU processes
    python -m training.grpo ... --resume          # continue from the newest checkpoint in --out

Any config field can be set as --section.field VALUE (e.g. --train.learning_rate 1e-4, --lora.targets a,b).
"""

from __future__ import annotations

import argparse
import os
import sys

from ...common.finite import NonFiniteError
from ...common.run_folder import RunFolderError
from ..checkpoint import CheckpointError
from ..config import PRESETS, TINY_MODELS, ConfigError, check_paths, load_config
from ..prompts import PromptFileError


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict[str, str]]:
    parser = argparse.ArgumentParser(
        prog="python -m training.grpo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", help="a TOML config file")
    source.add_argument("--preset", choices=sorted(PRESETS), help="a shipped config")
    parser.add_argument("--out", help="output folder (output.dir)")
    parser.add_argument("--steps", type=int, help="GRPO steps (train.steps)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the output folder")
    parser.add_argument("--dry-run", action="store_true", help="check the config and print it; load no model")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args, rest = parser.parse_known_args(argv)
    overrides: dict[str, str] = {}
    i = 0
    while i < len(rest):
        token = rest[i]
        if not token.startswith("--") or "." not in token:
            parser.error(f"unrecognised argument {token!r}: config fields are given as --section.field VALUE")
        if "=" in token:
            key, value = token[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(rest):
                parser.error(f"{token} needs a value")
            key, value = token[2:], rest[i + 1]
            i += 2
        overrides[key] = value
    if args.out is not None:
        overrides["output.dir"] = args.out
    if args.steps is not None:
        overrides["train.steps"] = str(args.steps)
    return args, overrides


def main(argv: list[str] | None = None) -> int:
    args, overrides = parse_args(argv)
    try:
        config = load_config(args.config, args.preset, overrides)
        if args.dry_run:
            if not {config.model.path, config.reward.path} & set(TINY_MODELS):
                check_paths(config)
            import json

            print(json.dumps(config.to_dict(), indent=2))
            return 0
        from ..guards import claim_output

        if int(os.environ.get("RANK", "0")) == 0:  # a foreign folder is refused before tiny models are written
            claim_output(config.output.dir)
        if {config.model.path, config.reward.path} & set(TINY_MODELS):
            from ..tiny import materialize_tiny_models

            materialize_tiny_models(config)
        check_paths(config)
    except (ConfigError, RunFolderError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from training.reward import ScorerFolderError

    from ...common.os_errors import one_line_errors
    from ..trainer import train

    result, failed = one_line_errors(lambda: train(config, resume=args.resume), args.debug, (
        ConfigError, PromptFileError, CheckpointError, RunFolderError, ScorerFolderError, NonFiniteError))
    if failed:
        return failed
    if result.lora_path is not None:
        print(f"LoRA: {result.lora_path}")
        print(f"metrics: {config.output.dir}/metrics.jsonl, curve: {config.output.dir}/reward_curve.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

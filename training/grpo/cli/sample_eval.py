"""Held-out evaluation of a generator (and LoRA) by the pixel oracle, from fixed noise.

    python -m training.grpo.sample_eval --model shapes [--lora shapes-grpo] --prompts heldout.txt [--grid g.png]
        [--weight-dtype fp8_e4m3fn]     # the generator's block weights stored in fp8, as a run trained with them

--lora is a Flux LoRA .safetensors (diffusers keys) or a shipped one by name: shapes-grpo, shapes-fast.

The images are `training.grpo.sample`'s (noise 0, each prompt's noise seeded by its line), so a generator and the
same generator with a LoRA are compared on identical starting noise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..evaluate.oracle_rates import evaluate_generator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.grpo.sample_eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", required=True)
    parser.add_argument("--lora", help="a Flux LoRA .safetensors (diffusers keys), or 'shapes-grpo' / 'shapes-fast' "
                                       "(shipped)")
    parser.add_argument("--prompts", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--weight-dtype", default="default", choices=("default", "fp8_e4m3fn", "fp8_e5m2"),
                        help="store the generator's block weights in fp8 (as a run with model.weight_dtype)")
    args = parser.parse_args(argv)
    from ...common.output_file import OutputPathError, check_output_file
    from ..prompts import PromptFileError
    from ..shipped import AssetError

    try:
        for name, path, example in (("--json", args.json, "eval.json"), ("--grid", args.grid, "grid.png")):
            if path is not None:  # before the sampling whose figures or pictures go there
                check_output_file(path, name, example)
        result = evaluate_generator(args.model, args.lora, args.prompts, seed=args.seed, grid=args.grid,
                                    weight_dtype=args.weight_dtype)
    except (AssetError, PromptFileError, OutputPathError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        from ...common.atomic import write_text

        write_text(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

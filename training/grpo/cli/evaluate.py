r"""python -m training.grpo.evaluate: did the LoRA learn space? A generator with and without LoRAs on a public
spatial prompt set, judged by SpatialScore (and the order-swapped pairwise judge), with the same noise for every
variant.

    python -m training.grpo.evaluate --model shapes --lora shapes-grpo --bench shapes-heldout --out eval/
    python -m training.grpo.evaluate --model /models/FLUX.1-dev --lora runs/grpo/lora.safetensors \
        --bench geneval-position --scorer /models/spatialscore-7b --judge /models/Qwen2.5-VL-7B-Instruct --out eval/

Prompt sets (--bench): shapes-heldout, geneval-position, t2i-compbench-spatial, unigenbench-layout, dpg; or your
own file with --prompts (GenEval metadata .jsonl, T2I-CompBench .txt, UniGenBench++ .csv, DPG-Bench prompts/ folder
or dpg_bench.csv, TIIF-Bench *_prompts.jsonl, or a plain .txt / .jsonl of prompts). Writes DIR/report.md,
DIR/report.json and DIR/gains_losses_*.png. The base model is always a variant. In the shapes world the pixel
oracle's rates join the table (equal to `training.grpo.sample_eval`'s for the same seed). Bad input (a prompt set
the scorer cannot read, a LoRA for another model) gets one line and exit 2, before any sampling.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...common.cli_args import nonnegative_float as _finite
from ...common.cli_args import positive_int as _positive
from ..evaluate.benches import BENCHES


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m training.grpo.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", required=True, help="a FluxPipeline folder, or 'shapes' (shipped)")
    parser.add_argument("--lora", action="append", default=[], dest="loras",
                        help="a Flux LoRA .safetensors, or 'shapes-grpo' / 'shapes-fast' (shipped); repeat for several "
                             "(none: the base only)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bench", choices=list(BENCHES), help="a shipped prompt set")
    source.add_argument("--prompts", type=Path, help="your own prompt file (or DPG-Bench prompts/ folder)")
    parser.add_argument("--scorer", help="a SpatialScore folder, a Qwen2.5-VL folder (zero-shot) or a shipped name "
                                         "(default for --model shapes: 'shapes')")
    parser.add_argument("--judge", help="a plain Qwen2.5-VL folder for the pairwise judge (default: the scorer, when "
                                        "it is a zero-shot Qwen2.5-VL)")
    parser.add_argument("--images-per-prompt", type=_positive, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=_positive, help="only the first N prompts of the set")
    parser.add_argument("--out", required=True, type=Path, help="report folder (must not exist, or be empty)")
    parser.add_argument("--num-steps", type=_positive)
    parser.add_argument("--guidance", type=_finite)
    parser.add_argument("--height", type=_positive)
    parser.add_argument("--width", type=_positive)
    parser.add_argument("--batch-size", type=_positive, default=50, help="images sampled at once (default 50, as "
                                                                          "sample_eval)")
    parser.add_argument("--device", default="auto", help="auto (GPU if any), cpu, cuda, cuda:N")
    parser.add_argument("--confident-std", type=_finite, default=1.0,
                        help="a score counts as confident when the scorer's std is at most this (default 1.0)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ...common.device import check_device
    from ...common.os_errors import one_line_errors
    from ...reward.config import ScorerFolderError
    from ..evaluate.judge import EvaluationInputError
    from ..evaluate.run import EvaluationArgs, evaluate
    from ..prompts import PromptFileError
    from ..shipped import AssetError

    def check_and_evaluate() -> None:
        check_device(args.device)
        evaluate(EvaluationArgs(
            model=args.model, out=args.out, loras=args.loras, bench=args.bench, prompts=args.prompts,
            scorer=args.scorer, judge=args.judge, images_per_prompt=args.images_per_prompt, seed=args.seed,
            limit=args.limit, num_steps=args.num_steps, guidance=args.guidance, height=args.height, width=args.width,
            batch_size=args.batch_size, device=args.device, confident_std=args.confident_std,
        ), log=lambda line: print(line, file=sys.stderr))  # fmt: skip

    _, failed = one_line_errors(check_and_evaluate, args.debug, (
        AssetError, PromptFileError, EvaluationInputError, ScorerFolderError, ValueError), fold=True)
    if failed:
        return failed
    print(f"report: {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

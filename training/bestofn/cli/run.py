r"""python -m training.bestofn: best-of-N that prunes losing candidates while sampling.

    python -m training.bestofn --model shapes --scorer shapes --prompts prompts.txt --n 16 --out best/
    python -m training.bestofn --model shapes --lora shapes-grpo --scorer shapes --prompts p.txt --n 16 \
        --keep 2 --prune 2@0.34 --out best/

Each prompt's N candidates are sampled together; at each point of the schedule KEEP@FRACTION (after that fraction
of the steps) every living candidate's predicted clean image (x0 = x - sigma * v) is decoded and scored, and only
the KEEP best are finished. The final K are ranked by their final score. --prune none is plain best-of-N.
Writes DIR/samples.jsonl ({"prompt", "image", "rank", "score"} per kept image), DIR/images/ and DIR/report.json
(transformer forwards, decodes, scores, wall time, and who was dropped at which step with what score).
Bad input gets one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...common.cli_args import positive_int as _positive
from ...common.os_errors import one_line_errors
from ..config import BestOfNConfig
from ..schedule import DEFAULT_SCHEDULE


def parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.bestofn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", required=True, help="a FluxPipeline folder, or 'shapes' (shipped)")
    parser.add_argument("--lora", help="a Flux LoRA .safetensors (diffusers keys), or 'shapes-grpo' / 'shapes-fast' "
                                         "(shipped)")
    parser.add_argument("--scorer", required=True, help="a SpatialScore scorer folder, or 'shapes' (shipped)")
    parser.add_argument("--prompts", required=True, type=Path, help="a .txt (one prompt a line) or .jsonl file")
    parser.add_argument("--n", required=True, type=_positive, help="candidates per prompt")
    parser.add_argument("--keep", type=_positive, default=1, help="images kept per prompt, best first (K <= N)")
    parser.add_argument("--prune",
                        help=f"KEEP@FRACTION,... (survivors after that fraction of the steps), or 'none' for plain "
                             f"best-of-N; default {DEFAULT_SCHEDULE} for N=16, K=1 (the best measured, docs/bestofn.md); "
                             "for other N and K: N/2 after a third of the steps, max(2, K) at half way, or none when "
                             "nothing is left to prune")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, type=Path, help="output folder (must not exist, or be empty)")
    parser.add_argument("--num-steps", type=_positive, help="sampling steps (default: the model's own)")
    parser.add_argument("--guidance", type=float)
    parser.add_argument("--height", type=_positive)
    parser.add_argument("--width", type=_positive)
    parser.add_argument("--device", default="auto", help="auto (GPU if any), cpu, cuda, cuda:N")
    parser.add_argument("--limit", type=_positive, help="only the first LIMIT prompts")
    parser.add_argument("--trace", action="store_true",
                        help="score every step's x0 too and report its rank correlation with the final score")
    parser.add_argument("--oracle", action="store_true", help="judge the top-1 images with the shapes pixel oracle")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = BestOfNConfig(model=args.model, scorer=args.scorer, prompts=args.prompts, out=args.out, n=args.n,
                        keep=args.keep, prune=args.prune, lora=args.lora, seed=args.seed, num_steps=args.num_steps,
                        guidance=args.guidance, height=args.height, width=args.width, device=args.device,
                        trace=args.trace, oracle=args.oracle, limit=args.limit)  # fmt: skip
    from ..run import run

    # the project's input errors are ValueErrors naming the argument
    out, failed = one_line_errors(lambda: run(cfg), args.debug, (ValueError,))
    if failed:
        return failed
    print(f"samples: {out / 'samples.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The shipped `shapes-fast` LoRA, from the shipped `shapes` generator: the `shapes_fast` preset (DiffusionNFT, the
winner of the shapes speed study, docs/grpo.md), then the 400 held-out prompts judged by the pixel oracle without and
with the LoRA.

    python -m training.grpo.recipes.shapes_fast --out runs/shapes_fast           # about 3 CPU-minutes of training
    python -m training.grpo.recipes.shapes_fast --out runs/shapes_fast --ship    # and copy the LoRA into the package

Written to --out: grpo/ (the run: metrics.jsonl with each step's cpu_seconds, checkpoints, lora.safetensors) and
evaluation.json (before / after oracle rates, the run's training CPU seconds). A killed run resumes from its last
checkpoint when the command is given again.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ...common.atomic import atomic_dir, write_json
from ..shipped import ASSETS
from .shapes import run_grpo


def training_cpu_seconds(run: Path) -> float:
    """The training phases' CPU time over the run's steps (metrics.jsonl; evaluation steps' extra time excluded)."""
    steps = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "cpu_seconds" in record:
            steps[record["step"]] = record["cpu_seconds"]  # a resumed run rewrites a step: keep its last record
    return sum(steps.values())


def main(argv: list[str] | None = None) -> int:
    from ..config import load_config
    from ..evaluate.oracle_rates import evaluate_generator

    parser = argparse.ArgumentParser(prog="python -m training.grpo.recipes.shapes_fast", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--ship", action="store_true", help="copy the LoRA to training/grpo/assets/shapes-fast/")
    parser.add_argument("grpo_args", nargs="*", help="extra --section.field VALUE settings for the run")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    heldout = Path(load_config(preset="shapes_fast", overrides={"output.dir": str(args.out)}).prompts.eval_file)
    lora = run_grpo(args.out / "grpo", ["--preset", "shapes_fast", *args.grpo_args])
    results = {"before": evaluate_generator("shapes", None, heldout),
               "after": evaluate_generator("shapes", str(lora), heldout),
               "training_cpu_s": round(training_cpu_seconds(args.out / "grpo"), 1)}
    write_json(args.out / "evaluation.json", results)
    print(json.dumps(results, indent=1))
    if args.ship:
        with atomic_dir(ASSETS / "shapes-fast") as tmp:
            shutil.copy2(lora, tmp / "lora.safetensors")
        print(f"shipped to {ASSETS / 'shapes-fast'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Held-out evaluation of a generator (and LoRA) by the pixel oracle, from fixed noise.

    python -m training.grpo.sample_eval --model shapes [--lora shapes-grpo] --prompts heldout.txt [--grid g.png]

The images are `training.grpo.sample`'s (noise 0, each prompt's noise seeded by its line), so a generator and the
same generator with a LoRA are compared on identical starting noise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .oracle_judge import oracle_figures, oracle_verdicts


def judged_samples(model: str, lora: str | None, prompts: list[str], *, seed: int = 0, batch_size: int = 50):
    """(images [N, H, W, 3], oracle figures) of `prompts` from the generator (with the LoRA) at noise 0."""
    from .shipped import resolve_generator, resolve_lora
    from .sample import generate, load_policy, settings_for

    model_path = resolve_generator(model)
    lora_path = resolve_lora(lora) if lora else None
    settings = settings_for(model_path, argparse.Namespace(num_steps=None, guidance=None, height=None, width=None))
    policy = load_policy(model_path, lora_path, "auto", settings["max_sequence_length"])
    images = generate(policy, prompts, settings, seed, batch_size, lora_path is not None)
    return images, oracle_figures(oracle_verdicts(images, prompts))


def evaluate_generator(model: str, lora: str | None, prompts_file: Path, *, seed: int = 0, grid: Path | None = None,
                       grid_count: int = 16, batch_size: int = 50) -> dict:  # fmt: skip
    from .prompts import load_prompts

    prompts = load_prompts(prompts_file)
    images, figures = judged_samples(model, lora, prompts, seed=seed, batch_size=batch_size)
    if grid is not None:
        from .reports import save_sample_grid

        picks = spread(len(prompts), grid_count)
        save_sample_grid(images[picks], [prompts[i] for i in picks], [0.0] * len(picks), grid,
                         title=f"{model} {'+ ' + lora if lora else ''}")  # fmt: skip
    return {"model": model, "lora": lora, "prompts": len(prompts), "seed": seed, **figures}


def spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (half the 2-object, half the 3-object held-out prompts)."""
    return sorted({round(i * (n - 1) / max(1, k - 1)) for i in range(min(k, n))})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.grpo.sample_eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", required=True)
    parser.add_argument("--lora")
    parser.add_argument("--prompts", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from ..common.output_file import OutputPathError, check_output_file
    from .shipped import AssetError
    from .prompts import PromptFileError

    try:
        for name, path, example in (("--json", args.json, "eval.json"), ("--grid", args.grid, "grid.png")):
            if path is not None:  # before the sampling whose figures or pictures go there
                check_output_file(path, name, example)
        result = evaluate_generator(args.model, args.lora, args.prompts, seed=args.seed, grid=args.grid)
    except (AssetError, PromptFileError, OutputPathError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        from ..common.atomic import write_text

        write_text(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

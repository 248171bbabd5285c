"""The pixel oracle's rates of a generator (and a LoRA) on a prompt list: the shapes world's held-out judgement
(`python -m training.grpo.sample_eval`, whose command line is ../cli/sample_eval.py; the recipe's and the demo's
before/after figures).

The pictures are `training.grpo.sampling.generate`'s (noise 0, each prompt's noise seeded by its line), so a
generator and the same generator with a LoRA are compared on identical starting noise; the figures are
`oracle_judge.oracle_figures` of them (equal to this package's oracle rates for the same seed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..oracle_judge import oracle_figures, oracle_verdicts


def judged_samples(model: str, lora: str | None, prompts: list[str], *, seed: int = 0, batch_size: int = 50,
                   weight_dtype: str = "default"):
    """(images [N, H, W, 3], oracle figures) of `prompts` from the generator (with the LoRA) at noise 0."""
    from ..sampling import generate, load_policy, settings_for
    from ..shipped import resolve_generator, resolve_lora

    model_path = resolve_generator(model)
    lora_path = resolve_lora(lora) if lora else None
    settings = settings_for(model_path, argparse.Namespace(num_steps=None, guidance=None, height=None, width=None))
    policy = load_policy(model_path, lora_path, "auto", settings["max_sequence_length"], weight_dtype=weight_dtype)
    images = generate(policy, prompts, settings, seed, batch_size, lora_path is not None)
    return images, oracle_figures(oracle_verdicts(images, prompts))


def evaluate_generator(model: str, lora: str | None, prompts_file: Path, *, seed: int = 0, grid: Path | None = None,
                       grid_count: int = 16, batch_size: int = 50, weight_dtype: str = "default") -> dict:  # fmt: skip
    from ..prompts import load_prompts

    prompts = load_prompts(prompts_file)
    images, figures = judged_samples(model, lora, prompts, seed=seed, batch_size=batch_size, weight_dtype=weight_dtype)
    if grid is not None:
        from ..reports import save_sample_grid

        picks = spread(len(prompts), grid_count)
        save_sample_grid(images[picks], [prompts[i] for i in picks], [0.0] * len(picks), grid,
                         title=f"{model} {'+ ' + lora if lora else ''}")  # fmt: skip
    extra = {"weight_dtype": weight_dtype} if weight_dtype != "default" else {}
    return {"model": model, "lora": lora, "prompts": len(prompts), "seed": seed, **extra, **figures}


def spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (half the 2-object, half the 3-object held-out prompts)."""
    return sorted({round(i * (n - 1) / max(1, k - 1)) for i in range(min(k, n))})

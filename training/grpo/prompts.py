"""Training prompts: read from a file, and which P of them a GRPO step uses.

The choice is a pure function of (seed, step): every process picks the same prompts without talking, and a resumed
run continues the same sequence. Prompts are visited epoch by epoch, each epoch a fresh permutation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch


class PromptFileError(ValueError):
    """A prompt file that cannot be used; the message names the file and line."""


def load_prompts(path: str | os.PathLike) -> list[str]:
    """Prompts from a .txt (one a line; blank lines and lines starting with # skipped) or a .jsonl ("prompt")."""
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"prompt file not found: {path}")
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or (path.suffix != ".jsonl" and line.startswith("#")):
            continue
        if path.suffix == ".jsonl":
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PromptFileError(f"{path}:{number}: not valid JSON ({exc})") from exc
            if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
                raise PromptFileError(f'{path}:{number}: expected an object with a "prompt" string')
            line = record["prompt"].strip()
            if not line:
                raise PromptFileError(f"{path}:{number}: empty prompt")
        prompts.append(line)
    if not prompts:
        raise PromptFileError(f"{path}: no prompts in the file")
    return prompts


def step_prompts(prompts: list[str], per_step: int, seed: int, step: int) -> list[str]:
    """The `per_step` prompts of GRPO step `step` (0-based)."""
    n = len(prompts)
    chosen = []
    for position in range(step * per_step, (step + 1) * per_step):
        epoch, offset = divmod(position, n)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        chosen.append(prompts[int(torch.randperm(n, generator=generator)[offset])])
    return chosen

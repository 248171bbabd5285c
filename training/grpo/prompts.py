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


# A prompt longer than this is not a prompt (FLUX's T5 reads at most 512 tokens, about 2000 characters of English):
# refused when the file is read, before a model loads, instead of tokenised for a minute and gigabytes.
MAX_PROMPT_CHARS = 4000
MAX_LINE_BYTES = 4 * MAX_PROMPT_CHARS + 1024  # the longest prompt in UTF-8 (4 bytes a character) + a .jsonl line's JSON


def load_prompts(path: str | os.PathLike) -> list[str]:
    """Prompts from a .txt (one a line; blank lines and lines starting with # skipped) or a .jsonl ("prompt")."""
    path = Path(path)
    if path.is_dir():
        raise PromptFileError(f"{path} is a folder; expected a prompt file (.txt, one prompt a line, or .jsonl)")
    if not path.is_file():
        raise PromptFileError(f"prompt file not found: {path}")
    prompts = []
    for number, line in _text_lines(path):
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
        if len(line) > MAX_PROMPT_CHARS:
            raise PromptFileError(f"{path}:{number}: a prompt of {len(line)} characters; the limit is "
                                  f"{MAX_PROMPT_CHARS} (FLUX's T5 reads only the first 512 tokens)")
        prompts.append(line)
    if not prompts:
        raise PromptFileError(f"{path}: no prompts in the file")
    return prompts


def _text_lines(path: Path):
    """(line number, text) of a UTF-8 text file, read a bounded line at a time: a binary file, bytes that are not
    UTF-8, or a line too long to hold a prompt are refused where they are met, without reading the rest."""
    number = 0
    with path.open("rb") as f:
        while raw := f.readline(MAX_LINE_BYTES + 1):
            first = number + 1
            if len(raw) > MAX_LINE_BYTES:
                raise PromptFileError(f"{path}:{first}: a line of more than {MAX_LINE_BYTES} bytes; a prompt is at "
                                      f"most {MAX_PROMPT_CHARS} characters")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise PromptFileError(f"{path}:{first}: byte {raw[exc.start]:#04x} is not UTF-8; a prompt file is "
                                      "UTF-8 text") from None
            if b"\0" in raw:
                raise PromptFileError(f"{path}:{first}: a NUL byte; this is a binary file, not a prompt file (UTF-8 "
                                      "text)")
            for piece in text.splitlines():  # as str.splitlines numbers them (\r and other line breaks count)
                number += 1
                yield number, piece


def step_prompts(prompts: list[str], per_step: int, seed: int, step: int) -> list[str]:
    """The `per_step` prompts of GRPO step `step` (0-based)."""
    n = len(prompts)
    chosen = []
    for position in range(step * per_step, (step + 1) * per_step):
        epoch, offset = divmod(position, n)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        chosen.append(prompts[int(torch.randperm(n, generator=generator)[offset])])
    return chosen

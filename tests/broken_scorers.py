"""Scorer folders that load (every weight finite) but whose head overflows to an infinite reward."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def overflowing_copy(scorer_dir: Path, dest: Path) -> Path:
    """A copy of a tiny scorer folder whose head gives +inf for every image: the body's SiLU outputs 1e30 and the
    mean's weights are 1e30, finite weights whose product overflows fp32 (as a bf16/fp16 model overflows)."""
    shutil.copytree(scorer_dir, dest)
    head = load_file(str(dest / "head.safetensors"))
    head["body.0.weight"] = torch.zeros_like(head["body.0.weight"])
    head["body.0.bias"] = torch.full_like(head["body.0.bias"], 1e30)
    head["out.weight"][0] = 1e30
    save_file(head, str(dest / "head.safetensors"))
    return dest

"""What keeps a GRPO run from losing or corrupting anything: its output folder, changed settings on resume, and
the non-finite guard (shared pieces in common/run_folder.py and common/finite.py)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from ..common.finite import NonFiniteError, require_finite, require_finite_weights
from ..common.run_folder import claim_run_folder, owned_run_folder
from .checkpoint import list_checkpoints

STAGE = "grpo"
# Optimizer settings a checkpoint's optimizer state carries: reapplied from the config on resume.
OPTIMIZER_FIELDS = {"lr": "learning_rate", "weight_decay": "weight_decay", "eps": "adam_eps"}

__all__ = ["NonFiniteError", "apply_resumed_settings", "check_finite_step", "check_finite_weights",
           "claim_output", "output_folder"]


def _legacy_run(out: Path) -> bool:
    """A run written before the folder marker: complete GRPO checkpoints, or the tiny preset's models only."""
    return bool(list_checkpoints(out)) or {p.name for p in out.iterdir()} <= {"tiny_models", ".lock"}


def claim_output(out: str | os.PathLike) -> Path:
    """Refuse a folder that is neither empty nor a GRPO run, else mark it (before anything is written there)."""
    return claim_run_folder(out, STAGE, _legacy_run)


def output_folder(out: str | os.PathLike, accelerator=None) -> contextlib.AbstractContextManager:
    """Claim and lock the output folder for the run (the main process only)."""
    if accelerator is not None:
        main = accelerator.is_main_process
    else:
        main = int(os.environ.get("RANK", "0")) == 0
    return owned_run_folder(out, STAGE, "GRPO run", main=main, legacy_run=_legacy_run)


def apply_resumed_settings(optimizer: torch.optim.Optimizer, saved: dict, config: dict) -> list[str]:
    """Make the resumed optimizer use this run's settings (its state_dict brought back the old lr, betas...), and
    return every setting that changed since the checkpoint, as "field: old -> new", for the log."""
    t = config["train"]
    for group in optimizer.param_groups:
        for key, field in OPTIMIZER_FIELDS.items():
            group[key] = t[field]
        group["betas"] = (t["adam_beta1"], t["adam_beta2"])
    changed = []
    for section, values in config.items():
        for name, value in values.items():
            before = saved.get(section, {}).get(name)
            if before != value and f"{section}.{name}" != "output.dir":
                changed.append(f"{section}.{name}: {before!r} -> {value!r}")
    return changed


HINT = ("Checkpoints already in the output folder are untouched (there are none if it stopped before the first): "
        "lower --train.learning_rate (or --train.max_grad_norm) and continue with --resume.")


def check_finite_step(step: int, what: str, value) -> None:
    require_finite(what, value, step=step, hint=HINT)


def check_finite_weights(step: int, params: dict[str, torch.nn.Parameter]) -> None:
    require_finite_weights(params.items(), "the LoRA weights after the optimizer step", step=step, hint=HINT)

"""Atomic, resumable checkpoints: LoRA weights, optimizer state, RNG state and the step, all in safetensors + JSON.

A checkpoint is a folder `checkpoints/step_000123/` written under a temporary name and renamed whole, so a kill at
any moment leaves either the previous checkpoints or the new one complete, never a half-written one. Nothing is
pickled: tensors go to .safetensors, everything else to state.json. The folder, optimizer and RNG handling is shared
with the other stages (common/checkpointing.py); what a GRPO checkpoint holds is decided here.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from ..common import checkpointing as ckpt
from ..common.checkpointing import CheckpointError, list_checkpoints

FORMAT_VERSION = 1
ADAPTER_FILE, OPTIMIZER_FILE, RNG_FILE = "adapter.safetensors", "optimizer.safetensors", "rng.safetensors"
EMA_FILE = "ema.safetensors"  # the LoRA's moving average, when train.ema_decay > 0
# Fields a resumed run must share with the run that wrote the checkpoint (else the saved state means something else).
MUST_MATCH = ("lora.rank", "lora.alpha", "lora.targets", "sample.group_size", "prompts.per_step", "train.seed",
              "train.top_k", "sample.num_steps", "sample.noise_level", "sample.sde_type", "train.algorithm",
              "sample.deterministic", "train.ema_decay", "train.ema_warmup")  # fmt: skip
# what a checkpoint written before a field existed ran with (the field's default then and now)
ADDED_LATER = {"train.algorithm": "flow_grpo", "sample.deterministic": False, "train.ema_warmup": False}

__all__ = ["CheckpointError", "check_compatible", "list_checkpoints", "load_checkpoint", "save_checkpoint"]


def save_checkpoint(folder: str | Path, step: int, params: dict[str, torch.nn.Parameter],
                    optimizer: torch.optim.Optimizer, config: dict, lora_export: dict[str, torch.Tensor] | None = None,
                    keep: int = 2, ema: dict[str, torch.Tensor] | None = None) -> Path:
    """Write checkpoints/step_{step}/ atomically under `folder`, then drop all but the newest `keep`."""
    with ckpt.writing_checkpoint(folder, step, keep) as tmp:
        ckpt.save_params(params, tmp / ADAPTER_FILE)
        optimizer_meta = ckpt.save_optimizer(optimizer, tmp / OPTIMIZER_FILE)
        save_file(ckpt.rng_state(), str(tmp / RNG_FILE))
        if ema is not None:
            ckpt.save_params(ema, tmp / EMA_FILE)
        if lora_export is not None:
            save_file(lora_export, str(tmp / "lora.safetensors"), metadata={"format": "pt", "step": str(step)})
        ckpt.write_state(tmp, {"format_version": FORMAT_VERSION, "step": step, "optimizer": optimizer_meta,
                               "config": config})
    return ckpt.checkpoint_dir(folder, step)


def check_compatible(path: str | Path, config: dict) -> dict:
    """The checkpoint's state.json, if this run can resume from it (no model needed); else CheckpointError."""
    path = Path(path)
    state = ckpt.read_state(path, FORMAT_VERSION)
    saved = {section: dict(fields) if isinstance(fields, dict) else fields for section, fields in state["config"].items()}
    for dotted, default in ADDED_LATER.items():
        section, name = dotted.split(".")
        saved.setdefault(section, {}).setdefault(name, default)
    ckpt.check_same_setup(path, saved, config, MUST_MATCH)
    optional = [EMA_FILE] if (path / EMA_FILE).exists() else []
    ckpt.check_tensor_files(path, [ADAPTER_FILE, OPTIMIZER_FILE, RNG_FILE, *optional])  # a damaged file, early
    return state


def load_checkpoint(path: str | Path, params: dict[str, torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                    config: dict) -> int:
    """Restore LoRA weights, optimizer and RNG from a checkpoint folder; returns its step."""
    path = Path(path)
    state = check_compatible(path, config)
    saved = ckpt.load_tensors(path, ADAPTER_FILE)
    if set(saved) != set(params):
        raise CheckpointError(f"{path}: adapter weights do not match the model's LoRA ({len(saved)} saved tensors, "
                              f"{len(params)} expected)")
    ckpt.copy_params(path, saved, params)
    ckpt.load_optimizer(optimizer, path / OPTIMIZER_FILE, state["optimizer"])
    ckpt.set_rng_state(ckpt.load_tensors(path, RNG_FILE))
    return int(state["step"])

"""Atomic, resumable training checkpoints: trainable weights, optimizer, scheduler, RNG and data position.

`<out>/checkpoints/step_000123/` is written under a temporary name and renamed whole (common.atomic), so a kill at
any moment leaves complete checkpoints only. Nothing is pickled: tensors go to safetensors, the rest to JSON.

    trainable.safetensors   every parameter with requires_grad (LoRA + token row + head, or all weights), fp32
    optimizer.safetensors   the optimizer's tensor state; its scalars and param groups are in state.json
    rng.safetensors         torch CPU (and CUDA) generator states, one set per process
    state.json              step, data position, scheduler, best validation, python RNG, config, data fingerprint

The folder, optimizer and RNG handling is shared with the other stages (common/checkpointing.py).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from ...common import checkpointing as ckpt
from ...common.checkpointing import CheckpointError, list_checkpoints, rng_state, set_rng_state

FORMAT_VERSION = 1
TRAINABLE_FILE, OPTIMIZER_FILE, RNG_FILE = "trainable.safetensors", "optimizer.safetensors", "rng.safetensors"
# A resumed run must agree with its checkpoint on these, or the saved state means something else.
MUST_MATCH = ("model.base", "model.backbone", "model.init_from", "model.weights", "lora.rank", "lora.alpha",
              "lora.targets", "head.hidden_size", "train.loss", "train.batch_size", "train.seed", "data.train",
              "data.train_split")

__all__ = ["CheckpointError", "check_resumable", "list_checkpoints", "load_checkpoint", "read_state",
           "remove_stale_temporaries", "rng_state", "save_checkpoint", "set_rng_state"]


def _json_python_rng(state) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def save_checkpoint(out: str | Path, step: int, params: dict[str, torch.nn.Parameter],
                    optimizer: torch.optim.Optimizer, scheduler, rng_by_rank: list[dict], python_rng: list,
                    extra: dict, config: dict, keep: int = 2) -> Path:
    """Write checkpoints/step_{step}/ atomically under `out` (main process only), keep the newest `keep`."""
    rng = {f"rank{r}.{k}": v.cpu() for r, state in enumerate(rng_by_rank) for k, v in state.items()}
    sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    with ckpt.writing_checkpoint(out, step, keep) as tmp:
        ckpt.save_params(params, tmp / TRAINABLE_FILE)
        opt_meta = ckpt.save_optimizer(optimizer, tmp / OPTIMIZER_FILE)
        save_file(rng, str(tmp / RNG_FILE))
        ckpt.write_state(tmp, {"format_version": FORMAT_VERSION, "step": step, "optimizer": opt_meta,
                               "scheduler": sched, "python_rng": python_rng, "config": config, **extra})
    return ckpt.checkpoint_dir(out, step)


def remove_stale_temporaries(out: str | Path) -> list[Path]:
    """Delete half-written checkpoint / export folders a killed run left behind (`.step_000004.xyz.tmp`)."""
    out = Path(out)
    stale = [p for root in (out, out / "checkpoints") if root.is_dir()
             for p in root.glob(".*.tmp") if p.is_dir()]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


def read_state(path: Path) -> dict:
    return ckpt.read_state(path, FORMAT_VERSION)


def check_resumable(path: Path) -> None:
    """CheckpointError if the checkpoint's state.json or a tensor file is damaged: said before any model loads."""
    state = read_state(path)
    missing = [k for k in ("step", "config", "data", "python_rng") if k not in state]
    if missing:  # e.g. an edit run's checkpoint from before edit pairs trained in this loop
        raise CheckpointError(f"{path}: state.json has no {', '.join(missing)}: it was written by another trainer; "
                              "start a new run (a new --out)")
    ckpt.check_tensor_files(path, [TRAINABLE_FILE, OPTIMIZER_FILE, RNG_FILE])


def load_checkpoint(path: str | Path, params: dict[str, torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                    scheduler, config: dict, rank: int) -> dict:
    """Restore weights, optimizer, scheduler and this rank's RNG; returns state.json (step, data, best...)."""
    path = Path(path)
    state = read_state(path)
    ckpt.check_same_setup(path, state["config"], config, MUST_MATCH)
    saved = ckpt.load_tensors(path, TRAINABLE_FILE)
    if set(saved) != set(params):
        missing, unexpected = sorted(set(params) - set(saved)), sorted(set(saved) - set(params))
        raise CheckpointError(f"{path}: trainable weights do not match the model (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
    ckpt.copy_params(path, saved, params)
    ckpt.load_optimizer(optimizer, path / OPTIMIZER_FILE, state["optimizer"])
    scheduler.load_state_dict({**scheduler.state_dict(), **state["scheduler"]})
    rng = ckpt.load_tensors(path, RNG_FILE)
    mine = {k.split(".", 1)[1]: v for k, v in rng.items() if k.startswith(f"rank{rank}.")}
    if mine:
        set_rng_state(mine)
    else:  # more processes than the run that wrote it: a fresh, still deterministic stream
        torch.manual_seed(int(state["config"]["train"]["seed"]) * 7919 + rank * 104729 + int(state["step"]))
    version, internal, gauss = state["python_rng"][rank % len(state["python_rng"])]
    random.setstate((version, tuple(internal), gauss))
    return state

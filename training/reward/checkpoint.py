"""Atomic, resumable training checkpoints: trainable weights, optimizer, scheduler, RNG and data position.

`<out>/checkpoints/step_000123/` is written under a temporary name and renamed whole (common.atomic), so a kill at
any moment leaves complete checkpoints only. Nothing is pickled: tensors go to safetensors, the rest to JSON.

    trainable.safetensors   every parameter with requires_grad (LoRA + token row + head, or all weights), fp32
    optimizer.safetensors   the optimizer's tensor state; its scalars and param groups are in state.json
    rng.safetensors         torch CPU (and CUDA) generator states, one set per process
    state.json              step, data position, scheduler, best validation, python RNG, config, data fingerprint
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..common.atomic import atomic_dir

STEP_DIR = re.compile(r"^step_(\d+)$")
FORMAT_VERSION = 1
# A resumed run must agree with its checkpoint on these, or the saved state means something else.
MUST_MATCH = ("model.base", "model.init_from", "model.weights", "lora.rank", "lora.alpha", "lora.targets",
              "head.hidden_size", "train.loss", "train.batch_size", "train.seed", "data.train", "data.train_split")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from; the message names the folder and the problem."""


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, plain = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "plain_state": plain}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, tensor in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = tensor
    for index, values in meta["plain_state"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> dict[str, torch.Tensor]:
    """This process's torch generators (python's `random` goes to JSON separately)."""
    state = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state.update({f"cuda_{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch_cpu"])
    cuda = [state[k] for k in sorted(k for k in state if k.startswith("cuda_"))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _json_python_rng(state) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def save_checkpoint(out: str | Path, step: int, params: dict[str, torch.nn.Parameter],
                    optimizer: torch.optim.Optimizer, scheduler, rng_by_rank: list[dict], python_rng: list,
                    extra: dict, config: dict, keep: int = 2) -> Path:
    """Write checkpoints/step_{step}/ atomically under `out` (main process only), keep the newest `keep`."""
    root = Path(out) / "checkpoints"
    target = root / f"step_{step:06d}"
    opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
    rng = {f"rank{r}.{k}": v.cpu() for r, state in enumerate(rng_by_rank) for k, v in state.items()}
    sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    with atomic_dir(target) as tmp:
        save_file({n: p.detach().float().cpu().contiguous() for n, p in params.items()},
                  str(tmp / "trainable.safetensors"))
        save_file(opt_tensors or {"_empty": torch.zeros(0)}, str(tmp / "optimizer.safetensors"))
        save_file(rng, str(tmp / "rng.safetensors"))
        state = {"format_version": FORMAT_VERSION, "step": step, "optimizer": opt_meta, "scheduler": sched,
                 "python_rng": python_rng, "config": config, **extra}
        (tmp / "state.json").write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    for old in list_checkpoints(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def list_checkpoints(out: str | Path) -> list[Path]:
    """Complete checkpoint folders, oldest first (temporary and half-deleted folders are not listed)."""
    root = Path(out) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := STEP_DIR.match(p.name)) and (p / "state.json").is_file()]
    return [p for _, p in sorted(found)]


def remove_stale_temporaries(out: str | Path) -> list[Path]:
    """Delete half-written checkpoint / export folders a killed run left behind (`.step_000004.xyz.tmp`)."""
    out = Path(out)
    stale = [p for root in (out, out / "checkpoints") if root.is_dir()
             for p in root.glob(".*.tmp") if p.is_dir()]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


def _get(config: dict, dotted: str):
    section, name = dotted.split(".")
    return config.get(section, {}).get(name)


def read_state(path: Path) -> dict:
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable state.json ({exc})") from exc
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {state.get('format_version')}, expected {FORMAT_VERSION}")
    return state


def load_checkpoint(path: str | Path, params: dict[str, torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                    scheduler, config: dict, rank: int) -> dict:
    """Restore weights, optimizer, scheduler and this rank's RNG; returns state.json (step, data, best...)."""
    path = Path(path)
    state = read_state(path)
    differ = [f"{k}: checkpoint {_get(state['config'], k)!r}, now {_get(config, k)!r}"
              for k in MUST_MATCH if _get(state["config"], k) != _get(config, k)]
    if differ:
        raise CheckpointError(f"{path}: cannot resume with a different setup:\n  " + "\n  ".join(differ))
    saved = load_file(str(path / "trainable.safetensors"))
    if set(saved) != set(params):
        missing, unexpected = sorted(set(params) - set(saved)), sorted(set(saved) - set(params))
        raise CheckpointError(f"{path}: trainable weights do not match the model (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
    with torch.no_grad():
        for name, param in params.items():
            if saved[name].shape != param.shape:
                raise CheckpointError(f"{path}: {name} has shape {tuple(saved[name].shape)}, "
                                      f"expected {tuple(param.shape)}")
            param.copy_(saved[name])
    tensors = {k: v for k, v in load_file(str(path / "optimizer.safetensors")).items() if k != "_empty"}
    optimizer.load_state_dict(_unflatten_optimizer(tensors, state["optimizer"]))
    scheduler.load_state_dict({**scheduler.state_dict(), **state["scheduler"]})
    rng = load_file(str(path / "rng.safetensors"))
    mine = {k.split(".", 1)[1]: v for k, v in rng.items() if k.startswith(f"rank{rank}.")}
    if mine:
        set_rng_state(mine)
    else:  # more processes than the run that wrote it: a fresh, still deterministic stream
        torch.manual_seed(int(state["config"]["train"]["seed"]) * 7919 + rank * 104729 + int(state["step"]))
    version, internal, gauss = state["python_rng"][rank % len(state["python_rng"])]
    random.setstate((version, tuple(internal), gauss))
    return state

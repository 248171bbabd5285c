"""Atomic, resumable checkpoints: LoRA weights, optimizer state, RNG state and the step, all in safetensors + JSON.

A checkpoint is a folder `checkpoints/step_000123/` written under a temporary name and renamed whole, so a kill at
any moment leaves either the previous checkpoints or the new one complete, never a half-written one. Nothing is
pickled: tensors go to .safetensors, everything else to state.json.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..common.atomic import atomic_dir

STEP_DIR = re.compile(r"^step_(\d+)$")
FORMAT_VERSION = 1
# Fields a resumed run must share with the run that wrote the checkpoint (else the saved state means something else).
MUST_MATCH = ("lora.rank", "lora.alpha", "lora.targets", "sample.group_size", "prompts.per_step", "train.seed",
              "train.top_k", "sample.num_steps", "sample.noise_level", "sample.sde_type")  # fmt: skip


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


def save_checkpoint(folder: str | Path, step: int, params: dict[str, torch.nn.Parameter],
                    optimizer: torch.optim.Optimizer, config: dict, lora_export: dict[str, torch.Tensor] | None = None,
                    keep: int = 2) -> Path:
    """Write checkpoints/step_{step}/ atomically under `folder`, then drop all but the newest `keep`."""
    root = Path(folder) / "checkpoints"
    target = root / f"step_{step:06d}"
    optimizer_tensors, optimizer_meta = _flatten_optimizer(optimizer.state_dict())
    rng = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda_{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    with atomic_dir(target) as tmp:
        save_file({n: p.detach().float().cpu().contiguous() for n, p in params.items()}, str(tmp / "adapter.safetensors"))
        save_file(optimizer_tensors or {"_empty": torch.zeros(0)}, str(tmp / "optimizer.safetensors"))
        save_file(rng, str(tmp / "rng.safetensors"))
        if lora_export is not None:
            save_file(lora_export, str(tmp / "lora.safetensors"), metadata={"format": "pt", "step": str(step)})
        state = {"format_version": FORMAT_VERSION, "step": step, "optimizer": optimizer_meta, "config": config}
        (tmp / "state.json").write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    for old in list_checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    root = Path(folder) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name)) and (p / "state.json").is_file()]
    return [p for _, p in sorted(found)]


def _get(config: dict, dotted: str):
    section, name = dotted.split(".")
    return config.get(section, {}).get(name)


def check_compatible(path: str | Path, config: dict) -> dict:
    """The checkpoint's state.json, if this run can resume from it (no model needed); else CheckpointError."""
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable state.json ({exc})") from exc
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {state.get('format_version')}, expected {FORMAT_VERSION}")
    differ = [f"{k}: checkpoint {_get(state['config'], k)!r}, now {_get(config, k)!r}"
              for k in MUST_MATCH if _get(state["config"], k) != _get(config, k)]  # fmt: skip
    if differ:
        raise CheckpointError(f"{path}: cannot resume with a different setup:\n  " + "\n  ".join(differ))
    return state


def load_checkpoint(path: str | Path, params: dict[str, torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                    config: dict) -> int:
    """Restore LoRA weights, optimizer and RNG from a checkpoint folder; returns its step."""
    path = Path(path)
    state = check_compatible(path, config)
    saved = load_file(str(path / "adapter.safetensors"))
    if set(saved) != set(params):
        raise CheckpointError(f"{path}: adapter weights do not match the model's LoRA ({len(saved)} saved tensors, "
                              f"{len(params)} expected)")
    with torch.no_grad():
        for name, param in params.items():
            if saved[name].shape != param.shape:
                raise CheckpointError(f"{path}: {name} has shape {tuple(saved[name].shape)}, expected {tuple(param.shape)}")
            param.copy_(saved[name])
    tensors = {k: v for k, v in load_file(str(path / "optimizer.safetensors")).items() if k != "_empty"}
    # load_state_dict moves each state tensor to its parameter's device (and keeps AdamW's step on the CPU).
    optimizer.load_state_dict(_unflatten_optimizer(tensors, state["optimizer"]))
    rng = load_file(str(path / "rng.safetensors"))
    torch.set_rng_state(rng["torch_cpu"])
    cuda = [rng[k] for k in sorted(k for k in rng if k.startswith("cuda_"))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return int(state["step"])

"""The parts of a resumable checkpoint every training stage shares: folders, optimizer, weights, RNG, state.json.

A stage's checkpoints are `<out>/checkpoints/step_000123/` folders, written under a temporary name and renamed
whole (common.atomic), so a kill at any moment leaves complete checkpoints only. Nothing is pickled: tensors go to
safetensors, the rest to state.json. Each stage decides what goes in (and which config fields a resumed run must
share); this module only does the writing, listing and reading.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .atomic import atomic_dir
from .finite import require_finite_weights
from .os_errors import os_errors_name

STEP_DIR = re.compile(r"^step_(\d+)$")
STATE_FILE = "state.json"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from; the message names the folder and the problem."""


# ---------------------------------------------------------------------------------------------------- folders


def checkpoint_dir(out: str | Path, step: int) -> Path:
    return Path(out) / "checkpoints" / f"step_{step:06d}"


def list_checkpoints(out: str | Path) -> list[Path]:
    """Complete checkpoint folders, oldest first (temporary and half-deleted folders are not listed)."""
    root = Path(out) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := STEP_DIR.match(p.name)) and (p / STATE_FILE).is_file()]
    return [p for _, p in sorted(found)]


@contextlib.contextmanager
def writing_checkpoint(out: str | Path, step: int, keep: int) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it becomes checkpoints/step_{step}/ under `out`, and all but
    the newest `keep` checkpoints are deleted. On an error nothing changes and the temporary folder is removed;
    a full disk (or any OS error, safetensors' included) is an OSError naming checkpoints/step_{step}."""
    final = checkpoint_dir(out, step)
    with os_errors_name(final), atomic_dir(final) as tmp:
        yield tmp
    for old in list_checkpoints(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------- state.json


def write_state(folder: Path, state: dict) -> None:
    (folder / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")


def damaged(folder: Path, name: str, reason: str) -> CheckpointError:
    """The error for a checkpoint file that cannot be read (truncated, emptied, deleted): which file, and that the
    run continues from the checkpoint before it (or from the start) once this folder is out of the way."""
    others = [p for p in list_checkpoints(folder.parent.parent) if p != folder]
    then = f"continues from {others[-1].name}" if others else "starts again from step 0"
    return CheckpointError(f"{folder / name} is damaged ({reason}): delete the folder {folder} (or move it aside) "
                           f"and rerun with --resume, which then {then}")


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def read_state(path: Path, format_version: int) -> dict:
    """A checkpoint's state.json, if it is readable and of `format_version`; else CheckpointError."""
    try:
        state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise damaged(path, STATE_FILE, _reason(exc)) from exc
    if not isinstance(state, dict):
        raise damaged(path, STATE_FILE, f"a JSON {type(state).__name__}, not an object")
    if state.get("format_version") != format_version:
        raise CheckpointError(f"{path}: checkpoint format {state.get('format_version')}, expected {format_version}")
    return state


def _get(config: dict, dotted: str):
    section, name = dotted.split(".")
    return config.get(section, {}).get(name)


def check_same_setup(path: Path, saved_config: dict, config: dict, must_match: Iterable[str]) -> None:
    """CheckpointError listing every "section.field" of `must_match` on which the two configs differ."""
    differ = [f"{k}: checkpoint {_get(saved_config, k)!r}, now {_get(config, k)!r}"
              for k in must_match if _get(saved_config, k) != _get(config, k)]
    if differ:
        raise CheckpointError(f"{path}: cannot resume with a different setup:\n  " + "\n  ".join(differ))


# ---------------------------------------------------------------------------------------------------- tensors


def check_tensor_files(folder: Path, names: Iterable[str]) -> None:
    """CheckpointError for the first of the files that is missing, empty or truncated. Reads headers only (safetensors
    checks that the header covers the whole file), so it runs before any model loads."""
    from safetensors import SafetensorError, safe_open

    for name in names:
        try:
            with safe_open(str(folder / name), framework="pt"):
                pass
        except (SafetensorError, OSError) as exc:
            raise damaged(folder, name, _reason(exc)) from exc


def load_tensors(folder: Path, name: str) -> dict[str, torch.Tensor]:
    """A checkpoint's tensor file; a missing, empty or truncated one is a CheckpointError saying what to do."""
    from safetensors import SafetensorError

    try:
        return load_file(str(folder / name))
    except (SafetensorError, OSError) as exc:
        raise damaged(folder, name, _reason(exc)) from exc


def save_params(params: dict[str, torch.nn.Parameter], file: Path) -> None:
    """The parameters as fp32 CPU tensors, whatever their training dtype and device; never non-finite ones."""
    require_finite_weights(params.items(), f"checkpoint weights ({file.name})")
    save_file({n: p.detach().float().cpu().contiguous() for n, p in params.items()}, str(file))


def copy_params(path: Path, saved: dict[str, torch.Tensor], params: dict[str, torch.nn.Parameter]) -> None:
    """Copy saved tensors into the parameters of the same names (the stage has checked the names match)."""
    with torch.no_grad():
        for name, param in params.items():
            if saved[name].shape != param.shape:
                raise CheckpointError(f"{path}: {name} has shape {tuple(saved[name].shape)}, "
                                      f"expected {tuple(param.shape)}")
            param.copy_(saved[name])


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


def save_optimizer(optimizer: torch.optim.Optimizer, file: Path) -> dict:
    """The optimizer's tensor state to `file`; returns the rest (scalars, param groups) for state.json."""
    tensors, meta = _flatten_optimizer(optimizer.state_dict())
    save_file(tensors or {"_empty": torch.zeros(0)}, str(file))  # safetensors needs at least one tensor
    return meta


def load_optimizer(optimizer: torch.optim.Optimizer, file: Path, meta: dict) -> None:
    """Restore what `save_optimizer` wrote (`meta` is what it returned)."""
    tensors = {k: v for k, v in load_tensors(file.parent, file.name).items() if k != "_empty"}
    # load_state_dict moves each state tensor to its parameter's device (and keeps AdamW's step on the CPU).
    optimizer.load_state_dict(_unflatten_optimizer(tensors, meta))


# ---------------------------------------------------------------------------------------------------- RNG


def rng_state() -> dict[str, torch.Tensor]:
    """This process's torch generators (python's `random` goes to JSON separately)."""
    state = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state.update({f"cuda_{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    """Restore `rng_state()`; CUDA states only when this machine has as many GPUs as the one that saved them."""
    torch.set_rng_state(state["torch_cpu"])
    cuda = [state[k] for k in sorted(k for k in state if k.startswith("cuda_"))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)

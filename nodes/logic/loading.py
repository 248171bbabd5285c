"""Resolve the Loader's choice and load the scorer behind it (no ComfyUI needed)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .discovery import SCORER_MARKER, ScorerFolder, list_scorers, resolve_scorer
from .scoring import DirectPlacement, Placement, ScorerHandle
from .training_import import import_training, missing_dependency

log = logging.getLogger(__name__)


def load_handle(name: str, roots: list[str | os.PathLike], *, offload_device: str | torch.device = "cpu",
                dtype: torch.dtype | None = None, dtype_name: str = "auto", keep_loaded: bool = False,
                batch_size: int = 8, placement_factory: Callable[[Any], Placement] | None = None,
                builtin_dir: Path | None = None) -> ScorerHandle:
    """Load the scorer a dropdown value names onto `offload_device`; the placement moves it when scoring."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a whole number >= 1, got {batch_size!r}")
    folder = resolve_scorer(name, roots, builtin_dir)
    base = find_moved_base(folder, roots, builtin_dir)
    reward = import_training("reward")
    log.info("SpatialScore: loading %s from %s (%s, %s)%s", folder.name, folder.path, folder.mode, dtype_name,
             f" on base {base}" if base else "")
    try:
        scorer = reward.load_scorer(str(folder.path), device=offload_device, dtype=dtype, batch_size=batch_size,
                                    **({"base_model": str(base)} if base else {}))
    except ModuleNotFoundError as exc:  # peft is imported only for LoRA scorers
        raise missing_dependency(exc) from exc
    placement = placement_factory(scorer) if placement_factory is not None else DirectPlacement(offload_device)
    return ScorerHandle(scorer=scorer, folder=folder, placement=placement, keep_loaded=keep_loaded,
                        dtype=dtype_name)


def find_moved_base(folder: ScorerFolder, roots: list[str | os.PathLike], builtin_dir: Path | None = None
                    ) -> Path | None:
    """The base model of a LoRA scorer whose recorded base path does not exist here, found by its folder name.

    A scorer trained on one machine records its base (e.g. /data/Qwen2.5-VL-7B-Instruct) in spatialscore.json;
    on the user's machine the same base usually sits in models/spatialscore under the same name. None when the
    recorded path exists (or is relative and resolves), when the scorer stores its full weights, or when no
    Qwen2.5-VL folder of that name is listed: the scorer's loader then reports the missing base itself.
    """
    if folder.kind != "scorer":
        return None
    try:
        config = json.loads((folder.path / SCORER_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the scorer's loader reports a broken spatialscore.json with its own message
    recorded = config.get("base_model") if isinstance(config, dict) else None
    if config.get("weights", "lora") != "lora" or not recorded:
        return None
    path = Path(os.path.expanduser(recorded))
    if not path.is_absolute():
        path = folder.path / path
    if path.is_dir():
        return None
    for candidate in list_scorers(roots, builtin_dir):
        if candidate.kind == "qwen2_5_vl" and candidate.path.name == path.name:
            return candidate.path
    return None

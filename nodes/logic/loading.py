"""Resolve the Loader's choice and load the scorer behind it (no ComfyUI needed)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .discovery import resolve_scorer
from .scoring import DirectPlacement, Placement, ScorerHandle
from .training_import import import_training

log = logging.getLogger(__name__)


def load_handle(name: str, roots: list[str | os.PathLike], *, offload_device: str | torch.device = "cpu",
                dtype: torch.dtype | None = None, dtype_name: str = "auto", keep_loaded: bool = False,
                batch_size: int = 8, placement_factory: Callable[[Any], Placement] | None = None,
                builtin_dir: Path | None = None) -> ScorerHandle:
    """Load the scorer a dropdown value names onto `offload_device`; the placement moves it when scoring."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a whole number >= 1, got {batch_size!r}")
    folder = resolve_scorer(name, roots, builtin_dir)
    reward = import_training("reward")
    log.info("SpatialScore: loading %s from %s (%s, %s)", folder.name, folder.path, folder.mode, dtype_name)
    scorer = reward.load_scorer(str(folder.path), device=offload_device, dtype=dtype, batch_size=batch_size)
    placement = placement_factory(scorer) if placement_factory is not None else DirectPlacement(offload_device)
    return ScorerHandle(scorer=scorer, folder=folder, placement=placement, keep_loaded=keep_loaded,
                        dtype=dtype_name)

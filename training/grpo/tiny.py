"""The "@tiny" model paths of the tiny preset: random models of the real architectures, built offline.

They are written as ordinary folders under <output>/tiny_models/ and then loaded back through the same loaders as
FLUX.1-dev and SpatialScore-7B, so the tiny run exercises the real code path end to end on a CPU.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from ..common.atomic import atomic_dir
from .config import TINY, TINY_QWEN_IMAGE, GRPOConfig

WAIT_S = 600


def _build_once(folder: Path, marker: str, build: Callable[[Path], object]) -> None:
    """Build `folder` once per machine: local rank 0 builds it atomically, other processes wait for it."""
    if (folder / marker).is_file():
        return
    if int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0"))) != 0:
        deadline = time.monotonic() + WAIT_S
        while not (folder / marker).is_file():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {WAIT_S} s for local rank 0 to build {folder}")
            time.sleep(0.2)
        return
    with atomic_dir(folder) as tmp:
        build(tmp)


def materialize_tiny_models(config: GRPOConfig) -> GRPOConfig:
    """Build the models whose path is "@tiny" (once; a resumed run finds them) and point the config at them."""
    root = Path(config.output.dir) / "tiny_models"
    seed = config.train.seed
    if config.model.path == TINY:
        from ..common.tiny_flux import save_tiny_flux_pipeline

        _build_once(root / "flux", "model_index.json", lambda tmp: save_tiny_flux_pipeline(tmp, seed=seed))
        config.model.path = str(root / "flux")
    if config.model.path == TINY_QWEN_IMAGE:
        from ..common.tiny_qwen_image import save_tiny_qwen_image_pipeline

        _build_once(root / "qwen_image", "model_index.json", lambda tmp: save_tiny_qwen_image_pipeline(tmp, seed=seed))
        config.model.path = str(root / "qwen_image")
    if config.reward.path == TINY:
        from ..reward.models.tiny import save_tiny_scorer

        _build_once(root / "scorer", "spatialscore.json", lambda tmp: save_tiny_scorer(tmp, seed=seed))
        config.reward.path = str(root / "scorer")
    return config

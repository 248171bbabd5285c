"""The "@tiny" model paths of the tiny preset: random models of the real architectures, built offline.

They are written as ordinary folders under <output>/tiny_models/ and then loaded back through the same loaders as
FLUX.1-dev and SpatialScore-7B, so the tiny run exercises the real code path end to end on a CPU.
"""

from __future__ import annotations

from pathlib import Path

from .config import TINY, GRPOConfig


def materialize_tiny_models(config: GRPOConfig) -> GRPOConfig:
    """Build the models whose path is "@tiny" (once; a resumed run finds them) and point the config at them."""
    root = Path(config.output.dir) / "tiny_models"
    seed = config.train.seed
    if config.model.path == TINY:
        folder = root / "flux"
        if not (folder / "model_index.json").is_file():
            from ..common.tiny_flux import save_tiny_flux_pipeline

            save_tiny_flux_pipeline(folder, seed=seed)
        config.model.path = str(folder)
    if config.reward.path == TINY:
        folder = root / "scorer"
        if not (folder / "spatialscore.json").is_file():
            from ..reward.tiny import save_tiny_scorer

            save_tiny_scorer(folder, seed=seed)
        config.reward.path = str(folder)
    return config

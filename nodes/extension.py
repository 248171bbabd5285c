"""The pack's V3 extension: registers the model folder and lists the nodes."""

from __future__ import annotations

import os

import folder_paths
from comfy_api.latest import ComfyExtension, io

from .bestofn import SpatialScoreBestOfNSampler
from .edit import SpatialScoreEditLoader, SpatialScoreEditRerank, SpatialScoreEditScore
from .evaluate import SpatialScoreEvaluate
from .grpo import SpatialScoreGRPOTrain
from .loader import MODEL_FOLDER, SpatialScoreLoader
from .rerank import SpatialScoreRerank
from .score import SpatialScoreScore
from .shapes_loader import SpatialScoreShapesGeneratorLoader


def register_model_folder() -> None:
    """models/spatialscore, beside ComfyUI's other model folders; extra_model_paths.yaml may add more."""
    path = os.path.join(folder_paths.models_dir, MODEL_FOLDER)
    folder_paths.add_model_folder_path(MODEL_FOLDER, path, is_default=True)
    try:  # so that users find where scorers go; a read-only install is fine too
        os.makedirs(path, exist_ok=True)
    except OSError:
        pass


def register_example_inputs() -> None:
    """The pictures the example workflows load, into ComfyUI's input folder (only those missing)."""
    from .logic.examples import install_example_inputs

    install_example_inputs(folder_paths.get_input_directory())


class SpatialScoreExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [SpatialScoreLoader, SpatialScoreScore, SpatialScoreRerank, SpatialScoreEditLoader,
                SpatialScoreEditScore, SpatialScoreEditRerank, SpatialScoreShapesGeneratorLoader,
                SpatialScoreGRPOTrain, SpatialScoreBestOfNSampler, SpatialScoreEvaluate]

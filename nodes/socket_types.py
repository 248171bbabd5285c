"""ComfyUI socket types of the pack."""

from comfy_api.latest import io

# A loaded SpatialScore scorer (nodes.logic.scoring.ScorerHandle): from the Loader to Score and Rerank.
SpatialScoreModel = io.Custom("SPATIALSCORE_MODEL")

CATEGORY = "SpatialScore"

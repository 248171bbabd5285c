"""SpatialScore: the reward model (Qwen2.5-VL + reward token + Gaussian head), its scorer and trainer."""

from .config import ScorerConfig, ScorerFolderError
from .models.loading import create_model, load_model, save_model, shipped_scorers
from .scorer import Scorer, ScoreResult, load_scorer

__all__ = [
    "ScoreResult", "Scorer", "ScorerConfig", "ScorerFolderError", "create_model", "load_model", "load_scorer",
    "save_model", "shipped_scorers",
]

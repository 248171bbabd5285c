"""Headless core of SpatialScore: dataset building, reward model training/scoring, Spatial GRPO.

Never imports ComfyUI. Each stage is a subpackage with its own config and `python -m training.<stage>`.
"""

__version__ = "0.1.0"

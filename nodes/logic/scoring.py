"""The scorer handle that travels between nodes, and batch scoring through it.

A handle pairs a loaded scorer with a placement policy: where the weights go just before scoring and where they go
after. ComfyUI's nodes pass a placement built on comfy.model_management (see nodes/comfy/models.py); tests and
scripts use `DirectPlacement`. Keeping the weights on the accelerator only while scoring is the default: a 7B scorer
must not sit on the GPU while Flux generates the next batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from .discovery import SCORER_MARKER, ScorerFolder
from .prompts import resolve_prompts


class Placement(Protocol):
    def load(self, scorer: Any) -> None: ...  # weights onto the compute device, before scoring

    def offload(self, scorer: Any) -> None: ...  # weights off it, after scoring (keep_loaded off)


class DirectPlacement:
    """Move the scorer with its own `.to(device)` / `.release()`: for use outside ComfyUI."""

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)

    def load(self, scorer: Any) -> None:
        if hasattr(scorer, "to"):
            scorer.to(self.device)

    def offload(self, scorer: Any) -> None:
        if hasattr(scorer, "release"):
            scorer.release()


@dataclass
class ScorerHandle:
    """What the Loader node outputs: a loaded scorer, where it came from, and how to place it."""

    scorer: Any  # training.reward.Scorer, or anything with .score(images, prompts, progress) and .mode
    folder: ScorerFolder
    placement: Placement = field(default_factory=DirectPlacement)
    keep_loaded: bool = False
    dtype: str = "auto"

    @property
    def mode(self) -> str:
        return getattr(self.scorer, "mode", self.folder.mode)

    def describe(self) -> str:
        return f"{self.folder.name} ({self.mode}, {self.dtype})"

    def __repr__(self) -> str:  # ComfyUI shows node inputs in its error reports
        return f"ScorerHandle({self.describe()}, keep_loaded={self.keep_loaded})"


@dataclass(frozen=True)
class ScoreTable:
    """Scores of a batch, in batch order."""

    mean: torch.Tensor  # float32 [N]
    std: torch.Tensor  # float32 [N]
    prompts: list[str]
    mode: str
    warnings: tuple[str, ...] = ()  # per image: '' or why its score means little (outside the scorer's world)


def check_image_batch(images: Any, name: str = "images") -> int:
    """The batch size of a ComfyUI IMAGE ([B,H,W,C] float), or an error naming what is wrong."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name}: expected an IMAGE batch tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{name}: expected an IMAGE of shape [batch, height, width, channels], got "
                         f"{tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{name}: empty batch (0 images)")
    return int(images.shape[0])


def score_images(handle: ScorerHandle, images: torch.Tensor, prompt: str, prompt_mode: str = "auto",
                 progress: Callable[[int, int], None] | None = None) -> ScoreTable:
    """Score every image of the batch against its prompt (absolute scores, no normalisation across the batch).

    The scorer goes onto the compute device first and, unless keep_loaded, off it afterwards, also when scoring
    fails or is cancelled (the progress callback raises on Cancel).
    """
    if not isinstance(handle, ScorerHandle):
        raise ValueError(f"scorer: expected a SpatialScore model from the SpatialScore Loader node, got "
                         f"{type(handle).__name__}")
    n = check_image_batch(images)
    prompts = resolve_prompts(prompt, n, prompt_mode)
    handle.placement.load(handle.scorer)
    try:
        result = handle.scorer.score(images, prompts, progress=progress)
    finally:
        if not handle.keep_loaded:
            handle.placement.offload(handle.scorer)
    mean = torch.as_tensor(result.mean, dtype=torch.float32).detach().cpu().flatten()
    std = torch.as_tensor(result.std, dtype=torch.float32).detach().cpu().flatten()
    if mean.numel() != n or std.numel() != n:
        raise RuntimeError(f"scorer {handle.folder.name}: returned {mean.numel()} means and {std.numel()} "
                           f"stds for {n} images")
    warnings = tuple(str(w) for w in getattr(result, "warnings", None) or ())
    return ScoreTable(mean=mean, std=std, prompts=prompts, mode=getattr(result, "mode", handle.mode),
                      warnings=warnings)


def warning_lines(warnings) -> list[str]:
    """The lines that head the node's text when scores mean little (outside the scorer's world): one line when every
    image has the same warning, else one per image that has one."""
    found = [(i, w) for i, w in enumerate(warnings) if w]
    if not found:
        return []
    if len(found) == len(warnings) and len({w for _, w in found}) == 1:
        return [f"warning (every image): {found[0][1]}; the scores below mean little"]
    return [f"warning (image {i}): {w}; its score means little" for i, w in found]


# A badge's short form of a warning, by the phrases training/reward/world_check.py words them with.
WARNING_FLAGS = (("does not know", "unknown words"), ("far from the", "unfamiliar image"))


def warning_flag(warning: str) -> str:
    """'unknown words', 'unfamiliar image', both, or '' (no warning): what a badge says of a score that means little."""
    flags = [flag for phrase, flag in WARNING_FLAGS if phrase in warning]
    return ", ".join(flags) or ("outside its world" if warning else "")


def scorer_vocabulary(folder: ScorerFolder) -> list[str]:
    """The words a small scorer knows (the coords backbone's vocabulary, punctuation left out); [] for scorers
    that read any text (Qwen2.5-VL)."""
    try:
        record = json.loads((folder.path / SCORER_MARKER).read_text(encoding="utf-8"))
        vocab = (record.get("coords") or {}).get("vocab") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [w for w in vocab if isinstance(w, str) and w.isalnum()]


def builtin_scope(folders: list[ScorerFolder]) -> str:
    """What the built-in scorers can judge, for the Loader's tooltip, with the words they know read from their own
    folders (the list their prompts are checked against)."""
    words = sorted({w for f in folders for w in scorer_vocabulary(f)})
    if not words:
        return ""
    names = " and ".join(repr(f.name) for f in folders)
    return (f"{names} judge only the shapes world: red, green, blue or yellow circles, squares and triangles on a "
            f"plain light background, described in English with these words: {', '.join(words)}. Any other prompt "
            "or picture still gets a number, which means nothing: its badge and text then say 'unknown words' or "
            "'unfamiliar image'.")

"""Edit scoring for the nodes (no ComfyUI needed): edit scorer folders, the handle, batch scoring, region previews.

An edit scorer is picked like a SpatialScore scorer, from models/spatialscore: a folder with spatialreward.json
(a trained edit scorer or a generative-judge folder), a plain local Qwen2.5-VL / Qwen3-VL chat model (used as a
generative judge with the pack's JSON template), or the built-in `shapes-edit` demo scorer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from .discovery import ScorerChoiceError, pack_root
from .prompts import resolve_prompts
from .scoring import DirectPlacement, Placement, check_image_batch
from .training_import import import_training, missing_dependency

EDIT_MARKER = "spatialreward.json"
BUILTIN_SHAPES_EDIT = "shapes-edit"
JUDGE_TYPES = ("qwen2_5_vl", "qwen3_vl")
_SCAN_DEPTH = 2


def builtin_shapes_edit_dir() -> Path:
    return pack_root() / "training" / "reward" / "assets" / BUILTIN_SHAPES_EDIT


@dataclass(frozen=True)
class EditFolder:
    name: str
    path: Path
    kind: str  # "edit" (spatialreward.json) or "judge" (a plain Qwen2.5-VL / Qwen3-VL chat model)


def edit_folder_kind(path: Path) -> tuple[str | None, str]:
    if not path.is_dir():
        return None, f"{path} is not a folder"
    if (path / EDIT_MARKER).is_file():
        return "edit", ""
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, f"{path} has neither {EDIT_MARKER} (an edit scorer) nor a readable config.json (a chat model)"
    model_type = cfg.get("model_type") if isinstance(cfg, dict) else None
    if model_type in JUDGE_TYPES:
        return "judge", ""
    return None, (f"{path} holds a model of type {model_type!r}; expected an edit scorer (with {EDIT_MARKER}) or a "
                  f"Qwen2.5-VL / Qwen3-VL chat model for a generative judge")


def list_edit_scorers(roots: list[str | os.PathLike], builtin_dir: Path | None = None) -> list[EditFolder]:
    """The built-in shapes-edit scorer first (when installed), then edit scorers and chat models by name."""
    builtin_dir = builtin_shapes_edit_dir() if builtin_dir is None else builtin_dir
    found = [EditFolder(BUILTIN_SHAPES_EDIT, builtin_dir, "edit")] if (builtin_dir / EDIT_MARKER).is_file() else []
    seen: dict[str, EditFolder] = {}

    def visit(root: Path, folder: Path, level: int) -> None:
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            kind, _ = edit_folder_kind(child)
            if kind is not None:
                name = child.relative_to(root).as_posix()
                if not (name == BUILTIN_SHAPES_EDIT and found):
                    seen.setdefault(name, EditFolder(name, child, kind))
            elif level < _SCAN_DEPTH:
                visit(root, child, level + 1)

    for root in roots:
        if Path(root).is_dir():
            visit(Path(root), Path(root), 1)
    return found + sorted(seen.values(), key=lambda f: f.name.lower())


def resolve_edit_scorer(name: str, roots: list[str | os.PathLike], builtin_dir: Path | None = None) -> EditFolder:
    where = ", ".join(str(r) for r in roots) or "(no models/spatialscore folder registered)"
    if not isinstance(name, str) or not name.strip():
        raise ScorerChoiceError(f"edit_scorer: none chosen; put an edit scorer folder (with {EDIT_MARKER}) or a "
                                f"Qwen2.5-VL / Qwen3-VL chat model in {where} and refresh the node list")
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ":" in parts[0] or any(p in ("", ".", "..") for p in parts):
        raise ScorerChoiceError(f"edit_scorer: {name!r} is not a folder name from the list (absolute paths and "
                                f"'..' are not accepted; put the folder in {where})")
    choices = list_edit_scorers(roots, builtin_dir)
    for folder in choices:
        if folder.name == name:
            return folder
    for root in roots:
        candidate = Path(root, *parts)
        if candidate.exists():
            kind, reason = edit_folder_kind(candidate)
            if kind is None:
                raise ScorerChoiceError(f"edit_scorer {name!r}: {reason}")
    available = ", ".join(f.name for f in choices) or "none"
    raise ScorerChoiceError(f"edit_scorer: {name!r} was not found in {where} (available: {available})")


@dataclass
class EditHandle:
    scorer: Any  # training.reward.edit.EditScorer
    folder: EditFolder
    placement: Placement = field(default_factory=DirectPlacement)
    keep_loaded: bool = False
    dtype: str = "auto"

    @property
    def mode(self) -> str:
        return getattr(self.scorer, "mode", "reward")

    def describe(self) -> str:
        return f"{self.folder.name} ({self.mode}, {self.dtype})"

    def __repr__(self) -> str:
        return f"EditHandle({self.describe()}, keep_loaded={self.keep_loaded})"


def load_edit_handle(name: str, roots: list[str | os.PathLike], *, offload_device="cpu", dtype=None,
                     dtype_name: str = "auto", keep_loaded: bool = False, batch_size: int = 8,
                     placement_factory: Callable[[Any], Placement] | None = None,
                     builtin_dir: Path | None = None) -> EditHandle:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a whole number >= 1, got {batch_size!r}")
    folder = resolve_edit_scorer(name, roots, builtin_dir)
    import_training("reward")
    edit = import_training("reward.edit.scorer")
    try:
        scorer = edit.load_edit_scorer(str(folder.path), device=offload_device, dtype=dtype, batch_size=batch_size)
    except ModuleNotFoundError as exc:
        raise missing_dependency(exc) from exc
    placement = placement_factory(scorer) if placement_factory is not None else DirectPlacement(offload_device)
    return EditHandle(scorer, folder, placement, keep_loaded, dtype_name)


@dataclass(frozen=True)
class EditTable:
    mean: torch.Tensor  # [N]
    std: torch.Tensor  # [N]
    regions: list  # per edited image: boxes [x0, y0, x1, y1] in 0..1
    reasoning: list[str]  # per edited image ("" for a trained scorer)
    instructions: list[str]
    mode: str
    prompts: list[str] = field(default_factory=list)  # = instructions (what Rerank's report shows)


def check_source(source: Any, n_edited: int) -> int:
    m = check_image_batch(source, "source")
    if m not in (1, n_edited):
        raise ValueError(f"source: a batch of {m} images matches neither 1 nor the edited batch ({n_edited} images); "
                         "give one source image for all, or one per edited image")
    return m


def check_same_size(source: torch.Tensor, edited: torch.Tensor) -> None:
    """ValueError when the source and edited batches differ in size. Why refuse rather than resize: the edit
    scorers compare the two images place by place, so a resized source scores a correct edit as a wrong one."""
    (sh, sw), (eh, ew) = source.shape[1:3], edited.shape[1:3]
    if (sh, sw) != (eh, ew):
        raise ValueError(f"source is {sw}x{sh} but edited is {ew}x{eh} (width x height): an edit keeps the source's "
                         "size; connect the source the edits were made from, or scale one of them to the other's "
                         "size first (e.g. with an Upscale Image node)")


def score_edit_batch(handle: EditHandle, source: torch.Tensor, edited: torch.Tensor, instruction: str,
                     instruction_mode: str = "auto", progress: Callable[[int, int], None] | None = None) -> EditTable:
    if not isinstance(handle, EditHandle):
        raise ValueError(f"edit_scorer: expected an edit scorer from the SpatialScore Edit Loader node, got "
                         f"{type(handle).__name__}")
    n = check_image_batch(edited, "edited")
    check_source(source, n)
    check_same_size(source, edited)
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError("instruction: empty; give the edit instruction (one line for all edited images, or one "
                         "line per edited image)")
    try:
        instructions = resolve_prompts(instruction, n, instruction_mode)
    except ValueError as exc:
        raise ValueError(str(exc).replace("prompt", "instruction")) from exc
    handle.placement.load(handle.scorer)
    try:
        result = handle.scorer.score(source, edited, instructions, progress=progress)
    finally:
        if not handle.keep_loaded:
            handle.placement.offload(handle.scorer)
    mean = torch.as_tensor(result.mean, dtype=torch.float32).flatten()
    std = torch.as_tensor(result.std, dtype=torch.float32).flatten()
    check_regions(result.regions, f"edit_scorer {handle.folder.name} predicted an unusable edit region for")
    reasoning = list(result.reasoning) if result.reasoning else [""] * n
    return EditTable(mean, std, list(result.regions), reasoning, instructions, result.mode, instructions)


def check_regions(regions: list, what: str) -> None:
    """ValueError naming the first edited image whose region is not boxes of finite 0..1 coordinates: a NaN box
    would be drawn at the image edge and passed on as if it were a place."""
    problem_of = import_training("reward.edit.regions").region_problem
    for i, boxes in enumerate(regions):
        problem = problem_of(boxes)
        if problem is not None:
            raise ValueError(f"{what} edited image {i}: {problem}")


def draw_regions(images: torch.Tensor, regions: list, labels: list[str]) -> torch.Tensor:
    """A copy of an IMAGE batch with each image's edit-region boxes outlined and its label at the top left."""
    from .annotate import draw_badge

    if len(regions) != images.shape[0] or len(labels) != images.shape[0]:
        raise ValueError(f"{len(regions)} regions and {len(labels)} labels for {images.shape[0]} images")
    check_regions(regions, "edit regions:")
    out = []
    for img, boxes, label in zip(images, regions, labels, strict=True):
        arr = (img[..., :3].detach().float().cpu().clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
        pil = Image.fromarray(arr, mode="RGB")
        w, h = pil.size
        draw = ImageDraw.Draw(pil)
        width = max(1, min(w, h) // 64)
        for x0, y0, x1, y1 in boxes:
            draw.rectangle((x0 * w, y0 * h, max(x0 * w, x1 * w - 1), max(y0 * h, y1 * h - 1)),
                           outline=(255, 0, 200), width=width)
        draw_badge(pil, label)
        out.append(torch.from_numpy(np.asarray(pil).astype(np.float32) / 255.0))
    return torch.stack(out)

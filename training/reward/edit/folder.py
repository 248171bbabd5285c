"""Create, save and load edit scorers (local folders only); the shipped ones live in ../assets/<name>/."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ...common.atomic import atomic_dir
from ...common.os_errors import os_errors_name
from ..config import HEAD_FILE, HeadConfig, ScorerFolderError
from ..models.loading import find_folder, load_coords_folder, save_tensors, shipped_folders
from . import CONFIG_FILE
from .config import EditScorerConfig


def shipped_edit_scorers() -> dict[str, Path]:
    """Edit scorers that ship inside the package, by name (e.g. "shapes-edit")."""
    return shipped_folders(CONFIG_FILE)


def resolve_edit_path(name_or_path: str | os.PathLike) -> Path:
    path = find_folder(name_or_path, shipped_edit_scorers(),
                       "edit scorer folder not found: {path} (shipped edit scorers: {names})")
    if not (path / CONFIG_FILE).is_file() and _chat_model(path):
        return path  # a plain local Qwen2.5-VL / Qwen3-VL chat model: used as a generative judge (judge.py)
    if not (path / CONFIG_FILE).is_file():
        hint = " (it is a SpatialScore folder for single images)" if (path / "spatialscore.json").is_file() else ""
        raise ScorerFolderError(f"not an edit scorer folder: {path} has no {CONFIG_FILE}{hint}")
    return path


def _chat_model(path: Path) -> bool:
    from .judge import JUDGE_TYPES, model_type

    return model_type(path) in JUDGE_TYPES


def is_edit_scorer(name_or_path) -> bool:
    """An edit scorer folder or shipped name (a plain chat-model folder counts only with --source)."""
    try:
        path = resolve_edit_path(name_or_path)
    except ScorerFolderError:
        return False
    return (path / CONFIG_FILE).is_file()


def create_coords_edit_model(coords, head: HeadConfig, seed: int = 0, device="cpu"):
    from .coords_edit import EditCoordsModel

    config = EditScorerConfig(kind="coords", head=head, coords=coords.to_dict())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EditCoordsModel(config)
    model.source = "coords"
    return model.to(device)


def save_edit_model(model, folder: str | os.PathLike, notes: dict | None = None) -> Path:
    """Write an edit scorer folder atomically (a reader sees the old folder or the complete new one)."""
    folder = Path(folder)
    if notes is not None:
        model.config.notes = notes
    if model.kind == "coords":
        from .coords_edit import BACKBONE_FILE

        with os_errors_name(folder), atomic_dir(folder) as tmp:  # a full disk: one line naming the folder
            save_tensors(model.backbone, tmp / BACKBONE_FILE, "edit scorer weights")
            save_tensors(model.head, tmp / HEAD_FILE, "edit scorer weights")
            model.config.write(tmp)
        return folder
    if model.kind == "qwen2_5_vl":
        from .qwen_edit import save_qwen_edit

        return save_qwen_edit(model, folder)
    with atomic_dir(folder) as tmp:  # a judge: only its config
        model.config.write(tmp)
    return folder


def load_edit_model(name_or_path, device: str | torch.device | None = None, dtype: torch.dtype | None = None):
    """An edit scorer folder or shipped name -> its model (eval mode, on `device`)."""
    path = resolve_edit_path(name_or_path)
    config = EditScorerConfig.read(path) if (path / CONFIG_FILE).is_file() else EditScorerConfig(kind="judge")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if config.kind == "coords":
        model = _load_coords_edit(path, config)
    elif config.kind == "qwen2_5_vl":
        from .qwen_edit import load_qwen_edit

        model = load_qwen_edit(path, config, dtype=dtype, device=device)
    else:
        from .judge import GenerativeJudge

        model = GenerativeJudge.from_folder(path, config, device=device, dtype=dtype)
    model.source = str(path)
    return model.to(device).eval() if isinstance(model, torch.nn.Module) else model


def _load_coords_edit(path: Path, config: EditScorerConfig):
    from .coords_edit import EditCoordsModel

    return load_coords_folder(path, lambda: EditCoordsModel(config), "edit scorer", CONFIG_FILE)


def read_notes(path) -> dict:
    return json.loads((resolve_edit_path(path) / CONFIG_FILE).read_text(encoding="utf-8")).get("notes", {})

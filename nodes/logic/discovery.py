"""Find the scorers a user can pick: SpatialScore scorer folders, plain Qwen2.5-VL folders, the built-in demo.

Folders are looked for in ComfyUI's `models/spatialscore` (and every path `extra_model_paths.yaml` adds to it),
up to two levels deep so that `org/model` layouts work. V3 combos are not validated by the server, so the loader
resolves the chosen name here again and refuses anything that is not a listed folder of a usable kind.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

SCORER_MARKER = "spatialscore.json"  # written by training.reward next to the LoRA and head weights
BUILTIN_SHAPES = "shapes"
# the scorers shipped in training/reward/assets, listed first: the default, and the shapes GRPO preset's reward (it
# does not pay for extra objects; docs/grpo.md)
BUILTINS = (BUILTIN_SHAPES, "shapes-gen")
MODES = {"scorer": "reward", "qwen2_5_vl": "zero-shot"}
_SCAN_DEPTH = 2


class ScorerChoiceError(ValueError):
    """The chosen scorer name does not name a usable folder."""


@dataclass(frozen=True)
class ScorerFolder:
    name: str  # the dropdown value
    path: Path
    kind: str  # "scorer" (trained SpatialScore) or "qwen2_5_vl" (plain base model, zero-shot)

    @property
    def mode(self) -> str:
        return MODES[self.kind]


def pack_root() -> Path:
    return Path(__file__).resolve().parents[2]


def builtin_shapes_dir() -> Path:
    return pack_root() / "training" / "reward" / "assets" / "shapes"


def folder_kind(path: Path) -> tuple[str | None, str]:
    """(kind, reason): kind is "scorer", "qwen2_5_vl" or None, and reason says why when it is None."""
    if not path.is_dir():
        return None, f"{path} is not a folder"
    if (path / SCORER_MARKER).is_file():
        return "scorer", ""
    config = path / "config.json"
    if not config.is_file():
        return None, f"{path} has neither {SCORER_MARKER} (a SpatialScore scorer) nor config.json (a Qwen2.5-VL model)"
    try:
        with open(config, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as exc:
        return None, f"{config} cannot be read as JSON: {exc}"
    model_type = cfg.get("model_type") if isinstance(cfg, dict) else None
    archs = cfg.get("architectures") or [] if isinstance(cfg, dict) else []
    if model_type == "qwen2_5_vl" or "Qwen2_5_VLForConditionalGeneration" in archs:
        return "qwen2_5_vl", ""
    return None, (f"{path} holds a model of type {model_type!r}; expected a SpatialScore scorer folder "
                  f"(with {SCORER_MARKER}) or a Qwen2.5-VL folder (model_type 'qwen2_5_vl')")


def scan_root(root: Path, depth: int = _SCAN_DEPTH) -> list[ScorerFolder]:
    """Usable folders under `root`, named by their path relative to it with '/' separators."""
    found: list[ScorerFolder] = []
    root = Path(root)

    def visit(folder: Path, level: int) -> None:
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            kind, _ = folder_kind(child)
            if kind is not None:
                found.append(ScorerFolder(child.relative_to(root).as_posix(), child, kind))
            elif level < depth:
                visit(child, level + 1)

    if root.is_dir():
        visit(root, 1)
    return found


def builtin_scorers(builtin_dir: Path | None = None) -> list[ScorerFolder]:
    """The installed built-ins, in BUILTINS order: `builtin_dir` is the 'shapes' folder, the others lie beside it."""
    builtin_dir = builtin_shapes_dir() if builtin_dir is None else builtin_dir
    dirs = [builtin_dir, *(builtin_dir.parent / name for name in BUILTINS[1:])]
    return [ScorerFolder(name, d, "scorer") for name, d in zip(BUILTINS, dirs, strict=True)
            if folder_kind(d)[0] == "scorer"]


def list_scorers(roots: list[str | os.PathLike], builtin_dir: Path | None = None) -> list[ScorerFolder]:
    """Every choice, in dropdown order: the built-in scorers that are installed, then folders by name.

    A name found in several roots is taken from the first root, as ComfyUI's folder_paths does; a user folder
    named like an installed built-in ('shapes', 'shapes-gen') is shadowed by it.
    """
    builtin = builtin_scorers(builtin_dir)
    taken = {f.name for f in builtin}
    seen: dict[str, ScorerFolder] = {}
    for root in roots:
        for folder in scan_root(Path(root)):
            if folder.name in taken:
                continue  # the name means the built-in
            seen.setdefault(folder.name, folder)
    return builtin + sorted(seen.values(), key=lambda f: f.name.lower())


def resolve_scorer(name: str, roots: list[str | os.PathLike], builtin_dir: Path | None = None) -> ScorerFolder:
    """The folder behind a dropdown value, or a ScorerChoiceError that names the folder and what is wrong."""
    builtin_dir = builtin_shapes_dir() if builtin_dir is None else builtin_dir
    where = ", ".join(str(r) for r in roots) or "(no models/spatialscore folder registered)"
    if not isinstance(name, str) or not name.strip():
        raise ScorerChoiceError(f"scorer: none chosen; put a SpatialScore scorer folder or a Qwen2.5-VL folder in "
                                f"{where} and refresh the node list")
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ":" in parts[0] or any(p in ("", ".", "..") for p in parts):
        raise ScorerChoiceError(f"scorer: {name!r} is not a folder name from the list (absolute paths and '..' "
                                f"are not accepted; put the folder in {where})")
    for folder in list_scorers(roots, builtin_dir):
        if folder.name == name:
            return folder
    if name == BUILTIN_SHAPES:
        raise ScorerChoiceError(f"scorer: the built-in 'shapes' demo scorer is not installed (expected a scorer "
                                f"folder with {SCORER_MARKER} at {builtin_dir})")
    for root in roots:
        candidate = Path(root, *parts)
        if candidate.exists():
            kind, reason = folder_kind(candidate)
            if kind is None:
                raise ScorerChoiceError(f"scorer {name!r}: {reason}")
    available = ", ".join(f.name for f in list_scorers(roots, builtin_dir)) or "none"
    raise ScorerChoiceError(f"scorer: {name!r} was not found in {where} (available: {available})")


def folder_fingerprint(folder: ScorerFolder) -> str:
    """Changes when the folder's files change, so ComfyUI reloads a scorer that was retrained in place."""
    stamps = []
    try:
        for entry in sorted(os.scandir(folder.path), key=lambda e: e.name):
            if entry.is_file():
                st = entry.stat()
                stamps.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    except OSError:
        pass
    return f"{folder.path}|{folder.kind}|{'|'.join(stamps)}"

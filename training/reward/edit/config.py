"""The edit scorer folder: spatialreward.json and the files next to it.

kind "coords"      backbone.safetensors + head.safetensors; `coords` holds the architecture and vocabulary
                   (coords_edit.py: the shipped shapes-edit scorer)
kind "qwen2_5_vl"  adapter/ (LoRA on `base_model`) or model/ (weights "full"), processor/, head.safetensors,
                   region.safetensors; `template` is the two-image chat (qwen_edit.py)
kind "judge"       no weights of its own: `base_model` is a local Qwen2.5-VL / Qwen3-VL chat model (e.g. the released
                   SpatialReward-8B) and `judge` holds its prompt templates and the aggregation (judge.py)
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import HeadConfig, LoraSettings, ScorerFolderError
from . import CONFIG_FILE

FORMAT_NAME = "spatialreward"
FORMAT_VERSION = 1
KINDS = ("coords", "qwen2_5_vl", "judge")

DEFAULT_EDIT_SYSTEM = "You are an expert judge of image edits."
DEFAULT_EDIT_USER = (
    "Instruction: {instruction}\nSource image: {source}\nEdited image: {edited}\n"
    "Compare the two images region by region and judge whether the edit follows the instruction and changes "
    "nothing else."
)


@dataclass
class EditTemplate:
    """The two-image chat: {instruction} once, {source} and {edited} (the two images) once each, in any order."""

    system: str = DEFAULT_EDIT_SYSTEM
    user: str = DEFAULT_EDIT_USER

    def __post_init__(self):
        for key in ("{instruction}", "{source}", "{edited}"):
            if self.user.count(key) != 1:
                raise ValueError(f"edit template.user must contain {key} exactly once, got {self.user!r}")

    def user_content(self, instruction: str) -> list[dict]:
        """Chat content parts: text, image (source), text, image (edited), text, in the template's order."""
        text = self.user.replace("{instruction}", instruction)
        parts, rest = [], text
        while True:
            hits = [(rest.find(k), k) for k in ("{source}", "{edited}") if k in rest]
            if not hits:
                break
            pos, key = min(hits)
            if rest[:pos]:
                parts.append({"type": "text", "text": rest[:pos]})
            parts.append({"type": "image", "role": key.strip("{}")})
            rest = rest[pos + len(key):]
        if rest:
            parts.append({"type": "text", "text": rest})
        return parts


@dataclass
class EditScorerConfig:
    kind: str = "coords"
    base_model: str | None = None
    weights: str = "full"
    reward_token: str = "<|reward|>"
    template: EditTemplate = field(default_factory=EditTemplate)
    head: HeadConfig = field(default_factory=HeadConfig)
    lora: LoraSettings | None = None
    min_pixels: int = 28 * 28
    max_pixels: int = 512 * 512
    coords: dict | None = None
    judge: dict | None = None
    instructions: str | None = None  # "shapes-edit": only the shapes-edit plain forms are understood (and checked)
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "coords" and not isinstance(self.coords, dict):
            raise ValueError("kind 'coords' needs a 'coords' architecture section")
        if self.kind == "qwen2_5_vl" and self.weights == "lora" and self.lora is None:
            raise ValueError("weights='lora' needs lora settings")
        if self.weights not in ("lora", "full"):
            raise ValueError(f"weights must be 'lora' or 'full', got {self.weights!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> EditScorerConfig:
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ScorerFolderError(f"{source}: format is {got!r}, expected {FORMAT_NAME!r}")
        if int(data.get("version", -1)) > FORMAT_VERSION:
            raise ScorerFolderError(f"{source}: format version {data.get('version')} is newer than this code reads "
                                    f"({FORMAT_VERSION})")
        data = dict(data)
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ScorerFolderError(f"{source}: unknown fields {unknown}")
        try:
            data["template"] = EditTemplate(**data.get("template", {}))
            data["head"] = HeadConfig(**data.get("head", {}))
            data["lora"] = LoraSettings(**data["lora"]) if data.get("lora") else None
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ScorerFolderError(f"{source}: {exc}") from exc

    @classmethod
    def read(cls, folder: str | os.PathLike) -> EditScorerConfig:
        path = Path(folder) / CONFIG_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ScorerFolderError(f"not an edit scorer folder: {path} is missing") from exc
        except json.JSONDecodeError as exc:
            raise ScorerFolderError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_dict(data, source=str(path))

    def write(self, folder: Path) -> None:
        (Path(folder) / CONFIG_FILE).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    def resolve_base(self, folder: str | os.PathLike) -> Path:
        if not self.base_model:
            raise ScorerFolderError(f"{Path(folder) / CONFIG_FILE}: kind {self.kind!r} needs base_model (a local "
                                    "model folder)")
        base = Path(os.path.expanduser(self.base_model))
        return base if base.is_absolute() else (Path(folder) / base).resolve()

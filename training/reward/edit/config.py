"""The edit scorer folder: spatialreward.json and the files next to it.

kind "coords"      backbone.safetensors + head.safetensors; `coords` holds the architecture and vocabulary
                   (coords_edit.py: the shipped shapes-edit scorer)
kind "qwen2_5_vl"  adapter/ (LoRA on `base_model`) or model/ (weights "full"), processor/, head.safetensors,
                   region.safetensors; `template` is the two-image chat (qwen_edit.py)
kind "judge"       no weights of its own: `base_model` is a local Qwen2.5-VL / Qwen3-VL chat model (e.g. the released
                   SpatialReward-8B) and `judge` holds its prompt templates and the aggregation (judge.py)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import FolderConfig, HeadConfig, LoraSettings
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
class EditScorerConfig(FolderConfig):
    """spatialreward.json, read and written as the single-image spatialscore.json is (config.FolderConfig)."""

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

    FILE = CONFIG_FILE
    FORMAT = FORMAT_NAME
    VERSION = FORMAT_VERSION
    FOLDER = "an edit scorer folder"
    TEXT_FIELDS = ("kind", "base_model", "reward_token", "weights")
    TEMPLATE = EditTemplate

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "coords" and not isinstance(self.coords, dict):
            raise ValueError("kind 'coords' needs a 'coords' architecture section")
        if self.kind == "qwen2_5_vl" and self.weights == "lora" and self.lora is None:
            raise ValueError("weights='lora' needs lora settings")
        if self.weights not in ("lora", "full"):
            raise ValueError(f"weights must be 'lora' or 'full', got {self.weights!r}")

    def missing_base(self) -> str:
        return f"kind {self.kind!r} needs base_model (a local model folder)"

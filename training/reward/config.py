"""What a trained SpatialScore folder is: its JSON config and the file names next to it.

A scorer folder holds:
    spatialscore.json      this config (format name and version, base model reference, template, token, head, LoRA)
    head.safetensors       the reward head (fp32)
    adapter/               a peft LoRA adapter (weights == "lora"), applied to `base_model`
    model/                 full VLM weights and config (weights == "full"), no base model needed
    processor/             tokenizer (with the reward token), chat template and image processor files
or, for backbone "coords" (models/coords_model.py: the small explicit-coordinates backbone of the shipped shapes scorer):
    backbone.safetensors   every backbone weight; its architecture and vocabulary are under "coords" in the config
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

FORMAT_NAME = "spatialscore"
FORMAT_VERSION = 1
CONFIG_FILE = "spatialscore.json"
HEAD_FILE = "head.safetensors"
ADAPTER_DIR = "adapter"
MODEL_DIR = "model"
PROCESSOR_DIR = "processor"

REWARD_TOKEN = "<|reward|>"
BACKBONES = ("qwen2_5_vl", "coords")

DEFAULT_SYSTEM = "You are an expert judge of spatial relations in images."
# The prompt comes before the image so that every image of a group (GRPO, best-of-N) shares the text prefix,
# whose keys and values the scorer computes once (see models/model.py).
DEFAULT_REWARD_USER = (
    "Prompt: {prompt}\n{image}\n"
    "Judge whether every spatial relation described in the prompt holds in the image."
)
DEFAULT_ZERO_SHOT_USER = (
    'Description: "{prompt}"\n{image}Does the image show this description, with every object placed exactly '
    "as described? Answer Yes or No."
)


class ScorerFolderError(ValueError):
    """A folder that is not a scorer, or one whose parts (files, base model) are missing or malformed."""


@dataclass
class Template:
    """The chat the model sees: system text, then the user turn with {prompt} filled in and the image at {image}
    (at the start when the user text has no {image})."""

    system: str = DEFAULT_SYSTEM
    user: str = DEFAULT_REWARD_USER

    def __post_init__(self):
        if self.user.count("{prompt}") != 1 or self.user.count("{image}") > 1:
            raise ValueError(f"template.user must contain '{{prompt}}' once and '{{image}}' at most once, "
                             f"got {self.user!r}")

    def user_content(self, prompt: str) -> list[dict]:
        before, _, after = (self.user if "{image}" in self.user else "{image}" + self.user).partition("{image}")
        parts = [{"type": "text", "text": before}, {"type": "image"}, {"type": "text", "text": after}]
        return [{**p, "text": p["text"].replace("{prompt}", prompt)} if p["type"] == "text" else p
                for p in parts if p["type"] == "image" or p["text"]]


@dataclass
class HeadConfig:
    """MLP on the reward token's final hidden state -> (mean, log_std). hidden_size 0 means a linear head."""

    hidden_size: int = 1024
    init_log_std: float = 0.0
    min_log_std: float = -7.0
    max_log_std: float = 5.0


@dataclass
class LoraSettings:
    """LoRA on the language model. `targets` are module names inside the text decoder layers."""

    rank: int = 32
    alpha: int = 64
    dropout: float = 0.05
    targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


class FolderConfig:
    """What the two scorer folder formats share: this file's spatialscore.json (ScorerConfig) and the edit scorers'
    spatialreward.json (edit/config.py). The format name and version are checked, the template, head and LoRA
    sections built, unknown fields refused, every problem a ScorerFolderError naming the file."""

    FILE = CONFIG_FILE
    FORMAT = FORMAT_NAME
    VERSION = FORMAT_VERSION
    FOLDER = "a scorer folder"
    TEXT_FIELDS = ("base_model", "reward_token", "weights")
    TEMPLATE = Template

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config"):
        if not isinstance(data, dict):
            raise ScorerFolderError(f"{source}: expected a JSON object at the top level, got {type(data).__name__}")
        if data.get("format") != cls.FORMAT:
            raise ScorerFolderError(f"{source}: format is {data.get('format')!r}, expected {cls.FORMAT!r}")
        version = data.get("version", cls.VERSION)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ScorerFolderError(f"{source}: version must be a whole number, got {version!r}")
        if version > cls.VERSION:
            raise ScorerFolderError(
                f"{source}: format version {data.get('version')} is newer than this code reads ({cls.VERSION})"
            )
        data = dict(data)
        for name in cls.TEXT_FIELDS:
            if name in data and data[name] is not None and not isinstance(data[name], str):
                raise ScorerFolderError(f"{source}: {name} must be text, got {data[name]!r}")
        try:
            data["template"] = cls.TEMPLATE(**data.get("template", {}))
            data["head"] = HeadConfig(**data.get("head", {}))
            data["lora"] = LoraSettings(**data["lora"]) if data.get("lora") else None
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(data) - known)
            if unknown:
                raise ScorerFolderError(f"{source}: unknown fields {unknown}")
            return cls(**data)
        except TypeError as exc:
            raise ScorerFolderError(f"{source}: malformed field ({exc})") from exc
        except ValueError as exc:
            if isinstance(exc, ScorerFolderError):
                raise
            raise ScorerFolderError(f"{source}: {exc}") from exc

    @classmethod
    def read(cls, folder: str | os.PathLike):
        path = Path(folder) / cls.FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ScorerFolderError(f"not {cls.FOLDER}: {path} is missing") from exc
        except json.JSONDecodeError as exc:
            raise ScorerFolderError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_dict(data, source=str(path))

    def write(self, folder: str | os.PathLike) -> None:
        (Path(folder) / self.FILE).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    def missing_base(self) -> str:
        return "weights='lora' but base_model is empty"

    def resolve_base(self, folder: str | os.PathLike) -> Path:
        """The base model folder, relative paths taken from the scorer folder."""
        if not self.base_model:
            raise ScorerFolderError(f"{Path(folder) / self.FILE}: {self.missing_base()}")
        base = Path(os.path.expanduser(self.base_model))
        if not base.is_absolute():
            base = (Path(folder) / base).resolve()
        return base


@dataclass
class ScorerConfig(FolderConfig):
    base_model: str | None = None  # local folder of the Qwen2.5-VL base (absolute, or relative to the scorer)
    weights: str = "lora"  # "lora" (adapter on base_model) or "full" (complete VLM stored in model/)
    reward_token: str = REWARD_TOKEN
    template: Template = field(default_factory=Template)
    head: HeadConfig = field(default_factory=HeadConfig)
    lora: LoraSettings | None = field(default_factory=LoraSettings)
    min_pixels: int = 56 * 56
    max_pixels: int = 512 * 512
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION
    notes: dict = field(default_factory=dict)  # free-form provenance: training data, accuracy, recipe
    backbone: str = "qwen2_5_vl"  # or "coords" (then `coords` holds its CoordsConfig, and weights is "full")
    coords: dict | None = None

    TEXT_FIELDS = ("base_model", "reward_token", "weights", "backbone")

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if self.backbone == "coords" and (self.weights != "full" or not isinstance(self.coords, dict)):
            raise ValueError("backbone 'coords' needs weights='full' and a 'coords' architecture section")
        if self.weights not in ("lora", "full"):
            raise ValueError(f"weights must be 'lora' or 'full', got {self.weights!r}")
        if self.weights == "lora" and self.lora is None:
            raise ValueError("weights='lora' needs lora settings")
        if not (0 < self.min_pixels <= self.max_pixels):
            raise ValueError(f"need 0 < min_pixels <= max_pixels, got {self.min_pixels}, {self.max_pixels}")

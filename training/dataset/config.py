"""Everything a dataset build depends on, in one dataclass, validated up front with errors that name the field."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .prompts import STYLES_LONG, STYLES_SHORT
from .worlds import WORLDS

PROMPT_STYLES = {
    "plain": ("plain",),
    "short": STYLES_SHORT,
    "long": STYLES_LONG,
    "mixed": STYLES_SHORT + STYLES_LONG + STYLES_LONG,  # long prompts a third of the time
    "shapes-varied": ("plain", "sentences", "there_is"),  # forms the shapes oracle still reads
}
# Fields that change what a build writes; a resumed build must agree on all of them (pairs may grow).
IDENTITY_FIELDS = ("world", "seed", "pairs_per_scene", "prompt_style", "splits", "verify_oracle", "verify_scorer",
                   "verify_margin", "paraphrase_model", "paraphrase_url", "paraphrase_api_model")
RENDER_FIELDS = ("image_size",)  # only matter when the shapes world is rendered
GENERATOR_FIELDS = ("generators", "height", "width", "steps", "guidance", "same_noise", "pipeline_kwargs")


class ConfigError(ValueError):
    """A build setting that cannot work; the message names the setting."""


@dataclass
class BuildConfig:
    out: Path
    world: str | None = None  # None: "shapes" without generators, "general" with them
    pairs: int = 1000
    seed: int = 0
    pairs_per_scene: int = 2  # perturbations of one scene (they share its perfect image and its split)
    image_size: int = 64  # shapes world canvas (pixels)
    generators: list[str] = field(default_factory=list)  # diffusers pipeline folders, used round-robin
    height: int = 1024
    width: int = 1024
    steps: int = 28
    guidance: float = 3.5
    batch_size: int = 4
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    prompt_style: str | None = None  # None: "plain" for shapes, "mixed" for general
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)
    same_noise: bool = True  # perfect and perturbed image of a pair start from the same noise
    verify_oracle: bool = True  # shapes world: keep only pairs the pixel oracle confirms
    verify_scorer: str | None = None  # scorer folder/name: keep only pairs it prefers the right way
    verify_margin: float = 0.0
    paraphrase_model: str | None = None  # local transformers causal LM folder
    paraphrase_url: str | None = None  # OpenAI-compatible endpoint, e.g. http://localhost:8000/v1
    paraphrase_api_model: str = "default"
    pipeline_kwargs: dict = field(default_factory=dict)  # extra keyword arguments for the pipelines' __call__
    chunk_pairs: int = 256  # pairs generated and verified before their rows are appended
    max_candidates: int | None = None  # verification budget: candidates tried at most (None: 20 x pairs + 100)
    keep_loaded: bool = False  # keep every model on the device instead of one at a time
    progress: bool = True

    def __post_init__(self):
        self.out = Path(self.out)
        self.generators = [str(g) for g in self.generators]
        self.splits = tuple(float(s) for s in self.splits)
        if self.world is None:
            self.world = "general" if self.generators else "shapes"
        if self.max_candidates is None:
            self.max_candidates = 20 * self.pairs + 100 if isinstance(self.pairs, int) else 0
        if self.prompt_style is None:
            self.prompt_style = "plain" if self.world == "shapes" else "mixed"
        self.validate()

    def validate(self) -> None:
        if self.world not in WORLDS:
            raise ConfigError(f"world: unknown world {self.world!r}; expected one of: {', '.join(WORLDS)}")
        if self.world == "general" and not self.generators:
            raise ConfigError("world 'general' has no renderer: give at least one --generator (a diffusers "
                              "text-to-image pipeline folder)")
        if self.prompt_style not in PROMPT_STYLES:
            raise ConfigError(f"prompt_style: unknown style {self.prompt_style!r}; expected one of: "
                              f"{', '.join(PROMPT_STYLES)}")
        if self.world == "shapes" and self.prompt_style not in ("plain", "shapes-varied"):
            raise ConfigError(f"prompt_style {self.prompt_style!r} is not readable by the shapes oracle; use "
                              "'plain' or 'shapes-varied' with --world shapes")
        for name in ("pairs", "pairs_per_scene", "steps", "batch_size", "chunk_pairs", "max_candidates"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed: expected a non-negative integer, got {self.seed!r}")
        if not 32 <= self.image_size <= 4096:  # below 32 px the shapes get too small for the oracle
            raise ConfigError(f"image_size: expected 32..4096 pixels, got {self.image_size}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value < 16 or value % 16:
                raise ConfigError(f"{name}: expected a multiple of 16 of at least 16, got {value}")
        if len(self.splits) != 3 or not all(0 <= s <= 1 for s in self.splits) or abs(sum(self.splits) - 1) > 1e-6:
            raise ConfigError(f"splits: expected three non-negative fractions (train, val, test) summing to 1, "
                              f"got {self.splits}")
        for name in ("verify_margin", "guidance"):  # NaN passed every check above, then broke resuming
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ConfigError(f"{name}: expected a finite number, got {value!r}")
        if self.paraphrase_model and self.paraphrase_url:
            raise ConfigError("give either paraphrase_model (a local folder) or paraphrase_url (an endpoint), not both")
        if not isinstance(self.pipeline_kwargs, dict):
            raise ConfigError(f"pipeline_kwargs: expected a JSON object, got {self.pipeline_kwargs!r}")

    @property
    def generator_names(self) -> list[str]:
        """Short names for the manifest: folder names, numbered when two folders share one."""
        names = [Path(g).name or str(g) for g in self.generators]
        return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]

    def identity(self) -> dict:
        d = asdict(self)
        fields = IDENTITY_FIELDS + (GENERATOR_FIELDS if self.generators else RENDER_FIELDS)
        ident = {k: d[k] for k in fields}
        ident["splits"] = list(self.splits)
        if self.generators:
            ident["generators"] = [os.path.abspath(g) for g in self.generators]
        return ident

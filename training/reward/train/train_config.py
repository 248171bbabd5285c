"""The reward-training configuration: dataclasses, TOML presets, `--set section.field=value` overrides, checks.

A run is: defaults <- a preset or TOML file <- overrides. Everything that can be checked without loading a model
(an unknown field, a batch that does not split into micro-batches, a missing data file) is reported here, all
problems at once. The TOML / override machinery shared with the other stages is
training/common/config_loading.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ...common.config_loading import ConfigSchema
from ..config import BACKBONES, LoraSettings
from ..models.coords_model import CoordsConfig
from .losses import LOSSES

PRESET_DIR = Path(__file__).parents[1] / "presets"
TINY = "@tiny"  # model.base meaning "build a tiny random Qwen2.5-VL from [tiny] into <output.dir>/base"


def presets() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PRESET_DIR.glob("*.toml"))}


class ConfigError(ValueError):
    """A configuration that cannot run; the message names every bad field and what was expected."""


@dataclass
class ModelConfig:
    base: str = ""  # local Qwen2.5-VL folder, or "@tiny"; ignored when init_from is set
    init_from: str = ""  # a scorer folder (or shipped name) to continue training: its LoRA/weights, head, template
    weights: str = "lora"  # "lora": adapters + reward-token row + head; "full": every weight (tiny models)
    dtype: str = "auto"  # weights of the frozen base: auto = bfloat16 on CUDA, float32 on CPU
    mixed_precision: str = "auto"  # autocast: auto = bf16 on CUDA, "no" on CPU; "bf16" / "no"
    gradient_checkpointing: str = "auto"  # auto = on for CUDA; "on" / "off"
    attn: str = "sdpa"
    min_pixels: int = 56 * 56  # images are resized (up or down) into this pixel range, in 28-pixel steps
    max_pixels: int = 512 * 512
    backbone: str = "qwen2_5_vl"  # or "coords": the small explicit-coordinates backbone ([coords]; no base)


@dataclass
class HeadSection:
    hidden_size: int = 1024  # 0: a linear head
    init_log_std: float = 0.0


@dataclass
class TinyConfig:
    """The tiny random base built for model.base = "@tiny" (training from scratch, tests, demos)."""

    seed: int = 0
    text_hidden: int = 64
    text_layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    vision_hidden: int = 32
    vision_depth: int = 2
    rope_theta: float = 10000.0


@dataclass
class CoordsSection:
    """Architecture of a fresh model.backbone = "coords" scorer (models/coords_model.py); its vocabulary is every word
    of the training prompts."""

    pixels: int = 64
    grid: int = 16
    hidden: int = 64
    layers: int = 4
    heads: int = 4
    max_words: int = 96
    fourier: int = 4


@dataclass
class DataConfig:
    train: str = ""  # dataset folder (manifest.jsonl) or pairs .jsonl
    val: str = ""  # default: the train source's val split when it has splits; "none": no validation
    train_split: str = "train"  # rows of this split; "all" keeps every row (files without splits: all rows)
    val_split: str = "val"
    val_pairs: int = 512  # validate on at most this many pairs (the first ones, always the same)
    reviews: str = "default"  # human verdicts (reviews.jsonl): default (drop rejected, swap swapped), reviewed-only, ignore


@dataclass
class TrainConfig:
    loss: str = "gaussian_bt"  # one of losses.LOSSES
    mc_samples: int = 1000  # samples per pair for "mc_gaussian_bt"
    steps: int = 1000  # optimizer steps
    batch_size: int = 32  # pairs per optimizer step, over all processes and accumulation micro-steps
    micro_batch_size: int = 8  # pairs per forward pass per process; accumulation = batch / (micro * processes)
    learning_rate: float = 1e-4
    head_learning_rate: float = 0.0  # 0: same as learning_rate
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    warmup_steps: int = 50  # linear warm-up from 0
    schedule: str = "cosine"  # after warm-up: "cosine", "linear" (to min_lr_ratio) or "constant"
    min_lr_ratio: float = 0.0
    max_grad_norm: float = 1.0  # 0: no clipping
    seed: int = 0
    # Coords backbone only: an auxiliary loss teaching each word where its object is (the dataset's scene
    # layouts; shapes datasets carry exact ones), read by a linear probe after decoder layer grounding_layer.
    grounding_weight: float = 0.0
    grounding_layer: int = 1


@dataclass
class OutputConfig:
    dir: str = ""
    eval_every: int = 100  # validate every N steps (and always at the last step); 0: only at the end
    checkpoint_every: int = 100  # 0: only at the end
    keep_checkpoints: int = 2
    log_every: int = 1
    tensorboard: bool = True  # when tensorboard is installed (accelerate's tracker)
    progress: bool = True  # tqdm bar on the main process
    export: str = "best"  # the scorer/ folder holds the best-validated weights, or "last": the final ones (when
    #                       the validation set is not the target distribution, e.g. fine-tuning on new pictures)


@dataclass
class RewardTrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)  # what the trained scorer's folder will record
    head: HeadSection = field(default_factory=HeadSection)
    tiny: TinyConfig = field(default_factory=TinyConfig)
    coords: CoordsSection = field(default_factory=CoordsSection)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SCHEMA = ConfigSchema(
    root=RewardTrainConfig,
    error=ConfigError,
    path_fields={"model": ("base", "init_from"), "data": ("train", "val")},
    path_keywords=("none",),  # data.val = "none": no validation
    known_label="known",
    override_where="override {key!r}",
    override_syntax="section.field=value, e.g. train.learning_rate=1e-4",
)


def load_config(path: str | Path | None = None, preset: str | None = None,
                overrides: dict[str, object] | None = None, check: bool = True) -> RewardTrainConfig:
    """Defaults <- preset or TOML file <- overrides {"section.field": value}; then `validate`."""
    config = SCHEMA.load(path, preset, presets(), overrides)
    if check:
        validate(config)
    return config


def validate(config: RewardTrainConfig) -> None:
    """Checks that need no files and no models; one ConfigError lists every problem."""
    m, lo, h, d, t, o = config.model, config.lora, config.head, config.data, config.train, config.output
    problems: list[str] = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    need(m.backbone in BACKBONES, f"model.backbone must be one of {', '.join(BACKBONES)}, got {m.backbone!r}")
    coords = m.backbone == "coords"
    need(bool(m.base or m.init_from or coords),
         "model.base is empty: pass --base /path/to/Qwen2.5-VL (a local folder), '@tiny', or --set "
         "model.init_from=SCORER")
    need(m.weights in ("lora", "full"), f"model.weights must be 'lora' or 'full', got {m.weights!r}")
    need(not coords or m.weights == "full", "model.backbone 'coords' trains every weight: set model.weights = 'full'")
    if coords and not m.init_from:
        try:
            CoordsConfig(**dataclasses.asdict(config.coords))
        except ValueError as exc:
            problems.append(f"[coords]: {exc}")
    need(m.dtype in ("auto", "float32", "bfloat16"), f"model.dtype must be auto/float32/bfloat16, got {m.dtype!r}")
    need(m.mixed_precision in ("auto", "no", "bf16"), f"model.mixed_precision must be auto/no/bf16, got "
                                                      f"{m.mixed_precision!r}")
    need(m.gradient_checkpointing in ("auto", "on", "off"),
         f"model.gradient_checkpointing must be auto/on/off, got {m.gradient_checkpointing!r}")
    need(m.attn in ("sdpa", "eager", "flash_attention_2"), f"model.attn must be sdpa/eager/flash_attention_2, "
                                                           f"got {m.attn!r}")
    need(0 < m.min_pixels <= m.max_pixels, f"need 0 < model.min_pixels <= model.max_pixels, got {m.min_pixels}, "
                                           f"{m.max_pixels}")
    need(lo.rank >= 1, f"lora.rank must be >= 1, got {lo.rank}")
    need(lo.alpha > 0, f"lora.alpha must be > 0, got {lo.alpha}")
    need(0 <= lo.dropout < 1, f"lora.dropout must be in [0, 1), got {lo.dropout}")
    need(bool(lo.targets), "lora.targets is empty: name modules such as q_proj,v_proj")
    need(h.hidden_size >= 0, f"head.hidden_size must be >= 0, got {h.hidden_size}")
    need(bool(d.train), "data.train is empty: pass --data DIR (a dataset folder) or a pairs .jsonl")
    need(d.val_pairs >= 1, f"data.val_pairs must be >= 1, got {d.val_pairs}")
    need(d.reviews in ("default", "reviewed-only", "ignore"),
         f"data.reviews must be default, reviewed-only or ignore, got {d.reviews!r}")
    need(t.loss in LOSSES, f"train.loss must be one of {', '.join(LOSSES)}, got {t.loss!r}")
    need(t.mc_samples >= 1, f"train.mc_samples must be >= 1, got {t.mc_samples}")
    need(t.steps >= 1, f"train.steps must be >= 1, got {t.steps}")
    need(t.batch_size >= 1, f"train.batch_size must be >= 1, got {t.batch_size}")
    need(t.micro_batch_size >= 1, f"train.micro_batch_size must be >= 1, got {t.micro_batch_size}")
    need(t.learning_rate > 0, f"train.learning_rate must be > 0, got {t.learning_rate}")
    need(t.head_learning_rate >= 0, f"train.head_learning_rate must be >= 0, got {t.head_learning_rate}")
    need(t.weight_decay >= 0, f"train.weight_decay must be >= 0, got {t.weight_decay}")
    need(t.warmup_steps >= 0, f"train.warmup_steps must be >= 0, got {t.warmup_steps}")
    need(t.schedule in ("cosine", "linear", "constant"), f"train.schedule must be cosine/linear/constant, got "
                                                         f"{t.schedule!r}")
    need(0 <= t.min_lr_ratio <= 1, f"train.min_lr_ratio must be in [0, 1], got {t.min_lr_ratio}")
    need(t.max_grad_norm >= 0, f"train.max_grad_norm must be >= 0, got {t.max_grad_norm}")
    need(t.grounding_weight >= 0, f"train.grounding_weight must be >= 0, got {t.grounding_weight}")
    if t.grounding_weight > 0 and not m.init_from:
        need(coords, "train.grounding_weight > 0 needs model.backbone = 'coords' (the Qwen2.5-VL path has no "
                     "grounding probe)")
        need(1 <= t.grounding_layer <= config.coords.layers, f"train.grounding_layer must be in 1..coords.layers "
                                                             f"({config.coords.layers}), got {t.grounding_layer}")
    need(bool(o.dir), "output.dir is empty: pass --out DIR")
    for name in ("eval_every", "checkpoint_every"):
        need(getattr(o, name) >= 0, f"output.{name} must be >= 0, got {getattr(o, name)}")
    need(o.export in ("best", "last"), f"output.export must be best or last, got {o.export!r}")
    need(o.keep_checkpoints >= 1, f"output.keep_checkpoints must be >= 1, got {o.keep_checkpoints}")
    need(o.log_every >= 1, f"output.log_every must be >= 1, got {o.log_every}")
    if problems:
        raise ConfigError("invalid reward-training config:\n  - " + "\n  - ".join(problems))


def accumulation_steps(config: RewardTrainConfig, num_processes: int) -> int:
    """Micro-steps per optimizer step; the global batch must split evenly over processes and micro-batches."""
    t = config.train
    per_round = t.micro_batch_size * num_processes
    if t.batch_size % per_round:
        raise ConfigError(
            f"train.batch_size={t.batch_size} pairs do not split into micro-batches of train.micro_batch_size="
            f"{t.micro_batch_size} on {num_processes} process(es) ({per_round} pairs a round); choose a batch "
            f"size that is a multiple of {per_round}"
        )
    return t.batch_size // per_round

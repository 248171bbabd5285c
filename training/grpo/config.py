"""The GRPO run configuration: dataclasses, TOML loading and command-line overrides.

Every field lives here, with its default and its meaning. A run is: defaults <- a TOML file (a shipped preset or
the user's) <- `--section.field value` flags. Unknown fields and wrong types are refused while loading; everything
else a user can get wrong (a group that does not split into micro-batches, top_k > G/2, a missing model folder)
is checked by validation.py, all problems at once, before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .validation import ConfigError, check_paths, check_world, validate

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

CONFIG_DIR = Path(__file__).parent / "configs"
PRESETS = {"flux_dev_spatial": CONFIG_DIR / "flux_dev_spatial.toml", "tiny": CONFIG_DIR / "tiny.toml"}
TINY = "@tiny"  # a model path meaning "build a tiny random model of the real architecture" (tests, demos)

FLUX_LORA_TARGETS = [
    # double-stream blocks (transformer_blocks.N.*): image and text attention, image and text feed-forward
    "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0",
    "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out",
    "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2",
    # single-stream blocks (single_transformer_blocks.N.*): attention and the fused MLP in / out projections
    "proj_mlp", "proj_out",
]  # fmt: skip


@dataclass
class ModelConfig:
    path: str = ""  # a FluxPipeline folder (model_index.json), loaded with local_files_only; "@tiny" for tests
    dtype: str = "bfloat16"  # transformer, VAE and text encoder weights; LoRA weights always train in float32
    device: str = "auto"  # "auto": the GPU accelerate assigns to this process (the CPU without GPUs); or "cpu"
    gradient_checkpointing: bool = True
    offload_text_encoders: bool = True  # keep CLIP/T5 on the CPU, on the device only while encoding new prompts
    vae_batch_size: int = 4  # decode latents in slices of this many images
    max_sequence_length: int = 512  # T5 tokens


@dataclass
class RewardConfig:
    path: str = ""  # a SpatialScore folder (spatialscore.json), a Qwen2.5-VL folder (zero-shot), or "@tiny"
    device: str = "auto"  # "auto": the policy's device; or e.g. "cpu", "cuda:1"
    dtype: str = "bfloat16"
    batch_size: int = 8
    std_penalty: float = 0.0  # reward = mean - std_penalty * std of the scorer's Gaussian
    keep_loaded: bool = True  # False: move the scorer off the accelerator after every reward phase


@dataclass
class PromptConfig:
    train_file: str = ""  # .txt (one prompt a line) or .jsonl (a "prompt" field a line)
    eval_file: str = ""  # fixed evaluation prompts for sample grids; default: the first num_eval train prompts
    num_eval: int = 4
    per_step: int = 1  # P: prompts (groups of G samples) per GRPO step, over all processes


@dataclass
class SampleConfig:
    group_size: int = 24  # G
    num_steps: int = 6
    height: int = 512
    width: int = 512
    guidance: float = 3.5  # Flux-dev's distilled guidance, an embedding: one forward per step
    noise_level: float = 0.9  # a in std_t = a * sqrt(sigma / (1 - sigma))
    sde_type: str = "sde"  # "sde" (Flow-GRPO) or "cps" (coefficients-preserving sampling)
    batch_size: int = 8  # per-device sampling micro-batch; must divide group_size
    ode_outside_window: bool = False  # deterministic (noise 0) steps where no timestep is trained
    eval_noise_level: float = 0.0  # sample grids use the ODE by default


@dataclass
class TrainConfig:
    steps: int = 300  # GRPO steps (P groups sampled, scored and trained on)
    top_k: int = 6  # keep the top_k and bottom_k samples of each group; 0 keeps all
    adv_std: str = "group"  # "group" or "global" standard deviation for the advantages
    adv_clip: float = 5.0
    clip_range: float = 1e-4  # PPO ratio clip; log-probs are per-element means, so ratios stay near 1
    beta: float = 0.04  # KL weight (to the same transformer with the LoRA disabled)
    learning_rate: float = 3e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 1e-4
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0
    batch_size: int = 2  # per-device training micro-batch
    updates_per_step: int = 1  # optimizer steps per GRPO step: the kept samples are split into this many chunks
    timestep_fraction: float = 1.0  # train on the first round(fraction * num_steps) steps
    timestep_window: list[int] = field(default_factory=list)  # [start, end) step indices; overrides the fraction
    seed: int = 0


@dataclass
class LoraConfig:
    rank: int = 32
    alpha: float = 32.0  # the exported file folds alpha / rank into lora_B, so every loader sees the same delta
    targets: list[str] = field(default_factory=lambda: list(FLUX_LORA_TARGETS))  # module names inside each block
    init_from: str = ""  # optional .safetensors LoRA (diffusers keys) to start from


@dataclass
class OutputConfig:
    dir: str = "runs/grpo"
    checkpoint_every: int = 10  # steps; 0: only at the end
    keep_checkpoints: int = 2
    eval_every: int = 10  # sample grid of the eval prompts every N steps; 0: only at the start and the end


@dataclass
class GRPOConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def trained_steps(self) -> list[int]:
        """The sampling-step indices the loss trains on."""
        n = self.sample.num_steps
        if self.train.timestep_window:
            start, end = self.train.timestep_window
            return list(range(start, end))
        return list(range(max(1, round(self.train.timestep_fraction * n))))


# ---------------------------------------------------------------------------------------------------- loading


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(GRPOConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(GRPOConfig)}


def _field_types(section_cls: type) -> dict[str, object]:
    hints = typing.get_type_hints(section_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(section_cls)}


def _unknown(name: str, known, where: str) -> ConfigError:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"{where}: unknown field {name!r}{hint}; known fields: {', '.join(sorted(known))}")


def _coerce(value, expected, where: str):
    """Check a TOML / CLI value against a field's type; ints are accepted for floats."""
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif expected is str:
        if isinstance(value, str):
            return value
    elif typing.get_origin(expected) is list:
        (item_type,) = typing.get_args(expected)
        if isinstance(value, list):
            return [_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
    type_name = getattr(expected, "__name__", str(expected))
    raise ConfigError(f"{where}: expected {type_name}, got {value!r} ({type(value).__name__})")


def _apply(config: GRPOConfig, data: dict, source: str, base_dir: Path | None) -> None:
    sections = _sections()
    for section_name, values in data.items():
        if section_name not in sections:
            raise _unknown(section_name, sections, f"{source}: section")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section_name}] must be a table of fields, got {values!r}")
        section = getattr(config, section_name)
        types = _field_types(type(section))
        for name, value in values.items():
            if name not in types:
                raise _unknown(name, types, f"{source}: [{section_name}]")
            value = _coerce(value, types[name], f"{source}: {section_name}.{name}")
            if base_dir is not None and name in _PATH_FIELDS.get(section_name, ()):
                value = _resolve_path(value, base_dir)
            setattr(section, name, value)


_PATH_FIELDS = {"model": ("path",), "reward": ("path",), "prompts": ("train_file", "eval_file"), "lora": ("init_from",)}


def _resolve_path(value: str, base_dir: Path) -> str:
    """Relative paths in a TOML file are relative to that file; "@tiny" and bare names are kept."""
    if not value or value.startswith("@") or ("/" not in value and "." not in value):
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base_dir / p).resolve())


def parse_value(text: str, expected) -> object:
    """A command-line value for a field of type `expected`: "3", "0.5", "true", "a,b" or '["a", "b"]'."""
    text = text.strip()
    if expected is str:
        return text
    if expected is bool and text.lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
        return text.lower() in ("true", "yes", "1", "on")
    if typing.get_origin(expected) is list and not text.startswith("["):
        (item_type,) = typing.get_args(expected)
        return [parse_value(part, item_type) for part in text.split(",") if part.strip()]
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # left to _coerce, which names the field and the expected type


def load_config(
    path: str | Path | None = None, preset: str | None = None, overrides: dict[str, object] | None = None
) -> GRPOConfig:
    """Defaults <- preset or TOML file <- overrides {"section.field": value}; then `validate`."""
    config = GRPOConfig()
    if preset is not None and path is not None:
        raise ConfigError("give either a preset or a config file, not both")
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
        path = PRESETS[preset]
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        _apply(config, data, str(path), path.parent.resolve())
    nested: dict[str, dict] = {}
    for key, value in (overrides or {}).items():
        if "." not in key:
            raise ConfigError(f"override {key!r}: expected section.field, e.g. train.learning_rate")
        section, name = key.split(".", 1)
        if isinstance(value, str):
            value = parse_value(value, _lookup_type(section, name))
        nested.setdefault(section, {})[name] = value
    _apply(config, nested, "command line", Path.cwd())
    validate(config)
    return config


def _lookup_type(section: str, name: str):
    sections = _sections()
    if section not in sections:
        raise _unknown(section, sections, "command line: section")
    types = _field_types(sections[section])
    if name not in types:
        raise _unknown(name, types, f"command line: [{section}]")
    return types[name]


__all__ = ["ConfigError", "GRPOConfig", "check_paths", "check_world", "load_config", "validate", "PRESETS", "TINY"]

"""The GRPO run configuration: dataclasses, TOML loading, command-line overrides and validation.

Every field lives here, with its default and its meaning. A run is: defaults <- a TOML file (a shipped preset or
the user's) <- `--section.field value` flags. Everything a user can get wrong (an unknown field, a group that does
not split into micro-batches, top_k > G/2, a missing model folder) is reported here, all problems at once, before
any model is loaded.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

CONFIG_DIR = Path(__file__).parent / "configs"
PRESETS = {"flux_dev_spatial": CONFIG_DIR / "flux_dev_spatial.toml", "tiny": CONFIG_DIR / "tiny.toml"}
TINY = "@tiny"  # a model path meaning "build a tiny random model of the real architecture" (tests, demos)
DTYPES = ("float32", "bfloat16", "float16")

FLUX_LORA_TARGETS = [
    # double-stream blocks (transformer_blocks.N.*): image and text attention, image and text feed-forward
    "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0",
    "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out",
    "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2",
    # single-stream blocks (single_transformer_blocks.N.*): attention and the fused MLP in / out projections
    "proj_mlp", "proj_out",
]  # fmt: skip


class ConfigError(ValueError):
    """A configuration that cannot run; the message names every bad field and what was expected."""


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


# ---------------------------------------------------------------------------------------------------- validation


def validate(config: GRPOConfig) -> None:
    """Checks that need no files and no models; raises one ConfigError listing every problem."""
    m, r, p, s, t, lo, o = (config.model, config.reward, config.prompts, config.sample, config.train, config.lora,
                            config.output)  # fmt: skip
    problems = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    for name, value in (("model.dtype", m.dtype), ("reward.dtype", r.dtype)):
        need(value in DTYPES, f"{name} must be one of {DTYPES}, got {value!r}")
    need(m.device in ("auto", "cpu"), f"model.device must be 'auto' or 'cpu', got {m.device!r} (the GPU of each "
                                      "process is chosen by the launcher: torchrun / accelerate launch)")
    need(m.vae_batch_size >= 1, f"model.vae_batch_size must be >= 1, got {m.vae_batch_size}")
    need(1 <= m.max_sequence_length <= 512, f"model.max_sequence_length must be in 1..512, got {m.max_sequence_length}")
    need(r.batch_size >= 1, f"reward.batch_size must be >= 1, got {r.batch_size}")
    need(r.std_penalty >= 0, f"reward.std_penalty must be >= 0, got {r.std_penalty}")
    need(p.per_step >= 1, f"prompts.per_step must be >= 1, got {p.per_step}")
    need(p.num_eval >= 0, f"prompts.num_eval must be >= 0, got {p.num_eval}")

    need(s.group_size >= 2, f"sample.group_size (G) must be >= 2 for group-relative advantages, got {s.group_size}")
    need(s.batch_size >= 1, f"sample.batch_size must be >= 1, got {s.batch_size}")
    if s.group_size >= 1 and s.batch_size >= 1:
        need(s.group_size % s.batch_size == 0,
             f"sample.group_size (G={s.group_size}) must be divisible by the per-device sampling batch "
             f"sample.batch_size={s.batch_size} (a micro-batch never spans two groups)")  # fmt: skip
    need(s.num_steps >= 1, f"sample.num_steps must be >= 1, got {s.num_steps}")
    for name, value in (("sample.height", s.height), ("sample.width", s.width)):
        need(value >= 16 and value % 16 == 0, f"{name} must be a positive multiple of 16, got {value}")
    need(s.noise_level > 0, f"sample.noise_level must be > 0 to train (0 is the deterministic ODE), got {s.noise_level}")
    need(s.eval_noise_level >= 0, f"sample.eval_noise_level must be >= 0, got {s.eval_noise_level}")
    need(s.sde_type in ("sde", "cps"), f"sample.sde_type must be 'sde' or 'cps', got {s.sde_type!r}")
    if s.sde_type == "cps":
        need(s.noise_level <= 1, f"sample.noise_level must be <= 1 with sde_type 'cps', got {s.noise_level}")

    need(t.steps >= 1, f"train.steps must be >= 1, got {t.steps}")
    need(t.top_k >= 0, f"train.top_k must be >= 0 (0 keeps every sample), got {t.top_k}")
    need(2 * t.top_k <= s.group_size,
         f"train.top_k={t.top_k} is more than half the group (G={s.group_size}): the top and bottom "
         f"{t.top_k} would overlap; use top_k <= {s.group_size // 2}")  # fmt: skip
    need(t.adv_std in ("group", "global"), f"train.adv_std must be 'group' or 'global', got {t.adv_std!r}")
    need(t.adv_clip > 0, f"train.adv_clip must be > 0, got {t.adv_clip}")
    need(t.clip_range > 0, f"train.clip_range must be > 0, got {t.clip_range}")
    need(t.beta >= 0, f"train.beta must be >= 0, got {t.beta}")
    need(t.learning_rate > 0, f"train.learning_rate must be > 0, got {t.learning_rate}")
    need(t.max_grad_norm > 0, f"train.max_grad_norm must be > 0, got {t.max_grad_norm}")
    need(t.batch_size >= 1, f"train.batch_size must be >= 1, got {t.batch_size}")
    need(t.updates_per_step >= 1, f"train.updates_per_step must be >= 1, got {t.updates_per_step}")
    need(0 < t.timestep_fraction <= 1, f"train.timestep_fraction must be in (0, 1], got {t.timestep_fraction}")
    if t.timestep_window:
        ok = (len(t.timestep_window) == 2 and 0 <= t.timestep_window[0] < t.timestep_window[1] <= s.num_steps)
        need(ok, f"train.timestep_window must be [start, end) with 0 <= start < end <= sample.num_steps "
                 f"({s.num_steps}), got {t.timestep_window}")  # fmt: skip
    if s.group_size >= 2 and t.top_k >= 1 and 2 * t.top_k <= s.group_size:
        kept = p.per_step * 2 * t.top_k
        need(t.updates_per_step <= kept,
             f"train.updates_per_step={t.updates_per_step} is more than the {kept} kept samples per step")

    need(lo.rank >= 1, f"lora.rank must be >= 1, got {lo.rank}")
    need(lo.alpha > 0 and math.isfinite(lo.alpha), f"lora.alpha must be > 0, got {lo.alpha}")
    need(len(lo.targets) > 0, "lora.targets is empty: name at least one module (e.g. attn.to_q)")
    need(o.checkpoint_every >= 0, f"output.checkpoint_every must be >= 0, got {o.checkpoint_every}")
    need(o.keep_checkpoints >= 1, f"output.keep_checkpoints must be >= 1, got {o.keep_checkpoints}")
    need(o.eval_every >= 0, f"output.eval_every must be >= 0, got {o.eval_every}")
    need(bool(o.dir), "output.dir is empty: pass --out DIR")
    if problems:
        raise ConfigError("invalid GRPO config:\n  - " + "\n  - ".join(problems))


def check_paths(config: GRPOConfig, model: bool = True, reward: bool = True) -> None:
    """Checks the model folders and prompt files exist (after "@tiny" models were built); no model is loaded.

    model / reward False: that model is supplied by the caller (e.g. the ComfyUI node), not loaded from a folder.
    """
    problems = []
    flux, scorer = config.model.path, config.reward.path
    if model and not flux:
        problems.append("model.path is empty: pass --model.path /path/to/FLUX.1-dev (a local FluxPipeline folder)")
    elif model and not Path(flux).is_dir():
        problems.append(f"model.path: folder not found: {flux} (expected a local FluxPipeline folder)")
    elif model and not (Path(flux) / "model_index.json").is_file():
        problems.append(f"model.path: {flux} has no model_index.json: not a diffusers FluxPipeline folder")
    is_name = scorer and "/" not in scorer and not Path(scorer).exists()  # e.g. "shapes": left to load_scorer
    if reward and not scorer:
        problems.append("reward.path is empty: pass --reward.path /path/to/scorer (a SpatialScore or Qwen2.5-VL folder)")
    elif reward and not is_name and not Path(scorer).is_dir():
        problems.append(f"reward.path: folder not found: {scorer} (expected a SpatialScore or Qwen2.5-VL folder)")
    elif reward and not is_name and not any((Path(scorer) / n).is_file() for n in ("spatialscore.json", "config.json")):
        problems.append(f"reward.path: {scorer} has neither spatialscore.json nor config.json")
    if not config.prompts.train_file:
        problems.append("prompts.train_file is empty: pass --prompts.train_file prompts.txt")
    for name in ("train_file", "eval_file"):
        value = getattr(config.prompts, name)
        if value and not Path(value).is_file():
            problems.append(f"prompts.{name}: file not found: {value}")
    if config.lora.init_from and not Path(config.lora.init_from).is_file():
        problems.append(f"lora.init_from: file not found: {config.lora.init_from}")
    if problems:
        raise ConfigError("invalid GRPO config:\n  - " + "\n  - ".join(problems))


def check_world(config: GRPOConfig, num_processes: int) -> None:
    """The step's P*G samples must split into whole micro-batches, equally over the processes."""
    total = config.prompts.per_step * config.sample.group_size
    per_batch = config.sample.batch_size * num_processes
    if total % per_batch:
        raise ConfigError(
            f"prompts.per_step * sample.group_size = {total} samples per step do not split into micro-batches of "
            f"sample.batch_size={config.sample.batch_size} on {num_processes} processes ({per_batch} per round); "
            "change prompts.per_step, sample.batch_size or the number of processes"
        )

"""Validation of a GRPO config: every check that can fail before a model is loaded, all problems reported at once.

Every `config` here is a config.GRPOConfig; config.py imports this module, not the other way round.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from .oracle_judge import ORACLE_REWARDS, ORACLES

DTYPES = ("float32", "bfloat16", "float16")
WEIGHT_DTYPES = ("default", "fp8_e4m3fn", "fp8_e5m2")  # model.weight_dtype: weight_storage.py
ALGORITHMS = ("flow_grpo", "nft", "awm")  # train.algorithm: loss.py, nft_loss.py, awm_loss.py
AWM_WEIGHTINGS = ("uniform", "t")  # train.awm_weighting: awm_loss.py


class ConfigError(ValueError):
    """A configuration that cannot run; the message names every bad field and what was expected."""


ORACLE_REWARD = "oracle:"  # reward.path prefix: a pixel oracle as the reward (ablations' upper bound)
# model_index.json's _class_name -> the policy backend that trains it (trainer.build_policy)
POLICY_PIPELINES = {"FluxPipeline": "flux_policy.FluxPolicy", "QwenImagePipeline": "qwen_image_policy.QwenImagePolicy"}


def validate(config) -> None:
    """Checks that need no files and no models; raises one ConfigError listing every problem."""
    m, r, p, s, t, lo, o = (config.model, config.reward, config.prompts, config.sample, config.train, config.lora,
                            config.output)  # fmt: skip
    problems = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    for name, value in (("model.dtype", m.dtype), ("reward.dtype", r.dtype)):
        need(value in DTYPES, f"{name} must be one of {DTYPES}, got {value!r}")
    need(m.weight_dtype in WEIGHT_DTYPES, f"model.weight_dtype must be one of {list(WEIGHT_DTYPES)}, got "
                                          f"{m.weight_dtype!r}")
    need(m.device in ("auto", "cpu"), f"model.device must be 'auto' or 'cpu', got {m.device!r} (the GPU of each "
                                      "process is chosen by the launcher: torchrun / accelerate launch)")
    need(m.vae_batch_size >= 1, f"model.vae_batch_size must be >= 1, got {m.vae_batch_size}")
    need(0 <= m.max_sequence_length <= 512,
         f"model.max_sequence_length must be in 1..512 (0: auto), got {m.max_sequence_length}")
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
    need(t.algorithm in ALGORITHMS, f"train.algorithm must be one of {list(ALGORITHMS)}, got {t.algorithm!r}")
    need(t.nft_beta > 0, f"train.nft_beta must be > 0, got {t.nft_beta}")
    need(t.awm_weighting in AWM_WEIGHTINGS,
         f"train.awm_weighting must be one of {list(AWM_WEIGHTINGS)}, got {t.awm_weighting!r}")
    need(not (s.deterministic and t.algorithm == "flow_grpo"),
         "sample.deterministic samples without noise, which Flow-GRPO cannot train on (its loss is the SDE steps' "
         "log-probabilities): use train.algorithm nft or awm, or sample.ode_outside_window")
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
    need(o.oracle in ("", *ORACLES), f"output.oracle must be '' or one of {ORACLES}, got {o.oracle!r}")
    need(t.time_budget_minutes >= 0, f"train.time_budget_minutes must be >= 0, got {t.time_budget_minutes}")
    need(t.ema_decay == 0 or 0 < t.ema_decay < 1, f"train.ema_decay must be 0 (off) or in (0, 1), got {t.ema_decay}")
    if r.path.startswith(ORACLE_REWARD):
        need(r.path[len(ORACLE_REWARD):] in ORACLE_REWARDS,
             f"reward.path {r.path!r}: the oracle rewards are {[ORACLE_REWARD + o for o in ORACLE_REWARDS]}")
    need(bool(o.dir), "output.dir is empty: pass --out DIR")
    need(0 <= t.adam_beta1 < 1, f"train.adam_beta1 must be in [0, 1), got {t.adam_beta1}")
    need(0 <= t.adam_beta2 < 1, f"train.adam_beta2 must be in [0, 1), got {t.adam_beta2}")
    need(t.adam_eps > 0, f"train.adam_eps must be > 0, got {t.adam_eps}")
    need(t.weight_decay >= 0, f"train.weight_decay must be >= 0, got {t.weight_decay}")
    need(s.guidance >= 0, f"sample.guidance must be >= 0, got {s.guidance}")
    # NaN passes every comparison above as False only for some checks; refuse it (and inf) in every number field
    for section in (m, r, p, s, t, lo, o):
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                problems.append(f"{_section_name(config, section)}.{f.name} must be a finite number, got {value}")
    if problems:
        raise ConfigError("invalid GRPO config:\n  - " + "\n  - ".join(problems))


def _section_name(config, section) -> str:
    return next(f.name for f in dataclasses.fields(config) if getattr(config, f.name) is section)


def check_paths(config, model: bool = True, reward: bool = True) -> None:
    """Checks the model folders and prompt files exist (after "@tiny" models were built); no model is loaded.

    model / reward False: that model is supplied by the caller (e.g. the ComfyUI node), not loaded from a folder.
    """
    from .shipped import GENERATORS

    problems = []
    flux, scorer = str(GENERATORS.get(config.model.path, config.model.path)), config.reward.path
    if scorer.startswith(ORACLE_REWARD):
        reward = False  # a pixel oracle: nothing to load (validate checked its name)
    if model and not flux:
        problems.append("model.path is empty: pass --model.path /path/to/FLUX.1-dev (a local FluxPipeline folder)")
    elif model and not Path(flux).is_dir():
        problems.append(f"model.path: folder not found: {flux} (expected a local FluxPipeline folder)")
    elif model and not (Path(flux) / "model_index.json").is_file():
        problems.append(f"model.path: {flux} has no model_index.json: not a diffusers FluxPipeline folder")
    elif model and (kind := pipeline_class(Path(flux) / "model_index.json")) not in POLICY_PIPELINES:
        problems.append(f"model.path: {flux} holds a {kind}, expected a FluxPipeline (FLUX.1-dev or compatible) or "
                        "a QwenImagePipeline")
    is_name = scorer and "/" not in scorer and not Path(scorer).exists()  # e.g. "shapes": left to load_scorer
    if reward and is_name:
        from training.reward.models.loading import shipped_scorers

        if scorer not in shipped_scorers():
            problems.append(f"reward.path: {scorer} is neither a folder nor a shipped scorer name "
                            f"({', '.join(shipped_scorers()) or 'none'})")
    if reward and not scorer:
        problems.append("reward.path is empty: pass --reward.path /path/to/scorer (a SpatialScore or Qwen2.5-VL folder)")
    elif reward and not is_name and not Path(scorer).is_dir():
        problems.append(f"reward.path: folder not found: {scorer} (expected a SpatialScore or Qwen2.5-VL folder)")
    elif reward and not is_name:
        from training.reward import ScorerFolderError
        from training.reward.models.loading import check_scorer_folder

        try:
            check_scorer_folder(Path(scorer))  # reads only the folder's JSON and weight-file headers
        except ScorerFolderError as exc:
            problems.append(f"reward.path: {exc}")
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


def pipeline_class(model_index: Path) -> str:
    """A diffusers folder's pipeline class (model_index.json's _class_name), or why it cannot be read."""
    try:
        return str(json.loads(model_index.read_text(encoding="utf-8")).get("_class_name"))
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        return f"unreadable model_index.json ({exc})"


def check_world(config, num_processes: int) -> None:
    """The step's P*G samples must split into whole micro-batches, equally over the processes."""
    total = config.prompts.per_step * config.sample.group_size
    per_batch = config.sample.batch_size * num_processes
    if config.model.fsdp and num_processes > 1:
        _check_fsdp_world(config, num_processes)
    if total % per_batch:
        raise ConfigError(
            f"prompts.per_step * sample.group_size = {total} samples per step do not split into micro-batches of "
            f"sample.batch_size={config.sample.batch_size} on {num_processes} processes ({per_batch} per round); "
            "change prompts.per_step, sample.batch_size or the number of processes"
        )


def _check_fsdp_world(config, num_processes: int) -> None:
    """Under FSDP every transformer forward is a collective: all processes must run the same number (sharding.py)."""
    s, t = config.sample, config.train
    top_k = t.top_k if 0 < t.top_k and 2 * t.top_k < s.group_size else None
    kept = config.prompts.per_step * (2 * top_k if top_k else s.group_size)
    problems = []
    if kept % t.updates_per_step or (kept // t.updates_per_step) % num_processes:
        problems.append(f"model.fsdp: the {kept} kept samples a step in train.updates_per_step={t.updates_per_step} "
                        f"optimizer steps must split evenly over {num_processes} processes (every forward of a "
                        "sharded model runs on all of them together)")
    if config.prompts.num_eval:
        problems.append("model.fsdp: set prompts.num_eval = 0 (the evaluation grids are sampled by the main process "
                        "alone, and a sharded model forwards on all processes together)")
    if problems:
        raise ConfigError("invalid GRPO config:\n  - " + "\n  - ".join(problems))

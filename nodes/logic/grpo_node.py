"""What the GRPO Train node does besides training (testable without ComfyUI): check the settings, turn them into
the headless GRPOConfig, score through the Loader's handle, publish the LoRA into models/loras, the chart data, and
what the node says in the graph's terms (a run already there, the phase in progress, what Cancel saved).

The run itself is training.grpo.trainer.train (one implementation): the node only supplies a ComfyUI policy
(nodes/comfy/policy.py), a scorer and a per-step callback. The node's widgets are declared once, in WIDGETS.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch

# inside ComfyUI the pack is not on sys.path: this puts its `training` package in sys.modules first
from .training_import import import_training
from .widgets import Widget, settings_class

import_training("grpo")
from training.common.atomic import write_text  # noqa: E402
from training.grpo.checkpoint import list_checkpoints  # noqa: E402
from training.grpo.config import GRPOConfig, validate  # noqa: E402
from training.grpo.lora import save_lora_file  # noqa: E402
from training.grpo.reports import MetricsLog  # noqa: E402
from training.grpo.validation import ALGORITHMS  # noqa: E402

LORA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SIZE_MULTIPLE = 16  # Flux packs 2x2 latent patches; FLUX.1's VAE downsamples 8x (the shapes VAE 4x)
RUNS_FOLDER = "spatialscore_grpo"
# The node's progress bar gives each GRPO step BAR_PER_STEP units, a third to each of its phases (the trainer's
# `progress` hook reports them); an evaluation does not move it, its text says it is running.
STEP_PHASES = ("sampling", "scoring", "training")
BAR_PER_STEP = 300
PHASE_UNITS = {"sampling": "images", "scoring": "images", "training": "kept samples", "evaluation": "eval prompts"}


# The node's widgets, declared once: the schema's inputs (after model, clip, vae and scorer), NodeSettings and the
# names validate_inputs and execute read are made from this table (logic/widgets.py).
WIDGETS = (
    Widget("prompts", str, "", multiline=True,
           tooltip="Training prompts, one a line. The first four are the evaluation prompts (fixed noise) shown in "
                   "the samples output and the chart."),
    Widget("steps", int, 50, min=1, max=100000,
           tooltip="GRPO steps: each samples one group for one prompt, scores it, trains once."),
    Widget("group_size", int, 8, min=2, max=256,
           tooltip="G: samples per prompt and step; advantages compare samples within a group."),
    Widget("top_k", int, 2, min=0, max=128,
           tooltip="Train on the top_k and bottom_k samples of each group (0: all). At most group_size / 2."),
    Widget("learning_rate", float, 3e-4, min=1e-7, max=1e-1, step=1e-5,
           tooltip="AdamW learning rate of the LoRA weights."),
    Widget("lora_rank", int, 16, min=1, max=256, tooltip="LoRA rank."),
    Widget("lora_alpha", float, 16.0, min=0.01, max=1024.0, step=0.5,
           tooltip="LoRA alpha; the file folds alpha / rank into its weights, so loaders apply it at strength 1 as "
                   "trained."),
    Widget("sampling_steps", int, 6, min=2, max=100,
           tooltip="Denoising steps per sample (the SDE steps GRPO trains on)."),
    Widget("noise_level", float, 0.9, min=0.0, max=2.0, step=0.05,
           tooltip="SDE noise level a (std_t = a * sqrt(sigma / (1 - sigma))): exploration."),
    Widget("width", int, 512, min=16, max=2048, step=16,
           tooltip="Sample width in pixels; a multiple of 16 (2 x the VAE's downscale)."),
    Widget("height", int, 512, min=16, max=2048, step=16,
           tooltip="Sample height in pixels; a multiple of 16 (2 x the VAE's downscale)."),
    Widget("seed", int, 0, min=0, max=2**31 - 1, control_after_generate=True,
           tooltip="Seeds the LoRA's init, the prompt order and every sample's noise."),
    Widget("kl_beta", float, 0.0, min=0.0, max=10.0, step=0.001,
           tooltip="KL weight to the base model (LoRA off); 0 as Flow-GRPO's Flux runs."),
    Widget("lora_name", str, "spatialscore_grpo",
           tooltip="The LoRA file's name in models/loras (no extension); also names the run folder "
                   "output/spatialscore_grpo/<lora_name> with its checkpoints."),
    Widget("resume", bool, False,
           tooltip="Continue the run of this lora_name from its last checkpoint (after an interrupt, or with more "
                   "steps). Off: an existing run is an error."),
    Widget("algorithm", str, "flow_grpo", options=ALGORITHMS, optional=True,
           tooltip="The training loss. flow_grpo: Flow-GRPO, the ratio of the SDE steps' log-probabilities (the "
                   "shipped LoRAs). nft: DiffusionNFT, the flow-matching loss on the clean samples, contrasting "
                   "good and bad ones through implicit positive and negative policies; no log-probabilities. awm: "
                   "Advantage Weighted Matching, the flow-matching loss on the clean samples times their "
                   "advantage. Same sampling, reward, advantages and LoRA for all three."),
)
NodeSettings = settings_class("NodeSettings", WIDGETS, __name__, "The GRPO node's widget values, one field per widget.")


def prompt_lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def check_settings(s: NodeSettings) -> list[str]:
    """Every impossible setting, each as one line naming the input and what it expects."""
    errors = []
    if not prompt_lines(s.prompts):
        errors.append("prompts: no prompt given (one prompt a line)")
    if s.group_size < 2:
        errors.append(f"group_size: {s.group_size}; GRPO compares samples within a group, so it needs at least 2")
    if s.top_k < 0 or (s.top_k and 2 * s.top_k > s.group_size):
        errors.append(f"top_k: {s.top_k} keeps the top and bottom {s.top_k} of each group, more than group_size "
                      f"{s.group_size} holds; use 0 (keep all) to {s.group_size // 2}")
    for name, value in (("width", s.width), ("height", s.height)):
        if value < SIZE_MULTIPLE or value % SIZE_MULTIPLE:
            errors.append(f"{name}: {value} is not a multiple of {SIZE_MULTIPLE} (Flux's 2x2 latent patches of a "
                          "VAE that downsamples 8x)")
    if not LORA_NAME.match(s.lora_name or ""):
        errors.append(f"lora_name: {s.lora_name!r}; expected a file name without folders or extension (letters, "
                      "digits, '.', '_', '-')")
    if s.steps < 1:
        errors.append(f"steps: {s.steps}; at least 1 GRPO step")
    if s.sampling_steps < 2:
        errors.append(f"sampling_steps: {s.sampling_steps}; at least 2 denoising steps")
    if s.algorithm not in ALGORITHMS:  # ComfyUI does not check a V3 combo's value
        errors.append(f"algorithm: {s.algorithm!r}; expected one of {', '.join(ALGORITHMS)}")
    return errors


def check_size_for_vae(width: int, height: int, downscale_ratio: int) -> None:
    multiple = 2 * int(downscale_ratio)
    for name, value in (("width", width), ("height", height)):
        if value % multiple:
            raise ValueError(f"{name}: {value} is not a multiple of {multiple}, which this VAE ({downscale_ratio}x) "
                             "and Flux's 2x2 patches need")


def run_folder(output_root: str | Path, lora_name: str) -> Path:
    return Path(output_root) / RUNS_FOLDER / lora_name


def checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint.name.rsplit("_", 1)[-1])


def run_summary(run_dir: Path) -> str:
    """What a run folder holds, in a few words ('6 of 40 steps done, last reward -8.5400'); '' without a checkpoint."""
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        return ""
    done = checkpoint_step(checkpoints[-1])
    try:
        planned = f" of {json.loads((run_dir / 'config.json').read_text(encoding='utf-8'))['train']['steps']}"
    except (OSError, ValueError, KeyError, TypeError):
        planned = ""
    rewards = [r["reward_mean"] for r in MetricsLog(run_dir / "metrics.jsonl").records()
               if isinstance(r.get("reward_mean"), (int, float)) and r.get("step", 0) <= done]  # fmt: skip
    reward = f", last reward {rewards[-1]:.4f}" if rewards else ""
    return f"{done}{planned} steps done{reward}"


def existing_run_problem(run_dir: Path, lora_name: str, resume: bool) -> str:
    """'' unless a run with checkpoints is in the way of a new one; then one line saying what is there and which
    input to change (the trainer's own error speaks of --resume and output folders, the command line's terms)."""
    summary = "" if resume else run_summary(run_dir)
    if not summary:
        return ""
    return (f"lora_name {lora_name!r} already has a run ({summary}; output/{RUNS_FOLDER}/{lora_name}): switch on "
            "resume to continue it, or change lora_name to start a new one")


def bar_value(step: int, phase: str, done: int, total: int) -> int:
    """Where the node's progress bar stands (of steps * BAR_PER_STEP) when the trainer reports `phase` of `step`."""
    if phase not in STEP_PHASES:
        return step * BAR_PER_STEP  # an evaluation runs after its step's training (step 0: before the first)
    share = BAR_PER_STEP // len(STEP_PHASES)
    return (step - 1) * BAR_PER_STEP + STEP_PHASES.index(phase) * share + (share * done // total if total else share)


def phase_text(step: int, steps: int, phase: str, done: int, total: int) -> str:
    """The node's status line while it trains, e.g. 'step 3/40: sampling 8/24 images'."""
    where = f"step {step}/{steps}" if step else "before step 1"
    return f"{where}: {phase} {done}/{total} {PHASE_UNITS.get(phase, '')}".rstrip()


def cancelled_text(lora_name: str, saved_step: int | None, steps: int) -> str:
    """What the node says after Cancel: which step's LoRA is in models/loras, or that none was saved."""
    if saved_step is None:
        return "Cancelled before the first step finished: no LoRA saved"
    return (f"Cancelled: saved models/loras/{lora_name}.safetensors, the LoRA of step {saved_step} of {steps} "
            f"(checkpoint step_{saved_step:06d}); switch on resume to continue from there")


def finished_text(file_name: str, steps: int, final_reward: float | None) -> str:
    reward = f", last reward {final_reward:.4f}" if final_reward is not None else ""
    return f"Saved models/loras/{file_name} after {steps} steps{reward}"


def sample_batch_size(group_size: int) -> int:
    """Samples drawn at once: the whole group up to 8, else the largest divisor of the group up to 8."""
    return group_size if group_size <= 8 else next(b for b in range(8, 0, -1) if group_size % b == 0)


def build_config(s: NodeSettings, run_dir: Path) -> GRPOConfig:
    """The headless config for the node's settings; prompts go to a file beside the run folder (the run folder
    itself must be empty or a GRPO run)."""
    prompts = prompt_lines(s.prompts)
    prompts_file = run_dir.parent / f"{run_dir.name}.prompts.txt"
    write_text(prompts_file, "\n".join(prompts) + "\n")
    config = GRPOConfig()
    config.model.path = "comfyui"
    config.reward.path = "comfyui"
    config.prompts.train_file = str(prompts_file)
    config.prompts.num_eval = min(4, len(prompts))
    config.sample.group_size = s.group_size
    config.sample.batch_size = sample_batch_size(s.group_size)
    config.sample.num_steps = s.sampling_steps
    config.sample.noise_level = s.noise_level
    config.sample.width, config.sample.height = s.width, s.height
    config.train.steps = s.steps
    config.train.top_k = s.top_k
    config.train.learning_rate = s.learning_rate
    config.train.beta = s.kl_beta
    config.train.algorithm = s.algorithm
    config.train.seed = s.seed
    config.lora.rank, config.lora.alpha = s.lora_rank, s.lora_alpha
    config.output.dir = str(run_dir)
    config.output.checkpoint_every = 1  # an interrupt loses at most the step in progress
    config.output.eval_every = max(1, s.steps // 5)
    validate(config)
    return config


def prompts_hash(prompts: list[str]) -> str:
    return hashlib.sha256("\n".join(prompts).encode("utf-8")).hexdigest()[:16]


def lora_metadata(base_model: str, scorer: str, prompts: list[str], steps: int, final_reward: float | None,
                  config: GRPOConfig) -> dict[str, str]:
    return {
        "spatialscore.base_model": base_model,
        "spatialscore.scorer": scorer,
        "spatialscore.prompts_sha256_16": prompts_hash(prompts),
        "spatialscore.steps": str(steps),
        "spatialscore.final_reward": "" if final_reward is None else f"{final_reward:.6f}",
        "spatialscore.config": json.dumps(config.to_dict()),
    }


def publish_lora(state: dict[str, torch.Tensor], loras_dir: str | Path, name: str, metadata: dict[str, str]) -> Path:
    """models/loras/<name>.safetensors, atomically (a reader sees the old file or the new one), mode 0644."""
    return save_lora_file(state, Path(loras_dir) / f"{name}.safetensors", metadata)


class HandleScorer:
    """The trainer's scorer interface over the Loader's handle: placed on the GPU only while scoring."""

    def __init__(self, handle):
        self.handle = handle

    def score(self, images: torch.Tensor, prompts: list[str]):
        self.handle.placement.load(self.handle.scorer)
        try:
            return self.handle.scorer.score(images, prompts)
        finally:
            if not self.handle.keep_loaded:
                self.handle.placement.offload(self.handle.scorer)


def chart_point(record: dict) -> dict:
    """One step of the web chart: reward mean +- std, the kept samples' reward, the eval reward (when evaluated)."""
    keys = {"step": "step", "reward_mean": "mean", "reward_std": "std", "kept_reward_mean": "kept",
            "eval_reward_mean": "eval"}
    return {out: float(record[k]) for k, out in keys.items() if isinstance(record.get(k), (int, float))}


def curve_image(records: list[dict], path: Path) -> torch.Tensor:
    """The run's reward curve as an IMAGE [1, H, W, 3] (the PNG the headless run draws)."""
    import numpy as np
    from PIL import Image

    from training.grpo.reports import plot_reward_curve

    plot_reward_curve(records, path)
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(pixels)[None]

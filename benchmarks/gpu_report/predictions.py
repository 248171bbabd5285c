"""What the dry runs predicted for each measured figure, read from their saved runs (benchmarks/dryrun/results/).

Those files are full-size fake-tensor runs of the same code (docs/memory_plan.md). Re-running them costs 5-160 s of
CPU each, so the saved JSON is read, and each prediction names its file. A file is used only when it is the
configuration the GPU measures (scorer batch, reward micro-batch, the GRPO preset's train batch and T5 length);
otherwise the prediction is missing with the command that would make it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (a GPU image's python may be older than this machine's)
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "dryrun" / "results"
CONFIGS = HERE.parent.parent / "training" / "grpo" / "configs"
GRPO_PRESET = CONFIGS / "flux_dev_spatial.toml"
QWEN_IMAGE_PRESET = CONFIGS / "qwen_image_spatial.toml"
FP32_PEAK = 67e12  # H100 SXM dense fp32 FLOP/s without tensor cores (torch's default: TF32 off for matmuls)


@dataclass
class Predicted:
    value: float | None
    source: str  # the file and figure, or why there is none


class Saved:
    """One saved dry run: its phases' FLOPs, peaks and the utilisation it assumed."""

    def __init__(self, name: str):
        self.name = name
        self.data = json.loads((RESULTS / name).read_text(encoding="utf-8"))
        assumptions = self.data["assumptions"]
        self.flops_per_s = assumptions["peak_flops"] * assumptions["utilisation"]

    def phase(self, name: str) -> dict:
        return next(p for p in self.data["phases"] if p["name"] == name)

    def seconds(self, *names: str) -> float:
        """Predicted seconds of the named phases (all of them when none named), from TFLOP, not the rounded s."""
        phases = [self.phase(n) for n in names] if names else self.data["phases"]
        return sum(p["tflop"] for p in phases) * 1e12 / self.flops_per_s

    def tflop(self, *names: str) -> float:
        phases = [self.phase(n) for n in names] if names else self.data["phases"]
        return sum(p["tflop"] for p in phases)


def _saved(name: str) -> Saved | str:
    """The saved run, or a line saying why it cannot be read."""
    try:
        return Saved(name)
    except (OSError, ValueError, KeyError) as exc:
        return f"benchmarks/dryrun/results/{name} unreadable ({type(exc).__name__}: {exc})"


def grpo_preset(path: Path = GRPO_PRESET) -> dict:
    """A shipped GRPO preset's values the GRPO prediction depends on (flux_dev_spatial unless named)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {"train_batch": data["train"]["batch_size"], "per_step": data["prompts"]["per_step"],
            "group_size": data["sample"]["group_size"],
            "scorer_resident": data["reward"].get("keep_loaded", True)}


GRPO_TEXT_TOKENS = 128  # the dry run's T5 length for the preset's auto length; the GPU run sets the same


def score(batch: int) -> dict[str, Predicted]:
    s = _saved(f"score_b{batch}.json")
    if isinstance(s, str):
        return {"s_image": Predicted(None, s), "peak_gib": Predicted(None, s)}
    images = int(s.phase("score")["note"].split()[0])
    where = f"{s.name} (Scorer.score, {s.tflop() / images:.2f} TFLOP an image at 40% of 989 TFLOP/s)"
    return {"s_image": Predicted(s.seconds() / images, where), "peak_gib": Predicted(s.data["peak_gib"], s.name)}


def naive_s_image() -> Predicted:
    """The naive loop has no dry run of its own: its FLOPs are batch 1's, at 40% of the fp32 (non-tensor-core) peak."""
    s = _saved("score_b1.json")
    if isinstance(s, str):
        return Predicted(None, s)
    return Predicted(s.tflop() * 1e12 / (FP32_PEAK * 0.4),
                     f"{s.name}'s FLOPs at 40% of 67 TFLOP/s (fp32, no tensor cores); not a dry run of the loop")


def reward_train(micro_batch: int) -> dict[str, Predicted]:
    s = _saved(f"rt_mb{micro_batch}.json")
    if isinstance(s, str):
        return {"s_step": Predicted(None, s), "peak_gib": Predicted(None, s)}
    where = f"{s.name} (one optimizer step, {s.tflop():.1f} TFLOP with the recompute, at 40%)"
    return {"s_step": Predicted(s.seconds(), where), "peak_gib": Predicted(s.data["peak_gib"], s.name)}


def grpo_flux() -> dict[str, Predicted]:
    """One group of the preset: the dry run's step (preset.per_step groups) divided by its groups."""
    preset = grpo_preset()
    keys = ("s_group", "s_sampling", "s_reward", "s_training", "peak_gib", "utilisation", "tflop_group")
    name = f"grpo_tb{preset['train_batch']}.json"
    s = _saved(name)
    if isinstance(s, str):
        why = (f"{s}: run python -m benchmarks.dryrun grpo --shape flux-dev --train-batch {preset['train_batch']} "
               f"--json benchmarks/dryrun/results/{name}")
        return {k: Predicted(None, why) for k in keys}
    if s.data.get("train_batch") != preset["train_batch"] or s.data.get("text_tokens") != GRPO_TEXT_TOKENS:
        why = f"{name} is train batch {s.data.get('train_batch')}, {s.data.get('text_tokens')} T5 tokens: not the preset"
        return {k: Predicted(None, why) for k in keys}
    residency = "text encoders offloaded, scorer resident"  # the preset's (offload_text_encoders, keep_loaded)
    return _grpo_group(s, name, residency)


def grpo_qwen_image() -> dict[str, Predicted]:
    """One group of qwen_image_spatial: the saved Qwen-Image dry run's step divided by its groups."""
    preset = grpo_preset(QWEN_IMAGE_PRESET)
    keys = ("s_group", "s_sampling", "s_reward", "s_training", "peak_gib", "utilisation", "tflop_group")
    name = "grpo_qwen_image.json"
    s = _saved(name)
    if isinstance(s, str):
        why = f"{s}: run python -m benchmarks.dryrun grpo --shape qwen-image --json benchmarks/dryrun/results/{name}"
        return {k: Predicted(None, why) for k in keys}
    if s.data.get("train_batch") != preset["train_batch"] or s.data.get("text_tokens") != GRPO_TEXT_TOKENS:
        why = (f"{name} is train batch {s.data.get('train_batch')}, {s.data.get('text_tokens')} text tokens: "
               "not the preset")
        return {k: Predicted(None, why) for k in keys}
    # the preset's reward.keep_loaded = false: the scorer leaves the GPU after each reward phase
    residency = f"text encoders offloaded, scorer {'resident' if preset['scorer_resident'] else 'offloaded'}"
    return _grpo_group(s, name, residency)


def _grpo_group(s: Saved, name: str, residency: str) -> dict[str, Predicted]:
    groups = s.data["groups_per_step"]
    peak = max(p["peak_gib"] for p in s.data["residency"][residency]["phases"])
    where = f"{name} / {groups} groups a step, at 40% of 989 TFLOP/s"
    return {
        "s_group": Predicted(s.seconds() / groups, where),
        # the trainer's time_sample holds the prompt encoding, the SDE steps and the VAE decode
        "s_sampling": Predicted(s.seconds("encode", "sampling", "decode") / groups, where),
        "s_reward": Predicted(s.seconds("reward") / groups, where),
        "s_training": Predicted(s.seconds("training") / groups, where),
        "peak_gib": Predicted(peak, f"{name}, {residency}"),
        "utilisation": Predicted(s.flops_per_s / s.data["assumptions"]["peak_flops"], "the dry runs' assumption"),
        "tflop_group": Predicted(s.tflop() / groups, f"{name}: executed FLOPs, checkpointing recompute included"),
    }

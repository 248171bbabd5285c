"""The owed GPU figures, in order of value, each with the dry run's prediction for the same configuration.

Order of value: scoring first (the cheapest item, and the scorer every other figure leans on: issue 2's 40 images/s
goal), then the FLUX.1-dev GRPO group (the paper's method, issue 6's 50 s goal, and a predicted peak of 59 GiB that
decides which card runs the preset), then the reward-training step, then the
Qwen-Image GRPO group (the costliest item: last, so a short budget skips it first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import predictions as pred
from .predictions import Predicted

PEAK_BF16 = 989e12  # H100 / H200 SXM dense bf16, FLOP/s: the dry runs' reference


@dataclass
class Measure:
    key: str  # the child's name for the figure
    label: str
    unit: str  # "s", "GiB", "x" or "%"
    predicted: Predicted
    # a figure computed from the child's others (a speed-up, a utilisation); None: the child measures it
    derive: Callable[[dict], float | None] | None = None


@dataclass
class Item:
    name: str
    runs: dict[str, str]  # shape -> what runs, one line
    runner: str | None  # the module of this package the child runs; None: nothing to run
    measures: Callable[[], list[Measure]]
    needs_diffusers: bool = False
    blocked: Callable[[], str | None] = field(default=lambda: None)  # why it cannot run at all, or None


def _ratio(a: str, b: str) -> Callable[[dict], float | None]:
    return lambda m: m[a] / m[b] if m.get(a) and m.get(b) else None


def score_measures() -> list[Measure]:
    b1, b16, naive = pred.score(1), pred.score(16), pred.naive_s_image()
    speedup = (Predicted(naive.value / b16["s_image"].value, "the two predictions above")
               if naive.value and b16["s_image"].value else Predicted(None, "no prediction of one side"))
    return [
        Measure("s_image_b1", "s an image, batch 1", "s", b1["s_image"]),
        Measure("s_image_b16", "s an image, batch 16 (one prompt, its prefix shared)", "s", b16["s_image"]),
        Measure("s_image_naive", "s an image, naive loop (fp32, eager, one image at a time)", "s", naive),
        Measure("speedup_b16", "speed-up, batch 16 over the naive loop", "x", speedup,
                derive=_ratio("s_image_naive", "s_image_b16")),
        Measure("peak_gib_b1", "peak memory, batch 1", "GiB", b1["peak_gib"]),
        Measure("peak_gib_b16", "peak memory, batch 16", "GiB", b16["peak_gib"]),
        Measure("peak_gib_naive", "peak memory, naive loop (fp32 weights)", "GiB",
                Predicted(None, "no dry run in fp32")),
    ]


def reward_train_measures() -> list[Measure]:
    out = []
    for mb in (1, 4):
        p = pred.reward_train(mb)
        pairs = "1 pair" if mb == 1 else f"{mb} pairs"
        out += [Measure(f"s_step_mb{mb}", f"s an optimizer step, micro-batch {mb} ({pairs})", "s", p["s_step"]),
                Measure(f"peak_gib_mb{mb}", f"peak memory, micro-batch {mb}", "GiB", p["peak_gib"])]
    return out


def grpo_measures(p: dict[str, Predicted], peak_label: str) -> list[Measure]:
    tflop = p["tflop_group"].value

    def utilisation(m: dict) -> float | None:
        return tflop * 1e12 / m["s_group"] / PEAK_BF16 if tflop and m.get("s_group") else None

    return [
        Measure("s_group", "s a group", "s", p["s_group"]),
        Measure("s_sampling", "  sampling (prompts, SDE steps with log-probs, VAE decode)", "s", p["s_sampling"]),
        Measure("s_reward", "  reward (SpatialScore-7B on the group's images)", "s", p["s_reward"]),
        Measure("s_training", "  training (kept samples, policy + reference, backward, AdamW)", "s",
                p["s_training"]),
        Measure("peak_gib", peak_label, "GiB", p["peak_gib"]),
        Measure("utilisation", "utilisation: dry-run FLOPs / measured time / 989 TFLOP/s", "%", p["utilisation"],
                derive=utilisation),
    ]


def grpo_flux_measures() -> list[Measure]:
    return grpo_measures(pred.grpo_flux(), "peak memory (scorer resident, text encoders offloaded)")


QWEN_IMAGE_BACKEND = Path(__file__).resolve().parents[2] / "training" / "grpo" / "qwen_image_policy.py"


def qwen_image_blocked() -> str | None:
    if not QWEN_IMAGE_BACKEND.is_file():
        return ("not built yet: training/grpo has no qwen_image_policy.py (the Qwen-Image GRPO backend), so there "
                "is nothing to run")
    return None


def qwen_image_measures() -> list[Measure]:
    return grpo_measures(pred.grpo_qwen_image(), "peak memory (text encoder and scorer offloaded)")


ITEMS = [
    Item("score-7b", {"full": "SpatialScore-7B (Qwen2.5-VL-7B, LoRA merged) random bf16, 512x512 images, one prompt",
                      "mini": "the tiny Qwen2.5-VL scorer, 112 px, on the CPU"},
         "run_score", score_measures),
    Item("grpo-flux-dev", {"full": "one FLUX.1-dev GRPO group, flux_dev_spatial preset (G=24, 6 steps, 512 px, k=6, "
                                   "LoRA rank 32, train batch 2, KL on), 128 T5 tokens, SpatialScore-7B reward",
                           "mini": "bench_grpo's mini Flux and the tiny scorer, 64 px, on the CPU"},
         "run_grpo", grpo_flux_measures, needs_diffusers=True),
    Item("reward-train-7b", {"full": "Qwen2.5-VL-7B reward LoRA (rank 32, bf16, checkpointing), 512 px pairs, "
                                     "the real trainer",
                             "mini": "the tiny Qwen2.5-VL through the real trainer, 112 px, on the CPU"},
         "run_reward_train", reward_train_measures),
    Item("grpo-qwen-image", {"full": "one Qwen-Image GRPO group, qwen_image_spatial preset (G=24, 10 steps, 512 px, "
                                     "true CFG 4, k=6, window of 2 steps, LoRA rank 64, train batch 1, KL on), "
                                     "128 text tokens, SpatialScore-7B reward (offloaded between rewards)",
                             "mini": "the tiny_qwen_image preset (tiny QwenImagePipeline and scorer), 64 px, "
                                     "on the CPU"},
         "run_qwen_image", qwen_image_measures, needs_diffusers=True, blocked=qwen_image_blocked),
]

NAMES = [i.name for i in ITEMS]

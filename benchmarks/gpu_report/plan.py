"""What each item costs: seconds (the budget check) and GiB (the free-memory check), before it is started.

Full size: the compute is the dry runs' prediction (40% of an H100's 989 TFLOP/s bf16, saved in
benchmarks/dryrun/results/) times what the item runs; the rest are stated overheads. Those are estimates, not
measurements (no GPU has been lent yet), and the first real report corrects them:
  start-up      a fresh python importing torch, transformers, peft and accelerate, and the CUDA context
  builds        random init straight on the GPU: the init kernels for 8-12 B parameters take about a second; the
                Python construction of the modules, and peft wrapping them, the rest
  first calls   cuBLAS heuristics, the caching allocator growing: a first call is slower than the timed ones
  writes        what the trainers write at their last step (LoRA, optimizer state, the GRPO EMA)
Mini size (the CPU test): seconds measured on the 2-core development machine, one thread, another job running.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import predictions as pred
from .items import Item

STARTUP_S = 12.0
DIFFUSERS_S = 3.0  # importing diffusers on top
BUILD_7B_S = 8.0  # Qwen2.5-VL-7B: 8.3 B parameters, 28 + 32 blocks
BUILD_FLUX_S = 10.0  # FLUX.1-dev transformer (11.9 B, 57 blocks, re-initialised Linear by Linear) and VAE
LORA_WRAP_S = 5.0  # peft over FLUX.1-dev's 57 blocks x 14 targets, or the 7B's 28 layers x 4
FIRST_CALL_S = 2.0
TRAINER_SETUP_S = 5.0  # the reward trainer: accelerate, the pairs written and checked, the run folder
TRAINER_WRITES_S = 2.0  # its checkpoint and adapter at the last step (LoRA + AdamW, ~0.3 GB)
BUILD_QWEN_IMAGE_S = 15.0  # Qwen-Image: 20.4 B parameters bf16 (~41 GB), 60 blocks, plus its Linear re-init
QWEN_TEXT_ENCODER_S = 12.0  # its Qwen2.5-VL-7B text encoder built on the GPU (8 s) and offloaded to the CPU (16 GB)
GRPO_WRITES_S = 5.0  # the GRPO trainer's last-step checkpoint and LoRA (LoRA, AdamW, EMA: ~2.5 GB)
CONTEXT_GIB = 1.0  # CUDA context and cuBLAS workspace, on top of a dry run's peak
FRAGMENTATION = 0.95  # the dry runs' rule: a peak fits in 95% of the memory (the rest lost to fragmentation)
PROBE_S = 10.0  # the device probe before the items (torch, CUDA, diffusers imported once)

# measured: OMP_NUM_THREADS=1, the 2-core development CPU shared with other jobs (load average 8, 2026-12-07)
MINI_S = {"score-7b": 16.0, "grpo-flux-dev": 23.0, "reward-train-7b": 26.0, "grpo-qwen-image": 16.0}
MINI_GIB = 1.5  # a mini item's peak RSS is under 1 GiB


@dataclass
class Cost:
    seconds: float
    gib: float  # peak memory the item's first part needs, CUDA context included
    parts: dict[str, float]  # seconds by what they are spent on

    def line(self) -> str:
        return ", ".join(f"{k} {v:.0f}" for k, v in self.parts.items())


def _score() -> Cost:
    b1, b16 = pred.score(1), pred.score(16)
    naive = pred.naive_s_image().value or 0.26
    from .run_score import SHAPES

    _, _, n1, n16, n_naive = SHAPES["full"]
    # bench_scorer.measure runs each pass twice: a warm-up and the timed one
    parts = {"start-up": STARTUP_S, "7B build": BUILD_7B_S, "first calls": 3 * FIRST_CALL_S,
             "batch 1": 2 * n1 * (b1["s_image"].value or 0.02), "batch 16": 2 * n16 * (b16["s_image"].value or 0.02),
             "fp32 cast": 2.0, "naive loop": 2 * n_naive * naive}
    return Cost(sum(parts.values()), (b1["peak_gib"].value or 16.0) + CONTEXT_GIB, parts)


def _reward_train() -> Cost:
    from .run_reward_train import MICRO_BATCHES, SHAPES

    steps = SHAPES["full"][2]
    parts = {"start-up": STARTUP_S, "7B build": BUILD_7B_S}
    for mb in MICRO_BATCHES:
        step = pred.reward_train(mb)["s_step"].value or 0.1 * mb
        parts[f"micro-batch {mb}"] = TRAINER_SETUP_S + FIRST_CALL_S + steps * step + TRAINER_WRITES_S
    first = pred.reward_train(MICRO_BATCHES[0])["peak_gib"].value or 20.0
    return Cost(sum(parts.values()), first + CONTEXT_GIB, parts)


def _grpo_flux() -> Cost:
    from .run_grpo import SHAPES

    p = pred.grpo_flux()
    steps = SHAPES["full"][1]
    group = p["s_group"].value or 16.3
    parts = {"start-up": STARTUP_S + DIFFUSERS_S, "Flux + 7B builds": BUILD_FLUX_S + BUILD_7B_S + LORA_WRAP_S,
             "FLOP count": FIRST_CALL_S + 2.0, f"{steps} groups": steps * group + FIRST_CALL_S,
             "writes": GRPO_WRITES_S}
    return Cost(sum(parts.values()), (p["peak_gib"].value or 59.0) + CONTEXT_GIB, parts)


def _grpo_qwen_image() -> Cost:
    from .run_qwen_image import SHAPES

    p = pred.grpo_qwen_image()
    steps = SHAPES["full"][1]
    group = p["s_group"].value or 29.8
    parts = {"start-up": STARTUP_S + DIFFUSERS_S,
             "Qwen-Image + 7B builds": BUILD_QWEN_IMAGE_S + QWEN_TEXT_ENCODER_S + BUILD_7B_S + LORA_WRAP_S,
             f"{steps} groups": steps * group + FIRST_CALL_S, "writes": GRPO_WRITES_S}
    return Cost(sum(parts.values()), (p["peak_gib"].value or 59.3) + CONTEXT_GIB, parts)


FULL = {"score-7b": _score, "reward-train-7b": _reward_train, "grpo-flux-dev": _grpo_flux,
        "grpo-qwen-image": _grpo_qwen_image}


def cost(item: Item, shape: str) -> Cost | None:
    """The item's cost at `shape`; None for an item with nothing to run."""
    if item.runner is None:
        return None
    if shape == "mini":
        return Cost(MINI_S[item.name], MINI_GIB, {"measured on the development CPU": MINI_S[item.name]})
    return FULL[item.name]()


def fits_memory(need_gib: float, free_gib: float) -> bool:
    return need_gib <= FRAGMENTATION * free_gib

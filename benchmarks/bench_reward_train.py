"""Reward-training throughput and memory: LoRA training steps of SpatialScore through the real trainer.

    python -m benchmarks.bench_reward_train --shape 7b                 # Qwen2.5-VL-7B shape, random bf16 weights, GPU
    python -m benchmarks.bench_reward_train --shape 7b --micro-batch 2 --gradient-checkpointing off
    python -m benchmarks.bench_reward_train --shape small --px 112     # CPU-sized smoke run of the same path

It writes a random base folder (the published 7B shape, see benchmarks.bench_scorer), random image pairs of
--px x --px pixels, then runs `training.reward.train.trainer.train` for --steps optimizer steps: LoRA rank 32 on
q/k/v/o, reward-token row and head trainable, bf16 weights + autocast and gradient checkpointing on CUDA, the
Gaussian BT loss. Reported: pairs/s (median over the steps after the first), seconds per step, and the peak
accelerator memory. Nothing here is a test; figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from training.common.atomic import write_text
from training.common.output_file import check_output_arg

PROMPT = ("a red circle to the left of a blue square, and a green triangle above the blue square, "
          "and the blue square below a yellow circle")


def write_pairs(folder: Path, n: int, px: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        for side in ("c", "r"):
            Image.fromarray(rng.integers(0, 255, (px, px, 3), dtype=np.uint8)).save(folder / f"{i}_{side}.png")
        rows.append({"prompt": PROMPT, "chosen": f"{i}_c.png", "rejected": f"{i}_r.png", "perturbations": 1})
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def build_base(shape: str, folder: Path, px: int) -> Path:
    if shape == "7b":
        from benchmarks.bench_scorer import build_7b_folder

        return build_7b_folder(folder, px)
    from training.reward.models.tiny import save_tiny_qwen25vl

    return save_tiny_qwen25vl(folder, seed=0, min_pixels=56 * 56, max_pixels=px * px, text_hidden=256,
                              text_layers=4, heads=4, kv_heads=2, vision_hidden=128, vision_depth=4)


def measure_steps(base: Path, work: Path, px: int, micro_batch: int, accumulation: int = 1, steps: int = 5,
                  gradient_checkpointing: str = "auto", lora_rank: int = 32) -> dict:
    """`steps` optimizer steps of the real trainer on the base at `base` (into work/run_mb<N>): pairs/s (median
    over the steps after the first), seconds a step and peak accelerator memory. Also used by benchmarks.gpu_report."""
    import torch

    from training.reward.train.train_config import load_config
    from training.reward.train.trainer import train

    cuda = torch.cuda.is_available()
    t0 = time.perf_counter()
    batch = micro_batch * accumulation
    data = write_pairs(work / f"pairs_{px}_{batch * steps}", batch * steps, px)
    pairs_s = time.perf_counter() - t0
    config = load_config(preset="qwen25vl_7b_lora", overrides={
        "model.base": str(base), "data.train": str(data), "data.val": "none",
        "output.dir": str(work / f"run_mb{micro_batch}"), "output.checkpoint_every": 0, "output.tensorboard": False,
        "train.steps": steps, "train.batch_size": batch, "train.micro_batch_size": micro_batch,
        "train.warmup_steps": 1, "model.gradient_checkpointing": gradient_checkpointing,
        "model.max_pixels": px * px, "lora.rank": lora_rank, "lora.alpha": 2 * lora_rank,
    })
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    result = train(config)
    records = [r for r in result.records if r["kind"] == "train"]
    timed = records[1:] or records
    pairs_per_s = statistics.median(r["pairs_per_s"] for r in timed)
    return {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "image_px": px, "pairs_per_step": batch, "micro_batch": micro_batch,
        "gradient_checkpointing": gradient_checkpointing, "lora_rank": lora_rank,
        "pairs_per_s": round(pairs_per_s, 3), "s_per_step": round(batch / pairs_per_s, 3),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "loss_first_last": [round(records[0]["loss"], 4), round(records[-1]["loss"], 4)],
        "torch": torch.__version__, "pairs_s": pairs_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["7b", "small"], default="7b")
    parser.add_argument("--px", type=int, default=512, help="image side in pixels (512: 324 merged tokens on 7B)")
    parser.add_argument("--micro-batch", type=int, default=4, help="pairs per forward pass")
    parser.add_argument("--accumulation", type=int, default=1, help="micro-batches per optimizer step")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--gradient-checkpointing", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--lora-rank", type=int, default=32)
    parser.add_argument("--workdir", help="keep the base and pairs here (default: a temporary folder)")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    check_output_arg(parser, args.json, "--json", example="bench_reward_train.json")  # before minutes of training

    import torch

    cuda = torch.cuda.is_available()
    if args.shape == "7b" and not cuda:
        raise SystemExit("--shape 7b needs a CUDA GPU (about 17 GB of bf16 weights plus activations)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        t0 = time.perf_counter()
        base = work / f"base_{args.shape}_{args.px}"
        if not (base / "config.json").is_file():
            build_base(args.shape, base, args.px)
        setup_s = time.perf_counter() - t0
        out = measure_steps(base, work, args.px, args.micro_batch, args.accumulation, args.steps,
                            args.gradient_checkpointing, args.lora_rank)
        setup_s += out.pop("pairs_s")  # the base and the pairs written
        out = {"shape": args.shape, **out, "setup_s": round(setup_s, 1)}
    print(json.dumps(out, indent=2))
    if args.json:
        write_text(args.json, json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""reward-train-7b, in its own process: optimizer steps of the real reward trainer at micro-batch 1, then 4.

The steps are benchmarks.bench_reward_train's (training.reward.train.trainer.train on random 512 px pairs, the
qwen25vl_7b_lora preset: LoRA rank 32, bf16 + autocast, gradient checkpointing on CUDA). Its base is the dry run's
Qwen2.5-VL-7B (benchmarks.dryrun.fake.build_qwen) built at random on the GPU, handed to the trainer in place of
loading a folder, so 15 GB of weights are never written to disk and read back. Both runs train the same model
object: the second continues the first's LoRA, which changes no shape, time or memory.
"""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path

# shape -> (Qwen2.5-VL shape, image px, optimizer steps a run: the first warms up)
SHAPES = {"full": ("7b", 512, 3), "mini": ("tiny", 112, 2)}
MICRO_BATCHES = (1, 4)  # the dry run's rt_mb1 (fits 24 GB) and rt_mb4 (bench_reward_train's default)


def run(shape: str, record) -> None:
    import torch

    import training.reward.train.trainable as trainable
    from benchmarks.bench_reward_train import measure_steps
    from benchmarks.dryrun.fake import build_qwen
    from training.reward.models.loading import make_trainable

    qwen, px, steps = SHAPES[shape]
    cuda = torch.cuda.is_available()
    started = time.perf_counter()
    with torch.device("cuda" if cuda else "cpu"):
        vlm, processor = build_qwen(qwen, fake=False, px=px, dtype=torch.bfloat16 if cuda else torch.float32)
    record.info("build_s", time.perf_counter() - started)
    made = []

    def create_model(base, config, device="cpu", dtype=None, attn="sdpa", seed=0):
        """trainable.create_model, with the base already built in memory (made trainable once)."""
        if not made:
            made.append(make_trainable(vlm, processor, config, seed=seed).to(device))
        return made[0]

    trainable.create_model = create_model  # the trainer's build_model calls it by this name
    with tempfile.TemporaryDirectory() as tmp:
        for micro_batch in MICRO_BATCHES:
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
            try:
                out = measure_steps(Path(tmp) / "in-memory-base", Path(tmp), px, micro_batch, steps=steps)
            except torch.OutOfMemoryError as exc:
                record.part_failed(f"micro-batch {micro_batch}", f"out of memory ({str(exc).splitlines()[0]})")
                return
            record.measured(f"s_step_mb{micro_batch}", out["s_per_step"])
            if out["peak_memory_gib"] is not None:
                record.measured(f"peak_gib_mb{micro_batch}", out["peak_memory_gib"])
            record.info(f"mb{micro_batch}", {k: out[k] for k in ("pairs_per_s", "loss_first_last", "micro_batch")})

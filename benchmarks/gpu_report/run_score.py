"""score-7b, in its own process: SpatialScore-7B's Scorer.score at batch 1 and 16, then the naive loop.

The scorer is the dry run's own model (benchmarks.dryrun.score.build_scorer_model: Qwen2.5-VL-7B with the LoRA
merged, as load_scorer returns it, fp32 head), built at random straight on the GPU; the naive loop and the timing
are benchmarks.bench_scorer's (one warm-up call, then one timed call, peak memory of both). The naive loop runs on
the same weights cast to fp32 with eager attention, as bench_scorer's baseline loads them.
"""

from __future__ import annotations

import gc
import time

# shape -> (Qwen2.5-VL shape, image px, images timed at batch 1, at batch 16, in the naive loop)
SHAPES = {"full": ("7b", 512, 16, 64, 8), "mini": ("tiny", 112, 4, 16, 2)}


def run(shape: str, record) -> None:
    import torch

    from benchmarks.bench_scorer import measure, naive_loop
    from benchmarks.dryrun.score import PROMPT, build_scorer_model, random_images
    from training.reward.scorer import Scorer

    qwen, px, n1, n16, n_naive = SHAPES[shape]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    started = time.perf_counter()
    with torch.device(device):
        model = build_scorer_model(qwen, fake=False, px=px)
    if device.type == "cuda":
        torch.cuda.synchronize()
    record.info("build_s", time.perf_counter() - started)
    record.info("scorer", f"Qwen2.5-VL-{qwen} shape, LoRA merged, {next(model.parameters()).dtype}, {device}")
    images = random_images(max(n1, n16, n_naive), px)
    batched = {}
    for batch, n in ((1, n1), (16, n16)):
        scorer = Scorer(model, batch_size=batch)
        m = measure(lambda scorer=scorer, n=n: scorer.score(images[:n], PROMPT).mean)
        batched[batch] = m["scores"]
        record.measured(f"s_image_b{batch}", m["seconds"] / n)
        record.measured(f"peak_gib_b{batch}", m["peak_gib"])
    record.info("peak_kind", m["peak_kind"])

    # the naive loop: the same weights in fp32, eager attention, one image at a time
    try:
        model.float()
        model.vlm.set_attn_implementation("eager")
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        m = measure(lambda: naive_loop(model, images[:n_naive], PROMPT))
    except torch.OutOfMemoryError as exc:  # fp32 weights are twice the bf16 ones: what fails on a small card
        record.part_failed("naive loop", f"out of memory in fp32 ({str(exc).splitlines()[0]})")
        return
    record.measured("s_image_naive", m["seconds"] / n_naive)
    record.measured("peak_gib_naive", m["peak_gib"])
    drift = (m["scores"].float().cpu() - batched[16][:n_naive].float()).abs().max().item()
    record.info("max_score_difference_b16_vs_naive", drift)

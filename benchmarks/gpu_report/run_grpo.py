"""grpo-flux-dev, in its own process: GRPO steps of one group each with the shipped flux_dev_spatial preset.

benchmarks.bench_grpo.run does the work: FLUX.1-dev's transformer and VAE at random on the GPU, one-layer text
encoders with the real widths (the preset offloads the real ones; prompt embeddings are not part of a step), the
dry run's SpatialScore-7B built on the GPU, then the real trainer. Two overrides make it the dry run's
configuration for one group: one prompt a step (the preset's 8 groups a step would take 8x as long for the same
per-group figures) and 128 T5 tokens (what the dry run assumed for the preset's auto length). The first step warms
up; the others are timed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .predictions import GRPO_TEXT_TOKENS

# shape -> (bench_grpo shape, GRPO steps: the first warms up, overrides on top of the preset)
SHAPES = {"full": ("flux-dev", 3, {"prompts.per_step": 1, "model.max_sequence_length": GRPO_TEXT_TOKENS}),
          "mini": ("mini", 2, {"prompts.per_step": 1})}


def run(shape: str, record) -> None:
    import torch

    from benchmarks.bench_grpo import run as run_grpo

    bench_shape, steps, overrides = SHAPES[shape]
    if not torch.cuda.is_available():
        torch.set_num_threads(1)  # toy sizes: one thread is the fastest on a shared CPU
    with tempfile.TemporaryDirectory() as tmp:
        summary = run_grpo(bench_shape, steps, Path(tmp), overrides)
    record.measured("s_group", summary["seconds_per_step"])  # one group a step
    for phase, key in (("sampling", "seconds_sample"), ("reward", "seconds_reward"), ("training", "seconds_train")):
        record.measured(f"s_{phase}", summary[key])
    if "peak_gib" in summary:
        record.measured("peak_gib", summary["peak_gib"])
    record.info("bench_grpo", summary)

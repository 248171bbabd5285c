"""How long the shipped shapes generator takes to sample one GRPO group (24 images) on one CPU core.

    OMP_NUM_THREADS=1 python -m benchmarks.bench_shapes_generator [--repeats 5] [--model shapes]

Times the trainer's own sampling (FluxPolicy + the SDE at the shapes preset's noise level and steps) and the VAE
decode, one thread, and prints the median and the fastest of `repeats` runs (the first run warms up and is
dropped). The goal in issue 11: under 2 s per group with the preset's steps.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main(argv: list[str] | None = None) -> int:
    import torch

    from training.grpo.config import load_config
    from training.grpo.sampling import load_policy, sample_generators, sample_trajectories, settings_for
    from training.grpo.shipped import resolve_generator

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_shapes_generator", description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="shapes")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    preset = load_config(preset="shapes", overrides={"output.dir": "unused"}).sample
    model = resolve_generator(args.model)
    settings = settings_for(model, argparse.Namespace(num_steps=preset.num_steps, guidance=None, height=None,
                                                      width=None))  # fmt: skip
    policy = load_policy(model, None, "cpu", settings["max_sequence_length"])
    embeds = policy.encode_prompts(["a red circle to the left of a blue square, and a green triangle above the red "
                                    "circle"] * preset.group_size)  # fmt: skip
    sigmas = policy.sigmas(preset.num_steps, preset.height, preset.width)
    times = []
    for repeat in range(args.repeats + 1):
        start = time.perf_counter()
        with torch.no_grad():
            trajectories = sample_trajectories(policy, embeds, sample_generators(0, repeat, range(preset.group_size)),
                                               sigmas, [preset.noise_level] * preset.num_steps, guidance=0.0,
                                               height=preset.height, width=preset.width)  # fmt: skip
            policy.decode(trajectories.latents[:, -1])
        if repeat:
            times.append(time.perf_counter() - start)
    print(f"shapes generator, one group of {preset.group_size} at {preset.num_steps} steps + decode, 1 thread: "
          f"median {statistics.median(times):.2f} s, fastest {min(times):.2f} s over {len(times)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Every owed GPU figure in one command, for the first GPU lent (minutes, not hours, the machine's start included).

    python -m benchmarks.gpu_report --out DIR [--budget-s 480] [--only NAME...] [--shape full|mini] [--check]

On a GPU, run this first, copy the table in DIR/gpu_report.md into BENCHMARKS.md, and commit.

It runs, in order of value and within the budget, each item in a process of its own (its peak memory is its own;
an out-of-memory or a crash loses nothing else), on random full-size weights built on the GPU and never written to
disk, and puts each figure beside the dry run's prediction for the same configuration (measured / predicted):
  score-7b          SpatialScore-7B's Scorer.score at batch 1 and 16, and the naive loop (fp32, eager, one image at
                    a time): benchmarks/bench_scorer.py's loop and timing on the dry run's own model
  grpo-flux-dev     one FLUX.1-dev GRPO group at 512 px with the shipped flux_dev_spatial preset: seconds by phase,
                    peak memory, utilisation: benchmarks/bench_grpo.py's run (3 steps of one group, the first warms up)
  reward-train-7b   optimizer steps of the real reward trainer on Qwen2.5-VL-7B at micro-batch 1 and 4:
                    benchmarks/bench_reward_train.py's steps
  grpo-qwen-image   one Qwen-Image GRPO group at 512 px with the shipped qwen_image_spatial preset (the dry run's
                    20.4 B transformer and VAE, its Qwen2.5-VL-7B-shaped text encoder with 128-token prompts,
                    offloaded, and SpatialScore-7B, offloaded between rewards): seconds by phase, peak memory,
                    utilisation: run_qwen_image.py (2 steps of one group, the first warms up)
The predictions are read from the saved full-size dry runs (benchmarks/dryrun/results/*.json, predictions.py).

Before each item it checks the time left against the item's plan and the free memory against the dry run's peak;
what cannot fit is skipped with a line saying why. DIR/gpu_report.json and DIR/gpu_report.md are rewritten as each
item starts and ends, so a kill keeps what was measured; each item's log and figures are in DIR/items/. An item
may overrun its plan 3x (within the budget) before it is killed. Whether diffusers is importable (the GPU image has
none) is checked first: without it the Flux and Qwen-Image items are skipped, with the command that installs a
wheel copied into the working tree.

Budget plan on one H100 (`--check` prints it): the compute is the dry runs' (40% of 989 TFLOP/s); start-up, builds,
first calls and writes are estimates stated in plan.py (no GPU has measured them yet):

  device probe       10 s
  score-7b           35 s   start-up 12, 7B build 8, first calls 6, batch 1 1, batch 16 2, fp32 cast 2, naive loop 4
  grpo-flux-dev      98 s   start-up 15, Flux + 7B builds 23, FLOP count 4, 3 groups 51 (16.3 s each), writes 5
  reward-train-7b    39 s   start-up 12, 7B build 8, micro-batch 1 9, micro-batch 4 10
  grpo-qwen-image   122 s   start-up 15, Qwen-Image + 7B builds 40 (20.4 B parameters bf16, ~41 GB, 15; its 7B
                            text encoder built and offloaded 12; scorer 8; LoRA 5), 2 groups 62 (29.8 s each), writes 5
  total             304 s   of the 480 s budget: the whole may take 1.6 times its plan; the Qwen-Image item is
                            last, so a budget cut short skips it first (its 122 s must be left when it starts)

`--shape mini` runs the same code at toy size on the CPU: tests/benchmarks/test_gpu_report.py.
"""

"""Full-size dry runs on fake tensors: peak memory by kind, FLOPs and predicted H100/H200 time, phase by phase.

    python -m benchmarks.dryrun score --shape 7b --batch 16
    python -m benchmarks.dryrun reward-train --shape 7b --micro-batch 4 --token-row both
    python -m benchmarks.dryrun grpo --shape flux-dev --train-batch 4 --json grpo.json

Every model is built at its published shape on fake tensors (no storage, no weights), and the project's own code
runs through it: `Scorer.score`; the reward trainer's model, optimizer and micro-step; the GRPO trainer's
sampling, reward and training pieces. See docs/memory_plan.md for what the numbers say, and each module's
docstring for what is run once and multiplied. `--shape tiny` runs the same path at toy size (`--real`: on real
tensors, which is how tests/benchmarks/test_dryrun.py holds the fake numbers to reality).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from training.common import versions
from training.common.atomic import write_text
from training.common.output_file import check_output_arg

from .measure import DEFAULT_UTILISATION, GIB

SHAPES = {"score": ("7b", "3b", "tiny"), "reward-train": ("7b", "3b", "tiny"), "grpo": ("flux-dev", "tiny", "qwen-image", "tiny-qwen-image")}
SCORER_SHAPES = ("7b", "3b", "tiny")
# The oldest torch the dry runs are tested with: torch 2.11's FlopCounterMode cannot count grouped-query attention
# ("sdpa_flop_count: query/key/value shapes are incompatible"); the pack itself runs on versions.TORCH_FLOOR.
DRYRUN_TORCH = "2.13"
MAX_PX = 2048  # FLUX.1 makes pictures up to about 2 megapixels; beyond this a side is a typo
MAX_COUNT = 1024  # images, pairs, steps or ranks: the published runs use tens
# The images a dry run scores are drawn for real (random pixels, then the processor's float32 patches): their
# pixels together are held to this, e.g. 256 images at 512 px or 16 at 2048 px (about 1 GB once processed).
MAX_REAL_PIXELS = 64 * 1024**2


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad argument reported as one line (no usage block) and exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the arguments)\n")


def parse(argv):
    parser = OneLineParser(prog="python -m benchmarks.dryrun", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    common = OneLineParser(add_help=False)
    common.add_argument("--utilisation", type=float, default=DEFAULT_UTILISATION,
                        help="fraction of the 989 TFLOP/s bf16 peak the predicted times assume (default 0.40)")
    common.add_argument("--px", type=int, default=512, help="image side in pixels (default 512)")
    common.add_argument("--real", action="store_true", help="real tensors instead of fake ones (tiny shape only)")
    common.add_argument("--json", help="also write the numbers to this file")
    common.add_argument("--debug", action="store_true", help="show a traceback on errors")
    s = sub.add_parser("score", parents=[common], help="Scorer.score on a batch of images")
    s.add_argument("--shape", default="7b", help="7b, 3b or tiny")
    s.add_argument("--batch", type=int, default=8, help="images a batch (Scorer batch_size; default 8)")
    r = sub.add_parser("reward-train", parents=[common], help="one LoRA reward-training optimizer step")
    r.add_argument("--shape", default="7b", help="7b, 3b or tiny")
    r.add_argument("--micro-batch", type=int, default=4, help="pairs a forward pass (default 4)")
    r.add_argument("--accumulation", type=int, default=1, help="micro-batches an optimizer step (default 1)")
    r.add_argument("--lora-rank", type=int, default=32)
    r.add_argument("--gradient-checkpointing", choices=["on", "off"], default="on")
    r.add_argument("--token-row", choices=["one-row", "peft", "both"], default="one-row",
                   help="the reward-token row: the one-row override (shipped), peft's full-matrix copy, or both")
    g = sub.add_parser("grpo", parents=[common], help="one Spatial GRPO step (one group) with the 7B scorer")
    g.add_argument("--shape", default="flux-dev", help="flux-dev or tiny")
    g.add_argument("--scorer", default=None, help="scorer shape: 7b (default with flux-dev), 3b, tiny")
    g.add_argument("--train-batch", type=int, default=None, help="train.batch_size (preset: 4)")
    g.add_argument("--sample-batch", type=int, default=None, help="sample.batch_size (preset: 8)")
    g.add_argument("--weight-dtype", default="default", choices=("default", "fp8_e4m3fn", "fp8_e5m2"),
                   help="model.weight_dtype: the transformer's frozen block weights stored in fp8, cast to bf16 where "
                        "used (default: bf16)")
    g.add_argument("--group-size", type=int, default=None, help="sample.group_size, G (preset: 24)")
    g.add_argument("--prompts-per-step", type=int, default=None, help="prompts.per_step (preset: 8)")
    g.add_argument("--algorithm", default="flow_grpo", choices=("flow_grpo", "nft", "awm"),
                   help="train.algorithm: flow_grpo (the SDE log-prob ratio), nft (DiffusionNFT) or awm (advantage-"
                        "weighted matching); nft and awm train on the clean samples, with no log-prob recompute")
    g.add_argument("--sde-window", type=int, nargs=2, default=None, metavar=("START", "END"),
                   help="train only steps START..END-1 and sample the ODE elsewhere (train.timestep_window, "
                        "sample.ode_outside_window: Flow-GRPO-Fast / MixGRPO), e.g. 0 2")
    g.add_argument("--steps-to-gain", type=float, default=None,
                   help="GRPO steps the method needs for the gain (e.g. the shapes study's mean steps to +20 points "
                        "of (c)): also print the predicted seconds to that gain, steps x seconds a step, an "
                        "assumption that the shapes world's steps-to-gain carries over to full size")
    g.add_argument("--text-tokens", type=int, default=None,
                   help="T5 tokens a prompt when the preset's model.max_sequence_length is 0 (auto; default 128, what "
                        "auto gives the paper's ~77-token spatial prompts)")
    args = parser.parse_args(argv)
    if args.shape not in SHAPES[args.what]:
        parser.exit(2, f"--shape: {args.what} takes one of {', '.join(SHAPES[args.what])}, got {args.shape!r}\n")
    if args.real and args.shape != "tiny":
        parser.exit(2, "--real: only the tiny shape runs on real tensors (full size needs the GPU's memory)\n")
    if not 0 < args.utilisation <= 1:
        parser.exit(2, f"--utilisation: a fraction in (0, 1], got {args.utilisation}\n")
    if args.px < 64 or args.px % 16:
        parser.exit(2, f"--px: a multiple of 16 from 64 on (FLUX's 2x2-packed 8x latents), got {args.px}\n")
    if getattr(args, "text_tokens", None) is not None and not 1 <= args.text_tokens <= 512:
        parser.exit(2, f"--text-tokens: 1..512 (T5's limit in FluxPipeline), got {args.text_tokens}\n")
    if getattr(args, "scorer", None) is not None and args.scorer not in SCORER_SHAPES:
        parser.exit(2, f"--scorer: one of {', '.join(SCORER_SHAPES)}, got {args.scorer!r}\n")
    if args.px > MAX_PX:
        parser.exit(2, f"--px: at most {MAX_PX} (FLUX.1's pictures are up to about 2 megapixels), got {args.px}\n")
    if getattr(args, "steps_to_gain", None) is not None and not args.steps_to_gain > 0:
        parser.exit(2, f"--steps-to-gain: a positive number of steps, got {args.steps_to_gain}\n")
    window = getattr(args, "sde_window", None)
    if window is not None and not 0 <= window[0] < window[1]:
        parser.exit(2, f"--sde-window: START < END, both steps from 0, got {window[0]} {window[1]}\n")
    for name in ("batch", "micro_batch", "accumulation", "lora_rank", "train_batch", "sample_batch", "group_size",
                 "prompts_per_step"):
        value = getattr(args, name, None)
        if value is not None and not 1 <= value <= MAX_COUNT:
            parser.exit(2, f"--{name.replace('_', '-')}: 1..{MAX_COUNT}, got {value}\n")
    images, name = (args.batch, "--batch") if args.what == "score" else (2 * getattr(args, "micro_batch", 0),
                                                                         "--micro-batch")
    if images * args.px**2 > MAX_REAL_PIXELS:
        parser.exit(2, f"{name} at --px {args.px}: {images} images of {args.px}x{args.px} are drawn for real; at most "
                       f"{MAX_REAL_PIXELS} pixels together (e.g. 256 images at 512 px, 16 at 2048 px)\n")
    if args.json:
        check_output_arg(parser, args.json, "--json", example=f"{args.what}.json")  # before minutes of dry run
    return args


def run(args) -> tuple[str, dict]:
    from . import report

    fake = not args.real
    u = args.utilisation
    if args.what == "score":
        from . import score

        meter = score.run(args.shape, fake, batch=args.batch, px=args.px)
        title = f"score: Qwen2.5-VL-{args.shape} SpatialScore, batch {args.batch}, {args.px}x{args.px}"
        return report.table(meter.phases, u, title), report.result(meter.phases, u)
    if args.what == "reward-train":
        from . import reward_train

        rows = ["one-row", "peft"] if args.token_row == "both" else [args.token_row]
        texts, results = [], {}
        for row in rows:
            meter = reward_train.run(args.shape, fake, micro_batch=args.micro_batch, accumulation=args.accumulation,
                                     px=args.px, lora_rank=args.lora_rank, token_row=row,
                                     checkpointing=args.gradient_checkpointing == "on", autocast=args.shape != "tiny")
            title = (f"reward-train: Qwen2.5-VL-{args.shape}, LoRA rank {args.lora_rank}, micro-batch "
                     f"{args.micro_batch} pairs, {args.px}x{args.px}, token row: {row}")
            texts.append(report.table(meter.phases, u, title))
            results[row] = report.result(meter.phases, u, trainable_gib=round(meter.trainable_bytes / GIB, 4))
        if len(rows) == 2:
            saved = results["peft"]["peak_gib"] - results["one-row"]["peak_gib"]
            texts.append(f"reward-token row: peft's full-matrix copy peaks at {results['peft']['peak_gib']:.2f} GiB, "
                         f"the one-row override at {results['one-row']['peak_gib']:.2f} GiB: {saved:.2f} GiB saved")
            out = dict(results["one-row"], token_row_variants=results, token_row_saving_gib=round(saved, 3))
        else:
            out = results[rows[0]]
        return "\n\n".join(texts), out
    from . import grpo

    overrides = {}
    if args.sample_batch:
        overrides["sample.batch_size"] = args.sample_batch
    if args.weight_dtype != "default":
        overrides["model.weight_dtype"] = args.weight_dtype
    if args.group_size:
        overrides["sample.group_size"] = args.group_size
    if args.prompts_per_step:
        overrides["prompts.per_step"] = args.prompts_per_step
    if args.algorithm != "flow_grpo":
        overrides["train.algorithm"] = args.algorithm
    if args.sde_window:
        overrides["train.timestep_window"] = list(args.sde_window)
        overrides["sample.ode_outside_window"] = True
    qwen_image = "qwen-image" in args.shape
    config = grpo.load_grpo_config(args.train_batch, overrides, "qwen_image_spatial" if qwen_image else "flux_dev_spatial")
    scorer = args.scorer or ("7b" if args.shape in ("flux-dev", "qwen-image") else "tiny")
    text_tokens = args.text_tokens or grpo.AUTO_TEXT_TOKENS
    meter, weights = grpo.run(args.shape, scorer, fake, config, px=args.px, text_tokens=text_tokens)
    title = (f"grpo: {args.shape} + {scorer} scorer, G={config.sample.group_size}, {config.sample.num_steps} steps, "
             f"{args.px}x{args.px}, {config.model.max_sequence_length or text_tokens} T5 tokens, "
             f"k={config.train.top_k}, train batch {config.train.batch_size}, sample batch "
             f"{config.sample.batch_size}, LoRA rank {config.lora.rank}"
             + (f", block weights {args.weight_dtype}" if args.weight_dtype != "default" else "")
             + (f", algorithm {args.algorithm}" if args.algorithm != "flow_grpo" else "")
             + (f", SDE window {args.sde_window[0]}-{args.sde_window[1] - 1} (ODE elsewhere)" if args.sde_window else "")
             + "; text encoders offloaded, scorer resident")
    variants = grpo_residency(meter.phases, weights)
    text = report.table(variants["text encoders offloaded, scorer resident"], u, title)
    out = report.result(variants["text encoders offloaded, scorer resident"], u,
                        weights_gib={k: round(v / GIB, 3) for k, v in weights.items()}, residency={},
                        groups_per_step=config.prompts.per_step, train_batch=config.train.batch_size,
                        text_tokens=config.model.max_sequence_length or text_tokens,
                        weight_dtype=args.weight_dtype, group_size=config.sample.group_size,
                        algorithm=config.train.algorithm, sde_window=args.sde_window)
    step_s = out["predicted_step_s"]
    lines = [text, "", f"per group: {step_s / config.prompts.per_step:.2f} s predicted "
                       f"({config.prompts.per_step} groups a step)"]
    if args.steps_to_gain is not None:
        out["steps_to_gain"] = args.steps_to_gain
        out["predicted_s_to_gain"] = round(args.steps_to_gain * step_s, 1)
        lines.append(f"to the gain: {args.steps_to_gain:g} steps x {step_s:.1f} s = {args.steps_to_gain * step_s:,.0f} s "
                     f"({args.steps_to_gain * step_s / 3600:.2f} h) predicted, assuming the shapes study's "
                     "steps-to-gain holds at full size")
    lines += ["", "residency (peak GiB by phase; fits 24/48/80 GB):"]
    for name, phases in variants.items():
        verdict = report.verdicts(phases)
        lines.append(f"  {name:<44} " + " ".join(f"{p.name} {p.peak / GIB:6.2f}" for p in phases)
                     + "  | " + "; ".join(f"{c}: {v}" for c, v in verdict.items()))
        out["residency"][name] = {"phases": report.phase_rows(phases, u), "fits": report.fits(phases),
                                  "verdicts": verdict}
    if qwen_image:  # the 141 GB card and 8 x 80 GB with FSDP (qwen_image.py)
        from .qwen_image import NUM_BLOCKS, plan_lines

        more, plans = plan_lines(variants, weights, NUM_BLOCKS[args.shape], config.prompts.per_step, u)
        lines += more
        out.update(plans)
    return "\n".join(lines), out


def grpo_residency(phases, weights) -> dict:
    """The same step with the text encoders and the scorer on the GPU throughout or visiting only their phase
    (offload_text_encoders; reward.keep_loaded = false)."""
    def variant(encoders_resident: bool, scorer_resident: bool):
        out = []
        for p in phases:
            gone = {}
            if not encoders_resident and p.name != "encode":
                gone["text encoders"] = weights["text encoders"]
            if not scorer_resident and p.name != "reward":
                gone["scorer"] = weights["scorer"]
            out.append(p.without(gone))
        return out

    def phased(phases):  # model.offload_transformer: the transformer and its LoRA leave while T5 or the scorer work
        return [p.without({"transformer": weights["transformer"]}) if p.name in ("encode", "reward") else p
                for p in phases]

    return {"text encoders offloaded, scorer resident": variant(False, True),
            "text encoders offloaded, scorer offloaded": variant(False, False),
            "text encoders resident, scorer resident": variant(True, True),
            "text encoders resident, scorer offloaded": variant(True, False),
            "phases apart (all offloaded, transformer off while encoding and scoring)": phased(variant(False, False))}


def main(argv=None) -> int:
    args = parse(argv)
    problem = versions.problem("torch", DRYRUN_TORCH)
    if problem is not None:
        print(f"error: the dry runs need a newer torch than the rest of the pack: {problem}", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)  # fake tensors compute nothing; one thread is the fastest on a shared machine
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        text, out = run(args)
    except Exception as exc:  # noqa: BLE001 (one clear line; --debug for the traceback)
        if args.debug:
            raise
        print(f"dry run failed: {type(exc).__name__}: {exc} (--debug shows the traceback)", file=sys.stderr)
        return 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(text)
    print(f"dry run: {wall:.0f} s wall, {cpu:.0f} s CPU on this machine ({'real' if args.real else 'fake'} tensors)")
    out.update(command="python -m benchmarks.dryrun " + " ".join(sys.argv[1:] if argv is None else argv),
               tensors="real" if args.real else "fake", dryrun_wall_s=round(wall, 1), dryrun_cpu_s=round(cpu, 1))
    if args.json:
        write_text(args.json, json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m training.reward score`: score image files against a prompt, as a table or JSON."""

from __future__ import annotations

import argparse

from ...common.output_file import check_output_file
from .files import print_scores, read_image


def add_parser(sub) -> None:
    p = sub.add_parser("score", help="score images against a prompt",
                       description="Score images with a SpatialScore folder, a Qwen2.5-VL folder (zero-shot) "
                                   "or a shipped scorer name such as 'shapes'.")
    p.add_argument("--model", required=True, help="scorer folder, Qwen2.5-VL folder, or shipped name")
    p.add_argument("--prompt", action="append", required=True,
                   help="the prompt; give it once for all images or once per image, in order")
    p.add_argument("--json", action="store_true", help="print a JSON list of {image, mean, std}")
    p.add_argument("--output", help="also write the JSON list to this file (atomically)")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto")
    p.add_argument("--base-model", default=None, help="override the base model folder of a LoRA scorer")
    p.add_argument("--source", action="append", default=[], metavar="IMAGE",
                   help="edit scoring: the source image the images were edited from (once for all, or once per "
                        "image); --prompt is then the edit instruction and --model an edit scorer (e.g. shapes-edit)")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...; .npy arrays HWC also accepted)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ...common.device import check_device
    from ..scorer import load_scorer, normalise_prompts

    # Everything that can be checked without the model is checked first: a bad call costs no load.
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    check_device(args.device)
    if args.output:  # before the scoring runs (after it, the scores would be lost)
        check_output_file(args.output, "--output", example="scores.json")
    from ..edit.folder import is_edit_scorer

    if args.source or is_edit_scorer(args.model):  # edit scoring (training/reward/edit)
        from .edit import run_score_edit

        return run_score_edit(args)
    images = [read_image(p) for p in args.images]
    prompts = normalise_prompts(args.prompt, len(images))
    dtype = None if args.dtype == "auto" else getattr(torch, args.dtype)
    scorer = load_scorer(args.model, device=args.device, dtype=dtype, batch_size=args.batch_size,
                         base_model=args.base_model)
    print_scores(args, scorer.score(images, prompts))
    return 0

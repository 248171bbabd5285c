"""`python -m training.reward evaluate`: pairwise accuracy of scorers and baselines, in the paper's Table 1 layout.

    python -m training.reward evaluate --model runs/reward/scorer --data runs/shapes --json eval.json
    python -m training.reward evaluate --model A --model B --data pairs.jsonl --baseline-base /models/Qwen2.5-VL-7B

Rows: each --model (a scorer folder, a shipped name, or a plain Qwen2.5-VL folder, which is scored zero-shot),
then the baselines on --baseline-base (default: the base model of the first LoRA scorer, or the base a full
scorer was trained from when its notes name an existing folder): the zero-shot
pointwise judge and the pairwise judge that sees both images, asked in both orders and averaged.
The JSON holds the first model's result at the top level ({"pairwise_accuracy", "pairs", "by_perturbations",
"by_relation"}) and every row under "rows".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="pairwise accuracy on preference pairs (Table 1 layout)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True,
                   help="scorer folder, shipped name, or Qwen2.5-VL folder (repeatable: one table row each)")
    p.add_argument("--data", required=True, help="dataset folder (manifest.jsonl) or pairs .jsonl")
    p.add_argument("--json", help="write the results here (atomically)")
    p.add_argument("--split", default="auto",
                   help="rows of this split; 'auto' (default): 'test' when the data has one, else every row; 'all'")
    p.add_argument("--limit", type=int, default=0, help="evaluate only the first N pairs (0: all)")
    reviews = p.add_mutually_exclusive_group()
    reviews.add_argument("--reviewed-only", action="store_const", const="reviewed-only", dest="reviews",
                         default="default", help="only pairs a reviewer accepted (or swapped) in reviews.jsonl; by "
                                                 "default rejected pairs are dropped and swapped ones swapped")
    reviews.add_argument("--ignore-reviews", action="store_const", const="ignore", dest="reviews",
                         help="every pair as built, whatever reviews.jsonl says")
    p.add_argument("--baseline-base", help="Qwen2.5-VL folder for the zero-shot and pairwise baselines")
    p.add_argument("--no-baselines", action="store_true", help="only the given models")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--base-model", default=None, help="override the base model folder of LoRA scorers")
    p.add_argument("--markdown", help="also write the table to this .md file")
    p.set_defaults(func=run)


def select_pairs(data: str, split: str, limit: int, reviews: str = "default"):
    from ..train.pairs import read_pairs, splits_of

    pairs = read_pairs(data, reviews=reviews)
    if split == "auto":
        split = "test" if "test" in splits_of(pairs) else "all"
    if split != "all":
        pairs = read_pairs(data, split=split, reviews=reviews)
    if limit < 0:
        raise ValueError(f"--limit must be >= 0, got {limit}")
    return (pairs[:limit] if limit else pairs), split


def _row_name(model: str) -> str:
    """A shipped name as is; a folder as its last two parts (runs/x/scorer -> x/scorer)."""
    parts = Path(model).parts
    return "/".join(parts[-2:]) if len(parts) > 1 else model


def _baseline_base(args, first_model) -> str | None:
    if args.no_baselines:
        return None
    if args.baseline_base:
        return args.baseline_base
    config = getattr(first_model, "config", None)
    if first_model.mode == "zero-shot":
        return getattr(first_model, "source", None)
    if config is not None and config.weights == "lora":
        if args.base_model:
            return args.base_model
        return str(config.resolve_base(first_model.source)) if config.base_model else None
    trained_on = (config.notes or {}).get("base") if config is not None else None  # full scorers from `train`
    return trained_on if trained_on and Path(trained_on).is_dir() else None


def check_arguments(args: argparse.Namespace) -> None:
    """What can be refused before anything is evaluated (an evaluation takes minutes to hours): the device, and the
    files the results go to."""
    from ...common.device import check_device
    from ...common.output_file import check_output_file

    check_device(args.device)
    if args.json:
        check_output_file(args.json, "--json", example="eval.json")
    if args.markdown:
        check_output_file(args.markdown, "--markdown", example="eval.md")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ...common.atomic import write_json, write_text
    from ..evaluate import EvalRow, accuracy_report, markdown_table, pointwise_pair_scores
    from ..judges import PairwiseJudge
    from ..scorer import load_scorer

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    check_arguments(args)
    from ..edit.pairs import is_edit_file

    if is_edit_file(args.data):  # pairs lines with a `source` key: edit pairs (training/reward/edit)
        from .edit import run_evaluate_edit

        return run_evaluate_edit(args)
    pairs, split = select_pairs(args.data, args.split, args.limit, getattr(args, "reviews", "default"))  # fails
    # on a malformed file before any model loads
    print(f"{len(pairs)} pairs from {args.data} (split: {split})", file=sys.stderr)
    rows: list[EvalRow] = []
    baseline = None

    def bar(desc):
        return tqdm(total=len(pairs), desc=desc, unit="pair", file=sys.stderr, dynamic_ncols=True)

    for i, name in enumerate(args.model):
        scorer = load_scorer(name, device=args.device, batch_size=args.batch_size, base_model=args.base_model)
        if i == 0:
            baseline = _baseline_base(args, scorer.model)
        with bar(f"{Path(name).name}") as b:
            scores = pointwise_pair_scores(scorer, pairs, progress=b.update)
        kind = "SpatialScore" if scorer.mode == "reward" else "zero-shot (pointwise)"
        rows.append(EvalRow(_row_name(name), kind, name, accuracy_report(pairs, scores.margin)))
        scorer.release()
        del scorer
    if baseline is not None:
        zero_shot = load_scorer(baseline, device=args.device, batch_size=args.batch_size)
        if not any(r.model == baseline and r.kind.startswith("zero-shot") for r in rows):
            with bar("zero-shot pointwise") as b:
                scores = pointwise_pair_scores(zero_shot, pairs, progress=b.update)
            rows.append(EvalRow(_row_name(baseline), "zero-shot (pointwise)", baseline,
                                accuracy_report(pairs, scores.margin)))
        judge = PairwiseJudge(zero_shot.model, batch_size=max(1, args.batch_size // 2))
        with bar("pairwise judge") as b:
            scores = judge.pair_scores(pairs, progress=b.update)
        rows.append(EvalRow(_row_name(baseline), "pairwise judge (both orders)", baseline,
                            accuracy_report(pairs, scores.margin)))
        zero_shot.release()
    table = markdown_table(rows)
    print(table)
    if args.markdown:
        write_text(args.markdown, table + "\n")
    if args.json:
        first = rows[0]
        write_json(args.json, {**first.report, "model": first.model, "data": args.data, "split": split,
                               "rows": [r.to_dict() for r in rows]})
    return 0

"""The edit-pair branches of `python -m training.reward score | train | evaluate` (wired in score.py, train.py and
evaluate.py): the edit stack (../edit/) behind the same commands."""

from __future__ import annotations

import json
import sys


def edit_data(config) -> bool:
    """Whether data.train holds edit pairs (a missing or unreadable file is left to the usual checks)."""
    from ..edit.pairs import is_edit_file
    from ..train.pairs import PairsFileError

    try:
        return bool(config.data.train) and is_edit_file(config.data.train)
    except (PairsFileError, OSError):
        return False


# Checks of the single-image trainer that do not hold for edits: the Qwen2.5-VL edit model has a region head, so
# region grounding (train.grounding_weight) is not tied to the coords backbone here.
EDIT_ALLOWED = ("train.grounding_weight > 0 needs model.backbone = 'coords'",)


def validate_edit(config) -> None:
    from ..train.train_config import ConfigError, validate

    try:
        validate(config)
    except ConfigError as exc:
        lines = str(exc).split("\n  - ")
        kept = [line for line in lines[1:] if not line.startswith(EDIT_ALLOWED)]
        if kept:
            raise ConfigError(lines[0] + "\n  - " + "\n  - ".join(kept)) from None


def run_train_edit(config, args) -> int:
    from ..edit.trainer import load_edit_data, train_edit

    validate_edit(config)
    if args.dry_run:
        train, val = load_edit_data(config)
        print(json.dumps(config.to_dict(), indent=2))
        print(f"{len(train)} training edit pairs, {len(val)} validation edit pairs")
        return 0
    summary = train_edit(config, resume=args.resume, log=lambda m: print(m, file=sys.stderr))
    best = summary.get("best") or {}
    acc = best.get("val_accuracy")
    print(f"edit scorer: {summary['scorer']} (step {best.get('step')}"
          + (f", validation accuracy {acc:.4f})" if acc is not None else ")"))
    print(f"metrics: {summary['metrics']}  curves: {summary['curves']}")
    return 0


def run_score_edit(args) -> int:
    from ..edit.folder import resolve_edit_path
    from ..edit.scorer import check_same_sizes, load_edit_scorer, match_sources, normalise_instructions
    from .files import print_scores, read_image

    resolve_edit_path(args.model)  # a single-image scorer with --source: say so before reading anything
    if not args.source:
        raise ValueError("--source: edit scoring needs the source image the images were edited from")
    images = [read_image(p) for p in args.images]
    sources = match_sources([read_image(p) for p in args.source], len(images))
    check_same_sizes(sources, images, match_sources(list(args.source), len(images)), list(args.images))
    normalise_instructions(args.prompt, len(images))
    scorer = load_edit_scorer(args.model, device=args.device, batch_size=args.batch_size)
    print_scores(args, scorer.score(sources, images, args.prompt), ("edit regions (0..1)", _boxes))
    return 0


def _boxes(row: dict) -> str:
    return " ".join("[" + ",".join(f"{v:.2f}" for v in b) + "]" for b in row["regions"]) or "none"


def run_evaluate_edit(args) -> int:
    from tqdm import tqdm

    from ...common.atomic import write_json, write_text
    from ..edit.evaluate import edit_report, format_report
    from ..edit.pairs import load_edit_images, read_edit_pairs
    from ..edit.scorer import load_edit_scorer

    pairs = read_edit_pairs(args.data)
    split = args.split
    if split == "auto":
        split = "test" if any(p.split == "test" for p in pairs) else "all"
    if split != "all":
        pairs = read_edit_pairs(args.data, split=split)
    if args.limit < 0:
        raise ValueError(f"--limit must be >= 0, got {args.limit}")
    pairs = pairs[: args.limit] if args.limit else pairs
    print(f"{len(pairs)} edit pairs from {args.data} (split: {split})", file=sys.stderr)
    results, texts = [], []
    for name in args.model:
        scorer = load_edit_scorer(name, device=args.device, batch_size=args.batch_size)
        margins, regions = [], []
        with tqdm(total=len(pairs), desc=str(name), unit="pair", file=sys.stderr, dynamic_ncols=True) as bar:
            for start in range(0, len(pairs), 32):
                chunk = pairs[start:start + 32]
                imgs = [load_edit_images(p) for p in chunk]
                res = scorer.score([s for s, _, _ in imgs] * 2, [c for _, c, _ in imgs] + [r for _, _, r in imgs],
                                   [p.instruction for p in chunk] * 2)
                n = len(chunk)
                margins += (res.mean[:n] - res.mean[n:]).tolist()
                regions += res.regions[:n]
                bar.update(n)
        report = edit_report(pairs, margins, regions)
        results.append({"model": name, **report})
        texts.append(format_report(report, name))
        scorer.release()
    text = "\n".join(texts)
    print(text)
    if args.markdown:
        write_text(args.markdown, text + "\n")
    if args.json:
        write_json(args.json, {**results[0], "data": args.data, "split": split, "rows": results})
    return 0

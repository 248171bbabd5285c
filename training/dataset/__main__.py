"""python -m training.dataset build | check | stats | review  (see docs/dataset.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .edit import WORLD as EDIT_WORLD
from .worlds import WORLDS


def _splits(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three comma-separated fractions like 0.8,0.1,0.1, got {text!r}") from None
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected three fractions (train,val,test), got {len(parts)}")
    return parts


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object like '{\"max_sequence_length\": 256}'")
    return value


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.dataset", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build or resume a dataset folder")
    b.add_argument("--out", required=True, type=Path, help="dataset folder (created; resumed if it exists)")
    b.add_argument("--world", choices=sorted(WORLDS) + [EDIT_WORLD],
                   help="default: shapes, or general with --generator; shapes-edit: edit pairs (docs/edit_reward.md)")
    b.add_argument("--pairs", type=int, default=1000)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--generator", action="append", default=[], metavar="FOLDER",
                   help="local diffusers pipeline folder; repeat for several (used round-robin by scene)")
    b.add_argument("--pairs-per-scene", type=int, default=2)
    b.add_argument("--size", type=int, default=64, help="shapes world canvas in pixels")
    b.add_argument("--height", type=int, default=1024)
    b.add_argument("--width", type=int, default=1024)
    b.add_argument("--steps", type=int, default=28)
    b.add_argument("--guidance", type=float, default=3.5)
    b.add_argument("--batch-size", type=int, default=4)
    b.add_argument("--device", default="auto")
    b.add_argument("--prompt-style", choices=["plain", "short", "long", "mixed", "shapes-varied"])
    b.add_argument("--splits", type=_splits, default=(0.8, 0.1, 0.1), help="train,val,test fractions")
    b.add_argument("--different-noise", action="store_true", help="perturbed image from other noise than perfect")
    b.add_argument("--no-oracle", action="store_true", help="keep shapes pairs the oracle does not confirm")
    b.add_argument("--verify-scorer", metavar="SCORER", help="drop pairs this scorer does not prefer correctly")
    b.add_argument("--verify-margin", type=float, default=0.0)
    b.add_argument("--paraphrase-model", metavar="FOLDER", help="local transformers causal LM folder")
    b.add_argument("--paraphrase-url", metavar="URL", help="OpenAI-compatible endpoint, e.g. http://host:8000/v1")
    b.add_argument("--paraphrase-api-model", default="default")
    b.add_argument("--pipeline-kwargs", type=_json_object, default={}, metavar="JSON")
    b.add_argument("--chunk", type=int, default=256, help="pairs per generate/verify/append round")
    b.add_argument("--max-candidates", type=int, help="give up after this many candidates (default 20 x pairs + 100)")
    b.add_argument("--keep-loaded", action="store_true", help="keep all models on the device at once")
    b.add_argument("--no-progress", action="store_true")
    b.add_argument("--json", action="store_true", help="print the summary as JSON")

    c = sub.add_parser("check", help="judge a shapes image against a plain-form prompt with the pixel oracle")
    c.add_argument("--world", default="shapes", choices=sorted(WORLDS) + [EDIT_WORLD])
    c.add_argument("--prompt", "--instruction", dest="prompt", help="the prompt (plain form); shapes-edit: the instruction")
    c.add_argument("--source", type=Path, help="shapes-edit: the source image IMAGE was edited from")
    c.add_argument("image", nargs="?", type=Path)
    c.add_argument("--cases", type=Path, metavar="FILE.jsonl", help='lines {"image", "prompt"}; paths relative to it')
    c.add_argument("--json", action="store_true")

    s = sub.add_parser("stats", help="summarise a dataset folder")
    s.add_argument("folder", type=Path)
    s.add_argument("--oracle", action="store_true", help="re-judge every shapes pair from its image files")
    s.add_argument("--json", action="store_true")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--preview", type=Path, metavar="PNG", help="also draw a contact sheet of some pairs")
    s.add_argument("--preview-pairs", type=int, default=8)

    r = sub.add_parser("review", help="review the pairs in a browser, by keyboard; verdicts go to DIR/reviews.jsonl")
    r.add_argument("folder", type=Path, help="dataset folder (with manifest.jsonl)")
    r.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)")
    r.add_argument("--only", choices=["doubtful", "unreviewed", "all"], default="unreviewed",
                   help="which pairs the page starts with (it can switch): unreviewed (default), doubtful (an "
                        "automatic check disagrees, is missing, or the scorer margin is small), or all")
    r.add_argument("--split", help="only the pairs of this split (default: every split)")
    r.add_argument("--reviewer", help="your name, stored with each verdict")
    r.add_argument("--doubt-margin", type=float, default=0.5,
                   help="a pair whose stored scorer margin is below this is doubtful")
    r.add_argument("--scorer", metavar="SCORER", help="also show this scorer's margin on each pair, computed when "
                                                      "the pair is opened (a scorer folder or shipped name)")
    r.add_argument("--device", default=None, help="device of --scorer (default: cuda if available)")
    return parser


def _scorer_loader():
    """training.reward.load_scorer, for --verify-scorer and review --scorer: this command line is where the dataset
    stage is handed the reward's scorer (torch and transformers load only then)."""
    from ..reward import load_scorer

    return load_scorer


def cmd_review(args) -> int:
    from .review.app import ReviewApp
    from .review.server import serve

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be 0..65535, got {args.port}")
    from ..common.device import check_device

    check_device(args.device)  # --scorer's device: `cuda` on a machine without one is one line, not a traceback
    app = ReviewApp(args.folder, split=args.split, only=args.only, reviewer=args.reviewer,
                    doubt_margin=args.doubt_margin, scorer=args.scorer, device=args.device,
                    load_scorer=_scorer_loader() if args.scorer else None)
    from .manifest import report_problems

    report_problems(app.folder / "manifest.jsonl", app.rows.problems)
    try:
        serve(app, args.port)
    except KeyboardInterrupt:
        print("stopped; every verdict is in " + str(app.store.path), file=sys.stderr)
    return 0


def cmd_build(args) -> int:
    from ..common.device import check_device

    check_device(args.device)  # the generators' and --verify-scorer's device, before any of them loads
    if args.world == EDIT_WORLD:
        from .edit.cli import cmd_build_edit

        return cmd_build_edit(args)
    from .build import build
    from .config import BuildConfig
    from .summary import format_summary

    cfg = BuildConfig(
        out=args.out, world=args.world, pairs=args.pairs, seed=args.seed, generators=args.generator,
        pairs_per_scene=args.pairs_per_scene, image_size=args.size, height=args.height, width=args.width,
        steps=args.steps, guidance=args.guidance, batch_size=args.batch_size, device=args.device,
        prompt_style=args.prompt_style, splits=args.splits, same_noise=not args.different_noise,
        verify_oracle=not args.no_oracle, verify_scorer=args.verify_scorer, verify_margin=args.verify_margin,
        paraphrase_model=args.paraphrase_model, paraphrase_url=args.paraphrase_url,
        paraphrase_api_model=args.paraphrase_api_model, pipeline_kwargs=args.pipeline_kwargs,
        chunk_pairs=args.chunk, max_candidates=args.max_candidates, keep_loaded=args.keep_loaded, progress=not args.no_progress)
    summary = build(cfg, log=lambda m: print(m, file=sys.stderr),
                    load_scorer=_scorer_loader() if args.verify_scorer else None)
    print(json.dumps(summary, indent=2) if args.json else f"dataset: {summary['out']}\n" + format_summary(summary))
    return 0 if summary["complete"] else 1


def _verdict_lines(verdict) -> str:
    lines = [f"{'holds' if h else 'FAILS'}  {t}" for t, h in verdict.relations]
    return "\n".join(lines + [f"all: {'yes' if verdict.all else 'no'}"])


def cmd_check(args, parser) -> int:
    from .oracle import judge

    if args.world == EDIT_WORLD:
        from .edit.cli import cmd_check_edit

        return cmd_check_edit(args, parser)
    if args.world != "shapes":
        raise ValueError(f"world {args.world!r} has no pixel oracle; only 'shapes' can be checked")
    if args.cases is not None:
        if args.image is not None or args.prompt is not None:
            parser.error("give either --cases FILE or --prompt TEXT IMAGE, not both")
        return _check_cases(args.cases, args.json)
    if args.image is None or args.prompt is None:
        parser.error("check needs --prompt TEXT and an IMAGE (or --cases FILE.jsonl)")
    verdict = judge(args.image, args.prompt)
    print(json.dumps(verdict.to_json()) if args.json else _verdict_lines(verdict))
    return 0


def _check_cases(path: Path, as_json: bool) -> int:
    from .cases import check_cases
    from .oracle import judge

    return check_cases(path, as_json, ("image", "prompt"), '{"image": path, "prompt": text}',
                       lambda case, folder: judge(folder / case["image"], case["prompt"]),
                       {"relations": [], "all": False}, _verdict_lines)


def cmd_stats(args) -> int:
    from .edit.cli import cmd_stats_edit, is_edit_folder
    from .stats import dataset_stats
    from .summary import format_summary

    if args.preview:  # before the oracle pass, which may take minutes
        from ..common.output_file import check_output_file

        check_output_file(args.preview, "--preview", example="preview.png")
    if is_edit_folder(args.folder):
        return cmd_stats_edit(args)
    summary = dataset_stats(args.folder, oracle=args.oracle, progress=not args.no_progress)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    if args.preview:
        from .manifest import load_manifest
        from .preview import preview_sheet

        rows = load_manifest(args.folder, absolute=False, warn=False)
        step = max(1, len(rows) // max(1, args.preview_pairs))
        path = preview_sheet(args.folder, rows[::step][: args.preview_pairs], args.preview)
        print(f"preview: {path}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            return cmd_build(args)
        if args.command == "check":
            return cmd_check(args, parser)
        if args.command == "review":
            return cmd_review(args)
        return cmd_stats(args)
    except (ValueError, OSError, RuntimeError) as exc:  # our errors name the problem; no traceback needed
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

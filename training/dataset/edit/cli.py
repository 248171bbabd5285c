"""The shapes-edit branches of `python -m training.dataset build | check` (wired in training/dataset/__main__.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def cmd_build_edit(args) -> int:
    from .build import build_edit, format_summary

    if args.generator:
        raise ValueError("--world shapes-edit renders its own images; it takes no --generator")
    summary = build_edit(args.out, args.pairs, seed=args.seed, size=args.size, splits=args.splits,
                         progress=not args.no_progress, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _lines(verdict) -> str:
    out = [f"instruction: {verdict.instruction}",
           f"instruction done: {'yes' if verdict.instruction_done else 'no'}"]
    out += [f"  FAILS  {p}" for p in verdict.problems]
    out += [f"other changes: {'; '.join(verdict.other_changes) if verdict.other_changes else 'none'}",
            f"followed: {'yes' if verdict.followed else 'no'}"]
    return "\n".join(out)


def cmd_check_edit(args, parser) -> int:
    from .oracle import judge_edit

    if args.cases is not None:
        if args.image is not None or args.prompt is not None or args.source is not None:
            parser.error("give either --cases FILE or --instruction TEXT --source SRC IMAGE, not both")
        return _check_cases(args.cases, args.json)
    if args.image is None or args.prompt is None or args.source is None:
        parser.error("check --world shapes-edit needs --instruction TEXT, --source SOURCE_IMAGE and the edited IMAGE "
                     "(or --cases FILE.jsonl)")
    for name, path in (("--source", args.source), ("IMAGE", args.image)):
        if Path(path).is_dir():
            raise ValueError(f"{name}: {path} is a folder, not an image file")
        if not Path(path).is_file():
            raise FileNotFoundError(f"{name}: image file not found: {path}")
    verdict = judge_edit(args.prompt, args.source, args.image)
    print(json.dumps(verdict.to_json()) if args.json else _lines(verdict))
    return 0


def _check_cases(path: Path, as_json: bool) -> int:
    from ..cases import check_cases
    from .oracle import judge_edit

    return check_cases(path, as_json, ("instruction", "source", "image"),
                       '{"instruction": text, "source": path, "image": path}',
                       lambda case, folder: judge_edit(case["instruction"], folder / case["source"],
                                                       folder / case["image"]),
                       {"followed": False}, _lines)


def is_edit_folder(folder: Path) -> bool:
    try:
        return json.loads((Path(folder) / "build.json").read_text(encoding="utf-8"))["identity"]["world"] == "shapes-edit"
    except (OSError, ValueError, KeyError, TypeError):
        return False


def cmd_stats_edit(args) -> int:
    """Counts by split, edit kind and mistake; with --oracle, every pair re-judged from its image files."""
    from tqdm import tqdm

    from ..manifest import read_jsonl, report_problems
    from .build import REQUIRED, summarize
    from .oracle import judge_edit

    read = read_jsonl(Path(args.folder) / "manifest.jsonl", REQUIRED)
    report_problems(Path(args.folder) / "manifest.jsonl", read.problems)
    summary = {**summarize(read.rows), "out": str(args.folder)}
    if args.oracle:
        wrong = 0
        for row in tqdm(read.rows, disable=args.no_progress, desc="oracle", unit="pair"):
            src = Path(args.folder) / row["source"]
            good = judge_edit(row["instruction"], src, Path(args.folder) / row["chosen"]).followed
            bad = judge_edit(row["instruction"], src, Path(args.folder) / row["rejected"]).followed
            wrong += int(not good or bad)
        summary["oracle_disagreements"] = wrong
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"dataset: {summary['out']}\npairs: {summary['pairs']}")
        for key in ("by_split", "by_edit_kind", "by_mistake"):
            print(f"{key.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in summary[key].items()))
        if "oracle_disagreements" in summary:
            print(f"pairs the pixel oracle now disagrees with: {summary['oracle_disagreements']}")
    return 0

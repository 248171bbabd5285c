"""`python -m training.dataset check --cases FILE.jsonl`: one oracle verdict per line of a cases file, in order, for
the shapes world and the shapes-edit world alike (a bad line is reported and answered, never skipped)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path


def check_cases(path: Path, as_json: bool, fields: tuple[str, ...], expected: str, judge_case: Callable,
                failed: dict, lines: Callable) -> int:
    """Judge every case of `path` (an object with the string `fields`, paths relative to the file):
    `judge_case(case, folder)` -> a verdict with to_json(); printed as JSON lines or as `lines(verdict)`. A bad line
    prints its error on stderr and `failed` plus the error in its place; returns 1 if any line failed, else 0."""
    if not path.is_file():
        raise FileNotFoundError(f"cases file not found: {path}")
    failures = 0
    for line_no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            case = json.loads(raw)
            if not isinstance(case, dict) or not all(isinstance(case.get(k), str) for k in fields):
                raise ValueError(f"expected an object {expected}")
            verdict = judge_case(case, path.parent)
            result = verdict.to_json()
        except (ValueError, OSError) as exc:  # bad line: report, keep the output aligned with the input
            failures += 1
            print(f"error: {path}:{line_no}: {exc}", file=sys.stderr)
            result = {**failed, "error": str(exc)}
        if as_json:
            print(json.dumps(result), flush=True)
        else:
            print(f"[{line_no}] " + (result.get("error") or lines(verdict)), flush=True)
    return 1 if failures else 0

"""The manifest: an append-only JSONL file, one row per pair, that survives being killed mid-write.

Rows are appended as whole lines with one `os.write` on an O_APPEND descriptor and fsynced per batch. Readers
skip and report (with line numbers) lines that are not valid rows; a torn last line (a write cut short) is
reported and cut off before the next append, so new rows never glue onto a fragment.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "manifest.jsonl"
DROPPED = "dropped.jsonl"
BUILD_JSON = "build.json"
REQUIRED_KEYS = ("id", "prompt", "perturbed_prompt", "chosen", "rejected", "perturbations", "changed", "generator",
                 "seeds", "split")
ROW_TYPES = {"id": str, "prompt": str, "perturbed_prompt": str, "chosen": str, "rejected": str, "perturbations": int,
             "changed": list, "generator": str, "seeds": dict, "split": str}


class ManifestError(ValueError):
    """A manifest that cannot be used at all (missing file, not a dataset folder)."""


@dataclass
class JsonlRead:
    rows: list[dict] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)  # 1-based line of each row
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, what is wrong)
    good_bytes: int = 0  # length of the file up to the end of its last complete line
    torn_tail: bool = False


def iter_jsonl(path: str | os.PathLike, required: tuple[str, ...] = ("id",)):
    """Yield (line number, row or None, raw line bytes, problem or None) for each non-empty line; a last line
    without its newline (a write cut short) comes with row None. Streams: a big manifest is never held twice."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):  # never trust an unterminated line, even if it parses
                yield line_no, None, raw, "incomplete last line (a write was interrupted); ignored"
                return
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield line_no, None, raw, f"not valid JSON ({getattr(exc, 'msg', exc)})"
                continue
            if not isinstance(row, dict):
                yield line_no, None, raw, f"expected a JSON object, got {type(row).__name__}"
                continue
            missing = [k for k in required if k not in row]
            if missing:
                yield line_no, None, raw, f"missing key(s): {', '.join(missing)}"
                continue
            wrong = [f"{k} should be {ROW_TYPES[k].__name__}" for k in required
                     if k in ROW_TYPES and not isinstance(row[k], ROW_TYPES[k])]
            if wrong:
                yield line_no, None, raw, f"wrong type(s): {', '.join(wrong)}"
                continue
            yield line_no, row, raw, None


def read_jsonl(path: str | os.PathLike, required: tuple[str, ...] = ("id",)) -> JsonlRead:
    """Every valid row of a JSONL file; bad lines are listed in `problems`, never raised."""
    out = JsonlRead()
    path = Path(path)
    if not path.exists():
        return out
    out.good_bytes = path.stat().st_size
    for line_no, row, raw, problem in iter_jsonl(path, required):
        if problem is not None:
            out.problems.append((line_no, problem))
            if not raw.endswith(b"\n"):
                out.torn_tail = True
                out.good_bytes -= len(raw)
            continue
        out.rows.append(row)
        out.line_numbers.append(line_no)
    return out


def report_problems(path: str | os.PathLike, problems: list[tuple[int, str]], stream=None) -> None:
    stream = stream or sys.stderr
    for line_no, message in problems:
        print(f"warning: {path}:{line_no}: {message}; skipped", file=stream)


def dumps_row(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


class JsonlAppender:
    """Append rows to a JSONL file; cuts off a torn last line first. Use as a context manager."""

    def __init__(self, path: str | os.PathLike, good_bytes: int | None = None):
        self.path = Path(path)
        if good_bytes is not None and self.path.exists() and self.path.stat().st_size > good_bytes:
            with open(self.path, "rb+") as f:
                f.truncate(good_bytes)
                os.fsync(f.fileno())
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, rows: list[dict]) -> None:
        if not rows:
            return
        data = "".join(dumps_row(r) + "\n" for r in rows).encode("utf-8")
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def load_manifest(folder: str | os.PathLike, split: str | None = None, absolute: bool = True,
                  warn: bool = True) -> list[dict]:
    """The pairs of a dataset folder (optionally one split), image paths made absolute; bad lines are reported
    on stderr with their line numbers and skipped."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ManifestError(f"no {MANIFEST} in {folder} (is it a dataset folder written by "
                            "`python -m training.dataset build`?)")
    read = read_jsonl(path, REQUIRED_KEYS)
    if warn:
        report_problems(path, read.problems)
    rows = [r for r in read.rows if split is None or r.get("split") == split]
    if absolute:
        rows = [dict(r, chosen=str(folder / r["chosen"]), rejected=str(folder / r["rejected"])) for r in rows]
    return rows

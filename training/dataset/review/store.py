"""The verdict store: DIR/reviews.jsonl, append-only, one JSON line per human verdict. The manifest is never touched.

A line is {"id": <manifest row id>, "verdict": "accept"|"reject"|"swap"|"skip"|"undo", "time": <UTC ISO-8601>,
"reviewer": <name, only when given>}. A row's verdict is the fold of its lines in file order: accept, reject, swap
and skip push a verdict, undo pops the newest one still standing (so undo twice goes back two steps).

Why this is safe with two browser tabs, two servers (CLI + ComfyUI) or a killed server:
- each line is written with ONE os.write on an O_APPEND descriptor while holding an exclusive flock on the file,
  so lines from several processes never interleave;
- a line cut short by a kill (no newline) is ignored by readers; the next writer first ends it with a newline,
  so the fragment becomes one bad line that readers skip, and is never glued onto a new verdict. Nothing written
  is ever rewritten or truncated: at most the verdict being written is lost.
- reviews.jsonl must be a regular file of the folder: a symbolic link (or a FIFO, a device, a folder) there is
  refused when the server starts, and the file is opened with O_NOFOLLOW for every append, so verdicts never go
  into a file the link points at.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

try:  # POSIX; on Windows the in-process lock below is all we have (one server per dataset there)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

REVIEWS = "reviews.jsonl"
DECISIONS = ("accept", "reject", "swap")  # verdicts that decide a pair
VERDICTS = DECISIONS + ("skip",)  # what a reviewer can give; "undo" cancels the newest one
UNDO = "undo"


class ReviewError(ValueError):
    """A verdict that cannot be recorded (unknown verdict, unknown row)."""


class ReviewFileError(ReviewError):
    """reviews.jsonl itself cannot take verdicts: a symbolic link, or not a regular file."""


NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # 0 on Windows, where the lstat check below is all there is
NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO put there is opened without waiting for a writer, then refused
BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def check_reviews_file(path: Path) -> None:
    """Refuse a reviews.jsonl that is a symbolic link or not a regular file (absent is fine: the first verdict
    creates it)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise ReviewFileError(f"{path} is a symbolic link: verdicts are never written through a link (they would go "
                              f"into {os.path.realpath(path)}); replace it with a plain file or remove it")
    if not stat.S_ISREG(mode):
        raise ReviewFileError(f"{path} is not a regular file: move it away so the verdicts can be written there")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _valid(record) -> bool:
    return (isinstance(record, dict) and isinstance(record.get("id"), str) and record.get("verdict") in (*VERDICTS, UNDO)
            and (record.get("reviewer") is None or isinstance(record.get("reviewer"), str)))


@dataclass
class Fold:
    """Every row's verdict stack, built from the file's lines in order."""
    stacks: dict[str, list[dict]] = field(default_factory=dict)
    lines: int = 0  # valid lines read
    bad_lines: list[int] = field(default_factory=list)  # 1-based line numbers skipped (torn or not a verdict)

    def add(self, record: dict) -> None:
        stack = self.stacks.setdefault(record["id"], [])
        if record["verdict"] == UNDO:
            if stack:
                stack.pop()
        else:
            stack.append(record)
        if not stack:
            del self.stacks[record["id"]]

    def verdict(self, row_id: str) -> str | None:
        stack = self.stacks.get(row_id)
        return stack[-1]["verdict"] if stack else None

    def verdicts(self) -> dict[str, str]:
        """row id -> standing verdict (accept, reject, swap or skip)."""
        return {k: s[-1]["verdict"] for k, s in self.stacks.items()}


class VerdictStore:
    """Reads and appends DIR/reviews.jsonl. `refresh()` reads only what other writers appended since last time."""

    def __init__(self, folder: str | os.PathLike, writing: bool = True):
        self.path = Path(folder) / REVIEWS
        self.writing = writing
        if writing:  # readers (stats, training) may read through a link; a server that appends may not
            check_reviews_file(self.path)
        self.fold = Fold()
        self._offset = 0  # bytes of the file consumed into `fold` (always at a line end)
        self._line_no = 0
        self._lock = threading.Lock()  # one server, many request threads
        self.refresh()

    # -- reading -------------------------------------------------------------------------------------------
    def refresh(self) -> Fold:
        with self._lock:
            self._read_new()
            return self.fold

    def _read_new(self) -> None:
        flags = os.O_RDONLY | BINARY | (NOFOLLOW | NONBLOCK if self.writing else 0)
        try:
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            return
        except OSError:  # a link or a FIFO put there after the start: not read; the next append names it
            if self.writing:
                return
            raise
        with open(fd, "rb") as f:
            if self.writing and not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # an unterminated tail (being written, or torn) waits for its newline
        for raw in data[:end].splitlines():
            self._line_no += 1
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                record = None
            if _valid(record):
                self.fold.add(record)
                self.fold.lines += 1
            else:
                self.fold.bad_lines.append(self._line_no)
        self._offset += end

    # -- writing -------------------------------------------------------------------------------------------
    def append(self, row_id: str, verdict: str, reviewer: str | None = None) -> dict:
        """Record one verdict (or "undo") and return the line written."""
        if verdict not in (*VERDICTS, UNDO):
            raise ReviewError(f"unknown verdict {verdict!r}: expected one of {', '.join((*VERDICTS, UNDO))}")
        if not isinstance(row_id, str) or not row_id:
            raise ReviewError("a verdict needs the row id (the manifest's 'id')")
        record = {"id": row_id, "verdict": verdict, "time": now_iso()}
        if reviewer:
            record["reviewer"] = str(reviewer)[:100]
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            try:  # O_NOFOLLOW: a link put there after the start is refused, not followed; O_NONBLOCK: nor a FIFO
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | NOFOLLOW | NONBLOCK | BINARY, 0o644)
            except OSError as exc:
                check_reviews_file(self.path)  # names a link or a FIFO or a folder ...
                raise ReviewFileError(f"cannot write {self.path}: {exc.strerror}") from None  # ... or says why
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise ReviewFileError(f"{self.path} is not a regular file: move it away so the verdicts can be "
                                          "written there")
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                size = os.fstat(fd).st_size
                if size and os.lseek(fd, size - 1, os.SEEK_SET) >= 0 and os.read(fd, 1) != b"\n":
                    line = b"\n" + line  # end a torn fragment so it stays one skipped line
                os.write(fd, line)  # one write: a line is whole or (killed mid-write) a torn tail
                os.fsync(fd)
            finally:
                os.close(fd)  # closing releases the flock
            self._read_new()
        return record


def read_verdicts(folder: str | os.PathLike, warn: bool = True) -> dict[str, str] | None:
    """row id -> standing verdict for a dataset folder; None when it has no reviews.jsonl (nobody reviewed)."""
    path = Path(folder) / REVIEWS
    if not path.is_file():
        return None
    fold = VerdictStore(folder, writing=False).fold
    if warn and fold.bad_lines:
        shown = ", ".join(map(str, fold.bad_lines[:10]))
        print(f"warning: {path}: skipped {len(fold.bad_lines)} line(s) that are not verdicts (line {shown}); "
              "a torn last line is what a killed review server leaves", file=sys.stderr)
    return fold.verdicts()


def review_counts(verdicts: dict[str, str] | None, row_ids) -> dict:
    """How many of `row_ids` stand accepted, rejected, swapped, skipped or unreviewed."""
    counts = {"accept": 0, "reject": 0, "swap": 0, "skip": 0, "unreviewed": 0}
    for row_id in row_ids:
        counts[(verdicts or {}).get(row_id) or "unreviewed"] += 1
    counts["reviewed"] = counts["accept"] + counts["reject"] + counts["swap"]
    return counts

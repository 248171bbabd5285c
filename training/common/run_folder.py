"""An output folder a training run may write into: empty, or one of this stage's own runs; one run at a time.

A run marks its folder with `.spatialscore-run.json` naming the stage. A folder holding anything else (a model
folder's config.json, someone's scorer/, stray files) is refused with the names of what was found, so that a
mistyped --out never overwrites or deletes a user's files. The lock (`.lock`, flock / msvcrt) makes a second run
on the same folder fail at once instead of interleaving its metrics and checkpoints with the first.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from .atomic import write_json

MARKER = ".spatialscore-run.json"
LOCK = ".lock"


class RunFolderError(ValueError):
    """An output folder this run must not write into; the message names the folder and what it holds."""


def _marker_stage(out: Path) -> str | None:
    try:
        data = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("stage") if isinstance(data, dict) else None


def check_run_folder(out: str | os.PathLike, stage: str, legacy_run: Callable[[Path], bool] | None = None) -> Path:
    """Refuse `out` unless it is missing, empty or a `stage` run; creates it if missing, writes nothing else.

    `legacy_run(out)` recognises runs written before the marker existed (e.g. complete checkpoints of the stage).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"output folder {out} is a file, not a folder; choose a new or empty folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"output folder {out} cannot be created: {exc.strerror or exc}") from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise RunFolderError(f"output folder {out} is not writable")
    stage_found = _marker_stage(out)
    if stage_found == stage:
        return out
    entries = sorted(p.name for p in out.iterdir() if p.name != LOCK)
    if stage_found is not None:
        raise RunFolderError(f"output folder {out} holds a {stage_found} run, not a {stage} run; choose another "
                             "--out")
    if entries and not (legacy_run is not None and legacy_run(out)):
        shown = ", ".join(entries[:6]) + (f" and {len(entries) - 6} more" if len(entries) > 6 else "")
        raise RunFolderError(f"output folder {out} is not empty and is not a {stage} run (found {shown}); nothing "
                             "was changed: choose a new or empty folder")
    return out


def claim_run_folder(out: str | os.PathLike, stage: str, legacy_run: Callable[[Path], bool] | None = None) -> Path:
    """`check_run_folder`, then mark `out` as a `stage` run."""
    out = check_run_folder(out, stage, legacy_run)
    if _marker_stage(out) != stage:
        write_json(out / MARKER, {"stage": stage})
    return out


@contextlib.contextmanager
def exclusive_lock(out: str | os.PathLike, what: str, error: type[Exception] = RunFolderError) -> Iterator[None]:
    """Hold `out/.lock` for the block; if another process holds it, raise `error` at once (never wait)."""
    f = open(Path(out) / LOCK, "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            try:
                import fcntl
            except ImportError:  # Windows
                import msvcrt

                msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise error(f"another {what} is writing {out} right now (its {LOCK} is held); wait for it to finish "
                        "or choose another --out") from exc
        yield
    finally:
        f.close()


@contextlib.contextmanager
def owned_run_folder(out: str | os.PathLike, stage: str, what: str, main: bool = True,
                     legacy_run: Callable[[Path], bool] | None = None) -> Iterator[None]:
    """Claim and lock `out` for the block (main process only; the others write nothing outside checkpoints)."""
    if not main:
        yield
        return
    check_run_folder(out, stage, legacy_run)  # before the lock file: a refused folder is left as it was
    with exclusive_lock(out, what):
        claim_run_folder(out, stage, legacy_run)
        yield

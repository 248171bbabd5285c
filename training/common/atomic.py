"""Write files so that a reader or a crash never sees a half-written one: temp name, fsync, rename."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from .output_file import refuse_to_replace

_TEMP_HEX = 8  # hex digits of a temp name's random part


def is_temp_name(name: str, of: str) -> bool:
    """Whether `name` is one of our temp names for a file or folder called `of` (what a kill mid-write leaves)."""
    head, tail = f".{of}.", ".tmp"
    middle = name[len(head):-len(tail)] if name.startswith(head) and name.endswith(tail) else ""
    return len(middle) == _TEMP_HEX and all(c in "0123456789abcdef" for c in middle)


def _fresh_name(path: Path, create) -> Path:
    """Create `.{name}.<random>.tmp` next to `path` with `create` (exclusive). Unlike tempfile's mkstemp/mkdtemp
    (mode 0600/0700), the result gets the usual permissions under the process umask, as the final file should."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(_TEMP_HEX // 2)}.tmp")
        try:
            create(tmp)
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def usual_permissions(path: Path) -> None:
    """Give `path` (and, for a folder, everything in it) the permissions a fresh file gets under the umask.

    Why: safetensors' save_file (and save_pretrained, which uses it) recreates its file with mode 0600 whatever
    the umask, so a ComfyUI running under another account could not read the LoRA or scorer we wrote.
    """
    mask = _umask()
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        if p.is_symlink():
            continue
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it is renamed onto `path`, on error removed.

    Only a regular file at `path` is replaced: a folder, symbolic link, FIFO or device node there is refused
    (OutputPathError, a ValueError), before the caller writes and again before the rename.
    """
    path = Path(path)
    refuse_to_replace(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _fresh_name(path, lambda p: p.open("x").close())
    try:
        yield tmp_path
        usual_permissions(tmp_path)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        refuse_to_replace(path)  # something may have appeared there while the caller wrote
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; on success it replaces `path` as a whole.

    Used for scorer folders and checkpoints: a reader sees the old folder or the new one, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_name(path, os.mkdir)
    try:
        yield tmp
        usual_permissions(tmp)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

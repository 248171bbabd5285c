"""A file a command writes at a path the user named (--output, --json, --markdown, --grid, --preview), checked before
any work is done.

Only a regular file is ever replaced. A folder, a symbolic link, a FIFO, a device node or a socket at the path is
refused with one line naming the argument and what is there: writing the usual way (temp file, rename) would have
replaced the link or the device node with a regular file, and a folder would fail only after the work was done.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


class OutputPathError(ValueError):
    """A path that must not be written; the message names it (and the argument) and what is there."""


def what_is_at(path: str | os.PathLike) -> str | None:
    """What is at `path` when it is something other than a regular file ("a folder", "a FIFO (named pipe)", ...);
    None when nothing is there or it is a regular file. A symbolic link is itself the answer, wherever it points."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return f"a symbolic link (to {os.readlink(path)})"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def refuse_to_replace(path: str | os.PathLike, name: str = "") -> None:
    """OutputPathError when `path` holds something other than a regular file (what atomic writes must not replace).
    `name` is the argument that named the path, for the message."""
    kind = what_is_at(path)
    if kind is not None:
        hint = ": give the name of a new or regular file" if name else ""
        raise OutputPathError(f"{name + ' ' if name else ''}{path} is {kind}, not a regular file; refusing to "
                              f"replace it{hint}")


def check_output_file(path: str | os.PathLike, name: str, example: str = "out.json") -> Path:
    """`path` as a Path if a file can be written there; OutputPathError naming `name` (e.g. "--json") otherwise.

    Called before the work whose result goes there, so that nothing is computed only to be lost. Creates nothing
    that stays: the folder is made when the file is written.
    """
    path = Path(path)
    kind = what_is_at(path)
    if kind == "a folder":
        raise OutputPathError(f"{name} {path} is a folder; give a file name, e.g. {path / example}")
    refuse_to_replace(path, name)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # the folder is created later: the nearest one that exists
        folder = folder.parent
    if not folder.is_dir():
        raise OutputPathError(f"{name} {path}: cannot write there ({folder} is not a folder)")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"{name} {path}: cannot write there ({exc.strerror or exc})") from exc
    return path


def check_output_arg(parser, path: str | os.PathLike | None, name: str, example: str = "out.json") -> None:
    """check_output_file for a tool that has only its argparse parser: the one line and exit 2 on refusal."""
    if path is None:
        return
    try:
        check_output_file(path, name, example)
    except OutputPathError as exc:
        parser.exit(2, f"error: {exc}\n")

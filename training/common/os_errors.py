"""An operating-system error (full disk, read-only or unwritable folder) as the one line a CLI prints."""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator

FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
# safetensors reports a failed write as SafetensorError("... I/O error: No space left on device (os error 28)")
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def describe_os_error(exc: OSError) -> str:
    where = f" writing {exc.filename}" if exc.filename else ""
    if exc.errno in FULL:
        return (f"no space left on the device{where}: free some space and rerun with --resume (checkpoints are "
                "written whole, so the ones already there are intact)")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{exc.strerror}{where}: choose a writable --out"
    return f"{exc.strerror or exc}{(': ' + str(exc.filename)) if exc.filename else ''}"


def os_error_in(exc: BaseException) -> OSError | None:
    """The operating-system error behind `exc`: `exc` itself if it is an OSError, the one a safetensors write
    names only in its message (it raises SafetensorError, not OSError), or None for any other error."""
    if isinstance(exc, OSError):
        return exc
    from safetensors import SafetensorError

    found = _RUST_OS_ERROR.search(str(exc)) if isinstance(exc, SafetensorError) else None
    if found is None:
        return None
    code = int(found.group(1))
    return OSError(code, os.strerror(code))


@contextlib.contextmanager
def os_errors_name(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise an operating-system error from the block as an OSError on `path`.

    Why: the block writes into a temporary folder whose name means nothing to the user, and safetensors' own
    error is no OSError at all, so a full disk would end in a traceback instead of describe_os_error's one line.
    """
    try:
        yield
    except Exception as exc:
        found = os_error_in(exc)
        if found is None:
            raise
        raise OSError(found.errno, found.strerror, str(path)) from exc


def one_line_errors(call, debug: bool, expected: tuple[type[BaseException], ...],
                    fold: bool = False) -> tuple[object, int]:
    """(call(), 0); or, when it raises one of `expected` or an OSError (a full disk, an unwritable folder mid-run),
    (None, 2) after printing `error: ...` on one line to stderr. With `debug` (a CLI's --debug) the error is raised
    instead, traceback and all. `fold` joins a message's lines into one (for messages that quote prompt text)."""
    import sys

    try:
        return call(), 0
    except expected as exc:
        if debug:
            raise
        print(f"error: {' '.join(str(exc).split()) if fold else exc}", file=sys.stderr)
    except OSError as exc:
        if debug:
            raise
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
    return None, 2

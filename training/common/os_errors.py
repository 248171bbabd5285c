"""An operating-system error (full disk, read-only or unwritable folder) as the one line a CLI prints."""

from __future__ import annotations

import errno

FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def describe_os_error(exc: OSError) -> str:
    where = f" writing {exc.filename}" if exc.filename else ""
    if exc.errno in FULL:
        return (f"no space left on the device{where}: free some space and rerun with --resume (checkpoints are "
                "written whole, so the ones already there are intact)")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{exc.strerror}{where}: choose a writable --out"
    return f"{exc.strerror or exc}{(': ' + str(exc.filename)) if exc.filename else ''}"

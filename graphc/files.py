"""Atomic file writes: everything graphc saves goes through here, so a crash or a full
disk never leaves a half-written file where a good one (or none) was."""
from __future__ import annotations

import contextlib
import os
import tempfile


def atomic_write(path, data: bytes | str) -> None:
    """Write ``data`` to a temporary file next to ``path``, fsync it, then rename it over
    ``path`` (atomic on POSIX and Windows). On any error the temporary file is removed and
    ``path`` is left as it was."""
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".graphc-tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _sync_directory(directory)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _sync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

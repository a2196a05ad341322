"""Atomic file writes: everything graphc saves goes through here, so a crash or a full
disk never leaves a half-written file where a good one (or none) was."""
from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
import zlib

_TEMPORARY = re.compile(r"\.graphc-tmp-([0-9a-f]{8})-(\d+)-")


def atomic_write(path, data: bytes | str) -> None:
    """Write ``data`` to a temporary file next to ``path``, fsync it, then rename it over
    ``path`` (atomic on POSIX and Windows). On any error the temporary file is removed and
    ``path`` is left as it was."""
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".graphc-tmp-{host_tag()}-{os.getpid()}-")
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


@functools.lru_cache(maxsize=None)
def host_tag() -> str:
    """Temporary files are named after the host and process writing them, so that a later
    save can tell which ones a killed process left behind (sweep_stale_temporaries)."""
    import socket  # (only when something is saved)
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def sweep_stale_temporaries(directory) -> list:
    """Remove the temporary files that processes of this host left in ``directory`` when they
    died mid-write (their process no longer exists); returns their paths. Files of live
    processes, and of other hosts sharing the directory, are left alone."""
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        m = _TEMPORARY.match(name)
        if m is None or m.group(1) != host_tag() or _alive(int(m.group(2))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, name))
            removed.append(os.path.join(directory, name))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # (on Windows, os.kill(pid, 0) would end the process)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # exists (another user's), or cannot tell: keep its file
    return True

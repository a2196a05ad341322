"""Running a kernel's outer loop on several threads.

Generated kernels are compiled with ``nogil=True``; a kernel whose outermost loop takes a
``[LO, HI)`` range can run disjoint parts of it at once from ordinary Python threads. This
keeps numba's own threading layers (and their traps with BLAS thread pools, fork and
concurrent callers, see NUMBA_NOTES.md) out of the picture: concurrent ``Session.run`` calls
simply share the pool. Work below ``MIN_WORK`` elements runs inline, where handing it to
another thread would cost more than it saves. The number of parts follows the cores that
are free now (cores.py), so a core busy with another process is left alone.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from . import cores

MIN_WORK = 1 << 17
THREADS = max(1, int(os.environ.get("GRAPHC_NUM_THREADS", os.cpu_count() or 1)))

_pool = None
_pool_pid = None
_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():  # a forked child needs its own threads
        with _lock:
            if _pool is None or _pool_pid != os.getpid():
                _pool = ThreadPoolExecutor(max_workers=THREADS - 1, thread_name_prefix="graphc")
                _pool_pid = os.getpid()
    return _pool


def call(kernel, extent: int, work: int, args: tuple, lo: int, hi: int) -> None:
    """``kernel(*args)`` with its range parameters (at positions ``lo``, ``hi``) covering
    ``[0, extent)``, split into one part per thread when the work is large enough."""
    args = list(args)
    parts = min(cores.width(), extent)
    if work < MIN_WORK or parts < 2:
        args[lo], args[hi] = 0, extent
        kernel(*args)
        return
    bounds = [extent * p // parts for p in range(parts + 1)]
    futures = []
    pool = _executor()
    for p in range(1, parts):
        chunk = list(args)
        chunk[lo], chunk[hi] = bounds[p], bounds[p + 1]
        futures.append(pool.submit(kernel, *chunk))
    args[lo], args[hi] = bounds[0], bounds[1]
    try:
        kernel(*args)
    finally:
        for f in futures:
            f.result()

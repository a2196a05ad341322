"""The one BLAS that compiled kernels use, and its thread count.

numba's ``np.dot`` calls SciPy's ``cython_blas``, i.e. the OpenBLAS bundled with SciPy;
NumPy carries a second OpenBLAS. Compiled programs only ever use SciPy's (the reference
backend uses NumPy's), so there is one BLAS path per backend. NUMBA_NOTES.md records that
alternating the two libraries in a hot loop costs 9-40x, because each pool's threads spin
while the other works: keep NumPy matmuls out of a training loop that runs on ``cpu``.

Thread count, chosen on purpose: SciPy's OpenBLAS gets as many threads as graphc's own
kernel pool (``GRAPHC_NUM_THREADS``, default all cores). Measured on the 2-core benchmark
machine (benchmarks/RESULTS.md): W2 4.5 ms with 2 BLAS threads against 8.6-8.9 ms with 1,
and W5 7.2 ms against 9.6 ms; the two pools never run at once because a program's kernels
run one after another. A user who sets ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS`` keeps
that choice. When graphc chose, the count follows the cores that are free now (cores.py): on
a machine where another process keeps a core busy, OpenBLAS' threads would otherwise spin
and wait on that core (measured: a 7.7 ms W2 step took a median of 15.7 ms, 90th percentile
49 ms, against 10.8 ms on one thread). The count changes only in OpenBLAS' own-threads build
(``openblas_get_parallel() == 1``), whose setter writes one integer when lowering the count;
the OpenMP build's setter frees per-thread buffers and is not called while kernels may run.

Spinning, chosen on purpose: OpenBLAS' threads spin after each product for 2^28 cycles
(about 0.1 s) unless ``OPENBLAS_THREAD_TIMEOUT`` says otherwise, which it reads once, when the
library is loaded. Spinning, they hold a core that graphc's own kernel threads (parallel.py)
need between the products: measured on the 2-core benchmark machine, an imported MLP at batch
1 took 19-22 µs after a LeNet at batch 64 had run in the same process (its pool worker saw 5
of 1,006 jobs while OpenBLAS' thread spun), 13-16 µs without; a W5 step took 4.2-5.1 ms
against 3.7-4.0 ms with the threads sleeping at once, and W2 was unchanged or better (4.9 ms,
where the default sometimes gave 7.5 ms). So unless the user set it, graphc loads the library
with ``OPENBLAS_THREAD_TIMEOUT`` at its minimum (``SLEEP_AT_ONCE``; the process's environment
is restored right after). If SciPy's OpenBLAS was loaded before graphc, it keeps its default
and ``info()`` says so.
"""
from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import threading

_SETTERS = ("scipy_openblas_set_num_threads", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads", "openblas_get_num_threads")
_CORENAMES = ("scipy_openblas_get_corename", "openblas_get_corename")
_PARALLEL = ("scipy_openblas_get_parallel", "openblas_get_parallel")
_TIMEOUTS = ("scipy_openblas_thread_timeout", "openblas_thread_timeout")  # the value it read (0: unset)
PTHREADS = 1  # openblas_get_parallel(): OpenBLAS' own thread server
SLEEP_AT_ONCE = "4"  # OPENBLAS_THREAD_TIMEOUT: spin 2^4 cycles (its minimum), then sleep
_lock = threading.Lock()
_state: dict = {}


def _library():
    """SciPy's OpenBLAS, loaded with its threads told not to spin (see above)."""
    path = _library_path()
    if path is None:
        return None
    user = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    if user:
        _state["spin"] = f"OPENBLAS_THREAD_TIMEOUT={user} (set by the user)"
    elif _mapped(path):
        _state["spin"] = "the library's default: it was loaded before graphc"
    else:
        _state["spin"] = f"OPENBLAS_THREAD_TIMEOUT={SLEEP_AT_ONCE} (graphc)"
    try:
        if not user:
            os.environ["OPENBLAS_THREAD_TIMEOUT"] = SLEEP_AT_ONCE
        return ctypes.CDLL(path)
    except OSError:
        return None
    finally:
        if not user:
            os.environ.pop("OPENBLAS_THREAD_TIMEOUT", None)


def _mapped(path: str) -> bool:
    """Whether the shared object at ``path`` is loaded in this process already (Linux: its
    memory map; elsewhere assumed not)."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return os.path.basename(path).encode() in f.read()
    except OSError:
        return False


def _library_path():
    spec = importlib.util.find_spec("scipy")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = os.path.dirname(list(spec.submodule_search_locations)[0])
    paths = sorted(glob.glob(os.path.join(root, "scipy.libs", "libscipy_openblas*.so*")))
    return paths[0] if paths else None


def _function(lib, names):
    for name in names:
        fn = getattr(lib, name, None) if lib is not None else None
        if fn is not None:
            return fn
    return None


def configure(threads: int) -> dict:
    """Set SciPy's OpenBLAS to ``threads`` threads (once per process) unless the user chose
    with an environment variable. Returns what was found and done, for ``info()``."""
    with _lock:
        if _state.get("pid") == os.getpid():
            return info()
        _state.clear()
        _state["pid"] = os.getpid()
        lib = _library()
        setter, getter = _function(lib, _SETTERS), _function(lib, _GETTERS)
        _state["library"] = getattr(lib, "_name", None)
        user = next((k for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if os.environ.get(k)), None)
        if setter is not None and user is None:
            setter.argtypes = [ctypes.c_int]
            setter(int(threads))
            _state["set_by"] = "graphc (GRAPHC_NUM_THREADS)"
            parallel = _function(lib, _PARALLEL)
            if parallel is not None:
                parallel.restype = ctypes.c_int
                if parallel() == PTHREADS:
                    _follow_free_cores(setter)
        else:
            _state["set_by"] = user or "unknown library: left as it was"
        if getter is not None:
            getter.restype = ctypes.c_int
            _state["threads"] = int(getter())
        timeout = _function(lib, _TIMEOUTS)
        if timeout is not None:
            timeout.restype = ctypes.c_int
            _state["thread_timeout"] = int(timeout())
        corename = _function(lib, _CORENAMES)
        if corename is not None:  # which kernel family it runs (OPENBLAS_CORETYPE can force one)
            corename.restype = ctypes.c_char_p
            _state["core"] = corename().decode()
        return info()


def _follow_free_cores(setter) -> None:
    """OpenBLAS' thread count follows ``cores.width()`` from now on."""
    from . import cores

    def follow(width: int) -> None:
        setter(int(width))
        _state["threads"] = int(width)
    cores.monitor().listeners.append(follow)
    _state["follows_free_cores"] = True


def info() -> dict:
    return {k: v for k, v in _state.items() if k != "pid"}

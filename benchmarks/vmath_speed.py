"""Speed of graphc.codegen.vmath against libm calls (math.*) in the same numba loop, and NumPy.

    python benchmarks/vmath_speed.py [n]        # default n = 4_194_304 (4M) elements

One single-threaded @njit loop per (function, implementation) over contiguous arrays; medians
of repeated runs after a warm-up call.  Prints a Markdown table (ns per element and speed-up
of vmath over the libm loop and over NumPy/SciPy).  Not part of the test suite.
"""
from __future__ import annotations

import math
import platform
import statistics
import sys
import time

import numba
import numpy as np
import scipy.special
from numba import njit

from graphc.codegen import vmath


def _loop(fn):
    @njit
    def loop(x, out):
        for i in range(x.shape[0]):
            out[i] = fn(x[i])
    return loop


@njit
def _libm_sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


@njit
def _libm_sigmoid32(v):
    return np.float32(1.0) / (np.float32(1.0) + math.exp(-v))


LIBM = {"exp": math.exp, "log": math.log, "tanh": math.tanh, "erf": math.erf,
        "expm1": math.expm1}
NUMPY = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "erf": scipy.special.erf,
         "expm1": np.expm1, "sigmoid": scipy.special.expit}
DOMAIN = {"exp": (-80, 80), "log": (1e-3, 1e3), "tanh": (-5, 5), "sigmoid": (-20, 20),
          "erf": (-4, 4), "expm1": (-5, 5)}


def _median_time(fn, repeats):
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main(n: int = 4_194_304, repeats: int = 15):
    rng = np.random.default_rng(0)
    rows = []
    for suffix, dt in [("f32", np.float32), ("f64", np.float64)]:
        for name in ["exp", "log", "tanh", "sigmoid", "erf", "expm1"]:
            lo, hi = DOMAIN[name]
            x = rng.uniform(lo, hi, n).astype(dt)
            out = np.empty_like(x)
            if name == "sigmoid":
                libm_fn = _libm_sigmoid32 if dt == np.float32 else _libm_sigmoid
            else:
                libm_fn = LIBM[name]
            libm_loop = _loop(libm_fn)
            vm_loop = _loop(getattr(vmath, f"{name}_{suffix}"))
            t_libm = _median_time(lambda: libm_loop(x, out), repeats)
            t_vm = _median_time(lambda: vm_loop(x, out), repeats)
            npf = NUMPY[name]
            t_np = _median_time(lambda: npf(x, out=out), repeats)
            rows.append((f"{name}_{suffix}", t_libm, t_np, t_vm))
    ns = lambda t: f"{t / n * 1e9:.2f}"  # noqa: E731
    print(f"n = {n}; machine: {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}, numba {numba.__version__}, "
          f"numpy {np.__version__}; median of {repeats}; single thread\n")
    print("| function | libm loop ns/elt | NumPy/SciPy ns/elt | vmath loop ns/elt "
          "| vs libm loop | vs NumPy |")
    print("|---|---|---|---|---|---|")
    for name, t_libm, t_np, t_vm in rows:
        print(f"| {name} | {ns(t_libm)} | {ns(t_np)} | {ns(t_vm)} | {t_libm / t_vm:.1f}x "
              f"| {t_np / t_vm:.1f}x |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4_194_304)

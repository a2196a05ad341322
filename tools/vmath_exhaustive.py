"""Exhaustive float32 / large-sample float64 accuracy sweep of graphc.codegen.vmath (offline).

    python tools/vmath_exhaustive.py f32 [names...]      # all 2**32 float32 bit patterns
    python tools/vmath_exhaustive.py f64 N [names...]    # N random float64 inputs (several mixes)

float32 results are compared with the float64 NumPy/SciPy value (unrounded), float64 results
with a long-double reference (erf: a positive-term series evaluated in long double, see
tests/codegen/test_vmath.py).  Errors are in ulps of the exact value; NaN / inf / signed-zero
mismatches are counted separately.  The numbers go into docs/VMATH.md.
"""
import math
import os
import sys
import time

import numpy as np
from numba import njit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "codegen"))
from test_vmath import ACTIVE, REF32, apply, kernel, reference, ulp_error  # noqa: E402


@njit(nogil=True)
def _stats(x, y, ref, p, emin, fmax):
    worst = 0.0
    wi = -1
    bad = 0
    badi = -1
    for i in range(y.shape[0]):
        r = ref[i]
        v = float(y[i])
        if math.isnan(r):
            if not math.isnan(v):
                bad += 1
                badi = i
            continue
        if abs(r) >= fmax:  # rounds to +-inf in the target format
            if v != (math.inf if r > 0 else -math.inf):
                bad += 1
                badi = i
            continue
        if math.isnan(v) or math.isinf(v):
            bad += 1
            badi = i
            continue
        if r == 0.0 and v == 0.0 and (math.copysign(1.0, r) != math.copysign(1.0, v)):
            bad += 1
            badi = i
            continue
        m, e = math.frexp(r)
        u = math.ldexp(1.0, max(e - 1, emin) - (p - 1))
        err = abs(v - r) / u
        if err > worst:
            worst = err
            wi = i
    return worst, wi, bad, badi


def sweep_f32(names):
    fmax32 = 2.0 ** 128 - 2.0 ** 103  # |v| >= this rounds to inf
    for name in names:
        loop = kernel(name, "f32")
        worst, wx, bad, bx = 0.0, None, 0, None
        t = time.perf_counter()
        for c in range(256):
            x = np.arange(c << 24, (c + 1) << 24, dtype=np.uint64)
            x = x.astype(np.uint32).view(np.float32)
            y = np.empty_like(x)
            loop(x, y)
            with np.errstate(all="ignore"):
                ref = REF32[name](x.astype(np.float64))
            w, wi, b, bi = _stats(x, y, ref, 24, -126, fmax32)
            if w > worst:
                worst, wx = w, (x[wi], y[wi], ref[wi])
            if b:
                bad += b
                bx = (x[bi], y[bi], ref[bi])
        print(f"{name}_f32: max {worst:.3f} ulp at x={wx[0]!r} (got {wx[1]!r}, ref {wx[2]!r}); "
              f"special-value mismatches {bad} {bx if bad else ''}; {time.perf_counter() - t:.0f}s",
              flush=True)


def sweep_f64(names, n):
    rng = np.random.default_rng(12345)
    for name in names:
        worst, wx, bad = 0.0, None, 0
        t = time.perf_counter()
        lo, hi = ACTIVE[(name, "f64")]
        total = 0
        for c in range(0, n, 1 << 20):
            m = min(1 << 20, n - c)
            bits = rng.integers(0, 2 ** 64, m, dtype=np.uint64).view(np.float64)
            x = np.concatenate([bits[np.isfinite(bits)], rng.uniform(lo, hi, m),
                                rng.uniform(-1, 1, m) * 2.0 ** rng.integers(-60, 4, m)])
            total += x.size
            y = apply(name, "f64", x)
            err = ulp_error(y, reference(name, "f64", x), "f64")
            bad += int(np.isinf(err).sum())
            err[np.isinf(err)] = 0
            i = int(np.argmax(err))
            if err[i] > worst:
                worst, wx = float(err[i]), (x[i], y[i])
        print(f"{name}_f64: max {worst:.3f} ulp at x={wx[0]!r} (got {wx[1]!r}); "
              f"special-value mismatches {bad}; {total} inputs; {time.perf_counter() - t:.0f}s",
              flush=True)


if __name__ == "__main__":
    all_names = ["exp", "log", "tanh", "sigmoid", "erf", "expm1"]
    if sys.argv[1] == "f32":
        sweep_f32(sys.argv[2:] or all_names)
    else:
        sweep_f64(sys.argv[3:] or all_names, int(sys.argv[2]))

"""sgemm speed of the BLAS that graphc's kernels use (SciPy's OpenBLAS, through numba).

    python benchmarks/blas_probe.py
    OPENBLAS_CORETYPE=SkylakeX python benchmarks/blas_probe.py   # compare kernel families

Prints which OpenBLAS kernel family is active and GFLOP/s for the W2 and LeNet GEMM shapes.
"""
import time

import numpy as np
from numba import njit


@njit
def _matmul(a, b, c):
    np.dot(a, b, c)


def _median_ms(fn, *args, reps=30):
    fn(*args)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def main() -> None:
    from graphc.codegen.cpu import blas, parallel
    print(blas.configure(parallel.THREADS))
    rng = np.random.default_rng(0)
    for m, k, n in [(256, 784, 512), (784, 256, 512), (256, 512, 512), (50176, 25, 6), (6400, 150, 16)]:
        a = rng.random((m, k), dtype=np.float32)
        b = rng.random((k, n), dtype=np.float32)
        c = np.empty((m, n), np.float32)
        ms = _median_ms(_matmul, a, b, c)
        print(f"{m}x{k} @ {k}x{n}: {ms:.3f} ms, {2 * m * k * n / ms / 1e6:.0f} GFLOP/s")


if __name__ == "__main__":
    main()

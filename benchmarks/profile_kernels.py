"""Per-kernel time of one graphc workload, from graphc's own profiler (gc.profiler).

    python benchmarks/profile_kernels.py W5 [--size full|tiny] [--steps 20] [--trace out.json]

Runs the workload's step a few times to warm up, then ``--steps`` times inside
``gc.profiler.trace``, and prints the kernels sorted by their total time (with the bytes each
call reads and writes). ``--trace`` also writes the Chrome trace of those steps. A traced step
times each kernel on its own, so the kernel total is a little above an untraced step's time.
This is how the misses in RESULTS.md are profiled.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["W1a", "W1b", "W2", "W5", "W7", "W7-small", "W8"])
    ap.add_argument("--size", default="full", choices=list(workloads.SIZES))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--trace", help="write the Chrome trace of the profiled steps here")
    args = ap.parse_args()
    import graphc as gc
    fn = getattr(workloads, args.workload.lower().split("-")[0])
    step = fn("graphc", workloads.SIZES[args.size][args.workload])
    for _ in range(3):
        step()
    whole = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        whole.append(time.perf_counter() - t)
    with gc.profiler.trace(args.trace) as prof:
        for _ in range(args.steps):
            step()
    print(f"{args.workload}: median untraced step {np.median(whole) * 1e3:.2f} ms")
    print(prof.report(args.top))
    if args.trace:
        print(f"wrote {args.trace}")


if __name__ == "__main__":
    main()

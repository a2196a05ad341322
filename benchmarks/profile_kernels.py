"""Per-kernel time of one graphc workload on the CPU backend.

    python benchmarks/profile_kernels.py W5 [--size full|tiny] [--steps 20]

Wraps every kernel of the compiled programs in a timer (so the totals include a little
wrapper overhead per call) and prints the kernels sorted by median time per step. This is
how the misses in RESULTS.md were profiled.
"""
import argparse
import gc as pygc
import os
import sys
import time
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["W1a", "W1b", "W2", "W5"])
    ap.add_argument("--size", default="full", choices=list(workloads.SIZES))
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    from graphc.codegen.cpu.executable import CpuExecutable
    fn = getattr(workloads, args.workload.lower())
    step = fn("graphc", workloads.SIZES[args.size][args.workload])
    step()
    executables = [o for o in pygc.get_objects() if isinstance(o, CpuExecutable)]
    times = defaultdict(list)

    def timed(exe_id, k, kernel):
        def call(*a):
            t = time.perf_counter()
            kernel(*a)
            times[(exe_id, k)].append(time.perf_counter() - t)
        return call

    labels = {}
    for e, exe in enumerate(executables):
        for k, kernel in enumerate(exe.kernel_functions):
            exe.kernel_functions[k] = timed(e, k, kernel)
            labels[(e, k)] = exe.generated.calls[k].label
    for _ in range(3):
        step()
    times.clear()
    whole = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        whole.append(time.perf_counter() - t)
    rows = sorted(((sum(v) / args.steps, key) for key, v in times.items()), reverse=True)
    total = sum(r[0] for r in rows)
    print(f"{args.workload}: median step {np.median(whole) * 1e3:.2f} ms, kernels {total * 1e3:.2f} ms "
          f"in {len(rows)} kernels")
    for t, key in rows:
        print(f"{t * 1e3:8.3f} ms  {labels[key]}")


if __name__ == "__main__":
    main()

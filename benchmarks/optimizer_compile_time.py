"""How long the optimizer takes on the zoo's training graphs (lowering + every pass).

    python benchmarks/optimizer_compile_time.py

Prints a Markdown table; not part of the test suite (no timings are asserted in tests).
"""
from __future__ import annotations

import platform
import statistics
import time

import numpy as np

import graphc as gc
from graphc import zoo
from graphc.optimizer.pipeline import optimize
from graphc.optimizer.program import lower


def measure(build, repeats: int = 20):
    model = build()
    fetches, feeds = [model.train_op, model.loss], [model.x, model.labels]
    lowering, optimizing = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        program = lower(model.graph, fetches, feeds)
        t1 = time.perf_counter()
        result = optimize(program, 2, validate=False)
        t2 = time.perf_counter()
        lowering.append(t1 - t0)
        optimizing.append(t2 - t1)
    per_pass = {}
    for r in result.reports:
        per_pass[r.name] = per_pass.get(r.name, 0.0) + r.seconds
    return {
        "graph nodes": len(model.graph.get_operations()),
        "lowered instrs": len(program.instrs),
        "final instrs": len(result.program.instrs),
        "kernels": result.kernel_count,
        "lower ms": 1e3 * statistics.median(lowering),
        "optimize ms": 1e3 * statistics.median(optimizing),
        "slowest pass": max(per_pass, key=per_pass.get),
    }


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    import os
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; python {platform.python_version()}; "
          f"numpy {np.__version__}; graphc {gc.__version__}")
    rows = {"MLP step (digits)": measure(zoo.mlp), "LeNet step (digits)": measure(zoo.lenet),
            "LeNet-5 step (28x28)": measure(lambda: zoo.lenet(input_shape=(28, 28, 1), channels=(6, 16),
                                                              hidden=120))}
    keys = list(next(iter(rows.values())))
    print("| graph | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, row in rows.items():
        cells = [f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

"""What the NaN guard costs on a training step that makes no NaN (docs/DEBUGGING.md).

    python benchmarks/nan_guard_cost.py [--steps 30] [--rounds 5] [--batch 128] [--hidden 512]

An MLP (784 -> hidden, relu -> 10, softmax cross-entropy) on the CPU backend, trained with SGD
and with Adam (Adam writes three times the variables: the guard snapshots each one it
writes). Three Sessions run the same step side by side, interleaved over rounds:

  * plain, ``make_callable`` (the fastest path, what run.py's W2 uses);
  * plain, ``sess.run(fetches, feed_dict)`` (the guarded run's loss is checked against it);
  * guarded, ``sess.run`` (``nan_guard=True``; a guarded make_callable goes through run).

The modes alternate step by step; a figure is the median over rounds of each round's median
step time. Prints a Markdown table;
not part of the test suite (no timings are asserted in tests).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

import graphc as gc
from graphc import zoo
from optimizer_compile_time import cpu_name  # benchmarks/ is the script's directory


def measure(optimizer, steps: int, rounds: int, batch: int, hidden: int) -> dict:
    model = zoo.mlp(input_shape=(784,), hidden=hidden, optimizer=optimizer)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=batch).astype(np.int64)
    fetches = [model.train_op, model.loss]
    fast = gc.Session(graph=model.graph, device="cpu")
    plain = gc.Session(graph=model.graph, device="cpu")
    guarded = gc.Session(graph=model.graph, device="cpu", nan_guard=True)
    for s in (fast, plain, guarded):
        s.run(model.init)
    call = fast.make_callable(fetches, [model.x, model.labels])
    modes = {
        "plain make_callable": lambda: call(x, y),
        "plain sess.run": lambda: plain.run(fetches, {model.x: x, model.labels: y}),
        "guarded sess.run": lambda: guarded.run(fetches, {model.x: x, model.labels: y}),
    }
    for fn in modes.values():  # compile and warm up
        for _ in range(5):
            fn()
    medians = {name: [] for name in modes}
    for _ in range(rounds):
        times = {name: [] for name in modes}
        for _ in range(steps):  # the modes alternate step by step: a slow spell of the machine hits all
            for name, fn in modes.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        for name in modes:
            medians[name].append(statistics.median(times[name]))
    # the guarded and plain runs trained the same number of steps from the same start
    np.testing.assert_allclose(guarded.run(model.loss, {model.x: x, model.labels: y}),
                               plain.run(model.loss, {model.x: x, model.labels: y}), rtol=1e-3)
    for s in (fast, plain, guarded):
        s.close()
    return {name: (statistics.median(m), min(m), max(m)) for name, m in medians.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=512)
    args = parser.parse_args()
    import numba
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; python {platform.python_version()}; "
          f"numpy {np.__version__}; numba {numba.__version__}")
    print(f"MLP 784-{args.hidden}-10, batch {args.batch}, float32, device cpu; {args.rounds} rounds of "
          f"{args.steps} steps\n")
    print("| optimizer | plain make_callable | plain sess.run | guarded sess.run | guarded / plain run | "
          "guarded / make_callable |")
    print("|---|---|---|---|---|---|")
    for label, opt in (("SGD", gc.train.GradientDescentOptimizer),
                       ("Adam", None)):
        r = measure(opt, args.steps, args.rounds, args.batch, args.hidden)
        a, b, c = (r[k][0] for k in ("plain make_callable", "plain sess.run", "guarded sess.run"))
        print(f"| {label} | {a * 1e3:.3f} ms | {b * 1e3:.3f} ms | {c * 1e3:.3f} ms | {c / b:.2f} | {c / a:.2f} |")
        spread = "; ".join(f"{k} {v[1] * 1e3:.3f}–{v[2] * 1e3:.3f} ms" for k, v in r.items())
        print(f"<!-- {label} spread over rounds: {spread} -->")


if __name__ == "__main__":
    main()

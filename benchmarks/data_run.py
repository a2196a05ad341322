"""Training on a ``gc.data`` pipeline against the same steps fed by hand through ``feed_dict``.

    python benchmarks/data_run.py            # writes benchmarks/RESULTS-DATA.md
    python benchmarks/data_run.py --tiny     # a smoke run (numbers mean nothing)

The model is W2's MLP (784-512-512-10, SGD, batch 256). Each batch needs data preparation as
input pipelines do it: uint8 images decoded to float32, standardized, and randomly shifted by
up to 2 pixels (NumPy, about a millisecond per batch). Four figures per step, each the median
over rounds of per-round medians:

  step only       the training step on a batch prepared beforehand (the floor)
  prep only       the preparation alone
  feed_dict       prepare, then run the step, in one thread (what a hand-written loop does)
  gc.data         the same preparation in ``Dataset.from_generator``, the model built on the
                  iterator's ``get_next()``: the Session pulls each batch from the pipeline's
                  background thread, which prepares the next batch while this one trains

The pipeline hides the preparation when ``gc.data`` is close to ``step only``; it adds to it
when it is above ``feed_dict``.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import graphc as gc  # noqa: E402


def prepare(raw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (n, 28, 28) -> standardized float32 (n, 784), each image shifted by up to 2 px."""
    x = raw.astype(np.float32) / 255.0
    x = (x - 0.1307) / 0.3081
    dy, dx = rng.integers(-2, 3, size=2)
    x = np.roll(np.roll(x, int(dy), axis=1), int(dx), axis=2)
    return x.reshape(len(raw), -1)


def build(inputs=None, labels=None, hidden=512, seed=0):
    gc.set_random_seed(seed)
    x = inputs if inputs is not None else gc.placeholder(gc.float32, (None, 784), name="x")
    y = labels if labels is not None else gc.placeholder(gc.int64, (None,), name="y")
    h = x
    for i in range(2):
        h = gc.layers.dense(h, hidden, activation=gc.nn.relu, name=f"fc{i}")
    logits = gc.layers.dense(h, 10, name="out")
    loss = gc.losses.sparse_softmax_cross_entropy(y, logits)
    return x, y, gc.train.GradientDescentOptimizer(0.01).minimize(loss)


def timed(fn, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default=str(HERE / "RESULTS-DATA.md"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    batch, hidden, steps, rounds = (16, 32, 4, 2) if args.tiny else (256, 512, 20, args.rounds)
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(batch * 8, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=batch * 8)

    def batches(seed=1):
        r = np.random.default_rng(seed)
        while True:
            for start in range(0, len(raw), batch):
                yield prepare(raw[start:start + batch], r), labels[start:start + batch]

    results = {"step only": [], "prep only": [], "feed_dict": [], "gc.data": []}
    with gc.Graph().as_default():
        x, y, train = build(hidden=hidden)
        sess = gc.Session(device="cpu")
        sess.run(gc.global_variables_initializer())
        step = sess.make_callable(train, feed_list=[x, y])
        ready = next(batches())
        source = batches()
        for _ in range(3):
            step(*next(source))
    with gc.Graph().as_default():
        ds = gc.data.Dataset.from_generator(batches, (gc.float32, gc.int64), ([None, 784], [None])).prefetch(2)
        bx, by = ds.make_one_shot_iterator().get_next()
        _, _, train_ds = build(bx, by, hidden=hidden)
        sess_ds = gc.Session(device="cpu")
        sess_ds.run(gc.global_variables_initializer())
        for _ in range(3):
            sess_ds.run(train_ds)
    prep_rng = np.random.default_rng(2)
    for _ in range(rounds):
        results["step only"].append(timed(lambda: step(*ready), steps))
        results["prep only"].append(timed(lambda: prepare(raw[:batch], prep_rng), steps))
        results["feed_dict"].append(timed(lambda: step(*next(source)), steps))
        results["gc.data"].append(timed(lambda: sess_ds.run(train_ds), steps))
    medians = {k: statistics.median(v) for k, v in results.items()}
    lines = [
        "# Input pipelines: gc.data against feed_dict",
        "",
        "Measured by `python benchmarks/data_run.py` in one process: W2's MLP step (784-512-512-10, SGD, batch "
        f"{batch}) with a NumPy preparation per batch (decode, standardize, random shift). Median over {rounds} "
        f"rounds of {steps} steps each.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}. Versions: graphc {gc.__version__}, numpy {np.__version__}.",
        f"Sizes: {'tiny' if args.tiny else 'full'}.",
        "",
        "| per step | time | vs step only |",
        "|---|---|---|",
    ]
    for name, value in medians.items():
        lines.append(f"| {name} | {value * 1e3:.3f} ms | {value / medians['step only']:.2f} |")
    hidden_share = (medians["feed_dict"] - medians["gc.data"]) / max(medians["prep only"], 1e-12)
    lines += ["", f"Share of the preparation the pipeline hides: {hidden_share:.0%} "
                  "((feed_dict - gc.data) / prep only)."]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

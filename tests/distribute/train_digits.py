"""Run by tests/distribute/test_mpi.py: the zoo's digits CNN (LeNet-style) for STEPS Adam steps
(or plain gradient-descent steps) on global batches of GLOBAL, either in one process on the whole batch (``single``) or on each
MPI rank on its share of it with hvd.DistributedOptimizer (``mpi``). Writes the final weights
to ``<out>-<rank>.npz``.

    python train_digits.py single OUT [device] [adam|sgd]
    mpiexec -n 2 python train_digits.py mpi OUT [device] [adam|sgd]
"""
import sys

import numpy as np

import graphc as gc
from graphc import zoo
from graphc.datasets import load_digits

STEPS, GLOBAL = 50, 64


def main(mode: str, out: str, device: str = "cpu", kind: str = "adam") -> None:
    x, y, _, _ = load_digits()
    rank, size = 0, 1
    base = {"adam": gc.train.Adam, "sgd": gc.train.GradientDescent}[kind]
    optimizer = base
    if mode == "mpi":
        import graphc.distribute as hvd
        hvd.init()
        rank, size = hvd.rank(), hvd.size()

        def optimizer(learning_rate, **options):
            return hvd.DistributedOptimizer(base(learning_rate, **options))
    model = zoo.lenet(optimizer=optimizer, seed=rank, learning_rate=3e-3 if kind == "adam" else 0.1)  # different initial weights: the broadcast must fix them
    share = GLOBAL // size
    with model.graph.as_default(), gc.Session(device=device) as sess:
        sess.run(model.init)
        if mode == "mpi":  # rank 0 has the single process's weights (seed 0); the others take them
            sess.run(hvd.broadcast_global_variables(0))
        for step in range(STEPS):
            rows = (np.arange(GLOBAL) + step * GLOBAL) % len(x)
            mine = rows[rank * share:(rank + 1) * share]
            sess.run(model.train_op, {model.x: x[mine], model.labels: y[mine]})
        weights = {v.var_name.replace("/", "."): sess.run(v) for v in gc.trainable_variables()}
    np.savez(f"{out}-{rank}.npz", **weights)
    print(f"rank {rank} of {size}: done", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])

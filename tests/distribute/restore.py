"""Run by tests/distribute/test_mpi.py: restore the checkpoint that checkpoint.py wrote (a job
of 2 ranks) in this job. Prints "restored <sum>" or "ERR <message>" on each rank.

    mpiexec -n N python restore.py PATH strict|allow
"""
import sys

import numpy as np

import graphc as gc
import graphc.distribute as hvd


def main(path: str, mode: str) -> None:
    hvd.init()
    w = gc.Variable(np.zeros((2, 3), np.float32), name="w")
    saver = gc.train.Saver()
    with gc.Session() as sess:
        try:
            saver.restore(sess, path, allow_world_size_change=mode == "allow")
            print(f"rank {hvd.rank()}: restored {sess.run(w).sum()}", flush=True)
        except gc.GraphcError as e:
            print(f"rank {hvd.rank()}: ERR {e}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])

"""Run by tests/distribute/test_mpi.py on 2 ranks: rank 0 saves a checkpoint, every rank
restores it and gets rank 0's values. Prints "restored <rank>" on each.

    mpiexec -n 2 python checkpoint.py DIR
"""
import os
import sys

import numpy as np

import graphc as gc
import graphc.distribute as hvd


def main(directory: str) -> None:
    hvd.init()
    r = hvd.rank()
    w = gc.Variable(np.full((2, 3), float(r), np.float32), name="w")
    saver = gc.train.Saver()
    path = os.path.join(directory, "model")
    with gc.Session() as sess:
        sess.run(gc.global_variables_initializer())
        if r == 0:
            sess.run(w.assign(np.arange(6, dtype=np.float32).reshape(2, 3)))
            saver.save(sess, path)
    hvd.barrier()  # the file exists before anyone reads it
    with gc.Session() as sess:
        saver.restore(sess, path)
        np.testing.assert_array_equal(sess.run(w), np.arange(6, dtype=np.float32).reshape(2, 3))
    print(f"restored {r}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])

"""Run by tests/distribute/test_mpi.py on 2 ranks: rank 1 misbehaves after one good step, and
rank 0 goes on to its next collective, which must end with an error naming rank 1 (never a
hang). Modes: raise, kill, left (rank 1 ends normally), stuck (rank 1 sleeps; rank 0's wait
passes GRAPHC_COLLECTIVE_TIMEOUT), mismatch (rank 1 builds a different shape).

    mpiexec -n 2 python faults.py MODE
"""
import os
import signal
import sys
import time

import numpy as np

import graphc as gc
import graphc.distribute as hvd


def main(mode: str) -> None:
    hvd.init()
    r = hvd.rank()
    width = 3 if mode == "mismatch" and r == 1 else 2
    x = gc.placeholder(gc.float32, (width,), name="x")
    mean = hvd.allreduce(x * 2.0)
    with gc.Session(device="cpu") as sess:
        if mode != "mismatch":
            print(f"rank {r}: step 1 gives {sess.run(mean, {x: np.ones(width, np.float32)})}", flush=True)
            if r == 1:
                if mode == "raise":
                    raise ValueError("rank 1 fails on purpose")
                if mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                if mode == "left":
                    return
                if mode == "stuck":
                    time.sleep(120)
        if mode == "mismatch":
            try:
                sess.run(mean, {x: np.ones(width, np.float32)})
            except gc.errors.FailedPreconditionError as e:
                print(f"rank {r}: {e}", flush=True)
                try:
                    sess.run(mean, {x: np.ones(width, np.float32)})
                except gc.errors.FailedPreconditionError as again:
                    print(f"rank {r} caught it; then: {again}", flush=True)
                raise
        sess.run(mean, {x: np.ones(width, np.float32)})
        print(f"rank {r}: step 2 ran, which it must not", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])

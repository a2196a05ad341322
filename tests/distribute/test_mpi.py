"""graphc.distribute across processes: each test launches its script under MPICH's mpiexec
(from the mpich wheel in the test environment) through ``python -m graphc.distribute.run``.
A test's subprocess timeout only guards against a hang; nothing here asserts a time."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support import DEVICES

pytest.importorskip("mpi4py", reason="graphc[mpi] is not installed (it is part of graphc[test])")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HANG_GUARD = 300  # seconds: a launch that takes longer has hung


def launch(n: int, script: str, *args: str, env=None, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "graphc.distribute.run", "-np", str(n), str(HERE / script), *args],
                         capture_output=True, text=True, cwd=ROOT, timeout=HANG_GUARD,
                         env=dict(os.environ, **(env or {})))
    if check:
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return run


@pytest.mark.parametrize("device", DEVICES)
def test_collectives_values_and_gradients_on_two_ranks(device):
    # a 64-byte fusion buffer splits the grouped all-reduce into several MPI calls
    run = launch(2, "collectives.py", device, env={"HOROVOD_FUSION_THRESHOLD": "64"})
    assert f"ok values on {device}" in run.stdout and f"ok gradients on {device}" in run.stdout
    assert run.stdout.count("done") == 2


def test_collectives_on_three_ranks():
    # not a power of two: MPICH's all-reduce folds the odd rank in first; results still agree
    run = launch(3, "collectives.py", "reference")
    assert "ok gradients on reference" in run.stdout and run.stdout.count("done") == 3


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """Final weights of the digits CNN after 50 steps: one process on each global batch, and
    two ranks on half of it each, for plain gradient descent and for Adam."""
    out = tmp_path_factory.mktemp("digits")
    runs = {}
    for kind in ("sgd", "adam"):
        single = subprocess.run([sys.executable, str(HERE / "train_digits.py"), "single", str(out / f"single-{kind}"),
                                 "cpu", kind], capture_output=True, text=True, cwd=ROOT, timeout=HANG_GUARD)
        assert single.returncode == 0, single.stderr[-3000:]
        launch(2, "train_digits.py", "mpi", str(out / f"mpi-{kind}"), "cpu", kind)
        runs[kind] = [dict(np.load(out / f"{name}-{kind}-{r}.npz")) for name, r in
                      (("single", 0), ("mpi", 0), ("mpi", 1))]
    return runs


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_two_ranks_end_bit_identical(digits_runs, kind):
    _, rank0, rank1 = digits_runs[kind]
    assert rank0.keys() == rank1.keys() and len(rank0) == 8
    for name in rank0:
        np.testing.assert_array_equal(rank0[name], rank1[name], err_msg=name)


def test_two_half_batches_match_one_whole_batch(digits_runs):
    # the mean of the two ranks' gradients of their half-batch means is the gradient of the
    # whole batch's mean, up to float32 rounding (measured: at most 1.8e-7 after 50 steps)
    single, rank0, _ = digits_runs["sgd"]
    for name in single:
        np.testing.assert_allclose(rank0[name], single[name], rtol=1e-5, atol=2e-6, err_msg=name)
        assert not np.array_equal(single[name], np.zeros_like(single[name]))


def test_adam_amplifies_rounding_but_stays_close(digits_runs):
    # Adam divides by sqrt(v): a gradient element near zero turns rounding into a step of
    # about the learning rate, so the two runs drift apart by up to about 1e-3 (measured 2e-4)
    single, rank0, _ = digits_runs["adam"]
    for name in single:
        np.testing.assert_allclose(rank0[name], single[name], rtol=0, atol=1e-3, err_msg=name)


FAULTS = {
    "raise": ["AbortedError: rank 0 stops: rank 1", "raised ValueError: rank 1 fails on purpose",
              "made at tests/distribute/faults.py:"],
    "kill": ["graphc.distribute.run: rank 1 (pid", "died"],
    "left": ["AbortedError: rank 0 stops: rank 1", "has finished its program and left"],
    "stuck": ["DeadlineExceededError: rank 0:", "did not complete within 5 s (GRAPHC_COLLECTIVE_TIMEOUT)"],
    "mismatch": ["FailedPreconditionError: rank 0: the ranks run different collectives",
                 "rank 0: float32[2]; rank 1: float32[3]", "FailedPreconditionError: rank 1:"],
}


@pytest.mark.parametrize("mode", sorted(FAULTS))
def test_a_failing_rank_ends_the_job_with_an_error_naming_it(mode):
    timeout = "5" if mode == "stuck" else "60"  # the others end well before any deadline
    run = launch(2, "faults.py", mode, env={"GRAPHC_COLLECTIVE_TIMEOUT": timeout}, check=False)
    text = run.stdout + run.stderr
    assert run.returncode != 0, text[-3000:]
    assert "step 2 ran" not in text
    for expected in FAULTS[mode]:
        assert expected in text, f"{expected!r} not in:\n{text[-4000:]}"

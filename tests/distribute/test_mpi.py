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


@pytest.mark.parametrize("path", ["shared window", "MPI"])
@pytest.mark.parametrize("device", DEVICES)
def test_collectives_values_and_gradients_on_two_ranks(device, path):
    # a 64-byte fusion buffer splits the grouped all-reduce into several MPI calls; ranks on one
    # machine all-reduce through a shared window unless GRAPHC_SHARED_ALLREDUCE=0
    env = {"HOROVOD_FUSION_THRESHOLD": "64", "GRAPHC_SHARED_ALLREDUCE": "1" if path == "shared window" else "0"}
    run = launch(2, "collectives.py", device, env=env)
    assert f"ok all-reduce through {'a ' if path == 'shared window' else ''}{path}" in run.stdout
    assert f"ok values on {device}" in run.stdout and f"ok gradients on {device}" in run.stdout
    assert f"ok buckets in place on {device}" in run.stdout and "ok random all-reduces" in run.stdout
    assert run.stdout.count("done") == 2


def test_collectives_on_three_ranks():
    # not a power of two: three chunks of the shared window's reduction (MPI's all-reduce
    # would fold the odd rank in first); results still agree
    run = launch(3, "collectives.py", "reference")
    assert "ok all-reduce through a shared window" in run.stdout
    assert "ok gradients on reference" in run.stdout and "ok random all-reduces" in run.stdout
    assert run.stdout.count("done") == 3


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
    "left": ["AbortedError: rank 0 stops: rank 1", "has ended its program (it finished, or called sys.exit) and left"],
    "stuck": ["DeadlineExceededError: rank 0:", "did not complete within 5 s (GRAPHC_COLLECTIVE_TIMEOUT)"],
    "mismatch": ["FailedPreconditionError: rank 0: the ranks run different collectives",
                 "rank 0: float32[2]; fusion threshold 67108864 bytes; rank 1: float32[3]",
                 "FailedPreconditionError: rank 1:", "(made at tests/distribute/faults.py:",
                 # a program that catches the error cannot go on collecting
                 "rank 0 caught it; then: rank 0: cannot run allreduce(average) of 'multiply:0' (made at",
                 "an earlier collective failed (FailedPreconditionError in"],
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


def test_rank_zero_saves_and_every_rank_restores(tmp_path):
    run = launch(2, "checkpoint.py", str(tmp_path))
    assert "restored 0" in run.stdout and "restored 1" in run.stdout
    path = str(tmp_path / "model")
    # a job of another size is told what to do, and may say it means it
    strict = launch(3, "restore.py", path, "strict").stdout
    assert strict.count("ERR") == 3 and "written by a data-parallel job of 2 ranks, and this job has 3" in strict
    assert "-np 2" in strict and "allow_world_size_change=True" in strict
    assert launch(3, "restore.py", path, "allow").stdout.count("restored 15.0") == 3
    # a single process (a job of one) restores any checkpoint
    alone = subprocess.run([sys.executable, str(HERE / "restore.py"), path, "strict"], capture_output=True,
                           text=True, cwd=ROOT, timeout=HANG_GUARD)
    assert "rank 0: restored 15.0" in alone.stdout, alone.stdout + alone.stderr


def test_the_horovod_example_trains_on_two_ranks(tmp_path):
    run = subprocess.run([sys.executable, "-m", "graphc.distribute.run", "-np", "2",
                          str(ROOT / "examples" / "horovod" / "tf1_digits_horovod.py"), str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=HANG_GUARD)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "rank 0 of 2: held-out accuracy" in run.stdout and "rank 1 of 2: held-out accuracy" in run.stdout
    assert (tmp_path / "model.ckpt.gcckpt").exists()


def test_weak_scaling_benchmark_runs_at_tiny_sizes(tmp_path):
    """benchmarks/distribute_run.py: every runner timed both workloads (the figures mean
    nothing at these sizes; the table's structure is what is checked)."""
    import re
    out = tmp_path / "RESULTS-DISTRIBUTE.md"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "distribute_run.py"), "--tiny", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in out.read_text().splitlines() if line.startswith("| W")]
    assert [r[0].strip() for r in rows] == ["W2", "W5"], out.read_text()[-3000:] + done.stderr[-3000:]
    for row in rows:
        for cell in row[1:4] + row[6:8]:
            assert re.fullmatch(r"[0-9.]+ (µs|ms)", cell.strip()), row
        assert float(row[4]) >= 0 and float(row[5]) >= 0  # (at tiny sizes under load, 0.00 is possible)


def test_the_cost_model_is_fitted_and_checked_against_this_machine(tmp_path):
    """benchmarks/distribute_model.py at a small size: graphc's all-reduce measured on 2 ranks,
    the ring model fitted to it, and its predictions set beside W10's measured steps. The
    agreement is written in the report, not asserted (no timing assertions in tests)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import distribute_model as dm
    # the model itself: nothing to do alone, 2 alpha + B / bw for two, 2(N-1)/N of the bytes each
    assert dm.ring_seconds(1, 1e6, 1e9, 1e-6) == 0.0
    assert dm.ring_seconds(2, 1e6, 1e9, 1e-6) == pytest.approx(2e-6 + 1e-3)
    assert dm.ring_seconds(256, 1e6, 1e9, 0.0) == pytest.approx(2 * 255 / 256 * 1e-3)
    alpha, bandwidth = dm.fit({4096: 2 * 5e-6 + 4096 / 2e9, 1 << 20: 2 * 5e-6 + (1 << 20) / 2e9})
    assert alpha == pytest.approx(5e-6) and bandwidth == pytest.approx(2e9)
    out = tmp_path / "MODEL.md"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "distribute_model.py"), "--tiny", "--out",
                           str(out)], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    import re
    fitted = re.search(r"α = ([0-9.]+) µs per step, bandwidth = ([0-9.]+) GB/s", text)
    assert fitted and float(fitted.group(2)) > 0
    checked = [line for line in text.splitlines() if line.startswith("| W2 |") or line.startswith("| W5 |")]
    assert len(checked) == 2 and all(float(line.split("|")[-2]) > 0 for line in checked)
    assert "### 100 Gb/s InfiniBand (EDR)" in text and "| ResNet-50 |" in text

"""Thread policy of the CPU backend: SciPy's OpenBLAS (the one BLAS compiled kernels use)
gets graphc's thread count unless the user chose one; Session.run from many threads at once
gives each caller its own correct answer (kernels are nogil and share one pool)."""
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import graphc as gc
from graphc.codegen.cpu import blas, parallel
from fuzz_graphs import pool_at_full_width, splits_on_the_pool

PROGRAM = r"""
import json, numpy as np, graphc as gc
from graphc.codegen.cpu import blas
g = gc.Graph()
with g.as_default():
    a = gc.placeholder(gc.float32, (3, 3))
    b = a @ a
out = gc.Session(graph=g, device="cpu").run(b, {a: np.eye(3, dtype=np.float32) * 2})
assert np.allclose(out, np.eye(3) * 4)
import os
print(json.dumps(dict(blas.info(), environment=os.environ.get("OPENBLAS_THREAD_TIMEOUT"))))
"""


def _blas_info(**env):
    full = {k: v for k, v in os.environ.items()
            if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT")}
    full.update({k: v for k, v in env.items() if v})
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=full, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_blas_threads_follow_graphc_threads():
    info = _blas_info(GRAPHC_NUM_THREADS="1")
    if "threads" not in info:
        pytest.skip(f"this SciPy's BLAS has no thread setter: {info}")
    assert info["threads"] == 1 and info["set_by"].startswith("graphc")


def test_user_blas_thread_setting_is_kept():
    info = _blas_info(GRAPHC_NUM_THREADS="2", OPENBLAS_NUM_THREADS="1")
    assert info["set_by"] == "OPENBLAS_NUM_THREADS"
    if "threads" in info:
        assert info["threads"] == 1


def test_blas_threads_sleep_at_once_unless_the_user_chose():
    """OpenBLAS' threads spinning after a product held the core graphc's own kernel threads
    needed (blas.py): graphc loads the library with its spin at the minimum, and leaves the
    process's environment as it was."""
    info = _blas_info(OPENBLAS_THREAD_TIMEOUT="")
    if "thread_timeout" not in info:
        pytest.skip(f"this SciPy's BLAS does not report its thread timeout: {info}")
    assert info["thread_timeout"] == int(blas.SLEEP_AT_ONCE) and "(graphc)" in info["spin"]
    assert info["environment"] is None
    info = _blas_info(OPENBLAS_THREAD_TIMEOUT="9")
    assert info["thread_timeout"] == 9 and "set by the user" in info["spin"] and info["environment"] == "9"


def test_concurrent_runs_from_many_threads_are_each_correct():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 512))
        w = gc.constant(np.random.default_rng(0).standard_normal((512, 64)).astype(np.float32))
        y = gc.reduce_sum(gc.tanh(x @ w) * 2.0 + 1.0, axis=1)
    sess = gc.Session(graph=g, device="cpu")
    step = sess.make_callable(y, [x])
    # big enough rows that the elementwise part is split across the kernel pool too
    inputs = [np.random.default_rng(k).standard_normal((512, 512)).astype(np.float32) for k in range(6)]
    expected = [gc.Session(graph=g, device="reference").run(y, {x: v}) for v in inputs]
    results, errors = {}, []

    def worker(k):
        try:
            for _ in range(5):
                results[k] = step(inputs[k]) if k % 2 else sess.run(y, {x: inputs[k]})
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    for k, want in enumerate(expected):
        np.testing.assert_allclose(results[k], want, rtol=1e-4, atol=1e-3)


# --- threads follow the free cores (cores.py) ------------------------------------------------------------
@pytest.mark.parametrize("busy, own, elapsed, cores, threads, width", [
    (0, 0, 200, 2, 2, 2),        # idle machine: every thread
    (200, 200, 200, 2, 2, 2),    # graphc itself keeps both cores busy: still every thread
    (100, 0, 200, 2, 2, 1),      # another process holds one of two cores
    (200, 100, 200, 2, 2, 1),    # ... while graphc uses the other
    (200, 0, 200, 2, 2, 1),      # both cores held by others: never fewer than one thread
    (100, 0, 1600, 16, 16, 15),  # one busy core of sixteen
    (0, 0, 200, 2, 1, 1),        # GRAPHC_NUM_THREADS=1 is a ceiling
    (0, 0, 0, 2, 2, 2),          # no time elapsed: keep the configured width
])
def test_free_width_subtracts_other_processes_load(busy, own, elapsed, cores, threads, width):
    from graphc.codegen.cpu.cores import free_width
    assert free_width(busy, own, elapsed, cores, threads) == width


FOLLOW = r"""
import json, numpy as np, graphc as gc
from graphc.codegen.cpu import blas, cache, cores, parallel
gc.Session(device="cpu").run(gc.constant(np.eye(3, dtype=np.float32)) @ gc.constant(np.eye(3, dtype=np.float32)))
KERNEL = '''import numpy as np
from numba import njit, types
def _kernel(out, LO, HI):
    for i in range(HI - LO):
        out[LO + i] = LO
kernel = njit((types.Array(types.int64, 1, "C"), types.int64, types.int64), nogil=True, cache=True)(_kernel)
'''
kernel = cache.load(KERNEL)
parts = cache.load(parallel.part_module_source(kernel.__name__, ['types.Array(types.int64, 1, "C")', "types.int64", "types.int64"], 1, 2))
seen = {}
for width in (1, 2):
    cores.monitor().set_width(width)
    out = np.full(100, -1, np.int64)
    parallel.call(kernel.kernel, 100, parallel.WAKE_WORK, (out, 0, 0), 1, 2, lambda k: (parts.run, parts.part.address), 0)
    seen[width] = {"parts": sorted(set(out.tolist())), "blas": blas.info().get("threads"), "follows": blas.info().get("follows_free_cores")}
print(json.dumps(seen))
"""


def test_kernel_pool_and_blas_follow_the_width():
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    env.update(GRAPHC_NUM_THREADS="2", GRAPHC_ADAPTIVE_THREADS="0")  # the width is set by hand here
    out = subprocess.run([sys.executable, "-c", FOLLOW], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["1"]["parts"] == [0]  # one part: [0, 100)
    if parallel.NATIVE:
        assert seen["2"]["parts"] == [0, 50]  # [0, 50) and [50, 100)
    if seen["1"]["follows"]:  # OpenBLAS' own-threads build (SciPy's wheels)
        assert (seen["1"]["blas"], seen["2"]["blas"]) == (1, 2)


# --- the pool (parallel.py): parts on native threads --------------------------------------------------------
@pytest.fixture
def full_width_pool():
    with splits_on_the_pool(True):
        yield from pool_at_full_width()


def test_a_part_that_raises_raises_in_the_caller_with_the_op_named(full_width_pool):
    """The error of a part run on a pool thread reaches Session.run as the kernel's own."""
    n = 4096
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.int32, (n,), "x")
        e = gc.placeholder(gc.int32, (n,), "e")
        y = gc.pow(x, e) + x
    sess = gc.Session(graph=g, device="cpu")
    xs = np.arange(n, dtype=np.int32) % 7
    good = np.full(n, 2, np.int32)
    jobs = parallel.control()[parallel.GEN]
    np.testing.assert_array_equal(sess.run(y, {x: xs, e: good}), xs ** 2 + xs)
    if parallel.NATIVE and parallel.THREADS > 1:
        assert parallel.control()[parallel.GEN] > jobs  # it ran on the pool
    for where in (0, n - 1):  # in the caller's part, and in the last part (a worker's, when it takes it)
        bad = good.copy()
        bad[where] = -1
        with pytest.raises(gc.GraphcError, match="negative integer powers"):
            sess.run(y, {x: xs, e: bad})
    np.testing.assert_array_equal(sess.run(y, {x: xs, e: good}), xs ** 2 + xs)  # and it still runs


FORKED = r"""
import os, numpy as np, graphc as gc
g = gc.Graph()
with g.as_default():
    x = gc.placeholder(gc.float32, (None,), "x")
    y = gc.tanh(x) * 2.0 + 1.0
sess = gc.Session(graph=g, device="cpu")
xs = np.linspace(-3, 3, 1 << 17).astype(np.float32)
want = np.tanh(xs) * 2 + 1
assert np.allclose(sess.run(y, {x: xs}), want, atol=1e-6)
pid = os.fork()
if pid == 0:  # the parent's pool threads do not exist here: the child starts its own
    ok = np.allclose(sess.run(y, {x: xs}), want, atol=1e-6) and np.allclose(sess.run(y, {x: xs[::-1].copy()}), want[::-1], atol=1e-6)
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
assert os.WEXITSTATUS(status) == 0, status
print("forked ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_split_kernels_on_its_own_pool():
    env = dict(os.environ, GRAPHC_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", FORKED], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and "forked ok" in out.stdout, out.stderr


SLEEPING = r"""
import time, numpy as np, graphc as gc
from graphc.codegen.cpu import blas, parallel
g = gc.Graph()
with g.as_default():
    x = gc.placeholder(gc.float32, (None,), "x")
    y = x * 3.0 - 1.0
sess = gc.Session(graph=g, device="cpu")
small = np.arange(parallel.MIN_WORK, dtype=np.float32)
large = np.arange(parallel.WAKE_WORK * 2, dtype=np.float32)
assert np.array_equal(sess.run(y, {x: large}), large * 3 - 1)
ctl, workers = parallel.control(), len(parallel.pool().workers)
assert workers == 1
deadline = time.monotonic() + 60
while ctl[parallel.SLEEPERS] < workers and time.monotonic() < deadline:
    time.sleep(0.01)  # the workers stop spinning and sleep
assert ctl[parallel.SLEEPERS] == workers
jobs = ctl[parallel.GEN]
assert np.array_equal(sess.run(y, {x: small}), small * 3 - 1)  # the caller takes every part
assert ctl[parallel.SLEEPERS] == workers and ctl[parallel.GEN] == jobs + 1, (ctl[parallel.SLEEPERS], ctl[parallel.GEN], jobs)
assert np.array_equal(sess.run(y, {x: large}), large * 3 - 1)  # and this one wakes them
deadline = time.monotonic() + 60
while ctl[parallel.SLEEPERS] == workers and time.monotonic() < deadline:
    time.sleep(0.001)
assert ctl[parallel.SLEEPERS] < workers and ctl[parallel.GEN] == jobs + 2
deadline = time.monotonic() + 60
while ctl[parallel.SLEEPERS] < workers and time.monotonic() < deadline:
    time.sleep(0.01)  # asleep again
for k in range(parallel.WAKE_WORK // parallel.MIN_WORK):  # a stream of small jobs wakes them too
    assert ctl[parallel.SLEEPERS] == workers, k
    assert np.array_equal(sess.run(y, {x: small}), small * 3 - 1)
deadline = time.monotonic() + 60
while ctl[parallel.SLEEPERS] == workers and time.monotonic() < deadline:
    time.sleep(0.001)
assert ctl[parallel.SLEEPERS] < workers
print("woken")
"""


@pytest.mark.skipif(not parallel.NATIVE, reason="the native pool runs on Linux x86-64")
def test_sleeping_workers_wake_for_a_large_job_or_a_stream_of_small_ones_and_not_for_one_small_job():
    env = dict(os.environ, GRAPHC_NUM_THREADS="2", GRAPHC_ADAPTIVE_THREADS="0")
    out = subprocess.run([sys.executable, "-c", SLEEPING], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and "woken" in out.stdout, out.stderr


HOGGED = r"""
import os, subprocess, sys, time, numpy as np, graphc as gc
from graphc.codegen.cpu import cores
gc.Session(device="cpu").run(gc.constant(np.ones(3, np.float32)) * 2.0)
monitor = cores.monitor()
core = max(os.sched_getaffinity(0))
hog = subprocess.Popen([sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{core}}})\nwhile True: pass"])
try:
    deadline = time.monotonic() + 20
    while monitor.width >= monitor.threads and time.monotonic() < deadline:
        time.sleep(0.05)
    print("narrowed", monitor.threads, monitor.width)
finally:
    hog.kill()
"""


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2
                    or not os.path.exists("/proc/stat"), reason="needs Linux and two cores")
def test_a_busy_core_narrows_the_width():
    """A real competing process pinned to one core: the monitor sees it (the machine may be
    busier still, which only narrows the width sooner)."""
    env = {k: v for k, v in os.environ.items() if k != "GRAPHC_ADAPTIVE_THREADS"}
    env["GRAPHC_NUM_THREADS"] = str(len(os.sched_getaffinity(0)))
    out = subprocess.run([sys.executable, "-c", HOGGED], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    _, threads, width = out.stdout.split()
    assert int(width) < int(threads)

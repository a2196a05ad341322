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

PROGRAM = r"""
import json, numpy as np, graphc as gc
from graphc.codegen.cpu import blas
g = gc.Graph()
with g.as_default():
    a = gc.placeholder(gc.float32, (3, 3))
    b = a @ a
out = gc.Session(graph=g, device="cpu").run(b, {a: np.eye(3, dtype=np.float32) * 2})
assert np.allclose(out, np.eye(3) * 4)
print(json.dumps(blas.info()))
"""


def _blas_info(**env):
    full = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    full.update(env)
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

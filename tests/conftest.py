"""Shared fixtures. Op and graph tests run through ``evaluate``, which is parametrized over
every device (and, once the optimizer lands, every optimization level): new backends extend
``DEVICES`` instead of copying tests."""
from __future__ import annotations

import os

os.environ.setdefault("GRAPHC_VALIDATE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import graphc as gc  # noqa: E402
from support import CONFIGS, TOLERANCES, assert_close  # noqa: E402,F401


@pytest.fixture(params=CONFIGS, ids=[f"{d}-O{level}" for d, level in CONFIGS])
def device(request, monkeypatch):
    """The device name; every Session the test makes also takes the parametrized
    optimization level (through GRAPHC_OPTIMIZE), so each graph test runs at every level."""
    name, level = request.param
    monkeypatch.setenv("GRAPHC_OPTIMIZE", str(level))
    return name


@pytest.fixture
def graph():
    """A fresh graph, installed as the default for the test."""
    g = gc.Graph()
    with g.as_default():
        yield g


@pytest.fixture
def evaluate(graph, device):
    """``evaluate(fetches, feed_dict=None)``: run on the test's device in a new Session,
    initializing the graph's variables first. On a compiled device the same fetches also
    run on the reference backend and must agree with it."""
    def run(fetches, feed_dict=None, *, session_kwargs=None):
        results = _run_on(graph, device, fetches, feed_dict, session_kwargs or {})
        if device != "reference":
            reference = _run_on(graph, "reference", fetches, feed_dict, session_kwargs or {})
            _assert_same_structure_close(results, reference)
        return results
    return run


def _run_on(graph, device, fetches, feed_dict, session_kwargs):
    with gc.Session(graph=graph, device=device, **session_kwargs) as sess:
        variables = gc.global_variables(graph)
        if variables:
            sess.run(gc.variables_initializer(variables))
        return sess.run(fetches, feed_dict)


def _assert_same_structure_close(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same_structure_close(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_structure_close(x, y)
    elif a is None:
        assert b is None
    else:
        b = np.asarray(b)
        atol = None
        if b.dtype.kind == "f" and b.size:
            # backends sum in different orders (blocked BLAS, GPU trees): the rounding error
            # of a sum scales with its terms, not with its result, so the absolute tolerance
            # scales with the largest value around
            finite = np.abs(b[np.isfinite(b)])
            scale = max(1.0, float(finite.max())) if finite.size else 1.0
            atol = TOLERANCES.get(b.dtype, (1e-5, 1e-6))[1] * scale
        assert_close(a, b, atol=atol)


def pytest_collection_modifyitems(config, items):
    """Under numba's CUDA simulator every GPU thread is a Python call, and the op suite is the
    bulk of that pass: run each op test's first case and a fixed third of the others there
    (chosen by a hash of the test id, so the sample is the same on every run). The CPU pass,
    and a real GPU, run them all (support.py ``SIMULATED``)."""
    from support import SIMULATED
    import zlib
    if not SIMULATED:
        return
    seen: dict = {}
    kept, dropped = [], []
    for item in items:
        base = item.nodeid.split("[")[0]
        first = base not in seen
        seen[base] = True
        in_op_suite = "tests/ops/" in item.nodeid.replace("\\", "/")
        if not in_op_suite or first or zlib.crc32(item.nodeid.encode()) % 3 == 0:
            kept.append(item)
        else:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept

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

"""Test helpers shared by every test module (``pythonpath = ["tests"]``)."""
from __future__ import annotations

import os

import numpy as np

# (device, optimization level) pairs every op and graph test runs on. The reference backend
# runs at every level (results must not depend on it); compiled backends run at the default
# level and are compared with the reference on every call of the ``evaluate`` fixture.
# GRAPHC_TEST_DEVICES picks the devices (default "reference,cpu"); the CUDA pass of
# `dev.py test` runs with "cuda" under numba's simulator.
_CONFIGS_OF = {"reference": (("reference", 0), ("reference", 2)), "cpu": (("cpu", 2),), "cuda": (("cuda", 2),)}
CONFIGS = tuple(c for d in os.environ.get("GRAPHC_TEST_DEVICES", "reference,cpu").split(",") for c in _CONFIGS_OF[d])
DEVICES = tuple(dict.fromkeys(d for d, _ in CONFIGS))
# Under numba's CUDA simulator every GPU thread is a Python call: tests that sweep many values
# (dtypes, samples, repetitions) run a sample of them there, and all of them on the CPU backend
# and on a real GPU.
SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def simulated(device: str) -> bool:
    """Whether ``device`` runs under numba's CUDA simulator in this process."""
    return device == "cuda" and SIMULATED


def differences_on(device: str) -> dict:
    """check_gradients' keyword for ``device``: under the simulator, the finite differences
    (two runs of the loss per input element, each launch interpreted in Python) run on the
    reference, and the simulated gradient kernels are checked against them."""
    return {"numeric_device": "reference"} if simulated(device) else {}

FLOAT_EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.75, 1e-40, -1e-310, 1e30, -1e30,
               np.inf, -np.inf, np.nan]

TOLERANCES = {
    np.dtype(np.float32): (1e-5, 1e-6),
    np.dtype(np.float64): (1e-10, 1e-12),
}


def float_edges(dtype) -> np.ndarray:
    """Edge values (zeros, denormals, huge values, inf, NaN) in ``dtype``."""
    with np.errstate(over="ignore"):
        return np.array(FLOAT_EDGES, dtype=np.float64).astype(dtype)


def assert_close(actual, expected, rtol=None, atol=None, check_dtype=True):
    """Same dtype, same shape, values equal within the dtype's tolerance; NaN matches NaN and
    infinities must match exactly."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if check_dtype:
        assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != expected {expected.dtype}"
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    if expected.dtype.kind in "fc" or actual.dtype.kind in "fc":
        default_rtol, default_atol = TOLERANCES.get(np.result_type(actual.dtype, expected.dtype), (1e-5, 1e-6))
        np.testing.assert_allclose(actual, expected, rtol=default_rtol if rtol is None else rtol,
                                   atol=default_atol if atol is None else atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(actual, expected)


# --- case tables: many fetches checked in one run (compiled backends pay per graph) -------------
import sys  # noqa: E402

import pytest  # noqa: E402


class Feeds:
    """Makes placeholders and remembers what to feed them."""

    def __init__(self):
        self.feed_dict = {}

    def __call__(self, value, shape=None):
        import graphc as gc
        value = np.asarray(value)
        p = gc.placeholder(gc.as_dtype(value.dtype), tuple(value.shape) if shape is None else shape)
        self.feed_dict[p] = value
        return p


class Cases(dict):
    """name -> (tensor, expected array, expected static shape or None for expected.shape)."""

    def add(self, name, tensor, expected, static=None):
        assert name not in self, name
        self[name] = (tensor, np.asarray(expected), static)


def check(evaluate, cases: Cases, feeds: Feeds = None, rtol=None, atol=None):
    """Run every case in one session run; check dtype, static shape and value of each."""
    out = evaluate({k: c[0] for k, c in cases.items()}, feeds.feed_dict if feeds else None)
    for k, (t, expected, static) in cases.items():
        want_static = tuple(expected.shape) if static is None else tuple(static)
        assert t.dtype.np == expected.dtype, f"case {k!r}: static dtype {t.dtype} != {expected.dtype}"
        assert tuple(t.shape) == want_static, f"case {k!r}: static shape {t.shape} != {want_static}"
        try:
            assert_close(out[k], expected, rtol=rtol, atol=atol)
        except AssertionError as e:
            raise AssertionError(f"case {k!r}: {e}") from None
    return out


def _caller_file(depth: int = 2) -> str:
    return os.path.basename(sys._getframe(depth).f_code.co_filename)


def build_error(exc, fn, *fragments):
    """``fn()`` (written on the caller's line) raises ``exc`` naming the fragments and the
    caller's file:line."""
    frame = sys._getframe(1)
    where = f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    assert where in msg, msg
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


def made_here(value):
    """``(value, "file:line" of the caller)``: where the node was made."""
    frame = sys._getframe(1)
    return value, f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


def run_error(evaluate, fetch, feed_dict, where, *fragments):
    """Running ``fetch`` raises InvalidArgumentError naming the fragments and ``where`` (the
    node's file:line from made_here)."""
    import graphc as gc
    with pytest.raises(gc.InvalidArgumentError) as info:
        evaluate(fetch, feed_dict)
    msg = str(info.value)
    assert where in msg, msg
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg

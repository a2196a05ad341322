"""Test helpers shared by every test module (``pythonpath = ["tests"]``)."""
from __future__ import annotations

import numpy as np

# Devices every op and graph test runs on. Later backends add themselves here.
DEVICES = ("reference",)
# Optimization levels every graph test runs at; results must not depend on the level.
OPT_LEVELS = (0, 2)

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

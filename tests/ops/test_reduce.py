"""Reductions (sum, mean, max, min, prod, logsumexp, any, all) and argmax/argmin.

Expected values are independent NumPy/SciPy expressions. Accumulation types (graphc's
documented rules, which follow NumPy): integer and bool sums and products are int64, integer
and bool means float64, logsumexp of integers uses NumPy's float type for them (float16
widened to float32). Empty axes give the identities: 0, 1, NaN, -inf/+inf or integer limits.
"""
from __future__ import annotations

import inspect
import os

import numpy as np
import pytest
import scipy.special as sps

import graphc as gc
from support import assert_close, float_edges, simulated

THIS_FILE = os.path.basename(__file__)

FLOATS = [gc.float32, gc.float64]
INTS = [gc.int8, gc.int32, gc.int64, gc.uint8]
NUMERIC = FLOATS + INTS
ALL = NUMERIC + [gc.bool_]

REDUCTIONS = ["reduce_sum", "reduce_prod", "reduce_mean", "reduce_max", "reduce_min",
              "reduce_logsumexp", "reduce_any", "reduce_all"]
AXES = [None, 0, -1, 1, (0, 2), (-1, -3), ()]


def lineno() -> int:
    return inspect.currentframe().f_back.f_lineno


def assert_names_op_and_line(message: str, op: str, line: int) -> None:
    assert op in message, message
    assert f"{THIS_FILE}:{line}" in message, message


def float_type_of(np_dtype) -> np.dtype:
    """NumPy's float type for float functions of ``np_dtype`` (float16 widened to float32)."""
    t = np.exp(np.zeros(1, np_dtype)).dtype
    return np.dtype(np.float32) if t == np.float16 else t


def numpy_reduce(op: str, x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """The NumPy/SciPy expression each reduction must match, in graphc's accumulation type."""
    integral = x.dtype.kind in "iub"
    with np.errstate(all="ignore"):
        if op == "reduce_sum":
            return np.asarray(np.sum(x, axis=axis, keepdims=keepdims, dtype=np.int64 if integral else None))
        if op == "reduce_prod":
            return np.asarray(np.prod(x, axis=axis, keepdims=keepdims, dtype=np.int64 if integral else None))
        if op == "reduce_mean":
            return np.asarray(np.mean(x, axis=axis, keepdims=keepdims))
        if op == "reduce_max":
            return np.asarray(np.max(x, axis=axis, keepdims=keepdims))
        if op == "reduce_min":
            return np.asarray(np.min(x, axis=axis, keepdims=keepdims))
        if op == "reduce_logsumexp":
            ft = float_type_of(x.dtype)
            return np.asarray(sps.logsumexp(x.astype(ft), axis=axis, keepdims=keepdims)).astype(ft)
        if op == "reduce_any":
            return np.asarray(np.any(x, axis=axis, keepdims=keepdims))
        if op == "reduce_all":
            return np.asarray(np.all(x, axis=axis, keepdims=keepdims))
    raise ValueError(op)


def sample3(dtype: gc.DType) -> np.ndarray:
    """A (2, 3, 4) array with a few zeros and ties."""
    rng = np.random.default_rng(1234)
    if dtype.is_bool:
        return rng.random((2, 3, 4)) > 0.3
    if dtype.is_floating:
        return (rng.integers(-12, 13, size=(2, 3, 4)) * 0.25).astype(dtype.np)
    low = 0 if dtype.np.kind == "u" else -3
    return rng.integers(low, 4, size=(2, 3, 4)).astype(dtype.np)


# ---------------------------------------------------------------------------------------------
# every reduction x every axis form x keepdims, one graph per dtype
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ALL, ids=str)
def test_reductions_all_axes(graph, evaluate, device, dtype):
    if simulated(device) and dtype not in (gc.float32, gc.int64, gc.bool_):
        pytest.skip("a sample of the dtypes under the CUDA simulator (float32, int64, bool): 28 s each")
    xv = sample3(dtype)
    x = gc.placeholder(dtype, shape=(None, 3, 4))
    fetches = {}
    for op in REDUCTIONS:
        for axis in AXES:
            for keepdims in (False, True):
                fetches[(op, axis, keepdims)] = getattr(gc, op)(x, axis=axis, keepdims=keepdims)
    keys = list(fetches)
    out = evaluate([fetches[k] for k in keys], {x: xv})
    for k, got in zip(keys, out):
        op, axis, keepdims = k
        expected = numpy_reduce(op, xv, axis, keepdims)
        assert got.dtype == fetches[k].dtype.np, k
        assert_close(got, expected)
        # the static shape agrees with the value (the batch dim is unknown)
        static = fetches[k].shape
        assert len(static) == got.ndim, k
        assert all(s is None or s == g for s, g in zip(static, got.shape)), k


def test_reduction_static_shapes(graph):
    x = gc.placeholder(gc.float32, shape=(None, 3, 4))
    assert gc.reduce_sum(x).shape == ()
    assert gc.reduce_sum(x, keepdims=True).shape == (1, 1, 1)
    assert gc.reduce_mean(x, axis=1).shape == (None, 4)
    assert gc.reduce_max(x, axis=-1, keepdims=True).shape == (None, 3, 1)
    assert gc.reduce_min(x, axis=(0, -1)).shape == (3,)
    assert gc.reduce_prod(x, axis=(2, 0), keepdims=True).shape == (1, 3, 1)
    assert gc.reduce_any(x, axis=()).shape == (None, 3, 4)
    assert gc.argmax(x, axis=-1).shape == (None, 3)
    assert gc.argmin(x, axis=0, keepdims=True).shape == (1, 3, 4)
    assert gc.argmax(x).shape == ()


def test_accumulation_dtypes(graph):
    def p(dtype):
        return gc.placeholder(dtype, shape=(None, 2))

    for d in INTS + [gc.bool_]:
        assert gc.reduce_sum(p(d)).dtype is gc.int64, d
        assert gc.reduce_prod(p(d)).dtype is gc.int64, d
        assert gc.reduce_mean(p(d)).dtype is gc.float64, d
        assert gc.reduce_any(p(d)).dtype is gc.bool_, d
        assert gc.reduce_max(p(d)).dtype is d
    for d in FLOATS:
        for op in ("reduce_sum", "reduce_prod", "reduce_mean", "reduce_max", "reduce_min", "reduce_logsumexp"):
            assert getattr(gc, op)(p(d)).dtype is d
        assert gc.reduce_all(p(d)).dtype is gc.bool_
    assert gc.reduce_logsumexp(p(gc.int32)).dtype is gc.float64
    assert gc.reduce_logsumexp(p(gc.int8)).dtype is gc.float32
    assert gc.reduce_logsumexp(p(gc.bool_)).dtype is gc.float32


def test_integer_sums_do_not_overflow_the_input_type(graph, evaluate):
    i8 = gc.placeholder(gc.int8, shape=(None,))
    u8 = gc.placeholder(gc.uint8, shape=(None,))
    b = gc.placeholder(gc.bool_, shape=(None,))
    i32 = gc.placeholder(gc.int32, shape=(None,))
    i8v = np.array([127, 127, 127, -128], np.int8)
    u8v = np.array([255, 255, 255, 255], np.uint8)
    bv = np.array([True, True, False, True])
    i32v = np.array([2 ** 31 - 1, 2 ** 31 - 1], np.int32)
    out = evaluate({"i8": gc.reduce_sum(i8), "u8": gc.reduce_sum(u8), "b": gc.reduce_sum(b),
                    "i32": gc.reduce_sum(i32), "i8_prod": gc.reduce_prod(i8),
                    "u8_mean": gc.reduce_mean(u8), "i32_mean": gc.reduce_mean(i32)},
                   {i8: i8v, u8: u8v, b: bv, i32: i32v})
    assert_close(out["i8"], np.int64(i8v.astype(np.int64).sum()))
    assert out["i8"] == 253
    assert_close(out["u8"], np.int64(1020))
    assert_close(out["b"], np.sum(bv))
    assert_close(out["i32"], np.int64(2 * (2 ** 31 - 1)))
    assert_close(out["i8_prod"], np.prod(i8v, dtype=np.int64))
    assert_close(out["u8_mean"], np.mean(u8v))
    assert_close(out["i32_mean"], np.mean(i32v))


# ---------------------------------------------------------------------------------------------
# float edge values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_reductions_float_edges(graph, evaluate, dtype):
    inf, nan = np.inf, np.nan
    edges = float_edges(dtype.np).reshape(2, 7)  # row 1 holds denormals, +-1e30, +-inf, NaN
    extra = np.array([[inf, 1.0, 2.0], [-inf, -inf, 0.0], [nan, inf, -inf],
                      [1e30, 1e30, 1e30], [-1e30, -1e30, -1e30], [-0.0, -0.0, -0.0]], dtype.np)
    e = gc.placeholder(dtype, shape=(2, None))
    x = gc.placeholder(dtype, shape=(None, 3))
    fetches = {}
    for op in REDUCTIONS:
        for axis in (None, 0, 1):
            fetches[(op, "edges", axis)] = getattr(gc, op)(e, axis=axis)
            fetches[(op, "extra", axis)] = getattr(gc, op)(x, axis=axis)
    keys = list(fetches)
    out = evaluate([fetches[k] for k in keys], {e: edges, x: extra})
    for k, got in zip(keys, out):
        op, which, axis = k
        expected = numpy_reduce(op, edges if which == "edges" else extra, axis, False)
        assert_close(got, expected)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_logsumexp_is_stable(graph, evaluate, dtype):
    xv = np.array([[1000.0, 1000.0, 999.0], [-1000.0, -1001.0, -1000.0], [0.0, 1e-40, -1e-310]], dtype.np)
    x = gc.placeholder(dtype, shape=(None, 3))
    out = evaluate(gc.reduce_logsumexp(x, axis=-1, keepdims=True), {x: xv})
    expected = np.asarray(sps.logsumexp(xv.astype(np.float64), axis=-1, keepdims=True)).astype(dtype.np)
    assert np.all(np.isfinite(out))
    assert_close(out, expected)


# ---------------------------------------------------------------------------------------------
# empty axes: the identities
# ---------------------------------------------------------------------------------------------
def _identities(np_dtype):
    kind = np_dtype.kind
    acc = np.dtype(np.int64) if kind in "iub" else np_dtype
    mean_t = np.dtype(np.float64) if kind in "iub" else np_dtype
    if kind == "f":
        lo, hi = -np.inf, np.inf
    elif kind == "b":
        lo, hi = False, True
    else:
        lo, hi = np.iinfo(np_dtype).min, np.iinfo(np_dtype).max
    return {
        "reduce_sum": (0, acc), "reduce_prod": (1, acc), "reduce_mean": (np.nan, mean_t),
        "reduce_max": (lo, np_dtype), "reduce_min": (hi, np_dtype),
        "reduce_logsumexp": (-np.inf, float_type_of(np_dtype)),
        "reduce_any": (False, np.dtype(bool)), "reduce_all": (True, np.dtype(bool)),
    }


@pytest.mark.parametrize("dtype", ALL, ids=str)
def test_reductions_over_empty_axes(graph, evaluate, dtype):
    x = gc.placeholder(dtype, shape=(None, 3))
    s = gc.placeholder(dtype, shape=(0, 2))  # statically empty
    xv = np.zeros((0, 3), dtype.np)
    cases = [(x, 0, False, (3,)), (x, -2, True, (1, 3)), (x, None, False, ()), (x, None, True, (1, 1)),
             (x, 1, False, (0,)), (s, (0, 1), False, ()), (s, 0, False, (2,))]
    fetches = {}
    for op in REDUCTIONS:
        for i, (t, axis, keepdims, _) in enumerate(cases):
            fetches[(op, i)] = getattr(gc, op)(t, axis=axis, keepdims=keepdims)
    keys = list(fetches)
    out = evaluate([fetches[k] for k in keys], {x: xv, s: np.zeros((0, 2), dtype.np)})
    ident = _identities(dtype.np)
    for (op, i), got in zip(keys, out):
        value, out_dtype = ident[op]
        shape = cases[i][3]
        assert_close(got, np.full(shape, value, dtype=out_dtype))


# ---------------------------------------------------------------------------------------------
# argmax / argmin
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ALL, ids=str)
def test_argmax_argmin(graph, evaluate, dtype):
    xv = sample3(dtype)[0]  # (3, 4) with ties
    x = gc.placeholder(dtype, shape=(None, 4))
    fetches = {}
    for name in ("argmax", "argmin"):
        for axis in (None, 0, 1, -1, -2):
            for out_type in (gc.int32, gc.int64):
                for keepdims in (False, True):
                    fetches[(name, axis, out_type.name, keepdims)] = getattr(gc, name)(
                        x, axis=axis, output_type=out_type, keepdims=keepdims)
    keys = list(fetches)
    out = evaluate([fetches[k] for k in keys], {x: xv})
    for k, got in zip(keys, out):
        name, axis, out_type, keepdims = k
        expected = getattr(np, name)(xv, axis=axis, keepdims=keepdims).astype(out_type)
        assert_close(got, expected)


def test_argmax_default_output_type_is_int64(graph, evaluate):
    x = gc.placeholder(gc.float32, shape=(None,))
    t = gc.argmax(x)
    assert t.dtype is gc.int64
    out = evaluate({"max": t, "min": gc.argmin(x, 0)}, {x: np.array([1.0, 5.0, 5.0, -2.0], np.float32)})
    assert_close(out["max"], np.int64(1))  # the first of tied maxima
    assert_close(out["min"], np.int64(3))


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_argmax_argmin_float_edges(graph, evaluate, dtype):
    edges = float_edges(dtype.np)
    no_nan = edges[~np.isnan(edges)]
    m = np.array([[1.0, np.nan, 3.0, np.nan], [np.nan, 2.0, 5.0, 5.0], [-0.0, 0.0, -np.inf, np.inf]], dtype.np)
    e = gc.placeholder(dtype, shape=(None,))
    n = gc.placeholder(dtype, shape=(None,))
    x = gc.placeholder(dtype, shape=(3, 4))
    out = evaluate({"e_max": gc.argmax(e), "e_min": gc.argmin(e), "n_max": gc.argmax(n), "n_min": gc.argmin(n),
                    "m_max0": gc.argmax(x, axis=0), "m_min1": gc.argmin(x, axis=1),
                    "m_max1": gc.argmax(x, axis=1)},
                   {e: edges, n: no_nan, x: m})
    assert_close(out["e_max"], np.argmax(edges))  # NaN counts as the extreme
    assert_close(out["e_min"], np.argmin(edges))
    assert_close(out["n_max"], np.argmax(no_nan))
    assert no_nan[out["n_max"]] == np.inf
    assert_close(out["n_min"], np.argmin(no_nan))
    assert no_nan[out["n_min"]] == -np.inf
    assert_close(out["m_max0"], np.argmax(m, axis=0))
    assert_close(out["m_min1"], np.argmin(m, axis=1))
    assert_close(out["m_max1"], np.argmax(m, axis=1))


def test_argmax_errors(graph, evaluate):
    x = gc.placeholder(gc.float32, shape=(None, 3))
    with pytest.raises(gc.DTypeError) as info:
        line = lineno() + 1
        gc.argmax(x, axis=1, output_type=gc.float32)
    assert_names_op_and_line(str(info.value), "argmax", line)
    with pytest.raises(gc.ShapeError) as info:
        line = lineno() + 1
        gc.argmin(x, axis=2)
    assert_names_op_and_line(str(info.value), "argmin", line)
    with pytest.raises(gc.ShapeError) as info:
        line = lineno() + 1
        gc.argmax(gc.placeholder(gc.float32, shape=(0, 3)), axis=0)
    assert_names_op_and_line(str(info.value), "argmax", line)
    # an axis that turns out empty at run time
    line = lineno() + 1
    am = gc.argmax(x, axis=0)
    assert_close(evaluate(am, {x: np.array([[1, 5, 2], [3, 0, 2]], np.float32)}), np.array([1, 0, 0]))
    with pytest.raises(gc.InvalidArgumentError) as info:
        evaluate(am, {x: np.zeros((0, 3), np.float32)})
    assert_names_op_and_line(str(info.value), "argmax", line)


# ---------------------------------------------------------------------------------------------
# other inputs and errors
# ---------------------------------------------------------------------------------------------
def test_python_values_and_scalars(graph, evaluate):
    s = gc.placeholder(gc.float64, shape=())
    fetches = {
        "list_sum": gc.reduce_sum([[1, 2], [3, 4]], axis=1),
        "list_mean": gc.reduce_mean([1.0, 2.0, 4.0]),
        "list_any": gc.reduce_any([[False, False], [True, False]], axis=-1),
        "scalar_sum": gc.reduce_sum(s),
        "scalar_max": gc.reduce_max(s, keepdims=True),
        "ndarray_prod": gc.reduce_prod(np.array([[2, 3], [4, 5]], np.int32), axis=0),
    }
    out = evaluate(fetches, {s: np.float64(2.5)})
    assert_close(out["list_sum"], np.array([3, 7], np.int64))  # Python ints are int64
    assert_close(out["list_mean"], np.float32(7.0 / 3.0))  # Python floats are float32
    assert_close(out["list_any"], np.array([False, True]))
    assert_close(out["scalar_sum"], np.float64(2.5))
    assert_close(out["scalar_max"], np.float64(2.5))
    assert_close(out["ndarray_prod"], np.array([8, 15], np.int64))


@pytest.mark.parametrize("op", REDUCTIONS)
def test_reduction_axis_errors(graph, op):
    x = gc.placeholder(gc.float32, shape=(None, 3))
    with pytest.raises(gc.ShapeError) as info:
        line = lineno() + 1
        getattr(gc, op)(x, axis=2)
    assert_names_op_and_line(str(info.value), op, line)
    with pytest.raises(gc.ShapeError) as info:
        line = lineno() + 1
        getattr(gc, op)(x, axis=-3)
    assert_names_op_and_line(str(info.value), op, line)
    with pytest.raises(gc.ShapeError) as info:
        line = lineno() + 1
        getattr(gc, op)(x, axis=(0, -2))  # the same axis twice
    assert_names_op_and_line(str(info.value), op, line)
    with pytest.raises(gc.ShapeError) as info:
        line = lineno() + 1
        getattr(gc, op)(gc.placeholder(gc.float32, shape=()), axis=0)
    assert_names_op_and_line(str(info.value), op, line)


def test_reductions_feed_different_batch_sizes(graph, evaluate):
    x = gc.placeholder(gc.float32, shape=(None, 2))
    m = gc.reduce_mean(x, axis=0)
    for n in (1, 5):
        xv = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
        assert_close(evaluate(m, {x: xv}), np.mean(xv, axis=0))


# Fixed small shapes, where every extent is a literal in the kernel: compiling a reduce_max
# of 16 float32 elements never finished (LLVM's vectorizer on a chain of NaN-propagating
# selects), a logsumexp of 12 took minutes. The test timeout makes a hang a failure.
STATIC_SHAPES = [((16,), None), ((8,), None), ((12,), -1), ((33,), 0), ((1, 4, 4, 2), None), ((16, 2), 0),
                 ((3, 17), 1), ((2, 3, 16), (0, 2)), ((4, 4), (0, 1))]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("op", REDUCTIONS + ["argmax", "argmin"])
def test_every_reduction_over_small_static_shapes(graph, evaluate, op):
    rng = np.random.default_rng(5)
    fetches, feeds, expected = {}, {}, {}
    for k, (shape, axis) in enumerate(STATIC_SHAPES):
        if op in ("argmax", "argmin") and not isinstance(axis, int):
            continue
        boolean = op in ("reduce_any", "reduce_all")
        value = rng.uniform(-2, 2, shape)
        value = value > 0 if boolean else value.astype(np.float32)
        if not boolean and k % 3 == 0:
            value.reshape(-1)[k % value.size] = np.nan  # NaNs must still reach max/min/logsumexp
        x = gc.placeholder(gc.bool_ if boolean else gc.float32, shape, name=f"x{k}")
        fetches[k] = getattr(gc, op)(x, axis=axis)
        feeds[x] = value
        with np.errstate(all="ignore"):
            if op == "reduce_logsumexp":
                expected[k] = sps.logsumexp(value.astype(np.float64), axis=axis).astype(np.float32)
            elif op in ("argmax", "argmin"):
                expected[k] = getattr(np, op)(value, axis=axis)
            else:
                name = {"reduce_sum": "sum", "reduce_prod": "prod", "reduce_mean": "mean", "reduce_max": "max",
                        "reduce_min": "min", "reduce_any": "any", "reduce_all": "all"}[op]
                expected[k] = getattr(np, name)(value, axis=axis)
    results = evaluate(fetches, feeds)
    for k, want in expected.items():
        assert_close(results[k], np.asarray(want).astype(np.asarray(results[k]).dtype), rtol=1e-5, atol=1e-5)


def test_a_mean_feeding_a_row_epilogue_keeps_its_dtype(graph, evaluate):
    # (the mean divides by a run-time count: float32 / int64 widened to float64 and the
    # float32 sigmoid of the row epilogue did not compile; found by the state fuzzer)
    x = gc.placeholder(gc.float32, (2, 3), name="x")
    xv = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    y = evaluate(gc.sigmoid(x - gc.reduce_mean(x, axis=-1, keepdims=True)), {x: xv})
    want = 1 / (1 + np.exp(-(xv - xv.mean(-1, keepdims=True))))
    assert_close(y, want.astype(np.float32))


def test_tf1_keywords_reduction_indices_and_keep_dims(graph):
    """TF1's names for axis and keepdims, on every reduction; both names at once is an error
    that names the op and the user's line."""
    x = gc.placeholder(gc.float32, shape=(None, 3, 4))
    for op in REDUCTIONS:
        fn = getattr(gc, op)
        assert fn(x, reduction_indices=[1, 2], keep_dims=True).shape.as_list() == \
            fn(x, axis=[1, 2], keepdims=True).shape.as_list() == [None, 1, 1]
        with pytest.raises(TypeError, match=rf"{op} at .*test_reduce\.py:\d+: give axis or reduction_indices"):
            fn(x, 1, reduction_indices=1)
        with pytest.raises(TypeError, match=rf"{op} at .*test_reduce\.py:\d+: give keepdims or keep_dims"):
            fn(x, keepdims=True, keep_dims=True)
    xv = sample3(gc.float32)
    with gc.Session(graph=graph, device="reference") as sess:
        assert_close(sess.run(gc.reduce_sum(x, reduction_indices=1, keep_dims=True), {x: xv}),
                     xv.sum(axis=1, keepdims=True))

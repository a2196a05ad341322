"""Elementwise ops: unary math, binary arithmetic and comparisons, where, cast, clip_by_value,
the Python operators on tensors, dtype promotion and error reporting.

Every expected value is an independent NumPy/SciPy expression. Graphs are grouped (one graph
per dtype, fetching many ops at once) so compiled backends compile few programs.
"""
from __future__ import annotations

import inspect
import os

import numpy as np
import pytest
import scipy.special as sps

import graphc as gc
from support import assert_close, float_edges

THIS_FILE = os.path.basename(__file__)

FLOATS = [gc.float32, gc.float64]
INTS = [gc.int8, gc.int32, gc.int64, gc.uint8]
NUMERIC = FLOATS + INTS
ALL = NUMERIC + [gc.bool_]

# NumPy results graphc does not support, and the type graphc uses instead.
_WIDER = {np.dtype(np.float16): np.dtype(np.float32), np.dtype(np.int16): np.dtype(np.int32),
          np.dtype(np.uint16): np.dtype(np.int32), np.dtype(np.uint32): np.dtype(np.int64)}


def widened(np_dtype) -> np.dtype:
    np_dtype = np.dtype(np_dtype)
    return _WIDER.get(np_dtype, np_dtype)


def float_type_of(np_dtype) -> np.dtype:
    """The float type NumPy's float functions (np.exp) give for ``np_dtype``, widened."""
    return widened(np.exp(np.zeros(1, np_dtype)).dtype)


def lineno() -> int:
    """The caller's line number."""
    return inspect.currentframe().f_back.f_lineno


def assert_names_op_and_line(message: str, op: str, line: int) -> None:
    assert op in message, message
    assert f"{THIS_FILE}:{line}" in message, message


def sample(dtype: gc.DType) -> np.ndarray:
    """Small 1-D test values for ``dtype``, including its extremes."""
    npd = dtype.np
    if dtype.is_floating:
        extra = np.array([1.5, 2.5, -1.5, -0.5, 0.25, 7.0], dtype=npd)  # rounding: half to even
        return np.concatenate([float_edges(npd), extra])
    if dtype.is_bool:
        return np.array([True, False, True, True, False])
    info = np.iinfo(npd)
    if npd.kind == "u":
        return np.array([0, 1, 2, 3, 7, 100, 200, 254, info.max], dtype=npd)
    mid = {1: 100, 4: 70000, 8: 2 ** 40}[npd.itemsize]
    return np.array([info.min, -mid, -7, -2, -1, 0, 1, 2, 3, 7, mid, info.max], dtype=npd)


# ---------------------------------------------------------------------------------------------
# unary ops
# ---------------------------------------------------------------------------------------------
# float functions: integer and bool inputs compute in NumPy's float type for them
UNARY_FLOAT = {
    "exp": np.exp,
    "expm1": np.expm1,
    "log": np.log,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x),
    "reciprocal": lambda x: 1 / x,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "sigmoid": sps.expit,
    "erf": sps.erf,
}
# numeric functions: keep the input dtype (isnan/isfinite give bool); bool is rejected
UNARY_NUMERIC = {
    "negative": np.negative,
    "abs": np.abs,
    "sign": np.sign,
    "square": np.square,
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.round,
    "isnan": np.isnan,
    "isfinite": np.isfinite,
}


@pytest.mark.parametrize("dtype", ALL, ids=str)
def test_unary_ops_values_and_dtypes(graph, evaluate, dtype):
    values = sample(dtype)
    x = gc.placeholder(dtype, shape=(None,))
    fetches = {"logical_not": gc.logical_not(x)}
    fetches.update({name: getattr(gc, name)(x) for name in UNARY_FLOAT})
    if not dtype.is_bool:
        fetches.update({name: getattr(gc, name)(x) for name in UNARY_NUMERIC})
    out = evaluate(fetches, {x: values})

    assert_close(out["logical_not"], np.logical_not(values))
    with np.errstate(all="ignore"):
        ft = float_type_of(values.dtype)
        for name, fn in UNARY_FLOAT.items():
            # reciprocal is 1 / x, and NumPy divides any integer pair in float64
            t = np.dtype(np.float64) if name == "reciprocal" and values.dtype.kind in "iub" else ft
            expected = fn(values.astype(t))
            assert expected.dtype == t
            assert out[name].shape == (len(values),)
            assert_close(out[name], expected)
        if not dtype.is_bool:
            for name, fn in UNARY_NUMERIC.items():
                assert_close(out[name], fn(values))
    # the static dtype agrees with the value
    for name, t in fetches.items():
        assert t.dtype.np == out[name].dtype, name


def test_unary_int_to_float_dtypes(graph):
    """exp of int32 is float64 and of int8/uint8/bool float32 (NumPy: float16, widened)."""
    assert gc.exp(gc.placeholder(gc.int32, shape=(2,))).dtype is gc.float64
    assert gc.exp(gc.placeholder(gc.int64, shape=(2,))).dtype is gc.float64
    assert gc.sqrt(gc.placeholder(gc.int8, shape=(2,))).dtype is gc.float32
    assert gc.log(gc.placeholder(gc.uint8, shape=(2,))).dtype is gc.float32
    assert gc.sigmoid(gc.placeholder(gc.bool_, shape=(2,))).dtype is gc.float32
    assert gc.floor(gc.placeholder(gc.int32, shape=(2,))).dtype is gc.int32
    assert gc.isnan(gc.placeholder(gc.float32, shape=(2,))).dtype is gc.bool_


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_unary_signed_zeros(graph, evaluate, dtype):
    values = np.array([0.0, -0.0], dtype=dtype.np)
    x = gc.placeholder(dtype, shape=(2,))
    out = evaluate({"neg": gc.negative(x), "abs": gc.abs(x), "sqrt": gc.sqrt(x),
                    "rsqrt": gc.rsqrt(x), "reciprocal": gc.reciprocal(x), "square": gc.square(x)},
                   {x: values})
    np.testing.assert_array_equal(np.signbit(out["neg"]), [True, False])
    np.testing.assert_array_equal(np.signbit(out["abs"]), [False, False])
    np.testing.assert_array_equal(np.signbit(out["sqrt"]), np.signbit(np.sqrt(values)))
    assert_close(out["rsqrt"], np.array([np.inf, -np.inf], dtype.np))
    assert_close(out["reciprocal"], np.array([np.inf, -np.inf], dtype.np))
    np.testing.assert_array_equal(np.signbit(out["square"]), [False, False])


@pytest.mark.parametrize("op", sorted(UNARY_NUMERIC))
def test_numeric_unary_rejects_bool(graph, op):
    x = gc.placeholder(gc.bool_, shape=(None, 2), name="flags")
    with pytest.raises(gc.DTypeError) as info:
        line = lineno() + 1
        getattr(gc, op)(x)
    assert_names_op_and_line(str(info.value), op, line)
    assert "bool" in str(info.value)


def test_unary_aliases_and_operators(graph, evaluate):
    values = np.array([-1.5, 0.0, 2.0, np.nan], np.float32)
    x = gc.placeholder(gc.float32, shape=(None,))
    out = evaluate({"neg": -x, "abs": abs(x), "pos": +x, "neg_alias": gc.neg(x),
                    "is_nan": gc.is_nan(x), "is_finite": gc.is_finite(x)}, {x: values})
    assert_close(out["neg"], -values)
    assert_close(out["neg_alias"], -values)
    assert_close(out["abs"], np.abs(values))
    assert_close(out["pos"], values)
    assert_close(out["is_nan"], np.isnan(values))
    assert_close(out["is_finite"], np.isfinite(values))


# ---------------------------------------------------------------------------------------------
# binary ops
# ---------------------------------------------------------------------------------------------
ARITH = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "floordiv": np.floor_divide,
    "mod": np.mod,
    "maximum": np.maximum,
    "minimum": np.minimum,
}
COMPARE = {
    "equal": np.equal,
    "not_equal": np.not_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
}
LOGICAL = {
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_binary_float_edges_all_pairs(graph, evaluate, dtype):
    """Every pair of edge values, by broadcasting (n, 1) against (1, n)."""
    edges = float_edges(dtype.np)
    xv, yv = edges[:, None], edges[None, :]
    x = gc.placeholder(dtype, shape=(None, 1))
    y = gc.placeholder(dtype, shape=(1, None))
    ops = {**ARITH, **COMPARE, **LOGICAL, "divide": np.true_divide, "pow": np.power}
    fetches = {name: getattr(gc, name)(x, y) for name in ops}
    out = evaluate(fetches, {x: xv, y: yv})
    with np.errstate(all="ignore"):
        for name, fn in ops.items():
            expected = fn(xv, yv)
            assert expected.shape == (len(edges), len(edges))
            assert_close(out[name], expected)
            assert fetches[name].dtype.np == expected.dtype


def _int_operands(dtype):
    x = sample(dtype)
    if dtype.np.kind == "u":
        y = np.array([0, 1, 3, 5, 200], dtype.np)
    else:  # no -1: INT_MIN // -1 has its own test
        y = np.array([-7, -2, 0, 1, 3, 5], dtype.np)
    return x, y


@pytest.mark.parametrize("dtype", INTS, ids=str)
def test_binary_int_all_pairs(graph, evaluate, dtype):
    """Wrapping arithmetic, x // 0 == x % 0 == 0 (NumPy), true division to float64."""
    xv, yv = _int_operands(dtype)
    xv, yv = xv[:, None], yv[None, :]
    x = gc.placeholder(dtype, shape=(None, 1))
    y = gc.placeholder(dtype, shape=(1, None))
    ops = {**ARITH, **COMPARE, **LOGICAL, "divide": np.true_divide}
    fetches = {name: getattr(gc, name)(x, y) for name in ops}
    # pow: small bases and non-negative exponents (no overflow)
    base = gc.placeholder(dtype, shape=(None, 1))
    expo = gc.placeholder(dtype, shape=(1, None))
    bv = np.array([0, 1, 2, 3, 6] if dtype.np.kind == "u" else [-3, -2, -1, 0, 1, 2, 3], dtype.np)[:, None]
    ev = np.array([0, 1, 2, 3], dtype.np)[None, :]
    fetches["pow"] = gc.pow(base, expo)
    out = evaluate(fetches, {x: xv, y: yv, base: bv, expo: ev})
    with np.errstate(all="ignore"):
        for name, fn in ops.items():
            if name != "divide":
                assert_close(out[name], fn(xv, yv))
        assert_close(out["pow"], np.power(bv, ev))
        # division and remainder by zero give 0 for integers
        zero = list(yv[0]).index(0)
        assert np.all(out["floordiv"][:, zero] == 0)
        assert np.all(out["mod"][:, zero] == 0)
        # NumPy's true division of any integers is float64 (not float16/float32)
        assert_close(out["divide"], np.true_divide(xv, yv))
        assert out["divide"].dtype == np.float64


@pytest.mark.parametrize("dtype", [gc.int8, gc.int32, gc.int64], ids=str)
def test_int_min_floordiv_mod_minus_one(graph, evaluate, dtype):
    info = np.iinfo(dtype.np)
    xv = np.array([info.min, info.min, info.max, -7], dtype.np)
    yv = np.array([-1, 0, -1, -1], dtype.np)
    x = gc.placeholder(dtype, shape=(None,))
    y = gc.placeholder(dtype, shape=(None,))
    out = evaluate({"floordiv": x // y, "mod": x % y}, {x: xv, y: yv})
    with np.errstate(all="ignore"):
        assert_close(out["floordiv"], np.floor_divide(xv, yv))
        assert_close(out["mod"], np.mod(xv, yv))


def test_binary_bool(graph, evaluate):
    xv = np.array([True, False, True, False])[:, None]
    yv = np.array([True, False, False])[None, :]
    x = gc.placeholder(gc.bool_, shape=(None, 1))
    y = gc.placeholder(gc.bool_, shape=(1, None))
    ops = {**COMPARE, **LOGICAL, "maximum": np.maximum, "minimum": np.minimum}
    fetches = {name: getattr(gc, name)(x, y) for name in ops}
    fetches.update({"and_op": x & y, "or_op": x | y, "xor_op": x ^ y, "invert": ~x,
                    "and_py": x & True, "ror_py": False | y, "rxor_py": True ^ y,
                    "divide": gc.divide(x, y)})
    out = evaluate(fetches, {x: xv, y: yv})
    for name, fn in ops.items():
        assert_close(out[name], fn(xv, yv))
    assert_close(out["and_op"], xv & yv)
    assert_close(out["or_op"], xv | yv)
    assert_close(out["xor_op"], xv ^ yv)
    assert_close(out["invert"], ~xv)
    assert_close(out["and_py"], xv & True)
    assert_close(out["ror_py"], False | yv)
    assert_close(out["rxor_py"], True ^ yv)
    with np.errstate(all="ignore"):
        assert_close(out["divide"], np.true_divide(xv, yv))


@pytest.mark.parametrize("op", ["add", "subtract", "multiply", "floordiv", "mod", "pow"])
def test_numeric_binary_rejects_bool(graph, op):
    a = gc.placeholder(gc.bool_, shape=(3,))
    b = gc.placeholder(gc.bool_, shape=(3,))
    with pytest.raises(gc.DTypeError) as info:
        line = lineno() + 1
        getattr(gc, op)(a, b)
    assert_names_op_and_line(str(info.value), op, line)


def test_logical_ops_on_numbers_use_truthiness(graph, evaluate):
    xv = np.array([0, 3, -1, 0], np.int32)
    yv = np.array([0.0, 0.0, np.nan, 2.5], np.float32)
    x = gc.placeholder(gc.int32, shape=(None,))
    y = gc.placeholder(gc.float32, shape=(None,))
    out = evaluate({"and": gc.logical_and(x, y), "or": gc.logical_or(x, y),
                    "xor": gc.logical_xor(x, y), "not": gc.logical_not(x)}, {x: xv, y: yv})
    assert_close(out["and"], np.logical_and(xv, yv))
    assert_close(out["or"], np.logical_or(xv, yv))
    assert_close(out["xor"], np.logical_xor(xv, yv))
    assert_close(out["not"], np.logical_not(xv))


def test_aliases(graph, evaluate):
    xv = np.array([7.0, -7.0, 2.5], np.float64)
    yv = np.array([2.0, 2.0, -1.0], np.float64)
    x = gc.placeholder(gc.float64, shape=(3,))
    y = gc.placeholder(gc.float64, shape=(3,))
    out = evaluate({"truediv": gc.truediv(x, y), "floor_div": gc.floor_div(x, y),
                    "floormod": gc.floormod(x, y), "sqdiff": gc.squared_difference(x, y),
                    "to_float": gc.to_float(x)}, {x: xv, y: yv})
    assert_close(out["truediv"], xv / yv)
    assert_close(out["floor_div"], xv // yv)
    assert_close(out["floormod"], xv % yv)
    assert_close(out["sqdiff"], (xv - yv) ** 2)
    assert_close(out["to_float"], xv.astype(np.float32))


# ---------------------------------------------------------------------------------------------
# broadcasting and zero-size dims
# ---------------------------------------------------------------------------------------------
def test_broadcasting_both_ways(graph, evaluate):
    a_v = np.arange(3, dtype=np.float32).reshape(3, 1)
    b_v = np.arange(4, dtype=np.float32).reshape(1, 4) * 10
    r_v = np.array([1, -2, 3, -4], np.int64)
    m_v = np.arange(8, dtype=np.int64).reshape(2, 4)
    a = gc.placeholder(gc.float32, shape=(None, 1))
    b = gc.placeholder(gc.float32, shape=(1, None))
    r = gc.placeholder(gc.int64, shape=(4,))
    m = gc.placeholder(gc.int64, shape=(None, 4))
    fetches = {"ab": a + b, "ba": b - a, "rm": r * m, "mr": m - r, "r_gt_m": gc.greater(r, m),
               "scalar": 3.0 * a, "ndarray_left": b_v + a, "where": gc.where(gc.less(a, 1.0), b, a)}
    out = evaluate(fetches, {a: a_v, b: b_v, r: r_v, m: m_v})
    assert_close(out["ab"], a_v + b_v)
    assert_close(out["ba"], b_v - a_v)
    assert_close(out["rm"], r_v * m_v)
    assert_close(out["mr"], m_v - r_v)
    assert_close(out["r_gt_m"], r_v > m_v)
    assert_close(out["scalar"], 3.0 * a_v)
    assert_close(out["ndarray_left"], b_v + a_v)
    assert_close(out["where"], np.where(a_v < 1.0, b_v, a_v))
    assert fetches["ab"].shape == (None, None)
    assert fetches["rm"].shape == (None, 4)
    assert fetches["mr"].shape == (None, 4)


def test_zero_size_dims(graph, evaluate):
    x = gc.placeholder(gc.float32, shape=(None, 3))
    row = gc.placeholder(gc.float32, shape=(3,))
    col = gc.placeholder(gc.float32, shape=(None, 1))
    wide = gc.placeholder(gc.float32, shape=(1, 4))
    xv = np.zeros((0, 3), np.float32)
    rv = np.array([1.0, 2.0, 3.0], np.float32)
    cv = np.zeros((0, 1), np.float32)
    wv = np.ones((1, 4), np.float32)
    fetches = {name: getattr(gc, name)(x) for name in list(UNARY_FLOAT) + list(UNARY_NUMERIC)}
    fetches.update({"add_row": x + row, "row_div": row / x, "cmp": gc.less(x, row),
                    "outer": col * wide, "where": gc.where(gc.isnan(x), x, row),
                    "cast": gc.cast(x, gc.int32), "clip": gc.clip_by_value(x, 0.0, 1.0)})
    out = evaluate(fetches, {x: xv, row: rv, col: cv, wide: wv})
    for name, t in fetches.items():
        assert out[name].dtype == t.dtype.np, name
    for name in list(UNARY_FLOAT) + list(UNARY_NUMERIC) + ["add_row", "row_div", "cmp", "where",
                                                           "cast", "clip"]:
        assert out[name].shape == (0, 3), name
    assert out["outer"].shape == (0, 4)
    assert out["outer"].dtype == np.float32


# ---------------------------------------------------------------------------------------------
# dtype promotion
# ---------------------------------------------------------------------------------------------
def test_promotion_rules(graph, evaluate):
    f32 = gc.placeholder(gc.float32, shape=(None,))
    f64 = gc.placeholder(gc.float64, shape=(None,))
    i8 = gc.placeholder(gc.int8, shape=(None,))
    i32 = gc.placeholder(gc.int32, shape=(None,))
    u8 = gc.placeholder(gc.uint8, shape=(None,))
    b = gc.placeholder(gc.bool_, shape=(None,))
    v = {f32: np.array([1.5, -2.0, 3.0], np.float32), f64: np.array([0.1, 0.2, 1e300], np.float64),
         i8: np.array([-100, 127, 3], np.int8), i32: np.array([2_000_000_000, -3, 7], np.int32),
         u8: np.array([255, 200, 0], np.uint8), b: np.array([True, False, True])}
    fetches = {
        "f32_times_float": f32 * 2.0,
        "i32_plus_int": i32 + 1,
        "i32_times_float": i32 * 2.5,
        "f32_plus_f64": f32 + f64,
        "u8_plus_i8": u8 + i8,
        "u8_minus_int": u8 - 1,
        "i8_plus_f32": i8 + f32,
        "i32_plus_f32": i32 + f32,
        "bool_plus_int": b + 1,
        "f32_times_np_f64": f32 * np.float64(2.0),
        "i8_times_np_i32": i8 * np.int32(3),
        "float_pow_i8": 2.0 ** i8,
        "i32_div_i32": i32 / i32,
        "i8_div_int": i8 / 2,
        "u8_div_u8": u8 / u8,
        "i32_floordiv_float": i32 // 2.0,
        "list_plus_f32": [1, 2, 3] + f32,
        "ndarray_plus_i8": np.array([1, 2, 3], np.int32) + i8,
    }
    xs = {t: v[t] for t in v}
    with np.errstate(all="ignore"):
        expected = {
            "f32_times_float": xs[f32] * 2.0,
            "i32_plus_int": xs[i32] + 1,
            "i32_times_float": xs[i32] * 2.5,
            "f32_plus_f64": xs[f32] + xs[f64],
            "u8_plus_i8": xs[u8] + xs[i8],
            "u8_minus_int": xs[u8] - 1,
            "i8_plus_f32": xs[i8] + xs[f32],
            "i32_plus_f32": xs[i32] + xs[f32],
            "bool_plus_int": xs[b] + 1,
            "f32_times_np_f64": xs[f32] * np.float64(2.0),
            "i8_times_np_i32": xs[i8] * np.int32(3),
            "float_pow_i8": 2.0 ** xs[i8],
            "i32_div_i32": xs[i32] / xs[i32],
            "i8_div_int": xs[i8] / 2,
            "u8_div_u8": xs[u8] / xs[u8],
            "i32_floordiv_float": xs[i32] // 2.0,
            "list_plus_f32": np.array([1, 2, 3], np.float32) + xs[f32],
            "ndarray_plus_i8": np.array([1, 2, 3], np.int32) + xs[i8],
        }
    out = evaluate(fetches, xs)
    wrong = []
    for name, exp in expected.items():
        want = widened(exp.dtype)
        if fetches[name].dtype.np != want or out[name].dtype != want:
            wrong.append(f"{name}: graphc {fetches[name].dtype.name}/{out[name].dtype}, NumPy {want}")
        assert_close(out[name], exp.astype(want), check_dtype=False)
    assert not wrong, wrong
    # the headline rules, spelled out
    assert fetches["f32_times_float"].dtype is gc.float32
    assert fetches["i32_plus_int"].dtype is gc.int32
    assert fetches["i32_times_float"].dtype is gc.float64
    assert fetches["f32_plus_f64"].dtype is gc.float64
    assert fetches["u8_plus_i8"].dtype is gc.int32
    assert fetches["bool_plus_int"].dtype is gc.int64
    assert (2 ** i8).dtype is gc.int8  # the weak int takes the tensor's type


@pytest.mark.parametrize("a", ALL, ids=str)
def test_promotion_table_via_maximum(graph, evaluate, a):
    """Every strong pair meets in NumPy's result type (widened where graphc must)."""
    base = {gc.bool_: np.array([True, False, False, True])}
    x = gc.placeholder(a, shape=(None,))
    others = {}
    for b in ALL:
        others[b] = gc.placeholder(b, shape=(4,))
    fetches = {b.name: gc.maximum(x, others[b]) for b in ALL}
    values = {d: base.get(d, np.array([0, 3, 1, 2], dtype=d.np)) for d in ALL}
    feed = {others[b]: values[b][::-1].copy() for b in ALL}
    feed[x] = values[a]
    out = evaluate(fetches, feed)
    for b in ALL:
        rt = widened(np.result_type(a.np, b.np))
        assert fetches[b.name].dtype.np == rt, (a, b)
        assert_close(out[b.name], np.maximum(values[a].astype(rt), values[b][::-1].astype(rt)))


def test_weak_int_out_of_range_raises_dtype_error(graph):
    x = gc.placeholder(gc.int8, shape=(None,))
    with pytest.raises(gc.DTypeError) as info:
        line = lineno() + 1
        x + 1000
    assert_names_op_and_line(str(info.value), "add", line)
    assert "1000" in str(info.value)
    u = gc.placeholder(gc.uint8, shape=(None,))
    with pytest.raises(gc.DTypeError) as info:
        line = lineno() + 1
        gc.multiply(u, -1)
    assert_names_op_and_line(str(info.value), "multiply", line)


# ---------------------------------------------------------------------------------------------
# pow
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [gc.int8, gc.int32, gc.int64], ids=str)
def test_int_pow_negative_exponent_fails_at_run_time(graph, evaluate, dtype):
    x = gc.placeholder(dtype, shape=(None,))
    y = gc.placeholder(dtype, shape=(None,))
    line = lineno() + 1
    p = gc.pow(x, y)
    ok = evaluate(p, {x: np.array([2, 3], dtype.np), y: np.array([3, 0], dtype.np)})
    assert_close(ok, np.array([8, 1], dtype.np))
    with pytest.raises(gc.InvalidArgumentError) as info:
        evaluate(p, {x: np.array([2, 3], dtype.np), y: np.array([1, -1], dtype.np)})
    assert_names_op_and_line(str(info.value), "pow", line)


def test_int_pow_negative_python_exponent(graph, evaluate):
    x = gc.placeholder(gc.int32, shape=(None,))
    line = lineno() + 1
    p = x ** -1
    assert p.dtype is gc.int32
    with pytest.raises(gc.InvalidArgumentError) as info:
        evaluate(p, {x: np.array([1, 2], np.int32)})
    assert_names_op_and_line(str(info.value), "pow", line)


def test_float_pow_negative_exponent(graph, evaluate):
    x = gc.placeholder(gc.float32, shape=(None,))
    e = gc.placeholder(gc.int32, shape=(None,))
    xv = np.array([2.0, 4.0, 0.0, -2.0], np.float32)
    ev = np.array([-1, -2, -1, -3], np.int32)
    out = evaluate({"py": x ** -1, "t": x ** e, "rpow": 2.0 ** e}, {x: xv, e: ev})
    with np.errstate(all="ignore"):
        assert_close(out["py"], xv ** -1)
        assert_close(out["t"], xv ** ev)  # float32 with int32: float64 in NumPy
        assert_close(out["rpow"], 2.0 ** ev)


# ---------------------------------------------------------------------------------------------
# Python operators
# ---------------------------------------------------------------------------------------------
def test_python_operators(graph, evaluate):
    xv = np.array([[1.5, -2.0, 3.0], [0.5, 4.0, -1.0]], np.float32)
    yv = np.array([2.0, -3.0, 0.5], np.float32)
    mv = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = gc.placeholder(gc.float32, shape=(None, 3))
    y = gc.placeholder(gc.float32, shape=(3,))
    m = gc.placeholder(gc.float32, shape=(3, None))
    fetches = {
        "add": x + y, "radd": 1.0 + x, "sub": x - y, "rsub": 2 - x, "mul": x * y, "rmul": 3 * x,
        "div": x / y, "rdiv": 1 / y, "floordiv": x // y, "rfloordiv": 7.0 // y, "mod": x % y,
        "rmod": 5.0 % y, "pow": abs(x) ** y, "rpow": 2.0 ** x, "neg": -x, "abs": abs(x),
        "lt": x < y, "le": x <= y, "gt": x > y, "ge": x >= y, "rlt": 1.0 < x, "matmul": x @ m,
        "rmatmul": xv @ m,
    }
    out = evaluate(fetches, {x: xv, y: yv, m: mv})
    expected = {
        "add": xv + yv, "radd": 1.0 + xv, "sub": xv - yv, "rsub": 2 - xv, "mul": xv * yv, "rmul": 3 * xv,
        "div": xv / yv, "rdiv": 1 / yv, "floordiv": xv // yv, "rfloordiv": 7.0 // yv, "mod": xv % yv,
        "rmod": 5.0 % yv, "pow": np.abs(xv) ** yv, "rpow": 2.0 ** xv, "neg": -xv, "abs": np.abs(xv),
        "lt": xv < yv, "le": xv <= yv, "gt": xv > yv, "ge": xv >= yv, "rlt": 1.0 < xv, "matmul": xv @ mv,
        "rmatmul": xv @ mv,
    }
    for name, exp in expected.items():
        assert_close(out[name], exp)


def test_tensor_equality_is_identity(graph):
    x = gc.placeholder(gc.float32, shape=(2,))
    y = gc.placeholder(gc.float32, shape=(2,))
    assert (x == x) is True
    assert (x == y) is False
    assert (x != y) is True
    assert {x: 1, y: 2}[y] == 2
    assert gc.equal(x, y).dtype is gc.bool_
    with pytest.raises(TypeError):
        bool(x < y)


# ---------------------------------------------------------------------------------------------
# where, cast, clip_by_value
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ALL, ids=str)
def test_where(graph, evaluate, dtype):
    vals = sample(dtype)[:4]
    other = sample(dtype)[-4:]
    cv = np.array([[True], [False]])
    c = gc.placeholder(gc.bool_, shape=(None, 1))
    x = gc.placeholder(dtype, shape=(4,))
    y = gc.placeholder(dtype, shape=(None, 4))
    yv = np.stack([other, other[::-1]])
    flat_c = gc.placeholder(gc.bool_, shape=(4,))
    fcv = np.array([True, False, False, True])
    out = evaluate({"bcast": gc.where(c, x, y), "same": gc.where(flat_c, x, other),
                    "scalar_branch": gc.where(flat_c, x, vals[0])},
                   {c: cv, x: vals, y: yv, flat_c: fcv})
    assert_close(out["bcast"], np.where(cv, vals, yv))
    assert_close(out["same"], np.where(fcv, vals, other))
    assert_close(out["scalar_branch"], np.where(fcv, vals, vals[0]))


def test_where_promotes_branches(graph, evaluate):
    c = gc.placeholder(gc.bool_, shape=(None,))
    i = gc.placeholder(gc.int32, shape=(None,))
    cv = np.array([True, False, True])
    iv = np.array([1, 2, 3], np.int32)
    w = gc.where(c, i, 2.5)
    assert w.dtype is gc.float64
    out = evaluate(w, {c: cv, i: iv})
    assert_close(out, np.where(cv, iv, 2.5))


def test_where_errors(graph):
    x = gc.placeholder(gc.float32, shape=(3,))
    with pytest.raises(gc.DTypeError) as info:
        line = lineno() + 1
        gc.where(gc.cast(x, gc.int32), x, x)
    assert_names_op_and_line(str(info.value), "where", line)
    with pytest.raises(gc.ShapeError) as info:
        line = lineno() + 1
        gc.where(gc.placeholder(gc.bool_, shape=(2,)), x, x)
    assert_names_op_and_line(str(info.value), "where", line)
    with pytest.raises(TypeError):
        gc.where(gc.less(x, 0.0), x)  # x without y (the one-argument form: tests/ops/test_issue15b_ops.py)


def test_cast(graph, evaluate):
    fv = np.array([-2.7, -0.5, 0.0, 0.5, 2.7, 100.9], np.float64)
    iv = np.array([-300, -1, 0, 1, 255, 300, 2 ** 31 + 5], np.int64)
    ev = float_edges(np.float64)
    bv = np.array([True, False])
    f = gc.placeholder(gc.float64, shape=(None,))
    i = gc.placeholder(gc.int64, shape=(None,))
    e = gc.placeholder(gc.float64, shape=(None,))
    b = gc.placeholder(gc.bool_, shape=(None,))
    fetches = {
        "f_i8": gc.cast(f, gc.int8), "f_i32": gc.cast(f, gc.int32), "f_i64": gc.cast(f, "int64"),
        "i_u8": gc.cast(i, gc.uint8), "i_i8": gc.cast(i, gc.int8), "i_i32": gc.cast(i, np.int32),
        "i_f32": gc.cast(i, gc.float32), "i_bool": gc.cast(i, gc.bool_),
        "e_f32": gc.cast(e, gc.float32), "e_bool": gc.cast(e, gc.bool_),
        "b_f64": gc.cast(b, gc.float64), "b_u8": gc.cast(b, gc.uint8), "b_i32": gc.cast(b, gc.int32),
    }
    out = evaluate(fetches, {f: fv, i: iv, e: ev, b: bv})
    with np.errstate(all="ignore"):
        expected = {
            "f_i8": fv.astype(np.int8), "f_i32": fv.astype(np.int32), "f_i64": fv.astype(np.int64),
            "i_u8": iv.astype(np.uint8), "i_i8": iv.astype(np.int8), "i_i32": iv.astype(np.int32),
            "i_f32": iv.astype(np.float32), "i_bool": iv.astype(bool),
            "e_f32": ev.astype(np.float32), "e_bool": ev.astype(bool),
            "b_f64": bv.astype(np.float64), "b_u8": bv.astype(np.uint8), "b_i32": bv.astype(np.int32),
        }
    for name, exp in expected.items():
        assert_close(out[name], exp)
    assert_close(out["f_i32"], np.array([-2, 0, 0, 0, 2, 100], np.int32))  # truncation toward zero
    assert_close(out["e_bool"][:2], np.array([False, False]))  # 0.0 and -0.0


def test_cast_to_same_dtype_is_identity(graph):
    x = gc.placeholder(gc.int32, shape=(2,))
    assert gc.cast(x, gc.int32) is x
    assert gc.cast(x, gc.float32).dtype is gc.float32


@pytest.mark.parametrize("dtype", NUMERIC, ids=str)
def test_clip_by_value(graph, evaluate, dtype):
    xv = sample(dtype)
    lo_v = np.array(0 if dtype.np.kind == "u" else -2, dtype.np)
    hi_v = np.array(3, dtype.np)
    x = gc.placeholder(dtype, shape=(None,))
    lo = gc.placeholder(dtype, shape=())
    hi = gc.placeholder(dtype, shape=())
    lo_row = gc.placeholder(dtype, shape=(None, 1))
    lrv = np.array([[1], [2]], dtype.np)
    out = evaluate({"scalars": gc.clip_by_value(x, lo, hi),
                    "python": gc.clip_by_value(x, 1, 7),
                    "bcast": gc.clip_by_value(x, lo_row, hi)},
                   {x: xv, lo: lo_v, hi: hi_v, lo_row: lrv})
    assert_close(out["scalars"], np.minimum(np.maximum(xv, lo_v), hi_v))
    assert_close(out["python"], np.clip(xv, dtype.np.type(1), dtype.np.type(7)))
    assert_close(out["bcast"], np.minimum(np.maximum(xv[None, :], lrv), hi_v))
    if dtype.is_floating:
        assert np.isnan(out["scalars"][np.isnan(xv)]).all()


def test_clip_by_value_rejects_bool(graph):
    x = gc.placeholder(gc.bool_, shape=(2,))
    with pytest.raises(gc.DTypeError) as info:
        line = lineno() + 1
        gc.clip_by_value(x, False, True)
    assert_names_op_and_line(str(info.value), "clip_by_value", line)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def test_impossible_broadcast_is_a_shape_error(graph):
    a = gc.placeholder(gc.float32, shape=(2, 3))
    b = gc.placeholder(gc.float32, shape=(4,))
    with pytest.raises(gc.ShapeError) as info:
        line = lineno() + 1
        gc.add(a, b)
    assert_names_op_and_line(str(info.value), "add", line)
    c = gc.placeholder(gc.float32, shape=(None, 3))
    with pytest.raises(gc.ShapeError) as info:
        line = lineno() + 1
        c * b
    assert_names_op_and_line(str(info.value), "multiply", line)
    with pytest.raises(gc.ShapeError) as info:
        line = lineno() + 1
        gc.less(a, gc.placeholder(gc.float32, shape=(3, 3)))
    assert_names_op_and_line(str(info.value), "less", line)


def test_run_time_shape_mismatch_on_none_dims(graph, evaluate):
    a = gc.placeholder(gc.float32, shape=(None, 3))
    b = gc.placeholder(gc.float32, shape=(None, 3))
    line = lineno() + 1
    s = gc.add(a, b)
    assert s.shape == (None, 3)
    ok = evaluate(s, {a: np.ones((2, 3), np.float32), b: np.ones((1, 3), np.float32)})
    assert_close(ok, np.full((2, 3), 2.0, np.float32))
    with pytest.raises(gc.InvalidArgumentError) as info:
        evaluate(s, {a: np.ones((2, 3), np.float32), b: np.ones((3, 3), np.float32)})
    assert_names_op_and_line(str(info.value), "add", line)

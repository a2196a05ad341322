"""graphc.dtypes: the DType objects, conversion, and NumPy 2 (NEP 50) promotion with weak
Python scalars, widened where NumPy lands on a type graphc does not support
(float16 -> float32, int16/uint16 -> int32, uint32 -> int64)."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import graphc as gc
from graphc import dtypes as dt
from support import assert_close

ALL = [gc.float32, gc.float64, gc.int8, gc.int32, gc.int64, gc.uint8, gc.bool_]
NP = {gc.float32: np.float32, gc.float64: np.float64, gc.int8: np.int8, gc.int32: np.int32,
      gc.int64: np.int64, gc.uint8: np.uint8, gc.bool_: np.bool_}

_WIDER = {np.dtype(np.float16): np.dtype(np.float32), np.dtype(np.int16): np.dtype(np.int32),
          np.dtype(np.uint16): np.dtype(np.int32), np.dtype(np.uint32): np.dtype(np.int64)}


def widened(np_dtype) -> np.dtype:
    np_dtype = np.dtype(np_dtype)
    return _WIDER.get(np_dtype, np_dtype)


# ---------------------------------------------------------------------------------------------
# DType objects
# ---------------------------------------------------------------------------------------------
def test_all_dtypes():
    assert set(dt.ALL_DTYPES) == set(ALL)
    assert len(dt.ALL_DTYPES) == 7
    assert dt.default_float is gc.float32
    assert dt.default_int is gc.int64


@pytest.mark.parametrize("d", ALL, ids=str)
def test_dtype_properties(d):
    npd = np.dtype(NP[d])
    assert d.np == npd
    assert d.name == ("bool" if d is gc.bool_ else npd.name)
    assert str(d) == d.name
    assert repr(d) == f"gc.{d.name}"
    assert d.itemsize == npd.itemsize
    assert d.is_floating == (npd.kind == "f")
    assert d.is_integer == (npd.kind in "iu")
    assert d.is_bool == (npd.kind == "b")
    assert d.is_numeric == (npd.kind in "iuf")
    if d.is_floating:
        assert d.min == np.finfo(npd).min and d.max == np.finfo(npd).max
    elif d.is_integer:
        assert d.min == np.iinfo(npd).min and d.max == np.iinfo(npd).max
    else:
        assert d.min is False and d.max is True


@pytest.mark.parametrize("d", ALL, ids=str)
def test_dtypes_are_interned(d):
    assert copy.copy(d) is d
    assert copy.deepcopy(d) is d
    assert pickle.loads(pickle.dumps(d)) is d
    assert copy.deepcopy({"t": [d]})["t"][0] is d


# ---------------------------------------------------------------------------------------------
# as_dtype
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("d", ALL, ids=str)
def test_as_dtype_round_trips(d):
    assert gc.as_dtype(d) is d
    assert gc.as_dtype(d.name) is d
    assert gc.as_dtype(NP[d]) is d
    assert gc.as_dtype(np.dtype(NP[d])) is d
    assert gc.as_dtype(d.np) is d


def test_as_dtype_python_types_and_aliases():
    assert gc.as_dtype(float) is gc.float32
    assert gc.as_dtype(int) is gc.int64
    assert gc.as_dtype(bool) is gc.bool_
    assert gc.as_dtype("float") is gc.float32
    assert gc.as_dtype("int") is gc.int64
    assert gc.as_dtype("bool_") is gc.bool_
    assert gc.as_dtype("bool") is gc.bool_
    assert gc.as_dtype("f8") is gc.float64
    assert gc.as_dtype("<i4") is gc.int32


@pytest.mark.parametrize("np_type, suggestion", [
    (np.float16, "float32"), (np.int16, "int32"), (np.uint16, "int32"), (np.uint32, "int64")])
def test_as_dtype_unsupported_but_widenable(np_type, suggestion):
    with pytest.raises(TypeError) as info:
        gc.as_dtype(np_type)
    assert np.dtype(np_type).name in str(info.value)
    assert suggestion in str(info.value)


@pytest.mark.parametrize("value", [np.uint64, np.complex64, "float128x", "string", object, None.__class__, 3])
def test_as_dtype_rejects_unsupported(value):
    with pytest.raises(TypeError) as info:
        gc.as_dtype(value)
    assert "float32" in str(info.value)  # lists what is supported


def test_placeholder_rejects_unsupported_dtype(graph):
    with pytest.raises(TypeError):
        gc.placeholder(np.float16, shape=(2,))
    assert gc.placeholder("float64", shape=(None,)).dtype is gc.float64
    assert gc.placeholder(np.uint8, shape=(None,)).dtype is gc.uint8


# ---------------------------------------------------------------------------------------------
# result_type: strong operands
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("a", ALL, ids=str)
@pytest.mark.parametrize("b", ALL, ids=str)
def test_result_type_strong_pairs_match_numpy(a, b):
    expected = widened(np.result_type(NP[a], NP[b]))
    got = dt.result_type(a, b)
    assert got.np == expected
    assert got is gc.as_dtype(expected)
    assert dt.result_type(b, a) is got


def test_result_type_widening_cases():
    assert dt.result_type(gc.uint8, gc.int8) is gc.int32  # NumPy: int16
    assert dt.result_type(gc.int32, gc.uint8) is gc.int32
    assert dt.result_type(gc.int64, gc.uint8) is gc.int64
    assert dt.result_type(gc.int8, gc.float32) is gc.float32
    assert dt.result_type(gc.int32, gc.float32) is gc.float64
    assert dt.result_type(gc.int64, gc.float32) is gc.float64
    assert dt.result_type(gc.uint8, gc.float32) is gc.float32
    assert dt.result_type(gc.float32, gc.float64) is gc.float64
    assert dt.result_type(gc.bool_, gc.int8) is gc.int8
    assert dt.result_type(gc.bool_, gc.bool_) is gc.bool_
    assert dt.result_type(gc.float32) is gc.float32
    assert dt.result_type(gc.uint8, gc.int8, gc.float32) is gc.float32


# ---------------------------------------------------------------------------------------------
# result_type: weak Python scalars (NEP 50)
# ---------------------------------------------------------------------------------------------
WEAK_CASES = [
    (gc.float32, 2.0), (gc.float32, 2), (gc.float32, True), (gc.float64, 2.5),
    (gc.int32, 1), (gc.int32, 2.5), (gc.int32, True), (gc.int8, 100), (gc.int8, -128), (gc.int8, 1.0),
    (gc.uint8, 255), (gc.uint8, 0), (gc.uint8, 2.5), (gc.int64, 2 ** 62), (gc.int64, 1.5),
    (gc.bool_, True), (gc.bool_, 1), (gc.bool_, 1.5),
]


@pytest.mark.parametrize("d, scalar", WEAK_CASES, ids=lambda v: str(v))
def test_result_type_weak_scalars_match_numpy(d, scalar):
    expected = widened(np.result_type(NP[d], scalar))
    assert dt.result_type(d, scalar).np == expected
    assert dt.result_type(scalar, d).np == expected
    # and the array expression agrees (NumPy 2 applies the same rule to operators)
    with np.errstate(all="ignore"):
        assert widened((np.ones(2, NP[d]) * scalar).dtype) == expected


def test_weak_scalars_headline_rules():
    assert dt.result_type(gc.float32, 2.0) is gc.float32
    assert dt.result_type(gc.int32, 1) is gc.int32
    assert dt.result_type(gc.int32, 2.5) is gc.float64
    assert dt.result_type(gc.int8, 2.5) is gc.float64
    assert dt.result_type(gc.uint8, 3) is gc.uint8
    assert dt.result_type(gc.bool_, 1) is gc.int64
    assert dt.result_type(gc.bool_, 1.0) is gc.float64


@pytest.mark.parametrize("d, scalar", [(gc.int8, 1000), (gc.int8, 128), (gc.int8, -129), (gc.uint8, -1),
                                       (gc.uint8, 256), (gc.int32, 2 ** 31), (gc.int64, 2 ** 63)])
def test_result_type_weak_int_out_of_range(d, scalar):
    with pytest.raises(OverflowError) as info:
        dt.result_type(d, scalar)
    assert str(scalar) in str(info.value)
    assert d.name in str(info.value)
    with pytest.raises(OverflowError):  # NumPy 2 agrees
        np.ones(2, NP[d]) + scalar


def test_result_type_only_python_scalars_use_graphc_defaults():
    assert dt.result_type(1.0) is gc.float32
    assert dt.result_type(1, 2.0) is gc.float32
    assert dt.result_type(1) is gc.int64
    assert dt.result_type(1, 2) is gc.int64
    assert dt.result_type(True) is gc.bool_
    assert dt.result_type(True, 1) is gc.int64


@pytest.mark.parametrize("d", ALL, ids=str)
def test_float_result_type_matches_numpy_float_functions(d):
    with np.errstate(all="ignore"):
        expected = widened(np.exp(np.ones(2, NP[d])).dtype)
    assert dt.float_result_type(d).np == expected


def test_float_result_type_examples():
    assert dt.float_result_type(gc.int32) is gc.float64
    assert dt.float_result_type(gc.int64) is gc.float64
    assert dt.float_result_type(gc.int8) is gc.float32
    assert dt.float_result_type(gc.uint8) is gc.float32
    assert dt.float_result_type(gc.bool_) is gc.float32
    assert dt.float_result_type(gc.float32) is gc.float32
    assert dt.float_result_type(gc.float64) is gc.float64


# ---------------------------------------------------------------------------------------------
# dtypes of values entering a graph
# ---------------------------------------------------------------------------------------------
def test_constant_dtypes(graph, evaluate):
    consts = {
        "py_float": gc.constant(1.5),
        "py_int": gc.constant(3),
        "py_bool": gc.constant(True),
        "py_list": gc.constant([1, 2, 3]),
        "py_mixed": gc.constant([1, 2.5]),
        "np_f64": gc.constant(np.array([1.5, 2.5])),
        "np_i32": gc.constant(np.int32(7)),
        "np_u8": gc.constant(np.array([1, 255], np.uint8)),
        "np_f16": gc.constant(np.array([0.5, 1.5], np.float16)),
        "np_i16": gc.constant(np.array([-300, 300], np.int16)),
        "explicit": gc.constant([1, 2], dtype=gc.int8),
        "explicit_float": gc.constant(3, dtype="float64"),
    }
    expected = {
        "py_float": np.float32(1.5),
        "py_int": np.int64(3),
        "py_bool": np.bool_(True),
        "py_list": np.array([1, 2, 3], np.int64),
        "py_mixed": np.array([1, 2.5], np.float32),
        "np_f64": np.array([1.5, 2.5]),
        "np_i32": np.int32(7),
        "np_u8": np.array([1, 255], np.uint8),
        "np_f16": np.array([0.5, 1.5], np.float32),
        "np_i16": np.array([-300, 300], np.int32),
        "explicit": np.array([1, 2], np.int8),
        "explicit_float": np.float64(3),
    }
    for name, t in consts.items():
        assert t.dtype.np == expected[name].dtype, name
    out = evaluate(consts)
    for name, exp in expected.items():
        assert_close(out[name], exp)


def test_constant_rejects_lossy_dtypes(graph):
    with pytest.raises(gc.DTypeError):
        gc.constant(2.5, dtype=gc.int32)
    with pytest.raises(gc.DTypeError):
        gc.constant(300, dtype=gc.int8)
    with pytest.raises(gc.DTypeError):
        gc.constant("abc")


def test_feeds_convert_only_safely(graph, evaluate):
    f = gc.placeholder(gc.float32, shape=(None,))
    i = gc.placeholder(gc.int32, shape=(None,))
    out = evaluate({"f": f, "i": i}, {f: np.array([1.0, 2.0], np.float64), i: np.array([1, 2], np.int64)})
    assert_close(out["f"], np.array([1.0, 2.0], np.float32))
    assert_close(out["i"], np.array([1, 2], np.int32))
    with pytest.raises(gc.FeedError):
        evaluate(i, {i: np.array([1.5], np.float64)})  # float into int loses information
    with pytest.raises(gc.FeedError):
        evaluate(i, {i: np.array([2 ** 40], np.int64)})  # out of range


def test_tf_names_of_dtypes():
    """``tf.bool`` is a name TF1 programs use for placeholders and casts."""
    assert gc.bool is gc.bool_ and gc.as_dtype("bool") is gc.bool

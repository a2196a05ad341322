"""Ops that bring values into a graph: constants, placeholders, fills and shape queries."""
from __future__ import annotations

import numbers
from typing import Optional

import numpy as np

from .. import dtypes as dt
from ..dtypes import DType, as_dtype
from ..errors import ShapeError, ShapeMismatch
from ..graph import Tensor, get_default_graph, user_location
from ..shapes import TensorShape, TensorType
from ._build import dtype_error, graph_of, is_symbolic, make1
from .registry import define, one_output
from .shape_spec import resolve_shape_spec, spec_dims_static, spec_like, spec_to_concrete, static_shape


# --- const ------------------------------------------------------------------------------
def _infer_const(inputs, attrs):
    value = attrs["value"]
    return [TensorType(as_dtype(value.dtype), value.shape)]


define("const", "source", _infer_const, lambda xs, attrs, ctx=None: (attrs["value"],),
       doc="A constant value held in the graph (attr `value`).")


def _python_kind(value):
    """The weak Python scalar that stands for a Python value, or None if it is not one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, np.integer):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (list, tuple)) and value and not any(is_symbolic(v) for v in _flat(value)):
        kinds = [_python_kind(v) for v in _flat(value)]
        if any(k is None for k in kinds):
            return None
        if any(isinstance(k, float) for k in kinds):
            return 0.0
        ints = [k for k in kinds if isinstance(k, int) and not isinstance(k, bool)]
        if ints:
            return max(ints, key=abs)
        return False
    return None


def _flat(value):
    for v in value:
        if isinstance(v, (list, tuple)):
            yield from _flat(v)
        else:
            yield v


def _as_constant_array(value, dtype: Optional[DType]) -> np.ndarray:
    """The array a constant holds. Python values take graphc's defaults (float32, int64);
    NumPy values keep their dtype; an explicit ``dtype`` must not lose information."""
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise TypeError(f"cannot make a numeric constant from {value!r}")
    if dtype is not None:
        if arr.dtype.kind == "f" and dtype.np.kind in "iub" and np.any(arr != np.trunc(arr)):
            raise TypeError(f"value {value!r} is not exactly representable as {dtype.name}")
        return np.asarray(value, dtype=dtype.np)
    if isinstance(value, (np.ndarray, np.generic)):
        return arr.astype(dt._from_numpy(arr.dtype).np, copy=False)
    if arr.dtype.kind == "f" or arr.size == 0:
        return arr.astype(np.float32)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return arr


def constant(value, dtype=None, shape=None, name: Optional[str] = None, graph=None) -> Tensor:
    """A constant tensor. Python floats become float32 and Python ints int64 unless
    ``dtype`` says otherwise; NumPy arrays keep their dtype."""
    if is_symbolic(value):
        raise TypeError(f"gc.constant expects a Python or NumPy value, got symbolic {value.name!r}")
    dtype = as_dtype(dtype) if dtype is not None else None
    try:
        arr = _as_constant_array(value, dtype)
    except (TypeError, ValueError, OverflowError) as e:
        raise dtype_error("const", str(e)) from None
    if shape is not None:
        shape = tuple(int(d) for d in shape)
        if arr.size == 1:
            arr = np.full(shape, arr.reshape(()), dtype=arr.dtype)
        elif arr.size == int(np.prod(shape)):
            arr = arr.reshape(shape)
        else:
            raise ShapeError(f"gc.constant at {user_location()}: a value of shape {arr.shape} does not "
                             f"fit shape {shape}")
    return make1("const", (), {"value": arr}, name or "Const", graph=graph or get_default_graph())


def convert_to_tensor(value, dtype=None, name: Optional[str] = None, graph=None) -> Tensor:
    """A Tensor for ``value``: tensors pass through, variables are read, anything else
    becomes a constant (of ``dtype`` if given)."""
    from .state import Variable
    if isinstance(value, Variable):
        value = value._as_tensor()
    if isinstance(value, Tensor):
        if dtype is not None and value.dtype is not as_dtype(dtype):
            raise dtype_error("convert_to_tensor", f"tensor '{value.name}' has dtype {value.dtype.name}, "
                              f"expected {as_dtype(dtype).name} (use gc.cast)")
        return value
    return constant(value, dtype=dtype, name=name, graph=graph)


def weak_operand(value):
    """The Python scalar standing for ``value`` in weak promotion, or None if it is strong."""
    if isinstance(value, (np.ndarray, np.generic)) or is_symbolic(value):
        return None
    return _python_kind(value)


def operand_dtype(value) -> DType:
    if is_symbolic(value):
        return value.dtype
    if isinstance(value, (np.ndarray, np.generic)):
        return dt._from_numpy(np.asarray(value).dtype)
    raise TypeError(f"cannot use {value!r} as a tensor")


def promote(op_type: str, *values, to=None) -> tuple:
    """Promote operands to one dtype (NumPy rules, weak Python scalars) and return
    ``(dtype, tensors)``; mixed strong dtypes get a cast, Python values become constants."""
    from .elementwise import cast
    graph = graph_of(*values, op_type=op_type)
    parts = []
    for v in values:
        weak = weak_operand(v)
        if weak is None:
            try:
                parts.append(operand_dtype(v))
            except TypeError as e:
                raise dtype_error(op_type, str(e)) from None
        else:
            parts.append(weak)
    try:
        dtype = dt.result_type(*parts) if to is None else as_dtype(to)
    except (OverflowError, TypeError) as e:
        raise dtype_error(op_type, f"{e} (operands: {', '.join(_describe(v) for v in values)})") from None
    tensors = []
    for v in values:
        if is_symbolic(v):
            t = convert_to_tensor(v)
            tensors.append(t if t.dtype is dtype else cast(t, dtype))
        else:
            try:
                tensors.append(constant(v, dtype=dtype, graph=graph))
            except Exception as e:
                raise dtype_error(op_type, f"cannot use {v!r} as {dtype.name}: {e}") from None
    return dtype, tensors


def _describe(v) -> str:
    if is_symbolic(v):
        return f"'{v.name}' {v.dtype.name}"
    return repr(v)


# --- placeholders -----------------------------------------------------------------------
def _infer_placeholder(inputs, attrs):
    return [TensorType(attrs["dtype"], attrs["shape"])]


def _no_feed(xs, attrs, ctx=None):
    raise RuntimeError("placeholder evaluated without a feed")  # the Session checks feeds first


define("placeholder", "source", _infer_placeholder, _no_feed,
       doc="A value that must be fed at run time.")


def placeholder(dtype, shape=None, name: Optional[str] = None) -> Tensor:
    """A value supplied through ``feed_dict``. ``shape`` may contain ``None`` dims.

    Without a shape (TF1's ``tf.placeholder(tf.float32)``), the placeholder is a scalar: that
    is how TF1 programs use one (``keep_prob``, a learning rate, ``is_training``). graphc
    builds and checks the whole graph before any feed, so it cannot wait for the first feed
    to learn a rank; a value of another rank fed to it is a FeedError that says so and shows
    the fix (give it the shape that is fed), never a silent broadcast."""
    graph = get_default_graph()
    where = user_location()
    shapeless = shape is None
    shape = () if shapeless else static_shape(shape, "placeholder", name)
    t = make1("placeholder", (), {"dtype": as_dtype(dtype), "shape": shape}, name or "Placeholder", graph=graph)
    if shapeless:
        graph.shapeless_placeholders[t] = where
    return t


def _infer_with_default(inputs, attrs):
    (x,) = inputs
    shape = TensorShape(attrs["shape"])
    if not shape.is_compatible_with(x.shape):
        raise ShapeMismatch(f"default value of shape {x.shape} does not match shape {shape}")
    return [TensorType(x.dtype, shape)]


define("placeholder_with_default", "source", _infer_with_default,
       one_output(lambda x, attrs: x), elementwise=False,
       doc="Passes its input through unless fed; declares a (possibly looser) shape.")


def placeholder_with_default(value, shape, name: Optional[str] = None) -> Tensor:
    x = convert_to_tensor(value)
    shape = static_shape(shape, "placeholder_with_default", name)
    return make1("placeholder_with_default", (x,), {"shape": shape}, name or "PlaceholderWithDefault")


# --- fill ---------------------------------------------------------------------------------
def _infer_fill(inputs, attrs):
    value = inputs[0]
    if value.rank != 0:
        raise ShapeMismatch(f"fill value must be a scalar, got shape {value.shape}")
    return [TensorType(value.dtype, spec_dims_static(attrs["shape"], inputs))]


def _ref_fill(inputs, attrs, ctx=None):
    shape = spec_to_concrete(attrs["shape"], inputs)
    return (np.full(shape, inputs[0], dtype=inputs[0].dtype),)


define("fill", "source", _infer_fill, _ref_fill,
       shape_only_inputs=lambda attrs, n: tuple(range(1, n)),
       doc="A tensor of the given shape filled with a scalar. Inputs: value, then shape sources.")


def fill(dims, value, name: Optional[str] = None) -> Tensor:
    """A tensor of shape ``dims`` (static, or derived from gc.shape) filled with ``value``."""
    graph = graph_of(dims, value, op_type="fill")
    v = convert_to_tensor(value, graph=graph)
    spec, sources = resolve_shape_spec(dims, "fill", first_input=1)
    return make1("fill", (v, *sources), {"shape": spec}, name or "Fill", graph=graph)


def _filled(shape, dtype, scalar, name):
    dtype = as_dtype(dtype)
    graph = graph_of(shape, op_type="fill")
    return fill(shape, constant(scalar, dtype=dtype, graph=graph), name=name)


def zeros(shape, dtype=dt.float32, name: Optional[str] = None) -> Tensor:
    return _filled(shape, dtype, 0, name or "zeros")


def ones(shape, dtype=dt.float32, name: Optional[str] = None) -> Tensor:
    return _filled(shape, dtype, 1, name or "ones")


def _like(x, dtype, scalar, name):
    x = convert_to_tensor(x)
    dtype = as_dtype(dtype) if dtype is not None else x.dtype
    spec, sources = spec_like(x, first_input=1)
    value = constant(scalar, dtype=dtype, graph=x.graph)
    return make1("fill", (value, *sources), {"shape": spec}, name)


def zeros_like(x, dtype=None, name: Optional[str] = None) -> Tensor:
    return _like(x, dtype, 0, name or "zeros_like")


def ones_like(x, dtype=None, name: Optional[str] = None) -> Tensor:
    return _like(x, dtype, 1, name or "ones_like")


# --- shape --------------------------------------------------------------------------------
def _infer_shape(inputs, attrs):
    return [TensorType(attrs["out_type"], (inputs[0].rank,))]


define("shape", "source", _infer_shape,
       one_output(lambda x, attrs: np.asarray(x.shape, dtype=attrs["out_type"].np)),
       shape_only_inputs=lambda attrs, n: (0,),
       doc="The run-time shape of its input as a 1-D integer tensor.")


def shape(x, out_type=dt.int64, name: Optional[str] = None) -> Tensor:
    x = convert_to_tensor(x)
    out_type = as_dtype(out_type)
    if not out_type.is_integer:
        raise dtype_error("shape", f"out_type must be an integer dtype, got {out_type.name}")
    return make1("shape", (x,), {"out_type": out_type}, name or "Shape")


def size(x, out_type=dt.int64, name: Optional[str] = None) -> Tensor:
    from .elementwise import cast
    from .reduce import reduce_prod
    out_type = as_dtype(out_type)
    # reduce_prod accumulates integers in int64 (NumPy's rule); give back the asked-for type
    return cast(reduce_prod(shape(x, out_type), name=name or "Size"), out_type)


def rank(x, name: Optional[str] = None) -> Tensor:
    x = convert_to_tensor(x)
    return constant(x.ndim, dtype=dt.int32, name=name or "Rank", graph=x.graph)


def range_(start, limit=None, delta=1, dtype=None, name: Optional[str] = None) -> Tensor:
    """``gc.range``: like ``np.arange`` over Python numbers (a constant)."""
    if limit is None:
        start, limit = 0, start
    for v in (start, limit, delta):
        if is_symbolic(v):
            raise TypeError("gc.range takes Python numbers; tensor bounds are not supported")
    arr = np.arange(start, limit, delta)
    return constant(arr, dtype=dtype, name=name or "range")

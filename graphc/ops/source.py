"""Ops that bring values into a graph: constants, placeholders, fills and shape queries."""
from __future__ import annotations

import numbers
from typing import Optional

import numpy as np

from .. import dtypes as dt
from ..dtypes import DType, as_dtype
from ..errors import ShapeError, ShapeMismatch
from ..graph import Tensor, get_default_graph, user_location
from ..shapes import TensorShape, TensorType, UnknownRankShape
from ._build import dtype_error, graph_of, is_symbolic, make1, shape_error
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
    if attrs.get("unknown_rank", False):  # made without a shape: the rank comes with the feed
        return [TensorType(attrs["dtype"], UnknownRankShape(None, None))]
    return [TensorType(attrs["dtype"], attrs["shape"])]


def _no_feed(xs, attrs, ctx=None):
    raise RuntimeError("placeholder evaluated without a feed")  # the Session checks feeds first


define("placeholder", "source", _infer_placeholder, _no_feed,
       doc="A value that must be fed at run time.")


def placeholder(dtype, shape=None, name: Optional[str] = None) -> Tensor:
    """A value supplied through ``feed_dict``. ``shape`` may contain ``None`` dims.

    Without a shape (TF1's ``tf.placeholder(tf.float32)``), the rank is unknown until a value
    is fed: the graph is built with the dtypes alone (graph.py ``_infer_without_rank``), and the
    Session compiles one program per rank fed (a scalar in one run, a vector in the next, as
    TF1's linear-regression tutorial does), running then every check that needed the rank."""
    attrs = {"dtype": as_dtype(dtype), "shape": ()}
    if shape is None:
        attrs["unknown_rank"] = True
    else:
        attrs["shape"] = static_shape(shape, "placeholder", name)
    return make1("placeholder", (), attrs, name or "Placeholder", graph=get_default_graph())


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
    """TF1's ``tf.range(start, limit=None, delta=1, dtype=None, name="range")``: like
    ``np.arange``. Over Python numbers (or constants) it is a constant.

    A bound may be a tensor when the output's length follows from feed shapes, which is how
    graphc sizes every tensor before a run (ops/shape_spec.py): an ``int`` dim of a shape
    (``gc.shape(x)[0]``, or a cast or identity of one) as ``limit`` with a Python ``start >= 0``
    and ``delta > 0``, or as ``start`` with a Python ``limit >= 0`` and ``delta < 0`` (counting
    down). Any other tensor bound (a fed scalar, a computed value) would make the length depend
    on data: an error names the op, the line and why."""
    if limit is None:
        start, limit = 0, start
    if not any(is_symbolic(v) for v in (start, limit, delta)):
        arr = np.arange(start, limit, delta)
        return constant(arr, dtype=dtype, name=name or "range")
    return _range_of_dim(start, limit, delta, dtype, name)


def _range_bound(v):
    """A Python number, a ``(tensor, (x, axis))`` for a run-time dim, or None (data-dependent)."""
    from .shape_spec import _UNKNOWN, _resolve_scalar
    if not is_symbolic(v):
        return v
    t = convert_to_tensor(v)
    if t.ndim != 0 or not t.dtype.is_integer:
        return None
    r = _resolve_scalar(t)
    if r is _UNKNOWN:
        return None
    return r if isinstance(r, int) else (t, r)


def _shown(v) -> str:
    return f"'{convert_to_tensor(v).name}'" if is_symbolic(v) else repr(v)


def _range_of_dim(start, limit, delta, dtype, name):
    from .elementwise import cast, subtract
    bounds = [_range_bound(v) for v in (start, limit, delta)]
    names = ("start", "limit", "delta")
    for v, b, what in zip((start, limit, delta), bounds, names):
        if b is None:
            raise shape_error("range", f"{what} '{convert_to_tensor(v).name}' is a tensor whose value only the run "
                                       f"decides, so the output's length would depend on data; graphc sizes every "
                                       f"tensor from feed shapes: give Python numbers, or a dim of a shape "
                                       f"(gc.shape(x)[k]) as limit (start >= 0, delta > 0) or as start (limit >= 0, "
                                       f"delta < 0)")
    s, l, d = bounds
    if not any(isinstance(b, tuple) for b in bounds):  # static dims and constants
        return constant(np.arange(s, l, d), dtype=dtype, name=name or "range",
                        graph=graph_of(start, limit, delta, op_type="range"))
    if isinstance(d, tuple) or not isinstance(d, (int, np.integer)) or d == 0:
        raise shape_error("range", f"delta must be a non-zero Python int when a bound is a tensor, got {delta!r}")
    out_dtype = None if dtype is None else as_dtype(dtype)
    if out_dtype is not None and not out_dtype.is_numeric:
        raise dtype_error("range", f"dtype must be numeric, got {out_dtype.name}")
    if isinstance(l, tuple) and not isinstance(s, tuple) and isinstance(s, (int, np.integer)) and s >= 0 and d > 0:
        dim = l
        values = None
    elif isinstance(s, tuple) and not isinstance(l, tuple) and isinstance(l, (int, np.integer)) and l >= 0 and d < 0:
        dim = s
        values = True
    else:
        raise shape_error("range", f"with a tensor bound graphc computes range(start, dim, delta) for a Python "
                                   f"start >= 0 and delta > 0, or range(dim, limit, delta) for a Python limit >= 0 "
                                   f"and delta < 0 (the length then follows from the shape); got start={_shown(start)}, "
                                   f"limit={_shown(limit)}, delta={_shown(delta)}")
    tensor, (x, axis) = dim
    spec, sources = ((("dim", 1, axis),), (x,))
    one = constant(1, dtype=tensor.dtype, graph=tensor.graph)
    ones = make1("fill", (one, *sources), {"shape": spec}, "range_ones")
    from .cumulative import cumsum
    iota = cumsum(ones, exclusive=True)  # 0, 1, ..., dim - 1
    if values is None:
        out = iota[int(s)::int(d)]
    else:
        down = subtract(tensor, iota)  # dim, dim - 1, ..., 1
        out = down[:(-int(l) if l > 0 else None):-int(d)]
    out_dtype = out_dtype or out.dtype
    from .control import identity
    return identity(cast(out, out_dtype) if out_dtype is not out.dtype else out, name=name or "range")

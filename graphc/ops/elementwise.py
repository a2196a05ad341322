"""Elementwise ops: unary math, binary arithmetic and comparisons, where, cast, clip.

Primitive binary and ternary ops take operands of one dtype; the builder functions promote
(NumPy rules, weak Python scalars) and insert casts, so kernels never see mixed types.
Float-only functions (exp, divide, ...) given integers compute in the float type NumPy
would use (int32 -> float64, int8 -> float32).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .. import dtypes as dt
from ..dtypes import DType, as_dtype
from ..errors import DTypeMismatch, ShapeMismatch
from ..graph import Tensor, user_location
from ..shapes import TensorType, broadcast_shapes
from ._build import dtype_error, make1
from .registry import define
from .source import convert_to_tensor, promote

# Which input dtypes a primitive accepts. The builder converts what it can (ints to float for
# FLOAT ops, anything to bool for BOOL ops) and rejects the rest with a clear error.
FLOAT, NUMERIC, BOOL, ANY = "float", "numeric", "bool", "any"
_ACCEPTS: dict[str, Callable[[DType], bool]] = {
    FLOAT: lambda d: d.is_floating,
    NUMERIC: lambda d: d.is_numeric,
    BOOL: lambda d: d.is_bool,
    ANY: lambda d: True,
}
_ACCEPT_WORDS = {FLOAT: "a floating", NUMERIC: "a numeric (non-bool)", BOOL: "a bool", ANY: "any"}

def _infer_elementwise(name: str, n_inputs: int, accepts: str, out: str):
    def infer(inputs, attrs):
        if len(inputs) != n_inputs:
            raise ShapeMismatch(f"{name} takes {n_inputs} input(s), got {len(inputs)}")
        dtypes = {t.dtype for t in inputs}
        if len(dtypes) != 1:
            raise DTypeMismatch(f"operands must have one dtype, got {', '.join(str(t.dtype) for t in inputs)}")
        dtype = inputs[0].dtype
        if not _ACCEPTS[accepts](dtype):
            raise DTypeMismatch(f"expects {_ACCEPT_WORDS[accepts]} tensor, got {dtype.name}")
        out_dtype = dt.bool_ if out == "bool" else (attrs["dtype"] if out == "attr" else dtype)
        return [TensorType(out_dtype, broadcast_shapes(*(t.shape for t in inputs)))]
    return infer


def define_elementwise(name: str, n_inputs: int, fn, accepts: str, out: str = "same",
                       family: str = "elementwise", doc: str = "", gradient=None, formula=None, onnx=None):
    """Register an elementwise primitive. ``fn(*arrays, attrs)`` is its NumPy reference; an op
    defined in one place also gives its ``gradient``, scalar ``formula`` and ``onnx`` type
    (ops/registry.py, docs/ADDING-AN-OP.md)."""
    def reference(inputs, attrs, ctx=None):
        result = fn(*inputs, attrs)
        return (np.asarray(result),)
    return define(name, family, _infer_elementwise(name, n_inputs, accepts, out), reference,
                  elementwise=True, doc=doc, gradient=gradient, formula=formula, onnx=onnx)


def _to_accepted(op: str, x: Tensor, accepts: str) -> Tensor:
    if _ACCEPTS[accepts](x.dtype):
        return x
    if accepts == FLOAT:
        # NumPy's true division computes every integer or bool pair in float64 (int8/int8 ->
        # float64), while its float functions follow the input size (np.exp(int8) -> float16,
        # widened to float32). reciprocal is 1/x.
        return cast(x, dt.float64 if op in ("divide", "reciprocal") else dt.float_result_type(x.dtype))
    if accepts == BOOL:
        return cast(x, dt.bool_)
    raise dtype_error(op, f"expects {_ACCEPT_WORDS[accepts]} tensor, got '{x.name}' of dtype {x.dtype.name}")


def unary_builder(op: str, accepts: str, default_name: Optional[str] = None, doc: str = ""):
    def build(x, name: Optional[str] = None) -> Tensor:
        x = convert_to_tensor(x)
        return make1(op, (_to_accepted(op, x, accepts),), None, name or default_name or op)
    build.__name__ = op
    build.__doc__ = doc or f"Elementwise {op}."
    return build


def binary_builder(op: str, accepts: str, doc: str = ""):
    def build(x, y, name: Optional[str] = None) -> Tensor:
        dtype, (a, b) = promote(op, x, y)
        a, b = _to_accepted(op, a, accepts), _to_accepted(op, b, accepts)
        return make1(op, (a, b), None, name or op)
    build.__name__ = op
    build.__doc__ = doc or f"Elementwise {op} with NumPy broadcasting."
    return build


# --- unary ------------------------------------------------------------------------------
def _special():
    import scipy.special  # imported on first use: it costs ~0.2 s at import time
    return scipy.special


def _sigmoid(x, attrs):
    return _special().expit(x)


def _rsqrt(x, attrs):
    return np.reciprocal(np.sqrt(x))


_UNARY = [
    # name, NumPy reference, accepted dtypes, output dtype
    ("negative", lambda x, a: np.negative(x), NUMERIC, "same"),
    ("abs", lambda x, a: np.abs(x), NUMERIC, "same"),
    ("sign", lambda x, a: np.sign(x), NUMERIC, "same"),
    ("exp", lambda x, a: np.exp(x), FLOAT, "same"),
    ("expm1", lambda x, a: np.expm1(x), FLOAT, "same"),
    ("log", lambda x, a: np.log(x), FLOAT, "same"),
    ("log1p", lambda x, a: np.log1p(x), FLOAT, "same"),
    ("sqrt", lambda x, a: np.sqrt(x), FLOAT, "same"),
    ("rsqrt", _rsqrt, FLOAT, "same"),
    ("square", lambda x, a: np.square(x), NUMERIC, "same"),
    ("reciprocal", lambda x, a: np.reciprocal(x), FLOAT, "same"),
    ("sin", lambda x, a: np.sin(x), FLOAT, "same"),
    ("cos", lambda x, a: np.cos(x), FLOAT, "same"),
    ("tanh", lambda x, a: np.tanh(x), FLOAT, "same"),
    ("sigmoid", _sigmoid, FLOAT, "same"),
    ("erf", lambda x, a: _special().erf(x), FLOAT, "same"),
    ("floor", lambda x, a: np.floor(x), NUMERIC, "same"),
    ("ceil", lambda x, a: np.ceil(x), NUMERIC, "same"),
    ("round", lambda x, a: np.round(x), NUMERIC, "same"),
    ("logical_not", lambda x, a: np.logical_not(x), BOOL, "same"),
    ("isnan", lambda x, a: np.isnan(x), NUMERIC, "bool"),
    ("isfinite", lambda x, a: np.isfinite(x), NUMERIC, "bool"),
]

for _name, _fn, _accepts, _out in _UNARY:
    define_elementwise(_name, 1, _fn, _accepts, _out, doc=f"Elementwise {_name} (NumPy semantics).")

negative = unary_builder("negative", NUMERIC, "Neg")
neg = negative
abs = unary_builder("abs", NUMERIC, "Abs")  # noqa: A001 - TensorFlow's name
sign = unary_builder("sign", NUMERIC, "Sign")
exp = unary_builder("exp", FLOAT, "Exp")
expm1 = unary_builder("expm1", FLOAT, "Expm1")
log = unary_builder("log", FLOAT, "Log")
log1p = unary_builder("log1p", FLOAT, "Log1p")
sqrt = unary_builder("sqrt", FLOAT, "Sqrt")
rsqrt = unary_builder("rsqrt", FLOAT, "Rsqrt", "Elementwise 1/sqrt(x).")
square = unary_builder("square", NUMERIC, "Square")
reciprocal = unary_builder("reciprocal", FLOAT, "Reciprocal")
sin = unary_builder("sin", FLOAT, "Sin")
cos = unary_builder("cos", FLOAT, "Cos")
tanh = unary_builder("tanh", FLOAT, "Tanh")
sigmoid = unary_builder("sigmoid", FLOAT, "Sigmoid", "Elementwise 1/(1+exp(-x)), computed stably.")
erf = unary_builder("erf", FLOAT, "Erf")
floor = unary_builder("floor", NUMERIC, "Floor")
ceil = unary_builder("ceil", NUMERIC, "Ceil")
round = unary_builder("round", NUMERIC, "Round", "Round half to even, as NumPy and TensorFlow do.")  # noqa: A001
logical_not = unary_builder("logical_not", BOOL, "LogicalNot")
isnan = unary_builder("isnan", NUMERIC, "IsNan")
is_nan = isnan
isfinite = unary_builder("isfinite", NUMERIC, "IsFinite")
is_finite = isfinite


# The circular and hyperbolic functions TF1 has as tf.tan, tf.asin, ... (and ONNX as Tan,
# Asin, ...): each defined in one place with its gradient and its target math function.
def _trig(name: str, derivative: Callable, onnx_name: str):
    define_elementwise(name, 1, lambda x, a, f=getattr(np, "arc" + name[1:] if name.startswith("a") else name): f(x),
                       FLOAT, doc=f"Elementwise {name} (NumPy semantics).",
                       gradient=lambda op, grads: [grads[0] * derivative(op.inputs[0], op.outputs[0])],
                       formula=lambda e, x: e.call(name, x[0]), onnx=onnx_name)
    return unary_builder(name, FLOAT, name.capitalize())


tan = _trig("tan", lambda x, y: 1.0 + y * y, "Tan")
asin = _trig("asin", lambda x, y: rsqrt(1.0 - x * x), "Asin")
acos = _trig("acos", lambda x, y: negative(rsqrt(1.0 - x * x)), "Acos")
atan = _trig("atan", lambda x, y: reciprocal(1.0 + x * x), "Atan")
sinh = _trig("sinh", lambda x, y: cosh(x), "Sinh")
cosh = _trig("cosh", lambda x, y: sinh(x), "Cosh")
asinh = _trig("asinh", lambda x, y: rsqrt(x * x + 1.0), "Asinh")
acosh = _trig("acosh", lambda x, y: rsqrt(x * x - 1.0), "Acosh")
atanh = _trig("atanh", lambda x, y: reciprocal(1.0 - x * x), "Atanh")


# --- binary ---------------------------------------------------------------------------------
def _floordiv(x, y, a):
    return np.floor_divide(x, y)


def _pow(x, y, a):
    if x.dtype.kind in "iu" and np.any(np.asarray(y) < 0):
        raise ValueError("integers to negative integer powers are not allowed")
    return np.power(x, y)


_BINARY = [
    ("add", lambda x, y, a: np.add(x, y), NUMERIC, "same"),
    ("subtract", lambda x, y, a: np.subtract(x, y), NUMERIC, "same"),
    ("multiply", lambda x, y, a: np.multiply(x, y), NUMERIC, "same"),
    ("divide", lambda x, y, a: np.true_divide(x, y), FLOAT, "same"),
    ("floordiv", _floordiv, NUMERIC, "same"),
    ("mod", lambda x, y, a: np.mod(x, y), NUMERIC, "same"),
    ("pow", _pow, NUMERIC, "same"),
    ("maximum", lambda x, y, a: np.maximum(x, y), ANY, "same"),
    ("minimum", lambda x, y, a: np.minimum(x, y), ANY, "same"),
    ("equal", lambda x, y, a: np.equal(x, y), ANY, "bool"),
    ("not_equal", lambda x, y, a: np.not_equal(x, y), ANY, "bool"),
    ("less", lambda x, y, a: np.less(x, y), ANY, "bool"),
    ("less_equal", lambda x, y, a: np.less_equal(x, y), ANY, "bool"),
    ("greater", lambda x, y, a: np.greater(x, y), ANY, "bool"),
    ("greater_equal", lambda x, y, a: np.greater_equal(x, y), ANY, "bool"),
    ("logical_and", lambda x, y, a: np.logical_and(x, y), BOOL, "same"),
    ("logical_or", lambda x, y, a: np.logical_or(x, y), BOOL, "same"),
]

for _name, _fn, _accepts, _out in _BINARY:
    define_elementwise(_name, 2, _fn, _accepts, _out, doc=f"Elementwise {_name} (NumPy semantics).")

add = binary_builder("add", NUMERIC)
subtract = binary_builder("subtract", NUMERIC)
multiply = binary_builder("multiply", NUMERIC)
divide = binary_builder("divide", FLOAT, "True division; integer operands divide as floats (NumPy).")
truediv = divide
floordiv = binary_builder("floordiv", NUMERIC, "Floor division (Python semantics; x // 0 is 0 for ints).")
floor_div = floordiv
mod = binary_builder("mod", NUMERIC, "Remainder with the sign of the divisor (Python semantics).")
floormod = mod
pow = binary_builder("pow", NUMERIC)  # noqa: A001
maximum = binary_builder("maximum", ANY, "Elementwise maximum; NaN propagates.")
minimum = binary_builder("minimum", ANY, "Elementwise minimum; NaN propagates.")
equal = binary_builder("equal", ANY)
not_equal = binary_builder("not_equal", ANY)
less = binary_builder("less", ANY)
less_equal = binary_builder("less_equal", ANY)
greater = binary_builder("greater", ANY)
greater_equal = binary_builder("greater_equal", ANY)
logical_and = binary_builder("logical_and", BOOL)
logical_or = binary_builder("logical_or", BOOL)


def logical_xor(x, y, name: Optional[str] = None) -> Tensor:
    _, (a, b) = promote("logical_xor", x, y)
    return not_equal(_to_accepted("logical_xor", a, BOOL), _to_accepted("logical_xor", b, BOOL),
                     name=name or "LogicalXor")


def squared_difference(x, y, name: Optional[str] = None) -> Tensor:
    return square(subtract(x, y), name=name or "SquaredDifference")


# --- where, clip, cast ------------------------------------------------------------------------
def _infer_where(inputs, attrs):
    cond, x, y = inputs
    if not cond.dtype.is_bool:
        raise DTypeMismatch(f"condition must be bool, got {cond.dtype.name}")
    if x.dtype is not y.dtype:
        raise DTypeMismatch(f"branches must have one dtype, got {x.dtype.name} and {y.dtype.name}")
    return [TensorType(x.dtype, broadcast_shapes(cond.shape, x.shape, y.shape))]


define("where", "elementwise", _infer_where,
       lambda xs, attrs, ctx=None: (np.where(*xs),), elementwise=True,
       doc="Elementwise select: x where condition is true, else y (broadcasting all three).")


def where(condition, x=None, y=None, name: Optional[str] = None) -> Tensor:
    """``x`` where ``condition`` holds, else ``y``, broadcasting all three (NumPy's where).
    With ``condition`` alone, TF1's one-argument form: the int64 ``[count, rank]``
    coordinates of its true elements, a size only the data decides (ops/masking.py)."""
    if x is None and y is None:
        from .masking import where_indices
        return where_indices(condition, name=name)
    if x is None or y is None:
        raise TypeError(f"where at {user_location()}: give both x and y, or neither (the coordinates of the "
                        "true elements)")
    cond = convert_to_tensor(condition)
    if not cond.dtype.is_bool:
        raise dtype_error("where", f"condition '{cond.name}' must be bool, got {cond.dtype.name} "
                          "(use a comparison or gc.cast)")
    _, (a, b) = promote("where", x, y)
    return make1("where", (cond, a, b), None, name or "Select")


def _infer_clip(inputs, attrs):
    if len({t.dtype for t in inputs}) != 1:
        raise DTypeMismatch("value and bounds must have one dtype")
    if inputs[0].dtype.is_bool:
        raise DTypeMismatch("expects a numeric tensor, got bool")
    return [TensorType(inputs[0].dtype, broadcast_shapes(*(t.shape for t in inputs)))]


define("clip_by_value", "elementwise", _infer_clip,
       lambda xs, attrs, ctx=None: (np.minimum(np.maximum(xs[0], xs[1]), xs[2]),),
       elementwise=True, doc="min(max(t, lo), hi), elementwise with broadcasting.")


def clip_by_value(t, clip_value_min, clip_value_max, name: Optional[str] = None) -> Tensor:
    _, (x, lo, hi) = promote("clip_by_value", t, clip_value_min, clip_value_max)
    return make1("clip_by_value", (x, lo, hi), None, name or "clip_by_value")


def _infer_cast(inputs, attrs):
    return [TensorType(attrs["dtype"], inputs[0].shape)]


def _ref_cast(xs, attrs, ctx=None):
    return (np.asarray(xs[0]).astype(attrs["dtype"].np),)


define("cast", "elementwise", _infer_cast, _ref_cast, elementwise=True,
       doc="Convert to another dtype (NumPy astype: float to int truncates toward zero).")


def cast(x, dtype, name: Optional[str] = None) -> Tensor:
    x = convert_to_tensor(x)
    dtype = as_dtype(dtype)
    if x.dtype is dtype:
        return x
    return make1("cast", (x,), {"dtype": dtype}, name or "Cast")


def add_n(inputs, name=None) -> Tensor:
    """The sum of a list of tensors of one shape (TF1's ``tf.add_n``): a chain of adds, which
    the fusion makes one kernel."""
    inputs = list(inputs)
    if not inputs:
        raise ValueError(f"add_n at {user_location()}: needs at least one tensor")
    total = convert_to_tensor(inputs[0])
    for i, t in enumerate(inputs[1:], 1):
        total = add(total, t, name=(name or "AddN") if i == len(inputs) - 1 else None)
    if len(inputs) == 1:
        from .control import identity
        total = identity(total, name=name or "AddN")
    return total


def to_float(x, name=None):
    return cast(x, dt.float32, name or "ToFloat")


def to_double(x, name=None):
    return cast(x, dt.float64, name or "ToDouble")


def to_int32(x, name=None):
    return cast(x, dt.int32, name or "ToInt32")


def to_int64(x, name=None):
    return cast(x, dt.int64, name or "ToInt64")

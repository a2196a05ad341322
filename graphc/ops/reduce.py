"""Reductions over any set of axes, with keepdims.

Accumulation types follow NumPy: integer and bool sums and products accumulate in int64,
integer means are float64. The builders cast before reducing, so every primitive reduction
has one input and output dtype. Reducing an empty axis gives the reduction's identity:
0 for sum, 1 for prod, NaN for mean, -inf/+inf (or the integer limits) for max/min.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .. import dtypes as dt
from ..errors import DTypeMismatch, ShapeMismatch
from ..graph import Tensor
from ..shapes import TensorType, normalize_axes, normalize_axis
from ._build import dtype_error, make1, renamed, shape_error
from .elementwise import cast
from .registry import define
from .shape import expand_dims, reshape
from .source import convert_to_tensor

# name -> accepted dtype kinds; codegen and autodiff read this table.
REDUCTIONS: dict[str, str] = {}


def reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _identity(kind: str, dtype: np.dtype):
    if kind == "max":
        return -np.inf if dtype.kind == "f" else (False if dtype.kind == "b" else np.iinfo(dtype).min)
    if kind == "min":
        return np.inf if dtype.kind == "f" else (True if dtype.kind == "b" else np.iinfo(dtype).max)
    raise ValueError(kind)


def _ref_logsumexp(x, axes, keepdims):
    m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    shift = np.where(np.isfinite(m), m, np.zeros_like(m))
    out = np.log(np.sum(np.exp(x - shift), axis=axes, keepdims=True)) + shift
    return out if keepdims else np.squeeze(out, axis=axes)


_REFERENCE = {
    "reduce_sum": lambda x, ax, kd: np.sum(x, axis=ax, keepdims=kd, dtype=x.dtype),
    "reduce_prod": lambda x, ax, kd: np.prod(x, axis=ax, keepdims=kd, dtype=x.dtype),
    "reduce_mean": lambda x, ax, kd: (np.mean(x, axis=ax, keepdims=kd, dtype=x.dtype)
                                      if x.size else np.full(reduced_shape(x.shape, ax, kd), np.nan, x.dtype)),
    "reduce_max": lambda x, ax, kd: np.max(x, axis=ax, keepdims=kd, initial=_identity("max", x.dtype)),
    "reduce_min": lambda x, ax, kd: np.min(x, axis=ax, keepdims=kd, initial=_identity("min", x.dtype)),
    "reduce_logsumexp": _ref_logsumexp,
    "reduce_any": lambda x, ax, kd: np.any(x, axis=ax, keepdims=kd),
    "reduce_all": lambda x, ax, kd: np.all(x, axis=ax, keepdims=kd),
}

_ACCEPTS = {
    "reduce_sum": "numeric", "reduce_prod": "numeric", "reduce_mean": "float",
    "reduce_max": "any", "reduce_min": "any", "reduce_logsumexp": "float",
    "reduce_any": "bool", "reduce_all": "bool",
}


def _check(accepts: str, dtype) -> bool:
    return {"numeric": dtype.is_numeric, "float": dtype.is_floating,
            "bool": dtype.is_bool, "any": True}[accepts]


@dataclass(frozen=True)
class Fold:
    """How the emitters compute a reduction defined in one place (``define_reduction``):
    start from ``identity``, fold each element's ``element(e, [v])`` (default: v itself) in with
    ``combine`` ("add" or "multiply"; partial results of GPU threads combine the same way), then
    ``finish(e, [acc])`` (default: acc). The formulas are scalar formulas (codegen/emit/scalar.py)."""

    identity: float
    combine: str = "add"
    element: Optional[Callable] = None
    finish: Optional[Callable] = None


def define_reduction(name: str, reference, accepts: str, doc: str, fold: Optional[Fold] = None,
                     gradient=None, onnx: Optional[str] = None):
    """Register a reduction over ``axes`` with ``keepdims``. ``reference(x, axes, keepdims)`` is
    its NumPy reference; ``accepts`` one of "numeric", "float", "bool", "any". The built-in
    reductions have their emitters and gradients in codegen/emit and autodiff; one defined in
    one place gives its ``fold``, ``gradient`` and ``onnx`` type (docs/ADDING-AN-OP.md)."""
    def infer(inputs, attrs):
        (x,) = inputs
        if not _check(accepts, x.dtype):
            raise DTypeMismatch(f"expects a {accepts} tensor, got {x.dtype.name}")
        axes = attrs["axes"]
        if any(not 0 <= a < x.rank for a in axes):
            raise ShapeMismatch(f"axes {axes} out of range for rank {x.rank}")
        return [TensorType(x.dtype, reduced_shape(x.shape, axes, attrs["keepdims"]))]

    def run(inputs, attrs, ctx=None):
        x = inputs[0]
        out = reference(x, attrs["axes"], attrs["keepdims"])
        return (np.asarray(out, dtype=x.dtype),)

    REDUCTIONS[name] = accepts
    _ACCEPTS[name] = accepts
    return define(name, "reduce", infer, run, doc=doc, gradient=gradient, onnx=onnx, fold=fold)


for _name in _REFERENCE:
    define_reduction(_name, _REFERENCE[_name], _ACCEPTS[_name],
                     doc=f"{_name} over `axes` (sorted, non-negative), with keepdims.")


def _prepare(op: str, x: Tensor) -> Tensor:
    """Cast to the type the reduction accumulates in (NumPy's rules)."""
    accepts = _ACCEPTS[op]
    if op in ("reduce_sum", "reduce_prod") and (x.dtype.is_integer or x.dtype.is_bool):
        return cast(x, dt.int64)
    if op == "reduce_mean" and not x.dtype.is_floating:
        return cast(x, dt.float64)
    if accepts == "float" and not x.dtype.is_floating:
        return cast(x, dt.float_result_type(x.dtype))
    if accepts == "bool" and not x.dtype.is_bool:
        return cast(x, dt.bool_)
    if accepts == "numeric" and x.dtype.is_bool:
        raise dtype_error(op, f"expects a numeric tensor, got '{x.name}' of dtype bool")
    return x


def _reduction_builder(op: str, default_name: str):
    def build(input_tensor, axis=None, keepdims=None, name: Optional[str] = None, reduction_indices=None,
              keep_dims=None) -> Tensor:
        axis = renamed(op, axis, reduction_indices, "axis", "reduction_indices")
        keepdims = renamed(op, keepdims, keep_dims, "keepdims", "keep_dims")
        x = _prepare(op, convert_to_tensor(input_tensor))
        if axis is None and not keepdims and not x.shape.known_rank:
            # all axes of a rank only the feed will tell: reduce the flattened tensor
            x = reshape(x, [-1])
        try:
            axes = normalize_axes(axis, x.ndim)
        except ShapeMismatch as e:
            raise shape_error(op, f"{e} (input '{x.name}' has shape {x.shape})") from None
        return make1(op, (x,), {"axes": axes, "keepdims": bool(keepdims)}, name or default_name)
    build.__name__ = op
    build.__doc__ = (f"{op}(input_tensor, axis=None, keepdims=False, name=None, reduction_indices=None, "
                     "keep_dims=None): reduce over `axis` (None for all, an int, or a tuple; negative counts from "
                     "the end). `reduction_indices` and `keep_dims` are TF1's names for `axis` and `keepdims`.")
    return build


reduce_sum = _reduction_builder("reduce_sum", "Sum")
reduce_prod = _reduction_builder("reduce_prod", "Prod")
reduce_mean = _reduction_builder("reduce_mean", "Mean")
reduce_max = _reduction_builder("reduce_max", "Max")
reduce_min = _reduction_builder("reduce_min", "Min")
reduce_logsumexp = _reduction_builder("reduce_logsumexp", "ReduceLogSumExp")
reduce_any = _reduction_builder("reduce_any", "Any")
reduce_all = _reduction_builder("reduce_all", "All")


def _euclidean_norm_gradient(op, grads):
    """x / norm, times the incoming gradient; 0 where the norm is 0 (the subgradient TF1's
    tf.norm leaves NaN)."""
    from .elementwise import divide, where
    x, y, g = op.inputs[0], op.outputs[0], grads[0]
    if not op.attrs["keepdims"]:
        for a in op.attrs["axes"]:
            y, g = expand_dims(y, a), expand_dims(g, a)
    safe = where(y > 0, y, 1.0)
    return [where(y > 0, divide(x, safe) * g, 0.0)]


define_reduction(
    "reduce_euclidean_norm", lambda x, ax, kd: np.sqrt(np.sum(x * x, axis=ax, keepdims=kd)), "float",
    doc="sqrt(sum(x * x)) over `axes` (sorted, non-negative), with keepdims.",
    fold=Fold(identity=0, combine="add", element=lambda e, x: f"({x[0]} * {x[0]})",
              finish=lambda e, x: e.call("sqrt", x[0])),
    gradient=_euclidean_norm_gradient, onnx="ReduceL2")
reduce_euclidean_norm = _reduction_builder("reduce_euclidean_norm", "EuclideanNorm")


# --- argmax / argmin ----------------------------------------------------------------------
def _make_arg(name: str, np_fn):
    def infer(inputs, attrs):
        (x,) = inputs
        axis = attrs["axis"]
        if axis is None:
            shape = (1,) * x.rank if attrs["keepdims"] else ()
        else:
            if not 0 <= axis < x.rank:
                raise ShapeMismatch(f"axis {axis} out of range for rank {x.rank}")
            shape = reduced_shape(x.shape, (axis,), attrs["keepdims"])
            if x.shape[axis] == 0:
                raise ShapeMismatch(f"cannot take {name} over the empty axis {axis}")
        return [TensorType(attrs["output_type"], shape)]

    def reference(inputs, attrs, ctx=None):
        x = inputs[0]
        if x.size == 0 or (attrs["axis"] is not None and x.shape[attrs["axis"]] == 0):
            raise ValueError(f"{name} of an empty tensor is undefined")
        out = np_fn(x, axis=attrs["axis"], keepdims=attrs["keepdims"])
        return (np.asarray(out, dtype=attrs["output_type"].np),)

    define(name, "reduce", infer, reference,
           doc=f"Index of the {name[3:]} along `axis` (None: over the flattened tensor); "
               "the first one wins ties, and NaN counts as the extreme (NumPy).")


_make_arg("argmax", np.argmax)
_make_arg("argmin", np.argmin)


def _arg_builder(op: str, default_name: str):
    def build(input, axis=None, name: Optional[str] = None, dimension=None, output_type=dt.int64,
              keepdims: bool = False) -> Tensor:
        axis = renamed(op, axis, dimension, "axis", "dimension")
        x = convert_to_tensor(input)
        if axis is not None:
            try:
                axis = normalize_axis(axis, x.ndim)
            except ShapeMismatch as e:
                raise shape_error(op, f"{e} (input '{x.name}' has shape {x.shape})") from None
        output_type = dt.as_dtype(output_type)
        if not output_type.is_integer:
            raise dtype_error(op, f"output_type must be an integer dtype, got {output_type.name}")
        return make1(op, (x,), {"axis": axis, "keepdims": bool(keepdims), "output_type": output_type},
                     name or default_name)
    build.__name__ = op
    build.__doc__ = (f"{op}(input, axis=None, name=None, dimension=None, output_type=int64, keepdims=False): "
                     "TF1's order; `dimension` is TF1's old name for `axis`.")
    return build


argmax = _arg_builder("argmax", "ArgMax")
argmin = _arg_builder("argmin", "ArgMin")


# --- sum_to: the adjoint of broadcasting ---------------------------------------------------
def sum_to_axes(shape, target) -> tuple:
    """Axes of ``shape`` to sum so that it broadcasts back to ``target`` (concrete shapes)."""
    lead = len(shape) - len(target)
    return tuple(range(lead)) + tuple(lead + i for i, d in enumerate(target) if d == 1 and shape[lead + i] != 1)


def _infer_sum_to(inputs, attrs):
    g, like = inputs
    if g.rank < like.rank:
        raise ShapeMismatch(f"cannot sum shape {g.shape} down to the higher-rank shape {like.shape}")
    lead = g.rank - like.rank
    for i, d in enumerate(like.shape):
        gd = g.shape[lead + i]
        if d is not None and gd is not None and d != 1 and d != gd:
            raise ShapeMismatch(f"shape {like.shape} does not broadcast to {g.shape}")
    return [TensorType(g.dtype, like.shape)]


def _ref_sum_to(inputs, attrs, ctx=None):
    g, like = inputs
    axes = sum_to_axes(g.shape, like.shape)
    out = np.sum(g, axis=axes, keepdims=True, dtype=g.dtype) if axes else g
    return (np.reshape(out, like.shape),)


define("sum_to", "reduce", _infer_sum_to, _ref_sum_to, shape_only_inputs=lambda attrs, n: (1,),
       doc="Sum the first input down to the run-time shape of the second (the adjoint of broadcasting).")


def sum_to(g, like, name: Optional[str] = None) -> Tensor:
    return make1("sum_to", (convert_to_tensor(g), convert_to_tensor(like)), None, name or "SumTo")

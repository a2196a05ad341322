"""Sorting: argsort and sort (any axis, either direction), top_k and in_top_k (TF1's
``tf.nn``), and the pair of ops that move values by per-row indices: take_along_axis
(sort's values and top_k's gradient targets) and its adjoint scatter_along_axis.

Ties keep their input order in both directions (a stable sort, as TF's top_k breaks ties
towards the lower index), and NaN sorts above every number (NumPy's order: last ascending,
first descending). Kernels: on the CPU and in native libraries argsort is a bottom-up merge
sort of each row in scratch (n log n); on CUDA, and for top_k everywhere, each element is
placed by counting the elements that go before it (its rank), so every element is placed
independently (top_k stops counting at k: about k n log n per row on random data).
"""
from __future__ import annotations

import numbers
from typing import Optional

import numpy as np

from .. import dtypes as dt
from ..errors import DTypeMismatch, ShapeMismatch
from ..graph import Tensor
from ..shapes import TensorShape, TensorType
from ._build import dtype_error, is_symbolic, make, make1, shape_error
from .registry import define
from .shape import normalize_axis_or_raise
from .source import convert_to_tensor

_DIRECTIONS = ("ASCENDING", "DESCENDING")


def stable_order(x: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """The stable sorting permutation along ``axis`` (NaN largest), as int64."""
    if not descending:
        return np.argsort(x, axis=axis, kind="stable")
    n = x.shape[axis]
    # a stable ascending sort of the reversed axis, reversed back: descending, ties in input order
    flipped = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    return np.flip(n - 1 - flipped, axis)


def _check_sortable(x):
    if x.dtype.is_bool:
        raise DTypeMismatch(f"cannot sort a {x.dtype.name} tensor")


# --- argsort --------------------------------------------------------------------------------------------
def _infer_argsort(inputs, attrs):
    (x,) = inputs
    _check_sortable(x)
    if not 0 <= attrs["axis"] < x.rank:
        raise ShapeMismatch(f"axis {attrs['axis']} out of range for rank {x.rank}")
    return [TensorType(dt.int32, x.shape)]


define("argsort", "shape", _infer_argsort,
       lambda xs, a, ctx=None: (stable_order(xs[0], a["axis"], a["descending"]).astype(np.int32),),
       doc="The indices that sort `axis` (ascending or descending; ties in input order, NaN largest), int32.")


def _direction(op: str, direction) -> bool:
    d = str(direction).upper()
    if d not in _DIRECTIONS:
        raise shape_error(op, f"direction must be 'ASCENDING' or 'DESCENDING', got {direction!r}")
    return d == "DESCENDING"


def numbers_along_axis(op: str, values, axis):
    """``(tensor, normalized axis)`` for an op that works along one Python-int axis of a
    numeric tensor of rank >= 1 (sort, argsort, top_k, cumsum, cumprod)."""
    x = convert_to_tensor(values)
    if x.dtype.is_bool:
        raise dtype_error(op, f"'{x.name}' is {x.dtype.name}; {op} needs numbers")
    if x.ndim == 0:
        raise shape_error(op, f"'{x.name}' is a scalar; {op} needs a tensor of rank 1 or more")
    if is_symbolic(axis) or not isinstance(axis, numbers.Integral):
        raise shape_error(op, f"axis must be a Python int, got {axis!r}")
    return x, normalize_axis_or_raise(op, axis, x.ndim)


def argsort(values, axis=-1, direction="ASCENDING", stable=False, name: Optional[str] = None) -> Tensor:
    """TF1's ``tf.argsort``: int32 indices that sort ``values`` along ``axis``. Always stable
    (``stable=False`` allows any order of ties; graphc keeps them in input order)."""
    x, axis = numbers_along_axis("argsort", values, axis)
    return make1("argsort", (x,), {"axis": axis, "descending": _direction("argsort", direction)},
                 name or "argsort")


def sort(values, axis=-1, direction="ASCENDING", name: Optional[str] = None) -> Tensor:
    """TF1's ``tf.sort``: ``values`` sorted along ``axis`` (differentiable: the gradient goes
    back to where each value came from)."""
    x, axis = numbers_along_axis("sort", values, axis)
    order = make1("argsort", (x,), {"axis": axis, "descending": _direction("sort", direction)}, "argsort")
    return take_along_axis(x, order, axis, name=name or "sort")


# --- take_along_axis / scatter_along_axis -----------------------------------------------------------
def _check_along(x_shape, indices, axis, what):
    if not indices.dtype.is_integer:
        raise DTypeMismatch(f"indices must be integer, got {indices.dtype.name}")
    if indices.rank != len(x_shape):
        raise ShapeMismatch(f"indices of rank {indices.rank} must have the rank of the {what} ({len(x_shape)})")
    if not 0 <= axis < len(x_shape):
        raise ShapeMismatch(f"axis {axis} out of range for rank {len(x_shape)}")
    for k, (d, e) in enumerate(zip(x_shape, indices.shape)):
        if k != axis and d is not None and e is not None and d != e:
            raise ShapeMismatch(f"indices of shape {indices.shape} do not match the {what}'s shape "
                                f"{TensorShape(x_shape)} off axis {axis}")


def _infer_take_along_axis(inputs, attrs):
    x, indices = inputs
    _check_along(x.shape, indices, attrs["axis"], "input")
    return [TensorType(x.dtype, indices.shape)]


def _check_along_values(indices, size, axis):
    if indices.size and (indices.min() < 0 or indices.max() >= size):
        bad = indices[(indices < 0) | (indices >= size)].flat[0]
        raise IndexError(f"index {bad} is out of range for axis {axis} of size {size}")


def _ref_take_along_axis(inputs, attrs, ctx=None):
    x, indices = inputs
    _check_along_values(indices, x.shape[attrs["axis"]], attrs["axis"])
    return (np.take_along_axis(x, indices.astype(np.int64), attrs["axis"]),)


def _take_along_axis_gradient(op, grads):
    x, indices = op.inputs
    return [scatter_along_axis(grads[0], indices, x, op.attrs["axis"]), None]


define("take_along_axis", "shape", _infer_take_along_axis, _ref_take_along_axis, gradient=_take_along_axis_gradient,
       doc="out[..., i, ...] = x[..., indices[..., i, ...], ...] along `axis` (NumPy's take_along_axis; "
           "indices in [0, size)).")


def _infer_scatter_along_axis(inputs, attrs):
    updates, indices, like = inputs
    _check_along(like.shape, indices, attrs["axis"], "output")
    if not TensorShape(updates.shape).is_compatible_with(indices.shape):
        raise ShapeMismatch(f"updates of shape {updates.shape} do not match the indices' shape {indices.shape}")
    return [TensorType(updates.dtype, like.shape)]


def _ref_scatter_along_axis(inputs, attrs, ctx=None):
    updates, indices, like = inputs
    axis = attrs["axis"]
    _check_along_values(indices, like.shape[axis], axis)
    out = np.zeros(like.shape, dtype=updates.dtype)
    grid = list(np.indices(indices.shape, sparse=True))
    grid[axis] = indices.astype(np.int64)
    np.add.at(out, tuple(grid), updates)
    return (out,)


def _scatter_along_axis_gradient(op, grads):
    _, indices, _ = op.inputs
    return [take_along_axis(grads[0], indices, op.attrs["axis"]), None, None]


define("scatter_along_axis", "shape", _infer_scatter_along_axis, _ref_scatter_along_axis,
       gradient=_scatter_along_axis_gradient, shape_only_inputs=lambda attrs, n: (2,),
       doc="Zeros shaped like the third input with `updates` added at `indices` along `axis` (repeats "
           "accumulate): the adjoint of take_along_axis.")


def take_along_axis(x, indices, axis: int, name: Optional[str] = None) -> Tensor:
    t, i = convert_to_tensor(x), convert_to_tensor(indices)
    if not i.dtype.is_integer:
        raise dtype_error("take_along_axis", f"indices '{i.name}' must be integer, got {i.dtype.name}")
    return make1("take_along_axis", (t, i), {"axis": normalize_axis_or_raise("take_along_axis", axis, t.ndim)},
                 name or "TakeAlongAxis")


def scatter_along_axis(updates, indices, like, axis: int, name: Optional[str] = None) -> Tensor:
    u, i, l = convert_to_tensor(updates), convert_to_tensor(indices), convert_to_tensor(like)
    return make1("scatter_along_axis", (u, i, l),
                 {"axis": normalize_axis_or_raise("scatter_along_axis", axis, l.ndim)}, name or "ScatterAlongAxis")


# --- top_k / in_top_k -----------------------------------------------------------------------------------
def _infer_top_k(inputs, attrs):
    (x,) = inputs
    _check_sortable(x)
    if x.rank == 0:
        raise ShapeMismatch("top_k needs a tensor of rank 1 or more")
    k, n = attrs["k"], x.shape[-1]
    if n is not None and k > n:
        raise ShapeMismatch(f"k = {k} is larger than the last dim ({n})")
    out = tuple(x.shape[:-1]) + (k,)
    return [TensorType(x.dtype, out), TensorType(dt.int32, out)]


def _ref_top_k(inputs, attrs, ctx=None):
    x = inputs[0]
    k = attrs["k"]
    if k > x.shape[-1]:
        raise ValueError(f"k = {k} is larger than the last dim ({x.shape[-1]})")
    order = stable_order(x, -1, True)[..., :k]
    return (np.take_along_axis(x, order, -1), order.astype(np.int32))


def _top_k_gradient(op, grads):
    if grads[0] is None:
        return [None]
    return [scatter_along_axis(grads[0], op.outputs[1], op.inputs[0], -1)]


define("top_k", "nn", _infer_top_k, _ref_top_k, gradient=_top_k_gradient,
       doc="The k largest entries of the last axis and their int32 indices, largest first (ties: the lower "
           "index first; NaN largest).")


def top_k(input, k=1, sorted=True, name: Optional[str] = None):
    """TF1's ``tf.nn.top_k``: ``(values, indices)`` of the ``k`` largest entries of the last
    axis, largest first (also when ``sorted=False``, which allows any order)."""
    x = convert_to_tensor(input)
    if x.dtype.is_bool:
        raise dtype_error("top_k", f"'{x.name}' is {x.dtype.name}; top_k needs numbers")
    if x.ndim == 0:
        raise shape_error("top_k", f"'{x.name}' is a scalar; top_k needs a tensor of rank 1 or more")
    if is_symbolic(k) or not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 0:
        raise shape_error("top_k", f"k must be a non-negative Python int, got {k!r}")
    if x.shape[-1] is not None and k > x.shape[-1]:
        raise shape_error("top_k", f"k = {k} is larger than the last dim of '{x.name}' ({x.shape[-1]})")
    op = make("top_k", (x,), {"k": int(k), "sorted": bool(sorted)}, name or "TopKV2")
    return op.outputs[0], op.outputs[1]


def _infer_in_top_k(inputs, attrs):
    predictions, targets = inputs
    if not predictions.dtype.is_floating:
        raise DTypeMismatch(f"predictions must be floating, got {predictions.dtype.name}")
    if not targets.dtype.is_integer:
        raise DTypeMismatch(f"targets must be integer, got {targets.dtype.name}")
    if predictions.rank != 2 or targets.rank != 1:
        raise ShapeMismatch(f"predictions must be a matrix and targets a vector, got shapes {predictions.shape} "
                            f"and {targets.shape}")
    if not TensorShape(predictions.shape[:1]).is_compatible_with(targets.shape):
        raise ShapeMismatch(f"predictions of shape {predictions.shape} and targets of shape {targets.shape} "
                            "disagree on the batch size")
    return [TensorType(dt.bool_, targets.shape)]


def _ref_in_top_k(inputs, attrs, ctx=None):
    p, t = inputs
    out = np.zeros(t.shape, dtype=np.bool_)
    classes = p.shape[1]
    for b in range(t.shape[0]):
        if not 0 <= t[b] < classes or not np.all(np.isfinite(p[b])):
            continue  # TensorFlow: out of range or non-finite predictions say False
        out[b] = np.count_nonzero(p[b] > p[b, t[b]]) < attrs["k"]
    return (out,)


define("in_top_k", "nn", _infer_in_top_k, _ref_in_top_k,
       doc="Whether each target's prediction is among the k largest of its row (ties count in; a target out "
           "of range or a row with a non-finite prediction gives False, as TF1's).")


def in_top_k(predictions, targets, k, name: Optional[str] = None) -> Tensor:
    """TF1's ``tf.nn.in_top_k``: bool ``[batch]``, whether ``predictions[b, targets[b]]`` is
    among the ``k`` largest of row b (ties with the k-th count as in)."""
    p = convert_to_tensor(predictions)
    t = convert_to_tensor(targets)
    if not p.dtype.is_floating:
        raise dtype_error("in_top_k", f"predictions '{p.name}' must be floating, got {p.dtype.name}")
    if not t.dtype.is_integer:
        raise dtype_error("in_top_k", f"targets '{t.name}' must be integer, got {t.dtype.name}")
    if is_symbolic(k) or not isinstance(k, numbers.Integral) or isinstance(k, bool):
        raise shape_error("in_top_k", f"k must be a Python int, got {k!r}")
    return make1("in_top_k", (p, t), {"k": int(k)}, name or "InTopKV2")

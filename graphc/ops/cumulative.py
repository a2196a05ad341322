"""Scans and segment sums: cumsum, cumprod (TF1's exclusive and reverse flags),
unsorted_segment_sum, and the sorted segment_sum / segment_mean builders.

Segment sizes: TensorFlow's ``segment_sum`` and ``segment_mean`` give ``max(segment_ids) + 1``
segments, a size only the data decides. graphc compiles static schedules (every size is
bound from the fed shapes before a run), so these two builders take the number of segments
from a *constant* ``segment_ids`` at build time and lower to ``unsorted_segment_sum``; with
ids that are computed or fed they raise an error naming the op and the line, and point to
``gc.unsorted_segment_sum(data, segment_ids, num_segments)``, which states the size.
"""
from __future__ import annotations

import numbers
from typing import Optional

import numpy as np

from ..errors import DTypeMismatch, ShapeMismatch
from ..graph import Tensor
from ..shapes import TensorShape, TensorType
from ._build import dtype_error, is_symbolic, make1, shape_error
from .registry import define
from .sorting import numbers_along_axis
from .source import constant, convert_to_tensor


# --- cumsum / cumprod -------------------------------------------------------------------------------
def _infer_scan(inputs, attrs):
    (x,) = inputs
    if x.dtype.is_bool:
        raise DTypeMismatch(f"cannot scan a {x.dtype.name} tensor")
    if not 0 <= attrs["axis"] < max(x.rank, 1) or x.rank == 0:
        raise ShapeMismatch(f"axis {attrs['axis']} out of range for rank {x.rank}")
    return [x]


def _scan_reference(np_fn, identity):
    def reference(inputs, attrs, ctx=None):
        x = inputs[0]
        axis = attrs["axis"]
        if attrs["reverse"]:
            x = np.flip(x, axis)
        out = np_fn(x, axis=axis, dtype=x.dtype)
        if attrs["exclusive"] and out.shape[axis]:  # an empty axis stays empty
            out = np.concatenate([np.full_like(np.take(out, [0], axis=axis), identity),
                                  np.take(out, np.arange(out.shape[axis] - 1), axis=axis)], axis=axis)
        if attrs["reverse"]:
            out = np.flip(out, axis)
        return (np.ascontiguousarray(out),)
    return reference


def _cumsum_gradient(op, grads):
    a = op.attrs
    return [cumsum(grads[0], a["axis"], exclusive=a["exclusive"], reverse=not a["reverse"])]


def _cumprod_gradient(op, grads):
    # TensorFlow's rule: exact where x has no zeros
    a = op.attrs
    x, prod = op.inputs[0], op.outputs[0]
    out = cumsum(prod * grads[0], a["axis"], exclusive=a["exclusive"], reverse=not a["reverse"])
    return [out / x]


define("cumsum", "reduce", _infer_scan, _scan_reference(np.cumsum, 0), gradient=_cumsum_gradient,
       doc="Cumulative sum along `axis`; `exclusive` starts from 0, `reverse` runs from the end (TF1).")
define("cumprod", "reduce", _infer_scan, _scan_reference(np.cumprod, 1), gradient=_cumprod_gradient,
       doc="Cumulative product along `axis`; `exclusive` starts from 1, `reverse` runs from the end (TF1).")


def _scan_builder(op: str, default_name: str):
    def build(x, axis=0, exclusive: bool = False, reverse: bool = False, name: Optional[str] = None) -> Tensor:
        t, axis = numbers_along_axis(op, x, axis)
        attrs = {"axis": axis, "exclusive": bool(exclusive), "reverse": bool(reverse)}
        return make1(op, (t,), attrs, name or default_name)
    build.__name__ = op
    build.__doc__ = (f"``{op}(x, axis=0, exclusive=False, reverse=False)``: TF1's ``tf.{op}``. "
                     f"``exclusive`` leaves out each element's own term, ``reverse`` scans from the end.")
    return build


cumsum = _scan_builder("cumsum", "Cumsum")
cumprod = _scan_builder("cumprod", "Cumprod")


# --- segment sums ---------------------------------------------------------------------------------------
def _infer_unsorted_segment_sum(inputs, attrs):
    data, ids = inputs
    if not ids.dtype.is_integer:
        raise DTypeMismatch(f"segment_ids must be integer, got {ids.dtype.name}")
    if ids.rank > data.rank or not TensorShape(data.shape[:ids.rank]).is_compatible_with(ids.shape):
        raise ShapeMismatch(f"segment_ids of shape {ids.shape} must be a prefix of the data's shape {data.shape}")
    return [TensorType(data.dtype, (attrs["num_segments"],) + tuple(data.shape[ids.rank:]))]


def _ref_unsorted_segment_sum(inputs, attrs, ctx=None):
    data, ids = inputs
    n = attrs["num_segments"]
    if ids.size and ids.max() >= n:
        raise IndexError(f"segment id {ids.max()} is out of range for {n} segments")
    rest = data.shape[ids.ndim:]
    out = np.zeros((n,) + rest, dtype=data.dtype)
    flat_ids = ids.reshape(-1)
    keep = flat_ids >= 0  # TensorFlow drops negative ids
    np.add.at(out, flat_ids[keep], data.reshape((-1,) + rest)[keep])
    return (out,)


def _unsorted_segment_sum_gradient(op, grads):
    from . import elementwise as ew
    from .shape import expand_dims, gather
    data, ids = op.inputs
    safe = ew.maximum(ids, constant(np.zeros((), ids.dtype.np), graph=ids.graph))
    g = gather(grads[0], safe, axis=0)
    keep = ew.cast(ids >= constant(np.zeros((), ids.dtype.np), graph=ids.graph), g.dtype)
    for _ in range(data.ndim - ids.ndim):
        keep = expand_dims(keep, -1)
    return [g * keep, None]


define("unsorted_segment_sum", "reduce", _infer_unsorted_segment_sum, _ref_unsorted_segment_sum,
       gradient=_unsorted_segment_sum_gradient,
       doc="Sum the slices of data whose segment id (ids are a prefix of data's shape) is k into row k of "
           "`num_segments` rows; negative ids are dropped, ids >= num_segments are an error (TF1).")


def _constant_of(t: Tensor):
    op = t.op
    while op.type == "identity":
        op = op.inputs[0].op
    return np.asarray(op.attrs["value"]) if op.type == "const" else None


def unsorted_segment_sum(data, segment_ids, num_segments, name: Optional[str] = None) -> Tensor:
    """TF1's ``tf.unsorted_segment_sum``: ``out[k] = sum of data[i...] where segment_ids[i...] == k``.
    ``num_segments`` is a Python int (or a constant tensor): it is the output's first dim."""
    d = convert_to_tensor(data)
    ids = segment_ids if is_symbolic(segment_ids) else constant(np.asarray(segment_ids), graph=d.graph)
    ids = convert_to_tensor(ids)
    if not ids.dtype.is_integer:
        raise dtype_error("unsorted_segment_sum", f"segment_ids '{ids.name}' must be integer, got {ids.dtype.name}")
    if is_symbolic(num_segments):
        value = _constant_of(convert_to_tensor(num_segments))
        if value is None or value.ndim != 0:
            raise shape_error("unsorted_segment_sum", "num_segments must be a Python int or a constant scalar "
                              "(it is the output's first dim, which graphc fixes before a run)")
        num_segments = int(value)
    if not isinstance(num_segments, numbers.Integral) or isinstance(num_segments, bool) or num_segments < 0:
        raise shape_error("unsorted_segment_sum", f"num_segments must be a non-negative int, got {num_segments!r}")
    return make1("unsorted_segment_sum", (d, ids), {"num_segments": int(num_segments)},
                 name or "UnsortedSegmentSum")


def _sorted_segments(op: str, data: Tensor, segment_ids):
    """The constant ids (checked as TF1 does) and their number of segments."""
    if is_symbolic(segment_ids):
        ids = _constant_of(convert_to_tensor(segment_ids))
        if ids is None:
            raise shape_error(op, f"segment_ids '{convert_to_tensor(segment_ids).name}' must be a constant: the "
                              f"number of segments (max id + 1) is the output's size, which graphc fixes before a "
                              f"run; for computed or fed ids use gc.unsorted_segment_sum(data, segment_ids, "
                              f"num_segments)")
    else:
        ids = np.asarray(segment_ids)
    if ids.dtype.kind not in "iu":
        raise dtype_error(op, f"segment_ids must be integer, got {ids.dtype}")
    if ids.ndim != 1:
        raise shape_error(op, f"segment_ids must be a vector, got shape {ids.shape}")
    if data.ndim == 0 or data.shape[0] not in (None, ids.shape[0]):
        raise shape_error(op, f"segment_ids has {ids.shape[0]} ids but data's first dim is "
                          f"{data.shape[0] if data.ndim else 'missing (data is a scalar)'}")
    if ids.size and (ids.min() < 0 or np.any(np.diff(ids) < 0)):
        raise shape_error(op, "segment_ids must be sorted and non-negative")
    return ids, int(ids.max()) + 1 if ids.size else 0


def segment_sum(data, segment_ids, name: Optional[str] = None) -> Tensor:
    """TF1's ``tf.segment_sum`` for sorted ids. The ids must be a constant (see the module doc)."""
    d = convert_to_tensor(data)
    ids, n = _sorted_segments("segment_sum", d, segment_ids)
    return unsorted_segment_sum(d, constant(ids, graph=d.graph), n, name=name or "SegmentSum")


def segment_mean(data, segment_ids, name: Optional[str] = None) -> Tensor:
    """TF1's ``tf.segment_mean`` for sorted ids (empty segments give 0). The ids must be a
    constant (see the module doc)."""
    d = convert_to_tensor(data)
    if not d.dtype.is_floating:
        raise dtype_error("segment_mean", f"'{d.name}' is {d.dtype.name}; segment_mean needs floats")
    ids, n = _sorted_segments("segment_mean", d, segment_ids)
    total = unsorted_segment_sum(d, constant(ids, graph=d.graph), n, name=name or "SegmentMean")
    counts = np.maximum(np.bincount(ids, minlength=n), 1).astype(d.dtype.np)
    return total / constant(counts.reshape((n,) + (1,) * (d.ndim - 1)), graph=d.graph)

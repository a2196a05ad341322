"""Ops whose output size only the data decides: TF1's one-argument ``tf.where(condition)``
(the int64 coordinates of the true elements) and ``tf.boolean_mask``, built on it.

How graphc runs a size it cannot know before the run: every other op's output size is bound
from the feed shapes before a run (ops/shape_spec.py, codegen/schedule.py), and the memory
plan is made for those sizes. ``where_indices`` is a *stage boundary*, exactly as a
``while_loop`` is (codegen/control_flow.py, ``split_stages``): the instrs before it are one
stage, compiled, memory-planned and bound as usual; the op itself runs between stages on the
host (NumPy's ``argwhere``: one pass over the condition, the output allocated once its count
is known; on CUDA the condition is copied to the host and the coordinates back); the instrs
that use its output are the next stage, for which the coordinates are a *feed*: their
``(count, rank)`` shape binds that stage's sizes, its memory plan and its kernels like any
fed shape. So no kernel ever sees a size that is not bound, and no buffer is planned for an
unknown size: the only data-sized allocation is the boundary's output, made by the host once
the count is known.

Costs and limits: each boundary ends a compiled stage (no fusion across it, one host
round-trip on CUDA). Inside a loop or cond body the size would change per iteration, which
a body's single binding cannot follow: an error names the op. Native libraries have no host
between stages: exporting one is refused with that reason (ONNX export uses NonZero).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import dtypes as dt
from ..errors import ShapeMismatch
from ..graph import Tensor
from ..shapes import TensorType
from ._build import dtype_error, is_symbolic, make1, shape_error
from .registry import define
from .source import constant, convert_to_tensor

# Ops whose output size only running them decides: stage boundaries (codegen/control_flow.py).
DATA_SIZED_OPS = frozenset({"where_indices"})


def _infer_where_indices(inputs, attrs):
    (c,) = inputs
    if c.rank is None:
        raise ShapeMismatch("the condition needs a known rank")
    return [TensorType(dt.int64, (None, c.rank))]


define("where_indices", "shape", _infer_where_indices,
       lambda xs, a, ctx=None: (np.argwhere(np.asarray(xs[0])).astype(np.int64).reshape(-1, np.ndim(xs[0])),),
       doc="The coordinates (int64, [count, rank], row-major order) of the true (non-zero) elements: TF1's "
           "one-argument where. Its count is decided by the data: a stage boundary (ops/masking.py).")


def where_indices(condition, name: Optional[str] = None) -> Tensor:
    c = convert_to_tensor(condition)
    if not (c.dtype.is_bool or c.dtype.is_numeric):
        raise dtype_error("where", f"condition '{c.name}' must be bool or numeric, got {c.dtype.name}")
    return make1("where_indices", (c,), None, name or "Where")


def boolean_mask(tensor, mask, name: Optional[str] = None, axis=None) -> Tensor:
    """TF1's ``tf.boolean_mask(tensor, mask, name="boolean_mask", axis=None)``: the slices of
    ``tensor`` where the bool ``mask`` (of rank k, matching ``tensor``'s dims ``axis`` to
    ``axis + k``) is true, those k dims flattened into one of the data-decided size. Built
    from ``where_indices`` (a stage boundary, see the module doc) and a gather."""
    from .shape import concat, gather, reshape
    from .source import shape as shape_of
    op = "boolean_mask"
    t = convert_to_tensor(tensor)
    m = mask if is_symbolic(mask) else constant(np.asarray(mask), graph=t.graph)
    m = convert_to_tensor(m)
    if not m.dtype.is_bool:
        raise dtype_error(op, f"mask '{m.name}' must be bool, got {m.dtype.name}")
    axis = 0 if axis is None else int(axis)
    k = m.ndim
    if k == 0:
        raise shape_error(op, f"mask '{m.name}' is a scalar; it needs rank 1 or more")
    if axis < 0:
        axis += t.ndim
    if not 0 <= axis or axis + k > t.ndim:
        raise shape_error(op, f"a mask of rank {k} at axis {axis} does not fit '{t.name}' of rank {t.ndim}")
    for j in range(k):
        a, b = t.shape[axis + j], m.shape[j]
        if a is not None and b is not None and a != b:
            raise shape_error(op, f"mask '{m.name}' of shape {m.shape} does not match dims {axis} to "
                                  f"{axis + k - 1} of '{t.name}' (shape {t.shape})")
    if k == 1:
        flat = t
    else:
        static = [d for d in t.shape]
        if None in static:
            s = shape_of(t)
            dims = concat([s[:axis], constant(np.array([-1], dtype=np.int64), graph=t.graph), s[axis + k:]], 0)
        else:
            dims = static[:axis] + [-1] + static[axis + k:]
        flat = reshape(t, dims)
    picked = where_indices(reshape(m, [-1]) if k > 1 else m)[:, 0]
    return gather(flat, picked, axis=axis, name=name or "boolean_mask")

"""Linear algebra: matmul, 2-D and batched with NumPy broadcasting of batch dims."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import DTypeMismatch, ShapeMismatch
from ..graph import Tensor
from ..shapes import TensorType, broadcast_shapes, merge_dims
from ._build import make1
from .registry import define, one_output
from .source import promote


def _infer_matmul(inputs, attrs):
    a, b = inputs
    if a.dtype is not b.dtype:
        raise DTypeMismatch(f"operands must have one dtype, got {a.dtype.name} and {b.dtype.name}")
    if not a.dtype.is_numeric:
        raise DTypeMismatch(f"expects numeric operands, got {a.dtype.name}")
    if a.rank < 2 or b.rank < 2:
        raise ShapeMismatch("operands must have rank >= 2")
    m, k1 = (a.shape[-1], a.shape[-2]) if attrs["transpose_a"] else (a.shape[-2], a.shape[-1])
    k2, n = (b.shape[-1], b.shape[-2]) if attrs["transpose_b"] else (b.shape[-2], b.shape[-1])
    merge_dims(k1, k2, f"inner dimensions do not match ({k1} vs {k2})")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return [TensorType(a.dtype, batch + (m, n))]


def _ref_matmul(a, b, attrs):
    if attrs["transpose_a"]:
        a = np.swapaxes(a, -1, -2)
    if attrs["transpose_b"]:
        b = np.swapaxes(b, -1, -2)
    return np.matmul(a, b)


define("matmul", "linalg", _infer_matmul, one_output(_ref_matmul),
       doc="Batched matrix product; batch dims broadcast; transpose flags swap the last two axes.")


def matmul(a, b, transpose_a: bool = False, transpose_b: bool = False, adjoint_a: bool = False,
           adjoint_b: bool = False, a_is_sparse: bool = False, b_is_sparse: bool = False,
           name: Optional[str] = None) -> Tensor:
    """``a @ b`` with NumPy semantics (1-D operands are promoted and the added axis removed).
    TF1's order; graphc's tensors are real, so ``adjoint_*`` is ``transpose_*``, and the
    ``*_is_sparse`` hints change nothing."""
    transpose_a, transpose_b = bool(transpose_a or adjoint_a), bool(transpose_b or adjoint_b)
    from .shape import expand_dims, squeeze
    _, (x, y) = promote("matmul", a, b)
    squeeze_axes = []
    if x.ndim == 1:
        x = expand_dims(x, 0)
        squeeze_axes.append(-2)
        transpose_a = False
    if y.ndim == 1:
        y = expand_dims(y, 1)
        squeeze_axes.append(-1)
        transpose_b = False
    out = make1("matmul", (x, y), {"transpose_a": bool(transpose_a), "transpose_b": bool(transpose_b)},
                name or "MatMul")
    if squeeze_axes:
        out = squeeze(out, [out.ndim + ax for ax in squeeze_axes])
    return out

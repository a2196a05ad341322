"""Gradient clipping as graph ops (TensorFlow 1.x's clip_by_norm and clip_by_global_norm)."""
from __future__ import annotations

from typing import Optional

from ..ops import elementwise as ew
from ..ops import reduce
from ..ops.source import convert_to_tensor


def global_norm(t_list) -> object:
    """sqrt(sum of squares of every element of every tensor)."""
    tensors = [convert_to_tensor(t) for t in t_list if t is not None]
    total = reduce.reduce_sum(ew.square(tensors[0]))
    for t in tensors[1:]:
        total = total + reduce.reduce_sum(ew.square(t))
    return ew.sqrt(total)


def clip_by_global_norm(t_list, clip_norm, use_norm=None) -> tuple:
    """Scale all tensors by clip_norm / max(global_norm, clip_norm); returns (tensors, norm).
    ``None`` entries stay ``None``."""
    tensors = [None if t is None else convert_to_tensor(t) for t in t_list]
    norm = global_norm(tensors) if use_norm is None else convert_to_tensor(use_norm)
    scale = clip_norm / ew.maximum(norm, clip_norm)
    return [None if t is None else t * ew.cast(scale, t.dtype) for t in tensors], norm


def clip_by_norm(t, clip_norm, axes=None, name: Optional[str] = None):
    """Scale ``t`` so its L2 norm over ``axes`` is at most ``clip_norm``."""
    t = convert_to_tensor(t)
    norm = ew.sqrt(reduce.reduce_sum(ew.square(t), axes, keepdims=True))
    return ew.multiply(t, clip_norm / ew.maximum(norm, clip_norm), name=name or "clip_by_norm")

"""``theano.tensor.nnet``: activations, cross-entropies and ``conv2d`` (Theano's NCHW layout)."""
from __future__ import annotations

import numpy as np

from ....graph import user_location
from ....ops import elementwise as ew
from ....ops import nn
from ....ops import reduce as rd
from ...variables import TensorVariable, as_tensor, getitem, lift, symbolic_arange
from .conv import conv2d  # noqa: F401

sigmoid = lift(ew.sigmoid, "sigmoid")
ultra_fast_sigmoid = sigmoid
softplus = lift(nn.softplus, "softplus")


def softmax(x, axis: int = -1) -> TensorVariable:
    """Softmax over the last axis (Theano's ``softmax`` of a matrix: each row)."""
    return TensorVariable(nn.softmax(as_tensor(x), axis=axis))


def relu(x, alpha=0) -> TensorVariable:
    """``relu(x, alpha=0)``: ``max(x, alpha * x)`` (a leaky ReLU when ``alpha`` is not 0)."""
    t = as_tensor(x)
    if isinstance(alpha, (int, float)) and alpha == 0:
        return TensorVariable(nn.relu(t))
    return TensorVariable(ew.maximum(t, ew.multiply(alpha if not isinstance(alpha, TensorVariable) else alpha.gc, t)))


def hard_sigmoid(x) -> TensorVariable:
    t = as_tensor(x)
    return TensorVariable(ew.clip_by_value(t * 0.2 + 0.5, 0.0, 1.0))


def categorical_crossentropy(coding_dist, true_dist) -> TensorVariable:
    """``-sum(true_dist * log(coding_dist), axis=-1)``; an integer vector ``true_dist`` holds
    the class of each row (``-log(coding_dist[arange(n), true_dist])``)."""
    p, y = as_tensor(coding_dist), as_tensor(true_dist)
    if y.dtype.is_integer:
        if p.ndim != 2 or y.ndim != 1:
            raise ValueError(f"categorical_crossentropy at {user_location()}: with integer targets, coding_dist "
                             f"'{p.name}' must be a matrix and true_dist '{y.name}' a vector, got ranks "
                             f"{p.ndim} and {y.ndim}")
        from ....ops.source import shape as shape_of
        rows = symbolic_arange(np.int64(0), shape_of(p)[0])
        return TensorVariable(-ew.log(getitem(p, (rows, y))))
    return TensorVariable(-rd.reduce_sum(y * ew.log(p), axis=-1))


def binary_crossentropy(output, target) -> TensorVariable:
    """``-(target * log(output) + (1 - target) * log(1 - output))``, elementwise."""
    o, t = as_tensor(output), as_tensor(target)
    return TensorVariable(-(t * ew.log(o) + (1.0 - t) * ew.log(1.0 - o)))


def sigmoid_binary_crossentropy(output, target) -> TensorVariable:
    return TensorVariable(nn.sigmoid_cross_entropy_with_logits(labels=as_tensor(target), logits=as_tensor(output)))

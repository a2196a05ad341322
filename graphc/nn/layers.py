"""Layers in the style of TensorFlow 1.x's ``tf.layers``: functions that create their
variables under a name scope and return the output tensor."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .. import init
from ..graph import name_scope, user_location
from ..errors import ShapeError
from ..ops import nn as nn_ops
from ..ops import shape as sh
from ..ops.linalg import matmul
from ..ops.source import convert_to_tensor
from ..ops.state import Variable


def _kernel_initializer(initializer):
    return initializer if initializer is not None else init.glorot_uniform()


def dense(inputs, units: int, activation: Optional[Callable] = None, use_bias: bool = True,
          kernel_initializer=None, bias_initializer=None, name: Optional[str] = None):
    """``activation(inputs @ kernel + bias)`` with a (features, units) kernel."""
    x = convert_to_tensor(inputs)
    features = x.shape[-1]
    if features is None:
        raise ShapeError(f"dense at {user_location()}: the last dim of '{x.name}' must be known, got {x.shape}")
    with name_scope(name or "dense"):
        kernel = Variable(_kernel_initializer(kernel_initializer)((features, units), x.dtype), name="kernel")
        y = matmul(x, kernel)
        if use_bias:
            bias = Variable((bias_initializer or init.zeros())((units,), x.dtype), name="bias")
            y = nn_ops.bias_add(y, bias)
        return activation(y) if activation is not None else y


def conv2d(inputs, filters: int, kernel_size, strides=1, padding: str = "VALID", dilation_rate=1,
           activation: Optional[Callable] = None, use_bias: bool = True, kernel_initializer=None,
           bias_initializer=None, name: Optional[str] = None):
    """A 2-D convolution layer over NHWC inputs with an HWIO kernel."""
    x = convert_to_tensor(inputs)
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    channels = x.shape[-1]
    if channels is None:
        raise ShapeError(f"conv2d at {user_location()}: the channel dim of '{x.name}' must be known, got {x.shape}")
    with name_scope(name or "conv2d"):
        kernel = Variable(_kernel_initializer(kernel_initializer)((kh, kw, channels, filters), x.dtype),
                          name="kernel")
        y = nn_ops.conv2d(x, kernel, strides=strides, padding=padding, dilations=dilation_rate)
        if use_bias:
            bias = Variable((bias_initializer or init.zeros())((filters,), x.dtype), name="bias")
            y = nn_ops.bias_add(y, bias)
        return activation(y) if activation is not None else y


def max_pooling2d(inputs, pool_size, strides, padding: str = "VALID", name: Optional[str] = None):
    return nn_ops.max_pool2d(inputs, pool_size, strides, padding, name=name or "max_pooling2d")


def average_pooling2d(inputs, pool_size, strides, padding: str = "VALID", name: Optional[str] = None):
    return nn_ops.avg_pool2d(inputs, pool_size, strides, padding, name=name or "average_pooling2d")


def flatten(inputs, name: Optional[str] = None):
    """(batch, ...) -> (batch, product of the rest); the other dims must be known."""
    x = convert_to_tensor(inputs)
    rest = tuple(x.shape[1:])
    if None in rest:
        raise ShapeError(f"flatten at {user_location()}: all dims but the first must be known, got {x.shape}")
    return sh.reshape(x, (-1, int(np.prod(rest)) if rest else 1), name=name or "flatten")


def dropout(inputs, rate: float = 0.5, noise_shape=None, seed=None, training=False, name: Optional[str] = None):
    """TF1's ``tf.layers.dropout``: drops with probability ``rate``, only when ``training`` (a
    bool or a bool tensor) is true."""
    return nn_ops.dropout(inputs, rate=rate, noise_shape=noise_shape, seed=seed, training=training, name=name)

"""``gc.layers``: TF1's ``tf.layers``, the functional layers.

Each layer opens a variable scope (its ``name``, or ``dense``, ``dense_1``, ... by default)
and makes its variables with ``get_variable``, so they are named as TF1 names them
(``dense/kernel``, ``dense/bias``), ``reuse=True`` with the same ``name`` shares them, and
``kernel_regularizer`` losses land in ``GraphKeys.REGULARIZATION_LOSSES``. Arguments and
defaults are TF1's: ``padding="valid"``, ``data_format="channels_last"``, strides 1.
"""
from __future__ import annotations

import numbers
from typing import Callable, Optional

import numpy as np

from .. import init
from ..errors import ShapeError
from ..graph import GraphKeys, user_location
from ..ops import nn as nn_ops
from ..ops import shape as sh
from ..ops.linalg import matmul
from ..ops.source import convert_to_tensor, shape
from ..variable_scope import get_variable, variable_scope

__all__ = ["dense", "conv1d", "conv2d", "conv2d_transpose", "separable_conv2d", "max_pooling1d", "max_pooling2d",
           "average_pooling1d", "average_pooling2d", "dropout", "batch_normalization", "flatten"]


def _known_last(op: str, x, what: str = "the last dim"):
    n = x.shape[-1] if x.ndim else None
    if n is None:
        raise ShapeError(f"{op} at {user_location()}: {what} of '{x.name}' must be known, got shape {x.shape}")
    return int(n)


def _pair(value, what: str, op: str) -> tuple:
    if isinstance(value, numbers.Integral):
        return (int(value), int(value))
    v = tuple(int(d) for d in value)
    if len(v) != 2:
        raise ShapeError(f"{op} at {user_location()}: {what} must be an int or a pair, got {value!r}")
    return v


def _channels_first(op: str, data_format: str) -> bool:
    if data_format not in ("channels_last", "channels_first"):
        raise ShapeError(f"{op} at {user_location()}: data_format must be 'channels_last' or 'channels_first', "
                         f"got {data_format!r}")
    return data_format == "channels_first"


def _nhwc(x, channels_first: bool):
    return sh.transpose(x, (0, 2, 3, 1)) if channels_first else x


def _back(y, channels_first: bool):
    return sh.transpose(y, (0, 3, 1, 2)) if channels_first else y


def _finish(y, bias_shape, use_bias, bias_initializer, bias_regularizer, activation, trainable, dtype,
            activity_regularizer):
    if use_bias:
        bias = get_variable("bias", bias_shape, dtype, bias_initializer or init.zeros_initializer(),
                            regularizer=bias_regularizer, trainable=trainable)
        y = nn_ops.bias_add(y, bias)
    if activation is not None:
        y = activation(y)
    if activity_regularizer is not None:
        loss = activity_regularizer(y)
        if loss is not None:
            y.graph.add_to_collection(GraphKeys.REGULARIZATION_LOSSES, loss)
    return y


def dense(inputs, units: int, activation: Optional[Callable] = None, use_bias: bool = True,
          kernel_initializer=None, bias_initializer=None, kernel_regularizer=None, bias_regularizer=None,
          activity_regularizer=None, kernel_constraint=None, bias_constraint=None, trainable: bool = True,
          name: Optional[str] = None, reuse=None):
    """``activation(inputs @ kernel + bias)`` over the last axis, with a (features, units)
    kernel (Glorot-uniform by default, as in TF1)."""
    x = convert_to_tensor(inputs)
    features = _known_last("dense", x)
    with variable_scope(name, default_name="dense", reuse=reuse):
        kernel = get_variable("kernel", (features, int(units)), x.dtype, kernel_initializer,
                              regularizer=kernel_regularizer, trainable=trainable)
        y = matmul(x, kernel)
        return _finish(y, (int(units),), use_bias, bias_initializer, bias_regularizer, activation, trainable,
                       x.dtype, activity_regularizer)


def conv2d(inputs, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
           data_format: str = "channels_last", dilation_rate=(1, 1), activation: Optional[Callable] = None,
           use_bias: bool = True, kernel_initializer=None, bias_initializer=None, kernel_regularizer=None,
           bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
           trainable: bool = True, name: Optional[str] = None, reuse=None):
    """A 2-D convolution with an HWIO kernel; ``channels_first`` inputs are NCHW."""
    first = _channels_first("conv2d", data_format)
    x = _nhwc(convert_to_tensor(inputs), first)
    kh, kw = _pair(kernel_size, "kernel_size", "conv2d")
    channels = _known_last("conv2d", x, "the channel dim")
    with variable_scope(name, default_name="conv2d", reuse=reuse):
        kernel = get_variable("kernel", (kh, kw, channels, int(filters)), x.dtype, kernel_initializer,
                              regularizer=kernel_regularizer, trainable=trainable)
        y = nn_ops.conv2d(x, kernel, strides=_pair(strides, "strides", "conv2d"), padding=padding,
                          dilations=_pair(dilation_rate, "dilation_rate", "conv2d"))
        y = _finish(y, (int(filters),), use_bias, bias_initializer, bias_regularizer, activation, trainable,
                    x.dtype, activity_regularizer)
        return _back(y, first)


def conv1d(inputs, filters: int, kernel_size, strides=1, padding: str = "valid", data_format: str = "channels_last",
           dilation_rate=1, activation: Optional[Callable] = None, use_bias: bool = True, kernel_initializer=None,
           bias_initializer=None, kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
           kernel_constraint=None, bias_constraint=None, trainable: bool = True, name: Optional[str] = None,
           reuse=None):
    """A 1-D convolution over (batch, width, channels): a conv2d of height 1, as TF1 does it."""
    first = _channels_first("conv1d", data_format)
    x = convert_to_tensor(inputs)
    if first:
        x = sh.transpose(x, (0, 2, 1))
    size = kernel_size if isinstance(kernel_size, numbers.Integral) else tuple(kernel_size)[0]
    stride = strides if isinstance(strides, numbers.Integral) else tuple(strides)[0]
    rate = dilation_rate if isinstance(dilation_rate, numbers.Integral) else tuple(dilation_rate)[0]
    with variable_scope(name, default_name="conv1d", reuse=reuse):
        channels = _known_last("conv1d", x, "the channel dim")
        kernel = get_variable("kernel", (int(size), channels, int(filters)), x.dtype, kernel_initializer,
                              regularizer=kernel_regularizer, trainable=trainable)
        y = nn_ops.conv1d(x, kernel, stride, padding, dilations=rate)
        y = _finish(y, (int(filters),), use_bias, bias_initializer, bias_regularizer, activation, trainable,
                    x.dtype, activity_regularizer)
        return sh.transpose(y, (0, 2, 1)) if first else y


def conv2d_transpose(inputs, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                     data_format: str = "channels_last", activation: Optional[Callable] = None, use_bias: bool = True,
                     kernel_initializer=None, bias_initializer=None, kernel_regularizer=None, bias_regularizer=None,
                     activity_regularizer=None, kernel_constraint=None, bias_constraint=None, trainable: bool = True,
                     name: Optional[str] = None, reuse=None):
    """The transpose of conv2d (a "deconvolution"): the output grows by ``strides``. The kernel
    is (kh, kw, filters, in_channels), as in TF1."""
    first = _channels_first("conv2d_transpose", data_format)
    x = _nhwc(convert_to_tensor(inputs), first)
    kh, kw = _pair(kernel_size, "kernel_size", "conv2d_transpose")
    sy, sx = _pair(strides, "strides", "conv2d_transpose")
    channels = _known_last("conv2d_transpose", x, "the channel dim")
    pad = str(padding).upper()
    with variable_scope(name, default_name="conv2d_transpose", reuse=reuse):
        kernel = get_variable("kernel", (kh, kw, int(filters), channels), x.dtype, kernel_initializer,
                              regularizer=kernel_regularizer, trainable=trainable)

        def grown(size, k, s):
            if size is None:
                return None
            return size * s if pad == "SAME" else size * s + max(k - s, 0)
        n, h, w = x.shape[0], grown(x.shape[1], kh, sy), grown(x.shape[2], kw, sx)
        if h is None or w is None:
            raise ShapeError(f"conv2d_transpose at {user_location()}: the height and width of '{x.name}' must be "
                             f"known, got shape {x.shape}")
        batch = shape(x)[0] if n is None else n
        y = nn_ops.conv2d_transpose(x, kernel, [batch, h, w, int(filters)], strides=(sy, sx), padding=pad)
        y = _finish(y, (int(filters),), use_bias, bias_initializer, bias_regularizer, activation, trainable,
                    x.dtype, activity_regularizer)
        return _back(y, first)


def separable_conv2d(inputs, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                     data_format: str = "channels_last", dilation_rate=(1, 1), depth_multiplier: int = 1,
                     activation: Optional[Callable] = None, use_bias: bool = True, depthwise_initializer=None,
                     pointwise_initializer=None, bias_initializer=None, depthwise_regularizer=None,
                     pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                     depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None,
                     trainable: bool = True, name: Optional[str] = None, reuse=None):
    """A depthwise convolution (each channel by its own ``depth_multiplier`` filters) followed
    by a 1x1 pointwise one."""
    first = _channels_first("separable_conv2d", data_format)
    x = _nhwc(convert_to_tensor(inputs), first)
    kh, kw = _pair(kernel_size, "kernel_size", "separable_conv2d")
    channels = _known_last("separable_conv2d", x, "the channel dim")
    with variable_scope(name, default_name="separable_conv2d", reuse=reuse):
        depthwise = get_variable("depthwise_kernel", (kh, kw, channels, int(depth_multiplier)), x.dtype,
                                 depthwise_initializer, regularizer=depthwise_regularizer, trainable=trainable)
        pointwise = get_variable("pointwise_kernel", (1, 1, channels * int(depth_multiplier), int(filters)),
                                 x.dtype, pointwise_initializer, regularizer=pointwise_regularizer,
                                 trainable=trainable)
        y = nn_ops.separable_conv2d(x, depthwise, pointwise, strides=_pair(strides, "strides", "separable_conv2d"),
                                    padding=padding, rate=_pair(dilation_rate, "dilation_rate", "separable_conv2d"))
        y = _finish(y, (int(filters),), use_bias, bias_initializer, bias_regularizer, activation, trainable,
                    x.dtype, activity_regularizer)
        return _back(y, first)


def _pool(op, pool, inputs, pool_size, strides, padding, data_format, name):
    first = _channels_first(op, data_format)
    x = _nhwc(convert_to_tensor(inputs), first)
    y = pool(x, _pair(pool_size, "pool_size", op), _pair(strides, "strides", op), str(padding).upper(),
             name=name or op)
    return _back(y, first)


def max_pooling2d(inputs, pool_size, strides, padding: str = "valid", data_format: str = "channels_last",
                  name: Optional[str] = None):
    return _pool("max_pooling2d", nn_ops.max_pool2d, inputs, pool_size, strides, padding, data_format, name)


def average_pooling2d(inputs, pool_size, strides, padding: str = "valid", data_format: str = "channels_last",
                      name: Optional[str] = None):
    return _pool("average_pooling2d", nn_ops.avg_pool2d, inputs, pool_size, strides, padding, data_format, name)


def _pool1d(op, pool, inputs, pool_size, strides, padding, data_format, name):
    first = _channels_first(op, data_format)
    x = convert_to_tensor(inputs)
    x = sh.expand_dims(sh.transpose(x, (0, 2, 1)) if first else x, 1)
    size = pool_size if isinstance(pool_size, numbers.Integral) else tuple(pool_size)[0]
    step = strides if isinstance(strides, numbers.Integral) else tuple(strides)[0]
    y = sh.squeeze(pool(x, (1, int(size)), (1, int(step)), str(padding).upper(), name=name or op), [1])
    return sh.transpose(y, (0, 2, 1)) if first else y


def max_pooling1d(inputs, pool_size, strides, padding: str = "valid", data_format: str = "channels_last",
                  name: Optional[str] = None):
    return _pool1d("max_pooling1d", nn_ops.max_pool2d, inputs, pool_size, strides, padding, data_format, name)


def average_pooling1d(inputs, pool_size, strides, padding: str = "valid", data_format: str = "channels_last",
                      name: Optional[str] = None):
    return _pool1d("average_pooling1d", nn_ops.avg_pool2d, inputs, pool_size, strides, padding, data_format, name)


def flatten(inputs, name: Optional[str] = None, data_format: str = "channels_last"):
    """(batch, ...) -> (batch, product of the rest); the other dims must be known."""
    x = convert_to_tensor(inputs)
    if _channels_first("flatten", data_format) and x.ndim > 2:
        x = sh.transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))
    rest = tuple(x.shape[1:])
    if None in rest:
        raise ShapeError(f"flatten at {user_location()}: all dims but the first must be known, got {x.shape}")
    return sh.reshape(x, (-1, int(np.prod(rest)) if rest else 1), name=name or "flatten")


def dropout(inputs, rate: float = 0.5, noise_shape=None, seed=None, training=False, name: Optional[str] = None):
    """TF1's ``tf.layers.dropout``: drops with probability ``rate``, only when ``training`` (a
    bool or a bool tensor) is true."""
    return nn_ops.dropout(inputs, rate=rate, noise_shape=noise_shape, seed=seed, training=training, name=name)


from .normalization import batch_normalization  # noqa: E402

from ..compat import namespace_getattr as _namespace_getattr  # noqa: E402

__getattr__ = _namespace_getattr("layers", globals())

"""``gc.layers.batch_normalization``, as TF1's: batch statistics in training, the moving
statistics otherwise, and the moving averages updated by ops in ``GraphKeys.UPDATE_OPS`` (so a
TF1 program runs them with ``with gc.control_dependencies(gc.get_collection(UPDATE_OPS)):``)."""
from __future__ import annotations

import numbers
from typing import Optional

import numpy as np

from .. import dtypes as dt
from .. import init
from ..errors import ShapeError
from ..graph import GraphKeys, user_location
from ..ops import nn as nn_ops
from ..ops.elementwise import cast, multiply, subtract, where
from ..ops.shape import scalar_flag
from ..ops.source import convert_to_tensor, size
from ..ops.state import assign_sub
from ..variable_scope import get_variable, variable_scope


def batch_normalization(inputs, axis=-1, momentum: float = 0.99, epsilon: float = 1e-3, center: bool = True,
                        scale: bool = True, beta_initializer=None, gamma_initializer=None,
                        moving_mean_initializer=None, moving_variance_initializer=None, beta_regularizer=None,
                        gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, training=False,
                        trainable: bool = True, name: Optional[str] = None, reuse=None, renorm: bool = False,
                        renorm_clipping=None, renorm_momentum: float = 0.99, fused=None, virtual_batch_size=None,
                        adjustment=None):
    """Normalizes over every axis but ``axis`` (the channels). ``training`` is a Python bool
    or a bool tensor (TF1's idiom feeds it). In training the batch's mean and variance
    normalize, and the update ops move ``moving_mean``/``moving_variance`` toward them by
    ``1 - momentum``. The moving variance takes the batch variance the layer normalized with
    (divided by n, not n - 1): TF 1.x's tf.layers removes the Bessel correction that its fused
    kernel adds, so that fused and unfused layers agree."""
    where_at = user_location()
    if renorm or virtual_batch_size is not None or adjustment is not None:
        raise ShapeError(f"batch_normalization at {where_at}: batch renormalization, virtual batches and "
                         "adjustment are not in graphc")
    x = convert_to_tensor(inputs)
    if not isinstance(axis, numbers.Integral):
        axes = list(axis)
        if len(axes) != 1:
            raise ShapeError(f"batch_normalization at {where_at}: one channel axis is supported, got {axis!r}")
        axis = axes[0]
    if not -x.ndim <= axis < x.ndim:
        raise ShapeError(f"batch_normalization at {where_at}: axis {axis} is out of range for '{x.name}' of shape "
                         f"{x.shape}")
    axis %= x.ndim
    channels = x.shape[axis]
    if channels is None:
        raise ShapeError(f"batch_normalization at {where_at}: the channel dim {axis} of '{x.name}' must be known, "
                         f"got shape {x.shape}")
    reduce_axes = [a for a in range(x.ndim) if a != axis]
    # statistics of shape (C,) broadcast against x with the channel axis last or not
    stat_shape = [1] * x.ndim
    stat_shape[axis] = int(channels)
    with variable_scope(name, default_name="batch_normalization", reuse=reuse):
        gamma = get_variable("gamma", (int(channels),), x.dtype, gamma_initializer or init.ones_initializer(),
                             regularizer=gamma_regularizer, trainable=trainable) if scale else None
        beta = get_variable("beta", (int(channels),), x.dtype, beta_initializer or init.zeros_initializer(),
                            regularizer=beta_regularizer, trainable=trainable) if center else None
        statistics = [GraphKeys.GLOBAL_VARIABLES, GraphKeys.MOVING_AVERAGE_VARIABLES]
        moving_mean = get_variable("moving_mean", (int(channels),), x.dtype,
                                   moving_mean_initializer or init.zeros_initializer(), trainable=False,
                                   collections=statistics)
        moving_variance = get_variable("moving_variance", (int(channels),), x.dtype,
                                       moving_variance_initializer or init.ones_initializer(), trainable=False,
                                       collections=statistics)

        def normalize(mean, variance):
            from ..ops.shape import reshape

            def shaped(t):
                return None if t is None else (t if axis == x.ndim - 1 else reshape(t, stat_shape))
            return nn_ops.batch_normalization(x, shaped(mean), shaped(variance), shaped(beta), shaped(gamma),
                                              epsilon)

        if training is False:
            return normalize(moving_mean.value(), moving_variance.value())
        y_batch, mean, variance = _batch_normalized(x, axis, reduce_axes, gamma, beta, epsilon, normalize)
        decay = 1.0 - momentum
        if training is True:
            y = y_batch
            step = decay
        else:
            flag = scalar_flag(training)
            if flag.dtype is not dt.bool_ or flag.ndim != 0:
                raise ShapeError(f"batch_normalization at {where_at}: training must be a Python bool or a scalar "
                                 f"bool tensor, got '{flag.name}' {flag.dtype.name}{tuple(flag.shape)}")
            y = where(flag, y_batch, normalize(moving_mean.value(), moving_variance.value()))
            step = where(flag, decay, 0.0)
            step = cast(step, x.dtype)
        update_mean = assign_sub(moving_mean, multiply(subtract(moving_mean.value(), mean), step),
                                 name="AssignMovingAvg")
        update_variance = assign_sub(moving_variance, multiply(subtract(moving_variance.value(), variance), step),
                                     name="AssignMovingAvg_1")
        graph = y.graph
        graph.add_to_collection(GraphKeys.UPDATE_OPS, update_mean)
        graph.add_to_collection(GraphKeys.UPDATE_OPS, update_variance)
        return y


def _batch_normalized(x, axis, reduce_axes, gamma, beta, epsilon, normalize):
    """``(y, batch mean, biased batch variance)``: one fused_batch_norm kernel (and one for the
    gradient) where it takes the layout (4-D with the channels last or at axis 1, 2-D with
    them last) and the epsilon (TF1's fused floor is 1.001e-5), else moments."""
    fused = ((x.ndim == 4 and axis in (1, 3)) or (x.ndim == 2 and axis == 1)) and epsilon >= 1.001e-5
    if not fused:
        mean, variance = nn_ops.moments(x, reduce_axes)
        return normalize(mean, variance), mean, variance
    channels = int(x.shape[axis])
    scale = gamma if gamma is not None else np.ones(channels, x.dtype.np)
    offset = beta if beta is not None else np.zeros(channels, x.dtype.np)
    y, mean, unbiased = nn_ops.fused_batch_norm(x, scale, offset, epsilon=epsilon,
                                                data_format="NCHW" if x.ndim == 4 and axis == 1 else "NHWC")
    # the kernel returns TF1's unbiased variance; the layer's moving average takes the biased
    # one, as TF 1.x's tf.layers does (its `_bessels_correction_test_has_landed` is False)
    per_channel = [x.shape[a] for a in reduce_axes]
    if None in per_channel:
        n = cast(size(x), x.dtype) / float(channels)
    else:
        n = float(np.prod(per_channel))
    return y, mean, multiply(unbiased, (n - 1.0) / n)

"""``keras.losses``: Keras 2's loss functions. Each takes ``(y_true, y_pred)`` and returns the
loss of every sample (the mean, or sum, over the last axis, as Keras does); the training
loop weights and averages those.

The cross-entropies are stable as Keras's TensorFlow backend makes them: when ``y_pred`` is
the output of a softmax over its last axis (or of a sigmoid), the loss is computed from that
op's input logits with the fused cross-entropy op, so huge logits give finite losses and the
gradient is ``p - y`` rather than a ratio of underflowed probabilities. Other probabilities
are clipped to ``[epsilon, 1 - epsilon]`` (``backend.epsilon()``) before the log.
"""
from __future__ import annotations

import math

from .. import dtypes as dt
from ..errors import ShapeError
from ..graph import user_location
from ..ops import elementwise as ew
from ..ops import nn as nn_ops
from ..ops.reduce import reduce_max, reduce_mean, reduce_sum
from ..ops.shape import squeeze
from ..ops.source import convert_to_tensor
from . import backend
from .lookup import resolve


def _pair(y_true, y_pred):
    """Both as tensors, ``y_true`` in ``y_pred``'s dtype (Keras feeds targets as floats)."""
    y_pred = convert_to_tensor(y_pred)
    y_true = convert_to_tensor(y_true)
    if y_true.dtype is not y_pred.dtype:
        y_true = ew.cast(y_true, y_pred.dtype)
    return y_true, y_pred


def _epsilon():
    return backend.epsilon()


def mean_squared_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return reduce_mean(ew.square(ew.subtract(y_pred, y_true)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return reduce_mean(ew.abs(ew.subtract(y_pred, y_true)), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    """100 * mean(|y_true - y_pred| / max(|y_true|, epsilon))."""
    y_true, y_pred = _pair(y_true, y_pred)
    scale = ew.maximum(ew.abs(y_true), _epsilon())
    return ew.multiply(reduce_mean(ew.abs(ew.divide(ew.subtract(y_true, y_pred), scale)), axis=-1), 100.0)


def mean_squared_logarithmic_error(y_true, y_pred):
    """mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))^2)."""
    y_true, y_pred = _pair(y_true, y_pred)
    first_log = ew.log(ew.add(ew.maximum(y_pred, _epsilon()), 1.0))
    second_log = ew.log(ew.add(ew.maximum(y_true, _epsilon()), 1.0))
    return reduce_mean(ew.square(ew.subtract(first_log, second_log)), axis=-1)


def squared_hinge(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return reduce_mean(ew.square(ew.maximum(ew.subtract(1.0, ew.multiply(y_true, y_pred)), 0.0)), axis=-1)


def hinge(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return reduce_mean(ew.maximum(ew.subtract(1.0, ew.multiply(y_true, y_pred)), 0.0), axis=-1)


def categorical_hinge(y_true, y_pred):
    """max(0, max over wrong classes of y_pred - y_pred of the true class + 1)."""
    y_true, y_pred = _pair(y_true, y_pred)
    positive = reduce_sum(ew.multiply(y_true, y_pred), axis=-1)
    negative = reduce_max(ew.multiply(ew.subtract(1.0, y_true), y_pred), axis=-1)
    return ew.maximum(0.0, ew.add(ew.subtract(negative, positive), 1.0))


def logcosh(y_true, y_pred):
    """mean(log(cosh(y_pred - y_true))), as x + softplus(-2x) - log 2 so that large errors
    do not overflow cosh."""
    y_true, y_pred = _pair(y_true, y_pred)
    x = ew.subtract(y_pred, y_true)
    return reduce_mean(ew.subtract(ew.add(x, nn_ops.softplus(ew.multiply(x, -2.0))), math.log(2.0)), axis=-1)


def _softmax_logits(y_pred):
    """The logits of ``y_pred`` when it is a softmax over its last axis, else None."""
    op = y_pred.op
    if op.type == "softmax" and op.attrs["axis"] == y_pred.ndim - 1:
        return op.inputs[0]
    return None


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    """-sum(y_true * log(p)) over the last axis; ``p`` is ``y_pred`` normalized to sum 1 and
    clipped, or, for a softmax output or ``from_logits``, the fused softmax cross-entropy."""
    y_true, y_pred = _pair(y_true, y_pred)
    logits = y_pred if from_logits else _softmax_logits(y_pred)
    if logits is not None:
        return nn_ops.softmax_cross_entropy_with_logits(labels=y_true, logits=logits, axis=-1)
    eps = _epsilon()
    probabilities = ew.divide(y_pred, reduce_sum(y_pred, axis=-1, keepdims=True))
    probabilities = ew.clip_by_value(probabilities, eps, 1.0 - eps)
    return ew.negative(reduce_sum(ew.multiply(y_true, ew.log(probabilities)), axis=-1))


def _sparse_labels(y_true, y_pred, where: str):
    """Integer class indices of shape ``y_pred.shape[:-1]``, from labels of that shape or
    with a trailing axis of 1 (Keras's ``(batch, 1)`` targets)."""
    labels = convert_to_tensor(y_true)
    want = tuple(y_pred.shape)[:-1]
    given = tuple(labels.shape)
    if labels.ndim == y_pred.ndim and given and given[-1] in (1, None):
        labels = squeeze(labels, axis=-1)
    fits = labels.ndim == len(want) and all(a is None or b is None or a == b for a, b in zip(labels.shape, want))
    if not fits:
        raise ShapeError(f"keras sparse_categorical_crossentropy at {where}: expected integer labels of shape "
                         f"{want} or {want + (1,)} for predictions of shape {tuple(y_pred.shape)}, got labels "
                         f"of shape {given} (one-hot labels go with categorical_crossentropy)")
    if not labels.dtype.is_integer:
        labels = ew.cast(labels, dt.int64)
    return labels


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """-log(p[label]) with integer labels of shape ``(batch,)`` or ``(batch, 1)``. As in
    Keras, probabilities are clipped and their log fed to the sparse softmax cross-entropy
    (which renormalizes them); a softmax output is read through its logits instead."""
    where = user_location()
    y_pred = convert_to_tensor(y_pred)
    labels = _sparse_labels(y_true, y_pred, where)
    logits = y_pred if from_logits else _softmax_logits(y_pred)
    if logits is None:
        eps = _epsilon()
        logits = ew.log(ew.clip_by_value(y_pred, eps, 1.0 - eps))
    return nn_ops.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def binary_crossentropy(y_true, y_pred, from_logits=False):
    """mean over the last axis of the sigmoid cross-entropy. Probabilities are clipped and
    turned back into logits (log(p / (1 - p))), as Keras's backend does; a sigmoid output
    is read through its logits instead."""
    y_true, y_pred = _pair(y_true, y_pred)
    if from_logits:
        logits = y_pred
    elif y_pred.op.type == "sigmoid":
        logits = y_pred.op.inputs[0]
    else:
        eps = _epsilon()
        p = ew.clip_by_value(y_pred, eps, 1.0 - eps)
        logits = ew.log(ew.divide(p, ew.subtract(1.0, p)))
    return reduce_mean(nn_ops.sigmoid_cross_entropy_with_logits(labels=y_true, logits=logits), axis=-1)


def kullback_leibler_divergence(y_true, y_pred):
    """sum(y_true * log(y_true / y_pred)) with both clipped to [epsilon, 1]."""
    y_true, y_pred = _pair(y_true, y_pred)
    eps = _epsilon()
    y_true = ew.clip_by_value(y_true, eps, 1.0)
    y_pred = ew.clip_by_value(y_pred, eps, 1.0)
    return reduce_sum(ew.multiply(y_true, ew.log(ew.divide(y_true, y_pred))), axis=-1)


def poisson(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return reduce_mean(ew.subtract(y_pred, ew.multiply(y_true, ew.log(ew.add(y_pred, _epsilon())))), axis=-1)


def cosine_proximity(y_true, y_pred):
    """-sum(unit(y_true) * unit(y_pred)) over the last axis (-1 when they point the same way)."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = nn_ops.l2_normalize(y_true, axis=-1)
    y_pred = nn_ops.l2_normalize(y_pred, axis=-1)
    return ew.negative(reduce_sum(ew.multiply(y_true, y_pred), axis=-1))


# Keras's short names
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence
cosine = cosine_proximity

LOSSES = (mean_squared_error, mean_absolute_error, mean_absolute_percentage_error, mean_squared_logarithmic_error,
          squared_hinge, hinge, categorical_hinge, logcosh, categorical_crossentropy,
          sparse_categorical_crossentropy, binary_crossentropy, kullback_leibler_divergence, poisson,
          cosine_proximity)
BY_NAME = {f.__name__: f for f in LOSSES}
BY_NAME.update(mse=mse, MSE=MSE, mae=mae, MAE=MAE, mape=mape, MAPE=MAPE, msle=msle, MSLE=MSLE, kld=kld, KLD=KLD,
               cosine=cosine)


def serialize(loss) -> str:
    """The loss's name (an alias serializes as the function it names)."""
    return loss.__name__


def deserialize(name: str):
    return get(name)


def get(identifier):
    """A loss name (or alias) -> the loss function; a callable passes through; None -> None."""
    return resolve("loss", identifier, BY_NAME)
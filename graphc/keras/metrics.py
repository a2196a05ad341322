"""``keras.metrics``: Keras 2's metric functions. Each takes ``(y_true, y_pred)`` and returns
per-sample values (or, for the top-k accuracies, one value for the batch, as Keras 2's do);
the fit loop averages them over a batch and the batches weighted by their size. Every loss of
``keras.losses`` is a metric too, under the same names.
"""
from __future__ import annotations

from .. import dtypes as dt
from ..ops import elementwise as ew
from ..ops.reduce import argmax, reduce_mean
from ..ops.shape import reshape
from ..ops.sorting import in_top_k
from ..ops.source import convert_to_tensor
from . import losses as losses_module
from .lookup import resolve
from .losses import (  # noqa: F401  (metrics by the losses' names, as Keras exports them)
    KLD, MAE, MAPE, MSE, MSLE, binary_crossentropy, categorical_crossentropy, categorical_hinge, cosine,
    cosine_proximity, hinge, kld, kullback_leibler_divergence, logcosh, mae, mape, mean_absolute_error,
    mean_absolute_percentage_error, mean_squared_error, mean_squared_logarithmic_error, mse, msle, poisson,
    sparse_categorical_crossentropy, squared_hinge,
)


def _as_float(x, like):
    return ew.cast(x, like.dtype)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """The fraction of the last axis where (y_pred > threshold) equals y_true."""
    y_pred = convert_to_tensor(y_pred)
    y_true = convert_to_tensor(y_true)
    predicted = _as_float(ew.greater(y_pred, threshold), y_pred)
    return reduce_mean(_as_float(ew.equal(_as_float(y_true, y_pred), predicted), y_pred), axis=-1)


def categorical_accuracy(y_true, y_pred):
    """1 where the largest prediction is at the one-hot label's class, else 0."""
    y_pred = convert_to_tensor(y_pred)
    return _as_float(ew.equal(argmax(y_true, axis=-1), argmax(y_pred, axis=-1)), y_pred)


def _flat_labels(y_true, y_pred):
    """Class indices of shape ``y_pred.shape[:-1]`` from ``(batch,)`` or ``(batch, 1)`` labels."""
    labels = convert_to_tensor(y_true)
    if labels.ndim == y_pred.ndim:
        labels = reshape(labels, [-1 if d is None else d for d in tuple(y_pred.shape)[:-1]] or [])
    return labels if labels.dtype.is_integer else ew.cast(labels, dt.int64)


def sparse_categorical_accuracy(y_true, y_pred):
    """1 where the largest prediction is at the integer label, else 0; labels of shape
    ``(batch,)`` or ``(batch, 1)``."""
    y_pred = convert_to_tensor(y_pred)
    labels = _flat_labels(y_true, y_pred)
    predicted = argmax(y_pred, axis=-1)
    return _as_float(ew.equal(ew.cast(labels, predicted.dtype), predicted), y_pred)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """The batch's fraction of samples whose one-hot label is among the k largest predictions."""
    y_pred = convert_to_tensor(y_pred)
    return reduce_mean(_as_float(in_top_k(y_pred, argmax(y_true, axis=-1), k), y_pred), axis=-1)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """top_k_categorical_accuracy with integer labels of shape ``(batch,)`` or ``(batch, 1)``."""
    y_pred = convert_to_tensor(y_pred)
    labels = reshape(convert_to_tensor(y_true), [-1])
    labels = labels if labels.dtype.is_integer else ew.cast(labels, dt.int64)
    return reduce_mean(_as_float(in_top_k(y_pred, labels, k), y_pred), axis=-1)


ACCURACIES = (binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, top_k_categorical_accuracy,
              sparse_top_k_categorical_accuracy)
BY_NAME = dict(losses_module.BY_NAME)
BY_NAME.update({f.__name__: f for f in ACCURACIES})
_CHOSEN_BY_LOSS = ("accuracy", "acc", "crossentropy", "ce")


def _last_dim(output_shape):
    if output_shape is None:
        return None
    dims = tuple(output_shape)
    return dims[-1] if dims else None


def get(identifier, loss=None, output_shape=None):
    """The metric function for ``identifier``. 'accuracy'/'acc' and 'crossentropy'/'ce'
    depend on the model's ``loss`` and ``output_shape`` as in Keras 2's training: binary for
    binary_crossentropy or a last dim of 1, sparse for sparse_categorical_crossentropy, else
    categorical."""
    if isinstance(identifier, str) and identifier in _CHOSEN_BY_LOSS:
        loss_fn = losses_module.get(loss) if isinstance(loss, str) else loss
        accuracy = identifier in ("accuracy", "acc")
        if _last_dim(output_shape) == 1 or loss_fn is losses_module.binary_crossentropy:
            return binary_accuracy if accuracy else binary_crossentropy
        if loss_fn is losses_module.sparse_categorical_crossentropy:
            return sparse_categorical_accuracy if accuracy else sparse_categorical_crossentropy
        return categorical_accuracy if accuracy else categorical_crossentropy
    return resolve("metric", identifier, BY_NAME, listed=sorted(BY_NAME) + list(_CHOSEN_BY_LOSS))


def metric_name(identifier) -> str:
    """The name Keras logs: 'acc' for 'accuracy' or 'acc' and 'ce' for 'crossentropy' or 'ce',
    as Keras 2.2 and TF 1.x's tf.keras log them (TF 2 kept 'accuracy'; TF1 wins); another name
    or a function by the function's ``__name__`` ('mse' logs as 'mean_squared_error')."""
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            return "acc"
        if identifier in ("crossentropy", "ce"):
            return "ce"
        return get(identifier).__name__
    return getattr(identifier, "name", None) or identifier.__name__


def serialize(metric) -> str:
    return metric.__name__


def deserialize(name: str):
    return get(name)

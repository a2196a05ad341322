"""``gc.metrics``: TF1's streaming metrics. Each returns ``(value, update_op)``: running the
update op adds a batch to the metric's local variables (``total``, ``count``, in
``GraphKeys.LOCAL_VARIABLES`` and ``METRIC_VARIABLES``) and yields the new value; ``value``
reads the current one. ``gc.local_variables_initializer()`` resets them, as in TF1."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import dtypes as dt
from ..errors import ShapeError
from ..graph import GraphKeys, get_default_graph, user_location
from ..ops.elementwise import cast, equal, multiply, sqrt, square, subtract, where, abs as abs_
from ..ops.reduce import reduce_sum
from ..ops.shape import broadcast_to
from ..ops.source import convert_to_tensor, shape
from ..ops.state import Variable
from ..variable_scope import variable_scope


def _div(total, count):
    """total / count, 0 before any weight has been counted (TF1's div_no_nan)."""
    empty = equal(count, 0.0)
    return where(empty, 0.0 * total, total / where(empty, 1.0, count))


def _collect(keys, value) -> None:
    for key in keys or ():
        get_default_graph().add_to_collection(key, value)


def mean(values, weights=None, metrics_collections=None, updates_collections=None, name: Optional[str] = None,
         default_name: str = "mean"):
    """The (weighted) mean of every value seen: ``(mean, update_op)``."""
    with variable_scope(name, default_name=default_name):
        values = convert_to_tensor(values)
        if not values.dtype.is_floating:
            values = cast(values, dt.float32)
        if weights is None:
            batch_total = reduce_sum(values)
            batch_count = cast(reduce_sum(broadcast_to(convert_to_tensor(1.0, dtype=values.dtype), shape(values))),
                               values.dtype)
        else:
            weights = convert_to_tensor(weights, dtype=values.dtype)
            if weights.ndim > values.ndim:
                raise ShapeError(f"gc.metrics at {user_location()}: weights of shape {weights.shape} have more dims "
                                 f"than the values' {values.shape}")
            full = broadcast_to(weights, shape(values))
            batch_total = reduce_sum(multiply(values, full))
            batch_count = reduce_sum(full)
        # plain Variables, as TF1's metric_variable: a metric inside a reuse=True scope is new
        local = [GraphKeys.LOCAL_VARIABLES, GraphKeys.METRIC_VARIABLES]
        zero = np.zeros((), values.dtype.np)
        total = Variable(zero, name="total", trainable=False, collections=local)
        count = Variable(zero, name="count", trainable=False, collections=local)
        value = _div(total.value(), count.value())
        update = _div(total.assign_add(batch_total), count.assign_add(batch_count))
        _collect(metrics_collections, value)
        _collect(updates_collections, update)
        return value, update


def accuracy(labels, predictions, weights=None, metrics_collections=None, updates_collections=None,
             name: Optional[str] = None):
    """The fraction of ``predictions`` equal to ``labels`` (same shape), over every batch seen."""
    labels, predictions = convert_to_tensor(labels), convert_to_tensor(predictions)
    if not labels.shape.is_compatible_with(predictions.shape):
        raise ShapeError(f"gc.metrics.accuracy at {user_location()}: labels of shape {labels.shape} and "
                         f"predictions of shape {predictions.shape} must have the same shape (pass the argmax of "
                         "the logits, not the logits)")
    if labels.dtype is not predictions.dtype:
        labels = cast(labels, predictions.dtype)
    correct = cast(equal(predictions, labels), dt.float32)
    return mean(correct, weights, metrics_collections, updates_collections, name, "accuracy")


def mean_squared_error(labels, predictions, weights=None, metrics_collections=None, updates_collections=None,
                       name: Optional[str] = None):
    predictions = convert_to_tensor(predictions)
    error = square(subtract(predictions, cast(convert_to_tensor(labels), predictions.dtype)))
    return mean(error, weights, metrics_collections, updates_collections, name, "mean_squared_error")


def mean_absolute_error(labels, predictions, weights=None, metrics_collections=None, updates_collections=None,
                        name: Optional[str] = None):
    predictions = convert_to_tensor(predictions)
    error = abs_(subtract(predictions, cast(convert_to_tensor(labels), predictions.dtype)))
    return mean(error, weights, metrics_collections, updates_collections, name, "mean_absolute_error")


def root_mean_squared_error(labels, predictions, weights=None, metrics_collections=None, updates_collections=None,
                            name: Optional[str] = None):
    predictions = convert_to_tensor(predictions)
    error = square(subtract(predictions, cast(convert_to_tensor(labels), predictions.dtype)))
    value, update = mean(error, weights, None, None, name, "root_mean_squared_error")
    value, update = sqrt(value), sqrt(update)
    _collect(metrics_collections, value)
    _collect(updates_collections, update)
    return value, update

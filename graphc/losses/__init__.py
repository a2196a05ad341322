"""``gc.losses``: TF1's ``tf.losses``. Each loss is computed per element, weighted, reduced
as ``reduction`` says (TF1's default: the weighted sum divided by the number of non-zero
weights), and added to ``GraphKeys.LOSSES`` so that ``get_total_loss`` finds it."""
from __future__ import annotations

from typing import Optional

from .. import dtypes as dt
from ..errors import ShapeError
from ..graph import GraphKeys, get_default_graph, name_scope, user_location
from ..ops import nn as nn_ops
from ..ops.elementwise import (
    abs as abs_, add, cast, equal, log, maximum, minimum, multiply, not_equal, square, subtract, where,
)
from ..ops.reduce import reduce_sum
from ..ops.shape import broadcast_to
from ..ops.source import convert_to_tensor, ones_like, shape


class Reduction:
    """How a weighted loss is reduced (TF1's ``tf.losses.Reduction``)."""
    NONE = "none"
    SUM = "weighted_sum"
    SUM_OVER_BATCH_SIZE = "weighted_sum_over_batch_size"
    MEAN = "weighted_mean"
    SUM_BY_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights"
    SUM_OVER_NONZERO_WEIGHTS = SUM_BY_NONZERO_WEIGHTS

    @classmethod
    def all(cls) -> tuple:
        return (cls.NONE, cls.SUM, cls.SUM_OVER_BATCH_SIZE, cls.MEAN, cls.SUM_BY_NONZERO_WEIGHTS)


def _safe_div(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0 (no NaN from an all-zero weight)."""
    zero = equal(denominator, 0.0)
    return where(zero, 0.0 * numerator, numerator / where(zero, 1.0, denominator))


def _count(losses):
    """The number of elements of ``losses`` (static when known) in its dtype."""
    if losses.shape.is_fully_defined():
        n = 1
        for d in losses.shape:
            n *= int(d)
        return convert_to_tensor(float(n), dtype=losses.dtype)
    return cast(reduce_sum(ones_like(losses)), losses.dtype)


def compute_weighted_loss(losses, weights=1.0, scope: Optional[str] = None, loss_collection=GraphKeys.LOSSES,
                          reduction: str = Reduction.SUM_BY_NONZERO_WEIGHTS):
    """``losses * weights`` reduced by ``reduction``; ``weights`` broadcasts to ``losses``
    (a scalar, a per-example vector, or a tensor of the losses' shape)."""
    where_at = user_location()
    if reduction not in Reduction.all():
        raise ValueError(f"compute_weighted_loss at {where_at}: reduction must be one of {Reduction.all()}, got "
                         f"{reduction!r}")
    with name_scope(scope or "weighted_loss"):
        losses = convert_to_tensor(losses)
        if not losses.dtype.is_floating:
            losses = cast(losses, dt.float32)
        weights = convert_to_tensor(weights, dtype=losses.dtype)
        # TF1's rule: a scalar, or the losses' rank with each dim 1 or the losses' (so that
        # per-class (3,) weights are never read as per-example ones when the batch is 3)
        fits = weights.ndim == 0 or weights.ndim == losses.ndim and all(
            w in (1, None) or d is None or w == d for w, d in zip(weights.shape, losses.shape))
        if not fits:
            raise ShapeError(f"compute_weighted_loss at {where_at}: weights '{weights.name}' of shape "
                             f"{tuple(weights.shape)} must be a scalar or have the losses' rank "
                             f"({tuple(losses.shape)}) with each dim 1 or the losses' dim; for per-example "
                             f"weights of 2-D losses give shape [batch, 1]")
        weighted = multiply(losses, weights)
        if reduction == Reduction.NONE:
            loss = weighted
        else:
            total = reduce_sum(weighted)
            if reduction == Reduction.SUM:
                loss = total
            elif reduction == Reduction.MEAN:
                full = broadcast_to(weights, shape(losses)) if weights.ndim else multiply(weights, _count(losses))
                loss = _safe_div(total, reduce_sum(full))
            elif reduction == Reduction.SUM_OVER_BATCH_SIZE:
                loss = _safe_div(total, _count(losses))
            else:
                nonzero = cast(not_equal(broadcast_to(weights, shape(losses)), 0.0), losses.dtype)
                loss = _safe_div(total, reduce_sum(nonzero))
        if loss_collection:
            get_default_graph().add_to_collection(loss_collection, loss)
        return loss


def _pair(op, labels, predictions):
    predictions = convert_to_tensor(predictions)
    labels = convert_to_tensor(labels, dtype=predictions.dtype) if not hasattr(labels, "dtype") else \
        convert_to_tensor(labels)
    if labels.dtype is not predictions.dtype:
        labels = cast(labels, predictions.dtype)
    if not labels.shape.is_compatible_with(predictions.shape):
        raise ShapeError(f"{op} at {user_location(3)}: labels of shape {labels.shape} and predictions of shape "
                         f"{predictions.shape} must have the same shape")
    return labels, predictions


def mean_squared_error(labels, predictions, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                       reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    labels, predictions = _pair("mean_squared_error", labels, predictions)
    with name_scope(scope or "mean_squared_error"):
        return compute_weighted_loss(square(subtract(predictions, labels)), weights, None, loss_collection,
                                     reduction)


def absolute_difference(labels, predictions, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                        reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    labels, predictions = _pair("absolute_difference", labels, predictions)
    with name_scope(scope or "absolute_difference"):
        return compute_weighted_loss(abs_(subtract(predictions, labels)), weights, None, loss_collection, reduction)


def huber_loss(labels, predictions, weights=1.0, delta: float = 1.0, scope=None, loss_collection=GraphKeys.LOSSES,
               reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """``0.5 x^2`` for ``|x| <= delta``, ``0.5 delta^2 + delta (|x| - delta)`` beyond."""
    labels, predictions = _pair("huber_loss", labels, predictions)
    with name_scope(scope or "huber_loss"):
        error = abs_(subtract(predictions, labels))
        quadratic = minimum(error, delta)
        linear = subtract(error, quadratic)
        losses = add(multiply(0.5, square(quadratic)), multiply(delta, linear))
        return compute_weighted_loss(losses, weights, None, loss_collection, reduction)


def log_loss(labels, predictions, weights=1.0, epsilon: float = 1e-7, scope=None, loss_collection=GraphKeys.LOSSES,
             reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Binary cross entropy of probabilities ``predictions``."""
    labels, predictions = _pair("log_loss", labels, predictions)
    with name_scope(scope or "log_loss"):
        losses = subtract(multiply(-labels, log(add(predictions, epsilon))),
                          multiply(subtract(1.0, labels), log(add(subtract(1.0, predictions), epsilon))))
        return compute_weighted_loss(losses, weights, None, loss_collection, reduction)


def hinge_loss(labels, logits, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
               reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """``max(0, 1 - (2 labels - 1) logits)`` for labels in {0, 1}."""
    labels, logits = _pair("hinge_loss", labels, logits)
    with name_scope(scope or "hinge_loss"):
        signs = subtract(multiply(2.0, labels), 1.0)
        return compute_weighted_loss(maximum(subtract(1.0, multiply(signs, logits)), 0.0), weights, None,
                                     loss_collection, reduction)


def softmax_cross_entropy(onehot_labels, logits, weights=1.0, label_smoothing: float = 0, scope=None,
                          loss_collection=GraphKeys.LOSSES, reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Cross entropy of ``softmax(logits)`` against one-hot (or soft) labels; with
    ``label_smoothing`` the labels become ``labels (1 - s) + s / classes``."""
    labels, logits = _pair("softmax_cross_entropy", onehot_labels, logits)
    with name_scope(scope or "softmax_cross_entropy_loss"):
        if label_smoothing:
            classes = logits.shape[-1]
            if classes is None:
                raise ShapeError(f"softmax_cross_entropy at {user_location()}: label_smoothing needs the number of "
                                 f"classes, but the logits' last dim is unknown ({logits.shape})")
            labels = add(multiply(labels, 1.0 - label_smoothing), label_smoothing / int(classes))
        losses = nn_ops.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        return compute_weighted_loss(losses, weights, None, loss_collection, reduction)


def sparse_softmax_cross_entropy(labels, logits, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                                 reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    with name_scope(scope or "sparse_softmax_cross_entropy_loss"):
        losses = nn_ops.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        return compute_weighted_loss(losses, weights, None, loss_collection, reduction)


def sigmoid_cross_entropy(multi_class_labels, logits, weights=1.0, label_smoothing: float = 0, scope=None,
                          loss_collection=GraphKeys.LOSSES, reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Per-element sigmoid cross entropy; ``label_smoothing`` moves labels toward 1/2."""
    labels, logits = _pair("sigmoid_cross_entropy", multi_class_labels, logits)
    with name_scope(scope or "sigmoid_cross_entropy_loss"):
        if label_smoothing:
            labels = add(multiply(labels, 1.0 - label_smoothing), 0.5 * label_smoothing)
        losses = nn_ops.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
        return compute_weighted_loss(losses, weights, None, loss_collection, reduction)


def cosine_distance(labels, predictions, axis=None, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                    reduction=Reduction.SUM_BY_NONZERO_WEIGHTS, dim=None):
    """``1 - sum(labels * predictions, axis)`` for unit-normalized inputs, as TF1."""
    from ..ops._build import renamed
    axis = renamed("cosine_distance", axis, dim, "axis", "dim")
    if axis is None:
        raise ValueError(f"cosine_distance at {user_location()}: needs axis")
    labels, predictions = _pair("cosine_distance", labels, predictions)
    with name_scope(scope or "cosine_distance_loss"):
        losses = subtract(1.0, reduce_sum(multiply(labels, predictions), axis, keepdims=True))
        return compute_weighted_loss(losses, weights, None, loss_collection, reduction)


# --- collections ---------------------------------------------------------------------------------
def add_loss(loss, loss_collection=GraphKeys.LOSSES) -> None:
    if loss_collection:
        get_default_graph().add_to_collection(loss_collection, loss)


def get_losses(scope: Optional[str] = None, loss_collection=GraphKeys.LOSSES) -> list:
    from ..variable_scope import get_collection
    return get_collection(loss_collection, scope)


def get_regularization_losses(scope: Optional[str] = None) -> list:
    from ..variable_scope import get_collection
    return get_collection(GraphKeys.REGULARIZATION_LOSSES, scope)


def get_regularization_loss(scope: Optional[str] = None, name: str = "total_regularization_loss"):
    """The sum of the regularization losses (0.0 when there are none)."""
    losses = get_regularization_losses(scope)
    if not losses:
        return convert_to_tensor(0.0, name=name)
    return _add_n(losses, name)


def get_total_loss(add_regularization_losses: bool = True, name: str = "total_loss", scope: Optional[str] = None):
    """The sum of the losses in ``GraphKeys.LOSSES`` (and the regularization losses)."""
    losses = get_losses(scope)
    if add_regularization_losses:
        losses = losses + get_regularization_losses(scope)
    if not losses:
        raise ValueError(f"get_total_loss at {user_location()}: there are no losses in the graph's collections")
    return _add_n(losses, name)


def _add_n(tensors, name):
    from ..ops.elementwise import add_n
    return add_n(tensors, name=name)


"""Embeddings and the sampled losses: TF1's ``tf.nn.embedding_lookup``, composed from gather
(and, for a list of params, one gather per partition selected by ``where``), with TF1's
partition strategies and ``max_norm`` clipping; ``tf.nn.nce_loss`` and
``tf.nn.sampled_softmax_loss`` composed from it, matmul and the cross entropies exactly as
TF1's ``_compute_sampled_logits``. No op of their own: the ops they are made of bring their
kernels on every target, gradients and ONNX export."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import dtypes as dt
from ..graph import Tensor
from ._build import dtype_error, is_symbolic, shape_error
from .source import constant, convert_to_tensor


def _as_params(params):
    if isinstance(params, (list, tuple)):
        if not params:
            raise shape_error("embedding_lookup", "params is an empty list; it needs one tensor or more")
        return [convert_to_tensor(p) for p in params]
    return [convert_to_tensor(params)]


def _clip(result: Tensor, ids: Tensor, max_norm) -> Tensor:
    """TF1's ``_clip``: each looked-up embedding scaled to an L2 norm of at most ``max_norm``
    (the norm over the embedding's own axes, those after the ids' axes)."""
    if max_norm is None:
        return result
    from ..train.clipping import clip_by_norm
    axes = list(range(ids.ndim, result.ndim))
    if not axes:
        raise shape_error("embedding_lookup", "max_norm needs params of rank 2 or more (each embedding a vector)")
    return clip_by_norm(result, max_norm, axes=axes)


def _int(value, what):
    if value is None:
        raise shape_error("embedding_lookup", f"with a list of params, {what} must be known at build time")
    return int(value)


def embedding_lookup(params, ids, partition_strategy: str = "mod", name: Optional[str] = None,
                     validate_indices: bool = True, max_norm=None) -> Tensor:
    """TF1's ``tf.nn.embedding_lookup``: the rows of ``params`` at ``ids`` (shape
    ``ids.shape + params.shape[1:]``).

    ``params`` is one tensor (or variable), or a list of them that together hold the rows,
    sharded as TF1 shards them: ``"mod"`` puts id ``i`` in partition ``i % n`` at row
    ``i // n``; ``"div"`` gives each partition a contiguous block (the first
    ``total % n`` partitions one row more). With a list the partitions' first dims must be
    known at build time, and ids outside ``[0, total)`` stop the run with an error naming
    the op and the line. ``max_norm`` scales each embedding whose L2 norm exceeds it down to
    ``max_norm``. ``validate_indices`` is accepted and changes nothing: graphc checks every
    gather's indices at run time."""
    from .control import check_range, identity
    from .elementwise import equal, floordiv, floormod, less, maximum, minimum, subtract, where
    from .shape import expand_dims, gather
    del validate_indices
    strategy = str(partition_strategy)
    if strategy not in ("mod", "div"):
        raise shape_error("embedding_lookup", f"partition_strategy must be 'mod' or 'div', got {partition_strategy!r}")
    ps = _as_params(params)
    i = ids if is_symbolic(ids) else constant(np.asarray(ids), graph=ps[0].graph)
    i = convert_to_tensor(i)
    if not i.dtype.is_integer:
        raise dtype_error("embedding_lookup", f"ids '{i.name}' must be integer, got {i.dtype.name}")
    for p in ps:
        if p.ndim == 0:
            raise shape_error("embedding_lookup", f"params '{p.name}' is a scalar; it needs rank 1 or more")
        if p.dtype is not ps[0].dtype:
            raise dtype_error("embedding_lookup", f"params '{p.name}' is {p.dtype.name} but '{ps[0].name}' is "
                                                  f"{ps[0].dtype.name}")
    if len(ps) == 1:
        return _clip(gather(ps[0], i, name=name or "embedding_lookup"), i, max_norm)
    n = len(ps)
    sizes = [_int(p.shape[0], f"the first dim of '{p.name}'") for p in ps]
    total = sum(sizes)
    i = check_range(i, 0, total - 1, f"embedding_lookup's ids (into {total} rows in {n} partitions)")

    def lit(v):
        return constant(np.asarray(v, dtype=i.dtype.np), graph=i.graph)

    if strategy == "mod":
        assignment, row = floormod(i, lit(n)), floordiv(i, lit(n))
    else:  # TF1's "div", with its extras
        per, extras = total // n, total % n
        if per == 0:
            assignment, row = i, i * 0
        else:
            assignment = maximum(floordiv(i, lit(per + 1)), floordiv(subtract(i, lit(extras)), lit(per)))
            row = where(less(assignment, lit(extras)), floormod(i, lit(per + 1)),
                        floormod(subtract(i, lit(extras)), lit(per)))
    result = None
    for k, (p, size) in enumerate(zip(ps, sizes)):
        safe = minimum(row, lit(size - 1))  # rows of other partitions may be past this one's end
        part = gather(p, safe)
        take = equal(assignment, lit(k))
        for _ in range(p.ndim - 1):
            take = expand_dims(take, -1)
        result = part if result is None else where(take, part, result)
    return _clip(identity(result, name=name or "embedding_lookup"), i, max_norm)


# --- the sampled losses -----------------------------------------------------------------------------------
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _compute_sampled_logits(op, weights, biases, labels, inputs, num_sampled, num_classes, num_true, sampled_values,
                            remove_accidental_hits, partition_strategy, seed):
    """TF1's ``_compute_sampled_logits`` (``subtract_log_q=True``): ``(logits, labels)`` of
    shape ``[batch, num_true + num_sampled]``, the true classes first."""
    from .control import stop_gradient
    from .elementwise import cast, equal, log, multiply, subtract, where
    from .linalg import matmul
    from .reduce import reduce_any, reduce_sum
    from .sampling import _python_int, log_uniform_candidate_sampler
    from .shape import concat, expand_dims, reshape
    from .source import ones_like, zeros_like
    x = convert_to_tensor(inputs)
    if not x.dtype.is_floating or x.ndim != 2:
        raise shape_error(op, f"inputs '{x.name}' must be a floating [batch_size, dim] matrix, got "
                              f"{x.dtype.name}{x.shape}")
    num_true = _python_int(op, num_true, "num_true")
    num_sampled = _python_int(op, num_sampled, "num_sampled")
    num_classes = _python_int(op, num_classes, "num_classes")
    y = labels if is_symbolic(labels) else constant(np.asarray(labels), graph=x.graph)
    y = convert_to_tensor(y)
    if not y.dtype.is_integer:
        raise dtype_error(op, f"labels '{y.name}' must be integer, got {y.dtype.name}")
    if y.ndim != 2 or y.shape[1] not in (None, num_true):
        raise shape_error(op, f"labels '{y.name}' must be [batch_size, num_true={num_true}], got shape {y.shape}")
    y = cast(y, dt.int64) if y.dtype is not dt.int64 else y
    if sampled_values is None:
        sampled_values = log_uniform_candidate_sampler(y, num_true, num_sampled, True, num_classes, seed=seed)
    if not isinstance(sampled_values, (list, tuple)) or len(sampled_values) != 3:
        raise shape_error(op, "sampled_values must be (sampled_candidates, true_expected_count, "
                              "sampled_expected_count), as the candidate samplers return")
    sampled, true_count, sampled_count = (stop_gradient(convert_to_tensor(
        v if is_symbolic(v) else constant(np.asarray(v), graph=x.graph))) for v in sampled_values)
    if sampled.ndim != 1 or sampled.shape[0] not in (None, num_sampled):
        raise shape_error(op, f"sampled_candidates must be a vector of num_sampled={num_sampled} classes, got shape "
                              f"{sampled.shape}")
    sampled = cast(sampled, dt.int64) if sampled.dtype is not dt.int64 else sampled
    true_w = embedding_lookup(weights, y, partition_strategy=partition_strategy)          # [b, nt, d]
    sampled_w = embedding_lookup(weights, sampled, partition_strategy=partition_strategy)  # [k, d]
    true_b = embedding_lookup(biases, y, partition_strategy=partition_strategy)           # [b, nt]
    sampled_b = embedding_lookup(biases, sampled, partition_strategy=partition_strategy)  # [k]
    if true_w.dtype is not x.dtype:
        raise dtype_error(op, f"weights are {true_w.dtype.name} but inputs '{x.name}' are {x.dtype.name}")
    true_logits = reduce_sum(multiply(expand_dims(x, 1), true_w), 2) + true_b
    sampled_logits = matmul(x, sampled_w, transpose_b=True) + sampled_b
    if remove_accidental_hits:
        # TF1's compute_accidental_hits: a sampled class that is one of the row's true classes
        # gets -FLOAT_MAX added to its logit
        hit = reduce_any(equal(expand_dims(y, 2), reshape(sampled, (1, 1, -1))), 1)
        lowest = constant(np.asarray(-_FLOAT32_MAX, dtype=x.dtype.np), graph=x.graph)
        sampled_logits = sampled_logits + where(hit, lowest, zeros_like(lowest))
    true_logits = subtract(true_logits, log(cast(true_count, x.dtype)))
    sampled_logits = subtract(sampled_logits, log(cast(sampled_count, x.dtype)))
    logits = concat([true_logits, sampled_logits], 1)
    targets = concat([ones_like(true_logits) / float(num_true), zeros_like(sampled_logits)], 1)
    return logits, targets


def nce_loss(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1, sampled_values=None,
             remove_accidental_hits=False, partition_strategy="mod", name="nce_loss", seed=None) -> Tensor:
    """TF1's ``tf.nn.nce_loss``: the noise-contrastive estimation loss per example,
    ``[batch_size]``: sigmoid cross entropy of the true classes (label ``1 / num_true``)
    and ``num_sampled`` sampled classes (label 0), each logit corrected by the log of its
    expected count. ``weights`` ``[num_classes, dim]`` and ``biases`` ``[num_classes]``
    are tensors or lists of partitions (``partition_strategy`` as in embedding_lookup);
    ``labels`` is ``[batch_size, num_true]`` and ``inputs`` ``[batch_size, dim]``.
    Without ``sampled_values`` the classes come from ``log_uniform_candidate_sampler``
    with ``unique=True`` (see graphc/ops/sampling.py for how graphc's differs from TF1's)."""
    from .nn import sigmoid_cross_entropy_with_logits
    from .reduce import reduce_sum
    logits, targets = _compute_sampled_logits("nce_loss", weights, biases, labels, inputs, num_sampled,
                                              num_classes, num_true, sampled_values, remove_accidental_hits,
                                              partition_strategy, seed)
    losses = sigmoid_cross_entropy_with_logits(labels=targets, logits=logits, name="sampled_losses")
    return reduce_sum(losses, 1, name=name)


def sampled_softmax_loss(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1, sampled_values=None,
                         remove_accidental_hits=True, partition_strategy="mod", name="sampled_softmax_loss",
                         seed=None) -> Tensor:
    """TF1's ``tf.nn.sampled_softmax_loss``: softmax cross entropy per example,
    ``[batch_size]``, over the true classes and ``num_sampled`` sampled classes, each logit
    corrected by the log of its expected count; sampled classes that are true classes of the
    row are removed (``remove_accidental_hits``). Arguments as in ``nce_loss``."""
    from .control import stop_gradient
    from .nn import softmax_cross_entropy_with_logits
    logits, targets = _compute_sampled_logits("sampled_softmax_loss", weights, biases, labels, inputs, num_sampled,
                                              num_classes, num_true, sampled_values, remove_accidental_hits,
                                              partition_strategy, seed)
    return softmax_cross_entropy_with_logits(labels=stop_gradient(targets), logits=logits, name=name)

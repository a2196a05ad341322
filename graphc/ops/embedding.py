"""Embeddings: TF1's ``tf.nn.embedding_lookup``, composed from gather (and, for a list of
params, one gather per partition selected by ``where``), with TF1's partition strategies and
``max_norm`` clipping. No op of its own: gather's kernels, gradient and ONNX export serve it."""
from __future__ import annotations

from typing import Optional

import numpy as np

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

"""Collectives of a data-parallel run (graphc.distribute, Horovod's API): all-reduce,
all-gather and broadcast over the ranks of an MPI job.

Each is an op of the graph, with its gradient, so ``gc.gradients`` and the optimizers see
them like any other op. On the CPU target, an all-reduce or a broadcast is two steps of the
schedule (codegen/schedule.py): a non-blocking start as soon as its inputs are made (an
all-reduce of many gradients starts in buckets, each when its gradients are made) and a wait
before the first kernel that reads the result, so the kernels between overlap the
communication (codegen/collectives.py). Elsewhere (reference, CUDA, and every all-gather,
whose size the other ranks decide), a collective is a *stage boundary*
(codegen/control_flow.py), exactly as ``where_indices`` is (ops/masking.py): the kernels
before it run, the host hands its inputs to MPI (distribute/world.py), and the kernels after
it run on what came back. Either way a collective is a few Python calls per run, each one
MPI call into C. An all-reduce takes many tensors at once (DistributedOptimizer gives
it every gradient) and fuses them into a few buffers on the host.

Every rank must run the same collectives in the same order (MPI matches them by order): the
same graph and the same fetches give that, and the host checks it at every collective (the
names, dtypes and shapes) before any data moves. They are stateful (communication is an
effect): never folded, merged with an identical one, or run once for two fetches.

With one rank (``hvd.init()`` in a plain ``python``), each is the identity (a mean of one).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from ..graph import Tensor, user_location
from ..shapes import TensorType
from ._build import dtype_error, make, shape_error
from .registry import define
from .source import convert_to_tensor

COLLECTIVE_OPS = frozenset({"collective_allreduce", "collective_allgather", "collective_broadcast"})
# Those whose outputs have their inputs' shapes: a target may run them as steps between its
# kernels, started early and waited for late (codegen/schedule.py, the CPU target). An
# all-gather's size is decided by the other ranks: it is always a stage boundary.
STEP_COLLECTIVES = frozenset({"collective_allreduce", "collective_broadcast"})
REDUCTIONS = ("average", "sum")


def _world():
    from ..distribute import world
    return world.current("a collective op")


def _infer_same(inputs, attrs):
    return [TensorType(t.dtype, t.shape) for t in inputs]


def _infer_allgather(inputs, attrs):
    (x,) = inputs
    return [TensorType(x.dtype, (None,) + tuple(x.shape)[1:])]


def _allreduce_gradient(op, grads):
    # d(sum over ranks)/dx on each rank is the sum of every rank's incoming gradient (the mean:
    # their mean), so the gradient is the same all-reduce of the gradients (Horovod's rule)
    present = [i for i, g in enumerate(grads) if g is not None]
    if not present:
        return [None] * len(grads)
    reduced = allreduce([grads[i] for i in present], op.attrs["reduction"])
    out: list = [None] * len(grads)
    for i, r in zip(present, reduced):
        out[i] = r
    return out


def _allgather_gradient(op, grads):
    # each rank's rows of the summed gradient: its own slice of every rank's gradient
    from .reduce import reduce_sum
    from .shape import gather, reshape
    from .source import range_, shape
    x = op.inputs[0]
    (summed,) = allreduce([grads[0]], "sum")
    rows = shape(x)[0]
    sizes = allgather(reshape(rows, (1,)))
    start = reduce_sum(sizes[:_world().rank])
    return [gather(summed, range_(rows) + start)]


def _broadcast_gradient(op, grads):
    # only the root's value reaches the outputs: it gets the sum of every rank's gradient, the
    # others zero. The all-reduce runs on every rank (a collective), so the others keep it
    # alive by multiplying it by zero, as Horovod does.
    present = [i for i, g in enumerate(grads) if g is not None]
    if not present:
        return [None] * len(grads)
    reduced = allreduce([grads[i] for i in present], "sum")
    root = _world().rank == op.attrs["root_rank"]
    out: list = [None] * len(grads)
    for i, r in zip(present, reduced):
        out[i] = r if root else r * 0
    return out


define("collective_allreduce", "collective", _infer_same,
       lambda xs, a, ctx=None: tuple(_world().allreduce(xs, a["reduction"] == "average", a["key"], a["made_at"])),
       stateful=True, gradient=_allreduce_gradient,
       doc="The element-wise sum or mean (attr reduction) over the ranks of each input, fused into few MPI "
           "all-reduces; one output per input.")
define("collective_allgather", "collective", _infer_allgather,
       lambda xs, a, ctx=None: (_world().allgather(xs[0], a["key"], a["made_at"]),),
       stateful=True, gradient=_allgather_gradient,
       doc="Every rank's input concatenated along axis 0 in rank order (the first dims may differ).")
define("collective_broadcast", "collective", _infer_same,
       lambda xs, a, ctx=None: tuple(_world().broadcast(xs, a["root_rank"], a["key"], a["made_at"])),
       stateful=True, gradient=_broadcast_gradient,
       doc="Rank root_rank's value of each input, on every rank; one output per input.")


# --- builders (graphc.distribute re-exports them under Horovod's names) ----------------------------------
def _names(tensors: Sequence[Tensor]) -> dict:
    """The attributes that name a collective to the host: ``key``, its tensors' names (checked
    to be the same on every rank), and ``made_at``, the user's line (for messages only)."""
    names = [f"'{t.name}'" for t in tensors]
    key = names[0] if len(names) == 1 else f"{len(names)} tensors ({', '.join(names)})"
    return {"key": key, "made_at": user_location()}


def _tensors(op: str, tensors) -> List[Tensor]:
    out = [convert_to_tensor(t) for t in tensors]
    if not out:
        raise shape_error(op, "needs at least one tensor")
    for t in out:
        if t.dtype.is_bool or not t.dtype.is_numeric:
            raise dtype_error(op, f"'{t.name}' is {t.dtype.name}; collectives take numbers")
    return out


def allreduce(tensors, reduction: str = "average", name: Optional[str] = None) -> List[Tensor]:
    """The sum or mean over the ranks of each tensor (one op, fused on the host)."""
    op = "allreduce"
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    ts = _tensors(op, tensors)
    if reduction == "average":
        for t in ts:
            if not t.dtype.is_floating:
                raise dtype_error(op, f"the average of '{t.name}' ({t.dtype.name}) is not an integer: average "
                                      "floating-point tensors, or use op=hvd.Sum")
    return list(make("collective_allreduce", ts, {"reduction": reduction, **_names(ts)},
                     name or "HorovodAllreduce").outputs)


def allgather(tensor, name: Optional[str] = None) -> Tensor:
    op = "allgather"
    (t,) = _tensors(op, [tensor])
    if t.ndim is None or t.ndim < 1:
        raise shape_error(op, f"'{t.name}' needs rank 1 or more (ranks are concatenated along axis 0), "
                              f"got {'an unknown rank' if t.ndim is None else 'a scalar'}")
    return make("collective_allgather", [t], _names([t]), name or "HorovodAllgather").outputs[0]


def broadcast(tensors, root_rank: int, name: Optional[str] = None) -> List[Tensor]:
    op = "broadcast"
    if isinstance(root_rank, (bool, np.bool_)) or not isinstance(root_rank, (int, np.integer)) or root_rank < 0:
        raise ValueError(f"{op} at {user_location()}: root_rank must be a rank (an int >= 0), got {root_rank!r}")
    ts = _tensors(op, tensors)
    return list(make("collective_broadcast", ts, {"root_rank": int(root_rank), **_names(ts)},
                     name or "HorovodBroadcast").outputs)

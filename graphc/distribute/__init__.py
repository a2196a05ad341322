"""Data-parallel training over MPI, with Horovod's API: ``import graphc.distribute as hvd``.

    import graphc as gc
    import graphc.distribute as hvd

    hvd.init()
    ds = gc.data.Dataset.from_tensor_slices((x, y)).shard(hvd.size(), hvd.rank()).batch(32)
    opt = hvd.DistributedOptimizer(gc.train.Adam(1e-3 * hvd.size()))
    train = opt.minimize(loss)
    with gc.Session() as sess:
        sess.run(gc.global_variables_initializer())
        sess.run(hvd.broadcast_global_variables(0))     # every rank starts from rank 0's weights
        ...
    # launch: mpirun -np 2 python train.py    or    python -m graphc.distribute.run -np 2 train.py

One process per rank; each computes gradients on its share of the batch, and the
DistributedOptimizer averages them over the ranks (one fused all-reduce per step) before the
wrapped optimizer applies them, so every rank takes the same step. A Horovod TF1 script
ports by changing ``import horovod.tensorflow as hvd`` to this import (docs/DISTRIBUTED.md).

The collectives are graph ops (ops/collective.py) with gradients; the communication is MPI
through mpi4py (distribute/world.py), installed with ``pip install "graphc[mpi]"``.
"""
from __future__ import annotations

import numbers
from typing import List, Optional

from ..graph import Tensor, user_location
from ..ops import collective as _ops
from . import world as _world

# Horovod's reduction names: op=hvd.Average (the default) or op=hvd.Sum.
Average = "average"
Sum = "sum"
Adasum = "adasum"


class Compression:
    """Horovod's gradient compression choices. graphc has no float16 type, so only ``none``
    is available; ``fp16`` is refused where it is used, with that reason."""

    none = "none"
    fp16 = "fp16"


# --- set-up and the ranks ----------------------------------------------------------------------------
def init(comm=None) -> None:
    """Join the MPI job (once per process; a second call does nothing). ``comm``: an mpi4py
    communicator to run on (default ``MPI.COMM_WORLD``). Without a launcher, the job is this
    one process (size 1)."""
    _world.init(comm)


def shutdown() -> None:
    """Horovod's shutdown: nothing to release here (MPI is finalized when the process exits)."""


def is_initialized() -> bool:
    return _world.is_initialized()


def rank() -> int:
    """This process's rank, 0 .. size() - 1."""
    return _world.current("hvd.rank()").rank


def size() -> int:
    """The number of ranks (processes) in the job."""
    return _world.current("hvd.size()").size


def local_rank() -> int:
    """This process's rank among the ranks on its machine (pick a GPU with it)."""
    return _world.current("hvd.local_rank()").local_rank


def local_size() -> int:
    """The number of ranks on this machine."""
    return _world.current("hvd.local_size()").local_size


def cross_rank() -> int:
    """The rank of this machine among the machines (ranks with the same local rank)."""
    return _world.current("hvd.cross_rank()").cross_rank


def cross_size() -> int:
    """The number of machines (ranks with this rank's local rank)."""
    return _world.current("hvd.cross_size()").cross_size


def mpi_enabled() -> bool:
    return True


def mpi_built() -> bool:
    return True


def gloo_enabled() -> bool:
    return False


def nccl_built() -> bool:
    return False


def mpi_threads_supported() -> bool:
    from .world import _mpi
    MPI = _mpi()
    return MPI.Query_thread() >= MPI.THREAD_MULTIPLE


def barrier() -> None:
    """Wait until every rank has called ``barrier`` (bounded like a collective: a rank that
    failed or left ends the wait with an error naming it). Outside any graph."""
    _world.current("hvd.barrier()").barrier()


def communication_seconds() -> float:
    """Seconds this process has spent waiting in collectives since ``init`` (graphc's own:
    the benchmarks split a step into communication and computation with it)."""
    return _world.current("hvd.communication_seconds()").seconds_waiting


# --- collectives -------------------------------------------------------------------------------------
def _reduction(op, average, where: str) -> str:
    if average is not None:
        if op is not None:
            raise ValueError(f"{where} at {user_location()}: give op= or the older average=, not both")
        return Average if average else Sum
    op = Average if op is None else op
    if op == Adasum:
        raise ValueError(f"{where} at {user_location()}: op=hvd.Adasum is not supported by graphc; use "
                         "hvd.Average or hvd.Sum")
    if op not in (Average, Sum):
        raise ValueError(f"{where} at {user_location()}: op must be hvd.Average or hvd.Sum, got {op!r}")
    return op


def _compression(compression, where: str) -> None:
    if compression in (None, Compression.none):
        return
    if compression == Compression.fp16:
        raise ValueError(f"{where} at {user_location()}: compression=hvd.Compression.fp16 needs a float16 type, "
                         "which graphc does not have; use hvd.Compression.none")
    raise ValueError(f"{where} at {user_location()}: unknown compression {compression!r}")


def _scaled(tensors, factor: float) -> list:
    return tensors if factor == 1.0 else [t * factor for t in tensors]


def grouped_allreduce(tensors, average=None, device_dense: str = "", device_sparse: str = "",
                      compression=Compression.none, op=None, prescale_factor: float = 1.0,
                      postscale_factor: float = 1.0, name: Optional[str] = None) -> List[Tensor]:
    """All-reduce a list of tensors as one collective: the host packs them into fused buffers.
    ``device_dense``/``device_sparse`` are accepted for porting; graphc places work per
    Session, not per op."""
    reduction = _reduction(op, average, "hvd.grouped_allreduce")
    _compression(compression, "hvd.grouped_allreduce")
    _world.current("hvd.allreduce")
    reduced = _ops.allreduce(_scaled(list(tensors), prescale_factor), reduction, name)
    return _scaled(reduced, postscale_factor)


def allreduce(tensor, average=None, device_dense: str = "", device_sparse: str = "", compression=Compression.none,
              op=None, prescale_factor: float = 1.0, postscale_factor: float = 1.0,
              name: Optional[str] = None) -> Tensor:
    """The mean (``op=hvd.Average``, the default) or sum (``hvd.Sum``) of ``tensor`` over the
    ranks. Its gradient is the same all-reduce of the incoming gradient."""
    return grouped_allreduce([tensor], average, device_dense, device_sparse, compression, op, prescale_factor,
                             postscale_factor, name)[0]


def allgather(tensor, name: Optional[str] = None) -> Tensor:
    """Every rank's ``tensor`` concatenated along axis 0 in rank order (their first dims may
    differ; the others must match)."""
    _world.current("hvd.allgather")
    return _ops.allgather(tensor, name)


def broadcast(tensor, root_rank: int, name: Optional[str] = None) -> Tensor:
    """Rank ``root_rank``'s value of ``tensor``, on every rank."""
    _check_root(root_rank, "hvd.broadcast")
    return _ops.broadcast([tensor], root_rank, name)[0]


def _check_root(root_rank, where: str) -> None:
    n = _world.current(where).size
    if isinstance(root_rank, numbers.Integral) and not isinstance(root_rank, bool) and not 0 <= root_rank < n:
        raise ValueError(f"{where} at {user_location()}: root_rank {root_rank} is not a rank of this job "
                         f"(size {n}: ranks 0..{n - 1})")


def broadcast_variables(variables, root_rank: int):
    """An op that sets every variable in ``variables`` to rank ``root_rank``'s value (one fused
    broadcast)."""
    from ..ops.control import group
    _check_root(root_rank, "hvd.broadcast_variables")
    variables = list(variables)
    if not variables:
        return group(name="HorovodBroadcastVariables")
    from ..dtypes import uint8
    from ..ops.elementwise import cast
    # collectives take numbers: a bool variable travels as uint8
    sent = [cast(v.value(), uint8) if v.dtype.is_bool else v.value() for v in variables]
    values = _ops.broadcast(sent, root_rank, "HorovodBroadcastVariables")
    values = [cast(x, v.dtype) if v.dtype.is_bool else x for v, x in zip(variables, values)]
    return group(*[v.assign(x) for v, x in zip(variables, values)], name="HorovodBroadcastVariablesAssign")


def broadcast_global_variables(root_rank: int):
    """``broadcast_variables(gc.global_variables(), root_rank)``: run it once after the
    initializer, so that every rank starts from the same weights (and optimizer state)."""
    from ..ops.state import global_variables
    return broadcast_variables(global_variables(), root_rank)


# --- the optimizer -----------------------------------------------------------------------------------
class _Distributed:
    """Mixed in before an optimizer's own class by ``DistributedOptimizer``: its gradients are
    averaged (or summed) over the ranks before the optimizer applies them."""

    def compute_gradients(self, *args, **kwargs):
        pairs = super().compute_gradients(*args, **kwargs)
        if _world.current("DistributedOptimizer").size == 1:
            return pairs  # nothing to average: no collective, no host step
        present = [(g, v) for g, v in pairs if g is not None]
        if not present:
            return pairs
        settings = self._hvd_settings
        factor = settings["gradient_predivide_factor"]
        n = _world.current().size
        pre, post = 1.0, 1.0
        if settings["op"] == Average:
            # summed on the host, then scaled in the graph, where the scale fuses into the update's
            # kernel (a host division would be one more pass over every gradient). Horovod's
            # predivide factor: divide by it before the sum and by size/factor after.
            pre, post = 1.0 / factor, factor / n
        reduced = grouped_allreduce([g for g, _ in present], op=Sum, prescale_factor=pre, postscale_factor=post,
                                    name=settings["name"])
        averaged = iter(reduced)
        return [(None if g is None else next(averaged), v) for g, v in pairs]


def DistributedOptimizer(optimizer, name: Optional[str] = None, use_locking: bool = False, device_dense: str = "",
                         device_sparse: str = "", compression=Compression.none, sparse_as_dense: bool = False,
                         backward_passes_per_step: int = 1, op=Average, gradient_predivide_factor: float = 1.0,
                         average_aggregated_gradients: bool = False, num_groups: int = 0, groups=None,
                         process_set=None, scale_local_gradients: bool = True):
    """``optimizer`` (any ``gc.train`` or ``gc.keras`` optimizer) with its gradients averaged
    over the ranks before they are applied: ``minimize``, and ``compute_gradients`` followed by
    ``apply_gradients``, both work. The result is an instance of the optimizer's own class (its
    slots, variables and Keras attributes are those of ``optimizer``), so ``compile`` and
    checkpoints take it unchanged. Every gradient goes into one collective, fused on the host
    into buffers of ``HOROVOD_FUSION_THRESHOLD`` bytes (default 64 MiB).

    Accepted for porting, with no effect in graphc: ``use_locking``, ``device_dense``,
    ``device_sparse``, ``sparse_as_dense`` (graphc's gradients are dense), ``num_groups`` /
    ``groups`` (the host fuses by size), ``scale_local_gradients``. Refused with a reason:
    ``compression=fp16``, ``op=Adasum``, ``backward_passes_per_step > 1``, a ``process_set``
    (every collective is over the whole job). The argument order is Horovod's TF1 one."""
    from ..train.optimizers import Optimizer
    where = "hvd.DistributedOptimizer"
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{where} at {user_location()}: expected a gc.train or gc.keras optimizer, got "
                        f"{type(optimizer).__name__}")
    if isinstance(optimizer, _Distributed):
        raise TypeError(f"{where} at {user_location()}: the optimizer is already distributed")
    reduction = _reduction(op, None, where)
    _compression(compression, where)
    if backward_passes_per_step != 1:
        raise ValueError(f"{where} at {user_location()}: backward_passes_per_step={backward_passes_per_step} "
                         "(local gradient accumulation) is not supported; use 1 and a larger per-rank batch")
    if process_set is not None:
        raise ValueError(f"{where} at {user_location()}: process sets are not supported; every collective is over "
                         "the whole job (leave process_set out)")
    if gradient_predivide_factor <= 0:
        raise ValueError(f"{where} at {user_location()}: gradient_predivide_factor must be > 0, got "
                         f"{gradient_predivide_factor}")
    if gradient_predivide_factor != 1.0 and reduction != Average:
        raise ValueError(f"{where} at {user_location()}: gradient_predivide_factor needs op=hvd.Average")
    _world.current(where)
    cls = type(optimizer)
    # the optimizer's own name, as Horovod does: get_config() and Keras model files name the
    # wrapped class, and load back as it
    distributed = type(cls.__name__, (_Distributed, cls), {"__module__": cls.__module__,
                                                          "__qualname__": cls.__qualname__})
    out = cls.__new__(distributed)
    out.__dict__.update(optimizer.__dict__)
    out._hvd_settings = {"op": reduction, "gradient_predivide_factor": float(gradient_predivide_factor),
                         "name": name or f"Distributed{optimizer.get_name()}_Allreduce"}
    return out


# Horovod names graphc lacks: (the feature, what to do instead).
_PROCESS_SETS = "not built: every collective runs on all ranks (hvd.init(comm) takes a sub-communicator)"
HOROVOD_MISSING = {
    "BroadcastGlobalVariablesHook": ("a SessionRunHook for tf.train.MonitoredTrainingSession, which graphc does "
                                     "not have", "run sess.run(hvd.broadcast_global_variables(0)) once, after "
                                     "initializing the variables"),
    "alltoall": ("all-to-all exchange", "not built: use hvd.allgather and slice"),
    "reducescatter": ("reduce-scatter", "not built: use hvd.allreduce and slice this rank's part"),
    "join": ("uneven inputs (hvd.join)", "not built: give every rank the same number of steps "
                                         "(gc.data.Dataset.shard, then take the shortest shard's length)"),
    "ProcessSet": ("process sets", _PROCESS_SETS),
    "add_process_set": ("process sets", _PROCESS_SETS),
    "elastic": ("elastic jobs (horovod.tensorflow.elastic)", "not built: restart the job from a checkpoint"),
    "start_timeline": ("Horovod's timeline", "use gc.profiler (a traced run shows each collective's start and "
                                             "wait: docs/PROFILING.md)"),
    "SyncBatchNormalization": ("synchronized batch normalization", "not built: normalize with each rank's batch"),
}


def __getattr__(name: str):
    if name == "keras":  # hvd.keras.BroadcastGlobalVariablesCallback, ... (imports graphc.keras on first use)
        import importlib
        return importlib.import_module(".keras", __name__)
    if name in HOROVOD_MISSING:
        from ..compat import MissingTF1NameError
        feature, instead = HOROVOD_MISSING[name]
        raise MissingTF1NameError(f"graphc.distribute has no hvd.{name} ({feature}) at {user_location()}: {instead}.")
    raise AttributeError(f"module 'graphc.distribute' has no attribute {name!r}")


__all__ = ["Average", "Sum", "Adasum", "Compression", "init", "shutdown", "is_initialized", "rank", "size",
           "local_rank", "local_size", "cross_rank", "cross_size", "mpi_enabled", "mpi_built", "gloo_enabled",
           "nccl_built", "mpi_threads_supported", "barrier", "communication_seconds", "allreduce", "grouped_allreduce",
           "allgather", "broadcast", "broadcast_variables", "broadcast_global_variables", "DistributedOptimizer"]

"""The CUDA backend: each kernel group becomes a generated ``numba.cuda`` kernel; data stays
on the device between runs. CUDA is imported through ``api`` only."""
from __future__ import annotations

from ..backend import Backend, Executable


def supported_ops() -> frozenset:
    """Every op the CUDA backend has code for (the registry test compares with the catalog)."""
    from ...ops.reduce import REDUCTIONS
    from ..emit import scalar
    from ..emit.context import VIEW_OPS
    from . import ops
    return frozenset(scalar.supported()) | frozenset(REDUCTIONS) | frozenset(ops.OP_KERNELS) | VIEW_OPS | frozenset(
        {"const", "read_variable", "matmul", "conv2d", "shape", "assign", "assign_add", "assign_sub"})


class CudaBackend(Backend):
    name = "cuda"

    def __init__(self):
        # fail at gc.Session(device="cuda"), with what to install or set, not at the first run
        from .api import cuda
        cuda()

    def compile(self, program) -> Executable:
        from .executable import CudaExecutable
        return CudaExecutable(program)

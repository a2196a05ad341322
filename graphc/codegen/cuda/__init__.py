"""The CUDA backend: each kernel group becomes a generated ``numba.cuda`` kernel; data stays
on the device between runs. CUDA is imported through ``api`` only."""
from __future__ import annotations

from ..backend import Backend, Executable


def supported_ops() -> frozenset:
    """Every op the CUDA backend has code for (the registry test compares with the catalog)."""
    from ...ops.reduce import REDUCTIONS
    from ..emit import scalar
    from ..control_flow import STAGE_OPS  # run in stages (codegen/control_flow.py)
    from ..emit.context import VIEW_OPS
    from . import ops
    return frozenset(scalar.supported()) | frozenset(REDUCTIONS) | frozenset(ops.OP_KERNELS) | VIEW_OPS | frozenset(
        {"const", "read_variable", "matmul", "conv2d", "shape", "assign", "assign_add", "assign_sub"}) | STAGE_OPS


class CudaBackend(Backend):
    name = "cuda"

    def __init__(self):
        # fail at gc.Session(device="cuda"), with what to install or set, not at the first run
        from .api import cuda
        cuda()

    def compile(self, program) -> Executable:
        from .executable import CudaExecutable
        from ..control_flow import STAGE_OPS
        if any(ins.opdef.bodies or ins.op in STAGE_OPS for ins in program.instrs):  # the host launches each iteration's kernels
            from ..control_flow import StagedExecutable, host_control
            return StagedExecutable(program, self.compile, host_control(self.compile))
        return CudaExecutable(program)

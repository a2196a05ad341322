"""The numba CPU backend: each kernel group becomes a small generated numba function."""
from __future__ import annotations

from ...optimizer.state import MATMUL_PRODUCT_BEFORE_EPILOGUE, ROW_REDUCTION_CHAINS
from ..backend import Backend, Executable

# Ops that never reach the CPU backend, and why.
NOT_COMPILED = {
    "placeholder": "always fed: a Program only sees its feed",
    "placeholder_with_default": "lowering turns it into identity when it is not fed",
    "no_op": "structural: lowering drops it",
    "variable": "structural: lowering drops it",
}


def supported_ops() -> frozenset:
    """Every op the CPU backend has code for (registry test: ops.registry.OPS must be covered)."""
    from ...ops.reduce import REDUCTIONS
    from ..emit import ops, scalar
    from ..control_flow import STAGE_OPS  # run in stages (codegen/control_flow.py)
    from ..emit.context import VIEW_OPS
    return frozenset(scalar.supported()) | frozenset(REDUCTIONS) | frozenset(ops.OP_KERNELS) | VIEW_OPS | frozenset(
        {"const", "read_variable", "matmul", "conv2d", "shape", "assign", "assign_add", "assign_sub"}) | STAGE_OPS


class CpuBackend(Backend):
    name = "cpu"
    # BLAS computes the whole product into a temporary before the epilogue runs; the reduce
    # emitter runs a chain of reductions over the same rows in one row kernel (groups.py)
    capabilities = frozenset({MATMUL_PRODUCT_BEFORE_EPILOGUE, ROW_REDUCTION_CHAINS})

    def compile(self, program) -> Executable:
        from . import blas, parallel
        from .executable import CpuExecutable
        blas.configure(parallel.THREADS)
        from ..control_flow import CPU_STAGE_OPS
        if any(ins.opdef.bodies or ins.op in CPU_STAGE_OPS for ins in program.instrs):  # control flow: in stages (loops.py)
            from ..control_flow import StagedExecutable
            from .loops import compile_control
            return StagedExecutable(program, self._compile_stage, compile_control(self.compile), CPU_STAGE_OPS)
        return CpuExecutable(program)

    def _compile_stage(self, program) -> Executable:
        """A stage of a staged program: its outputs are handed to the next stage, which drops them."""
        from ..control_flow import CPU_STAGE_OPS
        if any(ins.opdef.bodies or ins.op in CPU_STAGE_OPS for ins in program.instrs):
            return self.compile(program)
        from .executable import CpuExecutable
        return CpuExecutable(program, recycle_outputs=True)

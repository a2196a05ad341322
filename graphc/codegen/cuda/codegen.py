"""Kernel sources for the CUDA backend: the shared KernelContext and program walk
(codegen/emit), with GPU loops (grid-stride) and libdevice math in place of graphc's
vectorizable CPU math."""
from __future__ import annotations

import contextlib

from ..emit.context import KernelContext, ProgramCodegen
from ..emit.loops import SourceWriter, decode_index, product

# math functions whose CUDA spelling is not math.<name>: numba's CUDA target has no
# np.rint, and it mistypes the builtin min/max of two scalars when it lowers for a real device
# (the simulator runs Python's): two-argument helpers with Python's result
_CUDA_NAMES = {"sigmoid": "rt.sigmoid", "rint": "rt.rint", "max": "rt.max2", "min": "rt.min2"}


def CUDA_MATH(name: str, dtype=None) -> str:
    """The CUDA spelling of math function ``name``: libdevice through numba's ``math``."""
    return _CUDA_NAMES.get(name, f"math.{name}")


class BlockSizes:
    """Threads per block: of a grid-stride kernel, of a block reduction (a power of two),
    and the side of a matmul tile. The simulator runs every thread as a Python thread, so
    under it blocks are tiny (the same code paths, barriers and shared-memory trees run)."""

    def __init__(self, simulated: bool):
        self.threads, self.reduce_threads, self.tile = (8, 8, 4) if simulated else (256, 128, 16)


def block_sizes() -> BlockSizes:
    from .api import simulated
    return BlockSizes(simulated())


class CudaKernelContext(KernelContext):
    target = "cuda"
    success_return = "return"  # a CUDA kernel returns nothing
    raises_floats = False  # the error array is int64

    def math(self, name: str, dtype=None) -> str:
        return CUDA_MATH(name, dtype)

    def parallel_loop(self, idx: str, n: str) -> str:
        return f"for {idx} in range(cuda.grid(1), {n}, cuda.gridsize(1)):"

    @contextlib.contextmanager
    def parallel_nest(self, w: SourceWriter, dims, prefixes=None):
        names = [self.uid(p) for p in (prefixes or ["i"] * len(dims))]
        flat = self.uid("i")
        with w.block(self.parallel_loop(flat, product(dims) if dims else "1")):
            yield decode_index(self, w, dims, flat, names)

    def prefill(self, w: SourceWriter, v: int, array: str, value, count: str = None) -> None:
        assert count is None, "a GPU kernel's prefill covers the whole output"
        self.prefills.append((v, value))

    def accumulate(self, array: str, index: str, value: str) -> str:
        return f"cuda.atomic.add({array}, {index}, {value})"

    def raise_error(self, w: SourceWriter, i: int, message: str, *values: str) -> None:
        """A GPU thread cannot raise: it records the error (code + 1, then the values) in
        the kernel's error array, which the driver checks after the run, and stops."""
        code = self.raise_code(i, message)
        errors = self._param(("errors",), "E")
        for k, v in enumerate(values):
            w(f"{errors}[{k + 1}] = {v}")
        w(f"{errors}[0] = {code + 1}")
        w("return")

    def split_bounds(self, extent_dims, work_value: int):  # pragma: no cover - emitters never ask on a GPU
        raise AssertionError("GPU kernels are not split across host threads")


class CudaProgramCodegen(ProgramCodegen):
    context_class = CudaKernelContext
    backend_name = "CUDA"

    def emitters(self) -> dict:
        from . import kernels
        return kernels.GROUP_EMITTERS

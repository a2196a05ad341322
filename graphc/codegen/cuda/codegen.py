"""Kernel sources for the CUDA backend: the CPU backend's KernelContext and program walk,
with GPU loops (grid-stride) and libdevice math in place of graphc's vectorizable CPU math."""
from __future__ import annotations

import re

from ..cpu.codegen import KernelContext, ProgramCodegen

# CPU spellings that have no CUDA lowering (or a faster libdevice one) -> CUDA spellings
_CUDA_NAMES = [
    (re.compile(r"\bvm\.(exp|log|tanh|erf|expm1)_f(?:32|64)\("), r"math.\1("),
    (re.compile(r"\bvm\.sigmoid_f(?:32|64)\("), "rt.sigmoid("),
    (re.compile(r"\bnp\.(sqrt|isnan|isfinite|isinf|floor|ceil|log|exp)\("), r"math.\1("),
]
THREADS = 256          # threads per block of a grid-stride kernel
REDUCE_THREADS = 128   # threads per block of a block reduction (a power of two)


def cuda_source(text: str) -> str:
    for pattern, replacement in _CUDA_NAMES:
        text = pattern.sub(replacement, text)
    return text


class CudaKernelContext(KernelContext):
    target = "cuda"

    def parallel_loop(self, idx: str, n: str) -> str:
        return f"for {idx} in range(cuda.grid(1), {n}, cuda.gridsize(1)):"

    def split_bounds(self, extent_dims, work_value: int):  # pragma: no cover - emitters never ask on a GPU
        raise AssertionError("GPU kernels are not split across host threads")

    def source(self) -> str:
        text = super().source()
        # a CUDA kernel returns nothing; CPU kernels return 0 as their success code
        text = re.sub(r"^    return 0$", "    return", text, flags=re.M)
        return cuda_source(text)


class CudaProgramCodegen(ProgramCodegen):
    context_class = CudaKernelContext
    backend_name = "CUDA"

    def emitters(self) -> dict:
        from . import kernels
        return kernels.GROUP_EMITTERS

"""CUDA kernels for the ops that are neither elementwise, reductions, matmul nor conv2d.
Each entry: emitter(cg, w, instr_index, instr); ``cg.launch`` says how the driver sizes
the grid."""
from __future__ import annotations

SINGLE: dict = {}


def kernel(*names):
    def register(fn):
        for n in names:
            SINGLE[n] = fn
        return fn
    return register

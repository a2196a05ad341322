"""Generated kernels are strict IEEE code: a value that a fused kernel computes in several
loops must get the same bits in each (a reduce_max gradient compares elements with the max;
tests/optimizer/test_fusion.py has the case the fuzzer found). Only the accumulators in
codegen/emit/runtime.py reassociate, which keeps sums vectorized."""
import numpy as np
from numba import njit

from graphc.codegen.cpu.executable import kernel_module_source
from graphc.codegen.emit import runtime as rt


def test_generated_kernels_compile_without_fast_math():
    source = kernel_module_source("def _kernel(A0):\n    A0[0] = 1\n    return 0", ['types.Array(types.float32, 1, "C")'])
    assert "fastmath=False" in source


def test_a_sum_vectorizes_through_its_reassociable_add_and_nothing_else_reassociates():
    @njit(fastmath=False)
    def total(x, scale):
        s = np.float32(0)
        for v in x:
            s = rt.fold_add(s, v * scale)
        return s

    x = np.arange(1000, dtype=np.float32)
    assert total(x, np.float32(2)) == np.float32(999000)
    llvm_ir = next(iter(total.inspect_llvm().values()))
    assert "fadd reassoc contract <" in llvm_ir  # the accumulator, split into vector lanes
    assert "fmul <" in llvm_ir and "fmul reassoc" not in llvm_ir and "fmul contract" not in llvm_ir


def test_the_accumulators_and_muladd_compute_what_they_say():
    @njit(fastmath=False)
    def each(a, b, c):
        return rt.fold_add(a, b), rt.fold_mul(a, b), rt.fold_muladd(c, a, b), rt.muladd(a, b, c)

    for dtype in (np.float32, np.float64):
        a, b, c = dtype(1.5), dtype(-2.25), dtype(0.125)
        assert each(a, b, c) == (a + b, a * b, c + a * b, a * b + c)
    returned = {str(sig.return_type) for sig in each.nopython_signatures}
    assert returned == {"UniTuple(float32 x 4)", "UniTuple(float64 x 4)"}
    each(np.float32(1), 2.0, np.float32(3))  # mixed widths widen, as numba's own arithmetic does
    assert "UniTuple(float64 x 4)" in str(each.nopython_signatures[-1].return_type)


def test_muladd_rounds_once_where_the_target_fuses():
    @njit(fastmath=False)
    def fused(a, b, c):
        return rt.muladd(a, b, c)

    a = 1.0 + 2.0 ** -30
    exact_low_bits = fused(a, a, -(1.0 + 2.0 ** -29))  # a*a - (1 + 2^-29) = 2^-60 when fused, 0 when not
    assert exact_low_bits in (2.0 ** -60, 0.0)
    llvm_ir = next(iter(fused.inspect_llvm().values()))
    assert "llvm.fmuladd.f64" in llvm_ir

"""Scalar helpers that generated CPU kernels call (``rt.<name>`` in generated source).

Each follows NumPy's semantics exactly where they differ from Python's or C's (NaN in
maximum, floor division and remainder of floats, rounding half to even), and is small and
branch-light so LLVM inlines it into the kernel's loop.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types, uint64
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

# --- NaN-propagating extrema (np.maximum / np.minimum) --------------------------------------------


@register_jitable
def maximum(a, b):
    return a if (a > b or a != a) else b


@register_jitable
def max_shift(a, b):
    """The larger of two floats, NaN ignored: the shift of a softmax or log-sum-exp, where a
    NaN reaches the result through the exponentials anyway. Cheaper than ``maximum``, and a
    loop-carried chain of it vectorizes (a chain of ``maximum`` kept LLVM busy for minutes)."""
    return b if b > a else a


@register_jitable
def minimum(a, b):
    return a if (a < b or a != a) else b


@register_jitable
def max2(a, b):
    """Python's ``max(a, b)`` (generated CUDA kernels call this: see cuda/codegen.py)."""
    return b if b > a else a


@register_jitable
def min2(a, b):
    """Python's ``min(a, b)``."""
    return b if b < a else a


# --- accumulations: the only float operations LLVM may reorder -------------------------------------
# Kernels compile with strict IEEE arithmetic: a value that a fused kernel computes in several
# passes (a row's max, then its equality with the max in the gradient) must get the same bits
# every time, and a kernel-wide ``reassoc`` let LLVM rewrite (a / b) * c one way in one loop and
# another way in the next (a reduce_max gradient found no element equal to the max, and dropped
# its term). The accumulators below carry ``reassoc`` on their own add, which is what the loop
# vectorizer needs to split a sum into lanes; ``muladd`` is llvm.fmuladd, fused wherever the
# target has FMA, the same way in every loop.


REASSOCIABLE = ("reassoc", "contract")


def _float_op(operands, build):
    """A float intrinsic's (signature, codegen): the operands cast to the widest of their
    types, then ``build(context, builder, result_type, *values)``; None (no match) for
    anything but floats."""
    if not all(isinstance(t, types.Float) for t in operands):
        return None
    result = max(operands, key=lambda t: t.bitwidth)

    def codegen(context, builder, sig, args):
        values = [context.cast(builder, a, t, result) for a, t in zip(args, sig.args)]
        return build(context, builder, result, *values)
    return result(*operands), codegen


@intrinsic
def fold_add(typingctx, acc, value):
    """``acc + value``, reassociable: a float sum's accumulator (vectorizes in lanes)."""
    return _float_op((acc, value), lambda ctx, b, t, x, y: b.fadd(x, y, flags=REASSOCIABLE))


@intrinsic
def fold_mul(typingctx, acc, value):
    """``acc * value``, reassociable: a float product's accumulator."""
    return _float_op((acc, value), lambda ctx, b, t, x, y: b.fmul(x, y, flags=REASSOCIABLE))


@intrinsic
def fold_muladd(typingctx, acc, a, b):
    """``acc + a * b``, reassociable and fusable: a dot product's accumulator."""
    return _float_op((acc, a, b), lambda ctx, bld, t, s, x, y:
                     bld.fadd(s, bld.fmul(x, y, flags=("contract",)), flags=REASSOCIABLE))


def _fmuladd(context, builder, result, x, y, z):
    ty = context.get_value_type(result)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty, ty, ty]),
                                        f"llvm.fmuladd.f{result.bitwidth}")
    return builder.call(fn, [x, y, z])


@intrinsic
def muladd(typingctx, a, b, c):
    """``a * b + c`` as llvm.fmuladd: one FMA where the target has it (rounded once), else a
    multiply and an add; the same choice in every loop of the kernel."""
    return _float_op((a, b, c), _fmuladd)


# --- floor division and remainder (NumPy's npy_divmod) ---------------------------------------------


def float_divmod(fmod, floor):
    """NumPy's float floor division and remainder (npy_divmod), built on the target's
    ``fmod`` and float-valued ``floor``: numba's CPU ``math.floor`` returns an integer, and
    its CUDA target has no ``np.fmod`` or ``np.floor`` (cuda/runtime.py builds its own)."""
    @register_jitable
    def floordiv_float(a, b):
        if b == 0:
            return a / b
        mod = fmod(a, b)
        div = (a - mod) / b
        if mod != 0:
            if (b < 0) != (mod < 0):
                div -= 1.0
        if div != 0:
            fl = floor(div)
            if div - fl > 0.5:
                fl += 1.0
            return fl
        return math.copysign(0.0, a / b)

    @register_jitable
    def mod_float(a, b):
        if b == 0:
            return (a - a) / b  # NaN, as np.fmod(a, 0)
        mod = fmod(a, b)
        if mod != 0:
            if (b < 0) != (mod < 0):
                mod += b
        else:
            mod = math.copysign(0.0, b)
        return mod

    return floordiv_float, mod_float


floordiv_float, mod_float = float_divmod(np.fmod, np.floor)


@register_jitable
def floordiv_int(a, b):
    if b == 0:
        return a - a  # NumPy gives 0 for integer division by zero
    if b == -1:  # -a, wrapping for the most negative value as NumPy does
        return np.int64(np.uint64(0) - np.uint64(a))
    return a // b


@register_jitable
def mod_int(a, b):
    if b == 0 or b == -1:
        return a - a
    return a % b


# --- activations with NumPy-exact special cases -------------------------------------------------------


# --- counter-based random numbers (identical to graphc.ops.random) -----------------------------------
_GOLDEN = uint64(0x9E3779B97F4A7C15)
_M1 = uint64(0xBF58476D1CE4E5B9)
_M2 = uint64(0x94D049BB133111EB)


@register_jitable
def mix64(z):
    z = (z ^ (z >> uint64(30))) * _M1
    z = (z ^ (z >> uint64(27))) * _M2
    return z ^ (z >> uint64(31))


@register_jitable
def stream_key(graph_seed, op_seed, counter, attempt):
    k = mix64(uint64(graph_seed) * _GOLDEN + uint64(op_seed))
    k = mix64(k ^ mix64(uint64(counter) + _GOLDEN))
    return mix64(k + uint64(attempt) * _M2)


@register_jitable
def bits(key, index):
    return mix64(key + uint64(index + 1) * _GOLDEN)


@register_jitable
def unit_f32(b):
    return np.float32(b >> uint64(40)) * np.float32(2.0 ** -24)


@register_jitable
def unit_f64(b):
    return np.float64(b >> uint64(11)) * (2.0 ** -53)


@register_jitable
def normal_pair(key, i, n):
    u1 = unit_f64(bits(key, i))
    u2 = unit_f64(bits(key, n + i))
    return math.sqrt(-2.0 * math.log1p(-u1)) * math.cos(2.0 * math.pi * u2)


@register_jitable
def sigmoid(x):
    # 1 / (1 + exp(-x)) without overflow for large |x|
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@register_jitable
def slice_start_step(dim, start, stop, step):
    """The first index and the step of ``range(dim)[start:stop:step]`` (Python semantics);
    ``None`` bounds arrive as ``None``."""
    if step > 0:
        if start is None:
            first = 0
        else:
            first = start + dim if start < 0 else start
            first = min2(max2(first, 0), dim)
    else:
        if start is None:
            first = dim - 1
        else:
            first = start + dim if start < 0 else start
            first = min2(max2(first, -1), dim - 1)
    return first, step


# --- vector width ------------------------------------------------------------------------------------


# --- the clock, for run deadlines in compiled loops --------------------------------------------------


@intrinsic
def monotonic_ns(typingctx):
    """``time.monotonic_ns()`` in compiled code (libc's clock_gettime(CLOCK_MONOTONIC), the
    clock Python's ``time.monotonic`` reads): a compiled loop checks the run's deadline
    (``RunOptions(timeout_in_ms=...)``) with it. An external symbol, not a ctypes pointer, so
    the functions that call it stay in numba's disk cache."""
    def codegen(context, builder, signature, args):
        i64, i32 = ir.IntType(64), ir.IntType(32)
        timespec = ir.LiteralStructType([i64, i64])
        clock_gettime = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i32, [i32, timespec.as_pointer()]), "clock_gettime")
        ts = cgutils.alloca_once(builder, timespec)
        builder.call(clock_gettime, [i32(1), ts])  # 1: CLOCK_MONOTONIC on Linux
        seconds = builder.load(builder.gep(ts, [i32(0), i32(0)]))
        nanos = builder.load(builder.gep(ts, [i32(0), i32(1)]))
        return builder.add(builder.mul(seconds, i64(1_000_000_000)), nanos)
    return types.int64(), codegen

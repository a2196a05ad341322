"""Vectorisable transcendental functions for numba CPU kernels.

PyPI's llvmlite has no SVML, so ``math.exp`` & co. inside a numba loop are scalar libm calls and
the loop does not vectorise.  The functions here are written as straight-line float arithmetic
(range reduction, polynomial, integer bit tricks for 2**n and frexp, selects instead of branches),
so LLVM inlines them into the calling loop and vectorises it.  Call them from ``@njit`` code::

    from graphc.codegen.vmath import exp_f32
    @njit
    def k(x, out):
        for i in range(x.shape[0]):
            out[i] = exp_f32(x[i])

Each function exists per dtype (``*_f32`` computes entirely in float32, ``*_f64`` in float64);
pass the matching scalar type: a float32 function given a float64 (or a Python float) is a
numba TypingError, because the intrinsics below refuse mixed types.  Methods, coefficients'
origin, measured errors and edge-case behaviour: docs/VMATH.md.  Coefficients were fitted with
tools/vmath_fit.py.

Implementation notes
- Everything is compiled with ``error_model="numpy"`` (no zero-division checks, which would
  block vectorisation) and without fastmath (the edge-case semantics rely on IEEE behaviour).
- ``_fma`` emits ``llvm.fmuladd``: fused where the target has FMA, separate mul+add otherwise.
  The algorithms are written so that either gives the documented accuracy (the products that
  must be exact are exact either way).
- Integer work (building 2**n, splitting exponent and mantissa) is done in small intrinsics, in
  i32 for float32 and i64 for float64: numba would otherwise widen int32 arithmetic to int64.
- Every function marks itself ``alwaysinline`` (``_always_inline()``), so LLVM inlines it into
  the caller whatever its cost estimate says; a call left in the loop would stop vectorisation.
- ``cache=True``: compiled once per machine, then loaded from numba's on-disk cache (callers
  still inline them after a cache load).
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = [
    "exp_f32", "exp_f64", "expm1_f32", "expm1_f64", "log_f32", "log_f64",
    "tanh_f32", "tanh_f64", "sigmoid_f32", "sigmoid_f64", "erf_f32", "erf_f64",
]

_jit = njit(error_model="numpy", fastmath=False, nogil=True, cache=True)

# ----------------------------------------------------------------------------- intrinsics
# Per-format integer constants: (int width, mantissa bits, exponent bias,
#   bits of the round-to-integer shifter 1.5*2**mant, bits of sqrt(1/2))
_FMT = {
    types.float32: (32, 23, 127, 0x4B400000,
                    int(np.float32(math.sqrt(0.5)).view(np.uint32))),
    types.float64: (64, 52, 1023, 0x4338000000000000,
                    int(np.float64(math.sqrt(0.5)).view(np.uint64))),
}


def _is_float_pair(a, b):
    return isinstance(a, types.Float) and a == b and a in _FMT


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c as llvm.fmuladd (one rounding where the target has FMA)."""
    if not (_is_float_pair(a, b) and a == c):
        return None

    def codegen(context, builder, sig, args):
        t = args[0].type
        name = "llvm.fmuladd.f32" if a == types.float32 else "llvm.fmuladd.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t, t, t]), name)
        return builder.call(fn, args)

    return a(a, b, c), codegen


@intrinsic
def _copysign(typingctx, a, b):
    """|a| with the sign bit of b (llvm.copysign; works for -0.0 and NaN)."""
    if not _is_float_pair(a, b):
        return None

    def codegen(context, builder, sig, args):
        t = args[0].type
        name = "llvm.copysign.f32" if a == types.float32 else "llvm.copysign.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t, t]), name)
        return builder.call(fn, args)

    return a(a, b), codegen


@intrinsic
def _scale_shifted(typingctx, p, k):
    """p * 2**n where k = SHIFT + n, SHIFT = 1.5 * 2**mant_bits (so n sits in k's low bits).

    2**n is applied as two factors 2**(n>>1) * 2**(n - (n>>1)), each a normal number for
    n in [-252, 254] (float32) / [-2044, 2046] (float64): p * 2**n1 is exact and the second
    product rounds once, so results that overflow give inf and results in the subnormal range
    are correctly rounded from p."""
    if not _is_float_pair(p, k):
        return None
    width, mant, bias, shift_bits, _ = _FMT[p]

    def codegen(context, builder, sig, args):
        pv, kv = args
        ity = ir.IntType(width)
        n = builder.sub(builder.bitcast(kv, ity), ity(shift_bits))
        n1 = builder.ashr(n, ity(1))
        n2 = builder.sub(n, n1)
        s1 = builder.bitcast(builder.shl(builder.add(n1, ity(bias)), ity(mant)), pv.type)
        s2 = builder.bitcast(builder.shl(builder.add(n2, ity(bias)), ity(mant)), pv.type)
        return builder.fmul(builder.fmul(pv, s1), s2)

    return p(p, k), codegen


@intrinsic
def _log_split(typingctx, x):
    """(m, e) with x = m * 2**e, m in [sqrt(1/2), sqrt(2)), e as a float; x positive normal.
    (Garbage but harmless for other inputs: callers select those away.)"""
    if not (isinstance(x, types.Float) and x in _FMT):
        return None
    width, mant, bias, _, sqrth_bits = _FMT[x]
    one_bits = bias << mant
    tup = types.UniTuple(x, 2)

    def codegen(context, builder, sig, args):
        ity = ir.IntType(width)
        ix = builder.bitcast(args[0], ity)
        # adding (1.0 - sqrt(1/2)) in the bit domain carries into the exponent exactly
        # when the mantissa is >= sqrt(1/2)'s mantissa
        ix = builder.add(ix, ity(one_bits - sqrth_bits))
        e = builder.sub(builder.ashr(ix, ity(mant)), ity(bias))
        mbits = builder.add(builder.and_(ix, ity((1 << mant) - 1)), ity(sqrth_bits))
        m = builder.bitcast(mbits, args[0].type)
        ef = builder.sitofp(e, args[0].type)
        return context.make_tuple(builder, tup, [m, ef])

    return tup(x), codegen


@intrinsic
def _always_inline(typingctx):
    """Emits nothing; marks the enclosing function `alwaysinline` so LLVM inlines it into
    every caller (and the caller's loop can vectorise) whatever its inline-cost estimate."""
    def codegen(context, builder, sig, args):
        builder.function.attributes.add("alwaysinline")
        return context.get_dummy_value()

    return types.none(), codegen


# ----------------------------------------------------------------------------- constants
f4 = np.float32
f8 = np.float64

_F4_0, _F4_HALF, _F4_1, _F4_2 = f4(0.0), f4(0.5), f4(1.0), f4(2.0)
_F8_0, _F8_HALF, _F8_1, _F8_2 = f8(0.0), f8(0.5), f8(1.0), f8(2.0)
_F4_INF, _F4_NINF, _F4_NAN = f4(np.inf), f4(-np.inf), f4(np.nan)
_F8_INF, _F8_NINF, _F8_NAN = f8(np.inf), f8(-np.inf), f8(np.nan)

# ln2 split for Cody-Waite reduction: HI has few significant bits so n*HI is exact
_F4_LN2HI = f4(0.693145751953125)        # 0x3f317200, 15 significant bits
_F4_LN2LO = f4(1.428606765330187e-06)
_F8_LN2HI = f8(0.6931471803691238)       # 0x3fe62e42fee00000, 32 significant bits
_F8_LN2LO = f8(1.9082149292705877e-10)
_F4_LOG2E = f4(1.4426950408889634)
_F8_LOG2E = f8(1.4426950408889634)
_F4_SHIFT = f4(12582912.0)               # 1.5 * 2**23
_F8_SHIFT = f8(6755399441055744.0)       # 1.5 * 2**52

# exp argument clamps: beyond them the result is already inf / 0 (and n stays in range)
_F4_EXP_HI, _F4_EXP_LO = f4(89.0), f4(-104.0)
_F8_EXP_HI, _F8_EXP_LO = f8(710.0), f8(-746.0)

# expm1(r) = r + r^2 * Q(r) on |r| <= 0.35; minimax for expm1's relative error
# (tools/vmath_fit.py "expm1": float32 2^-25.7, float64 2^-59.4)
_F4_Q0, _F4_Q1, _F4_Q2, _F4_Q3, _F4_Q4 = (
    f4(0.4999999701976776), f4(0.16666539013385773), f4(0.04166722297668457),
    f4(0.008367186412215233), f4(0.0013882395578548312))
(_F8_Q0, _F8_Q1, _F8_Q2, _F8_Q3, _F8_Q4, _F8_Q5,
 _F8_Q6, _F8_Q7, _F8_Q8, _F8_Q9, _F8_Q10) = (
    f8(0.5), f8(0.16666666666666677), f8(0.04166666666666649), f8(0.00833333333332073),
    f8(0.0013888888888968442), f8(0.00019841269888706624), f8(2.4801587164623355e-05),
    f8(2.755724134384839e-06), f8(2.755740601906037e-07), f8(2.5110119228034507e-08),
    f8(2.087530209070107e-09))

# log: 2*atanh(s) = 2s + s*z*P(z), z = s^2 <= (3 - 2*sqrt(2))^2
# (tools/vmath_fit.py "log": float32 2^-30.1, float64 2^-58.9, relative to log(1+f))
_F4_L0, _F4_L1, _F4_L2 = f4(0.6666677594184875), f4(0.39977535605430603), f4(0.2987186312675476)
_F8_L0, _F8_L1, _F8_L2, _F8_L3, _F8_L4, _F8_L5, _F8_L6 = (
    f8(0.6666666666666734), f8(0.3999999999941432), f8(0.28571428742474836),
    f8(0.22222198563492196), f8(0.18183564866238708), f8(0.15314035848005347),
    f8(0.1479610530061559))
_F4_MIN_NORMAL, _F4_SUB_SCALE, _F4_SUB_E = f4(2.0 ** -126), f4(2.0 ** 25), f4(25.0)
_F8_MIN_NORMAL, _F8_SUB_SCALE, _F8_SUB_E = f8(2.0 ** -1022), f8(2.0 ** 54), f8(54.0)

# tanh(a) == 1 in the format for a above these
_F4_TANH_CLAMP, _F8_TANH_CLAMP = f4(10.0), f8(22.0)

# erf: |x| < 1: x + x*P(x^2);  1 <= |x| < clamp: 1 - exp(-x^2) * G(1/(1+|x|))
# (tools/vmath_fit.py erf_fits: relative error of erf, float32 2^-28.6 / 2^-29.8,
#  float64 2^-56.3 / 2^-57.4)
_F4_ERF_CLAMP, _F8_ERF_CLAMP = f4(4.0), f8(6.0)
(_F4_EA0, _F4_EA1, _F4_EA2, _F4_EA3, _F4_EA4, _F4_EA5, _F4_EA6) = (
    f4(0.12837916612625122), f4(-0.3761262595653534), f4(0.1128358542919159),
    f4(-0.026853812858462334), f4(0.005188327748328447), f4(-0.0008010193705558777),
    f4(7.853862189222127e-05))
(_F4_EB0, _F4_EB1, _F4_EB2, _F4_EB3, _F4_EB4, _F4_EB5) = (
    f4(0.0007952532614581287), f4(0.5562795400619507), f4(0.5777124166488647),
    f4(0.409181147813797), f4(-0.9699462056159973), f4(0.4382222294807434))
(_F8_EA0, _F8_EA1, _F8_EA2, _F8_EA3, _F8_EA4, _F8_EA5, _F8_EA6, _F8_EA7, _F8_EA8,
 _F8_EA9, _F8_EA10, _F8_EA11, _F8_EA12) = (
    f8(0.1283791670955126), f8(-0.3761263890318375), f8(0.11283791670954857),
    f8(-0.026866170645072893), f8(0.005223977624780859), f8(-0.0008548326978741751),
    f8(0.00012055331036882581), f8(-1.4925593506474248e-05), f8(1.6460972810315018e-06),
    f8(-1.6350025151792596e-07), f8(1.4657879371241452e-08), f8(-1.1365664174651134e-09),
    f8(5.945258796630805e-11))
(_F8_EB0, _F8_EB1, _F8_EB2, _F8_EB3, _F8_EB4, _F8_EB5, _F8_EB6, _F8_EB7, _F8_EB8,
 _F8_EB9, _F8_EB10, _F8_EB11, _F8_EB12, _F8_EB13) = (
    f8(-8.703083817929723e-06), f8(0.5645343050398273), f8(0.5579015838127442),
    f8(0.3519193192382393), f8(-0.8070632427452404), f8(2.100191318703461),
    f8(-10.984730820800882), f8(31.67592878218028), f8(-55.15641516811126),
    f8(63.31548029863232), f8(-48.77044667188102), f8(24.299042415375787),
    f8(-7.0186586168293275), f8(0.8714387885165444))


# ----------------------------------------------------------------------------- exp / expm1
@_jit
def _expm1_poly_f32(r):
    """expm1(r) for |r| <= 0.35."""
    _always_inline()
    q = _fma(_fma(_fma(_fma(_F4_Q4, r, _F4_Q3), r, _F4_Q2), r, _F4_Q1), r, _F4_Q0)
    return _fma(r * r, q, r)


@_jit
def _expm1_poly_f64(r):
    _always_inline()
    q = _fma(_F8_Q10, r, _F8_Q9)
    q = _fma(q, r, _F8_Q8)
    q = _fma(q, r, _F8_Q7)
    q = _fma(q, r, _F8_Q6)
    q = _fma(q, r, _F8_Q5)
    q = _fma(q, r, _F8_Q4)
    q = _fma(q, r, _F8_Q3)
    q = _fma(q, r, _F8_Q2)
    q = _fma(q, r, _F8_Q1)
    q = _fma(q, r, _F8_Q0)
    return _fma(r * r, q, r)


@_jit
def exp_f32(x):
    """e**x in float32 (NaN -> NaN, +inf -> inf, -inf -> 0, overflow -> inf, subnormals)."""
    _always_inline()
    x = _F4_EXP_HI if x > _F4_EXP_HI else x        # comparisons are false for NaN,
    x = _F4_EXP_LO if x < _F4_EXP_LO else x        # so NaN passes through
    k = _fma(x, _F4_LOG2E, _F4_SHIFT)              # SHIFT + round(x / ln2)
    n = k - _F4_SHIFT
    r = _fma(n, -_F4_LN2HI, x)                     # exact: n*LN2HI has <= 23 bits
    r = _fma(n, -_F4_LN2LO, r)
    return _scale_shifted(_expm1_poly_f32(r) + _F4_1, k)


@_jit
def exp_f64(x):
    """e**x in float64 (same edge semantics as exp_f32)."""
    _always_inline()
    x = _F8_EXP_HI if x > _F8_EXP_HI else x
    x = _F8_EXP_LO if x < _F8_EXP_LO else x
    k = _fma(x, _F8_LOG2E, _F8_SHIFT)
    n = k - _F8_SHIFT
    r = _fma(n, -_F8_LN2HI, x)
    r = _fma(n, -_F8_LN2LO, r)
    return _scale_shifted(_expm1_poly_f64(r) + _F8_1, k)


@_jit
def _expm1_small_f32(x):
    """expm1(x) for x in [-30, 64] or NaN: 2**n * expm1(r) + (2**n - 1)."""
    _always_inline()
    k = _fma(x, _F4_LOG2E, _F4_SHIFT)
    n = k - _F4_SHIFT
    r = _fma(n, -_F4_LN2HI, x)
    r = _fma(n, -_F4_LN2LO, r)
    s = _scale_shifted(_F4_1, k)
    return _fma(s, _expm1_poly_f32(r), s - _F4_1)


@_jit
def _expm1_small_f64(x):
    _always_inline()
    k = _fma(x, _F8_LOG2E, _F8_SHIFT)
    n = k - _F8_SHIFT
    r = _fma(n, -_F8_LN2HI, x)
    r = _fma(n, -_F8_LN2LO, r)
    s = _scale_shifted(_F8_1, k)
    return _fma(s, _expm1_poly_f64(r), s - _F8_1)


_F4_EM1_LO, _F4_EM1_BIGN = f4(-30.0), f4(64.0)   # below LO: -1; n above BIGN: exp(x)
_F8_EM1_LO, _F8_EM1_BIGN = f8(-50.0), f8(128.0)


@_jit
def expm1_f32(x):
    """e**x - 1 in float32, accurate near 0 (optional extra; tanh uses the same core)."""
    _always_inline()
    x = _F4_EXP_HI if x > _F4_EXP_HI else x
    x = _F4_EM1_LO if x < _F4_EM1_LO else x
    k = _fma(x, _F4_LOG2E, _F4_SHIFT)
    n = k - _F4_SHIFT
    r = _fma(n, -_F4_LN2HI, x)
    r = _fma(n, -_F4_LN2LO, r)
    q = _expm1_poly_f32(r)
    s = _scale_shifted(_F4_1, k)                   # 2**n, finite for n <= 127
    y = _scale_shifted(q + _F4_1, k) if n > _F4_EM1_BIGN else _fma(s, q, s - _F4_1)
    return x if x == _F4_0 else y                  # keeps -0.0


@_jit
def expm1_f64(x):
    """e**x - 1 in float64, accurate near 0 (optional extra; tanh uses the same core)."""
    _always_inline()
    x = _F8_EXP_HI if x > _F8_EXP_HI else x
    x = _F8_EM1_LO if x < _F8_EM1_LO else x
    k = _fma(x, _F8_LOG2E, _F8_SHIFT)
    n = k - _F8_SHIFT
    r = _fma(n, -_F8_LN2HI, x)
    r = _fma(n, -_F8_LN2LO, r)
    q = _expm1_poly_f64(r)
    s = _scale_shifted(_F8_1, k)
    y = _scale_shifted(q + _F8_1, k) if n > _F8_EM1_BIGN else _fma(s, q, s - _F8_1)
    return x if x == _F8_0 else y


# ----------------------------------------------------------------------------- log
@_jit
def log_f32(x):
    """Natural log in float32 (0 -> -inf, <0 -> NaN, inf -> inf, NaN -> NaN, subnormals)."""
    _always_inline()
    sub = x < _F4_MIN_NORMAL
    m, e = _log_split(x * _F4_SUB_SCALE if sub else x)
    e = e - _F4_SUB_E if sub else e
    f = m - _F4_1                                   # exact, f in [-0.293, 0.414]
    s = f / (_F4_2 + f)
    z = s * s
    R = z * _fma(_fma(_F4_L2, z, _F4_L1), z, _F4_L0)
    hfsq = _F4_HALF * f * f
    y = _fma(e, _F4_LN2HI, f - (hfsq - _fma(s, hfsq + R, e * _F4_LN2LO)))
    y = y if x < _F4_INF else x                     # +inf, NaN
    y = _F4_NAN if x < _F4_0 else y
    return _F4_NINF if x == _F4_0 else y


@_jit
def log_f64(x):
    """Natural log in float64 (same edge semantics as log_f32)."""
    _always_inline()
    sub = x < _F8_MIN_NORMAL
    m, e = _log_split(x * _F8_SUB_SCALE if sub else x)
    e = e - _F8_SUB_E if sub else e
    f = m - _F8_1
    s = f / (_F8_2 + f)
    z = s * s
    p = _fma(_F8_L6, z, _F8_L5)
    p = _fma(p, z, _F8_L4)
    p = _fma(p, z, _F8_L3)
    p = _fma(p, z, _F8_L2)
    p = _fma(p, z, _F8_L1)
    R = z * _fma(p, z, _F8_L0)
    hfsq = _F8_HALF * f * f
    y = _fma(e, _F8_LN2HI, f - (hfsq - _fma(s, hfsq + R, e * _F8_LN2LO)))
    y = y if x < _F8_INF else x
    y = _F8_NAN if x < _F8_0 else y
    return _F8_NINF if x == _F8_0 else y


# ----------------------------------------------------------------------------- tanh / sigmoid
@_jit
def tanh_f32(x):
    """tanh in float32: expm1(2|x|) / (expm1(2|x|) + 2) with x's sign."""
    _always_inline()
    a = abs(x)
    a = _F4_TANH_CLAMP if a > _F4_TANH_CLAMP else a
    e = _expm1_small_f32(a + a)
    return _copysign(e / (e + _F4_2), x)


@_jit
def tanh_f64(x):
    """tanh in float64: expm1(2|x|) / (expm1(2|x|) + 2) with x's sign."""
    _always_inline()
    a = abs(x)
    a = _F8_TANH_CLAMP if a > _F8_TANH_CLAMP else a
    e = _expm1_small_f64(a + a)
    return _copysign(e / (e + _F8_2), x)


@_jit
def sigmoid_f32(x):
    """1 / (1 + e**-x) in float32; t = e**-|x| never overflows: x >= 0: 1/(1+t), x < 0: t/(1+t)."""
    _always_inline()
    t = exp_f32(-abs(x))
    return (t if x < _F4_0 else _F4_1) / (_F4_1 + t)


@_jit
def sigmoid_f64(x):
    """1 / (1 + e**-x) in float64 (same method as sigmoid_f32)."""
    _always_inline()
    t = exp_f64(-abs(x))
    return (t if x < _F8_0 else _F8_1) / (_F8_1 + t)


# ----------------------------------------------------------------------------- erf
@_jit
def erf_f32(x):
    """erf in float32: odd; |x| < 1 polynomial, else 1 - exp(-x^2) G(1/(1+|x|))."""
    _always_inline()
    a = abs(x)
    a = _F4_ERF_CLAMP if a > _F4_ERF_CLAMP else a
    z = a * a
    p = _fma(_fma(_fma(_F4_EA6, z, _F4_EA5), z, _F4_EA4), z, _F4_EA3)
    p = _fma(_fma(_fma(p, z, _F4_EA2), z, _F4_EA1), z, _F4_EA0)
    small = _fma(a, p, a)
    u = _F4_1 / (_F4_1 + a)
    g = _fma(_fma(_fma(_F4_EB5, u, _F4_EB4), u, _F4_EB3), u, _F4_EB2)
    g = _fma(_fma(g, u, _F4_EB1), u, _F4_EB0)
    big = _F4_1 - exp_f32(-z) * g
    return _copysign(small if a < _F4_1 else big, x)


@_jit
def erf_f64(x):
    """erf in float64: odd; |x| < 1 polynomial, else 1 - exp(-x^2) G(1/(1+|x|))."""
    _always_inline()
    a = abs(x)
    a = _F8_ERF_CLAMP if a > _F8_ERF_CLAMP else a
    z = a * a
    p = _fma(_F8_EA12, z, _F8_EA11)
    p = _fma(p, z, _F8_EA10)
    p = _fma(p, z, _F8_EA9)
    p = _fma(p, z, _F8_EA8)
    p = _fma(p, z, _F8_EA7)
    p = _fma(p, z, _F8_EA6)
    p = _fma(p, z, _F8_EA5)
    p = _fma(p, z, _F8_EA4)
    p = _fma(p, z, _F8_EA3)
    p = _fma(p, z, _F8_EA2)
    p = _fma(p, z, _F8_EA1)
    p = _fma(p, z, _F8_EA0)
    small = _fma(a, p, a)
    u = _F8_1 / (_F8_1 + a)
    g = _fma(_F8_EB13, u, _F8_EB12)
    g = _fma(g, u, _F8_EB11)
    g = _fma(g, u, _F8_EB10)
    g = _fma(g, u, _F8_EB9)
    g = _fma(g, u, _F8_EB8)
    g = _fma(g, u, _F8_EB7)
    g = _fma(g, u, _F8_EB6)
    g = _fma(g, u, _F8_EB5)
    g = _fma(g, u, _F8_EB4)
    g = _fma(g, u, _F8_EB3)
    g = _fma(g, u, _F8_EB2)
    g = _fma(g, u, _F8_EB1)
    g = _fma(g, u, _F8_EB0)
    big = _F8_1 - exp_f64(-z) * g
    return _copysign(small if a < _F8_1 else big, x)

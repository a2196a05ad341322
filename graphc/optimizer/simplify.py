"""Algebraic simplification as a table of rewrite rules.

Rules never change results, NaN and inf included: x*0 -> 0 and x-x -> 0 are absent on
purpose (inf*0 is NaN, inf-inf is NaN), and so is pulling a scalar constant out of a matmul
(matmul(a*c, b) -> matmul(a, b)*c overflows where the original does not). A rule that drops
an operand checks that the operand cannot change the result's shape through broadcasting,
and a rule never drops an op's run-time shape check. The one liberty taken, as in XLA: the
sign of a zero may differ (x + 0 -> x keeps -0.0 where IEEE gives +0.0).
"""
from __future__ import annotations

import numpy as np

from ..ops.reduce import REDUCTIONS
from .rewrite import Match, rule_table

RULES, rule = rule_table()


# --- helpers -------------------------------------------------------------------------------------------
def _static_equal(a, b) -> bool:
    """Static shapes that are certainly equal at run time (every dim known)."""
    return len(a) == len(b) and all(x is not None and x == y for x, y in zip(a, b))


def keeps_shape(m: Match, kept: int) -> bool:
    """Replacing the instr's output by ``kept`` cannot change its shape: the dropped operands
    are constants that broadcast into ``kept`` without growing it."""
    out_t, kept_t = m.type(m.out), m.type(kept)
    if kept_t.dtype is not out_t.dtype or kept_t.rank != out_t.rank:
        return False
    for v in m.inputs:
        if v == kept:
            continue
        c = m.const(v)
        if c is None:
            if not _static_equal(m.type(v).shape, kept_t.shape):
                return False
            continue
        if c.ndim > kept_t.rank:
            return False
        for cd, kd in zip(c.shape[::-1], kept_t.shape[::-1]):
            if cd != 1 and cd != kd:
                return False
    return True


def _broadcasts_into(small, big) -> bool:
    """``small`` certainly broadcasts into ``big`` without a run-time check."""
    return len(small) <= len(big) and all(d == 1 or (d is not None and d == b)
                                          for d, b in zip(small[::-1], big[::-1]))


def _scalar(m: Match, v: int, value) -> bool:
    return m.is_scalar_const(v, value)


def _unary_producer(m: Match, v: int, op: str):
    p = m.producer(v)
    return p if p is not None and p.op == op else None


# --- identities -------------------------------------------------------------------------------------------
def _drop_identity_operand(m: Match, identity, commutative: bool):
    """``x op e -> x`` (and ``e op x -> x`` if commutative) for the op's identity element e."""
    x, y = m.inputs
    if _scalar(m, y, identity) and keeps_shape(m, x):
        return x
    if commutative and _scalar(m, x, identity) and keeps_shape(m, y):
        return y


@rule("add_zero", "add")
def _(m):
    """x + 0 -> x, 0 + x -> x"""
    return _drop_identity_operand(m, 0, commutative=True)


@rule("subtract_zero", "subtract")
def _(m):
    """x - 0 -> x"""
    return _drop_identity_operand(m, 0, commutative=False)


@rule("zero_minus", "subtract")
def _(m):
    """0 - x -> -x"""
    x, y = m.inputs
    if _scalar(m, x, 0) and keeps_shape(m, y):
        return m.emit1("negative", (y,))


@rule("multiply_one", "multiply")
def _(m):
    """x * 1 -> x, 1 * x -> x"""
    return _drop_identity_operand(m, 1, commutative=True)


@rule("multiply_minus_one", "multiply")
def _(m):
    """x * -1 -> -x"""
    x, y = m.inputs
    if m.type(m.out).dtype.is_bool:
        return None
    if _scalar(m, y, -1) and keeps_shape(m, x):
        return m.emit1("negative", (x,))
    if _scalar(m, x, -1) and keeps_shape(m, y):
        return m.emit1("negative", (y,))


@rule("divide_one", "divide")
def _(m):
    """x / 1 -> x"""
    return _drop_identity_operand(m, 1, commutative=False)


@rule("divide_by_power_of_two", "divide")
def _(m):
    """x / 2^k -> x * 2^-k (exact in binary floating point)"""
    x, y = m.inputs
    c = m.const(y)
    if c is None or c.size == 0 or not np.all(c == c.flat[0]) or not keeps_shape(m, x):
        return None
    v = float(c.flat[0])
    if v == 0 or not np.isfinite(v) or abs(v) < np.finfo(m.type(x).dtype.np).tiny:
        return None  # 1/v of a subnormal power of two overflows
    mantissa, _ = np.frexp(abs(v))
    if mantissa != 0.5:
        return None
    return m.emit1("multiply", (x, m.const_like(1.0 / v, m.type(x).dtype)))


@rule("remove_identity", "identity")
def _(m):
    """identity(x) -> x"""
    return m.inputs[0]


@rule("remove_stop_gradient", "stop_gradient")
def _(m):
    """stop_gradient(x) -> x (gradients are already built; the op has no other effect)"""
    return m.inputs[0]


# --- powers -------------------------------------------------------------------------------------------
def _pow_exponent(m: Match):
    x, y = m.inputs
    c = m.const(y)
    if c is None or c.size == 0 or not np.all(c == c.flat[0]):
        return None
    if not keeps_shape(m, x):
        return None
    return float(c.flat[0])


@rule("pow_one", "pow")
def _(m):
    """x ** 1 -> x"""
    if _pow_exponent(m) == 1.0:
        return m.inputs[0]


@rule("pow_zero", "pow")
def _(m):
    """x ** 0 -> 1 (NumPy: even nan ** 0 is 1)"""
    if _pow_exponent(m) == 0.0:
        x = m.inputs[0]
        t = m.type(x)
        one = m.const_like(1, t.dtype)
        spec = tuple(d if d is not None else ("dim", 1, i) for i, d in enumerate(t.shape))
        return m.emit1("fill", (one, x) if any(isinstance(e, tuple) for e in spec) else (one,), {"shape": spec})


@rule("pow_small_integer", "pow")
def _(m):
    """x ** 2 -> x*x, x ** 3 -> x*x*x, x ** 4 -> (x*x)*(x*x)"""
    e = _pow_exponent(m)
    x = m.inputs[0]
    if e == 2.0:
        return m.emit1("multiply", (x, x))
    if e == 3.0:
        return m.emit1("multiply", (m.emit1("multiply", (x, x)), x))
    if e == 4.0:
        sq = m.emit1("multiply", (x, x))
        return m.emit1("multiply", (sq, sq))


@rule("pow_half", "pow")
def _(m):
    """x ** 0.5 -> sqrt(x) (keeping (-inf) ** 0.5 = inf: where(isfinite(x), sqrt(x), |x|)),
    x ** -1 -> 1/x (floating x). Not x ** -0.5 -> rsqrt(x): NumPy gives (-inf) ** -0.5 = 0 and
    (-0.0) ** -0.5 = inf, rsqrt gives NaN and -inf."""
    e = _pow_exponent(m)
    x = m.inputs[0]
    if not m.type(x).dtype.is_floating:
        return None
    if e == 0.5:
        # where(isfinite(x), sqrt(x), |x|): NaN stays NaN through abs, +-inf become inf
        return m.emit1("where", (m.emit1("isfinite", (x,)), m.emit1("sqrt", (x,)), m.emit1("abs", (x,))))
    if e == -1.0:
        return m.emit1("reciprocal", (x,))


# --- negation -------------------------------------------------------------------------------------------
@rule("double_negative", "negative")
def _(m):
    """-(-x) -> x"""
    p = _unary_producer(m, m.inputs[0], "negative")
    if p is not None:
        return p.inputs[0]


@rule("negative_of_subtract", "negative")
def _(m):
    """-(a - b) -> b - a"""
    p = _unary_producer(m, m.inputs[0], "subtract")
    if p is not None:
        a, b = p.inputs
        return m.emit1("subtract", (b, a))


@rule("subtract_negative", "subtract")
def _(m):
    """x - (-y) -> x + y"""
    x, y = m.inputs
    p = _unary_producer(m, y, "negative")
    if p is not None:
        return m.emit1("add", (x, p.inputs[0]))


@rule("add_negative", "add")
def _(m):
    """x + (-y) -> x - y, (-x) + y -> y - x"""
    x, y = m.inputs
    p = _unary_producer(m, y, "negative")
    if p is not None:
        return m.emit1("subtract", (x, p.inputs[0]))
    p = _unary_producer(m, x, "negative")
    if p is not None:
        return m.emit1("subtract", (y, p.inputs[0]))


@rule("negative_times_negative", "multiply")
def _(m):
    """(-x) * (-y) -> x * y"""
    x, y = m.inputs
    px, py = _unary_producer(m, x, "negative"), _unary_producer(m, y, "negative")
    if px is not None and py is not None:
        return m.emit1("multiply", (px.inputs[0], py.inputs[0]))


@rule("double_logical_not", "logical_not")
def _(m):
    """not(not(x)) -> x"""
    p = _unary_producer(m, m.inputs[0], "logical_not")
    if p is not None:
        return p.inputs[0]


@rule("max_min_of_self", "maximum", "minimum")
def _(m):
    """maximum(x, x) -> x, minimum(x, x) -> x"""
    x, y = m.inputs
    if x == y:
        return x


@rule("where_same_branches", "where")
def _(m):
    """where(c, x, x) -> x, when c cannot widen x"""
    c, x, y = m.inputs
    if x == y and _static_equal(m.type(x).shape, m.type(m.out).shape) \
            and _broadcasts_into(m.type(c).shape, m.type(x).shape):
        return x


# --- shapes and casts -------------------------------------------------------------------------------------
@rule("identity_transpose", "transpose")
def _(m):
    """transpose(x, (0, 1, ..., n-1)) -> x"""
    if tuple(m.attrs["perm"]) == tuple(range(len(m.attrs["perm"]))):
        return m.inputs[0]


@rule("transpose_of_transpose", "transpose")
def _(m):
    """transpose(transpose(x, p), q) -> transpose(x, p[q])"""
    p = _unary_producer(m, m.inputs[0], "transpose")
    if p is None:
        return None
    first, second = p.attrs["perm"], m.attrs["perm"]
    combined = tuple(first[i] for i in second)
    if combined == tuple(range(len(combined))):
        return p.inputs[0]
    return m.emit1("transpose", (p.inputs[0],), {"perm": combined})


@rule("transpose_through_elementwise", "transpose")
def _(m):
    """transpose(f(transpose(x, p)), q) -> f(transpose(x, p[q])) for a one-input elementwise f:
    the two transposes meet and cancel (an NCHW model's activations between NHWC convs)."""
    from ..ops.registry import get_op
    f = m.producer(m.inputs[0])
    if f is None or len(f.inputs) != 1 or not get_op(f.op).elementwise:
        return None
    p = _unary_producer(m, f.inputs[0], "transpose")
    if p is None:
        return None
    first, second = p.attrs["perm"], m.attrs["perm"]
    combined = tuple(first[i] for i in second)
    inner = p.inputs[0] if combined == tuple(range(len(combined))) else \
        m.emit1("transpose", (p.inputs[0],), {"perm": combined})
    return m.emit1(f.op, (inner,), f.attrs)


def _spec_is_static(spec) -> bool:
    return all(isinstance(e, int) for e in spec)


@rule("reshape_of_reshape", "reshape")
def _(m):
    """reshape(reshape(x, a), b) -> reshape(x, b) when b is static"""
    p = _unary_producer(m, m.inputs[0], "reshape")
    # only when the inner reshape cannot fail at run time (its input's shape is fully known)
    if p is not None and len(m.inputs) == 1 and len(p.inputs) == 1 and _spec_is_static(m.attrs["shape"]) \
            and m.type(p.inputs[0]).shape.is_fully_defined():
        return m.emit1("reshape", (p.inputs[0],), {"shape": m.attrs["shape"]})


@rule("reshape_to_same_shape", "reshape", "expand_dims", "squeeze", "broadcast_to")
def _(m):
    """reshape/expand_dims/squeeze/broadcast_to that cannot change a fully known shape -> x
    (not when the target shape comes from another tensor: then the op also checks it at run time)"""
    x = m.inputs[0]
    if len(m.inputs) == 1 and _static_equal(m.type(x).shape, m.type(m.out).shape):
        return x


@rule("squeeze_of_expand_dims", "squeeze")
def _(m):
    """squeeze(expand_dims(x, a), a) -> x"""
    p = _unary_producer(m, m.inputs[0], "expand_dims")
    if p is not None and tuple(m.attrs["axes"]) == (p.attrs["axis"],):
        return p.inputs[0]


@rule("sum_to_same_shape", "sum_to")
def _(m):
    """sum_to(g, like) -> g when both shapes are fully known and equal"""
    g, like = m.inputs
    if _static_equal(m.type(g).shape, m.type(like).shape):
        return g


@rule("cast_to_same_dtype", "cast")
def _(m):
    """cast(x, dtype of x) -> x"""
    x = m.inputs[0]
    if m.type(x).dtype is m.attrs["dtype"]:
        return x


def _lossless(src, dst) -> bool:
    """Every value of ``src`` is exactly representable in ``dst``."""
    return bool(np.can_cast(src.np, dst.np, casting="safe"))


@rule("cast_of_lossless_cast", "cast")
def _(m):
    """cast(cast(x, wider), t) -> cast(x, t) (-> x when t is x's dtype)"""
    p = _unary_producer(m, m.inputs[0], "cast")
    if p is None:
        return None
    src = m.type(p.inputs[0]).dtype
    mid = p.attrs["dtype"]
    if not _lossless(src, mid):
        return None
    if m.attrs["dtype"] is src:
        return p.inputs[0]
    return m.emit1("cast", (p.inputs[0],), {"dtype": m.attrs["dtype"]})


@rule("reduce_over_nothing", *REDUCTIONS)
def _(m):
    """a reduction over no axes, or over axes of static size 1 -> a reshape of x"""
    x = m.inputs[0]
    shape = m.type(x).shape
    axes = m.attrs["axes"]
    fold = m.ins.opdef.fold
    if m.ins.op == "reduce_logsumexp" or (fold is not None and (fold.element or fold.finish)):
        return None  # over one element these are not the element itself
    if any(shape[a] != 1 for a in axes):
        return None
    out = m.type(m.out)
    if out.dtype is not m.type(x).dtype:  # integer sums accumulate in int64, means in float
        x = m.emit1("cast", (x,), {"dtype": out.dtype})
    if m.attrs["keepdims"] or not axes or _static_equal(shape, out.shape):  # (keepdims: the same shape)
        return x
    if not out.shape.is_fully_defined():
        return m.emit1("squeeze", (x,), {"axes": tuple(axes)})
    return m.emit1("reshape", (x,), {"shape": tuple(out.shape)})


# --- matmul -----------------------------------------------------------------------------------------
def _swaps_last_two(perm) -> bool:
    n = len(perm)
    return n >= 2 and tuple(perm) == tuple(range(n - 2)) + (n - 1, n - 2)


@rule("matmul_fold_transpose", "matmul")
def _(m):
    """matmul(transpose(a), b) -> matmul(a, b, transpose_a=True) (and for b)"""
    a, b = m.inputs
    ta, tb = m.attrs["transpose_a"], m.attrs["transpose_b"]
    pa, pb = _unary_producer(m, a, "transpose"), _unary_producer(m, b, "transpose")
    if pa is not None and _swaps_last_two(pa.attrs["perm"]):
        return m.emit1("matmul", (pa.inputs[0], b), {"transpose_a": not ta, "transpose_b": tb})
    if pb is not None and _swaps_last_two(pb.attrs["perm"]):
        return m.emit1("matmul", (a, pb.inputs[0]), {"transpose_a": ta, "transpose_b": not tb})

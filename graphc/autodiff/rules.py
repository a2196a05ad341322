"""Gradient rules, one per differentiable op, written in graph ops (so they differentiate
again). A rule takes the forward Operation and the gradients of its outputs (None where an
output has none) and returns one gradient (or None) per input."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..errors import GradientError
from ..ops import elementwise as ew
from ..ops import linalg, nn, reduce, shape as sh
from ..ops import source
from ..ops._build import make, make1
from ..ops.registry import OPS, find_opdef, rule_registrar

GRADIENTS: dict[str, Callable] = {}

# Ops whose outputs have no gradient (integer or boolean results, piecewise constants,
# state and randomness). gradients() treats them as the end of every path.
NON_DIFFERENTIABLE = frozenset({
    "const", "placeholder", "shape", "sign", "floor", "ceil", "round", "logical_not",
    "isnan", "isfinite", "floordiv", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
    "logical_and", "logical_or", "argmax", "argmin", "reduce_any", "reduce_all", "one_hot", "stop_gradient",
    "random_uniform", "random_standard_normal", "truncated_standard_normal", "read_variable", "assign",
    "assign_add", "assign_sub", "snapshot", "variable", "no_op",
    "argsort", "in_top_k", "where_indices",
})


grad = rule_registrar(GRADIENTS, "gradient")


def gradient_rule(op_type: str):
    """The op's gradient rule: its own (``OpDef.gradient``) or this module's; None if neither."""
    opdef = find_opdef(op_type)
    if opdef is not None and opdef.gradient is not None:
        return opdef.gradient
    return GRADIENTS.get(op_type)


def differentiable_ops() -> frozenset:
    """Every op with a gradient rule, in this table or in its OpDef."""
    return frozenset(GRADIENTS) | frozenset(name for name, d in OPS.items() if d.gradient is not None)


# --- helpers -------------------------------------------------------------------------------------
def unbroadcast(g, x, others):
    """Sum ``g`` (the broadcast shape of an elementwise op) back to the shape of operand ``x``.

    Axes that broadcasting provably added are summed statically. If ``x`` has a ``None`` dim
    that might be 1 at run time while the output is larger, the reduction is left to the
    run-time ``sum_to`` op, as it is when a rank is unknown until fed (a placeholder made
    without a shape): ``sum_to`` is inferred again once the rank is known.
    """
    if not (g.shape.known_rank and x.shape.known_rank and all(o.shape.known_rank for o in others)):
        return reduce.sum_to(g, x)
    lead = g.ndim - x.ndim
    axes = list(range(lead))
    for i, d in enumerate(x.shape):
        out_dim = g.shape[lead + i]
        if d == 1:
            if out_dim != 1:
                axes.append(lead + i)
        elif d is None:
            partner_dims = [o.shape[i - (x.ndim - o.ndim)] for o in others if i - (x.ndim - o.ndim) >= 0]
            if any(pd != 1 for pd in partner_dims):
                return reduce.sum_to(g, x)
    if axes:
        g = reduce.reduce_sum(g, axes, keepdims=True)
    if lead:
        g = sh.squeeze(g, list(range(lead)))
    return g


def expand_reduced(g, x, axes, keepdims):
    """Broadcast the gradient of a reduction back over the reduced axes of ``x``."""
    if not keepdims:
        for a in sorted(axes):
            g = sh.expand_dims(g, a)
    return sh.broadcast_like(g, x)


def _count(x, axes, dtype):
    dims = [x.shape[a] for a in axes]
    if all(d is not None for d in dims):
        return float(np.prod(dims)) if dims else 1.0
    sizes = sh.gather(source.shape(x), np.asarray(axes, dtype=np.int64))
    return ew.cast(reduce.reduce_prod(sizes), dtype)


# --- elementwise ----------------------------------------------------------------------------------
@grad("negative")
def _(op, grads):
    return [ew.negative(grads[0])]


@grad("abs")
def _(op, grads):
    return [grads[0] * ew.sign(op.inputs[0])]


@grad("exp")
def _(op, grads):
    return [grads[0] * op.outputs[0]]


@grad("expm1")
def _(op, grads):
    return [grads[0] * (op.outputs[0] + 1.0)]


@grad("log")
def _(op, grads):
    return [grads[0] / op.inputs[0]]


@grad("log1p")
def _(op, grads):
    return [grads[0] / (op.inputs[0] + 1.0)]


@grad("sqrt")
def _(op, grads):
    return [grads[0] / (op.outputs[0] * 2.0)]


@grad("rsqrt")
def _(op, grads):
    y = op.outputs[0]
    return [grads[0] * (y * y * y) * -0.5]


@grad("square")
def _(op, grads):
    return [grads[0] * (op.inputs[0] * 2.0)]


@grad("reciprocal")
def _(op, grads):
    y = op.outputs[0]
    return [ew.negative(grads[0]) * (y * y)]


@grad("sin")
def _(op, grads):
    return [grads[0] * ew.cos(op.inputs[0])]


@grad("cos")
def _(op, grads):
    return [ew.negative(grads[0]) * ew.sin(op.inputs[0])]


@grad("tanh")
def _(op, grads):
    y = op.outputs[0]
    return [grads[0] * (1.0 - y * y)]


@grad("sigmoid")
def _(op, grads):
    y = op.outputs[0]
    return [grads[0] * (y * (1.0 - y))]


@grad("erf")
def _(op, grads):
    x = op.inputs[0]
    return [grads[0] * (ew.exp(ew.negative(x * x)) * (2.0 / math.sqrt(math.pi)))]


@grad("relu")
def _(op, grads):
    x = op.inputs[0]
    return [ew.where(x > 0, grads[0], 0)]


@grad("leaky_relu")
def _(op, grads):
    x, g = op.inputs[0], grads[0]
    return [ew.where(x > 0, g, g * op.attrs["alpha"])]


@grad("elu")
def _(op, grads):
    x, y, g = op.inputs[0], op.outputs[0], grads[0]
    return [ew.where(x > 0, g, g * (y + op.attrs["alpha"]))]


@grad("softplus")
def _(op, grads):
    return [grads[0] * ew.sigmoid(op.inputs[0])]


@grad("gelu")
def _(op, grads):
    x, g = op.inputs[0], grads[0]
    if op.attrs["approximate"]:
        c, a = math.sqrt(2.0 / math.pi), 0.044715
        t = ew.tanh((x + x * x * x * a) * c)
        d = (1.0 + t) * 0.5 + x * 0.5 * (1.0 - t * t) * ((x * x * (3 * a) + 1.0) * c)
    else:
        d = (ew.erf(x * (1 / math.sqrt(2.0))) + 1.0) * 0.5 + x * ew.exp(x * x * -0.5) * (1 / math.sqrt(2 * math.pi))
    return [g * d]


@grad("cast")
def _(op, grads):
    x = op.inputs[0]
    if x.dtype.is_floating and op.outputs[0].dtype.is_floating:
        return [ew.cast(grads[0], x.dtype)]
    return [None]


@grad("identity", "placeholder_with_default")
def _(op, grads):
    return [grads[0]]


@grad("add")
def _(op, grads):
    x, y = op.inputs
    return [unbroadcast(grads[0], x, [y]), unbroadcast(grads[0], y, [x])]


@grad("subtract")
def _(op, grads):
    x, y = op.inputs
    return [unbroadcast(grads[0], x, [y]), unbroadcast(ew.negative(grads[0]), y, [x])]


@grad("multiply")
def _(op, grads):
    x, y = op.inputs
    g = grads[0]
    return [unbroadcast(g * y, x, [y]), unbroadcast(g * x, y, [x])]


@grad("divide")
def _(op, grads):
    x, y = op.inputs
    g = grads[0]
    return [unbroadcast(g / y, x, [y]), unbroadcast(ew.negative(g) * (x / y) / y, y, [x])]


@grad("mod")
def _(op, grads):
    x, y = op.inputs
    g = grads[0]
    return [unbroadcast(g, x, [y]), unbroadcast(ew.negative(g) * ew.floordiv(x, y), y, [x])]


@grad("pow")
def _(op, grads):
    x, y = op.inputs
    g = grads[0]
    gx = g * y * ew.pow(x, y - 1.0)
    positive = x > 0
    log_x = ew.where(positive, ew.log(ew.where(positive, x, 1.0)), 0.0)
    gy = g * op.outputs[0] * log_x
    return [unbroadcast(gx, x, [y]), unbroadcast(gy, y, [x])]


@grad("maximum", "minimum")
def _(op, grads):
    """Ties go to the first operand, as in TensorFlow."""
    x, y = op.inputs
    g = grads[0]
    first = (x >= y) if op.type == "maximum" else (x <= y)
    return [unbroadcast(ew.where(first, g, 0), x, [y]), unbroadcast(ew.where(first, 0, g), y, [x])]


@grad("where")
def _(op, grads):
    c, x, y = op.inputs
    g = grads[0]
    return [None, unbroadcast(ew.where(c, g, 0), x, [c, y]), unbroadcast(ew.where(c, 0, g), y, [c, x])]


@grad("clip_by_value")
def _(op, grads):
    t, lo, hi = op.inputs
    g = grads[0]
    below, above = t < lo, t > hi
    inside = ew.where(ew.logical_or(below, above), 0, g)
    return [unbroadcast(inside, t, [lo, hi]), unbroadcast(ew.where(below, g, 0), lo, [t, hi]),
            unbroadcast(ew.where(above, g, 0), hi, [t, lo])]


# --- reductions --------------------------------------------------------------------------------------
@grad("reduce_sum")
def _(op, grads):
    return [expand_reduced(grads[0], op.inputs[0], op.attrs["axes"], op.attrs["keepdims"])]


@grad("reduce_mean")
def _(op, grads):
    x = op.inputs[0]
    g = expand_reduced(grads[0], x, op.attrs["axes"], op.attrs["keepdims"])
    return [g / _count(x, op.attrs["axes"], x.dtype)]


@grad("reduce_max", "reduce_min")
def _(op, grads):
    """Ties share the gradient equally, as in TensorFlow."""
    x, y = op.inputs[0], op.outputs[0]
    axes, keepdims = op.attrs["axes"], op.attrs["keepdims"]
    hit = ew.cast(ew.equal(x, expand_reduced(y, x, axes, keepdims)), x.dtype)
    count = reduce.reduce_sum(hit, axes, keepdims=True)
    return [expand_reduced(grads[0], x, axes, keepdims) * hit / count]


@grad("reduce_prod")
def _(op, grads):
    """Exact with zeros: one zero gets the product of the others, two or more zeros give 0."""
    x = op.inputs[0]
    axes, keepdims = op.attrs["axes"], op.attrs["keepdims"]
    is_zero = ew.equal(x, 0)
    nonzero = ew.where(is_zero, 1.0, x)
    prod_nonzero = reduce.reduce_prod(nonzero, axes, keepdims=True)
    zeros = reduce.reduce_sum(ew.cast(is_zero, x.dtype), axes, keepdims=True)
    d = ew.where(ew.equal(zeros, 0), prod_nonzero / nonzero,
                 ew.where(ew.logical_and(ew.equal(zeros, 1), is_zero), prod_nonzero, 0.0))
    return [expand_reduced(grads[0], x, axes, keepdims) * d]


@grad("reduce_logsumexp")
def _(op, grads):
    x, y = op.inputs[0], op.outputs[0]
    axes, keepdims = op.attrs["axes"], op.attrs["keepdims"]
    return [expand_reduced(grads[0], x, axes, keepdims) * ew.exp(x - expand_reduced(y, x, axes, keepdims))]


@grad("sum_to")
def _(op, grads):
    return [sh.broadcast_like(grads[0], op.inputs[0]), None]


# --- shape ----------------------------------------------------------------------------------------------
@grad("reshape")
def _(op, grads):
    return [sh.reshape_like(grads[0], op.inputs[0])] + [None] * (len(op.inputs) - 1)


@grad("expand_dims", "squeeze")
def _(op, grads):
    return [sh.reshape_like(grads[0], op.inputs[0])]


@grad("transpose")
def _(op, grads):
    inverse = tuple(int(i) for i in np.argsort(op.attrs["perm"]))
    return [sh.transpose(grads[0], inverse)]


@grad("broadcast_to")
def _(op, grads):
    x = op.inputs[0]
    g = grads[0]
    if x.shape.is_fully_defined():
        g = unbroadcast(g, x, [])
    else:
        g = reduce.sum_to(g, x)
    return [g] + [None] * (len(op.inputs) - 1)


@grad("concat")
def _(op, grads):
    return sh.split_like(grads[0], op.inputs, op.attrs["axis"])


@grad("split")
def _(op, grads):
    parts = [g if g is not None else source.zeros_like(t) for g, t in zip(grads, op.outputs)]
    return [sh.concat(parts, op.attrs["axis"])] + [None] * (len(op.inputs) - 1)


@grad("tile")
def _(op, grads):
    """Fold each tiled axis into (multiple, size) and sum over the multiples."""
    x = op.inputs[0]
    spec = []
    for i, (m, d) in enumerate(zip(op.attrs["multiples"], x.shape)):
        spec.append(m)
        spec.append(d if d is not None else ("dim", 1, i))
    g = make1("reshape", (grads[0],) + ((x,) if any(isinstance(e, tuple) for e in spec) else ()), {"shape": tuple(spec)})
    return [reduce.reduce_sum(g, tuple(range(0, 2 * x.ndim, 2)))]


@grad("pad")
def _(op, grads):
    return [make1("pad_grad", (grads[0],), {"paddings": op.attrs["paddings"], "mode": op.attrs["mode"]})]


@grad("pad_grad")
def _(op, grads):
    return [sh.pad(grads[0], op.attrs["paddings"], mode=op.attrs["mode"])]


@grad("strided_slice")
def _(op, grads):
    return [make1("strided_slice_grad", (grads[0], op.inputs[0]), {"index": op.attrs["index"]})]


@grad("strided_slice_grad")
def _(op, grads):
    return [make1("strided_slice", (grads[0],), {"index": op.attrs["index"]}), None]


@grad("gather")
def _(op, grads):
    params, indices = op.inputs
    return [sh.scatter_add(grads[0], indices, params, op.attrs["axis"]), None]


@grad("scatter_add")
def _(op, grads):
    _, indices, _ = op.inputs
    return [sh.gather(grads[0], indices, axis=op.attrs["axis"]), None, None]


@grad("fill")
def _(op, grads):
    return [reduce.reduce_sum(grads[0])] + [None] * (len(op.inputs) - 1)


# --- linear algebra -----------------------------------------------------------------------------------
@grad("matmul")
def _(op, grads):
    a, b = op.inputs
    g = grads[0]
    ta, tb = op.attrs["transpose_a"], op.attrs["transpose_b"]
    mm = linalg.matmul
    if not ta and not tb:
        ga, gb = mm(g, b, transpose_b=True), mm(a, g, transpose_a=True)
    elif not ta and tb:
        ga, gb = mm(g, b), mm(g, a, transpose_a=True)
    elif ta and not tb:
        ga, gb = mm(b, g, transpose_b=True), mm(a, g)
    else:
        ga, gb = mm(b, g, transpose_a=True, transpose_b=True), mm(g, a, transpose_a=True, transpose_b=True)
    return [_unbatch(ga, a, b), _unbatch(gb, b, a)]


def _unbatch(g, x, other):
    """Sum a matmul gradient over batch dims that ``x`` was broadcast along."""
    if g.ndim == x.ndim and all(d is not None and d == e for d, e in zip(g.shape[:-2], x.shape[:-2])):
        return g
    if x.ndim == 2 and g.ndim > 2:
        return reduce.reduce_sum(g, tuple(range(g.ndim - 2)))
    return reduce.sum_to(g, x)


# --- nn -------------------------------------------------------------------------------------------------------
@grad("softmax")
def _(op, grads):
    y, g = op.outputs[0], grads[0]
    axis = op.attrs["axis"]
    return [y * (g - reduce.reduce_sum(g * y, axis, keepdims=True))]


@grad("log_softmax")
def _(op, grads):
    y, g = op.outputs[0], grads[0]
    axis = op.attrs["axis"]
    return [g - ew.exp(y) * reduce.reduce_sum(g, axis, keepdims=True)]


@grad("softmax_cross_entropy_with_logits")
def _(op, grads):
    labels, logits = op.inputs
    axis = op.attrs["axis"]
    g = sh.expand_dims(grads[0], axis)
    d_logits = nn.softmax(logits, axis) * reduce.reduce_sum(labels, axis, keepdims=True) - labels
    return [unbroadcast(ew.negative(g) * nn.log_softmax(logits, axis), labels, [logits]),
            unbroadcast(g * d_logits, logits, [labels])]


@grad("sparse_softmax_cross_entropy_with_logits")
def _(op, grads):
    labels, logits = op.inputs
    classes = logits.shape[-1]
    if classes is None:
        raise GradientError(f"the gradient of sparse_softmax_cross_entropy_with_logits '{op.name}' (created at "
                            f"{op.location}) needs the number of classes (the last dim of the logits) to be known")
    g = sh.expand_dims(grads[0], -1)
    return [None, g * (nn.softmax(logits) - sh.one_hot(labels, classes, dtype=logits.dtype))]


def _conv_attrs(op):
    return {k: op.attrs[k] for k in ("strides", "dilations", "padding")}


@grad("conv2d")
def _(op, grads):
    x, f = op.inputs
    g = grads[0]
    attrs = _conv_attrs(op)
    return [make1("conv2d_backprop_input", (g, f, x), attrs), make1("conv2d_backprop_filter", (x, g, f), attrs)]


@grad("conv2d_backprop_input")
def _(op, grads):
    g_out, f, like = op.inputs
    G = grads[0]
    attrs = _conv_attrs(op)
    return [make1("conv2d", (G, f), attrs), make1("conv2d_backprop_filter", (G, g_out, f), attrs), None]


@grad("conv2d_backprop_filter")
def _(op, grads):
    x, g_out, like = op.inputs
    G = grads[0]
    attrs = _conv_attrs(op)
    return [make1("conv2d_backprop_input", (g_out, G, x), attrs), make1("conv2d", (x, G), attrs), None]


def _pool_attrs(op):
    return {k: op.attrs[k] for k in ("ksize", "strides", "padding")}


@grad("max_pool2d")
def _(op, grads):
    return [make1("max_pool2d_grad", (op.inputs[0], grads[0]), _pool_attrs(op))]


@grad("max_pool2d_grad")
def _(op, grads):
    return [None, make1("max_pool2d_grad_grad", (op.inputs[0], grads[0]), _pool_attrs(op))]


@grad("max_pool2d_grad_grad")
def _(op, grads):
    return [None, make1("max_pool2d_grad", (op.inputs[0], grads[0]), _pool_attrs(op))]


@grad("avg_pool2d")
def _(op, grads):
    return [make1("avg_pool2d_grad", (grads[0], op.inputs[0]), _pool_attrs(op))]


@grad("avg_pool2d_grad")
def _(op, grads):
    return [make1("avg_pool2d", (grads[0],), _pool_attrs(op)), None]


@grad("window_sum")
def _(op, grads):
    return [make1("window_sum", (grads[0],), dict(op.attrs))]


# --- fused batch normalization ------------------------------------------------------------------------
def _bn_channels(v, x, axis):
    """A (C,) tensor shaped to broadcast along channel ``axis`` of ``x``."""
    if axis == x.ndim - 1:
        return v
    return sh.reshape(v, (-1,) + (1,) * (x.ndim - 1 - axis))


def _bn_count(x, axis):
    """The number of elements per channel: a Python float where x's other dims are known,
    else a run-time scalar of x's dtype."""
    others = [k for k in range(x.ndim) if k != axis]
    dims = [x.shape[k] for k in others]
    if None not in dims:
        return float(np.prod(dims, dtype=np.int64)) if dims else 1.0
    sizes = sh.gather(source.shape(x), np.asarray(others, dtype=np.int64))
    return ew.cast(reduce.reduce_prod(sizes), x.dtype)


def _bn_grad_composed(dy, x, scale, mean, inv, axis):
    """fused_batch_norm_grad's outputs (dx, dscale, doffset) in graph ops, for its own gradient."""
    others = [k for k in range(x.ndim) if k != axis]
    n = _bn_count(x, axis)
    xhat = (x - _bn_channels(mean, x, axis)) * _bn_channels(inv, x, axis)
    doffset = reduce.reduce_sum(dy, others)
    dscale = reduce.reduce_sum(dy * xhat, others)
    dx = _bn_channels(scale * inv / n, x, axis) * (
        n * dy - _bn_channels(doffset, x, axis) - xhat * _bn_channels(dscale, x, axis))
    return dx, dscale, doffset


@grad("fused_batch_norm")
def _(op, grads):
    """dy goes through one fused_batch_norm_grad kernel; gradients of the statistics
    outputs (rare: they usually feed moving averages, whose assigns stop gradients) are
    added with elementwise ops."""
    x, scale, offset = op.inputs
    _, mean, _, inv = op.outputs
    axis = op.attrs["axis"]
    gy, gmean, gvar, ginv = grads
    dx = dscale = doffset = None
    if gy is not None:
        dx, dscale, doffset = make("fused_batch_norm_grad", (gy, x, scale, mean, inv), {"axis": axis}).outputs
    if gmean is None and gvar is None and ginv is None:
        return [dx, dscale, doffset]
    n = _bn_count(x, axis)
    coef = None  # per channel, the factor of (x - mean) in dx
    if gvar is not None:  # the unbiased variance: sum((x - mean)^2) / max(n - 1, 1)
        coef = gvar * (2.0 / ew.maximum(n - 1.0, 1.0) if not isinstance(n, float) else 2.0 / max(n - 1.0, 1.0))
    if ginv is not None:  # inv = (var + eps)^-1/2 with the biased var: d inv / d x = -inv^3 (x - mean) / n
        term = ew.negative(ginv) * inv * inv * inv / n
        coef = term if coef is None else coef + term
    terms = [dx] if dx is not None else []
    if coef is not None:
        terms.append((x - _bn_channels(mean, x, axis)) * _bn_channels(coef, x, axis))
    if gmean is not None:
        terms.append(sh.broadcast_like(_bn_channels(gmean / n, x, axis), x))
    dx = terms[0]
    for term in terms[1:]:
        dx = dx + term
    return [dx, dscale, doffset]


@grad("fused_batch_norm_grad")
def _(op, grads):
    """The gradient of the backward kernel's composed form (second derivatives; inputs held
    constant, so every input gets its partial derivative)."""
    from .gradients import gradients
    inputs = list(op.inputs)
    outs = _bn_grad_composed(*inputs, op.attrs["axis"])
    pairs = [(o, g) for o, g in zip(outs, grads) if g is not None]
    if not pairs:
        return [None] * len(inputs)
    return gradients([o for o, _ in pairs], inputs, grad_ys=[g for _, g in pairs], stop_gradients=inputs)

"""One or more small samples per op: how to build it from input tensors, inputs, and the
NumPy expression it must equal. The registry test requires a sample (or a stated exemption)
for every registered op, runs every sample on every device, and later issues reuse the
samples for gradient checks."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.special as sps

import graphc as gc
import graphc.ops.shape  # noqa: F401  (gc.ops.shape.scatter_add)
import graphc.ops.sorting  # noqa: F401  (gc.ops.sorting.take_along_axis)
from graphc.ops.control import check_range

rng = np.random.default_rng(1234)


def rand(*shape, low=-2.0, high=2.0, dtype=np.float64):
    return rng.uniform(low, high, size=shape).astype(dtype)


@dataclass
class Sample:
    build: Callable          # (*input_tensors) -> Tensor
    inputs: list             # NumPy arrays fed through placeholders
    expected: Callable       # (*arrays) -> NumPy array
    # Indices of inputs that gradients are taken with respect to (None: all float inputs).
    wrt: tuple = None
    note: str = ""
    # False where the output is not floating (the sample checks only the forward value).
    grad: bool = True
    # check_gradients options (eps, rtol, atol) where the defaults do not suit the op.
    extra: dict = field(default_factory=dict)


def _unary(fn_gc, fn_np, low=-2.0, high=2.0):
    return [Sample(fn_gc, [rand(3, 4, low=low, high=high)], fn_np),
            Sample(fn_gc, [rand(low=low, high=high)], fn_np, note="scalar"),
            Sample(fn_gc, [rand(2, 1, 3, low=low, high=high)], fn_np, note="rank 3")]


def _binary(fn_gc, fn_np, low=-2.0, high=2.0):
    return [
        Sample(fn_gc, [rand(3, 4, low=low, high=high), rand(3, 4, low=low, high=high)], fn_np),
        Sample(fn_gc, [rand(3, 1, low=low, high=high), rand(1, 4, low=low, high=high)], fn_np, note="broadcast"),
        Sample(fn_gc, [rand(4, low=low, high=high), rand(2, 4, low=low, high=high)], fn_np, note="broadcast"),
    ]


def _conv_ref(x, f, stride, pad):
    n, h, w, c = x.shape
    kh, kw, _, o = f.shape
    if pad == "SAME":
        oh, ow = -(-h // stride), -(-w // stride)
        ph = max((oh - 1) * stride + kh - h, 0)
        pw = max((ow - 1) * stride + kw - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, f, axes=([1, 2, 3], [0, 1, 2]))
    return out


def _pool_ref(x, k, stride, kind):
    n, h, w, c = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            out[:, i, j, :] = patch.max(axis=(1, 2)) if kind == "max" else patch.mean(axis=(1, 2))
    return out


def _log_softmax(x, axis=-1):
    return x - sps.logsumexp(x, axis=axis, keepdims=True)


_gelu_exact = lambda x: 0.5 * x * (1 + sps.erf(x / math.sqrt(2)))  # noqa: E731
_gelu_tanh = lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))  # noqa: E731

SAMPLES = {
    # sources
    "const": [Sample(lambda: gc.constant(np.arange(6.0).reshape(2, 3)), [], lambda: np.arange(6.0).reshape(2, 3))],
    "placeholder_with_default": [Sample(lambda x: gc.placeholder_with_default(x, (None, 4)), [rand(3, 4)],
                                        lambda x: x)],
    "fill": [Sample(lambda v: gc.fill((2, 3), v), [np.array(1.5)], lambda v: np.full((2, 3), 1.5))],
    "shape": [Sample(lambda x: gc.shape(x), [rand(3, 4)], lambda x: np.array([3, 4]))],
    # elementwise unary
    "negative": _unary(gc.negative, np.negative),
    "abs": _unary(gc.abs, np.abs),
    "sign": _unary(gc.sign, np.sign),
    "exp": _unary(gc.exp, np.exp),
    "expm1": _unary(gc.expm1, np.expm1),
    "log": _unary(gc.log, np.log, 0.1, 3.0),
    "log1p": _unary(gc.log1p, np.log1p, -0.5, 3.0),
    "sqrt": _unary(gc.sqrt, np.sqrt, 0.1, 3.0),
    "rsqrt": _unary(gc.rsqrt, lambda x: 1 / np.sqrt(x), 0.1, 3.0),
    "square": _unary(gc.square, np.square),
    "reciprocal": _unary(gc.reciprocal, lambda x: 1 / x, 0.5, 3.0),
    "sin": _unary(gc.sin, np.sin),
    "cos": _unary(gc.cos, np.cos),
    "tan": _unary(gc.tan, np.tan, -1.2, 1.2),
    "asin": _unary(gc.asin, np.arcsin, -0.9, 0.9),
    "acos": _unary(gc.acos, np.arccos, -0.9, 0.9),
    "atan": _unary(gc.atan, np.arctan),
    "sinh": _unary(gc.sinh, np.sinh),
    "cosh": _unary(gc.cosh, np.cosh),
    "asinh": _unary(gc.asinh, np.arcsinh),
    "acosh": _unary(gc.acosh, np.arccosh, 1.1, 3.0),
    "atanh": _unary(gc.atanh, np.arctanh, -0.9, 0.9),
    "tanh": _unary(gc.tanh, np.tanh),
    "sigmoid": _unary(gc.sigmoid, sps.expit),
    "erf": _unary(gc.erf, sps.erf),
    "floor": _unary(gc.floor, np.floor),
    "ceil": _unary(gc.ceil, np.ceil),
    "round": _unary(gc.round, np.round),
    "logical_not": [Sample(gc.logical_not, [rand(3, 4) > 0], np.logical_not)],
    "isnan": [Sample(gc.isnan, [np.array([0.0, np.nan, np.inf])], np.isnan)],
    "isfinite": [Sample(gc.isfinite, [np.array([0.0, np.nan, -np.inf])], np.isfinite)],
    "cast": [Sample(lambda x: gc.cast(x, gc.int32), [rand(3, 4, low=-5, high=5)], lambda x: x.astype(np.int32),
                    grad=False),
             Sample(lambda x: gc.cast(x, gc.float32), [rand(3, 4)], lambda x: x.astype(np.float32),
                    extra={"eps": 1e-2, "rtol": 1e-4, "atol": 1e-4})],
    # elementwise binary
    "add": _binary(gc.add, np.add),
    "subtract": _binary(gc.subtract, np.subtract),
    "multiply": _binary(gc.multiply, np.multiply),
    "divide": _binary(gc.divide, np.divide, 0.5, 2.0),
    "floordiv": _binary(gc.floordiv, np.floor_divide, 0.5, 4.0),
    "mod": _binary(gc.mod, np.mod, 0.5, 4.0),
    "pow": _binary(gc.pow, np.power, 0.5, 2.0),
    "maximum": _binary(gc.maximum, np.maximum),
    "minimum": _binary(gc.minimum, np.minimum),
    "equal": [Sample(gc.equal, [np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])], np.equal)],
    "not_equal": [Sample(gc.not_equal, [np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])], np.not_equal)],
    "less": _binary(gc.less, np.less),
    "less_equal": _binary(gc.less_equal, np.less_equal),
    "greater": _binary(gc.greater, np.greater),
    "greater_equal": _binary(gc.greater_equal, np.greater_equal),
    "logical_and": [Sample(gc.logical_and, [rand(3, 4) > 0, rand(3, 4) > 0], np.logical_and)],
    "logical_or": [Sample(gc.logical_or, [rand(3, 4) > 0, rand(1, 4) > 0], np.logical_or)],
    # other elementwise
    "where": [Sample(gc.where, [rand(3, 4) > 0, rand(3, 4), rand(1, 4)], np.where, wrt=(1, 2))],
    "clip_by_value": [Sample(gc.clip_by_value, [rand(3, 4), np.array(-1.0), np.array(1.0)],
                             lambda x, lo, hi: np.clip(x, lo, hi), wrt=(0,))],
    # reductions
    "reduce_sum": [Sample(lambda x: gc.reduce_sum(x, axis=1), [rand(3, 4)], lambda x: x.sum(1)),
                   Sample(lambda x: gc.reduce_sum(x, axis=(0, 2), keepdims=True), [rand(2, 3, 4)],
                          lambda x: x.sum((0, 2), keepdims=True))],
    "reduce_mean": [Sample(lambda x: gc.reduce_mean(x, axis=-1), [rand(3, 4)], lambda x: x.mean(-1)),
                    Sample(lambda x: gc.reduce_mean(x), [rand(2, 3, 4)], lambda x: x.mean())],
    "reduce_max": [Sample(lambda x: gc.reduce_max(x, axis=0), [rand(3, 4)], lambda x: x.max(0))],
    "reduce_min": [Sample(lambda x: gc.reduce_min(x, axis=(0, 1)), [rand(3, 4, 2)], lambda x: x.min((0, 1)))],
    "reduce_prod": [Sample(lambda x: gc.reduce_prod(x, axis=1), [rand(3, 4, low=0.5, high=1.5)], lambda x: x.prod(1))],
    "reduce_logsumexp": [Sample(lambda x: gc.reduce_logsumexp(x, axis=1), [rand(3, 4)],
                                lambda x: sps.logsumexp(x, axis=1))],
    "reduce_any": [Sample(lambda x: gc.reduce_any(x, axis=1), [rand(3, 4) > 1], lambda x: x.any(1))],
    "reduce_all": [Sample(lambda x: gc.reduce_all(x, axis=0), [rand(3, 4) > -1], lambda x: x.all(0))],
    "argmax": [Sample(lambda x: gc.argmax(x, axis=1), [rand(3, 4)], lambda x: x.argmax(1))],
    "argmin": [Sample(lambda x: gc.argmin(x, axis=0), [rand(3, 4)], lambda x: x.argmin(0))],
    # shape
    "reshape": [Sample(lambda x: gc.reshape(x, (4, -1)), [rand(2, 3, 2)], lambda x: x.reshape(4, -1))],
    "transpose": [Sample(lambda x: gc.transpose(x, (2, 0, 1)), [rand(2, 3, 4)], lambda x: x.transpose(2, 0, 1))],
    "expand_dims": [Sample(lambda x: gc.expand_dims(x, -1), [rand(3, 4)], lambda x: x[..., None])],
    "squeeze": [Sample(lambda x: gc.squeeze(x, 1), [rand(3, 1, 4)], lambda x: x[:, 0])],
    "broadcast_to": [Sample(lambda x: gc.broadcast_to(x, (2, 3, 4)), [rand(3, 1)],
                            lambda x: np.broadcast_to(x, (2, 3, 4)))],
    "concat": [Sample(lambda a, b: gc.concat([a, b], axis=1), [rand(2, 3), rand(2, 2)],
                      lambda a, b: np.concatenate([a, b], 1))],
    "split": [Sample(lambda x: gc.split(x, [1, -1], axis=1)[1], [rand(2, 5)], lambda x: x[:, 1:])],
    "tile": [Sample(lambda x: gc.tile(x, (2, 3)), [rand(2, 3)], lambda x: np.tile(x, (2, 3)))],
    "pad": [Sample(lambda x: gc.pad(x, ((1, 2), (0, 1))), [rand(2, 3)], lambda x: np.pad(x, ((1, 2), (0, 1)))),
            Sample(lambda x: gc.pad(x, ((2, 1), (1, 1)), mode="REFLECT"), [rand(3, 4)],
                   lambda x: np.pad(x, ((2, 1), (1, 1)), mode="reflect"))],
    "strided_slice": [Sample(lambda x: x[1:, ::-2, None, 1], [rand(3, 5, 2)], lambda x: x[1:, ::-2, None, 1])],
    "gather": [Sample(lambda x: gc.gather(x, np.array([[2, 0], [2, -1]]), axis=1), [rand(3, 4)],
                      lambda x: np.take(x, [[2, 0], [2, -1]], axis=1))],
    "one_hot": [Sample(lambda i: gc.one_hot(i, 4, dtype=gc.float64), [np.array([0, 3, 5, 1])],
                       lambda i: (i[:, None] == np.arange(4)).astype(np.float64))],
    # linalg
    "matmul": [Sample(gc.matmul, [rand(3, 4), rand(4, 2)], np.matmul),
               Sample(lambda a, b: gc.matmul(a, b, transpose_a=True, transpose_b=True), [rand(2, 4, 3), rand(2, 4)],
                      lambda a, b: np.swapaxes(a, -1, -2) @ b.T, note="batched, transposed")],
    # control
    "identity": [Sample(gc.identity, [rand(3)], lambda x: x)],
    "stop_gradient": [Sample(gc.stop_gradient, [rand(3)], lambda x: x)],
    "check_range": [Sample(lambda x: check_range(x, -1.0, 1.0, "x", low_open=True), [rand(3, 4, low=-0.9, high=0.9)],
                           lambda x: x)],
    # nn
    "relu": _unary(gc.nn.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": _unary(lambda x: gc.nn.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "elu": _unary(gc.nn.elu, lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0)))),
    "softplus": _unary(gc.nn.softplus, lambda x: np.log1p(np.exp(x))),
    "softsign": _unary(gc.nn.softsign, lambda x: x / (1 + np.abs(x))),
    "reduce_euclidean_norm": [
        Sample(lambda x: gc.reduce_euclidean_norm(x, axis=1), [rand(3, 4)], lambda x: np.linalg.norm(x, axis=1)),
        Sample(lambda x: gc.reduce_euclidean_norm(x, axis=(0, 2), keepdims=True), [rand(2, 3, 4)],
               lambda x: np.sqrt(np.sum(x * x, axis=(0, 2), keepdims=True)), note="keepdims"),
        Sample(lambda x: gc.reduce_euclidean_norm(x), [rand(5)], lambda x: np.linalg.norm(x), note="all axes"),
        Sample(lambda x: gc.reduce_euclidean_norm(x, axis=1), [np.zeros((2, 3))], lambda x: np.zeros(2),
               note="zero norm", grad=False)],
    "gelu": [Sample(gc.nn.gelu, [rand(3, 4)], _gelu_exact),
             Sample(lambda x: gc.nn.gelu(x, approximate=True), [rand(3, 4)], _gelu_tanh)],
    "softmax": [Sample(lambda x: gc.nn.softmax(x, axis=0), [rand(3, 4)], lambda x: sps.softmax(x, axis=0))],
    "log_softmax": [Sample(gc.nn.log_softmax, [rand(3, 4)], _log_softmax)],
    "softmax_cross_entropy_with_logits": [Sample(
        lambda lab, lg: gc.nn.softmax_cross_entropy_with_logits(labels=lab, logits=lg),
        [sps.softmax(rand(3, 4), axis=-1), rand(3, 4)],
        lambda lab, lg: -(lab * _log_softmax(lg)).sum(-1))],
    "sparse_softmax_cross_entropy_with_logits": [Sample(
        lambda lab, lg: gc.nn.sparse_softmax_cross_entropy_with_logits(labels=lab, logits=lg),
        [np.array([0, 3, 1]), rand(3, 4)],
        lambda lab, lg: -_log_softmax(lg)[np.arange(3), lab], wrt=(1,))],
    "conv2d": [Sample(lambda x, f: gc.nn.conv2d(x, f, strides=2, padding="SAME"), [rand(2, 5, 6, 3), rand(3, 2, 3, 4)],
                      lambda x, f: _conv_ref(x, f, 2, "SAME")),
               Sample(lambda x, f: gc.nn.conv2d(x, f, strides=1, padding="VALID"), [rand(1, 5, 4, 2), rand(2, 3, 2, 3)],
                      lambda x, f: _conv_ref(x, f, 1, "VALID"))],
    "max_pool2d": [Sample(lambda x: gc.nn.max_pool2d(x, 2, 2, "VALID"), [rand(2, 5, 4, 3)],
                          lambda x: _pool_ref(x, 2, 2, "max"))],
    "avg_pool2d": [Sample(lambda x: gc.nn.avg_pool2d(x, 3, 1, "VALID"), [rand(2, 5, 4, 3)],
                          lambda x: _pool_ref(x, 3, 1, "avg"))],
    "window_sum": [Sample(lambda x: gc.nn.lrn(x, depth_radius=1, bias=1.0, alpha=0.5, beta=0.75), [rand(2, 3, 5)],
                          lambda x: x / (1.0 + 0.5 * np.stack(
                              [np.sum(x[..., max(0, c - 1):c + 2] ** 2, -1) for c in range(5)], -1)) ** 0.75)],
}

def _internal(op_type, **attrs):
    """Build an op that has no public builder (gradient helpers) straight from the registry."""
    from graphc.ops._build import make1
    return lambda *xs: make1(op_type, xs, attrs)


_CONV = dict(strides=(2, 1), dilations=(1, 1), padding="SAME")
_POOL = dict(ksize=(2, 3), strides=(2, 1), padding="SAME")
_x_conv, _f_conv = rand(2, 5, 4, 3), rand(3, 2, 3, 2)
_g_conv = rand(2, 3, 4, 2)
_x_pool = rand(2, 5, 4, 3)
_g_pool = rand(2, 3, 4, 3)

SAMPLES.update({
    "sum_to": [Sample(_internal("sum_to"), [rand(2, 3, 4), rand(3, 1)],
                      lambda g, like: g.sum(0).sum(-1, keepdims=True), wrt=(0,))],
    "scatter_add": [Sample(lambda u, like: gc.ops.shape.scatter_add(u, np.array([[2, 0], [2, -1]]), like, axis=1),
                           [rand(3, 2, 2), rand(3, 4)],
                           lambda u, like: _scatter_ref(u, [[2, 0], [2, -1]], like.shape), wrt=(0,))],
    "strided_slice_grad": [Sample(_internal("strided_slice_grad", index=(("slice", 1, None, None), ("slice", None, None, -2))),
                                  [rand(2, 3), rand(3, 5)], lambda g, like: _slice_grad_ref(g, like.shape), wrt=(0,))],
    "pad_grad": [Sample(_internal("pad_grad", paddings=((1, 2), (0, 1)), mode="CONSTANT"), [rand(5, 4)],
                        lambda g: g[1:-2, :-1]),
                 Sample(_internal("pad_grad", paddings=((2, 1), (1, 1)), mode="SYMMETRIC"), [rand(6, 6)],
                        lambda g: _sym_pad_grad_ref(g, ((2, 1), (1, 1))))],
    "conv2d_backprop_input": [Sample(_internal("conv2d_backprop_input", **_CONV), [_g_conv, _f_conv, _x_conv],
                                     lambda g, f, x: _conv_vjp(x, f, g)[0], wrt=(0, 1))],
    "conv2d_backprop_filter": [Sample(_internal("conv2d_backprop_filter", **_CONV), [_x_conv, _g_conv, _f_conv],
                                      lambda x, g, f: _conv_vjp(x, f, g)[1], wrt=(0, 1))],
    "max_pool2d_grad": [Sample(_internal("max_pool2d_grad", **_POOL), [_x_pool, _g_pool],
                               lambda x, g: _maxpool_vjp(x, g), wrt=(1,))],
    "max_pool2d_grad_grad": [Sample(_internal("max_pool2d_grad_grad", **_POOL), [_x_pool, rand(2, 5, 4, 3)],
                                    lambda x, gg: _maxpool_select(x, gg), wrt=(1,))],
    "avg_pool2d_grad": [Sample(_internal("avg_pool2d_grad", **_POOL), [_g_pool, _x_pool],
                               lambda g, x: _avgpool_vjp(x, g), wrt=(0,))],
})


# --- fused batch normalization: each output of the two ops, NHWC, NCHW and (N, C) ----------------------
def _bn_stats(x, axis):
    others = tuple(k for k in range(x.ndim) if k != axis)
    shape = [1] * x.ndim
    shape[axis] = -1
    n = x.size // x.shape[axis]
    mean = x.mean(axis=others, dtype=np.float64)
    var = ((x - mean.reshape(shape)) ** 2).mean(axis=others, dtype=np.float64)
    return mean, var, shape, n


def _bn_ref(k, eps=1e-3, axis=-1):
    """Output k of training-mode batch norm: y, the mean, TF1's unbiased variance, 1/sqrt(var + eps)."""
    def ref(x, scale, offset):
        a = axis % x.ndim
        mean, var, shape, n = _bn_stats(x, a)
        inv = 1 / np.sqrt(var + eps)
        y = (x - mean.reshape(shape)) * (inv * scale).reshape(shape) + offset.reshape(shape)
        return (y, mean, var * n / (n - 1), inv)[k]
    return ref


def _bn_grad_ref(k, axis=-1):
    """Output k of the backward pass (dx, dscale, doffset) for a given mean and inverse std."""
    def ref(dy, x, scale, mean, inv):
        a = axis % x.ndim
        others = tuple(j for j in range(x.ndim) if j != a)
        shape = [1] * x.ndim
        shape[a] = -1
        n = x.size // x.shape[a]
        xhat = (x - mean.reshape(shape)) * inv.reshape(shape)
        doffset, dscale = dy.sum(others), (dy * xhat).sum(others)
        dx = (scale * inv / n).reshape(shape) * (n * dy - doffset.reshape(shape) - xhat * dscale.reshape(shape))
        return (dx, dscale, doffset)[k]
    return ref


def _bn(k, **kw):
    return lambda x, s, o: gc.nn.fused_batch_norm(x, s, o, **kw)[k]


def _bn_inv_std(x, s, o):
    from graphc.ops._build import make
    return make("fused_batch_norm", (x, s, o), {"epsilon": 1e-3, "axis": 3}).outputs[3]


def _bn_grad(k, axis):
    from graphc.ops._build import make
    return lambda *xs: make("fused_batch_norm_grad", xs, {"axis": axis}).outputs[k]


def _f32(*arrays):
    return [a.astype(np.float32) for a in arrays]


_x_bn, _s_bn, _o_bn = rand(2, 3, 2, 3), rand(3, low=0.5), rand(3)
_x_bn2, _s_bn2, _o_bn2 = rand(5, 3), rand(3, low=0.5), rand(3)
_g_bn = rand(2, 3, 2, 3)
SAMPLES.update({
    "fused_batch_norm": [
        Sample(_bn(0), [_x_bn, _s_bn, _o_bn], _bn_ref(0), note="NHWC, y"),
        Sample(_bn(1), [_x_bn, _s_bn, _o_bn], _bn_ref(1), note="NHWC, batch mean"),
        Sample(_bn(2), [_x_bn, _s_bn, _o_bn], _bn_ref(2), note="NHWC, unbiased batch variance"),
        Sample(_bn_inv_std, [_x_bn, _s_bn, _o_bn], _bn_ref(3), note="NHWC, saved inverse std"),
        Sample(_bn(0, data_format="NCHW"), [_x_bn, rand(3, low=0.5), rand(3)], _bn_ref(0, axis=1), note="NCHW, y"),
        Sample(_bn(2, data_format="NCHW"), [_x_bn, rand(3, low=0.5), rand(3)], _bn_ref(2, axis=1),
               note="NCHW, variance"),
        Sample(_bn(0, epsilon=0.1), [_x_bn2, _s_bn2, _o_bn2], _bn_ref(0, eps=0.1), note="(N, C), y"),
        Sample(_bn(0), _f32(_x_bn, _s_bn, _o_bn), _bn_ref(0), note="float32, y"),
        Sample(_bn(2), _f32(_x_bn2, _s_bn2, _o_bn2), _bn_ref(2), note="float32, (N, C), variance"),
    ],
    "fused_batch_norm_grad": [
        Sample(_bn_grad(k, 3), [_g_bn, _x_bn, _s_bn, rand(3), rand(3, low=0.5, high=1.5)], _bn_grad_ref(k),
               note=("dx", "dscale", "doffset")[k]) for k in range(3)
    ] + [
        Sample(_bn_grad(0, 1), [_g_bn, _x_bn, rand(3), rand(3), rand(3, low=0.5, high=1.5)], _bn_grad_ref(0, axis=1),
               note="NCHW, dx"),
        Sample(_bn_grad(0, 1), _f32(rand(5, 3), _x_bn2, _s_bn2, rand(3), rand(3, low=0.5, high=1.5)),
               _bn_grad_ref(0, axis=1), note="float32, (N, C), dx"),
    ],
})


def _scatter_ref(u, idx, shape):
    out = np.zeros(shape)
    idx = np.asarray(idx) % shape[1]
    for a in range(shape[0]):
        for i in range(idx.shape[0]):
            for j in range(idx.shape[1]):
                out[a, idx[i, j]] += u[a, i, j]
    return out


def _slice_grad_ref(g, shape):
    out = np.zeros(shape)
    out[1:, ::-2] = g
    return out


def _sym_pad_grad_ref(g, pads):
    """The adjoint of np.pad(mode='symmetric') by brute force: d<pad(x), g>/dx."""
    n = tuple(d - b - a for d, (b, a) in zip(g.shape, pads))
    out = np.zeros(n)
    for idx in np.ndindex(n):
        e = np.zeros(n)
        e[idx] = 1
        out[idx] = (np.pad(e, pads, mode="symmetric") * g).sum()
    return out


def _brute_vjp(f, x, g):
    """d<f(x), g>/dx for a linear f, one basis vector at a time."""
    out = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        e = np.zeros(x.shape)
        e[idx] = 1
        out[idx] = (f(e) * g).sum()
    return out


def _conv_same_stride21(x, f):
    n, h, w, c = x.shape
    kh, kw = f.shape[:2]
    oh, ow = -(-h // 2), w
    ph, pw = max((oh - 1) * 2 + kh - h, 0), max(ow - 1 + kw - w, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    out = np.zeros((n, oh, ow, f.shape[3]))
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = np.tensordot(xp[:, 2 * i:2 * i + kh, j:j + kw], f, axes=([1, 2, 3], [0, 1, 2]))
    return out


def _conv_vjp(x, f, g):
    return (_brute_vjp(lambda e: _conv_same_stride21(e, f), x, g),
            _brute_vjp(lambda e: _conv_same_stride21(x, e), f, g))


def _pool_windows(x, fill):
    n, h, w, c = x.shape
    oh, ow = -(-h // 2), w
    ph, pw = max((oh - 1) * 2 + 2 - h, 0), max(ow - 1 + 3 - w, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), constant_values=fill)
    return [[(xp[:, 2 * i:2 * i + 2, j:j + 3], (2 * i - ph // 2, j - pw // 2)) for j in range(ow)]
            for i in range(oh)]


def _maxpool_vjp(x, g):
    out = np.zeros(x.shape)
    for i, row in enumerate(_pool_windows(x, -np.inf)):
        for j, (win, (r0, c0)) in enumerate(row):
            for b in range(x.shape[0]):
                for ch in range(x.shape[3]):
                    k = np.argmax(win[b, :, :, ch])
                    out[b, r0 + k // 3, c0 + k % 3, ch] += g[b, i, j, ch]
    return out


def _maxpool_select(x, gg):
    windows = _pool_windows(x, -np.inf)
    out = np.zeros((x.shape[0], len(windows), len(windows[0]), x.shape[3]))
    for i, row in enumerate(windows):
        for j, (win, (r0, c0)) in enumerate(row):
            for b in range(x.shape[0]):
                for ch in range(x.shape[3]):
                    k = np.argmax(win[b, :, :, ch])
                    out[b, i, j, ch] = gg[b, r0 + k // 3, c0 + k % 3, ch]
    return out


def _avgpool_vjp(x, g):
    def pool(e):
        windows = _pool_windows(e, np.nan)
        out = np.zeros((e.shape[0], len(windows), len(windows[0]), e.shape[3]))
        for i, row in enumerate(windows):
            for j, (win, _) in enumerate(row):
                out[:, i, j] = np.nanmean(win, axis=(1, 2))
        return out
    return _brute_vjp(pool, x, g)


# --- issue 15: scans, reversal, segment sums ---------------------------------------------------------
def _cum_ref(fn, axis, exclusive=False, reverse=False, identity=0):
    def ref(x):
        y = np.flip(x, axis) if reverse else x
        out = fn(y, axis=axis)
        if exclusive:
            out = np.concatenate([np.full_like(np.take(out, [0], axis=axis), identity),
                                  np.take(out, np.arange(out.shape[axis] - 1), axis=axis)], axis=axis)
        return np.flip(out, axis) if reverse else out
    return ref


def _segment_ref(data, ids, n):
    out = np.zeros((n,) + data.shape[np.ndim(ids):], dtype=data.dtype)
    for idx in np.ndindex(np.shape(ids)):
        if ids[idx] >= 0:
            out[ids[idx]] += data[idx]
    return out


_SEG_IDS = np.array([[1, -1], [0, 1]])

SAMPLES.update({
    "cumsum": [Sample(lambda x: gc.cumsum(x, axis=1), [rand(3, 4)], _cum_ref(np.cumsum, 1)),
               Sample(lambda x: gc.cumsum(x, exclusive=True, reverse=True), [rand(4, 2)],
                      _cum_ref(np.cumsum, 0, True, True), note="exclusive, reverse"),
               Sample(lambda x: gc.cumsum(x, axis=-1, reverse=True), [np.arange(6, dtype=np.int32)],
                      lambda x: np.cumsum(x[::-1])[::-1], note="int32", grad=False)],
    "cumprod": [Sample(lambda x: gc.cumprod(x, axis=1), [rand(2, 4, low=0.5, high=1.5)], _cum_ref(np.cumprod, 1)),
                Sample(lambda x: gc.cumprod(x, axis=0, exclusive=True, reverse=True), [rand(3, 2, low=-1.5, high=-0.5)],
                       _cum_ref(np.cumprod, 0, True, True, identity=1), note="exclusive, reverse, negatives")],
    "reverse": [Sample(lambda x: gc.reverse(x, [0, 2]), [rand(2, 3, 2)], lambda x: x[::-1, :, ::-1]),
                Sample(lambda x: gc.reverse_v2(x, -1), [rand(5)], lambda x: x[::-1], note="reverse_v2, an int")],
    "unsorted_segment_sum": [
        Sample(lambda d: gc.unsorted_segment_sum(d, _SEG_IDS, 3), [rand(2, 2, 3)],
               lambda d: _segment_ref(d, _SEG_IDS, 3), note="2-D ids, a negative id dropped"),
        Sample(lambda d, i: gc.unsorted_segment_sum(d, i, 4), [rand(5), np.array([3, 0, 3, 1, 0], dtype=np.int32)],
               lambda d, i: _segment_ref(d, i, 4), wrt=(0,), note="fed ids"),
        Sample(lambda d: gc.segment_mean(d, [0, 0, 2]), [rand(3, 2)],
               lambda d: np.stack([d[:2].mean(0), np.zeros(2), d[2]]), note="segment_mean"),
        Sample(lambda d: gc.segment_sum(d, np.array([0, 1, 1, 1])), [rand(4)],
               lambda d: np.array([d[0], d[1:].sum()]), note="segment_sum")],
})



# --- issue 15: sorting ----------------------------------------------------------------------------------
def _stable_desc(x, axis):
    n = x.shape[axis]
    return np.flip(n - 1 - np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)


_TIES = np.array([[3.0, 1.0, 3.0, np.nan, -2.0], [0.5, 0.5, 0.5, 2.0, -1.0]])
_take_idx = np.array([[2, 0, 2], [1, 1, 0]])

SAMPLES.update({
    "argsort": [Sample(lambda x: gc.argsort(x), [_TIES], lambda x: np.argsort(x, -1, kind="stable"),
                       note="ties stay in order, NaN last", grad=False),
                Sample(lambda x: gc.argsort(x, axis=0, direction="DESCENDING"), [np.array([[2, 5], [7, 5], [2, 1]],
                                                                                        dtype=np.int32)],
                       lambda x: _stable_desc(x, 0), note="int32, descending, ties", grad=False)],
    "take_along_axis": [Sample(lambda x: gc.sort(x, axis=0), [rand(3, 2)], lambda x: np.sort(x, 0), note="gc.sort"),
                        Sample(lambda x: gc.sort(x, direction="DESCENDING"), [rand(2, 4)], lambda x: -np.sort(-x, -1),
                               note="gc.sort descending"),
                        Sample(lambda x: gc.ops.sorting.take_along_axis(x, _take_idx, 1), [rand(2, 4)],
                               lambda x: np.take_along_axis(x, _take_idx, 1), note="repeated indices")],
    "scatter_along_axis": [Sample(lambda u, like: gc.ops.sorting.scatter_along_axis(u, _take_idx, like, 1),
                                  [rand(2, 3), rand(2, 4)],
                                  lambda u, like: _brute_vjp(lambda e: np.take_along_axis(e, _take_idx, 1), like, u),
                                  wrt=(0,))],
    "top_k": [Sample(lambda x: gc.nn.top_k(x, k=2)[0], [rand(3, 4)], lambda x: -np.sort(-x, -1)[:, :2]),
              Sample(lambda x: gc.nn.top_k(x, k=3)[1], [_TIES], lambda x: _stable_desc(x, -1)[:, :3],
                     note="indices, ties and NaN", grad=False)],
    "in_top_k": [Sample(lambda p, t: gc.nn.in_top_k(p, t, 2),
                        [np.array([[0.1, 0.8, 0.8, 0.3], [0.5, 0.2, 0.1, 0.0], [1.0, np.inf, 0.0, 0.0],
                                   [0.3, 0.2, 0.1, 0.0]], dtype=np.float32), np.array([2, 2, 0, 4], dtype=np.int32)],
                        lambda p, t: np.array([True, False, False, False]), grad=False)],
})



# --- issue 15 batch 2: depthwise convolution (each channel by its own filters, as C convs) ---------------
def _depthwise_ref(conv):
    """Depthwise from a dense conv ``conv(x, f)``: channel c with filter[:, :, c:c+1, :]."""
    def ref(x, f):
        return np.concatenate([conv(x[..., c:c + 1], f[:, :, c:c + 1, :]) for c in range(x.shape[3])], axis=-1)
    return ref


def _dilate(f, rate):
    kh, kw = f.shape[:2]
    out = np.zeros(((kh - 1) * rate + 1, (kw - 1) * rate + 1) + f.shape[2:])
    out[::rate, ::rate] = f
    return out


_dw21 = _depthwise_ref(_conv_same_stride21)
_x_dw, _f_dw, _g_dw = rand(2, 5, 4, 3), rand(3, 2, 3, 2), rand(2, 3, 4, 6)
_DW = dict(strides=(2, 1), dilations=(1, 1), padding="SAME")

SAMPLES.update({
    "depthwise_conv2d_native": [
        Sample(lambda x, f: gc.nn.depthwise_conv2d(x, f, [1, 2, 1, 1], "SAME"), [_x_dw, _f_dw], _dw21,
               note="strides (2, 1), SAME"),
        Sample(lambda x, f: gc.nn.depthwise_conv2d(x, f, [1, 1, 1, 1], "VALID", rate=[2, 2]),
               [rand(1, 5, 6, 2), rand(2, 2, 2, 1)],
               lambda x, f: _depthwise_ref(lambda a, b: _conv_ref(a, _dilate(b, 2), 1, "VALID"))(x, f),
               note="rate 2, VALID, multiplier 1")],
    "depthwise_conv2d_native_backprop_input": [
        Sample(_internal("depthwise_conv2d_native_backprop_input", **_DW), [_g_dw, _f_dw, _x_dw],
               lambda g, f, x: _brute_vjp(lambda e: _dw21(e, f), x, g), wrt=(0, 1))],
    "where_indices": [
        Sample(lambda c: gc.where(c), [np.array([[True, False, True], [False, False, True]])],
               lambda c: np.argwhere(c), grad=False, note="one-argument where: [count, rank] int64"),
        Sample(lambda x: gc.where(x), [np.array([0.0, 1.5, 0.0, -2.0])], lambda x: np.argwhere(x), grad=False,
               note="numbers: non-zero"),
        Sample(lambda x, m: gc.boolean_mask(x, m), [rand(3, 2, 2), np.array([[True, False], [True, True], [False, False]])],
               lambda x, m: x[m], wrt=(0,), note="boolean_mask, a 2-D mask (its gradient: through the gather)"),
        Sample(lambda x: gc.boolean_mask(x, np.array([False, True, True]), axis=1), [rand(2, 3)],
               lambda x: x[:, [1, 2]], note="boolean_mask, axis=1")],
    "depthwise_conv2d_native_backprop_filter": [
        Sample(_internal("depthwise_conv2d_native_backprop_filter", **_DW), [_x_dw, _g_dw, _f_dw],
               lambda x, g, f: _brute_vjp(lambda e: _dw21(x, e), f, g), wrt=(0, 1))],
})

# Ops with no standalone sample, and where they are tested instead.
EXEMPT = {
    "collective_allreduce": "collectives run between MPI ranks; tests/distribute/",
    "collective_allgather": "collectives run between MPI ranks; tests/distribute/",
    "collective_broadcast": "collectives run between MPI ranks; tests/distribute/",
    "cond": "control flow, with bodies; tests/ops/test_control_flow.py",
    "while_loop": "control flow, with bodies; tests/ops/test_control_flow.py",
    "placeholder": "fed values; tests/runtime/test_session.py",
    "no_op": "structural; tests/test_graph.py",
    "variable": "structural; tests/test_state.py",
    "read_variable": "session state; tests/test_state.py",
    "assign": "session state; tests/test_state.py",
    "assign_add": "session state; tests/test_state.py",
    "assign_sub": "session state; tests/test_state.py",
    "snapshot": "inserted by the state pass, never built by users; tests/test_state.py",
    "random_uniform": "random streams; tests/ops/test_random.py",
    "random_standard_normal": "random streams; tests/ops/test_random.py",
    "truncated_standard_normal": "random streams; tests/ops/test_random.py",
}

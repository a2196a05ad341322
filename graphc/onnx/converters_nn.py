"""Converters for ONNX's neural-network ops: convolution, pooling, normalization.

ONNX lays images out NCHW; graphc's conv and pool ops are NHWC. Each converter transposes in
and out, and the optimizer cancels the transposes that meet between layers. 1-D ops run as
2-D ones over a height of 1. Padding that TensorFlow's SAME or VALID cannot express (ONNX's
explicit ``pads``, ``SAME_LOWER``, ``ceil_mode``) becomes an explicit ``pad`` before a VALID op;
an average pool then divides by a constant count of the cells each window really covers.
"""
from __future__ import annotations

import numpy as np

import graphc as gc

from .. import dtypes as dt
from .converters import _axis, _const_like
from .importer import converts


def _spatial(node, x, what="input"):
    rank = node.rank(x)
    if rank not in (3, 4):
        node.fail(f"graphc imports 1-D and 2-D {node.op_type} (an {what} of rank 3 or 4), got rank {rank} "
                  f"('{x.name}' {x.shape})")
    return rank - 2


def _to_nhwc(x, nd):
    if nd == 1:   # (N, C, L) -> (N, 1, L, C)
        return gc.expand_dims(gc.transpose(x, [0, 2, 1]), 1)
    return gc.transpose(x, [0, 2, 3, 1])


def _from_nhwc(y, nd):
    if nd == 1:
        return gc.transpose(gc.squeeze(y, [1]), [0, 2, 1])
    return gc.transpose(y, [0, 3, 1, 2])


def _per_axis(node, name, nd, default):
    v = node.attr(name)
    if v is None:
        return [default] * nd
    if len(v) != nd:
        node.fail(f"{name} {v} must have one entry per spatial axis ({nd})")
    return list(v)


def _pads(node, nd, sizes, kernel, strides, dilations):
    """(before, after) per spatial axis from auto_pad / pads; sizes may hold None."""
    auto = node.attr("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = node.attr("pads") or [0] * (2 * nd)
        if len(pads) != 2 * nd:
            node.fail(f"pads {pads} must have two entries per spatial axis ({2 * nd})")
        return [(pads[i], pads[i + nd]) for i in range(nd)]
    if auto == "VALID":
        return [(0, 0)] * nd
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        node.fail(f"auto_pad {auto!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    out = []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        if size is None:
            node.fail(f"auto_pad {auto} needs the spatial size at import time")
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        out.append((small, big) if auto == "SAME_UPPER" else (big, small))
    return out


def _tf_padding(pads, sizes, kernel, strides, dilations):
    """'VALID' or 'SAME' where TensorFlow's padding equals ``pads``, else None."""
    if all(p == (0, 0) for p in pads):
        return "VALID"
    for p, size, k, s, d in zip(pads, sizes, kernel, strides, dilations):
        if size is None:
            return None
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        if p != (total // 2, total - total // 2):
            return None
    return "SAME"


def _pad_nhwc(x, pads, value):
    paddings = [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)]
    if len(pads) == 1:
        paddings = [(0, 0), (0, 0), tuple(pads[0]), (0, 0)]
    return gc.pad(x, paddings, constant_values=value)


def _pair2(values, nd, fill):
    return [fill] + list(values) if nd == 1 else list(values)


@converts("Conv")
def _conv(node):
    x, w = node.x(0), node.x(1)
    nd = _spatial(node, x)
    if w.shape.known_rank and None not in tuple(w.shape)[2:]:
        kernel = [int(d) for d in tuple(w.shape)[2:]]
    else:
        kernel = node.attr("kernel_shape")
        if kernel is None:
            node.fail(f"needs the kernel size: filter '{w.name}' has shape {w.shape} and no kernel_shape")
    strides = _per_axis(node, "strides", nd, 1)
    dilations = _per_axis(node, "dilations", nd, 1)
    group = node.attr("group", 1)
    sizes = list(tuple(x.shape)[2:])
    pads = _pads(node, nd, sizes, kernel, strides, dilations)
    xh = _to_nhwc(x, nd)
    padding = _tf_padding(pads, sizes, kernel, strides, dilations)
    if padding is None:
        xh = _pad_nhwc(xh, pads, 0)
        padding = "VALID"
    # graphc (as TensorFlow) convolves with strides > 1 or dilations > 1, not both: the strided
    # result is then every s-th row of the dilated stride-1 convolution.
    stride_after = max(strides) > 1 and max(dilations) > 1
    if stride_after and padding == "SAME":
        xh = _pad_nhwc(xh, pads, 0)
        padding = "VALID"
    conv_strides = [1] * nd if stride_after else strides
    wt = w if nd == 2 else gc.expand_dims(w, 2)        # (M, C/g, 1, k) for 1-D
    m, cg = w.shape[0], w.shape[1]
    c = x.shape[1]
    s2, d2 = _pair2(conv_strides, nd, 1), _pair2(dilations, nd, 1)
    if group == 1:
        y = gc.nn.conv2d(xh, gc.transpose(wt, [2, 3, 1, 0]), strides=s2, padding=padding, dilations=d2)
    elif c is not None and group == c and cg == 1 and m is not None:
        mult = m // group
        f = gc.transpose(gc.reshape(wt, [group, mult] + [int(d) for d in wt.shape[2:]]), [2, 3, 0, 1])
        y = gc.nn.depthwise_conv2d_native(xh, f, strides=[1] + s2 + [1], padding=padding,
                                          dilations=d2)
    else:
        if m is None or c is None:
            node.fail(f"a grouped convolution needs the channel counts at import time (x {x.shape}, w {w.shape})")
        xs = gc.split(xh, group, axis=3)
        ws = gc.split(wt, group, axis=0)
        y = gc.concat([gc.nn.conv2d(xi, gc.transpose(wi, [2, 3, 1, 0]), strides=s2, padding=padding,
                                    dilations=d2) for xi, wi in zip(xs, ws)], axis=3)
    if stride_after:
        y = y[(slice(None),) + tuple(slice(None, None, s) for s in _pair2(strides, nd, 1)) + (slice(None),)]
    if node.has(2):
        y = y + node.x(2)
    return [_from_nhwc(y, nd)]


@converts("ConvTranspose")
def _conv_transpose(node):
    x, w = node.x(0), node.x(1)
    nd = _spatial(node, x)
    n, c = x.shape[0], x.shape[1]
    sizes = list(tuple(x.shape)[2:])
    if None in sizes:
        node.fail(f"needs the input's spatial size at import time, got {x.shape}")
    kernel = [int(d) for d in node.static_shape(w, "its filter")[2:]]
    strides = _per_axis(node, "strides", nd, 1)
    dilations = _per_axis(node, "dilations", nd, 1)
    out_pad = _per_axis(node, "output_padding", nd, 0)
    group = node.attr("group", 1)
    full = [s * (i - 1) + (k - 1) * d + 1 + op for i, k, s, d, op in zip(sizes, kernel, strides, dilations, out_pad)]
    auto = node.attr("auto_pad", "NOTSET")
    out_shape = node.attr("output_shape")
    if out_shape is not None:
        out_shape = list(out_shape)[-nd:]
        totals = [f - o for f, o in zip(full, out_shape)]
        pads = [(t // 2, t - t // 2) if auto != "SAME_LOWER" else (t - t // 2, t // 2) for t in totals]
        if auto in ("NOTSET", "") and node.attr("pads"):
            p = node.attr("pads")
            pads = [(p[i], p[i + nd]) for i in range(nd)]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        totals = [f - i * s for f, i, s in zip(full, sizes, strides)]
        pads = [(t - t // 2, t // 2) if auto == "SAME_UPPER" else (t // 2, t - t // 2) for t in totals]
        pads = [(b, a) for a, b in pads] if auto == "SAME_UPPER" else pads
    elif auto == "VALID":
        pads = [(0, 0)] * nd
    else:
        p = node.attr("pads") or [0] * (2 * nd)
        pads = [(p[i], p[i + nd]) for i in range(nd)]
    if max(strides) > 1 and max(dilations) > 1:
        node.fail("strides > 1 together with dilations > 1 is not imported for ConvTranspose")
    xh = _to_nhwc(x, nd)
    wt = w if nd == 2 else gc.expand_dims(w, 2)          # (C, M/g, kh, kw)
    s2, d2 = _pair2(strides, nd, 1), _pair2(dilations, nd, 1)
    full2 = _pair2(full, nd, 1)
    batch = n if n is not None else gc.shape(x)[0]
    if c is None or w.shape[1] is None:
        node.fail("needs the channel counts at import time")
    mg = int(w.shape[1])

    def one(xi, wi):
        f = gc.transpose(wi, [2, 3, 1, 0])               # (kh, kw, M/g, C/g)
        return gc.nn.conv2d_transpose(xi, f, output_shape=[batch] + full2 + [mg], strides=[1] + s2 + [1],
                                      padding="VALID", dilations=[1] + d2 + [1])
    if group == 1:
        y = one(xh, wt)
    else:
        y = gc.concat([one(xi, wi) for xi, wi in zip(gc.split(xh, group, axis=3), gc.split(wt, group, axis=0))],
                      axis=3)
    key = [slice(None)]
    pads2 = [(0, 0)] + pads if nd == 1 else pads
    for (b, a), f in zip(pads2, full2):
        key.append(slice(b, f - a))
    key.append(slice(None))
    if any(p != (0, 0) for p in pads2):
        if any(b < 0 or a < 0 for b, a in pads2):
            node.fail(f"negative pads {pads} are not imported")
        y = y[tuple(key)]
    if node.has(2):
        y = y + node.x(2)
    return [_from_nhwc(y, nd)]


def _pool_geometry(node, x, nd):
    kernel = node.attr("kernel_shape")
    if kernel is None or len(kernel) != nd:
        node.fail(f"kernel_shape {kernel} must have one entry per spatial axis ({nd})")
    strides = _per_axis(node, "strides", nd, 1)
    dilations = _per_axis(node, "dilations", nd, 1)
    sizes = list(tuple(x.shape)[2:])
    pads = _pads(node, nd, sizes, kernel, strides, dilations)
    if node.attr("ceil_mode", 0):
        extra = []
        for size, k, s, d, (b, a) in zip(sizes, kernel, strides, dilations, pads):
            if size is None:
                node.fail("ceil_mode needs the spatial size at import time")
            eff = (k - 1) * d + 1
            out = -(-(size + b + a - eff) // s) + 1
            if (out - 1) * s >= size + b:
                out -= 1
            extra.append(max((out - 1) * s + eff - (size + b + a), 0))
    else:
        extra = [0] * nd
    return kernel, strides, dilations, sizes, pads, extra


@converts("MaxPool")
def _max_pool(node):
    x = node.x(0)
    nd = _spatial(node, x)
    if node.n_outputs > 1 and node.proto.output[1]:
        node.fail("MaxPool's Indices output is not imported")
    kernel, strides, dilations, sizes, pads, extra = _pool_geometry(node, x, nd)
    if max(dilations) > 1:
        node.fail("dilated max pooling is not imported")
    xh = _to_nhwc(x, nd)
    total = [(b, a + e) for (b, a), e in zip(pads, extra)]
    padding = _tf_padding(total, sizes, kernel, strides, dilations)
    if padding is None:
        low = -np.inf if x.dtype.is_floating else np.iinfo(x.dtype.np).min
        xh = _pad_nhwc(xh, total, low)
        padding = "VALID"
    y = gc.nn.max_pool2d(xh, _pair2(kernel, nd, 1), _pair2(strides, nd, 1), padding)
    return [_from_nhwc(y, nd)]


@converts("AveragePool")
def _avg_pool(node):
    x = node.x(0)
    nd = _spatial(node, x)
    kernel, strides, dilations, sizes, pads, extra = _pool_geometry(node, x, nd)
    if max(dilations) > 1:
        node.fail("dilated average pooling is not imported")
    xh = _to_nhwc(x, nd)
    total = [(b, a + e) for (b, a), e in zip(pads, extra)]
    k2, s2 = _pair2(kernel, nd, 1), _pair2(strides, nd, 1)
    include = node.attr("count_include_pad", 0)
    if all(p == (0, 0) for p in total):
        return [_from_nhwc(gc.nn.avg_pool2d(xh, k2, s2, "VALID"), nd)]
    if not include and _tf_padding(total, sizes, kernel, strides, dilations) == "SAME":
        return [_from_nhwc(gc.nn.avg_pool2d(xh, k2, s2, "SAME"), nd)]
    if None in sizes:
        node.fail("average pooling with explicit pads needs the spatial size at import time")
    # The count of each window: the cells inside the input, plus (count_include_pad) the
    # explicit pads, never the cells that ceil_mode adds.
    counted = np.zeros([s + b + a + e for s, (b, a), e in zip(sizes, pads, extra)], np.float64)
    inside = tuple(slice(0 if include else b, (b + s + a) if include else b + s)
                   for s, (b, a) in zip(sizes, pads))
    counted[inside] = 1.0
    counts = _window_sums(counted, kernel, strides)
    summed = gc.nn.avg_pool2d(_pad_nhwc(xh, total, 0), k2, s2, "VALID") * _const_like(xh, float(np.prod(kernel)))
    shape = [1] + ([1] if nd == 1 else []) + list(counts.shape) + [1]
    y = summed / gc.constant(counts.reshape(shape).astype(x.dtype.np))
    return [_from_nhwc(y, nd)]


def _window_sums(a: np.ndarray, kernel, strides) -> np.ndarray:
    out_shape = [(n - k) // s + 1 for n, k, s in zip(a.shape, kernel, strides)]
    out = np.zeros(out_shape)
    for idx in np.ndindex(*out_shape):
        window = tuple(slice(i * s, i * s + k) for i, s, k in zip(idx, strides, kernel))
        out[idx] = a[window].sum()
    return out


@converts("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(node):
    x = node.x(0)
    axes = list(range(2, node.rank(x)))
    fn = gc.reduce_mean if node.op_type == "GlobalAveragePool" else gc.reduce_max
    return [fn(x, axes, keepdims=True)]


def _channel_shape(node, x):
    return [-1] + [1] * (node.rank(x) - 2)


@converts("BatchNormalization")
def _batch_norm(node):
    if node.attr("training_mode", 0):
        node.fail("training-mode BatchNormalization is not imported (graphc imports inference graphs)")
    x = node.x(0)
    shape = _channel_shape(node, x)
    scale, bias, mean, var = (gc.reshape(node.x(i), shape) for i in range(1, 5))
    eps = _const_like(x, node.attr("epsilon", 1e-5))
    return [(x - mean) * (scale * gc.rsqrt(var + eps)) + bias]


@converts("InstanceNormalization")
def _instance_norm(node):
    x = node.x(0)
    axes = list(range(2, node.rank(x)))
    shape = _channel_shape(node, x)
    mean = gc.reduce_mean(x, axes, keepdims=True)
    var = gc.reduce_mean(gc.square(x - mean), axes, keepdims=True)
    eps = _const_like(x, node.attr("epsilon", 1e-5))
    return [(x - mean) * gc.rsqrt(var + eps) * gc.reshape(node.x(1), shape) + gc.reshape(node.x(2), shape)]


@converts("LayerNormalization")
def _layer_norm(node):
    x = node.x(0)
    rank = node.rank(x)
    axis = _axis(node, node.attr("axis", -1), rank)
    axes = list(range(axis, rank))
    xs = x if x.dtype == dt.float64 else gc.cast(x, dt.float32)
    mean = gc.reduce_mean(xs, axes, keepdims=True)
    d = xs - mean
    var = gc.reduce_mean(gc.square(d), axes, keepdims=True)
    inv = gc.rsqrt(var + _const_like(var, node.attr("epsilon", 1e-5)))
    y = gc.cast(d * inv, x.dtype) * node.x(1)
    if node.has(2):
        y = y + node.x(2)
    return [y, mean, inv]


@converts("LRN")
def _lrn(node):
    x = node.x(0)
    size = node.attr("size")
    alpha, beta, bias = node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias", 1.0)
    rank = node.rank(x)
    c = x.shape[1]
    if c is None:
        node.fail("needs the channel count at import time")
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    sq = gc.square(x)
    padded = gc.pad(sq, [(0, 0), (lo, hi)] + [(0, 0)] * (rank - 2))
    total = padded[:, 0:c]
    for j in range(1, size):
        total = total + padded[:, j:j + c]
    return [x / gc.pow(_const_like(x, bias) + _const_like(x, alpha / size) * total, _const_like(x, beta))]


@converts("LpNormalization")
def _lp_norm(node):
    x = node.x(0)
    axis = _axis(node, node.attr("axis", -1), node.rank(x))
    p = node.attr("p", 2)
    if p == 1:
        norm = gc.reduce_sum(gc.abs(x), [axis], keepdims=True)
    elif p == 2:
        norm = gc.sqrt(gc.reduce_sum(gc.square(x), [axis], keepdims=True))
    else:
        node.fail(f"p must be 1 or 2, got {p}")
    return [gc.where(gc.equal(norm, gc.zeros_like(norm)), gc.zeros_like(x), x / norm)]


@converts("MeanVarianceNormalization")
def _mvn(node):
    x = node.x(0)
    axes = node.attr("axes", [0, 2, 3])
    mean = gc.reduce_mean(x, axes, keepdims=True)
    var = gc.reduce_mean(gc.square(x), axes, keepdims=True) - gc.square(mean)
    return [(x - mean) / (gc.sqrt(var) + _const_like(x, 1e-9))]

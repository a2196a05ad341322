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
from ..ops.shape import scatter_add
from ..ops.sorting import take_along_axis
from .converters import _axis, _const_like
from .importer import converts


def _spatial(node, x, what="input", allow_3d=False):
    rank = node.rank(x)
    if rank not in ((3, 4, 5) if allow_3d else (3, 4)):
        dims = "1-D, 2-D and 3-D" if allow_3d else "1-D and 2-D"
        node.fail(f"graphc imports {dims} {node.op_type} (an {what} of rank {rank - 2 + 2}), got rank {rank} "
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
            node.needs_shape(f"auto_pad {auto} needs the spatial size at import time")
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


def _conv2d_nhwc(node, xh, w4, strides, dilations, padding, group, channels):
    """An NHWC 2-D convolution of ``xh`` with ONNX filter ``w4`` (M, C/group, kh, kw)."""
    # graphc (as TensorFlow) convolves with strides > 1 or dilations > 1, not both: the strided
    # result is then every s-th row of the dilated stride-1 convolution (padding is VALID here).
    stride_after = max(strides) > 1 and max(dilations) > 1
    conv_strides = [1, 1] if stride_after else list(strides)
    m, cg = w4.shape[0], w4.shape[1]
    if group == 1:
        y = gc.nn.conv2d(xh, gc.transpose(w4, [2, 3, 1, 0]), strides=conv_strides, padding=padding,
                         dilations=list(dilations))
    elif channels is not None and group == channels and cg == 1 and m is not None:
        mult = m // group
        f = gc.transpose(gc.reshape(w4, [group, mult] + [int(d) for d in w4.shape[2:]]), [2, 3, 0, 1])
        y = gc.nn.depthwise_conv2d_native(xh, f, strides=[1] + conv_strides + [1], padding=padding,
                                          dilations=list(dilations))
    else:
        if m is None or channels is None:
            node.needs_shape(f"a grouped convolution needs the channel counts at import time (filter {w4.shape})")
        y = gc.concat([gc.nn.conv2d(xi, gc.transpose(wi, [2, 3, 1, 0]), strides=conv_strides, padding=padding,
                                    dilations=list(dilations))
                       for xi, wi in zip(gc.split(xh, group, axis=3), gc.split(w4, group, axis=0))], axis=3)
    if stride_after:
        y = y[:, ::strides[0], ::strides[1], :]
    return y


@converts("Conv")
def _conv(node):
    x, w = node.x(0), node.x(1)
    nd = _spatial(node, x, allow_3d=True)
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
    c = x.shape[1]
    if nd == 3:
        return [_conv3d(node, x, w, kernel, strides, dilations, pads, group)]
    xh = _to_nhwc(x, nd)
    padding = _tf_padding(pads, sizes, kernel, strides, dilations)
    if padding is None or (padding == "SAME" and max(strides) > 1 and max(dilations) > 1):
        xh = _pad_nhwc(xh, pads, 0)
        padding = "VALID"
    w4 = w if nd == 2 else gc.expand_dims(w, 2)        # (M, C/g, 1, k) for 1-D
    y = _conv2d_nhwc(node, xh, w4, _pair2(strides, nd, 1), _pair2(dilations, nd, 1), padding, group, c)
    if node.has(2):
        y = y + node.x(2)
    return [_from_nhwc(y, nd)]


def _conv3d(node, x, w, kernel, strides, dilations, pads, group):
    """A 3-D convolution as a sum over the depth taps of 2-D convolutions of depth slices."""
    n_shape = tuple(x.shape)
    if None in n_shape[1:]:
        node.needs_shape(f"3-D convolution needs the channel and spatial sizes at import time, got {x.shape}")
    xd = gc.transpose(x, [0, 2, 3, 4, 1])              # (N, D, H, W, C)
    xd = gc.pad(xd, [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)])
    dp, hp, wp = (n_shape[2 + i] + pads[i][0] + pads[i][1] for i in range(3))
    kd, sd, dd = kernel[0], strides[0], dilations[0]
    out_d = (dp - ((kd - 1) * dd + 1)) // sd + 1
    total = None
    for t in range(kd):
        start = t * dd
        part = xd[:, start:start + (out_d - 1) * sd + 1:sd]          # (N, Do, Hp, Wp, C)
        flat = gc.reshape(part, [-1, hp, wp, n_shape[1]])
        y = _conv2d_nhwc(node, flat, w[:, :, t], strides[1:], dilations[1:], "VALID", group, n_shape[1])
        total = y if total is None else total + y
    y = gc.reshape(total, [-1, out_d] + [int(d) for d in total.shape[1:]])
    if node.has(2):
        y = y + node.x(2)
    return gc.transpose(y, [0, 4, 1, 2, 3])


@converts("ConvTranspose")
def _conv_transpose(node):
    x, w = node.x(0), node.x(1)
    nd = _spatial(node, x)
    n, c = x.shape[0], x.shape[1]
    sizes = list(tuple(x.shape)[2:])
    if None in sizes:
        node.needs_shape(f"needs the input's spatial size at import time, got {x.shape}")
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
        node.needs_shape("needs the channel counts at import time")
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
                node.needs_shape("ceil_mode needs the spatial size at import time")
            eff = (k - 1) * d + 1
            out = -(-(size + b + a - eff) // s) + 1
            if (out - 1) * s >= size + b:
                out -= 1
            extra.append(max((out - 1) * s + eff - (size + b + a), 0))
    else:
        extra = [0] * nd
    return kernel, strides, dilations, sizes, pads, extra


def _window_taps(x, kernel, strides, dilations, out_sizes):
    """Each tap of an N-D pooling window as a strided slice of ``x`` (N, C, *spatial):
    pooling with any dilation or rank is then a max or a sum over the taps."""
    import itertools
    for tap in itertools.product(*[range(k) for k in kernel]):
        key = [slice(None), slice(None)]
        for t, s, d, o in zip(tap, strides, dilations, out_sizes):
            key.append(slice(t * d, t * d + (o - 1) * s + 1, s))
        yield tuple(key)


def _pool_by_taps(node, x, kind, kernel, strides, dilations, pads, extra, include_pad=False):
    """Max or average pooling over explicit taps (3-D pooling, dilated windows)."""
    sizes = list(tuple(x.shape)[2:])
    if None in sizes:
        node.needs_shape(f"{node.op_type} with dilations or 3-D windows needs the spatial size at import time")
    total = [(b, a + e) for (b, a), e in zip(pads, extra)]
    padded = [n + b + a for n, (b, a) in zip(sizes, total)]
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    out = [(p - e) // s + 1 for p, e, s in zip(padded, eff, strides)]
    low = (-np.inf if x.dtype.is_floating else np.iinfo(x.dtype.np).min) if kind == "max" else 0
    xp = gc.pad(x, [(0, 0), (0, 0)] + total, constant_values=low) if any(p != (0, 0) for p in total) else x
    acc = None
    for key in _window_taps(xp, kernel, strides, dilations, out):
        v = xp[key]
        acc = v if acc is None else (gc.maximum(acc, v) if kind == "max" else acc + v)
    if kind in ("max", "sum"):
        return acc
    counted = np.zeros([1, 1] + padded, np.float64)
    inside = tuple(slice(0 if include_pad else b, (b + n + a) if include_pad else b + n)
                   for n, (b, a) in zip(sizes, pads))
    counted[(slice(None), slice(None)) + inside] = 1.0
    counts = sum(counted[key] for key in _window_taps(counted, kernel, strides, dilations, out))
    return acc / gc.constant(counts.astype(x.dtype.np))


@converts("MaxPool")
def _max_pool(node):
    x = node.x(0)
    nd = _spatial(node, x, allow_3d=True)
    if node.n_outputs > 1 and node.proto.output[1]:
        node.fail("MaxPool's Indices output is not imported")
    kernel, strides, dilations, sizes, pads, extra = _pool_geometry(node, x, nd)
    if nd == 3 or max(dilations) > 1:
        return [_pool_by_taps(node, x, "max", kernel, strides, dilations, pads, extra)]
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
    nd = _spatial(node, x, allow_3d=True)
    kernel, strides, dilations, sizes, pads, extra = _pool_geometry(node, x, nd)
    include = node.attr("count_include_pad", 0)
    if nd == 3 or max(dilations) > 1:
        return [_pool_by_taps(node, x, "avg", kernel, strides, dilations, pads, extra, include)]
    xh = _to_nhwc(x, nd)
    total = [(b, a + e) for (b, a), e in zip(pads, extra)]
    k2, s2 = _pair2(kernel, nd, 1), _pair2(strides, nd, 1)
    if all(p == (0, 0) for p in total):
        return [_from_nhwc(gc.nn.avg_pool2d(xh, k2, s2, "VALID"), nd)]
    if not include and _tf_padding(total, sizes, kernel, strides, dilations) == "SAME":
        return [_from_nhwc(gc.nn.avg_pool2d(xh, k2, s2, "SAME"), nd)]
    return [_pool_by_taps(node, x, "avg", kernel, strides, dilations, pads, extra, include)]


@converts("LpPool")
def _lp_pool(node):
    x = node.x(0)
    nd = _spatial(node, x, allow_3d=True)
    kernel, strides, dilations, sizes, pads, extra = _pool_geometry(node, x, nd)
    p = float(node.attr("p", 2))
    powered = gc.pow(gc.abs(x), _const_like(x, p))
    summed = _pool_by_taps(node, powered, "sum", kernel, strides, dilations, pads, extra)
    return [gc.pow(summed, _const_like(x, 1.0 / p))]


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
        node.needs_shape("needs the channel count at import time")
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


# --- Resize -------------------------------------------------------------------------------------
def _source_coordinates(mode, out_size, in_size, scale, roi):
    """ONNX's coordinate_transformation_mode: where each output position samples the input
    (float64), and which positions fall outside it (tf_crop_and_resize only)."""
    y = np.arange(out_size, dtype=np.float64)
    width = scale * in_size
    outside = None
    if mode == "align_corners":
        x = np.zeros(out_size) if width == 1 else y * (in_size - 1) / (width - 1)
    elif mode == "asymmetric":
        x = y / scale
    elif mode == "tf_crop_and_resize":
        lo, hi = roi
        x = (np.full(out_size, (hi - lo) * (in_size - 1) / 2) if width == 1
             else y * (hi - lo) * (in_size - 1) / (width - 1)) + lo * (in_size - 1)
        outside = (x < 0) | (x > in_size - 1)
    elif mode == "pytorch_half_pixel":
        x = np.full(out_size, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    elif mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif mode == "half_pixel_symmetric":
        offset = in_size / 2 * (1 - out_size / width)
        x = offset + (y + 0.5) / scale - 0.5
    else:
        raise ValueError(f"unknown coordinate_transformation_mode {mode!r}")
    return x, outside


def _resize_coefficients(kind, ratio, scale, a, antialias, nearest_mode):
    if kind == "nearest":
        if float(ratio).is_integer():
            return np.array([0.0, 1.0])
        up = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5,
              "floor": False, "ceil": True}[nearest_mode]
        return np.array([0.0, 1.0]) if up else np.array([1.0, 0.0])
    if kind == "linear":
        if not antialias:
            return np.array([1 - ratio, ratio])
        s = min(scale, 1.0)
        start = int(np.floor(-1 / s) + 1)
        args = (np.arange(start, start + 2 - 2 * start) - ratio) * s
        c = np.clip(1 - np.abs(args), 0, 1)
        return c / c.sum()
    if not antialias:
        r = ratio
        return np.array([((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
                         ((a + 2) * r - (a + 3)) * r * r + 1,
                         ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1,
                         ((a * ((1 - r) + 1) - 5 * a) * ((1 - r) + 1) + 8 * a) * ((1 - r) + 1) - 4 * a])
    s = min(scale, 1.0)
    start = int(np.floor(-2 / s) + 1)

    def k(x):
        x = abs(x)
        return ((a + 2) * x ** 3 - (a + 3) * x ** 2 + 1) if x <= 1 else \
            (a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a) if x < 2 else 0.0
    c = np.array([k(s * (i - ratio)) for i in range(start, 2 - start)])
    return c / c.sum()


def _resize_axis_plan(kind, in_size, out_size, scale, roi, transform, a, antialias, nearest_mode, exclude):
    """(neighbour indices (out, n), weights (out, n), outside mask or None) for one axis,
    as ONNX's reference computes them."""
    x, outside = _source_coordinates(transform, out_size, in_size, scale, roi)
    base = np.floor(x)
    ratios = np.where(x == base, 1.0, x - base)
    coeffs = np.stack([_resize_coefficients(kind, float(r), scale, a, antialias, nearest_mode) for r in ratios]) \
        if out_size else np.zeros((0, 2))
    n = coeffs.shape[1]
    pad = int(np.ceil(n / 2))
    xp = x + pad
    p = np.floor(xp).astype(np.int64)
    frac = xp - p
    if n % 2 == 0:
        offset = np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        offset = np.where(frac <= 0.5, -((n - 1) // 2), -((n - 1) // 2) + 1)
    idx = (p + offset)[:, None] + np.arange(n)[None, :] - pad
    if exclude:
        coeffs = np.where((idx < 0) | (idx >= in_size), 0.0, coeffs)
        total = coeffs.sum(axis=-1, keepdims=True)
        coeffs = coeffs / np.where(total == 0, 1.0, total)
    return np.clip(idx, 0, in_size - 1), coeffs, outside


@converts("Resize")
def _resize(node):
    x = node.x(0)
    rank = node.rank(x)
    shape = node.static_shape(x)
    kind = node.attr("mode", "nearest")
    if kind not in ("nearest", "linear", "cubic"):
        node.fail(f"mode {kind!r} is not one of nearest, linear, cubic")
    axes = node.attr("axes")
    axes = list(range(rank)) if axes is None else [_axis(node, a, rank) for a in axes]
    roi = node.known(1) if node.has(1) else None
    scales = node.known(2) if node.has(2) else None
    sizes = node.known(3) if node.has(3) else None
    if node.has(1) and roi is None and node.attr("coordinate_transformation_mode") == "tf_crop_and_resize":
        node.needs(1, "roi")
    if node.has(2) and scales is None:
        node.needs(2, "scales")
    if node.has(3) and sizes is None:
        node.needs(3, "sizes")
    scales = None if scales is None or scales.size == 0 else [float(s) for s in scales]
    sizes = None if sizes is None or sizes.size == 0 else [int(s) for s in sizes]
    if scales is None and sizes is None:
        node.fail("needs scales or sizes")
    full_scale, out = [1.0] * rank, list(shape)
    if sizes is not None:
        if len(sizes) != len(axes):
            node.fail(f"sizes {sizes} must have one entry per axis {axes}")
        s = [sizes[i] / shape[a] for i, a in enumerate(axes)]
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            one = min(s) if policy == "not_larger" else max(s)
            s = [one] * len(axes)
            sizes = [int(one * shape[a] + 0.5) for a in axes]
        for i, a in enumerate(axes):
            full_scale[a], out[a] = s[i], sizes[i]
    else:
        if len(scales) != len(axes):
            node.fail(f"scales {scales} must have one entry per axis {axes}")
        for i, a in enumerate(axes):
            full_scale[a], out[a] = scales[i], int(scales[i] * shape[a])
    full_roi = None
    if roi is not None and roi.size:
        roi = [float(v) for v in roi]
        full_roi = [0.0] * rank + [1.0] * rank
        k = len(axes)
        for i, a in enumerate(axes):
            full_roi[a], full_roi[rank + a] = roi[i], roi[k + i]
    transform = node.attr("coordinate_transformation_mode", "half_pixel")
    extrapolation = node.attr("extrapolation_value", 0.0)
    y = x if kind == "nearest" else gc.cast(x, dt.float32) if not x.dtype.is_floating else x
    for a in axes:
        axis_roi = None if full_roi is None else (full_roi[a], full_roi[rank + a])
        unchanged = np.isclose(full_scale[a], 1.0) and out[a] == shape[a] and (
            axis_roi is None or (np.isclose(axis_roi[0], 0.0) and np.isclose(axis_roi[1], 1.0)))
        if unchanged:
            continue
        if transform == "tf_crop_and_resize" and axis_roi is None:
            node.fail("coordinate_transformation_mode tf_crop_and_resize needs roi")
        idx, coeffs, outside = _resize_axis_plan(
            kind, shape[a], out[a], full_scale[a], axis_roi, transform, node.attr("cubic_coeff_a", -0.75),
            node.attr("antialias", 0), node.attr("nearest_mode", "round_prefer_floor"),
            node.attr("exclude_outside", 0))
        if kind == "nearest":
            y = gc.gather(y, gc.constant(idx[np.arange(len(idx)), np.argmax(coeffs, axis=1)]), axis=a)
        else:
            bshape = [1] * rank
            bshape[a] = out[a]
            total = None
            for k in range(idx.shape[1]):
                term = gc.gather(y, gc.constant(idx[:, k]), axis=a) * gc.constant(
                    coeffs[:, k].reshape(bshape).astype(y.dtype.np))
                total = term if total is None else total + term
            y = total
        if outside is not None and outside.any():
            mshape = [1] * rank
            mshape[a] = out[a]
            y = gc.where(gc.constant(outside.reshape(mshape)), _const_like(y, extrapolation), y)
    if y.dtype != x.dtype:
        if x.dtype.is_integer:
            info = np.iinfo(x.dtype.np)
            y = gc.clip_by_value(gc.round(y), float(info.min), float(info.max))
        y = gc.cast(y, x.dtype)
    return [y if y is not x else gc.identity(x)]


# --- DFT ------------------------------------------------------------------------------------------
def _move_last(t, axis):
    perm = [i for i in range(t.ndim) if i != axis] + [axis]
    return gc.transpose(t, perm), list(np.argsort(perm))


@converts("DFT")
def _dft(node):
    """The discrete Fourier transform along one axis as products with cos/sin matrices of the
    static length (real and imaginary parts are the last axis, as ONNX lays them out)."""
    x = node.x(0)
    rank = node.rank(x)
    if node.opset >= 20:
        axis = node.ints(2, "axis")[0] if node.has(2) else -2
    else:
        axis = node.attr("axis", 1)
    axis = _axis(node, axis, rank)
    if axis == rank - 1:
        node.fail("the transformed axis cannot be the last one (it holds the real and imaginary parts)")
    shape = node.static_shape(x)
    n_in = shape[axis]
    inverse, onesided = bool(node.attr("inverse", 0)), bool(node.attr("onesided", 0))
    if node.has(1):
        length = node.ints(1, "dft_length")[0]
    else:
        length = 2 * (n_in - 1) if inverse and onesided else n_in
    re = x[..., 0]
    im = x[..., 1] if shape[-1] == 2 else None
    re, back = _move_last(re, axis)
    if im is not None:
        im, _ = _move_last(im, axis)
    dtype = x.dtype.np
    j = np.arange(n_in)[:, None]
    if inverse and onesided:
        k = np.arange(min(n_in, length // 2 + 1))[:, None]
        t = np.arange(length)[None, :]
        weights = np.where((k == 0) | ((length % 2 == 0) & (k == length // 2)), 1.0, 2.0) / length
        theta = 2 * np.pi * k * t / length
        c, s = np.zeros((n_in, length)), np.zeros((n_in, length))
        c[:len(k)], s[:len(k)] = weights * np.cos(theta), weights * np.sin(theta)
        out = gc.matmul(re, gc.constant(c.astype(dtype)))
        if im is not None:
            out = out - gc.matmul(im, gc.constant(s.astype(dtype)))
        return [gc.expand_dims(gc.transpose(out, back), -1)]
    n_out = length // 2 + 1 if onesided else length
    kk = np.arange(n_out)[None, :]
    theta = 2 * np.pi * j * kk / length
    valid = (j < length).astype(np.float64)          # fft(x, n=length) drops samples past length
    c, s = np.cos(theta) * valid, np.sin(theta) * valid
    scale = 1.0 / length if inverse else 1.0
    sign = 1.0 if inverse else -1.0                    # e^{sign i theta}
    C, S = gc.constant((c * scale).astype(dtype)), gc.constant((s * scale * sign).astype(dtype))
    out_re = gc.matmul(re, C)
    out_im = gc.matmul(re, S)
    if im is not None:
        out_re = out_re - gc.matmul(im, S)
        out_im = out_im + gc.matmul(im, C)
    return [gc.stack([gc.transpose(out_re, back), gc.transpose(out_im, back)], axis=-1)]


@converts("STFT")
def _stft(node):
    x = node.x(0)
    shape = node.static_shape(x)
    step = node.ints(1, "frame_step")[0]
    window = node.x(2) if node.has(2) else None
    if node.has(3):
        length = node.ints(3, "frame_length")[0]
    elif window is not None:
        length = node.static_shape(window, "its window")[0]
    else:
        node.fail("needs a window or a frame_length")
    onesided = bool(node.attr("onesided", 1))
    n_frames = (shape[1] - length) // step + 1
    index = (np.arange(n_frames)[:, None] * step + np.arange(length)[None, :]).astype(np.int64)
    re = gc.gather(x[..., 0], gc.constant(index), axis=1)        # (batch, frames, length)
    im = gc.gather(x[..., 1], gc.constant(index), axis=1) if shape[-1] == 2 else None
    if window is not None:
        re = re * window
        im = None if im is None else im * window
    n_out = length // 2 + 1 if onesided else length
    theta = 2 * np.pi * np.arange(length)[:, None] * np.arange(n_out)[None, :] / length
    c, s = gc.constant(np.cos(theta).astype(x.dtype.np)), gc.constant((-np.sin(theta)).astype(x.dtype.np))
    out_re, out_im = gc.matmul(re, c), gc.matmul(re, s)
    if im is not None:
        out_re, out_im = out_re - gc.matmul(im, s), out_im + gc.matmul(im, c)
    return [gc.stack([out_re, out_im], axis=-1)]


# --- GridSample -----------------------------------------------------------------------------------
def _reflect(x, low: float, high: float):
    """ONNX GridSample's reflection of coordinates into [low, high] (by the nearer border,
    as many times as it takes)."""
    span = _const_like(x, high - low)
    lo, hi = _const_like(x, low), _const_like(x, high)
    below, above = lo - x, x - hi
    out = x
    for dx, near, far in ((below, lo, hi), (above, hi, lo)):
        n = gc.floor(dx / span)
        r = dx - n * span
        even = gc.equal(gc.mod(n, _const_like(x, 2.0)), _const_like(x, 0.0))
        sign = 1.0 if near is lo else -1.0
        moved = gc.where(even, near + sign * r, far - sign * r)
        out = gc.where(dx > 0, moved, out)
    return out


def _cubic_weights(t, a=-0.75):
    """Keys' cubic convolution weights of the 4 taps around a point at fraction t."""
    t1, t2 = t + 1.0, 1.0 - t
    return [((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a,
            ((a + 2) * t - (a + 3)) * t * t + 1.0,
            ((a + 2) * t2 - (a + 3)) * t2 * t2 + 1.0,
            ((a * (t2 + 1) - 5 * a) * (t2 + 1) + 8 * a) * (t2 + 1) - 4 * a]


@converts("GridSample")
def _grid_sample(node):
    import itertools
    x, grid = node.x(0), node.x(1)
    xs = node.static_shape(x)
    gs = node.static_shape(grid, "its grid")
    nd = len(xs) - 2
    if gs[-1] != nd:
        node.fail(f"grid {gs} must end in {nd} coordinates for a {nd}-D input")
    mode = node.attr("mode", "linear")
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    padding = node.attr("padding_mode", "zeros")
    align = bool(node.attr("align_corners", 0))
    dims = xs[2:]
    n, c = xs[0], xs[1]
    q = int(np.prod(gs[1:-1]))
    flat_x = gc.reshape(x, [n, c, int(np.prod(dims))])
    coords = gc.reshape(grid, [n, 1, q, nd])
    positions = []
    for i, length in enumerate(dims):
        g = coords[..., nd - 1 - i]                           # grid coordinates run (x, y, z): reversed
        p = (g + 1.0) / 2.0 * (length - 1) if align else ((g + 1.0) * length - 1.0) / 2.0
        if mode == "nearest":
            p = gc.round(p)
        low, high = (0.0, length - 1.0) if align else (-0.5, length - 0.5)
        if padding == "border":
            p = gc.where(gc.logical_or(p < low, p > high), gc.clip_by_value(p, 0.0, length - 1.0), p)
        elif padding == "reflection":
            p = _reflect(p, low, high)
        positions.append((p, length, low, high))

    def fetch(indices):
        """The input at integer positions (one float tensor per axis), with the padding mode."""
        flat, valid = None, None
        for (idx, length, low, high), stride in zip(indices, [int(np.prod(dims[i + 1:])) for i in range(nd)]):
            if padding == "reflection":
                idx = _reflect(idx, low, high)
            ok = gc.logical_and(idx >= 0.0, idx <= length - 1.0)
            valid = ok if valid is None else gc.logical_and(valid, ok)
            k = gc.cast(gc.clip_by_value(idx, 0.0, length - 1.0), dt.int64) * stride
            flat = k if flat is None else flat + k
        values = take_along_axis(flat_x, gc.broadcast_to(flat, [n, c, q]), axis=2)
        if padding == "zeros":
            values = gc.where(gc.broadcast_to(valid, [n, c, q]), values, gc.zeros_like(values))
        return values

    if mode == "nearest":
        out = fetch([(gc.cast(gc.cast(p, dt.int32), x.dtype), length, low, high)
                     for p, length, low, high in positions])
    else:
        taps = []
        for p, length, low, high in positions:
            base = gc.floor(p)
            t = p - base
            if mode == "linear":
                taps.append([(base, 1.0 - t), (base + 1.0, t)])
            elif mode == "cubic":
                taps.append([(base + float(o), w) for o, w in zip((-1, 0, 1, 2), _cubic_weights(t))])
            else:
                node.fail(f"mode {mode!r} is not one of linear, nearest, cubic")
        out = None
        for combo in itertools.product(*taps):
            weight = None
            for _, w in combo:
                weight = w if weight is None else weight * w
            term = fetch([(idx, length, low, high) for (idx, _), (_, length, low, high) in zip(combo, positions)])
            term = term * weight
            out = term if out is None else out + term
    return [gc.reshape(out, [n, c] + list(gs[1:-1]))]


# --- Col2Im, MaxUnpool -------------------------------------------------------------------------------
@converts("Col2Im")
def _col2im(node):
    """Column blocks summed back into an image: a segment sum over the static map from each
    (block offset, block position) to its pixel (padding cells go to a dropped extra segment)."""
    import itertools
    x = node.x(0)
    image = node.ints(1, "image_shape")
    block = node.ints(2, "block_shape")
    nd = len(image)
    dil = _per_axis(node, "dilations", nd, 1)
    strides = _per_axis(node, "strides", nd, 1)
    pads = node.attr("pads") or [0] * (2 * nd)
    n, ckk, length = node.static_shape(x)
    k = int(np.prod(block))
    c = ckk // k
    counts = [(image[i] + pads[i] + pads[i + nd] - ((block[i] - 1) * dil[i] + 1)) // strides[i] + 1 for i in range(nd)]
    if int(np.prod(counts)) != length:
        node.fail(f"{length} blocks do not tile an image of {image} with blocks {block}")
    pixels = int(np.prod(image))
    target = np.full((k, length), pixels, dtype=np.int64)
    for bi, offset in enumerate(itertools.product(*[range(b) for b in block])):
        for li, where in enumerate(itertools.product(*[range(cn) for cn in counts])):
            pos = [where[i] * strides[i] + offset[i] * dil[i] - pads[i] for i in range(nd)]
            if all(0 <= p < image[i] for i, p in enumerate(pos)):
                target[bi, li] = int(np.ravel_multi_index(pos, image))
    cols = gc.transpose(gc.reshape(x, [n, c, k * length]), [2, 0, 1])     # (k*L, N, C)
    summed = gc.unsorted_segment_sum(cols, gc.constant(target.reshape(-1)), pixels + 1)[:pixels]
    return [gc.reshape(gc.transpose(summed, [1, 2, 0]), [n, c] + list(image))]


@converts("MaxUnpool")
def _max_unpool(node):
    x, idx = node.x(0), node.x(1)
    shape = node.static_shape(x)
    nd = len(shape) - 2
    kernel = node.attr("kernel_shape")
    strides = _per_axis(node, "strides", nd, 1)
    pads = node.attr("pads") or [0] * (2 * nd)
    inferred = list(shape[:2]) + [(shape[2 + i] - 1) * strides[i] - pads[i] - pads[i + nd] + kernel[i]
                                  for i in range(nd)]
    flat = scatter_add(gc.reshape(x, [-1]), gc.reshape(gc.cast(idx, dt.int64), [-1]),
                       gc.zeros([int(np.prod(inferred))], dtype=x.dtype), 0)
    y = gc.reshape(flat, inferred)
    if node.has(2):   # as ONNX's reference: the unpooled values at the start of a larger output
        out_shape = node.ints(2, "output_shape")
        y = gc.pad(y, [(0, o - i) for o, i in zip(out_shape, inferred)])
    return [y]


@converts("Det")
def _det(node):
    """Determinants of 1x1, 2x2 and 3x3 matrices by their cofactor formulas."""
    x = node.x(0)
    n = x.shape[-1]
    if n not in (1, 2, 3) or x.shape[-2] != n:
        node.fail(f"graphc imports Det of 1x1, 2x2 and 3x3 matrices, got shape {x.shape}")
    a = [[x[..., i, j] for j in range(n)] for i in range(n)]
    if n == 1:
        return [a[0][0]]
    if n == 2:
        return [a[0][0] * a[1][1] - a[0][1] * a[1][0]]
    return [a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])]

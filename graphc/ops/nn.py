"""Neural-network ops: activations, softmax, losses, convolution, pooling, normalization,
dropout. Activations are elementwise primitives (exact gradients, one formula per backend);
losses and normalizations that are plain algebra are composed from other ops so that the
optimizer can fuse them."""
from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import DTypeMismatch, ShapeMismatch
from ..graph import Tensor, user_location
from ..shapes import TensorShape, TensorType, broadcast_shapes, merge_dims, normalize_axis
from ._build import dtype_error, is_symbolic, make1, renamed, shape_error
from .elementwise import (FLOAT, NUMERIC, _to_accepted, add, define_elementwise, divide, exp,
                          greater_equal, less, log1p, multiply, negative, pow, rsqrt, square, squared_difference,
                          subtract, where)
from .elementwise import abs as abs_
from .reduce import reduce_mean, reduce_sum
from .registry import define, one_output
from .shape import broadcast_to, expand_dims, reshape, scalar_flag, squeeze, stack, transpose
from .source import convert_to_tensor, promote
from .source import shape as shape_of

# --- activations ----------------------------------------------------------------------------
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu(x, attrs):
    if attrs["approximate"]:
        inner = x.dtype.type(_SQRT_2_OVER_PI) * (x + x.dtype.type(0.044715) * x * x * x)
        return x.dtype.type(0.5) * x * (1 + np.tanh(inner))
    from .elementwise import _special
    return x.dtype.type(0.5) * x * (1 + _special().erf(x * x.dtype.type(1 / math.sqrt(2))))


def _elu(x, attrs):
    alpha = x.dtype.type(attrs["alpha"])
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _leaky_relu(x, attrs):
    return np.where(x > 0, x, x.dtype.type(attrs["alpha"]) * x)


define_elementwise("relu", 1, lambda x, a: np.maximum(x, x.dtype.type(0)), NUMERIC, family="nn",
                   doc="max(x, 0); NaN propagates.")
define_elementwise("leaky_relu", 1, _leaky_relu, FLOAT, family="nn", doc="x if x > 0 else alpha * x.")
define_elementwise("elu", 1, _elu, FLOAT, family="nn", doc="x if x > 0 else alpha * (exp(x) - 1).")
define_elementwise("softplus", 1, lambda x, a: np.logaddexp(x.dtype.type(0), x), FLOAT, family="nn",
                   doc="log(1 + exp(x)), computed without overflow.")
define_elementwise("gelu", 1, _gelu, FLOAT, family="nn",
                   doc="x * Phi(x); `approximate` selects the tanh form.")
define_elementwise("softsign", 1, lambda x, a: x / (1 + np.abs(x)), FLOAT, family="nn",
                   doc="x / (1 + |x|).",
                   gradient=lambda op, grads: [grads[0] / square(1.0 + abs_(op.inputs[0]))],
                   formula=lambda e, x: f"({x[0]} / ({e.lit(1)} + abs({x[0]})))",
                   onnx="Softsign")


def relu(features, name: Optional[str] = None) -> Tensor:
    x = convert_to_tensor(features)
    return make1("relu", (_to_accepted("relu", x, NUMERIC),), None, name or "Relu")


def leaky_relu(features, alpha: float = 0.2, name: Optional[str] = None) -> Tensor:
    x = _to_accepted("leaky_relu", convert_to_tensor(features), FLOAT)
    return make1("leaky_relu", (x,), {"alpha": float(alpha)}, name or "LeakyRelu")


def elu(features, alpha: float = 1.0, name: Optional[str] = None) -> Tensor:
    x = _to_accepted("elu", convert_to_tensor(features), FLOAT)
    return make1("elu", (x,), {"alpha": float(alpha)}, name or "Elu")


def softplus(features, name: Optional[str] = None) -> Tensor:
    x = _to_accepted("softplus", convert_to_tensor(features), FLOAT)
    return make1("softplus", (x,), None, name or "Softplus")


def softsign(features, name: Optional[str] = None) -> Tensor:
    """features / (abs(features) + 1) (tf.nn.softsign)."""
    x = _to_accepted("softsign", convert_to_tensor(features), FLOAT)
    return make1("softsign", (x,), None, name or "Softsign")


def gelu(features, approximate: bool = False, name: Optional[str] = None) -> Tensor:
    x = _to_accepted("gelu", convert_to_tensor(features), FLOAT)
    return make1("gelu", (x,), {"approximate": bool(approximate)}, name or "Gelu")


def relu6(features, name: Optional[str] = None) -> Tensor:
    from .elementwise import clip_by_value
    return clip_by_value(features, 0, 6, name=name or "Relu6")


def silu(features, name: Optional[str] = None) -> Tensor:
    from .elementwise import sigmoid
    x = convert_to_tensor(features)
    return multiply(x, sigmoid(x), name=name or "silu")


swish = silu


# --- softmax ------------------------------------------------------------------------------
def _infer_softmax(inputs, attrs):
    (x,) = inputs
    if not x.dtype.is_floating:
        raise DTypeMismatch(f"expects floating logits, got {x.dtype.name}")
    if not 0 <= attrs["axis"] < x.rank:
        raise ShapeMismatch(f"axis {attrs['axis']} out of range for rank {x.rank}")
    return [x]


def _shifted(x, axis):
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    return x - np.where(np.isfinite(m), m, np.zeros_like(m))


def _ref_softmax(x, attrs):
    e = np.exp(_shifted(x, attrs["axis"]))
    return e / np.sum(e, axis=attrs["axis"], keepdims=True)


def _ref_log_softmax(x, attrs):
    s = _shifted(x, attrs["axis"])
    return s - np.log(np.sum(np.exp(s), axis=attrs["axis"], keepdims=True))


define("softmax", "nn", _infer_softmax, one_output(_ref_softmax), doc="exp(x) / sum(exp(x)) along `axis`, stably.")
define("log_softmax", "nn", _infer_softmax, one_output(_ref_log_softmax), doc="x - logsumexp(x) along `axis`.")


def _softmax_builder(op, default_name):
    def build(logits, axis=None, name: Optional[str] = None, dim=None) -> Tensor:
        """TF1's ``(logits, axis=None, name=None, dim=None)``; ``dim`` is TF1's old name of ``axis``."""
        axis = renamed(op, axis, dim, "axis", "dim")
        x = _to_accepted(op, convert_to_tensor(logits), FLOAT)
        axis = -1 if axis is None else axis
        try:
            axis = normalize_axis(axis, x.ndim)
        except ShapeMismatch as e:
            raise shape_error(op, f"{e} (logits '{x.name}' have shape {x.shape})") from None
        return make1(op, (x,), {"axis": axis}, name or default_name)
    build.__name__ = op
    return build


softmax = _softmax_builder("softmax", "Softmax")
log_softmax = _softmax_builder("log_softmax", "LogSoftmax")


# --- cross-entropies ---------------------------------------------------------------------------
def _infer_softmax_xent(inputs, attrs):
    labels, logits = inputs
    if not logits.dtype.is_floating or labels.dtype is not logits.dtype:
        raise DTypeMismatch(f"labels and logits must be one floating dtype, got {labels.dtype.name} "
                            f"and {logits.dtype.name}")
    axis = attrs["axis"]
    if labels.rank != logits.rank:
        raise ShapeMismatch(f"labels shape {labels.shape} and logits shape {logits.shape} have different ranks")
    try:
        shape = broadcast_shapes(labels.shape, logits.shape)
    except ShapeMismatch:
        raise ShapeMismatch(f"labels shape {labels.shape} does not broadcast with logits shape {logits.shape}") from None
    if not 0 <= axis < logits.rank:
        raise ShapeMismatch(f"axis {axis} out of range for rank {logits.rank}")
    return [TensorType(logits.dtype, shape[:axis] + shape[axis + 1:])]


def _ref_softmax_xent(labels, logits, attrs):
    logp = _ref_log_softmax(logits, attrs)
    labels, logp = np.broadcast_arrays(labels, logp)
    terms = np.where(labels == 0, np.zeros_like(logp), labels * logp)
    return -np.sum(terms, axis=attrs["axis"])


define("softmax_cross_entropy_with_logits", "nn", _infer_softmax_xent, one_output(_ref_softmax_xent),
       doc="-sum(labels * log_softmax(logits)) along `axis`, labels broadcasting against logits as "
           "NumPy does; a zero label contributes 0.")


def softmax_cross_entropy_with_logits(labels=None, logits=None, axis=None, name: Optional[str] = None,
                                      dim=None) -> Tensor:
    """``dim`` is TF1's name of ``axis`` (default -1)."""
    axis = renamed("softmax_cross_entropy_with_logits", axis, dim, "axis", "dim")
    axis = -1 if axis is None else axis
    if labels is None or logits is None:
        raise TypeError(f"softmax_cross_entropy_with_logits at {user_location()}: needs labels= and logits=")
    _, (lab, lg) = promote("softmax_cross_entropy_with_logits", labels, logits)
    lab, lg = (_to_accepted("softmax_cross_entropy_with_logits", t, FLOAT) for t in (lab, lg))
    try:
        axis = normalize_axis(axis, lg.ndim)
    except ShapeMismatch as e:
        raise shape_error("softmax_cross_entropy_with_logits", str(e)) from None
    return make1("softmax_cross_entropy_with_logits", (lab, lg), {"axis": axis},
                 name or "softmax_cross_entropy_with_logits")


softmax_cross_entropy_with_logits_v2 = softmax_cross_entropy_with_logits


def _infer_sparse_xent(inputs, attrs):
    labels, logits = inputs
    if not labels.dtype.is_integer:
        raise DTypeMismatch(f"labels must be integer class indices, got {labels.dtype.name}")
    if not logits.dtype.is_floating:
        raise DTypeMismatch(f"logits must be floating, got {logits.dtype.name}")
    if logits.rank < 1 or labels.rank != logits.rank - 1:
        raise ShapeMismatch(f"labels must have the shape of logits without the last axis: labels "
                            f"{labels.shape}, logits {logits.shape}")
    shape = [merge_dims(a, b, "labels and logits batch shapes differ") for a, b in zip(labels.shape, logits.shape)]
    return [TensorType(logits.dtype, shape)]


def _ref_sparse_xent(labels, logits, attrs):
    classes = logits.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)].flat[0]
        raise IndexError(f"label {bad} is out of range [0, {classes})")
    logp = _ref_log_softmax(logits, {"axis": logits.ndim - 1})
    return -np.take_along_axis(logp, labels[..., None].astype(np.int64), axis=-1)[..., 0]


define("sparse_softmax_cross_entropy_with_logits", "nn", _infer_sparse_xent, one_output(_ref_sparse_xent),
       doc="-log_softmax(logits)[label] over the last axis; a label outside [0, classes) is an error.")


def sparse_softmax_cross_entropy_with_logits(labels=None, logits=None, name: Optional[str] = None) -> Tensor:
    if labels is None or logits is None:
        raise TypeError("sparse_softmax_cross_entropy_with_logits needs labels= and logits=")
    lab = convert_to_tensor(labels)
    lg = _to_accepted("sparse_softmax_cross_entropy_with_logits", convert_to_tensor(logits), FLOAT)
    return make1("sparse_softmax_cross_entropy_with_logits", (lab, lg), None,
                 name or "SparseSoftmaxCrossEntropyWithLogits")


def sigmoid_cross_entropy_with_logits(labels=None, logits=None, name: Optional[str] = None) -> Tensor:
    """max(x, 0) - x * z + log(1 + exp(-|x|)), TensorFlow's stable form."""
    if labels is None or logits is None:
        raise TypeError("sigmoid_cross_entropy_with_logits needs labels= and logits=")
    _, (z, x) = promote("sigmoid_cross_entropy_with_logits", labels, logits)
    z, x = (_to_accepted("sigmoid_cross_entropy_with_logits", t, FLOAT) for t in (z, x))
    return add(subtract(relu(x), multiply(x, z)), log1p(exp(negative(abs_(x)))),
               name=name or "logistic_loss")


def l2_loss(t, name: Optional[str] = None) -> Tensor:
    """sum(t ** 2) / 2."""
    x = _to_accepted("l2_loss", convert_to_tensor(t), FLOAT)
    return multiply(reduce_sum(square(x)), 0.5, name=name or "L2Loss")


def bias_add(value, bias, data_format: str = "NHWC", name: Optional[str] = None) -> Tensor:
    """value + bias, where bias is 1-D and matches the channel axis of value: the last one,
    or with ``data_format="NCHW"`` (TF1's "NC..." for any rank >= 2) axis 1."""
    if data_format not in ("NHWC", "N...C", None, "NCHW", "NC..."):
        raise shape_error("bias_add", f"data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    first = data_format in ("NCHW", "NC...")
    v, b = convert_to_tensor(value), convert_to_tensor(bias)
    if b.ndim != 1:
        raise shape_error("bias_add", f"bias '{b.name}' must be 1-D, got shape {b.shape}")
    if v.ndim < (2 if first else 1):
        raise shape_error("bias_add", f"value '{v.name}' must have rank >= {2 if first else 1} "
                                      f"(data_format {data_format!r}), got shape {v.shape}")
    axis = 1 if first else v.ndim - 1
    try:
        merge_dims(v.shape[axis], b.shape[0], "")
    except ShapeMismatch:
        raise shape_error("bias_add", f"bias '{b.name}' of size {b.shape[0]} does not match the channel "
                          f"axis {axis} of '{v.name}' (shape {v.shape})") from None
    if v.dtype is not b.dtype:
        raise dtype_error("bias_add", f"value '{v.name}' is {v.dtype.name} but bias '{b.name}' is {b.dtype.name}")
    if first and v.ndim > 2:
        if v.shape[1] is None:
            b = broadcast_to(b, shape_of(v)[1:2])
        return add(v, reshape(b, (-1,) + (1,) * (v.ndim - 2)), name=name or "BiasAdd")
    if v.shape[-1] is None:
        # The channel dim is only known at run time: broadcast_to checks it matches the bias.
        b = broadcast_to(b, shape_of(v)[-1:])
    return add(v, b, name=name or "BiasAdd")


# --- convolution and pooling ------------------------------------------------------------------
def conv_output_size(size, kernel, stride, dilation, padding):
    """Output size and (before, after) padding for one spatial axis, exactly as TensorFlow."""
    if size is None:
        return None, None
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        out = -(-size // stride)
        total = max((out - 1) * stride + effective - size, 0)
        return out, (total // 2, total - total // 2)
    if size < effective:
        raise ShapeMismatch(f"the input size {size} is smaller than the effective kernel size {effective} "
                            "with VALID padding")
    return (size - effective) // stride + 1, (0, 0)


def _pair(value, what, op):
    """TensorFlow accepts an int, a pair, or an NHWC 4-list [1, h, w, 1]."""
    if isinstance(value, numbers.Integral):
        return (int(value), int(value))
    v = tuple(int(x) for x in value)
    if len(v) == 2:
        return v
    if len(v) == 4:
        if v[0] != 1 or v[3] != 1:
            raise shape_error(op, f"{what} {v} must not cover the batch or channel axis (use [1, h, w, 1])")
        return v[1:3]
    raise shape_error(op, f"{what} must be an int, a pair, or [1, h, w, 1]; got {value!r}")


def _check_padding(padding, op):
    p = str(padding).upper()
    if p not in ("SAME", "VALID"):
        raise shape_error(op, f"padding must be 'SAME' or 'VALID', got {padding!r}")
    return p


def conv2d_transpose(value, filter=None, output_shape=None, strides=None, padding: str = "SAME",
                     data_format: str = "NHWC", name: Optional[str] = None, filters=None, dilations=1) -> Tensor:
    """TF1's ``conv2d_transpose(value, filter, output_shape, strides, padding, data_format,
    name)``: the adjoint of ``conv2d(y, filter, strides, padding)`` for a ``y`` of
    ``output_shape``, so ``filter`` is (kh, kw, output channels, input channels). It is the op
    conv2d's gradient uses (``conv2d_backprop_input``), with its kernels and gradient."""
    from .source import zeros
    filters = renamed("conv2d_transpose", filters, filter, "filters", "filter")
    if filters is None or output_shape is None:
        raise TypeError(f"conv2d_transpose at {user_location()}: needs filter and output_shape")
    if data_format != "NHWC":
        raise shape_error("conv2d_transpose", f"only NHWC is supported, got data_format={data_format!r}")
    _, (g, f) = promote("conv2d_transpose", value, filters)
    g, f = (_to_accepted("conv2d_transpose", t, FLOAT) for t in (g, f))
    attrs = {"strides": _pair(1 if strides is None else strides, "strides", "conv2d_transpose"),
             "dilations": _pair(dilations, "dilations", "conv2d_transpose"),
             "padding": _check_padding(padding, "conv2d_transpose")}
    like = zeros(output_shape, g.dtype, name="output_shape")
    return make1("conv2d_backprop_input", (g, f, like), attrs, name or "conv2d_transpose")


def conv1d(value, filters=None, stride=1, padding: str = "VALID", use_cudnn_on_gpu=None, data_format: str = "NWC",
           name: Optional[str] = None, filter=None, dilations=1) -> Tensor:
    """TF1's ``conv1d``: over (batch, width, channels) with a (width, in, out) filter, as a
    conv2d of height 1 (as TF1 computes it)."""
    filters = renamed("conv1d", filters, filter, "filters", "filter")
    if data_format not in ("NWC", "NCW"):
        raise shape_error("conv1d", f"data_format must be 'NWC' or 'NCW', got {data_format!r}")
    x = convert_to_tensor(value)
    if data_format == "NCW":
        x = transpose(x, (0, 2, 1))
    stride = stride if isinstance(stride, numbers.Integral) else int(tuple(stride)[-2 if len(tuple(stride)) == 3 else 0])
    rate = dilations if isinstance(dilations, numbers.Integral) else int(tuple(dilations)[0])
    y = conv2d(expand_dims(x, 1), expand_dims(convert_to_tensor(filters), 0), strides=(1, stride), padding=padding,
               dilations=(1, rate))
    y = squeeze(y, [1], name=name or "conv1d")
    if data_format == "NCW":
        y = transpose(y, (0, 2, 1))
    return y


def depthwise_conv2d(input, filter, strides, padding, rate=None, name: Optional[str] = None,
                     data_format: str = "NHWC", dilations=None) -> Tensor:
    """TF1's ``depthwise_conv2d``: each input channel ``c`` convolved with its own
    ``filter[:, :, c, :]`` (channel multiplier M), output channel ``c * M + m``; ``rate`` is
    the dilation (TF1's name; ``dilations`` is TF2's). One ``depthwise_conv2d_native`` op."""
    rate = renamed("depthwise_conv2d", dilations, rate, "dilations", "rate")
    return depthwise_conv2d_native(input, filter, strides, padding, data_format=data_format,
                                   dilations=1 if rate is None else rate, name=name or "depthwise")


def depthwise_conv2d_native(input, filter, strides, padding, data_format: str = "NHWC", dilations=1,
                            name: Optional[str] = None) -> Tensor:
    """TF1's ``depthwise_conv2d_native``: the op itself (input NHWC or NCHW, filter
    (kh, kw, C, M), output C*M channels). Its kernels do kh*kw multiply-adds per output
    element on every target (not the C times more of a dense conv2d with a block-diagonal
    filter)."""
    op = "depthwise_conv2d"
    fmt = _data_format(op, data_format)
    _, (x, f) = promote(op, input, filter)
    x, f = (_to_accepted(op, t, FLOAT) for t in (x, f))
    if f.ndim != 4 or f.shape[0] is None or f.shape[1] is None:
        raise shape_error(op, f"filter '{f.name}' must be 4-D (kh, kw, C, M) with a known spatial size, got {f.shape}")
    if x.ndim != 4:
        raise shape_error(op, f"input '{x.name}' must be 4-D ({fmt}), got shape {x.shape}")
    attrs = {"strides": _pair(_nhwc_list(strides, fmt, op), "strides", op),
             "dilations": _pair(_nhwc_list(dilations, fmt, op), "dilations", op),
             "padding": _check_padding(padding, op)}
    if min(attrs["strides"]) < 1 or min(attrs["dilations"]) < 1:
        raise shape_error(op, f"strides and dilations must be >= 1, got {attrs}")
    if max(attrs["strides"]) > 1 and max(attrs["dilations"]) > 1:
        raise shape_error(op, "strides > 1 together with a rate > 1 is not supported (as in TensorFlow)")
    c = x.shape[1 if fmt == "NCHW" else 3]
    if c is not None and f.shape[2] is not None and c != f.shape[2]:
        raise shape_error(op, f"input '{x.name}' has {c} channels but filter '{f.name}' is for {f.shape[2]} "
                              f"(filter shape {f.shape})")
    if fmt == "NCHW":
        return _to_nchw(make1("depthwise_conv2d_native", (_to_nhwc(x), f), attrs, "DepthwiseConv2dNative"), name)
    return make1("depthwise_conv2d_native", (x, f), attrs, name or "DepthwiseConv2dNative")


def separable_conv2d(input, depthwise_filter, pointwise_filter, strides, padding, rate=None,
                     name: Optional[str] = None, data_format: str = "NHWC", dilations=None) -> Tensor:
    """TF1's ``separable_conv2d``: ``depthwise_conv2d`` then a 1x1 conv2d with
    ``pointwise_filter`` (1, 1, C*M, out)."""
    depthwise = depthwise_conv2d(input, depthwise_filter, strides, padding, rate, data_format=data_format,
                                 dilations=dilations)
    return conv2d(depthwise, pointwise_filter, strides=1, padding="VALID", data_format=data_format,
                  name=name or "separable_conv2d")


def _windows(x, kernel, strides, dilations, padding, pad_value):
    """A (N, OH, OW, KH, KW, C) strided view of the padded NHWC input."""
    n, h, w, c = x.shape
    oh, ph = conv_output_size(h, kernel[0], strides[0], dilations[0], padding)
    ow, pw = conv_output_size(w, kernel[1], strides[1], dilations[1], padding)
    xp = np.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=pad_value)
    s = xp.strides
    return as_strided(xp, (n, oh, ow, kernel[0], kernel[1], c),
                      (s[0], s[1] * strides[0], s[2] * strides[1], s[1] * dilations[0], s[2] * dilations[1], s[3]),
                      writeable=False)


def _infer_conv2d(inputs, attrs):
    x, f = inputs
    if not x.dtype.is_floating or f.dtype is not x.dtype:
        raise DTypeMismatch(f"input and filter must be one floating dtype, got {x.dtype.name} and {f.dtype.name}")
    if x.rank != 4 or f.rank != 4:
        raise ShapeMismatch(f"conv2d needs a 4-D NHWC input and a 4-D HWIO filter, got {x.shape} and {f.shape}")
    merge_dims(x.shape[3], f.shape[2], f"input channels {x.shape[3]} do not match filter in-channels {f.shape[2]}")
    if f.shape[0] is None or f.shape[1] is None:
        raise ShapeMismatch("the filter's spatial size must be known")
    oh, _ = conv_output_size(x.shape[1], f.shape[0], attrs["strides"][0], attrs["dilations"][0], attrs["padding"])
    ow, _ = conv_output_size(x.shape[2], f.shape[1], attrs["strides"][1], attrs["dilations"][1], attrs["padding"])
    return [TensorType(x.dtype, (x.shape[0], oh, ow, f.shape[3]))]


def _ref_conv2d(x, f, attrs):
    win = _windows(x, f.shape[:2], attrs["strides"], attrs["dilations"], attrs["padding"], 0)
    return np.tensordot(win, f, axes=([3, 4, 5], [0, 1, 2])).astype(x.dtype)


define("conv2d", "nn", _infer_conv2d, one_output(_ref_conv2d),
       doc="2-D convolution (cross-correlation), NHWC input, HWIO filter, TensorFlow padding.")


def conv2d(input, filter=None, strides=1, padding="VALID", use_cudnn_on_gpu: bool = True, data_format="NHWC",
           dilations=1, name: Optional[str] = None, filters=None) -> Tensor:
    """TF1's ``conv2d(input, filter, strides, padding, use_cudnn_on_gpu, data_format, dilations,
    name)``; ``filters=`` is TF2's name of ``filter``. ``use_cudnn_on_gpu`` changes nothing
    (graphc's CUDA kernels are its own). ``data_format="NCHW"`` (strides and dilations then
    ``[1, 1, h, w]``) transposes to NHWC and back around the NHWC op."""
    filters = renamed("conv2d", filters, filter, "filters", "filter")
    if filters is None:
        raise TypeError(f"conv2d at {user_location()}: needs a filter")
    fmt = _data_format("conv2d", data_format)
    _, (x, f) = promote("conv2d", input, filters)
    x, f = (_to_accepted("conv2d", t, FLOAT) for t in (x, f))
    attrs = {"strides": _pair(_nhwc_list(strides, fmt, "conv2d"), "strides", "conv2d"),
             "dilations": _pair(_nhwc_list(dilations, fmt, "conv2d"), "dilations", "conv2d"),
             "padding": _check_padding(padding, "conv2d")}
    if min(attrs["strides"]) < 1 or min(attrs["dilations"]) < 1:
        raise shape_error("conv2d", f"strides and dilations must be >= 1, got {attrs}")
    if max(attrs["strides"]) > 1 and max(attrs["dilations"]) > 1:
        raise shape_error("conv2d", "strides > 1 together with dilations > 1 is not supported (as in TensorFlow)")
    if fmt == "NCHW":  # by transposes around the NHWC op (docs/TF1-COMPAT.md)
        if x.ndim != 4:
            raise shape_error("conv2d", f"input '{x.name}' must be 4-D (NCHW), got shape {x.shape}")
        return _to_nchw(make1("conv2d", (_to_nhwc(x), f), attrs, "Conv2D"), name or "Conv2D")
    return make1("conv2d", (x, f), attrs, name or "Conv2D")


def _infer_pool(kind):
    def infer(inputs, attrs):
        (x,) = inputs
        if x.rank != 4:
            raise ShapeMismatch(f"{kind} pooling needs a 4-D NHWC input, got shape {x.shape}")
        if kind == "avg" and not x.dtype.is_floating:
            raise DTypeMismatch(f"avg_pool2d needs a floating input, got {x.dtype.name}")
        if kind == "max" and x.dtype.is_bool:
            raise DTypeMismatch("max_pool2d needs a numeric input, got bool")
        k, s, p = attrs["ksize"], attrs["strides"], attrs["padding"]
        oh, _ = conv_output_size(x.shape[1], k[0], s[0], 1, p)
        ow, _ = conv_output_size(x.shape[2], k[1], s[1], 1, p)
        return [TensorType(x.dtype, (x.shape[0], oh, ow, x.shape[3]))]
    return infer


def _ref_max_pool(x, attrs):
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    win = _windows(x, attrs["ksize"], attrs["strides"], (1, 1), attrs["padding"], low)
    return win.max(axis=(3, 4), initial=low)


def _ref_avg_pool(x, attrs):
    win = _windows(x, attrs["ksize"], attrs["strides"], (1, 1), attrs["padding"], 0)
    ones = np.ones((1,) + x.shape[1:3] + (1,), dtype=x.dtype)
    count = _windows(ones, attrs["ksize"], attrs["strides"], (1, 1), attrs["padding"], 0).sum(axis=(3, 4))
    return (win.sum(axis=(3, 4)) / count).astype(x.dtype)


define("max_pool2d", "nn", _infer_pool("max"), one_output(_ref_max_pool),
       doc="Max over each window (NHWC); SAME padding never wins the max.")
define("avg_pool2d", "nn", _infer_pool("avg"), one_output(_ref_avg_pool),
       doc="Mean over each window (NHWC); SAME padding is left out of the count, as in TensorFlow.")


def _pool_builder(op, default_name):
    def build(input, ksize, strides, padding="VALID", data_format="NHWC", name: Optional[str] = None) -> Tensor:
        fmt = _data_format(op, data_format)
        x = convert_to_tensor(input)
        if op == "avg_pool2d":
            x = _to_accepted(op, x, FLOAT)
        attrs = {"ksize": _pair(_nhwc_list(ksize, fmt, op), "ksize", op),
                 "strides": _pair(_nhwc_list(strides, fmt, op), "strides", op),
                 "padding": _check_padding(padding, op)}
        if min(attrs["ksize"]) < 1 or min(attrs["strides"]) < 1:
            raise shape_error(op, f"ksize and strides must be >= 1, got {attrs}")
        if fmt == "NCHW":  # by transposes around the NHWC op (docs/TF1-COMPAT.md)
            if x.ndim != 4:
                raise shape_error(op, f"input '{x.name}' must be 4-D (NCHW), got shape {x.shape}")
            return _to_nchw(make1(op, (_to_nhwc(x),), attrs, default_name), name or default_name)
        return make1(op, (x,), attrs, name or default_name)
    build.__name__ = op
    build.__doc__ = (f"TF1's ``{op[:-2]}(value, ksize, strides, padding, data_format, name)``; with "
                     f"``data_format='NCHW'`` (ksize and strides ``[1, 1, h, w]``) it transposes to NHWC and back.")
    return build


max_pool2d = _pool_builder("max_pool2d", "MaxPool")
avg_pool2d = _pool_builder("avg_pool2d", "AvgPool")
max_pool = max_pool2d
avg_pool = avg_pool2d


# --- normalization ------------------------------------------------------------------------
def _infer_window_sum(inputs, attrs):
    (x,) = inputs
    if not x.dtype.is_numeric:
        raise DTypeMismatch(f"expects a numeric tensor, got {x.dtype.name}")
    if not 0 <= attrs["axis"] < x.rank:
        raise ShapeMismatch(f"axis {attrs['axis']} out of range for rank {x.rank}")
    return [x]


def _ref_window_sum(x, attrs):
    r, axis = attrs["radius"], attrs["axis"]
    pads = [(0, 0)] * x.ndim
    pads[axis] = (r, r)
    xp = np.pad(x, pads)
    n = x.shape[axis]
    out = np.zeros_like(x)
    for shift in range(2 * r + 1):
        out += np.take(xp, np.arange(shift, shift + n), axis=axis)
    return out


define("window_sum", "nn", _infer_window_sum, one_output(_ref_window_sum),
       doc="Sum over a centred window of `radius` along `axis` (zeros beyond the edges); used by LRN.")


def local_response_normalization(input, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0,
                                 beta: float = 0.5, name: Optional[str] = None) -> Tensor:
    """TensorFlow's LRN over the last axis: x / (bias + alpha * sum_{|j-c|<=r} x_j^2) ** beta.

    Caffe's ACROSS_CHANNELS LRN with ``local_size=n, alpha=a, beta=b, k=k`` is
    ``depth_radius=(n-1)//2, alpha=a/n, beta=b, bias=k``.
    """
    x = _to_accepted("local_response_normalization", convert_to_tensor(input), FLOAT)
    sq = make1("window_sum", (square(x),), {"radius": int(depth_radius), "axis": x.ndim - 1}, "sqr_sum")
    return multiply(x, pow(add(multiply(sq, alpha), bias), -beta), name=name or "LRN")


lrn = local_response_normalization


def batch_normalization(x, mean, variance, offset, scale, variance_epsilon, name: Optional[str] = None) -> Tensor:
    """(x - mean) * scale / sqrt(variance + eps) + offset, with the given statistics."""
    x = convert_to_tensor(x)
    inv = rsqrt(add(variance, variance_epsilon))
    if scale is not None:
        inv = multiply(inv, scale)
    shift = negative(multiply(mean, inv)) if offset is None else subtract(offset, multiply(mean, inv))
    return add(multiply(x, inv), shift, name=name or "batchnorm")


# --- fused batch normalization (TF1's tf.nn.fused_batch_norm) -------------------------------------
# TF1's fused_batch_norm raises an epsilon below cuDNN's minimum to just above it.
_MIN_BN_EPSILON = 1.001e-5


def bessel_factor(n: int) -> float:
    """TF1's correction of the batch variance it outputs: n / (n - 1), or 1 for n <= 1."""
    return n / (n - 1) if n > 1 else 1.0


def _infer_fused_batch_norm(inputs, attrs):
    x, scale, offset = inputs
    if not x.dtype.is_floating or scale.dtype is not x.dtype or offset.dtype is not x.dtype:
        raise DTypeMismatch(f"x, scale and offset must be one floating dtype, got {x.dtype.name}, "
                            f"{scale.dtype.name} and {offset.dtype.name}")
    if x.rank not in (2, 4):
        raise ShapeMismatch(f"x must be 4-D (NHWC or NCHW) or 2-D (N, C), got shape {x.shape}")
    axis = attrs["axis"]
    if not 0 <= axis < x.rank:
        raise ShapeMismatch(f"channel axis {axis} out of range for rank {x.rank}")
    c = x.shape[axis]
    for what, t in (("scale", scale), ("offset", offset)):
        if t.rank != 1:
            raise ShapeMismatch(f"{what} must be 1-D (channels), got shape {t.shape}")
        c = merge_dims(c, t.shape[0], f"{what} of shape {t.shape} does not match the {x.shape[axis]} channels "
                                      f"of x (shape {x.shape}, channel axis {axis})")
    stat = TensorType(x.dtype, (c,))
    return [TensorType(x.dtype, x.shape), stat, stat, stat]


def _bn_view(v, axis, rank):
    """A (C,) array shaped to broadcast along ``axis`` of a rank-``rank`` array."""
    return v.reshape((-1,) + (1,) * (rank - 1 - axis))


def _ref_fused_batch_norm(inputs, attrs, ctx=None):
    x, scale, offset = inputs
    axis = attrs["axis"]
    others = tuple(k for k in range(x.ndim) if k != axis)
    n = int(np.prod([x.shape[k] for k in others]))
    t = x.dtype.type
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = x.mean(axis=others) if n else np.full(x.shape[axis], np.nan, x.dtype)
        d = x - _bn_view(mean, axis, x.ndim)
        var = (d * d).mean(axis=others) if n else np.full(x.shape[axis], np.nan, x.dtype)
        inv = (t(1) / np.sqrt(var + t(attrs["epsilon"]))).astype(x.dtype)
        y = d * _bn_view(inv * scale, axis, x.ndim) + _bn_view(offset, axis, x.ndim)
    return (y.astype(x.dtype), mean.astype(x.dtype), (var * t(bessel_factor(n))).astype(x.dtype),
            inv.astype(x.dtype))


define("fused_batch_norm", "nn", _infer_fused_batch_norm, _ref_fused_batch_norm,
       doc="Training-mode batch normalization in one kernel: inputs (x, scale, offset), attrs epsilon and "
           "the channel axis; outputs (y, batch mean, batch variance with TF1's n/(n-1) correction, "
           "1/sqrt(biased variance + epsilon)). y normalizes with the biased (1/n) variance, as TF1 does.")


def _infer_fused_batch_norm_grad(inputs, attrs):
    dy, x, scale, mean, inv = inputs
    if not dy.shape.is_compatible_with(x.shape):
        raise ShapeMismatch(f"the gradient of y has shape {dy.shape}, x has shape {x.shape}")
    (_, stat, _, _) = _infer_fused_batch_norm([x, scale, scale], attrs)
    for what, t in (("mean", mean), ("inverse std", inv)):
        if t.dtype is not x.dtype or t.rank != 1 or not t.shape.is_compatible_with(stat.shape):
            raise ShapeMismatch(f"the saved {what} must be {x.dtype.name} of shape {stat.shape}, got "
                                f"{t.dtype.name} {t.shape}")
    if dy.dtype is not x.dtype:
        raise DTypeMismatch(f"the gradient of y is {dy.dtype.name}, x is {x.dtype.name}")
    return [TensorType(x.dtype, x.shape), stat, stat]


def _ref_fused_batch_norm_grad(inputs, attrs, ctx=None):
    dy, x, scale, mean, inv = inputs
    axis = attrs["axis"]
    others = tuple(k for k in range(x.ndim) if k != axis)
    n = int(np.prod([x.shape[k] for k in others]))
    t = x.dtype.type
    xhat = (x - _bn_view(mean, axis, x.ndim)) * _bn_view(inv, axis, x.ndim)
    doffset = dy.sum(axis=others)
    dscale = (dy * xhat).sum(axis=others)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = scale * inv / t(n)
    dx = _bn_view(k, axis, x.ndim) * (t(n) * dy - _bn_view(doffset, axis, x.ndim) - xhat * _bn_view(dscale, axis, x.ndim))
    return dx.astype(x.dtype), dscale.astype(x.dtype), doffset.astype(x.dtype)


define("fused_batch_norm_grad", "nn", _infer_fused_batch_norm_grad, _ref_fused_batch_norm_grad,
       doc="The backward pass of training-mode fused_batch_norm in one kernel: inputs (dy, x, scale, saved "
           "mean, saved 1/sqrt(var + eps)), attr the channel axis; outputs (dx, dscale, doffset).")


def fused_batch_norm(x, scale, offset, mean=None, variance=None, epsilon: float = 0.001, data_format: str = "NHWC",
                     is_training: bool = True, name: Optional[str] = None):
    """TF1's ``tf.nn.fused_batch_norm``: returns ``(y, batch_mean, batch_variance)``.

    ``x`` is 4-D, NHWC or (``data_format="NCHW"``) NCHW, or 2-D (N, C) (graphc's addition, for
    dense layers); ``scale`` and ``offset`` are (C,). As in TF1, an epsilon below 1.001e-5 is
    raised to 1.001e-5.

    ``is_training=True`` (``mean`` and ``variance`` must be None): y is normalized with the
    statistics of the batch over every axis but the channel, ``(x - mean) * scale /
    sqrt(var + epsilon) + offset`` with the *biased* variance (sum / n), while the returned
    ``batch_variance`` is TF1's *unbiased* one (sum / (n - 1); n / (n - 1) times the biased
    one, unchanged for n = 1), meant for moving averages. One op, ``fused_batch_norm``, computes
    y and both statistics in one kernel; its gradient is one ``fused_batch_norm_grad`` kernel.

    ``is_training=False``: ``mean`` and ``variance`` (the moving averages) are required; y uses
    them and they are returned as given. This mode is composed of elementwise ops (like
    ``batch_normalization``), so it fuses into the producer's kernel (a conv or matmul epilogue).
    """
    op = "fused_batch_norm"
    x = _to_accepted(op, convert_to_tensor(x), FLOAT)

    def per_channel(value, what):  # constants take x's dtype; tensors must have it
        if is_symbolic(value) and convert_to_tensor(value).dtype is not x.dtype:
            t = convert_to_tensor(value)
            raise dtype_error(op, f"{what} '{t.name}' is {t.dtype.name} but x '{x.name}' is {x.dtype.name}")
        return convert_to_tensor(value, dtype=x.dtype)

    scale, offset = per_channel(scale, "scale"), per_channel(offset, "offset")
    if data_format not in ("NHWC", "NCHW"):
        raise shape_error(op, f"data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    if x.ndim not in (2, 4):
        raise shape_error(op, f"x '{x.name}' must be 4-D ({data_format}) or 2-D (N, C), got shape {x.shape}")
    axis = 1 if data_format == "NCHW" or x.ndim == 2 else x.ndim - 1
    epsilon = float(epsilon)
    epsilon = epsilon if epsilon > _MIN_BN_EPSILON else _MIN_BN_EPSILON
    if not isinstance(is_training, bool):
        raise TypeError(f"{op} at {user_location()}: is_training must be a Python bool, got {is_training!r}")
    if is_training:
        if mean is not None or variance is not None:
            raise shape_error(op, "in training mode (is_training=True) mean and variance must be None: the batch's "
                                  "own statistics are used")
        try:
            _infer_fused_batch_norm([t.type for t in (x, scale, offset)], {"axis": axis})
        except ShapeMismatch as e:
            raise shape_error(op, str(e)) from None
        from ._build import make
        y, batch_mean, batch_var, _ = make(op, (x, scale, offset), {"epsilon": epsilon, "axis": axis},
                                           name or "FusedBatchNorm").outputs
        return y, batch_mean, batch_var
    if mean is None or variance is None:
        raise shape_error(op, "in inference mode (is_training=False) mean and variance are required")
    mean, variance = per_channel(mean, "mean"), per_channel(variance, "variance")
    try:
        _infer_fused_batch_norm([t.type for t in (x, scale, offset)], {"axis": axis})
        _infer_fused_batch_norm([t.type for t in (x, mean, variance)], {"axis": axis})
    except (ShapeMismatch, DTypeMismatch) as e:
        raise shape_error(op, str(e)) from None
    channels = (lambda v: reshape(v, (-1,) + (1,) * (x.ndim - 1 - axis))) if axis != x.ndim - 1 else (lambda v: v)
    inv = multiply(rsqrt(add(variance, epsilon)), scale)
    shift = subtract(offset, multiply(mean, inv))
    y = add(multiply(x, channels(inv)), channels(shift), name=name or "FusedBatchNorm")
    return y, mean, variance


def l2_normalize(x, axis=None, epsilon: float = 1e-12, name: Optional[str] = None, dim=None) -> Tensor:
    """``x / sqrt(max(sum(x ** 2, axis), epsilon))`` (TF1's ``tf.nn.l2_normalize``; ``dim`` is
    TF1's old name of ``axis``, default: every axis). Made of graph ops, so its gradient and
    kernels are theirs, and the fusion puts it in one row kernel."""
    axis = renamed("l2_normalize", axis, dim, "axis", "dim")
    t = _to_accepted("l2_normalize", convert_to_tensor(x), FLOAT)
    from .elementwise import maximum, rsqrt
    squared = reduce_sum(square(t), axis, keepdims=True)
    return multiply(t, rsqrt(maximum(squared, epsilon)), name=name or "l2_normalize")


def moments(x, axes, shift=None, name: Optional[str] = None, keep_dims=None, keepdims=None):
    """(mean, variance) of ``x`` over ``axes``, in TF1's order; ``shift`` (TF1's hint for a
    numerically better sum) is not needed: graphc subtracts the mean before squaring."""
    keepdims = bool(renamed("moments", keepdims, keep_dims, "keepdims", "keep_dims"))
    from .control import stop_gradient
    x = convert_to_tensor(x)
    mean = reduce_mean(x, axes, keepdims=True)
    variance = reduce_mean(squared_difference(x, stop_gradient(mean)), axes, keepdims=True)
    if not keepdims:
        axes_t = (axes,) if isinstance(axes, int) else tuple(axes)
        mean, variance = squeeze(mean, axes_t), squeeze(variance, axes_t)
    return mean, variance


def dropout(x, keep_prob=None, noise_shape=None, seed=None, name: Optional[str] = None, rate=None,
            training=True) -> Tensor:
    """TF1's ``tf.nn.dropout``: keep each element with probability ``keep_prob`` (the second
    positional argument, as in TF1) and scale the kept ones by 1/keep_prob; or, with the
    keyword ``rate=`` (TF2's form), zero each element with probability ``rate`` and scale the
    rest by 1/(1-rate). Give one of the two; either may be a tensor (TF1's idiom feeds
    ``keep_prob: 1.0`` at evaluation, which passes ``x`` through).

    ``training`` (graphc's, also taken by ``gc.layers.dropout``) may be a Python bool or a bool
    tensor (e.g. a placeholder with default); when it is false the input passes through.
    """
    from .random import random_uniform_like, random_uniform
    if (keep_prob is None) == (rate is None):
        raise TypeError(f"dropout at {user_location()}: give keep_prob (TF1: the second positional argument, the "
                        f"probability to keep) or rate= (the probability to drop), not "
                        f"{'both' if keep_prob is not None else 'neither'}")
    x = _to_accepted("dropout", convert_to_tensor(x), FLOAT)
    if training is False:
        return x
    given, what = (keep_prob, "keep_prob") if keep_prob is not None else (rate, "rate")
    if not is_symbolic(given):
        value = float(given)
        if what == "keep_prob" and not 0 < value <= 1:
            raise shape_error("dropout", f"keep_prob must be in (0, 1] (the probability to keep), got {given}")
        if what == "rate" and not 0 <= value < 1:
            raise shape_error("dropout", f"rate must be in [0, 1) (the probability to drop), got {given}")
        if value == (1.0 if what == "keep_prob" else 0.0):
            return x
    if noise_shape is None:
        u = random_uniform_like(x, seed=seed)
    else:
        if len(noise_shape) != x.ndim:
            raise shape_error("dropout", f"noise_shape {noise_shape} must have one entry per dim of '{x.name}' "
                              f"of shape {x.shape}")
        dims = [d if n is None else n for n, d in zip(noise_shape, x.shape)]
        if any(d is None for d in dims):  # a None is x's own size there, known when the graph runs
            sizes = shape_of(x)
            dims = stack([sizes[k] if d is None else d for k, d in enumerate(dims)])
        u = random_uniform(dims, dtype=x.dtype, seed=seed)
    if is_symbolic(given):  # a fed probability outside its range stops the run, naming this op
        from .control import check_range
        given = scalar_flag(given)  # tf.placeholder(tf.float32) for keep_prob: a scalar, as TF1 uses it
        given = check_range(given, 0.0, 1.0, what, low_open=what == "keep_prob", high_open=what == "rate",
                            name=f"{name or 'dropout'}_{what}_check")
    # u in [0, 1): kept when u < keep_prob (so keep_prob 1 keeps all), or when u >= rate
    if what == "keep_prob":
        keep = less(u, given)
        scale = divide(1.0, given) if is_symbolic(given) else 1.0 / float(given)
    else:
        keep = greater_equal(u, given)
        scale = divide(1.0, subtract(1.0, given)) if is_symbolic(given) else 1.0 / (1.0 - float(given))
    dropped = multiply(where(keep, x, 0.0), scale, name=(name or "dropout") + "_apply")
    if training is True:
        return dropped
    flag = scalar_flag(training)
    if not flag.dtype.is_bool or flag.ndim != 0:
        raise dtype_error("dropout", f"training must be a Python bool or a scalar bool tensor, got '{flag.name}' "
                          f"{flag.dtype.name}{flag.shape}")
    return where(flag, dropped, x, name=name or "dropout")


# --- adjoints of convolution and pooling (used by gradients) -----------------------------------
def _spatial_plan(h, w, kernel, strides, dilations, padding):
    oh, ph = conv_output_size(h, kernel[0], strides[0], dilations[0], padding)
    ow, pw = conv_output_size(w, kernel[1], strides[1], dilations[1], padding)
    return oh, ow, ph, pw


def _scatter_windows(values_at, shape, kernel, strides, dilations, padding, dtype):
    """Sum ``values_at(i, j)`` (N, OH, OW, C) into a padded (N, H, W, C) buffer at kernel tap
    (i, j) of every window, then crop the padding: the adjoint of taking windows."""
    n, h, w, c = shape
    oh, ow, ph, pw = _spatial_plan(h, w, kernel, strides, dilations, padding)
    out = np.zeros((n, h + ph[0] + ph[1], w + pw[0] + pw[1], c), dtype=dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            r0, c0 = i * dilations[0], j * dilations[1]
            out[:, r0:r0 + strides[0] * (oh - 1) + 1:strides[0], c0:c0 + strides[1] * (ow - 1) + 1:strides[1], :] \
                += values_at(i, j)
    return out[:, ph[0]:ph[0] + h, pw[0]:pw[0] + w, :]


def _check_conv_grad_shapes(x_shape, f_shape, g_shape, attrs):
    oh, _ = conv_output_size(x_shape[1], f_shape[0], attrs["strides"][0], attrs["dilations"][0], attrs["padding"])
    ow, _ = conv_output_size(x_shape[2], f_shape[1], attrs["strides"][1], attrs["dilations"][1], attrs["padding"])
    want = (x_shape[0], oh, ow, f_shape[3])
    for a, b in zip(want, g_shape):
        if a is not None and b is not None and a != b:
            raise ShapeMismatch(f"gradient of shape {tuple(g_shape)} does not match the conv output {want}")
    merge_dims(x_shape[3], f_shape[2], "input channels do not match the filter")


def _infer_conv_backprop_input(inputs, attrs):
    g, f, like = inputs
    _check_conv_grad_shapes(like.shape, f.shape, g.shape, attrs)
    return [TensorType(g.dtype, like.shape)]


def _ref_conv_backprop_input(g, f, like, attrs):
    return _scatter_windows(lambda i, j: g @ f[i, j].T, like.shape, f.shape[:2], attrs["strides"],
                            attrs["dilations"], attrs["padding"], g.dtype)


def _infer_conv_backprop_filter(inputs, attrs):
    x, g, like = inputs
    _check_conv_grad_shapes(x.shape, like.shape, g.shape, attrs)
    return [TensorType(g.dtype, like.shape)]


def _ref_conv_backprop_filter(x, g, like, attrs):
    win = _windows(x, like.shape[:2], attrs["strides"], attrs["dilations"], attrs["padding"], 0)
    return np.tensordot(win, g, axes=([0, 1, 2], [0, 1, 2])).astype(g.dtype)


define("conv2d_backprop_input", "nn", _infer_conv_backprop_input, one_output(_ref_conv_backprop_input),
       shape_only_inputs=lambda attrs, n: (2,),
       doc="Gradient of conv2d for its input: inputs (grad, filter, input-like); same attrs as conv2d.")
define("conv2d_backprop_filter", "nn", _infer_conv_backprop_filter, one_output(_ref_conv_backprop_filter),
       shape_only_inputs=lambda attrs, n: (2,),
       doc="Gradient of conv2d for its filter: inputs (input, grad, filter-like); same attrs as conv2d.")


def _pool_argmax(x, attrs):
    """Per window, the flat tap index (row-major in the window) of the first maximum."""
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    win = _windows(x, attrs["ksize"], attrs["strides"], (1, 1), attrs["padding"], low)
    n, oh, ow, kh, kw, c = win.shape
    flat = np.moveaxis(win, 5, 3).reshape(n, oh, ow, c, kh * kw)
    return np.argmax(flat, axis=-1)


def _infer_max_pool_grad(inputs, attrs):
    x, g = inputs
    (y,) = _infer_pool("max")([x], attrs)
    if not y.shape.is_compatible_with(g.shape):
        raise ShapeMismatch(f"gradient of shape {g.shape} does not match the pool output {y.shape}")
    return [TensorType(g.dtype, x.shape)]


def _ref_max_pool_grad(x, g, attrs):
    arg = _pool_argmax(x, attrs)
    kw = attrs["ksize"][1]
    return _scatter_windows(lambda i, j: np.where(arg == i * kw + j, g, 0).astype(g.dtype), x.shape,
                            attrs["ksize"], attrs["strides"], (1, 1), attrs["padding"], g.dtype)


def _infer_max_pool_grad_grad(inputs, attrs):
    x, gg = inputs
    if not TensorShape(x.shape).is_compatible_with(gg.shape):
        raise ShapeMismatch(f"shapes {x.shape} and {gg.shape} differ")
    (y,) = _infer_pool("max")([x], attrs)
    return [TensorType(gg.dtype, y.shape)]


def _ref_max_pool_grad_grad(x, gg, attrs):
    arg = _pool_argmax(x, attrs)
    win = _windows(gg, attrs["ksize"], attrs["strides"], (1, 1), attrs["padding"], 0)
    n, oh, ow, kh, kw, c = win.shape
    flat = np.moveaxis(win, 5, 3).reshape(n, oh, ow, c, kh * kw)
    return np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]


def _infer_avg_pool_grad(inputs, attrs):
    g, like = inputs
    (y,) = _infer_pool("avg")([like], attrs)
    if not y.shape.is_compatible_with(g.shape):
        raise ShapeMismatch(f"gradient of shape {g.shape} does not match the pool output {y.shape}")
    return [TensorType(g.dtype, like.shape)]


def _ref_avg_pool_grad(g, like, attrs):
    ones = np.ones((1,) + like.shape[1:3] + (1,), dtype=g.dtype)
    count = _windows(ones, attrs["ksize"], attrs["strides"], (1, 1), attrs["padding"], 0).sum(axis=(3, 4))
    share = g / count
    return _scatter_windows(lambda i, j: share, like.shape, attrs["ksize"], attrs["strides"], (1, 1),
                            attrs["padding"], g.dtype)


define("max_pool2d_grad", "nn", _infer_max_pool_grad, one_output(_ref_max_pool_grad),
       doc="Gradient of max_pool2d: inputs (input, grad); each window's grad goes to its first maximum.")
define("max_pool2d_grad_grad", "nn", _infer_max_pool_grad_grad, one_output(_ref_max_pool_grad_grad),
       doc="Gradient of max_pool2d_grad for its grad input: inputs (input, grad-of-input-shape); picks "
           "each window's value at the window's first maximum.")
define("avg_pool2d_grad", "nn", _infer_avg_pool_grad, one_output(_ref_avg_pool_grad),
       shape_only_inputs=lambda attrs, n: (1,),
       doc="Gradient of avg_pool2d: inputs (grad, input-like); spreads each grad over its window's count.")


# --- depthwise convolution -------------------------------------------------------------------------
def _depthwise_geometry(x_shape, f_shape, attrs):
    oh, _ = conv_output_size(x_shape[1], f_shape[0], attrs["strides"][0], attrs["dilations"][0], attrs["padding"])
    ow, _ = conv_output_size(x_shape[2], f_shape[1], attrs["strides"][1], attrs["dilations"][1], attrs["padding"])
    c, m = x_shape[3] if x_shape[3] is not None else f_shape[2], f_shape[3]
    return (x_shape[0], oh, ow, None if c is None or m is None else c * m)


def _check_depthwise(x, f, attrs):
    if not x.dtype.is_floating or f.dtype is not x.dtype:
        raise DTypeMismatch(f"input and filter must be one floating dtype, got {x.dtype.name} and {f.dtype.name}")
    if x.rank != 4 or f.rank != 4:
        raise ShapeMismatch(f"depthwise_conv2d needs a 4-D NHWC input and a (kh, kw, C, M) filter, got {x.shape} "
                            f"and {f.shape}")
    merge_dims(x.shape[3], f.shape[2], f"input channels {x.shape[3]} do not match the filter's {f.shape[2]}")
    if f.shape[0] is None or f.shape[1] is None:
        raise ShapeMismatch("the filter's spatial size must be known")
    return _depthwise_geometry(x.shape, f.shape, attrs)


def _check_grad_shape(g, want):
    for a, b in zip(want, g.shape):
        if a is not None and b is not None and a != b:
            raise ShapeMismatch(f"gradient of shape {g.shape} does not match the depthwise output {want}")


def _infer_depthwise(inputs, attrs):
    x, f = inputs
    return [TensorType(x.dtype, _check_depthwise(x, f, attrs))]


def _ref_depthwise(x, f, attrs):
    win = _windows(x, f.shape[:2], attrs["strides"], attrs["dilations"], attrs["padding"], 0)
    out = np.einsum("nhwpqc,pqcm->nhwcm", win, f)
    return out.reshape(out.shape[:3] + (-1,)).astype(x.dtype)


def _infer_depthwise_backprop_input(inputs, attrs):
    g, f, like = inputs
    _check_grad_shape(g, _check_depthwise(like, f, attrs))
    return [TensorType(g.dtype, like.shape)]


def _ref_depthwise_backprop_input(g, f, like, attrs):
    kh, kw, c, m = f.shape
    g5 = g.reshape(g.shape[:3] + (c, m))
    return _scatter_windows(lambda i, j: (g5 * f[i, j]).sum(-1), like.shape, (kh, kw), attrs["strides"],
                            attrs["dilations"], attrs["padding"], g.dtype)


def _infer_depthwise_backprop_filter(inputs, attrs):
    x, g, like = inputs
    _check_grad_shape(g, _check_depthwise(x, like, attrs))
    return [TensorType(g.dtype, like.shape)]


def _ref_depthwise_backprop_filter(x, g, like, attrs):
    kh, kw, c, m = like.shape
    win = _windows(x, (kh, kw), attrs["strides"], attrs["dilations"], attrs["padding"], 0)
    return np.einsum("nhwpqc,nhwcm->pqcm", win, g.reshape(g.shape[:3] + (c, m))).astype(g.dtype)


def _dw_attrs(op):
    return {k: op.attrs[k] for k in ("strides", "dilations", "padding")}


def _depthwise_gradient(op, grads):
    x, f = op.inputs
    a = _dw_attrs(op)
    return [make1("depthwise_conv2d_native_backprop_input", (grads[0], f, x), a),
            make1("depthwise_conv2d_native_backprop_filter", (x, grads[0], f), a)]


def _depthwise_backprop_input_gradient(op, grads):
    g_out, f, _ = op.inputs
    a = _dw_attrs(op)
    return [make1("depthwise_conv2d_native", (grads[0], f), a),
            make1("depthwise_conv2d_native_backprop_filter", (grads[0], g_out, f), a), None]


def _depthwise_backprop_filter_gradient(op, grads):
    x, g_out, _ = op.inputs
    a = _dw_attrs(op)
    return [make1("depthwise_conv2d_native_backprop_input", (g_out, grads[0], x), a),
            make1("depthwise_conv2d_native", (x, grads[0]), a), None]


define("depthwise_conv2d_native", "nn", _infer_depthwise, one_output(_ref_depthwise), gradient=_depthwise_gradient,
       doc="Depthwise 2-D convolution: NHWC input, (kh, kw, C, M) filter, output channel c*M + m is channel c "
           "convolved with filter[:, :, c, m]; conv2d's strides, dilations and TensorFlow padding.")
define("depthwise_conv2d_native_backprop_input", "nn", _infer_depthwise_backprop_input,
       one_output(_ref_depthwise_backprop_input), gradient=_depthwise_backprop_input_gradient,
       shape_only_inputs=lambda attrs, n: (2,),
       doc="Gradient of depthwise_conv2d_native for its input: inputs (grad, filter, input-like).")
define("depthwise_conv2d_native_backprop_filter", "nn", _infer_depthwise_backprop_filter,
       one_output(_ref_depthwise_backprop_filter), gradient=_depthwise_backprop_filter_gradient,
       shape_only_inputs=lambda attrs, n: (2,),
       doc="Gradient of depthwise_conv2d_native for its filter: inputs (input, grad, filter-like).")


# --- NCHW: TF1's data_format="NCHW", by transposes around the NHWC op ----------------------------------
def _data_format(op: str, data_format) -> str:
    fmt = "NHWC" if data_format is None else str(data_format)
    if fmt not in ("NHWC", "NCHW"):
        raise shape_error(op, f"data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    return fmt


def _nhwc_list(value, fmt: str, op: str):
    """A 4-list of strides / ksize / dilations given in NCHW order ([1, 1, h, w]) in NHWC order."""
    if fmt == "NCHW" and not isinstance(value, numbers.Integral) and len(tuple(value)) == 4:
        v = tuple(value)
        if v[0] != 1 or v[1] != 1:
            raise shape_error(op, f"{list(v)} must not cover the batch or channel axis (NCHW: [1, 1, h, w])")
        return (1, v[2], v[3], 1)
    return value


def _to_nhwc(x):
    return transpose(x, (0, 2, 3, 1))


def _to_nchw(y, name):
    return transpose(y, (0, 3, 1, 2), name=name)

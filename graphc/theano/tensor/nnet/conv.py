"""``theano.tensor.nnet.conv2d``: Theano's convolution over graphc's NHWC ``conv2d``.

Theano's layout is NCHW input and ``(output channels, input channels, rows, cols)``
filters, and by default (``filter_flip=True``) it computes a true convolution: the filters
are flipped in both spatial dims, unlike TensorFlow's cross-correlation. The flip and the
layout changes are ordinary graphc ops (reverse, transpose) around ``gc.nn.conv2d``.
"""
from __future__ import annotations

import numbers

from ....errors import ShapeError
from ....graph import user_location
from ....ops import nn
from ....ops import shape as sh
from ...variables import TensorVariable, as_tensor


def _pair(v, what):
    if isinstance(v, numbers.Integral):
        return int(v), int(v)
    try:
        a, b = v
        return int(a), int(b)
    except (TypeError, ValueError):
        raise ValueError(f"conv2d at {user_location()}: {what} must be an int or a pair of ints, got {v!r}") from None


def _check_shape(t, given, what):
    if given is None:
        return
    given = tuple(given)
    if len(given) != 4 or any(g is not None and s is not None and int(g) != s for g, s in zip(given, t.shape)):
        raise ShapeError(f"conv2d at {user_location()}: {what}={given} does not match '{t.name}' of shape "
                         f"{tuple(t.shape)}")


def conv2d(input, filters, input_shape=None, filter_shape=None, border_mode="valid", subsample=(1, 1),
           filter_flip: bool = True, image_shape=None, filter_dilation=(1, 1), num_groups: int = 1, **kwargs):
    """``conv2d(input, filters, input_shape=None, filter_shape=None, border_mode='valid',
    subsample=(1, 1), filter_flip=True, filter_dilation=(1, 1))``: ``input`` is NCHW,
    ``filters`` (out, in, rows, cols). ``border_mode``: 'valid', 'full', 'half' (same size for
    odd filters), an int or a pair of ints (zero padding)."""
    x, w = as_tensor(input), as_tensor(filters)
    if x.ndim != 4 or w.ndim != 4:
        raise ShapeError(f"conv2d at {user_location()}: input '{x.name}' and filters '{w.name}' must be 4-D "
                         f"(NCHW and (out, in, rows, cols)), got ranks {x.ndim} and {w.ndim}")
    if num_groups != 1:
        raise ValueError(f"conv2d at {user_location()}: num_groups={num_groups} is not supported")
    input_shape = input_shape if input_shape is not None else image_shape
    _check_shape(x, input_shape, "input_shape")
    _check_shape(w, filter_shape, "filter_shape")
    # the shape hints make unknown dims known (a wrong hint is an error when the graph runs)
    if filter_shape is not None and not w.shape.is_fully_defined() and None not in tuple(filter_shape):
        w = sh.reshape(w, [int(d) for d in filter_shape])
    kh, kw = w.shape[2], w.shape[3]
    if kh is None or kw is None:
        raise ShapeError(f"conv2d at {user_location()}: the filters' rows and cols must be known, but '{w.name}' "
                         f"has shape {tuple(w.shape)}; pass filter_shape")
    dh, dw = _pair(filter_dilation, "filter_dilation")
    if border_mode == "valid":
        pad = (0, 0)
    elif border_mode in ("full", "half"):
        eh, ew_ = (kh - 1) * dh + 1, (kw - 1) * dw + 1
        pad = (eh - 1, ew_ - 1) if border_mode == "full" else (eh // 2, ew_ // 2)
    elif border_mode == "full":
        pad = (eh - 1, ew_ - 1)
    elif border_mode == "half":
        pad = (eh // 2, ew_ // 2)
    elif isinstance(border_mode, (numbers.Integral, tuple, list)):
        pad = _pair(border_mode, "border_mode")
    else:
        raise ValueError(f"conv2d at {user_location()}: border_mode must be 'valid', 'full', 'half', an int or a "
                         f"pair, got {border_mode!r}")
    if filter_flip:
        w = sh.reverse(w, [2, 3])
    xh = sh.transpose(x, [0, 2, 3, 1])                  # NCHW -> NHWC
    if pad != (0, 0):
        xh = sh.pad(xh, [[0, 0], [pad[0], pad[0]], [pad[1], pad[1]], [0, 0]])
    wh = sh.transpose(w, [2, 3, 1, 0])                  # (out, in, kh, kw) -> HWIO
    y = nn.conv2d(xh, wh, strides=_pair(subsample, "subsample"), padding="VALID", dilations=(dh, dw))
    return TensorVariable(sh.transpose(y, [0, 3, 1, 2]))  # NHWC -> NCHW

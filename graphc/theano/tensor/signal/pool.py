"""``theano.tensor.signal.pool.pool_2d`` over graphc's NHWC pooling (Theano's layout is NCHW:
the last two dims are pooled, every leading dim is kept)."""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from ....graph import user_location
from ....ops import nn
from ....ops import shape as sh
from ....ops.source import shape as shape_of
from ...variables import TensorVariable, _int64, as_tensor

_MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


def _pair(v, what):
    if isinstance(v, numbers.Integral):
        return int(v), int(v)
    try:
        a, b = v
        return int(a), int(b)
    except (TypeError, ValueError):
        raise ValueError(f"pool_2d at {user_location()}: {what} must be a pair of ints, got {v!r}") from None


def pool_2d(input, ws=None, ignore_border=None, stride=None, pad=(0, 0), mode="max", ds=None, st=None,
            padding=None):
    """``pool_2d(input, ws, ignore_border=None, stride=None, pad=(0, 0), mode='max')`` over the
    last two dims. ``ignore_border=False`` (Theano's default, with a warning as in Theano)
    keeps the partial windows at the bottom and right edges; it needs those dims known.
    ``ds``, ``st`` and ``padding`` are the old names of ``ws``, ``stride`` and ``pad``."""
    ws = ws if ws is not None else ds
    stride = stride if stride is not None else st
    pad = padding if padding is not None else pad
    if ws is None:
        raise TypeError(f"pool_2d at {user_location()}: ws (the window shape) is required")
    if mode not in _MODES:
        raise ValueError(f"pool_2d at {user_location()}: mode must be one of {_MODES}, got {mode!r}")
    if ignore_border is None:
        warnings.warn("pool_2d: ignore_border was not given; like Theano it defaults to False (partial windows "
                      "are kept). Pass ignore_border=True or False to silence this.", stacklevel=2)
        ignore_border = False
    kh, kw = _pair(ws, "ws")
    sth, stw = _pair(stride if stride is not None else (kh, kw), "stride")
    ph, pw = _pair(pad, "pad")
    x = as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"pool_2d at {user_location()}: input '{x.name}' needs at least 2 dims, got {x.ndim}")
    if (ph or pw) and not ignore_border:
        raise ValueError(f"pool_2d at {user_location()}: pad={pad} needs ignore_border=True (as in Theano)")
    if ph >= kh or pw >= kw:
        raise ValueError(f"pool_2d at {user_location()}: pad {pad} must be smaller than the window {ws}")
    lead = x.ndim - 2
    dims = shape_of(x)
    h, w = x.shape[-2], x.shape[-1]
    # to NHWC with one channel: (..., H, W) -> (prod(...), H, W, 1)
    t = sh.reshape(x, _spec([-1, dims[-2] if h is None else h, dims[-1] if w is None else w, 1]))
    extra_h = extra_w = 0
    if not ignore_border:
        if h is None or w is None:
            raise ValueError(f"pool_2d at {user_location()}: ignore_border=False needs the pooled dims of "
                             f"'{x.name}' known, got shape {tuple(x.shape)}; pass ignore_border=True")
        extra_h, extra_w = _partial(h, kh, sth), _partial(w, kw, stw)
    padded = bool(ph or pw or extra_h or extra_w)
    if mode == "max":
        low = -np.inf if x.dtype.is_floating else np.iinfo(x.dtype.np).min
        if padded:
            t = sh.pad(t, [[0, 0], [ph, ph + extra_h], [pw, pw + extra_w], [0, 0]], constant_values=low)
        y = nn.max_pool2d(t, (kh, kw), (sth, stw), "VALID")
    else:
        if padded:
            t = sh.pad(t, [[0, 0], [ph, ph + extra_h], [pw, pw + extra_w], [0, 0]])
        y = nn.avg_pool2d(t, (kh, kw), (sth, stw), "VALID")
        if mode == "sum":
            y = y * float(kh * kw)
        elif mode == "average_exc_pad" and padded:
            y = y * _count(h, w, kh, kw, sth, stw, ph, pw, extra_h, extra_w, x.dtype.np)
        elif mode == "average_inc_pad" and (extra_h or extra_w):
            # Theano counts the explicit padding but not the cells past the border
            y = y * _count(h + 2 * ph, w + 2 * pw, kh, kw, sth, stw, 0, 0, extra_h, extra_w, x.dtype.np)
    ydims = shape_of(y)
    lead_spec = [dims[d] if x.shape[d] is None else x.shape[d] for d in range(lead)]
    tail = [ydims[1] if y.shape[1] is None else y.shape[1], ydims[2] if y.shape[2] is None else y.shape[2]]
    return TensorVariable(sh.reshape(y, _spec(lead_spec + tail)))


def _spec(parts):
    """A reshape spec: a list of ints, or a stacked int64 vector when a part is a tensor."""
    if all(isinstance(p, int) for p in parts):
        return parts
    return sh.stack([p if not isinstance(p, int) else _int64(np.int64(p)) for p in parts])


def _partial(size: int, k: int, s: int) -> int:
    """Cells of padding after the last row (or column) that make Theano's partial windows
    (ignore_border=False) full ones: Theano's output size, then the input it covers."""
    if s >= k:
        n_out = (size - 1) // s + 1
    else:
        n_out = max(0, (size - 1 - k + s) // s) + 1
    return max(0, (n_out - 1) * s + k - size)


def _count(h, w, kh, kw, sth, stw, ph, pw, extra_h, extra_w, np_dtype):
    """avg_pool2d divides by the whole window; average_exc_pad divides by the cells inside the
    input: the ratio window / inside, per output cell (static sizes)."""
    if h is None or w is None:
        raise ValueError(f"pool_2d at {user_location()}: mode='average_exc_pad' with padding needs the pooled dims "
                         "known")
    inside = np.zeros((h + 2 * ph + extra_h, w + 2 * pw + extra_w), np_dtype)
    inside[ph:ph + h, pw:pw + w] = 1
    oh = (inside.shape[0] - kh) // sth + 1
    ow = (inside.shape[1] - kw) // stw + 1
    ratio = np.empty((oh, ow), np_dtype)
    for i in range(oh):
        for j in range(ow):
            ratio[i, j] = kh * kw / inside[i * sth:i * sth + kh, j * stw:j * stw + kw].sum()
    return ratio.reshape(1, oh, ow, 1)


def max_pool_2d_same_size(input, patch_size):
    raise NotImplementedError(f"max_pool_2d_same_size at {user_location()}: not supported by graphc.theano")

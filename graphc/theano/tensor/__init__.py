"""``theano.tensor`` (``import graphc.theano.tensor as T``): variable constructors and the
functions of Theano's tensor module, each building ordinary graphc ops."""
from __future__ import annotations

import builtins
import numbers
from typing import Optional

import numpy as np

from ... import dtypes as dt
from ...graph import user_location
from ...ops import elementwise as ew
from ...ops import linalg
from ...ops import reduce as rd
from ...ops import shape as sh
from ...ops import source
from ..config import config
from ..variables import (  # noqa: F401
    SharedVariable, TensorVariable, argmax, argmin, as_tensor, flatten, lift, reshape, symbolic_arange, unwrap,
    wrap,
)
from ..variables import _is_symbolic

TensorType = TensorVariable  # isinstance(x, T.TensorVariable) is the usual check


# --- constructors ------------------------------------------------------------------------------------
def _constructor(ndim: int, fixed: Optional[str], label: str):
    def make(name: Optional[str] = None, dtype=None) -> TensorVariable:
        kind = fixed or dtype or config.floatX
        try:
            d = dt.as_dtype(kind)
        except (TypeError, ValueError) as e:
            raise TypeError(f"T.{label} at {user_location()}: unknown dtype {kind!r} ({e})") from None
        t = source.placeholder(d, shape=(None,) * ndim, name=name or label)
        return TensorVariable(t, name)
    make.__name__ = label
    make.__doc__ = f"A symbolic {label} of rank {ndim} ({fixed or 'dtype, default theano.config.floatX'})."
    return make


_RANKS = {"scalar": 0, "vector": 1, "matrix": 2, "tensor3": 3, "tensor4": 4, "row": 2, "col": 2}
_PREFIXES = {"f": "float32", "d": "float64", "i": "int32", "l": "int64", "b": "int8", "w": "int16", "c": None}
for _kind, _ndim in _RANKS.items():
    globals()[_kind] = _constructor(_ndim, None, _kind)
    for _p, _dtype in _PREFIXES.items():
        if _dtype is not None and _dtype in ("float32", "float64", "int32", "int64", "int8"):
            globals()[_p + _kind] = _constructor(_ndim, _dtype, _p + _kind)


def tensor(dtype=None, broadcastable=None, name: Optional[str] = None) -> TensorVariable:
    """``T.tensor(dtype, broadcastable)``: a variable of rank ``len(broadcastable)``."""
    ndim = len(broadcastable or ())
    return _constructor(ndim, None, "tensor")(name, dtype)


def as_tensor_variable(x, name: Optional[str] = None, ndim: Optional[int] = None) -> TensorVariable:
    if isinstance(x, TensorVariable):
        return x
    t = as_tensor(x)
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"as_tensor_variable at {user_location()}: expected rank {ndim}, got {t.ndim}")
    return TensorVariable(t, name)


def constant(x, name: Optional[str] = None, ndim: Optional[int] = None, dtype=None) -> TensorVariable:
    arr = np.asarray(x, dtype=dtype)
    if arr.dtype == np.float64 and dtype is None and not isinstance(x, np.ndarray):
        arr = arr.astype(config.floatX)
    return as_tensor_variable(source.constant(arr, name=name), name, ndim)


# --- elementwise ---------------------------------------------------------------------------------------
exp, log, log1p, expm1, tanh, sqrt, sin, cos, sgn, floor, ceil = (
    lift(f, n) for f, n in ((ew.exp, "exp"), (ew.log, "log"), (ew.log1p, "log1p"), (ew.expm1, "expm1"),
                            (ew.tanh, "tanh"), (ew.sqrt, "sqrt"), (ew.sin, "sin"), (ew.cos, "cos"),
                            (ew.sign, "sgn"), (ew.floor, "floor"), (ew.ceil, "ceil")))
sqr = lift(ew.square, "sqr")
square = sqr
abs_ = lift(ew.abs, "abs_")
round = lift(ew.round, "round")  # noqa: A001
maximum, minimum = lift(ew.maximum, "maximum"), lift(ew.minimum, "minimum")
eq, neq = lift(ew.equal, "eq"), lift(ew.not_equal, "neq")
lt, le, gt, ge = (lift(f, n) for f, n in ((ew.less, "lt"), (ew.less_equal, "le"), (ew.greater, "gt"),
                                          (ew.greater_equal, "ge")))
and_, or_, xor, invert = (lift(f, n) for f, n in ((ew.logical_and, "and_"), (ew.logical_or, "or_"),
                                                  (ew.logical_xor, "xor"), (ew.logical_not, "invert")))
pow = lift(ew.pow, "pow")  # noqa: A001
true_div = lift(ew.divide, "true_div")
int_div = lift(ew.floordiv, "int_div")
clip = lift(ew.clip_by_value, "clip")
zeros_like = lift(source.zeros_like, "zeros_like")
ones_like = lift(source.ones_like, "ones_like")
nonzero_values = None  # not provided


def cast(x, dtype) -> TensorVariable:
    """``T.cast(x, dtype)``; ``dtype`` "floatX" is ``theano.config.floatX``."""
    return TensorVariable(ew.cast(as_tensor(x), config.floatX if dtype == "floatX" else dtype))


def switch(cond, ift, iff) -> TensorVariable:
    """``T.switch(cond, ift, iff)``: elementwise choice, broadcasting (a numeric cond is true where nonzero)."""
    c = as_tensor(cond)
    if not c.dtype.is_bool:
        c = ew.not_equal(c, np.zeros((), c.dtype.np))
    return TensorVariable(ew.where(c, unwrap(ift), unwrap(iff)))


where = switch


# --- reductions ----------------------------------------------------------------------------------------
def _reduction(method: str):
    def reduce(x, axis=None, keepdims: bool = False, **kw) -> TensorVariable:
        return getattr(as_tensor_variable(x), method)(axis=axis, keepdims=keepdims, **kw)
    reduce.__name__ = method
    return reduce


sum, mean, max, min, prod, var, std = (_reduction(m) for m in  # noqa: A001
                                       ("sum", "mean", "max", "min", "prod", "var", "std"))


def max_and_argmax(x, axis=None):
    v = as_tensor_variable(x)
    return v.max(axis=axis), argmax(v, axis=axis)


# --- linear algebra --------------------------------------------------------------------------------------
def dot(a, b) -> TensorVariable:
    """``T.dot``: matrix/vector products as NumPy's ``dot`` (rank 1 and 2)."""
    x, y = as_tensor(a), as_tensor(b)
    if x.ndim == 0 or y.ndim == 0:
        return TensorVariable(x * y)
    if x.ndim > 2 or y.ndim > 2:
        return tensordot(a, b, axes=[[x.ndim - 1], [builtins.max(y.ndim - 2, 0)]])
    return TensorVariable(linalg.matmul(x, y))


def tensordot(a, b, axes=2) -> TensorVariable:
    from ...ops.einsum import einsum
    x, y = as_tensor(a), as_tensor(b)
    if isinstance(axes, numbers.Integral):
        axes = [list(range(x.ndim - axes, x.ndim)), list(range(axes))]
    ax, ay = [list(np.atleast_1d(a_)) for a_ in axes]
    letters = "abcdefghijklmnopqrstuvwxyz"
    xs = list(letters[:x.ndim])
    ys = list(letters[x.ndim:x.ndim + y.ndim])
    for i, j in zip(ax, ay):
        ys[j] = xs[i]
    out = [c for k, c in enumerate(xs) if k not in ax] + [c for k, c in enumerate(ys) if k not in ay]
    return TensorVariable(einsum(f"{''.join(xs)},{''.join(ys)}->{''.join(out)}", x, y))


outer = lift(lambda x, y: sh.expand_dims(x, 1) * sh.expand_dims(y, 0), "outer")


# --- shapes -------------------------------------------------------------------------------------------------
def arange(start, stop=None, step=1, dtype=None) -> TensorVariable:
    """``T.arange``: with Python numbers a constant, with scalar tensor bounds (``y.shape[0]``)
    a range computed at run time."""
    if stop is None:
        start, stop = 0, start
    if _is_symbolic(start) or _is_symbolic(stop) or _is_symbolic(step):
        if _is_symbolic(step):
            raise TypeError(f"T.arange at {user_location()}: the step must be a Python int")
        out = symbolic_arange(start, stop, step)
        return TensorVariable(out if dtype is None else ew.cast(out, dtype))
    arr = np.arange(start, stop, step)
    if dtype is not None:
        arr = arr.astype(config.floatX if dtype == "floatX" else dtype)
    elif arr.dtype == np.float64:
        arr = arr.astype(config.floatX)
    return TensorVariable(source.constant(arr))


def concatenate(tensor_list, axis: int = 0) -> TensorVariable:
    return TensorVariable(sh.concat([as_tensor(t) for t in tensor_list], axis=axis))


def stack(tensors, axis: int = 0) -> TensorVariable:
    return TensorVariable(sh.stack([as_tensor(t) for t in tensors], axis=axis))


def shape(x) -> TensorVariable:
    return as_tensor_variable(x).shape


def transpose(x, axes=None) -> TensorVariable:
    return TensorVariable(sh.transpose(as_tensor(x), axes))


def zeros(shape_, dtype=None) -> TensorVariable:
    return _filled(shape_, dtype, source.zeros)


def ones(shape_, dtype=None) -> TensorVariable:
    return _filled(shape_, dtype, source.ones)


def _filled(shape_, dtype, fn):
    parts = list(shape_) if isinstance(shape_, (list, tuple)) else [shape_]
    d = dt.as_dtype(dtype or config.floatX)
    if any(_is_symbolic(p) for p in parts):
        from ..variables import _int64
        return TensorVariable(fn(sh.stack([_int64(p) for p in parts]), d))
    return TensorVariable(fn([int(p) for p in parts], d))


def grad(cost, wrt, consider_constant=None, disconnected_inputs="raise", **kw):
    from ..compile import grad as _grad
    return _grad(cost, wrt, consider_constant, disconnected_inputs, **kw)


from . import nnet, signal  # noqa: E402,F401
from .nnet import sigmoid, softmax, softplus  # noqa: E402,F401
del _kind, _ndim, _p, _dtype

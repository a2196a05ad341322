"""Theano's variables over graphc tensors.

A Theano tensor differs from a graphc ``Tensor`` in a few user-visible ways: ``x.shape`` is
symbolic (``T.arange(y.shape[0])``), ``x.dtype`` is a string (``y.dtype.startswith('int')``),
and it has ``dimshuffle``, ``flatten(ndim)``, ``reshape(shape, ndim)``, ``mean()``,
``sum()``, ``argmax()``... So ``TensorVariable`` is a thin wrapper that holds one graphc
tensor (``.gc``) and builds ordinary graphc ops; graphc's own ``Tensor`` is left as it is.

Shared variables are graphc ``Variable``s whose values live in one session per graph, the
graph's *Theano session* (``session_for``): every ``theano.function`` of that graph runs in
it, so a value set by one function's updates is what the next one reads, as in Theano.
"""
from __future__ import annotations

import numbers
import weakref
from typing import Optional

import numpy as np

from .. import dtypes as dt
from ..errors import DTypeError, ShapeError
from ..graph import Tensor, get_default_graph, user_location
from ..ops import elementwise as ew
from ..ops import reduce as rd
from ..ops import shape as sh
from ..ops.source import convert_to_tensor, fill
from ..ops.source import shape as shape_of
from ..ops.state import Variable
from .config import config

# --- the session of each graph --------------------------------------------------------------------
_SESSIONS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def session_for(graph=None):
    """The session that holds the shared variables of ``graph`` (default: the default graph),
    made on first use on ``theano.config.device``."""
    from ..runtime.session import Session
    graph = graph if graph is not None else get_default_graph()
    sess = _SESSIONS.get(graph)
    if sess is None or sess.closed:
        sess = Session(graph, device=config.device)
        _SESSIONS[graph] = sess
    return sess


# --- wrapping ---------------------------------------------------------------------------------------
def wrap(value):
    """graphc tensors (in any list/tuple nesting) as Theano variables; anything else as it is."""
    if isinstance(value, Tensor):
        return TensorVariable(value)
    if isinstance(value, (list, tuple)) and not isinstance(value, TensorVariable):
        return type(value)(wrap(v) for v in value)
    return value


def unwrap(value):
    """The graphc value of a Theano variable (a shared variable gives its graphc Variable);
    lists and tuples are unwrapped element by element."""
    if isinstance(value, SharedVariable):
        return value.variable
    if isinstance(value, TensorVariable):
        return value.gc
    if isinstance(value, (list, tuple)):
        return type(value)(unwrap(v) for v in value)
    return value


def as_tensor(value, dtype=None) -> Tensor:
    """A graphc Tensor for a Theano variable, a graphc value, or a NumPy/Python value."""
    value = unwrap(value)
    if dtype is not None and not isinstance(value, (Tensor, Variable)):
        return convert_to_tensor(np.asarray(value, dtype=dt.as_dtype(dtype).np))
    return convert_to_tensor(value)


def lift(fn, name: Optional[str] = None):
    """``fn`` over graphc values, as a function of Theano values: arguments are unwrapped,
    graphc tensors in the result wrapped."""
    def lifted(*args, **kwargs):
        return wrap(fn(*unwrap(args), **{k: unwrap(v) for k, v in kwargs.items()}))
    lifted.__name__ = name or getattr(fn, "__name__", "op")
    lifted.__doc__ = fn.__doc__
    return lifted


def _is_symbolic(v) -> bool:
    return isinstance(v, (TensorVariable, Tensor, Variable))


def _int64(v) -> Tensor:
    t = as_tensor(v) if _is_symbolic(v) else convert_to_tensor(np.int64(v))
    if not t.dtype.is_integer:
        raise DTypeError(f"index at {user_location()}: '{t.name}' must be an integer, got {t.dtype.name}")
    return t if t.dtype is dt.int64 else ew.cast(t, dt.int64)


# --- symbolic ranges and slices ---------------------------------------------------------------------
# graphc plans memory from feed shapes, so a tensor's size may depend on input *shapes* but
# never on input *values*. A range or slice with tensor bounds is therefore built when its
# length is known anyway: a Python int (``index * n : (index + 1) * n`` has length n whatever
# ``index`` is; ``affine`` finds that) or a dim of some tensor (``T.arange(y.shape[0])``).

def affine(v):
    """``v`` (a Python int or a scalar integer tensor) as ``({leaf tensor: coeff}, constant)``
    over adds, subtracts, negations, casts and products with constants; None when it is not one."""
    if isinstance(v, numbers.Integral):
        return {}, int(v)
    t = as_tensor(v)
    if t.ndim != 0 or not t.dtype.is_integer:
        return None
    op = t.op
    if op.type == "const":
        return {}, int(op.attrs["value"])
    if op.type in ("cast", "identity") and op.inputs[0].dtype.is_integer:
        return affine(op.inputs[0])
    if op.type in ("add", "subtract"):
        a, b = affine(op.inputs[0]), affine(op.inputs[1])
        if a is None or b is None:
            return None
        sign = 1 if op.type == "add" else -1
        terms = dict(a[0])
        for leaf, c in b[0].items():
            terms[leaf] = terms.get(leaf, 0) + sign * c
        return {k: c for k, c in terms.items() if c}, a[1] + sign * b[1]
    if op.type == "negative":
        a = affine(op.inputs[0])
        return None if a is None else ({k: -c for k, c in a[0].items()}, -a[1])
    if op.type == "multiply":
        a, b = affine(op.inputs[0]), affine(op.inputs[1])
        if a is not None and b is not None and (not a[0] or not b[0]):
            (terms, c), k = (b, a[1]) if not a[0] else (a, b[1])
            return {leaf: coeff * k for leaf, coeff in terms.items() if coeff * k}, c * k
    return {t: 1}, 0


def _static_difference(stop, start):
    """``stop - start`` as a Python int when it is the same for every value of the inputs."""
    a, b = affine(stop), affine(start)
    if a is None or b is None:
        return None
    terms = dict(a[0])
    for leaf, c in b[0].items():
        terms[leaf] = terms.get(leaf, 0) - c
    return a[1] - b[1] if not any(terms.values()) else None


def _count_up(length) -> Tensor:
    """0, 1, ..., length - 1 for ``length`` an int or a scalar tensor derived from a shape."""
    from ..ops.cumulative import cumsum
    if isinstance(length, numbers.Integral):
        return convert_to_tensor(np.arange(max(int(length), 0), dtype=np.int64))
    ones = fill(sh.stack([_int64(length)]), convert_to_tensor(np.int64(1)))
    return cumsum(ones) - np.int64(1)


def symbolic_arange(start, stop, step: int = 1, what: str = "arange") -> Tensor:
    """``np.arange(start, stop, step)`` with scalar tensor bounds and a Python int step; its
    length must not depend on tensor values (see above)."""
    if not isinstance(step, numbers.Integral) or step == 0:
        raise ValueError(f"{what} at {user_location()}: with tensor bounds the step must be a nonzero Python int, "
                         f"got {step!r}")
    for name, b in (("start", start), ("stop", stop)):
        if _is_symbolic(b) and as_tensor(b).ndim != 0:
            raise ShapeError(f"{what} at {user_location()}: {name} '{as_tensor(b).name}' must be a scalar, got shape "
                             f"{tuple(as_tensor(b).shape)}")
    span = _static_difference(stop, start)
    if span is not None:
        length = max(-(-span // step) if step > 0 else -(-(-span) // -step), 0)
        return _int64(start) + _count_up(length) * np.int64(step)
    if step == 1 and affine(start) == ({}, 0):
        try:
            return _count_up(stop)
        except ShapeError:
            pass
    raise ShapeError(f"{what} at {user_location()}: the length of the range from {_describe(start)} to "
                     f"{_describe(stop)} depends on tensor values; graphc needs it to be a Python int "
                     "(as in x[i * n:(i + 1) * n]) or a dim of a tensor (as in T.arange(y.shape[0]))")


def _describe(v) -> str:
    return f"'{as_tensor(v).name}'" if _is_symbolic(v) else repr(v)


def dynamic_slice(x: Tensor, key: slice, axis: int) -> Tensor:
    """``x[..., start:stop:step, ...]`` along ``axis`` where a bound is a tensor (the minibatch
    idiom ``data[index * batch_size: (index + 1) * batch_size]``): a gather of the range. The
    indices must lie inside ``x`` (a slice past the end is a run-time error, not a short slice)."""
    step = 1 if key.step is None else key.step
    if not isinstance(step, numbers.Integral) or step <= 0:
        raise ValueError(f"slice at {user_location()}: with tensor bounds the step must be a positive Python int, "
                         f"got {step!r}")
    if key.start is None or key.stop is None:
        raise ShapeError(f"slice of '{x.name}' at {user_location()}: with a tensor bound, give both bounds (as in "
                         "x[i * n:(i + 1) * n]): graphc needs the slice's length to be known without the values")
    return sh.gather(x, symbolic_arange(key.start, key.stop, int(step), what=f"slice of '{x.name}'"), axis=axis)


def _advanced(x: Tensor, key: tuple) -> Tensor:
    """``x[i, j, ...]`` with two or more leading integer-array indices of one shape (Theano's
    ``log_p[T.arange(n), y]``): one gather from ``x`` flattened over the indexed dims."""
    k = 0
    while k < len(key) and _is_index_array(key[k]):
        k += 1
    rest = key[k:]
    if any(not (isinstance(r, slice) and r == slice(None)) for r in rest):
        raise IndexError(f"indexing at {user_location()}: with several array indices, the indices must come first "
                         f"and the other entries be ':' (got {key!r})")
    if k > x.ndim:
        raise IndexError(f"indexing at {user_location()}: {k} indices for '{x.name}' of rank {x.ndim}")
    idx = [_int64(i) if _is_symbolic(i) else convert_to_tensor(np.asarray(i, dtype=np.int64)) for i in key[:k]]
    shapes = {tuple(i.shape) for i in idx}
    if len({len(s) for s in shapes}) != 1:
        raise IndexError(f"indexing at {user_location()}: the array indices must have one shape, got "
                         f"{[tuple(i.shape) for i in idx]}")
    dims = shape_of(x, dt.int64)
    flat = idx[0]
    for j in range(1, k):
        flat = flat * dims[j] + idx[j]
    tail = [dims[d] for d in range(k, x.ndim)] if any(s is None for s in x.shape[k:]) else list(x.shape[k:])
    spec = sh.stack([convert_to_tensor(np.int64(-1))] + tail) if tail and isinstance(tail[0], Tensor) \
        else [-1] + tail
    return sh.gather(sh.reshape(x, spec), flat, axis=0)


def _is_index_array(k) -> bool:
    if _is_symbolic(k):
        return True
    return isinstance(k, (list, np.ndarray)) and np.asarray(k).dtype.kind in "iu"


def getitem(x: Tensor, key):
    key = key if isinstance(key, tuple) else (key,)
    key = tuple(unwrap(k) if not isinstance(k, slice) else
                slice(unwrap(k.start), unwrap(k.stop), unwrap(k.step)) for k in key)
    if sum(1 for k in key if _is_index_array(k)) > 1:
        return _advanced(x, key)
    dynamic = [isinstance(k, slice) and any(_is_symbolic(b) for b in (k.start, k.stop, k.step)) for k in key]
    if not any(dynamic):
        return sh.getitem(x, key)
    if not all(isinstance(k, slice) for k in key):
        raise IndexError(f"indexing at {user_location()}: a slice with tensor bounds can only be combined with "
                         f"other slices, got {key!r}")
    out = x
    for axis, k in enumerate(key):
        if dynamic[axis]:
            out = dynamic_slice(out, k, axis)
        elif k != slice(None):
            out = sh.getitem(out, (slice(None),) * axis + (k,))
    return out


# --- the variable types --------------------------------------------------------------------------
def _reduce(fn, x, axis, keepdims):
    if isinstance(axis, list):
        axis = tuple(axis)
    return fn(x, axis=axis, keepdims=bool(keepdims))


class TensorVariable:
    """A Theano tensor: one graphc tensor (``.gc``) with Theano's methods and operators."""

    __slots__ = ("_t", "name", "__weakref__")

    def __init__(self, tensor: Tensor, name: Optional[str] = None):
        self._t = tensor
        self.name = name

    @property
    def gc(self) -> Tensor:
        return self._t

    # -- type -----------------------------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        return self.gc.dtype.name

    @property
    def ndim(self) -> int:
        return self.gc.ndim

    @property
    def broadcastable(self) -> tuple:
        return tuple(d == 1 for d in self.gc.shape)

    @property
    def shape(self) -> "TensorVariable":
        """The symbolic shape (an int64 vector), as in Theano: ``x.shape[0]`` is a scalar tensor."""
        return TensorVariable(shape_of(self.gc, dt.int64))

    @property
    def size(self) -> "TensorVariable":
        return TensorVariable(rd.reduce_prod(shape_of(self.gc, dt.int64)))

    @property
    def T(self) -> "TensorVariable":  # noqa: N802
        return TensorVariable(sh.transpose(self.gc))

    def __repr__(self) -> str:
        label = self.name or self.gc.name
        return f"<theano TensorVariable '{label}' ndim={self.ndim} dtype={self.dtype}>"

    __hash__ = object.__hash__

    # -- shape methods ----------------------------------------------------------------------------------
    def dimshuffle(self, *pattern) -> "TensorVariable":
        """Theano's ``dimshuffle``: a permutation of the dims, with ``'x'`` for a new broadcastable
        dim; a dim left out must have size 1."""
        if len(pattern) == 1 and isinstance(pattern[0], (list, tuple)):
            pattern = tuple(pattern[0])
        x = self.gc
        kept = [p for p in pattern if p != "x"]
        if any(not isinstance(p, numbers.Integral) for p in kept) or len(set(kept)) != len(kept) \
                or any(not 0 <= p < x.ndim for p in kept):
            raise ValueError(f"dimshuffle at {user_location()}: pattern {pattern!r} must hold distinct dims of "
                             f"'{x.name}' (rank {x.ndim}) and 'x'")
        dropped = [d for d in range(x.ndim) if d not in kept]
        for d in dropped:
            if x.shape[d] not in (1, None):
                raise ValueError(f"dimshuffle at {user_location()}: pattern {pattern!r} drops dim {d} of '{x.name}', "
                                 f"which has size {x.shape[d]}; only a dim of size 1 can be dropped")
        if dropped:
            x = sh.squeeze(x, axis=dropped)
            kept = [p - sum(1 for d in dropped if d < p) for p in kept]
        if kept != sorted(kept):
            x = sh.transpose(x, kept)
        if "x" in pattern:
            x = sh.getitem(x, tuple(None if p == "x" else slice(None) for p in pattern))
        return TensorVariable(x)

    def flatten(self, ndim: int = 1) -> "TensorVariable":
        return flatten(self, ndim)

    def reshape(self, shape, ndim: Optional[int] = None) -> "TensorVariable":
        return reshape(self, shape, ndim)

    def astype(self, dtype) -> "TensorVariable":
        return TensorVariable(ew.cast(self.gc, dtype))

    # -- reductions ------------------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False, dtype=None):
        x = self.gc if dtype is None else ew.cast(self.gc, dtype)
        return TensorVariable(_reduce(rd.reduce_sum, x, axis, keepdims))

    def mean(self, axis=None, keepdims=False, dtype=None):
        x = self.gc if dtype is None else ew.cast(self.gc, dtype)
        return TensorVariable(_reduce(rd.reduce_mean, x, axis, keepdims))

    def max(self, axis=None, keepdims=False):
        return TensorVariable(_reduce(rd.reduce_max, self.gc, axis, keepdims))

    def min(self, axis=None, keepdims=False):
        return TensorVariable(_reduce(rd.reduce_min, self.gc, axis, keepdims))

    def prod(self, axis=None, keepdims=False):
        return TensorVariable(_reduce(rd.reduce_prod, self.gc, axis, keepdims))

    def var(self, axis=None, keepdims=False):
        centred = self.gc - rd.reduce_mean(self.gc, axis=axis, keepdims=True)
        return TensorVariable(_reduce(rd.reduce_mean, ew.square(centred), axis, keepdims))

    def std(self, axis=None, keepdims=False):
        return TensorVariable(ew.sqrt(self.var(axis, keepdims).gc))

    def norm(self, L, axis=None):  # noqa: N803
        if L == 1:
            return TensorVariable(rd.reduce_sum(ew.abs(self.gc), axis=axis))
        if L == 2:
            return TensorVariable(ew.sqrt(rd.reduce_sum(ew.square(self.gc), axis=axis)))
        raise ValueError(f"norm at {user_location()}: L must be 1 or 2, got {L!r}")

    def argmax(self, axis=None, keepdims=False):
        return argmax(self, axis, keepdims)

    def argmin(self, axis=None, keepdims=False):
        return argmin(self, axis, keepdims)

    # -- indexing and evaluation -----------------------------------------------------------------------
    def __getitem__(self, key):
        return TensorVariable(getitem(self.gc, key))

    def __iter__(self):
        raise TypeError(f"Theano variable {self!r} is not iterable; index it or use theano.scan")

    def __len__(self):
        raise TypeError(f"len() of Theano variable {self!r} is not defined; use .shape[0]")

    def __bool__(self):
        raise TypeError(f"the truth value of Theano variable {self!r} is not defined while the graph is built; "
                        "use T.switch / T.eq for symbolic conditions")

    def eval(self, inputs_to_values=None):
        """Theano's ``var.eval({x: value})``: run in the graph's Theano session."""
        feeds = {unwrap_tensor(k): v for k, v in (inputs_to_values or {}).items()}
        return session_for(self.gc.graph).run(self.gc, feeds)


def unwrap_tensor(value) -> Tensor:
    """The graphc tensor that stands for a Theano variable in a graph (a shared variable: its read)."""
    if isinstance(value, SharedVariable):
        return value.variable.value()
    return as_tensor(value)


def _binary(fn, swap=False):
    def op(self, other):
        if isinstance(other, SharedVariable):
            other = other.variable
        elif isinstance(other, TensorVariable):
            other = other.gc
        elif not isinstance(other, (numbers.Number, np.ndarray, np.generic, Tensor, Variable, list)):
            return NotImplemented
        a, b = (other, self.gc) if swap else (self.gc, other)
        return TensorVariable(fn(a, b))
    return op


for _name, _fn in (("add", ew.add), ("sub", ew.subtract), ("mul", ew.multiply), ("truediv", ew.divide),
                   ("floordiv", ew.floordiv), ("mod", ew.mod), ("pow", ew.pow),
                   ("and", ew.logical_and), ("or", ew.logical_or), ("xor", ew.logical_xor)):
    setattr(TensorVariable, f"__{_name}__", _binary(_fn))
    setattr(TensorVariable, f"__r{_name}__", _binary(_fn, swap=True))
for _name, _fn in (("lt", ew.less), ("le", ew.less_equal), ("gt", ew.greater), ("ge", ew.greater_equal)):
    setattr(TensorVariable, f"__{_name}__", _binary(_fn))
TensorVariable.__neg__ = lambda self: TensorVariable(ew.negative(self.gc))
TensorVariable.__pos__ = lambda self: self
TensorVariable.__abs__ = lambda self: TensorVariable(ew.abs(self.gc))
TensorVariable.__invert__ = lambda self: TensorVariable(ew.logical_not(self.gc))


class SharedVariable(TensorVariable):
    """``theano.shared(value)``: a graphc ``Variable`` whose value lives in the graph's Theano
    session (see ``session_for``). It is initialized when made; ``get_value`` / ``set_value``
    read and write it there. Its shape is fixed when it is made."""

    __slots__ = ("variable",)

    def __init__(self, variable: Variable, name: Optional[str] = None):
        self.variable = variable
        self.name = name

    @property
    def gc(self) -> Tensor:
        # read where the graph is being built (inside a scan body, the body's read)
        return convert_to_tensor(self.variable)

    def get_value(self, borrow: bool = False, return_internal_type: bool = False) -> np.ndarray:
        value = session_for(self.variable.graph)._state.read_variable(self.variable.var_name)
        return value if borrow else np.array(value, copy=True)

    def set_value(self, value, borrow: bool = False) -> None:
        var = self.variable
        arr = np.asarray(value)
        if arr.shape != tuple(var.shape):
            raise ShapeError(f"set_value of shared variable '{self.name or var.var_name}' (created at {var.location}) "
                             f"at {user_location()}: expected shape {tuple(var.shape)}, got {arr.shape} (graphc's "
                             "shared variables keep the shape they were made with)")
        if arr.dtype != var.dtype.np and not np.can_cast(arr.dtype, var.dtype.np, "same_kind"):
            raise DTypeError(f"set_value of shared variable '{self.name or var.var_name}' at {user_location()}: "
                             f"expected {var.dtype.name}, got {arr.dtype}")
        session_for(var.graph).load_variable(var, arr.astype(var.dtype.np, copy=False))

    def __repr__(self) -> str:
        return f"<theano SharedVariable '{self.name or self.variable.var_name}' shape={tuple(self.variable.shape)} " \
               f"dtype={self.dtype}>"


def shared(value, name: Optional[str] = None, borrow: bool = False, strict: bool = False,
           allow_downcast=None) -> SharedVariable:
    """``theano.shared(value, name=None, borrow=False)``: a variable holding ``value`` (its NumPy
    dtype is kept: ``numpy.asarray(v, dtype=theano.config.floatX)`` makes a float32 one)."""
    if isinstance(value, (TensorVariable, Tensor, Variable)):
        raise TypeError(f"theano.shared at {user_location()}: expected a NumPy or Python value, got the symbolic "
                        f"{value!r}")
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"theano.shared {name or ''!r} at {user_location()}: expected a numeric array, got dtype "
                        f"{arr.dtype}")
    dtype = dt.as_dtype(arr.dtype)
    graph = get_default_graph()
    with graph.as_default():
        var = Variable(sh.broadcast_to(convert_to_tensor(np.zeros((), dtype.np)), arr.shape) if arr.ndim
                       else convert_to_tensor(np.zeros((), dtype.np)), name=name or "shared", dtype=dtype)
    session_for(graph).load_variable(var, arr)
    return SharedVariable(var, name)


# --- functions the methods share with theano.tensor ----------------------------------------------
def flatten(x, ndim: int = 1) -> TensorVariable:
    """Theano's ``flatten(x, ndim)``: keep the first ``ndim - 1`` dims, merge the rest."""
    t = as_tensor(x)
    if not isinstance(ndim, numbers.Integral) or not 1 <= ndim <= max(t.ndim, 1):
        raise ValueError(f"flatten at {user_location()}: ndim must be in 1..{t.ndim} for '{t.name}', got {ndim!r}")
    lead = list(t.shape[:ndim - 1])
    if any(d is None for d in lead):
        dims = shape_of(t, dt.int64)
        spec = sh.stack([dims[d] for d in range(ndim - 1)] + [convert_to_tensor(np.int64(-1))])
    else:
        spec = lead + [-1]
    return TensorVariable(sh.reshape(t, spec))


def reshape(x, shape, ndim: Optional[int] = None) -> TensorVariable:
    """Theano's ``reshape(x, newshape, ndim=None)``: ``newshape`` is a tuple of ints and scalar
    tensors (``(x.shape[0], -1)``) or an int vector tensor."""
    t = as_tensor(x)
    if _is_symbolic(shape):
        spec = _int64(shape)
        if spec.ndim != 1:
            raise ShapeError(f"reshape at {user_location()}: the shape '{spec.name}' must be a vector")
    else:
        parts = list(shape) if isinstance(shape, (list, tuple)) else [shape]
        if any(_is_symbolic(p) for p in parts):
            spec = sh.stack([_int64(p) for p in parts])
        else:
            spec = [int(p) for p in parts]
    out = sh.reshape(t, spec)
    if ndim is not None and out.ndim != ndim:
        raise ShapeError(f"reshape at {user_location()}: ndim={ndim} but the shape has {out.ndim} entries")
    return TensorVariable(out)


def _arg(fn, x, axis, keepdims):
    t = as_tensor(x)
    if axis is None:
        t, axis = sh.reshape(t, [-1]), 0
        if keepdims:
            raise ValueError(f"argmax/argmin at {user_location()}: keepdims needs an axis")
    return TensorVariable(fn(t, axis=axis, keepdims=bool(keepdims)))


def argmax(x, axis=None, keepdims: bool = False) -> TensorVariable:
    return _arg(rd.argmax, x, axis, keepdims)


def argmin(x, axis=None, keepdims: bool = False) -> TensorVariable:
    return _arg(rd.argmin, x, axis, keepdims)

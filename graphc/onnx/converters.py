"""One converter per ONNX op: ``@converts("OpType") def f(node) -> [value per output]``.

A converter builds graphc ops for the ONNX semantics of its op at the importer's opset
(attributes that later opsets moved to inputs are read from either place). It returns graphc
tensors, or NumPy arrays for results it computes at import time (shapes). Where ONNX means
something other than the graphc op of the same name (integer division truncates, ``Mod``
takes the divisor's sign, pooling and convolution are NCHW), the converter composes the ONNX
meaning from graphc ops; the ONNX backend tests (``tests/onnx/``) hold every converter to it.
"""
from __future__ import annotations

import numpy as np

import graphc as gc

from .. import dtypes as dt
from ..ops.shape import scatter_add
from ..ops.sorting import take_along_axis
from .importer import DTYPES, Dim, NeedsShape, converts, is_symbolic

_INT64_MAX = np.iinfo(np.int64).max


def _axis(node, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        node.fail(f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


# --- elementwise ------------------------------------------------------------------------------
_UNARY = {
    "Abs": gc.abs, "Neg": gc.negative, "Exp": gc.exp, "Log": gc.log, "Sqrt": gc.sqrt,
    "Reciprocal": gc.reciprocal, "Floor": gc.floor, "Ceil": gc.ceil, "Round": gc.round,
    "Sigmoid": gc.sigmoid, "Tanh": gc.tanh, "Sin": gc.sin, "Cos": gc.cos, "Erf": gc.erf,
    "Sign": gc.sign, "Relu": gc.nn.relu, "Softsign": gc.nn.softsign, "Softplus": gc.nn.softplus,
    "IsNaN": gc.isnan, "Not": gc.logical_not, "Tan": gc.tan, "Asin": gc.asin, "Acos": gc.acos, "Atan": gc.atan,
    "Sinh": gc.sinh, "Cosh": gc.cosh, "Asinh": gc.asinh, "Acosh": gc.acosh, "Atanh": gc.atanh,
}


def _unary(fn):
    return lambda node: [fn(node.x(0))]


for _name, _fn in _UNARY.items():
    converts(_name)(_unary(_fn))


@converts("Identity")
def _identity(node):
    v = node.value(0)
    return [v if isinstance(v, np.ndarray) else gc.identity(v)]


@converts("IsInf")
def _isinf(node):
    x = node.x(0)
    pos, neg = node.attr("detect_positive", 1), node.attr("detect_negative", 1)
    inf = gc.logical_and(gc.logical_not(gc.isfinite(x)), gc.logical_not(gc.isnan(x)))
    if pos and neg:
        return [inf]
    if not pos and not neg:
        return [gc.zeros_like(x, dtype=dt.bool_)]
    return [gc.logical_and(inf, x > 0 if pos else x < 0)]


def _same_dtype(node, a, b):
    if a.dtype != b.dtype:
        node.fail(f"its inputs '{a.name}' ({a.dtype.name}) and '{b.name}' ({b.dtype.name}) must have one type")
    return a, b


_BINARY = {
    "Add": gc.add, "Sub": gc.subtract, "Mul": gc.multiply,
    "Equal": gc.equal, "Less": gc.less, "Greater": gc.greater, "LessOrEqual": gc.less_equal,
    "GreaterOrEqual": gc.greater_equal, "And": gc.logical_and, "Or": gc.logical_or, "Xor": gc.logical_xor,
}


def _binary(fn):
    def convert(node):
        return [fn(*_same_dtype(node, node.x(0), node.x(1)))]
    return convert


for _name, _fn in _BINARY.items():
    converts(_name)(_binary(_fn))


def _trunc_div(a, b):
    """Integer division that rounds toward zero (C's, ONNX's), from graphc's floor division."""
    q = gc.floordiv(a, b)
    r = a - q * b
    fix = gc.logical_and(gc.not_equal(r, gc.zeros_like(r)), gc.not_equal(a < 0, b < 0))
    return gc.where(fix, q + gc.ones_like(q), q)


@converts("Div")
def _div(node):
    a, b = _same_dtype(node, node.x(0), node.x(1))
    return [gc.truediv(a, b) if a.dtype.is_floating else _trunc_div(a, b)]


@converts("Mod")
def _mod(node):
    a, b = _same_dtype(node, node.x(0), node.x(1))
    if not node.attr("fmod", 0):
        return [gc.mod(a, b)]    # the divisor's sign, as Python's % (onnxruntime takes floats too)
    # C's fmod: the sign of the dividend.
    r = gc.mod(gc.abs(a), gc.abs(b))
    return [gc.where(a < 0, -r, r)]


@converts("Pow")
def _pow(node):
    a, b = node.x(0), node.x(1)
    if b.dtype != a.dtype:
        b = gc.cast(b, a.dtype)
    return [gc.pow(a, b)]


def _variadic(fn):
    def convert(node):
        xs = [node.x(i) for i in range(len(node.inputs)) if node.has(i)]
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        if node.op_type == "Mean":
            out = out / float(len(xs))
        return [out if len(xs) > 1 else gc.identity(out)]
    return convert


converts("Max")(_variadic(gc.maximum))
converts("Min")(_variadic(gc.minimum))
converts("Sum", "Mean")(_variadic(gc.add))


@converts("Where")
def _where(node):
    return [gc.where(node.x(0), *_same_dtype(node, node.x(1), node.x(2)))]


@converts("Clip")
def _clip(node):
    x = node.x(0)
    # (models older than opset 11, where the bounds were attributes, are converted by reader.py)
    low = node.x(1) if node.has(1) else None
    high = node.x(2) if node.has(2) else None
    if low is not None:
        x = gc.maximum(x, low)
    if high is not None:
        x = gc.minimum(x, high)
    return [x if low is not None or high is not None else gc.identity(x)]


@converts("Cast")
def _cast(node):
    to = node.attr("to")
    from .importer import dtype_of
    dtype = dtype_of(to, f"{node.label}'s target type")   # narrow types: their wide type (narrow.py)
    v = node.value(0)
    if isinstance(v, np.ndarray) and not is_symbolic(v):
        return [v.astype(dtype.np)]
    return [gc.cast(node.x(0), dtype)]


@converts("CastLike")
def _cast_like(node):
    return [gc.cast(node.x(0), node.x(1).dtype)]


# --- activations ------------------------------------------------------------------------------
def _const_like(x, value):
    return gc.constant(np.asarray(value, dtype=x.dtype.np))


@converts("LeakyRelu")
def _leaky_relu(node):
    return [gc.nn.leaky_relu(node.x(0), alpha=node.attr("alpha", 0.01))]


@converts("Elu")
def _elu(node):
    x = node.x(0)
    alpha = node.attr("alpha", 1.0)
    return [gc.nn.elu(x) if alpha == 1.0 else gc.where(x > 0, x, _const_like(x, alpha) * gc.expm1(x))]


@converts("Selu")
def _selu(node):
    x = node.x(0)
    alpha, gamma = node.attr("alpha", 1.67326319217681884765625), node.attr("gamma", 1.05070102214813232421875)
    return [_const_like(x, gamma) * gc.where(x > 0, x, _const_like(x, alpha) * gc.expm1(x))]


@converts("Celu")
def _celu(node):
    x = node.x(0)
    alpha = _const_like(x, node.attr("alpha", 1.0))
    return [gc.maximum(x, 0.0) + gc.minimum(_const_like(x, 0), alpha * gc.expm1(x / alpha))]


@converts("HardSigmoid")
def _hard_sigmoid(node):
    x = node.x(0)
    y = _const_like(x, node.attr("alpha", 0.2)) * x + _const_like(x, node.attr("beta", 0.5))
    return [gc.clip_by_value(y, _const_like(x, 0), _const_like(x, 1))]


@converts("HardSwish")
def _hard_swish(node):
    x = node.x(0)
    return [x * gc.clip_by_value(x / 6.0 + 0.5, _const_like(x, 0), _const_like(x, 1))]


@converts("ThresholdedRelu")
def _thresholded_relu(node):
    x = node.x(0)
    return [gc.where(x > _const_like(x, node.attr("alpha", 1.0)), x, gc.zeros_like(x))]


@converts("Gelu")
def _gelu(node):
    return [gc.nn.gelu(node.x(0), approximate=node.attr("approximate", "none") == "tanh")]


@converts("Mish")
def _mish(node):
    x = node.x(0)
    return [x * gc.tanh(gc.nn.softplus(x))]


@converts("Swish")
def _swish(node):
    x = node.x(0)
    return [x * gc.sigmoid(_const_like(x, node.attr("alpha", 1.0)) * x)]


@converts("PRelu")
def _prelu(node):
    x, slope = node.x(0), node.x(1)
    # A 1-D slope of one value per channel (axis 1), as old exporters wrote it, broadcasts there.
    if slope.ndim == 1 and x.ndim > 2 and slope.shape[0] not in (None, 1) and slope.shape[0] == x.shape[1] \
            and slope.shape[0] != x.shape[-1]:
        slope = gc.reshape(slope, [-1] + [1] * (x.ndim - 2))
    return [gc.where(x < 0, slope * x, x)]


@converts("Shrink")
def _shrink(node):
    x = node.x(0)
    lambd, bias = _const_like(x, node.attr("lambd", 0.5)), _const_like(x, node.attr("bias", 0.0))
    return [gc.where(x < -lambd, x + bias, gc.where(x > lambd, x - bias, gc.zeros_like(x)))]


def _softmax_like(fn):
    def convert(node):
        x = node.x(0)
        rank = node.rank(x)
        if node.opset >= 13:
            return [fn(x, _axis(node, node.attr("axis", -1), rank))]
        # Before opset 13: the input is taken as 2-D, [prod(dims[:axis]), prod(dims[axis:])].
        axis = _axis(node, node.attr("axis", 1), rank)
        if axis == rank - 1:
            return [fn(x, axis)]
        shape = node.static_shape(x)
        flat = gc.reshape(x, [int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))])
        return [gc.reshape(fn(flat, 1), list(shape))]
    return convert


def _hardmax(x, axis):
    depth = x.shape[axis]
    if depth is None:
        raise NeedsShape(f"Hardmax needs the size of axis {axis} of '{x.name}' at import time")
    return gc.one_hot(gc.argmax(x, axis=axis), depth, axis=axis, dtype=x.dtype)


converts("Softmax")(_softmax_like(lambda x, a: gc.nn.softmax(x, axis=a)))
converts("LogSoftmax")(_softmax_like(lambda x, a: gc.nn.log_softmax(x, axis=a)))
converts("Hardmax")(_softmax_like(_hardmax))


# --- linear algebra -------------------------------------------------------------------------
@converts("MatMul")
def _matmul(node):
    a, b = _same_dtype(node, node.x(0), node.x(1))
    ra, rb = node.rank(a), node.rank(b)
    if ra == 1 and rb == 1:
        return [gc.reduce_sum(a * b)]
    if ra == 1:
        return [gc.squeeze(gc.matmul(gc.expand_dims(a, 0), b), [-2])]
    if rb == 1:
        return [gc.squeeze(gc.matmul(a, gc.expand_dims(b, 1)), [-1])]
    return [gc.matmul(a, b)]


@converts("Gemm")
def _gemm(node):
    a, b = _same_dtype(node, node.x(0), node.x(1))
    y = gc.matmul(a, b, transpose_a=bool(node.attr("transA", 0)), transpose_b=bool(node.attr("transB", 0)))
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    if alpha != 1.0:
        y = y * _const_like(y, alpha)
    if node.has(2):
        c = node.x(2)
        if beta != 1.0:
            c = c * _const_like(c, beta)
        y = y + c
    return [y]


@converts("Einsum")
def _einsum(node):
    eq = node.attr("equation").replace(" ", "")
    return [gc.einsum(eq, *[node.x(i) for i in range(len(node.inputs))])]


# --- reductions ---------------------------------------------------------------------------------
def _reduction_axes(node, rank: int):
    """The axes of a Reduce* node (an attribute up to opset 12 for ReduceSum and 17 for the
    others, an input after), or None for all; ``()`` when the node reduces nothing."""
    moved = 13 if node.op_type == "ReduceSum" else 18
    if node.opset >= moved:
        axes = node.ints(1, "axes") if node.has(1) else []
    else:
        axes = node.attr("axes", [])
    if not axes:
        return () if node.attr("noop_with_empty_axes", 0) else None
    return sorted({_axis(node, a, rank) for a in axes})


_REDUCE = {
    "ReduceSum": lambda x, a, k: gc.reduce_sum(x, a, keepdims=k),
    "ReduceMean": lambda x, a, k: gc.reduce_mean(x, a, keepdims=k),
    "ReduceMax": lambda x, a, k: gc.reduce_max(x, a, keepdims=k),
    "ReduceMin": lambda x, a, k: gc.reduce_min(x, a, keepdims=k),
    "ReduceProd": lambda x, a, k: gc.reduce_prod(x, a, keepdims=k),
    "ReduceL1": lambda x, a, k: gc.reduce_sum(gc.abs(x), a, keepdims=k),
    "ReduceL2": lambda x, a, k: gc.sqrt(gc.reduce_sum(gc.square(x), a, keepdims=k)),
    "ReduceSumSquare": lambda x, a, k: gc.reduce_sum(gc.square(x), a, keepdims=k),
    "ReduceLogSum": lambda x, a, k: gc.log(gc.reduce_sum(x, a, keepdims=k)),
    "ReduceLogSumExp": lambda x, a, k: gc.reduce_logsumexp(x, a, keepdims=k),
}


def _reduce(fn):
    def convert(node):
        x = node.x(0)
        axes = _reduction_axes(node, node.rank(x))
        if axes == ():
            return [gc.identity(x)]
        return [fn(x, axes, bool(node.attr("keepdims", 1)))]
    return convert


for _name, _fn in _REDUCE.items():
    converts(_name)(_reduce(_fn))


@converts("ArgMax", "ArgMin")
def _arg(node):
    x = node.x(0)
    rank = node.rank(x)
    axis = _axis(node, node.attr("axis", 0), rank)
    fn = gc.argmax if node.op_type == "ArgMax" else gc.argmin
    if node.attr("select_last_index", 0):
        n = x.shape[axis]
        if n is None:
            node.needs_shape(f"select_last_index needs the size of axis {axis} at import time")
        out = (n - 1) - fn(gc.reverse(x, [axis]), axis=axis, output_type=dt.int64)
    else:
        out = fn(x, axis=axis, output_type=dt.int64)
    return [gc.expand_dims(out, axis) if node.attr("keepdims", 1) else out]


# --- shapes -------------------------------------------------------------------------------------
@converts("Constant")
def _constant(node):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if node.has_attr(key):
            v = node.attr(key)
            if key.startswith("value_float"):
                return [np.asarray(v, dtype=np.float32)]
            if key.startswith("value_int"):
                return [np.asarray(v, dtype=np.int64)]
            return [v]
    node.fail("graphc imports Constant nodes of numeric tensors (value, value_float(s), value_int(s)); "
              f"this one has {sorted(node._attrs)}")


@converts("Shape")
def _shape(node):
    x = node.x(0)
    rank = node.rank(x)
    start, end = node.attr("start", 0), node.attr("end", rank)
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    dims = [x.shape[i] if x.shape[i] is not None else Dim(x, i) for i in range(start, end)]
    if all(isinstance(d, int) for d in dims):
        return [np.asarray(dims, dtype=np.int64)]
    return [np.asarray(dims, dtype=object)]


@converts("Size")
def _size(node):
    x = node.x(0)
    if x.shape.is_fully_defined():
        return [np.asarray(int(np.prod(x.shape)), dtype=np.int64)]
    return [gc.size(x, out_type=dt.int64)]


def _shape_spec(node, dims, x=None, allow_zero_copy=False):
    """A list of ints and Dims as a graphc shape spec (ints and run-time dims)."""
    spec = []
    for i, d in enumerate(dims):
        if isinstance(d, Dim):
            spec.append(gc.shape(d.tensor)[d.axis])
        elif d == 0 and allow_zero_copy:
            if x.shape[i] is not None:
                spec.append(int(x.shape[i]))
            else:
                spec.append(gc.shape(x)[i])
        else:
            spec.append(int(d))
    return spec


def _shape_input(node, i: int) -> list:
    """Input ``i`` as a shape (ints and run-time Dims); it must be known or built from Shape."""
    dims = node.shape_value(i)
    if dims is None:
        node.needs(i, "shape")
    return dims


@converts("Reshape")
def _reshape(node):
    x = node.x(0)
    dims = _shape_input(node, 1)
    allow_zero = bool(node.attr("allowzero", 0))
    if not allow_zero and 0 in [d for d in dims if not isinstance(d, Dim)] and not x.shape.known_rank:
        node.fail("a 0 in its shape copies an input dim, but the input's rank is unknown")
    return [gc.reshape(x, _shape_spec(node, dims, x, allow_zero_copy=not allow_zero))]


@converts("Flatten")
def _flatten(node):
    x = node.x(0)
    rank = node.rank(x)
    axis = node.attr("axis", 1)
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis <= rank:
        node.fail(f"axis {node.attr('axis', 1)} is out of range for rank {rank}")
    lead, rest = x.shape[:axis], x.shape[axis:]
    known = lambda dims: all(d is not None for d in dims)  # noqa: E731
    if known(rest):
        return [gc.reshape(x, [-1 if axis else 1, int(np.prod(rest, dtype=np.int64))] if axis or known(lead)
                           else [1, -1])]
    if known(lead):
        return [gc.reshape(x, [int(np.prod(lead, dtype=np.int64)), -1])]
    node.needs_shape(f"needs the dims before or after axis {axis} of '{x.name}' at import time, got {x.shape}")


@converts("Transpose")
def _transpose(node):
    x = node.x(0)
    perm = node.attr("perm")
    return [gc.transpose(x, perm) if perm is not None else gc.transpose(x)]


def _axes_of(node, input_index: int, attr_opset: int):
    """Axes given as an attribute before ``attr_opset`` and as an input from it on."""
    if node.opset >= attr_opset:
        return node.ints(input_index, "axes") if node.has(input_index) else None
    return node.attr("axes")


@converts("Squeeze")
def _squeeze(node):
    x = node.x(0)
    axes = _axes_of(node, 1, 13)
    if axes is None:
        shape = node.static_shape(x)
        axes = [i for i, d in enumerate(shape) if d == 1]
    v = node.value(0)
    rank = node.rank(x)
    axes = sorted({_axis(node, a, rank) for a in axes})
    if isinstance(v, np.ndarray):
        return [np.squeeze(v, tuple(axes))]
    return [gc.squeeze(x, axes) if axes else gc.identity(x)]


@converts("Unsqueeze")
def _unsqueeze(node):
    axes = _axes_of(node, 1, 13)
    v = node.value(0)
    x = None if isinstance(v, np.ndarray) else node.x(0)
    rank = (v.ndim if x is None else node.rank(x)) + len(axes)
    axes = sorted(_axis(node, a, rank) for a in axes)
    if len(set(axes)) != len(axes):
        node.fail(f"axes {node.attr('axes') or axes} repeat an axis")
    if x is None:
        return [np.expand_dims(v, tuple(axes))]
    for a in axes:
        x = gc.expand_dims(x, a)
    return [x]


@converts("Concat")
def _concat(node):
    values = [node.value(i) for i in range(len(node.inputs)) if node.has(i)]
    axis = node.attr("axis")
    if all(isinstance(v, np.ndarray) for v in values):
        rank = values[0].ndim
        return [np.concatenate(values, axis=_axis(node, axis, rank))]
    xs = [node.x(i) for i in range(len(node.inputs)) if node.has(i)]
    xs = [x for x in xs if not (x.shape.is_fully_defined() and x.ndim == 1 and x.shape[0] == 0)] or xs[:1]
    return [gc.concat(xs, axis=_axis(node, axis, node.rank(xs[0]))) if len(xs) > 1 else gc.identity(xs[0])]


@converts("Split")
def _split(node):
    x = node.x(0)
    rank = node.rank(x)
    axis = _axis(node, node.attr("axis", 0), rank)
    sizes = node.ints(1, "split") if node.opset >= 13 and node.has(1) else node.attr("split")
    if not sizes:
        n = node.attr("num_outputs", node.n_outputs)
        dim = x.shape[axis]
        if dim is None:
            if dim is None and n:
                return gc.split(x, n, axis=axis)
            node.needs_shape(f"needs the size of axis {axis} at import time")
        chunk = -(-dim // n)
        sizes = [min(chunk, dim - i * chunk) for i in range(n)]
    return gc.split(x, [int(s) for s in sizes], axis=axis)


@converts("Slice")
def _slice(node):
    v = node.value(0)
    starts, ends = node.ints(1, "starts"), node.ints(2, "ends")
    axes = node.ints(3, "axes") if node.has(3) else None
    steps = node.ints(4, "steps") if node.has(4) else None
    x = None if isinstance(v, np.ndarray) else node.x(0)
    shape = v.shape if x is None else tuple(x.shape)
    rank = len(shape) if x is None else node.rank(x)
    axes = list(range(len(starts))) if axes is None else [_axis(node, a, rank) for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    key = [slice(None)] * rank
    for a, s, e, st in zip(axes, starts, ends, steps):
        if st == 0:
            node.fail("a slice step is 0")
        dim = shape[a]
        if dim is not None:
            s, e, st = slice(s, e, st).indices(dim)
            if st < 0 and e < 0:
                e = None
        else:
            s = None if (st > 0 and s == 0) or (st < 0 and s >= _INT64_MAX // 2) else s
            e = None if (st > 0 and e >= _INT64_MAX // 2) or (st < 0 and e <= -(_INT64_MAX // 2)) else e
        key[a] = slice(s, e, st)
    if x is None:
        return [v[tuple(key)]]
    return [x[tuple(key)]]


def _normalized_indices(node, indices, dim):
    """ONNX indices may be negative (from the end)."""
    known = indices if isinstance(indices, np.ndarray) else None
    if known is not None and not is_symbolic(known):
        if dim is not None and known.size and (known.min() < -dim or known.max() >= dim):
            node.fail(f"an index in {known.reshape(-1)[:8].tolist()} is out of range for a dim of {dim}")
        return known if dim is None else np.where(known < 0, known + dim, known)
    return indices


@converts("Gather")
def _gather(node):
    v = node.value(0)
    axis = node.attr("axis", 0)
    idx = node.known(1)
    if isinstance(v, np.ndarray) and idx is not None:
        a = _axis(node, axis, v.ndim)
        return [np.take(v, _normalized_indices(node, idx, v.shape[a]), axis=a)]
    x = node.x(0)
    a = _axis(node, axis, node.rank(x))
    if idx is not None:
        idx = _normalized_indices(node, idx, x.shape[a])
        indices = gc.constant(idx.astype(np.int64))
    else:
        indices = node.x(1)
        dim = x.shape[a] if x.shape[a] is not None else gc.cast(gc.shape(x)[a], indices.dtype)
        indices = gc.where(indices < 0, indices + dim, indices)
    return [gc.gather(x, indices, axis=a)]


@converts("GatherElements")
def _gather_elements(node):
    x, idx = node.x(0), node.x(1)
    a = _axis(node, node.attr("axis", 0), node.rank(x))
    dim = x.shape[a] if x.shape[a] is not None else gc.cast(gc.shape(x)[a], idx.dtype)
    idx = gc.where(idx < 0, idx + dim, idx)
    return [take_along_axis(x, idx, axis=a)]


@converts("Expand")
def _expand(node):
    x = node.x(0)
    dims = _shape_input(node, 1)
    rank = max(len(dims), node.rank(x))
    xs = [1] * (rank - x.ndim) + list(x.shape)
    ds = [1] * (rank - len(dims)) + list(dims)
    out = []
    for i, (a, b) in enumerate(zip(xs, ds)):
        if isinstance(b, Dim):
            out.append(b if a in (1, None) or a is None else a)
        elif b == 1:
            out.append(Dim(x, i - (rank - x.ndim)) if a is None else a)
        elif a in (1, None) or a == b:
            out.append(b)
        else:
            node.fail(f"cannot expand a dim of {a} to {b} (input shape {x.shape}, shape {dims})")
    if rank > x.ndim:
        x = gc.reshape(x, [1] * (rank - x.ndim) + _shape_spec(node, [d if d is not None else Dim(x, i)
                                                                     for i, d in enumerate(x.shape)]))
    return [gc.broadcast_to(x, _shape_spec(node, out))]


@converts("Tile")
def _tile(node):
    return [gc.tile(node.x(0), node.ints(1, "repeats"))]


@converts("ConstantOfShape")
def _constant_of_shape(node):
    value = node.attr("value")
    value = np.zeros(1, np.float32) if value is None else value
    dims = _shape_input(node, 0)
    if all(not isinstance(d, Dim) for d in dims):
        return [np.full(dims, value.reshape(-1)[0], dtype=value.dtype)]
    return [gc.broadcast_to(gc.constant(value.reshape(())), _shape_spec(node, dims))]


@converts("Range")
def _range(node):
    start, limit, delta = (np.asarray(node.require(i, what)).reshape(())
                           for i, what in enumerate(("start", "limit", "delta")))
    return [np.arange(start, limit, delta, dtype=start.dtype)]


@converts("Dropout")
def _dropout(node):
    training = node.require(2, "training_mode") if node.has(2) else None
    if training is not None and bool(training):
        node.fail("dropout in training mode (training_mode true or computed) is not imported; "
                  "graphc imports inference graphs, where Dropout is the identity")
    x = node.x(0)
    outs = [gc.identity(x)]
    if node.n_outputs > 1:
        outs.append(gc.ones_like(x, dtype=dt.bool_))
    return outs


@converts("OneHot")
def _one_hot(node):
    depth = int(np.asarray(node.require(1, "depth")).reshape(-1)[0])
    values = node.x(2)
    indices = node.x(0)
    if indices.dtype.is_floating:
        indices = gc.cast(indices, dt.int64)
    indices = gc.where(indices < 0, indices + depth, indices)
    off, on = values[0], values[1]
    hot = gc.one_hot(indices, depth, axis=node.attr("axis", -1), dtype=dt.bool_)
    return [gc.where(hot, on, off)]


@converts("CumSum")
def _cumsum(node):
    x = node.x(0)
    axis = _axis(node, node.ints(1, "axis")[0], node.rank(x))
    return [gc.cumsum(x, axis, exclusive=bool(node.attr("exclusive", 0)), reverse=bool(node.attr("reverse", 0)))]


@converts("CumProd")
def _cumprod(node):
    x = node.x(0)
    axis = _axis(node, node.ints(1, "axis")[0], node.rank(x))
    return [gc.cumprod(x, axis, exclusive=bool(node.attr("exclusive", 0)), reverse=bool(node.attr("reverse", 0)))]


@converts("TopK")
def _top_k(node):
    x = node.x(0)
    rank = node.rank(x)
    axis = _axis(node, node.attr("axis", -1), rank)
    k = node.ints(1, "k")[0]
    largest = node.attr("largest", 1)
    if axis != rank - 1:
        perm = [i for i in range(rank) if i != axis] + [axis]
        x = gc.transpose(x, perm)
    if largest:
        values, indices = gc.nn.top_k(x, k)
    else:
        if x.dtype.is_bool or x.dtype in (dt.uint8,):
            node.fail(f"smallest-k of {x.dtype.name} values is not imported")
        values, indices = gc.nn.top_k(-x, k)
        values = -values
    indices = gc.cast(indices, dt.int64)
    if axis != rank - 1:
        back = list(np.argsort(perm))
        values, indices = gc.transpose(values, back), gc.transpose(indices, back)
    return [values, indices]


@converts("Trilu")
def _trilu(node):
    x = node.x(0)
    k = node.ints(1, "k")[0] if node.has(1) else 0
    rows, cols = x.shape[-2], x.shape[-1]
    if rows is None or cols is None:
        node.needs_shape(f"needs the last two dims of '{x.name}' at import time, got {x.shape}")
    ones = np.ones((rows, cols), dtype=bool)
    mask = np.triu(ones, k) if node.attr("upper", 1) else np.tril(ones, k)
    return [gc.where(gc.constant(mask), x, gc.zeros_like(x))]


@converts("EyeLike")
def _eye_like(node):
    x = node.x(0)
    shape = node.static_shape(x)
    dtype = DTYPES.get(int(node.attr("dtype", 0)), x.dtype) if node.has_attr("dtype") else x.dtype
    return [np.eye(shape[0], shape[1], k=node.attr("k", 0), dtype=dtype.np)]


@converts("NonZero")
def _nonzero(node):
    x = node.x(0)
    return [gc.transpose(gc.cast(gc.where(gc.cast(x, dt.bool_)), dt.int64))]


@converts("Compress")
def _compress(node):
    x, cond = node.x(0), node.x(1)
    axis = node.attr("axis")
    if axis is None:
        x = gc.reshape(x, [-1])
        axis = 0
    axis = _axis(node, axis, node.rank(x))
    n = x.shape[axis]
    c = node.known(1)
    if c is not None and n is not None:
        keep = np.flatnonzero(c.astype(bool)[:n])
        return [gc.gather(x, gc.constant(keep.astype(np.int64)), axis=axis)]
    if n is not None and cond.shape[0] is not None and cond.shape[0] > n:
        cond = cond[:n]
    return [gc.boolean_mask(x, gc.cast(cond, dt.bool_), axis=axis)]


@converts("DepthToSpace", "SpaceToDepth")
def _depth_space(node):
    x = node.x(0)
    n, c, h, w = node.static_shape(x)
    b = node.attr("blocksize")
    if node.op_type == "DepthToSpace":
        if node.attr("mode", "DCR") == "DCR":
            t = gc.reshape(x, [n, b, b, c // (b * b), h, w])
            t = gc.transpose(t, [0, 3, 4, 1, 5, 2])
        else:
            t = gc.reshape(x, [n, c // (b * b), b, b, h, w])
            t = gc.transpose(t, [0, 1, 4, 2, 5, 3])
        return [gc.reshape(t, [n, c // (b * b), h * b, w * b])]
    t = gc.reshape(x, [n, c, h // b, b, w // b, b])
    crd = node.attr("mode", "DCR") == "CRD"
    t = gc.transpose(t, [0, 1, 3, 5, 2, 4] if crd else [0, 3, 5, 1, 2, 4])
    return [gc.reshape(t, [n, c * b * b, h // b, w // b])]


@converts("Pad")
def _pad(node):
    x = node.x(0)
    rank = node.rank(x)
    pads = node.ints(1, "pads")
    value = node.require(2, "constant_value") if node.has(2) else None
    axes = node.ints(3, "axes") if node.has(3) else None
    axes = list(range(rank)) if axes is None else [_axis(node, a, rank) for a in axes]
    n = len(axes)
    if len(pads) != 2 * n:
        node.fail(f"pads has {len(pads)} entries; it needs 2 per axis ({2 * n})")
    before, after = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        before[a], after[a] = pads[i], pads[i + n]
    mode = node.attr("mode", "constant")
    # Negative pads crop.
    if any(p < 0 for p in before + after):
        key = tuple(slice(-b if b < 0 else None, a if a < 0 else None) for b, a in zip(before, after))
        x = x[key]
        before, after = [max(p, 0) for p in before], [max(p, 0) for p in after]
    paddings = list(zip(before, after))
    if mode == "constant":
        cv = 0 if value is None else np.asarray(value).reshape(-1)[0] if np.asarray(value).size else 0
        return [gc.pad(x, paddings, constant_values=cv)]
    if mode == "reflect":
        return [gc.pad(x, paddings, mode="REFLECT")]
    if mode == "edge":
        return [_edge_pad(node, x, paddings)]
    node.fail(f"pad mode {mode!r} is not imported (graphc imports constant, reflect and edge)")


def _edge_pad(node, x, paddings):
    """Edge padding: each border element repeated, by gathering clamped indices per axis."""
    for a, (b, e) in enumerate(paddings):
        if not b and not e:
            continue
        dim = x.shape[a]
        if dim is None:
            node.needs_shape(f"edge padding needs the size of axis {a} at import time")
        idx = np.clip(np.arange(-b, dim + e), 0, dim - 1).astype(np.int64)
        x = gc.gather(x, gc.constant(idx), axis=a)
    return x



# --- scatters and n-d gathers ------------------------------------------------------------------------
def _wrap_negative(indices, dims):
    """ONNX indices may count from the end: idx + dim where idx < 0 (dims broadcast on the last axis)."""
    d = gc.constant(np.asarray(dims, dtype=indices.dtype.np))
    return gc.where(indices < 0, indices + d, indices)


def _scatter_combine(node, data, scattered, hit):
    reduction = node.attr("reduction", "none")
    if reduction == "none":
        return gc.where(hit, scattered, data)
    if reduction == "add":
        return data + scattered
    node.fail(f"reduction {reduction!r} is not imported (graphc imports none and add)")


@converts("ScatterElements", "Scatter")
def _scatter_elements(node):
    from ..ops.sorting import scatter_along_axis
    data, idx, updates = node.x(0), node.x(1), node.x(2)
    axis = _axis(node, node.attr("axis", 0), node.rank(data))
    dim = data.shape[axis] if data.shape[axis] is not None else gc.cast(gc.shape(data)[axis], idx.dtype)
    idx = gc.where(idx < 0, idx + dim, idx)
    scattered = scatter_along_axis(updates, idx, data, axis)
    hit = scatter_along_axis(gc.ones_like(updates, dtype=dt.int32), idx, data, axis) > 0
    return [_scatter_combine(node, data, scattered, hit)]


def _linear_rows(node, data, indices, batch_dims=0):
    """(data as rows (prod of the indexed dims, rest...), the flat row index of each index
    tuple, the indexed dims' count): the shared part of GatherND and ScatterND."""
    shape = node.static_shape(data, "its data")
    ishape = node.static_shape(indices, "its indices")
    k = ishape[-1]
    indexed = shape[batch_dims:batch_dims + k]
    strides = [int(np.prod(indexed[j + 1:], dtype=np.int64)) for j in range(k)]
    idx = _wrap_negative(gc.cast(indices, dt.int64), indexed) if k else gc.cast(indices, dt.int64)
    flat = gc.reduce_sum(idx * gc.constant(np.asarray(strides, np.int64)), [-1]) if k else \
        gc.zeros(ishape[:-1], dtype=dt.int64)
    rows_per_batch = int(np.prod(indexed, dtype=np.int64))
    if batch_dims:
        n_batch = int(np.prod(shape[:batch_dims], dtype=np.int64))
        offsets = (np.arange(n_batch, dtype=np.int64) * rows_per_batch).reshape(
            shape[:batch_dims] + (1,) * (len(ishape) - 1 - batch_dims))
        flat = flat + gc.constant(offsets)
        rows = gc.reshape(data, [n_batch * rows_per_batch] + list(shape[batch_dims + k:]))
    else:
        rows = gc.reshape(data, [rows_per_batch] + list(shape[k:]))
    return rows, flat, shape, ishape, k


@converts("GatherND")
def _gather_nd(node):
    data, indices = node.x(0), node.x(1)
    b = node.attr("batch_dims", 0)
    rows, flat, shape, ishape, k = _linear_rows(node, data, indices, b)
    out = gc.gather(rows, gc.reshape(flat, [-1]), axis=0)
    return [gc.reshape(out, list(ishape[:-1]) + list(shape[b + k:]))]


@converts("ScatterND")
def _scatter_nd(node):
    data, indices, updates = node.x(0), node.x(1), node.x(2)
    rows, flat, shape, ishape, k = _linear_rows(node, data, indices)
    flat = gc.reshape(flat, [-1])
    rest = list(shape[k:])
    upd = gc.reshape(updates, [-1] + rest)
    scattered = gc.reshape(scatter_add(upd, flat, rows, 0), list(shape))
    ones = gc.ones_like(flat, dtype=dt.int32)
    hit_rows = scatter_add(ones, flat, gc.zeros([rows.shape[0]], dtype=dt.int32), 0) > 0
    hit = gc.reshape(hit_rows, list(shape[:k]) + [1] * len(rest))
    return [_scatter_combine(node, data, scattered, hit)]


# --- quantization -----------------------------------------------------------------------------------
def _quantization_param(node, param, x_rank: int, x_shape):
    """A scale or zero point (scalar, per-axis 1-D, or blocked) shaped to broadcast against x."""
    if param.ndim == 0 or (param.ndim == 1 and param.shape[0] == 1):
        return gc.reshape(param, [])
    axis = _axis(node, node.attr("axis", 1), x_rank)
    block = node.attr("block_size", 0)
    if block:
        param = gc.gather(param, gc.constant(np.arange(x_shape[axis], dtype=np.int64) // block), axis=axis)
        return param
    return gc.reshape(param, [-1] + [1] * (x_rank - axis - 1))


@converts("QuantizeLinear")
def _quantize(node):
    x = node.x(0)
    scale = _quantization_param(node, node.x(1), node.rank(x), tuple(x.shape))
    from .importer import dtype_of
    from .narrow import BY_NAME, NARROW
    out = dt.uint8
    if node.has(2):
        out = node.x(2).dtype
        kind = BY_NAME.get(node.importer.narrow.get(node.inputs[2]))
        zp = gc.cast(_quantization_param(node, node.x(2), node.rank(x), tuple(x.shape)), x.dtype)
    else:
        kind = None
        if node.has_attr("output_dtype") and node.attr("output_dtype"):
            out = dtype_of(node.attr("output_dtype"), f"{node.label}'s output_dtype")
            kind = NARROW.get(int(node.attr("output_dtype")))
        zp = _const_like(x, 0)
    # the range of the ONNX type (an emulated int16 saturates at int16's bounds)
    info = np.iinfo(kind.numpy if kind is not None else out.np)
    y = gc.round(x / gc.cast(scale, x.dtype)) + zp
    return [gc.cast(gc.clip_by_value(y, _const_like(x, info.min), _const_like(x, info.max)), out)]


@converts("DequantizeLinear")
def _dequantize(node):
    x = node.x(0)
    scale = _quantization_param(node, node.x(1), node.rank(x), tuple(x.shape))
    xf = gc.cast(x, scale.dtype)
    if node.has(2):
        xf = xf - gc.cast(_quantization_param(node, node.x(2), node.rank(x), tuple(x.shape)), scale.dtype)
    return [xf * scale]


@converts("ReverseSequence")
def _reverse_sequence(node):
    x, lens = node.x(0), gc.cast(node.x(1), dt.int64)
    rank = node.rank(x)
    t_axis = _axis(node, node.attr("time_axis", 0), rank)
    b_axis = _axis(node, node.attr("batch_axis", 1), rank)
    steps = x.shape[t_axis]
    if steps is None:
        node.needs_shape(f"needs the size of the time axis {t_axis}")
    shape_t = [1] * rank
    shape_t[t_axis] = steps
    shape_b = [1] * rank
    shape_b[b_axis] = -1
    t = gc.constant(np.arange(steps, dtype=np.int64).reshape(shape_t))
    n = gc.reshape(lens, shape_b)
    index = gc.where(t < n, n - 1 - t, t)
    return [take_along_axis(x, gc.broadcast_to(index, gc.shape(x)), t_axis)]


# --- bit operations ---------------------------------------------------------------------------------
# graphc has no bit ops; ONNX's are composed from integer arithmetic in int64, where floor
# division by 2**b is an arithmetic shift and the bits of a negative number are its two's
# complement. The width is the ONNX type's (an emulated int16 has 16 bits, narrow.py).
def _int_width(node, i: int, x) -> tuple:
    from .narrow import BY_NAME
    kind = BY_NAME.get(node.importer.narrow.get(node.inputs[i]))
    if kind is not None:
        return kind.bits, kind.signed
    if not x.dtype.is_integer:
        node.fail(f"needs integer inputs, got '{x.name}' of {x.dtype.name}")
    return x.dtype.itemsize * 8, x.dtype.np.kind == "i"


def _pow2(e):
    """2**e for int64 exponents 0..62."""
    return gc.pow(gc.constant(np.int64(2)), e)


def _bits_of(x, bits: int, signed: bool):
    """x's bits, least significant first, as 0/1 int64 tensors (the top one of a signed type
    is the sign)."""
    out = []
    for b in range(bits):
        if b == bits - 1 and signed:
            out.append(gc.cast(x < 0, dt.int64))
        elif b >= 62:
            out.append(gc.cast(gc.mod(gc.floordiv(gc.floordiv(x, gc.constant(np.int64(1 << 61))),
                                                   gc.constant(np.int64(1 << (b - 61)))),
                                       gc.constant(np.int64(2))) != 0, dt.int64))
        else:
            out.append(gc.mod(gc.floordiv(x, gc.constant(np.int64(1 << b))), gc.constant(np.int64(2))))
    return out


def _from_bits(bits_list, signed: bool):
    total = None
    n = len(bits_list)
    for b, bit in enumerate(bits_list):
        weight = -(1 << (n - 1)) if (signed and b == n - 1) else (1 << b)
        if weight == 1 << 63:
            weight = -(1 << 63)    # an unsigned 64-bit top bit: the same bits in int64
        term = bit * gc.constant(np.int64(weight))
        total = term if total is None else total + term
    return total


def _bitwise(op):
    def convert(node):
        x = node.x(0)
        bits, signed = _int_width(node, 0, x)
        a = gc.cast(x, dt.int64)
        if op == "not":
            out = -a - 1 if signed else gc.constant(np.int64((1 << bits) - 1 if bits < 64 else -1)) - a
            return [gc.cast(out, x.dtype)]
        b = gc.cast(node.x(1), dt.int64)
        pairs = zip(_bits_of(a, bits, signed), _bits_of(b, bits, signed))
        combine = {"and": lambda p, q: p * q, "or": lambda p, q: p + q - p * q,
                   "xor": lambda p, q: gc.mod(p + q, gc.constant(np.int64(2)))}[op]
        return [gc.cast(_from_bits([combine(p, q) for p, q in pairs], signed), x.dtype)]
    return convert


converts("BitwiseAnd")(_bitwise("and"))
converts("BitwiseOr")(_bitwise("or"))
converts("BitwiseXor")(_bitwise("xor"))
converts("BitwiseNot")(_bitwise("not"))


@converts("BitShift")
def _bit_shift(node):
    """x << y or x >> y, as NumPy shifts: a shift by the width or more (or by a negative
    amount) gives 0, or -1 for a negative x shifted right."""
    x = node.x(0)
    bits, signed = _int_width(node, 0, x)
    a, y = gc.cast(x, dt.int64), gc.cast(node.x(1), dt.int64)
    in_range = gc.logical_and(y >= 0, y < bits)
    ys = gc.clip_by_value(y, gc.constant(np.int64(0)), gc.constant(np.int64(62)))
    if node.attr("direction") == "LEFT":
        shifted = a * _pow2(ys)
        shifted = gc.where(y > 62, shifted * gc.constant(np.int64(2)), shifted)   # y == 63 (64-bit types)
        out = gc.where(in_range, shifted, gc.zeros_like(a))
    elif node.attr("direction") == "RIGHT":
        if not signed and bits == 64:
            node.fail("a right shift of uint64 is not imported")
        shifted = gc.floordiv(a, _pow2(ys))
        shifted = gc.where(y > 62, gc.floordiv(shifted, gc.constant(np.int64(2))), shifted)
        beyond = gc.where(a < 0, -gc.ones_like(a), gc.zeros_like(a)) if signed else gc.zeros_like(a)
        out = gc.where(in_range, shifted, beyond)
    else:
        node.fail(f"direction must be LEFT or RIGHT, got {node.attr('direction')!r}")
    return [gc.cast(out, x.dtype)]

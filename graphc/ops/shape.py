"""Shape ops: reshape, transpose, expand/squeeze, broadcast, concat/split/stack, tile, pad,
slicing (``__getitem__``), gather and one_hot."""
from __future__ import annotations

import numbers
from typing import Optional

import numpy as np

from .. import dtypes as dt
from ..dtypes import as_dtype
from ..errors import DTypeMismatch, ShapeMismatch
from ..graph import Tensor, user_location
from ..shapes import TensorShape, TensorType, merge_dims, normalize_axis
from ._build import dtype_error, is_symbolic, make, make1, renamed, shape_error
from .registry import define, one_output
from .shape_spec import expand_all_refs, is_dim_ref, resolve_shape_spec, spec_dims_static, spec_like, spec_to_concrete
from .source import constant, convert_to_tensor, promote


def _shape_only_after_first(attrs, n):
    return tuple(range(1, n))


# --- reshape ------------------------------------------------------------------------------
def _infer_reshape(inputs, attrs):
    x = inputs[0]
    spec = expand_all_refs(attrs["shape"], inputs)
    dims = []
    for e in spec:
        if e == -1:
            dims.append(-1)
        else:
            dims.append(spec_dims_static((e,), inputs)[0])
    known_in = TensorShape(x.shape).num_elements()
    known_out = [d for d in dims if d not in (-1, None)]
    prod_out = int(np.prod(known_out)) if known_out else 1
    if -1 in dims:
        if known_in is not None and None not in dims:
            if prod_out == 0 or known_in % prod_out:
                raise ShapeMismatch(f"cannot reshape a tensor of {known_in} elements into {_fmt_spec(spec)}")
            dims[dims.index(-1)] = known_in // prod_out
        else:
            dims[dims.index(-1)] = _infer_minus_one_from_own_dims(x, spec, dims)
    elif known_in is not None and None not in dims and known_in != prod_out:
        raise ShapeMismatch(f"cannot reshape a tensor of {known_in} elements into shape {tuple(dims)}")
    return [TensorType(x.dtype, dims)]


def _infer_minus_one_from_own_dims(x, spec, dims):
    """The -1 of a spec whose unknown dims are copies of the input's own dims (entries
    ``("dim", 0, axis)``): those cancel out of the element count. None if still unknown."""
    rest_in = dict(enumerate(x.shape))
    rest_out = []
    for e, d in zip(spec, dims):
        if d == -1:
            continue
        if is_dim_ref(e) and e[1] == 0 and e[2] % x.rank in rest_in:
            del rest_in[e[2] % x.rank]
        else:
            rest_out.append(d)
    if None in rest_in.values() or None in rest_out:
        return None
    n_in, n_out = int(np.prod(list(rest_in.values()))), int(np.prod(rest_out))
    if n_out == 0 or n_in % n_out:
        raise ShapeMismatch(f"cannot reshape a tensor of shape {x.shape} into {_fmt_spec(spec)}")
    return n_in // n_out


def _fmt_spec(spec):
    return "(" + ", ".join(f"dim {e[2]} of input {e[1]}" if is_dim_ref(e) else str(e) for e in spec) + ")"


def _ref_reshape(inputs, attrs, ctx=None):
    return (np.reshape(inputs[0], spec_to_concrete(attrs["shape"], inputs)),)


define("reshape", "shape", _infer_reshape, _ref_reshape, shape_only_inputs=_shape_only_after_first,
       doc="Reshape to a shape spec (ints, one -1, or dims of shape-source inputs).")


def reshape(tensor, shape, name: Optional[str] = None) -> Tensor:
    """Reshape ``tensor``. ``shape`` may hold one -1, and entries taken from ``gc.shape(...)``."""
    x = convert_to_tensor(tensor)
    spec, sources = resolve_shape_spec(shape, "reshape", first_input=1, allow_infer=True)
    if x in sources:  # dims copied from x itself refer to input 0, so inference can cancel them
        k = 1 + sources.index(x)
        spec = tuple(e if not is_dim_ref(e) else ("dim", 0, e[2]) if e[1] == k
                     else ("dim", e[1] - (e[1] > k), e[2]) for e in spec)
        sources = tuple(t for t in sources if t is not x)
    return make1("reshape", (x, *sources), {"shape": spec}, name or "Reshape")


def scalar_flag(value) -> Tensor:
    """``value`` as a tensor; one of unknown rank (TF1's ``tf.placeholder(tf.bool)`` for
    ``is_training``, ``tf.placeholder(tf.float32)`` for ``keep_prob``) is taken as the scalar
    TF1 programs feed it: a reshape to ``[]``, which refuses any other size at run time."""
    t = convert_to_tensor(value)
    return t if t.shape.known_rank else reshape(t, [], name=f"{t.op.name}_scalar")


def reshape_like(x, like, name: Optional[str] = None) -> Tensor:
    """Reshape ``x`` to the run-time shape of ``like``."""
    x, like = convert_to_tensor(x), convert_to_tensor(like)
    spec, sources = spec_like(like, first_input=1)
    return make1("reshape", (x, *sources), {"shape": spec}, name or "Reshape")


# --- transpose ----------------------------------------------------------------------------
def _infer_transpose(inputs, attrs):
    (x,) = inputs
    perm = attrs["perm"]
    if sorted(perm) != list(range(x.rank)):
        raise ShapeMismatch(f"perm {perm} is not a permutation of the {x.rank} axes")
    return [TensorType(x.dtype, tuple(x.shape[p] for p in perm))]


define("transpose", "shape", _infer_transpose, one_output(lambda x, a: np.transpose(x, a["perm"])),
       doc="Permute axes.")


def transpose(a, perm=None, name: Optional[str] = None) -> Tensor:
    x = convert_to_tensor(a)
    perm = tuple(range(x.ndim))[::-1] if perm is None else tuple(
        normalize_axis_or_raise("transpose", p, x.ndim) for p in perm)
    return make1("transpose", (x,), {"perm": perm}, name or "transpose")


def normalize_axis_or_raise(op: str, axis, rank: int) -> int:
    try:
        return normalize_axis(int(axis) if isinstance(axis, numbers.Integral) else axis, rank)
    except ShapeMismatch as e:
        raise shape_error(op, str(e)) from None


# --- expand_dims / squeeze --------------------------------------------------------------
def _infer_expand_dims(inputs, attrs):
    (x,) = inputs
    axis = attrs["axis"]
    if not 0 <= axis <= x.rank:
        raise ShapeMismatch(f"axis {axis} out of range for rank {x.rank}")
    return [TensorType(x.dtype, x.shape[:axis] + (1,) + x.shape[axis:])]


define("expand_dims", "shape", _infer_expand_dims, one_output(lambda x, a: np.expand_dims(x, a["axis"])),
       doc="Insert a size-1 axis.")


def expand_dims(input, axis=None, name: Optional[str] = None, dim=None) -> Tensor:
    """``dim`` is TF1's old name of ``axis``."""
    axis = renamed("expand_dims", axis, dim, "axis", "dim")
    if axis is None:
        raise TypeError(f"expand_dims at {user_location()}: needs axis")
    x = convert_to_tensor(input)
    return make1("expand_dims", (x,), {"axis": normalize_axis_or_raise("expand_dims", axis, x.ndim + 1)},
                 name or "ExpandDims")


def _infer_squeeze(inputs, attrs):
    (x,) = inputs
    axes = attrs["axes"]
    for a in axes:
        if not 0 <= a < x.rank:
            raise ShapeMismatch(f"axis {a} out of range for rank {x.rank}")
        if x.shape[a] not in (1, None):
            raise ShapeMismatch(f"cannot squeeze axis {a} of size {x.shape[a]}")
    return [TensorType(x.dtype, tuple(d for i, d in enumerate(x.shape) if i not in axes))]


define("squeeze", "shape", _infer_squeeze, one_output(lambda x, a: np.squeeze(x, axis=a["axes"])),
       doc="Remove size-1 axes.")


def squeeze(input, axis=None, name: Optional[str] = None, squeeze_dims=None) -> Tensor:
    """Remove size-1 axes: the listed ones, or (axis=None) every axis statically known to be 1.
    ``squeeze_dims`` is TF1's old name of ``axis``."""
    axis = renamed("squeeze", axis, squeeze_dims, "axis", "squeeze_dims")
    x = convert_to_tensor(input)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
        axes = tuple(sorted({normalize_axis_or_raise("squeeze", a, x.ndim) for a in axes}))
    return make1("squeeze", (x,), {"axes": axes}, name or "Squeeze")


# --- broadcast_to ---------------------------------------------------------------------------
def _infer_broadcast_to(inputs, attrs):
    x = inputs[0]
    target = spec_dims_static(attrs["shape"], inputs)
    if len(target) < x.rank:
        raise ShapeMismatch(f"cannot broadcast shape {x.shape} to the lower rank shape {target}")
    offset = len(target) - x.rank
    out = list(target)
    for i, d in enumerate(x.shape):
        t = target[offset + i]
        if d == 1 or d == t:
            continue
        if d is None:
            continue
        if t is None:
            out[offset + i] = d
            continue
        raise ShapeMismatch(f"cannot broadcast shape {x.shape} to {target}")
    return [TensorType(x.dtype, out)]


define("broadcast_to", "shape", _infer_broadcast_to,
       lambda xs, a, ctx=None: (np.broadcast_to(xs[0], spec_to_concrete(a["shape"], xs)),),
       shape_only_inputs=_shape_only_after_first, doc="Broadcast to a shape spec.")


def broadcast_to(input, shape, name: Optional[str] = None) -> Tensor:
    x = convert_to_tensor(input)
    spec, sources = resolve_shape_spec(shape, "broadcast_to", first_input=1)
    return make1("broadcast_to", (x, *sources), {"shape": spec}, name or "BroadcastTo")


# --- concat / stack / split ---------------------------------------------------------------
def _infer_concat(inputs, attrs):
    if not inputs:
        raise ShapeMismatch("needs at least one input")
    if len({t.dtype for t in inputs}) != 1:
        raise DTypeMismatch("inputs must have one dtype")
    rank = inputs[0].rank
    axis = attrs["axis"]
    if any(t.rank != rank for t in inputs):
        raise ShapeMismatch(f"inputs must have one rank, got shapes {', '.join(str(t.shape) for t in inputs)}")
    if not 0 <= axis < rank:
        raise ShapeMismatch(f"axis {axis} out of range for rank {rank}")
    out = list(inputs[0].shape)
    total = 0
    for t in inputs:
        for i, d in enumerate(t.shape):
            if i != axis:
                out[i] = merge_dims(out[i], d, f"dimension {i} differs between inputs")
        total = None if total is None or t.shape[axis] is None else total + t.shape[axis]
    out[axis] = total
    return [TensorType(inputs[0].dtype, out)]


define("concat", "shape", _infer_concat, lambda xs, a, ctx=None: (np.concatenate(xs, axis=a["axis"]),),
       doc="Join tensors along an existing axis.")


def concat(values, axis=None, name: Optional[str] = None, concat_dim=None) -> Tensor:
    """TF1's ``concat(values, axis, name)``. TF 0.x's order ``concat(concat_dim, values)``,
    still in old tutorials, is recognized (an int first and a list second) and accepted, as
    is its keyword ``concat_dim``."""
    if isinstance(values, (int, np.integer)) and isinstance(axis, (list, tuple)):
        values, axis = axis, values
    axis = renamed("concat", axis, concat_dim, "axis", "concat_dim")
    if axis is None:
        raise TypeError(f"concat at {user_location()}: needs axis")
    values = list(values)
    if not values:
        raise shape_error("concat", "needs at least one tensor")
    _, tensors = promote("concat", *values)
    axis = normalize_axis_or_raise("concat", axis, tensors[0].ndim)
    if len(tensors) == 1:
        return tensors[0]
    return make1("concat", tensors, {"axis": axis}, name or "concat")


def stack(values, axis: int = 0, name: Optional[str] = None) -> Tensor:
    values = list(values)
    if not values:
        raise shape_error("stack", "needs at least one tensor")
    _, tensors = promote("stack", *values)
    axis = normalize_axis_or_raise("stack", axis, tensors[0].ndim + 1)
    expanded = [expand_dims(t, axis) for t in tensors]
    if len(expanded) == 1:
        return expanded[0]
    return make1("concat", expanded, {"axis": axis}, name or "stack")


def _split_sizes(dim, attrs, shapes):
    """Sizes of the parts. ``sizes`` entries are ints, one -1, or ``("dim", i, axis)`` of a
    shape-source input (used by concat's gradient when input sizes are only known at run
    time); ``shapes`` are the shapes of all inputs."""
    num, sizes = attrs["num"], attrs["sizes"]
    if num is not None:
        if dim is None:
            return [None] * num
        if dim % num:
            raise ShapeMismatch(f"cannot split a dimension of size {dim} into {num} equal parts")
        return [dim // num] * num
    sizes = [shapes[e[1]][e[2]] if is_dim_ref(e) else e for e in sizes]
    known = [s for s in sizes if s not in (-1, None)]
    if -1 in sizes:
        i = sizes.index(-1)
        if dim is None or None in sizes:
            sizes[i] = None
        else:
            if sum(known) > dim:
                raise ShapeMismatch(f"split sizes {tuple(attrs['sizes'])} exceed the dimension size {dim}")
            sizes[i] = dim - sum(known)
    elif dim is not None and None not in sizes and sum(sizes) != dim:
        raise ShapeMismatch(f"split sizes {tuple(sizes)} do not add up to the dimension size {dim}")
    return sizes


def _infer_split(inputs, attrs):
    x = inputs[0]
    axis = attrs["axis"]
    if not 0 <= axis < x.rank:
        raise ShapeMismatch(f"axis {axis} out of range for rank {x.rank}")
    sizes = _split_sizes(x.shape[axis], attrs, [t.shape for t in inputs])
    return [TensorType(x.dtype, x.shape[:axis] + (s,) + x.shape[axis + 1:]) for s in sizes]


def _ref_split(inputs, attrs, ctx=None):
    x = inputs[0]
    sizes = _split_sizes(x.shape[attrs["axis"]], attrs, [a.shape for a in inputs])
    bounds = np.cumsum(sizes)[:-1]
    return tuple(np.split(x, bounds, axis=attrs["axis"]))


define("split", "shape", _infer_split, _ref_split, shape_only_inputs=_shape_only_after_first,
       doc="Split along an axis into `num` equal parts or `sizes` (ints, one -1, or dims of shape sources).")


def split_like(value, likes, axis: int, name: Optional[str] = None) -> list:
    """Split ``value`` along ``axis`` into parts as long as each of ``likes`` is along it."""
    x = convert_to_tensor(value)
    sizes = tuple(t.shape[axis] if t.shape[axis] is not None else ("dim", 1 + i, axis) for i, t in enumerate(likes))
    sources = tuple(likes) if any(is_dim_ref(e) for e in sizes) else ()
    if not sources:
        return split(x, [int(s) for s in sizes], axis, name=name)
    attrs = {"axis": axis, "num": None, "sizes": sizes}
    return list(make("split", (x, *sources), attrs, name or "split").outputs)


def split(value, num_or_size_splits, axis: int = 0, num=None, name: Optional[str] = None) -> list:
    x = convert_to_tensor(value)
    axis = normalize_axis_or_raise("split", axis, x.ndim)
    if isinstance(num_or_size_splits, numbers.Integral):
        if num_or_size_splits < 1:
            raise shape_error("split", f"num_or_size_splits must be >= 1, got {num_or_size_splits}")
        attrs = {"axis": axis, "num": int(num_or_size_splits), "sizes": None}
    else:
        sizes = tuple(int(s) for s in num_or_size_splits)
        if sizes.count(-1) > 1 or any(s < -1 for s in sizes):
            raise shape_error("split", f"invalid split sizes {sizes}: sizes must be >= 0, with at most one -1")
        attrs = {"axis": axis, "num": None, "sizes": sizes}
    return list(make("split", (x,), attrs, name or "split").outputs)


def unstack(value, num=None, axis: int = 0, name: Optional[str] = None) -> list:
    x = convert_to_tensor(value)
    axis = normalize_axis_or_raise("unstack", axis, x.ndim)
    n = x.shape[axis] if num is None else num
    if n is None:
        raise shape_error("unstack", f"cannot unstack an axis of unknown size; pass num= ('{x.name}' "
                          f"has shape {x.shape})")
    if n == 0:
        return []
    return [squeeze(p, axis) for p in split(x, n, axis, name=name or "unstack")]


# --- tile / pad -------------------------------------------------------------------------------
def _infer_tile(inputs, attrs):
    (x,) = inputs
    mult = attrs["multiples"]
    if len(mult) != x.rank:
        raise ShapeMismatch(f"multiples {mult} must have one entry per axis (rank {x.rank})")
    return [TensorType(x.dtype, tuple(None if d is None else d * m for d, m in zip(x.shape, mult)))]


define("tile", "shape", _infer_tile, one_output(lambda x, a: np.tile(x, a["multiples"])),
       doc="Repeat the tensor `multiples[i]` times along axis i.")


def tile(input, multiples, name: Optional[str] = None) -> Tensor:
    x = convert_to_tensor(input)
    if is_symbolic(multiples):
        raise shape_error("tile", "multiples must be Python ints")
    mult = tuple(int(m) for m in multiples)
    if any(m < 0 for m in mult):
        raise shape_error("tile", f"multiples must be >= 0, got {mult}")
    return make1("tile", (x,), {"multiples": mult}, name or "Tile")


_PAD_MODES = {"CONSTANT": "constant", "REFLECT": "reflect", "SYMMETRIC": "symmetric"}


def _infer_pad(inputs, attrs):
    (x,) = inputs
    pads, mode = attrs["paddings"], attrs["mode"]
    if len(pads) != x.rank:
        raise ShapeMismatch(f"paddings must have one (before, after) pair per axis (rank {x.rank})")
    out = []
    for d, (b, a) in zip(x.shape, pads):
        if d is not None and mode == "REFLECT" and max(b, a) > d - 1:
            raise ShapeMismatch(f"REFLECT padding {(b, a)} must be smaller than the dimension size {d}")
        if d is not None and mode == "SYMMETRIC" and max(b, a) > d:
            raise ShapeMismatch(f"SYMMETRIC padding {(b, a)} must not exceed the dimension size {d}")
        out.append(None if d is None else d + b + a)
    return [TensorType(x.dtype, out)]


def _ref_pad(inputs, attrs, ctx=None):
    x = inputs[0]
    if x.ndim == 0:  # nothing to pad (np.pad rejects empty paddings)
        return (x.copy(),)
    mode = _PAD_MODES[attrs["mode"]]
    if mode == "constant":
        return (np.pad(x, attrs["paddings"], mode=mode,
                       constant_values=np.asarray(attrs["constant_values"]).astype(x.dtype)),)
    return (np.pad(x, attrs["paddings"], mode=mode),)


define("pad", "shape", _infer_pad, _ref_pad,
       doc="Pad each axis by (before, after); modes CONSTANT, REFLECT, SYMMETRIC (TensorFlow's).")


def pad(tensor, paddings, mode: str = "CONSTANT", name: Optional[str] = None, constant_values=0) -> Tensor:
    x = convert_to_tensor(tensor)
    mode = str(mode).upper()
    if mode not in _PAD_MODES:
        raise shape_error("pad", f"mode must be one of {', '.join(_PAD_MODES)}, got {mode!r}")
    if is_symbolic(paddings) or is_symbolic(constant_values):
        raise shape_error("pad", "paddings and constant_values must be Python values")
    pads = tuple((int(b), int(a)) for b, a in paddings)
    if any(b < 0 or a < 0 for b, a in pads):
        raise shape_error("pad", f"paddings must be >= 0, got {pads}")
    cv = np.asarray(constant_values).astype(x.dtype.np).item()
    return make1("pad", (x,), {"paddings": pads, "mode": mode, "constant_values": cv}, name or "Pad")


# --- slicing ----------------------------------------------------------------------------------
def _slice_len(dim, start, stop, step):
    return len(range(*slice(start, stop, step).indices(dim)))


def _infer_strided_slice(inputs, attrs):
    (x,) = inputs
    out = []
    axis = 0
    for entry in attrs["index"]:
        kind = entry[0]
        if kind == "new":
            out.append(1)
            continue
        if axis >= x.rank:
            raise ShapeMismatch(f"too many indices for a tensor of rank {x.rank}")
        d = x.shape[axis]
        if kind == "int":
            i = entry[1]
            if d is not None and not -d <= i < d:
                raise ShapeMismatch(f"index {i} is out of range for axis {axis} of size {d}")
        else:
            _, start, stop, step = entry
            if d is not None:
                out.append(_slice_len(d, start, stop, step))
            elif start is None and stop is None and step in (None, 1, -1):
                out.append(None)
            else:
                out.append(None)
        axis += 1
    out.extend(x.shape[axis:])
    return [TensorType(x.dtype, out)]


def index_tuple(index_spec) -> tuple:
    out = []
    for entry in index_spec:
        if entry[0] == "new":
            out.append(None)
        elif entry[0] == "int":
            out.append(entry[1])
        else:
            out.append(slice(entry[1], entry[2], entry[3]))
    return tuple(out)


define("strided_slice", "shape", _infer_strided_slice,
       one_output(lambda x, a: x[index_tuple(a["index"])]),
       doc="Basic NumPy indexing: ints, slices (any step), new axes; Ellipsis is expanded at build time.")


def _as_int(v, what):
    if v is None:
        return None
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return int(v)
    raise shape_error("getitem", f"slice {what} must be a Python int or None, got {v!r} "
                      "(tensor slice bounds are not supported; use gc.gather)")


def getitem(x, key) -> Tensor:
    """NumPy-style indexing of a tensor: ints, slices with any step, Ellipsis, None, and at
    most one integer tensor (or list of ints) index, which gathers along its axis."""
    from .state import Variable
    if isinstance(x, Variable):
        x = x._as_tensor()
    key = key if isinstance(key, tuple) else (key,)
    consuming = sum(1 for k in key if k is not None and k is not Ellipsis)
    if sum(1 for k in key if k is Ellipsis) > 1:
        raise shape_error("getitem", "an index can only have a single Ellipsis")
    if consuming > x.ndim:
        raise shape_error("getitem", f"too many indices ({consuming}) for '{x.name}' of rank {x.ndim}")
    entries = []
    gather_at = None
    gather_index = None
    gather_key_pos = None
    for pos, k in enumerate(key):
        if k is Ellipsis:
            entries.extend([("slice", None, None, None)] * (x.ndim - consuming))
        elif k is None:
            entries.append(("new",))
        elif isinstance(k, slice):
            step = _as_int(k.step, "step")
            if step == 0:
                raise shape_error("getitem", "slice step cannot be zero")
            entries.append(("slice", _as_int(k.start, "start"), _as_int(k.stop, "stop"), step))
        elif isinstance(k, numbers.Integral) and not isinstance(k, bool):
            entries.append(("int", int(k)))
        elif is_symbolic(k) or isinstance(k, (list, np.ndarray)):
            if gather_at is not None:
                raise shape_error("getitem", "only one tensor (or list) index is supported")
            idx = convert_to_tensor(k) if is_symbolic(k) else constant(np.asarray(k), graph=x.graph)
            if not idx.dtype.is_integer:
                raise dtype_error("getitem", f"tensor index '{idx.name}' must be integer, got {idx.dtype.name} "
                                  "(boolean masks are not supported: their result shape depends on data)")
            gather_at = len(entries)
            gather_key_pos = pos
            gather_index = idx
            entries.append(("slice", None, None, None))
        else:
            raise shape_error("getitem", f"unsupported index {k!r}")
    out = x
    if any(e != ("slice", None, None, None) for e in entries):
        out = make1("strided_slice", (x,), {"index": tuple(entries)}, "strided_slice")
    if gather_at is not None:
        axis = sum(1 for e in entries[:gather_at] if e[0] != "int")
        out = gather(out, gather_index, axis=axis)
        # NumPy: when int indices and the array index are not side by side, the index dims go first
        adv = [j for j, k in enumerate(key) if j == gather_key_pos
               or (isinstance(k, numbers.Integral) and not isinstance(k, bool))]
        if axis and adv[-1] - adv[0] + 1 != len(adv):
            moved = list(range(axis, axis + gather_index.ndim))
            out = transpose(out, moved + [d for d in range(out.ndim) if d not in moved])
    return out


# --- gather / one_hot -------------------------------------------------------------------------
def _infer_gather(inputs, attrs):
    params, indices = inputs
    axis = attrs["axis"]
    if not indices.dtype.is_integer:
        raise DTypeMismatch(f"indices must be integer, got {indices.dtype.name}")
    if not 0 <= axis < params.rank:
        raise ShapeMismatch(f"axis {axis} out of range for params of rank {params.rank}")
    return [TensorType(params.dtype, params.shape[:axis] + indices.shape + params.shape[axis + 1:])]


def check_indices(indices: np.ndarray, size: int, what: str) -> None:
    if indices.size and (indices.min() < -size or indices.max() >= size):
        bad = indices[(indices < -size) | (indices >= size)].flat[0]
        raise IndexError(f"index {bad} is out of range for {what} of size {size}")


def _ref_gather(inputs, attrs, ctx=None):
    params, indices = inputs
    axis = attrs["axis"]
    check_indices(indices, params.shape[axis], f"axis {axis}")
    return (np.take(params, indices, axis=axis),)


define("gather", "shape", _infer_gather, _ref_gather,
       doc="Take slices along `axis` at integer `indices` (negative indices count from the end).")


def gather(params, indices, validate_indices=None, name: Optional[str] = None, axis: int = 0) -> Tensor:
    """TF1's order; ``validate_indices`` is accepted and changes nothing (graphc checks the
    indices of every gather at run time)."""
    if axis is None:
        axis = 0
    p = convert_to_tensor(params)
    i = indices if is_symbolic(indices) else constant(np.asarray(indices), graph=p.graph)
    i = convert_to_tensor(i)
    if not i.dtype.is_integer:
        raise dtype_error("gather", f"indices '{i.name}' must be integer, got {i.dtype.name}")
    return make1("gather", (p, i), {"axis": normalize_axis_or_raise("gather", axis, p.ndim)}, name or "GatherV2")


def _infer_one_hot(inputs, attrs):
    (indices,) = inputs
    if not indices.dtype.is_integer:
        raise DTypeMismatch(f"indices must be integer, got {indices.dtype.name}")
    axis = attrs["axis"]
    if not 0 <= axis <= indices.rank:
        raise ShapeMismatch(f"axis {axis} out of range")
    return [TensorType(attrs["dtype"], indices.shape[:axis] + (attrs["depth"],) + indices.shape[axis:])]


def _ref_one_hot(inputs, attrs, ctx=None):
    indices = inputs[0]
    hot = np.expand_dims(indices, -1) == np.arange(attrs["depth"])
    out = np.where(hot, attrs["on_value"], attrs["off_value"]).astype(attrs["dtype"].np)
    return (np.moveaxis(out, -1, attrs["axis"]),)


define("one_hot", "shape", _infer_one_hot, _ref_one_hot,
       doc="One-hot encoding; indices outside [0, depth) give all off_value (TensorFlow's rule).")


def one_hot(indices, depth: int, on_value=1, off_value=0, axis: int = -1, dtype=dt.float32,
            name: Optional[str] = None) -> Tensor:
    i = convert_to_tensor(indices)
    if not i.dtype.is_integer:
        raise dtype_error("one_hot", f"indices '{i.name}' must be integer, got {i.dtype.name}")
    if is_symbolic(depth) or not isinstance(depth, numbers.Integral) or depth < 0:
        raise shape_error("one_hot", f"depth must be a non-negative Python int, got {depth!r}")
    dtype = as_dtype(dtype)
    on = np.asarray(on_value).astype(dtype.np).item()
    off = np.asarray(off_value).astype(dtype.np).item()
    axis = normalize_axis_or_raise("one_hot", axis, i.ndim + 1)
    return make1("one_hot", (i,), {"depth": int(depth), "on_value": on, "off_value": off, "axis": axis,
                                   "dtype": dtype}, name or "one_hot")


# --- adjoints used by gradients --------------------------------------------------------------
def _infer_scatter_add(inputs, attrs):
    updates, indices, like = inputs
    axis = attrs["axis"]
    if not indices.dtype.is_integer:
        raise DTypeMismatch(f"indices must be integer, got {indices.dtype.name}")
    if not 0 <= axis < like.rank:
        raise ShapeMismatch(f"axis {axis} out of range for rank {like.rank}")
    want = like.shape[:axis] + indices.shape + like.shape[axis + 1:]
    if not TensorShape(updates.shape).is_compatible_with(want):
        raise ShapeMismatch(f"updates of shape {updates.shape} do not match {TensorShape(want)}")
    return [TensorType(updates.dtype, like.shape)]


def _ref_scatter_add(inputs, attrs, ctx=None):
    updates, indices, like = inputs
    axis = attrs["axis"]
    size = like.shape[axis]
    check_indices(indices, size, f"axis {axis}")
    out = np.zeros(like.shape, dtype=updates.dtype)
    np.add.at(out, (slice(None),) * axis + (np.where(indices < 0, indices + size, indices),), updates)
    return (out,)


define("scatter_add", "shape", _infer_scatter_add, _ref_scatter_add, shape_only_inputs=lambda attrs, n: (2,),
       doc="Zeros shaped like the third input, with `updates` added at `indices` along `axis` (repeats "
           "accumulate): the adjoint of gather.")


def scatter_add(updates, indices, like, axis: int = 0, name: Optional[str] = None) -> Tensor:
    u, i, l = convert_to_tensor(updates), convert_to_tensor(indices), convert_to_tensor(like)
    return make1("scatter_add", (u, i, l), {"axis": normalize_axis_or_raise("scatter_add", axis, l.ndim)},
                 name or "ScatterAdd")


def _infer_strided_slice_grad(inputs, attrs):
    g, like = inputs
    (expected,) = _infer_strided_slice([like], attrs)
    if not expected.shape.is_compatible_with(g.shape):
        raise ShapeMismatch(f"gradient of shape {g.shape} does not match the slice shape {expected.shape}")
    return [TensorType(g.dtype, like.shape)]


def _ref_strided_slice_grad(inputs, attrs, ctx=None):
    g, like = inputs
    out = np.zeros(like.shape, dtype=g.dtype)
    out[index_tuple(attrs["index"])] = g
    return (out,)


define("strided_slice_grad", "shape", _infer_strided_slice_grad, _ref_strided_slice_grad,
       shape_only_inputs=lambda attrs, n: (1,),
       doc="Zeros shaped like the second input with the first written at the slice `index`: the adjoint "
           "of strided_slice.")


def _infer_pad_grad(inputs, attrs):
    (g,) = inputs
    pads = attrs["paddings"]
    if len(pads) != g.rank:
        raise ShapeMismatch(f"paddings must have one pair per axis (rank {g.rank})")
    out = []
    for d, (b, a) in zip(g.shape, pads):
        if d is not None and d - b - a < 0:
            raise ShapeMismatch(f"dimension {d} is smaller than its padding {(b, a)}")
        out.append(None if d is None else d - b - a)
    return [TensorType(g.dtype, out)]


def _ref_pad_grad(inputs, attrs, ctx=None):
    out = inputs[0]
    mode = attrs["mode"]
    for axis, (b, a) in enumerate(attrs["paddings"]):
        n = out.shape[axis] - b - a
        take = lambda lo, hi: np.take(out, np.arange(lo, hi), axis=axis)  # noqa: E731
        center = take(b, b + n).copy()
        if mode != "CONSTANT" and (b or a):
            shift = 1 if mode == "REFLECT" else 0
            idx = [slice(None)] * out.ndim
            if b:
                idx[axis] = slice(shift, shift + b)
                center[tuple(idx)] += np.flip(take(0, b), axis=axis)
            if a:
                idx[axis] = slice(n - shift - a, n - shift)
                center[tuple(idx)] += np.flip(take(b + n, b + n + a), axis=axis)
        out = center
    return (out,)


define("pad_grad", "shape", _infer_pad_grad, _ref_pad_grad,
       doc="The adjoint of pad: crops the padding away, adding reflected parts back for REFLECT/SYMMETRIC.")


def broadcast_like(x, like, name: Optional[str] = None) -> Tensor:
    """Broadcast ``x`` to the run-time shape of ``like``."""
    x, like = convert_to_tensor(x), convert_to_tensor(like)
    spec, sources = spec_like(like, first_input=1)
    return make1("broadcast_to", (x, *sources), {"shape": spec}, name or "BroadcastTo")


# --- reverse -----------------------------------------------------------------------------------------
def _infer_reverse(inputs, attrs):
    (x,) = inputs
    for a in attrs["axes"]:
        if not 0 <= a < x.rank:
            raise ShapeMismatch(f"axis {a} out of range for rank {x.rank}")
    return [x]


define("reverse", "shape", _infer_reverse,
       one_output(lambda x, a: np.ascontiguousarray(np.flip(x, a["axes"])) if a["axes"] else x.copy()),
       gradient=lambda op, grads: [make1("reverse", (grads[0],), dict(op.attrs))],
       doc="Reverse the order of elements along each of `axes` (TF1's reverse / reverse_v2).")


def reverse(tensor, axis, name: Optional[str] = None) -> Tensor:
    """TF1's ``tf.reverse(tensor, axis)`` (``reverse_v2``): ``axis`` is an int or a list of
    ints (Python values or a constant), each at most once."""
    x = convert_to_tensor(tensor)
    if is_symbolic(axis):
        op = convert_to_tensor(axis).op
        if op.type != "const":
            raise shape_error("reverse", f"axis must be Python ints or a constant, got the computed tensor "
                              f"'{convert_to_tensor(axis).name}'")
        axis = np.asarray(op.attrs["value"]).tolist()
    axes = [axis] if isinstance(axis, numbers.Integral) else list(np.asarray(axis, dtype=np.int64).reshape(-1))
    axes = [normalize_axis_or_raise("reverse", int(a), x.ndim) for a in axes]
    if len(set(axes)) != len(axes):
        raise shape_error("reverse", f"axis {list(axis) if not isinstance(axis, numbers.Integral) else axis} "
                          "names an axis twice")
    return make1("reverse", (x,), {"axes": tuple(sorted(axes))}, name or "ReverseV2")


reverse_v2 = reverse

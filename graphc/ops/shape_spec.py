"""Shape specs: how ops that create tensors (fill, reshape, broadcast_to, random) say their
output shape so that it depends only on *shapes*, never on tensor data.

A spec is a tuple with one entry per output dim:
  * an int >= 0: a static size;
  * -1: "whatever is left" (reshape only);
  * ``("dim", i, axis)``: the run-time size of dim ``axis`` of the op's input ``i``.

Users may pass ``gc.shape(x)``-derived tensors (``[gc.shape(x)[0], -1]``); those are resolved
here at build time into ``("dim", i, axis)`` entries. Because output shapes are always a
function of input shapes, a compiled program can plan all of its memory from feed shapes.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import ShapeError, ShapeMismatch
from ..graph import Tensor, user_location
from ..shapes import TensorShape

_UNKNOWN = object()


def is_dim_ref(entry) -> bool:
    return isinstance(entry, tuple) and len(entry) == 3 and entry[0] == "dim"


def _resolve_scalar(t: Tensor):
    """An int, ``(tensor, axis)`` or _UNKNOWN for a scalar integer tensor."""
    op = t.op
    if op.type == "const":
        return int(op.attrs["value"])
    if op.type in ("cast", "identity") and op.inputs[0].dtype.is_integer:
        return _resolve_scalar(op.inputs[0])
    if op.type == "strided_slice":
        vec = _resolve_vector(op.inputs[0])
        index = op.attrs["index"]
        if vec is not None and len(index) == 1 and index[0][0] == "int":
            return vec[index[0][1]]
    if op.type == "reshape" and op.inputs[0].shape in ((1,), ()):
        vec = _resolve_vector(op.inputs[0]) if op.inputs[0].ndim == 1 else [_resolve_scalar(op.inputs[0])]
        return vec[0] if vec else _UNKNOWN
    return _UNKNOWN


def _resolve_vector(t: Tensor) -> Optional[list]:
    """A list of entries (int, ``(tensor, axis)`` or _UNKNOWN) for a 1-D integer tensor."""
    if t.ndim != 1 or not t.dtype.is_integer:
        return None
    op = t.op
    if op.type == "const":
        return [int(v) for v in op.attrs["value"]]
    if op.type == "shape":
        x = op.inputs[0]
        return [d if d is not None else (x, i) for i, d in enumerate(x.shape)]
    if op.type in ("cast", "identity"):
        return _resolve_vector(op.inputs[0])
    if op.type == "expand_dims" and op.inputs[0].ndim == 0:
        return [_resolve_scalar(op.inputs[0])]
    if op.type == "concat":
        parts = [_resolve_vector(x) for x in op.inputs]
        if any(p is None for p in parts):
            return None
        return [e for p in parts for e in p]
    if op.type == "strided_slice":
        vec = _resolve_vector(op.inputs[0])
        index = op.attrs["index"]
        if vec is not None and len(index) == 1 and index[0][0] == "slice":
            _, start, stop, step = index[0]
            return vec[slice(start, stop, step)]
    if t.shape[0] is not None:
        return [_UNKNOWN] * t.shape[0]
    return None


def resolve_shape_spec(dims, op_type: str, first_input: int, allow_infer: bool = False):
    """Turn user dims (a sequence of ints / scalar tensors, or a 1-D int tensor) into
    ``(spec, sources)``: sources are the extra inputs ``("dim", i, axis)`` entries refer to,
    numbered from ``first_input``."""
    from .state import Variable
    if isinstance(dims, Variable):
        dims = dims.value()
    if isinstance(dims, Tensor):
        entries = _resolve_vector(dims)
        if entries is None:
            raise ShapeError(f"{op_type} at {user_location()}: the shape tensor '{dims.name}' must be 1-D "
                             "integer with a known length")
    elif isinstance(dims, (list, tuple, TensorShape, np.ndarray)):
        entries = []
        for d in dims:
            if isinstance(d, Tensor):
                if d.ndim != 0 or not d.dtype.is_integer:
                    raise ShapeError(f"{op_type} at {user_location()}: shape entry '{d.name}' must be a "
                                     "scalar integer tensor")
                entries.append(_resolve_scalar(d))
            elif d is None:
                raise ShapeError(f"{op_type} at {user_location()}: None is not a dimension here; use -1 or a "
                                 "dim from gc.shape(...)")
            elif isinstance(d, (int, np.integer)) and not isinstance(d, bool):
                entries.append(int(d))
            else:
                raise ShapeError(f"{op_type} at {user_location()}: shape entry {d!r} is not an int or a scalar "
                                 f"integer tensor (the shape given: {dims!r})")
    elif isinstance(dims, (int, np.integer)) and not isinstance(dims, bool):
        entries = [int(dims)]
    else:
        raise ShapeError(f"{op_type} at {user_location()}: cannot use {dims!r} as a shape; expected a list of "
                         "ints (or dims of gc.shape(...)), a 1-D integer tensor, or one int")

    sources: list[Tensor] = []
    spec = []
    for e in entries:
        if e is _UNKNOWN:
            # A dim that depends on tensor data: the output shape could not be planned from
            # input shapes, so it is refused rather than guessed.
            raise ShapeError(
                f"{op_type} at {user_location()}: cannot tell the shape {_describe(dims)} at build time; "
                "each dim must be an int" + (", -1" if allow_infer else "") + " or derived from gc.shape(...)")
        if isinstance(e, tuple):
            tensor, axis = e
            if tensor not in sources:
                sources.append(tensor)
            spec.append(("dim", first_input + sources.index(tensor), axis))
        else:
            if e < 0 and not (allow_infer and e == -1):
                raise ShapeError(f"{op_type} at {user_location()}: invalid dimension {e} in shape {_describe(dims)}")
            spec.append(e)
    if spec.count(-1) > 1:
        raise ShapeError(
            f"{op_type} at {user_location()}: shape {_describe(dims)} has more than one -1; at most one "
            "may be -1 (the others must be ints or come from gc.shape(...))")
    return tuple(spec), tuple(sources)


def _describe(dims) -> str:
    if isinstance(dims, Tensor):
        return f"'{dims.name}'"
    return "[" + ", ".join(f"'{d.name}'" if isinstance(d, Tensor) else repr(d) for d in dims) + "]"


def spec_dims_static(spec: Sequence, input_types: Sequence) -> TensorShape:
    """Static output dims of a spec without -1 entries."""
    spec = expand_all_refs(spec, input_types)
    dims = []
    for e in spec:
        if is_dim_ref(e):
            _, i, axis = e
            if i >= len(input_types) or not -input_types[i].rank <= axis < input_types[i].rank:
                raise ShapeMismatch(f"shape spec entry {e} does not refer to an input dim")
            dims.append(input_types[i].shape[axis])
        elif isinstance(e, int) and e >= 0:
            dims.append(e)
        else:
            raise ShapeMismatch(f"invalid shape spec entry {e!r}")
    return TensorShape(dims)


def spec_to_concrete(spec: Sequence, inputs: Sequence) -> tuple:
    """Run-time dims of a spec (entries -1 are left as -1)."""
    return tuple(inputs[e[1]].shape[e[2]] if is_dim_ref(e) else e for e in spec)


def is_all_ref(e) -> bool:
    return isinstance(e, tuple) and len(e) == 2 and e[0] == "all"


def expand_all_refs(spec: Sequence, input_types: Sequence) -> tuple:
    """Replace each ``("all", i)`` entry, "every dim of input i" (made for an input whose rank
    was unknown when the graph was built), by one entry per dim of that input's type. The
    Session does this once the rank is fed (optimizer/program.py), so kernels never see it."""
    if not any(is_all_ref(e) for e in spec):
        return tuple(spec)
    out = []
    for e in spec:
        if is_all_ref(e):
            if not 0 <= e[1] < len(input_types):
                raise ShapeMismatch(f"shape spec entry {e} does not refer to an input")
            out.extend(d if d is not None else ("dim", e[1], j) for j, d in enumerate(input_types[e[1]].shape))
        else:
            out.append(e)
    return tuple(out)


def spec_like(x: Tensor, first_input: int):
    """``(spec, sources)`` for "the run-time shape of ``x``": static dims stay ints."""
    if not x.shape.known_rank:
        return (("all", first_input),), (x,)
    spec = tuple(d if d is not None else ("dim", first_input, i) for i, d in enumerate(x.shape))
    return spec, ((x,) if any(is_dim_ref(e) for e in spec) else ())


def static_shape(shape, op_type: str, name: Optional[str] = None, allow_none: bool = True) -> tuple:
    """A static shape argument as TF1 takes it: a list or tuple of ints (and ``None`` for an
    unknown dim, where ``allow_none``), a TensorShape, or one int (``shape=(batch_size)`` is
    an int in Python). Anything else is a ShapeError naming the op and the user's line."""
    label = f"{op_type} '{name}'" if name else op_type
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ShapeError(f"{label} at {user_location()}: shape must be a list of ints"
                         f"{' or None' if allow_none else ''}, got {shape!r}") from None
    out = []
    for d in dims:
        if d is None and allow_none:
            out.append(None)
        elif isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0:
            out.append(int(d))
        else:
            raise ShapeError(f"{label} at {user_location()}: shape {shape!r} has the entry {d!r}; each entry must "
                             f"be a non-negative int{' or None' if allow_none else ''}")
    return tuple(out)

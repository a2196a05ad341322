"""Static shapes: dimensions that may be ``None``, and a rank that is known except downstream
of a placeholder made without a shape (``UnknownRankShape``: its rank comes from the first
feed, and the Session specializes the program per fed rank, optimizer/program.py ``lower``).

Helpers here raise :class:`graphc.errors.ShapeMismatch`; the graph turns that into a
ShapeError naming the op, its inputs and the user's line.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from .dtypes import DType
from .errors import ShapeMismatch

Dim = Optional[int]


class TensorShape(tuple):
    """A tuple of ints and ``None``s, with the few TensorFlow conveniences ported code uses."""

    def __new__(cls, dims: Iterable[Dim] = ()):
        if isinstance(dims, UnknownRankShape):
            return dims
        return super().__new__(cls, (None if d is None else int(d) for d in dims))

    known_rank = True

    @property
    def rank(self) -> int:
        return len(self)

    ndims = rank

    def as_list(self) -> list:
        return list(self)

    def is_fully_defined(self) -> bool:
        return all(d is not None for d in self)

    def num_elements(self) -> Optional[int]:
        if not self.is_fully_defined():
            return None
        n = 1
        for d in self:
            n *= d
        return n

    def is_compatible_with(self, other: Sequence[Dim]) -> bool:
        return len(self) == len(other) and all(
            a is None or b is None or a == b for a, b in zip(self, other))

    def __repr__(self) -> str:
        return "(" + ", ".join("None" if d is None else str(d) for d in self) + ("," if len(self) == 1 else "") + ")"


class UnknownRankShape(TensorShape):
    """The shape of a tensor computed from a placeholder made without a shape
    (``tf.placeholder(tf.float32)``): its rank is set by the value fed, run by run.

    Graph building goes on without the rank (Graph.create_op infers only the dtypes); the
    Session re-infers every shape once the fed rank is known and compiles one program per rank.
    Anything that needs the rank while the graph is built (``len``, iteration, ``rank``,
    indexing) raises RankUnknownError naming the placeholder, never a guess: code that took
    this for a scalar would build a graph that is silently wrong for other ranks."""

    known_rank = False

    def __new__(cls, source: str, where: str):
        self = tuple.__new__(cls, ())
        self.source = source  # the shapeless placeholder's name
        self.where = where    # where it was made
        return self

    def _needs_rank(self, *_):
        from .errors import RankUnknownError
        from .graph import user_location
        raise RankUnknownError(
            f"at {user_location()}: this needs the rank of a tensor computed from placeholder '{self.source}' "
            f"(made at {self.where} without a shape), whose rank graphc learns only from the value fed. Give the "
            f"placeholder the shape you feed, e.g. placeholder(tf.float32, shape=[None]) for a vector")

    __len__ = __iter__ = __getitem__ = __bool__ = _needs_rank
    rank = ndims = property(_needs_rank)
    as_list = _needs_rank

    def is_fully_defined(self) -> bool:
        return False

    def num_elements(self) -> Optional[int]:
        return None

    def is_compatible_with(self, other: Sequence[Dim]) -> bool:
        return True

    def __eq__(self, other) -> bool:
        return isinstance(other, UnknownRankShape)

    def __ne__(self, other) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return "<unknown rank>"


def format_shape(shape: Sequence[Dim]) -> str:
    return repr(TensorShape(shape))


@dataclass(frozen=True)
class TensorType:
    """What inference knows about a value: its dtype and static shape."""

    dtype: DType
    shape: TensorShape

    def __post_init__(self):
        if not isinstance(self.shape, TensorShape):
            object.__setattr__(self, "shape", TensorShape(self.shape))

    @property
    def rank(self) -> int:
        return self.shape.rank

    def __str__(self) -> str:
        return f"{self.dtype.name}{format_shape(self.shape)}"


def broadcast_dims(a: Dim, b: Dim) -> Dim:
    if a == 1:
        return b
    if b == 1:
        return a
    if a is None:
        return b
    if b is None or a == b:
        return a
    raise ShapeMismatch("")


def broadcast_shapes(*shapes: Sequence[Dim]) -> TensorShape:
    """NumPy broadcasting of static shapes. A ``None`` dim meeting a known dim > 1 takes it
    (the run-time check catches a mismatch); ``None`` meeting ``None`` stays ``None``."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = [1] * rank
    for s in shapes:
        padded = (1,) * (rank - len(s)) + tuple(s)
        for i, d in enumerate(padded):
            try:
                out[i] = broadcast_dims(out[i], d)
            except ShapeMismatch:
                raise ShapeMismatch("cannot broadcast shapes " + " and ".join(format_shape(x) for x in shapes)) from None
    return TensorShape(out)


def normalize_axis(axis: int, rank: int, what: str = "axis") -> int:
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise ShapeMismatch(f"{what} must be an int, got {axis!r}")
    if not -rank <= axis < rank:
        raise ShapeMismatch(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def normalize_axes(axis, rank: int) -> tuple:
    """``None`` -> all axes; an int or a tuple of ints -> a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(rank))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = sorted(normalize_axis(a, rank) for a in axes)
    if len(set(out)) != len(out):
        raise ShapeMismatch(f"repeated axis in {axis!r}")
    return tuple(out)


def merge_dims(a: Dim, b: Dim, what: str) -> Dim:
    """Two dims that must be equal; ``None`` matches anything."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    raise ShapeMismatch(f"{what}: {a} != {b}")


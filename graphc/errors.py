"""Errors a user can cause. Each message names the tensor or op, what was expected, what was
given, and the user's file:line where the node was made."""
from __future__ import annotations


class GraphcError(Exception):
    """Base class of every error graphc raises on purpose."""


class GraphError(GraphcError, ValueError):
    """Misuse of the graph itself: a finalized graph, tensors from two graphs, bad names."""


class ShapeError(GraphcError, ValueError):
    """Shapes that cannot match, found while building the graph."""


class RankUnknownError(ShapeError):
    """Graph building needed the rank of a tensor that comes from a placeholder made without
    a shape (its rank is known only once it is fed)."""


class DTypeError(GraphcError, TypeError):
    """Element types an op does not accept, found while building the graph."""


class FeedError(GraphcError, ValueError):
    """A bad ``feed_dict``: unknown key, wrong shape or dtype, missing placeholder."""


class FetchError(GraphcError, ValueError):
    """A fetch that cannot be run: unknown name, another graph, unsupported type."""


class FailedPreconditionError(GraphcError, RuntimeError):
    """The session is not in a state to run this: an uninitialized variable, a closed session."""


class InvalidArgumentError(GraphcError, ValueError):
    """A value that is wrong at run time: a shape mismatch on ``None`` dims, an index out of range."""


class NumericsError(InvalidArgumentError):
    """A run under the NaN guard (``gc.Session(nan_guard=True)``) produced a NaN or an
    infinity; the message names the first op that made one from finite inputs."""


class DeadlineExceededError(GraphcError, RuntimeError):
    """A run took longer than its ``RunOptions(timeout_in_ms=...)`` (a loop that does not end)."""


class AbortedError(GraphcError, RuntimeError):
    """Another rank of a data-parallel run (``graphc.distribute``) failed or left, so the
    collective this rank waits in can never complete; the message names that rank."""


class OutOfRangeError(GraphcError, IndexError):
    """An input pipeline has no more elements (TF1's loop idiom catches it to end an epoch)."""


class CompileError(GraphcError, RuntimeError):
    """The program cannot be compiled for the chosen backend, e.g. an op without a kernel."""


class GradientError(GraphcError, ValueError):
    """A gradient that cannot be taken: non-float tensors, non-scalar ys without grad_ys,
    or an op without a gradient rule."""


class InferenceError(Exception):
    """Raised by an op's inference rule; the graph turns it into a ShapeError or DTypeError
    that names the op, its inputs and where it was created."""

    kind = ShapeError


class ShapeMismatch(InferenceError):
    kind = ShapeError


class DTypeMismatch(InferenceError):
    kind = DTypeError

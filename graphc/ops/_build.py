"""Shared plumbing for op builder functions: picking the graph, making nodes, promotion."""
from __future__ import annotations

from typing import Optional, Sequence

from ..attrs import Attrs
from ..errors import DTypeError, GraphError
from ..graph import Graph, Operation, Tensor, get_default_graph, user_location


def is_symbolic(value) -> bool:
    from .state import Variable
    return isinstance(value, (Tensor, Variable))


def _graph_member(value) -> bool:
    return is_symbolic(value) or isinstance(value, Operation)


def graph_of(*values, op_type: str = "op") -> Graph:
    """The graph the symbolic values (tensors, variables, operations; lists of them) live in.
    All must agree, except that values of enclosing graphs may meet in a body of control flow
    (the innermost graph is taken; Graph.create_op captures the outer values). With none, the
    default graph."""
    seen: dict = {}  # graph -> first value in it
    for v in values:
        for item in (v if isinstance(v, (list, tuple)) else (v,)):
            if _graph_member(item):
                seen.setdefault(item.graph, item)
    default = get_default_graph()
    if not seen:
        return default

    def within(inner: Graph) -> bool:
        return all(g is inner or inner.encloses(g) or g in inner.reads_from for g in seen)

    if within(default):
        return default
    for g in seen:
        if within(g):
            return g
    first, other = list(seen.values())[:2]
    _mixed(op_type, first, other)


def _mixed(op_type: str, a, b):
    raise GraphError(
        f"{op_type} at {user_location()}: cannot mix tensors from two graphs: "
        f"'{a.name}' is in {a.graph!r} and '{b.name}' is in {b.graph!r}")


def make(op_type: str, inputs: Sequence[Tensor] = (), attrs=None, name: Optional[str] = None,
         graph: Optional[Graph] = None) -> Operation:
    graph = graph or graph_of(*inputs, op_type=op_type)
    return graph.create_op(op_type, inputs, Attrs(attrs or {}), name)


def make1(op_type: str, inputs: Sequence[Tensor] = (), attrs=None, name: Optional[str] = None,
          graph: Optional[Graph] = None) -> Tensor:
    return make(op_type, inputs, attrs, name, graph).outputs[0]


def dtype_error(op_type: str, message: str) -> DTypeError:
    return DTypeError(f"{op_type} at {user_location()}: {message}")


def shape_error(op_type: str, message: str):
    from ..errors import ShapeError
    return ShapeError(f"{op_type} at {user_location()}: {message}")


def renamed(op_type: str, value, old_value, name: str, old_name: str):
    """One argument that TF1 and TF2 spell differently (TF1's ``old_name``, e.g. ``dim`` or
    ``reduction_indices``, beside ``name``): whichever was given; both is an error."""
    if old_value is None:
        return value
    if value is not None:
        raise TypeError(f"{op_type} at {user_location()}: give {name} or {old_name} (TF1's name for it), not both")
    return old_value

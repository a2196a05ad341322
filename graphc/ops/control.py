"""Ordering and pass-through ops: no_op, group, identity, stop_gradient."""
from __future__ import annotations

from typing import Optional

from ..graph import Operation, Tensor, get_default_graph
from ._build import graph_of, make, make1
from .registry import define, one_output
from .source import convert_to_tensor


def _pass_through(inputs, attrs):
    return [inputs[0]]


define("no_op", "control", lambda inputs, attrs: [], lambda xs, a, ctx=None: (), structural=True,
       doc="Does nothing; used to group control dependencies.")
define("identity", "control", _pass_through, one_output(lambda x, a: x), doc="Returns its input.")
define("stop_gradient", "control", _pass_through, one_output(lambda x, a: x),
       doc="Returns its input; gradients do not flow through it.")


def no_op(name: Optional[str] = None) -> Operation:
    return make("no_op", (), None, name or "NoOp", graph=get_default_graph())


def _flatten(items):
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        elif item is not None:
            yield item


def group(*inputs, name: Optional[str] = None) -> Operation:
    """An Operation that runs everything in ``inputs`` (ops, tensors, or nested lists)."""
    items = list(_flatten(inputs))
    graph = graph_of(items, op_type="group")
    with graph.control_dependencies(items):
        return make("no_op", (), None, name or "group_deps", graph=graph)


def identity(input, name: Optional[str] = None) -> Tensor:
    return make1("identity", (convert_to_tensor(input),), None, name or "Identity")


def stop_gradient(input, name: Optional[str] = None) -> Tensor:
    return make1("stop_gradient", (convert_to_tensor(input),), None, name or "StopGradient")

"""Ordering and pass-through ops: no_op, group, identity, stop_gradient, check_range."""
from __future__ import annotations

from typing import Optional

import numpy as np

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


def interval_text(attrs) -> str:
    return f"{'(' if attrs['low_open'] else '['}{attrs['low']:g}, {attrs['high']:g}{')' if attrs['high_open'] else ']'}"


def in_range(x, attrs):
    """Where ``x`` is inside check_range's interval (NaN is not)."""
    above = x > attrs["low"] if attrs["low_open"] else x >= attrs["low"]
    below = x < attrs["high"] if attrs["high_open"] else x <= attrs["high"]
    return above & below


def range_message(attrs, shows_value: bool = True, got: Optional[str] = None) -> str:
    """check_range's error, for the reference and every kernel alike: a ``str.format``
    template with a ``{}`` for the value found outside the interval. ``shows_value=False``:
    the words that stand for it, where a kernel cannot pass the value as it is (a float
    through an int64 error array would show truncated); ``got``: the words for a value the
    kernel told apart itself ("nan", "inf", "-inf"), so the template has no ``{}``."""
    what = attrs["what"].replace("{", "{{").replace("}", "}}")  # the caller's words, not a template
    head = f"{what} must be in {interval_text(attrs)}"
    if got is not None:
        return f"{head}, got {got}"
    return f"{head}, got {{}}" if shows_value else f"{head} (the value fed is outside it, or NaN)"


def _check_range_reference(x, attrs):
    bad = ~in_range(np.asarray(x), attrs)
    if bad.any():
        raise ValueError(range_message(attrs).format(np.asarray(x)[bad].flat[0]))
    return x


define("check_range", "control", _pass_through, one_output(_check_range_reference),
       gradient=lambda op, grads: [grads[0]], check=True,
       doc="Returns its input, and stops the run with an error naming the op when an element is outside "
           "[low, high] (each end open or closed): a value fed at run time that must be in a range.")


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


def check_range(x, low: float, high: float, what: str, low_open: bool = False, high_open: bool = False,
                name: Optional[str] = None) -> Tensor:
    """``x``, checked at run time to lie in the interval from ``low`` to ``high`` (open at an
    end whose flag is set): outside it (or NaN), the run stops with an InvalidArgumentError
    naming the op, where it was created and ``what`` ("keep_prob must be in (0, 1], got 0")."""
    return make1("check_range", (convert_to_tensor(x),), {"low": float(low), "high": float(high), "what": str(what),
                                                          "low_open": bool(low_open), "high_open": bool(high_open)},
                 name or "CheckRange")

"""Nested structures of values: lists, tuples, namedtuples and dicts (the fetches of
Session.run, the loop variables and branch results of control flow)."""
from __future__ import annotations

from typing import Any, Callable


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def flatten(structure) -> tuple:
    """Return ``(leaves, rebuild)``; ``rebuild(values)`` makes the same structure of values."""
    leaves: list = []

    def build(node) -> Callable:
        if isinstance(node, dict):
            keys = list(node.keys())
            subs = [build(node[k]) for k in keys]
            cls = type(node)
            return lambda it: cls((k, s(it)) for k, s in zip(keys, subs))
        if _is_namedtuple(node):
            subs = [build(v) for v in node]
            cls = type(node)
            return lambda it: cls(*(s(it) for s in subs))
        if isinstance(node, (list, tuple)):
            subs = [build(v) for v in node]
            cls = type(node)
            return lambda it: cls(s(it) for s in subs)
        leaves.append(node)
        return lambda it: next(it)

    builder = build(structure)

    def rebuild(values) -> Any:
        return builder(iter(values))

    return leaves, rebuild


def same_structure(a, b, check_types: bool = True) -> bool:
    """``a`` and ``b`` nest the same containers the same way (leaves may differ). Without
    ``check_types``, lists, tuples and namedtuples of one length count as the same (as TF1's
    while_loop compares its body's result with its loop variables)."""
    return _shape_of(a, check_types) == _shape_of(b, check_types)


def structure_text(structure) -> str:
    """The nesting of ``structure`` with its leaves as ``*``, for error messages."""
    def text(node):
        if isinstance(node, dict):
            return "{" + ", ".join(f"{k!r}: {text(v)}" for k, v in node.items()) + "}"
        if isinstance(node, (list, tuple)):
            inner = ", ".join(text(v) for v in node)
            name = type(node).__name__
            return f"[{inner}]" if name == "list" else (f"({inner})" if name == "tuple" else f"{name}({inner})")
        return "*"
    return text(structure)


def _shape_of(node, check_types: bool = True):
    if isinstance(node, dict):
        return (dict, tuple((k, _shape_of(v, check_types)) for k, v in sorted(node.items(), key=lambda kv: repr(kv[0]))))
    if isinstance(node, (list, tuple)):
        return (type(node) if check_types else tuple, tuple(_shape_of(v, check_types) for v in node))
    return None

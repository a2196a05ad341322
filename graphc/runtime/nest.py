"""Flatten and rebuild nested fetch structures: lists, tuples, namedtuples and dicts."""
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

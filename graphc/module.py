"""``gc.Module``: TF's ``tf.Module``, the grouping of variables and submodules that PyTorch
users know as ``nn.Module`` and its parameters.

A Module finds its variables by walking its attributes (and lists, tuples and dicts of them),
so a subclass only assigns them in ``__init__``. Variables made inside ``with
self.name_scope:`` are named under the module's unique name (``dense_1/w``).
"""
from __future__ import annotations

import functools
import re
from typing import Optional

from .graph import get_default_graph, user_location

_VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


class Module:
    """A named container of variables and submodules.

    ``variables`` / ``trainable_variables`` / ``submodules`` are found by walking the
    attributes, each listed once, in a stable order (attribute names sorted, as tf.Module)."""

    def __init__(self, name: Optional[str] = None):
        if name is None:
            name = _camel_to_snake(type(self).__name__)
        elif not _VALID_NAME.match(name):
            raise ValueError(f"gc.Module at {user_location()}: {name!r} is not a valid module name (letters, "
                             "digits, '_', '.', '-', not starting with a digit)")
        self._name = name
        graph = get_default_graph()
        # the scope is reserved once, so two modules named alike get dense and dense_1
        with graph.name_scope(name) as scope:
            self._scope_name = scope
        self._graph = graph

    @property
    def name(self) -> str:
        return self._name

    @property
    def name_scope(self):
        """A context that re-enters this module's name scope: ``with self.name_scope:``."""
        return _ReEnter(self._graph, self._scope_name)

    @property
    def variables(self) -> tuple:
        return tuple(self._walk(_is_variable))

    @property
    def trainable_variables(self) -> tuple:
        return tuple(v for v in self._walk(_is_variable) if v.trainable)

    @property
    def submodules(self) -> tuple:
        return tuple(self._walk(lambda x: isinstance(x, Module)))

    def _walk(self, predicate):
        seen: set = set()
        out: list = []

        def visit(value, depth):
            if id(value) in seen:
                return
            if isinstance(value, Module) and depth > 0:
                seen.add(id(value))
                if predicate(value):
                    out.append(value)
                for key in sorted(vars(value)):
                    visit(vars(value)[key], depth + 1)
            elif predicate(value):
                seen.add(id(value))
                out.append(value)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    visit(item, depth + 1)
            elif isinstance(value, dict):
                for key in sorted(value, key=str):
                    visit(value[key], depth + 1)

        seen.add(id(self))
        for key in sorted(vars(self)):
            if key not in ("_graph", "_name", "_scope_name"):
                visit(vars(self)[key], 1)
        return out

    @classmethod
    def with_name_scope(cls, method):
        """Decorates a method so that it runs inside the module's name scope."""
        @functools.wraps(method)
        def wrapped(self, *args, **kwargs):
            with self.name_scope:
                return method(self, *args, **kwargs)
        return wrapped

    def __repr__(self) -> str:
        return f"<gc.Module '{self._name}' variables={len(self.variables)}>"


def _is_variable(value) -> bool:
    from .ops.state import Variable
    return isinstance(value, Variable)


class _ReEnter:
    def __init__(self, graph, scope: str):
        self._graph, self._scope, self._context = graph, scope, None

    def __enter__(self):
        self._context = self._graph.name_scope(self._scope or None)
        return self._context.__enter__()

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)

"""Op attributes: an immutable, hashable mapping of plain values.

Allowed values: None, bool, int, float, str, DType, NumPy arrays (constant values), tuples
of those, and :class:`OpaqueAttr` objects (the bodies of control flow), which compare by
identity. Lists become tuples and NumPy scalars become Python scalars, so two ops built the
same way compare and hash equal (CSE relies on it) and attributes serialize to JSON.
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterator, Mapping

import numpy as np

from .dtypes import DType


class OpaqueAttr:
    """An attribute value that is an object of graphc's own (a cond branch, a loop body):
    immutable once built, equal only to itself."""


def _freeze(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str, DType, OpaqueAttr)):
        return value
    if isinstance(value, np.ndarray):
        arr = np.array(value, copy=True)
        arr.setflags(write=False)
        return arr
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    raise TypeError(f"attribute value of type {type(value).__name__} is not allowed: {value!r}")


def _hash_key(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        digest = hashlib.blake2b(np.ascontiguousarray(value).tobytes(), digest_size=16).hexdigest()
        return ("ndarray", value.dtype.str, value.shape, digest)
    if isinstance(value, tuple):
        return tuple(_hash_key(v) for v in value)
    if isinstance(value, float) and value != value:
        return ("nan",)
    if isinstance(value, OpaqueAttr):
        return (type(value).__name__, id(value))
    # bool and int compare equal in Python; keep True and 1 apart.
    return (type(value).__name__, value)


class Attrs(Mapping):
    __slots__ = ("_items", "_key")

    def __init__(self, items: Mapping[str, Any] | None = None, **kwargs):
        merged = dict(items or {}, **kwargs)
        self._items = {k: _freeze(v) for k, v in sorted(merged.items())}
        self._key = tuple((k, _hash_key(v)) for k, v in self._items.items())

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return isinstance(other, Attrs) and self._key == other._key

    def replace(self, **changes) -> "Attrs":
        return Attrs(self._items, **changes)

    @property
    def key(self) -> tuple:
        """A hashable, content-based key (arrays are hashed by their bytes)."""
        return self._key

    def __repr__(self) -> str:
        def short(v):
            if isinstance(v, np.ndarray):
                return f"array({v.dtype}, shape={v.shape})" if v.size > 8 else repr(v.tolist())
            return repr(v)
        return "{" + ", ".join(f"{k}={short(v)}" for k, v in self._items.items()) + "}"

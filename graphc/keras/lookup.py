"""Keras's ``get(identifier)`` and ``serialize`` in one place: how a name, a config dict, an
object or None becomes a loss, metric, activation, initializer, regularizer or optimizer, and
the error that lists the valid names."""
from __future__ import annotations

from typing import Callable, Optional

from ..graph import user_location


def resolve(kind: str, identifier, names: dict, *, make: Optional[Callable] = None,
            from_config: Optional[Callable] = None, none=None, accept: Callable = callable,
            key: Callable = lambda name: name, listed=None):
    """None -> ``none``; a name -> ``names[key(name)]`` (through ``make``, e.g. a class to
    its default instance); a dict -> ``from_config``; anything ``accept`` takes passes
    through; else an error that names ``kind`` and lists the valid names."""
    if identifier is None:
        return none
    if isinstance(identifier, dict) and from_config is not None:
        return from_config(identifier)
    if isinstance(identifier, str):
        found = names.get(key(identifier))
        if found is None:
            raise ValueError(f"keras.{kind}s.get at {user_location()}: unknown {kind} {identifier!r}; expected one "
                             f"of {sorted(listed if listed is not None else names)}")
        return make(found) if make is not None else found
    if accept(identifier):
        return identifier
    raise ValueError(f"keras.{kind}s.get at {user_location()}: expected a {kind} name"
                     f"{', a config dict' if from_config else ''} or a{' callable' if accept is callable else 'n ' + kind}"
                     f", got {identifier!r}")


def serialize(obj):
    """``{"class_name", "config"}`` of an object with ``get_config``; None stays None; a plain
    function (a custom activation, loss or initializer) is saved by its name, to be given back
    through ``load_model(..., custom_objects=...)``."""
    if obj is None:
        return None
    if not hasattr(obj, "get_config"):
        return getattr(obj, "__name__", type(obj).__name__)
    return {"class_name": type(obj).__name__, "config": obj.get_config()}

"""``keras.backend``: the one Session per graph that Keras models run in, and Keras's small
helpers (``get_value``/``set_value``, ``epsilon``, ``image_data_format``).

Keras 2 on TF1 kept one global session; graphc keeps one per graph, so models built in
different graphs never share variables or compiled programs. Variables are initialized when
a model first runs (``initialize_variables``), never twice: a second model added to the
same graph leaves the first one's trained values alone.
"""
from __future__ import annotations

import weakref
from typing import Optional

import numpy as np

from ..graph import Graph, get_default_graph, user_location

_sessions: "weakref.WeakKeyDictionary[Graph, object]" = weakref.WeakKeyDictionary()
_initialized: "weakref.WeakKeyDictionary[object, set]" = weakref.WeakKeyDictionary()
_device = "cpu"
_epsilon = 1e-7
_floatx = "float32"
_image_data_format = "channels_last"


def _one_of(function: str, value, allowed: tuple):
    if value not in allowed:
        raise ValueError(f"keras.backend.{function} at {user_location()}: expected one of "
                         f"{', '.join(repr(a) for a in allowed)}, got {value!r}")
    return value


def set_device(device: str) -> None:
    """The device of sessions made from now on: "cpu" (default), "cuda" or "reference"."""
    global _device
    _device = _one_of("set_device", device, ("cpu", "cuda", "reference"))


def get_device() -> str:
    return _device


def get_session(graph: Optional[Graph] = None):
    """The Session of ``graph`` (default: the default graph), made on first use."""
    from ..runtime.session import Session
    graph = graph or get_default_graph()
    session = _sessions.get(graph)
    if session is None or session._closed:
        session = Session(graph=graph, device=_device)
        _sessions[graph] = session
    return session


def set_session(session) -> None:
    """Use ``session`` for its graph's Keras models (TF1's ``K.set_session``)."""
    _sessions[session.graph] = session


def clear_session() -> None:
    """Close every Keras session and start a fresh default graph, as Keras's ``clear_session``."""
    from ..graph import reset_default_graph
    for session in list(_sessions.values()):
        session.close()
    _sessions.clear()
    reset_default_graph()


def initialize_variables(variables, session=None) -> None:
    """Run the initializers of those ``variables`` that ``session`` has not initialized yet."""
    variables = list(variables)
    if not variables:
        return
    session = session or get_session(variables[0].graph)
    done = _initialized.setdefault(session, set())
    todo = [v for v in variables if v.var_name not in done and v.var_name not in session._state.variables]
    if todo:
        session.run([v.initializer for v in todo])
    done.update(v.var_name for v in variables)


def _session_of(x):
    session = get_session(x.graph)
    initialize_variables([x], session)
    return session


def get_value(x) -> np.ndarray:
    """The value of variable ``x`` (as a NumPy array)."""
    return _session_of(x).run(x.value())


def batch_get_value(xs) -> list:
    """The values of many variables, in one run where they share a graph."""
    xs = list(xs)
    if len({x.graph for x in xs}) != 1:
        return [get_value(x) for x in xs]
    session = get_session(xs[0].graph)
    initialize_variables(xs, session)
    return session.run([x.value() for x in xs])


def set_value(x, value) -> None:
    """Set variable ``x`` to ``value`` without adding ops to the graph."""
    session = _session_of(x)
    x.load(np.asarray(value, dtype=x.dtype.np).reshape(tuple(x.shape)), session)


def batch_set_value(pairs) -> None:
    for x, value in pairs:
        set_value(x, value)


def epsilon() -> float:
    return _epsilon


def set_epsilon(value: float) -> None:
    global _epsilon
    _epsilon = float(value)


def floatx() -> str:
    return _floatx


def set_floatx(value: str) -> None:
    global _floatx
    _floatx = _one_of("set_floatx", value, ("float16", "float32", "float64"))


def image_data_format() -> str:
    return _image_data_format


def set_image_data_format(data_format: str) -> None:
    global _image_data_format
    _image_data_format = _one_of("set_image_data_format", data_format, ("channels_last", "channels_first"))


def backend() -> str:
    return "graphc"

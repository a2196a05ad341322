"""The stack of default Sessions, per thread (``with gc.Session() as sess:`` pushes one).

It lives below the graph layer so that ``Tensor.eval`` and ``Operation.run`` can find the
default Session without importing the runtime: the graph never reaches up into it."""
from __future__ import annotations

import threading
from typing import Optional


class _ThreadSessions(threading.local):
    def __init__(self):
        self.stack: list = []


_sessions = _ThreadSessions()


def get_default_session():
    """The innermost Session made the default (``with sess:`` or ``sess.as_default()``), or None."""
    return _sessions.stack[-1] if _sessions.stack else None


def push(session) -> None:
    _sessions.stack.append(session)


def pop(session) -> None:
    """Remove ``session`` if it is the innermost default (the only one ``__exit__`` removes)."""
    if _sessions.stack and _sessions.stack[-1] is session:
        _sessions.stack.pop()


def discard(session) -> None:
    """Remove ``session`` wherever it is in the stack (an InteractiveSession being closed)."""
    if session in _sessions.stack:
        _sessions.stack.remove(session)


def session_or_default(session, obj) -> "Optional[object]":
    """``session``, else the default Session, else a ValueError that says how to give one."""
    session = session or get_default_session()
    if session is None:
        raise ValueError(f"cannot evaluate {getattr(obj, 'name', obj)!r}: no session was given and there is no "
                         "default session; pass session=, or use `with gc.Session() as sess:`")
    return session

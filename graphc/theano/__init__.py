"""Theano's names over graphc's graph: ``import graphc.theano as theano``.

A thin layer, not a second engine: ``theano.tensor`` builds ordinary graphc ops (its
variables wrap graphc tensors, see ``variables.py``), ``theano.grad`` is ``gc.gradients``,
``theano.scan`` is ``gc.theano_scan``, and ``theano.function`` is one compiled
``Session.make_callable`` (``compile.py``).

Where shared values live: graphc keeps variable values in a Session, and Theano has none, so
each graph has one *Theano session* (``theano.session_for(graph)``, made on first use with
``theano.config.device``). ``theano.shared`` makes a graphc Variable and writes its value
there at once (there is no initializer step); every ``theano.function`` of the graph runs in
that session, so shared values carry from one function to the next. ``gc.reset_default_graph()``
starts a new graph, and with it a new session.

    import graphc.theano as theano
    import graphc.theano.tensor as T
    x = T.matrix("x")
    W = theano.shared(numpy.zeros((784, 10), dtype=theano.config.floatX), name="W")
    cost = T.mean(T.dot(x, W) ** 2)
    train = theano.function([x], cost, updates=[(W, W - 0.1 * theano.grad(cost, W))])
"""
from __future__ import annotations

from . import tensor  # noqa: F401
from .compile import (  # noqa: F401
    DisconnectedInputError, Function, UnusedInputError, clone, function, grad, scan,
)
from .config import config  # noqa: F401
from .variables import SharedVariable, TensorVariable, session_for, shared  # noqa: F401
from . import printing  # noqa: F401,E402

__version__ = "1.0.5-graphc"


def In(variable, name=None, value=None, **kwargs):  # noqa: N802  (Theano's name)
    """``theano.In(variable)``: graphc.theano takes the variable itself (default values are not supported)."""
    if value is not None:
        raise NotImplementedError("theano.In with a default value is not supported by graphc.theano")
    return variable


def Out(variable, borrow=False):  # noqa: N802
    return variable

"""``theano.config``: the few settings a Theano program reads or sets.

``floatX`` (default "float32", or ``GRAPHC_FLOATX``) is the dtype of ``T.matrix()`` and the
other untyped constructors. ``device`` ("cpu", "cuda" or "reference"; default
``GRAPHC_DEVICE`` or "cpu") is the device of the session that a graph's shared variables live
in; it is read when that session is made (the first ``theano.shared`` or
``theano.function`` of a graph).
"""
from __future__ import annotations

import os

from ..graph import user_location

_FLOATS = ("float32", "float64")
_DEVICES = ("cpu", "cuda", "reference")


class _Config:
    __slots__ = ("_floatX", "_device", "mode", "optimizer", "exception_verbosity", "compute_test_value")

    def __init__(self):
        self._floatX = os.environ.get("GRAPHC_FLOATX", "float32")
        self._device = os.environ.get("GRAPHC_DEVICE", "cpu")
        self.mode = "FAST_RUN"            # accepted and ignored: graphc always optimizes
        self.optimizer = "fast_run"
        self.exception_verbosity = "low"
        self.compute_test_value = "off"

    @property
    def floatX(self) -> str:  # noqa: N802  (Theano's name)
        return self._floatX

    @floatX.setter
    def floatX(self, value) -> None:  # noqa: N802
        if value not in _FLOATS:
            raise ValueError(f"theano.config.floatX at {user_location()}: expected one of {_FLOATS}, got {value!r}")
        self._floatX = value

    @property
    def device(self) -> str:
        return self._device

    @device.setter
    def device(self, value) -> None:
        name = "cuda" if str(value).startswith(("cuda", "gpu")) else value
        if name not in _DEVICES:
            raise ValueError(f"theano.config.device at {user_location()}: expected one of {_DEVICES} "
                             f"(or 'cuda0', 'gpu'), got {value!r}")
        self._device = name

    def __repr__(self) -> str:
        return f"theano.config(floatX={self.floatX!r}, device={self.device!r})"


config = _Config()

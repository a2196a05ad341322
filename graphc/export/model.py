"""``gc.export.save_model`` / ``load_model`` and the loaded ``Model``.

    gc.export.save_model(sess, "model.gcm", inputs={"x": x}, outputs={"logits": logits})
    model = gc.export.load_model("model.gcm")      # in any process: no model code needed
    model(x=batch)["logits"]
"""
from __future__ import annotations

import os
from typing import Dict, Mapping, Optional

import numpy as np

from ..errors import FeedError
from ..files import atomic_write, sweep_stale_temporaries
from .freeze import FrozenGraph, Signature, TensorsArg, as_frozen
from .model_file import FormatError, decode, encode


def save_model(sess_or_model, path, inputs: TensorsArg = None, outputs: TensorsArg = None,
               metadata: Optional[Mapping[str, str]] = None) -> str:
    """Freeze ``outputs`` (a dict name -> tensor) of the session's graph with its current
    variable values and write one model file at ``path`` (atomically). ``inputs`` (dict name
    -> placeholder or any tensor) default to the placeholders the outputs need. ``metadata``:
    strings of your own, stored in the file. A loaded Model may be saved again. Returns the path."""
    frozen = as_frozen(sess_or_model, inputs, outputs)
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("metadata must map strings to strings")
    path = os.fspath(path)
    sweep_stale_temporaries(os.path.dirname(os.path.abspath(path)))
    atomic_write(path, encode(frozen, dict(metadata or {})))
    return path


def load_model(path, device: Optional[str] = None, optimize: Optional[int] = None) -> "Model":
    """The model in ``path``, checked whole before anything runs (``FormatError`` says what is
    wrong and where). ``device``/``optimize`` as for ``gc.Session`` (default: cpu)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FormatError(f"no model file at {path}")
    frozen, header = decode(path)
    return Model(frozen, header, device=device, optimize=optimize, path=path)


class Model:
    """A loaded inference graph. ``model(**inputs)`` returns ``{output name: array}``;
    ``model.signature`` names the inputs and outputs with their dtypes and shapes."""

    def __init__(self, frozen: FrozenGraph, header: Optional[dict] = None, device: Optional[str] = None,
                 optimize: Optional[int] = None, path: Optional[str] = None):
        from ..runtime.session import Session
        self.frozen = frozen
        self.header = dict(header or {})
        self.path = path
        self._session = Session(graph=frozen.graph, device=device, optimize=optimize)
        self._inputs = dict(frozen.inputs)
        self._outputs = dict(frozen.outputs)
        self._runners: Dict[tuple, object] = {}

    @property
    def signature(self) -> Signature:
        return self.frozen.signature

    @property
    def metadata(self) -> dict:
        return dict(self.header.get("metadata", {}))

    @property
    def graphc_version(self) -> Optional[str]:
        return self.header.get("graphc_version")

    @property
    def created(self) -> Optional[str]:
        return self.header.get("created")

    @property
    def device(self) -> str:
        return self._session.device

    def __call__(self, *args, **inputs) -> Dict[str, np.ndarray]:
        """Run the model: inputs by name (``model(x=batch)``), or one dict positionally."""
        if args:
            if len(args) != 1 or not isinstance(args[0], Mapping) or inputs:
                raise TypeError(f"call a model with its inputs by name: model({self._call_example()})")
            inputs = dict(args[0])
        return self.run(inputs)

    def run(self, inputs: Mapping[str, object], outputs=None) -> Dict[str, np.ndarray]:
        """``{name: array}`` for ``outputs`` (names; default all) given ``inputs`` by name."""
        # The checks depend only on the input names and the outputs asked for, so a call with
        # the same names as an earlier one goes straight to its compiled callable (a model
        # served at batch 1 spends microseconds per call; the checks cost about 2 us).
        asked = outputs if outputs is None or isinstance(outputs, str) else tuple(outputs)
        fast = self._runners.get((tuple(inputs), asked))
        if fast is None:
            fast = self._runners[(tuple(inputs), asked)] = self._prepare(inputs, outputs)
        runner, keys, names = fast
        values = map(inputs.__getitem__, keys)  # (a list comprehension costs a frame: 0.3 us)
        if len(names) == 1:  # fetched alone, skipping the Session's rebuilding of a list
            return {names[0]: runner(*values)}
        return dict(zip(names, runner(*values)))

    def _prepare(self, inputs: Mapping[str, object], outputs) -> tuple:
        """(callable, input names in its feed order, output names) for a call's names, checked."""
        unknown = [k for k in inputs if k not in self._inputs]
        if unknown:
            raise FeedError(f"model has no input(s) {unknown}; its inputs are {self._describe(self._inputs)}")
        missing = [k for k, t in self._inputs.items() if k not in inputs and t.op.type == "placeholder"]
        if missing:
            raise FeedError(f"model input(s) {missing} not given; it needs {self._describe(self._inputs)}")
        names = list(self._outputs) if outputs is None else ([outputs] if isinstance(outputs, str) else list(outputs))
        bad = [n for n in names if n not in self._outputs]
        if bad:
            raise FeedError(f"model has no output(s) {bad}; its outputs are {self._describe(self._outputs)}")
        keys = tuple(sorted(inputs))
        fetches = self._outputs[names[0]] if len(names) == 1 else [self._outputs[n] for n in names]
        runner = self._session.make_callable(fetches, feed_list=[self._inputs[k] for k in keys])
        return runner, keys, tuple(names)

    def _describe(self, tensors: dict) -> str:
        return ", ".join(str(self.signature.inputs.get(k) or self.signature.outputs[k]) for k in tensors)

    def _call_example(self) -> str:
        return ", ".join(f"{k}=..." for k in self._inputs)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return f"<graphc Model{where}: {self.signature} on {self.device}>"

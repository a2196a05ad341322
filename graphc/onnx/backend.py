"""ONNX's backend interface over graphc, so ONNX's own test runner can drive it:

    import graphc.onnx.backend as backend
    rep = backend.prepare(model, "CPU")        # the cpu backend (numba kernels)
    outputs = rep.run([x])                     # a namedtuple-like of the graph outputs

Devices: "CPU" runs on graphc's cpu backend, "CUDA" on its CUDA backend. ``prepare(...,
graphc_device="reference")`` picks any graphc device directly (the test suite runs ONNX's
~1,900 node tests on the NumPy reference, which compiles nothing, and a sample on "CPU").
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from onnx.backend.base import Backend, BackendRep, namedtupledict

from . import import_model
from .importer import NeedsShape, NeedsValue

_DEVICES = {"CPU": "cpu", "CUDA": "cuda"}


class GraphcRep(BackendRep):
    """A prepared model: ``run(inputs)`` with inputs as a list (in the graph's input order)
    or a dict by name.

    graphc compiles static shapes. Where a model computes a shape from a graph input (a
    ``Reshape`` whose target is fed) or needs a dim it leaves symbolic, the model is imported
    again at ``run`` with those inputs' values (or all inputs' shapes) fixed to what the run
    is given, once per distinct set."""

    def __init__(self, proto, model, input_names, output_names, fixed=(), by_shape=False, **import_args):
        from .importer import NARROW
        self.proto = proto
        # graphc emulates float16 and bfloat16 as float32: results go back to the declared type
        types = {vi.name: vi.type.tensor_type.elem_type for vi in proto.graph.output}
        self.narrow = {n: NARROW[t] for n, t in types.items() if t in NARROW}
        self.wide_inputs = {vi.name: NARROW[vi.type.tensor_type.elem_type].wide.np for vi in proto.graph.input
                            if vi.type.tensor_type.elem_type in NARROW}
        self.model = model
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.fixed = sorted(fixed)       # inputs whose values decide shapes
        self.by_shape = by_shape         # whether the inputs' shapes must be fixed
        self.import_args = import_args
        self._specialized = {}

    def _model_for(self, feed: dict):
        if not self.fixed and not self.by_shape:
            return self.model, feed
        missing = [n for n in self.fixed if n not in feed]
        if missing:
            raise ValueError(f"the model needs input(s) {missing}, which decide its shapes")
        arrays = {k: np.asarray(v) for k, v in feed.items()}
        key = (tuple((n, arrays[n].dtype.str, arrays[n].shape, arrays[n].tobytes()) for n in self.fixed),
               tuple(sorted((k, a.shape) for k, a in arrays.items())) if self.by_shape else ())
        model = self._specialized.get(key)
        if model is None:
            try:
                model = import_model(self.proto, constants={n: arrays[n] for n in self.fixed},
                                     input_shapes={k: a.shape for k, a in arrays.items() if k not in self.fixed}
                                     if self.by_shape else None, **self.import_args)
            except NeedsValue as e:
                more = [n for n in e.inputs if n not in self.fixed]
                if not more or any(n not in feed for n in more):
                    raise
                self.fixed = sorted(self.fixed + more)
                return self._model_for(feed)
            except NeedsShape:
                if self.by_shape:
                    raise
                self.by_shape = True
                return self._model_for(feed)
            self._specialized[key] = model
        return model, {k: v for k, v in feed.items() if k not in self.fixed}

    def run(self, inputs: Any, **kwargs: Any):
        if isinstance(inputs, dict):
            feed = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            if len(inputs) > len(self.input_names):
                raise ValueError(f"the model takes {len(self.input_names)} inputs ({self.input_names}); "
                                 f"got {len(inputs)}")
            feed = dict(zip(self.input_names, inputs))
        feed = {k: np.asarray(v).astype(self.wide_inputs[k]) if k in self.wide_inputs else v for k, v in feed.items()}
        model, feed = self._model_for(feed)
        names = list(model.signature.outputs)
        results = model.run(feed, names)
        values = []
        for name in self.output_names:
            if name in results:
                value = results[name]
                if name in self.narrow:
                    value = self.narrow[name].to_narrow(value)
                values.append(value)
            else:   # a sequence: its elements are the outputs "name[0]", "name[1]", ...
                values.append([results[f"{name}[{i}]"] for i in range(sum(n.startswith(f"{name}[") for n in names))])
        return namedtupledict("Outputs", self.output_names)(*values)


class GraphcBackend(Backend):
    @classmethod
    def prepare(cls, model, device: str = "CPU", graphc_device: Optional[str] = None, optimize=None,
                check: bool = True, **kwargs: Any) -> GraphcRep:
        if check:   # onnx.checker, as every backend's prepare does
            super().prepare(model, device, **kwargs)
        target = graphc_device or cls._graphc_device(device)
        initialized = {t.name for t in model.graph.initializer}
        inputs = [vi.name for vi in model.graph.input if vi.name not in initialized]
        outputs = [vi.name for vi in model.graph.output]
        imported, fixed, by_shape = None, (), False
        try:
            imported = import_model(model, device=target, optimize=optimize)
        except NeedsValue as e:
            if not e.inputs:
                raise
            fixed = e.inputs
        except NeedsShape:
            by_shape = True
        return GraphcRep(model, imported, inputs, outputs, fixed, by_shape, device=target, optimize=optimize)

    @classmethod
    def run_model(cls, model, inputs: Any, device: str = "CPU", **kwargs: Any):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs: Any, device: str = "CPU", outputs_info=None, **kwargs: Any):
        """Run one NodeProto on ``inputs`` (a list in the node's input order)."""
        from onnx import helper, numpy_helper
        values = list(inputs.values()) if isinstance(inputs, dict) else list(inputs)
        names = [n for n in node.input if n]
        graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype),
                                                      list(np.asarray(v).shape)) for n, v in zip(names, values)]
        graph_outputs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
        graph = helper.make_graph([node], "run_node", graph_inputs, graph_outputs)
        opset = kwargs.pop("opset_version", None)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)] if opset else None)
        del numpy_helper
        # The node's output types are not given; the importer infers them, so the checker
        # (which wants them declared) is skipped.
        return cls.prepare(model, device, check=False, **kwargs).run(values)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        name = str(device).split(":")[0].upper()
        if name not in _DEVICES:
            return False
        if name == "CUDA":
            from ..codegen.backend import available_devices
            return "cuda" in available_devices()
        return True

    @staticmethod
    def _graphc_device(device: str) -> str:
        name = str(device).split(":")[0].upper()
        if name not in _DEVICES:
            raise ValueError(f"graphc's ONNX backend runs on 'CPU' or 'CUDA', not {device!r}")
        return _DEVICES[name]


prepare = GraphcBackend.prepare
run_model = GraphcBackend.run_model
run_node = GraphcBackend.run_node
supports_device = GraphcBackend.supports_device
is_compatible = GraphcBackend.is_compatible

"""``gc.onnx``: ONNX import, and ONNX's backend interface (``graphc.onnx.backend``).

    model = gc.onnx.import_model("resnet.onnx")          # a gc.export.Model, like load_model's
    model(input=batch)["output"]

    with graph.as_default():                             # into a graph you are building
        outputs = gc.onnx.import_graph("encoder.onnx", inputs={"x": x}, trainable=True)

The file is checked before anything is built (``reader.py``); each node then goes through the
converter of its op type (``converters.py``, ``converters_nn.py``). docs/IMPORT-ONNX.md lists
the ops, the limits, and the ONNX backend-test figures.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional

from ..export.model_file import FormatError
from .reader import OnnxImportError

ImportError = OnnxImportError  # noqa: A001 - the contract's name: gc.onnx.ImportError

__all__ = ["import_model", "import_graph", "ImportError", "FormatError", "OnnxImportError"]


def _build(model_or_path, graph, inputs: Optional[Mapping] = None, trainable: bool = False,
           source: Optional[str] = None, constants: Optional[Mapping] = None, input_shapes: Optional[Mapping] = None):
    from . import converters, converters_control, converters_ml, converters_nn, converters_rnn  # noqa: F401
    from .importer import Importer, Sequence
    from .reader import read_model
    proto, source = read_model(model_or_path, source)
    importer = Importer(proto, source, graph, trainable=trainable, input_shapes=input_shapes)
    import numpy as np
    names = {vi.name for vi in proto.graph.input} - {t.name for t in proto.graph.initializer}
    feeds = {}
    for what, given in (("inputs", inputs), ("constants", constants), ("input_shapes", input_shapes)):
        unknown = sorted(set(given or ()) - names)
        if unknown:
            raise OnnxImportError(f"{source}: {what} {unknown} are not inputs of the model; its inputs are "
                                  f"{sorted(names)}")
    with graph.as_default():
        import graphc as gc
        feeds.update({k: gc.convert_to_tensor(v) for k, v in (inputs or {}).items()})
        feeds.update({k: np.asarray(v) for k, v in (constants or {}).items()})
        placeholders = importer.import_graph(proto.graph, feeds=feeds)
        outputs = {}
        for vi in proto.graph.output:
            if vi.name not in importer.values:
                raise OnnxImportError(f"{source}: graph output {vi.name!r} is computed by no node")
            value = importer.values[vi.name]
            if isinstance(value, Sequence):   # a sequence output is one output per element: "name[i]"
                outputs.update({f"{vi.name}[{i}]": gc.identity(t) for i, t in enumerate(value)})
                continue
            outputs[vi.name] = importer.as_tensor(vi.name)
    return placeholders, outputs, importer


def import_graph(model_or_path, graph=None, inputs: Optional[Mapping] = None,
                 trainable: bool = False) -> Dict[str, object]:
    """Add the model's ops to ``graph`` (default: the default graph) and return its outputs
    ``{ONNX output name: tensor}``. ``inputs`` maps ONNX input names to tensors of yours (the
    others become placeholders named after the inputs). ``trainable=True`` makes each float
    initializer a trainable ``gc.Variable`` (initialized with ``global_variables_initializer``),
    so that the imported network can be trained further."""
    import graphc as gc
    graph = graph or gc.get_default_graph()
    _, outputs, _ = _build(model_or_path, graph, inputs, trainable)
    return outputs


def import_model(model_or_path, device: Optional[str] = None, optimize: Optional[int] = None,
                 constants: Optional[Mapping] = None, input_shapes: Optional[Mapping] = None):
    """The ONNX model (a path, bytes or ``onnx.ModelProto``) as a ``gc.export.Model``, the
    type ``load_model`` returns: inputs and outputs by their ONNX names, symbolic dims as
    ``None``. Save it with ``gc.export.save_model``, compile it with
    ``gc.export.shared_library``, or export it again with ``gc.export.to_onnx``.

    ``constants={input name: value}`` fixes inputs that decide shapes (a ``Reshape``'s
    target, a ``Slice``'s bounds fed as graph inputs): graphc compiles static shapes, and the
    error of a model that needs this names the inputs. ``input_shapes={input name: shape}``
    fixes the shapes of inputs whose dims the model leaves symbolic, where a converter needs
    them (a pooling window over a symbolic spatial size)."""
    import graphc as gc
    from ..export.freeze import _copy
    from ..export.model import Model
    graph = gc.Graph()
    placeholders, outputs, importer = _build(model_or_path, graph, constants=constants, input_shapes=input_shapes)
    frozen = _copy(graph, dict(outputs), dict(placeholders), None, fold=True)
    frozen = _copy(frozen.graph, frozen.outputs, frozen.inputs, None, fold=False)
    header = {"metadata": {"source": importer.source, "producer": importer.model.producer_name or "",
                           "opset": str(importer.opset)}}
    return Model(frozen, header, device=device, optimize=optimize)

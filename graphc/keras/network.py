"""``Network``: the graph of layer calls between a model's inputs and outputs (Keras 2's
``engine/network.py``): its layers in order, calling it again on other tensors, its weights,
and ``summary``. ``Model`` (training.py) adds compile and fit; ``Sequential`` builds one as
layers are added."""
from __future__ import annotations

import sys
from typing import Optional

import numpy as np

from ..errors import ShapeError
from ..graph import user_location
from ..ops.source import convert_to_tensor
from .engine import InputLayer, Layer, Node, _collecting, _shape_tuple, _unlist, keras_history, to_list, \
    unique_layer_name


class Network(Layer):
    def __init__(self, inputs=None, outputs=None, name: Optional[str] = None, trainable: bool = True):
        super().__init__(name=name or unique_layer_name(_default_prefix(self)), trainable=trainable)
        self.inputs: list = []
        self.outputs: list = []
        self._nodes: list = []
        self._layers: list = []
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError(f"keras.Model at {user_location()}: give both inputs= and outputs=")
            self._init_graph(to_list(inputs), to_list(outputs))

    def _init_graph(self, inputs: list, outputs: list) -> None:
        where = user_location()
        inputs = [convert_to_tensor(x) for x in inputs]
        for k, x in enumerate(inputs):
            history = keras_history(x)
            if history is None or not isinstance(history[0], InputLayer):
                # a plain placeholder (or any tensor) becomes an input, as Input(tensor=x)
                layer = InputLayer(input_tensor=x, name=x.op.name)
                inputs[k] = layer._inbound_nodes[0].outputs[0]
        outputs = [convert_to_tensor(y) for y in outputs]
        self._nodes, self._layers = _topology(inputs, outputs, self.name, where)
        self.inputs, self.outputs = inputs, outputs
        self._graph = outputs[0].graph if outputs else inputs[0].graph
        self.input_names = [keras_history(x)[0].name for x in inputs]
        self.output_names = [keras_history(y)[0].name if keras_history(y) else y.op.name for y in outputs]
        self.uses_training = any(layer.uses_training for layer in self._layers)
        # layers called with an explicit training= (Monte-Carlo dropout) act so in every mode
        self.uses_training = self.uses_training and any(
            node.layer.uses_training and "training" not in node.arguments for node in self._nodes)
        self.built = True

    # -- structure ----------------------------------------------------------------------------------
    @property
    def layers(self) -> list:
        return list(self._layers)

    def get_layer(self, name: Optional[str] = None, index: Optional[int] = None) -> Layer:
        if index is not None:
            if not 0 <= index < len(self._layers):
                raise ValueError(f"{self._what()}.get_layer at {user_location()}: index {index} is out of range; the "
                                 f"model has {len(self._layers)} layers")
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"{self._what()}.get_layer at {user_location()}: no layer named {name!r}; the layers are "
                         f"{', '.join(repr(x.name) for x in self._layers)}")

    @property
    def input_shape(self):
        return _unlist([_shape_tuple(x) for x in self.inputs])

    @property
    def output_shape(self):
        return _unlist([_shape_tuple(y) for y in self.outputs])

    @property
    def input(self):
        return _unlist(self.inputs)

    @property
    def output(self):
        return _unlist(self.outputs)

    # -- weights ------------------------------------------------------------------------------------
    def _unique(self, lists) -> list:
        seen, out = set(), []
        for items in lists:
            for v in items:
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    @property
    def weights(self) -> list:
        return self._unique(layer.weights for layer in self._layers)

    @property
    def trainable_weights(self) -> list:
        return self._unique(layer.trainable_weights for layer in self._layers) if self.trainable else []

    @property
    def non_trainable_weights(self) -> list:
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.weights if id(v) not in trainable]

    def weight_losses(self) -> list:
        """The regularizers' losses of every weight, nested models included."""
        return self._unique(layer.weight_losses() for layer in self._layers)

    @property
    def losses(self) -> list:
        """The losses of the weights (regularizers) and of the calls that made the outputs."""
        return self._unique([self.weight_losses()] + [node.losses for node in self._nodes])

    # -- calling ------------------------------------------------------------------------------------
    def call(self, inputs, training=False):
        """The outputs for other ``inputs`` (graphc tensors): every layer called again, its
        weights shared."""
        given = to_list(inputs)
        if len(given) != len(self.inputs):
            raise ValueError(f"{self._what()} at {user_location()}: the model takes {len(self.inputs)} input(s), got "
                             f"{len(given)}")
        values = {id(t): x for t, x in zip(self.inputs, given)}
        for node in self._nodes:
            args = [values[id(t)] for t in node.inputs]
            kwargs = dict(node.arguments)
            kwargs.setdefault("training", training)  # a training= the caller gave stays
            out = node.layer(args if node.listed else args[0], **kwargs)
            for t, y in zip(node.outputs, to_list(out)):
                values[id(t)] = y
        return _unlist([values[id(t)] for t in self.outputs])

    def _call_collecting(self, training: bool):
        """The outputs of the model on its own inputs in ``training`` mode, with the update
        ops and losses that call made: ``(outputs, updates, losses)``."""
        if not (training and self.uses_training):
            return list(self.outputs), [], [loss for node in self._nodes for loss in node.losses]
        _collecting.append({"updates": [], "losses": []})
        try:
            outputs = to_list(self.call(_unlist(self.inputs), training=True))
        finally:
            collected = _collecting.pop()
        return outputs, collected["updates"], collected["losses"]

    # -- summary ------------------------------------------------------------------------------------
    def summary(self, line_length: Optional[int] = None, positions=None, print_fn=None) -> None:
        """Keras's table: each layer, its output shape and parameter count, then the totals."""
        print_fn = print_fn or (lambda line: print(line, file=sys.stdout))
        sequential = all(len(n.inputs) <= 1 for n in self._nodes) and len(self.inputs) == 1
        line_length = line_length or (65 if sequential else 98)
        positions = positions or ([.45, .85, 1.] if sequential else [.33, .55, .67, 1.])
        if positions[-1] <= 1:
            positions = [int(line_length * p) for p in positions]
        headers = ["Layer (type)", "Output Shape", "Param #"] + ([] if sequential else ["Connected to"])

        def row(fields):
            line = ""
            for field, stop in zip(fields, positions):
                line = (line + str(field))[:stop].ljust(stop)
            print_fn(line.rstrip())

        print_fn(f'Model: "{self.name}"')
        print_fn("_" * line_length)
        row(headers)
        print_fn("=" * line_length)
        shown = [layer for layer in self._layers if not (sequential and isinstance(layer, InputLayer))]
        for k, layer in enumerate(shown):
            shape = _summary_shape(layer, self)
            fields = [f"{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params()}"]
            if sequential:
                row(fields)
            else:
                inbound = [f"{h[0].name}[{h[1]}][{h[2]}]" for node in self._nodes if node.layer is layer
                           for h in (keras_history(t) for t in node.inputs) if h is not None]
                row(fields + [inbound[0] if inbound else ""])
                for more in inbound[1:]:
                    row(["", "", "", more])
            print_fn(("=" if k == len(shown) - 1 else "_") * line_length)
        trainable = int(sum(int(np.prod(tuple(v.shape))) for v in self.trainable_weights))
        total = int(sum(int(np.prod(tuple(v.shape))) for v in self.weights))
        print_fn(f"Total params: {total:,}")
        print_fn(f"Trainable params: {trainable:,}")
        print_fn(f"Non-trainable params: {total - trainable:,}")
        print_fn("_" * line_length)

    def get_config(self) -> dict:
        """The layers, each with its config and the tensors it was called on (by layer name,
        node and tensor index), and the model's inputs and outputs, as Keras's JSON."""
        node_ids = {}
        for layer in self._layers:
            kept = [i for i, node in enumerate(layer._inbound_nodes) if node in self._nodes or
                    (isinstance(layer, InputLayer) and i == 0)]
            node_ids.update({(id(layer), i): k for k, i in enumerate(kept)})
        layers = []
        for layer in self._layers:
            inbound = []
            for i, node in enumerate(layer._inbound_nodes):
                if (id(layer), i) not in node_ids or isinstance(layer, InputLayer):
                    continue
                calls = []
                for t in node.inputs:
                    src, src_node, src_index = keras_history(t)
                    calls.append([src.name, node_ids[(id(src), src_node)], src_index])
                # only a Python-bool training= is kept: a file's kwargs are never passed through
                kwargs = {k: v for k, v in node.arguments.items() if k == "training" and isinstance(v, bool)}
                inbound.append({"inputs": calls, "listed": node.listed, "kwargs": kwargs})
            layers.append({"class_name": type(layer).__name__, "name": layer.name, "config": layer.get_config(),
                           "inbound_nodes": inbound})

        def refs(tensors):
            out = []
            for t in tensors:
                src, src_node, src_index = keras_history(t)
                out.append([src.name, node_ids[(id(src), src_node)], src_index])
            return out
        return {"name": self.name, "layers": layers, "input_layers": refs(self.inputs),
                "output_layers": refs(self.outputs)}


def _default_prefix(model) -> str:
    return "sequential" if type(model).__name__ == "Sequential" else "model"


def _summary_shape(layer: Layer, model: Network) -> str:
    for node in model._nodes:
        if node.layer is layer:
            shapes = [_shape_tuple(t) for t in node.outputs]
            return str(shapes[0] if len(shapes) == 1 else shapes)
    if isinstance(layer, InputLayer):
        return str(_shape_tuple(layer._inbound_nodes[0].outputs[0]))
    return "multiple"


def _topology(inputs: list, outputs: list, model_name: str, where: str):
    """The nodes between ``inputs`` and ``outputs`` in an order where each node comes after
    the nodes that made its inputs, and the layers in the order of their first node."""
    input_ids = {id(x) for x in inputs}
    nodes: list = []
    visited: set = set()

    def visit(t, path):
        if id(t) in input_ids:
            return
        history = keras_history(t)
        if history is None:
            raise ShapeError(f"keras.Model '{model_name}' at {where}: output '{t.name}' was not made by Keras layers "
                             "from the model's inputs (use keras.Input and call layers on it)")
        layer, node_index, _ = history
        node: Node = layer._inbound_nodes[node_index]
        if isinstance(layer, InputLayer):
            raise ShapeError(f"keras.Model '{model_name}' at {where}: graph disconnected: the outputs need input "
                             f"'{t.name}' (layer '{layer.name}'), which is not among the model's inputs "
                             f"({', '.join(repr(x.name) for x in inputs)})")
        if id(node) in visited:
            return
        if id(node) in path:
            raise ShapeError(f"keras.Model '{model_name}' at {where}: the layer calls form a cycle at '{layer.name}'")
        path.add(id(node))
        for x in node.inputs:
            visit(x, path)
        path.discard(id(node))
        visited.add(id(node))
        nodes.append(node)

    for y in outputs:
        visit(y, set())
    layers: list = [keras_history(x)[0] for x in inputs]
    for node in nodes:
        if node.layer not in layers:
            layers.append(node.layer)
    return nodes, layers

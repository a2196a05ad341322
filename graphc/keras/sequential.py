"""``Sequential``: a Model made of a stack of layers, each called on the previous output."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..graph import user_location
from .engine import Input, InputLayer, Layer
from .training import Model, _is_dataset


class Sequential(Model):
    """``Sequential([Dense(64, activation='relu', input_shape=(784,)), Dense(10)])``, or
    ``.add`` one layer at a time. Without an input shape the model is built by the first
    ``fit``/``predict`` (from the data) or by ``build(input_shape)``."""

    def __init__(self, layers=None, name: Optional[str] = None):
        super().__init__(name=name)
        self._pending: list = []  # layers added before the input shape is known
        self._deferred_compile = None  # compile() before the input shape was known
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list:
        built = [layer for layer in self._layers if not isinstance(layer, InputLayer)]
        return built if self.outputs else list(self._pending)

    def add(self, layer: Layer) -> None:
        where = user_location()
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add at {where}: expects a keras layer, got {type(layer).__name__}")
        if self.outputs:
            if len(self.outputs) != 1:
                raise ValueError(f"Sequential.add at {where}: the model's last layer has {len(self.outputs)} outputs; "
                                 "Sequential layers have one (use the functional API)")
            self._init_graph(self.inputs, [layer(self.outputs[0])])
            self._after_change()
            return
        if isinstance(layer, InputLayer):
            self._init_graph([layer._inbound_nodes[0].outputs[0]], [layer._inbound_nodes[0].outputs[0]])
            self._after_change()
            return
        shape = layer._batch_input_shape
        if shape is None and isinstance(layer, Model) and layer.inputs:
            shape = tuple(layer.inputs[0].shape)
        if shape is None or self._pending:
            self._pending.append(layer)
            return
        x = Input(batch_shape=shape, dtype=layer.dtype, name=f"{layer.name}_input")
        self._init_graph([x], [layer(x)])
        self._after_change()

    def build(self, input_shape=None) -> None:
        """Make the model for inputs of ``input_shape`` (batch dim included), calling the
        layers added so far."""
        if self.outputs:
            return
        if input_shape is None:
            raise ValueError(f"Sequential.build at {user_location()}: give input_shape (with the batch dim, e.g. "
                             "(None, 784))")
        if not self._pending:
            raise ValueError(f"Sequential.build at {user_location()}: the model has no layers")
        pending, self._pending = self._pending, []
        x = Input(batch_shape=tuple(input_shape), dtype=pending[0].dtype, name=f"{pending[0].name}_input")
        y = x
        for layer in pending:
            y = layer(y)
        self._init_graph([x], [y])
        self._after_change()

    def pop(self) -> None:
        """Remove the last layer."""
        layers = self.layers
        if not layers:
            raise TypeError(f"Sequential.pop at {user_location()}: there are no layers in the model")
        if not self.outputs:
            self._pending.pop()
            return
        if len(layers) == 1:
            self.inputs, self.outputs, self._nodes, self._layers = [], [], [], []
            self._after_change()
            return
        previous = layers[-2]
        output = [node.outputs[0] for node in self._nodes if node.layer is previous][-1]
        self._init_graph(self.inputs, [output])
        self._after_change()

    def compile(self, optimizer, loss=None, metrics=None, loss_weights=None, **kwargs):
        """As Model.compile; without an input shape yet, Keras's deferral: the model compiles
        when the first ``fit``/``train_on_batch`` builds it from the data."""
        if not self.outputs and self._pending:
            self._deferred_compile = dict(optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights,
                                          **kwargs)
            return
        super().compile(optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights, **kwargs)

    def _build_from_data(self, x, where: str) -> None:
        if x is None or not self._pending:
            return
        first = x[0] if isinstance(x, (list, tuple)) and len(x) == 1 else x
        if isinstance(first, dict) or _is_dataset(first):
            raise ValueError(f"{self._what()} at {where}: the model has no input shape yet; give the first layer "
                             "input_shape=..., or call model.build(input_shape) before fitting on a dataset or a "
                             "dict")
        self.build((None,) + tuple(np.asarray(first).shape[1:]))
        deferred, self._deferred_compile = self._deferred_compile, None
        if deferred is not None:
            self.compile(**deferred)

    def _after_change(self) -> None:
        # a model changed after compile must be compiled again (Keras says so too)
        self._functions = {}
        self._compiled = None

    def get_config(self) -> dict:
        config = super().get_config() if self.outputs else {"name": self.name, "layers": []}
        config["sequential"] = True
        return config



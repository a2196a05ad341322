"""Layers and the model graph: ``Layer``, ``Input``, the functional ``Model`` and
``Sequential``.

A layer call on graphc tensors adds ordinary graphc ops to the tensors' graph and records a
``Node`` (the layer, its input and output tensors), as Keras 2 does. A model is the graph
of nodes between its inputs and outputs; it can be called again on other tensors (its layers
and their weights are shared), which is also how it builds its training graph: the tensors
made while the model was defined are the inference graph (``training=False``: no dropout, the
moving statistics of batch norm), and where some layer behaves differently in training, the
model calls its layers once more with ``training=True`` for ``fit``. Both are pure graphs, so
the inference graph exports as it is.
"""
from __future__ import annotations

import inspect
import re
import weakref
from typing import List, Optional

import numpy as np

from .. import dtypes as dt
from ..errors import ShapeError
from ..graph import Graph, Tensor, get_default_graph, user_location
from ..ops.control import identity
from ..ops.source import convert_to_tensor, placeholder
from ..ops.state import Variable
from ..shapes import format_shape
from . import backend as K

# tensor -> (layer, node index, tensor index): how a tensor was made, for Model and summary
_history: "weakref.WeakKeyDictionary[Tensor, tuple]" = weakref.WeakKeyDictionary()
# graph -> {prefix: count}: Keras's layer names (dense, dense_1, ...) are unique per graph
_name_counts: "weakref.WeakKeyDictionary[Graph, dict]" = weakref.WeakKeyDictionary()
# while a model builds its training graph, layers report their update ops and losses here
_collecting: list = []
# the layers whose call is in progress, innermost last (a model's call runs its layers')
_calling: list = []


def _snake(name: str) -> str:
    # Keras's own rule, so that layers get Keras's names (Conv2D -> conv2d, MaxPooling2D ->
    # max_pooling2d)
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_layer_name(prefix: str, graph: Optional[Graph] = None) -> str:
    counts = _name_counts.setdefault(graph or get_default_graph(), {})
    n = counts.get(prefix, 0)
    counts[prefix] = n + 1
    return prefix if n == 0 else f"{prefix}_{n}"


def keras_history(tensor) -> Optional[tuple]:
    return _history.get(tensor) if isinstance(tensor, Tensor) else None


def to_list(x) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _unlist(xs: list):
    return xs[0] if len(xs) == 1 else xs


class InputSpec:
    """What a layer accepts: ``ndim``, ``min_ndim``, ``max_ndim``, and known sizes of some
    axes (``axes={-1: 784}``)."""

    def __init__(self, dtype=None, shape=None, ndim=None, max_ndim=None, min_ndim=None, axes=None):
        self.dtype = dtype
        self.shape = shape
        self.ndim = len(shape) if shape is not None else ndim
        self.max_ndim, self.min_ndim = max_ndim, min_ndim
        self.axes = dict(axes or {})


class Node:
    """One call of a layer: its input and output tensors and the call's keyword arguments."""

    __slots__ = ("layer", "inputs", "outputs", "arguments", "listed", "losses")

    def __init__(self, layer, inputs: list, outputs: list, arguments: dict, listed: bool = False,
                 losses: Optional[list] = None):
        self.layer, self.inputs, self.outputs, self.arguments = layer, inputs, outputs, arguments
        self.listed = listed  # the layer was given a list (Concatenate([a, b])), not one tensor
        self.losses = losses or []  # add_loss during this call (activity regularizers)

    @property
    def inbound_layers(self) -> list:
        return [keras_history(t)[0] for t in self.inputs if keras_history(t) is not None]


class Layer:
    """Keras's base layer. A subclass makes its weights in ``build(input_shape)`` with
    ``add_weight`` and computes in ``call(inputs, training=False)`` with graphc ops; it returns
    its constructor's arguments from ``get_config`` so that a saved model can be rebuilt
    without its code."""

    # layers whose call differs in training (Dropout, BatchNormalization) set this
    uses_training = False

    def __init__(self, trainable: bool = True, name: Optional[str] = None, dtype=None, input_shape=None,
                 batch_input_shape=None, input_dim=None, batch_size=None, weights=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__} at {user_location()}: unknown argument(s) "
                            f"{', '.join(sorted(kwargs))}")
        self.name = name or unique_layer_name(_snake(type(self).__name__))
        self.trainable = bool(trainable)
        self.dtype = dt.as_dtype(dtype or K.floatx()).name
        self.built = False
        self.input_spec: Optional[InputSpec] = None
        self.supports_masking = False
        self._trainable_weights: List[Variable] = []
        self._non_trainable_weights: List[Variable] = []
        self._losses: list = []
        self._call_losses: list = []  # a list per call in progress
        self._updates: list = []
        self._inbound_nodes: List[Node] = []
        self._graph: Optional[Graph] = None
        self._initial_weights = weights
        self._created_at = user_location()
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (batch_size,) + tuple(input_shape)
        self._batch_input_shape = None if batch_input_shape is None else tuple(batch_input_shape)

    # -- weights ---------------------------------------------------------------------------------
    def add_weight(self, name: str, shape, dtype=None, initializer=None, regularizer=None, trainable: bool = True,
                   constraint=None) -> Variable:
        """A variable named ``<layer>/<name>``, made in the layer's graph outside any control
        dependencies; a regularizer's loss joins ``self.losses``."""
        from . import initializers, regularizers
        graph = self._graph or get_default_graph()
        make = initializers.get(initializer if initializer is not None else "glorot_uniform")
        dtype = dt.as_dtype(dtype or self.dtype)
        shape = tuple(int(d) for d in shape)
        with graph.as_default(), graph.control_dependencies(None), graph.name_scope(None):
            variable = Variable(make(shape, dtype), name=f"{self.name}/{name}", trainable=trainable)
        # the list follows the argument; ``trainable_weights`` filters by the layer's flag, so
        # a frozen layer can be unfrozen (fine-tuning)
        (self._trainable_weights if trainable else self._non_trainable_weights).append(variable)
        regularizer = regularizers.get(regularizer)
        if regularizer is not None:
            with graph.as_default(), graph.name_scope(f"{self.name}/{name}/Regularizer/"):
                self._losses.append(regularizer(variable.value()))
        return variable

    @property
    def trainable_weights(self) -> list:
        return list(self._trainable_weights) if self.trainable else []

    @property
    def non_trainable_weights(self) -> list:
        if self.trainable:
            return list(self._non_trainable_weights)
        return list(self._trainable_weights) + list(self._non_trainable_weights)

    @property
    def weights(self) -> list:
        return list(self._trainable_weights) + list(self._non_trainable_weights)

    def get_weights(self) -> list:
        return K.batch_get_value(self.weights) if self.weights else []

    def set_weights(self, weights) -> None:
        weights = list(weights)
        mine = self.weights
        if len(weights) != len(mine):
            raise ValueError(f"{self._what()}.set_weights at {user_location()}: the layer has {len(mine)} weights "
                             f"({', '.join(v.var_name for v in mine) or 'none'}), got a list of {len(weights)}")
        for variable, value in zip(mine, weights):
            value = np.asarray(value)
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"{self._what()}.set_weights at {user_location()}: weight '{variable.var_name}' "
                                 f"has shape {format_shape(variable.shape)}, got an array of shape {value.shape}")
        K.batch_set_value(zip(mine, weights))

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f"{self._what()}.count_params at {user_location()}: the layer is not built yet (call it on "
                             "a tensor, or give the first layer an input_shape)")
        return int(sum(int(np.prod(tuple(v.shape))) for v in self.weights))

    @property
    def losses(self) -> list:
        return list(self._losses)

    def weight_losses(self) -> list:
        """The regularizers' losses of this layer's weights (not of its calls)."""
        return list(self._losses)

    def add_loss(self, losses, inputs=None) -> None:
        """A loss made in ``call`` belongs to that call (its node); one made elsewhere (a
        weight's regularizer) to the layer."""
        target = self._call_losses[-1] if self._call_losses else self._losses
        target.extend(to_list(losses))

    def add_update(self, updates, inputs=None) -> None:
        """Ops to run with each training step (batch norm's moving averages). A model's
        ``compile`` collects those of its training graph; a layer called with
        ``training=True`` in a hand-written graph puts them in ``GraphKeys.UPDATE_OPS``, as
        ``gc.layers`` does, for ``gc.control_dependencies``."""
        updates = to_list(updates)
        self._updates.extend(updates)
        if _collecting:
            _collecting[-1]["updates"].extend(updates)
        else:
            from ..graph import GraphKeys
            for op in updates:
                op.graph.add_to_collection(GraphKeys.UPDATE_OPS, op)

    @property
    def updates(self) -> list:
        return list(self._updates)

    # -- calling ----------------------------------------------------------------------------------
    def build(self, input_shape) -> None:
        self.built = True

    def call(self, inputs, training=False):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def _what(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

    def _check_inputs(self, inputs: list, where: str) -> None:
        spec = self.input_spec
        if spec is None:
            return
        for x in inputs:
            rank = x.shape.rank if x.shape.known_rank else None
            if rank is None:
                continue
            problem = None
            if spec.ndim is not None and rank != spec.ndim:
                problem = f"rank {spec.ndim}"
            elif spec.min_ndim is not None and rank < spec.min_ndim:
                problem = f"rank {spec.min_ndim} or more"
            elif spec.max_ndim is not None and rank > spec.max_ndim:
                problem = f"rank {spec.max_ndim} or less"
            else:
                for axis, size in spec.axes.items():
                    got = x.shape[axis] if -rank <= axis < rank else None
                    if size is not None and got is not None and got != size:
                        problem = f"size {size} on axis {axis} (what the layer was built for)"
            if problem:
                raise ShapeError(f"{self._what()} at {where}: expects input of {problem}, got '{x.name}' with shape "
                                 f"{format_shape(x.shape)}")

    def __call__(self, inputs, training=None, **kwargs):
        where = user_location()
        tensors = [convert_to_tensor(x) for x in to_list(inputs)]
        graph = tensors[0].graph if tensors else get_default_graph()
        if self._graph is None:
            self._graph = graph
        elif graph is not self._graph:
            raise ValueError(f"{self._what()} at {where}: the layer's weights live in another graph than "
                             f"'{tensors[0].name}'; a layer is used in one graph")
        self._check_inputs(tensors, where)
        shapes = [tuple(x.shape) for x in tensors]
        if not self.built:
            with graph.as_default():
                self.build(_unlist(shapes))
            self.built = True
            if self._initial_weights is not None:
                self.set_weights(self._initial_weights)
                self._initial_weights = None
        # the node keeps what the caller said; a training= left out follows the model's mode
        # when the model calls its layers again (fit's training graph)
        arguments = dict(kwargs)
        call_arguments = dict(kwargs)
        if _accepts(self.call, "training"):
            call_arguments["training"] = bool(training) if isinstance(training, (bool, type(None))) else training
            if training is not None:
                arguments["training"] = call_arguments["training"]
        listed = isinstance(inputs, (list, tuple))
        self._call_losses.append([])
        _calling.append(self)
        try:
            with graph.as_default(), graph.name_scope(self.name):
                outputs = self.call(tensors if listed else tensors[0], **call_arguments)
        finally:
            _calling.pop()
            call_losses = self._call_losses.pop()
        if _calling:  # a layer inside a model's call: its losses are the model call's too
            _calling[-1]._call_losses[-1].extend(call_losses)
        elif _collecting:
            _collecting[-1]["losses"].extend(call_losses)
        # a layer that passes a tensor through (Dropout in inference) still makes its own
        # tensor, so that each tensor has one maker in the model graph
        input_ids = {id(x) for x in tensors}
        outputs_list = [identity(y) if id(y) in input_ids else convert_to_tensor(y) for y in to_list(outputs)]
        if isinstance(outputs, (list, tuple)):
            outputs = outputs_list
        node = Node(self, tensors, outputs_list, arguments, listed, call_losses)
        self._inbound_nodes.append(node)
        for k, y in enumerate(outputs_list):
            _history[y] = (self, len(self._inbound_nodes) - 1, k)
        return outputs_list[0] if not isinstance(outputs, (list, tuple)) else outputs_list

    # -- the shapes of the first call, as Keras reports them --------------------------------------
    def _first_node(self) -> Node:
        if not self._inbound_nodes:
            raise AttributeError(f"{self._what()} has not been called yet, so it has no input or output")
        return self._inbound_nodes[0]

    @property
    def input(self):
        return _unlist(self._first_node().inputs)

    @property
    def output(self):
        return _unlist(self._first_node().outputs)

    @property
    def input_shape(self):
        return _unlist([_shape_tuple(t) for t in self._first_node().inputs])

    @property
    def output_shape(self):
        return _unlist([_shape_tuple(t) for t in self._first_node().outputs])

    # -- configuration -------------------------------------------------------------------------
    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        return f"<keras.layers.{type(self).__name__} '{self.name}'>"


def _accepts(fn, argument: str) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return argument in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _shape_tuple(t: Tensor):
    return tuple(t.shape) if t.shape.known_rank else None


def _input_name() -> str:
    """Keras numbers its inputs from 1: input_1, input_2, ..."""
    counts = _name_counts.setdefault(get_default_graph(), {})
    counts["input"] = counts.get("input", 0) + 1
    return f"input_{counts['input']}"


class InputLayer(Layer):
    """Holds a model's input: a placeholder of ``batch_input_shape`` (or an existing tensor)."""

    def __init__(self, input_shape=None, batch_size=None, batch_input_shape=None, dtype=None, input_tensor=None,
                 sparse: bool = False, name: Optional[str] = None, **kwargs):
        if sparse:
            raise ValueError(f"InputLayer at {user_location()}: sparse inputs are not in graphc")
        super().__init__(name=name or _input_name(), dtype=dtype, input_shape=input_shape,
                         batch_input_shape=batch_input_shape, batch_size=batch_size, **kwargs)
        if input_tensor is None:
            if self._batch_input_shape is None:
                raise ValueError(f"InputLayer at {user_location()}: give input_shape or batch_input_shape")
            input_tensor = placeholder(dt.as_dtype(self.dtype), shape=self._batch_input_shape, name=self.name)
        else:
            input_tensor = convert_to_tensor(input_tensor)
            self._batch_input_shape = _shape_tuple(input_tensor)
            self.dtype = input_tensor.dtype.name
        self._graph = input_tensor.graph
        self.built = True
        node = Node(self, [], [input_tensor], {})
        self._inbound_nodes.append(node)
        _history[input_tensor] = (self, 0, 0)

    def get_config(self) -> dict:
        return {"batch_input_shape": list(self._batch_input_shape), "dtype": self.dtype, "name": self.name}


def Input(shape=None, batch_shape=None, name: Optional[str] = None, dtype=None, sparse: bool = False, tensor=None,
          batch_size=None):  # noqa: N802  (Keras's name)
    """A model's input tensor: ``keras.Input(shape=(28, 28, 1))`` is a placeholder of
    ``(None, 28, 28, 1)``."""
    if shape is None and batch_shape is None and tensor is None:
        raise ValueError(f"keras.Input at {user_location()}: give shape= (without the batch dim) or batch_shape=")
    if shape is not None and not isinstance(shape, (tuple, list)):
        shape = (shape,)
    layer = InputLayer(input_shape=None if shape is None else tuple(shape), batch_size=batch_size,
                       batch_input_shape=batch_shape, dtype=dtype, input_tensor=tensor, sparse=sparse, name=name)
    return layer._inbound_nodes[0].outputs[0]

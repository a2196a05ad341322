"""Whole Keras models in one safe file: ``model.save(path)`` and ``load_model(path)``.

The file is graphc's model-file container (docs/FORMAT.md: a zip of ``model.json`` and
``weights.npz``, read with every check, nothing unpickled, nothing executed), with ``format:
"graphc-keras-model"``. model.json holds the architecture as layer configs (each layer's class
name, its constructor arguments and the tensors it was called on), the compile arguments, the
order of the weights, and the Session's random-stream counters; weights.npz holds the
layers' weights and the optimizer's state (its iteration count and slots). So a fresh process
rebuilds the model without the code that made it, and the next ``fit`` step is the one an
uninterrupted run would have taken. Layer classes are looked up in ``keras.layers`` and in
``custom_objects``, never imported by name.
"""
from __future__ import annotations

import os
import time
from typing import Optional

import numpy as np

from ..export.model_file import FormatError, encode_archive, read_archive
from ..errors import GraphcError
from ..files import atomic_write
from ..graph import get_default_graph, user_location
from . import backend as K
from .engine import InputLayer, Layer, to_list

FORMAT = "graphc-keras-model"
WEIGHTS_FORMAT = "graphc-keras-weights"
VERSION = 1
_KEYS = (("graphc_version", str), ("created", str), ("model", dict), ("weights", list))


def _header(kind: str) -> dict:
    from .. import __version__
    return {"format": kind, "version": VERSION, "graphc_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "metadata": {}}


def _archive(document: dict, arrays: dict) -> bytes:
    """The container's reader accepts exactly the arrays that nodes declare (dtype and
    shape), which bounds what a hostile file can make it read; so each array is declared by
    a node of its own."""
    document = dict(document, nodes=[{"name": key, "op": "array", "inputs": [],
                                      "attrs": {"value": {"array": key, "dtype": value.dtype.name,
                                                          "shape": list(value.shape)}}}
                                     for key, value in arrays.items()])
    return encode_archive(document, arrays)


def _loss_name(fn) -> str:
    from . import losses
    return fn if isinstance(fn, str) else losses.serialize(fn)


def _compile_config(model) -> Optional[dict]:
    if model._compiled is None:
        return None
    from . import metrics as metrics_module
    from . import optimizers
    compiled = model._compiled
    loss = compiled["loss"]
    loss = {k: _loss_name(v) for k, v in loss.items()} if isinstance(loss, dict) else \
        [_loss_name(v) for v in loss] if isinstance(loss, (list, tuple)) else _loss_name(loss)
    metrics = compiled["metrics"]
    if metrics is not None:
        def name(m):
            return m if isinstance(m, str) else metrics_module.metric_name(m)
        metrics = {k: [name(m) for m in to_list(v)] for k, v in metrics.items()} if isinstance(metrics, dict) \
            else [name(m) for m in metrics]
    return {"optimizer": optimizers.serialize(model.optimizer), "loss": loss, "metrics": metrics,
            "loss_weights": compiled["loss_weights"]}


def save_model(model, filepath, overwrite: bool = True, include_optimizer: bool = True) -> None:
    where = user_location()
    path = os.fspath(filepath)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{model._what()}.save at {where}: {path} exists and overwrite=False")
    weights = model.weights
    values = K.batch_get_value(weights) if weights else []
    document = dict(_header(FORMAT), model={"class_name": type(model).__name__, "config": model.get_config()},
                    weights=[v.var_name for v in weights])
    arrays = {f"w{k}": np.asarray(v) for k, v in enumerate(values)}
    if include_optimizer and model._compiled is not None and not hasattr(model.optimizer, "get_config"):
        raise ValueError(f"{model._what()}.save at {where}: the model was compiled with a {type(model.optimizer).__name__} "
                         "from gc.train, whose state a Keras model file does not describe; compile with a "
                         "keras.optimizers optimizer (or an optimizer name), or save(..., include_optimizer=False)")
    training = _compile_config(model) if include_optimizer else None
    if training is not None:
        optimizer_weights = list(model.optimizer.weights)
        for k, value in enumerate(K.batch_get_value(optimizer_weights) if optimizer_weights else []):
            arrays[f"o{k}"] = np.asarray(value)
        training["optimizer_weights"] = [v.var_name for v in optimizer_weights]
        session = K.get_session(model._graph)
        training["random_counters"] = {str(k): int(v) for k, v in session._state.random_counters.items()}
        training["graph_seed"] = model._graph.seed
        document["training"] = training
    atomic_write(path, _archive(document, arrays))


def save_weights(model, filepath, overwrite: bool = True) -> None:
    path = os.fspath(filepath)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{model._what()}.save_weights at {user_location()}: {path} exists and overwrite=False")
    weights = model.weights
    values = K.batch_get_value(weights) if weights else []
    document = dict(_header(WEIGHTS_FORMAT), model={"class_name": type(model).__name__, "name": model.name},
                    weights=[v.var_name for v in weights])
    atomic_write(path, _archive(document, {f"w{k}": np.asarray(v) for k, v in enumerate(values)}))


def _weights_from(document: dict, arrays: dict, path: str, prefix: str, count: int) -> list:
    out = []
    for k in range(count):
        key = f"{prefix}{k}"
        if key not in arrays:
            raise FormatError(f"{path}: weights.npz has no {key}.npy, which model.json lists")
        out.append(arrays[key])
    return out


def load_weights(model, filepath) -> None:
    path = os.fspath(filepath)
    document, arrays = read_archive(path, path, WEIGHTS_FORMAT if _format_of(path) == WEIGHTS_FORMAT else FORMAT,
                                    VERSION, _KEYS)
    values = _weights_from(document, arrays, path, "w", len(document["weights"]))
    _set_all(model, values, path)


def _format_of(path: str) -> Optional[str]:
    import json
    import zipfile
    try:
        with zipfile.ZipFile(path) as archive, archive.open("model.json") as f:
            return json.loads(f.read(1 << 20)).get("format")
    except Exception:  # read_archive gives the proper error
        return None


def _set_all(model, values: list, path: str) -> None:
    weights = model.weights
    if len(values) != len(weights):
        raise FormatError(f"{path}: the file has {len(values)} weights, the model has {len(weights)}")
    for variable, value in zip(weights, values):
        if tuple(value.shape) != tuple(variable.shape):
            raise FormatError(f"{path}: weight '{variable.var_name}' has shape {tuple(variable.shape)} in the model "
                              f"and {tuple(value.shape)} in the file")
    K.batch_set_value(zip(weights, values))


# -- rebuilding -------------------------------------------------------------------------------------
def _layer_classes(custom_objects: Optional[dict]) -> dict:
    from . import layers
    from .sequential import Sequential
    from .training import Model
    classes = {name: getattr(layers, name) for name in layers.__all__
               if isinstance(getattr(layers, name), type) and issubclass(getattr(layers, name), Layer)}
    classes.update(Sequential=Sequential, Model=Model, InputLayer=InputLayer)
    classes.update({k: v for k, v in (custom_objects or {}).items() if isinstance(v, type)})
    return classes


def _make_layer(entry: dict, classes: dict, path: str, custom_objects: Optional[dict]):
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str) or \
            not isinstance(entry.get("config"), dict):
        raise FormatError(f"{path}: a layer entry needs class_name (a string) and config (an object)")
    cls = classes.get(entry["class_name"])
    if cls is None:
        raise FormatError(f"{path}: unknown layer class {entry['class_name']!r}; pass it in "
                          "load_model(..., custom_objects={name: class})")
    if cls.__name__ in ("Sequential", "Model"):
        return model_from_config(entry, custom_objects, path)
    config = dict(entry["config"])
    if cls is InputLayer:
        config["batch_input_shape"] = tuple(config["batch_input_shape"])
    try:
        return cls.from_config(_with_custom(config, custom_objects, path, str(entry.get("name"))))
    except FormatError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, GraphcError) as e:
        raise FormatError(f"{path}: layer {entry.get('name')!r} ({entry['class_name']}) cannot be made from its "
                          f"config: {e}") from None


# the config keys whose value may name a function of the user's (resolved by custom_objects)
_FUNCTION_KEYS = ("activation", "recurrent_activation", "function", "kernel_initializer", "bias_initializer",
                  "recurrent_initializer", "depthwise_initializer", "pointwise_initializer", "embeddings_initializer",
                  "kernel_regularizer", "bias_regularizer", "recurrent_regularizer", "activity_regularizer",
                  "depthwise_regularizer", "embeddings_regularizer", "beta_regularizer", "gamma_regularizer")


def _with_custom(config: dict, custom_objects: Optional[dict], path: str, layer: str) -> dict:
    """Names of custom functions (activations, initializers, Lambda functions) replaced by the
    objects; a Lambda's function must be among them."""
    config = dict(config)
    custom = custom_objects or {}
    for key in _FUNCTION_KEYS:
        if isinstance(config.get(key), str) and config[key] in custom:
            config[key] = custom[config[key]]
    if isinstance(config.get("function"), str):
        raise FormatError(f"{path}: layer {layer!r} is a Lambda of the function {config['function']!r}, which is not "
                          "in the file (code never is); pass it: load_model(..., custom_objects={name: function})")
    return config


def _ref(value, path: str) -> tuple:
    """A reference to a layer call's output: ``[layer name, node index, tensor index]``."""
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value[1:])):
        raise FormatError(f"{path}: a tensor reference must be [layer name, node index, tensor index], got "
                          f"{str(value)[:100]}")
    return tuple(value)


def model_from_config(entry: dict, custom_objects: Optional[dict] = None, path: str = "<config>"):
    """A model (Sequential or functional) made again from ``{"class_name", "config"}``. Any
    fault in the file is a FormatError that names the path."""
    try:
        return _model_from_config(entry, custom_objects, path)
    except FormatError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, GraphcError) as e:
        raise FormatError(f"{path}: the model cannot be made from its config ({type(e).__name__}: {e})") from None


def _model_from_config(entry: dict, custom_objects: Optional[dict], path: str):
    from .sequential import Sequential
    from .training import Model
    classes = _layer_classes(custom_objects)
    config = entry["config"]
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise FormatError(f"{path}: a model config needs a list of layers")
    if entry["class_name"] == "Sequential" or config.get("sequential"):
        model = Sequential(name=config.get("name"))
        for layer_entry in config["layers"]:
            model.add(_make_layer(layer_entry, classes, path, custom_objects))
        return model
    layers, made = {}, {}  # layer name -> layer; (layer name, node index) -> output tensors
    for layer_entry in config["layers"]:
        layer = _make_layer(layer_entry, classes, path, custom_objects)
        layers[layer_entry["name"]] = (layer, layer_entry.get("inbound_nodes", []))
        if isinstance(layer, InputLayer):
            made[(layer_entry["name"], 0)] = [layer._inbound_nodes[0].outputs[0]]
    pending = []
    for name, (layer, nodes) in layers.items():
        if not isinstance(nodes, list):
            raise FormatError(f"{path}: layer {name!r} has inbound_nodes that are not a list")
        for k, node in enumerate(nodes):
            if not isinstance(node, dict) or not isinstance(node.get("inputs"), list) or not node["inputs"]:
                raise FormatError(f"{path}: call {k} of layer {name!r} needs a non-empty list of inputs")
            refs = [_ref(r, path) for r in node["inputs"]]
            listed = node.get("listed", False)
            if not isinstance(listed, bool) or (not listed and len(refs) != 1):
                raise FormatError(f"{path}: call {k} of layer {name!r}: 'listed' must be a bool, and a call that "
                                  "is not given a list has one input")
            kwargs = node.get("kwargs", {})
            if not isinstance(kwargs, dict) or set(kwargs) - {"training"} or \
                    not all(isinstance(v, bool) for v in kwargs.values()):
                raise FormatError(f"{path}: call {k} of layer {name!r}: the only keyword a call may keep is a "
                                  f"boolean training, got {str(kwargs)[:100]}")
            pending.append((name, k, refs, listed, kwargs))
    while pending:
        progressed, remaining = False, []
        for name, k, refs, listed, kwargs in pending:
            if not all((r[0], r[1]) in made for r in refs):
                remaining.append((name, k, refs, listed, kwargs))
                continue
            try:
                inputs = [made[(r[0], r[1])][r[2]] for r in refs]
            except IndexError:
                raise FormatError(f"{path}: call {k} of layer {name!r} refers to an output that layer call does "
                                  "not have") from None
            layer = layers[name][0]
            out = layer(inputs if listed else inputs[0], **kwargs)
            made[(name, k)] = to_list(out)
            progressed = True
        if not progressed:
            raise FormatError(f"{path}: the layer calls cannot be ordered (layer {remaining[0][0]!r} needs tensors "
                              "that nothing makes)")
        pending = remaining

    def tensors(refs):
        if not isinstance(refs, list) or not refs:
            raise FormatError(f"{path}: the model's input_layers and output_layers must be non-empty lists")
        refs = [_ref(r, path) for r in refs]
        try:
            return [made[(r[0], r[1])][r[2]] for r in refs]
        except (KeyError, IndexError, TypeError):
            raise FormatError(f"{path}: the model's inputs or outputs refer to layer calls that are not in the "
                              "file") from None
    return Model(inputs=tensors(config["input_layers"]), outputs=tensors(config["output_layers"]),
                 name=config.get("name"))


def load_model(filepath, custom_objects: Optional[dict] = None, compile: bool = True):
    """The model saved by ``model.save(filepath)``, made in the default graph, with its weights;
    compiled as it was, with the optimizer's state, unless ``compile=False``."""
    from . import optimizers
    path = os.fspath(filepath)
    document, arrays = read_archive(path, path, FORMAT, VERSION, _KEYS)
    model_entry = document["model"]
    if not isinstance(model_entry.get("class_name"), str):
        raise FormatError(f"{path}: model.json's model needs a class_name")
    graph = get_default_graph()
    training = document.get("training")
    seed = training.get("graph_seed") if isinstance(training, dict) else None
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise FormatError(f"{path}: graph_seed must be an integer or null")
    if seed is not None and graph.seed is None and not graph.get_operations():
        # a fresh graph takes the saved seed, so that random ops (dropout) continue their
        # streams where the saved run stopped: the next step is the one it would have taken
        graph.seed = seed
    with graph.as_default():
        model = model_from_config(model_entry, custom_objects, path)
    _set_all(model, _weights_from(document, arrays, path, "w", len(document["weights"])), path)
    if compile and isinstance(training, dict):
        custom = custom_objects or {}

        def resolve(name):
            return custom.get(name, name) if isinstance(name, str) else name
        loss = training.get("loss")
        loss = {k: resolve(v) for k, v in loss.items()} if isinstance(loss, dict) else \
            [resolve(v) for v in loss] if isinstance(loss, list) else resolve(loss)
        metrics = training.get("metrics")
        if isinstance(metrics, list):
            metrics = [resolve(m) for m in metrics]
        try:
            optimizer = optimizers.deserialize(training["optimizer"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise FormatError(f"{path}: the optimizer cannot be made from its config: {e}") from None
        try:
            model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                          loss_weights=training.get("loss_weights"))
        except (TypeError, ValueError, KeyError, AttributeError, GraphcError) as e:
            raise FormatError(f"{path}: the model cannot be compiled as the file says ({type(e).__name__}: "
                              f"{e})") from None
        saved = training.get("optimizer_weights", [])
        if not isinstance(saved, list):
            raise FormatError(f"{path}: optimizer_weights must be a list")
        values = _weights_from(document, arrays, path, "o", len(saved))
        mine = list(model.optimizer.weights)
        if len(values) != len(mine):
            raise FormatError(f"{path}: the file has {len(values)} optimizer weights, the rebuilt optimizer has "
                              f"{len(mine)}")
        for variable, value in zip(mine, values):
            if tuple(value.shape) != tuple(variable.shape):
                raise FormatError(f"{path}: optimizer weight '{variable.var_name}' has shape "
                                  f"{tuple(variable.shape)}, the file's has {tuple(value.shape)}")
        K.batch_set_value(zip(mine, values))
        counters = training.get("random_counters", {})
        if not isinstance(counters, dict) or not all(
                isinstance(k, str) and k.isdigit() and isinstance(v, int) and not isinstance(v, bool) and v >= 0
                for k, v in counters.items()):
            raise FormatError(f"{path}: random_counters must map stream numbers to counts")
        session = K.get_session(model._graph)
        session._state.random_counters.update({int(k): v for k, v in counters.items()})
    return model

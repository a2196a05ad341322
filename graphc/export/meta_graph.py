"""Whole graphs in a file: TF1's meta graphs (``gc.train.export_meta_graph`` /
``import_meta_graph``) and GraphDefs (``graph.as_graph_def()`` / ``gc.import_graph_def``).

A meta graph is everything a fresh process needs to resume training without the model's
code: every op (variables, their initializers, the optimizer's slots and update ops, control
dependencies), the Python-side variables (which ops make up each ``gc.Variable``) and the
collections (items by name). It is the model file's container (docs/FORMAT.md: a zip of
``model.json`` and ``weights.npz``, read with every check, no pickle, nothing executed) with
``format: "graphc-metagraph"``. A GraphDef is the same without variables and collections
(``format: "graphc-graphdef"``). Values of variables are not in either: they are in
checkpoints (``gc.train.Saver``), as in TF1.
"""
from __future__ import annotations

import io
import os
import time
import warnings
from typing import Dict, Optional

import numpy as np

from ..files import atomic_write
from ..graph import Graph, Operation, Tensor, get_default_graph, user_location
from .model_file import FormatError, _add_nodes, _encode_node, encode_archive, read_archive

META_FORMAT = "graphc-metagraph"
GRAPHDEF_FORMAT = "graphc-graphdef"
VERSION = 1
_VARIABLE_KEY = "__variable__/"


class GraphDef:
    """A graph's nodes, as ``graph.as_graph_def()`` gives them: ``node`` lists them (each
    with ``name``, ``op`` and ``input`` as in TF's proto), ``SerializeToString()`` is the
    file's bytes, ``GraphDef.FromString(data)`` reads them back with every check."""

    def __init__(self, document: dict, arrays: dict):
        self._document = document
        self._arrays = arrays  # name (as the nodes refer to it) -> array

    @property
    def node(self) -> list:
        return [_NodeView(n) for n in self._document["nodes"]]

    def SerializeToString(self) -> bytes:  # noqa: N802  (TF's name)
        return encode_archive(self._document, self._arrays)

    @classmethod
    def FromString(cls, data: bytes) -> "GraphDef":  # noqa: N802
        document, arrays = _read(io.BytesIO(data), "<GraphDef bytes>", (GRAPHDEF_FORMAT, META_FORMAT))
        return cls(document, arrays)

    def ParseFromString(self, data: bytes) -> None:  # noqa: N802
        parsed = GraphDef.FromString(data)
        self._document, self._arrays = parsed._document, parsed._arrays

    def __repr__(self) -> str:
        return f"<gc.GraphDef of {len(self._document['nodes'])} nodes>"


class _NodeView:
    __slots__ = ("name", "op", "input", "device")

    def __init__(self, node):
        self.name, self.op = node["name"], node["op"]
        self.input = list(node["inputs"]) + [f"^{c}" for c in node.get("control", [])]
        self.device = ""


# --- writing -----------------------------------------------------------------------------------------
def _header(kind: str) -> dict:
    from .. import __version__
    return {"format": kind, "version": VERSION, "graphc_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _nodes(graph: Graph, arrays: list) -> list:
    return [_encode_node(op, arrays, control=True) for op in graph.get_operations()]


def as_graph_def(graph: Optional[Graph] = None) -> GraphDef:
    graph = graph or get_default_graph()
    arrays: list = []
    document = dict(_header(GRAPHDEF_FORMAT), seed=graph.seed, nodes=_nodes(graph, arrays))
    return GraphDef(document, {f"w{k}": a for k, a in enumerate(arrays)})


def _variables(graph: Graph) -> list:
    return [items[0] for key, items in graph._collections.items() if key.startswith(_VARIABLE_KEY) and items]


def _collection_item(item):
    from ..ops.state import Variable
    if isinstance(item, Variable):
        return {"variable": item.var_name}
    if isinstance(item, Tensor):
        return {"tensor": item.name}
    if isinstance(item, Operation):
        return {"op": item.name}
    if isinstance(item, (bool, int, str)) or (isinstance(item, float) and np.isfinite(item)):
        return {"value": item}
    return None


def export_meta_graph(filename=None, meta_info_def=None, graph_def=None, saver_def=None, collection_list=None,
                      as_text: bool = False, graph: Optional[Graph] = None, export_scope=None,
                      clear_devices: bool = False, clear_extraneous_savers: bool = False,
                      strip_default_attrs: bool = False, save_debug_info: bool = False) -> dict:
    """Write the whole graph (``graph`` or the default one) to ``filename`` (atomically), and
    return the document. Collection items that are not variables, tensors, ops or plain values
    (Python objects such as an iterator) cannot be written: they are left out with a warning
    that names them, as TF1 did."""
    graph = graph or get_default_graph()
    arrays: list = []
    variables = [{"name": v.var_name, "read": v._read.name, "initializer": v.initializer.name,
                  "initial_value": v.initial_value.name, "trainable": v.trainable} for v in _variables(graph)]
    collections: Dict[str, list] = {}
    for key, items in graph._collections.items():
        if key.startswith(_VARIABLE_KEY) or (collection_list is not None and key not in collection_list):
            continue
        encoded = [_collection_item(item) for item in items]
        skipped = [type(item).__name__ for item, e in zip(items, encoded) if e is None]
        if skipped:
            warnings.warn(f"export_meta_graph at {user_location()}: collection {key!r} holds {sorted(set(skipped))}, "
                          "which a meta graph cannot hold; they are left out", stacklevel=2)
        collections[key] = [e for e in encoded if e is not None]
    document = dict(_header(META_FORMAT), seed=graph.seed, nodes=_nodes(graph, arrays), variables=variables,
                    collections=collections, meta_info=dict(meta_info_def or {}))
    if filename is not None:
        atomic_write(os.fspath(filename), encode_archive(document, arrays))
    return document


# --- reading -------------------------------------------------------------------------------------------
_META_KEYS = (("graphc_version", str), ("nodes", list), ("variables", list), ("collections", dict))
_GRAPHDEF_KEYS = (("graphc_version", str), ("nodes", list))


def _read(source, path: str, formats) -> tuple:
    last = None
    for kind in formats:
        try:
            return read_archive(source, path, kind, VERSION, _META_KEYS if kind == META_FORMAT else _GRAPHDEF_KEYS)
        except FormatError as e:
            if "does not describe" not in str(e):
                raise
            last = e
            if hasattr(source, "seek"):
                source.seek(0)
    raise last


def _build(graph: Graph, document: dict, arrays: dict, path: str, prefix: str, input_map: dict) -> dict:
    """Add the document's nodes to ``graph`` (names under ``prefix``); returns name -> tensor."""
    nodes = _prefixed(document["nodes"], prefix) if prefix else document["nodes"]
    for node in nodes:
        name = node.get("name") if isinstance(node, dict) else None
        if isinstance(name, str) and name in graph._by_name:
            raise FormatError(f"{path}: the graph already has an op named {name!r}; import into an empty graph or "
                              "under another name (import_scope= / name=)")
    tensors: dict = dict(input_map)
    seed = document.get("seed")
    if graph.seed is None and (seed is None or isinstance(seed, int)):
        graph.seed = seed
    with graph.as_default():
        _add_nodes(graph, nodes, arrays, path, tensors, 0, state_ok=True, refined=bool(input_map))
    return tensors


def _prefixed(nodes: list, prefix: str) -> list:
    """The nodes renamed under ``prefix/`` (names, inputs, control inputs and the variable
    names that variable ops carry in their ``var`` attribute, bodies included)."""
    def rename(value):
        return f"{prefix}/{value}" if isinstance(value, str) else value

    def attrs(a):
        out = {}
        for key, value in (a.items() if isinstance(a, dict) else ()):
            if key == "var":
                out[key] = rename(value)
            elif isinstance(value, dict) and set(value) == {"body"} and isinstance(value["body"], dict):
                body = dict(value["body"])
                body["nodes"] = [dict(n, attrs=attrs(n.get("attrs"))) if isinstance(n, dict) else n
                                 for n in body.get("nodes", [])] if isinstance(body.get("nodes"), list) else \
                    body.get("nodes")
                out[key] = {"body": body}
            else:
                out[key] = value
        return out
    out = []
    for node in nodes:
        if not isinstance(node, dict):
            out.append(node)
            continue
        renamed = dict(node, name=rename(node.get("name")), attrs=attrs(node.get("attrs")))
        if isinstance(node.get("inputs"), list):
            renamed["inputs"] = [rename(i) for i in node["inputs"]]
        if isinstance(node.get("control"), list):
            renamed["control"] = [rename(c) for c in node["control"]]
        out.append(renamed)
    return out


def import_graph_def(graph_def: GraphDef, input_map: Optional[dict] = None, return_elements=None,
                     name: Optional[str] = None, op_dict=None, producer_op_list=None):
    """TF1's ``tf.import_graph_def``: the GraphDef's ops added to the default graph under
    ``name`` (default "import"; "" for none). ``input_map`` replaces inputs by name
    (``{"x:0": tensor}``); ``return_elements`` names tensors ("y:0") and ops ("train") to
    return."""
    if not isinstance(graph_def, GraphDef):
        raise TypeError(f"import_graph_def at {user_location()}: expects a gc.GraphDef (graph.as_graph_def()), got "
                        f"{type(graph_def).__name__}")
    graph = get_default_graph()
    prefix = "import" if name is None else name
    where = f"GraphDef imported at {user_location()}"
    mapped = {}
    for key, tensor in (input_map or {}).items():
        if not isinstance(tensor, Tensor):
            raise TypeError(f"import_graph_def at {user_location()}: input_map values are tensors, got "
                            f"{type(tensor).__name__} for {key!r}")
        ref = key if ":" in key else f"{key}:0"
        mapped[f"{prefix}/{ref}" if prefix else ref] = tensor
    tensors = _build(graph, graph_def._document, graph_def._arrays, where, prefix, mapped)
    if return_elements is None:
        return None
    out = []
    for element in return_elements:
        full = f"{prefix}/{element}" if prefix else element
        if ":" in element:
            if full not in tensors:
                raise KeyError(f"import_graph_def at {user_location()}: return element {element!r} is not a tensor "
                               "of the GraphDef")
            out.append(tensors[full])
        else:
            if full not in graph._by_name:
                raise KeyError(f"import_graph_def at {user_location()}: return element {element!r} is not an op of "
                               "the GraphDef")
            out.append(graph._by_name[full])
    return out


def import_meta_graph(meta_graph_or_file, clear_devices: bool = False, import_scope: Optional[str] = None,
                      **kwargs):
    """TF1's ``tf.train.import_meta_graph``: the meta graph's ops, variables and collections
    added to the default graph (under ``import_scope``); returns a ``gc.train.Saver`` over
    its variables (None if it has none), ready to ``restore`` a checkpoint."""
    from ..train.saver import Saver
    where = user_location()
    if isinstance(meta_graph_or_file, dict):
        raise FormatError(f"import_meta_graph at {where}: pass the file written by export_meta_graph (its arrays "
                          "are in the file, not in the returned document)")
    path = os.fspath(meta_graph_or_file)
    document, arrays = _read(path, path, (META_FORMAT,))
    graph = get_default_graph()
    prefix = import_scope or ""
    tensors = _build(graph, document, arrays, path, prefix, {})
    variables = {}
    checkpoint_names = {}  # as the original graph's Saver saved them (import_scope does not change them)
    for k, entry in enumerate(_entries(document["variables"], path, "variables")):
        at = f"{path}: variable {k}"
        if not isinstance(entry, dict) or set(entry) != {"name", "read", "initializer", "initial_value",
                                                         "trainable"}:
            raise FormatError(f"{at}: a variable is {{name, read, initializer, initial_value, trainable}}")
        variable = _variable(graph, tensors, entry, prefix, at)
        variables[variable.var_name] = variable
        checkpoint_names[entry["name"]] = variable
    for key, items in document["collections"].items():
        if not isinstance(key, str):
            raise FormatError(f"{path}: collection names are strings")
        for j, item in enumerate(_entries(items, path, f"collection {key!r}")):
            graph.add_to_collection(key, _collection_value(item, graph, tensors, variables, prefix,
                                                           f"{path}: collection {key!r} item {j}"))
    return Saver(checkpoint_names) if variables else None


def _entries(value, path: str, what: str) -> list:
    if not isinstance(value, list):
        raise FormatError(f"{path}: {what} must be a list")
    return value


def _variable(graph: Graph, tensors: dict, entry: dict, prefix: str, at: str):
    from ..ops.state import Variable

    def named(kind, ref, tensor: bool):
        full = f"{prefix}/{ref}" if prefix and isinstance(ref, str) else ref
        found = tensors.get(full) if tensor else graph._by_name.get(full) if isinstance(full, str) else None
        if found is None:
            raise FormatError(f"{at}: its {kind} {str(ref)[:100]!r} is not in the graph")
        return found
    var_op = named("variable op", entry["name"], tensor=False)
    if var_op.type != "variable":
        raise FormatError(f"{at}: {entry['name']!r} is a {var_op.type}, not a variable op")
    if not isinstance(entry["trainable"], bool):
        raise FormatError(f"{at}: trainable must be a bool")
    return Variable.from_ops(var_op, named("read tensor", entry["read"], True),
                             named("initializer", entry["initializer"], False),
                             named("initial value", entry["initial_value"], True), entry["trainable"])


def _collection_value(item, graph: Graph, tensors: dict, variables: dict, prefix: str, at: str):
    if not isinstance(item, dict) or len(item) != 1:
        raise FormatError(f"{at}: an item is one of {{variable}}, {{tensor}}, {{op}}, {{value}}")
    (kind, ref), = item.items()
    full = f"{prefix}/{ref}" if prefix and isinstance(ref, str) and kind != "value" else ref
    if kind == "variable" and full in variables:
        return variables[full]
    if kind == "tensor" and isinstance(full, str) and full in tensors:
        return tensors[full]
    if kind == "op" and isinstance(full, str) and full in graph._by_name:
        return graph._by_name[full]
    if kind == "value" and isinstance(ref, (bool, int, float, str)):
        return ref
    raise FormatError(f"{at}: {kind} {str(ref)[:100]!r} is not in the graph")


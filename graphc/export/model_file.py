"""The model file (``.gcm``): writing a frozen graph, and reading one back with every check
made before anything runs. docs/FORMAT.md is the specification; this module implements it.

A model file is a zip archive with exactly two members:
  * ``model.json``: format name and version, graphc version, creation time, metadata, the
    signature, and the nodes in topological order (name, op, inputs, attributes, output
    types, the source line that made them);
  * ``weights.npz``: every array attribute (constants, i.e. the trained weights), one
    ``.npy`` per array, read with ``allow_pickle=False``.

Reading never executes anything from the file: ops are looked up in graphc's registry by
name, attributes are plain JSON values checked against attr_schema, and the graph is rebuilt
through the same ``create_op`` that user code calls, so every op's own inference re-checks
shapes and dtypes. Anything wrong is a FormatError that says what and where.
"""
from __future__ import annotations

import io
import json
import math
import time
import zipfile
from typing import Dict, List, Optional, Tuple

import numpy as np

from .. import npyzip
from ..dtypes import ALL_DTYPES, DType
from ..errors import GraphcError, InferenceError
from ..graph import Graph
from ..ops.control_flow import Body, refused_in_bodies
from ..ops.registry import find_opdef
from ..shapes import format_shape
from .attr_schema import check_attr
from .freeze import FrozenGraph

FORMAT = "graphc-model"
VERSION = 1
GRAPH_MEMBER = "model.json"
WEIGHTS_MEMBER = "weights.npz"
MAX_JSON_BYTES = 64 << 20
# Deflated JSON shrinks about 10x; a far higher ratio is a decompression bomb.
MAX_JSON_RATIO = 200
MAX_NODES = 1_000_000
# No static tensor in a model may be larger than this many elements (4 GiB of float32): a
# file that claims more is damaged or hostile, and a run would try to allocate it.
MAX_ELEMENTS = 1 << 30
MAX_RANK = 32
# Ops that need session state cannot be in an inference graph.
_STATE_OPS = frozenset({"variable", "read_variable", "assign", "assign_add", "assign_sub", "no_op"})
_DTYPES = {d.name: d for d in ALL_DTYPES}


# What reading damaged bytes raises, in zipfile, zlib, struct and NumPy's .npy reader.
_DAMAGE = npyzip.DAMAGE_ERRORS


class FormatError(GraphcError, ValueError):
    """A model file that is not valid: says what is wrong and where."""


# -- writing ------------------------------------------------------------------------------------------
def encode(frozen: FrozenGraph, metadata: Optional[Dict[str, str]] = None) -> bytes:
    from .. import __version__
    arrays: List[np.ndarray] = []
    nodes = []
    for op in frozen.graph.get_operations():
        if op.type in _STATE_OPS:
            raise FormatError(f"{op.type} '{op.name}' cannot be saved in a model file (freeze the graph first)")
        nodes.append(_encode_node(op, arrays))
    signature = {
        "inputs": [dict(name=k, tensor=t.name, **_type_json(t.dtype, t.shape)) for k, t in frozen.inputs.items()],
        "outputs": [dict(name=k, tensor=t.name, **_type_json(t.dtype, t.shape)) for k, t in frozen.outputs.items()],
    }
    document = {"format": FORMAT, "version": VERSION, "graphc_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "metadata": dict(metadata or {}), "signature": signature, "nodes": nodes}
    return encode_archive(document, arrays)


def encode_archive(document: dict, arrays) -> bytes:
    """The zip of ``document`` (model.json) and ``arrays`` (weights.npz: a list, member
    ``w<k>.npy`` for the k-th, or a dict name -> array): the container of model files and
    meta graphs."""
    weights = io.BytesIO()
    with zipfile.ZipFile(weights, "w", zipfile.ZIP_STORED) as archive:
        named = arrays.items() if isinstance(arrays, dict) else ((f"w{k}", v) for k, v in enumerate(arrays))
        for name, value in named:
            npyzip.write_array(archive, f"{name}.npy", value)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo(GRAPH_MEMBER, date_time=(1980, 1, 1, 0, 0, 0)),
                         json.dumps(document, indent=1, allow_nan=False), compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr(zipfile.ZipInfo(WEIGHTS_MEMBER, date_time=(1980, 1, 1, 0, 0, 0)), weights.getvalue(),
                         compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def _type_json(dtype: DType, shape) -> dict:
    """``shape`` null: a rank unknown until fed (a placeholder made without a shape)."""
    if not shape.known_rank:
        return {"dtype": dtype.name, "shape": None}
    return {"dtype": dtype.name, "shape": [None if d is None else int(d) for d in shape]}


def _encode_node(op, arrays: list, control: bool = False) -> dict:
    """One node; with ``control`` (meta graphs) its control inputs too, by op name."""
    node = {"name": op.name, "op": op.type, "inputs": [t.name for t in op.inputs],
            "attrs": {k: _encode_attr(op, k, v, arrays) for k, v in op.attrs.items()},
            "outputs": [_type_json(t.dtype, t.shape) for t in op.outputs], "location": op.location}
    if control and op.control_inputs:
        node["control"] = [c.name for c in op.control_inputs]
    return node


def _encode_body(body: Body, arrays: list) -> dict:
    """A body of control flow: its input placeholders, its ops (in the same node form as the
    graph's, bodies nested in them included) and its outputs, by name."""
    return {"label": body.label,
            "inputs": [dict(name=t.op.name, **_type_json(t.dtype, t.shape)) for t in body.inputs],
            "nodes": [_encode_node(op, arrays) for op in body.ops],
            "outputs": [t.name for t in body.outputs]}


def _encode_attr(op, key: str, value, arrays: list):
    if isinstance(value, Body):
        return {"body": _encode_body(value, arrays)}
    problem = check_attr(key, value)
    if problem is not None:
        raise FormatError(f"{op.type} '{op.name}' (created at {op.location}): attribute {key!r} = {value!r} has no "
                          f"model-file encoding (expected {problem}; new attributes go in export/attr_schema.py)")
    return _to_json(value, arrays)


def _to_json(value, arrays: list):
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return {"array": f"w{len(arrays) - 1}", "dtype": value.dtype.name, "shape": list(value.shape)}
    if isinstance(value, DType):
        return {"dtype": value.name}
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}  # "nan", "inf", "-inf": JSON has no literal for them
    if isinstance(value, tuple):
        return [_to_json(v, arrays) for v in value]
    return value


# -- reading ------------------------------------------------------------------------------------------
def decode(data_path: str) -> Tuple[FrozenGraph, dict]:
    """The frozen graph in the file at ``data_path`` and its header (format, version,
    graphc_version, created, metadata), after every check in docs/FORMAT.md."""
    document, arrays = read_archive(data_path, data_path)
    return _build(document, arrays, data_path), {k: document[k] for k in (
        "format", "version", "graphc_version", "created", "metadata")}


_MODEL_KEYS = (("graphc_version", str), ("created", str), ("metadata", dict), ("signature", dict), ("nodes", list))


def read_archive(source, path: str, expected_format: str = FORMAT, version: int = VERSION,
                 keys=_MODEL_KEYS) -> Tuple[dict, Dict[str, np.ndarray]]:
    """The checked document and arrays of a model-file-like archive (a path, or a file
    object): ``format`` must be ``expected_format`` and each of ``keys`` (name, JSON type)
    present. Nothing is executed, nothing unpickled."""
    try:
        archive = zipfile.ZipFile(source)
    except _DAMAGE as e:
        raise FormatError(f"{path} is not a graphc {expected_format} file (not a readable zip archive: {e})") from None
    with archive:
        try:
            document = _read_document(archive, path, expected_format, version, keys)
            return document, _read_weights(archive, document, path)
        except FormatError:
            raise
        except _DAMAGE as e:  # zipfile's, zlib's and NumPy's own complaints about damaged bytes
            raise FormatError(f"{path} is damaged: {type(e).__name__}: {e}") from None


def _members(archive: zipfile.ZipFile, path: str) -> Dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    names = [i.filename for i in infos]
    bad = [n for n in names if n not in (GRAPH_MEMBER, WEIGHTS_MEMBER)]
    if bad:
        raise FormatError(f"{path}: unexpected archive member(s) {bad[:5]}; a model file holds exactly "
                          f"{GRAPH_MEMBER} and {WEIGHTS_MEMBER} (paths are never extracted)")
    if len(set(names)) != len(names):
        raise FormatError(f"{path}: archive members are duplicated: {names}")
    missing = [n for n in (GRAPH_MEMBER, WEIGHTS_MEMBER) if n not in names]
    if missing:
        raise FormatError(f"{path}: the archive has no {missing[0]}")
    members = {i.filename: i for i in infos}
    graph, weights = members[GRAPH_MEMBER], members[WEIGHTS_MEMBER]
    if graph.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or \
            graph.file_size > MAX_JSON_RATIO * max(graph.compress_size, 1024):
        raise FormatError(f"{path}: {GRAPH_MEMBER} is compressed with method {graph.compress_type}, "
                          f"{graph.compress_size} bytes for {graph.file_size}; a model file's is stored or deflated, "
                          f"at most {MAX_JSON_RATIO}x")
    if weights.compress_type != zipfile.ZIP_STORED:
        raise FormatError(f"{path}: {WEIGHTS_MEMBER} is compressed (method {weights.compress_type}); in a model "
                          "file it is stored as is")
    return members


def _read_document(archive: zipfile.ZipFile, path: str, expected_format: str = FORMAT, max_version: int = VERSION,
                   keys=_MODEL_KEYS) -> dict:
    info = _members(archive, path)[GRAPH_MEMBER]
    if info.file_size > MAX_JSON_BYTES:
        raise FormatError(f"{path}: {GRAPH_MEMBER} claims {info.file_size} bytes, more than the limit of "
                          f"{MAX_JSON_BYTES}")
    with archive.open(info) as f:
        raw = f.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise FormatError(f"{path}: {GRAPH_MEMBER} is larger than the limit of {MAX_JSON_BYTES} bytes")
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise FormatError(f"{path}: {GRAPH_MEMBER} is not valid JSON ({e})") from None
    if not isinstance(document, dict) or document.get("format") != expected_format:
        kind = "model" if expected_format == FORMAT else expected_format
        raise FormatError(f"{path}: {GRAPH_MEMBER} does not describe a graphc {kind} (format must be "
                          f"{expected_format!r})")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FormatError(f"{path}: format version {version!r} is not a positive integer")
    if version > max_version:
        raise FormatError(f"{path} was written by a newer graphc (format version {version}, graphc "
                          f"{document.get('graphc_version')!r}); this graphc reads format versions up to {max_version}")
    for key, kind in keys:
        if not isinstance(document.get(key), kind):
            raise FormatError(f"{path}: {GRAPH_MEMBER} needs {key!r} as a JSON {kind.__name__}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in document.get("metadata", {}).items()):
        raise FormatError(f"{path}: metadata must map strings to strings")
    if len(document["nodes"]) > MAX_NODES:
        raise FormatError(f"{path}: {len(document['nodes'])} nodes, more than the limit of {MAX_NODES}")
    return document


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def _nodes_with_bodies(nodes, path: str, depth: int):
    """(where, node) for every node, those in bodies of control flow included (malformed
    bodies are left to the decoder, which says what is wrong with them)."""
    if depth > MAX_BODY_DEPTH:
        raise FormatError(f"{path}: bodies of control flow nest deeper than {MAX_BODY_DEPTH}")
    if not isinstance(nodes, list):
        return
    for k, node in enumerate(nodes):
        where = f"{path}: node {k} ({_node_label(node)})"
        yield where, node
        attrs = node.get("attrs") if isinstance(node, dict) else None
        for key, value in (attrs.items() if isinstance(attrs, dict) else ()):
            body = value.get("body") if isinstance(value, dict) and set(value) == {"body"} else None
            if isinstance(body, dict):
                yield from _nodes_with_bodies(body.get("nodes"), f"{where} attribute {key!r}", depth + 1)


def _read_weights(archive: zipfile.ZipFile, document: dict, path: str) -> Dict[str, np.ndarray]:
    """Every array the nodes refer to, checked against the dtype and shape the node declares."""
    wanted: Dict[str, tuple] = {}
    for where_node, node in _nodes_with_bodies(document["nodes"], path, 0):
        attrs = node.get("attrs") if isinstance(node, dict) else None
        for key, value in (attrs.items() if isinstance(attrs, dict) else ()):
            if isinstance(value, dict) and "array" in value:
                where = f"{where_node} attribute {key!r}"
                ref = value.get("array")
                if not (isinstance(ref, str) and ref.isidentifier()) or set(value) != {"array", "dtype", "shape"}:
                    raise FormatError(f"{where}: malformed array reference {str(value)[:200]}")
                if ref in wanted:
                    raise FormatError(f"{where}: array {ref!r} is used twice")
                wanted[ref] = (npyzip.parse_dtype(value["dtype"], where, FormatError),
                               _checked_shape(value["shape"], where, allow_none=False), where)
    info = archive.getinfo(WEIGHTS_MEMBER)
    # Every byte must be accounted for by a declared array (plus headers), so what is read
    # is bounded by what the graph declares, and the graph's claims by the file's size.
    declared = sum(math.prod(shape) * dtype.itemsize for dtype, shape, _ in wanted.values())
    allowed = declared + (len(wanted) + 1) * npyzip.HEADER_SLACK
    if info.file_size > allowed:
        raise FormatError(f"{path}: {WEIGHTS_MEMBER} has {info.file_size} bytes; the arrays the graph declares "
                          f"need at most {allowed}")
    try:
        weights = zipfile.ZipFile(archive.open(info))
    except _DAMAGE as e:
        raise FormatError(f"{path}: {WEIGHTS_MEMBER} is not an .npz archive ({e})") from None
    with weights:
        names = [i.filename for i in weights.infolist()]
        expected = {f"{ref}.npy" for ref in wanted}
        if len(set(names)) != len(names) or set(names) != expected:
            extra = sorted(set(names) - expected)[:5]
            missing = sorted(expected - set(names))[:5]
            raise FormatError(f"{path}: {WEIGHTS_MEMBER} does not hold exactly the arrays the graph uses"
                              + (f"; missing {missing}" if missing else "") + (f"; unexpected {extra}" if extra else "")
                              + ("; duplicated members" if len(set(names)) != len(names) else ""))
        return {ref: npyzip.read_array(weights, f"{ref}.npy", dtype, shape, where, FormatError)
                for ref, (dtype, shape, where) in wanted.items()}


def _node_label(node) -> str:
    if isinstance(node, dict) and isinstance(node.get("name"), str):
        return f"'{node['name'][:100]}'"
    return "unnamed"


def _checked_shape(shape, where: str, allow_none: bool) -> tuple:
    if not isinstance(shape, list) or len(shape) > MAX_RANK or not all(
            (d is None and allow_none) or (isinstance(d, int) and not isinstance(d, bool) and 0 <= d < MAX_ELEMENTS)
            for d in shape):
        raise FormatError(f"{where}: invalid shape {str(shape)[:200]} (a list of at most {MAX_RANK} sizes >= 0"
                          + (" or null" if allow_none else "") + ")")
    if math.prod(d for d in shape if d is not None) > MAX_ELEMENTS:
        raise FormatError(f"{where}: shape {shape} has more than {MAX_ELEMENTS} elements")
    return tuple(shape)


def _dtype(name, where: str) -> DType:
    if not isinstance(name, str) or name not in _DTYPES:
        raise FormatError(f"{where}: unknown dtype {str(name)[:100]!r} (graphc dtypes: {', '.join(_DTYPES)})")
    return _DTYPES[name]


def _from_json(value, arrays: Dict[str, np.ndarray], where: str):
    if isinstance(value, list):
        return tuple(_from_json(v, arrays, where) for v in value)
    if isinstance(value, dict):
        if set(value) == {"dtype"}:
            return _dtype(value["dtype"], where)
        if set(value) == {"float"} and value["float"] in ("nan", "inf", "-inf"):
            return float(value["float"])
        if "array" in value:
            ref = value["array"]
            if not isinstance(ref, str) or ref not in arrays:
                raise FormatError(f"{where}: an array reference {str(value)[:200]} names no array of the file "
                                  "(array references stand alone as an attribute's value)")
            return arrays[ref]
        raise FormatError(f"{where}: unknown attribute value {str(value)[:200]}")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise FormatError(f"{where}: unknown attribute value {str(value)[:200]}")


_NODE_KEYS = {"name", "op", "inputs", "attrs", "outputs"}


def _build(document: dict, arrays: Dict[str, np.ndarray], path: str) -> FrozenGraph:
    graph = Graph()
    tensors: Dict[str, object] = {}
    with graph.as_default():
        _add_nodes(graph, _list(document["nodes"], "nodes", path), arrays, path, tensors, 0)
    return FrozenGraph(graph, *_signature(document["signature"], tensors, path))


# Bodies of control flow nest (a cond in a loop's body); a file may not nest them deeper.
MAX_BODY_DEPTH = 16


def _add_nodes(graph: Graph, nodes: list, arrays: Dict[str, np.ndarray], path: str, tensors: dict,
               depth: int, state_ok: bool = False, refined: bool = False) -> None:
    """Create ``nodes`` (in topological order) in ``graph``, registering their outputs in
    ``tensors`` by name; bodies of control flow in their attributes are built first. With
    ``state_ok`` (meta graphs: whole training graphs), variables, writes and no_ops are
    allowed, and a node's ``control`` lists the ops it runs after."""
    names_at = {n["name"]: k for k, n in enumerate(nodes) if isinstance(n, dict) and isinstance(n.get("name"), str)}
    optional = {"location", "control"} if state_ok else {"location"}
    for k, node in enumerate(nodes):
        where = f"{path}: node {k} ({_node_label(node)})"
        if not isinstance(node, dict) or not _NODE_KEYS <= set(node) or not set(node) <= _NODE_KEYS | optional:
            raise FormatError(f"{where}: a node is an object with keys {sorted(_NODE_KEYS)} (and "
                              f"{' and '.join(repr(o) for o in sorted(optional))})")
        name, op_type = node["name"], node["op"]
        if not isinstance(name, str) or not name or len(name) > 1000:
            raise FormatError(f"{where}: node names are non-empty strings")
        if name in graph._by_name:
            raise FormatError(f"{where}: a node named {name!r} already exists")
        opdef = find_opdef(op_type) if isinstance(op_type, str) else None
        if opdef is None:
            raise FormatError(f"{where}: unknown op {str(op_type)[:100]!r}; graphc runs only its own registered "
                              "ops, and never code from a file")
        if (op_type in _STATE_OPS or opdef.structural) and not state_ok:
            raise FormatError(f"{where}: op {op_type!r} needs session state and cannot be in a model file")
        where = f"{where}, op {op_type}"
        inputs = [_input(ref, names_at, tensors, k, where) for ref in _list(node["inputs"], "inputs", where)]
        attrs_json = node["attrs"]
        if not isinstance(attrs_json, dict):
            raise FormatError(f"{where}: attrs must be an object")
        attrs = {}
        for key, value in attrs_json.items():
            if key in opdef.bodies:
                decoded = _decode_body(value, arrays, f"{where} attribute {key!r}", graph, depth + 1)
            else:
                decoded = _from_json(value, arrays, f"{where} attribute {key!r}")
            problem = check_attr(key, decoded)
            if problem is not None:
                raise FormatError(f"{where}: attribute {key!r} must be {problem}, got {str(value)[:200]}")
            attrs[key] = decoded
        location = node.get("location")
        location = location if isinstance(location, str) and len(location) < 1000 else f"{path}, node {k}"
        control = [_control_input(ref, graph, where) for ref in _list(node.get("control", []), "control", where)]
        try:
            with graph.control_dependencies(control):
                op = graph.create_op(op_type, inputs, attrs, name, exact_name=True, location=location)
        except FormatError:
            raise
        except (GraphcError, InferenceError, TypeError, ValueError, KeyError, IndexError, ArithmeticError,
                MemoryError) as e:
            # Each op's own inference rejects attributes and input types that do not fit.
            raise FormatError(f"{where}: the op rejects its inputs or attributes: {str(e)[:600]}") from None
        recorded = _list(node["outputs"], "outputs", where)
        if len(recorded) != len(op.outputs):
            raise FormatError(f"{where}: records {len(recorded)} outputs; the op has {len(op.outputs)}")
        for i, (t, rec) in enumerate(zip(op.outputs, recorded)):
            _check_type(rec, t, f"{where} output {i}", refined)
            tensors.setdefault(t.name, t)  # an input_map entry (import_graph_def) wins


def _control_input(ref, graph: Graph, where: str):
    if not isinstance(ref, str) or ref not in graph._by_name:
        raise FormatError(f"{where}: control input {str(ref)[:100]!r} is not an op made before this node")
    return graph._by_name[ref]


_BODY_KEYS = {"label", "inputs", "nodes", "outputs"}


def _decode_body(value, arrays: Dict[str, np.ndarray], where: str, outer: Graph, depth: int) -> Body:
    if depth > MAX_BODY_DEPTH:
        raise FormatError(f"{where}: bodies of control flow nest deeper than {MAX_BODY_DEPTH}")
    doc = value.get("body") if isinstance(value, dict) and set(value) == {"body"} else None
    if not isinstance(doc, dict) or set(doc) != _BODY_KEYS:
        raise FormatError(f"{where}: a body is {{'body': {{...}}}} with keys {sorted(_BODY_KEYS)}")
    label = doc["label"] if isinstance(doc["label"], str) else "body"
    graph = Graph()
    graph.outer, graph.seed = outer, outer.seed
    tensors: Dict[str, object] = {}
    inputs = []
    with graph.as_default():
        for j, entry in enumerate(_list(doc["inputs"], "inputs", where)):
            at = f"{where} input {j}"
            if not isinstance(entry, dict) or set(entry) != {"name", "dtype", "shape"} or not isinstance(
                    entry["name"], str) or not entry["name"] or entry["name"] in graph._by_name:
                raise FormatError(f"{at}: an input is {{'name', 'dtype', 'shape'}} with a name of its own")
            t = graph.create_op("placeholder", (), {"dtype": _dtype(entry["dtype"], at), "shape": _checked_shape(
                entry["shape"], at, allow_none=True)}, entry["name"], exact_name=True).outputs[0]
            tensors.setdefault(t.name, t)  # an input_map entry (import_graph_def) wins
            inputs.append(t)
        nodes = _list(doc["nodes"], "nodes", where)
        for node in nodes:
            op_type = node.get("op") if isinstance(node, dict) else None
            if isinstance(op_type, str) and find_opdef(op_type) is not None and refused_in_bodies(op_type):
                raise FormatError(f"{where}: node {_node_label(node)} is a {op_type}, which a body may not hold")
        _add_nodes(graph, nodes, arrays, where, tensors, depth)
        outputs = []
        for ref in _list(doc["outputs"], "outputs", where):
            if not isinstance(ref, str) or ref not in tensors:
                raise FormatError(f"{where}: output {str(ref)[:100]!r} is not a tensor of the body")
            outputs.append(tensors[ref])
    return Body(graph, inputs, outputs, label[:200])


def _list(value, what: str, where: str) -> list:
    if not isinstance(value, list):
        raise FormatError(f"{where}: {what} must be a list")
    return value


def _input(ref, names_at: dict, tensors: dict, k: int, where: str):
    if not isinstance(ref, str):
        raise FormatError(f"{where}: inputs are tensor names like 'node:0', got {str(ref)[:100]}")
    if ref in tensors:
        return tensors[ref]
    node_name = ref.rpartition(":")[0]
    at = names_at.get(node_name)
    if at is None:
        raise FormatError(f"{where}: input {ref!r} refers to no node (a dangling edge)")
    if at >= k:
        kind = "the node reads itself: a cycle" if at == k else "a cycle or an edge to a later node"
        raise FormatError(f"{where}: input {ref!r} is produced by node {at}, not before node {k}: {kind} "
                          "(nodes are listed in topological order)")
    raise FormatError(f"{where}: node {node_name!r} has no output {ref!r}")


def _check_type(rec, tensor, where: str, refined: bool = False) -> None:
    """The recorded type must be the op's; ``refined`` (inputs replaced by input_map) lets a
    recorded ``None`` dim be known now."""
    if not isinstance(rec, dict) or set(rec) != {"dtype", "shape"}:
        raise FormatError(f"{where}: a type is {{'dtype': ..., 'shape': [...]}}, got {str(rec)[:200]}")
    if rec["shape"] is None or not tensor.shape.known_rank:
        if rec["shape"] is not None or tensor.shape.known_rank or _dtype(rec["dtype"], where) is not tensor.dtype:
            raise FormatError(f"{where}: recorded as {rec['dtype']}{rec['shape']}, but the op computes "
                              f"{tensor.dtype.name} of {format_shape(tensor.shape)} (a shape or dtype conflict)")
        return
    inferred = tuple(tensor.shape)
    if math.prod(d for d in inferred if d is not None) > MAX_ELEMENTS:
        raise FormatError(f"{where}: {list(inferred)} has more than {MAX_ELEMENTS} elements")
    dtype = _dtype(rec["dtype"], where)
    shape = _checked_shape(rec["shape"], where, allow_none=True)
    fits = shape == inferred or refined and len(shape) == len(inferred) and all(
        r is None or r == d for r, d in zip(shape, inferred))
    if dtype is not tensor.dtype or not fits:
        raise FormatError(f"{where}: recorded as {dtype.name}{list(shape)}, but the op computes "
                          f"{tensor.dtype.name}{list(inferred)} (a shape or dtype conflict)")


def _signature(signature: dict, tensors: dict, path: str) -> tuple:
    out = []
    for side in ("inputs", "outputs"):
        entries = signature.get(side)
        if not isinstance(entries, list) or not entries and side == "outputs":
            raise FormatError(f"{path}: the signature needs a list of {side}" + (" (at least one)" if side == "outputs"
                                                                                  else ""))
        found: Dict[str, object] = {}
        for entry in entries:
            where = f"{path}: signature {side[:-1]} {str(entry)[:100]}"
            if not isinstance(entry, dict) or set(entry) != {"name", "tensor", "dtype", "shape"}:
                raise FormatError(f"{where}: entries are objects with name, tensor, dtype and shape")
            name, ref = entry["name"], entry["tensor"]
            if not isinstance(name, str) or not name or name in found:
                raise FormatError(f"{where}: names are unique non-empty strings")
            tensor = tensors.get(ref) if isinstance(ref, str) else None
            if tensor is None:
                raise FormatError(f"{where}: tensor {str(ref)[:100]!r} is not produced by any node")
            if side == "inputs" and tensor.op.type not in ("placeholder", "placeholder_with_default"):
                raise FormatError(f"{where}: inputs must be placeholders, {ref!r} is a {tensor.op.type}")
            _check_type({"dtype": entry["dtype"], "shape": entry["shape"]}, tensor, where)
            found[name] = tensor
        out.append(found)
    inputs, outputs = out
    fed = set(inputs.values())
    unfed = [t.op.name for t in tensors.values() if t.op.type == "placeholder" and t not in fed]
    if unfed:
        raise FormatError(f"{path}: placeholder(s) {unfed[:5]} are not inputs of the signature")
    return inputs, outputs

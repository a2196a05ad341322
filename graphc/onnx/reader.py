"""Reading an ONNX file as input from outside: every check happens before any op is built.

An ONNX file is a protobuf that anyone may have written. ``read_model`` turns a path, bytes or
an ``onnx.ModelProto`` into a ModelProto that the importer may trust:

* the bytes parse as a ModelProto (protobuf's own parser, never pickle);
* external tensor data stays inside the model's directory and inside its file's size;
* every declared tensor is of a size the machine can hold (``MAX_ELEMENTS``);
* the default domain's opset is one the importer knows (older ones go through
  ``onnx.version_converter``), and no node is from an unknown domain;
* the nodes form no cycle and read only names that exist (``topological_nodes``).

Each failure is a :class:`ImportError` (or :class:`FormatError` for bytes that are no
model at all) that names the file, the node or tensor, and what is wrong.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np

from ..errors import GraphcError
from ..export.model_file import FormatError

# A tensor larger than this (elements) is refused before it is allocated: 2**31 float32 is
# 8 GiB, more than any model that graphc is asked to import holds in one tensor.
MAX_ELEMENTS = 1 << 31
# The oldest default-domain opset the converters implement directly; older models are
# converted with onnx.version_converter first.
MIN_OPSET = 11
# Domains whose ops the importer knows ("" and "ai.onnx" are the same default domain).
KNOWN_DOMAINS = ("", "ai.onnx")
# Other domains some of whose ops have converters (registered as "domain:Op").
PARTLY_KNOWN_DOMAINS = ("ai.onnx.ml",)


class OnnxImportError(GraphcError, ValueError):
    """The ONNX model cannot be imported: names the node (or tensor) and what is wrong.
    Exported as ``gc.onnx.ImportError``."""


def _onnx():
    try:
        import onnx
    except ModuleNotFoundError:
        raise OnnxImportError("ONNX import needs the onnx package: pip install 'graphc[onnx]'") from None
    return onnx


def read_model(model_or_path, source: Optional[str] = None):
    """A checked ``onnx.ModelProto`` from a path, bytes or a ModelProto; ``source`` names it
    in errors (default: the path, or "<bytes>")."""
    onnx = _onnx()
    base_dir = None
    if isinstance(model_or_path, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(model_or_path)
        source = source or f"<ModelProto {model.graph.name or 'unnamed'}>"
    else:
        if isinstance(model_or_path, (bytes, bytearray, memoryview)):
            data = bytes(model_or_path)
            source = source or "<bytes>"
        else:
            path = os.fspath(model_or_path)
            source = source or path
            if not os.path.isfile(path):
                raise FormatError(f"{source}: no such file")
            with open(path, "rb") as f:
                data = f.read()
            base_dir = os.path.dirname(os.path.abspath(path))
        model = onnx.ModelProto()
        try:
            model.ParseFromString(data)
        except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError and others for bad bytes
            raise FormatError(f"{source}: not an ONNX model (the protobuf does not parse: {e})") from None
        if not model.HasField("graph"):
            raise FormatError(f"{source}: not an ONNX model (no graph in the protobuf)")
    _check_text(model, source)
    _check_domains(model, source)
    _load_external_data(onnx, model, base_dir, source)
    model = _upgrade(onnx, model, source)
    return model, source


def default_opset(model) -> int:
    for imp in model.opset_import:
        if imp.domain in KNOWN_DOMAINS:
            return int(imp.version)
    return 1


def _check_domains(model, source: str) -> None:
    known = {imp.domain for imp in model.opset_import}
    functions = {(f.domain, f.name) for f in model.functions}
    for i, node in enumerate(_all_nodes(model.graph)):
        if node.domain not in KNOWN_DOMAINS + PARTLY_KNOWN_DOMAINS and (node.domain, node.op_type) not in functions:
            where = f"node {i} '{node.name}'" if node.name else f"node {i}"
            raise OnnxImportError(
                f"{source}: {where} is {node.op_type!r} of domain {node.domain!r}, which graphc does not "
                f"know (it imports the default ONNX domain; the model imports {sorted(known)})")


def _check_text(model, source: str) -> None:
    """Names and op types must be text: protobuf hands invalid UTF-8 back as bytes."""
    def check(value, where):
        if not isinstance(value, str):
            raise FormatError(f"{source}: {where} is not valid UTF-8 text ({value!r:.60})")

    for graph in _all_graphs(model.graph):
        for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
            check(vi.name, "a value name")
        for t in graph.initializer:
            check(t.name, "an initializer name")
        for i, node in enumerate(graph.node):
            for text in (node.op_type, node.domain, node.name, *node.input, *node.output):
                check(text, f"node {i}'s op type, domain or a value name")
            for attr in node.attribute:
                check(attr.name, f"an attribute name of node {i}")
    for imp in model.opset_import:
        check(imp.domain, "an opset domain")


def _all_graphs(graph):
    """The graph and every subgraph in it (branches and loop bodies, at any depth)."""
    yield graph
    for node in graph.node:
        for g in _subgraphs(node):
            yield from _all_graphs(g)


def _subgraphs(node):
    for attr in node.attribute:
        if attr.type == attr.GRAPH:
            yield attr.g
        elif attr.type == attr.GRAPHS:
            yield from attr.graphs


def _all_nodes(graph):
    for g in _all_graphs(graph):
        yield from g.node


def _all_tensors(graph):
    """Every initializer and tensor attribute, in subgraphs too."""
    for g in _all_graphs(graph):
        yield from g.initializer
        for node in g.node:
            yield from (attr.t for attr in node.attribute if attr.type == attr.TENSOR)


def _load_external_data(onnx, model, base_dir: Optional[str], source: str) -> None:
    """Fill tensors stored outside the file, refusing paths that leave the model's folder."""
    for tensor in _all_tensors(model.graph):
        count = int(np.prod([int(d) for d in tensor.dims], dtype=object)) if tensor.dims else 1
        if any(int(d) < 0 for d in tensor.dims) or count > MAX_ELEMENTS:
            raise OnnxImportError(f"{source}: tensor {tensor.name!r} declares shape {list(tensor.dims)} "
                                  f"({count} elements); graphc refuses tensors over {MAX_ELEMENTS} elements")
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        if base_dir is None:
            raise OnnxImportError(f"{source}: tensor {tensor.name!r} keeps its data in external file "
                                  f"{location!r}; import the model from its path so that the file can be found")
        if not location or os.path.isabs(location):
            raise OnnxImportError(f"{source}: tensor {tensor.name!r} has external data at {location!r}; "
                                  "it must be a relative path inside the model's folder")
        path = os.path.realpath(os.path.join(base_dir, location))
        if os.path.commonpath([path, os.path.realpath(base_dir)]) != os.path.realpath(base_dir):
            raise OnnxImportError(f"{source}: tensor {tensor.name!r} has external data at {location!r}, "
                                  f"which is outside the model's folder {base_dir}; refused")
        if not os.path.isfile(path):
            raise OnnxImportError(f"{source}: tensor {tensor.name!r}: its external data file {location!r} "
                                  "does not exist")
        try:
            offset = int(info.get("offset", 0) or 0)
            length = int(info["length"]) if info.get("length") else None
        except ValueError:
            raise OnnxImportError(f"{source}: tensor {tensor.name!r}: external data offset/length are not "
                                  f"integers: {info}") from None
        size = os.path.getsize(path)
        if offset < 0 or offset > size or (length is not None and (length < 0 or offset + length > size)):
            raise OnnxImportError(f"{source}: tensor {tensor.name!r}: external data range offset={offset} "
                                  f"length={length} lies outside {location!r} ({size} bytes)")
        with open(path, "rb") as f:
            f.seek(offset)
            tensor.raw_data = f.read(length if length is not None else size - offset)
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]


def _upgrade(onnx, model, source: str):
    opset = default_opset(model)
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise OnnxImportError(f"{source}: the model uses opset {opset} of the default domain; the installed "
                              f"onnx {onnx.__version__} knows up to {newest} (upgrade onnx)")
    if opset >= MIN_OPSET:
        return model
    try:
        from onnx import version_converter
        return version_converter.convert_version(model, MIN_OPSET)
    except Exception as e:  # noqa: BLE001 - the converter raises RuntimeError and others
        raise OnnxImportError(f"{source}: the model uses opset {opset}; graphc imports opset {MIN_OPSET} and "
                              f"newer, and onnx.version_converter could not convert it: "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def topological_nodes(graph, outer: set, source: str) -> List:
    """The graph's nodes in an order where each reads only what exists before it. ONNX asks
    files to be sorted already; a file that is not is sorted here, and a cycle or a read of
    a name nothing defines is an error naming the node."""
    defined = set(outer) | {t.name for t in graph.initializer} | {v.name for v in graph.input} | {""}
    producers: Dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for out in node.output:
            if out:
                producers[out] = i
    order: List = []
    state = [0] * len(graph.node)   # 0 new, 1 on the stack, 2 done
    for start in range(len(graph.node)):
        if state[start]:
            continue
        stack = [(start, 0)]
        state[start] = 1
        while stack:
            i, k = stack[-1]
            node = graph.node[i]
            needs = list(node.input) + sorted(_captured(node))
            if k < len(needs):
                stack[-1] = (i, k + 1)
                name = needs[k]
                if name in defined and name not in producers:
                    continue
                j = producers.get(name)
                if j is None:
                    if name in defined:
                        continue
                    raise OnnxImportError(f"{source}: node {i} {_label(node)} reads {name!r}, which no node, "
                                          "initializer or graph input defines")
                if state[j] == 1:
                    raise OnnxImportError(f"{source}: node {i} {_label(node)} is part of a cycle through "
                                          f"{name!r}; an ONNX graph must be acyclic")
                if state[j] == 0:
                    state[j] = 1
                    stack.append((j, 0))
                continue
            state[i] = 2
            order.append(node)
            stack.pop()
    return order


def _captured(node) -> set:
    """Names that a node's subgraphs read from the enclosing scopes."""
    names: set = set()
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == attr.GRAPH else list(attr.graphs) if attr.type == attr.GRAPHS else []
        for g in graphs:
            inner = {t.name for t in g.initializer} | {v.name for v in g.input}
            for n in g.node:
                inner.update(o for o in n.output if o)
            for n in g.node:
                names.update(x for x in n.input if x and x not in inner)
                names.update(x for x in _captured(n) if x not in inner)
    return names


def _label(node) -> str:
    return f"'{node.name}' ({node.op_type})" if node.name else f"({node.op_type})"

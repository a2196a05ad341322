"""ONNX ops defined as functions of other ops, imported by expanding them.

Many ONNX ops (Attention, SoftmaxCrossEntropyLoss, RMSNormalization, GroupNormalization, the
window functions, ...) come with a body in ONNX's own schema: a FunctionProto of simpler
ops, sometimes built for the node's attributes and input types ("context dependent"). A
model may also define functions of its own (``model.functions``). An op with no converter
of its own is imported as its body: the body's nodes, renamed into the node's scope, go
through the converters one by one (and may expand again). The result computes what the ONNX
specification defines the op to compute, and the optimizer fuses it like any other graph.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from .reader import KNOWN_DOMAINS


def function_body(node, opset: int, input_types: List, local: Dict[Tuple[str, str], object]):
    """(FunctionProto, its default-domain opset, the schema's attribute defaults) for
    ``node``, or None if it has no body."""
    from onnx import FunctionProto, defs
    fn = local.get((node.domain, node.op_type))
    if fn is not None:
        return fn, _default_opset(fn, opset), {}
    if node.domain not in KNOWN_DOMAINS:
        return None
    try:
        schema = defs.get_schema(node.op_type, opset, domain="")
    except defs.SchemaError:
        return None
    plain = [v for v in schema.function_opset_versions if v <= opset]
    context = [v for v in schema.context_dependent_function_opset_versions if v <= opset]
    if not plain and not context:
        return None
    fn = FunctionProto()
    defaults = {name: attr.default_value for name, attr in schema.attributes.items()
                if attr.default_value and attr.default_value.name}
    if context and (not plain or max(context) >= max(plain)):
        full = _with_defaults(node, defaults)
        try:
            data = schema.get_context_dependent_function_with_opset_version(
                max(context), full.SerializeToString(), [t.SerializeToString() for t in input_types])
        except Exception:  # noqa: BLE001 - the schema cannot build a body for these types
            return None
        if not data:
            return None
        fn.ParseFromString(data)
    else:
        fn.ParseFromString(schema.get_function_with_opset_version(max(plain)))
    return fn, _default_opset(fn, opset), defaults


def _default_opset(fn, fallback: int) -> int:
    for imp in fn.opset_import:
        if imp.domain in KNOWN_DOMAINS:
            return int(imp.version)
    return fallback


def _with_defaults(node, defaults: dict):
    """The node with the schema's default attribute values filled in (a context-dependent
    body reads them from the node)."""
    from onnx import NodeProto
    full = NodeProto()
    full.CopyFrom(node)
    given = {a.name for a in node.attribute}
    full.attribute.extend([attr for name, attr in defaults.items() if name not in given])
    return full


def expand(node, fn, prefix: str, schema_defaults=None) -> List:
    """The body's nodes with the function's inputs and outputs renamed to the node's, its
    other values prefixed, and attribute references resolved."""
    names: Dict[str, str] = {}
    for i, name in enumerate(fn.input):
        names[name] = node.input[i] if i < len(node.input) else ""
    for i, name in enumerate(fn.output):
        if i < len(node.output) and node.output[i]:
            names[name] = node.output[i]
    given = {a.name: a for a in node.attribute}
    defaults = dict(schema_defaults or {})
    defaults.update({a.name: a for a in fn.attribute_proto})

    def rename(name: str) -> str:
        if name in names:
            return names[name]
        return prefix + name if name else ""

    return [_renamed(inner, rename, given, defaults, prefix) for inner in fn.node]


def _renamed(inner, rename, given, defaults, prefix):
    """A copy of one body node with its value names renamed (in its subgraphs too, so that a
    branch reads the renamed values of the body around it) and attribute references resolved."""
    from onnx import AttributeProto, NodeProto
    new = NodeProto()
    new.CopyFrom(inner)
    new.ClearField("input")
    new.ClearField("output")
    new.ClearField("attribute")
    new.input.extend(rename(n) for n in inner.input)
    new.output.extend(rename(n) for n in inner.output)
    if inner.name:
        new.name = prefix + inner.name
    for attr in inner.attribute:
        if attr.ref_attr_name:
            source: Optional[AttributeProto] = given.get(attr.ref_attr_name) or defaults.get(attr.ref_attr_name)
            if source is None:
                continue
            copy = AttributeProto()
            copy.CopyFrom(source)
            copy.name = attr.name
            new.attribute.extend([copy])
        elif attr.type == AttributeProto.GRAPH:
            copy = AttributeProto()
            copy.CopyFrom(attr)
            _rename_graph(copy.g, rename, given, defaults, prefix)
            new.attribute.extend([copy])
        else:
            new.attribute.extend([attr])
    return new


def _rename_graph(graph, rename, given, defaults, prefix) -> None:
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        vi.name = rename(vi.name)
    for init in graph.initializer:
        init.name = rename(init.name)
    nodes = [_renamed(n, rename, given, defaults, prefix) for n in graph.node]
    del graph.node[:]
    graph.node.extend(nodes)

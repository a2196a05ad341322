"""ONNX export: ``to_onnx(sess_or_model, path, inputs=None, outputs=None, opset=17)``.

The graph is frozen first (``freeze.as_frozen``: variables become constants, training-only
branches fold away), then every op is translated by one small converter function found in
:data:`CONVERTERS` (op name -> converter). A converter gets the export context, the graphc
Operation and the ONNX names of its inputs, emits ONNX nodes through the context and returns
the ONNX names of the op's outputs.

Converters follow the op's NumPy reference implementation, not the nearest ONNX op's name:
where an ONNX op means something else at an edge (C ``fmod`` vs Python's floor ``mod``,
``exp(x) - 1`` vs an accurate ``expm1``, MaxPool or ReduceMax dropping NaN, OneHot counting
negative indices from the end, ...), the converter builds the graphc meaning from several
ONNX nodes. Ops with no faithful ONNX form are listed in :data:`NOT_EXPORTABLE` and raise
:class:`ExportError` naming the op, its node and the line that created it.

graphc is NHWC; ONNX's Conv and pooling are NCHW. Each conv/pool converter transposes its
input and output; a final pass pushes those transposes through elementwise ops and cancels
the pairs that meet, so a CNN keeps NCHW between its layers.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .. import __version__
from ..errors import GraphcError
from ..files import atomic_write
from ..graph import Operation
from ..ops.nn import conv_output_size
from ..shapes import TensorShape
from ..ops.shape_spec import is_dim_ref
from .freeze import FrozenGraph, _needed_ops, as_frozen
from ..ops.registry import OPS, find_opdef, rule_registrar

__all__ = ["to_onnx", "ExportError", "CONVERTERS", "NOT_EXPORTABLE", "MIN_OPSET"]

MIN_OPSET = 17
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min
_PROTOBUF_LIMIT = 2 ** 31 - 1


class ExportError(GraphcError, ValueError):
    """The graph cannot be exported faithfully (names the op, its node and where it was made)."""


Converter = Callable[["_Context", Operation, List[str]], Sequence[str]]
CONVERTERS: Dict[str, Converter] = {}

# Ops that have no exact ONNX form, with the reason given in the error.
NOT_EXPORTABLE: Dict[str, str] = {
    "random_uniform": "random draws follow graphc's counter-based streams, which ONNX's random ops cannot "
                      "reproduce; an inference graph should not draw (freeze with training off)",
    "random_standard_normal": "random draws follow graphc's counter-based streams, which ONNX's random ops "
                              "cannot reproduce",
    "truncated_standard_normal": "random draws follow graphc's counter-based streams, which ONNX's random ops "
                                 "cannot reproduce",
    "variable": "variables are session state; freeze turns variable reads into constants",
    **{op: "a collective of a data-parallel run (graphc.distribute) is a call into MPI between ranks; an "
           "inference graph runs on one: export the graph built without hvd.allreduce/allgather/broadcast"
       for op in ("collective_allreduce", "collective_allgather", "collective_broadcast")},
    "read_variable": "variables are session state; export a frozen graph (gc.export.freeze) instead",
    "assign": "an inference graph cannot change variables",
    "assign_add": "an inference graph cannot change variables",
    "assign_sub": "an inference graph cannot change variables",
    "snapshot": "compiled programs copy variable state with it; graphs never hold it",
    "no_op": "it only orders other ops and computes nothing",
    "sum_to": "gradient-only op (the adjoint of broadcasting)",
    "check_range": "ONNX has no run-time assertion, and dropping the check would turn a bad fed value into a "
                   "wrong answer; feed or freeze the checked value (dropout's keep_prob or rate) as a constant",
    "strided_slice_grad": "gradient-only op (the adjoint of slicing)",
    "pad_grad": "gradient-only op (the adjoint of pad)",
    "conv2d_backprop_filter": "gradient-only op (the adjoint of conv2d for its filter)",
    "depthwise_conv2d_native_backprop_input": "gradient-only op (the adjoint of depthwise_conv2d for its input)",
    "depthwise_conv2d_native_backprop_filter": "gradient-only op (the adjoint of depthwise_conv2d for its filter)",
    "max_pool2d_grad": "gradient-only op (the adjoint of max_pool2d)",
    "max_pool2d_grad_grad": "gradient-only op (second-order max_pool2d gradient)",
    "avg_pool2d_grad": "gradient-only op (the adjoint of avg_pool2d)",
    "fused_batch_norm_grad": "gradient-only op (the backward pass of training-mode fused_batch_norm)",
}


converts = rule_registrar(CONVERTERS, "ONNX converter")


def converter_of(op_type: str):
    """The op's converter: this module's, or a 1:1 node from its OpDef's ``onnx`` type (a
    reduction passes its axes and keepdims the way its ONNX opset expects); None if neither."""
    if op_type in CONVERTERS:
        return CONVERTERS[op_type]
    opdef = find_opdef(op_type)
    if opdef is None or opdef.onnx is None:
        return None
    if opdef.family == "reduce":
        def convert(ctx, op, ins):
            axes = list(op.attrs["axes"])
            return [ctx.reduce(opdef.onnx, ins[0], axes, bool(op.attrs["keepdims"])) if axes else ins[0]]
        return convert
    return lambda ctx, op, ins: [ctx.node(opdef.onnx, *ins)]


def supported_ops() -> List[str]:
    return sorted(set(CONVERTERS) | {name for name, d in OPS.items() if d.onnx is not None})


# --- the public entry point -------------------------------------------------------------------
def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install graphc[onnx]") from None
    return onnx


def to_onnx(sess_or_model, path, inputs=None, outputs=None, opset: int = MIN_OPSET):
    """Export an inference graph as an ONNX model and return the ``onnx.ModelProto``.

    ``sess_or_model`` is a Session (with ``outputs={name: tensor}`` and optionally
    ``inputs={name: tensor}``, as for ``gc.export.freeze``), a FrozenGraph, or a loaded model
    (optionally restricted to some of its output names). The ONNX graph's inputs and outputs
    carry those names; ``None`` dims become symbolic dims (``"x_dim0"``), and outputs reuse an
    input's symbol where ONNX shape inference ties them together. Constants (the trained
    variables) become initializers. An input that is a ``placeholder_with_default`` with a
    constant default becomes an input with an initializer of the same name (ONNX's way of
    saying "optional, with this default").

    ``path`` is written atomically (a crash never leaves half a file); pass ``None`` to only
    get the model. ``opset`` is the ai.onnx opset version, from 17 to the installed onnx
    package's newest. Raises :class:`ExportError` for an op without a faithful ONNX form.
    """
    onnx = _import_onnx()
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an int from {MIN_OPSET} to {newest} (the installed onnx "
                         f"{onnx.__version__}'s newest), got {opset!r}")
    frozen = as_frozen(sess_or_model, inputs, outputs)
    model = _convert(onnx, frozen, int(opset))
    if model.ByteSize() > _PROTOBUF_LIMIT:
        raise ExportError(f"the ONNX model would be {model.ByteSize() / 2**30:.1f} GiB, over protobuf's 2 GiB limit; "
                          "graphc does not write ONNX external-data files")
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # a converter bug, never the user's: say so
        raise ExportError(f"graphc built an invalid ONNX model (please report this): {e}") from e
    if path is not None:
        atomic_write(os.fspath(path), model.SerializeToString())
    return model


# --- the export context -----------------------------------------------------------------------
class _Node:
    __slots__ = ("op_type", "inputs", "outputs", "name", "attrs", "doc")

    def __init__(self, op_type, inputs, outputs, name, attrs, doc):
        self.op_type, self.inputs, self.outputs, self.name, self.attrs, self.doc = \
            op_type, list(inputs), list(outputs), name, attrs, doc


class _Context:
    """What converters build with: ``node`` emits an ONNX node, ``const`` an initializer."""

    def __init__(self, onnx, opset: int, reserved: Sequence[str]):
        self.onnx = onnx
        self.opset = opset
        self.nodes: List[_Node] = []
        self.initializers: Dict[str, np.ndarray] = {}
        self.used = set(reserved)
        self.node_names: set = set()
        self._const_cache: Dict[tuple, str] = {}
        self.op: Optional[Operation] = None

    # names
    def fresh(self, hint: str) -> str:
        name = hint
        i = 1
        while name in self.used:
            name = f"{hint}_{i}"
            i += 1
        self.used.add(name)
        return name

    def _node_name(self, hint: str) -> str:
        name, i = hint, 1
        while name in self.node_names:
            name = f"{hint}_{i}"
            i += 1
        self.node_names.add(name)
        return name

    # building
    def node(self, op_type: str, *inputs, outputs: int = 1, **attrs):
        prefix = self.op.name if self.op is not None else "graphc"
        outs = [self.fresh(f"{prefix}/{op_type}") for _ in range(outputs)]
        doc = f"graphc {self.op.type} '{self.op.name}' created at {self.op.location}" if self.op is not None else ""
        self.nodes.append(_Node(op_type, ["" if i is None else i for i in inputs], outs,
                                self._node_name(f"{prefix}/{op_type}"), attrs, doc))
        return outs[0] if outputs == 1 else outs

    def const(self, value, dtype=None, hint: str = "const") -> str:
        arr = np.asarray(value, dtype=dtype)
        small = arr.size <= 64
        key = (arr.dtype.str, arr.shape, arr.tobytes()) if small else None
        if key is not None and key in self._const_cache:
            return self._const_cache[key]
        prefix = self.op.name + "/" if self.op is not None and hint == "const" else ""
        name = self.fresh(prefix + hint)
        self.initializers[name] = arr
        if key is not None:
            self._const_cache[key] = name
        return name

    def i64(self, values) -> str:
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1))

    def scalar(self, value, dtype) -> str:
        return self.const(np.asarray(value).astype(dtype))

    def value_of(self, name: str) -> Optional[np.ndarray]:
        """The value of an initializer, or None if ``name`` is computed."""
        return self.initializers.get(name)

    def fail(self, reason: str) -> ExportError:
        return _op_error(self.op, reason)

    # small compound helpers
    def cast(self, x: str, to) -> str:
        return self.node("Cast", x, to=_onnx_dtype(self.onnx, np.dtype(to)))

    def transpose(self, x: str, perm) -> str:
        perm = [int(p) for p in perm]
        if perm == list(range(len(perm))):
            return x
        value = self.value_of(x)
        if value is not None:
            return self.const(_contiguous(np.transpose(value, perm)), hint=x + "_T")
        return self.node("Transpose", x, perm=perm)

    def reduce(self, op_type: str, x: str, axes, keepdims: bool) -> str:
        axes = [int(a) for a in axes]
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, x, self.i64(axes), keepdims=int(keepdims))
        return self.node(op_type, x, axes=axes, keepdims=int(keepdims))

    def dim(self, x: str, axis: int) -> str:
        """The run-time size of ``x``'s dim ``axis`` as a 1-element int64 tensor."""
        return self.node("Shape", x, start=int(axis), end=int(axis) + 1)

    def shape_vector(self, entries) -> str:
        """A 1-D int64 shape from entries that are ints or names of 1-element int64 tensors."""
        parts, run = [], []
        for e in entries:
            if isinstance(e, str):
                if run:
                    parts.append(self.i64(run))
                    run = []
                parts.append(e)
            else:
                run.append(int(e))
        if run or not parts:
            parts.append(self.i64(run))
        return parts[0] if len(parts) == 1 else self.node("Concat", *parts, axis=0)

    def spec_vector(self, spec, ins: List[str], op: Operation) -> str:
        """A graphc shape spec (ints, -1, ``("dim", i, axis)``) as a 1-D int64 tensor."""
        entries = []
        for e in spec:
            if is_dim_ref(e):
                _, i, axis = e
                rank = op.inputs[i].shape.rank
                known = op.inputs[i].shape[axis]
                entries.append(int(known) if known is not None else self.dim(ins[i], axis % rank))
            else:
                entries.append(int(e))
        return self.shape_vector(entries)

    def constant_of_shape(self, like: str, value, dtype) -> str:
        tensor = self.onnx.numpy_helper.from_array(np.asarray([value], dtype=dtype), "value")
        return self.node("ConstantOfShape", self.node("Shape", like), value=tensor)


def _contiguous(a) -> np.ndarray:
    return np.asarray(a, order="C")  # unlike np.ascontiguousarray, keeps 0-d arrays 0-d


def _onnx_dtype(onnx, dtype: np.dtype) -> int:
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _op_error(op: Operation, reason: str) -> ExportError:
    return ExportError(f"cannot export {op.type} '{op.name}' (created at {op.location}) to ONNX: {reason}.\n"
                       f"  ONNX export supports: {', '.join(supported_ops())}")


# --- graph conversion -------------------------------------------------------------------------
def _convert(onnx, frozen: FrozenGraph, opset: int):
    helper = onnx.helper
    cut = {t for t in frozen.inputs.values()}
    ops = _needed_ops(list(frozen.outputs.values()), cut)
    for op in ops:
        if converter_of(op.type) is None:
            reason = NOT_EXPORTABLE.get(op.type, "graphc has no ONNX converter for this op")
            raise _op_error(op, reason)

    ctx = _Context(onnx, opset, list(frozen.inputs) + list(frozen.outputs))
    values: Dict[object, str] = {}
    graph_inputs = []
    for key, t in frozen.inputs.items():
        graph_inputs.append(_value_info(onnx, key, t.dtype.np, _input_dims(key, t.shape)))
        values[t] = key
        if t.op.type == "placeholder_with_default":
            default = t.op.inputs[0]
            if default.op.type != "const":
                raise _op_error(t.op, f"input {key!r} has a default computed from other values; ONNX can only give "
                                      "an input a constant default (freeze it, or make it a required input)")
            ctx.initializers[key] = np.asarray(default.op.attrs["value"])

    _emit(ctx, ops, values)

    # Outputs: the value gets the signature's name, or an Identity makes one.
    produced = {o for n in ctx.nodes for o in n.outputs}
    read_by_subgraphs = _read_by_subgraphs(ctx)  # subgraphs are built already: what they read keeps its name
    renames: Dict[str, str] = {}
    for key, t in frozen.outputs.items():
        v = values[t]
        if v in produced and v not in renames and v not in frozen.inputs and v not in read_by_subgraphs:
            renames[v] = key
        else:
            ctx.nodes.append(_Node("Identity", [renames.get(v, v)], [key], ctx._node_name(key), {}, ""))
    for n in ctx.nodes:
        n.inputs = [renames.get(i, i) for i in n.inputs]
        n.outputs = [renames.get(o, o) for o in n.outputs]

    _optimize_transposes(ctx, set(frozen.outputs) | read_by_subgraphs)
    _drop_unused_initializers(ctx, set(frozen.inputs))

    nodes = []
    for n in ctx.nodes:
        node = helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, **n.attrs)
        if n.doc:
            node.doc_string = n.doc
        nodes.append(node)
    inits = [onnx.numpy_helper.from_array(_contiguous(v), k) for k, v in ctx.initializers.items()]
    outputs = [_value_info(onnx, k, t.dtype.np, [d for d in t.shape]) for k, t in frozen.outputs.items()]
    sig = frozen.signature
    graph = helper.make_graph(nodes, "graphc", graph_inputs, outputs, initializer=inits,
                              doc_string=f"exported by graphc {__version__}: {sig}")
    opset_ids = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opset_ids, producer_name="graphc", producer_version=__version__)
    model.ir_version = helper.find_min_ir_version_for(opset_ids)
    _name_output_dims(onnx, model, frozen)
    return model


def _emit(ctx: _Context, ops, values: Dict[object, str]) -> None:
    """Convert ``ops`` (in order) into ``ctx``'s nodes; ``values`` maps each graphc tensor to
    its ONNX name (inputs filled in by the caller, outputs added here)."""
    for op in ops:
        if converter_of(op.type) is None:
            raise _op_error(op, NOT_EXPORTABLE.get(op.type, "graphc has no ONNX converter for this op"))
        ctx.op = op
        start = len(ctx.nodes)
        ins = [values[t] for t in op.inputs]
        outs = list(converter_of(op.type)(ctx, op, ins))
        if len(outs) != len(op.outputs):
            raise AssertionError(f"converter for {op.type} returned {len(outs)} outputs, expected {len(op.outputs)}")
        made = {o for n in ctx.nodes[start:] for o in n.outputs}
        for k, (t, name) in enumerate(zip(op.outputs, outs)):
            if name in made:  # give the value the graphc tensor's name
                pretty = ctx.fresh(op.name if len(op.outputs) == 1 else f"{op.name}:{k}")
                _rename(ctx.nodes[start:], name, pretty)
                name = pretty
            values[t] = name
    ctx.op = None


def _input_dims(key: str, shape) -> list:
    return [f"{key}_dim{i}" if d is None else int(d) for i, d in enumerate(shape)]


def _value_info(onnx, name: str, dtype, dims):
    return onnx.helper.make_tensor_value_info(name, _onnx_dtype(onnx, dtype), dims)


def _rename(nodes: List[_Node], old: str, new: str) -> None:
    for n in nodes:
        n.inputs = [new if i == old else i for i in n.inputs]
        n.outputs = [new if o == old else o for o in n.outputs]


def _name_output_dims(onnx, model, frozen: FrozenGraph) -> None:
    """Unknown output dims take the input dim symbol ONNX shape inference finds for them
    (the batch dim of ``x`` stays ``x_dim0``), else a symbol of their own (``"y_dim0"``)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        found = {vi.name: vi for vi in inferred.graph.output}
    except Exception:  # noqa: BLE001 - naming dims is cosmetic
        found = {}
    symbols = {d.dim_param for i in model.graph.input for d in i.type.tensor_type.shape.dim if d.dim_param}
    for out in model.graph.output:
        dims = out.type.tensor_type.shape.dim
        other = found.get(out.name)
        other_dims = other.type.tensor_type.shape.dim if other is not None and other.type.HasField(
            "tensor_type") and other.type.tensor_type.HasField("shape") else []
        for i, d in enumerate(dims):
            if d.HasField("dim_value") or d.HasField("dim_param"):
                continue
            if len(other_dims) == len(dims) and other_dims[i].dim_param in symbols:
                d.dim_param = other_dims[i].dim_param
            else:
                d.dim_param = f"{out.name}_dim{i}"


def _subgraph_inputs(graph) -> set:
    """Every name the nodes of a GraphProto read, in nested subgraphs too (outer-scope reads)."""
    names = set()
    for node in graph.node:
        names.update(node.input)
        for attr in node.attribute:
            if attr.HasField("g"):
                names |= _subgraph_inputs(attr.g)
    return names


def _read_by_subgraphs(ctx: _Context) -> set:
    """The outer values the subgraphs of ``ctx``'s nodes (If, Loop) read by name."""
    names = set()
    for n in ctx.nodes:
        for value in n.attrs.values():
            if hasattr(value, "node"):
                names |= _subgraph_inputs(value)
    return names


def _drop_unused_initializers(ctx: _Context, keep: set) -> None:
    used = {i for n in ctx.nodes for i in n.inputs} | {o for n in ctx.nodes for o in n.outputs} | _read_by_subgraphs(ctx)
    for name in list(ctx.initializers):
        if name not in used and name not in keep:
            del ctx.initializers[name]


# --- transpose cleanup --------------------------------------------------------------------------
# Ops through which a Transpose can be moved (output = op applied elementwise to the input).
_UNARY_LAYOUT_FREE = {"Relu", "Neg", "Abs", "Sign", "Exp", "Log", "Sqrt", "Reciprocal", "Sin", "Cos", "Tanh",
                      "Sigmoid", "Erf", "Floor", "Ceil", "Round", "Not", "IsNaN", "IsInf", "Cast", "Identity",
                      "LeakyRelu"}
_BINARY_LAYOUT_FREE = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Equal", "Less", "Greater",
                       "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Where"}


def _optimize_transposes(ctx: _Context, graph_outputs: set) -> None:
    """Move each Transpose down through elementwise ops (whose other inputs are constants),
    and fold a Transpose of a Transpose, so that NHWC<->NCHW pairs around conv and pool
    layers cancel. Only rewrites whose values have no other consumer, and never renames a
    graph output."""
    changed = True
    while changed:
        changed = False
        consumers: Dict[str, List[_Node]] = {}
        for n in ctx.nodes:
            for i in n.inputs:
                consumers.setdefault(i, []).append(n)
        for t in ctx.nodes:
            if t.op_type != "Transpose":
                continue
            out = t.outputs[0]
            users = list({id(n): n for n in consumers.get(out, [])}.values())
            if out in graph_outputs or len(users) != 1:
                continue
            user = users[0]
            perm = list(t.attrs["perm"])
            if user.op_type == "Transpose":
                composed = [perm[p] for p in user.attrs["perm"]]
                if composed == list(range(len(composed))) and user.outputs[0] not in graph_outputs:
                    _replace_uses(ctx, user.outputs[0], t.inputs[0])
                    ctx.nodes.remove(user)
                elif composed == list(range(len(composed))):
                    user.op_type, user.inputs, user.attrs = "Identity", [t.inputs[0]], {}
                else:
                    user.inputs = [t.inputs[0]]
                    user.attrs = dict(user.attrs, perm=composed)
                ctx.nodes.remove(t)
                changed = True
                break
            if _push_through(ctx, t, user, perm):
                changed = True
                break


def _replace_uses(ctx: _Context, old: str, new: str) -> None:
    for n in ctx.nodes:
        n.inputs = [new if i == old else i for i in n.inputs]


def _push_through(ctx: _Context, t: _Node, user: _Node, perm: list) -> bool:
    """Rewrite ``user(Transpose(x))`` as ``Transpose(user(x))`` when ``user`` is elementwise
    and its other inputs are constants (transposed to match)."""
    rank = len(perm)
    out = t.outputs[0]
    if user.op_type in _UNARY_LAYOUT_FREE and len(user.inputs) == 1:
        pass
    elif user.op_type in _BINARY_LAYOUT_FREE:
        for i in user.inputs:
            if i == out:
                continue
            v = ctx.value_of(i)
            if v is None or v.ndim > rank:
                return False
    else:
        return False
    if len(user.outputs) != 1:
        return False
    inverse = list(np.argsort(perm))
    new_inputs = []
    for i in user.inputs:
        if i == out:
            new_inputs.append(t.inputs[0])
        else:
            v = ctx.value_of(i)
            v = v.reshape((1,) * (rank - v.ndim) + v.shape)
            new_inputs.append(ctx.const(_contiguous(np.transpose(v, inverse)), hint=i + "_T"))
    y = user.outputs[0]
    inner = ctx.fresh(y + "_pre_transpose")
    user.inputs = new_inputs
    user.outputs = [inner]
    t.inputs = [inner]
    t.outputs = [y]
    # keep the node list topological: the Transpose now comes after ``user``
    ctx.nodes.remove(t)
    ctx.nodes.insert(ctx.nodes.index(user) + 1, t)
    return True


# --- converters: sources and pass-throughs ------------------------------------------------------
@converts("const")
def _const(ctx, op, ins):
    return [ctx.const(np.asarray(op.attrs["value"]), hint=op.name)]


@converts("placeholder")
def _placeholder(ctx, op, ins):
    raise ctx.fail("it is not one of the inputs (pass it in inputs=)")


@converts("placeholder_with_default", "identity", "stop_gradient")
def _pass_through(ctx, op, ins):
    return [ins[0]]


@converts("fill")
def _fill(ctx, op, ins):
    return [ctx.node("Expand", ins[0], ctx.spec_vector(op.attrs["shape"], ins, op))]


@converts("shape")
def _shape(ctx, op, ins):
    s = ctx.node("Shape", ins[0])
    out = op.outputs[0].dtype.np
    return [s if out == np.int64 else ctx.cast(s, out)]


# --- elementwise ------------------------------------------------------------------------------
_SIMPLE_UNARY = {"abs": "Abs", "sign": "Sign", "exp": "Exp", "log": "Log", "sqrt": "Sqrt",
                 "reciprocal": "Reciprocal", "sin": "Sin", "cos": "Cos", "tanh": "Tanh", "sigmoid": "Sigmoid",
                 "erf": "Erf", "logical_not": "Not"}


@converts(*_SIMPLE_UNARY)
def _simple_unary(ctx, op, ins):
    return [ctx.node(_SIMPLE_UNARY[op.type], ins[0])]


def _dtype(op, i=0) -> np.dtype:
    return op.inputs[i].dtype.np


@converts("negative")
def _negative(ctx, op, ins):
    if _dtype(op).kind == "u":  # ONNX Neg has no unsigned types; 0 - x wraps as NumPy does
        return [ctx.node("Sub", ctx.scalar(0, _dtype(op)), ins[0])]
    return [ctx.node("Neg", ins[0])]


@converts("floor", "ceil", "round")
def _rounding(ctx, op, ins):
    if _dtype(op).kind != "f":
        return [ins[0]]  # integers are already whole
    return [ctx.node({"floor": "Floor", "ceil": "Ceil", "round": "Round"}[op.type], ins[0])]  # Round: half to even


@converts("rsqrt")
def _rsqrt(ctx, op, ins):
    return [ctx.node("Reciprocal", ctx.node("Sqrt", ins[0]))]


@converts("square")
def _square(ctx, op, ins):
    return [ctx.node("Mul", ins[0], ins[0])]


def _expm1(ctx, x: str, dtype) -> str:
    """expm1 without cancellation (Kahan): (e^x - 1) * (x / log(e^x)), exact at the edges
    (x / log(e^x) is near 1, so nothing overflows before e^x does)."""
    one, minus_one = ctx.scalar(1, dtype), ctx.scalar(-1, dtype)
    u = ctx.node("Exp", x)
    um1 = ctx.node("Sub", u, one)
    ratio = ctx.node("Mul", um1, ctx.node("Div", x, ctx.node("Log", u)))
    out = ctx.node("Where", ctx.node("Equal", um1, minus_one), minus_one, ratio)
    out = ctx.node("Where", ctx.node("Equal", u, one), x, out)
    return ctx.node("Where", ctx.node("IsInf", u, detect_negative=0), u, out)


def _log1p(ctx, x: str, dtype) -> str:
    """log1p without cancellation (Kahan): log(1 + x) * (x / ((1 + x) - 1))."""
    one = ctx.scalar(1, dtype)
    u = ctx.node("Add", x, one)
    ratio = ctx.node("Mul", ctx.node("Log", u), ctx.node("Div", x, ctx.node("Sub", u, one)))
    out = ctx.node("Where", ctx.node("Equal", u, one), x, ratio)
    return ctx.node("Where", ctx.node("IsInf", u, detect_negative=0), u, out)


@converts("expm1")
def _expm1_op(ctx, op, ins):
    return [_expm1(ctx, ins[0], _dtype(op))]


@converts("log1p")
def _log1p_op(ctx, op, ins):
    return [_log1p(ctx, ins[0], _dtype(op))]


@converts("isnan")
def _isnan(ctx, op, ins):
    if _dtype(op).kind == "f":
        return [ctx.node("IsNaN", ins[0])]
    return [ctx.constant_of_shape(ins[0], False, np.bool_)]


@converts("isfinite")
def _isfinite(ctx, op, ins):
    if _dtype(op).kind == "f":
        return [ctx.node("Not", ctx.node("Or", ctx.node("IsNaN", ins[0]), ctx.node("IsInf", ins[0])))]
    return [ctx.constant_of_shape(ins[0], True, np.bool_)]


_SIMPLE_BINARY = {"add": "Add", "subtract": "Sub", "multiply": "Mul", "divide": "Div",
                  "logical_and": "And", "logical_or": "Or", "equal": "Equal"}


@converts(*_SIMPLE_BINARY)
def _simple_binary(ctx, op, ins):
    return [ctx.node(_SIMPLE_BINARY[op.type], ins[0], ins[1])]


@converts("not_equal")
def _not_equal(ctx, op, ins):
    return [ctx.node("Not", ctx.node("Equal", ins[0], ins[1]))]


_COMPARE = {"less": "Less", "less_equal": "LessOrEqual", "greater": "Greater", "greater_equal": "GreaterOrEqual"}


@converts(*_COMPARE)
def _compare(ctx, op, ins):
    a, b = ins
    if _dtype(op).kind == "b":  # ONNX orders numbers only: False < True as 0 < 1
        a, b = ctx.cast(a, np.uint8), ctx.cast(b, np.uint8)
    return [ctx.node(_COMPARE[op.type], a, b)]


@converts("maximum", "minimum")
def _max_min(ctx, op, ins):
    if _dtype(op).kind == "b":
        return [ctx.node("Or" if op.type == "maximum" else "And", ins[0], ins[1])]
    # ONNX Max/Min propagate NaN, as np.maximum/np.minimum do
    return [ctx.node("Max" if op.type == "maximum" else "Min", ins[0], ins[1])]


@converts("clip_by_value")
def _clip(ctx, op, ins):
    # ONNX Clip wants scalar bounds; graphc's broadcast like np.minimum(np.maximum(x, lo), hi)
    return [ctx.node("Min", ctx.node("Max", ins[0], ins[1]), ins[2])]


# --- control flow: bodies become ONNX subgraphs -------------------------------------------------
def _child(ctx: _Context) -> _Context:
    """A context for a subgraph: its own nodes and initializers, the model's names (ONNX
    names are unique across a model, subgraphs included)."""
    child = _Context(ctx.onnx, ctx.opset, ())
    child.used, child.node_names = ctx.used, ctx.node_names
    return child


def _inline(ctx: _Context, body, bound: list) -> list:
    """Convert ``body``'s ops into ``ctx`` with its inputs bound to the ONNX names ``bound``
    (values of an enclosing graph are visible in a subgraph by name); its outputs' names."""
    values = dict(zip(body.inputs, bound))
    outer_op = ctx.op
    _emit(ctx, body.ops, values)
    ctx.op = outer_op
    return [values[t] for t in body.outputs]


def _subgraph(ctx: _Context, name: str, inputs: list, outputs: list, child: _Context):
    """A GraphProto of ``child``'s nodes; ``inputs``/``outputs`` are (onnx name, dtype, dims)
    (dims None: unknown). An output not made by a node of this subgraph goes through Identity."""
    helper, onnx = ctx.onnx.helper, ctx.onnx
    made = {o for n in child.nodes for o in n.outputs}
    names = []
    for out, dtype, _ in outputs:
        if out not in made:
            fresh = child.fresh(f"{name}/out")
            child.nodes.append(_Node("Identity", [out], [fresh], child._node_name(f"{name}/out"), {}, ""))
            out = fresh
        names.append(out)
    nodes = []
    for n in child.nodes:
        node = helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, **n.attrs)
        node.doc_string = n.doc
        nodes.append(node)
    inits = [onnx.numpy_helper.from_array(_contiguous(v), k) for k, v in child.initializers.items()]
    return helper.make_graph(
        nodes, name, [_value_info(onnx, n, dt, dims) for n, dt, dims in inputs],
        [_value_info(onnx, n, dt, dims) for n, (_, dt, dims) in zip(names, outputs)], initializer=inits)


def _dims(t) -> Optional[list]:
    return [None if d is None else int(d) for d in t.shape]


@converts("cond")
def _cond(ctx, op, ins):
    branches = []
    for key in ("then", "else"):
        body = op.attrs[key]
        child = _child(ctx)
        child.op = ctx.op
        outs = _inline(child, body, list(ins[1:]))
        branches.append(_subgraph(ctx, f"{op.name}/{key}", [],
                                  [(o, t.dtype.np, None) for o, t in zip(outs, op.outputs)], child))
    outs = ctx.node("If", ins[0], outputs=len(op.outputs), then_branch=branches[0], else_branch=branches[1])
    return outs if len(op.outputs) > 1 else [outs]


@converts("while_loop")
def _while_loop(ctx, op, ins):
    """ONNX Loop tests its condition at the end of each iteration: the cond runs once before
    the loop (in the enclosing graph) and again in the body on the new loop variables. A
    loop-carried counter gives graphc's trip count; with ``history``, the entering values
    are scan outputs."""
    n, body, cond_body = op.attrs["n_vars"], op.attrs["body"], op.attrs["cond"]
    n_in = len(body.inputs)
    variables, captured = list(ins[:n]), list(ins[n:n_in])
    limit = ctx.cast(ins[n_in], np.int64) if op.attrs["has_limit"] else ""
    first = _inline(ctx, cond_body, variables + captured)[0]
    child = _child(ctx)
    child.op = ctx.op
    step, go_on, count = (child.fresh(f"{op.name}/{k}") for k in ("iteration", "cond_in", "count"))
    entering = [child.fresh(f"{op.name}/v{k}") for k in range(n)]
    new = _inline(child, body, entering + captured)
    again = _inline(child, cond_body, new[:n] + captured)[0]
    counted = child.node("Add", count, child.const(np.int64(1)))
    history = [child.node("Identity", v) for v in entering] if op.attrs.get("history") else []
    stacked = [child.node("Identity", v) for v in new[n:]]  # (a value may also be a loop variable's)
    types = [t for t in op.outputs[:n]]
    graph = _subgraph(
        ctx, f"{op.name}/body",
        [(step, np.int64, []), (go_on, np.bool_, []), (count, np.int64, [])]
        + [(v, t.dtype.np, _dims(t)) for v, t in zip(entering, types)],
        [(again, np.bool_, []), (counted, np.int64, [])] + [(v, t.dtype.np, None) for v, t in zip(new, types)]
        + [(h, t.dtype.np, None) for h, t in zip(history, types)]
        + [(v, t.dtype.np, None) for v, t in zip(stacked, body.output_types[n:])], child)
    outs = ctx.node("Loop", limit, first, ctx.const(np.int64(0)), *variables,
                    outputs=1 + n + len(history) + len(stacked), body=graph)
    return list(outs[1:1 + n]) + [outs[0]] + list(outs[1 + n:])


@converts("where")
def _where(ctx, op, ins):
    c, x, y = ins
    if _dtype(op, 1).kind == "b":  # (c and x) or (not c and y): bool Where is not in every runtime
        return [ctx.node("Or", ctx.node("And", c, x), ctx.node("And", ctx.node("Not", c), y))]
    return [ctx.node("Where", c, x, y)]


@converts("cast")
def _cast(ctx, op, ins):
    return [ctx.cast(ins[0], op.attrs["dtype"].np)]


def _float_divmod(ctx, a: str, b: str, dtype):
    """NumPy's npy_divmod on C fmod: (fmod(a, b), where the remainder must move to the
    divisor's sign). Signs of zero results are not reproduced (nor kept by every runtime)."""
    zero = ctx.scalar(0, dtype)
    mod = ctx.node("Mod", a, b, fmod=1)
    mod_nonzero = ctx.node("Not", ctx.node("Equal", mod, zero))
    differ = ctx.node("Xor", ctx.node("Less", b, zero), ctx.node("Less", mod, zero))
    return mod, ctx.node("And", mod_nonzero, differ)


@converts("floordiv")
def _floordiv(ctx, op, ins):
    a, b = ins
    dtype = _dtype(op)
    if dtype.kind == "f":  # (a - mod) / b is nearly whole: adjust to the floor and snap to it
        mod, adjust = _float_divmod(ctx, a, b, dtype)
        one = ctx.scalar(1, dtype)
        div = ctx.node("Div", ctx.node("Sub", a, mod), b)
        div = ctx.node("Where", adjust, ctx.node("Sub", div, one), div)
        floor = ctx.node("Floor", div)
        up = ctx.node("Greater", ctx.node("Sub", div, floor), ctx.scalar(0.5, dtype))
        snapped = ctx.node("Where", up, ctx.node("Add", floor, one), floor)
        by_zero = ctx.node("Equal", b, ctx.scalar(0, dtype))  # x // 0.0 is x / 0.0
        return [ctx.node("Where", by_zero, ctx.node("Div", a, b), snapped)]
    return [_int_floordiv(ctx, a, b, dtype)]


def _int_guard(ctx, b: str, dtype):
    """(b == 0, b == 0 or b == -1 for signed types, a divisor safe for ONNX Div/Mod)."""
    zero, one = ctx.scalar(0, dtype), ctx.scalar(1, dtype)
    by_zero = ctx.node("Equal", b, zero)
    bad = by_zero
    if dtype.kind == "i":  # MIN // -1 traps in C
        bad = ctx.node("Or", by_zero, ctx.node("Equal", b, ctx.scalar(-1, dtype)))
    return by_zero, bad, ctx.node("Where", bad, one, b)


def _int_floordiv(ctx, a: str, b: str, dtype) -> str:
    # NumPy: x // 0 is 0, MIN // -1 wraps to MIN; ONNX Div truncates toward zero
    by_zero, bad, safe = _int_guard(ctx, b, dtype)
    zero = ctx.scalar(0, dtype)
    q = ctx.node("Div", a, safe)
    if dtype.kind == "i":
        r = ctx.node("Sub", a, ctx.node("Mul", q, safe))
        adjust = ctx.node("And", ctx.node("Not", ctx.node("Equal", r, zero)),
                          ctx.node("Xor", ctx.node("Less", r, zero), ctx.node("Less", safe, zero)))
        q = ctx.node("Where", adjust, ctx.node("Sub", q, ctx.scalar(1, dtype)), q)
        q = ctx.node("Where", ctx.node("Equal", b, ctx.scalar(-1, dtype)), ctx.node("Neg", a), q)
    return ctx.node("Where", by_zero, zero, q)


@converts("mod")
def _mod(ctx, op, ins):
    a, b = ins
    dtype = _dtype(op)
    if dtype.kind == "f":
        mod, adjust = _float_divmod(ctx, a, b, dtype)
        return [ctx.node("Where", adjust, ctx.node("Add", mod, b), mod)]
    # ONNX Mod (fmod=0) on integers takes the divisor's sign, as Python does; x % 0 is 0 in NumPy
    _, bad, safe = _int_guard(ctx, b, dtype)
    return [ctx.node("Where", bad, ctx.scalar(0, dtype), ctx.node("Mod", a, safe))]


@converts("pow")
def _pow(ctx, op, ins):
    dtype = _dtype(op)
    if dtype.kind == "f":
        return [ctx.node("Pow", ins[0], ins[1])]
    return [_int_pow(ctx, ins[0], ins[1], dtype)]


def _int_pow(ctx, base: str, exponent: str, dtype) -> str:
    """Square and multiply with wrapping integer products, as NumPy computes integer powers
    (ONNX Pow on integers goes through double and loses exactness)."""
    one, two = ctx.scalar(1, dtype), ctx.scalar(2, dtype)
    known = ctx.value_of(exponent)
    if known is not None:
        bits = max(1, int(np.max(known, initial=0)).bit_length())
    else:
        bits = dtype.itemsize * 8 - (1 if dtype.kind == "i" else 0)
    result, e = one, exponent
    for k in range(bits):
        if known is not None:
            bit = ctx.const((known.astype(np.int64) >> k) & 1 == 1)
        else:
            bit = ctx.node("Equal", ctx.node("Mod", e, two), one)
            e = ctx.node("Div", e, two)
        result = ctx.node("Mul", result, ctx.node("Where", bit, base, one))
        if k + 1 < bits:
            base = ctx.node("Mul", base, base)
    return result


# --- nn activations -----------------------------------------------------------------------------
@converts("relu")
def _relu(ctx, op, ins):
    dtype = _dtype(op)
    if dtype.kind == "f":
        return [ctx.node("Relu", ins[0])]  # propagates NaN, as np.maximum(x, 0)
    if dtype.kind == "u":
        return [ins[0]]
    return [ctx.node("Max", ins[0], ctx.scalar(0, dtype))]


@converts("leaky_relu")
def _leaky_relu(ctx, op, ins):
    dtype = _dtype(op)
    alpha = float(op.attrs["alpha"])
    if dtype == np.float32:  # the attribute is a float32, as graphc's alpha is for float32 inputs
        return [ctx.node("LeakyRelu", ins[0], alpha=alpha)]
    x = ins[0]
    return [ctx.node("Where", ctx.node("Greater", x, ctx.scalar(0, dtype)), x,
                     ctx.node("Mul", ctx.scalar(alpha, dtype), x))]


@converts("elu")
def _elu(ctx, op, ins):
    # ONNX Elu computes alpha * (exp(x) - 1), which loses precision near 0: build it from expm1
    dtype = _dtype(op)
    x = ins[0]
    negative = ctx.node("Mul", ctx.scalar(op.attrs["alpha"], dtype),
                        _expm1(ctx, ctx.node("Min", x, ctx.scalar(0, dtype)), dtype))
    return [ctx.node("Where", ctx.node("Greater", x, ctx.scalar(0, dtype)), x, negative)]


@converts("softplus")
def _softplus(ctx, op, ins):
    # np.logaddexp(0, x) = max(x, 0) + log1p(exp(-|x|)); ONNX Softplus is log(exp(x) + 1)
    dtype = _dtype(op)
    x = ins[0]
    tail = _log1p(ctx, ctx.node("Exp", ctx.node("Neg", ctx.node("Abs", x))), dtype)
    return [ctx.node("Add", ctx.node("Relu", x), tail)]


@converts("gelu")
def _gelu(ctx, op, ins):
    dtype = _dtype(op)
    x = ins[0]

    def c(v):
        return ctx.scalar(v, dtype)
    half_x = ctx.node("Mul", c(0.5), x)
    if op.attrs["approximate"]:
        cubic = ctx.node("Mul", ctx.node("Mul", ctx.node("Mul", c(0.044715), x), x), x)
        inner = ctx.node("Mul", c(np.sqrt(2.0 / np.pi)), ctx.node("Add", x, cubic))
        return [ctx.node("Mul", half_x, ctx.node("Add", c(1), ctx.node("Tanh", inner)))]
    erf = ctx.node("Erf", ctx.node("Mul", x, c(1 / np.sqrt(2.0))))
    return [ctx.node("Mul", half_x, ctx.node("Add", c(1), erf))]


@converts("softmax", "log_softmax")
def _softmax(ctx, op, ins):
    return [ctx.node("Softmax" if op.type == "softmax" else "LogSoftmax", ins[0], axis=int(op.attrs["axis"]))]


@converts("softmax_cross_entropy_with_logits")
def _softmax_xent(ctx, op, ins):
    labels, logits = ins
    dtype = _dtype(op, 1)
    axis = int(op.attrs["axis"])
    logp = ctx.node("LogSoftmax", logits, axis=axis)
    zero = ctx.scalar(0, dtype)
    terms = ctx.node("Where", ctx.node("Equal", labels, zero), zero, ctx.node("Mul", labels, logp))
    return [ctx.node("Neg", ctx.reduce("ReduceSum", terms, [axis], keepdims=False))]



@converts("fused_batch_norm")
def _fused_batch_norm(ctx, op, ins):
    """Training-mode batch norm, decomposed into ReduceMean, Sub, Mul, Sqrt, Div: ONNX's
    BatchNormalization with training_mode=1 (opset 14+) outputs running statistics blended by
    a momentum and the biased variance, not TF1's batch mean and unbiased variance, and ONNX
    Runtime implements training mode only in its training builds. (Inference mode is made of
    elementwise ops in graphc and exports as them.)"""
    x, scale, offset = ins
    axis, rank = int(op.attrs["axis"]), op.inputs[0].shape.rank
    dtype = _dtype(op)
    others = [k for k in range(rank) if k != axis]
    channels = ctx.i64([-1] + [1] * (rank - 1 - axis))
    mean = ctx.reduce("ReduceMean", x, others, keepdims=True)
    centered = ctx.node("Sub", x, mean)
    var = ctx.reduce("ReduceMean", ctx.node("Mul", centered, centered), others, keepdims=True)
    inv = ctx.node("Div", ctx.scalar(1, dtype),
                   ctx.node("Sqrt", ctx.node("Add", var, ctx.scalar(op.attrs["epsilon"], dtype))))
    k = ctx.node("Mul", inv, ctx.node("Reshape", scale, channels))
    y = ctx.node("Add", ctx.node("Mul", centered, k), ctx.node("Reshape", offset, channels))
    dims = [op.inputs[0].shape[a] for a in others]
    if None not in dims:
        n = int(np.prod(dims, dtype=np.int64))
        factor = ctx.scalar(n / (n - 1) if n > 1 else 1.0, dtype)
    else:  # TF1's n / (n - 1), 1 for n <= 1, from the run-time shape
        count = ctx.cast(ctx.node("ReduceProd", ctx.node("Gather", ctx.node("Shape", x), ctx.i64(others)),
                                  keepdims=0), dtype)
        factor = ctx.node("Div", count, ctx.node("Max", ctx.node("Sub", count, ctx.scalar(1, dtype)),
                                                  ctx.scalar(1, dtype)))
    flat = ctx.i64([-1])
    return [y, ctx.node("Reshape", mean, flat), ctx.node("Mul", ctx.node("Reshape", var, flat), factor),
            ctx.node("Reshape", inv, flat)]

@converts("sparse_softmax_cross_entropy_with_logits")
def _sparse_xent(ctx, op, ins):
    labels, logits = ins
    rank = op.inputs[1].shape.rank
    if _dtype(op, 0) not in (np.int32, np.int64):
        labels = ctx.cast(labels, np.int64)
    logp = ctx.node("LogSoftmax", logits, axis=rank - 1)
    index = ctx.node("Unsqueeze", labels, ctx.i64([rank - 1]))
    picked = ctx.node("GatherElements", logp, index, axis=rank - 1)
    return [ctx.node("Neg", ctx.node("Squeeze", picked, ctx.i64([rank - 1])))]


# --- reductions -------------------------------------------------------------------------------
def _nan_fix(ctx, x: str, reduced: str, dtype, axes, keepdims) -> str:
    """NaN where any reduced element is NaN (ONNX Runtime's ReduceMax/Min and MaxPool may skip NaN)."""
    flags = ctx.cast(ctx.node("IsNaN", x), np.uint8)
    any_nan = ctx.cast(ctx.reduce("ReduceMax", flags, axes, keepdims), np.bool_)
    return ctx.node("Where", any_nan, ctx.scalar(np.nan, dtype), reduced)


def _any(ctx, x: str, axes, keepdims) -> str:
    total = ctx.reduce("ReduceSum", ctx.cast(x, np.int64), axes, keepdims)  # empty -> 0 -> False
    return ctx.node("Greater", total, ctx.scalar(0, np.int64))


@converts("reduce_sum", "reduce_prod", "reduce_mean", "reduce_max", "reduce_min", "reduce_logsumexp",
          "reduce_any", "reduce_all")
def _reduction(ctx, op, ins):
    x = ins[0]
    axes, keepdims = list(op.attrs["axes"]), bool(op.attrs["keepdims"])
    dtype = _dtype(op)
    if not axes:
        return [x]  # ONNX would read "no axes" as "all axes"
    kind = op.type[len("reduce_"):]
    if kind == "any" or (kind == "max" and dtype.kind == "b"):
        return [_any(ctx, x, axes, keepdims)]
    if kind == "all" or (kind == "min" and dtype.kind == "b"):
        return [ctx.node("Not", _any(ctx, ctx.node("Not", x), axes, keepdims))]
    if kind == "logsumexp":
        return [_logsumexp(ctx, x, dtype, axes, keepdims)]
    onnx_op = {"sum": "ReduceSum", "prod": "ReduceProd", "mean": "ReduceMean", "max": "ReduceMax",
               "min": "ReduceMin"}[kind]
    if kind in ("sum", "prod") and dtype in (np.int8, np.uint8):  # not ONNX types here: wrap as NumPy does
        wide = ctx.reduce(onnx_op, ctx.cast(x, np.int64), axes, keepdims)
        return [ctx.cast(wide, dtype)]
    out = ctx.reduce(onnx_op, x, axes, keepdims)
    if kind in ("max", "min") and dtype.kind == "f":
        out = _nan_fix(ctx, x, out, dtype, axes, keepdims)
    return [out]


def _logsumexp(ctx, x: str, dtype, axes, keepdims) -> str:
    # graphc's: shift by the max where it is finite (ONNX ReduceLogSumExp need not be stable)
    m = _nan_fix(ctx, x, ctx.reduce("ReduceMax", x, axes, True), dtype, axes, True)
    finite = ctx.node("Not", ctx.node("Or", ctx.node("IsNaN", m), ctx.node("IsInf", m)))
    shift = ctx.node("Where", finite, m, ctx.scalar(0, dtype))
    total = ctx.reduce("ReduceSum", ctx.node("Exp", ctx.node("Sub", x, shift)), axes, True)
    out = ctx.node("Add", ctx.node("Log", total), shift)
    return out if keepdims else ctx.node("Squeeze", out, ctx.i64(axes))


@converts("argmax", "argmin")
def _arg(ctx, op, ins):
    x = ins[0]
    dtype = _dtype(op)
    axis, keepdims = op.attrs["axis"], bool(op.attrs["keepdims"])
    rank = op.inputs[0].shape.rank
    if axis is None:  # over the flattened tensor
        x = ctx.node("Reshape", x, ctx.i64([-1]))
        axis, flat_keep = 0, False
    else:
        flat_keep = keepdims
    if dtype.kind == "b":
        x = ctx.cast(x, np.uint8)
    onnx_op = "ArgMax" if op.type == "argmax" else "ArgMin"
    out = ctx.node(onnx_op, x, axis=int(axis), keepdims=int(flat_keep), select_last_index=0)
    if dtype.kind == "f":  # NumPy: the first NaN wins
        flags = ctx.cast(ctx.node("IsNaN", x), np.uint8)
        first_nan = ctx.node("ArgMax", flags, axis=int(axis), keepdims=int(flat_keep), select_last_index=0)
        any_nan = ctx.cast(ctx.reduce("ReduceMax", flags, [axis], flat_keep), np.bool_)
        out = ctx.node("Where", any_nan, first_nan, out)
    if op.attrs["axis"] is None and keepdims:
        out = ctx.node("Reshape", out, ctx.i64([1] * rank))
    want = op.attrs["output_type"].np
    return [out if want == np.int64 else ctx.cast(out, want)]


# --- linear algebra -----------------------------------------------------------------------------
@converts("matmul")
def _matmul(ctx, op, ins):
    a, b = ins
    dtype = _dtype(op)
    for i, flag in ((0, "transpose_a"), (1, "transpose_b")):
        if op.attrs[flag]:
            rank = op.inputs[i].shape.rank
            perm = list(range(rank - 2)) + [rank - 1, rank - 2]
            if i == 0:
                a = ctx.transpose(a, perm)
            else:
                b = ctx.transpose(b, perm)
    if dtype in (np.int8, np.uint8):  # no 8-bit MatMul in ONNX: int32 products wrap to the same bytes
        return [ctx.cast(ctx.node("MatMul", ctx.cast(a, np.int32), ctx.cast(b, np.int32)), dtype)]
    return [ctx.node("MatMul", a, b)]


# --- shape ops ----------------------------------------------------------------------------------
@converts("reshape")
def _reshape(ctx, op, ins):
    # allowzero: a 0 in graphc's shape means size 0, not "copy the input's dim"
    return [ctx.node("Reshape", ins[0], ctx.spec_vector(op.attrs["shape"], ins, op), allowzero=1)]


@converts("broadcast_to")
def _broadcast_to(ctx, op, ins):
    return [ctx.node("Expand", ins[0], ctx.spec_vector(op.attrs["shape"], ins, op))]


@converts("transpose")
def _transpose(ctx, op, ins):
    return [ctx.node("Transpose", ins[0], perm=[int(p) for p in op.attrs["perm"]])]


@converts("expand_dims")
def _expand_dims(ctx, op, ins):
    return [ctx.node("Unsqueeze", ins[0], ctx.i64([op.attrs["axis"]]))]


@converts("squeeze")
def _squeeze(ctx, op, ins):
    axes = list(op.attrs["axes"])
    if not axes:
        return [ins[0]]  # ONNX would squeeze every size-1 axis
    return [ctx.node("Squeeze", ins[0], ctx.i64(axes))]


@converts("concat")
def _concat(ctx, op, ins):
    return [ctx.node("Concat", *ins, axis=int(op.attrs["axis"]))]


@converts("split")
def _split(ctx, op, ins):
    x = ins[0]
    axis = int(op.attrs["axis"])
    parts = len(op.outputs)
    static = [t.shape[axis] for t in op.outputs]
    if None not in static:
        sizes = ctx.i64(static)
    elif op.attrs["num"] is not None:
        part = ctx.node("Div", ctx.dim(x, axis), ctx.i64([parts]))
        sizes = ctx.node("Expand", part, ctx.i64([parts]))
    else:
        entries, rest = [], None
        for k, e in enumerate(op.attrs["sizes"]):
            if e == -1:
                rest = k
                entries.append(None)
            elif is_dim_ref(e):
                _, i, ax = e
                known = op.inputs[i].shape[ax]
                entries.append(int(known) if known is not None else ctx.dim(ins[i], ax % op.inputs[i].shape.rank))
            else:
                entries.append(int(e))
        if rest is not None:
            left = ctx.dim(x, axis)
            for k, e in enumerate(entries):
                if k != rest:
                    left = ctx.node("Sub", left, e if isinstance(e, str) else ctx.i64([e]))
            entries[rest] = left
        sizes = ctx.shape_vector(entries)
    outs = ctx.node("Split", x, sizes, axis=axis, outputs=parts)
    return [outs] if parts == 1 else outs


@converts("tile")
def _tile(ctx, op, ins):
    return [ctx.node("Tile", ins[0], ctx.i64(op.attrs["multiples"]))]


@converts("pad")
def _pad(ctx, op, ins):
    x = ins[0]
    pads = [tuple(p) for p in op.attrs["paddings"]]
    if not pads or all(b == 0 and a == 0 for b, a in pads):
        return [x]
    mode = op.attrs["mode"]
    if mode == "CONSTANT":
        value = ctx.scalar(op.attrs["constant_values"], _dtype(op))
        return [ctx.node("Pad", x, ctx.i64([b for b, _ in pads] + [a for _, a in pads]), value, mode="constant")]
    if mode == "REFLECT":
        return [ctx.node("Pad", x, ctx.i64([b for b, _ in pads] + [a for _, a in pads]), mode="reflect")]
    # SYMMETRIC (edge repeated) has no ONNX mode: mirrored slices around each axis
    for axis, (b, a) in enumerate(pads):
        pieces = []
        if b:
            pieces.append(_slice(ctx, x, [b - 1], [_INT64_MIN], [axis], [-1]))
        pieces.append(x)
        if a:
            pieces.append(_slice(ctx, x, [-1], [-a - 1], [axis], [-1]))
        if len(pieces) > 1:
            x = ctx.node("Concat", *pieces, axis=axis)
    return [x]


def _slice(ctx, x, starts, ends, axes, steps) -> str:
    return ctx.node("Slice", x, ctx.i64(starts), ctx.i64(ends), ctx.i64(axes), ctx.i64(steps))


@converts("strided_slice")
def _strided_slice(ctx, op, ins):
    x = ins[0]
    shape = op.inputs[0].shape
    starts, ends, axes, steps, squeeze, new = [], [], [], [], [], []
    axis, out_pos = 0, 0
    for entry in op.attrs["index"]:
        kind = entry[0]
        if kind == "new":
            new.append(out_pos)
            out_pos += 1
            continue
        dim = shape[axis]
        if kind == "int":
            i = entry[1]
            starts.append(i)
            ends.append(_INT64_MAX if i == -1 else i + 1)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
        else:
            _, start, stop, step = entry
            step = 1 if step is None else step
            if start is None and stop is None and step == 1:
                axis += 1
                out_pos += 1
                continue
            if dim is not None:
                lo, hi, st = slice(start, stop, step).indices(dim)
                if len(range(lo, hi, st)) == 0:
                    lo, hi, st = 0, 0, 1
                elif hi < 0:
                    hi = _INT64_MIN  # "before index 0" (ONNX would read -1 as the last element)
            else:
                st = step
                lo = start if start is not None else (0 if step > 0 else _INT64_MAX)
                hi = stop if stop is not None else (_INT64_MAX if step > 0 else _INT64_MIN)
                if step < 0 and start is not None and start < 0:
                    # start + size < 0: Python's slice is empty, while ONNX would clamp the start to 0
                    lo_rt = ctx.node("Add", ctx.dim(x, axis), ctx.i64([start]))
                    before = ctx.node("Less", lo_rt, ctx.i64([0]))
                    lo = ctx.node("Where", before, ctx.i64([0]), lo_rt)
                    hi = ctx.node("Where", before, ctx.i64([0]), ctx.i64([hi]))
            starts.append(lo)
            ends.append(hi)
            axes.append(axis)
            steps.append(st)
            out_pos += 1
        axis += 1
    if axes:
        x = ctx.node("Slice", x, ctx.shape_vector(starts), ctx.shape_vector(ends), ctx.i64(axes), ctx.i64(steps))
    if squeeze:
        x = ctx.node("Squeeze", x, ctx.i64(squeeze))
    if new:
        x = ctx.node("Unsqueeze", x, ctx.i64(new))
    return [x]


@converts("gather")
def _gather(ctx, op, ins):
    params, indices = ins
    if _dtype(op, 1) not in (np.int32, np.int64):
        indices = ctx.cast(indices, np.int64)
    return [ctx.node("Gather", params, indices, axis=int(op.attrs["axis"]))]


@converts("one_hot")
def _one_hot(ctx, op, ins):
    # ONNX OneHot counts negative indices from the end; graphc (TensorFlow) gives all off_value
    depth, axis = int(op.attrs["depth"]), int(op.attrs["axis"])
    rank = op.inputs[0].shape.rank
    dtype = op.outputs[0].dtype.np
    indices = ins[0] if _dtype(op) == np.int64 else ctx.cast(ins[0], np.int64)
    expanded = ctx.node("Unsqueeze", indices, ctx.i64([axis]))
    classes = ctx.const(np.arange(depth, dtype=np.int64).reshape((depth,) + (1,) * (rank - axis)))
    hot = ctx.node("Equal", expanded, classes)
    on, off = ctx.scalar(op.attrs["on_value"], dtype), ctx.scalar(op.attrs["off_value"], dtype)
    if dtype == np.bool_:
        return [ctx.node("Or", ctx.node("And", hot, on), ctx.node("And", ctx.node("Not", hot), off))]
    return [ctx.node("Where", hot, on, off)]


# --- convolution and pooling (NHWC in graphc, NCHW in ONNX) ---------------------------------------
_TO_NCHW, _TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def _same_padding(ctx, op, x_nchw: str, sizes, kernel, strides, dilations, pad_value, dtype):
    """ONNX attributes (and maybe a padded input) for TensorFlow's SAME padding.

    Known spatial sizes get explicit pads. Unknown ones use auto_pad=SAME_UPPER (the same
    split: the extra pixel after) where that is exact, else an explicit Pad node with pads
    computed from the run-time size (``pad_value`` is what can never change the result), or
    an ExportError if there is no such value."""
    if all(s is not None for s in sizes):
        before, after = [], []
        for size, k, s, d in zip(sizes, kernel, strides, dilations):
            _, (b, a) = conv_output_size(size, k, s, d, "SAME")
            before.append(b)
            after.append(a)
        return x_nchw, {"pads": before + after}
    effective = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    # SAME_UPPER computes the pad without clamping it at zero, and some runtimes refuse dilation with it
    if all(e >= s for e, s in zip(effective, strides)) and all(d == 1 for d in dilations):
        return x_nchw, {"auto_pad": "SAME_UPPER"}
    if pad_value is None:
        raise ctx.fail(f"SAME padding with strides {tuple(strides)} larger than the window {tuple(effective)} on a "
                       "spatial axis of unknown size needs a run-time pad that average pooling must not count; "
                       "give the input a static height and width")
    before, after = [], []
    for axis, (size, e, s) in enumerate(zip(sizes, effective, strides)):
        if size is not None:
            _, (b, a) = conv_output_size(size, e, s, 1, "SAME")
            before.append(ctx.i64([b]))
            after.append(ctx.i64([a]))
            continue
        n = ctx.dim(x_nchw, 2 + axis)
        out = ctx.node("Div", ctx.node("Add", n, ctx.i64([s - 1])), ctx.i64([s]))
        total = ctx.node("Sub", ctx.node("Add", ctx.node("Mul", ctx.node("Sub", out, ctx.i64([1])), ctx.i64([s])),
                                         ctx.i64([e])), n)
        total = ctx.node("Max", total, ctx.i64([0]))
        b = ctx.node("Div", total, ctx.i64([2]))
        before.append(b)
        after.append(ctx.node("Sub", total, b))
    zeros = ctx.i64([0, 0])
    pads = ctx.node("Concat", zeros, *before, zeros, *after, axis=0)
    padded = ctx.node("Pad", x_nchw, pads, ctx.scalar(pad_value, dtype), mode="constant")
    return padded, {"pads": [0, 0, 0, 0]}


@converts("conv2d")
def _conv2d(ctx, op, ins):
    x, f = ins
    dtype = _dtype(op)
    kernel = [int(d) for d in op.inputs[1].shape[:2]]
    strides, dilations = [int(s) for s in op.attrs["strides"]], [int(d) for d in op.attrs["dilations"]]
    xt = ctx.transpose(x, _TO_NCHW)
    w = ctx.transpose(f, [3, 2, 0, 1])  # HWIO -> OIHW (folded into the initializer for constant filters)
    if op.attrs["padding"] == "SAME":
        xt, pad_attrs = _same_padding(ctx, op, xt, op.inputs[0].shape[1:3], kernel, strides, dilations, 0, dtype)
    else:
        pad_attrs = {"pads": [0, 0, 0, 0]}
    y = ctx.node("Conv", xt, w, kernel_shape=kernel, strides=strides, dilations=dilations, **pad_attrs)
    return [ctx.transpose(y, _TO_NHWC)]


@converts("conv2d_backprop_input")
def _conv2d_backprop_input(ctx, op, ins):
    # ONNX's ConvTranspose: an imported ConvTranspose (graphc's conv2d_transpose) exports as
    # one again. With static sizes its pads and output_padding give `like`'s size; otherwise
    # the unpadded result is padded at the end and sliced at run time to `like`'s size.
    g, f, like = ins
    k_hw = op.inputs[1].shape[:2]
    kernel = [int(d) if d is not None else None for d in k_hw]
    strides, dilations = [int(s) for s in op.attrs["strides"]], [int(d) for d in op.attrs["dilations"]]
    out_hw, in_hw = op.inputs[2].shape[1:3], op.inputs[0].shape[1:3]
    gt, w = ctx.transpose(g, _TO_NCHW), ctx.transpose(f, [3, 2, 0, 1])
    shape_attrs = {"kernel_shape": kernel} if None not in kernel else {}
    if TensorShape(out_hw).is_fully_defined() and TensorShape(in_hw).is_fully_defined() and None not in kernel:
        before, after, extra = [], [], []
        for size, n, k, s, d in zip(out_hw, in_hw, kernel, strides, dilations):
            _, (b, a) = conv_output_size(int(size), k, s, d, op.attrs["padding"])
            before.append(b)
            after.append(a)
            extra.append(int(size) - (s * (int(n) - 1) + (k - 1) * d + 1 - b - a))
        if min(extra) >= 0 and all(e < s for e, s in zip(extra, strides)):
            y = ctx.node("ConvTranspose", gt, w, kernel_shape=kernel, strides=strides, dilations=dilations,
                         pads=before + after, output_padding=extra)
            return [ctx.transpose(y, _TO_NHWC)]
    full = ctx.node("ConvTranspose", gt, w, strides=strides, dilations=dilations, pads=[0, 0, 0, 0], **shape_attrs)
    starts, ends, pad_end = [], [], []
    for axis, (k, s, d) in enumerate(zip(kernel, strides, dilations)):
        size, n = ctx.dim(like, 1 + axis), ctx.dim(g, 1 + axis)
        if k is None:   # (k - 1) * d + 1 from the filter's run-time size
            eff = ctx.node("Add", ctx.node("Mul", ctx.node("Sub", ctx.dim(f, axis), ctx.i64([1])), ctx.i64([d])),
                           ctx.i64([1]))
        else:
            eff = ctx.i64([(k - 1) * d + 1])
        produced = ctx.node("Add", ctx.node("Mul", ctx.node("Sub", n, ctx.i64([1])), ctx.i64([s])), eff)
        if op.attrs["padding"] == "SAME":
            total = ctx.node("Max", ctx.node("Sub", produced, size), ctx.i64([0]))
            start = ctx.node("Div", total, ctx.i64([2]))
        else:
            start = ctx.i64([0])
        starts.append(start)
        ends.append(ctx.node("Add", start, size))
        pad_end.append(ctx.node("Max", ctx.node("Sub", ctx.node("Add", start, size), produced), ctx.i64([0])))
    pads = ctx.node("Concat", ctx.i64([0, 0, 0, 0, 0, 0]), *pad_end, axis=0)
    padded = ctx.node("Pad", full, pads)
    y = ctx.node("Slice", padded, ctx.node("Concat", *starts, axis=0), ctx.node("Concat", *ends, axis=0),
                 ctx.i64([2, 3]))
    return [ctx.transpose(y, _TO_NHWC)]


@converts("scatter_add")
def _scatter_add(ctx, op, ins):
    # Rows added into zeros: ScatterND with reduction "add", the scatter axis moved to the front.
    updates, indices, like = ins
    axis = int(op.attrs["axis"])
    rank, idx_rank = op.inputs[2].shape.rank, op.inputs[1].shape.rank
    zeros = ctx.constant_of_shape(like, 0, _dtype(op))
    front = [axis] + [i for i in range(rank) if i != axis]
    data = ctx.transpose(zeros, front) if axis else zeros
    upd_perm = list(range(axis, axis + idx_rank)) + list(range(axis)) + list(range(axis + idx_rank,
                                                                                    rank - 1 + idx_rank))
    upd = ctx.transpose(updates, upd_perm) if axis else updates
    if _dtype(op, 1) != np.int64:
        indices = ctx.cast(indices, np.int64)
    idx = ctx.node("Unsqueeze", indices, ctx.i64([-1]))
    out = ctx.node("ScatterND", data, idx, upd, reduction="add")
    return [ctx.transpose(out, list(np.argsort(front))) if axis else out]


@converts("scatter_along_axis")
def _scatter_along_axis(ctx, op, ins):
    updates, indices, like = ins
    zeros = ctx.constant_of_shape(like, 0, _dtype(op))
    if _dtype(op, 1) != np.int64:
        indices = ctx.cast(indices, np.int64)
    return [ctx.node("ScatterElements", zeros, indices, updates, axis=int(op.attrs["axis"]), reduction="add")]


@converts("where_indices")
def _where_indices(ctx, op, ins):
    # NonZero gives [rank, count]; TF1's where gives [count, rank]. Numbers become bools first
    # (x != 0, NaN true as in NumPy): ONNX Runtime's NonZero lacks some number types
    cond = ins[0]
    if _dtype(op, 0) != np.bool_:
        cond = ctx.node("Not", ctx.node("Equal", cond, ctx.scalar(0, _dtype(op, 0))))
    return [ctx.node("Transpose", ctx.node("NonZero", cond), perm=[1, 0])]


@converts("depthwise_conv2d_native")
def _depthwise_conv2d(ctx, op, ins):
    # a grouped Conv: group = C, the (kh, kw, C, M) filter as (C*M, 1, kh, kw)
    x, f = ins
    kh, kw, c, m = (None if d is None else int(d) for d in op.inputs[1].shape)
    if c is None or m is None:
        raise ctx.fail("ONNX Conv needs the filter's channels and multiplier known (its group attribute)")
    dtype = _dtype(op)
    strides, dilations = [int(s) for s in op.attrs["strides"]], [int(d) for d in op.attrs["dilations"]]
    xt = ctx.transpose(x, _TO_NCHW)
    value = ctx.value_of(f)
    if value is not None:
        w = ctx.const(_contiguous(np.transpose(value.reshape(kh, kw, 1, c * m), [3, 2, 0, 1])), hint=f + "_T")
    else:
        w = ctx.transpose(ctx.node("Reshape", f, ctx.i64([kh, kw, 1, c * m])), [3, 2, 0, 1])
    if op.attrs["padding"] == "SAME":
        xt, pad_attrs = _same_padding(ctx, op, xt, op.inputs[0].shape[1:3], [kh, kw], strides, dilations, 0, dtype)
    else:
        pad_attrs = {"pads": [0, 0, 0, 0]}
    y = ctx.node("Conv", xt, w, kernel_shape=[kh, kw], strides=strides, dilations=dilations, group=c, **pad_attrs)
    return [ctx.transpose(y, _TO_NHWC)]


@converts("max_pool2d", "avg_pool2d")
def _pool(ctx, op, ins):
    dtype = _dtype(op)
    kernel, strides = [int(k) for k in op.attrs["ksize"]], [int(s) for s in op.attrs["strides"]]
    is_max = op.type == "max_pool2d"
    xt = ctx.transpose(ins[0], _TO_NCHW)
    work = dtype
    if is_max and dtype == np.int32:  # ONNX MaxPool has no int32; float64 holds every int32 exactly
        work = np.dtype(np.float64)
        xt = ctx.cast(xt, work)
    elif is_max and dtype not in (np.float32, np.float64, np.int8, np.uint8):
        raise ctx.fail(f"ONNX MaxPool has no exact form for {dtype.name} inputs")
    if op.attrs["padding"] == "SAME":
        lowest = (-np.inf if work.kind == "f" else np.iinfo(work).min) if is_max else None
        xt, pad_attrs = _same_padding(ctx, op, xt, op.inputs[0].shape[1:3], kernel, strides, [1, 1], lowest, work)
    else:
        pad_attrs = {"pads": [0, 0, 0, 0]}
    if is_max:
        y = ctx.node("MaxPool", xt, kernel_shape=kernel, strides=strides, **pad_attrs)
        if work.kind == "f" and work == dtype:  # np.max propagates NaN; ONNX Runtime's MaxPool skips it
            flags = ctx.cast(ctx.node("IsNaN", xt), work)
            any_nan = ctx.node("Greater", ctx.node("MaxPool", flags, kernel_shape=kernel, strides=strides,
                                                   **pad_attrs), ctx.scalar(0, work))
            y = ctx.node("Where", any_nan, ctx.scalar(np.nan, work), y)
        if work != dtype:
            y = ctx.cast(y, dtype)
    else:  # SAME padding is left out of the count, as in graphc
        y = ctx.node("AveragePool", xt, kernel_shape=kernel, strides=strides, count_include_pad=0, **pad_attrs)
    return [ctx.transpose(y, _TO_NHWC)]


@converts("window_sum")
def _window_sum(ctx, op, ins):
    # zeros beyond the edges, then the 2r+1 shifted windows added in the reference's order
    r, axis = int(op.attrs["radius"]), int(op.attrs["axis"])
    rank = op.inputs[0].shape.rank
    x = ins[0]
    if r == 0:
        return [x]
    pads = [0] * (2 * rank)
    pads[axis] = pads[rank + axis] = r
    padded = ctx.node("Pad", x, ctx.i64(pads), ctx.scalar(0, _dtype(op)), mode="constant")
    total = None
    for shift in range(2 * r + 1):
        end = shift - 2 * r if shift < 2 * r else _INT64_MAX
        part = _slice(ctx, padded, [shift], [end], [axis], [1])
        total = part if total is None else ctx.node("Add", total, part)
    return [total]


# --- scans, reversal and segment sums ------------------------------------------------------------------
@converts("cumsum")
def _cumsum(ctx, op, ins):
    a = op.attrs
    return [ctx.node("CumSum", ins[0], ctx.const(np.asarray(a["axis"], dtype=np.int64)),
                     exclusive=int(a["exclusive"]), reverse=int(a["reverse"]))]


NOT_EXPORTABLE["cumprod"] = ("ONNX has no cumulative product, and exp(cumsum(log(x))) is wrong for zeros and "
                             "negative values")


@converts("reverse")
def _reverse(ctx, op, ins):
    axes = list(op.attrs["axes"])
    if not axes:
        return [ctx.node("Identity", ins[0])]
    n = len(axes)
    return [_slice(ctx, ins[0], [-1] * n, [_INT64_MIN] * n, axes, [-1] * n)]


@converts("unsorted_segment_sum")
def _unsorted_segment_sum(ctx, op, ins):
    # ScatterND adds each slice at its id; a negative id (dropped by TensorFlow, counted from the
    # end by ONNX) goes to an extra last row that is sliced away
    data, ids = ins
    n = int(op.attrs["num_segments"])
    d_t, i_t = op.inputs
    ids64 = ids if _dtype(op, 1) == np.int64 else ctx.cast(ids, np.int64)
    ids64 = ctx.node("Where", ctx.node("Less", ids64, ctx.scalar(0, np.int64)),
                     ctx.scalar(n, np.int64), ids64)
    rest = [d if d is not None else ctx.dim(data, k)
            for k, d in enumerate(d_t.shape) if k >= i_t.shape.rank]
    zeros = ctx.node("ConstantOfShape", ctx.shape_vector([n + 1] + rest),
                     value=ctx.onnx.numpy_helper.from_array(np.zeros(1, dtype=_dtype(op)), "value"))
    total = ctx.node("ScatterND", zeros, ctx.node("Unsqueeze", ids64, ctx.i64([-1])), data, reduction="add")
    return [_slice(ctx, total, [0], [n], [0], [1])]


# --- sorting --------------------------------------------------------------------------------------------
def _top_k_node(ctx, x: str, op, axis: int, k, largest: bool):
    """ONNX TopK (ties: the lower index first, as graphc's stable order); indices as int32."""
    values, indices = ctx.node("TopK", x, k, axis=int(axis), largest=int(largest), sorted=1, outputs=2)
    return values, ctx.cast(indices, np.int32)


@converts("argsort")
def _argsort(ctx, op, ins):
    axis = int(op.attrs["axis"])
    size = op.inputs[0].shape[axis]
    k = ctx.i64([size]) if size is not None else ctx.dim(ins[0], axis)
    return [_top_k_node(ctx, ins[0], op, axis, k, op.attrs["descending"])[1]]


@converts("top_k")
def _top_k(ctx, op, ins):
    rank = op.inputs[0].shape.rank
    return list(_top_k_node(ctx, ins[0], op, rank - 1, ctx.i64([op.attrs["k"]]), True))


@converts("take_along_axis")
def _take_along_axis(ctx, op, ins):
    x, indices = ins
    if _dtype(op, 1) not in (np.int32, np.int64):
        indices = ctx.cast(indices, np.int64)
    return [ctx.node("GatherElements", x, indices, axis=int(op.attrs["axis"]))]




@converts("in_top_k")
def _in_top_k(ctx, op, ins):
    # TensorFlow's rule: count the classes predicted above the target's; a target out of range
    # or a row with a non-finite prediction says False
    p, targets = ins
    classes = op.inputs[0].shape[1]
    c = ctx.i64([classes]) if classes is not None else ctx.dim(p, 1)
    t = ctx.node("Unsqueeze", targets if _dtype(op, 1) == np.int64 else ctx.cast(targets, np.int64), ctx.i64([1]))
    valid = ctx.node("And", ctx.node("GreaterOrEqual", t, ctx.i64([0])), ctx.node("Less", t, c))
    picked = ctx.node("GatherElements", p, ctx.node("Where", valid, t, ctx.i64([0])), axis=1)
    more = ctx.reduce("ReduceSum", ctx.cast(ctx.node("Greater", p, picked), np.int64), [1], True)
    bad = ctx.node("Or", ctx.node("IsNaN", p), ctx.node("IsInf", p))
    finite = ctx.node("Equal", ctx.reduce("ReduceSum", ctx.cast(bad, np.int64), [1], True), ctx.i64([0]))
    ok = ctx.node("And", ctx.node("And", valid, finite), ctx.node("Less", more, ctx.i64([op.attrs["k"]])))
    return [ctx.node("Squeeze", ok, ctx.i64([1]))]

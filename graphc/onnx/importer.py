"""ONNX graph -> graphc graph: the walk over the nodes and what a converter may ask of a node.

One ``Importer`` translates one ONNX graph into the current graphc graph. Initializers become
constants (or trainable variables), graph inputs placeholders with ``None`` for symbolic dims,
and each node goes through the converter registered for its op type (``converters.py``).

Values that are known when the model is imported (initializers, ``Constant`` nodes, and
anything computed from them, e.g. ``Shape`` of a fully shaped tensor -> ``Gather`` ->
``Concat``) are kept as NumPy arrays, so that converters can read shapes, axes and pads as
Python values. A ``Shape`` whose dims are not all known gives an array of ``object`` dtype in
which the unknown dims are :class:`Dim` references; ``Reshape``, ``Expand`` and
``ConstantOfShape`` turn those into graphc's run-time dim references, so symbolic shapes stay
symbolic. Any other op that reads such a value gets it as a run-time tensor.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

import numpy as np

from .. import dtypes as dt
from ..errors import GraphcError
from ..graph import Tensor
from ..ops.registry import get_op
from .narrow import BY_NAME, FIXED_TYPE_OUTPUTS, NARROW
from .reader import MAX_ELEMENTS, OnnxImportError, default_opset, topological_nodes


class NeedsValue(OnnxImportError):
    """A converter needs, as a Python value, an input that is computed at run time from the
    graph inputs ``inputs``: shapes in graphc are static. ``import_model(...,
    constants={name: value})`` fixes such inputs; the ONNX backend does so with the values
    each run is given (one compiled model per distinct set of values)."""

    def __init__(self, message: str, inputs):
        super().__init__(message)
        self.inputs = sorted(inputs)

# ONNX TensorProto element types that graphc has, and the names of those it lacks (errors).
DTYPES = {1: dt.float32, 2: dt.uint8, 3: dt.int8, 6: dt.int32, 7: dt.int64, 9: dt.bool_, 11: dt.float64}
_TYPE_NAMES = {0: "undefined", 4: "uint16", 5: "int16", 8: "string", 10: "float16", 12: "uint32", 13: "uint64",
               14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
               19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1",
               24: "float8e8m0", 25: "uint2", 26: "int2"}

ONNX_TYPES = {d: k for k, d in DTYPES.items()}
# A bound on function expansions (a model's own functions could call each other forever).
_MAX_EXPANSIONS = 100_000

# Folding a node at import time evaluates it with the ops' NumPy references; a result larger
# than this stays a run-time tensor (the optimizer may still fold it).
_FOLD_LIMIT = 1 << 22

Converter = Callable[["Node"], List]
CONVERTERS: Dict[str, Converter] = {}


def converts(*op_types: str):
    """Register a converter for ONNX op types: ``fn(node) -> [value per output]``."""
    def register(fn):
        for t in op_types:
            CONVERTERS[t] = fn
        return fn
    return register


class NeedsShape(OnnxImportError):
    """A converter needs a dim that the model leaves symbolic. ``import_model(...,
    input_shapes={name: shape})`` fixes the inputs' shapes; the ONNX backend does so with the
    shapes each run is given."""


class Sequence(list):
    """An ONNX sequence whose length is known at import time: a list of graphc tensors."""


class Dim:
    """Dimension ``axis`` of ``tensor``, known only at run time (an entry of a symbolic shape)."""

    __slots__ = ("tensor", "axis")

    def __init__(self, tensor: Tensor, axis: int):
        self.tensor, self.axis = tensor, axis

    def __repr__(self) -> str:
        return f"dim {self.axis} of '{self.tensor.name}'"


def dtype_of(elem_type: int, what: str) -> dt.DType:
    if int(elem_type) in NARROW:
        return NARROW[int(elem_type)].wide
    d = DTYPES.get(int(elem_type))
    if d is None:
        name = _TYPE_NAMES.get(int(elem_type), f"type {elem_type}")
        raise OnnxImportError(f"{what} is of ONNX type {name}, which graphc does not have (it has "
                              f"{', '.join(sorted(x.name for x in DTYPES.values()))})")
    return d


def tensor_value(proto, what: str) -> np.ndarray:
    """A TensorProto as a NumPy array (onnx.numpy_helper: protobuf fields, never pickle)."""
    from onnx import numpy_helper
    dtype = dtype_of(proto.data_type, what)
    try:
        value = numpy_helper.to_array(proto)
    except Exception as e:  # noqa: BLE001 - inconsistent fields (raw_data of the wrong size, ...)
        raise OnnxImportError(f"{what}: its data does not match its declared type and shape: {e}") from None
    if proto.data_type in NARROW:
        value = value.astype(dtype.np)
    return np.asarray(value, dtype=dtype.np)


def is_symbolic(value) -> bool:
    return isinstance(value, np.ndarray) and value.dtype == object


class Node:
    """What a converter sees of one ONNX node: its inputs (as tensors, or as values known at
    import time), its attributes, and the opset."""

    def __init__(self, importer: "Importer", proto, opset: Optional[int] = None):
        self.importer = importer
        self.proto = proto
        self.op_type = proto.op_type
        self.opset = opset or importer.opset
        self.inputs = list(proto.input)
        self.n_outputs = len(proto.output)
        from onnx import helper
        self._attrs = {a.name: (a, helper.get_attribute_value(a)) for a in proto.attribute}

    # -- attributes ---------------------------------------------------------------------------
    def attr(self, name: str, default=None):
        """The attribute's value (strings decoded, tensors as arrays), or ``default``; a value
        of another kind than the default's (a list where an int belongs) is an error."""
        if name not in self._attrs:
            return default
        value = self._attr_value(name)
        if default is not None and not _same_kind(value, default):
            self.fail(f"attribute {name!r} must be {type(default).__name__}, got {value!r:.80}")
        return value

    def _attr_value(self, name: str):
        proto, value = self._attrs[name]
        if proto.type == proto.STRING:
            return value.decode("utf-8", "replace")
        if proto.type == proto.STRINGS:
            return [v.decode("utf-8", "replace") for v in value]
        if proto.type == proto.TENSOR:
            return tensor_value(value, f"attribute {name!r} of {self.label}")
        if proto.type == proto.INTS:
            return [int(v) for v in value]
        if proto.type == proto.FLOATS:
            return [float(v) for v in value]
        return value

    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    # -- inputs -------------------------------------------------------------------------------
    def has(self, i: int) -> bool:
        """Whether optional input ``i`` is given (ONNX leaves it out or names it "")."""
        return i < len(self.inputs) and self.inputs[i] != ""

    def value(self, i: int):
        return self.importer.values[self.inputs[i]]

    def x(self, i: int) -> Tensor:
        """Input ``i`` as a graphc tensor (a known value becomes a constant)."""
        return self.importer.as_tensor(self.inputs[i])

    def known(self, i: int) -> Optional[np.ndarray]:
        """Input ``i``'s value if it is known at import time and has no symbolic entries."""
        if not self.has(i):
            return None
        v = self.value(i)
        return v if isinstance(v, np.ndarray) and v.dtype != object else None

    def shape_value(self, i: int):
        """Input ``i`` as a 1-D list of ints and :class:`Dim` (for Reshape, Expand, ...), or
        None if it is computed at run time from more than dims."""
        v = self.value(i)
        if isinstance(v, np.ndarray):
            return [d if isinstance(d, Dim) else int(d) for d in v.reshape(-1)]
        return None

    def ints(self, i: int, what: str) -> List[int]:
        """Input ``i`` as Python ints; it must be known when the model is imported."""
        return [int(a) for a in np.asarray(self.require(i, what)).reshape(-1)]

    def require(self, i: int, what: str) -> np.ndarray:
        """Input ``i``'s value, which must be known when the model is imported."""
        v = self.known(i)
        if v is None:
            self.needs(i, what)
        return v

    def needs(self, i: int, what: str):
        name = self.inputs[i]
        sources = self.importer.graph_inputs_behind(name)
        raise NeedsValue(
            f"{self.importer.source}: {self.label}: its {what} (input {i}, {name!r}) must be known when the model "
            f"is imported (graphc compiles static shapes), but it is computed at run time from the graph "
            f"input(s) {sorted(sources)}; give their values: import_model(model, constants={{name: value}})",
            sources)

    def static_shape(self, t: Tensor, what: str = "its input") -> tuple:
        if not t.shape.is_fully_defined():
            self.needs_shape(f"{what} '{t.name}' must have a shape known at import time, got {t.shape}")
        return tuple(int(d) for d in t.shape)

    def needs_shape(self, what: str):
        raise NeedsShape(f"{self.importer.source}: {self.label}: {what} (graphc compiles static shapes; give the "
                         "inputs' shapes: import_model(model, input_shapes={name: shape}))")

    def rank(self, t: Tensor) -> int:
        if not t.shape.known_rank:
            self.fail(f"the rank of its input '{t.name}' must be known")
        return t.ndim

    @property
    def label(self) -> str:
        name = f" '{self.proto.name}'" if self.proto.name else ""
        return f"node{name} ({self.op_type})"

    def fail(self, what: str):
        raise OnnxImportError(f"{self.importer.source}: {self.label}: {what}")


class Importer:
    """Translates one ONNX graph into the default graphc graph."""

    def __init__(self, model, source: str, graph, trainable: bool = False, opset: Optional[int] = None,
                 input_shapes: Optional[Dict[str, tuple]] = None):
        self.model = model
        self.source = source
        self.graph = graph
        self.trainable = trainable
        self.opset = opset if opset is not None else default_opset(model)
        self.input_shapes = dict(input_shapes or {})
        self.narrow: Dict[str, str] = {}   # value name -> its emulated type ("float16", "int16", ...: narrow.py)
        self.values: Dict[str, object] = {}
        self._tensors: Dict[str, Tensor] = {}
        self.variables: list = []
        self.local_functions = {(f.domain, f.name): f for f in model.functions}
        self._expansions = 0
        self._producers = {o: n for n in model.graph.node for o in n.output if o}
        self._graph_inputs = {vi.name for vi in model.graph.input}

    def graph_inputs_behind(self, name: str) -> set:
        """The graph inputs that the ONNX value ``name`` is computed from."""
        found, seen, todo = set(), set(), [name]
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            if n in self._graph_inputs:
                found.add(n)
            node = self._producers.get(n)
            if node is not None:
                todo.extend(x for x in node.input if x)
        return found

    # -- values -------------------------------------------------------------------------------
    def as_tensor(self, name: str) -> Tensor:
        v = self.values[name]
        if isinstance(v, Tensor):
            return v
        if isinstance(v, Sequence):
            raise OnnxImportError(f"{self.source}: {name!r} is a sequence where a tensor is needed")
        t = self._tensors.get(name)
        if t is None:
            t = self._tensors[name] = materialize(v, name)
        return t

    def define(self, name: str, value) -> None:
        if name in self.values:
            raise OnnxImportError(f"{self.source}: {name!r} is defined twice (an ONNX graph is in SSA form)")
        self.values[name] = value
        self._tensors.pop(name, None)

    # -- the walk ------------------------------------------------------------------------------
    def import_graph(self, graph_proto, outer: Optional[Dict[str, object]] = None,
                     feeds: Optional[Dict[str, object]] = None) -> Dict[str, Tensor]:
        """Translate ``graph_proto``; returns its placeholders by input name. ``feeds`` give
        tensors (or NumPy values, which count as known) for some inputs instead."""
        import graphc as gc
        if outer:
            self.values.update(outer)
        placeholders: Dict[str, Tensor] = {}
        for init in graph_proto.initializer:
            value = tensor_value(init, f"initializer {init.name!r}")
            if init.data_type in NARROW:
                self.narrow[init.name] = NARROW[init.data_type].name
            if self.trainable and value.dtype.kind == "f":
                var = gc.Variable(value, name=_op_name(init.name), trainable=True)
                self.variables.append(var)
                self.define(init.name, var.value())
            else:
                self.define(init.name, value)
        initialized = {t.name for t in graph_proto.initializer}
        for vi in graph_proto.input:
            if vi.name in initialized:
                continue   # an initializer listed as an input (IR < 4): a constant here
            if feeds and vi.name in feeds:
                value = feeds[vi.name]
                if isinstance(value, np.ndarray):
                    value = np.asarray(value, dtype=value_type(vi, f"graph input {vi.name!r}")[0].np)
                self.define(vi.name, value)
                continue
            dtype, shape = value_type(vi, f"graph input {vi.name!r}")
            if vi.type.tensor_type.elem_type in NARROW:
                self.narrow[vi.name] = NARROW[vi.type.tensor_type.elem_type].name
            if vi.name in self.input_shapes:
                shape = _fixed_shape(shape, self.input_shapes[vi.name], vi.name, self.source)
            ph = gc.placeholder(dtype, shape, name=_op_name(vi.name))
            placeholders[vi.name] = ph
            self.define(vi.name, ph)
        for node in topological_nodes(graph_proto, set(self.values), self.source):
            self.convert(node)
        return placeholders

    def convert(self, proto, opset: Optional[int] = None) -> None:
        node = Node(self, proto, opset)
        for out in proto.output:
            if out:
                self._producers.setdefault(out, proto)
        convert = CONVERTERS.get(proto.op_type if proto.domain in ("", "ai.onnx") else f"{proto.domain}:{proto.op_type}")
        if convert is None:
            self._expand(node)
            return
        all_known = all(not node.has(i) or node.known(i) is not None for i in range(len(node.inputs))
                        if not isinstance(self.values.get(node.inputs[i]), Sequence))
        with self.graph.location_scope(f"{self.source}: {node.label}"):
            try:
                outputs = convert(node)
            except OnnxImportError:
                raise
            except GraphcError as e:
                raise OnnxImportError(f"{self.source}: {node.label}: {e}") from None
            except (TypeError, ValueError, IndexError, KeyError, AttributeError, ZeroDivisionError,
                    OverflowError) as e:
                # A file may hold anything: an attribute of the wrong kind or inputs of the wrong
                # arity reach a converter as these; they are errors of the file, named here.
                raise OnnxImportError(f"{self.source}: {node.label}: its inputs or attributes are not what "
                                      f"{proto.op_type} takes ({type(e).__name__}: {e})") from None
        outputs = list(outputs)
        kinds = self._narrow_outputs(node)
        if len(outputs) < len(proto.output):
            outputs += [None] * (len(proto.output) - len(outputs))
        for name, value in zip(proto.output, outputs):
            if not name:
                continue
            if value is None:
                node.fail(f"graphc does not compute its output {name!r}")
            if isinstance(value, np.generic):
                value = np.asarray(value)
            if isinstance(value, Tensor) and all_known:
                folded = fold(value)
                if folded is not None:
                    value = folded
            kind = BY_NAME.get(kinds.get(name))
            if kind and (isinstance(value, Tensor) or not is_symbolic(value)) and value.dtype in (kind.wide,
                                                                                                kind.wide.np):
                value = kind.fit(value)
                self.narrow[name] = kind.name
            self.define(name, value)

    def _narrow_outputs(self, node: "Node") -> Dict[str, str]:
        """The outputs of ``node`` that hold a narrow float type: a Cast (or CastLike,
        Constant, ConstantOfShape) to one, or any op with a narrow input (inputs of one
        type give outputs of that type; float outputs of others are not narrowed)."""
        proto = node.proto
        kind = None
        if proto.op_type == "Cast":
            to = NARROW.get(int(node.attr("to", 0)))
            kind = to.name if to else None
        elif proto.op_type == "CastLike":
            kind = self.narrow.get(proto.input[1]) if len(proto.input) > 1 else None
        elif proto.op_type in ("Constant", "ConstantOfShape"):
            for a in proto.attribute:
                if a.type == a.TENSOR and a.t.data_type in NARROW:
                    kind = NARROW[a.t.data_type].name
        else:
            found = [self.narrow[i] for i in proto.input if i in self.narrow]
            kind = found[0] if found else None
        fixed = FIXED_TYPE_OUTPUTS.get(proto.op_type, ())
        return {o: kind for k, o in enumerate(proto.output) if o and kind and k not in fixed}


    def run_subgraph(self, graph_proto, bound: List, opset: Optional[int] = None) -> List[Tensor]:
        """The outputs of a subgraph (a branch or a loop body) whose inputs are ``bound``, as
        tensors built in the current graphc graph (a cond branch or a loop body being traced).
        Its names are scoped: nothing it defines is visible after it."""
        if len(bound) != len(graph_proto.input):
            raise OnnxImportError(f"{self.source}: subgraph {graph_proto.name!r} takes {len(graph_proto.input)} "
                                  f"inputs, but {len(bound)} are given")
        saved_values, saved_tensors = dict(self.values), dict(self._tensors)
        # Constants made outside are captured by the body; ones made inside stay inside.
        self._tensors = {}
        try:
            for init in graph_proto.initializer:
                self.values[init.name] = tensor_value(init, f"initializer {init.name!r}")
            for vi, value in zip(graph_proto.input, bound):
                self.values[vi.name] = value
                self._tensors.pop(vi.name, None)
            outer = set(self.values)
            for proto in topological_nodes(graph_proto, outer, self.source):
                for out in proto.output:
                    self.values.pop(out, None)
                self.convert(proto, opset)
            return [self.as_tensor(vi.name) for vi in graph_proto.output]
        finally:
            self.values, self._tensors = saved_values, saved_tensors

    def _expand(self, node: Node) -> None:
        """Import a node with no converter as its ONNX function body (functions.py)."""
        from onnx import helper
        from .functions import expand, function_body
        proto = node.proto
        types = []
        for i, name in enumerate(proto.input):
            if not name:
                types.append(helper.make_tensor_type_proto(1, None))
                continue
            v = self.values[name]
            dtype = v.dtype if isinstance(v, Tensor) else dt.as_dtype(v.dtype) if not is_symbolic(v) else dt.int64
            shape = (list(v.shape) if v.shape.known_rank else None) if isinstance(v, Tensor) else list(v.shape)
            types.append(helper.make_tensor_type_proto(ONNX_TYPES[dtype], shape))
        found = function_body(proto, node.opset, types, self.local_functions)
        if found is None:
            domain = "ONNX" if proto.domain in ("", "ai.onnx") else proto.domain
            node.fail(f"graphc does not import the {domain} op {proto.op_type!r} (docs/IMPORT-ONNX.md lists the ops "
                      "it imports)")
        fn, opset, defaults = found
        self._expansions += 1
        if self._expansions > _MAX_EXPANSIONS:
            node.fail(f"expanding ONNX functions went past {_MAX_EXPANSIONS} nodes (a function that calls itself?)")
        prefix = f"{proto.op_type}_{self._expansions}__"
        for inner in expand(proto, fn, prefix, defaults):
            self.convert(inner, opset)


def _same_kind(value, default) -> bool:
    if isinstance(default, bool) or isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return True


def value_type(vi, what: str):
    """(dtype, shape with None for symbolic dims) of a ValueInfoProto, or raise."""
    t = vi.type
    if t.WhichOneof("value") != "tensor_type":
        raise OnnxImportError(f"{what} is a {t.WhichOneof('value') or 'typeless value'}; graphc imports "
                              "tensor inputs only")
    dtype = dtype_of(t.tensor_type.elem_type, what)
    if not t.tensor_type.HasField("shape"):
        return dtype, None
    dims = []
    for d in t.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            if d.dim_value < 0 or d.dim_value > MAX_ELEMENTS:
                raise OnnxImportError(f"{what} declares dim {d.dim_value}, which is out of range")
            dims.append(int(d.dim_value))
        else:
            dims.append(None)
    return dtype, dims


def _fixed_shape(declared, given, name: str, source: str) -> list:
    given = [int(d) for d in given]
    if declared is not None and (len(declared) != len(given) or any(
            d is not None and d != g for d, g in zip(declared, given))):
        raise OnnxImportError(f"{source}: input {name!r} is declared {declared}; shape {given} does not match it")
    return given


def materialize(value, name: str) -> Tensor:
    """A known value as a constant; a symbolic shape as a run-time int64 vector."""
    import graphc as gc
    if not is_symbolic(value):
        return gc.constant(value, name=_op_name(name))
    parts = [gc.cast(gc.shape(d.tensor)[d.axis], dt.int64) if isinstance(d, Dim)
             else gc.constant(np.int64(d)) for d in value.reshape(-1)]
    return gc.reshape(gc.stack(parts), list(value.shape), name=_op_name(name))


def fold(t: Tensor) -> Optional[np.ndarray]:
    """``t``'s value if it follows from constants alone (with the ops' NumPy references)."""
    memo: Dict[Tensor, np.ndarray] = {}

    def value_of(x: Tensor):
        if x in memo:
            return memo[x]
        op = x.op
        if op.type == "const":
            v = np.asarray(op.attrs["value"])
        elif op.type == "shape" and op.inputs[0].shape.is_fully_defined():
            v = np.asarray([int(d) for d in op.inputs[0].shape], dtype=x.dtype.np)
        else:
            opdef = get_op(op.type)
            if opdef.stateful or opdef.random or opdef.structural or not op.inputs:
                return None
            ins = []
            for i in op.inputs:
                iv = value_of(i)
                if iv is None:
                    return None
                ins.append(iv)
            if x.shape.is_fully_defined() and int(np.prod(x.shape)) > _FOLD_LIMIT:
                return None
            try:
                results = opdef.reference(ins, op.attrs, None)
            except Exception:  # noqa: BLE001 - it fails at run time with its own message
                return None
            for out, r in zip(op.outputs, results):
                memo[out] = np.asarray(r, dtype=out.dtype.np)
            return memo[x]
        memo[x] = v
        return v

    return value_of(t)


def _op_name(name: str) -> str:
    """A graphc op name for an ONNX value name (which may hold ':' or start with a digit)."""
    safe = "".join(c if c.isalnum() or c in "_-./" else "_" for c in name).strip("/") or "value"
    return safe if safe[0].isalpha() else "v" + safe

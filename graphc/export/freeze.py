"""Freezing: a session's trained graph becomes a self-contained inference graph.

``freeze(sess, outputs, inputs)`` copies what the outputs need into a new Graph in which
  * each variable read is a constant holding the session's current value;
  * a ``placeholder_with_default`` that is not an input is its default (so a ``training``
    flag that defaults to False switches dropout off, and the folding below removes it);
  * subgraphs that depend only on constants are folded with the ops' reference
    implementations, and ``where`` with a constant condition picks its branch;
  * only what the outputs still need is kept: optimizer slots, losses, labels, assignments
    and control dependencies (which order training updates) are gone.

The result is what model files, ONNX export and native libraries are made from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np

from ..dtypes import DType
from ..errors import GraphcError
from ..graph import Graph, Operation, Tensor, ancestors
from ..ops.registry import get_op
from ..shapes import format_shape


class FreezeError(GraphcError, ValueError):
    """The outputs cannot be frozen into an inference graph (names the op in the way)."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model: its name, dtype and shape (``None`` for a dim that
    is only known at run time). ``optional`` inputs have a default and may be left out."""

    name: str
    dtype: DType
    shape: tuple
    optional: bool = False

    def __str__(self) -> str:
        return f"{self.name}: {self.dtype.name}{format_shape(self.shape)}" + (" (optional)" if self.optional else "")


@dataclass(frozen=True)
class Signature:
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]

    def __str__(self) -> str:
        ins = ", ".join(str(s) for s in self.inputs.values())
        outs = ", ".join(str(s) for s in self.outputs.values())
        return f"({ins}) -> ({outs})"


@dataclass(frozen=True)
class FrozenGraph:
    """An inference graph: ``inputs`` are its placeholders and ``outputs`` what it computes,
    both by the names the user chose."""

    graph: Graph
    inputs: Mapping[str, Tensor]
    outputs: Mapping[str, Tensor]

    @property
    def signature(self) -> Signature:
        return Signature(
            {k: TensorSpec(k, t.dtype, tuple(t.shape), t.op.type == "placeholder_with_default")
             for k, t in self.inputs.items()},
            {k: TensorSpec(k, t.dtype, tuple(t.shape)) for k, t in self.outputs.items()})


TensorsArg = Union[Tensor, Sequence[Tensor], Mapping[str, Tensor], None]

# A folded constant may be larger than its inputs (broadcast_to, tile, one_hot), but a frozen
# file should not grow because of it: fold only results up to this many elements beyond the
# inputs' total.
_FOLD_GROWTH_LIMIT = 1 << 16


def _key_of(t: Tensor) -> str:
    return t.op.name if t.value_index == 0 else f"{t.op.name}_{t.value_index}"


def named_tensors(graph: Graph, tensors: TensorsArg, what: str) -> Dict[str, Tensor]:
    """``{name: tensor}`` from a dict, a list or one tensor (names from the ops). Tensor names
    ("x:0") and Variables are accepted wherever a tensor is."""
    if tensors is None:
        return {}
    if isinstance(tensors, Mapping):
        items = list(tensors.items())
    else:
        seq = [tensors] if not isinstance(tensors, (list, tuple)) else list(tensors)
        items = [(None, t) for t in seq]
    out: Dict[str, Tensor] = {}
    for key, t in items:
        tensor = graph.as_graph_element(t, allow_operation=False)
        key = _key_of(tensor) if key is None else key
        if not isinstance(key, str) or not key:
            raise FreezeError(f"{what} names must be non-empty strings, got {key!r}")
        if key in out:
            raise FreezeError(f"two {what}s are named {key!r}: '{out[key].name}' and '{tensor.name}'")
        out[key] = tensor
    return out


def freeze(sess, outputs: TensorsArg, inputs: TensorsArg = None) -> FrozenGraph:
    """The inference graph computing ``outputs`` from ``inputs`` with ``sess``'s variable values.

    ``outputs`` and ``inputs`` are dicts ``{name: tensor}`` (or lists / one tensor, named after
    their ops). Without ``inputs``, every placeholder the outputs need is an input. Any
    tensor may be an input (as with ``feed_dict``); what produces it is then not kept.
    """
    graph = sess.graph
    outs = named_tensors(graph, outputs, "output")
    if not outs:
        raise FreezeError("freeze needs at least one output")
    ins = named_tensors(graph, inputs, "input") if inputs is not None else _needed_placeholders(outs)
    folded = _copy(graph, outs, ins, sess, fold=True)
    return _copy(folded.graph, folded.outputs, folded.inputs, None, fold=False)


def _needed_placeholders(outs: Dict[str, Tensor]) -> Dict[str, Tensor]:
    found: Dict[str, Tensor] = {}
    for op in _needed_ops(list(outs.values()), set()):
        if op.type == "placeholder":
            name = op.name
            found[name] = op.outputs[0]
    return dict(sorted(found.items(), key=lambda kv: kv[1].op._id))


def _needed_ops(targets: Sequence[Tensor], cut: set) -> list:
    """Ops that ``targets`` need through data edges, cut at the tensors in ``cut``, in
    creation order (a topological order: inputs are created before their users)."""
    needed = ancestors(targets, cut, control=False)
    return sorted(needed, key=lambda op: op._id)


def _copy(graph: Graph, outs: Dict[str, Tensor], ins: Dict[str, Tensor], sess, fold: bool) -> FrozenGraph:
    new = Graph()
    new.seed = graph.seed
    mapped: Dict[Tensor, Tensor] = {}
    constants: Dict[Tensor, np.ndarray] = {}   # new const tensors -> their values
    new_inputs: Dict[str, Tensor] = {}
    input_of = {t: k for k, t in ins.items()}
    with new.as_default():
        # Inputs first, so that they keep their names.
        for key, t in ins.items():
            if t.op.type == "placeholder_with_default":
                continue  # copied with its default below, in order
            op = new.create_op("placeholder", (), {"dtype": t.dtype, "shape": tuple(t.shape)}, key, exact_name=True,
                               location=t.op.location)
            mapped[t] = new_inputs[key] = op.outputs[0]
        cut = {t for t in ins.values() if t.op.type != "placeholder_with_default"}
        for op in _needed_ops(list(outs.values()), cut):
            outputs = _copy_op(new, op, mapped, constants, sess, fold, input_of)
            for t, nt in zip(op.outputs, outputs):
                mapped[t] = nt
        for key, t in ins.items():
            if key not in new_inputs:
                new_inputs[key] = mapped[t]
    missing = [k for k, t in ins.items() if t not in mapped]
    if missing:
        raise FreezeError(f"input(s) {missing} are not needed by the outputs {sorted(outs)}")
    return FrozenGraph(new, new_inputs, {k: mapped[t] for k, t in outs.items()})


def _const(graph: Graph, value: np.ndarray, name: str, location: str, constants: dict) -> Tensor:
    op = graph.create_op("const", (), {"value": value}, name, location=location)
    constants[op.outputs[0]] = op.attrs["value"]
    return op.outputs[0]


def _copy_op(new: Graph, op: Operation, mapped: dict, constants: dict, sess, fold: bool, input_of: dict) -> list:
    opdef = get_op(op.type)
    where = f"{op.type} '{op.name}' (created at {op.location})"
    if op.type == "placeholder":
        if op.outputs[0] not in input_of:
            raise FreezeError(f"the outputs need placeholder '{op.name}' {op.outputs[0].dtype.name}"
                              f"{format_shape(op.outputs[0].shape)} (created at {op.location}), "
                              "but it is not one of the inputs")
    inputs = [mapped[t] for t in op.inputs]
    if op.type == "read_variable" and sess is not None:
        value = sess._state.read_variable(op.attrs["var"])
        return [_const(new, np.array(value, copy=True), op.name, op.location, constants)]
    if op.type == "const":
        return [_const(new, op.attrs["value"], op.name, op.location, constants)]
    if op.type == "placeholder_with_default" and op.outputs[0] not in input_of:
        return inputs  # not an input: it is its default
    if (opdef.stateful and not opdef.random) or opdef.structural:
        if op.type in ("assign", "assign_add", "assign_sub"):
            raise FreezeError(f"an output depends on the variable update {where}; an inference graph "
                              "cannot change variables: fetch the value before or after the update instead")
        if opdef.family == "collective":
            raise FreezeError(f"{where} is a collective of a data-parallel run (graphc.distribute); an inference "
                              "graph runs in one process: save the outputs computed before the collective")
        raise FreezeError(f"{where} reads or writes session state and cannot be frozen")
    if fold and not opdef.random and op.outputs[0] not in input_of:  # an input stays feedable
        folded = _fold(new, op, inputs, constants)
        if folded is not None:
            return folded
    name = op.name
    if op.outputs[0] in input_of:
        name = input_of[op.outputs[0]]
    exact = name not in new._by_name and op.outputs[0] in input_of
    made = new.create_op(op.type, inputs, op.attrs, name, exact_name=exact, location=op.location)
    return list(made.outputs)


def _fold(new: Graph, op: Operation, inputs: list, constants: dict) -> Optional[list]:
    if op.type == "where" and inputs and inputs[0] in constants:
        cond = constants[inputs[0]]
        branch = inputs[1] if cond.all() else inputs[2] if not cond.any() else None
        if branch is not None and branch.dtype is op.outputs[0].dtype and tuple(branch.shape) == tuple(
                op.outputs[0].shape):
            return [branch]
    if not inputs or not all(t in constants for t in inputs):
        return None
    values = [constants[t] for t in inputs]
    if sum(np.prod(t.shape, dtype=np.int64) for t in op.outputs if t.shape.is_fully_defined()) > \
            sum(v.size for v in values) + _FOLD_GROWTH_LIMIT:
        return None
    try:
        results = get_op(op.type).reference(values, op.attrs, None)
    except Exception:  # noqa: BLE001 - an op that fails on its constants fails at run time, with its own message
        return None
    return [_const(new, np.asarray(r, dtype=t.dtype.np).reshape(r.shape), op.name, op.location, constants)
            for r, t in zip(results, op.outputs)]


def as_frozen(sess_or_model, inputs: TensorsArg = None, outputs: TensorsArg = None) -> FrozenGraph:
    """What exporters take: a Session (with ``outputs``, optionally ``inputs``), a FrozenGraph,
    or a loaded model (optionally restricted to some of its outputs, named as strings)."""
    if isinstance(sess_or_model, FrozenGraph):
        frozen = sess_or_model
    elif hasattr(sess_or_model, "frozen"):
        frozen = sess_or_model.frozen
    else:
        if outputs is None:
            raise FreezeError("exporting from a Session needs outputs={name: tensor}")
        return freeze(sess_or_model, outputs, inputs)
    if outputs is None:
        return frozen
    names = list(outputs) if not isinstance(outputs, str) else [outputs]
    unknown = [n for n in names if n not in frozen.outputs]
    if unknown:
        raise FreezeError(f"the model has no output(s) {unknown}; its outputs are {sorted(frozen.outputs)}")
    return FrozenGraph(frozen.graph, frozen.inputs, {n: frozen.outputs[n] for n in names})

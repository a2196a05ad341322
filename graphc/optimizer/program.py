"""The Program: an immutable, SSA, straight-line form of the part of a graph a run needs.

The user's Graph is append-only and never touched by compilation. ``lower`` prunes it to
what the fetches need (fed tensors cut the graph), numbers every value, drops structural
nodes (no_op, variable declarations), and orders variable effects: a read happens before a
write to the same variable unless it depends on that write. Passes are pure functions
``Program -> Program``; backends compile Programs.

Values are ints. A value is either a feed (``Program.feeds``) or an output of exactly one
Instr. ``Instr.after`` holds values whose producers must run before the instr even though
it does not read them; only stateful instrs carry such edges.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Optional, Sequence

from ..attrs import Attrs
from ..errors import FeedError, GraphcError
from ..graph import Graph, Operation, Tensor, ancestors
from ..ops.registry import get_op
from ..shapes import TensorType, format_shape


@dataclass(frozen=True)
class Origin:
    """The user's node an instr came from, for error messages."""

    name: str
    op: str
    location: str

    def __str__(self) -> str:
        return f"{self.op} '{self.name}' (created at {self.location})"


@dataclass(frozen=True)
class Instr:
    op: str
    inputs: tuple
    outputs: tuple
    attrs: Attrs
    after: tuple = ()
    origin: Optional[Origin] = None

    @property
    def opdef(self):
        return get_op(self.op)


@dataclass(frozen=True)
class Program:
    instrs: tuple
    types: Mapping[int, TensorType]
    feeds: tuple
    fetches: tuple
    # value -> the user's tensor name ("x:0"), for messages and explain()
    names: Mapping[int, str] = field(default_factory=dict)
    # Set by the fusion pass: the kernel groups, in execution order (optimizer/fusion.py).
    groups: Optional[tuple] = None
    # Set by the memory-planning pass (optimizer/memory.py).
    buffers: Optional[object] = None
    # Analyses of the instrs (the symbolic shapes), shared by the Programs that differ only in
    # their groups and buffer plan (``with_plan``): each is computed once.
    analyses: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "types", MappingProxyType(dict(self.types)))
        object.__setattr__(self, "names", MappingProxyType(dict(self.names)))

    def with_plan(self, groups=None, buffers=None) -> "Program":
        """This Program with kernel groups (and a buffer plan) set; its analyses carry over."""
        return Program(self.instrs, self.types, self.feeds, self.fetches, self.names, groups, buffers, self.analyses)

    def symbolic(self):
        """The symbolic shapes of this Program's values (optimizer/symbolic.py), computed once."""
        sym = self.analyses.get("symbolic")
        if sym is None:
            from .symbolic import SymbolicShapes
            sym = self.analyses["symbolic"] = SymbolicShapes(self)
        return sym

    def producers(self) -> dict:
        """value -> index of the instr that produces it."""
        return {v: i for i, ins in enumerate(self.instrs) for v in ins.outputs}

    def consumers(self) -> dict:
        """value -> indices of the instrs that read it (data inputs only)."""
        out: dict[int, list] = {}
        for i, ins in enumerate(self.instrs):
            for v in ins.inputs:
                out.setdefault(v, []).append(i)
        return out

    def name_of(self, value: int) -> str:
        return self.names.get(value, f"%{value}")

    def validate(self, where: str = "program") -> None:
        """Check SSA form, ordering and that every instr's types still follow its inference."""
        defined = set(self.feeds)
        for ins in self.instrs:
            for v in ins.inputs + ins.after:
                if v not in defined:
                    raise GraphcError(f"{where}: {ins.op} uses %{v} before it is defined")
            in_types = [self.types[v] for v in ins.inputs]
            try:
                out_types = list(ins.opdef.infer(in_types, ins.attrs))
            except Exception as e:  # a rewrite produced something its op rejects
                raise GraphcError(f"{where}: {ins.op} from {ins.origin} no longer type-checks: {e}") from None
            if len(out_types) != len(ins.outputs):
                raise GraphcError(f"{where}: {ins.op} declares {len(ins.outputs)} outputs, infers {len(out_types)}")
            for v, t in zip(ins.outputs, out_types):
                if v in defined:
                    raise GraphcError(f"{where}: %{v} is defined twice")
                have = self.types[v]
                if have.dtype is not t.dtype or not have.shape.is_compatible_with(t.shape):
                    raise GraphcError(f"{where}: {ins.op} output %{v} is recorded as {have} but infers {t}")
                defined.add(v)
        for v in self.fetches:
            if v not in defined:
                raise GraphcError(f"{where}: fetched %{v} is never defined")

    def format(self) -> str:
        lines = [f"program: {len(self.feeds)} feed(s), {len(self.instrs)} instr(s), "
                 f"fetches {', '.join(f'%{v}' for v in self.fetches) or 'none'}"]
        for v in self.feeds:
            lines.append(f"  %{v} = feed {self.name_of(v)}  {self.types[v]}")
        for ins in self.instrs:
            outs = ", ".join(f"%{v}" for v in ins.outputs) or "_"
            args = ", ".join(f"%{v}" for v in ins.inputs)
            attrs = "" if not ins.attrs else f" {ins.attrs!r}"
            after = f" after {', '.join(f'%{v}' for v in ins.after)}" if ins.after else ""
            types = ", ".join(str(self.types[v]) for v in ins.outputs)
            where = f"  # {ins.origin.name} @ {ins.origin.location}" if ins.origin else ""
            lines.append(f"  {outs} = {ins.op}({args}){attrs}{after}  {types}{where}")
        return "\n".join(lines)

    __str__ = format


VARIABLE_WRITES = frozenset({"assign", "assign_add", "assign_sub"})
# Ops whose output shares its input's storage (no kernel, no copy). Every backend, the memory
# plan and the state rules read this one set.
VIEW_OPS = frozenset({"reshape", "expand_dims", "squeeze", "identity", "stop_gradient"})


def _missing_feed_error(placeholders: Sequence[Operation]) -> FeedError:
    lines = [f"  '{p.outputs[0].name}' {p.outputs[0].dtype.name}{format_shape(p.outputs[0].shape)} "
             f"(created at {p.location})" for p in placeholders]
    noun = "placeholder" if len(placeholders) == 1 else "placeholders"
    return FeedError(f"you must feed a value for {len(placeholders)} {noun} the fetches depend on:\n"
                     + "\n".join(lines))


def lower(graph: Graph, targets: Sequence, fed: Sequence[Tensor], fed_ranks: Optional[Mapping] = None) -> Program:
    """Prune ``graph`` to what ``targets`` (Tensors and Operations) need and number it.

    ``fed`` tensors become the Program's feeds, in that order; their producers are not run
    unless something else needs them. Raises FeedError naming every placeholder that is
    needed but not fed. ``fed_ranks`` gives the rank of each fed placeholder made without a
    shape: the Program is specialized to it (``_specialize``).
    """
    fed_ids = {t: i for i, t in enumerate(fed)}
    # -- which ops are needed -----------------------------------------------------------
    needed = ancestors(targets, fed_ids)

    ordered = sorted(needed, key=lambda op: op._id)
    missing = [op for op in ordered if op.type == "placeholder"]
    if missing:
        raise _missing_feed_error(missing)

    # -- number values ------------------------------------------------------------------------
    value_of: dict = dict(fed_ids)
    types = {i: t.type for t, i in fed_ids.items()}
    names = {i: t.name for t, i in fed_ids.items()}
    next_id = len(fed_ids)
    for op in ordered:
        for t in op.outputs:
            if t not in value_of:
                value_of[t] = next_id
                # An unfed placeholder_with_default is its default: it has the default's type.
                types[next_id] = op.inputs[0].type if op.type == "placeholder_with_default" else t.type
                names[next_id] = t.name
                next_id += 1

    # -- effect ordering ---------------------------------------------------------------------
    # writes_before[op]: bitmask of the variable writes that are ancestors of op.
    writes = [op for op in ordered if op.type in VARIABLE_WRITES]
    write_bit = {op: 1 << i for i, op in enumerate(writes)}
    writes_before: dict = {}
    for op in ordered:
        mask = 0
        preds = [t.op for t in op.inputs if t not in fed_ids] + list(op.control_inputs)
        for p in preds:
            mask |= writes_before.get(p, 0) | write_bit.get(p, 0)
        writes_before[op] = mask
    after: dict = {op: set() for op in ordered}
    reads_of: dict = {}
    for op in ordered:
        if op.type == "read_variable":
            reads_of.setdefault(op.attrs["var"], []).append(op)
    for op in ordered:
        if op.type in VARIABLE_WRITES or op.type == "read_variable":
            after[op].update(w for w in writes if writes_before[op] & write_bit[w])
    for w in writes:
        for r in reads_of.get(w.attrs["var"], ()):
            if not writes_before[r] & write_bit[w]:
                after[w].add(r)

    # -- order: data edges and effect edges, ties broken by creation order ----------------------
    producer = {t: t.op for op in ordered for t in op.outputs}
    deps: dict = {}
    for op in ordered:
        d = {producer[t] for t in op.inputs if t not in fed_ids}
        d |= {c for c in op.control_inputs}
        d |= after[op]
        deps[op] = d & needed
    indegree = {op: len(deps[op]) for op in ordered}
    dependents: dict = {op: [] for op in ordered}
    for op in ordered:
        for d in deps[op]:
            dependents[d].append(op)
    heap = [(op._id, op) for op in ordered if indegree[op] == 0]
    heapq.heapify(heap)
    schedule = []
    while heap:
        _, op = heapq.heappop(heap)
        schedule.append(op)
        for nxt in dependents[op]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(heap, (nxt._id, nxt))
    if len(schedule) != len(ordered):
        stuck = sorted({op.attrs["var"] for op in ordered if indegree[op] and "var" in op.attrs})
        raise GraphcError(
            "the fetched ops order reads and writes of variable(s) " + ", ".join(map(repr, stuck))
            + " in a cycle (control dependencies contradict read-before-write); add explicit "
            "gc.control_dependencies to say which comes first")

    # Writes to one variable happen in one order that the Program states: each waits for the
    # previous one in this schedule. Without the edge, two writes that nothing orders could
    # run in either order after fusion, and the backends could disagree.
    last_write: dict = {}
    for op in schedule:
        if op.type in VARIABLE_WRITES:
            previous = last_write.get(op.attrs["var"])
            if previous is not None:
                after[op].add(previous)
            last_write[op.attrs["var"]] = op

    attrs_of = {}
    if fed_ranks:
        attrs_of = _specialize(schedule, fed_ranks, value_of, types, len(fed_ids))

    # -- emit ------------------------------------------------------------------------------------
    instrs = []
    for op in schedule:
        if get_op(op.type).structural:
            continue
        after_values = tuple(sorted(value_of[a.outputs[0]] for a in after[op] if a.outputs))
        instrs.append(Instr(
            op="identity" if op.type == "placeholder_with_default" else op.type,
            inputs=tuple(value_of[t] for t in op.inputs),
            outputs=tuple(value_of[t] for t in op.outputs),
            attrs=Attrs() if op.type == "placeholder_with_default" else attrs_of.get(op, op.attrs),
            after=after_values,
            origin=Origin(op.name, op.type, op.location),
        ))
    fetches = tuple(value_of[t] for t in targets if isinstance(t, Tensor))
    return Program(tuple(instrs), types, tuple(range(len(fed_ids))), fetches, names)


def _specialize(schedule, fed_ranks: Mapping, value_of: dict, types: dict, n_fed: int) -> dict:
    """Types for the fed rank of each placeholder made without a shape (TF1's
    ``tf.placeholder(tf.float32)``): the graph was built knowing only dtypes downstream of it
    (graph.py ``_infer_without_rank``); here every op's inference runs again on the fed ranks,
    so the checks that need a rank run now, naming the op and where it was made. Returns the
    attrs rewritten for those ranks (a reshape back to the shape of such a tensor)."""
    from ..errors import InferenceError
    from ..graph import op_failure_message
    from ..ops.shape_spec import expand_all_refs

    for t, rank in fed_ranks.items():
        types[value_of[t]] = TensorType(t.dtype, (None,) * rank)
    fed_text = ", ".join(f"'{t.op.name}' fed a rank-{r} value" for t, r in fed_ranks.items())
    attrs_of = {}
    for op in schedule:
        if op.type == "placeholder_with_default" or get_op(op.type).structural:
            continue
        in_types = [types[value_of[t]] for t in op.inputs]
        if all(it == t.type for it, t in zip(in_types, op.inputs)) and all(t.shape.known_rank for t in op.outputs):
            continue
        attrs = op.attrs
        if isinstance(attrs.get("shape"), tuple):  # a reshape or fill to the shape of a rank-free tensor
            attrs = attrs.replace(shape=expand_all_refs(attrs["shape"], in_types))
            if attrs != op.attrs:
                attrs_of[op] = attrs
        try:
            out_types = get_op(op.type).infer(in_types, attrs)
        except InferenceError as e:
            specialized = ", ".join(f"{t.name} {it}" for t, it in zip(op.inputs, in_types)) or "none"
            raise e.kind(op_failure_message(op.type, op.name, op.inputs, str(e), op.location,
                                            when=f" (with {fed_text})") + f"\n  as fed: {specialized}") from None
        for t, new in zip(op.outputs, out_types):
            if value_of[t] >= n_fed:  # a fed output keeps the type of its feed
                types[value_of[t]] = new
    return attrs_of

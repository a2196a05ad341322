"""Memory planning: which materialized values share a buffer.

Liveness runs over the kernel groups in execution order. A value's buffer is free for reuse
after the last group that reads it (or any view of it). Outputs of an elementwise group may
take over a same-sized input buffer that dies in that group (in place). Feeds, constants
and variables live outside the plan; fetched values get buffers that are never reused.

Sizes are symbolic (an integer times a product of symbolic dims), so the plan holds for any
batch size; ``peak_bytes`` / ``naive_bytes`` evaluate it for concrete dims.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

from ..errors import GraphcError
from .fusion import group_passes, trivial_groups
from .program import Program, VARIABLE_WRITES, VIEW_OPS
from .state import data_reads
from .symbolic import SymbolicShapes, SymSize  # noqa: F401  (SymSize: the plan's sizes)

# values stored outside the plan: constants and variables (reads and write results)
EXTERNAL_OPS = frozenset({"const", "read_variable"}) | VARIABLE_WRITES


@dataclass(frozen=True)
class BufferPlan:
    buffer_of: Mapping           # planned value -> buffer id
    capacity: Mapping            # buffer id -> SymSize
    alias_of: Mapping            # view value -> the value whose buffer it shares
    inplace: tuple               # (output value, input value) pairs written in place
    sizes: Mapping               # planned value -> SymSize
    pinned: frozenset            # buffers never reused (fetched values)
    live: Mapping = field(default_factory=dict)  # planned value -> (first group, last group)
    collective: frozenset = frozenset()  # buffers a collective reduces in place (_collective_in_place)

    def peak_bytes(self, binding: Mapping) -> int:
        return sum(c.evaluate(binding) for c in self.capacity.values())

    def naive_bytes(self, binding: Mapping) -> int:
        return sum(s.evaluate(binding) for s in self.sizes.values())

    def root(self, v: int) -> int:
        while v in self.alias_of:
            v = self.alias_of[v]
        return v

    def format(self, program: Program, binding: Optional[Mapping] = None) -> str:
        lines = [f"buffer plan: {len(self.sizes)} planned values in {len(self.capacity)} buffers"
                 f" ({len(self.inplace)} written in place)"]
        if binding is not None:
            peak, naive = self.peak_bytes(binding), self.naive_bytes(binding)
            saved = 100.0 * (1 - peak / naive) if naive else 0.0
            lines.append(f"  planned peak {peak:,} bytes vs {naive:,} without planning ({saved:.0f}% less)")
        by_buffer: dict = {}
        for v, b in self.buffer_of.items():
            by_buffer.setdefault(b, []).append(v)
        for b in sorted(by_buffer):
            cap = self.capacity[b]
            size = f"{cap.evaluate(binding):,} bytes" if binding is not None else f"{cap} bytes"
            pin = " (fetched: never reused)" if b in self.pinned else ""
            values = ", ".join(f"%{v}[{self.live[v][0]}..{self.live[v][1]}]" for v in sorted(by_buffer[b]))
            lines.append(f"  buffer {b}: {size}{pin}: {values}")
        return "\n".join(lines)


def plan_memory(program: Program, reuse: bool = True):
    """Program with groups -> Program with ``buffers`` set; returns (program, stats)."""
    if program.groups is None:  # fusion is off: one kernel per op
        program = program.with_plan(trivial_groups(program))
    groups = program.groups
    sym = program.symbolic()
    instrs = program.instrs
    producer_group: dict = {}
    for k, g in enumerate(groups):
        for i in g.members:
            for v in instrs[i].outputs:
                producer_group[v] = k

    alias_of: dict = {}
    external: set = set(program.feeds)
    planned: list = []
    for k, g in enumerate(groups):
        for i in g.members:
            ins = instrs[i]
            if g.kind == "view" and ins.op in VIEW_OPS:
                alias_of[ins.outputs[0]] = ins.inputs[0]
            elif ins.op in EXTERNAL_OPS or g.kind == "shape":
                external.update(ins.outputs)
        if g.is_kernel:
            planned.extend(v for v in g.outputs if v not in external and v not in alias_of)

    def root(v):
        while v in alias_of:
            v = alias_of[v]
        return v

    in_place = _collective_in_place(program, planned, alias_of)
    for out, v in in_place.items():
        alias_of[out] = v

    last_use: dict = {}
    for k, g in enumerate(groups):
        for v in g.inputs:
            r = root(v)
            last_use[r] = max(last_use.get(r, -1), k)
    end = len(groups)
    fetched_roots = {root(v) for v in program.fetches}
    for r in fetched_roots:
        last_use[r] = end

    sizes = {v: sym.nbytes(v) for v in planned}
    collective_inputs = {root(v) for v in in_place.values()}
    buffer_of: dict = {}
    capacity: dict = {}
    pinned: set = set()
    free: list = []
    inplace: list = []
    live: dict = {}
    next_buffer = 0
    for k, g in enumerate(groups):
        if not g.is_kernel and g.kind != "collective":  # (a collective's inputs die at its wait)
            continue
        outs = [v for v in g.outputs if v in sizes]
        dying_inputs = [root(v) for v in g.inputs if root(v) in buffer_of and last_use.get(root(v)) == k
                        and root(v) not in fetched_roots]
        taken: set = set()
        # Element i of an output may overwrite element i of an input of the same shape: true in
        # elementwise groups and in the input (row) space of a reduction, where every member
        # reads its operands at the index it writes, unless a later pass of the group reads
        # that input again (fusion.group_passes: logsumexp and row epilogues re-run the prologue).
        row_space = sym.shape(instrs[g.root].inputs[0]) if g.kind == "reduce" else None
        stored_in, last_read_in = _pass_use(program, sym, g, root)
        for v in outs:
            live[v] = (k, last_use.get(v, k))
            need = sizes[v]
            chosen = None
            in_place_ok = g.kind == "elementwise" or (row_space is not None and sym.shape(v) == row_space)
            # a collective reduces in place: a buffer of its own, exactly its size, so that the
            # target can lay a bucket's buffers end to end (one MPI call, no packing)
            own = v in collective_inputs
            if reuse and in_place_ok and v not in fetched_roots and not own:
                for u in dying_inputs:
                    b = buffer_of[u]
                    if last_read_in.get(u, 0) > stored_in[v]:
                        continue
                    if b not in taken and sizes[u] == need and sym.shape(u) == sym.shape(v):
                        chosen = b
                        inplace.append((v, u))
                        break
            if chosen is None and reuse and v not in fetched_roots and not own:
                fits = [(capacity[b].coef, b) for b in free
                        if capacity[b].symbols == need.symbols and capacity[b].coef >= need.coef]
                if fits:
                    chosen = min(fits)[1]
                    free.remove(chosen)
            if chosen is None:
                chosen = next_buffer
                next_buffer += 1
                capacity[chosen] = need
            elif capacity[chosen].coef < need.coef:
                capacity[chosen] = need
            buffer_of[v] = chosen
            taken.add(chosen)
            if v in fetched_roots:
                pinned.add(chosen)
        # buffers whose value dies here become free after this group
        for v in set(root(x) for x in g.inputs) | set(outs):
            if v in buffer_of and last_use.get(v, k) <= k and v not in fetched_roots:
                b = buffer_of[v]
                holders = [u for u, bb in buffer_of.items() if bb == b and live.get(u, (0, -1))[1] > k]
                if not holders and b not in free and b not in taken - {buffer_of[v]}:
                    free.append(b)
    plan = BufferPlan(buffer_of, capacity, alias_of, tuple(inplace), sizes, frozenset(pinned), live,
                      frozenset(buffer_of[v] for v in collective_inputs))
    stats = {"buffers": len(capacity), "planned_values": len(sizes), "inplace": len(inplace)}
    return program.with_plan(program.groups, plan), stats


def _collective_in_place(program: Program, planned: list, alias_of: dict) -> dict:
    """{collective output: its input} for the inputs an all-reduce or broadcast can overwrite
    with its result (the output then shares the input's buffer, as a view does): made by a
    kernel into a planned buffer, read by nothing else, and neither fetched. Between its start
    and its wait, MPI writes the result there (codegen/schedule.py); any other reader could
    see it half written. Gradients handed to DistributedOptimizer are such inputs."""
    planned_set = set(planned)
    readers = program.consumers()
    producer = program.producers()
    fetched = set(program.fetches)

    def sole_use(v, reader) -> Optional[int]:
        """The planned value under ``v`` (through views: a bias gradient is a squeezed sum)
        if each value on the way is read by the next alone, and none is fetched."""
        while True:
            if v in fetched or set(readers.get(v, ())) != {reader}:
                return None
            if v not in alias_of:
                return v if v in planned_set else None
            v, reader = alias_of[v], producer[v]

    out: dict = {}
    for g in program.groups:
        if g.kind != "collective":
            continue
        (i,) = g.members
        ins = program.instrs[i]
        for v, o in zip(ins.inputs, ins.outputs):
            if ins.inputs.count(v) == 1 and o not in fetched and sole_use(v, i) is not None:
                out[o] = v
    return out


def _pass_use(program: Program, sym: SymbolicShapes, g, root_of) -> tuple:
    """({output value: the pass of ``g`` that first stores it}, {root of an input value: the
    last pass of ``g`` that reads it})."""
    instrs = program.instrs
    stored_in: dict = {}
    last_read_in: dict = {}
    for p, members in enumerate(group_passes(program, sym, g.kind, g.members, g.root)):
        for i in members:
            for v in instrs[i].outputs:
                stored_in.setdefault(v, p)
            for v in data_reads(instrs[i]):
                last_read_in[root_of(v)] = p
    return stored_in, last_read_in


def check_plan(program: Program) -> None:
    """No two values that share a buffer are alive at once (in-place pairs meet at one group)."""
    plan = program.buffers
    by_buffer: dict = {}
    for v, b in plan.buffer_of.items():
        by_buffer.setdefault(b, []).append(v)
    inplace = set(plan.inplace)
    for b, values in by_buffer.items():
        spans = sorted((plan.live[v], v) for v in values)
        for (s1, v1), (s2, v2) in zip(spans, spans[1:]):
            if s2[0] < s1[1] or (s2[0] == s1[1] and (v2, v1) not in inplace):
                raise GraphcError(f"memory plan: %{v1} (groups {s1}) and %{v2} (groups {s2}) overlap in buffer {b}")

"""Fusion: partition a Program into kernel groups, each of which becomes one kernel.

Group kinds:
  * ``elementwise``: elementwise ops over one iteration space (every member's output has
    the same symbolic shape); inputs from outside may broadcast into it.
  * ``reduce``: one reduction (the root) with an elementwise prologue in its input space and
    epilogues in its output space or, row by row, in its input space. A backend with
    ROW_REDUCTION_CHAINS also takes the earlier reductions over the same rows whose results
    the prologue reads (softmax and layer norm are then one group each, else two).
  * ``matmul`` / ``conv``: the product with an elementwise epilogue (bias add, activation).
  * ``op``: any other op, alone, with a kernel of its own (codegen/emit/ops.py, OP_KERNELS).
  * ``view``: no kernel at all: constants, variable reads and reshapes share a buffer.
  * ``shape``: no kernel at all: small values computed only from run-time *shapes* (the
    count a mean divides by, ``gc.shape(x)[0]``); a backend computes them once per set of
    concrete input shapes.
  * ``collective``: no kernel: a data-parallel all-reduce or broadcast, alone, which the host
    runs as a start and a wait between kernels (codegen/schedule.py).

Groups are convex (no path leaves a group and comes back), so they can run one after the
other in a topological order. Cost rules from NUMBA_NOTES.md: fusing cheap, memory-bound
ops pays; without SVML, transcendentals do not vectorize, so a group takes at most
``MAX_TRANSCENDENTALS`` of them.
"""
from __future__ import annotations

import heapq
import weakref

from dataclasses import dataclass
from typing import Optional

from ..ops.collective import STEP_COLLECTIVES
from ..ops.reduce import REDUCTIONS
from .program import Program, VARIABLE_WRITES, VIEW_OPS
from .state import ROW_REDUCTION_CHAINS, storage_values, write_refusal
from .symbolic import SymbolicShapes

MAX_GROUP_OPS = 64
MAX_TRANSCENDENTALS = 8
# groups of these run no kernel: views share their input's storage, constants and variable
# reads are stored outside the memory plan
NO_KERNEL_OPS = VIEW_OPS | {"const", "read_variable"}
TRANSCENDENTAL_OPS = frozenset({"exp", "expm1", "log", "log1p", "tanh", "sigmoid", "erf", "sin", "cos", "pow",
                                "softplus", "gelu", "elu"})
ROOT_KINDS = {"matmul": "matmul", "conv2d": "conv"}
ROOT_KINDS.update({op: "reduce" for op in REDUCTIONS})


@dataclass(frozen=True)
class KernelGroup:
    kind: str
    members: tuple      # instr indices, in program order
    inputs: tuple       # values whose data the group reads from outside
    outputs: tuple      # values the group must materialize (read outside, fetched, or effects)
    root: Optional[int] = None  # instr index of the reduction / matmul / conv
    shape_inputs: tuple = ()    # values from outside of which only the run-time shape is used

    @property
    def is_kernel(self) -> bool:
        return self.kind not in ("view", "shape", "collective")

    def label(self, program: Program, k: int, word: str = "kernel") -> str:
        """How errors, traces and profiles name the group: ``kernel 3: reduce [exp reduce_sum]``."""
        return f"{word} {k}: {self.kind} [{' '.join(program.instrs[i].op for i in self.members)}]"


# Ops that read at most one data input, broadcast into their output: fusable like elementwise ops.
BROADCASTING_OPS = frozenset({"broadcast_to", "fill"})
SHAPE_VALUE_MAX_ELEMENTS = 64


def _is_elementwise(program: Program, ins) -> bool:
    if ins.opdef.elementwise or ins.op in BROADCASTING_OPS:
        return True
    if ins.op in VARIABLE_WRITES:  # a variable update is an elementwise store of the new value
        value_t = program.types[ins.inputs[0]]
        return tuple(value_t.shape) == tuple(ins.attrs["shape"])
    return False


def shape_values(program: Program) -> set:
    """Values that depend only on run-time shapes (and constants), and are small."""
    found: set = set()
    producer = {}
    for ins in program.instrs:
        opdef = ins.opdef
        if ins.op == "const":
            for v in ins.outputs:
                producer[v] = "const"
            continue
        if opdef.stateful or opdef.random or not ins.outputs:
            continue
        shape_only = set(opdef.shape_only_inputs(ins.attrs, len(ins.inputs)))
        data = [v for i, v in enumerate(ins.inputs) if i not in shape_only]
        small = all(program.types[v].shape.is_fully_defined()
                    and (program.types[v].shape.num_elements() or 0) <= SHAPE_VALUE_MAX_ELEMENTS
                    for v in ins.outputs)
        derived = ins.op == "shape" or (data and all(v in found or producer.get(v) == "const" for v in data)
                                        and any(v in found for v in data))
        if small and derived:
            found.update(ins.outputs)
    return found


def group_kind(program: Program, ins, shape_derived=frozenset()) -> str:
    if ins.outputs and all(v in shape_derived for v in ins.outputs):
        return "shape"
    if ins.op in NO_KERNEL_OPS:
        return "view"
    if ins.op in STEP_COLLECTIVES:
        return "collective"
    if ins.op in ROOT_KINDS:
        return ROOT_KINDS[ins.op]
    if _is_elementwise(program, ins):
        return "elementwise"
    return "op"


@dataclass(frozen=True)
class ReduceRoles:
    """The members of a reduce group besides its root: the ``prologue`` (input space, not
    depending on the root: computed as elements are loaded), ``post`` (output space: once
    per output element, after the root) and ``row`` (input space, depending on the root: a
    second pass over each row, as in softmax and layer norm). ``chain``: earlier reductions
    over the same rows, as ``(reduction, its prologue)`` in the order they run, each in a
    pass of its own before the root's; the root's prologue reads their per-row results (the
    mean before the variance of a layer norm, the max before the sum of a softmax)."""

    prologue: tuple
    post: tuple
    row: tuple
    chain: tuple = ()


_ROLES: dict = {}  # id(program) -> (weak reference to it, {(members, root): roles})


def reduce_roles(program: Program, sym: SymbolicShapes, members, root: int) -> ReduceRoles:
    """The roles of a reduce group's members, worked out once per program and group (the
    memory plan, the state rules and every backend's emitter ask; ``sym`` is the program's).
    Programs compare by value, which is slow to hash: the memo is keyed by identity."""
    key = (tuple(sorted(members)), root)
    entry = _ROLES.get(id(program))
    if entry is None or entry[0]() is not program:
        entry = _ROLES[id(program)] = (weakref.ref(program, lambda _, k=id(program): _ROLES.pop(k, None)), {})
    memo = entry[1]
    if key not in memo:
        memo[key] = _reduce_roles(program, sym, key[0], root)
    return memo[key]


def _reduce_roles(program: Program, sym: SymbolicShapes, members, root: int) -> ReduceRoles:
    instrs = program.instrs
    members = sorted(members)
    chained = [i for i in members if i != root and instrs[i].op in REDUCTIONS]
    depends = {instrs[root].outputs[0]}
    in_space = sym.shape(instrs[root].inputs[0])
    # what each chained reduction needs from the group: the members of its own prologue
    chain, feeds_chain_only = [], set()
    if chained:
        member_set = set(members)
        producer = {v: i for i in members for v in instrs[i].outputs}

        def ancestors_in_group(i):
            found, stack = set(), [i]
            while stack:
                for u in instrs[stack.pop()].inputs:
                    j = producer.get(u)
                    if j is not None and j in member_set and j not in found and instrs[j].op not in REDUCTIONS:
                        found.add(j)
                        stack.append(j)
            return found
        for c in chained:
            chain.append((c, tuple(sorted(ancestors_in_group(c)))))
        chain_feeders = {j for _, own in chain for j in own}
        # a feeder of a chained reduction that some other member also reads (the root's
        # prologue, an epilogue, or a member that combines a chained result with the rows)
        # is computed again in the later passes; only the rest is the chain's alone
        main_needs = set()
        for i in members:
            if i not in chained and i not in chain_feeders:
                main_needs |= ancestors_in_group(i)
        feeds_chain_only = chain_feeders - main_needs
    prologue, post, row = [], [], []
    for i in members:
        if i == root or i in chained or i in feeds_chain_only:
            continue
        ins = instrs[i]
        in_row_space = sym.shape(ins.outputs[0]) == in_space
        if any(u in depends for u in ins.inputs):
            depends.update(ins.outputs)
            (row if in_row_space else post).append(i)
        else:  # independent of the reduction: computed with it, or with the epilogue it feeds
            (prologue if in_row_space else post).append(i)
    return ReduceRoles(tuple(prologue), tuple(post), tuple(row), tuple(chain))


def _passes_in_order(program: Program, sym: SymbolicShapes, members, root: int) -> bool:
    """Whether a reduce group of ``members`` can run its passes in order (``group_passes``):
    no member of the root's pass (its prologue) reads an output-space epilogue, which runs
    after the root (the row pass, which runs after it, may). Found by the gradient fuzzer: with a chain, an
    epilogue of a *chained* result (``sum + c``) does not depend on the root, and a
    row-space member that reads it (broadcast back over the rows) landed in the prologue."""
    if sum(1 for i in members if program.instrs[i].op in REDUCTIONS) < 2:
        return True  # without a chain, an output-space member joins only by reading the root
    roles = _reduce_roles(program, sym, sorted(members), root)
    post = {v for i in roles.post for v in program.instrs[i].outputs}
    return not any(u in post for i in roles.prologue for u in program.instrs[i].inputs)


def chainable_rows(program: Program, sym: SymbolicShapes, first: int, then: int) -> bool:
    """Can reduction ``first`` run as a pass of its own before ``then`` in one row kernel?
    Both fold the trailing axes of one input space, keeping them, and neither is logsumexp
    (whose own second pass the row kernel has no room for)."""
    a, b = program.instrs[first], program.instrs[then]
    if "reduce_logsumexp" in (a.op, b.op) or a.attrs.get("axes") != b.attrs.get("axes"):
        return False
    x = a.inputs[0]
    rank = len(sym.shape(x))
    axes = tuple(a.attrs["axes"])
    return (bool(axes) and axes == tuple(range(rank - len(axes), rank)) and a.attrs.get("keepdims")
            and b.attrs.get("keepdims") and sym.shape(x) == sym.shape(b.inputs[0]))


def group_passes(program: Program, sym: SymbolicShapes, kind: str, members, root: Optional[int]) -> list:
    """How a group of ``kind`` runs its members: a list of passes, each the members it
    computes in order, element by element (each element's loads before its stores). The
    emitters of every backend keep to this; the memory plan (what may be written in place)
    and the state rules (what may be fused with a write) rely on it. A member in several
    passes is recomputed; a write among them is applied in its first pass only.

    A reduction: the prologue and the root's accumulation; again the prologue and the root's
    input for logsumexp's sum of exponentials; the output-space epilogue; then, with a row epilogue,
    the epilogue, prologue and row epilogue once more (the CPU re-runs the prologue, the GPU
    also every epilogue value the row needs). A matmul or conv: the product, then its
    epilogue. Anything else: one pass."""
    members = sorted(members)
    if kind == "reduce":
        roles = reduce_roles(program, sym, members, root)
        passes = [list(own) + [c] for c, own in roles.chain]  # chained reductions first, a pass each
        passes.append(list(roles.prologue) + [root])
        if program.instrs[root].op == "reduce_logsumexp":
            passes.append(list(roles.prologue) + [root])  # the root's input is read again
        passes.append(list(roles.post))
        if roles.row:
            passes.append(sorted(roles.post + roles.prologue + roles.row))
        return passes
    if kind in ("matmul", "conv"):
        return [[root], [i for i in members if i != root]]
    return [members]


class _Partition:
    """Union of instrs into groups, with the quotient DAG kept up to date."""

    def __init__(self, program: Program, sym: SymbolicShapes, capabilities=frozenset()):
        self.program = program
        self.sym = sym
        self.capabilities = frozenset(capabilities)
        self.storage = storage_values(program)
        self.writes = {i for i, ins in enumerate(program.instrs) if ins.op in VARIABLE_WRITES}
        instrs = program.instrs
        self.n = len(instrs)
        self.group = list(range(self.n))
        self.members = {i: [i] for i in range(self.n)}
        derived = shape_values(program)
        self.kind = {i: group_kind(program, ins, derived) for i, ins in enumerate(instrs)}
        self.root = {i: (i if self.kind[i] in ("reduce", "matmul", "conv") else None) for i in range(self.n)}
        self.space = {i: sym.shape(ins.outputs[0]) if ins.outputs else () for i, ins in enumerate(instrs)}
        self.transcendentals = {i: int(ins.op in TRANSCENDENTAL_OPS) for i, ins in enumerate(instrs)}
        producer = program.producers()
        self.producer = producer
        self.succ = {i: set() for i in range(self.n)}
        self.pred = {i: set() for i in range(self.n)}
        for i, ins in enumerate(instrs):
            for v in ins.inputs + ins.after:
                j = producer.get(v)
                if j is not None and j != i:
                    self.succ[j].add(i)
                    self.pred[i].add(j)

    def find(self, i: int) -> int:
        return self.group[i]

    def reachable(self, start: int, target: int, skip: int) -> bool:
        """Is ``target`` reachable from ``start`` without passing through group ``skip``?"""
        stack, seen = [start], {start}
        while stack:
            g = stack.pop()
            if g == target:
                return True
            for s in self.succ[g]:
                if s not in seen and s != skip:
                    seen.add(s)
                    stack.append(s)
        return False

    def convex_merge_ok(self, a: int, b: int) -> bool:
        for x, y in ((a, b), (b, a)):
            for s in self.succ[x]:
                if s != y and self.reachable(s, y, skip=x):
                    return False
        return True

    def merge(self, a: int, b: int, kind: str, root: Optional[int]) -> int:
        """Merge group b into group a."""
        for i in self.members[b]:
            self.group[i] = a
        self.members[a].extend(self.members.pop(b))
        self.kind[a] = kind
        self.root[a] = root
        self.transcendentals[a] += self.transcendentals.pop(b)
        for s in self.succ.pop(b):
            self.pred[s].discard(b)
            if s != a:
                self.succ[a].add(s)
                self.pred[s].add(a)
        for p in self.pred.pop(b):
            self.succ[p].discard(b)
            if p != a:
                self.pred[a].add(p)
                self.succ[p].add(a)
        self.succ[a].discard(a)
        self.pred[a].discard(a)
        del self.space[b], self.root[b], self.kind[b]
        return a

    def try_merge(self, a: int, b: int, kind: str, root: Optional[int]) -> bool:
        if a == b:
            return True
        if len(self.members[a]) + len(self.members[b]) > MAX_GROUP_OPS:
            return False
        if self.transcendentals[a] + self.transcendentals[b] > MAX_TRANSCENDENTALS:
            return False
        if not self.convex_merge_ok(a, b):
            return False
        if self.refusal(self.members[a] + self.members[b], kind, root) is not None:
            return False
        if kind == "reduce" and not _passes_in_order(self.program, self.sym, self.members[a] + self.members[b], root):
            return False
        self.merge(a, b, kind, root)
        return True

    def has_write(self, g: int) -> bool:
        return any(i in self.writes for i in self.members[g])

    def refusal(self, members, kind: str, root: Optional[int]) -> Optional[str]:
        """Why these members may not form one group (state rules, optimizer/state.py)."""
        if not any(i in self.writes for i in members):
            return None
        return write_refusal(self.program, self.sym, kind, members, root, self.storage, self.capabilities)

    def producer_groups(self, i: int) -> list:
        """Groups producing the data this instr reads (inputs read only for their shape don't
        count: a kernel does not need them computed, only their shape known)."""
        ins = self.program.instrs[i]
        shape_only = set(ins.opdef.shape_only_inputs(ins.attrs, len(ins.inputs)))
        out = []
        for k, v in enumerate(ins.inputs):
            if k in shape_only:
                continue
            j = self.producer.get(v)
            if j is not None:
                g = self.find(j)
                if g not in out:
                    out.append(g)
        return out


def fuse(program: Program, capabilities=frozenset()) -> tuple:
    """Program -> Program with ``groups`` set; returns (program, Counter-like dict of merges).
    ``capabilities`` are the target backend's (optimizer/state.py): what it can run in one
    group beyond what every backend can."""
    sym = program.symbolic()
    part = _Partition(program, sym, capabilities)
    instrs = program.instrs
    merges = {"elementwise": 0, "prologue": 0, "chain": 0, "epilogue": 0}

    # 1. elementwise chains and trees over one iteration space
    for i, ins in enumerate(instrs):
        if part.kind.get(part.find(i)) != "elementwise":
            continue
        for g in part.producer_groups(i):
            mine = part.find(i)
            if g == mine or part.kind.get(g) != "elementwise" or part.space[g] != part.space[mine]:
                continue
            if part.try_merge(g, mine, "elementwise", None):
                merges["elementwise"] += 1

    # 2. reductions absorb the elementwise groups that produce their input
    for i, ins in enumerate(instrs):
        if part.kind.get(part.find(i)) != "reduce" or part.root.get(part.find(i)) != i:
            continue
        in_space = sym.shape(ins.inputs[0])
        j = part.producer.get(ins.inputs[0])
        if j is None:
            continue
        g = part.find(j)
        if part.kind.get(g) == "elementwise" and part.space[g] == in_space:
            if part.try_merge(part.find(i), g, "reduce", i):
                merges["prologue"] += 1

    # 2b. a reduction absorbs an earlier reduction over the same rows whose per-row result its
    # prologue reads (the mean a variance subtracts, the max a softmax subtracts): one row
    # kernel then runs both, a pass each, and reads the rows from memory once. Only for a
    # backend whose reduce emitter runs such chains (ROW_REDUCTION_CHAINS).
    if ROW_REDUCTION_CHAINS in capabilities:
        for i, ins in enumerate(instrs):
            mine = part.find(i)
            if part.kind.get(mine) != "reduce" or part.root.get(mine) != i or part.has_write(mine):
                continue
            for member in sorted(part.members[mine]):
                for g in part.producer_groups(member):
                    mine = part.find(i)
                    if g == mine or part.kind.get(g) != "reduce" or part.has_write(g):
                        continue
                    first = part.root[g]
                    if not chainable_rows(program, sym, first, i):
                        continue
                    space = sym.shape(ins.inputs[0])
                    if any(instrs[j].op not in REDUCTIONS and sym.shape(instrs[j].outputs[0]) != space
                           for j in part.members[g]):
                        continue  # the earlier group has an output-space epilogue of its own
                    if part.try_merge(mine, g, "reduce", i):
                        merges["chain"] += 1

    # 3. elementwise groups that consume a reduction / matmul / conv become its epilogue;
    # groups that write variables come last, so a row epilogue (the large pass) is never
    # kept out of its reduction by a small variable update that got there first
    epilogue_order = [i for i in range(len(instrs)) if not part.has_write(part.find(i))]
    epilogue_order += [i for i in range(len(instrs)) if part.has_write(part.find(i))]
    for i in epilogue_order:
        ins = instrs[i]
        mine = part.find(i)
        if part.kind.get(mine) != "elementwise":
            continue
        for g in part.producer_groups(i):
            mine = part.find(i)
            kind = part.kind.get(g)
            if kind not in ("reduce", "matmul", "conv") or g == mine:
                continue
            root = part.root[g]
            root_ins = instrs[root]
            spaces = {sym.shape(root_ins.outputs[0])}
            if kind == "reduce":
                spaces.add(sym.shape(root_ins.inputs[0]))  # row epilogue, in the input space
            if part.space[mine] in spaces and part.try_merge(g, mine, kind, root):
                merges["epilogue"] += 1
                break

    groups = _finish(program, part)
    return program.with_plan(groups), {f"fuse_{k}": v for k, v in merges.items() if v}


def _finish(program: Program, part: _Partition) -> tuple:
    """KernelGroups in a topological order of the quotient DAG (ties: earliest member)."""
    # Kahn's algorithm with a heap keyed by each group's earliest member (here rather than
    # networkx, whose import alone cost 0.1 s of every process's start, benchmarks/W4)
    preds = {g: 0 for g in part.members}
    for succs in part.succ.values():
        for s in succs:
            preds[s] += 1
    ready = [(min(part.members[g]), g) for g, n in preds.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, g = heapq.heappop(ready)
        order.append(g)
        for s in part.succ.get(g, ()):
            preds[s] -= 1
            if preds[s] == 0:
                heapq.heappush(ready, (min(part.members[s]), s))
    if len(order) != len(preds):
        raise AssertionError("internal error: fusion made a cycle of kernel groups")
    group_of = {i: part.find(i) for i in range(part.n)}
    data_readers: dict = {}  # value -> instrs that read its data (not just its shape)
    for i, ins in enumerate(program.instrs):
        shape_only = set(ins.opdef.shape_only_inputs(ins.attrs, len(ins.inputs)))
        for k, v in enumerate(ins.inputs):
            if k not in shape_only:
                data_readers.setdefault(v, []).append(i)
    needed_outside = set(program.fetches)
    for ins in program.instrs:
        needed_outside.update(ins.after)
    groups = []
    for g in order:
        members = tuple(sorted(part.members[g]))
        member_set = set(members)
        inputs, shape_inputs, outputs = [], [], []
        for i in members:
            ins = program.instrs[i]
            shape_only = set(ins.opdef.shape_only_inputs(ins.attrs, len(ins.inputs)))
            for k, v in enumerate(ins.inputs):
                j = part.producer.get(v)
                if j is not None and j in member_set:
                    continue
                target = shape_inputs if k in shape_only else inputs
                if v not in target:
                    target.append(v)
            for v in ins.outputs:
                outside = any(group_of[c] != g for c in data_readers.get(v, ()))
                if outside or v in needed_outside or ins.opdef.stateful:
                    outputs.append(v)
        shape_inputs = [v for v in shape_inputs if v not in inputs]
        groups.append(KernelGroup(part.kind[g], members, tuple(inputs), tuple(outputs), part.root[g],
                                  tuple(shape_inputs)))
    return tuple(groups)


def trivial_groups(program: Program) -> tuple:
    """One group per instr (optimization levels below 2)."""
    part = _Partition(program, program.symbolic())
    return _finish(program, part)


def count_kernels(program: Program) -> int:
    return sum(1 for g in program.groups if g.is_kernel)

"""Variable state under compilation: the rules that keep reads and writes exact.

The semantics (README, *Variables*): within a run, a read of a variable sees the value from
before any write to it unless it depends on that write, and a write's result is the value
that write produced. Backends keep a read's value and a write's result in the variable's own
storage, without a copy, so such a value changes when a later write to the variable runs.
Two rules, both here, make that safe:

1. ``order_state``, a pass that every optimization level runs last before fusion, makes the
   Program say when each such value is used: every use of a value held in a variable's
   storage happens before the next write to that variable. A use that does not depend on
   that write gets an ordering edge (the write waits for it: no copy); a use that depends on
   the write, or a fetch, reads a ``snapshot`` instead, a copy taken before the write.
2. ``write_refusal`` says which kernel groups may hold a write, from how each group kind
   executes its members (``fusion.group_passes``) and what the backend can do (its
   capabilities). Fusion asks it before every merge; no backend repairs a group afterwards.
"""
from __future__ import annotations

import heapq
from dataclasses import replace
from typing import Optional

from ..attrs import Attrs
from .program import Instr, Program, VARIABLE_WRITES, VIEW_OPS

# Backend capabilities that widen what may be fused with a write (Backend.capabilities):
#   the matmul computes its whole product before its epilogue runs (the CPU backend's BLAS
#   call into a temporary), so the epilogue may write a variable the product reads.
MATMUL_PRODUCT_BEFORE_EPILOGUE = "matmul_product_before_epilogue"
# Not a state rule, but a capability of the same kind: the backend's reduce emitter runs
# a chain of reductions over the same rows in one kernel (fusion.reduce_roles' ``chain``).
ROW_REDUCTION_CHAINS = "row_reduction_chains"


def storage_values(program: Program) -> dict:
    """value -> (variable name, index of the read or write instr) for every value the
    backends keep in a variable's storage: reads, write results and views of those."""
    found: dict = {}
    for i, ins in enumerate(program.instrs):
        if ins.op == "read_variable" or ins.op in VARIABLE_WRITES:
            found[ins.outputs[0]] = (ins.attrs["var"], i)
        elif ins.op in VIEW_OPS and ins.inputs and ins.inputs[0] in found:
            found[ins.outputs[0]] = found[ins.inputs[0]]
    return found


def data_reads(ins: Instr) -> list:
    """The inputs whose data ``ins`` reads (not those it reads only for their shape)."""
    shape_only = set(ins.opdef.shape_only_inputs(ins.attrs, len(ins.inputs)))
    return [v for k, v in enumerate(ins.inputs) if k not in shape_only]


def order_state(program: Program):
    """Order every use of a value held in a variable's storage before the next write to that
    variable (see the module's docstring). Returns (program, counts)."""
    instrs = list(program.instrs)
    storage = storage_values(program)
    if not any(ins.op in VARIABLE_WRITES for ins in instrs):
        return program, {}
    producer = {v: i for i, ins in enumerate(instrs) for v in ins.outputs}
    # ancestors[i]: bitset of the instrs that run before instr i (data and ordering edges);
    # kept up to date as edges are added, so every decision sees the ones made before it
    ancestors = [0] * len(instrs)
    for i, ins in enumerate(instrs):
        for v in ins.inputs + ins.after:
            j = producer.get(v)
            if j is not None:
                ancestors[i] |= ancestors[j] | (1 << j)
    writes: dict = {}
    for i, ins in enumerate(instrs):
        if ins.op in VARIABLE_WRITES:
            writes.setdefault(ins.attrs["var"], []).append(i)
    readers: dict = {}  # storage value -> instrs that read its data (views pass it on)
    for i, ins in enumerate(instrs):
        if ins.op in VIEW_OPS and ins.outputs[0] in storage:
            continue
        for v in data_reads(ins):
            if v in storage:
                readers.setdefault(v, []).append(i)
    fetched = set(program.fetches)
    extra_after: dict = {}    # write index -> values it must wait for
    snapshots: list = []      # (value, write index, readers that take the copy)
    counts = {"ordered_before_write": 0, "snapshot": 0}

    def precedes(a: int, b: int) -> bool:
        return bool(ancestors[b] >> a & 1)

    def wait(write: int, value: int, j: int) -> None:
        extra_after.setdefault(write, []).append(value)
        gained = ancestors[j] | (1 << j)
        for k in range(len(instrs)):
            if k == write or precedes(write, k):
                ancestors[k] |= gained

    for value, (var, origin) in storage.items():
        # writes are chained (lowering orders them), so the first later one is the one to beat
        later = [w for w in writes.get(var, ()) if w != origin and not precedes(w, origin)]
        if not later:
            continue
        write = later[0]
        copy_for = []
        for j in readers.get(value, ()):
            if j == write or precedes(j, write):
                continue  # a write reads its operand element by element before it stores
            if precedes(write, j):
                copy_for.append(j)  # needs the old value after the write: only a copy has it
            else:
                wait(write, instrs[j].outputs[0], j)
                counts["ordered_before_write"] += 1
        if copy_for or value in fetched:
            snapshots.append((value, write, copy_for))
    if not snapshots and not extra_after:
        return program, {}

    # -- rebuild: snapshots right after the value they copy, then a stable topological order
    types = dict(program.types)
    names = dict(program.names)
    next_value = max([*types, -1]) + 1
    redirect: dict = {}       # (reader index, value) -> snapshot value
    fetch_redirect: dict = {}
    new_instrs: list = []     # (sort key, instr)
    for value, write, copy_for in snapshots:
        copy = next_value
        next_value += 1
        types[copy] = types[value]
        names[copy] = names.get(value, f"%{value}")
        origin_ins = instrs[producer[value]]
        new_instrs.append((producer[value] + 0.5, Instr("snapshot", (value,), (copy,), Attrs(), origin=origin_ins.origin)))
        extra_after.setdefault(write, []).append(copy)
        for j in copy_for:
            redirect[(j, value)] = copy
        if value in fetched:
            fetch_redirect[value] = copy
        counts["snapshot"] += 1
    for i, ins in enumerate(instrs):
        inputs = tuple(redirect.get((i, v), v) for v in ins.inputs)
        after = ins.after + tuple(v for v in dict.fromkeys(extra_after.get(i, ())) if v not in ins.after)
        if inputs != ins.inputs or after != ins.after:
            ins = replace(ins, inputs=inputs, after=after)
        new_instrs.append((float(i), ins))
    ordered = _topological(new_instrs)
    fetches = tuple(fetch_redirect.get(v, v) for v in program.fetches)
    return Program(tuple(ordered), types, program.feeds, fetches, names), {k: n for k, n in counts.items() if n}


def _topological(keyed: list) -> list:
    """Instrs in a topological order of data and ordering edges, ties by sort key."""
    producer = {v: k for k, (_, ins) in enumerate(keyed) for v in ins.outputs}
    waiting = [0] * len(keyed)
    dependents: dict = {}
    for k, (_, ins) in enumerate(keyed):
        for j in {producer[v] for v in ins.inputs + ins.after if v in producer}:
            waiting[k] += 1
            dependents.setdefault(j, []).append(k)
    heap = [(key, k) for k, (key, _) in enumerate(keyed) if waiting[k] == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        _, k = heapq.heappop(heap)
        out.append(keyed[k][1])
        for d in dependents.get(k, ()):
            waiting[d] -= 1
            if waiting[d] == 0:
                heapq.heappush(heap, (keyed[d][0], d))
    assert len(out) == len(keyed), "order_state made a cycle"
    return out


# --- which groups may hold a write ---------------------------------------------------------------
def write_refusal(program: Program, sym, kind: str, members, root: Optional[int], storage: dict,
                  capabilities=frozenset()) -> Optional[str]:
    """Why a kernel group of ``kind`` with ``members`` may not hold the variable writes among
    them (None: it may). ``storage`` is ``storage_values(program)``.

    A group runs its members in passes (``fusion.group_passes``); element by element, a pass
    loads what it reads before it stores, so a pass may read a variable and write it. A
    write is applied in the first pass that holds it; a later pass that recomputes it reads
    its result back. What breaks is a value loaded from the variable's storage again after
    the write changed it. Hence:
      * elementwise groups (one pass) take any write;
      * a reduction takes writes only in its output-space epilogue, which runs once per
        output element; no pass after the write may load the written variable again;
      * a matmul or conv epilogue may not write a variable its product reads: the product's
        other tiles (CUDA) or rows (the direct conv) may still be loading it; a backend whose
        matmul finishes the product first says so (MATMUL_PRODUCT_BEFORE_EPILOGUE).
    """
    from .fusion import group_passes, reduce_roles  # fusion imports this module
    instrs = program.instrs
    written = {instrs[i].attrs["var"] for i in members if instrs[i].op in VARIABLE_WRITES}
    if not written or kind in ("elementwise", "op"):
        return None
    member_set = set(members)
    outside = {v for i in members for v in data_reads(instrs[i])
               if v in storage and (storage[v][1] not in member_set)}
    reads_written = {v for v in outside if storage[v][0] in written}
    if kind in ("matmul", "conv"):
        root_reads = {v for v in data_reads(instrs[root]) if v in storage and storage[v][0] in written}
        if root_reads and not (kind == "matmul" and MATMUL_PRODUCT_BEFORE_EPILOGUE in capabilities):
            return f"its {instrs[root].op} reads variable {storage[next(iter(root_reads))][0]!r}, which it writes"
        return None
    roles = reduce_roles(program, sym, members, root)
    in_input_space = [i for i in roles.prologue + roles.row if instrs[i].op in VARIABLE_WRITES]
    if in_input_space:
        return "a reduction's prologue and row epilogue run more than once"
    passes = group_passes(program, sym, kind, members, root)
    write_pass = {}
    for p, members_of_pass in enumerate(passes):
        for i in members_of_pass:
            if instrs[i].op in VARIABLE_WRITES:
                write_pass.setdefault(i, p)
    first_write = min(write_pass.values())
    for members_of_pass in passes[first_write + 1:]:
        for i in members_of_pass:
            hit = [v for v in data_reads(instrs[i]) if v in reads_written]
            if hit:
                return f"a pass after its write loads variable {storage[hit[0]][0]!r} again"
    # ordering edges inside the group: a member that must run before a write may not first
    # run in a later pass (data edges always agree with the passes; ordering edges from the
    # state pass might not)
    first_pass: dict = {}
    for p, members_of_pass in enumerate(passes):
        for i in members_of_pass:
            first_pass.setdefault(i, p)
    producer_of = {v: i for i in members for v in instrs[i].outputs}
    for w, p in write_pass.items():
        for v in instrs[w].after:
            j = producer_of.get(v)
            if j is not None and first_pass.get(j, -1) > p:
                return "a member ordered before its write would run after it"
    return None

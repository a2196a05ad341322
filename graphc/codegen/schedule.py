"""The schedule: how a Program runs, decided once, for every target.

The optimizer leaves a Program with kernel groups in execution order and a buffer plan. The
schedule turns that into what a run needs, as plain data that the CPU, CUDA and native
targets only render (a Python driver, kernel launches, an njit driver over one workspace):

* a **place** for every value: a feed, a variable, a constant, a value the host computes
  from shapes alone, a planned buffer, an output the run returns, or a temporary (made by a
  kernel, with no planned buffer);
* **regions**, the memory a run allocates besides feeds, variables and constants (planned
  buffers, temporaries, and the scratch the kernels ask for), sized by symbolic sizes;
* **steps**, in order: one per kernel group, and two per collective group (a data-parallel
  all-reduce or broadcast): its *start*, placed right after the step that makes its last
  input, and its *wait*, at the group's own place, before the first step that reads its
  outputs. The kernels between the two run while the data moves (overlap). An all-reduce of
  many tensors (the gradients) starts in *buckets*, each as soon as its tensors are made
  (``collective_buckets``). The memory plan sees the group at its wait, so its inputs stay
  untouched until then (MPI may read them in place). Control flow runs in stages
  (codegen/control_flow.py);
* per kernel, its **arguments** as places, dims, regions and run-time services.

State snapshots are part of the Program (``snapshot`` instrs, optimizer/state.py), so a step
never copies state behind the program's back. ``bind`` gives, for one set of concrete feed
shapes, every shape and size, each region's bytes, and the values the host computes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Sequence

import numpy as np

from ..errors import InferenceError, InvalidArgumentError
from ..optimizer.memory import plan_memory
from ..optimizer.program import Program, VARIABLE_WRITES
from ..optimizer.symbolic import largest
from ..shapes import TensorType
from .backend import machine_memory
from .reference import evaluate as reference_evaluate, runtime_error

# Kinds of place.
FEED, VARIABLE, CONSTANT, HOST, BUFFER, OUTPUT, TEMPORARY = (
    "feed", "variable", "constant", "host", "buffer", "output", "temporary")


@dataclass(frozen=True)
class Place:
    """Where a value's data is during a run. ``key``: the feed's index, the variable's name,
    the constant's or host value's value number, the planned buffer's id, the first fetch
    index of an output, or the temporary's value number. ``value``: the value stored there
    (its dtype and shape)."""

    kind: str
    key: object
    value: int


@dataclass(frozen=True)
class Region:
    """Memory a run allocates: ``key`` is ("buffer", id), ("temporary", value) or
    ("scratch", dtype name, ordinal); ``sizes`` (SymSize, bytes): it holds the largest.
    A scratch region also keeps its ``uses``: per use, the itemsize and the factors (ints, or
    (value, axis) of a run's shape), because the symbolic sizes only hold where the shapes
    keep the symbolic assumptions (a general binding breaks them)."""

    key: tuple
    sizes: tuple
    uses: tuple = ()


# Kinds of step.
KERNEL, START, WAIT = "kernel", "start", "wait"


@dataclass(frozen=True)
class Step:
    """One step of a run, for group ``group`` (an index into ``program.groups``): "kernel", the
    run's ``kernel``-th kernel; "start", bucket ``bucket`` of a collective group (indices into
    its inputs: ``collective_buckets``); "wait", every bucket of a collective group."""

    kind: str
    group: int
    kernel: int = -1
    bucket: int = -1


@dataclass
class Binding:
    """The schedule for one set of concrete feed shapes."""

    shapes: Dict[int, tuple]
    sizes: Dict[int, int]                 # elements
    host_values: Dict[int, np.ndarray]    # flat: constants and values computed from shapes
    region_bytes: Dict[tuple, int]        # region key -> bytes
    fetch_shapes: list
    general: bool = False                 # the shapes break an assumption of the specialized kernels
    target: dict = field(default_factory=dict)  # what a target keeps per binding (pools, device buffers)


class Schedule:
    def __init__(self, program: Program):
        if program.buffers is None:  # optimize levels 0 and 1: every value its own buffer
            program = plan_memory(program, reuse=False)[0]
        self.program = program
        self.sym = program.symbolic()
        instrs = program.instrs
        self.producer = {v: ins for ins in instrs for v in ins.outputs}
        # a view shares its input's storage, and so does a collective's result written over its input
        self.alias: Dict[int, int] = dict(program.buffers.alias_of)
        self.host_members = frozenset(i for g in program.groups if g.kind == "shape" for i in g.members)
        self._host_values = {v for i in self.host_members for v in instrs[i].outputs}
        self.buckets = {gi: self.collective_buckets(gi) for gi, g in enumerate(program.groups)
                        if g.kind == "collective"}
        self.steps = self._order_steps()
        self._places: Dict[int, Place] = {}
        self.outputs = tuple(self.place(v) for v in program.fetches)
        regions = []
        plan = program.buffers
        members: dict = {}
        for v, b in plan.buffer_of.items():
            if self.place(v).kind == BUFFER:
                members.setdefault(b, []).append(v)
        for b in sorted(members):
            regions.append(Region(("buffer", b), tuple(largest(self.sym.nbytes(v) for v in members[b]))))
        for g in program.groups:
            if g.is_kernel:
                for v in self.materialized(g):
                    place = self.place(v)
                    if place.kind == TEMPORARY and place.key == v:
                        regions.append(Region(("temporary", v), (self.sym.nbytes(v),)))
        self.regions = tuple(regions)

    def _order_steps(self) -> tuple:
        """Kernels and collective waits in group order; each bucket's start right after the
        group that makes the last of its inputs."""
        starts: dict = {}  # group position -> [(collective group, bucket)]
        for gi, buckets in self.buckets.items():
            for b, (after, _) in enumerate(buckets):
                starts.setdefault(after, []).append(Step(START, gi, bucket=b))
        steps = list(starts.get(-1, ()))
        kernel = 0
        for gi, g in enumerate(self.program.groups):
            if g.is_kernel:
                steps.append(Step(KERNEL, gi, kernel))
                kernel += 1
            elif g.kind == "collective":
                steps.append(Step(WAIT, gi))
            steps.extend(starts.get(gi, ()))
        return tuple(steps)

    def collective_buckets(self, gi: int) -> list:
        """[(position, input indices)] for collective group ``gi``: its inputs grouped by the
        group that makes them (the position; -1: ready when the run starts), in the order they
        are made; for an all-reduce, runs of consecutive positions merge until a bucket holds
        the fusion threshold (``HOROVOD_FUSION_THRESHOLD``, distribute/world.py; a size known
        only at run time counts as large). A broadcast starts once, when every input is there.

        Why the fusion threshold, and not smaller buckets: a start costs a latency, and MPI
        moves data only inside MPI calls, so over shared memory nothing moves while the
        kernels run. Measured on 2 cores (W2, 2.7 MB of gradients, three paired runs), 1 MB
        buckets made the step 0.1-0.3 ms slower than one. A user whose network moves data on
        its own lowers the threshold to start earlier (docs/DISTRIBUTED.md)."""
        from ..distribute.world import fusion_threshold
        bucket_bytes = fusion_threshold()
        program = self.program
        (i,) = program.groups[gi].members
        ins = program.instrs[i]
        position = {v: k for k, g in enumerate(program.groups) for j in g.members for v in program.instrs[j].outputs}

        def made_at(v):
            return position.get(self.root(v), -1)
        earliest = max((made_at(v) for v in ins.after), default=-1)  # control dependencies
        ready = sorted(range(len(ins.inputs)), key=lambda k: (max(made_at(ins.inputs[k]), earliest), k))
        if ins.op != "collective_allreduce":
            return [(max(max(made_at(ins.inputs[k]), earliest) for k in ready), ready)]
        buckets, members, held = [], [], 0
        for n, k in enumerate(ready):
            members.append(k)
            size = self.sym.nbytes(ins.inputs[k])
            held += size.coef if not size.symbols else bucket_bytes
            at = max(made_at(ins.inputs[k]), earliest)
            last = n + 1 == len(ready)
            if last or (held >= bucket_bytes and max(made_at(ins.inputs[ready[n + 1]]), earliest) > at):
                buckets.append((at, members))
                members, held = [], 0
        return buckets

    def laid_end_to_end(self) -> list:
        """Per bucket of a collective, the planned buffers it reduces in place, in the bucket's
        order: a target that lays each list end to end in memory lets the bucket go to MPI as
        one span, with no packing (optimizer/memory.py, ``_collective_in_place``)."""
        plan = self.program.buffers
        out = []
        for gi, buckets in self.buckets.items():
            ins = self.program.instrs[self.program.groups[gi].members[0]]
            for _, members in buckets:
                places = [self.place(ins.inputs[k]) for k in members]
                run = [p.key for p in places if p.kind == BUFFER and p.key in plan.collective]
                if len(run) > 1:
                    out.append(run)
        return out

    def materialized(self, group) -> tuple:
        """The values a kernel group writes to memory: its outputs, and every output of an op
        that runs alone (its kernel writes them all, used or not)."""
        if group.kind == "op":
            return tuple(v for i in group.members for v in self.program.instrs[i].outputs)
        return group.outputs

    # -- places ----------------------------------------------------------------------------------------
    def root(self, v: int) -> int:
        while v in self.alias:
            v = self.alias[v]
        return v

    def place(self, v: int) -> Place:
        v = self.root(v)
        place = self._places.get(v)
        if place is None:
            place = self._places[v] = self._place_of(v)
        return place

    def _place_of(self, v: int) -> Place:
        program = self.program
        if v in program.feeds:
            return Place(FEED, program.feeds.index(v), v)
        ins = self.producer.get(v)
        if ins is not None and (ins.op == "read_variable" or ins.op in VARIABLE_WRITES):
            return Place(VARIABLE, ins.attrs["var"], v)
        if ins is not None and ins.op == "const":
            return Place(CONSTANT, v, v)
        if v in self._host_values:
            return Place(HOST, v, v)
        fetched = [j for j, f in enumerate(program.fetches) if self.root(f) == v]
        if fetched:
            return Place(OUTPUT, fetched[0], v)
        buffers = program.buffers
        if v in buffers.buffer_of and buffers.buffer_of[v] not in buffers.pinned:
            return Place(BUFFER, buffers.buffer_of[v], v)
        return Place(TEMPORARY, v, v)

    # -- kernel arguments --------------------------------------------------------------------------------
    def argument(self, key: tuple):
        """What a kernel parameter (``KernelCall.params``: ("in", v), ("out", v), ("var",
        name), ("dim", v, axis), ("scratch", dtype, ordinal), ("rng",), ("errors",), ("lo",),
        ("hi",)) is bound to: a Place, or the key itself for what is not a value's place."""
        if key[0] in ("in", "out"):
            return self.place(key[1])
        if key[0] == "var":
            return Place(VARIABLE, key[1], None)
        return key

    def scratch_regions(self, calls) -> tuple:
        """The scratch regions the kernels ask for (``KernelCall.scratch_uses``): one per
        (dtype, ordinal), as large as its largest use, shared by every kernel."""
        sizes: dict = {}
        uses: dict = {}
        for call in calls:
            for dtype, ordinal, factors in call.scratch_uses:
                key, itemsize = ("scratch", dtype, ordinal), np.dtype(dtype).itemsize
                dims = [f if isinstance(f, int) else self.sym.shape(f[0])[f[1]] for f in factors]
                sizes.setdefault(key, []).append(self.sym.size(dims, itemsize))
                uses.setdefault(key, []).append((itemsize, tuple(factors)))
        return tuple(Region(key, tuple(largest(sizes[key])), tuple(uses[key])) for key in sorted(sizes))

    # -- one set of concrete shapes --------------------------------------------------------------------
    def bind(self, feeds: Sequence[np.ndarray], scratch: tuple = (), check_memory: bool = True) -> Binding:
        """Every shape and size for these feeds, the host's values (computed with the reference
        ops), and each region's bytes (``scratch``: the targets' scratch regions, with their
        uses' concrete sizes in ``scratch_bytes``)."""
        program = self.program
        shapes = {v: f.shape for v, f in zip(program.feeds, feeds)}
        values: dict = {}
        for i, ins in enumerate(program.instrs):
            if ins.op == "const":
                values[ins.outputs[0]] = ins.attrs["value"]
            in_types = [TensorType(program.types[v].dtype, shapes[v]) for v in ins.inputs]
            try:
                out_types = ins.opdef.infer(in_types, ins.attrs)
            except InferenceError as e:
                dummies = [np.broadcast_to(np.zeros((), program.types[v].dtype.np), shapes[v]) for v in ins.inputs]
                raise runtime_error(program, ins, dummies, str(e)) from None
            for v, t in zip(ins.outputs, out_types):
                shapes[v] = tuple(t.shape)
            if i in self.host_members:
                arrays = [values[v] if v in values else np.broadcast_to(np.zeros((), program.types[v].dtype.np),
                                                                       shapes[v]) for v in ins.inputs]
                for v, out in zip(ins.outputs, reference_evaluate(ins, arrays, None, program)):
                    values[v] = out
        sizes = {v: int(np.prod(s, dtype=np.int64)) for v, s in shapes.items()}
        binding = Binding(shapes, sizes, {v: np.ascontiguousarray(values[v]).reshape(-1) for v in values}, {},
                          [shapes[v] for v in program.fetches])
        binding.general = self.sym.check_bindings(shapes) is not None
        nbytes = {v: sizes[v] * program.types[v].dtype.itemsize for v in sizes}
        members: dict = {}
        for v, b in program.buffers.buffer_of.items():
            members.setdefault(("buffer", b), []).append(v)
        for region in self.regions:
            if region.key[0] == "buffer":
                binding.region_bytes[region.key] = max(nbytes[v] for v in members[region.key])
            else:
                binding.region_bytes[region.key] = nbytes[region.key[1]]
        for region in scratch:
            binding.region_bytes[region.key] = self.scratch_bytes(region, shapes)
        if check_memory:
            self._check_memory(binding, nbytes)
        return binding

    def scratch_bytes(self, region: Region, shapes) -> int:
        """Bytes of a scratch region for concrete shapes: its uses' largest."""
        def use_bytes(itemsize, factors):
            n = itemsize
            for f in factors:
                n *= f if isinstance(f, int) else shapes[f[0]][f[1]]
            return n
        return max((use_bytes(*use) for use in region.uses), default=0)

    def _check_memory(self, binding: Binding, nbytes: dict) -> None:
        """A run whose regions and outputs would not fit in this machine's memory is an error
        naming the largest value, before anything is allocated: a fed shape that broadcasts
        to gigabytes was a bare NumPy MemoryError, or an allocation a kernel then touched."""
        outputs = {p.value for p in self.outputs if p.kind == OUTPUT}
        total = sum(binding.region_bytes.values()) + sum(nbytes[v] for v in outputs)
        limit = machine_memory()
        if total <= limit:
            return
        allocated = [v for v in nbytes if self.place(v).kind in (BUFFER, OUTPUT, TEMPORARY)] or list(nbytes)
        largest_value = max(allocated, key=lambda v: nbytes[v])
        program = self.program
        producer = next(i for i, ins in enumerate(program.instrs) if largest_value in ins.outputs)
        ins = program.instrs[producer]
        label = f"{ins.origin.op} '{ins.origin.name}'" if ins.origin else ins.op
        where = f"\n  created at {ins.origin.location}" if ins.origin else ""
        raise InvalidArgumentError(
            f"{label} at run time: this run needs {total:,} bytes of buffers, more than this machine's {limit:,} "
            f"bytes of memory; the largest is {program.name_of(largest_value)} "
            f"{program.types[largest_value].dtype.name}{list(binding.shapes[largest_value])} "
            f"({nbytes[largest_value]:,} bytes): check the shapes fed{where}")


def fetch_sources(schedule: Schedule) -> list:
    """Per fetch: ("returned", place) when the run makes the value for this fetch and hands it
    over as it is, else ("copied", place): a feed, a variable, a constant, or a value another
    fetch already returns."""
    out = []
    for j, place in enumerate(schedule.outputs):
        out.append(("returned" if place.kind == OUTPUT and place.key == j else "copied", place))
    return out

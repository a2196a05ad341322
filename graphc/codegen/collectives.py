"""Collectives as steps of a CPU run: the host side of the schedule's *start* and *wait*
steps (codegen/schedule.py) for a data-parallel all-reduce or broadcast.

The CPU driver (cpu/executable.py) calls ``start`` for each bucket right after the kernel
that makes its last tensor, and ``wait`` before the first kernel that reads a result. Each is
one call into distribute/world.py, which starts the MPI collective without blocking and
later waits for it, so the kernels in between run while the data moves. Every rank runs the
same schedule, so the ranks start the same buckets in the same order (MPI matches
collectives by order; the world checks it, bucket by bucket).
"""
from __future__ import annotations

from typing import List, Sequence


class CollectiveStep:
    """One collective group of a program: its buckets (``Schedule.buckets``) and what the
    world needs to start each."""

    def __init__(self, program, group, buckets: Sequence[tuple]):
        (i,) = group.members
        self.instr = i
        ins = program.instrs[i]
        self.op, attrs = ins.op, ins.attrs
        self.n_outputs = len(ins.outputs)
        self.members = [list(members) for _, members in buckets]
        n = len(self.members)
        # each bucket is a collective of its own: its key (checked to be the same on every
        # rank) says which part of the op it is
        self.keys = [attrs["key"] if n == 1 else f"{attrs['key']}, bucket {b + 1} of {n}" for b in range(n)]
        # an input whose output shares its buffer (optimizer/memory.py) receives its own result
        aliased = program.buffers.alias_of
        self.in_place = [[aliased.get(ins.outputs[k]) == ins.inputs[k] for k in members] for members in self.members]
        self.made_at = attrs["made_at"]
        self.average = attrs.get("reduction") == "average"
        self.root = attrs.get("root_rank")

    def trace_infos(self, program) -> dict:
        """What a traced run (gc.profiler) says of each step: {bucket: its start, -1: the wait}.
        A start reads its bucket's inputs; the wait hands over every result."""
        from ..profiler import KernelInfo
        infos = {}
        for b, members in enumerate(self.members):
            infos[b] = KernelInfo.for_instr(program, self.instr, f"{self.op} start, bucket {b + 1} of "
                                                                 f"{len(self.members)}")
            infos[b].reads, infos[b].writes = range(len(members)), ()
        infos[-1] = KernelInfo.for_instr(program, self.instr, f"{self.op} wait")
        infos[-1].reads, infos[-1].writes = (), range(self.n_outputs)
        return infos

    def start(self, bucket: int, arrays: Sequence, shapes: Sequence[tuple]):
        """Start bucket ``bucket`` (its arrays flat, with their shapes); returns what ``wait`` takes."""
        from ..distribute import world
        w = world.current("a collective op")
        if self.op == "collective_allreduce":
            return w.start_allreduce(arrays, self.average, self.keys[bucket], self.made_at, shapes,
                                     self.in_place[bucket])
        return w.start_broadcast(arrays, self.root, self.keys[bucket], self.made_at, shapes, self.in_place[bucket])

    def wait(self, pending: Sequence) -> List:
        """Every bucket's results, flat, in the op's output order (one written over its input
        is that input's array)."""
        from ..distribute import world
        w = world.current("a collective op")
        out: list = [None] * self.n_outputs
        for members, p in zip(self.members, pending):
            for k, o in zip(members, w.finish(p)):
                out[k] = o
        return out


def abandon() -> None:
    """A run stopped by an error: collectives it started and never waited for leave the
    world unusable (distribute/world.py, ``World.abandon``)."""
    from ..distribute import world
    if world.is_initialized():
        world.current().abandon("a run stopped by an error between starting a collective and waiting for it")

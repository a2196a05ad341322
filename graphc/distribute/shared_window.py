"""All-reduce among ranks on one machine, through memory they share (an MPI shared window).

MPI moves a large all-reduce between processes of one host through its own shared-memory
cells: copied in and out in pieces, in two phases, and only while the process is inside an
MPI call. Measured on 2 ranks, 2.6 MB of gradients took about 0.8-1 ms that way; one copy of
them takes about 60 µs. When every rank of the run is on this machine, each rank instead
gets a segment of one ``MPI.Win.Allocate_shared`` window that every other rank can read and
write as a NumPy array, and an all-reduce is:

1. *copy in*: each rank writes its arrays into its segment, one region per dtype, at the
   start step (an all-reduce that finds no room goes through MPI instead; at the end of the
   last one in flight, the ranks allocate a window with room for all of them together);
2. *barrier*;
3. *reduce*: rank ``r`` sums chunk ``r`` of each region over every segment, in rank order
   (divided by the size for an average), and writes the result into chunk ``r`` of every
   segment;
4. *barrier*: every segment now holds the whole result;
5. *copy out*: each rank copies its segment into its results.

The ranks compute each chunk once and copy it, so every rank gets the same bits. The window
has two halves used in turn, so the next all-reduce's copy-in never overwrites what a slower
rank still reads: two barriers per all-reduce. The barriers are MPI's (``Ibarrier`` waited
for by ``World.wait``, so a rank that fails or dies is caught as in any other collective).
``GRAPHC_SHARED_ALLREDUCE=0`` turns this off (MPI's all-reduce is used), as does a run whose
ranks span machines.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence

import numpy as np

ALIGN = 64  # bytes: each region starts on a cache line
LIMIT = 256 << 20  # bytes per half at most: all-reduces beyond it in flight go through MPI


def enabled(world) -> bool:
    """Whether ``world``'s all-reduces go through a shared window: more than one rank, all of
    them on this machine, and not turned off."""
    if os.environ.get("GRAPHC_SHARED_ALLREDUCE", "1").strip() in ("0", "false", "no", "off"):
        return False
    return world.size > 1 and world.local_size == world.size


def regions(arrays: Sequence[np.ndarray]) -> List[tuple]:
    """The layout of a bucket in a segment: [(dtype, byte offset, [(array index, element
    offset, elements)])], one region per dtype in order of first appearance."""
    by_dtype: dict = {}
    for i, a in enumerate(arrays):
        by_dtype.setdefault(a.dtype, []).append(i)
    out, at = [], 0
    for dtype, members in by_dtype.items():
        at = -(-at // ALIGN) * ALIGN
        placed, n = [], 0
        for i in members:
            placed.append((i, n, arrays[i].size))
            n += arrays[i].size
        out.append((dtype, at, placed, n))
        at += n * dtype.itemsize
    return out


def nbytes(layout: List[tuple]) -> int:
    if not layout:
        return 0
    dtype, at, _, n = layout[-1]
    return -(-(at + n * dtype.itemsize) // ALIGN) * ALIGN


class SharedWindow:
    """The window of one world (``World.shared``): each rank's segment has two halves, and the
    all-reduces in flight together (a run starts every bucket before it waits for the first)
    take consecutive places in one half. Once none is in flight, the next takes the other
    half: a rank only gets there after the barriers of the last one, which every rank passed
    after it had copied out everything before, so the half it writes is free. Every rank
    starts and finishes the same all-reduces in the same order, so their places agree."""

    def __init__(self, world):
        self.world = world
        self.comm = world.comm.Dup()  # its barriers and window: never matched against other collectives
        self.win = None
        self.capacity = 0             # bytes per half of each rank's segment
        self.segments: List[np.ndarray] = []  # every rank's segment, as bytes
        self.half = 0                 # the half the all-reduces in flight use
        self.used = 0                 # bytes of it they took
        self.in_flight = 0
        self.requested = 0            # bytes the all-reduces in flight asked for, placed or not
        self.wanted = 0               # the most a set in flight asked for: the next window's size
        self.grown = 0                # windows allocated (tests read these two)
        self.through_mpi = 0          # all-reduces that found no room and went through MPI

    def place(self, size: int) -> Optional[int]:
        """A byte offset for a new all-reduce of ``size`` bytes, or None if the window is too
        small (that all-reduce goes through MPI; ``grow`` makes room for the next time)."""
        if self.in_flight == 0:
            if self.used:
                self.half ^= 1
            self.used = self.requested = 0
        self.in_flight += 1
        self.requested += size
        self.wanted = max(self.wanted, self.requested)
        if self.used + size > self.capacity:
            return None
        at = self.used
        self.used += size
        return self.half * self.capacity + at

    def done(self) -> None:
        self.in_flight -= 1

    def grow(self) -> None:
        """Once no all-reduce is in flight: a window as large as the most the run had in flight
        at once (up to ``LIMIT``), if the one there is smaller. Collective: every rank calls it
        at the end of the same all-reduce, the ranks having agreed on it, with windows of the
        same history; nothing reads the old one any more (the reduction's reads of other
        segments end at its second barrier, and each rank frees its segment after its copy-out)."""
        capacity = -(-min(self.wanted, LIMIT) // ALIGN) * ALIGN
        if self.in_flight or capacity <= self.capacity:
            return
        MPI = self.world.MPI
        if self.win is not None:
            self.win.Unlock_all()
            self.win.Free()
        self.capacity = capacity
        self.win = MPI.Win.Allocate_shared(2 * self.capacity, 1, comm=self.comm)
        self.win.Lock_all()  # a passive epoch for the run's lifetime: Sync orders the memory
        self.segments = [np.ndarray(buffer=self.win.Shared_query(q)[0], dtype=np.uint8, shape=(2 * self.capacity,))
                         for q in range(self.comm.Get_size())]
        self.half, self.used = 0, 0
        self.grown += 1

    def copy_in(self, arrays: Sequence[np.ndarray], layout: List[tuple], base: int) -> None:
        own = self.segments[self.comm.Get_rank()]
        for dtype, at, placed, n in layout:
            region = own[base + at:base + at + n * dtype.itemsize].view(dtype)
            for i, start, count in placed:
                region[start:start + count] = arrays[i].reshape(-1)

    def reduce(self, layout: List[tuple], base: int, average: bool, what: str) -> None:
        """Steps 2-4: afterwards this rank's segment holds the result."""
        rank, size = self.comm.Get_rank(), self.comm.Get_size()
        self._barrier(what)
        for dtype, at, _, n in layout:
            lo, hi = n * rank // size, n * (rank + 1) // size
            if hi == lo:
                continue
            views = [seg[base + at:base + at + n * dtype.itemsize].view(dtype)[lo:hi] for seg in self.segments]
            acc = np.add(views[0], views[1])
            for v in views[2:]:
                np.add(acc, v, out=acc)
            if average:
                np.divide(acc, dtype.type(size), out=acc)
            for v in views:
                v[...] = acc
        self._barrier(what)

    def copy_out(self, layout: List[tuple], base: int, outputs: Sequence[np.ndarray]) -> None:
        own = self.segments[self.comm.Get_rank()]
        for dtype, at, placed, n in layout:
            region = own[base + at:base + at + n * dtype.itemsize].view(dtype)
            for i, start, count in placed:
                outputs[i].reshape(-1)[...] = region[start:start + count]

    def _barrier(self, what: str) -> None:
        self.win.Sync()
        self.world.wait([self.comm.Ibarrier()], what)
        self.win.Sync()


class SharedPending:
    """An all-reduce through the window, started and not yet waited for (``World.finish``)."""

    __slots__ = ("what", "check", "arrays", "layout", "base", "outputs", "average")

    def __init__(self, what: str, check: tuple, arrays: list, layout: list, base: Optional[int],
                 outputs: list, average: bool):
        self.what, self.check, self.arrays, self.layout = what, check, arrays, layout
        self.base = base              # its byte offset in the window, copied in at the start; None: no place yet
        self.outputs = outputs
        self.average = average


"""The MPI world of a data-parallel run, and the host side of every collective.

A collective op (ops/collective.py) is a stage boundary of the program it is in
(codegen/control_flow.py): the kernels before it run, then the host calls the function here
with their outputs as NumPy arrays, then the kernels after it run. The function does the
communication in MPI's own C code through mpi4py's buffer interface (no pickling, no copy
beyond packing): one Python call per collective and run, never per element or iteration.

Three things make a collective here safer than a bare ``MPI_Allreduce``:

* **The same collective on every rank.** MPI matches collectives by order alone, so a rank
  that built a different graph would sum the wrong buffers or deadlock. Before its data,
  every collective reduces a 62-bit hash of what it is (kind, tensor names, dtypes, shapes)
  with MAX over ``[h, -h]``: both come back unchanged only if every rank has the same hash.
  If not, the ranks exchange their descriptions and each raises an error naming the tensor
  and what every rank has. It costs one 16-byte all-reduce per collective, started together
  with the data's (a mismatch ends the job with the error; a result is never returned).
* **Tensor fusion.** ``allreduce`` takes many tensors (DistributedOptimizer gives it every
  gradient at once) and packs them, per dtype, into buffers of up to ``fusion_threshold()``
  bytes, so a step makes a few large all-reduces instead of one per variable. All buffers
  are started (non-blocking) before the first is waited for.
* **One machine, one window.** Ranks that all run on this machine all-reduce through memory
  they share (shared_window.py) instead of MPI's transfers.
* **Bounded waits.** A wait polls its request, with a deadline (``GRAPHC_COLLECTIVE_TIMEOUT``
  seconds, default 300), and a second communicator on which a rank that fails announces it
  (``sys.excepthook``): the ranks waiting for it raise ``AbortedError`` naming it, instead of
  hanging. A rank that is killed is caught by the launcher (mpiexec ends the job and names the
  rank) or, with another launcher, by the deadline.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import socket
import sys
import threading
import time
from typing import List, Optional, Sequence

import numpy as np

from ..errors import AbortedError, DeadlineExceededError, FailedPreconditionError
from ..reuse import FREE_IN_LIST
from . import shared_window

INSTALL = 'pip install "graphc[mpi]" (mpi4py and an MPI library, MPICH, from wheels)'
NOTICE_TAG = 77           # the control communicator's one tag: "rank r failed / left"
GRACE_SECONDS = 2.0       # a failing rank waits this long for its peers to read its notice
LEFT_GRACE_SECONDS = 2.0  # a wait this long after a peer left normally is one that cannot end
FAILED, LEFT = "F", "L"   # a notice's first character
POOL_DEPTH = 4            # result buffers kept per (dtype, size): runs whose results are still held
SPIN_SECONDS = 0.05       # a wait spins this long before it yields its core
PEER_CHECK_SECONDS = 0.2  # a long wait looks this often whether the ranks on this machine still live
DEFAULT_TIMEOUT = 300.0   # seconds a collective may wait (first runs compile for seconds)
DEFAULT_FUSION = 64 << 20  # bytes per fused buffer: Horovod's default


def _mpi():
    """mpi4py's MPI module, or an ImportError that says what to install."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"graphc.distribute needs mpi4py and an MPI library: {INSTALL}. ({e})") from None
    return MPI


def _setting(name: str, default, kind, unit: str, least, strict: bool):
    """The environment variable ``name`` as ``kind`` (int or float) of ``unit``, at least (or,
    if ``strict``, more than) ``least``; ``default`` when unset. A bad value says what it needs."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of {unit}, got {text!r}") from None
    if value < least or (strict and value == least):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {least} {unit}, got {value}")
    return value


def fusion_threshold() -> int:
    """Bytes per fused all-reduce buffer: ``HOROVOD_FUSION_THRESHOLD`` (Horovod's variable, so a
    ported launch script keeps its setting), else 64 MiB. 0 turns fusion off."""
    return _setting("HOROVOD_FUSION_THRESHOLD", DEFAULT_FUSION, int, "bytes", 0, strict=False)


def _timeout() -> float:
    return _setting("GRAPHC_COLLECTIVE_TIMEOUT", DEFAULT_TIMEOUT, float, "seconds", 0, strict=True)


class World:
    """The ranks of this run: ``comm`` carries the collectives, ``control`` the failure notices
    (both duplicates of the communicator given to ``init``, so a user's own MPI traffic on it
    never meets ours)."""

    def __init__(self, comm):
        MPI = self.MPI = _mpi()
        self.comm = comm.Dup()
        self.control = comm.Dup()
        # the same-collective check and its description exchange: never matched against data
        # collectives, whatever another rank started (a mismatch must end in the error, not a hang)
        self.checks = comm.Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        cross = self.comm.Split(self.local_rank, key=self.rank)  # one rank per host, same local rank
        self.cross_rank, self.cross_size = cross.Get_rank(), cross.Get_size()
        self.timeout = _timeout()
        self.host = socket.gethostname()
        self.left: dict = {}          # rank -> (its notice, when read, whether it failed)
        self.seconds_waiting = 0.0    # time spent in collectives' waits (benchmarks read it)
        self.lock = threading.Lock()  # held while collectives of one thread are in flight (begin)
        self.owner: Optional[int] = None  # that thread
        self.in_flight = 0            # collectives started and not yet ended
        self.broken: Optional[str] = None  # why an earlier collective failed: the job cannot go on
        self._signatures: dict = {}   # a collective's signature -> (its description, [h, -h])
        self._pool: dict = {}         # (dtype, elements) -> result buffers (_buffer)
        me = f"{self.rank} {self.host} {os.getpid()} {_pid_namespace()}"
        everyone = [t.split(" ") for t in self.gather_text(me)]
        self.peers = {int(r): (host, int(pid)) for r, host, pid, _ in everyone}
        # the ranks whose processes this one can see: on this node by MPI's account, in this
        # process's pid namespace (containers on one host may share memory but not pids)
        sharing = np.empty(local.Get_size(), np.int64)
        local.Allgather(np.array([self.rank], np.int64), sharing)
        sharing = set(sharing.tolist())
        self.visible = {int(r) for r, _, _, ns in everyone if int(r) in sharing and ns == _pid_namespace()}
        local.Free()
        cross.Free()
        # every rank on this machine: all-reduces through a shared window (shared_window.py),
        # if every rank can (a collective decision: the window's communicator is made by all)
        can = np.array([1 if shared_window.enabled(self) else 0], np.int64)
        agreed = np.empty_like(can)
        self.comm.Allreduce(can, agreed, op=MPI.MIN)
        self.shared = shared_window.SharedWindow(self) if agreed[0] else None
        rank_map = os.environ.get("GRAPHC_RANK_MAP")  # set by python -m graphc.distribute.run (run.py)
        if rank_map:
            try:  # (on another host the launcher's folder does not exist: nothing to write there)
                with open(rank_map, "a", encoding="utf-8") as f:
                    f.write(f"{self.rank} {self.host} {os.getpid()}\n")
            except OSError:
                pass

    def _check_peers(self, what: str) -> None:
        """A rank on this machine that died (killed by a signal, or crashed inside C code)
        sends no notice: look at its process. (On other machines, the launcher or the deadline
        catches it.)"""
        for q in self.visible:
            host, pid = self.peers[q]
            if q != self.rank and not _alive(pid):
                raise AbortedError(f"rank {self.rank} stops: rank {q} (host {host}, pid {pid}) has died (killed by a "
                                   f"signal or crashed) while this rank waited in {what}")

    @contextlib.contextmanager
    def collective(self, what: str):
        """One blocking collective (``begin`` and ``end`` around it)."""
        self.begin(what)
        try:
            yield
        except BaseException as e:
            self.broken = f"{type(e).__name__} in {what}"
            raise
        finally:
            self.end()

    @contextlib.contextmanager
    def starting(self, what: str):
        """A non-blocking collective being started: ``begin``, and ``end`` only if starting it
        fails (else ``finish`` ends it)."""
        self.begin(what)
        try:
            yield
        except BaseException as e:
            self.broken = f"{type(e).__name__} in {what}"
            self.end()
            raise

    def begin(self, what: str) -> None:
        """A collective starts: from one thread at a time (two threads would issue them in an
        order the other ranks cannot match), and never after one failed (its requests may still
        be writing into buffers, and the ranks no longer agree on where they are). Collectives
        started by a run and still in flight (``start_allreduce``) count until they end."""
        if self.broken is not None:
            raise FailedPreconditionError(f"rank {self.rank}: cannot run {what}: an earlier collective failed "
                                          f"({self.broken}); the job cannot go on, end the program")
        me = threading.get_ident()
        if self.in_flight == 0:
            if not self.lock.acquire(blocking=False):
                raise self._other_thread(what)
            self.owner = me
        elif self.owner != me:
            raise self._other_thread(what)
        self.in_flight += 1

    def end(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.owner = None
            self.lock.release()

    def _other_thread(self, what: str) -> Exception:
        return FailedPreconditionError(
            f"rank {self.rank}: {what} was started while another thread of this process runs a collective: "
            "the ranks would see them in different orders; run data-parallel steps from one thread")

    def abandon(self, why: str) -> None:
        """A run stopped (an error) between starting collectives and waiting for them: their
        requests may still write into its buffers, and this rank will not run the collectives
        the others run next. Nothing more can be run (the next collective says why)."""
        if self.in_flight and self.broken is None:
            self.broken = why

    # -- waiting ----------------------------------------------------------------------------------------
    def wait(self, requests: Sequence, what: str) -> None:
        """Wait for every request, polling for failure notices, until the deadline.

        MPI moves a large message in chunks, and only while this process is inside an MPI call
        (no progress thread), so the loop tests without sleeping: a 100 µs sleep between tests
        measured a 2.7 MB all-reduce at 5.5 ms instead of about 1 ms. Only a wait that goes on
        past ``SPIN_SECONDS`` (a rank that is late, or stuck) yields its core, then sleeps."""
        started = time.monotonic()
        deadline = started + self.timeout
        pending = list(requests)
        spins = 0
        checked = started
        while pending:
            pending = [r for r in pending if not r.Test()]
            if not pending:
                break
            spins += 1
            if spins % 64:
                continue
            self._read_notices(what)
            now = time.monotonic()
            waited = now - started
            if waited < SPIN_SECONDS:
                continue
            if now - checked > PEER_CHECK_SECONDS:
                self._check_peers(what)
                checked = now
            if now > deadline:  # (MPI cannot cancel a collective: the process ends after this error)
                raise DeadlineExceededError(
                    f"rank {self.rank}: {what} did not complete within {self.timeout:g} s "
                    "(GRAPHC_COLLECTIVE_TIMEOUT): another rank is stuck, was killed, or runs a different "
                    "number of collectives (each rank must run the same fetches the same number of times)")
            time.sleep(0 if waited < 1.0 else 0.001)  # yield the core; past a second, sleep
        self.seconds_waiting += time.monotonic() - started

    def _read_notices(self, what: str) -> None:
        MPI = self.MPI
        status = MPI.Status()
        while self.control.Iprobe(source=MPI.ANY_SOURCE, tag=NOTICE_TAG, status=status):
            data = bytearray(status.Get_count(MPI.BYTE))
            self.control.Recv([data, MPI.BYTE], source=status.Get_source(), tag=NOTICE_TAG)
            text = data.decode("utf-8", "replace")
            self.left[status.Get_source()] = (text[1:], time.monotonic(), text[:1] == FAILED)
        for notice, seen, failed in self.left.values():
            # a rank that finished normally may have left after its part of this very collective
            # (its request completes before ours): only a wait that goes on long after is stuck
            if failed or time.monotonic() - seen > LEFT_GRACE_SECONDS:
                raise AbortedError(f"rank {self.rank} stops: {notice}; it was waiting in {what}")

    def announce(self, notice: str, failed: bool) -> None:
        """Tell every other rank ``notice`` (small: sent eagerly, completes without a receiver)."""
        data = ((FAILED if failed else LEFT) + notice).encode("utf-8")[:8000]
        requests = [self.control.Isend([data, self.MPI.BYTE], dest=r, tag=NOTICE_TAG)
                    for r in range(self.size) if r != self.rank]
        deadline = time.monotonic() + GRACE_SECONDS
        while requests and time.monotonic() < deadline:
            requests = [r for r in requests if not r.Test()]
            time.sleep(0.001)

    # -- the check that every rank runs the same collective ------------------------------------------------
    def start_check(self, kind: str, key: str, arrays, threshold: int, first_dim: bool = True,
                    shapes: Sequence[tuple] = None, layout: str = "") -> tuple:
        """Start the check that every rank runs this collective (kind, tensor names, dtypes,
        shapes, and the fusion setting, which decides how the data is split into MPI calls): an
        all-reduce of ``[h, -h]`` with MAX, which comes back unchanged only if every rank's hash
        ``h`` is the same. It runs on a communicator of its own, so the collective's data may be
        started before ``finish_check``; a mismatch then raises here (the job cannot go on)."""
        shapes = [a.shape for a in arrays] if shapes is None else shapes
        signature = (kind, key, first_dim, threshold, layout,
                     tuple((a.dtype.str, tuple(s)) for a, s in zip(arrays, shapes)))
        known = self._signatures.get(signature)
        if known is None:
            if len(self._signatures) > 4096:  # shapes that change on every run: do not grow without end
                self._signatures.clear()
            description = _describe(kind, key, arrays, shapes, first_dim) + f"; fusion threshold {threshold} bytes" \
                + (f"; MPI calls {layout} (s: over arrays in place, p: packed)" if "s" in layout else "")
            h = int.from_bytes(hashlib.blake2b(description.encode(), digest_size=8).digest(), "little") >> 2
            known = self._signatures[signature] = (description, np.array([h, -h], np.int64))
        description, mine = known
        agreed = np.empty_like(mine)
        return (kind, key, description, mine, agreed, self.checks.Iallreduce(mine, agreed, op=self.MPI.MAX))

    def finish_check(self, check: tuple, what: str) -> None:
        """Raise FailedPreconditionError (on every rank) unless every rank's description of
        this collective is the same."""
        kind, key, description, mine, agreed, request = check
        self.wait([request], what)
        if agreed[0] == mine[0] and agreed[1] == mine[1]:
            return
        texts = self.gather_text(description, self.checks)
        ours = f"{kind} of {key}: "
        lines = "; ".join(f"rank {r}: {t[len(ours):] if t.startswith(ours) else t}" for r, t in enumerate(texts))
        raise FailedPreconditionError(
            f"rank {self.rank}: the ranks run different collectives at the same point, {what}: {lines}. Every rank "
            "must build the same graph (same tensors, shapes and dtypes), run the same fetches, and set the same "
            "HOROVOD_FUSION_THRESHOLD: check code that depends on hvd.rank() and the per-rank batch shapes")

    def gather_text(self, text: str, comm=None) -> List[str]:
        comm = self.comm if comm is None else comm
        data = np.frombuffer(text.encode("utf-8"), np.uint8)
        sizes = np.empty(self.size, np.int64)
        self.wait([comm.Iallgather(np.array([data.size], np.int64), sizes)], "a description exchange")
        out = np.empty(int(sizes.sum()), np.uint8)
        self.wait([comm.Iallgatherv(data, [out, sizes.tolist()])], "a description exchange")
        ends = np.cumsum(sizes)
        return [out[e - n:e].tobytes().decode("utf-8", "replace") for n, e in zip(sizes, ends)]

    # -- the collectives ----------------------------------------------------------------------------------
    # ``key`` names the tensors (the same on every rank: it is part of the check); ``where`` is
    # the user's line that made the collective, for messages only (ranks may run the script
    # from different paths).
    def allreduce(self, arrays: Sequence[np.ndarray], average: bool, key: str, where: str = "") -> List[np.ndarray]:
        """The element-wise sum (or mean) over the ranks of each array, fused into buffers.
        The outputs are views of reused buffers (``_buffer``)."""
        return self.finish(self.start_allreduce(arrays, average, key, where))

    def start_allreduce(self, arrays: Sequence[np.ndarray], average: bool, key: str, where: str = "",
                        shapes: Sequence[tuple] = None, in_place: Sequence[bool] = None) -> "Pending":
        """Start the all-reduce of ``arrays`` (non-blocking) and return it; ``finish`` waits for
        it. Until then the arrays must not change (MPI reads them in place) and the thread may
        run other work, which is how a run overlaps communication with the kernels after it
        (codegen/collectives.py). ``shapes``: the arrays' shapes, where they are given flat
        (the check compares shapes). ``in_place[i]``: array i receives its own result (the
        result *is* that array); arrays that lie end to end in memory then go to MPI as one
        span, with nothing packed (the CPU target lays a bucket's gradients out so)."""
        MPI = self.MPI
        kind = "allreduce(" + ("average" if average else "sum") + ")"
        if self.shared is not None:
            return self._start_shared(kind, arrays, key, where, shapes, in_place, average)
        return self._start(kind, arrays, key, where, shapes, in_place,
                           lambda buf: self.comm.Iallreduce(MPI.IN_PLACE, buf, op=MPI.SUM), average and self.size > 1)

    def _start_shared(self, kind: str, arrays, key: str, where: str, shapes, in_place, average: bool):
        """``start_allreduce`` through the shared window: the check starts, and the arrays are
        copied into this rank's segment if the window has room (shared_window.py)."""
        arrays = [_contiguous(a) for a in arrays]
        what = _what(kind, key, where)
        with self.starting(what):
            check = self.start_check(kind, key, arrays, fusion_threshold(), shapes=shapes, layout="w")
            layout = shared_window.regions(arrays)
            base = self.shared.place(shared_window.nbytes(layout))
            if base is not None:
                self.shared.copy_in(arrays, layout, base)
            outputs = self._outputs(arrays, layout, in_place)
        return shared_window.SharedPending(what, check, arrays, layout, base, outputs, average)

    def _finish_shared(self, pending) -> List[np.ndarray]:
        what, window = pending.what, self.shared
        try:
            self.finish_check(pending.check, what)
            if pending.base is None:  # no room at the start: MPI's all-reduce, this once
                window.through_mpi += 1
                self._allreduce_now(pending.arrays, pending.layout, pending.outputs, pending.average, what)
            else:
                window.reduce(pending.layout, pending.base, pending.average, what)
                window.copy_out(pending.layout, pending.base, pending.outputs)
            window.done()
            window.grow()  # (after the last in flight: room for what this run had in flight)
        except BaseException as e:
            self.broken = f"{type(e).__name__} in {what}"
            raise
        finally:
            self.end()
        return pending.outputs

    def _outputs(self, arrays, layout, in_place) -> list:
        """Where each result of a shared-window all-reduce goes: the array itself where it
        receives its own result, else its stretch of a reused buffer (``_buffer``), one per
        region of ``layout`` (shared_window.regions: one per dtype)."""
        in_place = [False] * len(arrays) if in_place is None else in_place
        outputs: list = [a if flag else None for a, flag in zip(arrays, in_place)]
        for dtype, _, placed, _ in layout:
            members = [i for i, _, _ in placed if not in_place[i]]
            if members:
                _views_into(self._buffer(dtype, sum(arrays[i].size for i in members)), arrays, members, outputs)
        return outputs

    def _allreduce_now(self, arrays, layout, outputs, average: bool, what: str) -> None:
        """MPI's all-reduce of ``arrays`` into ``outputs``, waited for here: one packed buffer
        per region of ``layout``."""
        MPI = self.MPI
        for dtype, _, placed, _ in layout:
            buf = np.concatenate([arrays[i].reshape(-1) for i, _, _ in placed])
            self.wait([self.comm.Iallreduce(MPI.IN_PLACE, buf, op=MPI.SUM)], what)
            if average:
                np.divide(buf, dtype.type(self.size), out=buf)
            for i, start, count in placed:
                outputs[i].reshape(-1)[...] = buf[start:start + count]

    def _start(self, kind: str, arrays, key: str, where: str, shapes, in_place, start_one, divide: bool):
        """Start collective ``kind`` (``start_one(flat buffer)`` starts it over one buffer, in
        place): per fusion buffer, the in-place arrays that lie end to end as one span each,
        the rest packed into one reused buffer (its in-place arrays get their result copied
        back by ``finish``)."""
        arrays = [_contiguous(a) for a in arrays]
        in_place = [False] * len(arrays) if in_place is None else list(in_place)
        what = _what(kind, key, where)
        outputs: list = [None] * len(arrays)
        copy_back: list = []
        with self.starting(what):
            threshold = fusion_threshold()
            parts = [part for members in _fusion_buffers(arrays, threshold)
                     for part in _spans(arrays, members, in_place)]
            layout = "".join("s" if spanned else "p" for spanned, _ in parts)  # the same MPI calls on every rank
            check = self.start_check(kind, key, arrays, threshold, shapes=shapes, layout=layout)
            requests = []
            for spanned, members in parts:
                if spanned:  # results written where the arrays are
                    first, n = arrays[members[0]], sum(arrays[i].size for i in members)
                    requests.append(start_one(np.lib.stride_tricks.as_strided(first, (n,), (first.itemsize,))))
                    for i in members:
                        outputs[i] = arrays[i]
                    continue
                buf = self._buffer(arrays[members[0]].dtype, sum(arrays[i].size for i in members))
                np.concatenate([arrays[i].reshape(-1) for i in members], out=buf)
                requests.append(start_one(buf))
                _views_into(buf, arrays, members, outputs)
                for i in members:
                    if in_place[i]:
                        copy_back.append((outputs[i], arrays[i]))
                        outputs[i] = arrays[i]
        return Pending(what, check, requests, outputs, divide, copy_back)

    def finish(self, pending: "Pending") -> List[np.ndarray]:
        """Wait for a collective that ``start_allreduce`` or ``start_broadcast`` started; its outputs."""
        if not isinstance(pending, Pending):
            return self._finish_shared(pending)
        what = pending.what
        try:
            self.finish_check(pending.check, what)
            self.wait(pending.requests, what)
        except BaseException as e:
            self.broken = f"{type(e).__name__} in {what}"
            raise
        finally:
            self.end()
        for result, array in pending.copy_back:
            np.copyto(array.reshape(-1), result.reshape(-1))
        if pending.divide:
            for o in pending.outputs:
                np.divide(o, o.dtype.type(self.size), out=o)
        return pending.outputs

    def _buffer(self, dtype, n: int) -> np.ndarray:
        """A flat array of ``n`` elements for a collective's result, reused once nothing holds
        it (no output view of an earlier run is alive). Fresh memory costs a page fault per 4
        KiB on first write: measured, a 2.7 MB all-reduce took 2.4 ms into new arrays and 0.4 ms
        into a reused one."""
        pool = self._pool.setdefault((np.dtype(dtype).str, n), [])
        for buf in pool:
            # referenced only by the pool's list and this loop: free (graphc/reuse.py)
            if sys.getrefcount(buf) <= FREE_IN_LIST:
                return buf
        buf = np.empty(n, dtype)
        if len(pool) < POOL_DEPTH:
            pool.append(buf)
        return buf

    def allgather(self, array: np.ndarray, key: str, where: str = "") -> np.ndarray:
        """Every rank's array, concatenated along the first axis in rank order (the first dims
        may differ between ranks)."""
        array = _contiguous(array)
        kind = "allgather"
        what = _what(kind, key, where)
        with self.collective(what):
            self.finish_check(self.start_check(kind, key, [array], fusion_threshold(), first_dim=False), what)
            firsts = np.empty(self.size, np.int64)
            self.wait([self.comm.Iallgather(np.array([array.shape[0]], np.int64), firsts)], what)
            row = int(np.prod(array.shape[1:], dtype=np.int64))
            out = np.empty((int(firsts.sum()),) + array.shape[1:], array.dtype)
            counts = (firsts * row).tolist()
            self.wait([self.comm.Iallgatherv(array.reshape(-1), [out.reshape(-1), counts])], what)
        return out

    def broadcast(self, arrays: Sequence[np.ndarray], root: int, key: str, where: str = "") -> List[np.ndarray]:
        """Rank ``root``'s arrays, on every rank."""
        return self.finish(self.start_broadcast(arrays, root, key, where))

    def start_broadcast(self, arrays: Sequence[np.ndarray], root: int, key: str, where: str = "",
                        shapes: Sequence[tuple] = None, in_place: Sequence[bool] = None) -> "Pending":
        """Start broadcasting rank ``root``'s arrays (non-blocking), as ``start_allreduce``."""
        kind = f"broadcast(root {root})"
        if not 0 <= root < self.size:
            raise FailedPreconditionError(f"{_what(kind, key, where)}: root_rank {root} is not a rank of this run "
                                          f"(size {self.size}: ranks 0..{self.size - 1})")
        return self._start(kind, arrays, key, where, shapes, in_place, lambda buf: self.comm.Ibcast(buf, root=root),
                           False)

    def barrier(self) -> None:
        with self.collective("hvd.barrier()"):
            self.wait([self.comm.Ibarrier()], "hvd.barrier()")

    def allreduce_host(self, values: np.ndarray, average: bool = True, key: str = "host values") -> np.ndarray:
        """A NumPy array summed (or averaged) over the ranks, outside any graph (the Keras
        callbacks average their logs with it)."""
        return self.allreduce([np.asarray(values)], average, key)[0].copy()


class Pending:
    """A collective started and not yet waited for (``World.finish``)."""

    __slots__ = ("what", "check", "requests", "outputs", "divide", "copy_back")

    def __init__(self, what: str, check: tuple, requests: list, outputs: list, divide: bool, copy_back: list):
        self.what, self.check, self.requests, self.outputs = what, check, requests, outputs
        self.divide = divide          # an average: the sum divided by the size, once it is there
        self.copy_back = copy_back    # (packed result, the array it is written to) for in-place arrays packed


def _spans(arrays, members, in_place) -> list:
    """``members`` (one fusion buffer, in order) as [(spanned, indices)]: each run of in-place
    arrays that lie end to end in memory (spanned: one MPI call over them where they are),
    then the rest, packed together (if any)."""
    parts, rest, run = [], [], []
    for i in members:
        a = arrays[i]
        if not in_place[i]:
            rest.append(i)
            continue
        if run:
            last = arrays[run[-1]]
            if last.dtype == a.dtype and last.ctypes.data + last.nbytes == a.ctypes.data:
                run.append(i)
                continue
            parts.append((True, run))
        run = [i]
    if run:
        parts.append((True, run))
    if rest:
        parts.append((False, rest))
    return parts


def _views_into(buf: np.ndarray, arrays, members, outputs: list) -> None:
    """``outputs[i]`` for each fused member: its stretch of the flat buffer, in its shape."""
    at = 0
    for i in members:
        outputs[i] = buf[at:at + arrays[i].size].reshape(arrays[i].shape)
        at += arrays[i].size


def _what(kind: str, key: str, where: str) -> str:
    return f"{kind} of {key}" + (f" (made at {where})" if where else "")


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "?"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process stays a zombie until its parent (the launcher) reaps it
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _contiguous(a) -> np.ndarray:
    a = np.asarray(a)  # (np.ascontiguousarray would make a scalar 1-D)
    return a if a.flags.c_contiguous else a.copy(order="C")


def _describe(kind: str, key: str, arrays, shapes, first_dim: bool = True) -> str:
    text = ", ".join(f"{a.dtype.name}{list(tuple(s) if first_dim else ('n',) + tuple(s)[1:])}"
                     for a, s in zip(arrays, shapes))
    return f"{kind} of {key}: {text}"


def _fusion_buffers(arrays: Sequence[np.ndarray], threshold: int) -> List[List[int]]:
    """Indices of ``arrays`` grouped into fusion buffers: one dtype per buffer, in order, each at
    most ``threshold`` bytes unless one array alone is larger (0: every array alone)."""
    buffers: List[List[int]] = []
    open_: dict = {}  # dtype -> (buffer, bytes)
    for i, a in enumerate(arrays):
        current = open_.get(a.dtype)
        if current is not None and threshold and current[1] + a.nbytes <= threshold:
            current[0].append(i)
            open_[a.dtype] = (current[0], current[1] + a.nbytes)
            continue
        members = [i]
        buffers.append(members)
        open_[a.dtype] = (members, a.nbytes)
    return buffers


# --- the process's world --------------------------------------------------------------------------------
_world: Optional[World] = None
_init_lock = threading.Lock()


def init(comm=None) -> World:
    """Start (once per process) on ``comm`` (default MPI.COMM_WORLD). Safe to call twice."""
    global _world
    with _init_lock:
        if _world is None:
            MPI = _mpi()
            _world = World(MPI.COMM_WORLD if comm is None else comm)
            _install_failure_notice(_world)
        return _world


def current(what: str = "this") -> World:
    if _world is None:
        raise ValueError(f"graphc.distribute: {what} needs hvd.init() first: call hvd.init() once at the start "
                         "of the program, before building the graph (import graphc.distribute as hvd)")
    return _world


def is_initialized() -> bool:
    return _world is not None


def _install_failure_notice(world: World) -> None:
    """An uncaught exception on this rank: print it, tell the other ranks (they stop waiting and
    raise AbortedError naming this rank), then end the job (MPI_Abort), so none is left hanging."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        previous(exc_type, exc, tb)
        if world.size > 1:
            try:
                if not isinstance(exc, AbortedError):  # a peer's failure is its own notice
                    world.announce(f"rank {world.rank} (host {world.host}, pid {os.getpid()}) raised "
                                   f"{exc_type.__name__}: {exc}", failed=True)
                sys.stderr.flush()
                time.sleep(GRACE_SECONDS)  # the peers waiting in a collective read it and exit with it
            finally:
                world.comm.Abort(1)

    sys.excepthook = hook

    def finished():
        # a rank that ends (normally, or by sys.exit) while others still wait in a collective:
        # they learn it from this. (An uncaught exception went through ``hook`` and aborted.)
        if world.size > 1 and not world.MPI.Is_finalized():
            try:
                world.announce(f"rank {world.rank} (host {world.host}, pid {os.getpid()}) has ended its program "
                               "(it finished, or called sys.exit) and left", failed=False)
            except Exception:  # noqa: BLE001 (a failing notice must not hide how the program ended)
                pass

    atexit.register(finished)

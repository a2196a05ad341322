"""Running a kernel's outer loop on several threads, handed over in about a microsecond.

Generated kernels take a ``[LO, HI)`` range of their outermost loop, so disjoint parts of it
can run at once. The threads that run the other parts are this module's pool: ``THREADS - 1``
Python threads that each call ``_work`` once, a ``nogil`` numba function that never returns
to Python until the process exits. A worker runs a part by calling the address of the
kernel's *part function*: a ``cfunc`` that rebuilds the kernel's arrays from a block of
pointers and calls the kernel (``part_module_source``; compiled and cached like the kernel,
and only for kernels a driver splits). The caller reaches it through the module's ``run``,
an njit function with the kernel's own arguments, so a hand-over touches no Python, no GIL
and no lock. Measured on the 2-core benchmark machine: a two-part job of an empty kernel
costs 0.5 µs against 0.4 µs for one inline call, where ``concurrent.futures`` (the pool
before this one) cost 20-140 µs and so split only kernels of 128 Ki elements or more.

How a job runs (``run_parts``): the caller writes the job into the control block, bumps its
generation, then takes parts itself like any worker; parts are claimed one at a time with a
compare-and-swap, and the caller waits only for parts a worker claimed. So a worker that is
asleep or on a busy core never holds the caller up. A worker spins ``SPIN_ROUNDS`` ``pause``
instructions between jobs, calling ``sched_yield`` every ``YIELD_EVERY`` (a thread that
needs the core, OpenBLAS' for one, gets it), then sleeps on a futex. Waking it is a system
call that cost the caller about 7 µs here, so sleepers are woken only once the jobs that
found them asleep add up to ``WAKE_WORK`` elements; until then jobs run on the threads that
are awake. A job has ``cores.width()``
parts, the cores free now.

Errors: a ``cfunc`` cannot raise, so a part that raises records its range and ``run`` runs
that range again in the calling thread, where the kernel raises its own error (kernels that
write variables and can raise are never split, parallel parts would write twice). Several
Python threads: one job at a time; a caller that finds the pool busy runs its kernel whole.
A forked child starts its own pool. At exit the workers are told to return before the
interpreter frees their control block. Why not numba's ``parallel=True``: its threading
layers abort or misbehave with several calling threads, ``fork`` and BLAS pools, and each
parallel kernel compiled five times slower (NUMBA_NOTES.md). Linux x86-64 only (futex,
``pause``); elsewhere every kernel runs whole in the calling thread.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import platform
import sys
import threading
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import cores

MIN_WORK = 1 << 13  # elements: below this a part costs more to hand over than it saves
WAKE_WORK = 1 << 15  # elements: below this a job does not wake sleeping workers
THREADS = max(1, int(os.environ.get("GRAPHC_NUM_THREADS", os.cpu_count() or 1)))
SPIN_ROUNDS = 1 << 17  # pause instructions before a worker sleeps
YIELD_EVERY = 1 << 10  # pause instructions between two sched_yield calls

# The control block: int64 words, each field on its own 64-byte line (one job at a time).
_LINE = 8
GEN, CLAIM, DONE, PART, SLOTS, EXTENT, PARTS, SLEEPERS, BUSY, WIDTH, WAKE, GRAIN, OWED = (_LINE * k for k in range(13))
_WORDS = _LINE * 13
_INDEX_BITS = 20  # CLAIM = job << _INDEX_BITS | the next part to take
_INDEX_MASK = (1 << _INDEX_BITS) - 1
_JOB_MASK = (1 << 40) - 1

# Linux x86-64 system calls (the spin hint is x86's ``pause`` too); elsewhere kernels run whole
_FUTEX, _SCHED_YIELD = 202, 24
_FUTEX_WAIT_PRIVATE, _FUTEX_WAKE_PRIVATE = 128, 129
NATIVE = sys.platform.startswith("linux") and platform.machine() == "x86_64"


# --- intrinsics: atomics on a control word, a spin hint, raw pointers --------------------------------
def _word(context, builder, array_type, array, index):
    return builder.gep(context.make_array(array_type)(context, builder, array).data, [index])


@intrinsic
def load_word(typingctx, ctl, index):
    def codegen(context, builder, sig, args):
        return builder.load_atomic(_word(context, builder, sig.args[0], *args), "acquire", 8)
    return types.int64(ctl, index), codegen


@intrinsic
def store_word(typingctx, ctl, index, value):
    def codegen(context, builder, sig, args):
        builder.store_atomic(args[2], _word(context, builder, sig.args[0], args[0], args[1]), "release", 8)
        return context.get_dummy_value()
    return types.void(ctl, index, value), codegen


@intrinsic
def add_word(typingctx, ctl, index, value):
    """Atomically add ``value``; returns the word's previous value."""
    def codegen(context, builder, sig, args):
        return builder.atomic_rmw("add", _word(context, builder, sig.args[0], args[0], args[1]), args[2], "seq_cst")
    return types.int64(ctl, index, value), codegen


@intrinsic
def swap_word(typingctx, ctl, index, expected, value):
    """Set the word to ``value`` if it holds ``expected``; True when this call did it."""
    def codegen(context, builder, sig, args):
        ptr = _word(context, builder, sig.args[0], args[0], args[1])
        pair = builder.cmpxchg(ptr, args[2], args[3], "acq_rel", "acquire")
        return builder.extract_value(pair, 1)
    return types.boolean(ctl, index, expected, value), codegen


@intrinsic
def spin_pause(typingctx):
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
        builder.call(fn, [])
        return context.get_dummy_value()
    return types.void(), codegen


@intrinsic
def call_part(typingctx, address, slots, lo, hi):
    """Call the part function at ``address``: ``void part(int64 *slots, int64 lo, int64 hi)``."""
    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        fn = builder.inttoptr(args[0], ir.FunctionType(ir.VoidType(), [i64, i64, i64]).as_pointer())
        builder.call(fn, list(args[1:]))
        return context.get_dummy_value()
    return types.void(address, slots, lo, hi), codegen


def _pointer_to(dtype):
    @intrinsic
    def pointer(typingctx, address):
        def codegen(context, builder, sig, args):
            return builder.inttoptr(args[0], context.get_value_type(sig.return_type))
        return types.CPointer(dtype)(address), codegen
    return pointer


@intrinsic
def set_slot(typingctx, slots, k, value):
    def codegen(context, builder, sig, args):
        base = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        builder.store(args[2], builder.gep(base, [args[1]]))
        return context.get_dummy_value()
    return types.void(slots, k, value), codegen


@intrinsic
def slot(typingctx, slots, k):
    """Word ``k`` of the block of int64 words at address ``slots``."""
    def codegen(context, builder, sig, args):
        base = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        return builder.load(builder.gep(base, [args[1]]))
    return types.int64(slots, k), codegen


POINTER_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                  "uint32", "uint64", "boolean", "complex64", "complex128")
for _name in POINTER_DTYPES:  # pointer_float32(address) -> float32* ..., for part functions
    globals()[f"pointer_{_name}"] = _pointer_to(getattr(types, _name))


def _syscall(builder, number: int, *args):
    """``syscall(number, args...)`` through libc, resolved by name when the code is loaded (so
    cached machine code holds no address of this process)."""
    i64 = ir.IntType(64)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64], var_arg=True), "syscall")
    return builder.call(fn, [ir.Constant(i64, number), *args])


@intrinsic
def futex_wait(typingctx, ctl, index, expected):
    """Sleep while the low 32 bits of the word (little-endian) equal those of ``expected``."""
    def codegen(context, builder, sig, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        address = builder.ptrtoint(_word(context, builder, sig.args[0], args[0], args[1]), i64)
        no_timeout = ir.Constant(i64, 0)
        _syscall(builder, _FUTEX, address, ir.Constant(i32, _FUTEX_WAIT_PRIVATE), builder.trunc(args[2], i32), no_timeout)
        return context.get_dummy_value()
    return types.void(ctl, index, expected), codegen


@intrinsic
def futex_wake(typingctx, ctl, index):
    """Wake every thread sleeping on the word."""
    def codegen(context, builder, sig, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        address = builder.ptrtoint(_word(context, builder, sig.args[0], args[0], args[1]), i64)
        _syscall(builder, _FUTEX, address, ir.Constant(i32, _FUTEX_WAKE_PRIVATE), ir.Constant(i32, 1 << 30))
        return context.get_dummy_value()
    return types.void(ctl, index), codegen


@intrinsic
def yield_core(typingctx):
    """sched_yield(): let another thread that wants this core run."""
    def codegen(context, builder, sig, args):
        _syscall(builder, _SCHED_YIELD)
        return context.get_dummy_value()
    return types.void(), codegen


@njit(nogil=True, cache=True)
def part_bound(extent, parts, grain, k):
    """Where part ``k`` of ``parts`` starts: an even share, rounded up to a multiple of
    ``grain``. A product split by columns gives a cache line's worth of columns as its grain,
    so that no line of its output is written by two threads: measured on the 784x256 GEMV,
    parts meeting inside a line took 9.2 µs, meeting at a line's edge 6.1 µs (one thread:
    9.5 µs)."""
    if k >= parts:
        return extent
    return min(extent, (extent * k // parts + grain - 1) // grain * grain)


@njit(nogil=True, cache=True)
def _take_parts(ctl, job):
    """Claim and run parts of job ``job`` until none is left. A claim is a compare-and-swap of
    CLAIM from (job, k) to (job, k + 1): when it succeeds the job was still the current one
    from before the fields were read until the claim, so they were this job's."""
    while True:
        claim = load_word(ctl, CLAIM)
        k = claim & _INDEX_MASK
        if claim >> _INDEX_BITS != job:
            return
        part, slots = load_word(ctl, PART), load_word(ctl, SLOTS)
        extent, parts, grain = load_word(ctl, EXTENT), load_word(ctl, PARTS), load_word(ctl, GRAIN)
        if k >= parts:
            return
        if not swap_word(ctl, CLAIM, claim, claim + 1):
            continue
        call_part(part, slots, part_bound(extent, parts, grain, k), part_bound(extent, parts, grain, k + 1))
        add_word(ctl, DONE, 1)


@njit(nogil=True, cache=True)
def _work(ctl):
    """A worker's whole life: wait for a job, take parts of it, wait again. It starts from
    job 0, so a job published before the thread first ran is not missed."""
    seen = 0
    while True:
        rounds = 0
        while load_word(ctl, GEN) == seen:
            spin_pause()
            rounds += 1
            if rounds % YIELD_EVERY == 0:
                yield_core()
            if rounds > SPIN_ROUNDS:
                add_word(ctl, SLEEPERS, 1)
                futex_wait(ctl, GEN, seen)  # returns at once if GEN moved since it was read
                add_word(ctl, SLEEPERS, -1)
                rounds = 0
        seen = load_word(ctl, GEN)
        if seen < 0:  # the pool is closing
            return
        _take_parts(ctl, seen & _JOB_MASK)


@njit(nogil=True, cache=True)
def run_parts(ctl, part, slots, extent, parts, work, grain):
    """Run ``part`` over ``[0, extent)`` in ``parts`` parts, this thread and the workers taking
    parts as they come: a worker that is asleep (the pool idled) or on a busy core never
    holds the caller up, the caller runs what no worker took. Sleeping workers are woken once
    the work of the jobs that found them asleep adds up to ``WAKE_WORK`` elements (the control
    block's WAKE word), in one job or in a stream of small ones (a GEMV per inference call
    never woke them before): the wake-up is a system call that cost the caller about 7 µs on
    the benchmark machine. The caller holds the pool (``swap_word(ctl, BUSY, 0, 1)``), so it
    alone writes OWED."""
    job = (load_word(ctl, GEN) + 1) & _JOB_MASK
    store_word(ctl, PART, part)
    store_word(ctl, SLOTS, slots)
    store_word(ctl, EXTENT, extent)
    store_word(ctl, PARTS, parts)
    store_word(ctl, GRAIN, grain)
    store_word(ctl, DONE, 0)
    store_word(ctl, CLAIM, job << _INDEX_BITS)
    store_word(ctl, GEN, job)
    if load_word(ctl, SLEEPERS) > 0:  # wake them once the work they missed pays for it
        owed = load_word(ctl, OWED) + work
        if owed >= load_word(ctl, WAKE):
            owed = 0
            futex_wake(ctl, GEN)
        store_word(ctl, OWED, owed)
    _take_parts(ctl, job)
    while load_word(ctl, DONE) < parts:
        spin_pause()


@njit(nogil=True, cache=True)
def _close(ctl):
    """Ask every worker to return (``_work`` sees a negative generation) and wake the sleepers."""
    store_word(ctl, GEN, -1)
    futex_wake(ctl, GEN)


class Pool:
    """The process's workers and their control block (one per process: ``pool()``)."""

    def __init__(self, threads: int):
        self.ctl = np.zeros(_WORDS, np.int64)
        self.pid = os.getpid()
        self.ctl[WIDTH] = 1
        self.ctl[WAKE] = WAKE_WORK
        self.workers = []
        if NATIVE and threads > 1:
            for k in range(1, threads):
                t = threading.Thread(target=_work, args=(self.ctl,), name=f"graphc-pool-{k}", daemon=True)
                t.start()
                self.workers.append(t)
            monitor = cores.monitor()
            self.follow(monitor.width)
            monitor.listeners.append(self.follow)
            # the workers read ``ctl`` until they return: they must return before the
            # interpreter frees it at exit
            atexit.register(self.close)

    def close(self) -> None:
        if self.workers and os.getpid() == self.pid:  # (a forked child inherits the handler, not the threads)
            _close(self.ctl)
            for t in self.workers:
                t.join(timeout=1.0)

    def follow(self, width: int) -> None:
        self.ctl[WIDTH] = min(int(width), len(self.workers) + 1)


_pool = None
_pool_pid = None
_lock = threading.Lock()


def pool() -> Pool:
    """This process's pool, started on first use (a forked child starts its own)."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        with _lock:
            if _pool is None or _pool_pid != os.getpid():
                _pool = Pool(THREADS)
                _pool_pid = os.getpid()
    return _pool


def control() -> np.ndarray:
    """The control block a part runner is given (what generated drivers call per kernel)."""
    p = _pool
    if p is None or _pool_pid != os.getpid():
        p = pool()
    return p.ctl


# --- the part function and runner of one kernel --------------------------------------------------------
_DIGEST = None


def _own_digest() -> str:
    """This file's hash: a part module's source holds it, so that its cache entry (cache.py,
    keyed by source) is rebuilt when the intrinsics change, and kernels' entries are not."""
    global _DIGEST
    if _DIGEST is None:
        _DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return _DIGEST


def part_module_source(kernel_module: str, param_types, lo: int, hi: int, grain: int = 1, tail: bool = False) -> str:
    """Source of a module with ``part``, the kernel's C entry for the pool, and ``run``, which
    a driver calls instead of the kernel: ``run(control(), part.address, work, *arguments)``
    with the kernel's arguments, ``hi`` the whole extent. It splits ``[0, hi)`` over the free
    cores when it holds the pool, else runs the kernel whole. A part that raises records its
    range; ``run`` then runs that range again in the calling thread, which raises the
    kernel's own error there (a ``cfunc`` cannot raise). ``param_types`` are the kernel's
    numba types as source (``types.Array(types.float32, 1, "C")`` or ``types.int64``); ``lo``
    and ``hi`` are the positions of its range parameters; parts meet at multiples of
    ``grain`` (``part_bound``). With ``tail``, the kernel module's ``tail`` runs once the
    parts have (KernelContext.split_tail: a kernel run whole calls it itself)."""
    params = [f"a{k}" for k in range(len(param_types))]
    unpack, pack, dtypes = [], [], set()
    w = 0
    for k, (name, t) in enumerate(zip(params, param_types)):
        if k in (lo, hi):
            unpack.append("lo" if k == lo else "hi")
        elif t.startswith("types.Array"):
            dtype = t.split("types.")[2].split(",")[0]
            unpack.append(f"carray(pointer_{dtype}(slot(slots, {w})), slot(slots, {w + 1}))")
            dtypes.add(dtype)
            pack += [f"slots[{w}] = {name}.ctypes.data", f"slots[{w + 1}] = {name}.size"]
            w += 2
        else:
            unpack.append(f"slot(slots, {w})")
            pack.append(f"slots[{w}] = {name}")
            w += 1
    whole = ["0" if k == lo else name for k, name in enumerate(params)]
    again = [f"slots[{w}]" if k == lo else f"slots[{w + 1}]" if k == hi else name for k, name in enumerate(params)]
    lines = [
        f"# parallel.py {_own_digest()}: the intrinsics below are compiled into this module's code",
        "import numpy as np",
        "from numba import carray, cfunc, njit, types",
        f"from {kernel_module} import kernel" + (", tail" if tail else ""),
        "from graphc.codegen.cpu.parallel import BUSY, WIDTH, load_word, run_parts, set_slot, slot, store_word, "
        "swap_word",
        *[f"from graphc.codegen.cpu.parallel import pointer_{d}" for d in sorted(dtypes)],
        "",
        "",
        "@cfunc(types.void(types.int64, types.int64, types.int64), nogil=True, cache=True)",
        "def part(slots, lo, hi):",
        "    try:",
        f"        kernel({', '.join(unpack)})",
        "    except Exception:  # noqa: BLE001 - recorded for run(), which raises it in the caller",
        f"        set_slot(slots, {w}, lo)",
        f"        set_slot(slots, {w + 1}, hi)",
        f"        set_slot(slots, {w + 2}, 1)",
        "",
        "",
        "@njit((types.Array(types.int64, 1, \"C\"), types.int64, types.int64, "
        f"{', '.join(param_types)}), nogil=True, cache=True)",
        f"def run(ctl, address, work, {', '.join(params)}):",
        f"    parts = min(load_word(ctl, WIDTH), {params[hi]})",
        "    if parts < 2 or not swap_word(ctl, BUSY, 0, 1):",
        f"        kernel({', '.join(whole)})",
        "        return",
        f"    slots = np.zeros({w + 3}, np.int64)",
        *[f"    {line}" for line in pack],
        f"    run_parts(ctl, address, slots.ctypes.data, {params[hi]}, parts, work, {grain})",
        "    store_word(ctl, BUSY, 0)",
        f"    if slots[{w + 2}] != 0:",
        f"        kernel({', '.join(again)})",
        *([f"    tail({', '.join(whole)})"] if tail else []),
        "",
    ]
    return "\n".join(lines)


def call(kernel, extent: int, work: int, args: tuple, lo: int, hi: int, runner_of=None, k: int = -1) -> None:
    """``kernel(*args)`` with its range parameters (at positions ``lo``, ``hi``) covering
    ``[0, extent)``, split over the pool when the work is large enough and ``runner_of(k)``
    gives the kernel's ``(run, part address)``."""
    args = list(args)
    args[lo], args[hi] = 0, extent
    runner = runner_of(k) if runner_of is not None and work >= MIN_WORK and extent > 1 else None
    if runner is None:
        kernel(*args)
        return
    run, address = runner
    run(control(), address, work, *args)

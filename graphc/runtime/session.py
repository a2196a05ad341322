"""Session: runs fetches of a graph, caching one compiled executable per (fetches, feeds)."""
from __future__ import annotations

import contextlib
import os
import threading
import weakref
from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence

import numpy as np

from .. import default_session, profiler
from ..default_session import get_default_session  # noqa: F401  (gc.get_default_session)
from ..errors import FailedPreconditionError, FeedError, FetchError, GraphcError
from ..compat import check_placement
from ..graph import Graph, Operation, Tensor, get_default_graph
from ..ops.state import Variable, variable_for
from ..shapes import format_shape
from ..codegen.backend import MISS as _MISS, get_backend
from ..optimizer.pipeline import PASS_NAMES, Optimized, explain_text, optimize
from ..optimizer.program import lower
from ..nest import flatten
from .state import SessionState

_PROFILING = profiler._ACTIVE  # the open gc.profiler.trace blocks (a list: empty is false)


class _Runner:
    """One compiled (fetches, feeds) combination."""

    __slots__ = ("executable", "positions", "fresh")

    def __init__(self, executable, positions):
        self.executable = executable
        self.positions = positions  # per fetch leaf: index into the executable's outputs, or None
        # backends that make new arrays for every run need no defensive copies
        self.fresh = getattr(executable, "fresh_outputs", False)

    def __call__(self, feeds: Sequence[np.ndarray], state: SessionState) -> list:
        outputs = self.executable.run(feeds, state)
        if self.fresh:
            return [None if p is None else _scalar_or_array(outputs[p]) for p in self.positions]
        return [None if p is None else _owned(outputs[p], feeds) for p in self.positions]


def _scalar_or_array(arr):
    return arr[()] if arr.ndim == 0 else arr


def _is_one_fetch(fetches) -> bool:
    return isinstance(fetches, (Tensor, Operation)) or type(fetches) is str


class _CachedCall:
    """Runs one (fetches, feed keys) combination again and again with little Python.

    ``caller_order`` lists the fed tensors in the order values arrive (feed_dict order, or a
    callable's feed_list); ``program_order`` in the order the executable takes them. When the
    backend can specialize (the CPU backend), the last seen shapes get a generated function
    that checks the values cheaply and calls the kernels directly; otherwise, or when those
    checks fail, values go through the Session's checks and the runner."""

    __slots__ = ("runner", "convert", "rebuild", "one_fetch", "session", "special", "perm", "tensors", "__weakref__")

    def __init__(self, runner, caller_order, program_order, rebuild, one_fetch, session):
        self.runner = runner
        position = {t: j for j, t in enumerate(caller_order)}
        self.convert = [(position[t], session._converter(t)) for t in program_order]
        self.perm = [program_order.index(t) for t in caller_order]  # caller arg j -> program feed
        self.rebuild = rebuild
        self.one_fetch = one_fetch
        self.session = session
        self.special = None
        self.tensors = program_order

    def __call__(self, values):
        session = self.session
        if session._closed:
            session._check_open()
        special = self.special
        if special is not None:
            out = special(*values)
            if out is not _MISS:
                return out if self.one_fetch else self._finish(out)
        arrays = [c(values[i]) for i, c in self.convert]
        if _PROFILING:  # a gc.profiler.trace block is open (it cleared ``special``): trace, never specialize
            outputs = session._traced_call(self.runner, arrays)
            return outputs[0] if self.one_fetch else self.rebuild(outputs)
        outputs = self.runner(arrays, session._state)
        self._specialize(arrays)
        return outputs[0] if self.one_fetch else self.rebuild(outputs)

    def _finish(self, executable_outputs):
        positions = self.runner.positions
        return self.rebuild([None if p is None else executable_outputs[p] for p in positions])

    def _specialize(self, arrays) -> None:
        make = getattr(self.runner.executable, "specialized_runner", None)
        if make is None or (self.one_fetch and self.runner.positions[0] is None):
            return
        self.special = make(arrays, self.perm, self.session._state, self.one_fetch)
        _SPECIALIZED.add(self)


# Cached calls with a specialized runner: opening a gc.profiler.trace block drops their
# specialized runners, so that their next calls take the general path, which traces. This
# way the fast path never checks for a block, and costs the same with the profiler as without.
_SPECIALIZED: "weakref.WeakSet[_CachedCall]" = weakref.WeakSet()


def _drop_specialized_runners() -> None:
    for cached in list(_SPECIALIZED):
        cached.special = None
    _SPECIALIZED.clear()


profiler.on_start(_drop_specialized_runners)


def _owned(arr, feeds):
    """Results never alias a feed or another array the caller could change under us."""
    arr = np.asarray(arr)
    if arr.base is not None or any(arr is f for f in feeds):
        arr = arr.copy()
    return arr[()] if arr.ndim == 0 else arr


@dataclass(frozen=True)
class RunOptions:
    """Options of one ``Session.run`` (tf.RunOptions). ``timeout_in_ms`` stops a run whose loops
    go on longer (0: no limit). ``trace_level`` above NO_TRACE fills the run's ``run_metadata``
    with the time of every kernel and host step (gc.profiler; every level gives the full trace).
    ``report_tensor_allocations_upon_oom`` is accepted for TF1 code and changes nothing: graphc
    plans a run's memory before it starts and names the sizes when it cannot have them."""

    NO_TRACE: ClassVar[int] = 0
    SOFTWARE_TRACE: ClassVar[int] = 1
    HARDWARE_TRACE: ClassVar[int] = 2
    FULL_TRACE: ClassVar[int] = 3

    timeout_in_ms: int = 0
    trace_level: int = 0
    report_tensor_allocations_upon_oom: bool = False

    def __post_init__(self):
        if not isinstance(self.timeout_in_ms, int) or isinstance(self.timeout_in_ms, bool) or self.timeout_in_ms < 0:
            raise ValueError(f"timeout_in_ms must be a non-negative int, got {self.timeout_in_ms!r}")
        if self.trace_level not in (0, 1, 2, 3) or isinstance(self.trace_level, bool):
            raise ValueError(f"trace_level must be gc.RunOptions.NO_TRACE, SOFTWARE_TRACE, HARDWARE_TRACE or "
                             f"FULL_TRACE (0 to 3), got {self.trace_level!r}")


class Session:
    """``gc.Session(graph=None, device="cpu", optimize=2, disable_passes=(), nan_guard=False)``.

    ``device`` is "cpu" (numba kernels), "reference" (the NumPy interpreter every backend is
    checked against) or "cuda".

    Holds variable values between runs. ``run(fetches, feed_dict)`` accepts any nesting of
    lists, tuples, namedtuples and dicts of Tensors, Operations, Variables and tensor names.

    ``nan_guard=True`` (or ``config=gc.ConfigProto(nan_guard=True)``): a run that makes a NaN
    or an infinity in a fetched value or a variable it writes changes nothing and raises
    ``gc.errors.NumericsError`` naming the first op that made one (docs/DEBUGGING.md).
    """

    def __init__(self, graph: Optional[Graph] = None, device: Optional[str] = None, optimize: Optional[int] = None,
                 config=None, disable_passes=(), nan_guard: bool = False):
        self.graph = graph if graph is not None else get_default_graph()
        if not isinstance(self.graph, Graph):
            raise TypeError(f"graph must be a gc.Graph, got {graph!r}")
        if device is None:  # GRAPHC_DEVICE sets the default device
            device = os.environ.get("GRAPHC_DEVICE", "cpu")
        self.device = device
        self.config = config  # a gc.ConfigProto: allow_soft_placement (docs/TF1-COMPAT.md)
        self._backend = get_backend(device)
        if optimize is None:  # GRAPHC_OPTIMIZE sets the default level (e.g. 0 to debug a model)
            optimize = int(os.environ.get("GRAPHC_OPTIMIZE", "2"))
        if optimize not in (0, 1, 2):
            raise ValueError(f"optimize must be 0, 1 or 2, got {optimize!r}")
        self.optimize = optimize
        self.disable_passes = frozenset(disable_passes)
        unknown = self.disable_passes - PASS_NAMES
        if unknown:
            raise ValueError(f"unknown pass name(s) {sorted(unknown)}; passes are {sorted(PASS_NAMES)}")
        self._state = SessionState(self._describe_variable)
        self._runners: dict = {}       # (fetch targets, feeds) -> _Runner
        self._executables: dict = {}   # (distinct targets, feeds) -> compiled executable
        self._cached_calls: dict = {}  # (fetch structure, feed keys) -> (runner, feed converters, rebuild)
        self._lock = threading.RLock()
        self._closed = False
        self._nan_guard = bool(nan_guard or getattr(config, "nan_guard", False))

    @property
    def graph_def(self):
        """TF1's ``sess.graph_def``: the session's graph as a ``gc.GraphDef``."""
        return self.graph.as_graph_def()

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        for hook in self.graph.session_hooks:  # gc.data stops this Session's pipeline threads
            hook.session_closed(self)
        with self._lock:
            self._closed = True
            self._runners.clear()
            self._executables.clear()
            self._cached_calls.clear()
            self._state.variables.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Session":
        default_session.push(self)
        return self

    def __exit__(self, *exc) -> None:
        default_session.pop(self)
        self.close()

    @contextlib.contextmanager
    def as_default(self):
        default_session.push(self)
        try:
            yield self
        finally:
            default_session.pop(self)

    def _debugging(self) -> bool:
        """Runs take graphc/debugging.py's path: a NaN-guarded Session, or a graph with print
        ops (no cached call is made for either: a fetch made before a print op cannot depend
        on it, but one made after may)."""
        return self._nan_guard or bool(self.graph.prints)

    def _check_open(self) -> None:
        if self._closed:
            raise FailedPreconditionError("attempted to use a closed Session")

    # -- running --------------------------------------------------------------------------
    def run(self, fetches, feed_dict=None, options=None, run_metadata=None):
        """Run ``fetches`` with ``feed_dict``. ``options``: a ``RunOptions`` (a timeout, a trace
        level); a traced run fills ``run_metadata`` (a ``gc.RunMetadata``)."""
        if options is not None or run_metadata is not None:
            return self._run_with_options(fetches, feed_dict, options, run_metadata)
        if self._closed:
            self._check_open()
        for hook in self.graph.session_hooks:  # gc.data's iterators add their next element
            feed_dict = hook.before_run(self, fetches, feed_dict)
        # A cached call: the same fetch structure with the same feed keys as an earlier call.
        key = _cached_call_key(fetches, feed_dict)
        cached = self._cached_calls.get(key) if key is not None else None
        if cached is not None:
            values = tuple(feed_dict.values()) if feed_dict else ()
            return cached(values)  # traced inside a gc.profiler.trace block (_CachedCall)
        # No cached call is ever made for these two: a guarded Session, or fetches that a
        # print op may feed (a fetch made before a print op cannot depend on it).
        if self._debugging():
            from .. import debugging
            return debugging.run(self, fetches, feed_dict, self._traced_call if _PROFILING else None)
        if _PROFILING:
            return self._traced_run(fetches, feed_dict, None)
        leaves, rebuild = _expand_composite_fetches(*flatten(fetches))
        targets = [self._resolve_fetch(f) for f in leaves]
        feed_tensors, feed_values = self._resolve_feeds(feed_dict)
        ranks = _fed_ranks(feed_tensors, feed_values)
        runner = self._runner(targets, feed_tensors, ranks)
        result = rebuild(runner(feed_values, self._state))
        if key is not None and not ranks:  # a rank-free feed picks its program by the rank of each value
            dict_order = [self._resolve_feed_key(k) for k in (feed_dict or {})]
            self._cached_calls[key] = _CachedCall(runner, dict_order, feed_tensors, rebuild, _is_one_fetch(fetches),
                                                  self)
        return result

    def _run_with_options(self, fetches, feed_dict, options, run_metadata):
        if options is not None and not isinstance(options, RunOptions):
            raise TypeError(f"sess.run: options must be a gc.RunOptions, got {type(options).__name__}")
        if run_metadata is not None and not isinstance(run_metadata, profiler.RunMetadata):
            raise TypeError(f"sess.run: run_metadata must be a gc.RunMetadata, got {type(run_metadata).__name__}")
        traced = bool(options is not None and options.trace_level) or bool(_PROFILING)
        self._state.set_timeout(options.timeout_in_ms if options is not None else None)
        try:
            if not traced:
                return self.run(fetches, feed_dict)
            if self._closed:
                self._check_open()
            for hook in self.graph.session_hooks:
                feed_dict = hook.before_run(self, fetches, feed_dict)
            if self._debugging():
                from .. import debugging
                return debugging.run(self, fetches, feed_dict,
                                     lambda runner, values: self._traced_call(runner, values, None, run_metadata))
            return self._traced_run(fetches, feed_dict, run_metadata)
        finally:
            self._state.set_timeout(None)

    def _traced_run(self, fetches, feed_dict, run_metadata):
        """One run through the general path (the hooks have seen it), timing the host's steps
        around the backend's kernels."""
        tracer = profiler.Tracer(self.device)
        started = tracer.clock()
        leaves, rebuild = _expand_composite_fetches(*flatten(fetches))
        targets = [self._resolve_fetch(f) for f in leaves]
        feed_tensors, feed_values = self._resolve_feeds(feed_dict)
        ranks = _fed_ranks(feed_tensors, feed_values)
        tracer.host("feeds and fetches", started, "resolve fetches, check and convert feeds")
        started = tracer.clock()
        compiled_now = (tuple(targets), tuple(feed_tensors), ranks) not in self._runners
        runner = self._runner(targets, feed_tensors, ranks)
        if compiled_now:
            tracer.host("compile", started, "lower, optimize, generate and compile the kernels")
        outputs = self._traced_call(runner, feed_values, tracer, run_metadata)
        started = tracer.clock()
        result = rebuild(outputs)
        tracer.host("fetch results", started, "assemble the fetched values")
        return result

    def _traced_call(self, runner, feed_values, tracer=None, run_metadata=None) -> list:
        """``runner``'s outputs for these (checked) feeds, with a Tracer in this thread's
        session state: the backend times its kernels into it. The RunMetadata goes to the
        caller's ``run_metadata`` and to every open ``gc.profiler.trace`` block."""
        if self._closed:
            self._check_open()
        if not getattr(runner.executable, "traceable", False):
            raise ValueError(f"sess.run: options.trace_level asks to time the kernels, but the {self.device!r} "
                             "backend cannot time them; run with trace_level=gc.RunOptions.NO_TRACE, or trace on "
                             "'cpu', 'cuda' or 'reference'")
        tracer = tracer or profiler.Tracer(self.device)
        metadata = run_metadata if run_metadata is not None else profiler.RunMetadata()
        metadata.step_stats = tracer.step_stats()  # filled as the run goes
        started = tracer.clock()
        self._state.begin_trace(tracer)
        try:
            outputs = runner(feed_values, self._state)
        finally:
            self._state.end_trace()
        tracer.host("run", started, f"run {len(tracer.kernels)} kernels")
        profiler.record(metadata)
        return outputs

    def make_callable(self, fetches, feed_list=None, accept_options: bool = False):
        """A function ``f(*feed_values)`` that runs ``fetches`` with values for ``feed_list``,
        skipping the per-call resolution and cache lookup of ``run``."""
        self._check_open()
        leaves, rebuild = _expand_composite_fetches(*flatten(fetches))
        targets = [self._resolve_fetch(f) for f in leaves]
        feed_tensors = [self._resolve_feed_key(k) for k in (feed_list or [])]
        keys = list(feed_list or [])
        if (any(not t.shape.known_rank for t in feed_tensors)  # the program depends on each value's rank
                or self._debugging()
                or any(hook.involved(self, fetches, feed_list) for hook in self.graph.session_hooks)):
            # the hooks must see every call (an iterator's next element)
            if accept_options:
                return lambda *values, options=None, run_metadata=None: self.run(
                    fetches, dict(zip(keys, values)), options, run_metadata)
            return lambda *values: self.run(fetches, dict(zip(keys, values)))
        if len(set(feed_tensors)) != len(feed_tensors):
            raise FeedError("feed_list names the same tensor twice")
        order = sorted(range(len(feed_tensors)), key=lambda i: _tensor_key(feed_tensors[i]))
        runner = self._runner(targets, [feed_tensors[i] for i in order])
        cached = _CachedCall(runner, feed_tensors, [feed_tensors[i] for i in order], rebuild,
                             _is_one_fetch(fetches), self)
        n = len(feed_tensors)

        def call(*values):
            if len(values) != n:
                raise TypeError(f"this callable takes {n} feed value(s) (for "
                                f"{', '.join(t.name for t in feed_tensors) or 'nothing'}), got {len(values)}")
            return cached(values)  # traced inside a gc.profiler.trace block (_CachedCall)

        if not accept_options:
            return call

        def call_with_options(*values, options=None, run_metadata=None):
            """TF1's ``make_callable(..., accept_options=True)``: ``options`` and ``run_metadata``
            as keywords after the feed values."""
            if options is None and run_metadata is None:
                return call(*values)
            if len(values) != n:
                return call(*values)  # the count error
            return self.run(fetches, dict(zip(keys, values)), options, run_metadata)

        return call_with_options

    def _converter(self, tensor: Tensor):
        """A fast check of a feed value for ``tensor``: a C-contiguous, writable ndarray of the
        right dtype and shape passes as it is; anything else goes through _convert_feed (which
        converts it or explains what is wrong)."""
        dtype = tensor.dtype.np
        static = tuple(tensor.shape)
        rank = len(static)
        known = [(i, d) for i, d in enumerate(static) if d is not None]
        slow = self._convert_feed
        ndarray = np.ndarray

        if len(known) == rank:
            def convert(value):
                if type(value) is ndarray and value.dtype == dtype and value.shape == static:
                    flags = value.flags
                    if flags.c_contiguous and flags.writeable:
                        return value
                return slow(tensor, value)
        else:
            def convert(value):
                if type(value) is ndarray and value.dtype == dtype and value.ndim == rank:
                    shape = value.shape
                    for i, d in known:
                        if shape[i] != d:
                            return slow(tensor, value)
                    flags = value.flags
                    if flags.c_contiguous and flags.writeable:
                        return value
                return slow(tensor, value)
        return convert

    def _runner(self, targets: list, feed_tensors: list, ranks: tuple = ()) -> _Runner:
        """The runner for these fetch targets (in order, repeats included) and feeds. Runners
        that fetch the same set of tensors share one executable; each has its own positions
        (``[a]`` and ``[a, a]`` compile once but return one and two values). ``ranks`` pairs
        each fed placeholder made without a shape with the rank fed: one program per rank."""
        key = (tuple(targets), tuple(feed_tensors), ranks)
        runner = self._runners.get(key)
        if runner is None:
            with self._lock:
                self._check_open()
                runner = self._runners.get(key)
                if runner is None:
                    unique = list(dict.fromkeys(targets))
                    compiled = (tuple(unique), tuple(feed_tensors), ranks)
                    executable = self._executables.get(compiled)
                    if executable is None:
                        executable = self._executables[compiled] = self._compile(unique, feed_tensors, dict(ranks))
                    index = {t: i for i, t in enumerate(t for t in unique if isinstance(t, Tensor))}
                    positions = [index[t] if isinstance(t, Tensor) else None for t in targets]
                    runner = self._runners[key] = _Runner(executable, positions)
        return runner

    def _optimized(self, unique: list, feed_tensors: list, fed_ranks: dict, keep_stages: bool = False) -> Optimized:
        if self.graph.placed:
            check_placement(self.graph, unique, feed_tensors, self.device, self.config)
        program = lower(self.graph, unique, feed_tensors, fed_ranks)
        return optimize(program, self.optimize, self.disable_passes, keep_stages=keep_stages,
                        capabilities=self._backend.capabilities)

    def _compile(self, unique: list, feed_tensors: list, fed_ranks: dict):
        optimized = self._optimized(unique, feed_tensors, fed_ranks)
        executable = self._backend.compile(optimized.program)
        executable.optimized = optimized
        return executable

    def explain(self, fetches, feed_dict=None, file=None, print_result: bool = True) -> str:
        """Show how ``fetches`` compile: the program after each pass, the kernel groups and the
        buffer plan (with sizes for the shapes in ``feed_dict``, if given). Prints it (to
        ``file`` or stdout) and returns the text."""
        self._check_open()
        leaves, _ = flatten(fetches)
        targets = list(dict.fromkeys(self._resolve_fetch(f) for f in leaves))
        feed_tensors, feed_values = self._resolve_feeds(feed_dict)
        optimized = self._optimized(targets, feed_tensors, dict(_fed_ranks(feed_tensors, feed_values)),
                                    keep_stages=True)
        binding = None
        if feed_values:
            sym = optimized.program.symbolic()
            binding = {}
            for v, value in zip(optimized.program.feeds, feed_values):
                for d, n in zip(sym.shape(v), np.shape(value)):
                    if isinstance(d, tuple):
                        binding[d] = n
            needed = {d for v in optimized.program.types for d in sym.shape(v) if isinstance(d, tuple)}
            if not needed <= set(binding):
                binding = None
        text = f"explain: device={self.device!r} optimize={self.optimize}\n" + explain_text(optimized, binding)
        if print_result:
            print(text, file=file)
        return text

    # -- fetches and feeds ----------------------------------------------------------------
    def _resolve_fetch(self, fetch):
        if fetch is None:
            raise FetchError("a fetch is None; fetch a Tensor, Operation, Variable or tensor name")
        try:
            return self.graph.as_graph_element(fetch)
        except (GraphcError, TypeError) as e:
            where = f" (created at {fetch.location})" if hasattr(fetch, "location") else ""
            raise FetchError(f"cannot fetch {getattr(fetch, 'name', fetch)!r}{where}: {e}") from None

    def _resolve_feed_key(self, key) -> Tensor:
        if isinstance(key, Variable):
            key = key.value()
        if isinstance(key, str):
            try:
                key = self.graph.as_graph_element(key)
            except GraphcError as e:
                raise FeedError(f"unknown feed key {key!r}: {e}") from None
        if isinstance(key, Operation):
            raise FeedError(f"cannot feed operation '{key.name}' (created at {key.location}); feed one of its "
                            "output tensors")
        if not isinstance(key, Tensor):
            raise FeedError(f"feed_dict key {key!r} is not a gc.Tensor, gc.Variable or tensor name")
        if key.graph is not self.graph:
            raise FeedError(f"feed key '{key.name}' (created at {key.location}) belongs to {key.graph!r}, but "
                            f"this session runs {self.graph!r}")
        return key

    def _resolve_feeds(self, feed_dict) -> tuple:
        if not feed_dict:
            return [], []
        if not hasattr(feed_dict, "items"):
            raise FeedError(f"feed_dict must be a dict, got {type(feed_dict).__name__}")
        pairs = {}
        for key, value in feed_dict.items():
            tensor = self._resolve_feed_key(key)
            if tensor in pairs:
                raise FeedError(f"tensor '{tensor.name}' is fed twice (by two keys naming it)")
            pairs[tensor] = self._convert_feed(tensor, value)
        ordered = sorted(pairs, key=_tensor_key)
        return ordered, [pairs[t] for t in ordered]

    def _convert_feed(self, tensor: Tensor, value) -> np.ndarray:
        where = f"created at {tensor.location}"
        if isinstance(value, (Tensor, Variable)):
            raise FeedError(f"the value fed for '{tensor.name}' ({where}) is the symbolic tensor "
                            f"{value.name!r}; feed NumPy arrays or Python values (fetch it first)")
        try:
            arr = np.asarray(value)
        except Exception as e:
            raise FeedError(f"cannot convert the value fed for '{tensor.name}' ({where}) to an array: {e}") from None
        expected = f"{tensor.dtype.name}{format_shape(tensor.shape)}"
        if arr.dtype == object or arr.dtype.kind in "USVMm":
            raise FeedError(f"cannot feed a value of type {arr.dtype} for '{tensor.name}', which expects "
                            f"{expected} ({where})")
        target = tensor.dtype.np
        if arr.dtype != target:
            if not np.can_cast(arr.dtype, target, casting="same_kind"):
                raise FeedError(f"cannot feed a value of dtype {arr.dtype} for '{tensor.name}', which expects "
                                f"{expected} ({where}): converting would lose information")
            if target.kind in "iu" and arr.dtype.kind in "iu" and arr.size:
                info = np.iinfo(target)
                if arr.min() < info.min or arr.max() > info.max:
                    raise FeedError(f"the value fed for '{tensor.name}' has entries outside the range of "
                                    f"{tensor.dtype.name} ({where})")
            arr = arr.astype(target)
        if not tensor.shape.is_compatible_with(arr.shape):
            raise FeedError(f"cannot feed a value of shape {format_shape(arr.shape)} for '{tensor.name}', "
                            f"which has shape {format_shape(tensor.shape)} ({where}){_lower_rank_hint(tensor, arr)}")
        # np.ascontiguousarray would turn a 0-d array into 1-d; read-only arrays are copied
        # because compiled kernels take writable ones
        flags = arr.flags
        return arr if flags.c_contiguous and flags.writeable else np.array(arr, order="C")

    # -- variables ----------------------------------------------------------------------------
    def _describe_variable(self, name: str) -> str:
        var = variable_for(self.graph, name)
        return f"'{name}' (created at {var.location})" if var is not None else f"'{name}'"

    def load_variable(self, var: Variable, value) -> None:
        self._check_open()
        if var.graph is not self.graph:
            raise FeedError(f"variable '{var.var_name}' belongs to {var.graph!r}, not to this session's graph")
        arr = self._convert_feed(var.value(), value)
        self._state.write_variable(var.var_name, np.array(arr, copy=True))


def _fed_ranks(feed_tensors: list, feed_values: list) -> tuple:
    """``(tensor, rank)`` for each fed placeholder made without a shape."""
    return tuple((t, v.ndim) for t, v in zip(feed_tensors, feed_values) if not t.shape.known_rank)


def _lower_rank_hint(tensor: Tensor, arr: np.ndarray) -> str:
    """The TF1 fix for a value of lower rank that would fit once reshaped (a Python scalar for
    a ``[None]`` placeholder): TF1 refuses it too, so the fix is the user's to make."""
    static = tuple(tensor.shape)
    if arr.ndim >= len(static):
        return ""
    padded = (1,) * (len(static) - arr.ndim) + arr.shape
    if not tensor.shape.is_compatible_with(padded):
        return ""
    shown = ", ".join(str(d) for d in padded) + ("," if len(padded) == 1 else "")
    return (f". The value has lower rank than the placeholder; as in TF1, graphc does not add the missing dims. "
            f"Feed {'[x] for the number x' if arr.ndim == 0 and len(padded) == 1 else f'np.reshape(value, ({shown}))'}"
            f", or declare the placeholder with shape={format_shape(arr.shape)} if that is the shape you mean")


def _tensor_key(t: Tensor):
    return (t.op._id, t.value_index)


_CACHED_CALL_LEAVES = (Tensor, Operation, str)


def _expand_composite_fetches(leaves: list, rebuild):
    """Fetches that stand for several tensors (a ``gc.summary`` op: the tensors it summarizes,
    serialized after the run) become those tensors; ``rebuild`` puts each one's result back
    in its place. A composite fetch has ``_graphc_fetch_parts_() -> (tensors, finish)``."""
    if not any(hasattr(leaf, "_graphc_fetch_parts_") for leaf in leaves):
        return leaves, rebuild
    flat, spans = [], []
    for leaf in leaves:
        parts = getattr(leaf, "_graphc_fetch_parts_", None)
        if parts is None:
            spans.append((len(flat), 1, None))
            flat.append(leaf)
        else:
            tensors, finish = parts()
            spans.append((len(flat), len(tensors), finish))
            flat.extend(tensors)

    def rebuild_composites(values):
        values = list(values)
        return rebuild([values[at] if finish is None else finish(values[at:at + n]) for at, n, finish in spans])
    return flat, rebuild_composites


def _cached_call_key(fetches, feed_dict):
    """A hashable key for a fetch structure made of a single fetch or a flat list/tuple of
    fetches, with the feed dict's keys in order; None for anything else (slow path)."""
    if isinstance(fetches, _CACHED_CALL_LEAVES):
        fetch_key = fetches
    elif type(fetches) in (list, tuple):
        for f in fetches:
            if not isinstance(f, _CACHED_CALL_LEAVES):
                return None
        fetch_key = (type(fetches), tuple(fetches))
    else:
        return None
    if not feed_dict:
        return (fetch_key, ())
    if type(feed_dict) is not dict:
        return None
    return (fetch_key, tuple(feed_dict))


class InteractiveSession(Session):
    """A Session that makes itself the default on creation, for notebooks and shells."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        default_session.push(self)

    def close(self) -> None:
        default_session.discard(self)
        super().close()

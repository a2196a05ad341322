"""Numeric checks and printing (TF1's ``tf.check_numerics``, ``tf.add_check_numerics_ops``,
``tf.Print``, TF2's ``tf.print``) and the Session's NaN guard (Theano's NanGuardMode).

* ``check_numerics`` is a ``check_range`` op over the open interval (-inf, inf), which
  rejects NaN and both infinities: it has the reference, CPU and CUDA kernels of that op.
* The NaN guard (``gc.Session(nan_guard=True)`` or ``ConfigProto(nan_guard=True)``) runs the
  compiled program as usual and checks every fetched value and every variable the run wrote
  with NumPy. Only when one holds a NaN or an infinity does it undo the run (the written
  variables and the random counters go back to their values before it) and replay the run
  op by op with the reference interpreter, unoptimized, to name the first op that made a
  non-finite value from finite inputs.
* ``Print`` and ``print`` are host effects with no kernel: the tensors they print become
  extra fetches of the run, printed after the run, in the order the print ops were created.

docs/DEBUGGING.md describes each, with what it costs.
"""
from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import DTypeError, GraphcError, GraphError, NumericsError
from .graph import Operation, Tensor, ancestors, get_default_graph, user_location
from .nest import flatten
from .ops.control import check_range, group, identity, no_op
from .ops.registry import get_op
from .ops.source import convert_to_tensor
from .ops.state import Variable, variable_for
from .shapes import format_shape

__all__ = ["check_numerics", "add_check_numerics_ops", "Print", "print", "NumericsError"]

_WRITES = ("assign", "assign_add", "assign_sub")


# --- check_numerics ----------------------------------------------------------------------------------
def check_numerics(tensor, message, name: Optional[str] = None) -> Tensor:
    """``tensor``, checked at run time: if an element is NaN or +-inf the run stops with an
    InvalidArgumentError that has ``message``, the op's name, the value found (nan, inf or
    -inf) and the line that called check_numerics. Floating-point tensors only. Its gradient
    passes through unchanged."""
    t = convert_to_tensor(tensor)
    if not t.dtype.is_floating:
        raise DTypeError(f"check_numerics at {user_location()}: tensor '{t.name}' has dtype {t.dtype.name}; "
                         "only floating-point tensors (float32, float64) can hold NaN or inf")
    what = f"{message}: check_numerics of '{t.name}' found a NaN or an infinity; every element"
    return check_range(t, -np.inf, np.inf, what, low_open=True, high_open=True, name=name or "CheckNumerics")


def _is_numerics_check(op: Operation) -> bool:
    return op.type == "check_range" and op.attrs["low"] == -np.inf and op.attrs["high"] == np.inf


def add_check_numerics_ops(name: Optional[str] = None) -> Operation:
    """TF1's ``tf.add_check_numerics_ops()``: a ``check_numerics`` on every floating-point
    output of every op of the default graph, grouped into one op to fetch with the train op
    (``sess.run([train_op, check_op])``). As in TF1, fetching it computes every float tensor
    of the graph, so every placeholder they depend on must be fed. Skipped: ops that are
    checks already, ops with no float output, and ops whose value would run a variable write
    or a random draw (fetching a check of an initializer's value would re-initialize)."""
    graph = get_default_graph()
    effectful: set = set()
    checks = []
    for op in list(graph.get_operations()):  # creation order is topological
        opdef = get_op(op.type)
        if (op.type in _WRITES or opdef.random or any(t.op in effectful for t in op.inputs)
                or any(c in effectful for c in op.control_inputs)):
            effectful.add(op)
            continue
        if op.type == "check_range" or opdef.structural:
            continue
        for t in op.outputs:
            if t.dtype.is_floating:
                checks.append(check_numerics(t, f"add_check_numerics_ops: {op.type} '{op.name}' (created at "
                                                f"{op.location})", name=f"{op.name}/CheckNumerics"))
    return group(*checks, name=name or "CheckNumericsOps") if checks else no_op(name or "CheckNumericsOps")


# --- Print and print ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _PrintSpec:
    op: Operation          # the op whose run prints (Print's identity, print's no_op)
    parts: tuple           # str or Tensor, in order
    first_n: int           # -1: every run
    summarize: int         # elements shown per tensor; -1: all
    style: str             # "tf1" (message then [values]...) or "tf2" (sep-joined, numpy-like)
    sep: str = " "
    end: str = "\n"
    stream: object = None  # None: sys.stderr at print time

    @property
    def tensors(self) -> list:
        return [p for p in self.parts if isinstance(p, Tensor)]


def _refuse_in_body(graph, what: str) -> None:
    traced = getattr(graph, "traced_as", None)
    if traced is not None:
        raise GraphError(
            f"{what} at {user_location()} is inside the function of {traced}: printing inside a gc.while_loop or "
            "gc.cond function is not supported. graphc prints after the run, from values the run fetches, and a "
            "body's values of each iteration are not fetches; return (or stack) the value from the loop and print "
            "the loop's result, or gc.Print a tensor the loop reads before it starts")


def _count(first_n) -> int:
    if first_n is None:
        return -1
    if isinstance(first_n, bool) or not isinstance(first_n, (int, np.integer)):
        raise TypeError(f"first_n must be an int or None, got {first_n!r}")
    return int(first_n) if first_n >= 0 else -1


def Print(input_, data, message: Optional[str] = None, first_n: Optional[int] = None,  # noqa: N802  (TF1's name)
          summarize: Optional[int] = None, name: Optional[str] = None) -> Tensor:
    """TF1's ``tf.Print``: returns ``input_`` unchanged (an identity); each time a run
    computes it, ``message`` and the values of the tensors in ``data`` (at most
    ``summarize`` elements of each, default 3) are printed to stderr after the run, for
    the first ``first_n`` runs only (None or -1: every run)."""
    x = convert_to_tensor(input_)
    graph = x.graph
    _refuse_in_body(graph, "gc.Print")
    items, _ = flatten(data if data is not None else [])
    tensors = tuple(convert_to_tensor(d) for d in items)
    for t in tensors:
        if t.graph is not graph:
            raise GraphError(f"gc.Print at {user_location()}: data tensor '{t.name}' is from another graph than "
                             f"input_ '{x.name}'")
    out = identity(x, name=name or "Print")
    summarize = 3 if summarize is None else int(summarize)
    graph.prints[out.op] = _PrintSpec(out.op, ((message or ""),) + tensors, _count(first_n), summarize, "tf1")
    return out


def print(*inputs, output_stream=None, sep: str = " ", end: str = "\n", summarize: int = 3,  # noqa: A001
          name: Optional[str] = None) -> Operation:
    """TF2's ``tf.print``: an op that prints ``inputs`` (tensors, and strings or other Python
    values as they are) joined by ``sep`` and followed by ``end``, each time a run runs it
    (fetched, or as a control dependency of what is fetched). ``output_stream``: a file
    object, or None for the ``sys.stderr`` of the moment it prints (TF2's default).
    ``summarize`` elements at each end of every axis (-1 or None: all)."""
    graph = get_default_graph()
    _refuse_in_body(graph, "gc.print")
    parts = []
    for item in inputs:
        if isinstance(item, (Tensor, np.ndarray, Variable)):
            t = convert_to_tensor(item)
            if t.graph is not graph:
                raise GraphError(f"gc.print at {user_location()}: '{t.name}' is from another graph")
            parts.append(t)
        else:
            parts.append(str(item))
    if output_stream is not None and not hasattr(output_stream, "write"):
        raise TypeError(f"gc.print at {user_location()}: output_stream must be a file object (sys.stdout, "
                        f"sys.stderr, an open file), got {output_stream!r}")
    tensors = [p for p in parts if isinstance(p, Tensor)]
    with graph.control_dependencies(tensors):
        op = no_op(name or "PrintV2")
    summarize = -1 if summarize is None else int(summarize)
    graph.prints[op] = _PrintSpec(op, tuple(parts), -1, summarize, "tf2", sep, end, output_stream)
    return op


def _tf1_text(value: np.ndarray, summarize: int) -> str:
    """TF1's summary of a tensor in Print: nested brackets, elements in row-major order, at
    most ``summarize`` of them, then "..." ("[[1 2 3][4...]]")."""
    value = np.asarray(value)
    flat = value.reshape(-1)
    if value.ndim == 0:
        return _element(flat[0])
    if flat.size == 0:
        return "[]"
    limit = flat.size if summarize < 0 else min(summarize, flat.size)
    spans = [int(np.prod(value.shape[k:], dtype=np.int64)) for k in range(value.ndim)]
    out = ["[" * value.ndim]
    for i in range(limit):
        if i:
            turned = sum(1 for s in spans if i % s == 0)  # the dims that end (and start again) here
            out.append("]" * turned + "[" * turned if turned else " ")
        out.append(_element(flat[i]))
    if limit < flat.size:
        out.append("...")
    out.append("]" * value.ndim)
    return "".join(out)


def _element(v) -> str:
    if isinstance(v, (np.floating, float)):
        return f"{float(v):g}" if np.isfinite(v) else ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, (np.bool_, bool)):
        return "1" if v else "0"
    return str(v)


def _tf2_text(value: np.ndarray, summarize: int) -> str:
    """TF2's tf.print: numpy-like brackets, ``summarize`` elements at each end of an axis,
    numbers as TF prints them ("[0 1 ... 5 6]", "21")."""
    value = np.asarray(value)
    if value.ndim == 0:
        return _element(value[()])
    formatter = {"float_kind": _element, "bool": _element}
    if summarize is None or summarize < 0:
        return np.array2string(value, threshold=max(value.size, 1), separator=" ", max_line_width=10 ** 9,
                               formatter=formatter)
    return np.array2string(value, threshold=2 * summarize, edgeitems=summarize, separator=" ",
                           max_line_width=10 ** 9, formatter=formatter)


def _emit(spec: _PrintSpec, values: list) -> None:
    it = iter(values)
    if spec.style == "tf1":
        text = spec.parts[0] + "".join(_tf1_text(next(it), spec.summarize) for _ in spec.parts[1:]) + "\n"
    else:
        shown = [_tf2_text(next(it), spec.summarize) if isinstance(p, Tensor) else p for p in spec.parts]
        text = spec.sep.join(shown) + spec.end
    stream = spec.stream if spec.stream is not None else sys.stderr
    stream.write(text)
    if hasattr(stream, "flush"):
        stream.flush()


# --- the Session's debug path ------------------------------------------------------------------------
class _SessionDebug:
    """What one Session keeps for printing: how often each print op printed, and which print
    ops each (fetches, feeds) pair runs."""

    def __init__(self):
        self.printed: dict = {}
        self.involved: dict = {}


_SESSIONS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _debug_of(session) -> _SessionDebug:
    d = _SESSIONS.get(session)
    if d is None:
        d = _SESSIONS[session] = _SessionDebug()
    return d


def run(session, fetches, feed_dict, execute=None):
    """``Session.run`` for a guarded Session, or a graph with print ops: resolves the fetches
    and feeds as the Session does, adds the tensors the involved print ops show as extra
    fetches, runs (under the guard if on), prints, and returns the user's fetches.
    ``execute(runner, feed_values)`` runs the runner (the Session passes its traced call
    when the run is traced); by default, plainly."""
    if execute is None:
        def execute(runner, values):
            return runner(values, session._state)
    from .runtime.session import _expand_composite_fetches, _fed_ranks
    leaves, rebuild = _expand_composite_fetches(*flatten(fetches))
    targets = [session._resolve_fetch(f) for f in leaves]
    feed_tensors, feed_values = session._resolve_feeds(feed_dict)
    ranks = _fed_ranks(feed_tensors, feed_values)
    debug = _debug_of(session)
    prints = _involved_prints(session, debug, targets, feed_tensors)
    prints = [p for p in prints if p.first_n < 0 or debug.printed.get(p.op, 0) < p.first_n]
    extra = [t for p in prints for t in p.tensors]
    all_targets = targets + extra
    runner = session._runner(all_targets, feed_tensors, ranks)
    if session._nan_guard:
        values = _guarded_run(session, runner, all_targets, feed_tensors, feed_values, ranks, execute)
    else:
        values = execute(runner, feed_values)
    at = len(targets)
    for p in prints:
        n = len(p.tensors)
        _emit(p, values[at:at + n])
        at += n
        debug.printed[p.op] = debug.printed.get(p.op, 0) + 1
    return rebuild(values[:len(targets)])


def _involved_prints(session, debug: _SessionDebug, targets: list, feed_tensors: list) -> list:
    registry = session.graph.prints
    if not registry:
        return []
    key = (tuple(targets), tuple(feed_tensors), len(registry))
    found = debug.involved.get(key)
    if found is None:
        needed = ancestors(targets, frozenset(feed_tensors))
        found = debug.involved[key] = sorted((registry[op] for op in needed if op in registry),
                                             key=lambda p: p.op._id)
    return found


# --- the NaN guard -------------------------------------------------------------------------------------
def _floating(arr) -> bool:
    return isinstance(arr, np.ndarray) and arr.dtype.kind in "fc"


def _all_finite(arr) -> bool:
    """Cheap when it holds: one sum (NaN and inf propagate); an overflowing sum of finite
    values is told apart by the full check."""
    if not _floating(arr) or arr.size == 0:
        return True
    with np.errstate(all="ignore"):
        if np.isfinite(arr.sum()):
            return True
    return bool(np.isfinite(arr).all())


def _host(value) -> np.ndarray:
    return value.copy_to_host() if hasattr(value, "copy_to_host") else np.asarray(value)


class _Snapshot:
    """The variables a program writes (and every random counter), as they were before a run."""

    def __init__(self, state, names):
        self.objects: dict = {}
        self.values: dict = {}
        for name in names:
            value = state.variables.get(name)
            self.objects[name] = value
            self.values[name] = None if value is None else (
                value.copy_to_host() if hasattr(value, "copy_to_host") else np.array(value, copy=True))
        self.counters = dict(state.random_counters)

    def restore(self, state) -> None:
        for name, value in self.values.items():
            obj = self.objects[name]
            if value is None:  # a variable the run only assigned: it did not exist before
                state.variables.pop(name, None)
                continue
            if hasattr(obj, "copy_to_device"):  # a CUDA session's device array, restored in place
                obj.copy_to_device(value)
            else:
                np.copyto(obj, value)
            state.variables[name] = obj
        with state.lock:
            state.random_counters.clear()
            state.random_counters.update(self.counters)


def written_variables(program) -> list:
    """The variables a Program writes (loops carry a body's writes out to plain assigns)."""
    return sorted({ins.attrs["var"] for ins in program.instrs if ins.op in _WRITES})


def _guarded_run(session, runner, targets, feed_tensors, feed_values, ranks, execute) -> list:
    state = session._state
    names = written_variables(runner.executable.program)
    snapshot = _Snapshot(state, names)
    try:
        values = execute(runner, feed_values)
    except BaseException:
        snapshot.restore(state)  # a guarded run that fails changes nothing either
        raise
    bad = []
    for t, v in zip(targets, values):
        if isinstance(t, Tensor) and not _all_finite(np.asarray(v) if v is not None else None):
            bad.append(f"fetched '{t.name}' ({_counts(np.asarray(v))})")
    for name in names:
        value = state.variables.get(name)
        if value is not None:
            host = _host(value)
            if not _all_finite(host):
                bad.append(f"variable '{name}' ({_counts(host)})")
    if not bad:
        return values
    snapshot.restore(state)
    report = _locate(session, targets, feed_tensors, feed_values, ranks, snapshot)
    raise NumericsError(f"{report}\n  the run produced NaN or inf in {'; '.join(bad)}; nan_guard undid it: no "
                        "variable changed")


def _counts(arr: np.ndarray) -> str:
    parts = []
    if arr.dtype.kind in "fc":
        for n, word in ((np.isnan(arr).sum(), "NaN"), (np.isposinf(arr).sum(), "+inf"), (np.isneginf(arr).sum(), "-inf")):
            if n:
                parts.append(f"{int(n)} {word}")
    return ", ".join(parts) or "all finite"


def describe_range(name: str, arr) -> str:
    """``name dtype(shape): min .., max ..`` over the finite elements, with the counts of NaN
    and infinities if any."""
    arr = np.asarray(arr)
    head = f"{name} {arr.dtype}{format_shape(arr.shape)}"
    if arr.size == 0:
        return f"{head}: empty"
    if arr.dtype.kind == "b":
        return f"{head}: {int(arr.sum())} true of {arr.size}"
    if arr.dtype.kind in "fc":
        finite = arr[np.isfinite(arr)]
        text = f"min {finite.min():.6g}, max {finite.max():.6g}" if finite.size else "no finite element"
        counts = _counts(arr)
        return f"{head}: {text}" + ("" if counts == "all finite" else f"; {counts}")
    return f"{head}: min {arr.min()}, max {arr.max()}"


def _locate(session, targets, feed_tensors, feed_values, ranks, snapshot) -> str:
    """Replay the run op by op with the reference interpreter on the unoptimized Program, from
    the state before the run, and describe the first op (in program order) that feeds a
    non-finite result and made a non-finite value from finite inputs."""
    from .codegen.reference import evaluate
    from .optimizer.program import lower
    from .runtime.state import SessionState

    unique = list(dict.fromkeys(targets))
    program = lower(session.graph, unique, feed_tensors, dict(ranks))
    ctx = SessionState(session._describe_variable)
    for name, value in session._state.variables.items():
        host = np.array(snapshot.values[name] if name in snapshot.values else _host(value), copy=True)
        var = variable_for(session.graph, name)
        if var is not None and var.shape.is_fully_defined() and host.size == int(np.prod(tuple(var.shape))):
            host = host.reshape(tuple(var.shape))  # a CUDA session keeps a scalar variable as (1,)
        ctx.variables[name] = host
    ctx.random_counters.update(snapshot.counters)
    env = dict(zip(program.feeds, feed_values))
    bad_values: set = set()
    origins = []  # (instr index or None for a feed, text)
    for v, value in zip(program.feeds, feed_values):
        if not _all_finite(value):
            bad_values.add(v)
            origins.append((("feed", v), f"the value fed for '{program.name_of(v)}' holds NaN or inf: "
                                     f"{describe_range(program.name_of(v), value)}"))
    stopped = None
    with np.errstate(all="ignore"):
        for i, ins in enumerate(program.instrs):
            arrays = [env[v] for v in ins.inputs]
            try:
                outs = evaluate(ins, arrays, ctx, program)
            except GraphcError as e:
                stopped = (i, e)
                break
            env.update(zip(ins.outputs, outs))
            made = [v for v, o in zip(ins.outputs, outs) if not _all_finite(o)]
            if not made:
                continue
            bad_values.update(made)
            if any(v in bad_values for v in ins.inputs):
                continue
            origin = ins.origin
            label = f"{origin.op} '{origin.name}'" if origin else ins.op
            lines = [f"{label} made NaN or inf from finite inputs (the first op to do so that feeds the bad "
                     "result, found by replaying the run op by op with the reference interpreter, unoptimized)"]
            lines += [f"  output {describe_range(program.name_of(v), o)}" for v, o in zip(ins.outputs, outs)]
            lines += [f"  input {describe_range(program.name_of(v), a)}" for v, a in zip(ins.inputs, arrays)]
            if not ins.inputs:
                lines.append("  (no inputs" + (f": it reads variable '{ins.attrs['var']}', which holds them)"
                                               if "var" in ins.attrs else ")"))
            if origin:
                lines.append(f"  created at {origin.location}")
            origins.append((("instr", i), "\n".join(lines)))
    # the results that hold NaN or inf in the replay: fetches and variable writes
    results = [v for v in program.fetches if v in bad_values]
    results += [v for ins in program.instrs if ins.op in _WRITES for v in ins.outputs if v in bad_values]
    if stopped is not None:  # a later op stopped the replay (a check): what it read counts as a result
        results += [v for v in program.instrs[stopped[0]].inputs if v in bad_values]
    feeding = _feeding(program, results)
    for key, text in origins:
        if key in feeding:
            return f"nan_guard: {text}"
    note = f" (the replay stopped at {stopped[1]})" if stopped is not None else ""
    return ("nan_guard: the compiled run made NaN or inf, but the op-by-op replay with the reference interpreter, "
            f"unoptimized, did not{note}: the optimized program computes it differently (fused or rewritten "
            "ops); run gc.Session(optimize=0, nan_guard=True) or device='reference' to find the op")


def _feeding(program, results) -> set:
    """What ``results`` depend on through data inputs: ("instr", index) and ("feed", value)."""
    producer = program.producers()
    feeds = set(program.feeds)
    seen: set = set()
    stack = list(results)
    found: set = set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in feeds:
            found.add(("feed", v))
            continue
        i = producer.get(v)
        if i is not None and ("instr", i) not in found:
            found.add(("instr", i))
            stack.extend(program.instrs[i].inputs)
    return found

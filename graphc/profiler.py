"""Timing a run: ``gc.RunMetadata`` with TF1's ``step_stats``, Chrome traces, and a profiling block.

A traced ``sess.run(..., options=gc.RunOptions(trace_level=gc.RunOptions.FULL_TRACE),
run_metadata=md)`` times every kernel (the CPU driver times each call, the CUDA driver
synchronizes after each launch, the reference backend times each kernel group) and every host
step of the Session (resolving feeds, compiling, running, assembling fetches). ``md.step_stats``
is shaped like TF1's (``dev_stats[].node_stats[]`` with ``node_name``, ``all_start_micros``,
``op_start_rel_micros``, ...), so TF1 code that reads it, ``Timeline``, and TensorBoard's
"Session runs" view (``FileWriter.add_run_metadata``) all work. graphc adds, per kernel, its
kernel group, the user's ops in it with their file:line, and the bytes it read and wrote.

Untraced runs pay nothing: executables look at ``Tracer`` only on their general path, which a
traced run takes; cached calls never see it. A loop (``while_loop``, ``cond``) is one kernel of
the run: its iterations are not timed one by one (docs/PROFILING.md).
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional

from .files import atomic_write

HOST_DEVICE = "/job:localhost/replica:0/task:0/device:CPU:0 (graphc host)"
DEVICES = {"cpu": "/job:localhost/replica:0/task:0/device:CPU:0",
           "cuda": "/job:localhost/replica:0/task:0/device:GPU:0",
           "reference": "/job:localhost/replica:0/task:0/device:CPU:0 (reference)"}


# -- TF1's RunMetadata, as plain data ----------------------------------------------------------------------
@dataclass
class NodeExecStats:
    """One timed step, as TF1's ``NodeExecStats``; times in microseconds (floats: a small
    kernel takes less than one). ``kind`` is "kernel" or "host"; ``group`` the kernel group's
    label; ``ops`` the user's ops in it as ``(type, name, "file:line")``."""

    node_name: str
    timeline_label: str
    all_start_micros: float
    op_start_rel_micros: float
    op_end_rel_micros: float
    all_end_rel_micros: float
    thread_id: int = 0
    kind: str = "kernel"
    group: str = ""
    ops: list = field(default_factory=list)
    bytes_read: int = 0
    bytes_written: int = 0


@dataclass
class DeviceStepStats:
    device: str
    node_stats: List[NodeExecStats] = field(default_factory=list)


@dataclass
class StepStats:
    dev_stats: List[DeviceStepStats] = field(default_factory=list)


class RunMetadata:
    """``tf.RunMetadata``: pass one to ``sess.run(..., run_metadata=md)`` with a traced
    ``RunOptions``; the run fills ``step_stats``. ``partition_graphs`` and ``cost_graph`` exist
    for TF1 code and stay empty (graphc has one partition; ``sess.explain`` shows the program)."""

    def __init__(self):
        self.step_stats = StepStats()
        self.partition_graphs: list = []
        self.cost_graph = None

    def kernels(self) -> List[NodeExecStats]:
        """Every kernel of the run, in the order they ran."""
        return [n for d in self.step_stats.dev_stats for n in d.node_stats if n.kind == "kernel"]

    def __repr__(self):
        n = sum(len(d.node_stats) for d in self.step_stats.dev_stats)
        return f"<gc.RunMetadata: {n} timed steps on {len(self.step_stats.dev_stats)} devices>"


# -- collecting one run -------------------------------------------------------------------------------
class KernelInfo:
    """What a trace says of one kernel besides its time, worked out once per executable:
    its name, label, the user's ops in it, and which of its arguments it reads and writes
    (``params``: the kernel's parameter keys; without them the arguments are the group's
    inputs then its outputs)."""

    __slots__ = ("node_name", "label", "ops", "reads", "writes")

    def __init__(self, program, group, label: str, params=None):
        members = group.members
        origins = [program.instrs[i].origin for i in members if program.instrs[i].origin is not None]
        self.ops = [(o.op, o.name, str(o.location)) for o in dict.fromkeys(origins)]
        self.node_name = self.ops[0][1] if self.ops else label  # the group's first op: its matmul, conv, ...
        self.label = label
        if params is None:
            n = len(group.inputs)
            self.reads, self.writes = range(n), range(n, n + len(group.outputs))
            return
        written_vars = {program.instrs[i].attrs.get("var") for i in members}
        self.reads = [j for j, key in enumerate(params) if key[0] in ("in", "var")]
        self.writes = [j for j, key in enumerate(params)
                       if key[0] == "out" or (key[0] == "var" and key[1] in written_vars)]

    @classmethod
    def for_instr(cls, program, i: int, label: str) -> "KernelInfo":
        """One instr timed as a step of its own (a control-flow instr run by its target)."""
        return cls(program, _instr_group(program, i), label)


def kernel_infos(program, schedule, calls) -> List[KernelInfo]:
    """A KernelInfo per generated kernel of a schedule (the CPU and CUDA executables)."""
    group_of = {step.kernel: program.groups[step.group] for step in schedule.steps if step.kind == "kernel"}
    return [KernelInfo(program, group_of[k], call.label, call.params) for k, call in enumerate(calls)]


def _instr_group(program, i: int):
    ins = program.instrs[i]
    return _OneInstr((i,), ins.inputs, ins.outputs)


class _OneInstr:
    __slots__ = ("members", "inputs", "outputs")

    def __init__(self, members, inputs, outputs):
        self.members, self.inputs, self.outputs = members, tuple(inputs), tuple(outputs)


def nbytes(values, positions) -> int:
    total = 0
    for j in positions:
        total += getattr(values[j], "nbytes", 0)
    return total


class Tracer:
    """Collects one traced run. ``clock()`` is the time in seconds; ``kernel``/``host`` record
    a step from ``start`` (a ``clock()`` value) to now."""

    clock = staticmethod(time.perf_counter)

    def __init__(self, device: str):
        self.device = DEVICES.get(device, f"/device:{device}")
        # perf_counter has no epoch: anchor it to the wall clock once, for all_start_micros
        self._offset = time.time() - time.perf_counter()
        self.kernels: List[NodeExecStats] = []
        self.host_steps: List[NodeExecStats] = []

    def _stat(self, name, label, start, end, **extra) -> NodeExecStats:
        duration = (end - start) * 1e6
        return NodeExecStats(name, label, (start + self._offset) * 1e6, 0.0, duration, duration,
                             threading.get_ident() & 0xFFFF, **extra)

    def kernel(self, info: KernelInfo, start: float, values=()) -> None:
        end = self.clock()
        self.kernels.append(self._stat(info.node_name, info.label, start, end, kind="kernel", group=info.label,
                                       ops=info.ops, bytes_read=nbytes(values, info.reads),
                                       bytes_written=nbytes(values, info.writes)))

    def host(self, name: str, start: float, label: str = "") -> None:
        self.host_steps.append(self._stat(name, label or name, start, self.clock(), kind="host"))

    def step_stats(self) -> StepStats:
        return StepStats([DeviceStepStats(self.device, self.kernels), DeviceStepStats(HOST_DEVICE, self.host_steps)])


# -- Chrome traces -----------------------------------------------------------------------------------------
class Timeline:
    """``tf.profiler`` / ``tensorflow.python.client.timeline.Timeline``: ``Timeline(step_stats)``
    (or a RunMetadata, or a list of them: several runs on one time axis), and
    ``generate_chrome_trace_format()``, JSON that chrome://tracing and Perfetto open."""

    def __init__(self, step_stats, graph=None):
        runs = step_stats if isinstance(step_stats, (list, tuple)) else [step_stats]
        self._runs = []
        for run in runs:
            stats = getattr(run, "step_stats", run)
            if not isinstance(stats, StepStats):
                raise TypeError(f"Timeline expects a gc.RunMetadata or its step_stats, got {type(run).__name__}")
            self._runs.append(stats)
        if not any(n for s in self._runs for d in s.dev_stats for n in d.node_stats):
            raise ValueError("Timeline: this RunMetadata holds no timed steps; fill it with a traced run: "
                             "sess.run(fetches, options=gc.RunOptions(trace_level=gc.RunOptions.FULL_TRACE), "
                             "run_metadata=md)")

    def generate_chrome_trace_format(self, show_dataflow: bool = True, show_memory: bool = False) -> str:
        """The Chrome trace-event JSON: one process per device, one complete event per timed
        step with its group, ops (file:line) and bytes in ``args``. ``show_memory`` adds a
        counter of the bytes each kernel wrote. ``show_dataflow`` is accepted for TF1 code."""
        events, pids = [], {}
        start = min(n.all_start_micros for s in self._runs for d in s.dev_stats for n in d.node_stats)
        for stats in self._runs:
            for dev in stats.dev_stats:
                if dev.device not in pids:
                    pids[dev.device] = len(pids)
                    events.append({"name": "process_name", "ph": "M", "pid": pids[dev.device], "tid": 0,
                                   "args": {"name": f"{dev.device} Compute"}})
                pid = pids[dev.device]
                for n in dev.node_stats:
                    args = {"name": n.node_name, "group": n.group or n.timeline_label}
                    if n.kind == "kernel":
                        args.update(ops=[f"{t} '{name}' at {where}" for t, name, where in n.ops],
                                    bytes_read=n.bytes_read, bytes_written=n.bytes_written)
                    ts = n.all_start_micros - start + n.op_start_rel_micros
                    events.append({"name": n.node_name if n.kind == "host" else _short(n), "cat": n.kind,
                                   "ph": "X", "pid": pid, "tid": n.thread_id, "ts": round(ts, 3),
                                   "dur": round(n.op_end_rel_micros - n.op_start_rel_micros, 3), "args": args})
                    if show_memory and n.kind == "kernel":
                        events.append({"name": "bytes written", "ph": "C", "pid": pid, "ts": round(ts, 3),
                                       "args": {"bytes": n.bytes_written}})
        return json.dumps({"traceEvents": events, "displayTimeUnit": "ns"})


def _short(n: NodeExecStats) -> str:
    types = [t for t, _, _ in n.ops]
    return f"{n.node_name} ({'+'.join(dict.fromkeys(types))})" if types else n.node_name


# -- tracing every run in a block --------------------------------------------------------------------------
_ACTIVE: list = []  # the Profiles of open ``trace`` blocks; Session.run traces while it is not empty
_ON_START: list = []  # called when a block opens (the Session drops its specialized fast paths)


def on_start(callback) -> None:
    _ON_START.append(callback)


def _open(profile: "Profile") -> None:
    _ACTIVE.append(profile)
    for callback in _ON_START:
        callback()


class Profile:
    """The runs traced in a ``gc.profiler.trace`` block: ``runs`` (RunMetadata, in order),
    ``timeline()`` and ``save(path)``."""

    def __init__(self, path: Optional[str] = None):
        self.path = None if path is None else os.fspath(path)
        self.runs: List[RunMetadata] = []
        self._lock = threading.Lock()

    def add(self, run_metadata: RunMetadata) -> None:
        with self._lock:
            self.runs.append(run_metadata)

    def timeline(self) -> Timeline:
        return Timeline(self.runs)

    def kernel_table(self) -> list:
        """Per kernel (by label), over every traced run: ``(label, calls, total seconds,
        bytes read + written per call)``, the most expensive first."""
        rows: dict = {}
        for run in self.runs:
            for n in run.kernels():
                row = rows.setdefault(n.group or n.timeline_label, [0, 0.0, 0])
                row[0] += 1
                row[1] += (n.op_end_rel_micros - n.op_start_rel_micros) * 1e-6
                row[2] = n.bytes_read + n.bytes_written
        return sorted(((label, c, t, b) for label, (c, t, b) in rows.items()), key=lambda r: -r[2])

    def report(self, top: int = 20) -> str:
        """The kernels that took longest, as text (``python -m graphc profile`` prints it)."""
        table = self.kernel_table()
        total = sum(t for _, _, t, _ in table)
        lines = [f"{len(self.runs)} traced runs, {sum(c for _, c, _, _ in table)} kernel calls, "
                 f"{total * 1e3:.3f} ms in kernels"]
        for label, calls, seconds, moved in table[:top]:
            lines.append(f"{seconds * 1e3:10.3f} ms {calls:6d} calls {moved / 1e6:9.3f} MB/call  {label}")
        if len(table) > top:
            lines.append(f"... and {len(table) - top} more kernels")
        return "\n".join(lines)

    def save(self, path=None) -> str:
        path = os.fspath(path or self.path)
        atomic_write(path, self.timeline().generate_chrome_trace_format(show_memory=True))
        return path


@contextlib.contextmanager
def trace(path=None):
    """Trace every ``Session.run`` (and ``make_callable`` call) in the block, in every thread;
    on leaving it, write one Chrome trace of them all to ``path`` (if given).

        with gc.profiler.trace("train.trace.json") as prof:
            for _ in range(10):
                sess.run(train_op, feed)
        print(len(prof.runs))
    """
    if path is not None:
        _check_writable(path)
    profile = Profile(path)
    _open(profile)
    try:
        yield profile
    finally:
        _ACTIVE.remove(profile)
        if path is not None and profile.runs:
            profile.save()


def start(path=None) -> Profile:
    """TF2's ``tf.profiler.experimental.start``: trace from now until ``stop()``."""
    if path is not None:
        _check_writable(path)
    profile = Profile(path)
    _open(profile)
    return profile


def stop() -> Profile:
    """Stop the newest ``start()`` and write its trace (if it was given a path)."""
    if not _ACTIVE:
        raise RuntimeError("gc.profiler.stop(): no profiling started (call gc.profiler.start() first)")
    profile = _ACTIVE.pop()
    if profile.path is not None and profile.runs:
        profile.save()
    return profile


def active() -> bool:
    return bool(_ACTIVE)


def record(run_metadata: RunMetadata) -> None:
    """Hand a traced run to every open ``trace`` block."""
    for profile in list(_ACTIVE):
        profile.add(run_metadata)


def _check_writable(path) -> None:
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise PermissionError(f"gc.profiler: cannot write a trace to {os.fspath(path)!r}: its directory "
                              f"{directory!r} is missing or not writable")

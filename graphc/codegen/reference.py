"""The reference backend: interprets a Program with each op's NumPy reference.

It is slow and simple on purpose; it is the oracle the compiled backends are checked
against. It runs the kernel groups in their planned order, interpreting their members, and
stores every materialized value in the buffer the memory plan gave it, so a wrong plan
(two live values in one buffer) shows up as wrong results. Before each op it re-runs the
op's inference on the concrete input shapes, so a run-time mismatch on ``None`` dims is
reported with the op's name and the user's line, and after each op it checks the result
against that inference.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..dtypes import as_dtype
from ..errors import GraphcError, InferenceError, InvalidArgumentError
from ..optimizer.program import Instr, Program
from ..shapes import TensorType, format_shape
from ..profiler import KernelInfo
from .backend import Backend, Executable, machine_memory


def describe_values(program: Program, ins: Instr, arrays: Sequence[np.ndarray]) -> str:
    parts = []
    for v, a in zip(ins.inputs, arrays):
        parts.append(f"{program.name_of(v)} {a.dtype}{format_shape(a.shape)}")
    return ", ".join(parts) or "none"


def runtime_error(program: Program, ins: Instr, arrays, message: str) -> InvalidArgumentError:
    origin = ins.origin
    label = f"{origin.op} '{origin.name}'" if origin else ins.op
    where = f"\n  created at {origin.location}" if origin else ""
    return InvalidArgumentError(f"{label} at run time: {message}\n  inputs: "
                                f"{describe_values(program, ins, arrays)}{where}")


def concrete_types(arrays) -> list:
    return [TensorType(as_dtype(a.dtype), a.shape) for a in arrays]


def evaluate(ins: Instr, arrays, ctx, program: Program):
    """Run one instr with its reference implementation, checking shapes before and after."""
    opdef = ins.opdef
    try:
        expected = list(opdef.infer(concrete_types(arrays), ins.attrs))
    except InferenceError as e:
        raise runtime_error(program, ins, arrays, str(e)) from None
    for v, t in zip(ins.outputs, expected):
        if not t.shape.is_fully_defined():
            continue  # a size that only running the op decides (a loop's trip count)
        nbytes = int(np.prod(t.shape, dtype=object)) * t.dtype.itemsize
        if nbytes > machine_memory():
            raise runtime_error(program, ins, arrays, f"its result {program.name_of(v)} {t.dtype.name}"
                                f"{list(t.shape)} would need {nbytes:,} bytes, more than this machine's "
                                f"{machine_memory():,}: check the shapes fed")
    try:
        outs = opdef.reference(arrays, ins.attrs, ctx)
    except GraphcError:
        raise
    except Exception as e:  # a bad value at run time: an index out of range, a bad power, ...
        raise runtime_error(program, ins, arrays, f"{type(e).__name__}: {e}") from e
    outs = [np.asarray(o) for o in outs]
    for o, t in zip(outs, expected):
        if o.dtype != t.dtype.np or not t.shape.is_compatible_with(o.shape):
            raise GraphcError(f"internal error: the reference of {ins.op} returned {o.dtype}{o.shape}, "
                              f"inference says {t}")
    return outs


class ReferenceExecutable(Executable):
    def __init__(self, program: Program):
        self.program = program
        groups = program.groups
        if groups is None:
            from ..optimizer.fusion import trivial_groups
            groups = trivial_groups(program)
        self.groups = groups
        self.plan = program.buffers
        last_use: dict = {}
        for k, g in enumerate(groups):
            for v in g.inputs + g.shape_inputs:
                last_use[v] = k
        keep = set(program.fetches)
        # values to drop after group k: keeps memory near what the program really needs
        self._dead_after = [[v for v in g.inputs + g.shape_inputs if last_use.get(v) == k and v not in keep]
                            for k, g in enumerate(groups)]

    traceable = True  # gc.profiler: one timed step per kernel group

    def run(self, feeds: Sequence[np.ndarray], ctx) -> list:
        program = self.program
        instrs = program.instrs
        plan = self.plan
        env = dict(zip(program.feeds, feeds))
        arena: dict = {}
        tracer = ctx.current_tracer() if getattr(ctx, "tracing", 0) else None
        if tracer is not None and getattr(self, "_infos", None) is None:
            self._infos = [KernelInfo(program, g, g.label(program, k, "group")) for k, g in enumerate(self.groups)]
        with np.errstate(all="ignore"):
            for k, (g, dead) in enumerate(zip(self.groups, self._dead_after)):
                if tracer is not None:
                    start = tracer.clock()
                for i in g.members:
                    ins = instrs[i]
                    arrays = [env[v] for v in ins.inputs]
                    env.update(zip(ins.outputs, evaluate(ins, arrays, ctx, program)))
                if plan is not None:
                    for v in g.outputs:
                        b = plan.buffer_of.get(v)
                        if b is not None:
                            env[v] = _store(arena, b, env[v])
                if tracer is not None:
                    tracer.kernel(self._infos[k], start, [env.get(v) for v in g.inputs + g.outputs])
                for v in dead:
                    env.pop(v, None)
        return [env[v] for v in program.fetches]


def _store(arena: dict, buffer: int, value: np.ndarray) -> np.ndarray:
    """Copy ``value`` into planned buffer ``buffer`` (grown on demand) and return the view."""
    nbytes = value.nbytes
    raw = arena.get(buffer)
    if raw is None or raw.nbytes < nbytes:
        raw = np.empty(max(nbytes, 1), dtype=np.uint8)
        arena[buffer] = raw
    view = raw[:nbytes].view(value.dtype).reshape(value.shape)
    np.copyto(view, value)
    return view


class ReferenceBackend(Backend):
    name = "reference"

    def compile(self, program: Program) -> Executable:
        return ReferenceExecutable(program)

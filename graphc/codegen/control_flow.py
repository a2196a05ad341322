"""Control flow on the compiled targets: a Program with ``cond`` or ``while_loop`` instrs runs
in *stages*, and each body is a Program of its own.

Why stages: a loop's outputs can have sizes that only running it decides (the history that
scan and gradients stack has one row per trip; a cond's branches may return different
shapes). The schedule binds every size from the feed shapes before a run, so the instrs
that depend on such a value are scheduled after it is made:

    stage k = the plain instrs at level k (one Program: fused, memory-planned, compiled as
              usual), then the control-flow instrs at level k, each run by its target

where an instr's level is one more than that of any control-flow instr it depends on. A
Program without control flow is one stage, and nothing here runs for it.

Bodies are optimized like the program around them (the same level and passes: folding,
CSE, simplification, fusion, the memory plan), once per body and settings (``body_program``
in optimizer/pipeline.py). Then hoisting (optimizer/hoisting.py): the instrs of a loop body
that read no loop variable (nor a value computed from one) run once, before the loop.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Sequence

import numpy as np

from ..errors import InvalidArgumentError
from ..ops.control_flow import run_while
from ..ops.collective import COLLECTIVE_OPS, STEP_COLLECTIVES
from ..ops.masking import DATA_SIZED_OPS
from ..optimizer.hoisting import counter_of, plan, split_invariant, subprogram  # noqa: F401 (the targets import them from here)
from ..optimizer.pipeline import Settings, body_program
from ..optimizer.program import Program
from .backend import Executable

CONTROL_FLOW_OPS = frozenset({"cond", "while_loop"})
# Ops run on the host between stages, with their reference: those whose output size only the
# data decides (ops/masking.py) and the collectives of a data-parallel run (ops/collective.py).
HOST_OPS = DATA_SIZED_OPS | COLLECTIVE_OPS
STAGE_OPS = CONTROL_FLOW_OPS | HOST_OPS
# The CPU target runs an all-reduce or broadcast as steps between its kernels (codegen/schedule.py)
CPU_STAGE_OPS = STAGE_OPS - STEP_COLLECTIVES


def has_control_flow(program: Program) -> bool:
    return any(ins.op in STAGE_OPS for ins in program.instrs)


def settings_of(program: Program) -> Settings:
    return program.analyses.get("settings") or Settings(2 if program.buffers is not None else 1)


# --- stages --------------------------------------------------------------------------------------------
@dataclass
class Stage:
    """Plain instrs as one Program (None when there are none), then control-flow instrs (indices
    into the whole Program)."""

    program: object
    control: List[int]


def split_stages(program: Program, stage_ops: frozenset = STAGE_OPS) -> List[Stage]:
    """The stages of ``program``, cut at the instrs of ``stage_ops`` (the target's)."""
    settings = settings_of(program)
    producer = program.producers()
    level: dict = {}
    for i, ins in enumerate(program.instrs):
        lv = 0
        for v in ins.inputs + ins.after:
            p = producer.get(v)
            if p is not None:
                lv = max(lv, level[p] + (1 if program.instrs[p].op in stage_ops else 0))
        level[i] = lv
    n_levels = 1 + max(level.values(), default=0)
    needed_later: set = set(program.fetches)
    for i, ins in enumerate(program.instrs):
        for v in ins.inputs:
            p = producer.get(v)
            if p is None or program.instrs[p].op in stage_ops or level[p] != level[i] \
                    or ins.op in stage_ops:
                needed_later.add(v)
    stages = []
    for k in range(n_levels):
        plain = [i for i in range(len(program.instrs)) if level[i] == k and program.instrs[i].op not in stage_ops]
        control = [i for i in range(len(program.instrs)) if level[i] == k and program.instrs[i].op in stage_ops]
        sub = None
        if plain:
            instrs = [program.instrs[i] for i in plain]
            defined = {v for ins in instrs for v in ins.outputs}
            feeds = list(dict.fromkeys(v for ins in instrs for v in ins.inputs if v not in defined))
            fetches = [v for v in dict.fromkeys(v for ins in instrs for v in ins.outputs) if v in needed_later]
            if fetches or any(ins.opdef.stateful or ins.opdef.check for ins in instrs):  # writes or checks run too
                sub = subprogram(program, instrs, feeds, fetches, settings)
        stages.append(Stage(sub, control))
    return stages


# --- bodies ----------------------------------------------------------------------------------------------
# --- running --------------------------------------------------------------------------------------------
class StagedExecutable(Executable):
    """A Program with control flow, compiled stage by stage. ``compile_program`` compiles a
    plain Program for the target; ``compile_control(program, i)`` returns a callable
    ``(input arrays, ctx) -> output arrays`` for control-flow instr ``i``."""

    fresh_outputs = True

    def __init__(self, program: Program, compile_program: Callable, compile_control: Callable,
                 stage_ops: frozenset = STAGE_OPS):
        self.program = program
        self.stages = []
        for stage in split_stages(program, stage_ops):
            exe = compile_program(stage.program) if stage.program is not None else None
            self.stages.append((stage.program, exe,
                                [(program.instrs[i], compile_control(program, i)) for i in stage.control]))
        self._feed_set = frozenset(program.feeds)
        self._infos: dict = {}

    # gc.profiler: each stage's executable times its kernels; a control-flow instr is one timed
    # step (a CPU loop runs compiled as a whole; a host-driven one also shows its body's kernels)
    traceable = True

    def run(self, feeds: Sequence[np.ndarray], ctx) -> list:
        env = dict(zip(self.program.feeds, feeds))
        tracer = ctx.current_tracer() if getattr(ctx, "tracing", 0) else None
        for sub, exe, controls in self.stages:
            if exe is not None:
                env.update(zip(sub.fetches, exe.run([env[v] for v in sub.feeds], ctx)))
            for ins, run in controls:
                inputs = [env[v] for v in ins.inputs]
                if tracer is not None:
                    started = tracer.clock()
                outputs = run(inputs, ctx)
                env.update(zip(ins.outputs, outputs))
                if tracer is not None:
                    tracer.kernel(self._info(ins), started, inputs + [np.asarray(o) for o in outputs])
        out, seen = [], set()
        for v in self.program.fetches:
            value = np.asarray(env[v])
            if v in self._feed_set or id(value) in seen:
                value = value.copy()
            seen.add(id(value))
            out.append(value)
        return out

    def _info(self, ins):
        info = self._infos.get(id(ins))
        if info is None:
            from ..profiler import KernelInfo
            i = next(k for k, other in enumerate(self.program.instrs) if other is ins)
            info = self._infos[id(ins)] = KernelInfo.for_instr(self.program, i, f"{ins.op} (timed as one step)")
        return info


class HostCond:
    """A cond: the taken branch's executable, chosen on the host once per run (a cond at the
    top of a program is one choice per run on every target)."""

    def __init__(self, program: Program, i: int, compile_program: Callable):
        ins = program.instrs[i]
        settings = settings_of(program)
        self.branches = [compile_program(body_program(ins.attrs[k], settings)) for k in ("then", "else")]

    def __call__(self, inputs, ctx) -> list:
        branch = self.branches[0] if bool(np.asarray(inputs[0])) else self.branches[1]
        return [np.asarray(o) for o in branch.run(list(inputs[1:]), ctx)]


class HostLoop:
    """A while_loop driven from the host: each iteration runs the cond's and the body's
    executables (the CUDA target: the host launches the body's kernels and reads the
    predicate back). Loop-invariant instrs run once, before the loop. The CPU target compiles
    the whole loop instead (cpu/loops.py)."""

    def __init__(self, program: Program, i: int, compile_program: Callable):
        ins = program.instrs[i]
        attrs = ins.attrs
        settings = settings_of(program)
        self.n, self.has_limit, self.history = attrs["n_vars"], attrs["has_limit"], bool(attrs.get("history"))
        self.n_captures = len(ins.inputs) - self.n - (1 if self.has_limit else 0)
        self.label = attrs["body"].label
        self.stacked = attrs["body"].output_types[self.n:]
        whole_body, cond = body_program(attrs["body"], settings), body_program(attrs["cond"], settings)
        # A counted loop (scan, map_fn, dynamic_rnn) knows its trip count before it runs: the
        # host then never reads a predicate back from the device.
        self.counter = counter_of(cond, whole_body, self.n)
        hoisted, body = split_invariant(whole_body, self.n, settings)
        self.hoisted = compile_program(hoisted) if hoisted is not None else None
        self.body = compile_program(body)
        self.cond = compile_program(cond) if self.counter is None else None

    def __call__(self, inputs, ctx) -> list:
        try:
            return self._run(inputs, ctx)
        except InvalidArgumentError as e:  # an op of the body failed: say which body it is in
            raise in_body(e, self.label) from None

    def _run(self, inputs, ctx) -> list:
        n = self.n
        captures = list(inputs[n:n + self.n_captures])
        extra = list(self.hoisted.run(captures, ctx)) if self.hoisted is not None else []
        if self.counter is not None:
            k, (kind, bound) = self.counter
            left = [max((int(inputs[bound]) if kind == "feed" else bound) - int(inputs[k]), 0)]

            def cond(values):
                left[0] -= 1
                return left[0] >= 0
        else:
            def cond(values):
                return bool(np.asarray(self.cond.run(values + captures, ctx)[0]))
        return run_while(cond, lambda values: self.body.run(values + captures + extra, ctx),
                         [np.asarray(v) for v in inputs[:n]], int(inputs[-1]) if self.has_limit else None,
                         self.history, self.label, ctx, stacked=self.stacked)


def in_body(error: Exception, label: str) -> Exception:
    """``error`` (an op's run-time error) saying that the op is in the body ``label``."""
    text = str(error)
    if label in text:
        return error
    return type(error)(text.replace(" at run time:", f" in the {label} at run time:", 1))


class HostOp:
    """An op run on the host between stages with its reference (``HOST_OPS``): one whose output
    size only the data decides (ops/masking.py; the next stage is bound to the size it gives),
    or a collective (ops/collective.py; the reference calls MPI)."""

    def __init__(self, program: Program, i: int, compile_program: Callable = None):
        self.program, self.i = program, i

    def __call__(self, inputs, ctx) -> list:
        from .reference import evaluate
        ins = self.program.instrs[self.i]
        return evaluate(ins, [np.asarray(v) for v in inputs], ctx, self.program)


def host_control(compile_program: Callable) -> Callable:
    """``StagedExecutable``'s compile_control for a target that drives control flow from the host."""
    def compile_one(program: Program, i: int):
        op = program.instrs[i].op
        kind = HostLoop if op == "while_loop" else HostOp if op in HOST_OPS else HostCond
        return kind(program, i, compile_program)
    return compile_one

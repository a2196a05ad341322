"""The pass pipeline: optimization levels, per-pass reports, validation and explain(), and
the small passes (canonicalize, constant folding, CSE; the algebraic rules are simplify.py's
and stabilize.py's tables).

Levels:
  0: pruning only (done by lowering), and the state pass every level needs;
  1: canonicalize, constant folding, CSE, algebraic simplification, stabilization;
  2: level 1, then fusion into kernel groups and memory planning (the default).
Any pass can be switched off by name. With ``GRAPHC_VALIDATE=1`` every pass's result is
type-checked, and a pass that breaks the program fails compilation naming the pass.
"""
from __future__ import annotations

import difflib
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np

from ..errors import CompileError, GraphcError
from . import simplify, stabilize
from .fusion import count_kernels, fuse, trivial_groups
from .memory import check_plan, plan_memory
from .program import Instr, Program, lower
from .rewrite import Match, ProgramBuilder, Rule, dead_code_elimination, rewrite
from .state import order_state

# Folding stops at this many elements so that no huge constant is created.
FOLD_MAX_ELEMENTS = 1 << 16

COMMUTATIVE = frozenset({"add", "multiply", "maximum", "minimum", "equal", "not_equal", "logical_and", "logical_or"})


def _put_constant_second(m: Match):
    x, y = m.inputs
    if m.const(x) is not None and m.const(y) is None:
        return m.emit1(m.ins.op, (y, x), dict(m.attrs))


CANONICAL_RULES = [Rule("constant_operand_second", op, _put_constant_second,
                        "commutative ops take a constant as their second operand") for op in sorted(COMMUTATIVE)]


def canonicalize(program: Program):
    return rewrite(program, CANONICAL_RULES, "canonicalize")


def _foldable(ins) -> bool:
    opdef = ins.opdef
    return not (opdef.stateful or opdef.random or opdef.structural or opdef.bodies or ins.op == "const")


def constant_fold(program: Program):
    """Evaluate instrs whose data inputs are constants (and whose shape-only inputs have fully
    known shapes) with the op's reference implementation."""
    builder = ProgramBuilder(program)
    folded = Counter()
    for ins in program.instrs:
        ins = builder.substituted(ins)
        if _foldable(ins) and all(t.shape.is_fully_defined() for t in (program.types[v] for v in ins.outputs)):
            n_out = sum(int(np.prod(program.types[v].shape)) for v in ins.outputs)
            shape_only = set(ins.opdef.shape_only_inputs(ins.attrs, len(ins.inputs)))
            arrays = []
            for i, v in enumerate(ins.inputs):
                producer = builder.defs.get(v)
                t = builder.types[v]
                if i in shape_only and t.shape.is_fully_defined():
                    arrays.append(np.broadcast_to(np.zeros((), t.dtype.np), tuple(t.shape)))
                elif producer is not None and producer.op == "const":
                    arrays.append(producer.attrs["value"])
                else:
                    arrays = None
                    break
            if arrays is not None and n_out <= FOLD_MAX_ELEMENTS:
                try:
                    with np.errstate(all="ignore"):
                        outs = ins.opdef.reference(arrays, ins.attrs, None)
                except Exception:
                    outs = None  # e.g. an index out of range: leave it to fail at run time, with its message
                if outs is not None:
                    for old, value in zip(ins.outputs, outs):
                        value = np.asarray(value, dtype=program.types[old].dtype.np)
                        builder.alias(old, builder.const(value, ins.origin))
                    folded[ins.op] += 1
                    continue
        builder.keep(ins)
    result = dead_code_elimination(builder.finish())
    return result, Counter({f"fold_{op}": n for op, n in folded.items()})


def cse(program: Program):
    """Merge instrs that compute the same thing (same op, inputs and attributes). Stateful
    and random instrs are never merged."""
    builder = ProgramBuilder(program)
    seen: dict = {}
    merged = Counter()
    for ins in program.instrs:
        ins = builder.substituted(ins)
        opdef = ins.opdef
        if opdef.stateful or opdef.random:
            builder.keep(ins)
            continue
        key = (ins.op, ins.inputs, ins.attrs.key)
        earlier = seen.get(key)
        if earlier is None:
            seen[key] = ins
            builder.keep(ins)
            continue
        for old, new in zip(ins.outputs, earlier.outputs):
            builder.alias(old, new)
        merged[f"merge_{ins.op}"] += 1
    return dead_code_elimination(builder.finish()), merged


def _loop_key(ins) -> tuple:
    """What makes two while_loops the same loop, whether or not they stack their history and
    values of their body: the same inputs and settings, and bodies that are one traced function
    with the same loop variables."""
    body, n = ins.attrs["body"], ins.attrs["n_vars"]
    rest = tuple((k, ins.attrs[k]) for k in ins.attrs if k not in ("history", "n_stacked", "body"))
    return (ins.inputs, rest, id(body.graph), body.inputs, body.outputs[:n])


def _merged_outputs(ins, full) -> Optional[list]:
    """``full``'s outputs that stand for each output of ``ins`` (the same loop, see _loop_key),
    or None when ``full`` lacks one (history, or a stacked value)."""
    n = ins.attrs["n_vars"]
    history = bool(ins.attrs.get("history"))
    if history and not full.attrs.get("history"):
        return None
    full_at = 2 * n + 1 if full.attrs.get("history") else n + 1
    stacked_at = {t: full_at + j for j, t in enumerate(full.attrs["body"].outputs[n:])}
    outputs = list(full.outputs[:n + 1 + (n if history else 0)])
    for t in ins.attrs["body"].outputs[n:]:
        if t not in stacked_at:
            return None
        outputs.append(full.outputs[stacked_at[t]])
    return outputs


def merge_loop_histories(program: Program):
    """A loop whose gradient is taken is built twice: the forward loop, and the same loop with
    ``history`` and the values the gradient keeps, stacked (autodiff/control_flow.py). Run it
    once, where the first of them ran: the loop that stacks the most, whose outputs stand for
    the others' outputs."""
    groups: dict = {}
    for ins in program.instrs:
        if ins.op == "while_loop":
            groups.setdefault(_loop_key(ins), []).append(ins)
    fulls = {}
    standing = {}  # a merged loop's outputs -> the full loop's outputs that stand for them
    for key, loops in groups.items():
        if len(loops) < 2:
            continue
        full = max(loops, key=lambda ins: (bool(ins.attrs.get("history")), len(ins.outputs)))
        outputs = [_merged_outputs(ins, full) for ins in loops]
        if all(o is not None for o in outputs):
            fulls[key] = full
            standing.update((ins.outputs, o) for ins, o in zip(loops, outputs))
    if not fulls:
        return program, Counter()
    builder = ProgramBuilder(program)
    merged = Counter()
    made = set()
    for ins in program.instrs:
        key = _loop_key(ins) if ins.op == "while_loop" else None
        full = fulls.get(key)
        original, ins = ins, builder.substituted(ins)
        if full is None:
            builder.keep(ins)
            continue
        if key not in made:  # the first of them runs the loop that stacks the most
            made.add(key)
            builder.keep(Instr(ins.op, ins.inputs, full.outputs, full.attrs, ins.after, ins.origin))
        if original is not full:
            for old, new in zip(ins.outputs, standing[ins.outputs]):
                builder.alias(old, new)
            merged["merge_loop_history"] += 1
    return dead_code_elimination(builder.finish()), merged


def algebraic_simplify(program: Program):
    return rewrite(program, simplify.RULES, "simplify")


def stabilization(program: Program):
    return rewrite(program, stabilize.RULES, "stabilize")


# (name, minimum level, function). Passes may appear more than once (clean-up runs).
PIPELINE = (
    ("canonicalize", 1, canonicalize),
    ("constant_fold", 1, constant_fold),
    ("cse", 1, cse),
    ("simplify", 1, algebraic_simplify),
    ("stabilize", 1, stabilization),
    ("constant_fold", 1, constant_fold),
    ("cse", 1, cse),
    ("merge_loop_histories", 1, merge_loop_histories),
    ("order_state", 0, order_state),
    ("fuse", 2, fuse),
    ("plan_memory", 2, plan_memory),
)
# Passes that correctness needs, at every level: they cannot be switched off.
REQUIRED_PASSES = frozenset({"order_state"})
# Passes that run on a loop's body as the targets compile it (optimizer/hoisting.py).
LOOP_PASSES = frozenset({"project_before_the_loop"})
PASS_NAMES = (frozenset(name for name, _, _ in PIPELINE) | LOOP_PASSES) - REQUIRED_PASSES


@dataclass
class PassReport:
    name: str
    nodes_before: int
    nodes_after: int
    rewrites: Counter
    seconds: float

    def __str__(self) -> str:
        rewrites = ", ".join(f"{k} x{v}" for k, v in sorted(self.rewrites.items())) or "no rewrites"
        return (f"{self.name}: {self.nodes_before} -> {self.nodes_after} instrs ({rewrites}; "
                f"{1e3 * self.seconds:.1f} ms)")


@dataclass(frozen=True)
class Settings:
    """How a Program was optimized (``optimize`` records it in ``program.analyses``): the
    bodies of its control flow are optimized alike (codegen/control_flow.py)."""

    level: int = 2
    disabled: frozenset = frozenset()
    capabilities: frozenset = frozenset()


@dataclass
class Optimized:
    """What the optimizer hands a backend: the final Program (with groups and, at level 2,
    a buffer plan) and what each pass did."""

    program: Program
    reports: list = field(default_factory=list)
    stages: list = field(default_factory=list)  # (pass name, Program) when kept for explain()

    @property
    def kernel_count(self) -> int:
        return count_kernels(self.program)


def validation_enabled() -> bool:
    return os.environ.get("GRAPHC_VALIDATE", "") not in ("", "0")


def optimize(program: Program, level: int = 2, disabled: Iterable[str] = (), validate: Optional[bool] = None,
             keep_stages: bool = False, capabilities=frozenset()) -> Optimized:
    """Run the pipeline up to ``level``. ``capabilities`` are the target backend's
    (``Backend.capabilities``): fusion may build the groups they allow."""
    disabled = frozenset(disabled)
    if disabled & REQUIRED_PASSES:
        raise CompileError(f"pass(es) {sorted(disabled & REQUIRED_PASSES)} cannot be switched off: results "
                           "would be wrong without them")
    unknown = disabled - PASS_NAMES
    if unknown:
        raise CompileError(f"unknown pass name(s) {sorted(unknown)}; passes are {sorted(PASS_NAMES)}")
    if level not in (0, 1, 2):
        raise CompileError(f"optimization level must be 0, 1 or 2, got {level!r}")
    validate = validation_enabled() if validate is None else validate
    result = Optimized(program)
    if keep_stages:
        result.stages.append(("lower", program))
    for name, min_level, fn in PIPELINE:
        if level < min_level or name in disabled:
            continue
        before = len(program.instrs)
        start = time.perf_counter()
        try:
            program, rewrites = fn(program, capabilities) if fn is fuse else fn(program)
        except GraphcError:
            raise
        except Exception as e:  # a bug in a pass must say which pass
            raise CompileError(f"pass {name!r} failed: {type(e).__name__}: {e}") from e
        report = PassReport(name, before, len(program.instrs), Counter(rewrites), time.perf_counter() - start)
        result.reports.append(report)
        if validate:
            _validate(program, name)
        if keep_stages:
            result.stages.append((name, program))
    if program.groups is None:
        program = program.with_plan(trivial_groups(program))
        if validate:
            _validate(program, "trivial groups")
    program.analyses["settings"] = Settings(level, disabled, frozenset(capabilities))
    result.program = program
    return result


def body_program(body, settings: Settings) -> Program:
    """A control-flow body (ops/control_flow.py ``Body``) lowered, its input placeholders fed in
    order, and optimized with ``settings``; cached on the body."""
    key = ("program", settings)
    cached = body.compiled.get(key)
    if cached is None:
        lowered = lower(body.graph, list(body.outputs), list(body.inputs))
        cached = body.compiled[key] = optimize(lowered, settings.level, settings.disabled,
                                               capabilities=settings.capabilities).program
    return cached


def _validate(program: Program, name: str) -> None:
    try:
        program.validate(where=f"after pass {name!r}")
        if program.groups is not None:
            covered = sorted(i for g in program.groups for i in g.members)
            if covered != list(range(len(program.instrs))):
                raise GraphcError(f"after pass {name!r}: kernel groups do not cover every instr exactly once")
        if program.buffers is not None:
            check_plan(program)
    except CompileError:
        raise
    except GraphcError as e:
        raise CompileError(f"pass {name!r} produced an invalid program: {e}") from None


def explain_text(optimized: Optimized, binding=None) -> str:
    """A readable account: the lowered program, what each pass changed (as a diff of
    instrs), the final program, the kernel groups and the buffer plan."""
    out = []
    stages = optimized.stages or [("final", optimized.program)]
    report_iter = iter(optimized.reports)
    previous = None
    for name, program in stages:
        lines = program.format().splitlines()
        if previous is None:
            out.append(f"=== lowered (pruned to what the fetches need): {len(program.instrs)} instrs ===")
            out.extend(lines)
        else:
            report = next(report_iter, None)
            out.append(f"=== {report if report is not None else name} ===")
            diff = [d for d in difflib.unified_diff(previous[1:], lines[1:], lineterm="", n=0)
                    if d[:1] in "+-" and not d.startswith(("+++", "---"))]
            out.extend(diff if diff else ["  (no change to the instrs)"])
        previous = lines
    program = optimized.program
    if len(stages) > 1:
        out.append(f"=== final program: {len(program.instrs)} instrs ===")
        out.extend(program.format().splitlines())
    out.append(f"=== kernel groups: {count_kernels(program)} kernels ===")
    for k, g in enumerate(program.groups):
        if not g.is_kernel:
            continue
        ops = [program.instrs[i].op for i in g.members]
        origin = program.instrs[g.root if g.root is not None else g.members[-1]].origin
        where = f"  # {origin.name} @ {origin.location}" if origin else ""
        ins = ", ".join(f"%{v}" for v in g.inputs)
        outs = ", ".join(f"%{v}" for v in g.outputs)
        out.append(f"  kernel {k}: {g.kind} [{' '.join(ops)}] ({ins}) -> ({outs}){where}")
        for i in g.members:  # control flow: each body, as its ops and its own kernel groups
            instr = program.instrs[i]
            for attr in instr.opdef.bodies:
                body = instr.attrs[attr]
                body_ops = [op.type for op in body.ops if op.type != "placeholder"]
                out.append(f"    {attr}: {len(body.inputs)} inputs -> {len(body.outputs)} outputs, "
                           f"[{' '.join(body_ops) or 'passes its inputs through'}]")
                settings = program.analyses.get("settings") or Settings()
                optimized = body_program(body, settings)
                parts = [("", optimized)]
                if instr.op == "while_loop" and attr == "body":  # as the targets run it
                    from .hoisting import split_invariant  # programs without loops never import it
                    hoisted, per_iteration = split_invariant(optimized, instr.attrs["n_vars"], settings)
                    parts = [("before the loop, once: ", hoisted), ("each iteration: ", per_iteration)]
                for label, part in parts:
                    for bg in part.groups if part is not None else ():
                        if bg.is_kernel:
                            ops = " ".join(part.instrs[j].op for j in bg.members)
                            out.append(f"      {label}kernel: {bg.kind} [{ops}]")
    for kind, label in (("view", "views and constants"), ("shape", "computed from shapes alone"),
                        ("collective", "collectives: the host starts each, then waits for it")):
        ops = Counter(program.instrs[i].op for g in program.groups if g.kind == kind for i in g.members)
        if ops:
            out.append(f"  no kernel ({label}): " + ", ".join(f"{op} x{n}" for op, n in sorted(ops.items())))
    if program.buffers is not None:
        out.append("=== " + program.buffers.format(program, binding))
    else:
        out.append("=== buffer plan: none (memory planning is off; every value gets its own buffer) ===")
    return "\n".join(out)

"""Editing Programs, and passes written as pattern rewrites (in the manner of tinygrad).

A :class:`Rule` names a root op and a function. The function gets a :class:`Match` for an
instr with that op and returns a replacement value (or tuple, one per output) or ``None``.
It may emit new instrs through the Match. ``rewrite`` applies rules until nothing changes;
every replacement must keep the dtype and rank and a compatible static shape, or compilation
fails naming the pass and the rule.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Optional

import numpy as np

from ..attrs import Attrs
from ..dtypes import as_dtype
from ..errors import CompileError
from ..ops.registry import get_op
from ..shapes import TensorType
from .program import Instr, Origin, Program

MAX_ROUNDS = 20


class ProgramBuilder:
    """Builds a new Program from an old one: keeps, adds and substitutes instrs."""

    def __init__(self, program: Program):
        self.program = program
        self.types = dict(program.types)
        self.names = dict(program.names)
        self.next_id = max([*self.types, -1]) + 1
        self.instrs: list = []
        self.defs: dict = {}
        self.subst: dict = {}

    def resolve(self, v: int) -> int:
        while v in self.subst:
            v = self.subst[v]
        return v

    def substituted(self, ins: Instr) -> Instr:
        inputs = tuple(self.resolve(v) for v in ins.inputs)
        after = tuple(self.resolve(v) for v in ins.after)
        if inputs == ins.inputs and after == ins.after:
            return ins
        return replace(ins, inputs=inputs, after=after)

    def keep(self, ins: Instr) -> None:
        self.instrs.append(ins)
        for v in ins.outputs:
            self.defs[v] = ins

    def emit(self, op: str, inputs, attrs=None, origin: Optional[Origin] = None) -> tuple:
        """Append a new instr; returns its output values (types come from the op's inference)."""
        inputs = tuple(self.resolve(v) for v in inputs)
        attrs = attrs if isinstance(attrs, Attrs) else Attrs(attrs or {})
        out_types = get_op(op).infer([self.types[v] for v in inputs], attrs)
        outputs = []
        for t in out_types:
            self.types[self.next_id] = t
            outputs.append(self.next_id)
            self.next_id += 1
        ins = Instr(op, inputs, tuple(outputs), attrs, (), origin)
        self.keep(ins)
        return tuple(outputs)

    def emit1(self, op: str, inputs, attrs=None, origin: Optional[Origin] = None) -> int:
        return self.emit(op, inputs, attrs, origin)[0]

    def const(self, value, origin: Optional[Origin] = None) -> int:
        return self.emit1("const", (), {"value": np.asarray(value)}, origin)

    def alias(self, old: int, new: int) -> None:
        if old != new:
            self.subst[old] = new

    def finish(self) -> Program:
        fetches = tuple(self.resolve(v) for v in self.program.fetches)
        for old, new in self.subst.items():  # keep the user's name on the surviving value
            if new not in self.names and old in self.names:
                self.names[new] = self.names[old]
        used = set(self.program.feeds)
        for ins in self.instrs:
            used.update(ins.inputs)
            used.update(ins.outputs)
        types = {v: t for v, t in self.types.items() if v in used or v in fetches}
        names = {v: n for v, n in self.names.items() if v in types}
        return Program(tuple(self.instrs), types, self.program.feeds, fetches, names)


def dead_code_elimination(program: Program) -> Program:
    """Drop instrs whose outputs nothing needs; stateful instrs and run-time checks (a
    check_range a fetched group reaches only through control edges) always stay."""
    live = set(program.fetches)
    kept = []
    for ins in reversed(program.instrs):
        opdef = ins.opdef
        if opdef.stateful or opdef.check or any(v in live for v in ins.outputs):
            kept.append(ins)
            live.update(ins.inputs)
            live.update(ins.after)
    kept.reverse()
    if len(kept) == len(program.instrs):
        return program
    used = set(program.feeds) | {v for ins in kept for v in ins.inputs + ins.outputs}
    return Program(tuple(kept), {v: t for v, t in program.types.items() if v in used}, program.feeds,
                   program.fetches, {v: n for v, n in program.names.items() if v in used})


class Match:
    """What a rule sees: the instr, its inputs' producers and constants, and a way to emit."""

    __slots__ = ("ins", "builder", "use_counts")

    def __init__(self, ins: Instr, builder: ProgramBuilder, use_counts: dict):
        self.ins = ins
        self.builder = builder
        self.use_counts = use_counts

    @property
    def attrs(self) -> Attrs:
        return self.ins.attrs

    @property
    def inputs(self) -> tuple:
        return self.ins.inputs

    @property
    def out(self) -> int:
        return self.ins.outputs[0]

    def type(self, v: int) -> TensorType:
        return self.builder.types[v]

    def producer(self, v: int) -> Optional[Instr]:
        return self.builder.defs.get(self.builder.resolve(v))

    def producer_op(self, v: int) -> Optional[str]:
        p = self.producer(v)
        return p.op if p is not None else None

    def const(self, v: int) -> Optional[np.ndarray]:
        p = self.producer(v)
        return p.attrs["value"] if p is not None and p.op == "const" else None

    def is_scalar_const(self, v: int, value) -> bool:
        """A constant whose every element equals ``value`` (so it acts as a scalar)."""
        c = self.const(v)
        if c is None or c.size == 0:
            return False
        return bool(np.all(c == value)) and not (isinstance(value, float) and np.isnan(value))

    def uses(self, v: int) -> int:
        return self.use_counts.get(v, 0)

    def emit1(self, op: str, inputs, attrs=None) -> int:
        return self.builder.emit1(op, inputs, attrs, self.ins.origin)

    def const_like(self, value, dtype) -> int:
        return self.builder.const(np.asarray(value, dtype=as_dtype(dtype).np), self.ins.origin)


@dataclass(frozen=True)
class Rule:
    name: str
    op: str
    fn: Callable[[Match], object]
    doc: str = ""


def rule_table():
    """``(rules, rule)``: a list and a decorator ``@rule(name, *ops)`` that fills it, one Rule
    per op, documented by the function's docstring."""
    rules: list = []

    def rule(name: str, *ops: str):
        def register(fn):
            for op in ops:
                rules.append(Rule(name, op, fn, (fn.__doc__ or "").strip()))
            return fn
        return register

    return rules, rule


def rules_by_op(rules: Iterable[Rule]) -> dict:
    table: dict = {}
    for r in rules:
        table.setdefault(r.op, []).append(r)
    return table


def rewrite(program: Program, rules: Iterable[Rule], pass_name: str) -> tuple:
    """Apply ``rules`` to a fixed point; returns (program, Counter of rule names applied)."""
    table = rules_by_op(rules)
    applied: Counter = Counter()
    for _ in range(MAX_ROUNDS):
        builder = ProgramBuilder(program)
        use_counts = Counter(v for ins in program.instrs for v in ins.inputs)
        use_counts.update(program.fetches)
        changed = False
        for ins in program.instrs:
            ins = builder.substituted(ins)
            result = None
            if not ins.opdef.stateful:
                for rule in table.get(ins.op, ()):
                    result = rule.fn(Match(ins, builder, use_counts))
                    if result is not None:
                        _check_replacement(builder, ins, result, pass_name, rule)
                        applied[rule.name] += 1
                        break
            if result is None:
                builder.keep(ins)
                continue
            changed = True
            for old, new in zip(ins.outputs, (result,) if isinstance(result, int) else result):
                builder.alias(old, builder.resolve(new))
        program = dead_code_elimination(builder.finish())
        if not changed:
            break
    return program, applied


def _check_replacement(builder, ins, result, pass_name, rule) -> None:
    news = (result,) if isinstance(result, int) else tuple(result)
    if len(news) != len(ins.outputs):
        raise CompileError(f"pass {pass_name!r}, rule {rule.name!r}: replaced {len(ins.outputs)} outputs of "
                           f"{ins.op} with {len(news)}")
    for old, new in zip(ins.outputs, news):
        a, b = builder.types[old], builder.types[builder.resolve(new)]
        if a.dtype is not b.dtype or a.rank != b.rank or not a.shape.is_compatible_with(b.shape):
            origin = f" from {ins.origin}" if ins.origin else ""
            raise CompileError(f"pass {pass_name!r}, rule {rule.name!r}: rewriting {ins.op}{origin} would change "
                               f"its type from {a} to {b}; the rewrite is rejected")

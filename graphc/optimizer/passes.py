"""The simplification passes: canonicalize, constant folding, CSE, algebraic simplification
and stabilization. Each is a pure function Program -> (Program, Counter of rewrites)."""
from __future__ import annotations

from collections import Counter

import numpy as np

from . import simplify, stabilize
from .program import Program
from .rewrite import Match, ProgramBuilder, Rule, dead_code_elimination, rewrite

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
    return not (opdef.stateful or opdef.random or opdef.structural or ins.op == "const")


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


def algebraic_simplify(program: Program):
    return rewrite(program, simplify.RULES, "simplify")


def stabilization(program: Program):
    return rewrite(program, stabilize.RULES, "stabilize")

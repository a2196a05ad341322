"""Hoisting: the work of a loop body that no loop variable reaches runs once, before the loop.

``split_invariant`` cuts an optimized body in two Programs (the invariant instrs, and the rest
per iteration), each grouped and memory-planned again on its own (``subprogram``). Before the
cut, ``project_before_the_loop`` rewrites an RNN's input projection so that it is invariant:
the projection of every time step becomes one product before the loop. The compiled targets
(codegen/control_flow.py, codegen/cpu/loops.py) and ``explain`` use the same cut.
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Tuple

from .fusion import fuse, trivial_groups
from .memory import plan_memory
from .program import Program
from .rewrite import Match, Rule, rewrite

if TYPE_CHECKING:
    from .pipeline import Settings


def subprogram(program: Program, instrs, feeds, fetches, settings: "Settings") -> Program:
    """A Program of some of ``program``'s instrs (already optimized up to the state pass):
    grouped and planned again on its own, as ``settings`` say."""
    used = set(feeds) | {v for ins in instrs for v in ins.inputs + ins.outputs}
    defined = set(feeds) | {v for ins in instrs for v in ins.outputs}
    instrs = tuple(ins if all(a in defined for a in ins.after) else
                   type(ins)(ins.op, ins.inputs, ins.outputs, ins.attrs, tuple(a for a in ins.after if a in defined),
                             ins.origin) for ins in instrs)
    sub = Program(instrs, {v: program.types[v] for v in used}, tuple(feeds), tuple(fetches),
                  {v: program.name_of(v) for v in used})
    sub.analyses["settings"] = settings
    return plan(sub, settings)


def plan(program: Program, settings: "Settings") -> Program:
    """The groups and buffer plan that the optimization level gives."""
    if settings.level >= 2 and "fuse" not in settings.disabled:
        program = fuse(program, settings.capabilities)[0]
    else:
        program = program.with_plan(trivial_groups(program))
    if settings.level >= 2 and "plan_memory" not in settings.disabled:
        program = plan_memory(program)[0]
    return program


def project_before_the_loop(program: Program, n_varying: int) -> Tuple[Program, Counter]:
    """Rewrites that make a loop body's projections of loop-invariant data invariant, so that
    ``split_invariant`` runs them once, as one product, before the loop:

    * ``matmul(concat([a, h], -1), K)`` with an invariant ``K`` becomes
      ``matmul(a, K[:n_a]) + matmul(h, K[n_a:])`` when some part is a slice of invariant data
      (an RNN cell's ``[x_t, h] @ kernel``);
    * ``matmul(gather(X, i), W)`` with invariant ``X`` and ``W`` becomes ``gather(X @ W, i)``:
      the input projection of every time step in one product, sliced per iteration.
    """
    varying = set(program.feeds[:n_varying])

    def is_varying(m: Match, v: int) -> bool:
        if v in varying:
            return True
        ins = m.producer(v)
        if ins is None or ins.op == "const":
            return False
        found = any(is_varying(m, u) for u in ins.inputs)
        if found:
            varying.add(v)
        return found

    def plain(m: Match) -> bool:
        return not m.attrs["transpose_a"] and not m.attrs["transpose_b"] and m.type(m.inputs[1]).rank == 2

    def sliced_invariant(m: Match, v: int) -> bool:
        ins = m.producer(v)
        return (ins is not None and ins.op == "gather" and ins.attrs["axis"] == 0
                and m.type(ins.inputs[1]).rank == 0 and not is_varying(m, ins.inputs[0]))

    def split_concat(m: Match):
        c, k = m.inputs
        cat = m.producer(c)
        if cat is None or cat.op != "concat" or not plain(m) or m.type(c).rank != 2 or is_varying(m, k):
            return None
        if cat.attrs["axis"] not in (1, -1) or not any(sliced_invariant(m, v) for v in cat.inputs):
            return None
        widths = [m.type(v).shape[1] for v in cat.inputs]
        if None in widths or m.type(k).shape[0] is None:
            return None
        parts = m.builder.emit("split", (k,), {"axis": 0, "num": None, "sizes": tuple(widths)}, m.ins.origin)
        terms = [m.emit1("matmul", (v, w), m.attrs) for v, w in zip(cat.inputs, parts)]
        total = terms[0]
        for t in terms[1:]:
            total = m.emit1("add", (total, t))
        return total

    def project_slices(m: Match):
        g, w = m.inputs
        if not plain(m) or not sliced_invariant(m, g) or is_varying(m, w):
            return None
        x, i = m.producer(g).inputs
        if m.type(x).rank != 3:
            return None
        projected = m.emit1("matmul", (x, w), m.attrs)  # [T, B, I] @ [I, N]: every step's rows at once
        return m.emit1("gather", (projected, i), {"axis": 0})

    rules = [Rule("split_concat_matmul", "matmul", split_concat),
             Rule("project_slices_before_the_loop", "matmul", project_slices)]
    return rewrite(program, rules, "project_before_the_loop")


def split_invariant(program: Program, n_varying: int, settings: "Settings") -> Tuple[Program, Program]:
    """Hoisting: (the instrs of a loop body that depend on no loop variable, as a Program over
    the captures; the rest, as a Program over the loop variables, the captures and the hoisted
    values). ``program``'s first ``n_varying`` feeds are the loop variables. Stateful or random
    instrs are never hoisted (bodies refuse them today). Returns (None, program) when nothing
    is worth hoisting (only constants, views and shape arithmetic)."""
    if settings.level >= 1 and "project_before_the_loop" not in settings.disabled:
        rewritten, applied = project_before_the_loop(program, n_varying)
        if applied:
            program = rewritten
    varying = set(program.feeds[:n_varying])
    hoisted, kept = [], []
    for ins in program.instrs:
        if ins.op == "const":  # both keep their constants: a literal in a kernel beats a loaded value
            hoisted.append(ins)
            kept.append(ins)
        elif ins.opdef.stateful or ins.opdef.random or any(v in varying for v in ins.inputs):
            varying.update(ins.outputs)
            kept.append(ins)
        else:
            hoisted.append(ins)
    cheap = {"const", "shape", "reshape", "expand_dims", "squeeze", "identity", "stop_gradient"}
    if not any(ins.op not in cheap for ins in hoisted):
        return None, program if program.groups is not None else plan(program, settings)
    defined = {v for ins in hoisted if ins.op != "const" for v in ins.outputs}
    crossing = list(dict.fromkeys(v for ins in kept for v in ins.inputs if v in defined))
    crossing += [v for v in program.fetches if v in defined and v not in crossing]
    captures = program.feeds[n_varying:]
    before = subprogram(program, hoisted, captures, crossing, settings)
    after = subprogram(program, kept, list(program.feeds) + crossing, program.fetches, settings)
    return before, after


def counter_of(cond: Program, body: Program, n: int):
    """``(k, bound)`` when a loop counts: its integer loop variable ``k`` steps by one in the
    body and the cond is ``k < bound``, with ``bound`` the cond's feed ``("feed", j)`` (a
    capture when ``j >= n``) or ``("const", value)``. Else None. Such a loop's trip count is
    ``max(bound - start, 0)`` before it runs (scan, map_fn and dynamic_rnn loop so): the host
    need not read a predicate back, and a native library knows its history's size."""
    producers = cond.producers()
    p = producers.get(cond.fetches[0])
    pred = cond.instrs[p] if p is not None else None
    if pred is None or pred.op != "less" or pred.inputs[0] not in cond.feeds[:n]:
        return None
    k = cond.feeds.index(pred.inputs[0])
    if not cond.types[pred.inputs[0]].dtype.is_integer or not _steps_by_one(body, k):
        return None
    v = pred.inputs[1]
    if v in cond.feeds:
        j = cond.feeds.index(v)
        return (k, ("feed", j)) if j >= n else None
    q = producers.get(v)
    if q is not None and cond.instrs[q].op == "const" and cond.instrs[q].attrs["value"].size == 1:
        return k, ("const", int(cond.instrs[q].attrs["value"].reshape(())))
    return None


def _steps_by_one(body: Program, k: int) -> bool:
    """Whether the body returns loop variable ``k`` plus the constant 1."""
    producers = body.producers()
    p = producers.get(body.fetches[k])
    if p is None or body.instrs[p].op != "add":
        return False
    a, b = body.instrs[p].inputs
    other = b if a == body.feeds[k] else a if b == body.feeds[k] else None
    q = producers.get(other) if other is not None else None
    return q is not None and body.instrs[q].op == "const" and body.instrs[q].attrs["value"].size == 1 \
        and int(body.instrs[q].attrs["value"].reshape(())) == 1


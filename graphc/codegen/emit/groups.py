"""What each kind of kernel group computes, as loops (see loops.py for the indexing)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from ...errors import CompileError
from ...optimizer.fusion import reduce_roles
from ...ops.registry import find_opdef
from ...optimizer.program import VARIABLE_WRITES
from . import scalar
from .loops import (STATIC, Operand, SourceWriter, classify, contiguous_strides, decode_offsets, grid_nest, nest,
                    product, rebase, static_int, strides_for)


def data_inputs(ins) -> list:
    shape_only = set(ins.opdef.shape_only_inputs(ins.attrs, len(ins.inputs)))
    return [v for k, v in enumerate(ins.inputs) if k not in shape_only]


def element_expression(cg, ins, args: Sequence[str]) -> str:
    data = data_inputs(ins)
    in_dtype = cg.dtype(data[1] if ins.op == "where" else data[0]) if data else cg.dtype(ins.outputs[0])
    return scalar.expression(ins.op, ins.attrs, args, in_dtype, cg.dtype(ins.outputs[0]), cg.math)


def element_guard(cg, w: SourceWriter, i: int, ins, args: Sequence[str]) -> None:
    """Run-time checks an element needs before its expression: integer powers with a
    negative exponent are an error in NumPy (a GPU would silently compute garbage)."""
    if ins.op == "pow" and not cg.dtype(ins.outputs[0]).is_floating and not cg.dtype(ins.outputs[0]).is_bool:
        with w.block(f"if {args[1]} < 0:"):
            cg.raise_error(w, i, "integers to negative integer powers are not allowed (exponent {})", args[1])


def emit_variable_write(cg, w: SourceWriter, ins, element: str, value: str) -> None:
    """``t<id>`` = the variable element's new value (assign, assign_add, ...), stored back."""
    t = f"t{cg.lid(ins.outputs[0])}"
    w(f"{t} = np.{cg.dtype(ins.outputs[0]).np.name}({scalar.combine_assign(ins.op, element, value)})")
    w(f"{element} = {t}")


def emit_scalar_members(cg, w: SourceWriter, members: Sequence[int], scalars: dict, targets=None,
                        at: str = "", applied=()) -> None:
    """Each member's expression into a local ``t<id>`` (added to ``scalars``, which maps a
    value to the local or literal holding it); members in ``targets`` (value -> array) are
    also stored, at index ``at``. Variable writes (assign, assign_add, ...) update their
    variable's element ``at`` in a storing pass (``targets`` given); a pass that does not
    store, or a member in ``applied`` (updated by an earlier pass over the same elements, in
    the same thread), reads the new value back instead of applying the update again."""
    for i in members:
        ins = cg.instrs[i]
        args = [scalars.get(u, cg.literals.get(u)) for u in data_inputs(ins)]
        r = ins.outputs[0]
        if ins.op in VARIABLE_WRITES:
            element = f"{cg.var_array(ins.attrs['var'])}[{at}]"
            if targets is None or i in applied:
                w(f"t{cg.lid(r)} = {element}")
            else:
                emit_variable_write(cg, w, ins, element, args[0])
            scalars[r] = f"t{cg.lid(r)}"
            continue
        element_guard(cg, w, i, ins, args)
        w(f"t{cg.lid(r)} = {element_expression(cg, ins, args)}")
        scalars[r] = f"t{cg.lid(r)}"
        if targets and r in targets:
            w(f"{targets[r]}[{at}] = t{cg.lid(r)}")


# --- elementwise ------------------------------------------------------------------------------------------
def emit_members_over(cg, w: SourceWriter, members: Sequence[int], space: int, stores: set,
                      known: Optional[Dict[int, str]] = None, splittable: bool = False,
                      at: Optional[str] = None) -> None:
    """One loop over the space of value ``space`` computing ``members`` element by element;
    values produced outside come from their arrays (broadcast as their shapes say), values in
    ``stores`` are written to their arrays. Every load of an element happens before any store
    of that element, so an output may share its array with an input (in place). With ``at``
    (a flat index), no loop: just that element (a GPU thread's epilogue)."""
    instrs = cg.instrs
    produced = {v for i in members for v in instrs[i].outputs}
    external: List[int] = []
    for i in members:
        for u in data_inputs(instrs[i]):
            if u not in produced and u not in external and not cg.is_literal(u) and u not in (known or {}):
                external.append(u)
    writes = {}  # assign output value -> var array
    for i in members:
        ins = instrs[i]
        if ins.op in VARIABLE_WRITES:
            writes[ins.outputs[0]] = cg.var_array(ins.attrs["var"])
    targets = {}
    for v in sorted(stores & produced):
        if v in writes:
            continue
        targets[v] = cg.define_output(v, w)

    kinds = {u: classify(cg, u, space) for u in external}
    flat = cg.mode == STATIC and all(len(set(k)) <= 1 and "r" not in k for k in kinds.values())
    names = {u: cg.array(u) for u in external}           # arrays as the loop reads them
    out_names = dict(targets)
    out_names.update(writes)

    def body(w: SourceWriter, offsets) -> None:
        scalars = dict(known or {})
        for u in external:
            name = f"x{cg.lid(u)}"
            w(f"{name} = {names[u]}[{offsets[u]}]")
            scalars[u] = name
        out_off = offsets["out"]
        for i in members:
            ins = instrs[i]
            args = [scalars.get(u, cg.literals.get(u)) for u in data_inputs(ins)]
            if any(a is None for a in args):
                raise CompileError(f"internal error: {ins.op} reads a value the kernel does not have")
            out = ins.outputs[0]
            if ins.op in VARIABLE_WRITES:
                emit_variable_write(cg, w, ins, f"{out_names[out]}[{out_off}]", args[0])
            else:
                element_guard(cg, w, i, ins, args)
                w(f"t{cg.lid(out)} = {element_expression(cg, ins, args)}")
            scalars[out] = f"t{cg.lid(out)}"
            if out in targets:
                w(f"{out_names[out]}[{out_off}] = t{cg.lid(out)}")

    if flat:
        n = cg.size(space)
        scalar_inputs = [u for u in external if kinds[u] and kinds[u][0] == "b"]
        if splittable:
            lo, hi = cg.split_bounds([(space, k) for k in range(cg.rank(space))], space)
            for u in external:
                if u not in scalar_inputs:
                    names[u] = _slice(cg, w, names[u], lo, hi)
            for v in out_names:
                out_names[v] = _slice(cg, w, out_names[v], lo, hi)
            n = f"({hi} - {lo})"
        if at is not None:
            offsets = {u: ("0" if u in scalar_inputs else at) for u in external}
            offsets["out"] = at
            body(w, offsets)
        else:
            idx = cg.uid("i")
            with w.block(cg.parallel_loop(idx, n)):
                offsets = {u: ("0" if u in scalar_inputs else idx) for u in external}
                offsets["out"] = idx
                body(w, offsets)
    else:
        operands = {u: Operand(names[u], strides_for(cg, w, u, space, cg.mode)) for u in external}
        out_strides = contiguous_strides(cg, space)
        for v in out_names:
            operands[("store", v)] = Operand(out_names[v], out_strides)
        dims = cg.dims(space)
        if splittable and dims:
            bounds = cg.split_bounds([(space, 0)], space)
            dims = [rebase(cg, w, operands, bounds)] + dims[1:]
        for u in external:
            names[u] = operands[u].name
        for v in out_names:
            out_names[v] = operands[("store", v)].name
        operands["out"] = Operand("", out_strides)
        if at is not None:
            body(w, decode_offsets(cg, w, dims, operands, at))
        else:
            (grid_nest if cg.target == "cuda" else nest)(cg, w, dims, operands, body)
    for out, var in writes.items():
        cg.flat[out] = var


def _slice(cg, w, name: str, lo: str, hi: str) -> str:
    view = cg.uid("part")
    w(f"{view} = {name}[{lo}:{hi}]")
    return view


def emit_elementwise(cg, g) -> None:
    space = cg.instrs[g.members[-1]].outputs[0]
    emit_members_over(cg, cg.body, g.members, space, set(g.outputs), splittable=True)


# --- reductions ------------------------------------------------------------------------------------------
_INIT = {"reduce_sum": 0, "reduce_mean": 0, "reduce_prod": 1, "reduce_any": False, "reduce_all": True}


def fold_of(op: str):
    """The Fold of a reduction defined in one place (ops/reduce.py), else None."""
    opdef = find_opdef(op)
    return opdef.fold if opdef is not None else None


def contribution(cg, root, value: str, dtype) -> str:
    """What one element adds to the accumulator: the value, or its Fold's ``element``."""
    fold = fold_of(root.op)
    if fold is None or fold.element is None:
        return value
    return scalar.apply_formula(fold.element, root.attrs, [value], dtype, cg.math)


def finish(cg, root, acc: str, count: str, dtype) -> Optional[str]:
    """The result from the accumulator ``acc`` of ``count`` elements, or None if it is acc."""
    if root.op == "reduce_mean":
        return f"np.{dtype.np.name}({acc} / {count})"  # (an int count would widen float32)
    fold = fold_of(root.op)
    if fold is None or fold.finish is None:
        return None
    return scalar.apply_formula(fold.finish, root.attrs, [acc], dtype, cg.math)


def init_literal(op: str, dtype) -> str:
    fold = fold_of(op)
    if fold is not None:
        return scalar.literal(fold.identity, dtype)
    if op in _INIT:
        return scalar.literal(_INIT[op], dtype)
    if op in ("reduce_max", "reduce_logsumexp"):
        low = -np.inf if dtype.is_floating else (False if dtype.is_bool else np.iinfo(dtype.np).min)
        return scalar.literal(low, dtype)
    if op == "reduce_min":
        high = np.inf if dtype.is_floating else (True if dtype.is_bool else np.iinfo(dtype.np).max)
        return scalar.literal(high, dtype)
    raise CompileError(f"no reduction identity for {op}")


def combine(op: str, acc: str, v: str, dtype) -> str:
    t = "" if dtype.is_floating else f"np.{dtype.np.name}"  # integer sums widen in numba: wrap back
    fold = fold_of(op)
    kind = ("add" if fold.combine == "add" else "mul") if fold is not None else \
        {"reduce_sum": "add", "reduce_mean": "add", "reduce_prod": "mul"}.get(op)
    if kind is not None:
        if dtype.is_floating:  # the one reassociable operation of a strict kernel (runtime.fold_add)
            return f"rt.fold_{kind}({acc}, {v})"
        return f"{t}({acc} {'+' if kind == 'add' else '*'} {v})"
    return {"reduce_max": f"rt.maximum({acc}, {v})",
            "reduce_min": f"rt.minimum({acc}, {v})", "reduce_any": f"({acc} or {v})",
            "reduce_all": f"({acc} and {v})", "reduce_logsumexp": f"rt.maximum({acc}, {v})"}[op]


def _fold_in(op: str, value: str, dtype) -> list:
    """Statements that fold ``value`` into the scalar ``acc`` of a row loop. A float max or
    min selects without testing for NaN and records NaNs in ``nan_seen`` (applied by
    ``_fold_done``): the NaN-propagating select (``rt.maximum``) as a loop-carried chain sent
    LLVM's loop vectorizer into minutes of work on constant trip counts of 16 and more."""
    if op in ("reduce_max", "reduce_min") and dtype.is_floating:
        better = ">" if op == "reduce_max" else "<"
        return [f"acc = {value} if {value} {better} acc else acc", f"nan_seen |= {value} != {value}"]
    if op == "reduce_logsumexp":  # the maximum only shifts the exponentials: a NaN reaches the sum
        return [f"acc = {value} if {value} > acc else acc"]
    return [f"acc = {combine(op, 'acc', value, dtype)}"]


def _fold_start(op: str, dtype) -> list:
    lines = [f"acc = {init_literal(op, dtype)}"]
    if op in ("reduce_max", "reduce_min") and dtype.is_floating:
        lines.append("nan_seen = False")
    return lines


def _fold_done(op: str, dtype) -> list:
    if op in ("reduce_max", "reduce_min") and dtype.is_floating:
        return [f"if nan_seen: acc = {scalar.literal(np.nan, dtype)}"]
    return []


def reduce_group_roles(cg, g):
    """A reduce group's prologue, output-space epilogue and row epilogue (the optimizer's
    ``reduce_roles``: the passes every backend runs them in are defined there), for an
    emitter that does not run chains of reductions (ROW_REDUCTION_CHAINS)."""
    roles = reduce_roles(cg.p, cg.sym, g.members, g.root)
    if roles.chain:
        raise CompileError("internal error: fusion built a chain of reductions for a backend whose reduce emitter "
                           "cannot run one (fusion asks Backend.capabilities for ROW_REDUCTION_CHAINS)")
    return list(roles.prologue), list(roles.post), list(roles.row)


def _externals(cg, members, extra=()) -> list:
    produced = {v for i in members for v in cg.instrs[i].outputs}
    external = []
    for u in [u for i in members for u in data_inputs(cg.instrs[i])] + list(extra):
        if u not in produced and u not in external and not cg.is_literal(u):
            external.append(u)
    return external


def _row_kinds(cg, g, root, prologue, post, row, chain=()):
    """For the row strategy: per operand of the input (row) space, its (outer, inner) kind,
    and per operand of the output space its kind; None if some operand mixes kinds."""
    x, out = root.inputs[0], root.outputs[0]
    rank, axes = cg.rank(x), root.attrs["axes"]
    if cg.mode != STATIC or not axes or tuple(axes) != tuple(range(rank - len(axes), rank)):
        return None
    split = rank - len(axes)
    row_kinds = {}
    chained = [c for c, _ in chain]
    chain_members = [i for _, own in chain for i in own] + chained
    chain_inputs = tuple(cg.instrs[c].inputs[0] for c in chained)
    for u in _externals(cg, chain_members + prologue + row, extra=(x,) + chain_inputs):
        if u in {cg.instrs[c].outputs[0] for c in chained}:
            continue  # a chained reduction's result: a scalar per row
        k = classify(cg, u, x)
        outer, inner = set(k[:split]) or {"b"}, set(k[split:])
        if len(outer) != 1 or len(inner) != 1 or "r" in outer | inner:
            return None
        row_kinds[u] = (outer.pop(), inner.pop())
    out_kinds = {}
    for u in _externals(cg, post):
        k = set(classify(cg, u, out)) or {"b"}
        if len(k) != 1 or "r" in k:
            return None
        out_kinds[u] = k.pop()
    return row_kinds, out_kinds


def _emit_row_reduce(cg, g, root, prologue, post, row, kinds, chain=()) -> None:
    """Reductions over trailing axes: one row at a time, a scalar accumulator that LLVM can
    vectorize, then the epilogues for that row. A chain's reductions each take a pass over
    the row first (the row is then in cache for the root's pass); their results are scalars
    the later passes read."""
    w = cg.body
    instrs = cg.instrs
    row_kinds, out_kinds = kinds
    op = root.op
    x, out = root.inputs[0], root.outputs[0]
    dtype = cg.dtype(out)
    rank, axes = cg.rank(x), root.attrs["axes"]
    # the reduced axes are the extent of folding loops: see KernelContext.runtime_dim
    dims = [cg.runtime_dim(x, k) if k in axes else d for k, d in enumerate(cg.dims(x))]
    n_inner = f"({product(dims[rank - len(axes):])})"
    stores = set(g.outputs)
    targets = {v: cg.define_output(v, w) for v in sorted(stores)
               if cg.producer.get(v) is not None and instrs[cg.producer[v]].op not in VARIABLE_WRITES}
    o, j, base = cg.uid("o"), cg.uid("j"), cg.uid("base")
    # the outer (row) loop is split across threads: view every operand from the part's start
    lo, hi = cg.split_bounds([(x, k) for k in range(rank - len(axes))], x)
    arrays = {}
    chained = [c for c, _ in chain]
    chain_members = [i for _, own in chain for i in own] + chained
    computed = {out} | {v for i in post + chained for v in instrs[i].outputs}  # values a row pass gets as scalars
    row_externals = _externals(cg, chain_members + prologue + row,
                               extra=(x,) + tuple(instrs[c].inputs[0] for c in chained))
    for u in set(row_externals) - set(cg.literals) - computed:
        outer_kind = row_kinds[u][0]
        step = n_inner if row_kinds[u] == ("e", "e") else "1"
        arrays[u] = _slice(cg, w, cg.array(u), f"{lo} * {step}", f"{hi} * {step}") if outer_kind == "e" \
            else cg.array(u)
    for u in set(_externals(cg, post)) - computed - set(cg.literals):
        arrays[u] = _slice(cg, w, cg.array(u), lo, hi) if out_kinds[u] == "e" else cg.array(u)
    for v, t in list(targets.items()):
        step = "1" if cg.sym.same_shape(v, out) or v == out else n_inner
        targets[v] = _slice(cg, w, t, f"{lo} * {step}", f"{hi} * {step}")

    def index(kind):
        return {("e", "e"): f"{base} + {j}", ("e", "b"): o, ("b", "e"): j, ("b", "b"): "0"}[kind]

    def pass_over_row(members, on_value=None, store=True, known=None, source=x):
        scalars = dict(known or {})
        externals = [u for u in _externals(cg, members, extra=(source,) if on_value else ()) if u not in scalars]
        for u in externals:  # one value per row: loaded before the loop (stores in it may alias)
            if row_kinds[u][1] == "b":
                w(f"x{cg.lid(u)} = {arrays[u]}[{index(row_kinds[u])}]")
                scalars[u] = f"x{cg.lid(u)}"
        with w.block(f"for {j} in range({n_inner}):"):
            for u in externals:
                if u in scalars:
                    continue
                w(f"x{cg.lid(u)} = {arrays[u]}[{index(row_kinds[u])}]")
                scalars[u] = f"x{cg.lid(u)}"
            emit_scalar_members(cg, w, members, scalars, targets if store else None, f"{base} + {j}")
            if on_value is not None:
                on_value(scalars.get(source, cg.literals.get(source)))

    def fold(reduction, members, known):
        """One pass folding ``reduction``'s input over the row into ``acc``."""
        r_op, r_dtype = reduction.op, cg.dtype(reduction.outputs[0])
        w.extend_lines(_fold_start(r_op, r_dtype))
        pass_over_row(members, known=known, source=reduction.inputs[0],
                      on_value=lambda v: w.extend_lines(_fold_in(r_op, contribution(cg, reduction, v, r_dtype),
                                                                 r_dtype)))
        w.extend_lines(_fold_done(r_op, r_dtype))

    with w.block(f"for {o} in range({hi} - {lo}):"):
        w(f"{base} = {o} * {n_inner}")
        chain_scalars = {}
        for c, own in chain:
            reduction = instrs[c]
            fold(reduction, list(own), chain_scalars)
            done = finish(cg, reduction, "acc", n_inner, cg.dtype(reduction.outputs[0]))
            name = f"c{cg.lid(reduction.outputs[0])}"
            w(f"{name} = {done if done is not None else 'acc'}")
            chain_scalars[reduction.outputs[0]] = name
            if reduction.outputs[0] in targets:
                w(f"{targets[reduction.outputs[0]]}[{o}] = {name}")
        fold(root, prologue, chain_scalars)
        done = finish(cg, root, "acc", n_inner, dtype)
        if op == "reduce_logsumexp":
            w(f"shift = acc if {cg.call('isfinite', dtype, 'acc')} else {scalar.literal(0, dtype)}")
            w(f"acc = {scalar.literal(0, dtype)}")
            pass_over_row(prologue, on_value=lambda v: w(f"acc = rt.fold_add(acc, {cg.call('exp', dtype, f'{v} - shift')})"), store=False,
                          known=chain_scalars)
            w(f"acc = {cg.call('log', dtype, 'acc')} + shift")
        elif done is not None:
            w(f"acc = {done}")
        result = {out: "acc", **chain_scalars}
        if out in targets:
            w(f"{targets[out]}[{o}] = acc")
        for u in _externals(cg, post):
            if u in result:
                continue
            w(f"x{cg.lid(u)} = {arrays[u]}[{o if out_kinds[u] == 'e' else '0'}]")
            result[u] = f"x{cg.lid(u)}"
        emit_scalar_members(cg, w, post, result, targets, o)
        if row:
            known = {v: name for v, name in result.items()}
            pass_over_row(prologue + row, known=known, store=True)


def emit_reduce(cg, g) -> None:
    w = cg.body
    instrs = cg.instrs
    root = instrs[g.root]
    x = root.inputs[0]
    roles = reduce_roles(cg.p, cg.sym, g.members, g.root)
    prologue, post, row, chain = list(roles.prologue), list(roles.post), list(roles.row), roles.chain
    kinds = _row_kinds(cg, g, root, prologue, post, row, chain)
    if kinds is not None and not any(instrs[i].op in VARIABLE_WRITES for i in g.members):
        _emit_row_reduce(cg, g, root, prologue, post, row, kinds, chain)
        return
    stores = set(g.outputs)
    for c, own in chain:  # each chained reduction into its own array, which the next prologue reads
        _emit_reduction(cg, w, instrs[c], list(own), stores)
    _emit_reduction(cg, w, root, prologue, stores)
    if post:
        emit_members_over(cg, w, post, instrs[post[-1]].outputs[0], stores | _needed_by(cg, row, post))
    if row:
        emit_members_over(cg, w, prologue + row, x, stores & {v for i in row for v in instrs[i].outputs})


def _emit_reduction(cg, w, root, prologue, stores) -> None:
    """``root`` over any axes, its prologue computed as its input's elements are loaded: the
    result in the root's output array (or a temporary), which ``cg.flat`` then names."""
    instrs = cg.instrs
    op = root.op
    x, out = root.inputs[0], root.outputs[0]
    dtype = cg.dtype(out)
    axes = root.attrs["axes"]
    rank = cg.rank(x)
    # the reduced axes are the extent of folding loops: see KernelContext.runtime_dim
    in_dims = [cg.runtime_dim(x, k) if k in axes else d for k, d in enumerate(cg.dims(x))]
    count = f"({product([in_dims[a] for a in axes])})"

    # the accumulator lives in the root's output array (or a temporary)
    acc = cg.define_output(out, w) if out in stores else cg.temp(out, w)
    cg.flat[out] = acc
    n_out = cg.size(out)
    q = cg.uid("q")
    with w.block(f"for {q} in range({n_out}):"):
        w(f"{acc}[{q}] = {init_literal(op, dtype)}")

    # out offset along every dim of the input space: 0 on reduced axes
    out_dims = cg.dims(out)
    kept = [k for k in range(rank) if k not in axes]
    out_strides = []
    for k in range(rank):
        if k in axes:
            out_strides.append("0")
        else:
            j = k if root.attrs["keepdims"] else kept.index(k)
            out_strides.append(product(out_dims[j + 1:]))

    def accumulate(extra_pass: Optional[str] = None):
        members = prologue
        produced = {v for i in members for v in instrs[i].outputs}
        external = []
        for i in members:
            for u in data_inputs(instrs[i]):
                if u not in produced and u not in external and not cg.is_literal(u):
                    external.append(u)
        if x not in produced and x not in external and not cg.is_literal(x):
            external.append(x)
        targets = {v: cg.define_output(v, w) for v in sorted(stores & produced)} if extra_pass is None else {}
        operands = {u: Operand(cg.array(u), strides_for(cg, w, u, x, cg.mode)) for u in external}
        operands["acc"] = Operand(acc, out_strides)
        operands["in"] = Operand("", contiguous_strides(cg, x))

        def body(w, offsets):
            scalars = {}
            for u in external:
                w(f"x{cg.lid(u)} = {cg.array(u)}[{offsets[u]}]")
                scalars[u] = f"x{cg.lid(u)}"
            emit_scalar_members(cg, w, members, scalars, targets, offsets["in"])
            v = scalars.get(x, cg.literals.get(x))
            a = f"{acc}[{offsets['acc']}]"
            if extra_pass is None:
                w(f"{a} = {combine(op, a, contribution(cg, root, v, dtype), dtype)}")
            else:  # logsumexp's second pass: sum exp(v - shift)
                shifted = f"{v} - {shift_of(offsets['acc'])}"
                w(f"{extra_pass}[{offsets['acc']}] = rt.fold_add({extra_pass}[{offsets['acc']}], "
                  f"np.{dtype.np.name}({cg.call('exp', None, shifted)}))")

        nest(cg, w, in_dims, operands, body)

    def shift_of(o):
        return f"(({acc}[{o}]) if {cg.call('isfinite', dtype, f'{acc}[{o}]')} else {scalar.literal(0, dtype)})"

    accumulate()
    if op == "reduce_logsumexp":
        sums = cg.temp(out, w)  # scratch, not np.zeros: no allocation per call (and none in native code)
        with w.block(f"for {q} in range({n_out}):"):
            w(f"{sums}[{q}] = {scalar.literal(0, dtype)}")
        accumulate(extra_pass=sums)
        with w.block(f"for {q} in range({n_out}):"):
            w(f"{acc}[{q}] = np.{dtype.np.name}({cg.call('log', None, f'{sums}[{q}]')} + {shift_of(q)})")
    elif (done := finish(cg, root, f"{acc}[{q}]", count, dtype)) is not None:
        with w.block(f"for {q} in range({n_out}):"):
            w(f"{acc}[{q}] = {done}")


def _needed_by(cg, consumers, producers) -> set:
    """Outputs of ``producers`` that ``consumers`` read (they must be stored to be re-read)."""
    made = {v for i in producers for v in cg.instrs[i].outputs}
    return {u for i in consumers for u in cg.instrs[i].inputs if u in made}


# --- matmul -----------------------------------------------------------------------------------------
def product_target(cg, w, g, root_out) -> str:
    """Where a product is written: its own output array, an epilogue output of the same
    shape and dtype (the epilogue then runs in place), or a temporary."""
    if root_out in g.outputs:
        return cg.define_output(root_out, w)
    for v in g.outputs:
        if v != root_out and cg.dtype(v) is cg.dtype(root_out) and cg.sym.same_shape(v, root_out) \
                and cg.instrs[cg.producer[v]].op not in VARIABLE_WRITES:
            return cg.define_output(v, w)
    return cg.temp(root_out, w)


def matmul_batch_operands(cg, w: SourceWriter, a: int, b: int, out_dims, target: str) -> dict:
    """Operands "a", "b" and "out" whose strides step from one matrix of a batched matmul to
    the next (0 along a broadcast batch dim), for ``decode_offsets`` over the batch dims."""
    batch_dims = out_dims[:-2]
    ops = {}
    for name, v in (("a", a), ("b", b)):
        d = cg.dims(v)
        batch = cg.rank(v) - 2
        mat_size = product(d[-2:])
        strides = []
        for kk in range(len(batch_dims)):
            j = kk - (len(batch_dims) - batch)
            if j < 0:
                strides.append("0")
            else:
                s = cg.uid(f"bs{name}")
                w(f"{s} = 0 if {d[j]} == 1 else {product(d[j + 1:-2] + [mat_size])}")
                strides.append(s)
        ops[name] = Operand(cg.array(v), strides)
    ops["out"] = Operand(target, [product(out_dims[kk + 1:]) for kk in range(len(batch_dims))])
    return ops


def emit_matmul(cg, g) -> None:
    w = cg.body
    root = cg.instrs[g.root]
    a, b = root.inputs
    out = root.outputs[0]
    ta, tb = root.attrs["transpose_a"], root.attrs["transpose_b"]
    target = product_target(cg, w, g, out)
    cg.flat[out] = target
    ra, rb = cg.rank(a), cg.rank(b)
    da, db, do = cg.dims(a), cg.dims(b), cg.dims(out)
    m, n = do[-2], do[-1]
    k = da[-2] if ta else da[-1]
    floating = cg.dtype(out).is_floating

    def mat(arr, rows, cols, offset, transpose):
        view = f"{arr}[{offset}:{offset} + {rows} * {cols}].reshape(({rows}, {cols}))"
        return view + (".T" if transpose else "")

    row_keys = [(a, ra - 1)] if ta else [(a, j) for j in range(ra - 1)]
    if floating and rb == 2 and (ra == 2 or not ta) and split_product(cg, g, target, row_keys, n, k,
                                                                     (a, ra - 2 if ta else ra - 1)):
        return
    if floating and ra == 2 and rb == 2:
        A = mat(cg.array(a), da[0], da[1], "0", ta)
        B = mat(cg.array(b), db[0], db[1], "0", tb)
        w(f"np.dot({A}, {B}, {target}.reshape(({m}, {n})))")
    elif floating and rb == 2 and not ta:
        rows = product(da[:-1])
        A = f"{cg.array(a)}.reshape(({rows}, {da[-1]}))"
        B = mat(cg.array(b), db[0], db[1], "0", tb)
        w(f"np.dot({A}, {B}, {target}.reshape(({rows}, {n})))")
    else:
        # batched (with broadcast batch dims) or integer: one product per batch element
        batch_dims = do[:-2]
        ops = matmul_batch_operands(cg, w, a, b, do, target)

        def body(w, off):
            if floating:
                A = mat(cg.array(a), da[-2], da[-1], off["a"], ta)
                B = mat(cg.array(b), db[-2], db[-1], off["b"], tb)
                w(f"np.dot({A}, {B}, {target}[{off['out']}:{off['out']} + {m} * {n}].reshape(({m}, {n})))")
            else:
                _integer_matmul(cg, w, a, b, target, off, m, n, k, da, db, ta, tb)

        nest(cg, w, batch_dims, ops, body)
    epilogue = [i for i in g.members if i != g.root]
    if epilogue:
        emit_members_over(cg, w, epilogue, cg.instrs[epilogue[-1]].outputs[0], set(g.outputs))


# A product with few rows (a GEMV at batch 1) runs as graphc's own loops (gemm.py), in parts
# of its columns that the driver may hand to the CPU pool (parallel.py): BLAS runs such a
# product on one thread, and splitting it also splits B over two cores' caches. Measured on
# the 2-core dev machine (benchmarks/NOTES.md, "Products split by columns").
# Fewer columns than SPLIT_COLUMNS run as the same loops, whole, when a row holds at least
# WHOLE_MACS multiply-adds: a BLAS call's own cost was most of W9's logits layer (1x256 by
# 256x10 with its bias: 1.28 µs through np.dot, 1.05 µs in these loops). Smaller products
# keep np.dot, which compiles faster (with every narrow product in these loops, the fuzzers'
# tiny graphs took 382 s against 355 s).
SPLIT_ROWS = 16       # at most this many rows
SPLIT_COLUMNS = 32    # at least this many columns (a literal) to split
WHOLE_MACS = 1024     # columns x k (literals) for a narrow product to run whole
MACS_PER_WORK = 16    # multiply-adds that cost about as much as one element of a loop


def split_product(cg, g, target: str, row_keys, n: str, k: str, k_dim) -> bool:
    """Emit the product of the matmul group ``g`` (2-D B, A's dims ``row_keys`` flattened into
    rows) with its epilogue row by row, if it has few rows and the epilogue allows; else emit
    nothing and return False. With at least SPLIT_COLUMNS columns it is split by columns
    (``split_bounds``), with fewer it runs whole (if large enough: WHOLE_MACS). Where the row count is
    a size parameter, the kernel keeps BLAS and records ``cg.few_rows``: the codegen then
    emits this form again as a variant (``assume_few_rows``) that the driver calls for
    bindings with few rows (an inference at batch 1 of a model whose batch dim is None)."""
    root = cg.instrs[g.root]
    a, b = root.inputs
    out = root.outputs[0]
    ta, tb = root.attrs["transpose_a"], root.attrs["transpose_b"]
    n_lit = static_int(n)
    if cg.target != "cpu" or n_lit is None or (ta and tb):
        return False
    split = n_lit >= SPLIT_COLUMNS
    if split and any(key[0] == "scratch" for key in cg.params):
        return False
    k_lit = static_int(k)
    if not split and (k_lit is None or n_lit * k_lit < WHOLE_MACS):
        return False
    from .direct_conv import row_epilogue, row_operands  # (here: a product that declined never loads them)
    from .gemm import gemm
    if len(g.members) > 1 and row_operands(cg, g) is None:
        return False
    row_lits = [cg.types[v].shape[j] for v, j in row_keys]  # (None where a size parameter)
    rows_lit = None if None in row_lits else int(np.prod(row_lits, dtype=np.int64))
    if rows_lit is None and not cg.assume_few_rows:
        cg.few_rows = (tuple(row_keys), SPLIT_ROWS)
        return False
    if rows_lit is not None and rows_lit > SPLIT_ROWS:
        return False
    # parts meet at a cache line of columns: a line of C written by two threads costs more
    # than the split saves (parallel.part_bound; planned buffers start on a line)
    if split:
        lo, hi = cg.split_bounds([(out, cg.rank(out) - 1)], out, [k_dim], MACS_PER_WORK,
                                 grain=max(1, 64 // cg.dtype(out).np.itemsize))
    else:
        lo, hi = "0", str(n_lit)
    row_done = row_epilogue(cg, g, target, n, shift=lo)
    w = cg.body
    part_b, part_c = cg.uid("part"), cg.uid("part")
    w(f"{part_b} = {cg.array(b)}[{lo} * {k if tb else 1}:]")  # column lo of B: a row of B if transposed
    w(f"{part_c} = {target}[{lo}:]")
    rows = str(rows_lit) if rows_lit is not None else f"({product([cg.dim(v, j) for v, j in row_keys])})"
    gemm(cg, w, cg.dtype(out), cg.array(a), "0", ta, part_b, "0", tb, part_c, "0", rows, n, k,
         [(b, 0), (b, 1)], row_done, columns=("0", f"({hi} - {lo})"))
    return True


def _integer_matmul(cg, w, a, b, target, off, m, n, k, da, db, ta, tb):
    A, B = cg.array(a), cg.array(b)
    i, j, kk = cg.uid("mi"), cg.uid("mj"), cg.uid("mk")
    acc = cg.uid("macc")
    t = f"np.{cg.dtype(a).np.name}"
    with w.block(f"for {i} in range({m}):"):
        with w.block(f"for {j} in range({n}):"):
            w(f"{acc} = {t}(0)")
            a_idx = f"{off['a']} + {kk} * {da[-1]} + {i}" if ta else f"{off['a']} + {i} * {da[-1]} + {kk}"
            b_idx = f"{off['b']} + {j} * {db[-1]} + {kk}" if tb else f"{off['b']} + {kk} * {db[-1]} + {j}"
            with w.block(f"for {kk} in range({k}):"):
                w(f"{acc} = {t}({acc} + {A}[{a_idx}] * {B}[{b_idx}])")
            w(f"{target}[{off['out']} + {i} * {n} + {j}] = {acc}")


# --- convolution --------------------------------------------------------------------------------------
def emit_conv(cg, g) -> None:
    """On the CPU backend, the batch in parts on the pool with the epilogue on each finished
    output pixel: convolutions with few input channels and static sizes in the direct form
    (direct_conv.py), others as im2col + BLAS a block of images at a time (``_conv_by_images``).
    Elsewhere, or where the epilogue cannot run pixel by pixel: the direct form whole, or
    im2col of every image into scratch, then BLAS, then the epilogue."""
    from .direct_conv import MAX_OUTPUTS_WITH_BLAS, direct_conv, direct_conv_fits, row_epilogue
    from .ops import im2col
    w = cg.body
    root = cg.instrs[g.root]
    x, f = root.inputs
    out = root.outputs[0]
    df = cg.dims(f)
    epilogue = [i for i in g.members if i != g.root]
    direct = direct_conv_fits(cg, root, x, f, MAX_OUTPUTS_WITH_BLAS)
    if cg.target == "cpu" and not any(k[0] == "scratch" for k in cg.params):
        # the convolution's own value is stored only if it leaves the group: else the
        # epilogue reads it where it was computed (no scratch, which would block the split)
        target = cg.define_output(out, w) if out in g.outputs else None
        row_done = row_epilogue(cg, g, target, df[3]) if epilogue else None
        if row_done is not None or not epilogue:
            if direct:
                direct_conv(cg, w, root, x, f, target, row_done, split=True)
                return
            if _conv_by_images(cg, w, root, x, f, target, row_done):
                return
    target = product_target(cg, w, g, out)
    cg.flat[out] = target
    if direct:
        row_done = row_epilogue(cg, g, target, df[3])
        direct_conv(cg, w, root, x, f, target, row_done)
        if row_done is None and epilogue:
            emit_members_over(cg, w, epilogue, cg.instrs[epilogue[-1]].outputs[0], set(g.outputs))
        return
    cols, rows, width = im2col(cg, w, root, x, f)
    w(f"np.dot({cols}.reshape(({rows}, {width})), {cg.array(f)}.reshape(({width}, {df[3]})), "
      f"{target}.reshape(({rows}, {df[3]})))")
    if epilogue:
        emit_members_over(cg, w, epilogue, cg.instrs[epilogue[-1]].outputs[0], set(g.outputs))


def _conv_by_images(cg, w, root, x, f, target, row_done) -> bool:
    """im2col + BLAS a block of images at a time, the blocks in parts on the CPU pool, the
    epilogue on each block's rows while they are in cache; False (nothing emitted) unless the
    sizes past the batch are literals. Whole, LeNet's conv2 wrote 3.8 MB of patches to
    memory and read them back; a block's patches (ops.FILTER_GRADIENT_CHUNK elements) stay
    in L2, in the part's own array (``part_buffer``), as does the block's product where the
    convolution's value does not leave the group (``target`` None)."""
    from .ops import FILTER_GRADIENT_CHUNK, _im2col_rows, conv_geometry
    a = root.attrs
    out = root.outputs[0]
    kh, kw, c, o = cg.dims(f)
    geo = conv_geometry(cg, w, x, (kh, kw), a["strides"], a["dilations"], a["padding"], out)
    static = [geo["OH"], geo["OW"], kh, kw, c, o]
    if not all(str(d).isdigit() for d in static):
        return False
    pixels, width = int(geo["OH"]) * int(geo["OW"]), int(kh) * int(kw) * int(c)
    per = max(1, FILTER_GRADIENT_CHUNK // (pixels * width))
    lo, hi = cg.split_bounds([(out, 0)], out, [(f, 0), (f, 1), (f, 2)], MACS_PER_WORK, grain=per)
    blk, n0, r, xblock = cg.uid("blk"), cg.uid("n0"), cg.uid("r"), cg.uid("xblock")
    image = f"({geo['H']} * {geo['W']} * {geo['C']})"
    cols = cg.part_buffer(w, per * pixels * width, cg.dtype(x))
    block = target if target is not None else cg.part_buffer(w, per * pixels * int(o), cg.dtype(out))
    with w.block(f"for {blk} in range(0, {hi} - {lo}, {per}):"):
        w(f"{n0} = {lo} + {blk}")
        w(f"n1 = min({n0} + {per}, {hi})")
        # the block's images from 0: indices a loop from a run-time start computes may be
        # negative for all LLVM knows, and numba's wraparound check then keeps the copies scalar
        w(f"{xblock} = {cg.array(x)}[{n0} * {image}:]")
        _im2col_rows(cg, w, root, x, geo, (kh, kw), cols, "0", f"(n1 - {n0}) * {geo['OH']}", X=xblock)
        w(f"m = (n1 - {n0}) * {pixels}")
        first = "0" if target is None else f"{n0} * {pixels * int(o)}"
        w(f"np.dot({cols}[:m * {width}].reshape((m, {width})), {cg.array(f)}.reshape(({width}, {o})), "
          f"{block}[{first}:{first} + m * {o}].reshape((m, {o})))")
        if row_done is not None:
            with w.block(f"for {r} in range({n0} * {pixels}, n1 * {pixels}):"):
                if target is None:
                    row_done(w, r, "0", str(o),
                             root=lambda col: f"{block}[({r} - {n0} * {pixels}) * {o} + {col}]")
                else:
                    row_done(w, r, "0", str(o))
    return True


def emit_op_kernel(cg, g) -> None:
    from .ops import OP_KERNELS, missing_kernel
    (i,) = g.members
    ins = cg.instrs[i]
    emitter = OP_KERNELS.get(ins.op)
    if emitter is None:
        raise CompileError(missing_kernel("CPU", ins))
    emitter(cg, cg.body, i, ins)


GROUP_EMITTERS = {
    "elementwise": emit_elementwise,
    "reduce": emit_reduce,
    "matmul": emit_matmul,
    "conv": emit_conv,
    "op": emit_op_kernel,
}

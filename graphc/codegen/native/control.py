"""Control flow in a native library: ``cond`` and ``while_loop`` as functions of the library's
one numba module, with no Python, no allocation and no calls out of it.

The CPU's compiled loops (cpu/loops.py) are the model: the same stages and bodies
(codegen/control_flow.py: ``split_stages``, ``body_program``, ``split_invariant``), the
same loop (run the hoisted part once; then evaluate the cond, store the history row, run
the body, swap the loop variables). What differs is the calling convention, which is the
native module's (``NativeModule``): a function writes its results into arrays its caller
passes, every buffer is a workspace region sized from the input dims, and an error is a
returned number. So a loop keeps two regions per loop variable and swaps them, and a
history is a region of as many rows as the input dims decide (dims.py: ``trip_count``) or
bound (``maximum_iterations``; the loop then stores its trip count for the history's
readers).

* ``staged_function``: a Program with control flow, stage by stage; each value that crosses
  from one step to the next has a region of its own.
* ``loop_function``: a ``while_loop``.
* ``cond_function``: a ``cond``: only the taken branch runs; both write the same outputs,
  so both must return the same dims (dims.py: ``control_dims``).
"""
from __future__ import annotations

from ..control_flow import body_program, settings_of, split_invariant, split_stages
from ..emit.loops import SourceWriter
from .dims import Aff, Dims, NativeError, describe, render

INT64_MAX = 9223372036854775807


# --- functions -------------------------------------------------------------------------------------------------
def _copy(w: SourceWriter, dst: str, src: str, count: str, dst_at: str = "") -> None:
    with w.block(f"for q in range({count}):"):
        w(f"{dst}[{dst_at + ' + ' if dst_at else ''}q] = {src}[q]")


def _check(w: SourceWriter, call: str) -> None:
    w(f"rc = {call}")
    with w.block("if rc != 0:"):
        w("return rc")


def staged_function(module, program, dims: Dims, label: str) -> str:
    """A Program with control flow: its stages' plain Programs and control-flow instrs in
    order, each value between them in a region of its own; the fetches are copied out."""
    w = SourceWriter(1)
    env = {v: f"F{j}" for j, v in enumerate(program.feeds)}
    used = set(program.fetches) | {v for ins in program.instrs for v in ins.inputs}

    def regions_for(values, what: str) -> list:
        names = []
        for v in values:
            if v in dims.unknown:  # a loop's history nobody reads: nothing to store
                names.append(None)
                continue
            _, src = module.value_region(f"{label or 'program'}: {what} %{v}", program.types[v].dtype.np,
                                         dims.of(v))
            w(f"x{v} = {src}")
            env[v] = f"x{v}"
            names.append(f"x{v}")
        return names

    for stage in split_stages(program):
        if stage.program is not None:
            sub = stage.program
            scalars = {j: dims.scalar(v) for j, v in enumerate(sub.feeds)}
            name, _ = module.function(sub, [dims.of(v) for v in sub.feeds], label, scalars)
            outs = regions_for(sub.fetches, "value")
            _check(w, module.call(name, [env[v] for v in sub.feeds], outs))
        for i in stage.control:
            ins = program.instrs[i]
            make = loop_function if ins.op == "while_loop" else cond_function
            name, live = make(module, dims, ins, used)
            outs = regions_for([v for v, keep in zip(ins.outputs, live) if keep], "value")
            _check(w, module.call(name, [env[v] for v in ins.inputs], outs))
    for j, v in enumerate(program.fetches):
        _copy(w, f"O{j}", env[v], module.count(dims.of(v)))
    w("return 0")
    name = module.name("staged")
    module.add_function(name, len(program.feeds), len(program.fetches), w)
    return name


def cond_function(module, dims: Dims, ins, used):
    """``fn(pred, captures.., outputs.., ctx)``: runs only the taken branch's function, which
    writes the outputs. Returns (its name, which outputs it takes: all)."""
    settings = settings_of(dims.program)
    captures = ins.inputs[1:]
    cap_dims = [dims.of(v) for v in captures]
    scalars = {j: dims.scalar(v) for j, v in enumerate(captures)}
    branches = [module.function(body_program(ins.attrs[k], settings), cap_dims, ins.attrs[k].label, scalars)[0]
                for k in ("then", "else")]
    C = [f"F{j}" for j in range(1, len(ins.inputs))]
    O = [f"O{j}" for j in range(len(ins.outputs))]
    w = SourceWriter(1)
    with w.block("if F0[0]:"):
        w(f"rc = {module.call(branches[0], C, O)}")
    with w.block("else:"):
        w(f"rc = {module.call(branches[1], C, O)}")
    w("return rc")
    name = module.name("cond")
    module.add_function(name, len(ins.inputs), len(ins.outputs), w)
    return name, [True] * len(ins.outputs)


def loop_function(module, dims: Dims, ins, used):
    """``fn(vars.., captures.. [, limit], finals.., trips [, histories..], ctx)``: the CPU's
    LoopFunction over workspace regions. Returns (its name, which outputs it takes: a
    history nobody reads (``used``: the values something reads) is neither sized nor stored)."""
    attrs = ins.attrs
    settings = settings_of(dims.program)
    n, has_limit = attrs["n_vars"], attrs["has_limit"]
    nc = len(ins.inputs) - n - (1 if has_limit else 0)
    label = attrs["body"].label
    var_dims = [dims.of(v) for v in ins.inputs[:n]]
    cap_dims = [dims.of(v) for v in ins.inputs[n:n + nc]]
    scalars = {n + j: dims.scalar(v) for j, v in enumerate(ins.inputs[n:n + nc])}
    hoisted, body = split_invariant(body_program(attrs["body"], settings), n, settings)
    hoisted_name, hoisted_dims = None, []
    if hoisted is not None:
        hoisted_name, hoisted_dims = module.function(hoisted, cap_dims, label,
                                                     {j - n: s for j, s in scalars.items()})
    cond_name, _ = module.function(body_program(attrs["cond"], settings), var_dims + cap_dims,
                                   attrs["cond"].label, scalars)
    body_name, body_dims = module.function(body, var_dims + cap_dims + hoisted_dims, label, scalars)
    for k, (a, b) in enumerate(zip(var_dims, body_dims)):
        if tuple(a) != tuple(b):
            raise NativeError(f"{describe(ins)}: its body returns loop variable {k} with shape {dims.text(b)}; it "
                              f"enters with {dims.text(a)}. A native loop keeps each loop variable's shape (its "
                              "buffers are sized before the run)")
    histories = list(ins.outputs[n + 1:])  # the history (entering values), then the stacked body values
    n_history = n if attrs.get("history") else 0
    store = [v in used and v not in dims.unknown for v in histories]
    live = [True] * (n + 1) + store

    t = [dims.program.types[v].dtype.np for v in ins.inputs[:n]]
    counts = [module.count(d) for d in var_dims]
    V = [f"A{k}" for k in range(n)]
    C = [f"F{n + j}" for j in range(nc)]
    w = SourceWriter(1)
    # two regions per loop variable: the body reads one and writes the other, then they swap
    for k in range(n):
        for ab in "AB":
            _, src = module.value_region(f"{label}: loop variable {k} ({ab})", t[k], var_dims[k])
            w(f"{ab}{k} = {src}")
        _copy(w, f"A{k}", f"F{k}", counts[k])
    S = []  # the body's stacked values, computed each iteration and then copied into their rows
    for j, d in enumerate(body_dims[n:]):
        _, src = module.value_region(f"{label}: stacked value {j}", body.types[body.fetches[n + j]].dtype.np, d)
        w(f"S{j} = {src}")
        S.append(f"S{j}")
    Z = []
    for j, d in enumerate(hoisted_dims):
        _, src = module.value_region(f"{label}: hoisted value {j}", hoisted.types[hoisted.fetches[j]].dtype.np, d)
        w(f"Z{j} = {src}")
        Z.append(f"Z{j}")
    if hoisted_name is not None:  # what reads no loop variable runs once, before the loop
        _check(w, module.call(hoisted_name, C, Z))
    _, src = module.value_region(f"{label}: predicate", "bool", ())
    w(f"P = {src}")
    w(f"limit = np.int64(F{n + nc}[0])" if has_limit else f"limit = np.int64({INT64_MAX})")
    out_final = [f"O{k}" for k in range(n)]
    out_trips = f"O{n}"
    H, slot = [], n + 1
    for k, keep in enumerate(store):
        H.append(f"O{slot}" if keep else None)
        slot += 1 if keep else 0
    run_symbol = None
    if any(store):
        rows = dims.of(histories[store.index(True)])[0]
        if isinstance(rows, Aff) and rows.k >= dims.space.nsym:
            run_symbol = module.sym_names[rows.k]
        w(f"capacity = np.int64({render(dims.space.bound(rows), module.sym_names)})")
        module.raises.append((describe(ins), "ran more iterations than its history holds ({} rows, as the input "
                                           "dims decide): the trip count did not follow the input dims", 1))
        overflow = len(module.raises)
    w("trips = np.int64(0)")
    with w.block("while trips < limit:"):
        _check(w, module.call(cond_name, V + C, ["P"]))
        with w.block("if not P[0]:"):
            w("break")
        if any(store):
            with w.block("if trips >= capacity:"):
                w("E[0] = capacity")
                w(f"return {overflow}")
            for k, h in enumerate(H[:n_history]):
                if h is not None:
                    _copy(w, h, f"A{k}", counts[k], f"trips * {counts[k]}")
        _check(w, module.call(body_name, V + C + Z, [f"B{k}" for k in range(n)] + S))
        for j, h in enumerate(H[n_history:]):
            if h is not None:
                count = module.count(body_dims[n + j])
                _copy(w, h, f"S{j}", count, f"trips * {count}")
        for k in range(n):  # the body's outputs are the next iteration's inputs
            w(f"A{k}, B{k} = B{k}, A{k}")
        w("trips += 1")
    for k in range(n):
        _copy(w, out_final[k], f"A{k}", counts[k])
    w(f"{out_trips}[0] = trips")
    if run_symbol is not None:  # the history's rows, for every function that reads it
        w(f"{run_symbol} = trips")
    w("return 0")
    name = module.name("loop")
    module.add_function(name, len(ins.inputs), sum(live), w)
    return name, live

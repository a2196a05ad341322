"""What each kernel group computes on a GPU.

Elementwise groups reuse the CPU emitter with a grid-stride loop. Reductions are
block-level: one block per output element (grid-stride over outputs), each thread
accumulates a strided share of the reduced elements, then a shared-memory tree combines
them; the elementwise prologue runs as elements are loaded, the output-space epilogue on
thread 0, the row epilogue (layer norm, softmax) on every thread over the row again.
matmul is a 16x16 shared-memory tiled product; conv2d a direct per-output-element loop.
Both run their elementwise epilogue on the element each thread produced.
"""
from __future__ import annotations

from ...errors import CompileError
from ...optimizer.program import VARIABLE_WRITES
from ..emit.groups import (
    combine, contribution, data_inputs, emit_members_over, emit_scalar_members, finish, init_literal, matmul_batch_operands,
    reduce_group_roles,
)
from ..emit.loops import Operand, decode_index, decode_offsets, product, strides_for
from .codegen import block_sizes

def _nb_type(dtype) -> str:
    return "nb.boolean" if dtype.is_bool else f"nb.{dtype.np.name}"


# --- elementwise ------------------------------------------------------------------------------------------
def emit_elementwise(cg, g) -> None:
    space = cg.instrs[g.members[-1]].outputs[0]
    cg.launch = ("flat", space)
    emit_members_over(cg, cg.body, g.members, space, set(g.outputs))


# --- reductions ------------------------------------------------------------------------------------------
def emit_reduce(cg, g) -> None:
    w = cg.body
    instrs = cg.instrs
    root = instrs[g.root]
    op = root.op
    x, out = root.inputs[0], root.outputs[0]
    dtype = cg.dtype(out)
    axes = tuple(root.attrs["axes"])
    rank = cg.rank(x)
    kept = [k for k in range(rank) if k not in axes]
    dims = cg.dims(x)
    n_out, n_red = cg.size(out), f"({product([dims[k] for k in axes]) if axes else '1'})"
    prologue, post, row = reduce_group_roles(cg, g)
    stores = set(g.outputs)
    cg.launch = ("rows", out)
    produced = {v for i in prologue + row for v in instrs[i].outputs}
    row_values = {out} | {v for i in post for v in instrs[i].outputs}  # per-row scalars, never loaded
    reads = [u for i in prologue + row for u in data_inputs(instrs[i])] + [x]
    external = [u for u in dict.fromkeys(reads)
                if u not in produced and u not in row_values and not cg.is_literal(u)]
    operands = {u: Operand(cg.array(u), strides_for(cg, w, u, x, cg.mode)) for u in external}
    x_strides = [product(dims[k + 1:]) for k in range(rank)]
    # variable writes store into their variable (emit_scalar_members), not an output array
    targets = {v: cg.define_output(v, w) for v in sorted(stores)
               if v in produced and instrs[cg.producer[v]].op not in VARIABLE_WRITES}

    sm, t, o = cg.uid("sm"), cg.uid("tid"), cg.uid("o")  # not "t": member values are t<id>
    threads = block_sizes().reduce_threads
    w(f"{sm} = cuda.shared.array({threads}, {_nb_type(dtype)})")
    w(f"{t} = cuda.threadIdx.x")

    def row_offsets(w, r_name):
        """Offsets of every x-space operand (and of x-space stores, under "at") at row o,
        reduced element r."""
        kept_ops = {u: Operand("", [op_.strides[k] for k in kept]) for u, op_ in operands.items()}
        kept_ops["at"] = Operand("", [x_strides[k] for k in kept])
        red_ops = {u: Operand("", [op_.strides[k] for k in axes]) for u, op_ in operands.items()}
        red_ops["at"] = Operand("", [x_strides[k] for k in axes])
        base = decode_offsets(cg, w, [dims[k] for k in kept], kept_ops, o)
        step = decode_offsets(cg, w, [dims[k] for k in axes], red_ops, r_name)
        return {u: f"({base[u]}) + ({step[u]})" for u in kept_ops}

    def pass_over_row(members, on_value=None, known=None, store=False, applied=()):
        r_name = cg.uid("j")
        with w.block(f"for {r_name} in range({t}, {n_red}, cuda.blockDim.x):"):
            offsets = row_offsets(w, r_name)
            scalars = dict(known or {})
            for u in external:
                if u in scalars:
                    continue
                w(f"x{cg.lid(u)} = {operands[u].name}[{offsets[u]}]")
                scalars[u] = f"x{cg.lid(u)}"
            emit_scalar_members(cg, w, members, scalars, targets if store else None, offsets["at"], applied)
            if on_value is not None:
                on_value(scalars.get(x, cg.literals.get(x)))

    def block_combine(how):
        w(f"{sm}[{t}] = acc")
        w("cuda.syncthreads()")
        s = cg.uid("s")
        w(f"{s} = {threads // 2}")
        with w.block(f"while {s} > 0:"):
            with w.block(f"if {t} < {s}:"):
                w(f"{sm}[{t}] = {how(f'{sm}[{t}]', f'{sm}[{t} + {s}]')}")
            w("cuda.syncthreads()")
            w(f"{s} //= 2")
        w(f"acc = {sm}[0]")
        w("cuda.syncthreads()")  # every thread has read sm[0] before the next row reuses sm

    with w.block(f"for {o} in range(cuda.blockIdx.x, {n_out}, cuda.gridDim.x):"):
        w(f"acc = {init_literal(op, dtype)}")
        pass_over_row(prologue, on_value=lambda v: w(f"acc = {combine(op, 'acc', contribution(cg, root, v, dtype), dtype)}"),
                      store=True)
        block_combine(lambda a, b: combine(op, a, b, dtype))
        if op == "reduce_logsumexp":
            zero = f"np.{dtype.np.name}(0)"
            w(f"shift = acc if math.isfinite(acc) else {zero}")
            w(f"acc = {zero}")
            pass_over_row(prologue, on_value=lambda v: w(f"acc += math.exp({v} - shift)"))
            block_combine(lambda a, b: f"{a} + {b}")
            w("acc = math.log(acc) + shift")
        elif finish(cg, root, "acc", n_red, dtype) is not None:
            w(f"acc = {finish(cg, root, 'acc', n_red, dtype)}")
        if out in stores or post:
            with w.block(f"if {t} == 0:"):
                if out in stores:
                    w(f"{cg.define_output(out, w)}[{o}] = acc")
                if post:
                    emit_members_over(cg, w, post, instrs[post[-1]].outputs[0], stores, known={out: "acc"}, at=o)
        if row:
            # every thread recomputes the per-row scalars the row epilogue needs (no stores;
            # a variable write is read back, so thread 0's store must be visible first)
            if any(instrs[i].op in VARIABLE_WRITES for i in post):
                w("cuda.syncthreads()")
            known = {out: "acc"}
            post_external = [u for i in post for u in data_inputs(instrs[i])
                             if u not in row_values and not cg.is_literal(u)]
            if post_external:
                ops = {u: Operand(cg.array(u), strides_for(cg, w, u, out, cg.mode)) for u in post_external}
                offs = decode_offsets(cg, w, cg.dims(out), ops, o)
                for u in dict.fromkeys(post_external):
                    w(f"x{cg.lid(u)} = {ops[u].name}[{offs[u]}]")
                    known[u] = f"x{cg.lid(u)}"
            emit_scalar_members(cg, w, post, known, at=o)
            pass_over_row(prologue + row, known=known, store=True, applied=set(prologue))
        w("cuda.syncthreads()")


# --- matmul ----------------------------------------------------------------------------------------------
def emit_matmul(cg, g) -> None:
    w = cg.body
    root = cg.instrs[g.root]
    a, b = root.inputs
    out = root.outputs[0]
    ta, tb = root.attrs["transpose_a"], root.attrs["transpose_b"]
    dtype = cg.dtype(out)
    da, do = cg.dims(a), cg.dims(out)
    m, n = do[-2], do[-1]
    k = da[-2] if ta else da[-1]
    A, B = cg.array(a), cg.array(b)
    batch_dims = do[:-2]
    cg.launch = ("tiles", out)
    ops = matmul_batch_operands(cg, w, a, b, do, "")
    t = _nb_type(dtype)
    zero = f"np.{dtype.np.name}(0)"
    TILE = block_sizes().tile
    w(f"sa = cuda.shared.array(({TILE}, {TILE}), {t})")
    w(f"sb = cuda.shared.array(({TILE}, {TILE}), {t})")
    w("tx = cuda.threadIdx.x")
    w("ty = cuda.threadIdx.y")
    batch = product(batch_dims) if batch_dims else "1"
    with w.block(f"for bz in range(cuda.blockIdx.z, {batch}, cuda.gridDim.z):"):
        off = decode_offsets(cg, w, batch_dims, ops, "bz")
        with w.block(f"for by in range(cuda.blockIdx.y, ({m} + {TILE - 1}) // {TILE}, cuda.gridDim.y):"):
            with w.block(f"for bx in range(cuda.blockIdx.x, ({n} + {TILE - 1}) // {TILE}, cuda.gridDim.x):"):
                w(f"row = by * {TILE} + ty")
                w(f"col = bx * {TILE} + tx")
                w(f"acc = {zero}")
                with w.block(f"for kt in range(({k} + {TILE - 1}) // {TILE}):"):
                    w(f"ka = kt * {TILE} + tx")
                    a_at = f"{off['a']} + ka * {m} + row" if ta else f"{off['a']} + row * {k} + ka"
                    w(f"sa[ty, tx] = {A}[{a_at}] if (row < {m} and ka < {k}) else {zero}")
                    w(f"kb = kt * {TILE} + ty")
                    b_at = f"{off['b']} + col * {k} + kb" if tb else f"{off['b']} + kb * {n} + col"
                    w(f"sb[ty, tx] = {B}[{b_at}] if (kb < {k} and col < {n}) else {zero}")
                    w("cuda.syncthreads()")
                    with w.block(f"for kk in range({TILE}):"):
                        w(f"acc = np.{dtype.np.name}(acc + sa[ty, kk] * sb[kk, tx])")
                    w("cuda.syncthreads()")
                with w.block(f"if row < {m} and col < {n}:"):
                    w(f"at = {off['out']} + row * {n} + col")
                    _store_and_epilogue(cg, w, g, out, "acc", "at")


def _store_and_epilogue(cg, w, g, out: int, value: str, at: str) -> None:
    """The root's value for element ``at`` of its output: stored if needed outside the
    kernel, then the group's elementwise epilogue on that element."""
    if out in g.outputs:
        w(f"{cg.define_output(out, w)}[{at}] = {value}")
    epilogue = [i for i in g.members if i != g.root]
    if epilogue:
        emit_members_over(cg, w, epilogue, cg.instrs[epilogue[-1]].outputs[0], set(g.outputs),
                          known={out: value}, at=at)


# --- convolution ------------------------------------------------------------------------------------------
def emit_conv(cg, g) -> None:
    from ..emit.ops import conv_geometry, input_coordinate
    w = cg.body
    root = cg.instrs[g.root]
    x, f = root.inputs
    out = root.outputs[0]
    a = root.attrs
    kh, kw, c_in, c_out = cg.dims(f)
    geo = conv_geometry(cg, w, x, (kh, kw), a["strides"], a["dilations"], a["padding"], out)
    sh, sw = a["strides"]
    dh, dw = a["dilations"]
    X, F = cg.array(x), cg.array(f)
    dtype = cg.dtype(out)
    cg.launch = ("flat", out)
    idx = cg.uid("i")
    with w.block(cg.parallel_loop(idx, cg.size(out))):
        decode_index(cg, w, [geo["N"], geo["OH"], geo["OW"], c_out], idx, ["nn", "oh", "ow", "oc"])
        w(f"acc = np.{dtype.np.name}(0)")
        with w.block(f"for p in range({kh}):"):
            input_coordinate(w, "ih", "oh", "p", sh, dh, geo["PT"], geo["H"])
            with w.block(f"for q in range({kw}):"):
                input_coordinate(w, "iw", "ow", "q", sw, dw, geo["PL"], geo["W"])
                w(f"src = ((nn * {geo['H']} + ih) * {geo['W']} + iw) * {c_in}")
                w(f"tap = (p * {kw} + q) * {c_in}")
                with w.block(f"for c in range({c_in}):"):
                    w(f"acc = np.{dtype.np.name}(acc + {X}[src + c] * {F}[(tap + c) * {c_out} + oc])")
        _store_and_epilogue(cg, w, g, out, "acc", idx)


def emit_op_kernel(cg, g) -> None:
    from . import ops
    ins = cg.instrs[g.members[0]]
    emitter = ops.OP_KERNELS.get(ins.op)
    if emitter is None:
        from ..emit.ops import missing_kernel
        raise CompileError(missing_kernel("CUDA", ins))
    cg.launch = ("flat", ins.outputs[0]) if ins.outputs else ("flat", ins.inputs[0])
    emitter(cg, cg.body, g.members[0], ins)


GROUP_EMITTERS = {
    "elementwise": emit_elementwise,
    "reduce": emit_reduce,
    "matmul": emit_matmul,
    "conv": emit_conv,
    "op": emit_op_kernel,
}

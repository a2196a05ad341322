"""Kernels for ops that are not fused: each emits explicit loops over flat arrays."""
from __future__ import annotations

import contextlib
import math

import numpy as np

from . import scalar
from .groups import emit_members_over
from .loops import Operand, copy_run, nest, product
from ...ops.registry import rule_registrar

OP_KERNELS: dict = {}
kernel = rule_registrar(OP_KERNELS, "CPU kernel")


def missing_kernel(target: str, ins) -> str:
    """The message for an op that ``target`` has no kernel for."""
    origin = f" ('{ins.origin.name}', created at {ins.origin.location})" if ins.origin else ""
    return f"the {target} backend has no kernel for op {ins.op!r}{origin}"


def _t(cg, v) -> str:
    return f"np.{cg.dtype(v).np.name}"


def _axis_split(dims, axis):
    """(outer, length, inner) of a flat array around ``axis``."""
    return product(dims[:axis]), dims[axis], product(dims[axis + 1:])


def _raise(cg, w, i, message, *values):
    """Raise from the kernel; ``message`` has a ``{}`` for each run-time value passed."""
    cg.raise_error(w, i, message, *values)


# --- softmax family --------------------------------------------------------------------------------------
@kernel("softmax", "log_softmax")
def _(cg, w, i, ins):
    x, out = ins.inputs[0], ins.outputs[0]
    X, Y = cg.array(x), cg.define_output(out, w)
    outer, _, inner = _axis_split(cg.dims(x), ins.attrs["axis"])
    length = cg.runtime_dim(x, ins.attrs["axis"])  # a folding loop: see KernelContext.runtime_dim
    t = _t(cg, x)
    l = cg.uid("l")
    with cg.parallel_nest(w, [outer, inner], ["o", "j"]) as (o, j):
        base = f"{o} * {length} * {inner} + {j}"
        w(f"m = {scalar.literal(-np.inf, cg.dtype(x))}")
        with w.block(f"for {l} in range({length}):"):
            w(f"m = rt.max_shift(m, {X}[{base} + {l} * {inner}])")
        w(f"m = m if {cg.call('isfinite', None, 'm')} else {t}(0)")
        w(f"s = {t}(0)")
        with w.block(f"for {l} in range({length}):"):
            if ins.op == "softmax":
                w(f"e = {t}({cg.call('exp', None, f'{X}[{base} + {l} * {inner}] - m')})")
                w(f"{Y}[{base} + {l} * {inner}] = e")
                w("s = rt.fold_add(s, e)")
            else:
                w(f"s = rt.fold_add(s, {t}({cg.call('exp', None, f'{X}[{base} + {l} * {inner}] - m')}))")
        if ins.op == "softmax":
            with w.block(f"for {l} in range({length}):"):
                w(f"{Y}[{base} + {l} * {inner}] = {t}({Y}[{base} + {l} * {inner}] / s)")
        else:
            w(f"ls = {t}({cg.call('log', None, 's')})")
            with w.block(f"for {l} in range({length}):"):
                w(f"{Y}[{base} + {l} * {inner}] = {t}({X}[{base} + {l} * {inner}] - m - ls)")


@kernel("softmax_cross_entropy_with_logits")
def _(cg, w, i, ins):
    labels, logits = ins.inputs
    out = ins.outputs[0]
    axis = ins.attrs["axis"]
    Y = cg.define_output(out, w)
    r = cg.rank(logits)
    dl, dz = cg.dims(labels), cg.dims(logits)
    t = _t(cg, logits)
    # broadcast dims and run-time strides of both operands
    bd = []
    for k in range(r):
        name = cg.uid("bd")
        if k == axis % r:  # the folding loop's extent: see KernelContext.runtime_dim
            w(f"{name} = {cg.call('max', None, cg.runtime_dim(labels, k), cg.runtime_dim(logits, k))}")
        else:
            w(f"{name} = {cg.call('max', None, dl[k], dz[k])}")
        bd.append(name)
    strides = {}
    for key, d in (("l", dl), ("z", dz)):
        strides[key] = []
        for k in range(r):
            s = cg.uid(f"s{key}")
            w(f"{s} = 0 if {d[k]} == 1 else {product(d[k + 1:])}")
            strides[key].append(s)
    rest = [k for k in range(r) if k != axis]
    out_dims = [bd[k] for k in rest]
    ops = {"l": Operand(cg.array(labels), [strides["l"][k] for k in rest]),
           "z": Operand(cg.array(logits), [strides["z"][k] for k in rest]),
           "out": Operand(Y, [product(out_dims[n + 1:]) for n in range(len(rest))])}
    L, Z = cg.array(labels), cg.array(logits)

    def body(w, off):
        l = cg.uid("l")
        sz, sl = strides["z"][axis], strides["l"][axis]
        w(f"m = {scalar.literal(-np.inf, cg.dtype(logits))}")
        with w.block(f"for {l} in range({bd[axis]}):"):
            w(f"m = rt.max_shift(m, {Z}[{off['z']} + {l} * {sz}])")
        w(f"m = m if {cg.call('isfinite', None, 'm')} else {t}(0)")
        w(f"s = {t}(0)")
        with w.block(f"for {l} in range({bd[axis]}):"):
            z = f"{Z}[{off['z']} + {l} * {sz}]"
            w(f"s = rt.fold_add(s, {t}({cg.call('exp', None, f'{z} - m')}))")
        w(f"ls = {t}({cg.call('log', None, 's')})")
        w(f"acc = {t}(0)")
        with w.block(f"for {l} in range({bd[axis]}):"):
            w(f"lab = {L}[{off['l']} + {l} * {sl}]")
            with w.block("if lab != 0:"):
                w(f"acc = rt.fold_add(acc, lab * ({Z}[{off['z']} + {l} * {sz}] - m - ls))")
        w(f"{Y}[{off['out']}] = {t}(-acc)")

    nest(cg, w, out_dims, ops, body)


@kernel("sparse_softmax_cross_entropy_with_logits")
def _(cg, w, i, ins):
    labels, logits = ins.inputs
    out = ins.outputs[0]
    Y, L, Z = cg.define_output(out, w), cg.array(labels), cg.array(logits)
    classes = cg.runtime_dim(logits, -1)  # a folding loop: see KernelContext.runtime_dim
    t = _t(cg, logits)
    c = cg.uid("c")
    with cg.parallel_nest(w, [cg.size(labels)], ["r"]) as (r,):
        w(f"lab = {L}[{r}]")
        with w.block(f"if lab < 0 or lab >= {classes}:"):
            _raise(cg, w, i, "label {} is out of range [0, {})", "lab", classes)
        w(f"base = {r} * {classes}")
        w(f"m = {scalar.literal(-np.inf, cg.dtype(logits))}")
        with w.block(f"for {c} in range({classes}):"):
            w(f"m = rt.max_shift(m, {Z}[base + {c}])")
        w(f"m = m if {cg.call('isfinite', None, 'm')} else {t}(0)")
        w(f"s = {t}(0)")
        with w.block(f"for {c} in range({classes}):"):
            w(f"s = rt.fold_add(s, {t}({cg.call('exp', None, f'{Z}[base + {c}] - m')}))")
        w(f"{Y}[{r}] = {t}((m - {Z}[base + lab]) + {cg.call('log', None, 's')})")  # m - z first: exact for huge logits


@kernel("argmax", "argmin")
def _(cg, w, i, ins):
    x, out = ins.inputs[0], ins.outputs[0]
    X, Y = cg.array(x), cg.define_output(out, w)
    axis = ins.attrs["axis"]
    dims = cg.dims(x)
    if axis is None:
        outer, inner = "1", "1"
        length = f"({product([cg.runtime_dim(x, k) for k in range(len(dims))])})"
    else:
        outer, _, inner = _axis_split(dims, axis)
        length = cg.runtime_dim(x, axis)  # a folding loop: see KernelContext.runtime_dim
    better = ">" if ins.op == "argmax" else "<"
    l = cg.uid("l")
    with w.block(f"if {length} == 0:"):
        _raise(cg, w, i, f"{ins.op} of an empty axis is undefined")
    with cg.parallel_nest(w, [outer, inner], ["o", "j"]) as (o, j):
        base = f"{o} * {length} * {inner} + {j}"
        w(f"best = {X}[{base}]")
        w("at = 0")
        with w.block(f"for {l} in range(1, {length}):"):
            w(f"v = {X}[{base} + {l} * {inner}]")
            # bitwise, not short-circuit: selects instead of hard-to-predict branches
            w(f"take = (best == best) & ((v {better} best) | (v != v))")
            w("best = v if take else best")
            w(f"at = {l} if take else at")
        w(f"{Y}[{o} * {inner} + {j}] = {_t(cg, out)}(at)")


# --- data movement -----------------------------------------------------------------------------------------
@kernel("transpose")
def _(cg, w, i, ins):
    x, out = ins.inputs[0], ins.outputs[0]
    X, Y = cg.array(x), cg.define_output(out, w)
    dx = cg.dims(x)
    perm = ins.attrs["perm"]
    in_strides = [product(dx[k + 1:]) for k in range(len(dx))]
    ops = {"x": Operand(X, [in_strides[p] for p in perm]),
           "y": Operand(Y, [product(cg.dims(out)[k + 1:]) for k in range(len(perm))])}
    nest(cg, w, cg.dims(out), ops, lambda w, off: w(f"{Y}[{off['y']}] = {X}[{off['x']}]"))


def _copy_block(cg, w, src_v, src, dst, axis, base_expr, dst_dims, to_dst: bool, accumulate=False):
    """Copy all of ``src_v`` into ``dst`` at ``base_expr`` along ``axis`` (or back)."""
    ds = cg.dims(src_v)
    src_strides = [product(ds[k + 1:]) for k in range(len(ds))]
    dst_strides = [product(dst_dims[k + 1:]) for k in range(len(dst_dims))]
    ops = {"s": Operand(src, src_strides), "d": Operand(dst, dst_strides)}
    shift = f"{base_expr} * {dst_strides[axis]}"

    def body(w, off):
        d_idx = f"{off['d']} + {shift}"
        if to_dst:
            w(f"{dst}[{d_idx}] = {src}[{off['s']}]")
        else:
            w(f"{src}[{off['s']}] = {dst}[{d_idx}]")

    nest(cg, w, ds, ops, body)


@kernel("concat")
def _(cg, w, i, ins):
    out = ins.outputs[0]
    Y = cg.define_output(out, w)
    axis = ins.attrs["axis"]
    base = cg.uid("base")
    w(f"{base} = 0")
    for v in ins.inputs:
        _copy_block(cg, w, v, cg.array(v), Y, axis, base, cg.dims(out), to_dst=True)
        w(f"{base} += {cg.dim(v, axis)}")


@kernel("split")
def _(cg, w, i, ins):
    x = ins.inputs[0]
    X = cg.array(x)
    axis = ins.attrs["axis"]
    base = cg.uid("base")
    w(f"{base} = 0")
    for v in ins.outputs:
        Y = cg.define_output(v, w)
        _copy_block(cg, w, v, Y, X, axis, base, cg.dims(x), to_dst=False)
        w(f"{base} += {cg.dim(v, axis)}")


@kernel("tile")
def _(cg, w, i, ins):
    x, out = ins.inputs[0], ins.outputs[0]
    X, Y = cg.array(x), cg.define_output(out, w)
    dx, dy = cg.dims(x), cg.dims(out)
    r = len(dx)
    if r == 0:
        w(f"{Y}[0] = {X}[0]")
        return
    with cg.parallel_nest(w, dy, ["ti"] * r) as idx:
        src = " + ".join(f"({idx[k]} % {dx[k]}) * {product(dx[k + 1:])}" for k in range(r))
        dst = " + ".join(f"{idx[k]} * {product(dy[k + 1:])}" for k in range(r))
        w(f"{Y}[{dst}] = {X}[{src}]")


def _reflect(cg, w, idx, before, n, mode):
    """Source index along one axis for an output index of a REFLECT/SYMMETRIC pad."""
    name = cg.uid("src")
    w(f"{name} = {idx} - {before}")
    if mode == "REFLECT":
        w(f"{name} = -{name} if {name} < 0 else {name}")
        w(f"{name} = 2 * ({n} - 1) - {name} if {name} >= {n} else {name}")
    else:
        w(f"{name} = -{name} - 1 if {name} < 0 else {name}")
        w(f"{name} = 2 * {n} - 1 - {name} if {name} >= {n} else {name}")
    return name


@kernel("pad", "pad_grad")
def _(cg, w, i, ins):
    x, out = ins.inputs[0], ins.outputs[0]
    X, Y = cg.array(x), cg.define_output(out, w)
    mode, pads = ins.attrs["mode"], ins.attrs["paddings"]
    big, small = (out, x) if ins.op == "pad" else (x, out)
    db, ds = cg.dims(big), cg.dims(small)
    r = len(db)
    if r == 0:
        w(f"{Y}[0] = {X}[0]")
        return
    if ins.op == "pad" and mode == "CONSTANT":
        cg.prefill(w, out, Y, ins.attrs['constant_values'])
    if ins.op == "pad_grad" and mode != "CONSTANT":
        cg.prefill(w, out, Y, 0)
    if mode == "CONSTANT":
        # walk the small array; its element sits at index + before in the big one
        ops = {"s": Operand(X if ins.op == "pad" else Y, [product(ds[k + 1:]) for k in range(r)]),
               "b": Operand("", [product(db[k + 1:]) for k in range(r)])}
        shift = " + ".join(f"{b} * {product(db[k + 1:])}" for k, (b, _) in enumerate(pads))
        big_arr = Y if ins.op == "pad" else X

        def body(w, off):
            if ins.op == "pad":
                w(f"{big_arr}[{off['b']} + {shift}] = {X}[{off['s']}]")
            else:
                w(f"{Y}[{off['s']}] = {big_arr}[{off['b']} + {shift}]")

        nest(cg, w, ds, ops, body)
        return
    # REFLECT / SYMMETRIC: walk the big array, map each index back into the small one
    with cg.parallel_nest(w, db, ["pi"] * r) as idx:
        srcs = [_reflect(cg, w, idx[k], pads[k][0], ds[k], mode) for k in range(r)]
        big_off = " + ".join(f"{idx[k]} * {product(db[k + 1:])}" for k in range(r))
        small_off = " + ".join(f"{srcs[k]} * {product(ds[k + 1:])}" for k in range(r))
        if ins.op == "pad":
            w(f"{Y}[{big_off}] = {X}[{small_off}]")
        else:
            w(cg.accumulate(Y, small_off, f"{X}[{big_off}]"))


def _slice_plan(cg, w, x, index):
    """Per output dim: (input dim or None, start expr, step expr); plus the base offset of
    dims indexed by an int. Python slice semantics are applied to run-time sizes."""
    dx = cg.dims(x)
    stride_in = [product(dx[k + 1:]) for k in range(len(dx))]
    base_terms, out_axes = [], []
    axis = 0
    for entry in index:
        if entry[0] == "new":
            out_axes.append((None, "0", "0"))
            continue
        if entry[0] == "int":
            pos = cg.uid("pos")
            w(f"{pos} = {entry[1]} + {dx[axis]} if {entry[1]} < 0 else {entry[1]}")
            base_terms.append(f"{pos} * {stride_in[axis]}")
        else:
            _, start, stop, step = entry
            st, sp = cg.uid("start"), cg.uid("step")
            w(f"{st}, {sp} = rt.slice_start_step({dx[axis]}, {start if start is not None else 'None'}, "
              f"{stop if stop is not None else 'None'}, {step if step is not None else 1})")
            out_axes.append((axis, st, sp))
        axis += 1
    for k in range(axis, len(dx)):
        out_axes.append((k, "0", "1"))
    base = " + ".join(base_terms + [f"{st} * {stride_in[a]}" for a, st, _ in out_axes if a is not None]) or "0"
    strides = [("0" if a is None else f"{sp} * {stride_in[a]}") for a, _, sp in out_axes]
    return base, strides


@kernel("strided_slice", "strided_slice_grad")
def _(cg, w, i, ins):
    out = ins.outputs[0]
    Y = cg.define_output(out, w)
    if ins.op == "strided_slice":
        x = ins.inputs[0]
        sliced = out
        X = cg.array(x)
    else:
        g, x = ins.inputs
        sliced = g
        X = cg.array(g)
        cg.prefill(w, out, Y, 0)
    base, strides = _slice_plan(cg, w, x, ins.attrs["index"])
    dsl = cg.dims(sliced)
    ops = {"src": Operand("", strides), "flat": Operand("", [product(dsl[k + 1:]) for k in range(len(dsl))])}

    def body(w, off):
        if ins.op == "strided_slice":
            w(f"{Y}[{off['flat']}] = {X}[{base} + {off['src']}]")
        else:
            w(f"{Y}[{base} + {off['src']}] = {X}[{off['flat']}]")

    nest(cg, w, dsl, ops, body)


@kernel("gather", "scatter_add")
def _(cg, w, i, ins):
    if ins.op == "gather":
        params, indices = ins.inputs
        shape_src = params
    else:
        updates, indices, shape_src = ins.inputs
    out = ins.outputs[0]
    Y = cg.define_output(out, w)
    axis = ins.attrs["axis"]
    outer, size, inner = _axis_split(cg.dims(shape_src), axis)
    I = cg.array(indices)
    n_idx = cg.size(indices)
    if ins.op == "scatter_add":
        cg.prefill(w, out, Y, 0)
    # on a CPU the index is checked once per slice, outside the copy loop, which LLVM then
    # vectorizes; a GPU thread takes one element (its grid covers the copy loop too)
    per_element = cg.target == "cuda"
    dims, names = ([outer, n_idx, inner], ["o", "t", "j"]) if per_element else ([outer, n_idx], ["o", "t"])
    with cg.parallel_nest(w, dims, names) as loop:
        o, t = loop[:2]
        j = loop[2] if per_element else cg.uid("j")
        w(f"ix = {I}[{t}]")
        with w.block(f"if ix < -{size} or ix >= {size}:"):
            _raise(cg, w, i, f"index {{}} is out of range for axis {axis} of size {{}}", "ix", size)
        w(f"ix = ix + {size} if ix < 0 else ix")
        w(f"src = ({o} * {size} + ix) * {inner}")
        w(f"dst = ({o} * {n_idx} + {t}) * {inner}")
        with contextlib.nullcontext() if per_element else w.block(f"for {j} in range({inner}):"):
            if ins.op == "gather":
                w(f"{Y}[dst + {j}] = {cg.array(params)}[src + {j}]")
            else:
                w(cg.accumulate(Y, f"src + {j}", f"{cg.array(updates)}[dst + {j}]"))


@kernel("one_hot")
def _(cg, w, i, ins):
    (indices,) = ins.inputs
    out = ins.outputs[0]
    Y, I = cg.define_output(out, w), cg.array(indices)
    axis, depth = ins.attrs["axis"], ins.attrs["depth"]
    di = cg.dims(indices)
    outer, inner = product(di[:axis]), product(di[axis:])
    on, off = (scalar.literal(ins.attrs[k], cg.dtype(out)) for k in ("on_value", "off_value"))
    with cg.parallel_nest(w, [outer, depth, inner], ["o", "d", "j"]) as (o, d, j):
        w(f"{Y}[({o} * {depth} + {d}) * {inner} + {j}] = {on} if {I}[{o} * {inner} + {j}] == {d} else {off}")


@kernel("sum_to")
def _(cg, w, i, ins):
    g, like = ins.inputs
    out = ins.outputs[0]
    G, Y = cg.array(g), cg.define_output(out, w)
    cg.prefill(w, out, Y, 0)
    dg, dl = cg.dims(g), cg.dims(like)
    lead = len(dg) - len(dl)
    out_strides = []
    for k in range(len(dg)):
        j = k - lead
        if j < 0:
            out_strides.append("0")
        else:
            s = cg.uid("so")
            w(f"{s} = 0 if {dl[j]} == 1 else {product(dl[j + 1:])}")
            out_strides.append(s)
    ops = {"g": Operand(G, [product(dg[k + 1:]) for k in range(len(dg))]), "y": Operand(Y, out_strides)}
    nest(cg, w, dg, ops, lambda w, off: w(cg.accumulate(Y, off["y"], f"{G}[{off['g']}]")))


@kernel("assign", "assign_add", "assign_sub", "broadcast_to", "fill")
def _(cg, w, i, ins):
    # the value broadcasts into the output, exactly as in a fused elementwise group
    emit_members_over(cg, w, [i], ins.outputs[0], set(ins.outputs))


@kernel("window_sum")
def _(cg, w, i, ins):
    x, out = ins.inputs[0], ins.outputs[0]
    X, Y = cg.array(x), cg.define_output(out, w)
    outer, length, inner = _axis_split(cg.dims(x), ins.attrs["axis"])
    radius = ins.attrs["radius"]
    k = cg.uid("k")
    with cg.parallel_nest(w, [outer, length, inner], ["o", "c", "j"]) as (o, c, j):
        w(f"acc = {_t(cg, out)}(0)")
        lo, hi = cg.call("max", None, "0", f"{c} - {radius}"), cg.call("min", None, length, f"{c} + {radius} + 1")
        with w.block(f"for {k} in range({lo}, {hi}):"):
            w(f"acc += {X}[({o} * {length} + {k}) * {inner} + {j}]")
        w(f"{Y}[({o} * {length} + {c}) * {inner} + {j}] = acc")


# --- fused batch normalization -----------------------------------------------------------------------
def bn_geometry(cg, w, x, axis):
    """(outer, channels, inner, count) of x around its channel axis: the loops over one
    channel's elements fold them, so their extents are run-time sizes (runtime_dim)."""
    r = cg.rank(x)
    outer = f"({product([cg.runtime_dim(x, k) for k in range(axis)])})"
    inner = f"({product([cg.runtime_dim(x, k) for k in range(axis + 1, r)])})"
    count = cg.uid("count")
    w(f"{count} = {outer} * {inner}")
    return outer, cg.dim(x, axis), inner, count


@contextlib.contextmanager
def _bn_rows(cg, w, outer, channels, inner):
    """Loops over x in memory order by (row, channel) runs: yields (c, j) and ``at``, the
    flat index, inside the innermost loop (over ``inner``, the axes after the channel)."""
    o, c, j = cg.uid("o"), cg.uid("c"), cg.uid("j")
    with w.block(f"for {o} in range({outer}):"):
        with w.block(f"for {c} in range({channels}):"):
            yield c, j, o


def _bn_zero(cg, w, channels, *arrays):
    c = cg.uid("c")
    with w.block(f"for {c} in range({channels}):"):
        for a in arrays:
            w(f"{a}[{c}] = 0")


@kernel("fused_batch_norm")
def _(cg, w, i, ins):
    """CPU and native: passes over x in memory order (a run of channels, or of one channel's
    H*W values, at a time), each channel's sums accumulated in its statistic output; then y.
    One thread: the sums cross every row. (CUDA: a thread per channel, codegen/cuda/ops.py.)"""
    x, scale, offset = ins.inputs
    X, S, B = cg.array(x), cg.array(scale), cg.array(offset)
    Y, M, V, I = (cg.define_output(v, w) for v in ins.outputs)
    dtype = cg.dtype(x)
    t = _t(cg, x)
    outer, channels, inner, n = bn_geometry(cg, w, x, ins.attrs["axis"])
    eps = scalar.literal(ins.attrs["epsilon"], dtype)
    _bn_zero(cg, w, channels, M, V)
    for stat in ("mean", "var"):
        with _bn_rows(cg, w, outer, channels, inner) as (c, j, o):
            w(f"s = {t}(0)")
            if stat == "var":
                w(f"m = {M}[{c}]")
            with w.block(f"for {j} in range({inner}):"):
                at = f"({o} * {channels} + {c}) * {inner} + {j}"
                if stat == "mean":
                    w(f"s = rt.fold_add(s, {X}[{at}])")
                else:
                    w(f"d = {X}[{at}] - m")
                    w("s = rt.fold_add(s, d * d)")
            w(f"{(M if stat == 'mean' else V)}[{c}] += s")
        c = cg.uid("c")
        with w.block(f"for {c} in range({channels}):"):
            if stat == "mean":
                w(f"{M}[{c}] = {t}({M}[{c}] / {t}({n}))")
            else:
                w(f"var = {t}({V}[{c}] / {t}({n}))")
                w(f"{I}[{c}] = {t}({t}(1) / {cg.call('sqrt', dtype, f'var + {eps}')})")
                # TF1's moving-average statistic: the unbiased variance, n / (n - 1) times the biased one
                w(f"{V}[{c}] = {t}(var * {t}({n}) / {t}({n} - 1)) if {n} > 1 else var")
    with _bn_rows(cg, w, outer, channels, inner) as (c, j, o):
        w(f"m = {M}[{c}]")
        w(f"k = {t}({I}[{c}] * {S}[{c}])")
        w(f"b = {B}[{c}]")
        with w.block(f"for {j} in range({inner}):"):
            at = f"({o} * {channels} + {c}) * {inner} + {j}"
            w(f"{Y}[{at}] = {t}(({X}[{at}] - m) * k + b)")


@kernel("fused_batch_norm_grad")
def _(cg, w, i, ins):
    """CPU and native: the sums of dy and dy * (x - mean) in memory order, then dx."""
    dy, x, scale, mean, inv = ins.inputs
    DY, X, S, M, IV = (cg.array(v) for v in ins.inputs)
    DX, DS, DB = (cg.define_output(v, w) for v in ins.outputs)
    t = _t(cg, x)
    outer, channels, inner, n = bn_geometry(cg, w, x, ins.attrs["axis"])
    _bn_zero(cg, w, channels, DS, DB)
    with _bn_rows(cg, w, outer, channels, inner) as (c, j, o):
        w(f"m = {M}[{c}]")
        w(f"sg = {t}(0)")
        w(f"sgx = {t}(0)")
        with w.block(f"for {j} in range({inner}):"):
            at = f"({o} * {channels} + {c}) * {inner} + {j}"
            w(f"g = {DY}[{at}]")
            w("sg = rt.fold_add(sg, g)")
            w(f"sgx = rt.fold_add(sgx, g * ({X}[{at}] - m))")
        w(f"{DB}[{c}] += sg")
        w(f"{DS}[{c}] += sgx")
    c = cg.uid("c")
    with w.block(f"for {c} in range({channels}):"):
        w(f"{DS}[{c}] = {t}({DS}[{c}] * {IV}[{c}])")
    w(f"gn = {t}({n})")
    with _bn_rows(cg, w, outer, channels, inner) as (c, j, o):
        w(f"m = {M}[{c}]")
        w(f"inv = {IV}[{c}]")
        w(f"k = {t}({S}[{c}] * inv / gn)")
        w(f"sg = {DB}[{c}]")
        w(f"ds = {DS}[{c}]")
        with w.block(f"for {j} in range({inner}):"):
            at = f"({o} * {channels} + {c}) * {inner} + {j}"
            w(f"{DX}[{at}] = {t}(k * (gn * {DY}[{at}] - sg - ({X}[{at}] - m) * inv * ds))")

# --- random ------------------------------------------------------------------------------------------------
@kernel("random_uniform", "random_standard_normal", "truncated_standard_normal")
def _(cg, w, i, ins):
    out = ins.outputs[0]
    Y = cg.define_output(out, w)
    # seeds and the run counter arrive in an array (graph seed, op seed, counter), so that
    # every random op of a kind shares one kernel
    counter = cg.rng_slot(ins.attrs["stream"])
    seeds = counter.replace("]", " - 2]"), counter.replace("]", " - 1]")
    t = _t(cg, out)
    n = cg.size(out)
    w(f"key = rt.stream_key({seeds[0]}, {seeds[1]}, {counter}, 0)")
    if ins.op == "random_uniform":
        unit = "rt.unit_f32" if cg.dtype(out).np == np.float32 else "rt.unit_f64"
        with cg.parallel_nest(w, [n], ["q"]) as (q,):
            w(f"{Y}[{q}] = {unit}(rt.bits(key, {q}))")
    elif ins.op == "random_standard_normal":
        with cg.parallel_nest(w, [n], ["q"]) as (q,):
            w(f"{Y}[{q}] = {t}(rt.normal_pair(key, {q}, {n}))")
    else:
        from ...ops.random import TRUNCATED_MAX_ATTEMPTS
        with cg.parallel_nest(w, [n], ["q"]) as (q,):
            w(f"z = rt.normal_pair(key, {q}, {n})")
            w("attempt = 1")
            with w.block(f"while abs(z) > 2.0 and attempt < {TRUNCATED_MAX_ATTEMPTS}:"):
                w(f"z = rt.normal_pair(rt.stream_key({seeds[0]}, {seeds[1]}, {counter}, attempt), {q}, {n})")
                w("attempt += 1")
            w(f"{Y}[{q}] = {t}({cg.call('min', None, cg.call('max', None, 'z', '-2.0'), '2.0')})")


# --- convolution and pooling ----------------------------------------------------------------------------
def conv_geometry(cg, w, x, kernel, strides, dilations, padding, out):
    """Locals for the input/output sizes and the top/left padding (TensorFlow's rule)."""
    dx, do = cg.dims(x), cg.dims(out)
    geo = {"N": dx[0], "H": dx[1], "W": dx[2], "C": dx[3], "OH": do[1], "OW": do[2]}
    for axis, (size, osize, k, s, d) in enumerate(((dx[1], do[1], kernel[0], strides[0], dilations[0]),
                                                   (dx[2], do[2], kernel[1], strides[1], dilations[1]))):
        name = cg.uid("pad")
        if padding == "SAME":
            w(f"{name} = {cg.call('max', None, f'({osize} - 1) * {s} + ({k} - 1) * {d} + 1 - {size}', '0')} // 2")
        else:
            w(f"{name} = 0")
        geo["PT" if axis == 0 else "PL"] = name
    return geo


def input_coordinate(w, name: str, out_index: str, tap: str, stride, dilation, pad: str, size) -> None:
    """``name`` = the input row (or column) that output index ``out_index`` reads through
    filter tap ``tap``; the enclosing loop skips taps that fall in the padding."""
    w(f"{name} = {out_index} * {stride} + {tap} * {dilation} - {pad}")
    with w.block(f"if {name} < 0 or {name} >= {size}:"):
        w("continue")


def _im2col_spans(w, geo, cols, X, names, kh, kw, sh, sw, dh):
    """Undilated rows of a window: the taps inside the input are one contiguous run of X
    (``kw * C`` values, fewer at the borders), copied as one loop, not tap by tap (2x)."""
    n, oh, ow, p, j = names
    C, H, W = geo["C"], geo["H"], geo["W"]
    w(f"start = {ow} * {sw} - {geo['PL']}")
    w("qlo = max(0, -start)")
    w(f"qhi = min({kw}, {W} - start)")
    with w.block(f"for {p} in range({kh}):"):
        w(f"ih = {oh} * {sh} + {p} * {dh} - {geo['PT']}")
        w(f"dst = row + {p} * {kw} * {C}")
        with w.block(f"if ih < 0 or ih >= {H} or qlo >= qhi:"):
            with w.block(f"for {j} in range({kw} * {C}):"):
                w(f"{cols}[dst + {j}] = 0")
            w("continue")
        w(f"src = (({n} * {H} + ih) * {W} + start) * {C}")
        with w.block(f"if qlo == 0 and qhi == {kw}:"):  # interior: a run of literal length
            copy_run(w, cols, "dst", X, "src", f"{kw} * {C}", j)
            w("continue")
        with w.block(f"for {j} in range(qlo * {C}):"):
            w(f"{cols}[dst + {j}] = 0")
        with w.block(f"for {j} in range(qlo * {C}, qhi * {C}):"):
            w(f"{cols}[dst + {j}] = {X}[src + {j}]")
        with w.block(f"for {j} in range(qhi * {C}, {kw} * {C}):"):
            w(f"{cols}[dst + {j}] = 0")


def im2col(cg, w, ins, x, f, like=None):
    """Write the (N*OH*OW, KH*KW*C) patch matrix of x; returns (name, rows, width)."""
    out = ins.outputs[0] if like is None else like
    kh, kw = cg.dims(f)[0], cg.dims(f)[1]
    a = ins.attrs
    geo = conv_geometry(cg, w, x, (kh, kw), a["strides"], a["dilations"], a["padding"], out)
    cols = cg.scratch([(x, 0), (out, 1), (out, 2), (f, 0), (f, 1), (x, 3)], cg.dtype(x), w)
    _im2col_rows(cg, w, ins, x, geo, (kh, kw), cols, "0", f"{geo['N']} * {geo['OH']}")
    return cols, f"({geo['N']} * {geo['OH']} * {geo['OW']})", f"({kh} * {kw} * {geo['C']})"


def _im2col_rows(cg, w, ins, x, geo, taps, cols, first: str, end: str, X: str = None) -> None:
    """The patches of output rows ``[first, end)`` (a row is one image's output row, N*OH in
    all) into ``cols`` from its start: ``OW`` patch rows of ``KH*KW*C`` values per output row.
    ``X`` is the array holding x's images (default all of x; a part's images count from 0)."""
    a = ins.attrs
    kh, kw = taps
    width = f"({kh} * {kw} * {geo['C']})"
    X = X or cg.array(x)
    r, n, oh, ow, p, q, c, j = (cg.uid(s) for s in ("r", "n", "oh", "ow", "p", "q", "c", "j"))
    sh, sw = a["strides"]
    dh, dw = a["dilations"]
    C = geo["C"]
    with w.block(f"for {r} in range({first}, {end}):"):
        w(f"{n} = {r} // {geo['OH']}")
        w(f"{oh} = {r} - {n} * {geo['OH']}")
        with w.block(f"for {ow} in range({geo['OW']}):"):
            w(f"row = (({r} - {first}) * {geo['OW']} + {ow}) * {width}")
            if dw == 1:
                _im2col_spans(w, geo, cols, X, (n, oh, ow, p, j), kh, kw, sh, sw, dh)
                return
            with w.block(f"for {p} in range({kh}):"):
                w(f"ih = {oh} * {sh} + {p} * {dh} - {geo['PT']}")
                with w.block(f"for {q} in range({kw}):"):
                    w(f"iw = {ow} * {sw} + {q} * {dw} - {geo['PL']}")
                    w(f"dst = row + ({p} * {kw} + {q}) * {C}")
                    with w.block(f"if 0 <= ih < {geo['H']} and 0 <= iw < {geo['W']}:"):
                        w(f"src = (({n} * {geo['H']} + ih) * {geo['W']} + iw) * {C}")
                        with w.block(f"for {c} in range({C}):"):
                            w(f"{cols}[dst + {c}] = {X}[src + {c}]")
                    with w.block("else:"):
                        with w.block(f"for {c} in range({C}):"):
                            w(f"{cols}[dst + {c}] = 0")


# Patch elements per chunk of the filter gradient: 128 KiB of float32 stays in L2 between the
# copy that writes it and the GEMM that reads it. Written whole, LeNet's conv1 patches are 5 MB
# (K = 50,176 rows of 25) that went to memory and back. Measured on one core (LeNet's conv1 and
# conv2 gradients): 2.1 -> 1.45 ms and 0.98 -> 0.62 ms; chunks of 4x this size lost the gain.
FILTER_GRADIENT_CHUNK = 1 << 15


@kernel("conv2d_backprop_filter")
def _(cg, w, i, ins):
    """dF = patches(x)^T @ g, a reduction over every output pixel, taken a chunk of output rows
    at a time so the chunk's patches are still in cache when the GEMM reads them."""
    x, g, like = ins.inputs
    out = ins.outputs[0]
    Y = cg.define_output(out, w)
    a = ins.attrs
    kh, kw, o = cg.dims(like)[0], cg.dims(like)[1], cg.dims(like)[3]
    geo = conv_geometry(cg, w, x, (kh, kw), a["strides"], a["dilations"], a["padding"], g)
    width = f"({kh} * {kw} * {geo['C']})"
    static = [cg.dims(g)[2], kh, kw, geo["C"]]
    if (cg.target == "cpu" and cg.split is None and all(d.isdigit() for d in static + [geo["OH"]])
            and not any(k[0] == "scratch" for k in cg.params)):
        _filter_gradient_by_images(cg, w, ins, Y, geo, width, o)
        return
    chunk = (max(1, FILTER_GRADIENT_CHUNK // math.prod(int(d) for d in static))
             if all(d.isdigit() for d in static) else 8)
    cols = cg.scratch([chunk, (g, 2), (like, 0), (like, 1), (x, 3)], cg.dtype(x), w)
    part = cg.scratch([(like, 0), (like, 1), (x, 3), (like, 3)], cg.dtype(out), w)
    z, r0 = cg.uid("z"), cg.uid("r0")
    with w.block(f"for {z} in range({cg.size(out)}):"):
        w(f"{Y}[{z}] = 0")
    with w.block(f"for {r0} in range(0, {geo['N']} * {geo['OH']}, {chunk}):"):
        w(f"r1 = min({r0} + {chunk}, {geo['N']} * {geo['OH']})")
        _im2col_rows(cg, w, ins, x, geo, (kh, kw), cols, r0, "r1")
        w(f"m = (r1 - {r0}) * {geo['OW']}")
        w(f"np.dot({cols}[:m * {width}].reshape((m, {width})).T, "
          f"{cg.array(g)}[{r0} * {geo['OW']} * {o}:r1 * {geo['OW']} * {o}].reshape((m, {o})), "
          f"{part}.reshape(({width}, {o})))")
        with w.block(f"for {z} in range({width} * {o}):"):
            w(f"{Y}[{z}] += {part}[{z}]")


def _filter_gradient_by_images(cg, w, ins, Y, geo, width: str, o) -> None:
    """The filter gradient on the CPU backend, its images in parts on the pool. LeNet-5's conv1
    gradient reduces over 50,176 output pixels into 150 values: BLAS runs that on one thread
    (it splits a product's rows and columns, never its sum), and it was W5's largest kernel.
    A block of ``per`` images (one chunk, FILTER_GRADIENT_CHUNK) writes its sum into its own
    slot of a partial-sum scratch; the tail adds the slots in block order. Blocks sit at
    multiples of ``per`` however the images are split, so the result does not depend on how
    many threads ran it. A part's patches go to an array of its own (``part_buffer``)."""
    from .groups import MACS_PER_WORK
    x, g, like = ins.inputs
    kh, kw = cg.dims(like)[0], cg.dims(like)[1]
    patches_per_image = int(geo["OH"]) * int(cg.dims(g)[2])
    per = max(1, FILTER_GRADIENT_CHUNK // (patches_per_image * int(kh) * int(kw) * int(geo["C"])))
    lo, hi = cg.split_bounds([(x, 0)], g, [(like, 0), (like, 1), (x, 3)], MACS_PER_WORK, grain=per)
    sums = cg.scratch([(x, 0), (like, 0), (like, 1), (x, 3), (like, 3)], cg.dtype(ins.outputs[0]), w,
                      disjoint_parts=True)
    image, pixels = f"({geo['H']} * {geo['W']} * {geo['C']})", f"{patches_per_image}"
    X, G = cg.uid("xpart"), cg.uid("gpart")
    w(f"{X} = {cg.array(x)}[{lo} * {image}:{hi} * {image}]")
    w(f"{G} = {cg.array(g)}[{lo} * {pixels} * {o}:{hi} * {pixels} * {o}]")
    cols = cg.part_buffer(w, per * patches_per_image * int(kh) * int(kw) * int(geo["C"]), cg.dtype(x))
    n0 = cg.uid("n0")
    with w.block(f"for {n0} in range(0, {hi} - {lo}, {per}):"):
        w(f"n1 = min({n0} + {per}, {hi} - {lo})")
        w(f"xblock = {X}[{n0} * {image}:]")  # the block's images from 0 (see groups._conv_by_images)
        _im2col_rows(cg, w, ins, x, geo, (kh, kw), cols, "0", f"(n1 - {n0}) * {geo['OH']}", X="xblock")
        w(f"m = (n1 - {n0}) * {pixels}")
        w(f"slot = ({lo} + {n0}) * {width} * {o}")
        w(f"np.dot({cols}[:m * {width}].reshape((m, {width})).T, "
          f"{G}[{n0} * {pixels} * {o}:n1 * {pixels} * {o}].reshape((m, {o})), "
          f"{sums}[slot:slot + {width} * {o}].reshape(({width}, {o})))")
    t = cg.split_tail()
    z, b, sums = cg.uid("z"), cg.uid("b"), cg.scratch_buffers[sums]  # (the tail sees only parameters)
    with t.block(f"for {z} in range({width} * {o}):"):
        t(f"{Y}[{z}] = 0")
    with t.block(f"for {b} in range(0, {geo['N']}, {per}):"):
        with t.block(f"for {z} in range({width} * {o}):"):
            t(f"{Y}[{z}] += {sums}[{b} * {width} * {o} + {z}]")


@kernel("conv2d_backprop_input")
def _(cg, w, i, ins):
    """dX = col2im(g @ F^T): the patch-space gradient by BLAS, then each patch value added
    back to the input pixel it came from. On the CPU backend, with static sizes, a block of
    images at a time (its patches stay in cache; LeNet's conv2 has 3.8 MB of them), the
    blocks in parts on the pool: each writes only its own images of dX."""
    g, f, like = ins.inputs
    out = ins.outputs[0]
    Y = cg.define_output(out, w)
    a = ins.attrs
    df = cg.dims(f)
    kh, kw, o = df[0], df[1], df[3]
    geo = conv_geometry(cg, w, like, (kh, kw), a["strides"], a["dilations"], a["padding"], g)
    width = f"({kh} * {kw} * {geo['C']})"
    t = _t(cg, out)
    F = f"{cg.array(f)}.reshape(({width}, {o})).T"
    static = [geo["OH"], geo["OW"], kh, kw, geo["C"]]
    if (cg.target == "cpu" and cg.split is None and all(d.isdigit() for d in static)
            and not any(k[0] == "scratch" for k in cg.params)):
        from .groups import MACS_PER_WORK
        pixels = int(geo["OH"]) * int(geo["OW"])
        per = max(1, FILTER_GRADIENT_CHUNK // (pixels * math.prod(int(d) for d in static[2:])))
        lo, hi = cg.split_bounds([(like, 0)], g, [(f, 0), (f, 1), (like, 3)], MACS_PER_WORK, grain=per)
        image = f"({geo['H']} * {geo['W']} * {geo['C']})"
        G, X, n0 = cg.uid("gpart"), cg.uid("xpart"), cg.uid("n0")
        w(f"{G} = {cg.array(g)}[{lo} * {pixels * int(o)}:{hi} * {pixels * int(o)}]")
        w(f"{X} = {Y}[{lo} * {image}:{hi} * {image}]")
        dcols = cg.part_buffer(w, per * pixels * math.prod(int(d) for d in static[2:]), cg.dtype(out))
        cg.prefill(w, out, X, 0, count=f"({hi} - {lo}) * {image}")
        with w.block(f"for {n0} in range(0, {hi} - {lo}, {per}):"):
            w(f"n1 = min({n0} + {per}, {hi} - {lo})")
            w(f"m = (n1 - {n0}) * {pixels}")
            w(f"np.dot({G}[{n0} * {pixels * int(o)}:n1 * {pixels * int(o)}].reshape((m, {o})), {F}, "
              f"{dcols}[:m * {width}].reshape((m, {width})))")
            _col2im(cg, w, a, geo, kh, kw, width, dcols, X, n0, "n1")
        return
    rows = f"({geo['N']} * {geo['OH']} * {geo['OW']})"
    dcols = cg.scratch([(like, 0), (g, 1), (g, 2), (f, 0), (f, 1), (like, 3)], cg.dtype(out), w)
    w(f"np.dot({cg.array(g)}.reshape(({rows}, {o})), {F}, {dcols}.reshape(({rows}, {width})))")
    z = cg.uid("z")
    with w.block(f"for {z} in range({cg.size(out)}):"):
        w(f"{Y}[{z}] = {t}(0)")
    _col2im(cg, w, a, geo, kh, kw, width, dcols, Y, "0", geo["N"])


def _col2im(cg, w, a, geo, kh, kw, width, dcols, Y, first: str, end: str) -> None:
    """Add each patch value of images ``[first, end)`` (``dcols`` holds their patches from its
    start; ``Y`` their input pixels, counted from image 0 of ``Y``) to the pixel it was read from."""
    n, oh, ow, p, q, c = (cg.uid(s) for s in ("n", "oh", "ow", "p", "q", "c"))
    sh, sw = a["strides"]
    dh, dw = a["dilations"]
    with w.block(f"for {n} in range({first}, {end}):"):
        with w.block(f"for {oh} in range({geo['OH']}):"):
            with w.block(f"for {ow} in range({geo['OW']}):"):
                w(f"row = ((({n} - {first}) * {geo['OH']} + {oh}) * {geo['OW']} + {ow}) * {width}")
                with w.block(f"for {p} in range({kh}):"):
                    input_coordinate(w, "ih", oh, p, sh, dh, geo["PT"], geo["H"])
                    with w.block(f"for {q} in range({kw}):"):
                        input_coordinate(w, "iw", ow, q, sw, dw, geo["PL"], geo["W"])
                        w(f"src = row + ({p} * {kw} + {q}) * {geo['C']}")
                        w(f"dst = (({n} * {geo['H']} + ih) * {geo['W']} + iw) * {geo['C']}")
                        with w.block(f"for {c} in range({geo['C']}):"):
                            w(f"{Y}[dst + {c}] += {dcols}[src + {c}]")


def _images_in_parts(cg, w, x, arrays) -> str:
    """On the CPU backend, the driver may run a pooling kernel's images in parts on several
    threads, by the work of input ``x`` (LeNet-5's first max-pool gradient at batch 64 took
    0.64 ms on one thread, 0.32 ms on two). Each ``(name, value)`` of ``arrays``, which holds
    whole images (dim 0), is rebound to the part's images (once per name: two inputs may be
    one value); returns the part's image count, or None where the kernel runs whole."""
    if cg.target != "cpu" or cg.split is not None or any(k[0] == "scratch" for k in cg.params):
        return None
    lo, hi = cg.split_bounds([(x, 0)], x)
    for name, v in dict(arrays).items():
        image = product(cg.dims(v)[1:])
        w(f"{name} = {name}[{lo} * {image}:{hi} * {image}]")
    return f"({hi} - {lo})"


def _elements_of(cg, v, images):
    """The element count of a part's ``images`` images of ``v``; None for all of ``v``."""
    return None if images is None else f"{images} * {product(cg.dims(v)[1:])}"


def _pool_loops(cg, w, ins, x, pooled, body_window, after_window=None, setup=None, images=None):
    """Loops over every pooled output element and its window taps inside the input (of the
    first ``images`` images: default all). The callbacks get the writer and a dict of the
    loop's names (n, oh, ow, c, H, W, C, PT, PL)."""
    a = ins.attrs
    kh, kw = a["ksize"]
    geo = conv_geometry(cg, w, x, (kh, kw), a["strides"], (1, 1), a["padding"], pooled)
    sh, sw = a["strides"]
    dims = [images or geo["N"], geo["OH"], geo["OW"], geo["C"]]
    with cg.parallel_nest(w, dims, ["n", "oh", "ow", "c"]) as (n, oh, ow, c):
        ctx = dict(geo, n=n, oh=oh, ow=ow, c=c, sh=sh, sw=sw, kh=kh, kw=kw)
        w(f"out_at = (({n} * {geo['OH']} + {oh}) * {geo['OW']} + {ow}) * {geo['C']} + {c}")
        if setup:
            setup(w, ctx)
        _window(cg, w, ctx, body_window)
        if after_window:
            after_window(w, ctx)


def _window(cg, w, ctx, body):
    """The taps of the current window that fall inside the input (``in_at`` is their index)."""
    p, q = cg.uid("p"), cg.uid("q")
    with w.block(f"for {p} in range({ctx['kh']}):"):
        input_coordinate(w, "ih", ctx["oh"], p, ctx["sh"], 1, ctx["PT"], ctx["H"])
        with w.block(f"for {q} in range({ctx['kw']}):"):
            input_coordinate(w, "iw", ctx["ow"], q, ctx["sw"], 1, ctx["PL"], ctx["W"])
            w(f"in_at = (({ctx['n']} * {ctx['H']} + ih) * {ctx['W']} + iw) * {ctx['C']} + {ctx['c']}")
            body(w, ctx)


def _argmax_window(cg, x):
    low = scalar.literal(-np.inf if cg.dtype(x).is_floating else np.iinfo(cg.dtype(x).np).min, cg.dtype(x))

    def setup(w, ctx):
        w(f"best = {low}")
        w("best_at = -1")

    def body(w, ctx):
        w(f"v = {cg.array(x)}[in_at]")
        # bitwise, not short-circuit: selects instead of hard-to-predict branches (2-3x here)
        w("take = (best_at < 0) | ((best == best) & ((v > best) | (v != v)))")
        w("best = v if take else best")
        w("best_at = in_at if take else best_at")
    return setup, body


def _zero(cg, w, out, Y):
    cg.prefill(w, out, Y, 0)


# A window of at most this many taps is written out tap by tap where it lies inside the input.
UNROLLED_WINDOW = 16


def _pool_pixels(cg, w, ins, x, pooled, interior, setup, body, after, images=None):
    """Forward pooling loops for a CPU: one output pixel at a time, its window's bounds
    checked once for all channels, then a loop over the channels. Where the window lies
    inside the input, ``interior(w, c, taps)`` writes channel ``c``'s output as one
    expression of the taps' indices into x (row-major tap order), with no bounds checks
    and no loop over taps. Elsewhere the taps inside the input are visited as in
    ``_pool_loops``: ``setup``, ``body`` at each ``in_at``, then ``after(w, c)``.
    (An average pool written this way measured slower than ``_pool_loops``, 1.0 against
    0.5 us at LeNet's second pool, so only the max pool uses it.)"""
    a = ins.attrs
    kh, kw = a["ksize"]
    sh, sw = a["strides"]
    g = conv_geometry(cg, w, x, (kh, kw), a["strides"], (1, 1), a["padding"], pooled)
    H, W, C = g["H"], g["W"], g["C"]
    with cg.parallel_nest(w, [images or g["N"], g["OH"], g["OW"]], ["n", "oh", "ow"]) as (n, oh, ow):
        c, p, q = cg.uid("c"), cg.uid("p"), cg.uid("q")
        w(f"out_at = (({n} * {g['OH']} + {oh}) * {g['OW']} + {ow}) * {C}")
        w(f"top = {oh} * {sh} - {g['PT']}")
        w(f"left = {ow} * {sw} - {g['PL']}")
        border = contextlib.nullcontext()
        if kh * kw <= UNROLLED_WINDOW:
            with w.block(f"if top >= 0 and top + {kh} <= {H} and left >= 0 and left + {kw} <= {W}:"):
                w(f"at = (({n} * {H} + top) * {W} + left) * {C}")
                with w.block(f"for {c} in range({C}):"):
                    interior(w, c, [f"at + ({tp} * {W} + {tq}) * {C} + {c}" for tp in range(kh) for tq in range(kw)])
            border = w.block("else:")
        with border:
            w("plo = max(0, -top)")
            w(f"phi = min({kh}, {H} - top)")
            w("qlo = max(0, -left)")
            w(f"qhi = min({kw}, {W} - left)")
            with w.block(f"for {c} in range({C}):"):
                setup(w, None)
                with w.block(f"for {p} in range(plo, phi):"):
                    with w.block(f"for {q} in range(qlo, qhi):"):
                        w(f"in_at = (({n} * {H} + top + {p}) * {W} + left + {q}) * {C} + {c}")
                        body(w, None)
                after(w, c)


@kernel("max_pool2d")
def _(cg, w, i, ins):
    x, out = ins.inputs[0], ins.outputs[0]
    Y = cg.define_output(out, w)
    setup, body = _argmax_window(cg, x)
    if cg.target == "cuda":  # one thread per output element
        _pool_loops(cg, w, ins, x, out, body, lambda w, ctx: w(f"{Y}[out_at] = best"), setup)
        return
    X = cg.array(x)
    images = _images_in_parts(cg, w, x, [(Y, out), (X, x)])

    def interior(w, c, taps):
        # a balanced tree of NaN-propagating maxima, not _argmax_window's chain of selects
        # (whose NaN rule only decides which NaN wins): LeNet's first pool at batch 1 took
        # 2.8 us as _pool_loops, 1.4 us this way. rt.maximum(later, earlier) keeps the
        # earlier of two equal values, as the chain does (-0.0 against 0.0)
        values = [f"{X}[{tap}]" for tap in taps]
        while len(values) > 1:
            values = [f"rt.maximum({b}, {a})" for a, b in zip(values[::2], values[1::2])] + values[len(values) // 2 * 2:]
        w(f"{Y}[out_at + {c}] = {values[0]}")
    _pool_pixels(cg, w, ins, x, out, interior, setup, body, lambda w, c: w(f"{Y}[out_at + {c}] = best"), images)


@kernel("max_pool2d_grad")
def _(cg, w, i, ins):
    x, g = ins.inputs
    out = ins.outputs[0]
    Y = cg.define_output(out, w)
    G = cg.array(g)
    images = _images_in_parts(cg, w, x, [(Y, out), (cg.array(x), x), (G, g)])
    cg.prefill(w, out, Y, 0, count=_elements_of(cg, out, images))
    setup, body = _argmax_window(cg, x)

    kh, kw = ins.attrs["ksize"]
    sh, sw = ins.attrs["strides"]
    zero = _t(cg, out) + "(0)"

    def after(w, ctx):
        if sh >= kh and sw >= kw:
            # windows do not overlap: store to every tap of the window (a select) instead of
            # one scatter-add to best_at, whose address comes from the loads and stalls them (3x)
            w(f"gv = {G}[out_at]")
            _window(cg, w, ctx, lambda w, ctx: w(f"{Y}[in_at] = gv if in_at == best_at else {zero}"))
        else:
            with w.block("if best_at >= 0:"):
                w(cg.accumulate(Y, "best_at", f"{G}[out_at]"))
    _pool_loops(cg, w, ins, x, g, body, after, setup, images)


@kernel("max_pool2d_grad_grad")
def _(cg, w, i, ins):
    x, gg = ins.inputs
    out = ins.outputs[0]
    Y = cg.define_output(out, w)
    GG = cg.array(gg)
    images = _images_in_parts(cg, w, x, [(Y, out), (cg.array(x), x), (GG, gg)])
    setup, body = _argmax_window(cg, x)
    _pool_loops(cg, w, ins, x, out, body,
                lambda w, ctx: w(f"{Y}[out_at] = {GG}[best_at] if best_at >= 0 else {_t(cg, out)}(0)"), setup, images)


@kernel("avg_pool2d")
def _(cg, w, i, ins):
    x, out = ins.inputs[0], ins.outputs[0]
    Y, X = cg.define_output(out, w), cg.array(x)
    images = _images_in_parts(cg, w, x, [(Y, out), (X, x)])
    t = _t(cg, out)

    def setup(w, ctx):
        w(f"acc = {t}(0)")
        w("count = 0")

    def body(w, ctx):
        w(f"acc += {X}[in_at]")
        w("count += 1")

    _pool_loops(cg, w, ins, x, out, body, lambda w, ctx: w(f"{Y}[out_at] = {t}(acc / count)"), setup, images)


@kernel("avg_pool2d_grad")
def _(cg, w, i, ins):
    g, like = ins.inputs
    out = ins.outputs[0]
    Y, G = cg.define_output(out, w), cg.array(g)
    images = _images_in_parts(cg, w, like, [(Y, out), (G, g)])
    t = _t(cg, out)
    cg.prefill(w, out, Y, 0, count=_elements_of(cg, out, images))

    def setup(w, ctx):
        w("count = 0")

    def spread(w, ctx):  # a second walk over the same window hands out equal shares
        w(f"share = {t}({G}[out_at] / count)")
        _window(cg, w, ctx, lambda w, ctx: w(cg.accumulate(Y, "in_at", "share")))

    _pool_loops(cg, w, ins, like, g, lambda w, ctx: w("count += 1"), spread, setup, images)


# --- run-time checks ------------------------------------------------------------------------------------
@kernel("check_range")
def _(cg, w, i, ins):
    from ...ops.control import range_message
    x, out = ins.inputs[0], ins.outputs[0]
    a = ins.attrs
    X, Y = cg.array(x), cg.define_output(out, w)
    low, high = (scalar.literal(a[k], cg.dtype(x)) for k in ("low", "high"))
    inside = f"{low} {'<' if a['low_open'] else '<='} v {'<' if a['high_open'] else '<='} {high}"  # NaN: false
    shown = cg.raises_floats or cg.dtype(x).is_integer
    with cg.parallel_nest(w, [cg.size(x)], ["r"]) as (r,):
        w(f"v = {X}[{r}]")
        with w.block(f"if not ({inside}):"):
            if not shown:  # a float the error array cannot carry: say which non-finite value it was
                inf = scalar.literal(np.inf, cg.dtype(x))
                for test, got in (("v != v", "nan"), (f"v == {inf}", "inf"), (f"v == -{inf}", "-inf")):
                    with w.block(f"if {test}:"):
                        _raise(cg, w, i, range_message(a, got=got))
            _raise(cg, w, i, range_message(a, shown), *(["v"] if shown else []))
        w(f"{Y}[{r}] = v")


# --- scans, reversal and segment sums ----------------------------------------------------------------------
@kernel("cumsum", "cumprod")
def _(cg, w, i, ins):
    x, out = ins.inputs[0], ins.outputs[0]
    X, Y = cg.array(x), cg.define_output(out, w)
    a = ins.attrs
    outer, _, inner = _axis_split(cg.dims(x), a["axis"])
    length = cg.runtime_dim(x, a["axis"])  # a folding loop: see KernelContext.runtime_dim
    t = _t(cg, out)
    combine = "+" if ins.op == "cumsum" else "*"
    l = cg.uid("l")
    with cg.parallel_nest(w, [outer, inner], ["o", "j"]) as (o, j):
        w(f"acc = {t}({0 if ins.op == 'cumsum' else 1})")
        with w.block(f"for {l} in range({length}):"):
            pos = f"({length} - 1 - {l})" if a["reverse"] else l
            w(f"at = ({o} * {length} + {pos}) * {inner} + {j}")
            w(f"v = {X}[at]")  # read before the write: the output may share the input's buffer
            if a["exclusive"]:
                w(f"{Y}[at] = acc")
                w(f"acc = {t}(acc {combine} v)")
            else:
                w(f"acc = {t}(acc {combine} v)")
                w(f"{Y}[at] = acc")


@kernel("reverse")
def _(cg, w, i, ins):
    x, out = ins.inputs[0], ins.outputs[0]
    X, Y = cg.array(x), cg.define_output(out, w)
    dx = cg.dims(x)
    r = len(dx)
    if r == 0:
        w(f"{Y}[0] = {X}[0]")
        return
    axes = ins.attrs["axes"]
    with cg.parallel_nest(w, dx, ["ri"] * r) as idx:
        src = " + ".join(f"({f'{dx[k]} - 1 - {idx[k]}' if k in axes else idx[k]}) * {product(dx[k + 1:])}"
                         for k in range(r))
        dst = " + ".join(f"{idx[k]} * {product(dx[k + 1:])}" for k in range(r))
        w(f"{Y}[{dst}] = {X}[{src}]")


@kernel("unsorted_segment_sum")
def _(cg, w, i, ins):
    data, ids = ins.inputs
    out = ins.outputs[0]
    D, I, Y = cg.array(data), cg.array(ids), cg.define_output(out, w)
    n = ins.attrs["num_segments"]
    inner = product(cg.dims(data)[cg.rank(ids):])
    cg.prefill(w, out, Y, 0)
    with cg.parallel_nest(w, [cg.size(ids), inner], ["t", "j"]) as (t, j):
        w(f"s = {I}[{t}]")
        with w.block(f"if s >= {n}:"):
            _raise(cg, w, i, f"segment id {{}} is out of range for {n} segments", "s")
        with w.block("if s >= 0:"):  # TensorFlow drops negative ids
            w(cg.accumulate(Y, f"s * {inner} + {j}", f"{D}[{t} * {inner} + {j}]"))


# --- sorting (graphc/ops/sorting.py: each element is placed by its rank) -------------------------------------
def _before(cg, x, a, b, a_at, b_at, descending):
    """Source of "a goes before b" in a stable sort: a < b (descending: a > b), NaN largest,
    ties in input order (``a_at < b_at``)."""
    lo, hi = (b, a) if descending else (a, b)
    if cg.dtype(x).is_floating:
        less = f"(({lo} < {hi}) | (({hi} != {hi}) & ({lo} == {lo})))"
        same = f"(({a} == {b}) | (({a} != {a}) & ({b} != {b})))"
    else:
        less, same = f"({lo} < {hi})", f"({a} == {b})"
    return f"{less} | ({same} & ({a_at} < {b_at}))"


@kernel("argsort")
def _(cg, w, i, ins):
    """A stable bottom-up merge sort of each row's indices in scratch (n log n; the CUDA
    backend places each element by its rank instead: cuda/ops.py)."""
    from ...dtypes import int64
    x, out = ins.inputs[0], ins.outputs[0]
    X, Y = cg.array(x), cg.define_output(out, w)
    axis = ins.attrs["axis"]
    outer, _, inner = _axis_split(cg.dims(x), axis)
    length = cg.dim(x, axis)
    buf = cg.scratch([2, (x, axis)], int64, w)
    o, j, p, k, lo = (cg.uid(s) for s in ("o", "j", "p", "k", "lo"))
    t = _t(cg, out)
    with w.block(f"for {o} in range({outer}):"):
        with w.block(f"for {j} in range({inner}):"):
            w(f"base = {o} * {length} * {inner} + {j}")
            w(f"src = {buf}[:{length}]")
            w(f"dst = {buf}[{length}:2 * {length}]")
            with w.block(f"for {p} in range({length}):"):
                w(f"src[{p}] = {p}")
            w("width = 1")
            with w.block(f"while width < {length}:"):
                with w.block(f"for {lo} in range(0, {length}, 2 * width):"):
                    w(f"mid = min({lo} + width, {length})")
                    w(f"hi = min({lo} + 2 * width, {length})")
                    w(f"a = {lo}")
                    w("b = mid")
                    with w.block(f"for {k} in range({lo}, hi):"):
                        with w.block("if a < mid and b < hi:"):
                            w(f"u = {X}[base + src[b] * {inner}]")
                            w(f"v = {X}[base + src[a] * {inner}]")
                            w(f"right = {_before(cg, x, 'u', 'v', 'src[b]', 'src[a]', ins.attrs['descending'])}")
                        with w.block("else:"):
                            w("right = b < hi")
                        with w.block("if right:"):
                            w(f"dst[{k}] = src[b]")
                            w("b += 1")
                        with w.block("else:"):
                            w(f"dst[{k}] = src[a]")
                            w("a += 1")
                w("src, dst = dst, src")
                w("width *= 2")
            with w.block(f"for {p} in range({length}):"):
                w(f"{Y}[base + {p} * {inner}] = {t}(src[{p}])")


@kernel("top_k")
def _(cg, w, i, ins):
    x = ins.inputs[0]
    values, indices = ins.outputs
    X, V, I = cg.array(x), cg.define_output(values, w), cg.define_output(indices, w)
    dims = cg.dims(x)
    k = ins.attrs["k"]
    length = cg.runtime_dim(x, -1)
    l = cg.uid("l")
    with cg.parallel_nest(w, [product(dims[:-1]), length], ["o", "p"]) as (o, p):
        w(f"v = {X}[{o} * {length} + {p}]")
        w("rank = 0")
        with w.block(f"for {l} in range({length}):"):
            w(f"u = {X}[{o} * {length} + {l}]")
            w(f"rank += 1 if {_before(cg, x, 'u', 'v', l, p, True)} else 0")
            with w.block(f"if rank >= {k}:"):
                w("break")
        with w.block(f"if rank < {k}:"):
            w(f"{V}[{o} * {k} + rank] = v")
            w(f"{I}[{o} * {k} + rank] = {_t(cg, indices)}({p})")


@kernel("in_top_k")
def _(cg, w, i, ins):
    predictions, targets = ins.inputs
    out = ins.outputs[0]
    P, T, Y = cg.array(predictions), cg.array(targets), cg.define_output(out, w)
    classes = cg.runtime_dim(predictions, 1)
    k = ins.attrs["k"]
    l = cg.uid("l")
    with cg.parallel_nest(w, [cg.dim(targets, 0)], ["b"]) as (b,):
        w(f"tg = {T}[{b}]")
        w("found = False")
        with w.block(f"if tg >= 0 and tg < {classes}:"):  # TensorFlow: out of range or non-finite says False
            w(f"tv = {P}[{b} * {classes} + tg]")
            w(f"finite = {cg.call('isfinite', None, 'tv')}")
            w("more = 0")
            with w.block(f"for {l} in range({classes}):"):
                w(f"u = {P}[{b} * {classes} + {l}]")
                w(f"finite = finite and {cg.call('isfinite', None, 'u')}")
                w("more += 1 if u > tv else 0")
            w(f"found = finite and more < {k}")
        w(f"{Y}[{b}] = found")


@kernel("take_along_axis", "scatter_along_axis")
def _(cg, w, i, ins):
    if ins.op == "take_along_axis":
        x, indices = ins.inputs
        shape_src = x
    else:
        updates, indices, shape_src = ins.inputs
    out = ins.outputs[0]
    Y, I = cg.define_output(out, w), cg.array(indices)
    axis = ins.attrs["axis"]
    size = cg.dim(shape_src, axis)
    outer, n_idx, inner = _axis_split(cg.dims(indices), axis)
    if ins.op == "scatter_along_axis":
        cg.prefill(w, out, Y, 0)
    with cg.parallel_nest(w, [outer, n_idx, inner], ["o", "t", "j"]) as (o, t, j):
        w(f"at = ({o} * {n_idx} + {t}) * {inner} + {j}")
        w(f"ix = {I}[at]")
        with w.block(f"if ix < 0 or ix >= {size}:"):
            _raise(cg, w, i, f"index {{}} is out of range for axis {axis} of size {{}}", "ix", size)
        w(f"src = ({o} * {size} + ix) * {inner} + {j}")
        if ins.op == "take_along_axis":
            w(f"{Y}[at] = {cg.array(x)}[src]")
        else:
            w(cg.accumulate(Y, "src", f"{cg.array(updates)}[at]"))


# --- depthwise convolution ---------------------------------------------------------------------------------
# One thread (or iteration) per output element, summing its taps: no scratch, no atomics, so
# the CPU, CUDA and native libraries share these three emitters.
def _depthwise_setup(cg, w, ins, x, f_dims, grad):
    a = ins.attrs
    geo = conv_geometry(cg, w, x, (f_dims[0], f_dims[1]), a["strides"], a["dilations"], a["padding"], grad)
    return geo, a["strides"], a["dilations"], _t(cg, ins.outputs[0])


@kernel("depthwise_conv2d_native")
def _(cg, w, i, ins):
    x, f = ins.inputs
    out = ins.outputs[0]
    Y, X, F = cg.define_output(out, w), cg.array(x), cg.array(f)
    kh, kw, c_in, m = cg.dims(f)
    geo, (sh, sw), (dh, dw), t = _depthwise_setup(cg, w, ins, x, (kh, kw), out)
    p, q = cg.uid("p"), cg.uid("q")
    with cg.parallel_nest(w, [geo["N"], geo["OH"], geo["OW"], c_in, m], ["n", "oh", "ow", "c", "m"]) as (
            n, oh, ow, c, mm):
        w(f"acc = {t}(0)")
        with w.block(f"for {p} in range({kh}):"):
            input_coordinate(w, "ih", oh, p, sh, dh, geo["PT"], geo["H"])
            with w.block(f"for {q} in range({kw}):"):
                input_coordinate(w, "iw", ow, q, sw, dw, geo["PL"], geo["W"])
                w(f"acc = {t}(acc + {X}[(({n} * {geo['H']} + ih) * {geo['W']} + iw) * {c_in} + {c}] * "
                  f"{F}[(({p} * {kw} + {q}) * {c_in} + {c}) * {m} + {mm}])")
        w(f"{Y}[(({n} * {geo['OH']} + {oh}) * {geo['OW']} + {ow}) * ({c_in} * {m}) + {c} * {m} + {mm}] = acc")


@kernel("depthwise_conv2d_native_backprop_input")
def _(cg, w, i, ins):
    g, f, like = ins.inputs
    out = ins.outputs[0]
    Y, G, F = cg.define_output(out, w), cg.array(g), cg.array(f)
    kh, kw, c_in, m = cg.dims(f)
    geo, (sh, sw), (dh, dw), t = _depthwise_setup(cg, w, ins, like, (kh, kw), g)
    p, q, k = cg.uid("p"), cg.uid("q"), cg.uid("k")
    with cg.parallel_nest(w, [geo["N"], geo["H"], geo["W"], c_in], ["n", "ih", "iw", "c"]) as (n, ih, iw, c):
        w(f"acc = {t}(0)")
        with w.block(f"for {p} in range({kh}):"):
            w(f"top = {ih} + {geo['PT']} - {p} * {dh}")
            with w.block(f"if top < 0 or top % {sh} != 0 or top // {sh} >= {geo['OH']}:"):
                w("continue")
            w(f"oh = top // {sh}")
            with w.block(f"for {q} in range({kw}):"):
                w(f"left = {iw} + {geo['PL']} - {q} * {dw}")
                with w.block(f"if left < 0 or left % {sw} != 0 or left // {sw} >= {geo['OW']}:"):
                    w("continue")
                w(f"ow = left // {sw}")
                w(f"src = (({n} * {geo['OH']} + oh) * {geo['OW']} + ow) * ({c_in} * {m}) + {c} * {m}")
                w(f"tap = (({p} * {kw} + {q}) * {c_in} + {c}) * {m}")
                with w.block(f"for {k} in range({m}):"):
                    w(f"acc = {t}(acc + {G}[src + {k}] * {F}[tap + {k}])")
        w(f"{Y}[(({n} * {geo['H']} + {ih}) * {geo['W']} + {iw}) * {c_in} + {c}] = acc")


@kernel("depthwise_conv2d_native_backprop_filter")
def _(cg, w, i, ins):
    x, g, like = ins.inputs
    out = ins.outputs[0]
    Y, X, G = cg.define_output(out, w), cg.array(x), cg.array(g)
    kh, kw, c_in, m = cg.dims(like)
    geo, (sh, sw), (dh, dw), t = _depthwise_setup(cg, w, ins, x, (kh, kw), g)
    n, oh, ow = cg.uid("n"), cg.uid("oh"), cg.uid("ow")
    with cg.parallel_nest(w, [kh, kw, c_in, m], ["p", "q", "c", "m"]) as (p, q, c, mm):
        w(f"acc = {t}(0)")
        with w.block(f"for {n} in range({geo['N']}):"):
            with w.block(f"for {oh} in range({geo['OH']}):"):
                input_coordinate(w, "ih", oh, p, sh, dh, geo["PT"], geo["H"])
                with w.block(f"for {ow} in range({geo['OW']}):"):
                    input_coordinate(w, "iw", ow, q, sw, dw, geo["PL"], geo["W"])
                    w(f"acc = {t}(acc + {X}[(({n} * {geo['H']} + ih) * {geo['W']} + iw) * {c_in} + {c}] * "
                      f"{G}[(({n} * {geo['OH']} + {oh}) * {geo['OW']} + {ow}) * ({c_in} * {m}) + {c} * {m} + {mm}])")
        w(f"{Y}[(({p} * {kw} + {q}) * {c_in} + {c}) * {m} + {mm}] = acc")

"""What the native target emits where the CPU backend calls a library: matrix products and
convolutions become graphc's own loops (no BLAS, nothing Python-linked), and the ``shape`` op,
which the CPU backend evaluates on the host, becomes a kernel; pooling walks channels
innermost. Every other group reuses the CPU emitters unchanged (``NativeKernelContext``).

The product loops are graphc's own (``emit/gemm.py``), shared with the CPU backend's products
split by columns.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ...errors import CompileError
from ..emit import groups
from ..emit import ops as shared_ops
from ..emit import scalar
from ..emit.direct_conv import direct_conv, direct_conv_fits, row_epilogue
from ..emit.gemm import K_UNROLL, PANEL_BYTES, gemm, kstep, row_blocks, signed, zero_rows
from ..emit.loops import nest, product, static_int

POOL_UNROLL = 16   # pooling over fewer (literal) channels keeps them in locals


def implicit_conv(cg, w, root, x, f, target, row_done) -> None:
    """conv2d as a product without im2col: row i of the (N*OH*OW, KH*KW*C) patch matrix is
    read straight from the input, tap by tap (a tap in the padding reads as 0), so the patch
    matrix is never written. Taken when C is a literal >= K_UNROLL."""
    a = root.attrs
    dtype = cg.dtype(root.outputs[0])
    zero = scalar.literal(0, dtype)
    kh, kw, cin, n = cg.dims(f)
    sh, sw = a["strides"]
    dh, dw = a["dilations"]
    geo = shared_ops.conv_geometry(cg, w, x, (int(kh), int(kw)), a["strides"], a["dilations"], a["padding"],
                                 root.outputs[0])
    X, F = cg.array(x), cg.array(f)
    m = f"({geo['N']} * {geo['OH']} * {geo['OW']})"
    n_lit, c_lit = static_int(n), int(cin)
    whole = n_lit is not None and n_lit * int(kh) * int(kw) * c_lit * dtype.itemsize <= PANEL_BYTES

    if int(dw) == 1 and _inside(cg, x, root.outputs[0], (int(kh), int(kw)), a):
        row_pass = _inside_row_pass(cg, geo, X, F, target, zero, n, int(kh), int(kw), c_lit, sh, sw, dh)
        row_blocks(cg, w, m, n, whole, row_pass, row_done)
        return

    def row_pass(w, i, rows, j0, jn):
        p, q, cb, c = cg.uid("mp"), cg.uid("mq"), cg.uid("mcb"), cg.uid("mc")
        for r in range(rows):  # the output pixel of each row
            w(f"mm_ow{r} = ({i} + {r}) % {geo['OW']}")
            w(f"mm_t{r} = ({i} + {r}) // {geo['OW']}")
            w(f"mm_oh{r} = mm_t{r} % {geo['OH']}")
            w(f"mm_n{r} = mm_t{r} // {geo['OH']}")
        zero_rows(cg, w, zero, target, "0", n, i, rows, j0, jn, index=signed)
        with w.block(f"for {p} in range({kh}):"):
            for r in range(rows):
                w(f"mm_ih{r} = mm_oh{r} * {sh} + {p} * {dh} - {geo['PT']}")
            with w.block(f"for {q} in range({kw}):"):
                for r in range(rows):
                    w(f"mm_iw{r} = mm_ow{r} * {sw} + {q} * {dw} - {geo['PL']}")
                    w(f"mm_ok{r} = (mm_ih{r} >= 0) & (mm_ih{r} < {geo['H']}) & (mm_iw{r} >= 0) & "
                      f"(mm_iw{r} < {geo['W']})")
                    w(f"mm_x{r} = ((mm_n{r} * {geo['H']} + mm_ih{r}) * {geo['W']} + mm_iw{r}) * {cin} "
                      f"if mm_ok{r} else 0")
                with w.block(f"if not ({' | '.join(f'mm_ok{r}' for r in range(rows))}):"):
                    w("continue")  # the whole tap is padding for these rows
                w(f"mm_tap = ({p} * {kw} + {q}) * {cin}")
                with w.block(f"for {cb} in range({cin} // {K_UNROLL}):"):
                    w(f"{c} = {cb} * {K_UNROLL}")
                    kstep(cg, w, F, target, n, rows,
                           lambda r, u: f"{X}[mm_x{r} + {c} + {u}] if mm_ok{r} else {zero}",
                           lambda u: f"(mm_tap + {c} + {u}) * {n}", j0, jn, K_UNROLL, index=signed)
                with w.block(f"for {c} in range({cin} // {K_UNROLL} * {K_UNROLL}, {cin}):"):
                    kstep(cg, w, F, target, n, rows, lambda r, u: f"{X}[mm_x{r} + {c}] if mm_ok{r} else {zero}",
                           lambda u: f"(mm_tap + {c}) * {n}", j0, jn, 1, index=signed)

    row_blocks(cg, w, m, n, whole, row_pass, row_done)


def _inside(cg, x, out, kernel, a) -> bool:
    """Whether every window lies inside the input (static sizes, no padding on any side)."""
    dx, do = cg.dims(x), cg.dims(out)
    sizes = [static_int(d) for d in (dx[1], dx[2], do[1], do[2])]
    if any(s is None for s in sizes):
        return False
    h, wd, oh, ow = sizes
    (kh, kw), (sh, sw), (dh, dw) = kernel, a["strides"], a["dilations"]
    return (oh - 1) * sh + (kh - 1) * dh + 1 <= h and (ow - 1) * sw + (kw - 1) * dw + 1 <= wd


def _inside_row_pass(cg, geo, X, F, target, zero, n, kh, kw, cin, sh, sw, dh):
    """``implicit_conv``'s row pass when every window lies inside the input and the filter is
    not dilated along the width: a filter row's KW*C taps are one contiguous run of the input
    (and of the filter's rows), read as one k loop with no bounds checks."""
    run = kw * cin
    H, W = geo["H"], geo["W"]

    def row_pass(w, i, rows, j0, jn):
        p, kb, kk = cg.uid("mp"), cg.uid("mkb"), cg.uid("mkk")
        for r in range(rows):
            w(f"mm_ow{r} = ({i} + {r}) % {geo['OW']}")
            w(f"mm_t{r} = ({i} + {r}) // {geo['OW']}")
            w(f"mm_x{r} = ((mm_t{r} // {geo['OH']} * {H} + mm_t{r} % {geo['OH']} * {sh}) * {W} + "
              f"mm_ow{r} * {sw}) * {cin}")
        zero_rows(cg, w, zero, target, "0", n, i, rows, j0, jn, index=signed)
        with w.block(f"for {p} in range({kh}):"):
            for r in range(rows):
                w(f"mm_xr{r} = mm_x{r} + {p} * {dh * cin} * {W}")
            w(f"mm_fr = {p} * {run}")
            with w.block(f"for {kb} in range({run // K_UNROLL}):"):
                w(f"{kk} = {kb} * {K_UNROLL}")
                kstep(cg, w, F, target, n, rows, lambda r, u: f"{X}[mm_xr{r} + {kk} + {u}]",
                       lambda u: f"(mm_fr + {kk} + {u}) * {n}", j0, jn, K_UNROLL, index=signed)
            with w.block(f"for {kk} in range({run // K_UNROLL * K_UNROLL}, {run}):"):
                kstep(cg, w, F, target, n, rows, lambda r, u: f"{X}[mm_xr{r} + {kk}]",
                       lambda u: f"(mm_fr + {kk}) * {n}", j0, jn, 1, index=signed)
    return row_pass


# --- group emitters ----------------------------------------------------------------------------------------
def emit_matmul(cg, g) -> None:
    root = cg.instrs[g.root]
    out = root.outputs[0]
    if not cg.dtype(out).is_floating:
        groups.emit_matmul(cg, g)  # integer products are loops on the CPU too
        return
    w = cg.body
    a, b = root.inputs
    ta, tb = root.attrs["transpose_a"], root.attrs["transpose_b"]
    target = groups.product_target(cg, w, g, out)
    cg.flat[out] = target
    rb = cg.rank(b)
    da, do = cg.dims(a), cg.dims(out)
    n = do[-1]
    k = da[-2] if ta else da[-1]
    dtype = cg.dtype(out)
    b_factors = [(b, rb - 2), (b, rb - 1)]
    if rb == 2 and not ta:  # every leading dim of a is a row of one product
        row_done = row_epilogue(cg, g, target, n)
        gemm(cg, w, dtype, cg.array(a), "0", False, cg.array(b), "0", tb, target, "0",
             f"({product(da[:-1])})", n, k, b_factors, row_done)
        if row_done is not None:
            return
    else:
        ops = groups.matmul_batch_operands(cg, w, a, b, do, target)
        A, B = cg.array(a), cg.array(b)
        m = do[-2]

        def body(w, off):
            gemm(cg, w, dtype, A, off["a"], ta, B, off["b"], tb, target, off["out"], m, n, k, b_factors)

        nest(cg, w, do[:-2], ops, body)
    _epilogue(cg, w, g)


def emit_conv(cg, g) -> None:
    """The product of the patch matrix with the filter, which is already the (KH*KW*C, O)
    matrix: read from the input as it goes (``implicit_conv``) when there are at least
    K_UNROLL channels, else written by the CPU backend's im2col into scratch first (a few
    channels: short rows); a 1x1 filter with stride 1 reads the input directly."""
    w = cg.body
    root = cg.instrs[g.root]
    x, f = root.inputs
    out = root.outputs[0]
    if not cg.dtype(out).is_floating:
        raise CompileError(f"the native target has no integer conv2d ({root.origin})")
    target = groups.product_target(cg, w, g, out)
    cg.flat[out] = target
    df = cg.dims(f)
    a = root.attrs
    row_done = row_epilogue(cg, g, target, df[3])
    if df[0] == "1" and df[1] == "1" and tuple(a["strides"]) == (1, 1):
        cols, rows, width = cg.array(x), f"({product(cg.dims(out)[:3])})", df[2]
    elif direct_conv_fits(cg, root, x, f):
        direct_conv(cg, w, root, x, f, target, row_done)
        if row_done is None:
            _epilogue(cg, w, g)
        return
    elif all(static_int(d) is not None for d in df[:3]) and int(df[2]) >= K_UNROLL:
        implicit_conv(cg, w, root, x, f, target, row_done)
        if row_done is None:
            _epilogue(cg, w, g)
        return
    else:
        cols, rows, width = shared_ops.im2col(cg, w, root, x, f)
    gemm(cg, w, cg.dtype(out), cols, "0", False, cg.array(f), "0", False, target, "0", rows, df[3], width,
         [(f, 0), (f, 1), (f, 2), (f, 3)], row_done)
    if row_done is None:
        _epilogue(cg, w, g)


def _epilogue(cg, w, g) -> None:
    epilogue = [i for i in g.members if i != g.root]
    if epilogue:
        groups.emit_members_over(cg, w, epilogue, cg.instrs[epilogue[-1]].outputs[0], set(g.outputs))


def _shape(cg, w, i, ins) -> None:
    """``shape(x)``: the CPU backend computes it on the host; here the library does."""
    x, out = ins.inputs[0], ins.outputs[0]
    Y = cg.define_output(out, w)
    t = f"np.{cg.dtype(out).np.name}"
    for k in range(cg.rank(x)):
        w(f"{Y}[{k}] = {t}({cg.dim(x, k)})")


def _pool(cg, w, i, ins) -> None:
    """max_pool2d / avg_pool2d with channels innermost: each window tap updates a run of C
    contiguous outputs from C contiguous inputs, which vectorizes (the CPU emitter's average
    pool walks one channel at a time; its max pool is a tree of maxima per channel, see
    ops._pool_pixels). The same values, NaN included; of two equal maxima this keeps the
    later, so -0.0 against 0.0 may differ in sign from the CPU backend's."""
    x, out = ins.inputs[0], ins.outputs[0]
    X, Y = cg.array(x), cg.define_output(out, w)
    a = ins.attrs
    kh, kw = a["ksize"]
    sh, sw = a["strides"]
    geo = shared_ops.conv_geometry(cg, w, x, (kh, kw), a["strides"], (1, 1), a["padding"], out)
    C = geo["C"]
    dtype = cg.dtype(out)
    t = f"np.{dtype.np.name}"
    is_max = ins.op == "max_pool2d"
    n, oh, ow, p, q, c = (cg.uid(v) for v in ("n", "oh", "ow", "p", "q", "c"))
    if static_int(C) is not None and int(C) < POOL_UNROLL:
        _pool_unrolled(cg, w, X, Y, geo, int(C), kh, kw, sh, sw, dtype, is_max, (n, oh, ow, p, q))
        return
    with w.block(f"for {n} in range({geo['N']}):"):
        with w.block(f"for {oh} in range({geo['OH']}):"):
            with w.block(f"for {ow} in range({geo['OW']}):"):
                w(f"dst = (({n} * {geo['OH']} + {oh}) * {geo['OW']} + {ow}) * {C}")
                first = _pool_start(dtype, is_max)
                if not is_max:
                    w("count = 0")
                with w.block(f"for {c} in range({C}):"):
                    w(f"{Y}[dst + {c}] = {first}")
                with _window_taps(w, geo, (n, oh, ow, p, q), kh, kw, sh, sw, C, counting=not is_max):
                    with w.block(f"for {c} in range({C}):"):
                        if is_max:  # rt.maximum, with | for a select instead of a branch
                            w(f"best = {Y}[dst + {c}]")
                            w(f"v = {X}[src + {c}]")
                            w(f"{Y}[dst + {c}] = best if ((best > v) | (best != best)) else v")
                        else:
                            w(f"{Y}[dst + {c}] += {X}[src + {c}]")
                if not is_max:
                    with w.block(f"for {c} in range({C}):"):
                        w(f"{Y}[dst + {c}] = {t}({Y}[dst + {c}] / count)")


@contextlib.contextmanager
def _window_taps(w, geo, names, kh, kw, sh, sw, C, counting: bool):
    """The loops over one pooling window's taps, with ``src`` the tap's first channel in the
    input (and ``count`` the taps so far, for the average); the caller writes the body."""
    n, oh, ow, p, q = names
    with w.block(f"for {p} in range({kh}):"):
        shared_ops.input_coordinate(w, "ih", oh, p, sh, 1, geo["PT"], geo["H"])
        with w.block(f"for {q} in range({kw}):"):
            shared_ops.input_coordinate(w, "iw", ow, q, sw, 1, geo["PL"], geo["W"])
            w(f"src = (({n} * {geo['H']} + ih) * {geo['W']} + iw) * {C}")
            if counting:
                w("count += 1")
            yield


def _pool_start(dtype, is_max: bool) -> str:
    """The value a pooling window starts from: the dtype's lowest for max, 0 for the sum."""
    if is_max:
        return scalar.literal(-np.inf if dtype.is_floating else np.iinfo(dtype.np).min, dtype)
    return scalar.literal(0, dtype)


def _pool_unrolled(cg, w, X, Y, geo, C, kh, kw, sh, sw, dtype, is_max, names) -> None:
    """Pooling over a few channels (a literal C below POOL_UNROLL): a loop of C along the
    channels is too short to vectorize and each tap stored every output again; here each
    output's C values are locals, updated tap by tap and stored once."""
    n, oh, ow, p, q = names
    t = f"np.{dtype.np.name}"
    first = _pool_start(dtype, is_max)
    with w.block(f"for {n} in range({geo['N']}):"):
        with w.block(f"for {oh} in range({geo['OH']}):"):
            with w.block(f"for {ow} in range({geo['OW']}):"):
                w(f"dst = (({n} * {geo['OH']} + {oh}) * {geo['OW']} + {ow}) * {C}")
                for c in range(C):
                    w(f"pb{c} = {first}")
                if not is_max:
                    w("count = 0")
                with _window_taps(w, geo, (n, oh, ow, p, q), kh, kw, sh, sw, C, counting=not is_max):
                    for c in range(C):
                        if is_max:  # rt.maximum, with | for a select instead of a branch
                            w(f"v = {X}[src + {c}]")
                            w(f"pb{c} = pb{c} if ((pb{c} > v) | (pb{c} != pb{c})) else v")
                        else:
                            w(f"pb{c} += {X}[src + {c}]")
                for c in range(C):
                    w(f"{Y}[dst + {c}] = pb{c}" if is_max else f"{Y}[dst + {c}] = {t}(pb{c} / count)")


OP_KERNELS = {"shape": _shape, "max_pool2d": _pool, "avg_pool2d": _pool}


def emit_op_kernel(cg, g) -> None:
    (i,) = g.members
    ins = cg.instrs[i]
    emitter = OP_KERNELS.get(ins.op)
    if emitter is not None:
        emitter(cg, cg.body, i, ins)
        return
    groups.emit_op_kernel(cg, g)


GROUP_EMITTERS = {
    "elementwise": groups.emit_elementwise,
    "reduce": groups.emit_reduce,
    "matmul": emit_matmul,
    "conv": emit_conv,
    "op": emit_op_kernel,
}

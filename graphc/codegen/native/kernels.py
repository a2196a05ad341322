"""What the native target emits where the CPU backend calls a library: matrix products and
convolutions become graphc's own loops (no BLAS, nothing Python-linked), and the ``shape`` op,
which the CPU backend evaluates on the host, becomes a kernel; pooling walks channels
innermost. Every other group reuses the CPU emitters unchanged (``NativeKernelContext``).

The product loops are written for LLVM to vectorize (measured on the 2-core dev machine
against OpenBLAS' sgemm through ``np.dot``, one thread each, see docs/NATIVE.md):
  * ``axpy`` form, the general case: four rows of C at a time, each block finished over
    all of k while it sits in L1, four steps of k unrolled, so each pass over a row of B does
    16 multiply-adds per store of C; the inner loop runs along contiguous rows of B and C.
    A B larger than 512 KiB is read in panels of 256 columns, which stay in L2. (4 rows x 4
    steps measured best for AVX2: 16 broadcasts fill its 16 vector registers.)
  * ``dot`` form, for narrow outputs (a literal n < 16, e.g. the logits layer) and for
    ``transpose_b``: each element of C is a dot product along contiguous rows, which
    vectorizes as a reduction (``rt.fold_muladd``, the one reassociable add); four columns share each load of A.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ...errors import CompileError
from ..emit import groups
from ..emit import ops as shared_ops
from ..emit import scalar
from ..emit.direct_conv import direct_conv, direct_conv_fits, row_epilogue
from ..emit.loops import nest, product

PANEL_BYTES = 1 << 19  # B up to 512 KiB is one panel; larger B is read in panels of
N_BLOCK = 256          # columns (256 columns x k fits L2 for k up to ~500)
ROWS = 4           # rows of C per pass (axpy form)
K_UNROLL = 4       # k steps per pass over a row of B (axpy form)
DOT_COLUMNS = 4    # columns of C per pass (dot form)
NARROW = 16        # a literal n below this takes the dot form
POOL_UNROLL = 16   # pooling over fewer (literal) channels keeps them in locals


def _static(expr: str):
    try:
        return int(expr)
    except (TypeError, ValueError):
        return None


def gemm(cg, w, dtype, A: str, a_off: str, ta: bool, B: str, b_off: str, tb: bool, C: str, c_off: str,
         m: str, n: str, k: str, b_factors, row_done=None) -> None:
    """``C[c_off + i*n + j] = sum_kk A(i, kk) * B(kk, j)`` over flat arrays, where A is (m, k)
    row-major at ``a_off`` (or (k, m) if ``ta``) and B is (k, n) (or (n, k) if ``tb``).
    ``b_factors`` are the scratch factors of one matrix of B, for packing it when needed.
    ``row_done(w, i, j0, jn)``, if given, emits what to do with columns j0..j0+jn of row ``i``
    of C once they are final (the group's epilogue, while they are in cache)."""
    zero = scalar.literal(0, dtype)
    lda = m if ta else k

    def a_at(i: str, kk: str) -> str:
        return f"{A}[{a_off} + ({kk}) * {lda} + {i}]" if ta else f"{A}[{a_off} + ({i}) * {lda} + {kk}]"

    n_lit, k_lit = _static(n), _static(k)
    narrow = n_lit is not None and n_lit < NARROW and (k_lit is None or k_lit >= NARROW)
    if not ta and (tb or narrow):
        if tb:
            rows_b, rows_off = B, b_off
        else:  # pack B transposed: its columns become contiguous rows
            rows_b, rows_off = cg.scratch(b_factors, dtype, w), "0"
            kk, j = cg.uid("pk"), cg.uid("pj")
            with w.block(f"for {kk} in range({k}):"):
                with w.block(f"for {j} in range({n}):"):
                    w(f"{rows_b}[{j} * {k} + {kk}] = {B}[{b_off} + {kk} * {n} + {j}]")
        _dot_form(cg, w, zero, A, a_off, rows_b, rows_off, C, c_off, m, n, k, row_done)
        return
    if tb:  # (with ta) pack B row-major so the inner loop runs along it
        packed = cg.scratch(b_factors, dtype, w)
        kk, j = cg.uid("pk"), cg.uid("pj")
        with w.block(f"for {j} in range({n}):"):
            with w.block(f"for {kk} in range({k}):"):
                w(f"{packed}[{kk} * {n} + {j}] = {B}[{b_off} + {j} * {k} + {kk}]")
        B, b_off = packed, "0"
    _axpy_form(cg, w, zero, a_at, B, b_off, C, c_off, m, n, k, n_lit, k_lit, dtype.itemsize, row_done)


def _dot_form(cg, w, zero, A, a_off, R, r_off, C, c_off, m, n, k, row_done) -> None:
    """C[i, j] = dot(A row i, R row j), rows contiguous; DOT_COLUMNS columns per pass."""
    i, jb, j, kk = cg.uid("mi"), cg.uid("mjb"), cg.uid("mj"), cg.uid("mk")
    ar, cr = cg.uid("mar"), cg.uid("mcr")
    with w.block(f"for {i} in range({m}):"):
        w(f"{ar} = {a_off} + {i} * {k}")
        w(f"{cr} = {c_off} + {i} * {n}")
        with w.block(f"for {jb} in range({n} // {DOT_COLUMNS}):"):
            w(f"{j} = {jb} * {DOT_COLUMNS}")
            for u in range(DOT_COLUMNS):
                w(f"mm_s{u} = {zero}")
                w(f"mm_r{u} = {r_off} + ({j} + {u}) * {k}")
            with w.block(f"for {kk} in range({k}):"):
                w(f"mm_a = {A}[{ar} + {kk}]")
                for u in range(DOT_COLUMNS):
                    w(f"mm_s{u} = rt.fold_muladd(mm_s{u}, mm_a, {R}[mm_r{u} + {kk}])")
            for u in range(DOT_COLUMNS):
                w(f"{C}[{cr} + {j} + {u}] = mm_s{u}")
        with w.block(f"for {j} in range({n} // {DOT_COLUMNS} * {DOT_COLUMNS}, {n}):"):
            w(f"mm_s0 = {zero}")
            w(f"mm_r0 = {r_off} + {j} * {k}")
            with w.block(f"for {kk} in range({k}):"):
                w(f"mm_s0 = rt.fold_muladd(mm_s0, {A}[{ar} + {kk}], {R}[mm_r0 + {kk}])")
            w(f"{C}[{cr} + {j}] = mm_s0")
        if row_done is not None:
            row_done(w, i, "0", n)


def _axpy_form(cg, w, zero, a_at, B, b_off, C, c_off, m, n, k, n_lit, k_lit, itemsize, row_done) -> None:
    whole = n_lit is not None and k_lit is not None and n_lit * k_lit * itemsize <= PANEL_BYTES

    def row_pass(w, i, rows, j0, jn):
        _row_pass(cg, w, zero, a_at, B, b_off, C, c_off, n, k, i, rows, j0, jn)

    row_blocks(cg, w, m, n, whole, row_pass, row_done)


def row_blocks(cg, w, m, n, whole: bool, row_pass, row_done) -> None:
    """Blocks of ROWS rows of C, each finished over all of k while it sits in L1, then
    ``row_done`` on them; unless ``whole``, B is read in panels of N_BLOCK columns, small
    enough to stay in L2 from one row block to the next."""
    if whole:
        j0, jn = "0", n
    else:
        j0, jn = cg.uid("mj0"), cg.uid("mjn")
        w.lines.append("    " * w.level + f"for {j0} in range(0, {n}, {N_BLOCK}):")
        w.level += 1
        w(f"{jn} = min({N_BLOCK}, {n} - {j0})")

    def done(w, rows_from: str, count: int) -> None:
        if row_done is not None:
            rr = cg.uid("mr")
            with w.block(f"for {rr} in range({count}):"):
                row_done(w, f"{rows_from} + {rr}", j0, jn)

    ib, i = cg.uid("mib"), cg.uid("mi")
    with w.block(f"for {ib} in range({m} // {ROWS}):"):
        w(f"{i} = {ib} * {ROWS}")
        row_pass(w, i, ROWS, j0, jn)
        done(w, i, ROWS)
    with w.block(f"for {i} in range({m} // {ROWS} * {ROWS}, {m}):"):
        row_pass(w, i, 1, j0, jn)
        done(w, i, 1)
    if not whole:
        w.level -= 1


def _kstep(cg, w, B, C, n, rows, a_value, b_row, j0, jn, unroll: int) -> None:
    """``unroll`` steps of k for ``rows`` rows: a_value(r, u) is A's element, b_row(u) the
    offset of B's row; the inner loop runs along the columns j0..j0+jn."""
    j = cg.uid("mj")
    for r in range(rows):
        for u in range(unroll):
            w(f"mm_a{r}_{u} = {a_value(r, u)}")
    for u in range(unroll):
        w(f"mm_b{u} = {b_row(u)} + {j0}")
    with w.block(f"for {j} in range({jn}):"):
        for u in range(unroll):
            w(f"mm_v{u} = {B}[mm_b{u} + {j}]")
        for r in range(rows):
            total = f"{C}[mm_c{r} + {j}]"
            for u in range(unroll):  # FMAs (runtime.muladd: kernels are strict)
                total = f"rt.muladd(mm_a{r}_{u}, mm_v{u}, {total})"
            w(f"{C}[mm_c{r} + {j}] = {total}")


def _row_pass(cg, w, zero, a_at, B, b_off, C, c_off, n, k, i, rows, j0, jn) -> None:
    """Columns j0..j0+jn of rows i..i+rows-1 of C = A[those rows] @ B[:, those columns]:
    K_UNROLL steps of k per pass over the rows, so each store of C carries K_UNROLL
    multiply-adds and each load of B serves every row."""
    kb, kk = cg.uid("mkb"), cg.uid("mkk")
    _zero_rows(cg, w, zero, C, c_off, n, i, rows, j0, jn)
    with w.block(f"for {kb} in range({k} // {K_UNROLL}):"):
        w(f"{kk} = {kb} * {K_UNROLL}")
        _kstep(cg, w, B, C, n, rows, lambda r, u: a_at(f"{i} + {r}", f"{kk} + {u}"),
               lambda u: f"{b_off} + ({kk} + {u}) * {n}", j0, jn, K_UNROLL)
    with w.block(f"for {kk} in range({k} // {K_UNROLL} * {K_UNROLL}, {k}):"):
        _kstep(cg, w, B, C, n, rows, lambda r, u: a_at(f"{i} + {r}", kk), lambda u: f"{b_off} + {kk} * {n}",
               j0, jn, 1)


def _zero_rows(cg, w, zero, C, c_off, n, i, rows, j0, jn) -> None:
    j = cg.uid("mj")
    for r in range(rows):
        w(f"mm_c{r} = {c_off} + ({i} + {r}) * {n} + {j0}")
    with w.block(f"for {j} in range({jn}):"):
        for r in range(rows):
            w(f"{C}[mm_c{r} + {j}] = {zero}")


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
    n_lit, c_lit = _static(n), int(cin)
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
        _zero_rows(cg, w, zero, target, "0", n, i, rows, j0, jn)
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
                    _kstep(cg, w, F, target, n, rows,
                           lambda r, u: f"{X}[mm_x{r} + {c} + {u}] if mm_ok{r} else {zero}",
                           lambda u: f"(mm_tap + {c} + {u}) * {n}", j0, jn, K_UNROLL)
                with w.block(f"for {c} in range({cin} // {K_UNROLL} * {K_UNROLL}, {cin}):"):
                    _kstep(cg, w, F, target, n, rows, lambda r, u: f"{X}[mm_x{r} + {c}] if mm_ok{r} else {zero}",
                           lambda u: f"(mm_tap + {c}) * {n}", j0, jn, 1)

    row_blocks(cg, w, m, n, whole, row_pass, row_done)


def _inside(cg, x, out, kernel, a) -> bool:
    """Whether every window lies inside the input (static sizes, no padding on any side)."""
    dx, do = cg.dims(x), cg.dims(out)
    sizes = [_static(d) for d in (dx[1], dx[2], do[1], do[2])]
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
        _zero_rows(cg, w, zero, target, "0", n, i, rows, j0, jn)
        with w.block(f"for {p} in range({kh}):"):
            for r in range(rows):
                w(f"mm_xr{r} = mm_x{r} + {p} * {dh * cin} * {W}")
            w(f"mm_fr = {p} * {run}")
            with w.block(f"for {kb} in range({run // K_UNROLL}):"):
                w(f"{kk} = {kb} * {K_UNROLL}")
                _kstep(cg, w, F, target, n, rows, lambda r, u: f"{X}[mm_xr{r} + {kk} + {u}]",
                       lambda u: f"(mm_fr + {kk} + {u}) * {n}", j0, jn, K_UNROLL)
            with w.block(f"for {kk} in range({run // K_UNROLL * K_UNROLL}, {run}):"):
                _kstep(cg, w, F, target, n, rows, lambda r, u: f"{X}[mm_xr{r} + {kk}]",
                       lambda u: f"(mm_fr + {kk}) * {n}", j0, jn, 1)
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
    elif all(_static(d) is not None for d in df[:3]) and int(df[2]) >= K_UNROLL:
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
    contiguous outputs from C contiguous inputs, which vectorizes (the CPU emitter walks one
    channel at a time). Same taps in the same order, so the same results, NaN included."""
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
    if _static(C) is not None and int(C) < POOL_UNROLL:
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

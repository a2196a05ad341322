"""graphc's own matrix-product loops, written for LLVM to vectorize. The native target runs
every floating product through them (no BLAS in a library that needs only libc); the CPU
backend runs products with few rows through them, split by columns across its pool, where a
BLAS call would run on one thread (groups.py, ``emit_matmul``).

Measured on the 2-core dev machine against OpenBLAS' sgemm through ``np.dot``, one thread
each (docs/NATIVE.md):
  * ``axpy`` form, the general case: four rows of C at a time, each block finished over
    all of k while it sits in L1, four steps of k unrolled, so each pass over a row of B does
    16 multiply-adds per store of C; the inner loop runs along contiguous rows of B and C.
    A B larger than 512 KiB is read in panels of 256 columns, which stay in L2. (4 rows x 4
    steps measured best for AVX2: 16 broadcasts fill its 16 vector registers.)
  * ``dot`` form, for narrow outputs (a literal n < 16, e.g. the logits layer) and for
    ``transpose_b``: each element of C is a dot product along contiguous rows, which
    vectorizes as a reduction (``rt.fold_muladd``, the one reassociable add); four columns
    share each load of A.
"""
from __future__ import annotations

from . import scalar
from .loops import static_int

PANEL_BYTES = 1 << 19  # B up to 512 KiB is one panel; larger B is read in panels of
N_BLOCK = 256          # columns (256 columns x k fits L2 for k up to ~500)
ROWS = 4           # rows of C per pass (axpy form)
K_UNROLL = 4       # k steps per pass over a row of B (axpy form)
DOT_COLUMNS = 4    # columns of C per pass (dot form)
NARROW = 16        # a literal n below this takes the dot form


def unsigned(expr: str) -> str:
    """An index made unsigned for the inner loops. numba checks a signed index for a
    negative value (wraparound) and LLVM cannot prove ``row offset + j`` non-negative, so
    the loads became gathers behind that check: the 784x256 GEMV took 67 us signed and
    9.4 us unsigned. The base and the loop counter are both uint64 (uint64 with an int64
    would make numba compute in float64)."""
    return f"np.uint64({expr})"


def signed(expr: str) -> str:
    """An index left signed: the implicit convolution's (native/kernels.py) rows are short
    (an output channel per column, LeNet's 16) and measured faster signed: the native LeNet
    took 34 µs at batch 1 and 1.61 ms at 64 signed, 39 µs and 1.87 ms unsigned."""
    return expr


def gemm(cg, w, dtype, A: str, a_off: str, ta: bool, B: str, b_off: str, tb: bool, C: str, c_off: str,
         m: str, n: str, k: str, b_factors, row_done=None, columns=None) -> None:
    """``C[c_off + i*n + j] = sum_kk A(i, kk) * B(kk, j)`` over flat arrays, where A is (m, k)
    row-major at ``a_off`` (or (k, m) if ``ta``) and B is (k, n) (or (n, k) if ``tb``).
    ``b_factors`` are the scratch factors of one matrix of B, for packing it when needed.
    ``row_done(w, i, j0, jn)``, if given, emits what to do with columns j0..j0+jn of row ``i``
    of C once they are final (the group's epilogue, while they are in cache). ``columns``
    ``(j0, jn)``, if given, computes only columns j0..j0+jn of C: one part of a product that
    the CPU backend splits by columns (B is then never packed: packing needs scratch, which
    parts cannot share)."""
    zero = scalar.literal(0, dtype)
    lda = m if ta else k

    def a_at(i: str, kk: str) -> str:
        return f"{A}[{a_off} + ({kk}) * {lda} + {i}]" if ta else f"{A}[{a_off} + ({i}) * {lda} + {kk}]"

    n_lit, k_lit = static_int(n), static_int(k)
    narrow = n_lit is not None and n_lit < NARROW and (k_lit is None or k_lit >= NARROW) and columns is None
    if not ta and (tb or narrow):
        if tb:
            rows_b, rows_off = B, b_off
        else:  # pack B transposed: its columns become contiguous rows
            rows_b, rows_off = cg.scratch(b_factors, dtype, w), "0"
            kk, j = cg.uid("pk"), cg.uid("pj")
            with w.block(f"for {kk} in range({k}):"):
                with w.block(f"for {j} in range({n}):"):
                    w(f"{rows_b}[{j} * {k} + {kk}] = {B}[{b_off} + {kk} * {n} + {j}]")
        _dot_form(cg, w, zero, A, a_off, rows_b, rows_off, C, c_off, m, n, k, row_done, columns)
        return
    if tb:  # (with ta) pack B row-major so the inner loop runs along it
        assert columns is None, "a product split by columns never packs B"
        packed = cg.scratch(b_factors, dtype, w)
        kk, j = cg.uid("pk"), cg.uid("pj")
        with w.block(f"for {j} in range({n}):"):
            with w.block(f"for {kk} in range({k}):"):
                w(f"{packed}[{kk} * {n} + {j}] = {B}[{b_off} + {j} * {k} + {kk}]")
        B, b_off = packed, "0"
    _axpy_form(cg, w, zero, a_at, B, b_off, C, c_off, m, n, k, n_lit, k_lit, dtype.itemsize, row_done, columns)


def _dot_form(cg, w, zero, A, a_off, R, r_off, C, c_off, m, n, k, row_done, columns=None) -> None:
    """C[i, j] = dot(A row i, R row j), rows contiguous; DOT_COLUMNS columns per pass, over
    the columns j0..j0+jn of ``columns`` (all n if None)."""
    c0, cn = columns or ("0", n)
    i, jb, j, kk = cg.uid("mi"), cg.uid("mjb"), cg.uid("mj"), cg.uid("mk")
    ar, cr = cg.uid("mar"), cg.uid("mcr")
    with w.block(f"for {i} in range({m}):"):
        w(f"{ar} = {unsigned(f'{a_off} + {i} * {k}')}")
        w(f"{cr} = {c_off} + {i} * {n}")
        with w.block(f"for {jb} in range({cn} // {DOT_COLUMNS}):"):
            w(f"{j} = {c0} + {jb} * {DOT_COLUMNS}")
            for u in range(DOT_COLUMNS):
                w(f"mm_s{u} = {zero}")
                w(f"mm_r{u} = {unsigned(f'{r_off} + ({j} + {u}) * {k}')}")
            with w.block(f"for {kk} in range({unsigned(k)}):"):
                w(f"mm_a = {A}[{ar} + {kk}]")
                for u in range(DOT_COLUMNS):
                    w(f"mm_s{u} = rt.fold_muladd(mm_s{u}, mm_a, {R}[mm_r{u} + {kk}])")
            for u in range(DOT_COLUMNS):
                w(f"{C}[{cr} + {j} + {u}] = mm_s{u}")
        with w.block(f"for {j} in range({c0} + {cn} // {DOT_COLUMNS} * {DOT_COLUMNS}, {c0} + {cn}):"):
            w(f"mm_s0 = {zero}")
            w(f"mm_r0 = {unsigned(f'{r_off} + {j} * {k}')}")
            with w.block(f"for {kk} in range({unsigned(k)}):"):
                w(f"mm_s0 = rt.fold_muladd(mm_s0, {A}[{ar} + {kk}], {R}[mm_r0 + {kk}])")
            w(f"{C}[{cr} + {j}] = mm_s0")
        if row_done is not None:
            row_done(w, i, c0, cn)


def _axpy_form(cg, w, zero, a_at, B, b_off, C, c_off, m, n, k, n_lit, k_lit, itemsize, row_done,
               columns=None) -> None:
    whole = n_lit is not None and k_lit is not None and n_lit * k_lit * itemsize <= PANEL_BYTES

    def row_pass(w, i, rows, j0, jn):
        _row_pass(cg, w, zero, a_at, B, b_off, C, c_off, n, k, i, rows, j0, jn)

    row_blocks(cg, w, m, n, whole, row_pass, row_done, columns)


def row_blocks(cg, w, m, n, whole: bool, row_pass, row_done, columns=None) -> None:
    """Blocks of ROWS rows of C, each finished over all of k while it sits in L1, then
    ``row_done`` on them; unless ``whole``, B is read in panels of N_BLOCK columns, small
    enough to stay in L2 from one row block to the next. ``columns`` ``(j0, jn)`` limits
    the product to those columns (one part of a split); they are read in panels too."""
    c0, cn = columns or ("0", n)
    if whole:
        j0, jn = c0, cn
    else:
        # the panel's first column from a loop by ones: from ``range(c0, c0 + cn, N_BLOCK)``
        # LLVM cannot tell that the indices are non-negative, and numba's wraparound check
        # then keeps the inner loops scalar (measured: 6x slower)
        panel, j0, jn = cg.uid("mjp"), cg.uid("mj0"), cg.uid("mjn")
        w.lines.append("    " * w.level + f"for {panel} in range(({cn} + {N_BLOCK - 1}) // {N_BLOCK}):")
        w.level += 1
        w(f"{j0} = {c0} + {panel} * {N_BLOCK}")
        w(f"{jn} = min({N_BLOCK}, {cn} - {panel} * {N_BLOCK})")

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


def kstep(cg, w, B, C, n, rows, a_value, b_row, j0, jn, unroll: int, index=None) -> None:
    """``unroll`` steps of k for ``rows`` rows: a_value(r, u) is A's element, b_row(u) the
    offset of B's row; the inner loop runs along the columns j0..j0+jn."""
    j = cg.uid("mj")
    for r in range(rows):
        for u in range(unroll):
            w(f"mm_a{r}_{u} = {a_value(r, u)}")
    index = index or unsigned
    for u in range(unroll):
        w(f"mm_b{u} = {index(f'{b_row(u)} + {j0}')}")
    with w.block(f"for {j} in range({index(jn)}):"):
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
    zero_rows(cg, w, zero, C, c_off, n, i, rows, j0, jn)
    with w.block(f"for {kb} in range({k} // {K_UNROLL}):"):
        w(f"{kk} = {kb} * {K_UNROLL}")
        kstep(cg, w, B, C, n, rows, lambda r, u: a_at(f"{i} + {r}", f"{kk} + {u}"),
               lambda u: f"{b_off} + ({kk} + {u}) * {n}", j0, jn, K_UNROLL)
    with w.block(f"for {kk} in range({k} // {K_UNROLL} * {K_UNROLL}, {k}):"):
        kstep(cg, w, B, C, n, rows, lambda r, u: a_at(f"{i} + {r}", kk), lambda u: f"{b_off} + {kk} * {n}",
               j0, jn, 1)


def zero_rows(cg, w, zero, C, c_off, n, i, rows, j0, jn, index=None) -> None:
    j = cg.uid("mj")
    index = index or unsigned
    for r in range(rows):
        w(f"mm_c{r} = {index(f'{c_off} + ({i} + {r}) * {n} + {j0}')}")
    with w.block(f"for {j} in range({index(jn)}):"):
        for r in range(rows):
            w(f"{C}[mm_c{r} + {j}] = {zero}")

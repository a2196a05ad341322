"""What the native target emits where the CPU backend calls a library: matrix products and
convolutions become graphc's own loops (no BLAS, nothing Python-linked), and the ``shape`` op,
which the CPU backend evaluates on the host, becomes a kernel. Every other group reuses the
CPU emitters unchanged (through ``NativeKernelContext``).

The product loops are written for LLVM to vectorize (measured on the 2-core dev machine
against OpenBLAS' sgemm through ``np.dot``, one thread each, see docs/NATIVE.md):
  * ``axpy`` form, the general case: four rows of C at a time and four steps of k unrolled,
    so each pass over a row of B does 16 multiply-adds per store of C; the inner loop runs
    along contiguous rows of B and C. k is blocked (256) so a block of B stays in cache.
  * ``dot`` form, for narrow outputs (a literal n < 16, e.g. the logits layer) and for
    ``transpose_b``: each element of C is a dot product along contiguous rows, which
    vectorizes as a reduction (fastmath ``reassoc``); four columns share each load of A.
"""
from __future__ import annotations

from ...errors import CompileError
from ..cpu import kernels as cpu_kernels
from ..cpu import ops as cpu_ops
from ..cpu import scalar
from ...optimizer.program import VARIABLE_WRITES
from ..cpu.loops import classify, nest
from ..cpu.source import product

K_BLOCK = 256      # k steps per block of the axpy form
ROWS = 4           # rows of C per pass (axpy form)
K_UNROLL = 4       # k steps per pass over a row of B (axpy form)
DOT_COLUMNS = 4    # columns of C per pass (dot form)
NARROW = 16        # a literal n below this takes the dot form


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
    ``row_done(w, i)``, if given, emits what to do with row ``i`` of C once it is final (the
    group's epilogue, while the row is in cache)."""
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
    _axpy_form(cg, w, zero, a_at, B, b_off, C, c_off, m, n, k, k_lit, row_done)


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
                    w(f"mm_s{u} += mm_a * {R}[mm_r{u} + {kk}]")
            for u in range(DOT_COLUMNS):
                w(f"{C}[{cr} + {j} + {u}] = mm_s{u}")
        with w.block(f"for {j} in range({n} // {DOT_COLUMNS} * {DOT_COLUMNS}, {n}):"):
            w(f"mm_s0 = {zero}")
            w(f"mm_r0 = {r_off} + {j} * {k}")
            with w.block(f"for {kk} in range({k}):"):
                w(f"mm_s0 += {A}[{ar} + {kk}] * {R}[mm_r0 + {kk}]")
            w(f"{C}[{cr} + {j}] = mm_s0")
        if row_done is not None:
            row_done(w, i)


def _axpy_form(cg, w, zero, a_at, B, b_off, C, c_off, m, n, k, k_lit, row_done) -> None:
    z = cg.uid("mz")
    with w.block(f"for {z} in range({m} * {n}):"):
        w(f"{C}[{c_off} + {z}] = {zero}")
    k0, kn = cg.uid("mk0"), cg.uid("mkn")
    blocked = k_lit is None or k_lit > K_BLOCK
    if blocked:
        w.lines.append("    " * w.level + f"for {k0} in range(0, {k}, {K_BLOCK}):")
        w.level += 1
        w(f"{kn} = min({K_BLOCK}, {k} - {k0})")
    else:
        w(f"{k0} = 0")
        w(f"{kn} = {k}")

    def done(w, rows_from: str, count: int) -> None:
        if row_done is None:
            return
        rr = cg.uid("mr")
        if blocked:  # rows are final after the last block of k
            with w.block(f"if {k0} + {kn} == {k}:"):
                with w.block(f"for {rr} in range({count}):"):
                    row_done(w, f"{rows_from} + {rr}")
        else:
            with w.block(f"for {rr} in range({count}):"):
                row_done(w, f"{rows_from} + {rr}")

    ib, i = cg.uid("mib"), cg.uid("mi")
    with w.block(f"for {ib} in range({m} // {ROWS}):"):
        w(f"{i} = {ib} * {ROWS}")
        _row_pass(cg, w, a_at, B, b_off, C, c_off, n, i, ROWS, k0, kn)
        done(w, i, ROWS)
    with w.block(f"for {i} in range({m} // {ROWS} * {ROWS}, {m}):"):
        _row_pass(cg, w, a_at, B, b_off, C, c_off, n, i, 1, k0, kn)
        done(w, i, 1)
    if blocked:
        w.level -= 1


def _row_pass(cg, w, a_at, B, b_off, C, c_off, n, i, rows, k0, kn) -> None:
    """Rows i..i+rows-1 of C += A[those rows, k0:k0+kn] @ B[k0:k0+kn]."""
    kb, kk, j, q = cg.uid("mkb"), cg.uid("mkk"), cg.uid("mj"), cg.uid("mq")
    for r in range(rows):
        w(f"mm_c{r} = {c_off} + ({i} + {r}) * {n}")
    with w.block(f"for {kb} in range({kn} // {K_UNROLL}):"):
        w(f"{kk} = {k0} + {kb} * {K_UNROLL}")
        for r in range(rows):
            for u in range(K_UNROLL):
                w(f"mm_a{r}_{u} = {a_at(f'{i} + {r}', f'{kk} + {u}')}")
        for u in range(K_UNROLL):
            w(f"mm_b{u} = {b_off} + ({kk} + {u}) * {n}")
        with w.block(f"for {j} in range({n}):"):
            for u in range(K_UNROLL):
                w(f"mm_v{u} = {B}[mm_b{u} + {j}]")
            for r in range(rows):
                terms = " + ".join(f"mm_a{r}_{u} * mm_v{u}" for u in range(K_UNROLL))
                w(f"{C}[mm_c{r} + {j}] += {terms}")
    with w.block(f"for {kk} in range({k0} + {kn} // {K_UNROLL} * {K_UNROLL}, {k0} + {kn}):"):
        for r in range(rows):
            w(f"mm_a{r}_0 = {a_at(f'{i} + {r}', kk)}")
        w(f"{q} = {b_off} + {kk} * {n}")
        with w.block(f"for {j} in range({n}):"):
            w(f"mm_v0 = {B}[{q} + {j}]")
            for r in range(rows):
                w(f"{C}[mm_c{r} + {j}] += mm_a{r}_0 * mm_v0")


# --- group emitters ----------------------------------------------------------------------------------------
def emit_matmul(cg, g) -> None:
    root = cg.instrs[g.root]
    out = root.outputs[0]
    if not cg.dtype(out).is_floating:
        cpu_kernels.emit_matmul(cg, g)  # integer products are loops on the CPU too
        return
    w = cg.body
    a, b = root.inputs
    ta, tb = root.attrs["transpose_a"], root.attrs["transpose_b"]
    target = cpu_kernels._target(cg, w, g, out)
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
        ops = cpu_kernels.matmul_batch_operands(cg, w, a, b, do, target)
        A, B = cg.array(a), cg.array(b)
        m = do[-2]

        def body(w, off):
            gemm(cg, w, dtype, A, off["a"], ta, B, off["b"], tb, target, off["out"], m, n, k, b_factors)

        nest(cg, w, do[:-2], ops, body)
    _epilogue(cg, w, g)


def emit_conv(cg, g) -> None:
    """im2col (the CPU backend's, into scratch) and the product with the filter, which is
    already the (KH*KW*C, O) matrix; a 1x1 filter with stride 1 reads the input directly."""
    w = cg.body
    root = cg.instrs[g.root]
    x, f = root.inputs
    out = root.outputs[0]
    if not cg.dtype(out).is_floating:
        raise CompileError(f"the native target has no integer conv2d ({root.origin})")
    target = cpu_kernels._target(cg, w, g, out)
    cg.flat[out] = target
    df = cg.dims(f)
    a = root.attrs
    if df[0] == "1" and df[1] == "1" and tuple(a["strides"]) == (1, 1):
        cols, rows, width = cg.array(x), f"({product(cg.dims(out)[:3])})", df[2]
    else:
        cols, rows, width = cpu_ops.im2col(cg, w, root, x, f)
    row_done = row_epilogue(cg, g, target, df[3])
    gemm(cg, w, cg.dtype(out), cols, "0", False, cg.array(f), "0", False, target, "0", rows, df[3], width,
         [(f, 0), (f, 1), (f, 2), (f, 3)], row_done)
    if row_done is None:
        _epilogue(cg, w, g)


def row_epilogue(cg, g, target: str, n: str):
    """The group's elementwise epilogue (bias, activation) as ``row_done`` for ``gemm``: run
    on each row of the product as soon as it is final, while it is in cache, instead of in a
    pass of its own. None when an operand does not broadcast row by row (the epilogue then
    runs as a separate loop)."""
    members = [i for i in g.members if i != g.root]
    if not members:
        return None
    out = cg.instrs[g.root].outputs[0]
    rank = cg.rank(out)
    produced = {v for i in members for v in cg.instrs[i].outputs} | {out}
    external, kinds = [], {}
    for i in members:
        for u in cpu_kernels.data_inputs(cg.instrs[i]):
            if u in produced or u in external or cg.is_literal(u):
                continue
            k = classify(cg, u, out)
            rows, col = set(k[:-1]) or {"b"}, k[-1]
            if len(rows) != 1 or "r" in rows or col == "r":
                return None
            external.append(u)
            kinds[u] = (rows.pop(), col)
    if any(cg.instrs[i].op in VARIABLE_WRITES for i in members) or rank < 1:
        return None
    stores = set(g.outputs)
    targets = {}
    for i in members:
        for v in cg.instrs[i].outputs:
            if v in stores:
                targets[v] = cg.define_output(v, cg.body)
    arrays = {u: cg.array(u) for u in external}

    def emit(w, i: str) -> None:
        base, j = cg.uid("eb"), cg.uid("ej")
        w(f"{base} = ({i}) * {n}")
        scalars = {}
        for u in external:  # one value per row (or per product): loaded once
            index = {("b", "b"): "0", ("e", "b"): f"({i})"}.get(kinds[u])
            if index is not None:
                w(f"x{cg.lid(u)} = {arrays[u]}[{index}]")
                scalars[u] = f"x{cg.lid(u)}"
        with w.block(f"for {j} in range({n}):"):
            row = dict(scalars)
            for u in external:
                if u not in row:
                    index = f"{base} + {j}" if kinds[u] == ("e", "e") else j
                    w(f"x{cg.lid(u)} = {arrays[u]}[{index}]")
                    row[u] = f"x{cg.lid(u)}"
            w(f"mm_root = {target}[{base} + {j}]")
            row[out] = "mm_root"
            cpu_kernels.emit_scalar_members(cg, w, members, row, targets, f"{base} + {j}")
    return emit


def _epilogue(cg, w, g) -> None:
    epilogue = [i for i in g.members if i != g.root]
    if epilogue:
        cpu_kernels.emit_members_over(cg, w, epilogue, cg.instrs[epilogue[-1]].outputs[0], set(g.outputs))


def _shape(cg, w, i, ins) -> None:
    """``shape(x)``: the CPU backend computes it on the host; here the library does."""
    x, out = ins.inputs[0], ins.outputs[0]
    Y = cg.define_output(out, w)
    t = f"np.{cg.dtype(out).np.name}"
    for k in range(cg.rank(x)):
        w(f"{Y}[{k}] = {t}({cg.dim(x, k)})")


SINGLE = {"shape": _shape}


def emit_single(cg, g) -> None:
    (i,) = g.members
    ins = cg.instrs[i]
    emitter = SINGLE.get(ins.op)
    if emitter is not None:
        emitter(cg, cg.body, i, ins)
        return
    cpu_kernels.emit_single(cg, g)


GROUP_EMITTERS = {
    "elementwise": cpu_kernels.emit_elementwise,
    "reduce": cpu_kernels.emit_reduce,
    "matmul": emit_matmul,
    "conv": emit_conv,
    "single": emit_single,
}

"""Products with few rows (a GEMV at batch 1) on the CPU backend: graphc's own loops
(emit/gemm.py) split by columns, so that the driver can hand the parts to the pool
(emit/groups.py, ``split_product``), with the epilogue run on each part's columns. Every
layout and epilogue kind is compared with the reference backend and with NumPy in float64,
run whole and in parts on the pool; the products that keep BLAS are listed too."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.codegen.cpu import parallel
from fuzz_graphs import pool_at_full_width, splits_on_the_pool

# (A's shape, B's shape, transpose_a, transpose_b, epilogue, dtype, split by columns?), where
# "columns" means graphc's loops, whole, split only when the fuzzers' setting
# (splits_on_the_pool) lowers SPLIT_COLUMNS; "told": BLAS, split only when told
CASES = [
    ((1, 784), (784, 256), False, False, "bias_relu", np.float32, True),    # W9's first layer
    ((1, 300), (64, 300), False, True, "bias", np.float32, True),           # torch's Linear (B transposed)
    ((100, 3), (100, 64), True, False, "per_row", np.float64, True),        # A transposed
    ((16, 50), (50, 40), False, False, "matrix", np.float32, True),         # 16 rows: the most split
    ((5, 30), (30, 33), False, False, "none", np.float64, True),
    ((2, 1, 40), (40, 48), False, False, "bias_relu", np.float32, True),     # A's leading dims are rows
    ((17, 20), (20, 64), False, False, "bias", np.float32, False),          # more rows: BLAS
    ((2, 40), (40, 10), False, False, "bias", np.float32, "told"),          # few columns, small: BLAS ...
    ((2, 40), (40, 30), False, False, "bias", np.float32, "columns"),       # ... larger: whole (WHOLE_MACS)
    ((1, 256), (10, 256), False, True, "bias", np.float32, "columns"),      # a logits layer, B transposed
    ((20, 2), (64, 20), True, True, "none", np.float32, False),             # both transposed: BLAS
]


def _graph(case, rng):
    sa, sb, ta, tb, epilogue, dt, _ = case
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder(gc.as_dtype(dt), sa, "a")
        bv = rng.standard_normal(sb).astype(dt)
        y = gc.matmul(a, gc.constant(bv), transpose_a=ta, transpose_b=tb)
        n = sb[0] if tb else sb[1]
        rows = sa[1] if ta else int(np.prod(sa[:-1]))
        extra = {"bias_relu": (n,), "bias": (n,), "per_row": (rows, 1), "matrix": (rows, n)}.get(epilogue)
        c = rng.standard_normal(extra).astype(dt) if extra else None
        if c is not None:
            y = y + gc.constant(c)
        if epilogue == "bias_relu":
            y = gc.nn.relu(y)
    return g, a, y, rng.standard_normal(sa).astype(dt), bv, c


def _numpy(case, av, bv, c):
    sa, sb, ta, tb, epilogue, _, _ = case
    a64, b64 = av.astype(np.float64), bv.astype(np.float64)
    if len(sa) > 2:
        a64 = a64.reshape(-1, sa[-1])
    y = (a64.T if ta else a64) @ (b64.T if tb else b64)
    if c is not None:
        y = y + c.astype(np.float64)
    return np.maximum(y, 0) if epilogue == "bias_relu" else y


@pytest.fixture(scope="module")
def pool():
    yield from pool_at_full_width()


@pytest.mark.parametrize("on_pool", [False, True], ids=["whole", "in-parts"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{'x'.join(map(str, c[0]))}@{'x'.join(map(str, c[1]))}"
                         f"{'-ta' if c[2] else ''}{'-tb' if c[3] else ''}-{c[4]}-{np.dtype(c[5]).name}")
def test_few_row_products_split_by_columns_match_numpy_and_the_reference(case, on_pool, pool):
    rng = np.random.default_rng(7)
    g, a, y, av, bv, c = _graph(case, rng)
    with gc.Session(graph=g, device="reference") as sess:
        want = sess.run(y, {a: av})
    jobs = parallel.control()[parallel.GEN]
    with splits_on_the_pool(on_pool), gc.Session(graph=g, device="cpu") as sess:
        got = sess.run(y, {a: av})
        (runner,) = sess._runners.values()
        calls = runner.executable.generated.calls
    tol = 2e-4 if case[5] == np.float32 else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(want.reshape(-1, want.shape[-1]), _numpy(case, av, bv, c), rtol=tol, atol=tol)
    assert len(calls) == 1, [call.label for call in calls]    # the epilogue is fused into the product
    (call,) = calls
    split = call.split is not None
    assert split == (case[6] is True or (case[6] in ("columns", "told") and on_pool)), call.source
    assert ("np.dot" in call.source) == (not split and case[6] in (False, "told"))
    if split and on_pool and parallel.NATIVE and parallel.THREADS > 1:
        assert parallel.control()[parallel.GEN] > jobs           # its parts ran on the pool


@pytest.mark.parametrize("transpose_b", [False, True], ids=["b", "b-transposed"])
def test_a_batch_of_none_gets_a_few_row_variant_compiled_on_first_use(transpose_b, pool):
    """A product whose rows are the batch dim (None): BLAS for large batches, and a variant
    split by columns, compiled only when a batch of at most SPLIT_ROWS rows comes; both the
    generic driver (first call of a shape) and the specialized one (later calls) choose."""
    from graphc.codegen.cpu.executable import _FirstCall
    from graphc.codegen.emit.groups import SPLIT_ROWS
    rng = np.random.default_rng(3)
    bv = rng.standard_normal((48, 40) if transpose_b else (40, 48)).astype(np.float32)
    bias = rng.standard_normal(48).astype(np.float32)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 40), "x")
        y = gc.nn.relu(gc.matmul(x, gc.constant(bv), transpose_b=transpose_b) + gc.constant(bias))
    ref = gc.Session(graph=g, device="reference")
    with gc.Session(graph=g, device="cpu") as sess:
        big = rng.standard_normal((SPLIT_ROWS + 5, 40)).astype(np.float32)
        for _ in range(2):
            np.testing.assert_allclose(sess.run(y, {x: big}), ref.run(y, {x: big}), rtol=2e-4, atol=2e-4)
        (runner,) = sess._runners.values()
        exe = runner.executable
        (call,) = exe.generated.calls
        assert call.few_rows is not None and call.split is None and "np.dot" in call.source
        variant = exe.calls[-1]
        assert variant.split is not None and "np.dot" not in variant.source
        assert isinstance(exe.kernel_functions[-1], _FirstCall)   # batch 21 did not compile it
        for rows in (1, SPLIT_ROWS, 1, 3):
            xv = rng.standard_normal((rows, 40)).astype(np.float32)
            for _ in range(2):
                np.testing.assert_allclose(sess.run(y, {x: xv}), ref.run(y, {x: xv}), rtol=2e-4, atol=2e-4)
        assert not isinstance(exe.kernel_functions[-1], _FirstCall)
        np.testing.assert_allclose(sess.run(y, {x: big}), ref.run(y, {x: big}), rtol=2e-4, atol=2e-4)


def test_every_product_of_a_batch_of_none_finds_its_own_variant(pool):
    """Three layers, each with a variant: batch 1 runs the three variants (the narrow last
    one whole), batch 40 BLAS."""
    rng = np.random.default_rng(4)
    sizes = (50, 64, 120, 10)
    g = gc.Graph()
    with g.as_default():
        h = x = gc.placeholder(gc.float64, (None, sizes[0]), "x")
        for a, b in zip(sizes, sizes[1:]):
            h = gc.tanh(gc.matmul(h, gc.constant(rng.standard_normal((a, b)))) + gc.constant(rng.standard_normal(b)))
    ref = gc.Session(graph=g, device="reference")
    with gc.Session(graph=g, device="cpu") as sess:
        for rows in (1, 40, 2, 1):
            xv = rng.standard_normal((rows, sizes[0]))
            np.testing.assert_allclose(sess.run(h, {x: xv}), ref.run(h, {x: xv}), rtol=1e-10, atol=1e-10)
        (runner,) = sess._runners.values()
        assert sum(call.few_rows is not None for call in runner.executable.generated.calls) == 3

"""matmul: 2-D, batched with broadcasting of batch dims, transpose flags, 1-D operands as in
NumPy, the ``@`` operator, dtypes, zero-size dims, None dims and errors.

Results are compared with ``np.matmul`` written in the test. Inputs are placeholders fed at
run time, and each test fetches many products in one run (compiled backends pay per graph)."""
from __future__ import annotations

import os

import numpy as np

import graphc as gc
from support import Cases, Feeds, assert_close, build_error, check, made_here, run_error  # noqa: F401

THIS_FILE = os.path.basename(__file__)

NUMERIC = [np.float32, np.float64, np.int32, np.int64, np.uint8, np.int8]


def sample(shape, dtype, seed=0) -> np.ndarray:
    """Small values: products of integers stay exact (8-bit types may wrap, as in NumPy)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape).astype(dtype)
    if dtype == np.int8:
        return rng.integers(-128, 128, shape).astype(dtype)
    return rng.integers(-50, 50, shape).astype(dtype)


# float32 sums of a few products: compare a little looser than the elementwise default
F32 = dict(rtol=1e-5, atol=1e-5)


def test_matmul_2d_all_numeric_dtypes(graph, evaluate):
    f = Feeds()
    c = Cases()
    for dt in NUMERIC:
        a, b = sample((3, 4), dt), sample((4, 2), dt, seed=1)
        xa, xb = f(a), f(b)
        n = np.dtype(dt).name
        c.add(f"{n}_fn", gc.matmul(xa, xb), np.matmul(a, b))
        c.add(f"{n}_op", xa @ xb, a @ b)
        c.add(f"{n}_self", gc.matmul(xb, xb, transpose_a=True), b.T @ b)
    # 8-bit products wrap around as in NumPy
    big = np.full((2, 3), 200, np.uint8)
    c.add("uint8_wrap", gc.matmul(f(big), f(big.T.copy())), np.matmul(big, big.T))
    i8 = np.full((2, 3), 100, np.int8)
    c.add("int8_wrap", gc.matmul(f(i8), f(i8), transpose_b=True), np.matmul(i8, i8.T))
    # int64 beyond the int32 range
    wide = np.array([[2**40, 1], [3, -(2**35)]], np.int64)
    c.add("int64_wide", gc.matmul(f(wide), f(wide)), wide @ wide)
    # 1x1 and identity
    one = sample((1, 1), np.float64)
    c.add("1x1", gc.matmul(f(one), f(one)), one @ one)
    eye = np.eye(3, dtype=np.float32)
    m = sample((3, 3), np.float32, seed=5)
    c.add("identity", gc.matmul(f(eye), f(m)), m)
    check(evaluate, c, f, **F32)


def test_matmul_operator_with_numpy_and_python_operands(graph, evaluate):
    f = Feeds()
    a = sample((2, 3), np.float64)
    b = sample((3, 2), np.float64, seed=1)
    x = f(a)
    c = Cases()
    c.add("np_right", x @ b, a @ b)
    c.add("np_left", b @ x, b @ a)
    c.add("list_right", x @ [[1.0], [2.0], [3.0]], a @ np.array([[1.0], [2.0], [3.0]]))
    xi = f(sample((2, 2), np.int32))
    c.add("py_int_keeps_int32", xi @ [[1, 0], [0, 1]], sample((2, 2), np.int32))
    c.add("promote", gc.matmul(f(a.astype(np.float32)), b), np.matmul(a.astype(np.float32), b))
    check(evaluate, c, f)


def test_matmul_transpose_flags(graph, evaluate):
    f = Feeds()
    c = Cases()
    a, b = sample((4, 3), np.float32), sample((2, 4), np.float32, seed=1)
    xa, xb = f(a), f(b)
    c.add("ta", gc.matmul(xa, f(sample((4, 5), np.float32, seed=2)), transpose_a=True),
          a.T @ sample((4, 5), np.float32, seed=2))
    c.add("tb", gc.matmul(f(sample((5, 4), np.float32, seed=3)), xb, transpose_b=True),
          sample((5, 4), np.float32, seed=3) @ b.T)
    c.add("both", gc.matmul(xa, xb, transpose_a=True, transpose_b=True), a.T @ b.T)
    c.add("neither", gc.matmul(xb, xa), b @ a)
    # batched: flags swap the last two axes only
    p, q = sample((2, 3, 4), np.float64), sample((2, 5, 3), np.float64, seed=4)
    xp, xq = f(p), f(q)
    c.add("batch_ta_tb", gc.matmul(xp, xq, transpose_a=True, transpose_b=True),
          np.matmul(np.swapaxes(p, -1, -2), np.swapaxes(q, -1, -2)))
    c.add("batch_tb", gc.matmul(xq, xq, transpose_b=True), np.matmul(q, np.swapaxes(q, -1, -2)))
    c.add("batch_ta", gc.matmul(xp, xp, transpose_a=True), np.matmul(np.swapaxes(p, -1, -2), p))
    i = sample((3, 2), np.int64)
    c.add("int_ta", gc.matmul(f(i), f(i), transpose_a=True), i.T @ i)
    check(evaluate, c, f, **F32)


def test_matmul_batched_with_broadcasting(graph, evaluate):
    f = Feeds()
    c = Cases()
    a, b = sample((2, 1, 3, 4), np.float32), sample((5, 4, 2), np.float32, seed=1)
    c.add("bcast", gc.matmul(f(a), f(b)), np.matmul(a, b))
    assert c["bcast"][0].shape == (2, 5, 3, 2)
    p, q = sample((3, 2, 4), np.float64), sample((4, 5), np.float64, seed=2)
    xp, xq = f(p), f(q)
    c.add("batch_2d", gc.matmul(xp, xq), np.matmul(p, q))
    c.add("2d_batch", gc.matmul(f(q.T.copy()), f(sample((3, 4, 2), np.float64, seed=3))),
          np.matmul(q.T, sample((3, 4, 2), np.float64, seed=3)))
    c.add("same_batch", gc.matmul(xp, f(sample((3, 4, 1), np.float64, seed=4))),
          np.matmul(p, sample((3, 4, 1), np.float64, seed=4)))
    r, s = sample((1, 2, 2, 3), np.int32), sample((4, 1, 3, 2), np.int32, seed=5)
    c.add("both_bcast_int", gc.matmul(f(r), f(s)), np.matmul(r, s))
    u, v = sample((2, 3, 3), np.uint8), sample((1, 3, 3), np.uint8, seed=6)
    c.add("uint8_bcast", gc.matmul(f(u), f(v)), np.matmul(u, v))
    c.add("op_bcast", f(r) @ f(s), r @ s)
    check(evaluate, c, f, **F32)


def test_matmul_one_dimensional_operands(graph, evaluate):
    f = Feeds()
    c = Cases()
    v3, w3 = sample((3,), np.float64), sample((3,), np.float64, seed=1)
    m32, m23 = sample((3, 2), np.float64, seed=2), sample((2, 3), np.float64, seed=3)
    b532 = sample((5, 3, 2), np.float64, seed=4)
    xv, xw, x32, x23 = f(v3), f(w3), f(m32), f(m23)
    c.add("vec_mat", gc.matmul(xv, x32), np.matmul(v3, m32))
    c.add("mat_vec", gc.matmul(x23, xv), np.matmul(m23, v3))
    c.add("vec_vec", gc.matmul(xv, xw), np.matmul(v3, w3))
    c.add("vec_vec_op", xv @ xw, v3 @ w3)
    c.add("vec_batch", gc.matmul(xv, f(b532)), np.matmul(v3, b532))
    c.add("batch_vec", gc.matmul(f(np.swapaxes(b532, 1, 2).copy()), xv), np.matmul(np.swapaxes(b532, 1, 2), v3))
    # the flag applies to the 2-D operand; a vector has nothing to transpose
    c.add("vec_mat_tb", gc.matmul(xv, x23, transpose_b=True), np.matmul(v3, m23.T))
    c.add("mat_vec_ta", gc.matmul(x32, xv, transpose_a=True), np.matmul(m32.T, v3))
    c.add("vec_mat_ta", gc.matmul(xv, x32, transpose_a=True), np.matmul(v3, m32))
    iv, im = sample((4,), np.int32), sample((4, 2), np.int32, seed=7)
    c.add("int_vec_mat", gc.matmul(f(iv), f(im)), np.matmul(iv, im))
    e = np.zeros((0,), np.float32)
    c.add("empty_vec_vec", gc.matmul(f(e), f(e)), np.float32(0.0))
    check(evaluate, c, f)
    assert c["vec_vec"][0].shape == () and c["vec_mat"][0].shape == (2,) and c["vec_batch"][0].shape == (5, 2)


def test_matmul_zero_size_dims(graph, evaluate):
    f = Feeds()
    c = Cases()
    for dt in NUMERIC:
        n = np.dtype(dt).name
        a, b = np.zeros((2, 0), dt), np.zeros((0, 3), dt)
        c.add(f"{n}_inner0", gc.matmul(f(a), f(b)), np.zeros((2, 3), dt))
    c.add("rows0", gc.matmul(f(np.zeros((0, 4), np.float32)), f(sample((4, 3), np.float32))),
          np.zeros((0, 3), np.float32))
    c.add("cols0", gc.matmul(f(sample((2, 4), np.float64)), f(np.zeros((4, 0)))), np.zeros((2, 0)))
    c.add("batch0", gc.matmul(f(np.zeros((0, 2, 3), np.int32)), f(sample((3, 4), np.int32))),
          np.zeros((0, 2, 4), np.int32))
    c.add("batch_inner0", gc.matmul(f(np.zeros((3, 2, 0), np.float32)), f(np.zeros((1, 0, 5), np.float32))),
          np.zeros((3, 2, 5), np.float32))
    c.add("inner0_ta", gc.matmul(f(np.zeros((0, 2), np.float64)), f(np.zeros((0, 3), np.float64)), transpose_a=True),
          np.zeros((2, 3)))
    check(evaluate, c, f)


def test_matmul_none_dims(graph, evaluate):
    f = Feeds()
    c = Cases()
    a = sample((5, 3), np.float32)
    b = sample((3, 4), np.float32, seed=1)
    xa = f(a, shape=(None, 3))
    c.add("rows", gc.matmul(xa, f(b)), a @ b, (None, 4))
    c.add("inner", gc.matmul(f(a, shape=(5, None)), f(b, shape=(None, 4))), a @ b, (5, 4))
    c.add("cols", gc.matmul(xa, f(b, shape=(3, None))), a @ b, (None, None))
    c.add("ta", gc.matmul(xa, xa, transpose_a=True), a.T @ a, (3, 3))
    c.add("tb", gc.matmul(xa, xa, transpose_b=True), a @ a.T, (None, None))
    p, q = sample((2, 2, 3), np.float64), sample((2, 3, 4), np.float64, seed=2)
    c.add("batch_none", gc.matmul(f(p, shape=(None, 2, 3)), f(q, shape=(None, 3, 4))), np.matmul(p, q), (None, 2, 4))
    c.add("batch_none_known", gc.matmul(f(p, shape=(None, 2, 3)), f(q)), np.matmul(p, q), (2, 2, 4))
    c.add("batch_none_2d", gc.matmul(f(p, shape=(None, None, 3)), f(q[0])), np.matmul(p, q[0]), (None, None, 4))
    # a None batch dim broadcasts at run time when it turns out to be 1
    one = sample((1, 2, 3), np.float64, seed=3)
    c.add("batch_none_is_1", gc.matmul(f(one, shape=(None, 2, 3)), f(q)), np.matmul(one, q), (2, 2, 4))
    v = sample((3,), np.float32, seed=4)
    c.add("vec_none", gc.matmul(xa, f(v, shape=(None,))), a @ v, (None,))
    check(evaluate, c, f, **F32)


def test_matmul_build_errors(graph):
    a = gc.placeholder(gc.float32, (2, 3))
    b = gc.placeholder(gc.float32, (4, 2))
    build_error(gc.ShapeError, lambda: gc.matmul(a, b), "matmul", "inner dimensions", "3", "4")
    build_error(gc.ShapeError, lambda: a @ a, "matmul", "inner dimensions")
    build_error(gc.ShapeError, lambda: gc.matmul(a, b, transpose_a=True), "matmul", "inner dimensions")
    build_error(gc.ShapeError, lambda: gc.matmul(a, b, transpose_b=True), "matmul", "inner dimensions")
    build_error(gc.ShapeError, lambda: gc.matmul(gc.placeholder(gc.float32, (3,)), b), "matmul", "inner dimensions")
    build_error(gc.ShapeError, lambda: gc.matmul(a, gc.placeholder(gc.float32, (2,))), "matmul", "inner dimensions")
    p = gc.placeholder(gc.float32, (4, 2, 3))
    q = gc.placeholder(gc.float32, (3, 3, 2))
    build_error(gc.ShapeError, lambda: gc.matmul(p, q), "matmul", "broadcast")
    build_error(gc.ShapeError, lambda: gc.matmul(gc.constant(2.0), a), "matmul")
    t = gc.placeholder(gc.bool_, (2, 2))
    build_error(gc.DTypeError, lambda: gc.matmul(t, t), "matmul", "bool")


def test_matmul_runtime_errors_on_none_dims(graph, evaluate):
    a = gc.placeholder(gc.float32, (2, None))
    b = gc.placeholder(gc.float32, (None, 3))
    m, line = made_here(gc.matmul(a, b))
    assert m.shape == (2, 3)
    run_error(evaluate, m, {a: np.zeros((2, 4), np.float32), b: np.zeros((3, 3), np.float32)}, line,
              "matmul", "inner dimensions", "4", "3")
    p = gc.placeholder(gc.float64, (None, 2, 3))
    q = gc.placeholder(gc.float64, (None, 3, 4))
    bm, line2 = made_here(p @ q)
    run_error(evaluate, bm, {p: np.zeros((2, 2, 3)), q: np.zeros((3, 3, 4))}, line2, "matmul", "broadcast")
    v = gc.placeholder(gc.int32, (None,))
    vm, line3 = made_here(gc.matmul(v, gc.placeholder_with_default(np.ones((3, 2), np.int32), (3, 2))))
    run_error(evaluate, vm, {v: np.ones(4, np.int32)}, line3, "matmul")
    r3 = np.arange(3, dtype=np.int32)
    assert_close(evaluate(vm, {v: r3}), r3 @ np.ones((3, 2), np.int32))

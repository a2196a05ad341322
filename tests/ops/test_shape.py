"""Shape ops and the source ops they lean on: constant, fill/zeros/ones(_like), gc.shape/size/rank,
placeholders, reshape, transpose, expand_dims/squeeze, broadcast_to, concat/stack/unstack, split,
tile, pad, ``__getitem__`` slicing, gather and one_hot.

Every result is compared with an independent NumPy expression; static shapes and dtypes are
checked as well as values. Checks are grouped so that each test builds one graph and fetches
many tensors in one run (compiled backends pay per graph). Inputs are placeholders fed at run
time, so that an optimizer cannot fold them away."""
from __future__ import annotations

import os

import numpy as np

import graphc as gc
from support import Cases, Feeds, assert_close, build_error, check, float_edges, made_here, run_error  # noqa: F401

THIS_FILE = os.path.basename(__file__)

ALL_DTYPES = [np.float32, np.float64, np.int32, np.int64, np.uint8, np.int8, np.bool_]


# --- helpers ------------------------------------------------------------------------------------
def sample(shape, dtype, seed=0) -> np.ndarray:
    """Distinct-looking values of ``dtype`` (ints beyond 32 bits for int64, full range for 8-bit)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape).astype(dtype)
    if dtype == np.int8:
        return rng.integers(-128, 128, shape).astype(dtype)
    if dtype == np.int64:
        return rng.integers(-2**40, 2**40, shape).astype(dtype)
    return rng.integers(-2**31, 2**31, shape).astype(dtype)


# --- constant / fill / zeros / ones -------------------------------------------------------------
def test_constant_keeps_numpy_dtypes_and_python_defaults(graph, evaluate):
    c = Cases()
    for dt in ALL_DTYPES:
        v = sample((2, 3), dt)
        c.add(f"np_{np.dtype(dt).name}", gc.constant(v), v)
        c.add(f"empty_{np.dtype(dt).name}", gc.constant(np.zeros((0, 3), dt)), np.zeros((0, 3), dt))
    c.add("py_float", gc.constant(1.5), np.float32(1.5))
    c.add("py_int", gc.constant(7), np.int64(7))
    c.add("py_bool", gc.constant([True, False]), np.array([True, False]))
    c.add("py_nested", gc.constant([[1, 2], [3, 4]]), np.array([[1, 2], [3, 4]], np.int64))
    c.add("explicit", gc.constant([1, 2], dtype=gc.uint8), np.array([1, 2], np.uint8))
    c.add("filled", gc.constant(2.5, shape=(2, 0, 3)), np.full((2, 0, 3), 2.5, np.float32))
    c.add("broadcast_scalar", gc.constant(-3, dtype=gc.int8, shape=(2, 2)), np.full((2, 2), -3, np.int8))
    c.add("reshaped", gc.constant(np.arange(6.0), shape=(3, 2)), np.arange(6.0).reshape(3, 2))
    c.add("edges", gc.constant(float_edges(np.float64)), float_edges(np.float64))
    check(evaluate, c)


def test_constant_build_errors(graph):
    build_error(gc.ShapeError, lambda: gc.constant(np.arange(6), shape=(4,)), "constant", "(4,)")
    build_error(gc.DTypeError, lambda: gc.constant(1.5, dtype=gc.int32), "const", "int32")


def test_fill_zeros_ones_like_all_dtypes_and_dims_from_shape(graph, evaluate):
    f = Feeds()
    x = f(sample((4, 3), np.float32), shape=(None, 3))
    c = Cases()
    for dt in ALL_DTYPES:
        gdt = gc.as_dtype(dt)
        name = np.dtype(dt).name
        c.add(f"zeros_{name}", gc.zeros((2, 3), gdt), np.zeros((2, 3), dt))
        c.add(f"ones_{name}", gc.ones([2, 0, 1], gdt), np.ones((2, 0, 1), dt))
        c.add(f"zeros_like_{name}", gc.zeros_like(x, dtype=gdt), np.zeros((4, 3), dt), (None, 3))
        c.add(f"ones_dyn_{name}", gc.ones([gc.shape(x)[0], 2], gdt), np.ones((4, 2), dt), (None, 2))
        value = sample((), dt, seed=3)
        c.add(f"fill_{name}", gc.fill([gc.shape(x)[1], gc.shape(x)[0]], f(value)), np.full((3, 4), value, dt),
              (3, None))
    c.add("zeros_default", gc.zeros([3]), np.zeros(3, np.float32))
    c.add("ones_like", gc.ones_like(x), np.ones((4, 3), np.float32), (None, 3))
    c.add("fill_py_float", gc.fill([2, 2], 1.5), np.full((2, 2), 1.5, np.float32))
    c.add("fill_py_int", gc.fill((3,), 4), np.full((3,), 4, np.int64))
    c.add("fill_from_shape_tensor", gc.fill(gc.shape(x), 2.0), np.full((4, 3), 2.0, np.float32), (None, 3))
    c.add("fill_scalar", gc.fill([], 7), np.int64(7))
    c.add("zeros_empty_from_shape", gc.zeros([gc.shape(x)[0], 0], gc.int8), np.zeros((4, 0), np.int8), (None, 0))
    check(evaluate, c, f)


def test_fill_rejects_shapes_unknown_at_build_time(graph):
    n = gc.placeholder(gc.int32, ())
    build_error(gc.ShapeError, lambda: gc.zeros([n, 3]), "fill", "gc.shape")
    build_error(gc.ShapeError, lambda: gc.fill([2, -1], 1.0), "fill", "-1")
    build_error(gc.ShapeError, lambda: gc.fill([2, 2], gc.constant([1.0, 2.0])), "fill", "scalar")
    assert not gc.placeholder(gc.float32).shape.known_rank  # the feed sets the rank (tests/test_rank_free.py)


# --- gc.shape / gc.size / gc.rank ---------------------------------------------------------------
def test_shape_size_rank(graph, evaluate):
    f = Feeds()
    x = f(sample((3, 4, 5), np.int8), shape=(None, 4, None))
    s = f(np.float64(2.0))
    e = f(np.zeros((2, 0), np.bool_), shape=(2, None))
    c = Cases()
    c.add("shape", gc.shape(x), np.array([3, 4, 5], np.int64), (3,))
    c.add("shape32", gc.shape(x, out_type=gc.int32), np.array([3, 4, 5], np.int32), (3,))
    c.add("shape_dim", gc.shape(x)[-1], np.int64(5), ())
    c.add("shape_scalar", gc.shape(s), np.zeros((0,), np.int64), (0,))
    c.add("shape_empty", gc.shape(e), np.array([2, 0], np.int64), (2,))
    c.add("size", gc.size(x), np.int64(60), ())
    c.add("size_scalar", gc.size(s), np.int64(1), ())
    c.add("size_empty", gc.size(e), np.int64(0), ())
    c.add("rank", gc.rank(x), np.int32(3), ())
    c.add("rank_scalar", gc.rank(s), np.int32(0), ())
    check(evaluate, c, f)


def test_size_honours_out_type(graph, evaluate):
    f = Feeds()
    x = f(sample((3, 4), np.float32), shape=(None, 4))
    c = Cases()
    c.add("size32", gc.size(x, out_type=gc.int32), np.int32(12), ())
    c.add("size64", gc.size(x, out_type=gc.int64), np.int64(12), ())
    check(evaluate, c, f)


def test_shape_rejects_non_integer_out_type(graph):
    x = gc.placeholder(gc.float32, (2,))
    build_error(gc.DTypeError, lambda: gc.shape(x, out_type=gc.float32), "shape", "float32")


# --- placeholder_with_default -------------------------------------------------------------------
def test_placeholder_with_default_same_shape_and_fed(graph, evaluate):
    default = sample((2, 3), np.int32)
    p = gc.placeholder_with_default(default, (2, 3))
    q = gc.placeholder_with_default(np.float32(1.0), ())
    assert p.shape == (2, 3) and p.dtype is gc.int32 and q.shape == ()
    out = evaluate({"p": p, "q": q, "p2": p * 2})
    assert_close(out["p"], default)
    assert_close(out["q"], np.float32(1.0))
    assert_close(out["p2"], default * 2)
    fed = sample((2, 3), np.int32, seed=1)
    out = evaluate({"p": p, "p2": p * 2}, {p: fed})
    assert_close(out["p"], fed)
    assert_close(out["p2"], fed * 2)


def test_placeholder_with_default_looser_shape(graph, evaluate):
    default = np.arange(6, dtype=np.float32).reshape(2, 3)
    p = gc.placeholder_with_default(default, (None, 3))
    assert p.shape == (None, 3) and p.dtype is gc.float32
    fed = np.ones((4, 3), np.float32)
    assert_close(evaluate(p + 1.0, {p: fed}), fed + 1.0)
    # not fed: the default flows through, although the declared shape is looser
    assert_close(evaluate(p + 1.0), default + 1.0)


def test_placeholder_with_default_rejects_incompatible_shape(graph):
    build_error(gc.ShapeError, lambda: gc.placeholder_with_default(np.zeros((2, 3)), (None, 4)),
                "placeholder_with_default")


# --- reshape ------------------------------------------------------------------------------------
def test_reshape_all_dtypes(graph, evaluate):
    f = Feeds()
    c = Cases()
    for dt in ALL_DTYPES:
        v = sample((2, 3, 4), dt)
        x = f(v)
        n = np.dtype(dt).name
        c.add(f"{n}_a", gc.reshape(x, (4, -1)), v.reshape(4, -1))
        c.add(f"{n}_b", gc.reshape(x, [-1]), v.reshape(-1))
        c.add(f"{n}_c", gc.reshape(x, (2, -1, 2)), v.reshape(2, -1, 2))
        c.add(f"{n}_d", gc.reshape(x, (24, 1, 1)), v.reshape(24, 1, 1))
        c.add(f"{n}_e", gc.reshape(x, np.array([3, 8])), v.reshape(3, 8))
    one = sample((1, 1), np.float64)
    c.add("to_scalar", gc.reshape(f(one), ()), one.reshape(()))
    c.add("from_scalar", gc.reshape(f(np.int32(5)), (1, 1, -1)), np.int32(5).reshape(1, 1, 1))
    empty = np.zeros((0, 4), np.uint8)
    c.add("empty_a", gc.reshape(f(empty), (-1, 2)), empty.reshape(-1, 2))
    c.add("empty_b", gc.reshape(f(empty), (4, 0, 3)), empty.reshape(4, 0, 3))
    check(evaluate, c, f)


def test_reshape_static_shapes_with_none_dims(graph, evaluate):
    f = Feeds()
    v = sample((3, 4, 5), np.float32)
    x = f(v, shape=(None, 4, 5))
    y = f(np.zeros((3, 20), np.int64), shape=(None, 20))
    c = Cases()
    c.add("flat20", gc.reshape(x, (-1, 20)), v.reshape(-1, 20), (None, 20))
    c.add("flat", gc.reshape(x, [-1]), v.reshape(-1), (None,))
    c.add("four", gc.reshape(x, (-1, 2, 2, 5)), v.reshape(-1, 2, 2, 5), (None, 2, 2, 5))
    c.add("last_from_shape", gc.reshape(x, [-1, gc.shape(x)[-1]]), v.reshape(-1, 5), (None, 5))
    c.add("concat_spec", gc.reshape(x, gc.concat([[-1], gc.shape(x)[2:]], 0)), v.reshape(-1, 5), (None, 5))
    c.add("like_other", gc.reshape(x, gc.shape(y)), v.reshape(3, 20), (None, 20))
    c.add("swap_dims", gc.reshape(x, [gc.shape(x)[2], gc.shape(x)[0], 4]), v.reshape(5, 3, 4), (5, None, 4))
    c.add("static_target", gc.reshape(x, (6, 10)), v.reshape(6, 10), (6, 10))
    check(evaluate, c, f)
    # zero rows through the same graph
    f.feed_dict[x] = np.zeros((0, 4, 5), np.float32)
    f.feed_dict[y] = np.zeros((0, 20), np.int64)
    out = evaluate({"flat20": c["flat20"][0], "like_other": c["like_other"][0]}, f.feed_dict)
    assert_close(out["flat20"], np.zeros((0, 20), np.float32))
    assert_close(out["like_other"], np.zeros((0, 20), np.float32))


def test_reshape_with_dims_from_gc_shape_infers_the_rest_statically(graph, evaluate):
    """``[gc.shape(x)[0], -1]`` keeps x's dim 0, so -1 is the product of the other (known) dims."""
    f = Feeds()
    v = sample((3, 4, 5), np.float64)
    x = f(v, shape=(None, 4, 5))
    c = Cases()
    c.add("batch_flat", gc.reshape(x, [gc.shape(x)[0], -1]), v.reshape(3, -1), (None, 20))
    c.add("batch_2", gc.reshape(x, [gc.shape(x)[0], 2, -1]), v.reshape(3, 2, -1), (None, 2, 10))
    c.add("stacked", gc.reshape(x, gc.stack([gc.shape(x)[0], -1])), v.reshape(3, -1), (None, 20))
    check(evaluate, c, f)


def test_reshape_runtime_mismatch_on_none_dims(graph, evaluate):
    x = gc.placeholder(gc.float32, (None, 2))
    r, line = made_here(gc.reshape(x, (2, 4)))
    assert r.shape == (2, 4)
    run_error(evaluate, r, {x: np.zeros((3, 2), np.float32)}, line, "reshape", "6")
    v = sample((4, 2), np.float32)
    assert_close(evaluate(r, {x: v}), v.reshape(2, 4))
    y = gc.placeholder(gc.int32, (None, 4, 5))
    s, line2 = made_here(gc.reshape(y, (-1, 7)))
    assert s.shape == (None, 7)
    run_error(evaluate, s, {y: np.zeros((1, 4, 5), np.int32)}, line2, "reshape")
    assert_close(evaluate(s, {y: np.arange(140, dtype=np.int32).reshape(7, 4, 5)}),
                 np.arange(140, dtype=np.int32).reshape(-1, 7))


def test_reshape_build_errors(graph):
    x = gc.placeholder(gc.float32, (2, 3))
    e = gc.placeholder(gc.float32, (0, 4))
    n = gc.placeholder(gc.int64, (None,))
    build_error(gc.ShapeError, lambda: gc.reshape(x, (4,)), "reshape", "6 elements")
    build_error(gc.ShapeError, lambda: gc.reshape(x, (-1, 4)), "reshape", "6 elements")
    build_error(gc.ShapeError, lambda: gc.reshape(x, (-1, -1)), "reshape")
    build_error(gc.ShapeError, lambda: gc.reshape(x, (-2, 3)), "reshape", "-2")
    build_error(gc.ShapeError, lambda: gc.reshape(e, (0, -1)), "reshape")
    build_error(gc.ShapeError, lambda: gc.reshape(x, n), "reshape", "known length")
    build_error(gc.ShapeError, lambda: gc.reshape(x, [gc.constant(2.0), 3]), "reshape", "scalar integer")


# --- transpose ----------------------------------------------------------------------------------
def test_transpose_all_dtypes_and_perms(graph, evaluate):
    f = Feeds()
    c = Cases()
    for dt in ALL_DTYPES:
        v = sample((2, 3, 4), dt)
        x = f(v)
        n = np.dtype(dt).name
        c.add(f"{n}_default", gc.transpose(x), np.transpose(v))
        c.add(f"{n}_perm", gc.transpose(x, [1, 0, 2]), np.transpose(v, (1, 0, 2)))
        c.add(f"{n}_neg", gc.transpose(x, (-1, 0, -2)), np.transpose(v, (2, 0, 1)))
    m = sample((3, 5), np.int64)
    c.add("T", f(m).T, m.T)
    empty = np.zeros((0, 3, 1), np.float32)
    c.add("empty", gc.transpose(f(empty), [2, 0, 1]), np.transpose(empty, (2, 0, 1)))
    s = np.float64(3.5)
    c.add("scalar", gc.transpose(f(s)), s)
    v = sample((2, 3, 1), np.float32)
    c.add("none", gc.transpose(f(v, shape=(None, 3, 1)), [2, 0, 1]), np.transpose(v, (2, 0, 1)), (1, None, 3))
    check(evaluate, c, f)


def test_transpose_bad_perm(graph):
    x = gc.placeholder(gc.float32, (2, 3))
    build_error(gc.ShapeError, lambda: gc.transpose(x, [0, 0]), "transpose", "perm")
    build_error(gc.ShapeError, lambda: gc.transpose(x, [0, 1, 2]), "transpose")
    build_error(gc.ShapeError, lambda: gc.transpose(x, [1]), "transpose")
    build_error(gc.ShapeError, lambda: gc.transpose(x, [0, -3]), "transpose")


# --- expand_dims / squeeze ----------------------------------------------------------------------
def test_expand_dims_and_squeeze(graph, evaluate):
    f = Feeds()
    c = Cases()
    for dt in ALL_DTYPES:
        v = sample((2, 1, 3), dt)
        x = f(v)
        n = np.dtype(dt).name
        c.add(f"{n}_e0", gc.expand_dims(x, 0), np.expand_dims(v, 0))
        c.add(f"{n}_e_last", gc.expand_dims(x, -1), np.expand_dims(v, -1))
        c.add(f"{n}_e2", gc.expand_dims(x, 2), np.expand_dims(v, 2))
        c.add(f"{n}_e_neg", gc.expand_dims(x, -3), np.expand_dims(v, -3))
        c.add(f"{n}_sq", gc.squeeze(x), np.squeeze(v))
        c.add(f"{n}_sq1", gc.squeeze(x, 1), np.squeeze(v, 1))
        c.add(f"{n}_sq_neg", gc.squeeze(x, [-2]), np.squeeze(v, -2))
    s = np.int32(4)
    c.add("scalar_e", gc.expand_dims(f(s), -1), np.expand_dims(s, -1))
    ones = sample((1, 1, 1), np.float64)
    c.add("sq_all", gc.squeeze(f(ones)), np.squeeze(ones))
    c.add("sq_two", gc.squeeze(f(ones), (0, -1)), np.squeeze(ones, (0, 2)))
    empty = np.zeros((0, 1, 2), np.int8)
    c.add("empty_sq", gc.squeeze(f(empty), 1), np.squeeze(empty, 1))
    c.add("empty_e", gc.expand_dims(f(empty), 1), np.expand_dims(empty, 1))
    # None dims: squeeze(axis=None) removes only the dims known to be 1
    w = sample((1, 2, 1, 3), np.float32)
    xw = f(w, shape=(1, None, 1, 3))
    c.add("none_sq", gc.squeeze(xw), np.squeeze(w, (0, 2)), (None, 3))
    c.add("none_e", gc.expand_dims(xw, 1), np.expand_dims(w, 1), (1, 1, None, 1, 3))
    u = sample((4, 1), np.float32)
    c.add("none_sq_axis", gc.squeeze(f(u, shape=(None, None)), 1), np.squeeze(u, 1), (None,))
    check(evaluate, c, f)


def test_expand_dims_and_squeeze_errors(graph, evaluate):
    x = gc.placeholder(gc.float32, (2, 1, 3))
    build_error(gc.ShapeError, lambda: gc.squeeze(x, 0), "squeeze", "size 2")
    build_error(gc.ShapeError, lambda: gc.squeeze(x, 3), "squeeze")
    build_error(gc.ShapeError, lambda: gc.squeeze(x, -4), "squeeze")
    build_error(gc.ShapeError, lambda: gc.expand_dims(x, 4), "expand_dims")
    build_error(gc.ShapeError, lambda: gc.expand_dims(x, -5), "expand_dims")
    y = gc.placeholder(gc.float32, (None, 3))
    s, line = made_here(gc.squeeze(y, 0))
    assert s.shape == (3,)
    run_error(evaluate, s, {y: np.zeros((2, 3), np.float32)}, line, "squeeze")
    assert_close(evaluate(s, {y: np.ones((1, 3), np.float32)}), np.ones(3, np.float32))


# --- broadcast_to -------------------------------------------------------------------------------
def test_broadcast_to(graph, evaluate):
    f = Feeds()
    c = Cases()
    for dt in ALL_DTYPES:
        v = sample((3,), dt)
        x = f(v)
        n = np.dtype(dt).name
        c.add(f"{n}_a", gc.broadcast_to(x, (2, 3)), np.broadcast_to(v, (2, 3)))
        c.add(f"{n}_b", gc.broadcast_to(x, [2, 0, 3]), np.broadcast_to(v, (2, 0, 3)))
    w = sample((1, 3), np.int32)
    xw = f(w)
    c.add("col", gc.broadcast_to(xw, (4, 2, 3)), np.broadcast_to(w, (4, 2, 3)))
    c.add("same", gc.broadcast_to(xw, (1, 3)), w)
    z = sample((2, 1), np.float64)
    c.add("zero", gc.broadcast_to(f(z), (2, 0)), np.broadcast_to(z, (2, 0)))
    # shapes from gc.shape and None dims
    y = f(np.zeros((5, 3), np.bool_), shape=(None, 3))
    c.add("from_shape", gc.broadcast_to(xw, gc.shape(y)), np.broadcast_to(w, (5, 3)), (None, 3))
    c.add("from_dim", gc.broadcast_to(xw, [gc.shape(y)[0], 2, 3]), np.broadcast_to(w, (5, 2, 3)), (None, 2, 3))
    u = sample((1,), np.uint8)
    xu = f(u, shape=(None,))
    c.add("none_in", gc.broadcast_to(xu, (2, 4)), np.broadcast_to(u, (2, 4)), (2, 4))
    k = sample((2, 4), np.float32)
    c.add("none_in_known_target", gc.broadcast_to(f(k, shape=(None, 4)), [2, 4]), k, (2, 4))
    check(evaluate, c, f)


def test_broadcast_to_errors(graph, evaluate):
    x = gc.placeholder(gc.float32, (2, 3))
    build_error(gc.ShapeError, lambda: gc.broadcast_to(x, (3, 3)), "broadcast_to", "(3, 3)")
    build_error(gc.ShapeError, lambda: gc.broadcast_to(x, (3,)), "broadcast_to", "lower rank")
    build_error(gc.ShapeError, lambda: gc.broadcast_to(x, (2, -1)), "broadcast_to", "-1")
    y = gc.placeholder(gc.float32, (None,))
    b, line = made_here(gc.broadcast_to(y, (2, 4)))
    run_error(evaluate, b, {y: np.zeros(3, np.float32)}, line, "broadcast_to", "(3,)")


# --- concat / stack / unstack -------------------------------------------------------------------
def test_concat(graph, evaluate):
    f = Feeds()
    c = Cases()
    for dt in ALL_DTYPES:
        a, b, e = sample((2, 3), dt), sample((2, 1), dt, seed=1), np.zeros((2, 0), dt)
        xa, xb, xe = f(a), f(b), f(e)
        n = np.dtype(dt).name
        c.add(f"{n}_1", gc.concat([xa, xb, xe, xa], 1), np.concatenate([a, b, e, a], 1))
        c.add(f"{n}_neg", gc.concat([xb, xa], -1), np.concatenate([b, a], -1))
        c.add(f"{n}_0", gc.concat([xa, xa], 0), np.concatenate([a, a], 0))
    ea, eb = np.zeros((0, 3), np.int64), sample((2, 3), np.int64)
    c.add("empty_rows", gc.concat([f(ea), f(eb), f(ea)], 0), np.concatenate([ea, eb, ea], 0))
    c.add("only_empty", gc.concat([f(ea), f(ea)], -2), np.zeros((0, 3), np.int64))
    i = sample((1, 3), np.int32)
    c.add("python_rows", gc.concat([f(i), [[1, 2, 3]]], 0), np.concatenate([i, [[1, 2, 3]]], 0).astype(np.int32))
    c.add("single", gc.concat([f(i)], 0), i)
    edges = float_edges(np.float32)
    c.add("edges", gc.concat([f(edges), f(edges[::-1])], 0), np.concatenate([edges, edges[::-1]]))
    # None dims: the concat axis is None if any part is; other dims merge
    p, q = sample((2, 3), np.float32), sample((4, 3), np.float32, seed=2)
    xp, xq = f(p, shape=(None, 3)), f(q, shape=(4, None))
    c.add("none0", gc.concat([xp, xq], 0), np.concatenate([p, q], 0), (None, 3))
    c.add("none1", gc.concat([f(p, shape=(2, None)), f(p, shape=(None, 3))], 1), np.concatenate([p, p], 1), (2, None))
    c.add("known", gc.concat([xp, f(p)], 1), np.concatenate([p, p], 1), (2, 6))
    check(evaluate, c, f)


def test_concat_errors(graph, evaluate):
    a = gc.placeholder(gc.float32, (2, 3))
    b = gc.placeholder(gc.float32, (2, 2))
    r3 = gc.placeholder(gc.float32, (2, 3, 1))
    build_error(gc.ShapeError, lambda: gc.concat([a, b], 0), "concat", "3 != 2")
    build_error(gc.ShapeError, lambda: gc.concat([a, r3], 0), "concat", "rank")
    build_error(gc.ShapeError, lambda: gc.concat([a, a], 2), "concat")
    build_error(gc.ShapeError, lambda: gc.concat([a, a], -3), "concat")
    build_error(gc.ShapeError, lambda: gc.concat([], 0), "concat")
    x = gc.placeholder(gc.int32, (None, 3))
    y = gc.placeholder(gc.int32, (None, 3))
    cc, line = made_here(gc.concat([x, y], 1))
    assert cc.shape == (None, 6)
    run_error(evaluate, cc, {x: np.zeros((2, 3), np.int32), y: np.zeros((3, 3), np.int32)}, line, "concat")


def test_concat_of_one_tensor_still_checks_the_axis(graph):
    a = gc.placeholder(gc.float32, (2, 3))
    build_error(gc.ShapeError, lambda: gc.concat([a], 2), "concat")
    build_error(gc.ShapeError, lambda: gc.concat([a], -3), "concat")


def test_stack_and_unstack(graph, evaluate):
    f = Feeds()
    c = Cases()
    for dt in ALL_DTYPES:
        a, b = sample((2, 3), dt), sample((2, 3), dt, seed=1)
        xa, xb = f(a), f(b)
        n = np.dtype(dt).name
        c.add(f"{n}_s0", gc.stack([xa, xb, xa]), np.stack([a, b, a]))
        c.add(f"{n}_s1", gc.stack([xa, xb], axis=1), np.stack([a, b], 1))
        c.add(f"{n}_s_neg", gc.stack([xa, xb], axis=-1), np.stack([a, b], -1))
        for k, part in enumerate(gc.unstack(xa, axis=-1)):
            c.add(f"{n}_u{k}", part, a[:, k])
    v = sample((3, 2, 4), np.float32)
    xv = f(v)
    for k, part in enumerate(gc.unstack(xv)):
        c.add(f"u0_{k}", part, v[k])
    for k, part in enumerate(gc.unstack(xv, axis=1)):
        c.add(f"u1_{k}", part, v[:, k])
    c.add("one", gc.stack([xv]), v[None])
    c.add("scalars", gc.stack([f(np.int64(1)), f(np.int64(-2))]), np.array([1, -2], np.int64))
    c.add("py_and_tensor", gc.stack([f(np.float64(1.5)), 2.0]), np.array([1.5, 2.0]))
    e = np.zeros((0, 3), np.uint8)
    c.add("empty", gc.stack([f(e), f(e)], 1), np.stack([e, e], 1))
    for k, part in enumerate(gc.unstack(f(np.zeros((2, 0), np.int8)))):
        c.add(f"empty_u{k}", part, np.zeros((0,), np.int8))
    # None dims
    w = sample((5, 2), np.int32)
    xw = f(w, shape=(None, 2))
    c.add("none_stack", gc.stack([xw, xw], 1), np.stack([w, w], 1), (None, 2, 2))
    for k, part in enumerate(gc.unstack(xw, axis=1)):
        c.add(f"none_u{k}", part, w[:, k], (None,))
    for k, part in enumerate(gc.unstack(xw, num=5)):
        c.add(f"none_num{k}", part, w[k], (2,))
    check(evaluate, c, f)


def test_unstack_of_an_empty_axis_gives_no_tensors(graph):
    x = gc.placeholder(gc.float32, (0, 3))
    assert gc.unstack(x) == []
    assert gc.unstack(gc.placeholder(gc.int32, (2, 0)), axis=1) == []


def test_stack_and_unstack_errors(graph, evaluate):
    a = gc.placeholder(gc.float32, (2, 3))
    b = gc.placeholder(gc.float32, (3, 2))
    build_error(gc.ShapeError, lambda: gc.stack([a, b]), "stack")
    build_error(gc.ShapeError, lambda: gc.stack([a, a], axis=3), "stack")
    build_error(gc.ShapeError, lambda: gc.stack([]), "stack")
    build_error(gc.ShapeError, lambda: gc.unstack(gc.placeholder(gc.float32, (None, 2))), "unstack", "num=")
    build_error(gc.ShapeError, lambda: gc.unstack(a, axis=2), "unstack")
    x = gc.placeholder(gc.float32, (None, 3))
    y = gc.placeholder(gc.float32, (None, 3))
    s, line = made_here(gc.stack([x, y]))
    assert s.shape == (2, None, 3)
    run_error(evaluate, s, {x: np.zeros((2, 3), np.float32), y: np.zeros((1, 3), np.float32)}, line, "stack")
    parts, line2 = made_here(gc.unstack(x, num=2))
    run_error(evaluate, parts, {x: np.zeros((3, 3), np.float32)}, line2, "unstack")


# --- split --------------------------------------------------------------------------------------
def test_split(graph, evaluate):
    f = Feeds()
    c = Cases()
    for dt in ALL_DTYPES:
        v = sample((6, 4), dt)
        x = f(v)
        n = np.dtype(dt).name
        for k, (part, want) in enumerate(zip(gc.split(x, 3), np.split(v, 3))):
            c.add(f"{n}_eq{k}", part, want)
        for k, (part, want) in enumerate(zip(gc.split(x, [1, -1, 0, 2], axis=-1), np.split(v, [1, 2, 2], axis=1))):
            c.add(f"{n}_sz{k}", part, want)
    v = sample((2, 6), np.float64)
    for k, (part, want) in enumerate(zip(gc.split(f(v), [0, 6, 0], axis=1), np.split(v, [0, 6], axis=1))):
        c.add(f"zeros{k}", part, want)
    c.add("whole", gc.split(f(v), 1, axis=0)[0], v)
    e = np.zeros((0, 4), np.int32)
    for k, (part, want) in enumerate(zip(gc.split(f(e), 2, axis=1), np.split(e, 2, axis=1))):
        c.add(f"empty{k}", part, want)
    for k, (part, want) in enumerate(zip(gc.split(f(e), 4, axis=0), np.split(e, 4, axis=0))):
        c.add(f"empty_axis{k}", part, want)
    # None dims
    w = sample((6, 3), np.float32)
    xw = f(w, shape=(None, 3))
    for k, (part, want) in enumerate(zip(gc.split(xw, 2), np.split(w, 2))):
        c.add(f"none_eq{k}", part, want, (None, 3))
    for k, (part, want) in enumerate(zip(gc.split(xw, [2, -1, 1]), np.split(w, [2, 5]))):
        c.add(f"none_sz{k}", part, want, [(2, 3), (None, 3), (1, 3)][k])
    for k, (part, want) in enumerate(zip(gc.split(xw, [1, 2], axis=1), np.split(w, [1], axis=1))):
        c.add(f"none_other{k}", part, want, [(None, 1), (None, 2)][k])
    check(evaluate, c, f)


def test_split_errors(graph, evaluate):
    x = gc.placeholder(gc.float32, (5, 4))
    build_error(gc.ShapeError, lambda: gc.split(x, 2), "split", "5")
    build_error(gc.ShapeError, lambda: gc.split(x, [2, 2]), "split", "add up")
    build_error(gc.ShapeError, lambda: gc.split(x, [4, 2, -1]), "split", "exceed")
    build_error(gc.ShapeError, lambda: gc.split(x, [-1, -1]), "split")
    build_error(gc.ShapeError, lambda: gc.split(x, [3, -2]), "split")
    build_error(gc.ShapeError, lambda: gc.split(x, 0), "split")
    build_error(gc.ShapeError, lambda: gc.split(x, 2, axis=2), "split")
    y = gc.placeholder(gc.float32, (None,))
    parts, line = made_here(gc.split(y, 2))
    run_error(evaluate, parts, {y: np.zeros(3, np.float32)}, line, "split", "3")
    sized, line2 = made_here(gc.split(y, [2, -1]))
    run_error(evaluate, sized, {y: np.zeros(1, np.float32)}, line2, "split")
    fixed, line3 = made_here(gc.split(y, [1, 1]))
    run_error(evaluate, fixed, {y: np.zeros(3, np.float32)}, line3, "split")


# --- tile ---------------------------------------------------------------------------------------
def test_tile(graph, evaluate):
    f = Feeds()
    c = Cases()
    for dt in ALL_DTYPES:
        v = sample((2, 3), dt)
        x = f(v)
        n = np.dtype(dt).name
        c.add(f"{n}_a", gc.tile(x, [2, 3]), np.tile(v, (2, 3)))
        c.add(f"{n}_b", gc.tile(x, (1, 1)), v)
        c.add(f"{n}_zero", gc.tile(x, (0, 2)), np.tile(v, (0, 2)))
    s = np.float32(2.5)
    c.add("scalar", gc.tile(f(s), []), s)
    e = np.zeros((0, 2), np.int64)
    c.add("empty", gc.tile(f(e), [3, 2]), np.tile(e, (3, 2)))
    w = sample((3, 2, 1), np.int8)
    c.add("none", gc.tile(f(w, shape=(None, 2, None)), [2, 1, 4]), np.tile(w, (2, 1, 4)), (None, 2, None))
    check(evaluate, c, f)


def test_tile_errors(graph):
    x = gc.placeholder(gc.float32, (2, 3))
    build_error(gc.ShapeError, lambda: gc.tile(x, [2]), "tile", "multiples")
    build_error(gc.ShapeError, lambda: gc.tile(x, [1, 1, 1]), "tile", "multiples")
    build_error(gc.ShapeError, lambda: gc.tile(x, [-1, 1]), "tile", "-1")
    build_error(gc.ShapeError, lambda: gc.tile(x, gc.constant([1, 1])), "tile", "Python ints")


# --- pad ----------------------------------------------------------------------------------------
def test_pad_modes_and_dtypes(graph, evaluate):
    f = Feeds()
    c = Cases()
    pads = ((1, 2), (2, 0))
    for dt in ALL_DTYPES:
        v = sample((3, 4), dt)
        x = f(v)
        n = np.dtype(dt).name
        c.add(f"{n}_const", gc.pad(x, pads), np.pad(v, pads))
        c.add(f"{n}_reflect", gc.pad(x, pads, "REFLECT"), np.pad(v, pads, mode="reflect"))
        c.add(f"{n}_symmetric", gc.pad(x, [[3, 1], [0, 4]], mode="symmetric"),
              np.pad(v, ((3, 1), (0, 4)), mode="symmetric"))
    c.add("cv_float", gc.pad(f(np.ones((2, 2), np.float64)), [[1, 1], [0, 1]], constant_values=-2.5),
          np.pad(np.ones((2, 2)), ((1, 1), (0, 1)), constant_values=-2.5))
    c.add("cv_int", gc.pad(f(np.zeros((2,), np.uint8)), [[2, 1]], constant_values=255),
          np.pad(np.zeros(2, np.uint8), (2, 1), constant_values=255))
    c.add("cv_bool", gc.pad(f(np.zeros((1, 2), np.bool_)), [[1, 0], [1, 1]], constant_values=True),
          np.pad(np.zeros((1, 2), np.bool_), ((1, 0), (1, 1)), constant_values=True))
    m = sample((4,), np.int32)
    c.add("reflect_max", gc.pad(f(m), [[3, 3]], "REFLECT"), np.pad(m, (3, 3), mode="reflect"))
    c.add("symmetric_max", gc.pad(f(m), [[4, 4]], "SYMMETRIC"), np.pad(m, (4, 4), mode="symmetric"))
    c.add("none_pad", gc.pad(f(m), [[0, 0]]), m)
    e = np.zeros((0, 3), np.float32)
    c.add("empty", gc.pad(f(e), [[1, 1], [0, 2]], constant_values=1.0),
          np.pad(e, ((1, 1), (0, 2)), constant_values=1.0))
    c.add("empty_symmetric", gc.pad(f(e), [[0, 0], [2, 1]], "SYMMETRIC"), np.pad(e, ((0, 0), (2, 1)), "symmetric"))
    w = sample((5, 3), np.float32)
    c.add("none", gc.pad(f(w, shape=(None, 3)), [[1, 2], [1, 1]], "SYMMETRIC"),
          np.pad(w, ((1, 2), (1, 1)), mode="symmetric"), (None, 5))
    check(evaluate, c, f)


def test_pad_of_a_scalar_with_no_paddings_is_the_scalar(graph, evaluate):
    f = Feeds()
    c = Cases()
    c.add("constant", gc.pad(f(np.int64(9)), []), np.int64(9))
    c.add("constant_cv", gc.pad(f(np.float32(-1.5)), (), constant_values=3.0), np.float32(-1.5))
    c.add("symmetric", gc.pad(f(np.uint8(200)), [], "SYMMETRIC"), np.uint8(200))
    check(evaluate, c, f)


def test_pad_errors(graph, evaluate):
    x = gc.placeholder(gc.float32, (2, 3))
    build_error(gc.ShapeError, lambda: gc.pad(x, [[2, 0], [0, 0]], "REFLECT"), "pad", "REFLECT")
    build_error(gc.ShapeError, lambda: gc.pad(x, [[0, 0], [0, 4]], "SYMMETRIC"), "pad", "SYMMETRIC")
    build_error(gc.ShapeError, lambda: gc.pad(x, [[1, 1]]), "pad", "pair")
    build_error(gc.ShapeError, lambda: gc.pad(x, [[1, 1], [0, 0]], "WRAP"), "pad", "WRAP")
    build_error(gc.ShapeError, lambda: gc.pad(x, [[-1, 1], [0, 0]]), "pad", ">= 0")
    build_error(gc.ShapeError, lambda: gc.pad(x, gc.constant([[1, 1], [0, 0]])), "pad")
    y = gc.placeholder(gc.float32, (None,))
    p, line = made_here(gc.pad(y, [[2, 0]], "REFLECT"))
    assert p.shape == (None,)
    run_error(evaluate, p, {y: np.zeros(2, np.float32)}, line, "pad", "REFLECT")
    r3 = np.arange(3, dtype=np.float32)
    assert_close(evaluate(p, {y: r3}), np.pad(r3, (2, 0), "reflect"))


# --- __getitem__ --------------------------------------------------------------------------------
# (name, expression applied to (x, idx), static shape when the placeholder idx (None,) is used or None)
GETITEM_TABLE = [
    ("int", lambda t, i: t[1], None),
    ("neg_int", lambda t, i: t[-1], None),
    ("reverse", lambda t, i: t[::-1], None),
    ("step", lambda t, i: t[1:-1:2], None),
    ("ellipsis_int", lambda t, i: t[..., 0], None),
    ("newaxes", lambda t, i: t[None, :, None], None),
    ("list", lambda t, i: t[:, [2, 0]], None),
    ("neg_step_start", lambda t, i: t[2::-2, ...], None),
    ("mixed_steps", lambda t, i: t[:, ::-2, 1:5:3], None),
    ("neg_step_bounds", lambda t, i: t[::-2, 3:0:-1, -2::-2], None),
    ("past_end", lambda t, i: t[-3:, 10:], None),
    ("empty_range", lambda t, i: t[3:1], None),
    ("trailing_new", lambda t, i: t[..., None], None),
    ("scalar", lambda t, i: t[1, 2, 3], None),
    ("neg_scalar", lambda t, i: t[-1, -5, -6], None),
    ("int_ellipsis_int", lambda t, i: t[-1, ..., -2], None),
    ("int_list", lambda t, i: t[:, -1, [0, -1]], None),
    ("full", lambda t, i: t[:], None),
    ("ellipsis", lambda t, i: t[...], None),
    ("np_int", lambda t, i: t[np.int64(2)], None),
    ("np_array", lambda t, i: t[:, np.array([4, 1, 1])], None),
    ("list_neg", lambda t, i: t[[-1]], None),
    ("list_2d", lambda t, i: t[[[0, 1], [3, 3]]], None),
    ("lead_new", lambda t, i: t[None], None),
    ("mixed", lambda t, i: t[..., 1:, None, ::2], None),
    ("clipped", lambda t, i: t[-100:100, 1:-100], None),
    ("tensor", lambda t, i: t[i], (None, 5, 6)),
    ("tensor_axis1", lambda t, i: t[:, i], (4, None, 6)),
    ("tensor_last", lambda t, i: t[..., i], (4, 5, None)),
    ("new_tensor", lambda t, i: t[None, i], (1, None, 5, 6)),
    ("tensor_int", lambda t, i: t[i, 0], (None, 6)),
    ("slice_tensor_step", lambda t, i: t[1:, i, ::-3], (3, None, 2)),
]


def test_getitem_table_matches_numpy(graph, evaluate):
    f = Feeds()
    v = np.arange(120, dtype=np.float32).reshape(4, 5, 6) - 60.5
    ii = np.array([3, -1, 0, 2], np.int32)
    x, idx = f(v), f(ii, shape=(None,))
    c = Cases()
    for name, fn, static in GETITEM_TABLE:
        c.add(name, fn(x, idx), fn(v, ii), static)
    check(evaluate, c, f)


def test_getitem_all_dtypes(graph, evaluate):
    f = Feeds()
    c = Cases()
    ii = np.array([[1, 0], [-1, 2]], np.int64)
    for dt in ALL_DTYPES:
        v = sample((3, 4), dt)
        x, idx = f(v), f(ii)
        n = np.dtype(dt).name
        c.add(f"{n}_int", x[-2], v[-2])
        c.add(f"{n}_rev", x[::-1, 1::2], v[::-1, 1::2])
        c.add(f"{n}_new", x[:, None, -1], v[:, None, -1])
        c.add(f"{n}_scalar", x[2, 3], v[2, 3])
        c.add(f"{n}_gather", x[idx], v[ii])
        c.add(f"{n}_list", x[..., [3, 3, 0]], v[..., [3, 3, 0]])
        c.add(f"{n}_empty", x[:, 4:], v[:, 4:])
    e = np.zeros((0, 3), np.int32)
    xe = f(e)
    c.add("empty_rev", xe[::-1], e[::-1])
    c.add("empty_col", xe[:, 1], e[:, 1])
    c.add("empty_gather", xe[:, [2, 0]], e[:, [2, 0]])
    c.add("empty_index", f(sample((3, 2), np.float32))[np.zeros(0, np.int64)], np.zeros((0, 2), np.float32))
    check(evaluate, c, f)


def test_getitem_with_none_dims(graph, evaluate):
    f = Feeds()
    v = sample((4, 5, 6), np.float64)
    ii = np.array([0, -1], np.int64)
    x = f(v, shape=(None, 5, None))
    idx = f(ii, shape=(None,))
    c = Cases()
    c.add("int", x[1], v[1], (5, None))
    c.add("neg_int_inner", x[:, -1], v[:, -1], (None, None))
    c.add("reverse", x[::-1], v[::-1], (None, 5, None))
    c.add("slice_known", x[:, 1:4], v[:, 1:4], (None, 3, None))
    c.add("slice_none", x[1:3], v[1:3], (None, 5, None))
    c.add("step_none", x[::-2, ::2, 1:], v[::-2, ::2, 1:], (None, 3, None))
    c.add("ellipsis", x[..., 0], v[..., 0], (None, 5))
    c.add("new", x[None, ..., None], v[None, ..., None], (1, None, 5, None, 1))
    c.add("list", x[:, [2, 0]], v[:, [2, 0]], (None, 2, None))
    c.add("tensor", x[idx], v[ii], (None, 5, None))
    c.add("tensor_known", x[:, idx], v[:, ii], (None, None, None))
    c.add("scalar", x[3, 4, 5], v[3, 4, 5], ())
    check(evaluate, c, f)


def test_getitem_int_and_list_separated_by_a_slice_follows_numpy(graph, evaluate):
    """NumPy moves the broadcast index dims to the front when an int and a list/tensor index are
    separated by a slice."""
    f = Feeds()
    v = np.arange(120, dtype=np.float32).reshape(4, 5, 6)
    x = f(v)
    c = Cases()
    c.add("int_slice_list", x[1, :, [2, 0]], v[1, :, [2, 0]])
    c.add("int_slice_list2", x[0, 1:3, [1, 4, 5]], v[0, 1:3, [1, 4, 5]])
    check(evaluate, c, f)


def test_getitem_build_errors(graph):
    x = gc.placeholder(gc.float32, (4, 5, 6))
    idx = gc.placeholder(gc.int32, (2,))
    build_error(gc.ShapeError, lambda: x[0, 0, 0, 0], "getitem", "too many indices")
    build_error(gc.ShapeError, lambda: x[..., 0, 0, 0, None, 0], "getitem", "too many indices")
    build_error(gc.ShapeError, lambda: x[..., 0, ...], "getitem", "Ellipsis")
    build_error(gc.ShapeError, lambda: x[::0], "getitem", "zero")
    build_error(gc.ShapeError, lambda: x[1.5], "getitem")
    build_error(gc.ShapeError, lambda: x[:idx[0]], "getitem", "gc.gather")
    build_error(gc.ShapeError, lambda: x[[0], [1]], "getitem", "one tensor")
    build_error(gc.ShapeError, lambda: x[idx, :, idx], "getitem", "one tensor")
    build_error(gc.DTypeError, lambda: x[[True, False, True, True]], "getitem", "bool")
    build_error(gc.DTypeError, lambda: x[gc.constant([0.0])], "getitem", "float32")
    build_error(gc.ShapeError, lambda: x[4], "strided_slice", "out of range")
    build_error(gc.ShapeError, lambda: x[:, -6], "strided_slice", "out of range")


def test_getitem_runtime_errors(graph, evaluate):
    x = gc.placeholder(gc.float32, (None, 5))
    idx = gc.placeholder(gc.int64, (None,))
    s, line = made_here(x[3])
    assert s.shape == (5,)
    run_error(evaluate, s, {x: np.zeros((3, 5), np.float32)}, line, "strided_slice", "3")
    n, line2 = made_here(x[-4, 1:])
    run_error(evaluate, n, {x: np.zeros((3, 5), np.float32)}, line2, "strided_slice")
    g, line3 = made_here(x[idx])
    run_error(evaluate, g, {x: np.zeros((3, 5), np.float32), idx: np.array([0, 3])}, line3, "gather", "3")
    run_error(evaluate, g, {x: np.zeros((3, 5), np.float32), idx: np.array([-4])}, line3, "gather", "-4")
    g2, line4 = made_here(x[:, idx])
    run_error(evaluate, g2, {x: np.zeros((3, 5), np.float32), idx: np.array([5])}, line4, "gather")
    v = sample((3, 5), np.float32)
    assert_close(evaluate(g, {x: v, idx: np.array([-3, 2])}), v[[-3, 2]])


# --- gather -------------------------------------------------------------------------------------
def test_gather(graph, evaluate):
    f = Feeds()
    c = Cases()
    for dt in ALL_DTYPES:
        v = sample((4, 3), dt)
        x = f(v)
        n = np.dtype(dt).name
        c.add(f"{n}_0", gc.gather(x, f(np.array([3, 0, -1, -4, 3], np.int32))), np.take(v, [3, 0, -1, -4, 3], axis=0))
        c.add(f"{n}_1", gc.gather(x, f(np.array([[2, 0], [-1, 1]], np.int64)), axis=1),
              np.take(v, [[2, 0], [-1, 1]], axis=1))
        c.add(f"{n}_neg_axis", gc.gather(x, [1, 1], axis=-1), np.take(v, [1, 1], axis=-1))
        c.add(f"{n}_scalar", gc.gather(x, f(np.int64(-2))), np.take(v, -2, axis=0))
    v = sample((2, 3, 4), np.float64)
    xv = f(v)
    for it in (np.int8, np.uint8, np.int32, np.int64):
        ii = np.array([[3, 0, 1]], it)
        c.add(f"idx_{np.dtype(it).name}", gc.gather(xv, f(ii), axis=2), np.take(v, ii, axis=2))
    c.add("mid_axis", gc.gather(xv, f(np.array([2, -3], np.int32)), axis=-2), np.take(v, [2, -3], axis=1))
    c.add("no_indices", gc.gather(xv, f(np.zeros((0,), np.int32)), axis=1), np.take(v, np.zeros(0, np.int32), axis=1))
    e = np.zeros((0, 3), np.int32)
    c.add("empty_params", gc.gather(f(e), f(np.array([2, 0], np.int64)), axis=1), np.take(e, [2, 0], axis=1))
    edges = float_edges(np.float32)
    c.add("edges", gc.gather(f(edges), list(range(len(edges)))[::-1]), edges[::-1])
    # None dims
    w = sample((5, 3), np.float32)
    ii = np.array([4, 0], np.int64)
    xw, iw = f(w, shape=(None, 3)), f(ii, shape=(None,))
    c.add("none_params", gc.gather(xw, iw), np.take(w, ii, axis=0), (None, 3))
    c.add("none_params_axis1", gc.gather(xw, f(np.array([[0], [2]], np.int32)), axis=1),
          np.take(w, [[0], [2]], axis=1), (None, 2, 1))
    check(evaluate, c, f)


def test_gather_errors(graph, evaluate):
    x = gc.placeholder(gc.float32, (4, 3))
    build_error(gc.DTypeError, lambda: gc.gather(x, [0.5]), "gather", "float")
    build_error(gc.DTypeError, lambda: gc.gather(x, gc.constant([True])), "gather", "bool")
    build_error(gc.ShapeError, lambda: gc.gather(x, [0], axis=2), "gather")
    build_error(gc.ShapeError, lambda: gc.gather(x, [0], axis=-3), "gather")
    idx = gc.placeholder(gc.int32, (None,))
    g, line = made_here(gc.gather(x, idx))
    assert g.shape == (None, 3)
    run_error(evaluate, g, {x: np.zeros((4, 3), np.float32), idx: np.array([1, 4], np.int32)}, line, "gather", "4")
    run_error(evaluate, g, {x: np.zeros((4, 3), np.float32), idx: np.array([-5], np.int32)}, line, "gather", "-5")
    g1, line1 = made_here(gc.gather(x, idx, axis=1))
    run_error(evaluate, g1, {x: np.zeros((4, 3), np.float32), idx: np.array([3], np.int32)}, line1, "gather")
    const, line2 = made_here(gc.gather(x, [0, 7]))
    run_error(evaluate, const, {x: np.zeros((4, 3), np.float32)}, line2, "gather", "7")
    e = gc.placeholder(gc.float32, (None, 2))
    ge, line3 = made_here(gc.gather(e, idx))
    run_error(evaluate, ge, {e: np.zeros((0, 2), np.float32), idx: np.array([0], np.int32)}, line3, "gather")


# --- one_hot ------------------------------------------------------------------------------------
def one_hot_np(indices, depth, on=1, off=0, axis=-1, dtype=np.float32):
    indices = np.asarray(indices).astype(np.int64)
    valid = (indices >= 0) & (indices < depth)
    hot = np.eye(depth, dtype=bool)[np.where(valid, indices, 0)] & valid[..., None]
    out = np.where(hot, on, off).astype(dtype)
    return np.moveaxis(out, -1, axis)


def test_one_hot(graph, evaluate):
    f = Feeds()
    c = Cases()
    raw = np.array([0, 2, -1, 3, 5, 1], np.int64)
    i64 = f(raw)
    c.add("default", gc.one_hot(i64, 4), one_hot_np(raw, 4))
    for dt in ALL_DTYPES:
        n = np.dtype(dt).name
        on, off = (True, False) if dt is np.bool_ else (7, 3)
        c.add(f"out_{n}", gc.one_hot(i64, 3, on_value=on, off_value=off, dtype=gc.as_dtype(dt)),
              one_hot_np(raw, 3, on, off, dtype=dt))
    c.add("float_values", gc.one_hot(i64, 5, on_value=0.5, off_value=-1.5, dtype=gc.float64),
          one_hot_np(raw, 5, 0.5, -1.5, dtype=np.float64))
    for it in (np.int8, np.uint8, np.int32):
        ii = np.array([[0, 200 if it is np.uint8 else -3], [2, 1]], it)
        c.add(f"idx_{np.dtype(it).name}", gc.one_hot(f(ii), 3), one_hot_np(ii, 3))
    m = np.array([[1, 0, 3], [2, -2, 2]], np.int32)
    xm = f(m)
    c.add("axis0", gc.one_hot(xm, 4, axis=0), one_hot_np(m, 4, axis=0))
    c.add("axis1", gc.one_hot(xm, 4, axis=1), one_hot_np(m, 4, axis=1))
    c.add("axis_neg2", gc.one_hot(xm, 4, axis=-2, dtype=gc.int32), one_hot_np(m, 4, axis=-2, dtype=np.int32))
    c.add("scalar", gc.one_hot(f(np.int32(2)), 3), one_hot_np(2, 3))
    c.add("depth0", gc.one_hot(xm, 0), np.zeros((2, 3, 0), np.float32))
    c.add("no_indices", gc.one_hot(f(np.zeros((0,), np.int64)), 3), np.zeros((0, 3), np.float32))
    w = np.array([3, 0, 9], np.int32)
    xw = f(w, shape=(None,))
    c.add("none", gc.one_hot(xw, 4), one_hot_np(w, 4), (None, 4))
    c.add("none_axis0", gc.one_hot(xw, 4, axis=0, dtype=gc.uint8), one_hot_np(w, 4, axis=0, dtype=np.uint8), (4, None))
    check(evaluate, c, f)


def test_one_hot_errors(graph):
    i = gc.placeholder(gc.int32, (3,))
    build_error(gc.DTypeError, lambda: gc.one_hot(gc.constant([0.0, 1.0]), 3), "one_hot", "float32")
    build_error(gc.DTypeError, lambda: gc.one_hot(gc.constant([True]), 3), "one_hot", "bool")
    build_error(gc.ShapeError, lambda: gc.one_hot(i, -1), "one_hot", "depth")
    build_error(gc.ShapeError, lambda: gc.one_hot(i, gc.constant(3)), "one_hot", "depth")
    build_error(gc.ShapeError, lambda: gc.one_hot(i, 3, axis=2), "one_hot")
    build_error(gc.ShapeError, lambda: gc.one_hot(i, 3, axis=-3), "one_hot")

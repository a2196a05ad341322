"""Random ops (uniform, normal, truncated normal) and initializers: seeding semantics, the
counter-based streams, statistics with loose but meaningful bounds, dtypes and shapes."""
from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gc
from support import assert_close

GC_DTYPE = {np.float32: gc.float32, np.float64: gc.float64}
TRUNCATED_STD = 0.87962566103423978   # stddev of a unit normal truncated to [-2, 2]
TRUNCATED_WITHIN_1 = 0.6826894921370859 / 0.9544997361036416   # P(|z| < 1 | |z| <= 2)


def _make(kind, shape, dtype=gc.float32, seed=None):
    if kind == "uniform":
        return gc.random_uniform(shape, dtype=dtype, seed=seed)
    if kind == "normal":
        return gc.random_normal(shape, dtype=dtype, seed=seed)
    return gc.truncated_normal(shape, dtype=dtype, seed=seed)


KINDS = ["uniform", "normal", "truncated"]


def _differ(a, b):
    return not np.array_equal(a, b)


# --- seeding and streams --------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_new_session_reproduces_and_successive_runs_differ(graph, device, kind):
    gc.set_random_seed(1234)
    with_op_seed = _make(kind, (3, 4), seed=5)
    graph_seed_only = _make(kind, (3, 4))
    fetches = {"op": with_op_seed, "graph": graph_seed_only}
    with gc.Session(graph=graph, device=device) as s1:
        first, second, third = s1.run(fetches), s1.run(fetches), s1.run(fetches)
    with gc.Session(graph=graph, device=device) as s2:
        again = [s2.run(fetches) for _ in range(3)]
    for key in fetches:
        for run, (a, b) in enumerate(zip((first, second, third), again)):
            assert_close(b[key], a[key], rtol=0, atol=0)
        assert _differ(first[key], second[key]) and _differ(second[key], third[key]), key
        assert len(np.unique(first[key])) == 12, f"{key}: repeated values within one draw"
    assert _differ(first["op"], first["graph"])


@pytest.mark.parametrize("kind", KINDS)
def test_op_seed_alone_is_reproducible(device, kind):
    """A graph without a graph-level seed but with an op seed is deterministic, across sessions
    and across identically built graphs."""
    results = []
    for _ in range(2):
        g = gc.Graph()
        with g.as_default():
            gc.constant(1.0)            # an unrelated op before the draw
            r = _make(kind, (5,), seed=99)
            with gc.Session(graph=g, device=device) as sess:
                results.append([sess.run(r), sess.run(r)])
    assert_close(results[1][0], results[0][0], rtol=0, atol=0)
    assert_close(results[1][1], results[0][1], rtol=0, atol=0)
    assert _differ(results[0][0], results[0][1])


@pytest.mark.parametrize("kind", KINDS)
def test_equal_seeds_draw_equal_values(device, kind):
    def build(graph_seed, op_seeds):
        g = gc.Graph()
        with g.as_default():
            gc.set_random_seed(graph_seed)
            ops = [_make(kind, (6,), seed=s) for s in op_seeds]
        return g, ops

    g, (a, b, c) = build(42, [7, 7, 8])
    with gc.Session(graph=g, device=device) as sess:
        r1, r2 = sess.run([a, b, c]), sess.run([a, b, c])
    for r in (r1, r2):
        assert_close(r[1], r[0], rtol=0, atol=0)     # same (graph, op) seeds: same values, run by run
        assert _differ(r[0], r[2])                   # another op seed: other values
    # the same seeds in another graph (built with other ops around) draw the same values
    g2, (d, e) = build(42, [3, 7])
    with gc.Session(graph=g2, device=device) as sess:
        assert_close(sess.run(e), r1[0], rtol=0, atol=0)
        assert _differ(sess.run(d), r1[0])
    g3, (f,) = build(43, [7])
    with gc.Session(graph=g3, device=device) as sess:
        assert _differ(sess.run(f), r1[0])           # another graph seed: other values


def test_unseeded_ops_differ(graph, device):
    a = gc.random_uniform((8,))
    b = gc.random_uniform((8,))
    with gc.Session(graph=graph, device=device) as sess:
        va, vb = sess.run([a, b])
    assert _differ(va, vb)


@pytest.mark.parametrize("kind", KINDS)
def test_one_value_per_op_per_run(evaluate, kind):
    gc.set_random_seed(3)
    r = _make(kind, (4, 3), seed=1)
    doubled = r * 2.0
    got = evaluate({"r": r, "again": gc.identity(r), "doubled": doubled, "sum": gc.reduce_sum(r)})
    assert_close(got["again"], got["r"], rtol=0, atol=0)
    assert_close(got["doubled"], got["r"] * np.float32(2.0), rtol=0, atol=0)
    assert_close(got["sum"], np.float32(got["r"].sum()), rtol=1e-6)


def test_fetching_other_tensors_does_not_disturb_a_stream(graph, device):
    gc.set_random_seed(5)
    a = gc.random_normal((4,), seed=1)
    b = gc.random_uniform((4,), seed=2)
    with gc.Session(graph=graph, device=device) as s1:
        a_runs = [s1.run(a), s1.run(a)]
    with gc.Session(graph=graph, device=device) as s2:
        s2.run(b)
        mixed = [s2.run([a, b])[0], s2.run(a)]
    assert_close(mixed[0], a_runs[0], rtol=0, atol=0)
    assert_close(mixed[1], a_runs[1], rtol=0, atol=0)


# --- statistics --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_statistics(evaluate, dtype):
    gc.set_random_seed(11)
    r = gc.random_uniform((200, 100), minval=-2.0, maxval=3.0, dtype=GC_DTYPE[dtype], seed=1)
    unit = gc.random_uniform((20000,), dtype=GC_DTYPE[dtype], seed=2)
    assert r.dtype == GC_DTYPE[dtype] and r.shape.as_list() == [200, 100]
    got = evaluate({"r": r, "unit": unit})
    v, u = got["r"], got["unit"]
    assert v.dtype == dtype and u.dtype == dtype
    assert v.min() >= -2.0 and v.max() < 3.0
    assert v.min() < -1.99 and v.max() > 2.99
    assert abs(v.mean() - 0.5) < 0.05
    assert abs(v.std() - 5 / math.sqrt(12)) < 0.03
    counts, _ = np.histogram(v, bins=10, range=(-2.0, 3.0))
    assert np.all(np.abs(counts - 2000) < 200), counts
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005
    flat = v.ravel().astype(np.float64)
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.05   # neighbours are independent


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_statistics(evaluate, dtype):
    gc.set_random_seed(12)
    r = gc.random_normal((200, 100), mean=1.5, stddev=2.0, dtype=GC_DTYPE[dtype], seed=1)
    z = gc.random_normal((20000,), dtype=GC_DTYPE[dtype], seed=2)
    got = evaluate({"r": r, "z": z})
    v, zv = got["r"].astype(np.float64), got["z"].astype(np.float64)
    assert got["r"].dtype == dtype
    assert abs(v.mean() - 1.5) < 0.06
    assert abs(v.std() - 2.0) < 0.05
    within1 = np.mean(np.abs(v - 1.5) < 2.0)
    within2 = np.mean(np.abs(v - 1.5) < 4.0)
    assert abs(within1 - 0.6827) < 0.02 and abs(within2 - 0.9545) < 0.01
    assert abs(zv.mean()) < 0.03 and abs(zv.std() - 1.0) < 0.025
    assert np.abs(zv).max() > 3.0                    # the tails are there
    skew = np.mean(zv ** 3)
    kurtosis = np.mean(zv ** 4)
    assert abs(skew) < 0.1 and abs(kurtosis - 3.0) < 0.2
    assert abs(np.corrcoef(zv[:-1], zv[1:])[0, 1]) < 0.05


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_truncated_normal_statistics(evaluate, dtype):
    gc.set_random_seed(13)
    r = gc.truncated_normal((200, 100), mean=-1.0, stddev=0.5, dtype=GC_DTYPE[dtype], seed=1)
    z = gc.truncated_normal((20000,), dtype=GC_DTYPE[dtype], seed=2)
    got = evaluate({"r": r, "z": z})
    v, zv = got["r"].astype(np.float64), got["z"].astype(np.float64)
    assert got["r"].dtype == dtype
    assert v.min() >= -2.0 and v.max() <= 0.0          # within two stddev of the mean
    assert v.min() < -1.95 and v.max() > -0.05
    assert abs(v.mean() + 1.0) < 0.03
    assert abs(v.std() - 0.5 * TRUNCATED_STD) < 0.015
    assert abs(np.mean(np.abs(v + 1.0) < 0.5) - TRUNCATED_WITHIN_1) < 0.02
    assert np.abs(zv).max() <= 2.0
    assert abs(zv.mean()) < 0.03 and abs(zv.std() - TRUNCATED_STD) < 0.02
    # not a clipped normal: no pile-up at the bounds
    assert np.mean(np.abs(zv) >= 1.999) < 0.002


@pytest.mark.parametrize("int_dtype", [gc.int32, gc.int64])
def test_integer_uniform(evaluate, int_dtype):
    gc.set_random_seed(14)
    r = gc.random_uniform((7000,), minval=-3, maxval=4, dtype=int_dtype, seed=1)
    small = gc.random_uniform((2, 3), maxval=2, dtype=int_dtype, seed=2)
    assert r.dtype == int_dtype and small.dtype == int_dtype
    got = evaluate({"r": r, "small": small})
    v = got["r"]
    assert v.dtype == int_dtype.np
    assert v.min() >= -3 and v.max() < 4
    values, counts = np.unique(v, return_counts=True)
    assert list(values) == list(range(-3, 4))
    assert np.all(np.abs(counts - 1000) < 150), counts
    assert got["small"].shape == (2, 3) and set(np.unique(got["small"])) <= {0, 1}


# --- dtypes and shapes ----------------------------------------------------------------------------
def test_dtypes_and_float64_resolution(evaluate):
    gc.set_random_seed(15)
    fetches = {f"{k}_{d.__name__}": _make(k, (20000,), GC_DTYPE[d], seed=i)
               for i, (k, d) in enumerate((k, d) for k in KINDS for d in (np.float32, np.float64))}
    for key, t in fetches.items():
        assert t.dtype == GC_DTYPE[np.float64 if key.endswith("float64") else np.float32]
    got = evaluate(fetches)
    for key, v in got.items():
        assert v.dtype == (np.float64 if key.endswith("float64") else np.float32), key
    # float64 draws use more than float32's 24 bits
    u64 = got["uniform_float64"]
    assert np.any(u64 != u64.astype(np.float32).astype(np.float64))
    assert len(np.unique(u64)) == u64.size


@pytest.mark.parametrize("minval, maxval", [(5, 5), (5, 2)])
def test_integer_uniform_needs_minval_below_maxval(graph, minval, maxval):
    """TensorFlow: 'Need minval < maxval' for integer draws; an empty or reversed range has no
    valid value to draw, so it must not silently produce numbers outside [minval, maxval)."""
    with pytest.raises(gc.GraphcError, match="maxval"):
        gc.random_uniform((5,), minval=minval, maxval=maxval, dtype=gc.int32, seed=1)


def test_non_float_dtypes_are_rejected(graph):
    with pytest.raises(gc.DTypeError):
        gc.random_normal((2,), dtype=gc.int32)
    with pytest.raises(gc.DTypeError):
        gc.truncated_normal((2,), dtype=gc.int64)
    with pytest.raises(gc.DTypeError):
        gc.random_uniform((2,), dtype=gc.int32)          # an integer draw needs maxval
    with pytest.raises(gc.DTypeError):
        gc.random_uniform((2,), dtype=gc.bool_)


def test_shapes_from_a_fed_placeholder(graph, device):
    gc.set_random_seed(16)
    p = gc.placeholder(gc.float32, shape=(None, 3))
    whole = gc.random_normal(gc.shape(p), seed=1)
    mixed = gc.random_uniform([gc.shape(p)[0], 2], seed=2, dtype=gc.float64)
    trunc = gc.truncated_normal(gc.shape(p), seed=3, dtype=gc.float64)
    ints = gc.random_uniform(gc.shape(p), maxval=5, dtype=gc.int32, seed=4)
    assert whole.shape.as_list() == [None, 3]
    assert mixed.shape.as_list() == [None, 2]
    assert trunc.shape.as_list() == [None, 3] and trunc.dtype == gc.float64
    assert ints.shape.as_list() == [None, 3] and ints.dtype == gc.int32
    fetches = {"whole": whole, "mixed": mixed, "trunc": trunc, "ints": ints}
    with gc.Session(graph=graph, device=device) as sess:
        for n in (5, 1, 0, 8):
            got = sess.run(fetches, {p: np.zeros((n, 3), np.float32)})
            assert got["whole"].shape == (n, 3) and got["whole"].dtype == np.float32
            assert got["mixed"].shape == (n, 2) and got["mixed"].dtype == np.float64
            assert got["trunc"].shape == (n, 3) and np.all(np.abs(got["trunc"]) <= 2.0)
            assert got["ints"].shape == (n, 3) and np.all((got["ints"] >= 0) & (got["ints"] < 5))
    with gc.Session(graph=graph, device=device) as sess:
        again = sess.run(fetches, {p: np.zeros((5, 3), np.float32)})
    with gc.Session(graph=graph, device=device) as sess:
        first = sess.run(fetches, {p: np.zeros((5, 3), np.float32)})
    for key in fetches:
        assert_close(again[key], first[key], rtol=0, atol=0)


# --- initializers ----------------------------------------------------------------------------------
def test_compute_fans():
    assert gc.init.compute_fans((784, 10)) == (784, 10)
    assert gc.init.compute_fans((3, 3, 16, 32)) == (144, 288)
    assert gc.init.compute_fans((5, 2, 1, 4)) == (10, 40)
    assert gc.init.compute_fans((7,)) == (7, 7)


def test_glorot_uniform_dense_and_conv(evaluate):
    gc.set_random_seed(17)
    dense = gc.init.glorot_uniform((784, 10), seed=1)
    conv = gc.init.glorot_uniform((3, 3, 16, 32), seed=2)
    assert isinstance(dense, gc.Tensor)
    assert dense.shape.as_list() == [784, 10] and dense.dtype == gc.float32
    assert conv.shape.as_list() == [3, 3, 16, 32]
    got = evaluate({"dense": dense, "conv": conv})
    for key, limit in (("dense", math.sqrt(6 / (784 + 10))), ("conv", math.sqrt(6 / (144 + 288)))):
        v = got[key].astype(np.float64)
        assert np.abs(v).max() <= limit * (1 + 1e-6), key
        assert np.abs(v).max() > 0.98 * limit, key
        assert abs(v.mean()) < 0.05 * limit, key
        assert abs(v.std() - limit / math.sqrt(3)) < 0.04 * limit, key


def test_he_and_glorot_normal_std(evaluate):
    gc.set_random_seed(18)
    fetches = {
        "he_dense": gc.init.he_normal((784, 10), seed=1),
        "he_conv": gc.init.he_normal((3, 3, 16, 32), seed=2),
        "glorot_dense": gc.init.glorot_normal((784, 10), seed=3),
        "glorot_conv": gc.init.glorot_normal((3, 3, 16, 32), seed=4),
        "he_uniform_conv": gc.init.he_uniform((3, 3, 16, 32), seed=5),
    }
    stds = {
        "he_dense": math.sqrt(2 / 784), "he_conv": math.sqrt(2 / 144),
        "glorot_dense": math.sqrt(2 / (784 + 10)), "glorot_conv": math.sqrt(2 / (144 + 288)),
    }
    got = evaluate(fetches)
    for key, std in stds.items():
        v = got[key].astype(np.float64)
        assert abs(v.std() - std) < 0.04 * std, f"{key}: std {v.std()} vs {std}"
        assert abs(v.mean()) < 0.05 * std, key
        bound = 2 * std / TRUNCATED_STD       # truncated at two stddev of the underlying normal
        assert np.abs(v).max() <= bound * (1 + 1e-6), key
        assert np.abs(v).max() > 0.95 * bound, key
    limit = math.sqrt(6 / 144)
    u = got["he_uniform_conv"]
    assert np.abs(u).max() <= limit * (1 + 1e-6) and np.abs(u).max() > 0.98 * limit


def test_initializers_with_variables(graph, device):
    gc.set_random_seed(19)
    variables = {
        "zeros": gc.Variable(gc.init.zeros((2, 3))),
        "zeros_init": gc.Variable(gc.init.zeros(), shape=(2, 3)),
        "ones": gc.Variable(gc.init.ones((4,), dtype=gc.float64)),
        "const": gc.Variable(gc.init.constant(2.5, shape=(2, 2))),
        "const_init": gc.Variable(gc.init.constant(-1.0), shape=(3,)),
        "normal": gc.Variable(gc.init.random_normal((100, 50), seed=1)),
        "uniform": gc.Variable(gc.init.random_uniform((100, 50), seed=2)),
        "glorot": gc.Variable(gc.init.glorot_uniform(), shape=(30, 20)),
        "he": gc.Variable(gc.init.he_normal(seed=3), shape=(3, 3, 4, 8)),
    }
    init = gc.global_variables_initializer()
    with gc.Session(graph=graph, device=device) as s1:
        s1.run(init)
        got = s1.run(variables)
    with gc.Session(graph=graph, device=device) as s2:
        s2.run(init)
        again = s2.run(variables)
    assert_close(got["zeros"], np.zeros((2, 3), np.float32))
    assert_close(got["zeros_init"], np.zeros((2, 3), np.float32))
    assert_close(got["ones"], np.ones(4))
    assert_close(got["const"], np.full((2, 2), 2.5, np.float32))
    assert_close(got["const_init"], np.full(3, -1.0, np.float32))
    assert abs(got["normal"].std() - 0.05) < 0.003 and abs(got["normal"].mean()) < 0.003
    assert got["uniform"].min() >= -0.05 and got["uniform"].max() < 0.05
    assert got["glorot"].shape == (30, 20) and np.abs(got["glorot"]).max() <= math.sqrt(6 / 50) * (1 + 1e-6)
    assert got["he"].shape == (3, 3, 4, 8) and got["he"].dtype == np.float32
    for key in variables:
        assert_close(again[key], got[key], rtol=0, atol=0)   # seeded: reproducible


def test_initializer_reproducible_under_op_seed(device):
    values = []
    for _ in range(2):
        g = gc.Graph()
        with g.as_default():
            w = gc.init.glorot_uniform((4, 5), seed=7)
            with gc.Session(graph=g, device=device) as sess:
                values.append(sess.run(w))
    assert_close(values[1], values[0], rtol=0, atol=0)

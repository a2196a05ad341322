"""Issue 15's second batch: embedding_lookup (one or partitioned params, max_norm), sampling
(random_shuffle, multinomial / random.categorical, the log-uniform candidate sampler), the
sampled losses (nce_loss, sampled_softmax_loss) against NumPy oracles with fixed
sampled_values, and build errors naming the op and the caller's line."""
from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gc
from support import Cases, Feeds, build_error, check, made_here, run_error

rng = np.random.default_rng(152)


# --- embedding_lookup --------------------------------------------------------------------------------
def _partitions(p, n, strategy):
    if strategy == "mod":
        return [p[k::n] for k in range(n)]
    per, extras = divmod(len(p), n)
    out, start = [], 0
    for k in range(n):
        size = per + (k < extras)
        out.append(p[start:start + size])
        start += size
    return out


def _clipped(e, max_norm):
    norm = np.linalg.norm(e, axis=-1, keepdims=True)
    return e * max_norm / np.maximum(norm, max_norm)


def test_embedding_lookup_matches_numpy(graph, evaluate):
    f = Feeds()
    p = rng.standard_normal((10, 3))
    ids = np.array([[0, 9], [4, 5], [3, 3]], dtype=np.int32)
    i = f(ids, shape=(None, 2))
    c = Cases()
    c.add("one", gc.nn.embedding_lookup(f(p), i), p[ids], static=(None, 2, 3))
    c.add("list of one", gc.nn.embedding_lookup([f(p)], i, max_norm=1.5), _clipped(p[ids], 1.5), static=(None, 2, 3))
    for strategy in ("mod", "div"):
        for n in (3, 4):
            parts = [f(q) for q in _partitions(p, n, strategy)]
            c.add(f"{strategy}{n}", gc.nn.embedding_lookup(parts, i, partition_strategy=strategy), p[ids],
                  static=(None, 2, 3))
    c.add("vector ids", gc.nn.embedding_lookup(f(p), gc.constant([7, 1])), p[[7, 1]])
    check(evaluate, c, f)


def test_embedding_lookup_gradient_matches_finite_differences():
    ids = np.array([[1, 4], [4, 0]])
    p = rng.standard_normal((5, 3))
    gc.test_utils.check_gradients(lambda t: gc.nn.embedding_lookup(t, ids, max_norm=1.0), [p])
    parts = _partitions(p, 2, "div")
    gc.test_utils.check_gradients(lambda a, b: gc.nn.embedding_lookup([a, b], ids, partition_strategy="div"), parts)


def test_embedding_lookup_errors(graph, evaluate):
    p = gc.placeholder(gc.float32, (4, 2))
    build_error(gc.ShapeError, lambda: gc.nn.embedding_lookup(p, [0], partition_strategy="hash"),
                "embedding_lookup", "partition_strategy")
    build_error(gc.DTypeError, lambda: gc.nn.embedding_lookup(p, gc.constant([0.5])), "embedding_lookup", "integer")
    build_error(gc.ShapeError, lambda: gc.nn.embedding_lookup([p, gc.placeholder(gc.float32, (None, 2))], [0]),
                "embedding_lookup", "known at build time")
    ids = gc.placeholder(gc.int64, (2,))
    y, where = made_here(gc.nn.embedding_lookup([p, p], ids))
    run_error(evaluate, y, {p: np.ones((4, 2), np.float32), ids: np.array([0, 8])}, where, "embedding_lookup",
              "8 rows")


# --- random_shuffle, multinomial, categorical -----------------------------------------------------------
def test_random_shuffle_permutes_rows_and_reproduces(graph, device):
    gc.set_random_seed(7)
    x = gc.placeholder(gc.float32, (None, 2))
    y = gc.random_shuffle(x, seed=3)
    s = gc.random.shuffle(gc.constant(5.0))
    v = np.stack([np.arange(20), -np.arange(20)], 1).astype(np.float32)
    with gc.Session(graph=graph, device=device) as sess:
        runs = [sess.run(y, {x: v}) for _ in range(3)]
        assert sess.run(s) == 5.0
    with gc.Session(graph=graph, device=device) as sess:
        again = sess.run(y, {x: v})
    np.testing.assert_array_equal(again, runs[0])
    for r in runs:
        np.testing.assert_array_equal(np.sort(r[:, 0]), v[:, 0])
        np.testing.assert_array_equal(r[:, 1], -r[:, 0])  # rows move whole
    assert not np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], v)


def test_random_shuffle_is_uniform(graph):
    # every one of the 6 orders of 3 rows about equally often over 3000 runs (one run, 3000 shuffles)
    x = gc.constant(np.arange(3.0))
    y = gc.stack([gc.random_shuffle(x) for _ in range(3000)])
    with gc.Session(graph=graph, device="reference") as sess:
        out = sess.run(y)
    codes = (out * np.array([9.0, 3.0, 1.0])).sum(1)
    counts = np.unique(codes, return_counts=True)[1]
    assert len(counts) == 6 and counts.min() > 400 and counts.max() < 600, counts


def test_multinomial_frequencies(graph, device):
    gc.set_random_seed(11)
    probs = np.array([[0.1, 0.2, 0.3, 0.4], [0.7, 0.0, 0.2, 0.1]])
    with np.errstate(divide="ignore"):
        logits = gc.placeholder(gc.float32, (None, 4))
        feed = {logits: np.log(probs).astype(np.float32) + 3.0}  # unnormalized, a -inf logit
    n = 4000 if device != "cuda" else 400
    m = gc.multinomial(logits, n)
    c = gc.random.categorical(logits, 3, dtype=gc.int32)
    assert m.dtype == gc.int64 and tuple(m.shape) == (None, n)
    assert c.dtype == gc.int32 and tuple(c.shape) == (None, 3)
    with gc.Session(graph=graph, device=device) as sess:
        out, cat = sess.run([m, c], feed)
    for b in range(2):
        freq = np.bincount(out[b], minlength=4) / n
        sd = np.sqrt(probs[b] * (1 - probs[b]) / n)
        assert np.all(np.abs(freq - probs[b]) <= 5 * sd + 1e-12), (freq, probs[b])
    assert not np.any(out[1] == 1) and not np.any(cat[1] == 1)


def test_sampling_errors(graph):
    lg = gc.placeholder(gc.float32, (2, 3))
    n = gc.placeholder(gc.int32, ())
    build_error(gc.ShapeError, lambda: gc.multinomial(lg, n), "multinomial", "num_samples", "Python int")
    build_error(gc.ShapeError, lambda: gc.multinomial(gc.placeholder(gc.float32, (3,)), 2), "multinomial", "2-D")
    build_error(gc.DTypeError, lambda: gc.random.categorical(lg, 2, dtype=gc.float32), "multinomial", "int64")
    t = gc.placeholder(gc.int64, (4, 1))
    build_error(gc.ShapeError, lambda: gc.nn.log_uniform_candidate_sampler(t, 1, 9, True, 5),
                "log_uniform_candidate_sampler", "9 unique classes")
    build_error(gc.ShapeError, lambda: gc.nn.log_uniform_candidate_sampler(t, 2, 3, True, 5),
                "log_uniform_candidate_sampler", "num_true=2")


# --- the log-uniform candidate sampler ----------------------------------------------------------------
def _log_uniform_p(c, range_max):
    return np.log((c + 2.0) / (c + 1.0)) / math.log(range_max + 1.0)


def test_log_uniform_sampler_with_replacement_statistics(graph, device):
    gc.set_random_seed(5)
    range_max, k, runs = 10, 50, 40 if device != "cuda" else 4
    true = np.array([[0], [3], [9]])
    sampled, true_count, sampled_count = gc.nn.log_uniform_candidate_sampler(
        gc.constant(true), 1, k, False, range_max)
    with gc.Session(graph=graph, device=device) as sess:
        outs = [sess.run([sampled, true_count, sampled_count]) for _ in range(runs)]
    p = _log_uniform_p(np.arange(range_max), range_max)
    draws = np.concatenate([o[0] for o in outs])
    assert draws.dtype == np.int64 and draws.min() >= 0 and draws.max() < range_max
    freq = np.bincount(draws, minlength=range_max) / draws.size
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / draws.size)), (freq, p)
    # TF1's expected counts without uniqueness: P(c) * num_sampled
    np.testing.assert_allclose(outs[0][1], (k * p[true]).astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(outs[0][2], (k * p[outs[0][0]]).astype(np.float32), rtol=1e-6)


def test_log_uniform_sampler_unique_statistics(graph, device):
    gc.set_random_seed(6)
    range_max, k = 8, 3
    runs = 1500 if device == "reference" else 300 if device == "cpu" else 10
    sampled, true_count, sampled_count = gc.nn.log_uniform_candidate_sampler(
        gc.constant(np.array([[0, 5]])), 2, k, True, range_max)
    with gc.Session(graph=graph, device=device) as sess:
        outs = [sess.run([sampled, true_count, sampled_count]) for _ in range(runs)]
    p = _log_uniform_p(np.arange(range_max), range_max)
    firsts = np.array([o[0][0] for o in outs])
    inclusion = np.zeros(range_max)
    for o in outs:
        s = o[0]
        assert len(set(s.tolist())) == k and s.min() >= 0 and s.max() < range_max
        # the expected counts: TF1's formula with the expected number of tries given the picks
        tries = np.sum(1.0 / (1.0 - np.concatenate([[0.0], np.cumsum(p[s])[:-1]])))
        np.testing.assert_allclose(o[2], -np.expm1(tries * np.log1p(-p[s])), rtol=1e-5)
        np.testing.assert_allclose(o[1][0], -np.expm1(tries * np.log1p(-p[[0, 5]])), rtol=1e-5)
        inclusion[s] += 1
    if device == "cuda":
        return
    # the first pick is a draw from P; every class is included as often as sampling without
    # replacement says (computed exactly over all ordered picks)
    freq = np.bincount(firsts, minlength=range_max) / runs
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / runs) + 1e-9), (freq, p)
    exact = np.zeros(range_max)
    for a in range(range_max):
        for b in range(range_max):
            for c in range(range_max):
                if len({a, b, c}) == 3:
                    q = p[a] * p[b] / (1 - p[a]) * p[c] / (1 - p[a] - p[b])
                    exact[[a, b, c]] += q
    got = inclusion / runs
    assert np.all(np.abs(got - exact) <= 5 * np.sqrt(exact * (1 - exact) / runs) + 1e-9), (got, exact)


# --- nce_loss and sampled_softmax_loss ------------------------------------------------------------------
def _sampled_logits_np(w, b, labels, x, sampled, true_count, sampled_count, remove_hits):
    true_logits = np.einsum("bd,btd->bt", x, w[labels]) + b[labels] - np.log(true_count)
    sampled_logits = x @ w[sampled].T + b[sampled] - np.log(sampled_count)
    if remove_hits:
        hit = (labels[:, :, None] == sampled[None, None, :]).any(1)
        sampled_logits = sampled_logits + np.where(hit, -np.finfo(np.float32).max, 0.0)
    nt = labels.shape[1]
    logits = np.concatenate([true_logits, sampled_logits], 1)
    targets = np.concatenate([np.full(true_logits.shape, 1.0 / nt), np.zeros(sampled_logits.shape)], 1)
    return logits, targets


def _nce_np(*args):
    z, t = _sampled_logits_np(*args)
    return (np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).sum(1)


def _sampled_softmax_np(*args):
    z, t = _sampled_logits_np(*args)
    z = z - z.max(1, keepdims=True)
    return -(t * (z - np.log(np.exp(z).sum(1, keepdims=True)))).sum(1)


def _loss_problem(num_true):
    classes, dim, batch = 7, 3, 4
    w = rng.standard_normal((classes, dim))
    b = rng.standard_normal(classes)
    x = rng.standard_normal((batch, dim))
    labels = np.array([[1, 4], [0, 2], [6, 5], [3, 3]])[:, :num_true]
    sampled = np.array([2, 5, 0])
    true_count = rng.uniform(0.1, 0.9, (batch, num_true))
    sampled_count = rng.uniform(0.1, 0.9, 3)
    return w, b, labels, x, sampled, true_count, sampled_count


LOSSES = {"nce": (gc.nn.nce_loss, _nce_np), "sampled_softmax": (gc.nn.sampled_softmax_loss, _sampled_softmax_np)}


def test_sampled_losses_match_numpy(graph, evaluate):
    f = Feeds()
    c = Cases()
    for num_true in (1, 2):
        w, b, labels, x, sampled, tc, sc = _loss_problem(num_true)
        values = (f(sampled), f(tc), f(sc))
        for kind, (loss, oracle) in LOSSES.items():
            for hits in (False, True):
                out = loss(f(w), f(b), f(labels), f(x), 3, 7, num_true=num_true, sampled_values=values,
                           remove_accidental_hits=hits)
                c.add(f"{kind} nt={num_true} hits={hits}", out,
                      oracle(w, b, labels, x, sampled, tc, sc, hits))
        # weights and biases in partitions ("div", as TF1 shards them)
        out = gc.nn.sampled_softmax_loss([f(w[:4]), f(w[4:])], [f(b[:4]), f(b[4:])], f(labels), f(x), 3, 7,
                                         num_true=num_true, sampled_values=values, partition_strategy="div")
        c.add(f"partitioned nt={num_true}", out, _sampled_softmax_np(w, b, labels, x, sampled, tc, sc, True))
    check(evaluate, c, f, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", sorted(LOSSES))
def test_sampled_losses_gradients_match_finite_differences(kind):
    w, b, labels, x, sampled, tc, sc = _loss_problem(2)
    loss = LOSSES[kind][0]
    gc.test_utils.check_gradients(
        lambda w_, b_, x_: loss(w_, b_, labels, x_, 3, 7, num_true=2, sampled_values=(sampled, tc, sc)),
        [w, b, x])


def test_sampled_losses_with_the_default_sampler(graph, device):
    """Without sampled_values: log-uniform candidates, unique; the loss is finite, reproducible
    under a seed, and its gradient reaches the weights of the classes used only."""
    gc.set_random_seed(3)
    w = gc.Variable(rng.standard_normal((50, 4)))
    b = gc.Variable(np.zeros(50))
    x = gc.constant(rng.standard_normal((5, 4)))
    labels = gc.constant(np.array([[1], [7], [7], [30], [49]]))
    nce = gc.nn.nce_loss(w, b, labels, x, num_sampled=6, num_classes=50)
    ssm = gc.nn.sampled_softmax_loss(w, b, labels, x, num_sampled=6, num_classes=50)
    (gw,) = gc.gradients(gc.reduce_sum(nce) + gc.reduce_sum(ssm), [w])
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())
        a, s, g = sess.run([nce, ssm, gw])
    assert a.shape == (5,) and s.shape == (5,) and np.all(np.isfinite(a)) and np.all(np.isfinite(s))
    used = np.flatnonzero(np.abs(g).sum(1))
    assert {1, 7, 30, 49} <= set(used.tolist()) and len(used) <= 4 + 12


def test_sampled_loss_errors(graph):
    w, b = gc.placeholder(gc.float32, (7, 3)), gc.placeholder(gc.float32, (7,))
    x = gc.placeholder(gc.float32, (4, 3))
    build_error(gc.ShapeError, lambda: gc.nn.nce_loss(w, b, gc.placeholder(gc.int64, (4,)), x, 2, 7), "nce_loss",
                "num_true=1")
    build_error(gc.DTypeError, lambda: gc.nn.sampled_softmax_loss(w, b, gc.placeholder(gc.float32, (4, 1)), x, 2, 7),
                "sampled_softmax_loss", "labels")
    build_error(gc.ShapeError, lambda: gc.nn.nce_loss(w, b, gc.placeholder(gc.int64, (4, 1)), x, 2, 7,
                                                      sampled_values=(1, 2)), "nce_loss", "sampled_values")


# --- data_format="NCHW" ---------------------------------------------------------------------------------
def test_nchw_matches_nhwc(graph, evaluate):
    f = Feeds()
    xv = rng.standard_normal((2, 7, 6, 3))
    x_nhwc = f(xv)
    x_nchw = f(np.ascontiguousarray(xv.transpose(0, 3, 1, 2)), shape=(None, 3, None, None))
    filt, dw, pw = f(rng.standard_normal((3, 2, 3, 4))), f(rng.standard_normal((2, 2, 3, 2))), \
        f(rng.standard_normal((1, 1, 6, 5)))
    bias = f(rng.standard_normal(3))
    pairs = {
        "conv2d": (lambda x, fmt, s: gc.nn.conv2d(x, filt, s([1, 2, 1, 1]), "SAME", data_format=fmt)),
        "conv2d dilated": (lambda x, fmt, s: gc.nn.conv2d(x, filt, 1, "VALID", data_format=fmt,
                                                          dilations=s([1, 2, 2, 1]))),
        "max_pool": (lambda x, fmt, s: gc.nn.max_pool(x, s([1, 3, 2, 1]), s([1, 2, 2, 1]), "SAME", data_format=fmt)),
        "avg_pool2d": (lambda x, fmt, s: gc.nn.avg_pool2d(x, s([1, 2, 2, 1]), s([1, 1, 2, 1]), "VALID",
                                                          data_format=fmt)),
        "bias_add": (lambda x, fmt, s: gc.nn.bias_add(x, bias, data_format=fmt)),
        "depthwise": (lambda x, fmt, s: gc.nn.depthwise_conv2d(x, dw, s([1, 2, 2, 1]), "SAME", data_format=fmt)),
        "separable": (lambda x, fmt, s: gc.nn.separable_conv2d(x, dw, pw, [1, 1, 1, 1], "VALID", data_format=fmt)),
    }

    def nchw_list(v):
        return [v[0], v[3], v[1], v[2]]
    out = evaluate({k: (fn(x_nhwc, "NHWC", lambda v: v), fn(x_nchw, "NCHW", nchw_list)) for k, fn in pairs.items()},
                   f.feed_dict)
    for k, (a, b) in out.items():
        np.testing.assert_allclose(b, a.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12, err_msg=k)
    v = rng.standard_normal((4, 3))
    out = evaluate(gc.nn.bias_add(gc.constant(v), gc.constant(np.arange(3.0)), data_format="NCHW"))
    np.testing.assert_allclose(out, v + np.arange(3.0))


def test_nchw_errors(graph):
    x = gc.placeholder(gc.float32, (1, 3, 5, 5))
    f = gc.placeholder(gc.float32, (2, 2, 3, 1))
    build_error(gc.ShapeError, lambda: gc.nn.conv2d(x, f, [1, 2, 1, 1], "SAME", data_format="NCHW"), "conv2d",
                "[1, 1, h, w]")
    build_error(gc.ShapeError, lambda: gc.nn.max_pool(x, 2, 2, data_format="NDHWC"), "max_pool2d", "data_format")
    build_error(gc.ShapeError, lambda: gc.nn.bias_add(x, gc.placeholder(gc.float32, (5,)), data_format="NCHW"),
                "bias_add", "axis 1")
    build_error(gc.ShapeError, lambda: gc.nn.depthwise_conv2d(x, gc.placeholder(gc.float32, (2, 2, 5, 1)),
                                                              [1, 1, 1, 1], "SAME", data_format="NCHW"),
                "depthwise_conv2d", "3 channels")


# --- range with a bound from a shape ----------------------------------------------------------------------
def test_range_with_a_dim_of_a_shape(graph, evaluate):
    x = gc.placeholder(gc.float32, (None, 3))
    n = gc.shape(x)[0]
    cases = {
        "range(n)": (gc.range(n), lambda k: np.arange(k)),
        "range(2, n, 3)": (gc.range(2, n, 3), lambda k: np.arange(2, k, 3)),
        "float32": (gc.range(0, gc.cast(n, gc.int32), dtype=gc.float32), lambda k: np.arange(k, dtype=np.float32)),
        "range(n, 0, -2)": (gc.range(n, 0, -2), lambda k: np.arange(k, 0, -2)),
        "range(n, 3, -1)": (gc.range(n, 3, -1), lambda k: np.arange(k, 3, -1)),
        "static dim": (gc.range(gc.shape(x)[1]), lambda k: np.arange(3)),
    }
    for name, (t, _) in cases.items():
        assert tuple(t.shape) == ((3,) if name == "static dim" else (None,)), name
    for k in (0, 1, 7):
        out = evaluate({name: t for name, (t, _) in cases.items()}, {x: np.zeros((k, 3), np.float32)})
        for name, (_, want) in cases.items():
            np.testing.assert_array_equal(out[name], want(k), err_msg=f"{name}, k={k}")
            assert out[name].dtype == want(k).dtype, name


def test_range_with_a_data_dependent_bound_is_an_error(graph):
    x = gc.placeholder(gc.float32, (None, 3))
    n = gc.placeholder(gc.int32, ())
    build_error(gc.ShapeError, lambda: gc.range(n), "range", "limit 'Placeholder_1:0'", "feed shapes")
    build_error(gc.ShapeError, lambda: gc.range(gc.shape(x)[0], 5), "range", "limit >= 0 and delta < 0")
    build_error(gc.ShapeError, lambda: gc.range(0, gc.shape(x)[0], 0), "range", "delta")


# --- one-argument where and boolean_mask: sizes decided by the data (stage boundaries) --------------------
def test_where_and_boolean_mask_match_numpy(graph, evaluate):
    x = gc.placeholder(gc.float64, (None, 3))
    m = gc.placeholder(gc.bool_, (None,))
    y = gc.boolean_mask(x, m)
    fetches = {
        "where": gc.where(x > 0),
        "mask rows": y,
        "after the mask": gc.reduce_sum(y * 2.0, axis=0) + gc.cast(gc.shape(y)[0], gc.float64),
        "2-D mask": gc.boolean_mask(x, x > 0),
        "axis=1": gc.boolean_mask(x, [True, False, True], axis=1),
        "masked twice": gc.boolean_mask(gc.boolean_mask(x, m), gc.boolean_mask(x, m)[:, 0] > 0),
    }
    assert tuple(fetches["where"].shape) == (None, 2) and fetches["where"].dtype == gc.int64
    assert tuple(y.shape) == (None, 3)
    for rows in ([True, False, True, True], [False] * 4, [True] * 4):
        v = rng.standard_normal((4, 3))
        keep = np.array(rows)
        out = evaluate(fetches, {x: v, m: keep})
        want = {"where": np.argwhere(v > 0), "mask rows": v[keep],
                "after the mask": (v[keep] * 2).sum(0) + keep.sum(), "2-D mask": v[v > 0], "axis=1": v[:, [0, 2]],
                "masked twice": v[keep][v[keep][:, 0] > 0]}
        for k, w in want.items():
            np.testing.assert_allclose(out[k], w, rtol=1e-12, err_msg=f"{k}, mask {rows}")
            assert out[k].shape == w.shape, k


def test_boolean_mask_gradient_and_errors(graph, device):
    x = gc.placeholder(gc.float64, (4, 2))
    y = gc.boolean_mask(x, [True, False, False, True])
    (g,) = gc.gradients(gc.reduce_sum(y * y), [x])
    v = rng.standard_normal((4, 2))
    with gc.Session(graph=graph, device=device) as sess:
        np.testing.assert_allclose(sess.run(g, {x: v}), 2 * v * np.array([[1], [0], [0], [1]]))
    build_error(gc.ShapeError, lambda: gc.boolean_mask(x, [True, False]), "boolean_mask", "does not match")
    build_error(gc.DTypeError, lambda: gc.boolean_mask(x, gc.constant([1, 0, 0, 1])), "boolean_mask", "bool")
    build_error(TypeError, lambda: gc.where(x > 0, x), "where", "both x and y")


def test_where_in_a_loop_body(graph, device):
    """The reference and CUDA run the body's stages from the host; the CPU compiles a body for
    one set of sizes and says so, naming the op and its line."""
    x = gc.placeholder(gc.float32, (None,))

    def body(i, acc):
        return i + 1, acc + gc.reduce_sum(gc.boolean_mask(x, x > gc.cast(i, gc.float32)))
    line = __import__("sys")._getframe().f_lineno - 1
    r = gc.while_loop(lambda i, acc: i < 3, body, [gc.constant(0), gc.constant(0.0)])
    with gc.Session(graph=graph, device=device) as sess:
        if device == "cpu":
            with pytest.raises(gc.CompileError, match=f"test_issue15b_ops.py:{line}.*decided by the data"):
                sess.run(r, {x: np.array([1, 2, 3], np.float32)})
        else:
            assert sess.run(r, {x: np.array([1, 2, 3], np.float32)})[1] == 6 + 5 + 3

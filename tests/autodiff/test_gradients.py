"""gc.gradients: API semantics (several ys, grad_ys, stop_gradients, unconnected xs, Variables,
intermediate xs, integer tensors on the path, name scopes), broadcasting and indexing
gradients, composite ops (dropout, batch norm, LRN, losses, moments, ...), the documented tie
rules, errors for bad input, and check_gradients itself.

Expected values are independent NumPy math or central finite differences in float64 through
``check_gradients``; the per-op rules are checked one by one in test_gradient_rules.py."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.test_utils import GradientCheckError, GradientReport, check_gradients
from support import assert_close

rng = np.random.default_rng(20240611)


def rand(*shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape)


def away_from_zero(*shape, low=0.3, high=2.0):
    """Values with |v| in [low, high] and random signs (kinks of abs/relu stay out of reach)."""
    return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def f64(shape, name=None):
    return gc.placeholder(gc.float64, shape, name=name)


# --- gc.gradients semantics ------------------------------------------------------------------
def test_gradients_sum_over_several_ys(graph, evaluate):
    x0 = rand(3)
    x = f64((3,), "x")
    y1 = gc.reduce_sum(gc.sin(x))
    y2 = gc.reduce_sum(x * x * x)
    both = gc.gradients([y1, y2], x)
    assert isinstance(both, list) and len(both) == 1
    one = gc.gradients(y1, [x])
    two = gc.gradients(y2, [x])
    got_both, got1, got2 = evaluate([both[0], one[0], two[0]], {x: x0})
    assert_close(got1, np.cos(x0))
    assert_close(got2, 3 * x0 ** 2)
    assert_close(got_both, np.cos(x0) + 3 * x0 ** 2)


def test_repeated_ys_and_xs_and_y_as_its_own_x(graph, evaluate):
    x0 = rand(3)
    x = f64((3,), "x")
    y = gc.reduce_sum(x * x)
    g_y, g_x1, g_x2 = gc.gradients(y, [y, x, x])
    (g_twice,) = gc.gradients([y, y], x)
    got = evaluate([g_y, g_x1, g_x2, g_twice], {x: x0})
    assert float(got[0]) == 1.0
    assert_close(got[1], 2 * x0)
    assert_close(got[2], 2 * x0)
    assert_close(got[3], 4 * x0)


def test_grad_ys_seed_non_scalar_ys(graph, evaluate):
    x0, w0, u0, u1 = rand(2, 3), rand(3, 4), rand(2, 4), rand(2, 3)
    x = f64((2, 3), "x")
    w = gc.constant(w0)
    y = gc.matmul(x, w)                      # (2, 4)
    z = gc.tanh(x)                           # (2, 3)
    s = gc.reduce_sum(x * x)                 # scalar: its seed may be left as None
    u = f64((2, 4), "u")
    (g_y,) = gc.gradients(y, x, grad_ys=u)
    (g_all,) = gc.gradients([y, z, s], x, grad_ys=[u, gc.constant(u1), None])
    got_y, got_all = evaluate([g_y, g_all], {x: x0, u: u0})
    assert_close(got_y, u0 @ w0.T)
    assert_close(got_all, u0 @ w0.T + u1 * (1 - np.tanh(x0) ** 2) + 2 * x0)


def test_stop_gradients_give_partial_derivatives(graph, evaluate):
    # TensorFlow's documented example.
    a = gc.constant(0.0)
    b = 2 * a
    partial = gc.gradients(a + b, [a, b], stop_gradients=[a, b])
    total = gc.gradients(a + b, [a, b])
    assert all(g is not None for g in partial), f"stop_gradients dropped the gradients of the xs: {partial}"
    got_partial, got_total = evaluate([partial, total])
    assert [float(v) for v in got_partial] == [1.0, 1.0]
    assert [float(v) for v in got_total] == [3.0, 1.0]
    # An x that is also held constant still gets its own gradient: d(h * x)/dh = x, and
    # d(h * x)/dx = h with h = 2x fixed.
    x0 = np.array([1.0, -2.0, 0.5])
    x = f64((3,), "x")
    h = x * 2.0
    gh, gx = gc.gradients(gc.reduce_sum(h * x), [h, x], stop_gradients=[h])
    assert gh is not None
    got_h, got_x = evaluate([gh, gx], {x: x0})
    assert_close(got_h, x0)
    assert_close(got_x, 2 * x0)


def test_stop_gradients_on_an_intermediate_tensor(graph, evaluate):
    x0 = rand(3)
    x = f64((3,), "x")
    h = x * x
    y = gc.reduce_sum(h * x)                 # x^3: total 3x^2; holding h fixed: h = x^2
    (held,) = gc.gradients(y, x, stop_gradients=[h])
    (full,) = gc.gradients(y, x)
    got_held, got_full = evaluate([held, full], {x: x0})
    assert_close(got_held, x0 ** 2)
    assert_close(got_full, 3 * x0 ** 2)


def test_stop_gradient_op_cuts_the_graph(graph, evaluate):
    x0 = rand(4)
    x = f64((4,), "x")
    y = gc.reduce_sum(gc.stop_gradient(x * x) * x + gc.exp(x))
    only_cut = gc.reduce_sum(gc.stop_gradient(gc.exp(x)))
    (g,) = gc.gradients(y, x)
    assert gc.gradients(only_cut, x) == [None]
    (z,) = gc.gradients(only_cut, x, unconnected_gradients="zero")
    got_g, got_z = evaluate([g, z], {x: x0})
    assert_close(got_g, x0 * x0 + np.exp(x0))
    assert_close(got_z, np.zeros(4))


def test_unconnected_xs_get_none_or_zeros(graph, evaluate):
    x = f64((2,), "x")
    other = gc.placeholder(gc.float32, (3, 2), name="other")
    v = gc.Variable(np.ones((2, 2), np.float32), name="unused_v")
    y = gc.reduce_sum(x * x)
    gx, g_other, g_v = gc.gradients(y, [x, other, v])
    assert gx is not None and g_other is None and g_v is None
    gx, z_other, z_v = gc.gradients(y, [x, other, v], unconnected_gradients="zero")
    assert z_other.dtype is gc.float32 and tuple(z_other.shape) == (3, 2)
    assert z_v.dtype is gc.float32 and tuple(z_v.shape) == (2, 2)
    got_x, got_other, got_v = evaluate([gx, z_other, z_v], {x: np.array([1.5, -2.0])})
    assert_close(got_x, np.array([3.0, -4.0]))
    assert_close(got_other, np.zeros((3, 2), np.float32))
    assert_close(got_v, np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="unconnected_gradients"):
        gc.gradients(y, x, unconnected_gradients="zeros")


def test_variable_gradient_sums_over_every_read(graph, evaluate):
    v0 = np.array([1.0, -2.0, 0.5])
    v = gc.Variable(v0, name="v")
    first = gc.reduce_sum(v * v)              # the variable's default read
    with gc.control_dependencies([gc.no_op()]):
        second = gc.reduce_sum(v * 3.0)       # a second read, made under the dependency
    assert len(v.reads()) == 2
    loss = first + second
    gv, gread = gc.gradients(loss, [v, v.value()])
    got_v, got_read = evaluate([gv, gread])
    assert_close(got_v, 2 * v0 + 3.0)
    assert_close(got_read, 2 * v0)            # the tensor v.value() alone: only the first read


def test_gradient_wrt_intermediate_and_input(graph, evaluate):
    x0 = rand(2, 3)
    x = f64((2, 3), "x")
    h = gc.tanh(x)
    loss = gc.reduce_sum(h * h) + gc.reduce_sum(gc.sin(x))
    gh, gx = gc.gradients(loss, [h, x])
    (gx_alone,) = gc.gradients(loss, x)
    got_h, got_x, got_x_alone = evaluate([gh, gx, gx_alone], {x: x0})
    t = np.tanh(x0)
    assert_close(got_h, 2 * t)
    assert_close(got_x, 2 * t * (1 - t ** 2) + np.cos(x0))   # includes the path through h
    assert_close(got_x_alone, got_x)


def test_integer_tensors_on_the_path_get_no_gradient(graph, evaluate):
    logits0 = rand(3, 4)
    labels0 = np.array([2, 0, 3], np.int32)
    x0 = np.array([[1.3, 4.1, 2.2], [3.4, 5.6, -0.7]])      # argmax 1 in both rows
    logits = f64((3, 4), "logits")
    labels = gc.placeholder(gc.int32, (3,), name="labels")
    x = f64((2, 3), "x")
    best = gc.argmax(x, 1)                                   # int64, computed from x
    picked = gc.gather(x, best, axis=1)                      # indices depend on x
    rounded = gc.cast(gc.cast(x * 2.0, gc.int32), gc.float64)  # a float -> int -> float round trip
    ratio = gc.divide(best, 2)                               # int / int -> float64, from ints only
    loss = (gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
            + gc.reduce_sum(picked) + gc.reduce_sum(x * rounded) + gc.reduce_sum(ratio * x[:, 0]))
    g_logits, g_x = gc.gradients(loss, [logits, x])
    got_logits, got_x = evaluate([g_logits, g_x], {logits: logits0, labels: labels0, x: x0})
    p = np.exp(logits0 - logits0.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert_close(got_logits, (p - np.eye(4)[labels0]) / 3)
    expected_x = np.trunc(x0 * 2.0)                          # the cast result, held constant
    expected_x[:, 1] += 2.0                                  # x[:, [1, 1]]: column 1 twice
    expected_x[:, 0] += 0.5                                  # argmax / 2
    assert_close(got_x, expected_x)


def test_gradient_taken_twice_is_the_same(graph, evaluate):
    x0 = rand(3, 2)
    x = f64((3, 2), "x")
    w = gc.Variable(rand(2, 2), name="w")
    loss = gc.reduce_mean(gc.square(gc.matmul(gc.tanh(x), w)))
    first = gc.gradients(loss, [x, w])
    second = gc.gradients(loss, [x, w])
    assert not set(first) & set(second)                      # a new set of nodes...
    a, b = evaluate([first, second], {x: x0})
    for p, q in zip(a, b):                                   # ...with the same values
        assert_close(p, q)
    assert np.abs(a[0]).sum() > 0


def test_gradient_nodes_live_under_the_name_scope(graph):
    x = f64((3,), "x")
    with gc.name_scope("model"):
        loss = gc.reduce_sum(gc.tanh(x) * gc.sigmoid(x))
    before = set(graph.get_operations())
    (g,) = gc.gradients(loss, x)
    new = [op.name for op in graph.get_operations() if op not in before]
    assert new and g.op.name in new
    assert all(name.startswith("gradients/") for name in new), new
    before = set(graph.get_operations())
    gc.gradients(loss, x, name="second_pass")
    new = [op.name for op in graph.get_operations() if op not in before]
    assert new and all(name.startswith("second_pass/") for name in new), new


# --- broadcasting and indexing -----------------------------------------------------------------
def test_broadcast_gradients_with_dims_resolved_at_run_time(graph, evaluate):
    # a: (None, 3) fed (1, 3); b: (None, 3) fed (4, 3); c: (None, None) fed (4, 1).
    a0, b0, c0, w0 = rand(1, 3), rand(4, 3), rand(4, 1), rand(4, 3)
    a, b = f64((None, 3), "a"), f64((None, 3), "b")
    c = f64((None, None), "c")
    loss = gc.reduce_sum((a * b + a) * w0) + gc.reduce_mean(c - b) + gc.reduce_sum(a / (c * c + 1.0))
    ga, gb, gc_ = gc.gradients(loss, [a, b, c])
    got_a, got_b, got_c = evaluate([ga, gb, gc_], {a: a0, b: b0, c: c0})
    d = c0 * c0 + 1.0
    assert got_a.shape == (1, 3) and got_b.shape == (4, 3) and got_c.shape == (4, 1)
    assert_close(got_a, ((b0 + 1.0) * w0).sum(0, keepdims=True) + (1.0 / d).sum())
    assert_close(got_b, a0 * w0 - 1.0 / 12)
    assert_close(got_c, 3.0 / 12 - a0.sum() * 2 * c0 / d ** 2)
    # The same graph with the sizes swapped: now b is the (1, 3) operand.
    got_a, got_b = evaluate([ga, gb], {a: b0, b: a0, c: c0})
    assert got_a.shape == (4, 3) and got_b.shape == (1, 3)
    assert_close(got_a, (a0 + 1.0) * w0 + 1.0 / d)
    assert_close(got_b, (b0 * w0).sum(0, keepdims=True) - 4.0 / 12)


def test_shape_op_gradients_with_dims_resolved_at_run_time(graph, device):
    a0, b0, c0, s0 = rand(3, 2), rand(1, 2), rand(3, 1), rand(3, 4)
    m0, n0 = rand(1, 2, 3), rand(4, 3, 2)
    a, b = f64((None, 2), "a"), f64((None, 2), "b")
    c, s = f64((None, 1), "c"), f64((None, 4), "s")
    m, n = f64((None, 2, 3), "m"), f64((None, 3, 2), "n")
    ys = [gc.reduce_mean(gc.tanh(gc.concat([a, b * b], 0)), -1),   # mean over a None-sized count
          gc.tile(gc.sin(a), [2, 3]),
          gc.broadcast_to(c, gc.shape(s)) * s,
          gc.matmul(m, n)]                                          # batch (1,) broadcast to (4,)
    report = check_gradients(ys, xs=[a, b, c, s, m, n],
                             feed_dict={a: a0, b: b0, c: c0, s: s0, m: m0, n: n0}, device=device)
    assert report.ok and report.checked == 6 + 2 + 3 + 12 + 6 + 24


def test_gather_and_slice_gradients_accumulate_repeats(graph, evaluate):
    x0, m0 = rand(4, 3), rand(3, 5)
    x = f64((4, 3), "x")
    m = f64((3, 5), "m")
    rows = x[[0, 0, 2]]                                      # row 0 twice
    cols = gc.gather(m, [4, 1, 4, 4], axis=1)                # column 4 three times
    sl = x[1:, ::2]
    w_rows, w_cols, w_sl = rand(3, 3), rand(3, 4), rand(3, 2)
    loss = gc.reduce_sum(rows * w_rows) + gc.reduce_sum(cols * w_cols) + gc.reduce_sum(sl * w_sl)
    gx, gm = gc.gradients(loss, [x, m])
    got_x, got_m = evaluate([gx, gm], {x: x0, m: m0})
    want_x = np.zeros((4, 3))
    np.add.at(want_x, [0, 0, 2], w_rows)
    want_x[1:, ::2] += w_sl
    want_m = np.zeros((3, 5))
    want_m[:, 4] = w_cols[:, 0] + w_cols[:, 2] + w_cols[:, 3]
    want_m[:, 1] = w_cols[:, 1]
    assert_close(got_x, want_x)
    assert_close(got_m, want_m)


def test_shape_ops_in_a_composite_chain(device):
    def fn(a, b):
        c = gc.concat([a, gc.sin(b)], axis=1)                # (2, 5)
        p1, p2, unused = gc.split(c, [2, 2, 1], axis=1)      # the last part gets no gradient
        s = gc.stack([p1 * p1, gc.tanh(p2)], axis=0)         # (2, 2, 2)
        t = gc.tile(s, [1, 2, 1])                            # (2, 4, 2)
        padded = gc.pad(t, [[0, 0], [1, 2], [2, 0]])         # (2, 7, 4)
        reflected = gc.pad(p1, [[1, 1], [1, 1]], mode="REFLECT")
        return [gc.transpose(padded, (2, 0, 1)), reflected * gc.reduce_sum(b[:, :2])]
    report = check_gradients(fn, [rand(2, 2), rand(2, 3)], device=device)
    assert report.ok and report.checked == 10


# --- composite ops ---------------------------------------------------------------------------------
def _find_op(graph, op_type):
    found = [op for op in graph.get_operations() if op.type == op_type]
    assert len(found) == 1, found
    return found[0]


def test_dropout_gradient_is_mask_times_scale(graph, evaluate):
    x0 = away_from_zero(6, 8)
    x = f64((6, 8), "x")
    rate = 0.4
    y = gc.nn.dropout(x, rate=rate, seed=7)
    (g,) = gc.gradients(gc.reduce_sum(y), x)
    got_y, got_g = evaluate([y, g], {x: x0})                  # one run: one mask
    kept = got_y != 0
    assert 0 < kept.sum() < kept.size
    assert_close(got_g, kept / (1 - rate))
    assert_close(got_g, got_y / x0)


def test_dropout_gradient_with_a_fixed_mask_matches_finite_differences(graph, evaluate, device):
    x0 = away_from_zero(3, 4)
    x = f64((3, 4), "x")
    y = gc.nn.dropout(gc.tanh(x), rate=0.5, seed=11) * x
    noise = _find_op(graph, "random_uniform").outputs[0]
    u0 = rng.uniform(0, 1, size=(3, 4))
    u0[0, :2] = [0.1, 0.9]                                    # at least one dropped, one kept
    report = check_gradients(y, xs=[x], feed_dict={x: x0, noise: u0}, device=device)
    assert report.ok and report.checked == 12
    # and the analytic gradient is the mask's: d/dx (m * 2 * tanh(x) * x)
    (g,) = gc.gradients(gc.reduce_sum(y), x)
    got = evaluate(g, {x: x0, noise: u0})
    mask = (u0 >= 0.5) * 2.0
    assert_close(got, mask * ((1 - np.tanh(x0) ** 2) * x0 + np.tanh(x0)))


def test_dropout_gradient_follows_the_training_flag(graph, evaluate, device):
    x0 = away_from_zero(4, 5)
    x = f64((4, 5), "x")
    training = gc.placeholder_with_default(True, (), name="training")
    y = gc.nn.dropout(x, rate=0.5, seed=5, training=training)
    (g,) = gc.gradients(gc.reduce_sum(y * y), x)
    got_y, got_g = evaluate([y, g], {x: x0})
    assert_close(got_g, 2 * got_y * (got_y != 0) * 2.0)     # d/dx (m*2x)^2 = 2 (m*2x) * m*2
    got_y, got_g = evaluate([y, g], {x: x0, training: False})
    assert_close(got_y, x0)
    assert_close(got_g, 2 * x0)
    report = check_gradients(lambda t: gc.nn.dropout(t, rate=0.5, training=False) * t, [x0], device=device)
    assert report.ok


def test_batch_normalization_gradients(device):
    x0 = rand(5, 3)
    mean0, var0 = rand(3), rng.uniform(0.5, 2.0, size=3)
    offset0, scale0 = rand(3), rand(3)

    def fn(x, mean, variance, offset, scale):
        return gc.nn.batch_normalization(x, mean, variance, offset, scale, variance_epsilon=1e-3)
    report = check_gradients(fn, [x0, mean0, var0, offset0, scale0], device=device)
    assert report.ok and report.checked == 15 + 4 * 3
    # without offset and scale, with batch statistics from moments
    report = check_gradients(
        lambda x: gc.nn.batch_normalization(x, *gc.nn.moments(x, [0]), None, None, 1e-3), [x0], device=device)
    assert report.ok


def test_batch_normalization_gradient_matches_numpy(graph, evaluate):
    x0, mean0, var0, offset0, scale0 = rand(4, 2), rand(2), rng.uniform(0.5, 2.0, 2), rand(2), rand(2)
    ts = [f64(a.shape) for a in (x0, mean0, var0, offset0, scale0)]
    y = gc.nn.batch_normalization(*ts, variance_epsilon=0.01)
    w0 = rand(4, 2)
    grads = gc.gradients(gc.reduce_sum(y * w0), ts)
    got = evaluate(grads, dict(zip(ts, [x0, mean0, var0, offset0, scale0])))
    inv = 1 / np.sqrt(var0 + 0.01)
    assert_close(got[0], w0 * scale0 * inv)
    assert_close(got[1], -(w0 * scale0 * inv).sum(0))
    assert_close(got[2], (w0 * (x0 - mean0) * scale0).sum(0) * -0.5 * inv ** 3)
    assert_close(got[3], w0.sum(0))
    assert_close(got[4], (w0 * (x0 - mean0) * inv).sum(0))


def test_moments_gradients(device):
    x0 = rand(3, 4)
    report = check_gradients(lambda x: list(gc.nn.moments(x, [1])), [x0], device=device)
    assert report.ok
    report = check_gradients(lambda x: list(gc.nn.moments(x, [0, 1], keepdims=True)), [x0], device=device)
    assert report.ok


def test_local_response_normalization_gradients(device):
    x0 = rand(2, 2, 2, 6)
    report = check_gradients(
        lambda x: gc.nn.local_response_normalization(x, depth_radius=2, bias=1.5, alpha=0.3, beta=0.75),
        [x0], device=device)
    assert report.ok and report.checked == x0.size


def test_sigmoid_cross_entropy_gradients(graph, evaluate, device):
    logits0, labels0 = away_from_zero(3, 4), rng.uniform(0, 1, size=(3, 4))
    report = check_gradients(
        lambda z, x: gc.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x), [labels0, logits0],
        device=device)
    assert report.ok and report.checked == 24
    labels, logits = f64((3, 4)), f64((3, 4))
    loss = gc.reduce_sum(gc.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
    g_labels, g_logits = gc.gradients(loss, [labels, logits])
    got_labels, got_logits = evaluate([g_labels, g_logits], {labels: labels0, logits: logits0})
    assert_close(got_logits, 1 / (1 + np.exp(-logits0)) - labels0)
    assert_close(got_labels, -logits0)


def test_l2_loss_gradient(graph, evaluate, device):
    x0 = rand(3, 2)
    x = f64((3, 2))
    (g,) = gc.gradients(gc.nn.l2_loss(x) * 3.0, x)
    assert_close(evaluate(g, {x: x0}), 3.0 * x0)
    assert check_gradients(gc.nn.l2_loss, [x0], device=device).ok


def test_softmax_cross_entropy_gradients_wrt_labels_and_logits(graph, evaluate, device):
    logits0 = rand(3, 4)
    labels0 = rng.uniform(0, 1, size=(3, 4))
    labels0[1] = [0.0, 1.0, 0.0, 0.0]
    report = check_gradients(
        lambda labels, logits: gc.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits),
        [labels0, logits0], device=device)
    assert report.ok and report.checked == 24
    report = check_gradients(                                  # along axis 0
        lambda labels, logits: gc.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=0),
        [labels0, logits0], device=device)
    assert report.ok
    labels, logits = f64((3, 4)), f64((3, 4))
    w0 = rand(3)
    loss = gc.reduce_sum(gc.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits) * w0)
    g_labels, g_logits = gc.gradients(loss, [labels, logits])
    got_labels, got_logits = evaluate([g_labels, g_logits], {labels: labels0, logits: logits0})
    log_p = logits0 - logits0.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    assert_close(got_labels, -log_p * w0[:, None])
    assert_close(got_logits, (np.exp(log_p) * labels0.sum(1, keepdims=True) - labels0) * w0[:, None])


def test_elementwise_composites(device):
    x0, y0 = away_from_zero(3, 4), away_from_zero(3, 4)
    base0, expo0 = rng.uniform(0.5, 2.0, size=(3, 4)), rand(3, 4)
    lo0, hi0 = np.float64(-0.8), rng.uniform(0.5, 1.0, size=4)
    x0[0, :3] = [-1.2, 1.3, 0.4]                              # clipped below, above, inside

    def fn(x, y, base, expo, lo, hi):
        return [gc.where(x > 0, x * y, gc.sin(y)),
                gc.clip_by_value(x, lo, hi) * y,
                gc.pow(base, expo),
                gc.abs(x) * y]
    report = check_gradients(fn, [x0, y0, base0, expo0, lo0, hi0], device=device)
    assert report.ok and report.checked == 4 * 12 + 1 + 4


def test_pow_abs_where_clip_match_numpy(graph, evaluate):
    x0 = np.array([-1.5, -0.5, 0.25, 2.0])
    e0 = np.array([0.5, 2.0, -1.0, 3.0])
    b0 = np.array([0.5, 1.5, 2.0, 3.0])
    x, e, b = f64((4,)), f64((4,)), f64((4,))
    loss = (gc.reduce_sum(gc.pow(b, e)) + gc.reduce_sum(gc.abs(x) * e)
            + gc.reduce_sum(gc.where(x < 0, x * x, e * x)) + gc.reduce_sum(gc.clip_by_value(x, -1.0, 1.0)))
    gx, ge, gb = gc.gradients(loss, [x, e, b])
    got_x, got_e, got_b = evaluate([gx, ge, gb], {x: x0, e: e0, b: b0})
    assert_close(got_x, np.sign(x0) * e0 + np.where(x0 < 0, 2 * x0, e0) + (np.abs(x0) <= 1))
    assert_close(got_e, b0 ** e0 * np.log(b0) + np.abs(x0) + np.where(x0 < 0, 0.0, x0))
    assert_close(got_b, e0 * b0 ** (e0 - 1))


# --- documented tie rules ------------------------------------------------------------------------
def test_elementwise_max_min_ties_go_to_the_first_operand(graph, evaluate):
    x0 = np.array([1.0, -2.0, 3.0])
    x, a, b = f64((3,)), f64((3,)), f64((3,))
    (g_self,) = gc.gradients(gc.reduce_sum(gc.maximum(x, x)), x)
    (g_self_min,) = gc.gradients(gc.reduce_sum(gc.minimum(x, x) * 2.0), x)
    max_ab = gc.gradients(gc.reduce_sum(gc.maximum(a, b)), [a, b])
    min_ab = gc.gradients(gc.reduce_sum(gc.minimum(a, b)), [a, b])
    b0 = np.array([1.0, 0.0, 4.0])                          # tie, a wins max, b wins max
    got = evaluate([g_self, g_self_min, max_ab, min_ab], {x: x0, a: x0, b: b0})
    assert_close(got[0], np.ones(3))
    assert_close(got[1], np.full(3, 2.0))
    assert_close(got[2][0], np.array([1.0, 0.0, 0.0]))
    assert_close(got[2][1], np.array([0.0, 1.0, 1.0]))
    assert_close(got[3][0], np.array([1.0, 1.0, 1.0]))
    assert_close(got[3][1], np.array([0.0, 0.0, 0.0]))


def test_reduce_max_min_ties_share_equally(graph, evaluate):
    x0 = np.array([[1.0, 3.0, 3.0, 2.0],
                   [5.0, 5.0, 5.0, -1.0]])
    x = f64((2, 4))
    (g_all,) = gc.gradients(gc.reduce_max(x), x)
    (g_rows,) = gc.gradients(gc.reduce_sum(gc.reduce_max(x, 1) * np.array([2.0, 3.0])), x)
    (g_min,) = gc.gradients(gc.reduce_sum(gc.reduce_min(gc.abs(x - 3.0), 1) * np.array([1.0, 4.0])), x)
    got_all, got_rows, got_min = evaluate([g_all, g_rows, g_min], {x: x0})
    assert_close(got_all, np.array([[0.0, 0.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3, 0.0]]))
    assert_close(got_rows, np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]]))
    # |x - 3| is 0 at both 3s of row 0 (the gradient of abs at 0 is 0) and 2 at the three 5s
    # of row 1: each 5 gets 4/3 * d|x-3|/dx = 4/3.
    assert_close(got_min, np.array([[0.0, 0.0, 0.0, 0.0], [4 / 3, 4 / 3, 4 / 3, 0.0]]))


# --- bad input -------------------------------------------------------------------------------------
def test_gradient_wrt_an_integer_tensor_is_an_error(graph):
    x = f64((3,), "x")
    n = gc.placeholder(gc.int32, (3,), name="counts")
    loss = gc.reduce_sum(x * gc.cast(n, gc.float64))
    with pytest.raises(gc.GradientError) as info:
        gc.gradients(loss, [x, n])
    message = str(info.value)
    assert isinstance(info.value, gc.GraphcError)
    assert "counts" in message and "int32" in message and "floating" in message
    assert "test_gradients.py" in message


def test_gradient_of_an_integer_y_is_an_error(graph):
    x = f64((3,), "x")
    y = gc.argmax(x, 0, name="best")
    with pytest.raises(gc.GradientError) as info:
        gc.gradients(y, x)
    message = str(info.value)
    assert "best" in message and "int64" in message
    assert "test_gradients.py" in message


def test_gradient_of_a_non_scalar_y_needs_grad_ys(graph):
    x = f64((2, 3), "x")
    y = gc.tanh(x, name="activations")
    with pytest.raises(gc.GradientError) as info:
        gc.gradients(y, x)
    message = str(info.value)
    assert "activations" in message and "grad_ys" in message and "(2, 3)" in message
    assert "test_gradients.py" in message


def test_bad_grad_ys_are_errors(graph):
    x = f64((2, 3), "x")
    y = gc.tanh(x, name="act")
    s = gc.reduce_sum(y)
    with pytest.raises(gc.GradientError, match="2 grad_ys for 1 ys"):
        gc.gradients(y, x, grad_ys=[gc.ones_like(y), gc.ones_like(y)])
    with pytest.raises(gc.DTypeError, match="float32.*act|act.*float32"):
        gc.gradients(y, x, grad_ys=gc.ones((2, 3), dtype=gc.float32))
    with pytest.raises(gc.ShapeError, match="act"):
        gc.gradients(y, x, grad_ys=gc.ones((3, 2), dtype=gc.float64))
    with pytest.raises(gc.GradientError, match="empty"):
        gc.gradients([], x)
    other = gc.Graph()
    with other.as_default():
        elsewhere = f64((2, 3), "elsewhere")
    with pytest.raises(gc.GraphError, match="two graphs"):
        gc.gradients(s, elsewhere)
    assert gc.gradients(s, x)[0] is not None                 # the graph is still usable


# --- check_gradients itself ----------------------------------------------------------------------
def test_check_gradients_reports_success(device):
    x0 = rand(2, 3)
    report = check_gradients(lambda x, w: gc.tanh(x) * w, [x0, rand(2, 3)], wrt=[0], device=device)
    assert isinstance(report, GradientReport)
    assert report.ok and report.checked == 6
    assert report.worst_input.startswith("input0")
    assert report.max_abs_error < 1e-6
    text = str(report)
    assert "ok" in text and "input0" in text and "6 elements" in text


def test_check_gradients_tensor_form(graph, device):
    x0, w0 = rand(3), rand(3)
    x, w = f64((3,), "x"), f64((3,), "w")
    y = gc.exp(x) * w
    report = check_gradients(y, xs=[x, w], feed_dict={x: x0, w: w0}, device=device)
    assert report.ok and report.checked == 6


def test_check_gradients_detects_a_wrong_gradient(device):
    x0 = np.array([0.5, -3.0, 1.25, 2.0])

    def wrong(x):                                             # analytic x, numeric 2x
        return gc.reduce_sum(gc.stop_gradient(x) * x)
    with pytest.raises(GradientCheckError) as info:
        check_gradients(wrong, [x0], device=device)
    assert isinstance(info.value, AssertionError)
    report = info.value.report
    assert not report.ok
    assert report.worst_index == (1,)                        # the largest |x|
    assert report.analytic == pytest.approx(-3.0) and report.numeric == pytest.approx(-6.0, rel=1e-6)
    message = str(info.value)
    assert "FAILED" in message and "input0" in message and "[1]" in message
    quiet = check_gradients(wrong, [x0], device=device, raise_on_failure=False)
    assert not quiet.ok and quiet.worst_index == (1,)
    assert "FAILED" in str(quiet)

def test_check_gradients_can_take_its_differences_on_another_device(graph, device):
    """numeric_device: the gradient on ``device``, the finite differences on the reference,
    with the variables' values copied over (a random initializer draws again per Session)."""
    x0 = rand(2, 3)
    x = f64((2, 3), "x")
    w = gc.Variable(gc.random_normal((3, 2), dtype=gc.float64), name="w")
    y = gc.tanh(gc.matmul(x, w))
    report = check_gradients(y, xs=[x], feed_dict={x: x0}, device=device, numeric_device="reference")
    assert report.ok and report.checked == 6

    def wrong(t):
        return gc.reduce_sum(gc.stop_gradient(t) * t)
    with pytest.raises(GradientCheckError):
        check_gradients(wrong, [x0], device=device, numeric_device="reference")



@pytest.mark.parametrize("level", [0, 1, 2])
def test_a_gradient_fetched_without_its_loss_at_every_level(level, device):
    # d/dx logsumexp(sum(x, -1) + max(x)): at optimize=2 a fused logsumexp re-read an input
    # that an in-place output had overwritten, and the gradient fetched alone was wrong
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float64, (2, 3), name="x")
        loss = gc.reduce_logsumexp(gc.reduce_sum(x, axis=-1) + gc.reduce_max(x))
        (dx,) = gc.gradients(loss, [x])
    x0 = np.array([[0.3, -1.2, 0.5], [2.0, 0.1, -0.4]])
    s = x0.sum(-1) + x0.max()
    p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    want = np.repeat(p[:, None], 3, axis=1)
    want[np.unravel_index(np.argmax(x0), x0.shape)] += 1.0
    with gc.Session(graph=g, device=device, optimize=level) as sess:
        np.testing.assert_allclose(sess.run(dx, {x: x0}), want, rtol=1e-12)
        got, _ = sess.run([dx, loss], {x: x0})
        np.testing.assert_allclose(got, want, rtol=1e-12)

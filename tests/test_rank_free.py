"""Placeholders made without a shape (TF1's ``tf.placeholder("float")``): the graph is built
knowing only dtypes downstream of them, and the Session compiles one program per fed rank,
running the checks that need a rank then (graph.py ``_infer_without_rank``, optimizer/program.py
``_specialize``)."""
from __future__ import annotations

import os

import numpy as np
import pytest

import graphc as gc
from graphc.autodiff.checker import check_gradients
from support import DEVICES

TRAIN_X = np.array([3.3, 4.4, 5.5, 6.71, 6.93, 4.168, 9.779, 6.182, 7.59, 2.167])
TRAIN_Y = np.array([1.7, 2.76, 2.09, 3.19, 1.694, 1.573, 3.366, 2.596, 2.53, 1.221])


@pytest.mark.parametrize("device", DEVICES)
def test_linear_regression_tutorial_feeds_scalars_then_vectors(graph, device):
    # TF1's classic linear regression: one sample at a time in training, the whole set for the cost
    X, Y = gc.placeholder("float"), gc.placeholder("float")
    W, b = gc.Variable(0.3, name="weight"), gc.Variable(-0.2, name="bias")
    cost = gc.reduce_sum(gc.pow(gc.add(gc.multiply(X, W), b) - Y, 2)) / (2 * len(TRAIN_X))
    step = gc.train.GradientDescentOptimizer(0.01).minimize(cost)
    assert not X.shape.known_rank and cost.shape == ()
    with gc.Session(device=device) as sess:
        sess.run(gc.global_variables_initializer())
        for _ in range(3):
            for x, y in zip(TRAIN_X, TRAIN_Y):
                sess.run(step, feed_dict={X: x, Y: y})
        final = sess.run(cost, feed_dict={X: TRAIN_X, Y: TRAIN_Y})
        w_b = sess.run([W, b])
    w, bias = np.float32(0.3), np.float32(-0.2)  # the same SGD in NumPy
    for _ in range(3):
        for x, y in zip(TRAIN_X.astype(np.float32), TRAIN_Y.astype(np.float32)):
            r = w * x + bias - y
            w, bias = w - np.float32(0.01) * r * x / len(TRAIN_X), bias - np.float32(0.01) * r / len(TRAIN_X)
    np.testing.assert_allclose(w_b, [w, bias], rtol=1e-5)
    np.testing.assert_allclose(final, np.sum((w * TRAIN_X + bias - TRAIN_Y) ** 2) / (2 * len(TRAIN_X)), rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_each_fed_rank_gets_its_own_program(graph, device):
    x = gc.placeholder(gc.float32, name="x")
    y = gc.reduce_mean(gc.exp(x) * 2.0 + 1.0) + gc.reduce_max(x)
    tripled = x * 3.0
    with gc.Session(device=device) as sess:
        for value in (np.float32(0.5), np.arange(3, dtype=np.float32), np.ones((2, 3), np.float32),
                      np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 24, np.float32(-1.0)):
            np.testing.assert_allclose(sess.run(y, {x: value}), np.mean(np.exp(value) * 2 + 1) + np.max(value),
                                       rtol=1e-5)
            np.testing.assert_allclose(sess.run(tripled, {x: value}), value * 3.0, rtol=1e-6)
        assert len(sess._executables) == 8  # two fetches, four ranks


def test_gradients_through_a_rank_free_input_match_finite_differences(graph):
    x = gc.placeholder(gc.float64, name="x")
    w = gc.placeholder(gc.float64, [3], name="w")
    loss = gc.reduce_sum(gc.tanh(x * w) + gc.square(w - x))
    for value in (np.float64(0.7), np.array([[0.2, -0.5, 1.1], [0.3, 0.9, -1.2]])):
        report = check_gradients(loss, xs=[w, x], feed_dict={x: value, w: np.array([0.5, -1.0, 2.0])})
        assert report.ok and report.checked == 3 + np.size(value)


def test_a_rank_check_runs_when_the_rank_is_fed_and_names_the_op(graph):
    x = gc.placeholder("float", name="x")
    w = gc.Variable([1.0, 2.0], name="w")
    assign = gc.assign(w, x)
    with gc.Session(device="reference") as sess:
        sess.run(w.initializer)
        np.testing.assert_allclose(sess.run(assign, {x: [3.0, 4.0]}), [3.0, 4.0])
        with pytest.raises(gc.ShapeError, match=r"assign '.*' \(with 'x' fed a rank-2 value\): value of shape "
                                                r"\(None, None\) does not fit.*\n.*\n  created at .*test_rank_free.py:\d+"):
            sess.run(assign, {x: [[3.0, 4.0]]})
        np.testing.assert_allclose(sess.run(w), [3.0, 4.0])  # the failed run changed nothing


def test_building_what_needs_the_rank_names_the_placeholder_and_the_users_line(graph):
    x = gc.placeholder("float", name="inputs")
    with pytest.raises(gc.errors.RankUnknownError, match=r"at .*test_rank_free.py:\d+: .*placeholder 'inputs' "
                                                          r"\(made at .*test_rank_free.py:\d+ without a shape\).*"
                                                          r"shape=\[None\]"):
        gc.reduce_sum(x, axis=1)
    with pytest.raises(gc.ShapeError, match="placeholder 'inputs'"):
        gc.while_loop(lambda v: v < 3.0, lambda v: v + 1.0, [x])


def test_feeds_make_callable_and_repr(graph):
    x = gc.placeholder(gc.float32, name="x")
    assert "<unknown rank>" in repr(x) and x.get_shape() == x.shape and x.shape.num_elements() is None
    f = gc.Session(device="reference").make_callable(x + 1.0, [x])
    np.testing.assert_allclose(f(1.0), 2.0)
    np.testing.assert_allclose(f([1.0, 2.0]), [2.0, 3.0])
    with gc.Session(device="reference") as sess, pytest.raises(gc.FeedError, match="type <U1 .* float32<unknown rank>"):
        sess.run(x, {x: np.array(["a"])})


def test_meta_graph_keeps_the_unknown_rank(graph, tmp_path):
    x = gc.placeholder("float", name="x")
    gc.reduce_sum(gc.square(x), name="y")
    path = os.path.join(tmp_path, "m.meta")
    gc.train.export_meta_graph(path)
    fresh = gc.Graph()
    with fresh.as_default():
        gc.train.import_meta_graph(path)
        assert not fresh.get_tensor_by_name("x:0").shape.known_rank
        with gc.Session(device="reference") as sess:
            assert sess.run("y:0", {"x:0": [[1.0, 2.0]]}) == 5.0 and sess.run("y:0", {"x:0": 3.0}) == 9.0


def test_keep_prob_and_is_training_without_a_shape_are_scalars(graph):
    # TF1's idiom: keep_prob = tf.placeholder(tf.float32); is_training = tf.placeholder(tf.bool)
    keep_prob, training = gc.placeholder(gc.float32), gc.placeholder(gc.bool)
    x = gc.placeholder(gc.float32, [None, 4])
    y = gc.nn.dropout(x, keep_prob)
    z = gc.cond(training, lambda: y * 2.0, lambda: y)
    assert y.shape == (None, 4) and z.shape == (None, 4)
    with gc.Session(device="reference") as sess:
        np.testing.assert_allclose(sess.run(z, {x: np.ones((2, 4)), keep_prob: 1.0, training: True}), 2 * np.ones((2, 4)))
        with pytest.raises(gc.errors.GraphcError):
            sess.run(y, {x: np.ones((2, 4)), keep_prob: [1.0, 1.0]})

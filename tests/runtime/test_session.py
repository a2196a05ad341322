"""Session.run semantics and every error a user can cause through it."""
import collections
import os
import threading

import numpy as np
import pytest

import graphc as gc
from support import made_here, simulated

THIS_FILE = os.path.basename(__file__)


@pytest.fixture
def model(graph):
    x = gc.placeholder(gc.float32, shape=(None, 3), name="x")
    W = gc.Variable(np.arange(6, dtype=np.float32).reshape(3, 2), name="W")
    y = gc.matmul(x, W, name="y")
    total = gc.reduce_sum(y, name="total")
    return collections.namedtuple("Model", "x W y total")(x, W, y, total)


@pytest.fixture
def sess(graph, device):
    with gc.Session(graph=graph, device=device) as s:
        yield s


def _init(sess, graph):
    sess.run(gc.variables_initializer(gc.global_variables(graph)))


def test_nested_fetch_structures(model, sess, graph):
    _init(sess, graph)
    xv = np.ones((2, 3), np.float32)
    Pair = collections.namedtuple("Pair", "first second")
    out = sess.run({"a": [model.y, (model.total, Pair(model.total, "y:0"))], "b": model.W},
                   feed_dict={model.x: xv})
    expected_y = xv @ np.arange(6, dtype=np.float32).reshape(3, 2)
    assert isinstance(out, dict) and isinstance(out["a"], list) and isinstance(out["a"][1], tuple)
    assert isinstance(out["a"][1][1], Pair)
    np.testing.assert_allclose(out["a"][0], expected_y)
    assert out["a"][1][0] == pytest.approx(expected_y.sum())
    np.testing.assert_allclose(out["a"][1][1].second, expected_y)
    np.testing.assert_array_equal(out["b"], np.arange(6).reshape(3, 2))


def test_fetch_by_name_and_operation_returns_none(model, sess, graph):
    _init(sess, graph)
    op_result, by_name, by_op_name = sess.run([model.y.op, "y:0", "total"], {"x:0": np.ones((1, 3))})
    assert op_result is None
    np.testing.assert_allclose(by_name, [[6.0, 9.0]])
    assert by_op_name == pytest.approx(15.0)


def test_scalar_fetch_is_a_numpy_scalar_and_results_are_fresh_arrays(model, sess, graph):
    _init(sess, graph)
    xv = np.ones((1, 3), np.float32)
    total, W1 = sess.run([model.total, model.W], {model.x: xv})
    assert isinstance(total, np.float32)
    W1[...] = -1  # the caller owns what it got back
    np.testing.assert_array_equal(sess.run(model.W), np.arange(6).reshape(3, 2))
    fed_back = sess.run(model.x, {model.x: xv})
    assert fed_back is not xv and np.array_equal(fed_back, xv)


def test_a_result_the_caller_holds_is_never_reused_by_a_later_run(model, sess, graph):
    """A run recycles an output array only when nothing else references it (the CPU backend
    counts references). Held whole, held as a view of a view, or dropped: earlier results
    keep their values."""
    _init(sess, graph)
    runs = [np.full((2, 3), k, np.float32) for k in range(1, 5)]
    want = [xv @ np.arange(6, dtype=np.float32).reshape(3, 2) for xv in runs]
    held = sess.run(model.y, {model.x: runs[0]})
    view = sess.run(model.y, {model.x: runs[1]}).reshape(-1)[1:]
    sess.run(model.y, {model.x: runs[2]})  # dropped at once: its array may be recycled
    last = sess.run(model.y, {model.x: runs[3]})
    np.testing.assert_array_equal(held, want[0])
    np.testing.assert_array_equal(view, want[1].reshape(-1)[1:])
    np.testing.assert_array_equal(last, want[3])


def test_any_tensor_can_be_fed_and_its_producers_do_not_run(model, sess, graph):
    # y is fed: neither x nor W is needed (W is not even initialized)
    y_value = np.array([[1.0, 2.0]], np.float32)
    assert sess.run(model.total, {model.y: y_value}) == pytest.approx(3.0)
    # a fetched tensor that is fed returns the fed value
    np.testing.assert_array_equal(sess.run(model.y, {model.y: y_value}), y_value)


def test_feeding_python_values_converts_to_the_placeholder_dtype(model, sess, graph):
    _init(sess, graph)
    out = sess.run(model.y, {model.x: [[1, 0, 0]]})  # ints -> float32 is safe
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0.0, 1.0]])
    out64 = sess.run(model.y, {model.x: np.ones((1, 3), np.float64)})  # same kind: allowed, as in TF
    assert out64.dtype == np.float32


def test_make_callable(model, sess, graph):
    _init(sess, graph)
    f = sess.make_callable([model.y, model.total], feed_list=[model.x])
    y1, t1 = f(np.ones((2, 3), np.float32))
    assert t1 == pytest.approx(30.0) and y1.shape == (2, 2)
    g = sess.make_callable({"t": model.total}, feed_list=["x:0"])
    assert g(np.zeros((4, 3)))["t"] == 0.0
    with pytest.raises(TypeError, match="takes 1 feed value"):
        f()
    with pytest.raises(gc.FeedError, match="shape"):
        f(np.ones((2, 4), np.float32))


def test_executables_are_cached_per_fetch_and_feed_set(model, sess, graph):
    _init(sess, graph)
    before = len(sess._runners)
    for _ in range(3):
        sess.run(model.total, {model.x: np.ones((1, 3))})
    sess.run(model.total, {model.x: np.ones((5, 3))})  # another batch size: same entry
    assert len(sess._runners) == before + 1
    sess.run(model.total, {model.y: np.ones((1, 2))})  # other feeds: another entry
    assert len(sess._runners) == before + 2


def test_the_same_tensors_fetched_again_in_another_arrangement(model, sess, graph):
    """Regression (found by the gradient fuzzer with more examples than CI): ``[t]`` then
    ``[t, t]`` reused the first runner, which returned one value for two fetches."""
    _init(sess, graph)
    feed = {model.x: np.ones((1, 3))}
    single = sess.run([model.total], feed)
    twice = sess.run([model.total, model.total], feed)
    assert len(single) == 1 and len(twice) == 2 and twice[0] == twice[1] == single[0]
    compiled = len(sess._executables)
    reordered = sess.run((model.total, model.total, model.total), feed)
    assert len(reordered) == 3
    assert len(sess._executables) == compiled  # one executable serves every arrangement


def test_run_is_thread_safe(model, graph, device):
    with gc.Session(graph=graph, device=device) as sess:
        _init(sess, graph)
        errors, results = [], {}

        def worker(i):
            try:
                xv = np.full((i + 1, 3), float(i), np.float32)
                for _ in range(4 if simulated(device) else 20):
                    got = sess.run(model.total, {model.x: xv})
                results[i] = got
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        for i, got in results.items():
            assert got == pytest.approx((i + 1) * i * 15.0)


def test_eval_and_run_with_default_session(model, graph, device):
    with gc.Session(graph=graph, device=device) as sess:
        gc.variables_initializer(gc.global_variables(graph)).run()
        assert gc.get_default_session() is sess
        assert model.total.eval({model.x: np.ones((1, 3))}) == pytest.approx(15.0)
        np.testing.assert_array_equal(model.W.eval(), np.arange(6).reshape(3, 2))
        model.W.load(np.zeros((3, 2)))
        assert model.total.eval({model.x: np.ones((1, 3))}) == 0.0
    assert gc.get_default_session() is None
    with pytest.raises(ValueError, match="no default session"):
        model.total.eval()


# -- errors ---------------------------------------------------------------------------------
def test_wrong_feed_shape_names_tensor_shapes_and_line(model, sess):
    with pytest.raises(gc.FeedError) as err:
        sess.run(model.y, {model.x: np.ones((2, 4), np.float32)})
    msg = str(err.value)
    assert "'x:0'" in msg and "(2, 4)" in msg and "(None, 3)" in msg and THIS_FILE in msg


def test_wrong_feed_dtype_names_tensor_dtypes_and_line(model, sess):
    with pytest.raises(gc.FeedError) as err:
        sess.run(model.y, {model.x: np.ones((2, 3), np.complex64)})
    assert "'x:0'" in str(err.value) and THIS_FILE in str(err.value)
    labels = gc.placeholder(gc.int32, (None,), name="labels")
    with pytest.raises(gc.FeedError) as err:
        sess.run(labels, {labels: np.array([0.5, 1.0])})
    msg = str(err.value)
    assert "float64" in msg and "int32" in msg and "'labels:0'" in msg and THIS_FILE in msg
    with pytest.raises(gc.FeedError, match="outside the range of int32"):
        sess.run(labels, {labels: np.array([2 ** 40])})
    with pytest.raises(gc.FeedError, match="'labels:0'"):
        sess.run(labels, {labels: ["a", "b"]})


def test_missing_placeholders_are_all_listed(graph, sess):
    a = gc.placeholder(gc.float32, (2,), name="a")
    b = gc.placeholder(gc.int64, (None,), name="b")
    c = gc.placeholder(gc.float32, (), name="c")
    out = gc.reduce_sum(a) + gc.cast(gc.reduce_sum(b), gc.float32) + c
    with pytest.raises(gc.FeedError) as err:
        sess.run(out, {c: 1.0})
    msg = str(err.value)
    assert "'a:0'" in msg and "'b:0'" in msg and "'c:0'" not in msg
    assert msg.count(THIS_FILE) == 2


def test_unknown_feed_keys(model, sess, graph):
    with pytest.raises(gc.FeedError, match="unknown feed key 'nope:0'"):
        sess.run(model.y, {"nope:0": 1.0})
    with pytest.raises(gc.FeedError, match="not a gc.Tensor"):
        sess.run(model.y, {42: 1.0})
    with pytest.raises(gc.FeedError, match="cannot feed operation"):
        sess.run(model.y, {model.y.op: 1.0})
    other = gc.Graph()
    with other.as_default():
        z = gc.placeholder(gc.float32, (), name="z")
    with pytest.raises(gc.FeedError, match="belongs to"):
        sess.run(model.y, {z: 1.0})


def test_feed_value_that_is_a_tensor(model, sess):
    with pytest.raises(gc.FeedError) as err:
        sess.run(model.y, {model.x: model.y})
    assert "symbolic tensor" in str(err.value) and "'x:0'" in str(err.value)


def test_uninitialized_variable_is_named(model, sess):
    with pytest.raises(gc.FailedPreconditionError) as err:
        sess.run(model.y, {model.x: np.ones((1, 3))})
    msg = str(err.value)
    assert "uninitialized variable 'W'" in msg and THIS_FILE in msg


def test_closed_session(model, graph, device):
    sess = gc.Session(graph=graph, device=device)
    sess.close()
    with pytest.raises(gc.FailedPreconditionError, match="closed Session"):
        sess.run(model.total, {model.x: np.ones((1, 3))})
    with pytest.raises(gc.FailedPreconditionError, match="closed Session"):
        sess.make_callable(model.total, [model.x])


def test_fetch_from_another_graph(model, sess):
    other = gc.Graph()
    with other.as_default():
        z = gc.constant(1.0, name="z")
    with pytest.raises(gc.FetchError) as err:
        sess.run(z)
    assert "'z'" in str(err.value) or "z:0" in str(err.value)
    assert "belongs to" in str(err.value) and THIS_FILE in str(err.value)
    with pytest.raises(gc.FetchError):
        sess.run("no_such_tensor:0")
    with pytest.raises(gc.FetchError):
        sess.run([None])


def test_run_time_shape_mismatch_on_none_dims_names_op_and_line(graph, sess):
    a = gc.placeholder(gc.float32, (None, 3), name="a")
    b = gc.placeholder(gc.float32, (None, 3), name="b")
    line = _next_line()
    s = gc.add(a, b, name="sum_ab")
    with pytest.raises(gc.InvalidArgumentError) as err:
        sess.run(s, {a: np.ones((2, 3)), b: np.ones((4, 3))})
    msg = str(err.value)
    assert "sum_ab" in msg and "(2, 3)" in msg and "(4, 3)" in msg
    assert f"{THIS_FILE}:{line}" in msg


def _next_line():
    import sys
    return sys._getframe(1).f_lineno + 1


def test_bad_device_and_optimize_level(graph):
    with pytest.raises(gc.CompileError, match="unknown device 'tpu'"):
        gc.Session(graph=graph, device="tpu")
    with pytest.raises(ValueError, match="optimize"):
        gc.Session(graph=graph, optimize=7)


def test_interactive_session_is_default(model, graph, device):
    sess = gc.InteractiveSession(graph=graph, device=device)
    try:
        assert gc.get_default_session() is sess
    finally:
        sess.close()
    assert gc.get_default_session() is not sess


def test_a_feed_that_broadcasts_past_the_machines_memory_is_an_error(graph, device):
    x = gc.placeholder(gc.float32, (None, 1), name="x")
    y = gc.placeholder(gc.float32, (1, None), name="y")
    z, where = made_here(x + y)
    with gc.Session(graph=graph, device=device) as sess:
        with pytest.raises(gc.InvalidArgumentError) as info:  # 160 GB, before anything is allocated
            sess.run(z, {x: np.ones((200_000, 1), np.float32), y: np.ones((1, 200_000), np.float32)})
        message = str(info.value)
        assert where in message and "add" in message and "160,000,000,000 bytes" in message
        np.testing.assert_array_equal(sess.run(z, {x: np.ones((2, 1), np.float32), y: np.ones((1, 3), np.float32)}),
                                      np.full((2, 3), 2, np.float32))  # the session still works


def test_a_control_dependency_on_a_fed_placeholder_is_satisfied_by_the_feed(graph, device):
    x = gc.placeholder(gc.float32, (2,), name="x")
    with gc.control_dependencies([x.op]):
        y = gc.constant(np.float32(3.0)) * 2.0
    with gc.Session(graph=graph, device=device) as sess:
        assert sess.run(y, {x: np.zeros(2, np.float32)}) == 6.0
        with pytest.raises(gc.FeedError, match="'x:0'"):  # unfed, the placeholder is still required
            sess.run(y)

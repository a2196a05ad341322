"""Variables: creation, initializers, assignment, read/write ordering within a run."""
import os

import numpy as np
import pytest

import graphc as gc

THIS_FILE = os.path.basename(__file__)


def test_variable_basics(graph):
    W = gc.Variable(gc.init.glorot_uniform((4, 3)), name="W")
    b = gc.Variable(gc.zeros((3,)), name="b", trainable=False)
    c = gc.Variable(1, name="c", dtype=gc.float64)
    assert W.name == "W:0" and W.op.name == "W" and W.shape == (4, 3) and W.dtype is gc.float32
    assert b.dtype is gc.float32 and c.dtype is gc.float64 and c.shape == ()
    assert gc.global_variables() == [W, b, c]
    assert gc.trainable_variables() == [W, c]
    assert W.value().name == "W/read:0" and W.initializer.name == "W/Assign"
    assert isinstance(W + 1.0, gc.Tensor)  # variables support operators


def test_variable_needs_full_shape_and_a_value(graph):
    x = gc.placeholder(gc.float32, (None, 3))
    with pytest.raises(gc.ShapeError, match="fully known shape") as err:
        gc.Variable(x, name="bad")
    assert THIS_FILE in str(err.value)
    with pytest.raises(ValueError, match="initial_value"):
        gc.Variable(None)


def test_initializers_and_values(graph, device):
    W = gc.Variable(np.arange(4.0).reshape(2, 2), name="W")  # float64 from NumPy
    u = gc.Variable(gc.init.random_uniform((1000,), minval=-0.5, maxval=0.5, seed=3), name="u")
    k = gc.Variable(gc.init.constant(7, shape=(2,)), name="k")
    h = gc.Variable(gc.init.he_normal(), shape=(3, 3, 8, 16), name="h")  # initializer object + shape
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())
        Wv, uv, kv, hv = sess.run([W, u, k, h])
    assert Wv.dtype == np.float64 and np.array_equal(Wv, np.arange(4.0).reshape(2, 2))
    assert uv.min() >= -0.5 and uv.max() < 0.5 and abs(uv.mean()) < 0.05
    assert np.array_equal(kv, [7.0, 7.0])
    assert hv.shape == (3, 3, 8, 16) and abs(hv.std() - np.sqrt(2 / 72)) < 0.1 * np.sqrt(2 / 72)


def test_assign_family_and_persistence_across_runs(graph, device):
    v = gc.Variable(np.array([1.0, 2.0], np.float32), name="v")
    set_v = v.assign([10.0, 20.0])
    add_v = gc.assign_add(v, 1.0)  # broadcasts a weak scalar to the variable's dtype
    sub_v = v.assign_sub(np.array([0.5, 0.5], np.float32))
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(v.initializer)
        np.testing.assert_array_equal(sess.run(set_v), [10.0, 20.0])
        np.testing.assert_array_equal(sess.run(add_v), [11.0, 21.0])
        np.testing.assert_array_equal(sess.run(sub_v), [10.5, 20.5])
        np.testing.assert_array_equal(sess.run(v), [10.5, 20.5])
    with gc.Session(graph=graph, device=device) as fresh:  # values live in the session
        with pytest.raises(gc.FailedPreconditionError, match="'v'"):
            fresh.run(v)


def test_assign_checks_shape_and_dtype(graph):
    v = gc.Variable(np.zeros((2,), np.float32), name="v")
    with pytest.raises(gc.ShapeError) as err:
        v.assign(np.zeros((3,), np.float32))
    assert "'v'" in str(err.value) and THIS_FILE in str(err.value)
    with pytest.raises(gc.DTypeError, match="'v'"):
        v.assign(gc.constant(np.zeros((2,), np.float64)))
    v.assign(np.zeros((2,), np.float64))  # a NumPy value converts, as a feed would
    counts = gc.Variable(np.zeros(2, np.int32), name="counts")
    with pytest.raises(gc.DTypeError, match="not exactly representable"):
        counts.assign([0.5, 1.5])
    with pytest.raises(TypeError, match="gc.Variable"):
        gc.assign(gc.constant(1.0), 2.0)


def test_reads_happen_before_writes_in_one_run(graph, device):
    v = gc.Variable(1.0, name="v")
    loss = v * 3.0
    update = v.assign_add(1.0)
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(v.initializer)
        before, new = sess.run([loss, update])
        assert before == 3.0 and new == 2.0
        assert sess.run(v) == 2.0


def test_control_dependencies_make_reads_see_writes(graph, device):
    v = gc.Variable(1.0, name="v")
    update = v.assign(5.0)
    with gc.control_dependencies([update]):
        after = v * 2.0          # a fresh read, ordered after the update
        explicit = v.read_value()
    before = v * 2.0
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(v.initializer)
        b, a, e = sess.run([before, after, explicit])
    assert (b, a, e) == (2.0, 10.0, 5.0)


def test_chained_writes_in_order(graph, device):
    v = gc.Variable(0.0, name="v")
    first = v.assign(3.0)
    with gc.control_dependencies([first]):
        second = v.assign_add(4.0)
    with gc.control_dependencies([second]):
        final = v.read_value()
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(v.initializer)
        assert sess.run(final) == 7.0


def test_conflicting_orders_are_an_error(graph, device):
    a = gc.Variable(0.0, name="a")
    b = gc.Variable(0.0, name="b")
    wa = a.assign(1.0)
    with gc.control_dependencies([wa]):
        rb = b.read_value()
    wb = b.assign(1.0)
    with gc.control_dependencies([wb]):
        ra = a.read_value()
    # rb must precede wb (it does not depend on it) and ra must precede wa, but wa -> rb and
    # wb -> ra: a cycle, which only the user can resolve.
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())
        with pytest.raises(gc.GraphcError, match="cycle"):
            sess.run([rb, ra])


def test_variables_initializer_subset_and_empty(graph, device):
    a = gc.Variable(1.0, name="a")
    b = gc.Variable(2.0, name="b")
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.variables_initializer([a]))
        assert sess.run(a) == 1.0
        with pytest.raises(gc.FailedPreconditionError, match="'b'"):
            sess.run(b)
        assert sess.run(gc.variables_initializer([])) is None

"""Variables: creation, initializers, assignment, read/write ordering within a run."""
import os

import numpy as np
import pytest

import graphc as gc
from support import DEVICES

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


# --- regression tests: state under fusion (every device, every optimization level) -------------------------
STATE_CONFIGS = [(d, level) for d in DEVICES for level in (0, 1, 2)]


def _run(graph, device, level, fetches, feed_dict=None, runs=1):
    with gc.Session(graph=graph, device=device, optimize=level) as sess:
        sess.run(gc.global_variables_initializer())
        for _ in range(runs):
            out = sess.run(fetches, feed_dict)
        return out, [sess.run(v) for v in gc.global_variables(graph)]


@pytest.mark.parametrize("device,level", STATE_CONFIGS)
@pytest.mark.parametrize("reduction", ["mean", "logsumexp"])
def test_a_write_feeding_a_fused_reduction_is_applied_once(graph, device, level, reduction):
    v = gc.Variable(gc.zeros((4, 8)), name="v")
    d = gc.placeholder(gc.float32, (4, 8), name="d")
    a = gc.assign_add(v, d)
    if reduction == "mean":
        y = a - gc.reduce_mean(a, axis=-1, keepdims=True)   # cpu gave y = 1, v = 2
        want = np.zeros((4, 8), np.float32)
    else:
        y = gc.reduce_logsumexp(a, -1)                       # cpu gave 4.079 and v = 2
        want = np.full(4, 1 + np.log(8), np.float32)
    (out,), (value,) = _run(graph, device, level, [y], {d: np.ones((4, 8), np.float32)})
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(value, np.ones((4, 8), np.float32))


@pytest.mark.parametrize("device,level", STATE_CONFIGS)
def test_a_writes_result_is_the_value_it_wrote(graph, device, level):
    v = gc.Variable(gc.zeros((3,)), name="v")
    w1 = gc.assign_add(v, 1.0)
    w2 = gc.assign_add(v, w1)
    t = w1 * 10.0
    (a, b, c), (value,) = _run(graph, device, level, [w1, w2, t])
    np.testing.assert_array_equal(a, [1, 1, 1])     # was 2 on cpu and cuda: the value after w2
    np.testing.assert_array_equal(b, [2, 2, 2])
    np.testing.assert_array_equal(c, [10, 10, 10])  # was 20
    np.testing.assert_array_equal(value, [2, 2, 2])
    (a, b), _ = _run(graph, device, level, [t, w2])
    np.testing.assert_array_equal(a, [10, 10, 10])


@pytest.mark.parametrize("device,level", STATE_CONFIGS)
def test_a_recurrence_written_from_a_product_that_reads_it(graph, device, level):
    rng = np.random.default_rng(3)
    h0 = rng.uniform(-1, 1, (4, 8)).astype(np.float32)
    u = rng.uniform(-0.5, 0.5, (8, 8)).astype(np.float32)
    h = gc.Variable(h0, name="h")
    x = gc.placeholder(gc.float32, (4, 8), name="x")
    step = h.assign(gc.tanh(h @ u + x))
    xv = rng.uniform(-1, 1, (4, 8)).astype(np.float32)
    (out,), (value,) = _run(graph, device, level, [step], {x: xv}, runs=3)
    want = h0
    for _ in range(3):
        want = np.tanh(want @ u + xv)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device,level", STATE_CONFIGS)
def test_a_moving_average_written_next_to_a_row_epilogue(graph, device, level):
    rng = np.random.default_rng(4)
    x = gc.placeholder(gc.float32, (5, 6), name="x")
    moving = gc.Variable(gc.zeros((5, 1)), name="moving")
    mean = gc.reduce_mean(x, axis=-1, keepdims=True)
    update = moving.assign(0.9 * moving.value() + 0.1 * mean)  # was refused by the CUDA backend
    centered = x - mean
    xv = rng.uniform(-1, 1, (5, 6)).astype(np.float32)
    (c, u), (value,) = _run(graph, device, level, [centered, update], {x: xv}, runs=2)
    m = xv.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(c, xv - m, rtol=1e-5, atol=1e-6)
    want = 0.9 * (0.1 * m) + 0.1 * m
    np.testing.assert_allclose(u, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device,level", STATE_CONFIGS)
def test_a_read_fetched_with_the_write_that_follows_it(graph, device, level):
    v = gc.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="v")
    r = v.value()
    total = gc.reduce_sum(r * 2.0)
    w = v.assign_add(gc.ones((2, 3)))
    (a, b, c), (value,) = _run(graph, device, level, [r, w, total])
    np.testing.assert_array_equal(a, np.arange(6).reshape(2, 3))   # the value before the write
    np.testing.assert_array_equal(b, np.arange(6).reshape(2, 3) + 1)
    assert c == 30.0


def test_writes_to_one_variable_are_ordered_in_the_program(graph):
    from graphc.optimizer.program import lower
    v = gc.Variable(0.0, name="v")
    a, b = v.assign(1.0), v.assign(2.0)   # nothing orders them: lowering does, the same way everywhere
    program = lower(graph, [a.op, b.op], [])
    writes = [ins for ins in program.instrs if ins.op == "assign"]
    assert writes[1].outputs[0] > writes[0].outputs[0] or writes[0].outputs[0] in writes[1].after


def test_a_fetched_read_before_a_write_is_a_snapshot_not_a_copy_in_the_backend(graph):
    from graphc.optimizer.pipeline import optimize
    from graphc.optimizer.program import lower
    v = gc.Variable(np.zeros(3, np.float32), name="v")
    r = v.value()
    w = v.assign_add(np.ones(3, np.float32))
    loss = gc.reduce_sum(r * 3.0)   # a use of r that nothing orders: the write waits for it
    program = optimize(lower(graph, [r, w, loss], []), 2).program
    ops = [ins.op for ins in program.instrs]
    assert ops.count("snapshot") == 1   # only the fetch of r needs a copy
    report = optimize(lower(graph, [w, loss], []), 0).reports[-1]
    assert report.name == "order_state" and report.rewrites == {"ordered_before_write": 1}

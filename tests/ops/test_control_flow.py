"""Control flow (ops/control_flow.py): cond, while_loop, scan, foldl, foldr, map_fn and theano_scan, their gradients against central
finite differences in float64, and their build-time errors.

Every case runs on each test device (reference, cpu, and cuda in the simulator pass) against NumPy or
finite differences."""
import numpy as np
import pytest

import graphc as gc
from graphc.autodiff.checker import check_gradients
from support import DEVICES, assert_close, differences_on

RNG = np.random.default_rng(7)


def run(fetches, feed=None, device="reference"):
    with gc.Session(device=device) as sess:
        sess.run(gc.global_variables_initializer())
        return sess.run(fetches, feed)


# --- values: (name, build(graph inputs) -> fetches, inputs, NumPy answer) ----------------------
def _loop_sum(x):
    _, total = gc.while_loop(lambda i, t: i < 4, lambda i, t: (i + 1, t + x * gc.cast(i, x.dtype)), [0, gc.zeros_like(x)])
    return total


def _collatz(n):
    # data-dependent trip count: steps of the Collatz sequence to reach 1
    def body(k, steps):
        return gc.where(gc.equal(k % 2, 0), k // 2, 3 * k + 1), steps + 1
    return gc.while_loop(lambda k, steps: k > 1, body, [n, gc.constant(0, gc.int64)])[1]


def _collatz_np(n):
    steps = 0
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return np.int64(steps)


def _nested(x):
    # a cond inside a loop body, reading an outer tensor two levels out
    def body(i, acc):
        return i + 1, gc.cond(gc.equal(i % 2, 0), lambda: acc + x, lambda: acc * 0.5)
    return gc.while_loop(lambda i, acc: i < 5, body, [gc.constant(0), gc.zeros_like(x)])[1]


def _nested_np(x):
    acc = np.zeros_like(x)
    for i in range(5):
        acc = acc + x if i % 2 == 0 else acc * 0.5
    return acc


VALUE_CASES = [
    ("cond_true", lambda x, p: gc.cond(p, lambda: x * 2.0, lambda: x - 1.0), [RNG.normal(size=(2, 3)), True],
     lambda x, p: x * 2.0),
    ("cond_false", lambda x, p: gc.cond(p, lambda: x * 2.0, lambda: x - 1.0), [RNG.normal(size=(2, 3)), False],
     lambda x, p: x - 1.0),
    ("cond_nested_structure", lambda x, p: gc.cond(p, lambda: {"a": x, "b": (x + 1.0, x * x)},
                                                   lambda: {"a": -x, "b": (x, x)}),
     [RNG.normal(size=3), True], lambda x, p: {"a": x, "b": (x + 1.0, x * x)}),
    ("cond_one_element_list", lambda x, p: gc.cond(p, lambda: [x], lambda: [x + 1.0]), [RNG.normal(size=2), False],
     lambda x, p: x + 1.0),
    ("while_sum", _loop_sum, [RNG.normal(size=(3,))], lambda x: x * 6.0),
    ("while_data_dependent_trips", _collatz, [np.int64(27)], _collatz_np),
    ("while_maximum_iterations", lambda x: gc.while_loop(lambda v: True, lambda v: v + 1.0, [x], maximum_iterations=7),
     [np.zeros(2)], lambda x: x + 7.0),
    ("while_zero_trips", lambda x: gc.while_loop(lambda v: gc.reduce_sum(v) > 1e9, lambda v: v * 2.0, [x]),
     [RNG.normal(size=4)], lambda x: x),
    ("while_shape_invariant", lambda x: gc.while_loop(
        lambda v: gc.shape(v)[0] < 8, lambda v: gc.concat([v, v], 0), [x],
        shape_invariants=[gc.TensorShape([None])]), [np.arange(2.0)], lambda x: np.tile(x, 4)),
    ("cond_in_while", _nested, [RNG.normal(size=3)], _nested_np),
    ("scan", lambda x: gc.scan(lambda a, e: a + e, x), [RNG.normal(size=(5, 2))], lambda x: np.cumsum(x, 0)),
    ("scan_initializer", lambda x: gc.scan(lambda a, e: a * 0.5 + e, x, initializer=gc.zeros((2,), gc.float64)),
     [RNG.normal(size=(4, 2))], lambda x: np.array([sum(x[j] * 0.5 ** (t - j) for j in range(t + 1)) for t in range(4)])),
    ("scan_reverse", lambda x: gc.scan(lambda a, e: a + e, x, reverse=True), [RNG.normal(size=(5, 2))],
     lambda x: np.cumsum(x[::-1], 0)[::-1]),
    ("scan_nested_accumulator", lambda x: gc.scan(lambda a, e: (a[0] + e, a[1] * e), x,
                                                  initializer=(gc.zeros((2,), gc.float64), gc.ones((2,), gc.float64)))[1],
     [RNG.normal(size=(3, 2))], lambda x: np.cumprod(x, 0)),
    ("foldl", lambda x: gc.foldl(lambda a, e: a * 2.0 + e, x), [RNG.normal(size=(4, 3))],
     lambda x: ((x[0] * 2 + x[1]) * 2 + x[2]) * 2 + x[3]),
    ("foldr", lambda x: gc.foldr(lambda a, e: a * 2.0 + e, x, initializer=gc.zeros((3,), gc.float64)),
     [RNG.normal(size=(3, 3))], lambda x: ((x[2]) * 2 + x[1]) * 2 + x[0]),
    ("map_fn", lambda x: gc.map_fn(lambda e: gc.reduce_sum(e * e), x), [RNG.normal(size=(4, 3))],
     lambda x: np.sum(x * x, 1)),
    ("theano_scan", lambda x: gc.theano_scan(lambda x_t, acc, c: (acc * c + x_t, gc.reduce_sum(acc)), sequences=[x],
                                             outputs_info=[gc.zeros((2,), gc.float64), None],
                                             non_sequences=[gc.constant(0.5, gc.float64)])[0][1],
     [RNG.normal(size=(4, 2))], lambda x: np.array([sum(np.sum(x[j]) * 0.5 ** (t - 1 - j) for j in range(t))
                                                    for t in range(4)])),
    ("case", lambda x: [gc.case([(gc.reduce_sum(x) > 100.0, lambda: x * 0.0), (gc.reduce_sum(x) > -100.0, lambda: x + 1.0)],
                                default=lambda: x), gc.case({gc.reduce_sum(x) > 100.0: lambda: x * 0.0}, default=lambda: -x)],
     [RNG.normal(size=3)], lambda x: [x + 1.0, -x]),
    ("switch_case", lambda i: [gc.switch_case(i, [lambda: gc.constant(10), lambda: gc.constant(11), lambda: gc.constant(12)]),
                               gc.switch_case(i + 5, {0: lambda: gc.constant(10), 1: lambda: gc.constant(11)},
                                              default=lambda: gc.constant(-1))],
     [np.int32(1)], lambda i: [np.int64(11), np.int64(-1)]),
    ("theano_scan_n_steps", lambda x: gc.theano_scan(lambda p: p * x, outputs_info=gc.ones((3,), gc.float64),
                                                     n_steps=4)[0], [RNG.normal(size=3)],
     lambda x: np.stack([x ** (t + 1) for t in range(4)])),
]


# Loops whose variables change shape across iterations run on the reference backend and on
# CUDA (whose host drives the loop); a CPU loop is compiled for one set of shapes per run and
# says so.
SHAPE_CHANGING = {"while_shape_invariant"}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, build, inputs, expected", VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_value_matches_numpy(name, build, inputs, expected, device):
    graph = gc.Graph()
    with graph.as_default():
        placeholders = [gc.placeholder(gc.as_dtype(np.asarray(a).dtype), np.shape(a), name=f"in{k}")
                        for k, a in enumerate(inputs)]
        fetches = build(*placeholders)
        if name in SHAPE_CHANGING and device == "cpu":
            with pytest.raises(gc.errors.InvalidArgumentError, match=r"enters with shape \[2\].*returns shape \[4\]"):
                run(fetches, dict(zip(placeholders, inputs)), device)
            return
        got = run(fetches, dict(zip(placeholders, inputs)), device)
    want = expected(*inputs)
    if isinstance(want, list):
        for g, w in zip(got, want):
            assert_close(g, w)
        return
    if isinstance(want, dict):
        assert set(got) == set(want)
        assert_close(got["a"], want["a"])
        for g, w in zip(got["b"], want["b"]):
            assert_close(g, w)
    else:
        assert_close(got, want)


@pytest.mark.parametrize("device", DEVICES)
def test_variables_read_inside_bodies_see_the_value_before_the_run(device):
    graph = gc.Graph()
    with graph.as_default():
        v = gc.Variable(np.array([1.0, 2.0]), name="v")
        out = gc.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a + v), [0, gc.zeros_like(v.value())])[1]
        with gc.Session(device=device) as sess:
            sess.run(gc.global_variables_initializer())
            assert_close(sess.run(out), np.array([3.0, 6.0]))
            sess.run(v.assign([10.0, 0.0]))
            assert_close(sess.run(out), np.array([30.0, 0.0]))


@pytest.mark.parametrize("device", DEVICES)
def test_variable_writes_inside_bodies_follow_tf1(device):
    """gc.assign and friends in a loop body, a cond branch (TF1's idiom) and a scan function:
    each iteration reads what the last one wrote, a read that depends on a write sees it,
    fetching the op's results runs its writes, and a gradient through a loop that writes
    leaves the writes out of its own loops (they run once per run)."""
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float64, (3,), name="x")
        count, w, flag, c, total, steps = (gc.Variable(np.float64(v) if np.ndim(v) == 0 else np.asarray(v, np.float64),
                                                       name=n) for n, v in
                                           [("count", 0.0), ("w", [1.0, 2.0, 3.0]), ("flag", 0.0), ("c", 2.0),
                                            ("total", 0.0), ("steps", 0.0)])

        def body(i, acc):
            before = count.value()  # what the last iteration left
            bumped = count.assign_add(1.0)
            with gc.control_dependencies([bumped]):
                after = count.read_value()
            w.assign(w * 0.5 + x)
            return i + 1, acc + before * 10.0 + after
        acc = gc.while_loop(lambda i, acc: i < 3, body, [0, gc.constant(0.0, gc.float64)])[1]

        def odd(i):  # a cond inside a loop body writes
            gc.cond(gc.equal(i % 2, 1), lambda: flag.assign_add(1.0), lambda: flag.value() * 1.0)
            return i + 1
        m = gc.while_loop(lambda i: i < 5, odd, [0])
        p = gc.placeholder(gc.bool_, (), name="p")
        picked = gc.cond(p, lambda: c.assign(c * 3.0), lambda: c.assign_sub(1.0))
        running = gc.scan(lambda a, xi: a + total.assign_add(xi), x, initializer=gc.constant(0.0, gc.float64))

        def counted(i, h):
            steps.assign_add(1.0)
            return i + 1, gc.tanh(h * x)
        loss = gc.reduce_sum(gc.while_loop(lambda i, h: i < 3, counted, [0, x])[1])
        plain = gc.reduce_sum(gc.while_loop(lambda i, h: i < 3, lambda i, h: (i + 1, gc.tanh(h * x)), [0, x])[1])
        grad, grad_plain = gc.gradients(loss, x)[0], gc.gradients(plain, x)[0]
        xv = np.array([1.0, -2.0, 0.5])
        fetches = [acc, m, picked, running, loss, grad, grad_plain]
        with gc.Session(device=device) as sess:
            sess.run(gc.global_variables_initializer())
            first = sess.run(fetches, {x: xv, p: True})
            after_first = sess.run([count, w, flag, c, total, steps])
            second = sess.run(fetches, {x: xv, p: False})
            after_second = sess.run([count, w, flag, c, total, steps])
    wv = np.array([1.0, 2.0, 3.0])
    for _ in range(3):
        wv = wv * 0.5 + xv
    assert_close(first[0], 36.0)  # 10 * (0 + 1 + 2) + (1 + 2 + 3)
    assert first[1] == 5 and first[2] == 6.0
    assert_close(first[3], np.cumsum(np.cumsum(xv)))
    assert_close(first[5], first[6])  # the writes change nothing in the gradient...
    for got, want in zip(after_first, [3.0, wv, 2.0, 6.0, xv.sum(), 3.0]):  # ...and run once (steps)
        assert_close(got, want)
    for _ in range(3):
        wv = wv * 0.5 + xv
    assert_close(second[0], 135.0)  # 10 * (3 + 4 + 5) + (4 + 5 + 6)
    assert second[2] == 5.0
    assert_close(second[3], np.cumsum(xv.sum() + np.cumsum(xv)))
    for got, want in zip(after_second, [6.0, wv, 4.0, 5.0, 2 * xv.sum(), 6.0]):
        assert_close(got, want)


def test_single_loop_variable_comes_back_as_tf1_returns_it():
    graph = gc.Graph()
    with graph.as_default():
        one = gc.while_loop(lambda i: i < 3, lambda i: i + 1, [gc.constant(0)])
        kept = gc.while_loop(lambda i: i < 3, lambda i: [i + 1], [gc.constant(0)], return_same_structure=True)
        assert isinstance(one, gc.Tensor)
        assert isinstance(kept, list) and len(kept) == 1
        assert run(one) == 3 and run(kept) == [3]


# --- gradients: central finite differences in float64 ---------------------------------------------
def _rnn_steps(x, w):
    # a data-dependent trip count: run until the state's sum passes 2 (at most 6 steps)
    def body(i, h):
        return i + 1, gc.tanh(h * w + x)
    return gc.while_loop(lambda i, h: gc.logical_and(i < 6, gc.reduce_sum(h) < 2.0), body, [gc.constant(0), x])[1]


GRADIENT_CASES = [
    ("cond_true", lambda x, w: gc.cond(gc.reduce_sum(x) > -100.0, lambda: gc.sin(x) * w, lambda: x * x + w)),
    ("cond_false", lambda x, w: gc.cond(gc.reduce_sum(x) > 100.0, lambda: gc.sin(x) * w, lambda: x * x + w)),
    ("cond_passes_input_through", lambda x, w: gc.cond(gc.reduce_sum(w) < 100.0, lambda: x, lambda: w)),
    ("while_fixed_trips", lambda x, w: gc.while_loop(lambda i, h: i < 4, lambda i, h: (i + 1, gc.sin(h) * w),
                                                     [0, x])[1]),
    ("while_data_dependent_trips", _rnn_steps),
    ("while_captured_in_cond_too", lambda x, w: gc.while_loop(
        lambda i, h: gc.logical_and(i < 5, gc.reduce_max(h * w) < 3.0), lambda i, h: (i + 1, h * 1.5 + w),
        [0, x])[1]),
    ("cond_in_while", lambda x, w: gc.while_loop(
        lambda i, h: i < 4, lambda i, h: (i + 1, gc.cond(gc.equal(i % 2, 0), lambda: gc.tanh(h + w), lambda: h * w)), [0, x])[1]),
    ("scan", lambda x, w: gc.scan(lambda a, e: gc.sin(a) * w[0] + e * a, x, initializer=w[1])),
    ("scan_reverse", lambda x, w: gc.scan(lambda a, e: a * e + w[0], x, reverse=True)),
    ("foldr", lambda x, w: gc.foldr(lambda a, e: gc.tanh(a * e) + w[1], x)),
    ("map_fn", lambda x, w: gc.map_fn(lambda e: gc.tanh(e) * w[0], x)),
    ("theano_scan", lambda x, w: gc.theano_scan(lambda x_t, h, w_: gc.tanh(h * w_ + x_t), sequences=[x],
                                                outputs_info=[w[0]], non_sequences=[w[1]])[0]),
]


GRADIENT_RUNS = [(name, build, device) for device in DEVICES for name, build in GRADIENT_CASES]


@pytest.mark.parametrize("name, build, device", GRADIENT_RUNS, ids=[f"{n}-{d}" for n, _, d in GRADIENT_RUNS])
def test_gradient_matches_finite_differences(name, build, device):
    x, w = RNG.normal(size=(2, 3)) * 0.5, RNG.normal(size=(2, 3)) * 0.5
    report = check_gradients(build, [x, w], device=device, eps=1e-6, rtol=1e-5, atol=1e-7, **differences_on(device))
    assert report.checked > 0


@pytest.mark.parametrize("device", DEVICES)
def test_second_order_through_a_loop(device):
    """hessian_vector_product through while_loop: the gradient loop is differentiated again."""
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float64, (3,), name="x")
        y = gc.while_loop(lambda i, h: i < 3, lambda i, h: (i + 1, gc.sin(h) * 1.3), [0, x])[1]
        loss = gc.reduce_sum(y * y)
        v = np.array([0.3, -0.2, 0.5])
        hv = gc.hessian_vector_product(loss, x, gc.constant(v))
        g = gc.gradients(loss, x)[0]
        x0 = RNG.normal(size=3)
        with gc.Session(device=device) as sess:
            got = sess.run(hv, {x: x0})
            eps = 1e-5
            numeric = (sess.run(g, {x: x0 + eps * v}) - sess.run(g, {x: x0 - eps * v})) / (2 * eps)
    assert_close(np.asarray(got).reshape(-1), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("device", DEVICES)
def test_jvp_and_hessian_vector_product_through_scan(device):
    """Forward mode (jvp, the double-VJP) and second order through scan, against central
    differences in float64."""
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float64, (4, 3), name="x")
        w = gc.constant(np.array([0.7, -1.1, 0.4]))
        ys = gc.scan(lambda a, row: gc.tanh(a * w + row), x)
        loss = gc.reduce_sum(ys * ys)
        v = RNG.normal(size=(4, 3))
        jv = gc.jvp(ys, x, gc.constant(v))[0]
        hv = gc.hessian_vector_product(loss, x, gc.constant(v))[0]
        g = gc.gradients(loss, x)[0]
        x0 = RNG.normal(size=(4, 3))
        eps = 1e-5
        with gc.Session(device=device) as sess:
            got_jv, got_hv = sess.run([jv, hv], {x: x0})
            (y1, g1), (y0, g0) = (sess.run([ys, g], {x: x0 + s * eps * v}) for s in (1, -1))
    assert_close(got_jv, (y1 - y0) / (2 * eps), rtol=1e-6, atol=1e-8)
    assert_close(got_hv, (g1 - g0) / (2 * eps), rtol=1e-6, atol=1e-8)


# --- build-time errors: they name the loop or branch and the user's line --------------------------
def _error_cases():
    x = gc.placeholder(gc.float32, (3,), name="x")
    counter = gc.Variable(np.float32(0.0), name="counter")
    return [
        ("branches of different structures", lambda: gc.cond(x[0] > 0, lambda: (x, x), lambda: x, name="pick"),
         TypeError, r"cond 'pick' at .*test_control_flow.py:\d+: the branches return different structures"),
        ("branches of different dtypes", lambda: gc.cond(x[0] > 0, lambda: x, lambda: gc.cast(x, gc.float64)),
         gc.DTypeError, r"cond 'cond' at .*test_control_flow.py:\d+: result 0 is float32 in true_fn and float64"),
        ("pred not a scalar bool", lambda: gc.cond(x > 0, lambda: x, lambda: x),
         gc.DTypeError, r"pred must be a scalar bool tensor, got .* bool\(3,\)"),
        ("pred not bool", lambda: gc.cond(x[0], lambda: x, lambda: x), gc.DTypeError, "float32"),
        ("shape changes without an invariant", lambda: gc.while_loop(
            lambda v: gc.shape(v)[0] < 8, lambda v: gc.concat([v, v], 0), [x], name="grow"),
         gc.ShapeError, r"while_loop 'grow' at .*test_control_flow.py:\d+: loop variable 0 \('x:0'\) enters the loop "
                        r"with shape \(3,\), but has shape \(6,\) after one iteration"),
        ("maximum_iterations not an integer", lambda: gc.while_loop(lambda v: True, lambda v: v, [x],
                                                                    maximum_iterations=2.5),
         TypeError, "maximum_iterations must be an integer scalar, got 2.5"),
        ("maximum_iterations not a scalar", lambda: gc.while_loop(lambda v: True, lambda v: v, [x],
                                                                  maximum_iterations=gc.constant([1, 2])),
         TypeError, r"maximum_iterations must be an integer scalar, got .*int\d+\(2,\)"),
        ("cond of a loop not a scalar bool", lambda: gc.while_loop(lambda v: v > 0, lambda v: v, [x]),
         gc.DTypeError, r"cond must return a scalar bool tensor, got bool\(3,\)"),
        ("body of another structure", lambda: gc.while_loop(lambda v, w: True, lambda v, w: v, [x, x]),
         TypeError, "body must return the same structure"),
        ("body changes a dtype", lambda: gc.while_loop(lambda v: True, lambda v: gc.cast(v, gc.int32), [x]),
         gc.DTypeError, "loop variable 0 enters as float32 but body returns int32"),
        ("a variable made in a body", lambda: gc.while_loop(
            lambda v: True, lambda v: v + gc.assign_add(gc.Variable(np.zeros(3, np.float32)), v), [x]),
         gc.GraphcError, r"variable .*creating variables there is not supported"),
        ("a write in a loop's cond", lambda: gc.while_loop(
            lambda v: gc.reduce_sum(gc.assign_add(counter, 1.0)) < 3.0, lambda v: v, [x], name="count"),
         gc.GraphcError, r"while_loop 'count' at .*test_control_flow.py:\d+: cond writes the variables counter"),
        ("a write of another shape in a body", lambda: gc.while_loop(
            lambda v: True, lambda v: v + gc.assign(counter, v), [x]),
         gc.ShapeError, r"assign of variable 'counter' at .*test_control_flow.py:\d+: .*does not fit"),
    ]


@pytest.mark.parametrize("index", range(13))
def test_build_time_errors_name_the_op_and_the_line(index):
    with gc.Graph().as_default():
        cases = _error_cases()
        assert len(cases) == 13
        _, build, kind, message = cases[index]
        with pytest.raises(kind, match=message):
            build()


@pytest.mark.parametrize("device", DEVICES)
def test_error_inside_a_body_at_run_time_names_the_op_and_the_body(device):
    with gc.Graph().as_default():
        idx = gc.placeholder(gc.int64, (), name="idx")
        table = gc.constant([1.0, 2.0])
        out = gc.while_loop(lambda i, a: i < 2, lambda i, a: (i + 1, a + gc.gather(table, idx)), [0, 0.0],
                            name="lookup")[1]
        with pytest.raises(gc.InvalidArgumentError, match=r"while_loop 'lookup' body(.|\n)*test_control_flow.py:"):
            run(out, {idx: 5}, device)


def test_native_library_names_the_control_flow_op_it_cannot_size(tmp_path):
    """A native library runs loops (tests/export/test_native.py) but sizes every buffer from the
    input dims: the history a gradient stacks, one row per trip of a loop the data ends, is an
    error naming the loop and the user's line, never a library that calls back into Python."""
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (3,), name="x")
        y = gc.while_loop(lambda v: gc.reduce_sum(v) < 10.0, lambda v: v + 1.0, [x], name="count")
        dx = gc.gradients(gc.reduce_sum(y * y), [x])[0]
        with gc.Session(device="cpu") as sess:
            with pytest.raises(gc.export.NativeExportError, match=r"while_loop 'count' \(created at "
                                                                  r".*test_control_flow.py:\d+\) returns its history"):
                gc.export.shared_library(sess, {"x": x}, {"dx": dx}, path=tmp_path)


@pytest.mark.parametrize("device", DEVICES)
def test_a_loop_that_never_ends_stops_at_the_run_timeout_and_leaves_state_intact(device):
    with gc.Graph().as_default():
        v = gc.Variable(np.array([1.0, 2.0]), name="v")
        x = gc.placeholder(gc.float64, (2,), name="x")
        forever = gc.while_loop(lambda h: True, lambda h: h + v, [x], name="forever")
        bounded = gc.while_loop(lambda h: True, lambda h: h + v, [x], maximum_iterations=3)
        with gc.Session(device=device) as sess:
            sess.run(gc.global_variables_initializer())
            with pytest.raises(gc.DeadlineExceededError, match=r"while_loop 'forever' body \(after \d+ iterations\) "
                                                               r"ran past the run's timeout of 100 ms"):
                sess.run(forever, {x: np.zeros(2)}, options=gc.RunOptions(timeout_in_ms=100))
            assert_close(sess.run(v), np.array([1.0, 2.0]))
            # the session goes on working, and the timeout was for that run only
            assert_close(sess.run(bounded, {x: np.zeros(2)}), np.array([3.0, 6.0]))
    with pytest.raises(ValueError, match="timeout_in_ms must be a non-negative int"):
        gc.RunOptions(timeout_in_ms=-1)


def test_explain_shows_the_loop_and_its_bodies():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float64, (2,), name="x")
        loop = gc.while_loop(lambda i, h: i < 3, lambda i, h: (i + 1, gc.tanh(h) * x), [0, x], name="L")
        with gc.Session(device="reference") as sess:
            text = sess.explain(loop, {x: np.zeros(2)})
    assert "op [while_loop]" in text
    assert "cond: 3 inputs -> 1 outputs, [const less]" in text
    assert "body: 3 inputs -> 2 outputs, [const add tanh multiply]" in text
    assert "      each iteration: kernel: elementwise [tanh multiply]" in text  # the body's own fused groups


# --- model files store the bodies --------------------------------------------------------------------------
def _loop_model(tmp_path):
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        w = gc.Variable(np.array([0.5, -1.0, 2.0], np.float32), name="w")

        def body(i, h):
            return i + 1, gc.cond(gc.equal(i % 2, 0), lambda: gc.tanh(h * w + x), lambda: h * 0.5)
        y = gc.while_loop(lambda i, h: i < 5, body, [0, x], name="loop")[1]
        z = gc.scan(lambda a, e: a + e, y)
        with gc.Session(graph=graph, device="reference") as sess:
            sess.run(gc.global_variables_initializer())
            xv = np.arange(6, dtype=np.float32).reshape(2, 3) / 6
            want = sess.run({"y": y, "z": z}, {x: xv})
            path = str(tmp_path / "loop.gcm")
            gc.export.save_model(sess, path, inputs={"x": x}, outputs={"y": y, "z": z})
    return path, xv, want


@pytest.mark.parametrize("device", DEVICES)
def test_model_files_store_bodies_and_a_fresh_process_runs_them(tmp_path, device):
    import json
    import subprocess
    import sys
    path, xv, want = _loop_model(tmp_path)
    code = ("import json, numpy as np, graphc as gc\n"
            f"m = gc.export.load_model({path!r}, device={device!r})\n"
            f"out = m(x=np.array({xv.tolist()!r}, np.float32))\n"
            "print(json.dumps({k: v.tolist() for k, v in out.items()}))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    for key in ("y", "z"):
        assert_close(np.array(got[key], np.float32), want[key])


def _edited(path, edit):
    import io
    import json
    import zipfile
    with zipfile.ZipFile(path) as z:
        document, weights = json.loads(z.read("model.json")), z.read("weights.npz")
    loop = next(n for n in document["nodes"] if n["op"] == "while_loop")
    edit(loop["attrs"])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("model.json", json.dumps(document))
        z.writestr("weights.npz", weights)
    return out.getvalue()


def _nest(attrs, depth):
    """The loop's body, wrapped in ``depth`` conds (its arrays stay referenced once)."""
    body = attrs["body"]
    for _ in range(depth):
        empty = {"body": {"label": "empty", "inputs": [], "nodes": [], "outputs": []}}
        body = {"body": {"label": "deep", "inputs": [], "nodes": [{"name": "c", "op": "cond", "inputs": [],
                "attrs": {"then": body, "else": empty}, "outputs": []}], "outputs": []}}
    attrs["body"] = body


HOSTILE_BODIES = [
    ("a random op in a body", lambda a: a["body"]["body"]["nodes"].append(
        {"name": "r", "op": "random_uniform", "inputs": [], "attrs": {}, "outputs": []}), "random_uniform"),
    ("an output that is not there", lambda a: a["body"]["body"]["outputs"].__setitem__(0, "nowhere:0"),
     "output 'nowhere:0' is not a tensor of the body"),
    ("a body with a key too many", lambda a: a["body"]["body"].__setitem__("code", "import os"), "a body is"),
    ("a cond that returns a float", lambda a: a["cond"]["body"].__setitem__(
        "outputs", [a["cond"]["body"]["inputs"][1]["name"] + ":0"]), "the cond must return one scalar bool"),
    ("bodies nested too deep", lambda a: _nest(a, 20), "nest deeper than 16"),
    ("an input read from the outer graph", lambda a: a["body"]["body"]["nodes"][-1].__setitem__(
        "inputs", ["x:0"] + a["body"]["body"]["nodes"][-1]["inputs"][1:]), "refers to no node"),
]


@pytest.mark.parametrize("name, edit, message", HOSTILE_BODIES, ids=[h[0] for h in HOSTILE_BODIES])
def test_hostile_bodies_in_model_files_are_refused_by_name(tmp_path, name, edit, message):
    from graphc.export.model_file import FormatError
    path, _, _ = _loop_model(tmp_path)
    bad = tmp_path / "bad.gcm"
    bad.write_bytes(_edited(path, edit))
    with pytest.raises(FormatError, match=message):
        gc.export.load_model(str(bad), device="reference")


def test_a_loop_and_its_gradient_run_one_forward_loop():
    """The gradient builds the forward loop again with history; merge_loop_histories keeps one,
    and the values do not change (switching the pass off runs both)."""
    from graphc.optimizer.pipeline import optimize
    from graphc.optimizer.program import lower
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float64, (3,), name="x")
        y = gc.while_loop(lambda i, h: i < 4, lambda i, h: (i + 1, gc.sin(h) * 1.5), [0, x])[1]
        loss = gc.reduce_sum(y * y)
        g = gc.gradients(loss, x)[0]
        program = lower(graph, [loss, g], [x])
        loops = [ins for ins in optimize(program).program.instrs if ins.op == "while_loop"]
        unmerged = [ins for ins in optimize(program, disabled={"merge_loop_histories"}).program.instrs
                    if ins.op == "while_loop"]
        assert len(loops) == 2 and sum(bool(ins.attrs.get("history")) for ins in loops) == 1
        assert len(unmerged) == 3
        x0 = RNG.normal(size=3)
        with gc.Session(device="reference") as a, gc.Session(device="reference",
                                                              disable_passes=("merge_loop_histories",)) as b:
            for got, want in zip(a.run([loss, g], {x: x0}), b.run([loss, g], {x: x0})):
                assert_close(got, want)


def test_the_gradient_keeps_the_values_its_rules_read_instead_of_running_the_body_again():
    """Through an LSTM: the forward loop stacks, per iteration, the values the backward body's
    rules read (the gates' activations, the concatenated input), so the backward body has one
    product, for d[x, h], and not the forward product; the kernel's gradient is one product
    over all iterations after the backward loop (which stacks its two factors), and one
    forward loop runs (merge_loop_histories). The values are checked against finite
    differences in the table above, below and in the RNN tests (tests/train)."""
    from graphc.optimizer.pipeline import optimize
    from graphc.optimizer.program import lower
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float64, (2, 5, 3), name="x")
        cell = gc.nn.rnn_cell.LSTMCell(4)
        _, state = gc.nn.dynamic_rnn(cell, x, dtype=gc.float64)
        loss = gc.reduce_sum(state.h * state.h)
        grads = gc.gradients(loss, [x] + gc.trainable_variables())
    loops = {o.name.rsplit("/", 1)[-1]: o for o in graph.get_operations() if o.type == "while_loop"}
    keeping, backward = loops["while_history"], loops["rnn_while_grad"]
    assert len(loops) == 3 and keeping.get_attr("n_stacked") >= 5  # i, j, f, o activations and more
    assert [o.type for o in backward.get_attr("body").ops].count("matmul") == 1  # d[x, h] only
    assert backward.get_attr("n_stacked") == 2  # [x_t, h] and d gates, for the kernel's gradient
    (after,) = [m for r in backward.outputs[-1].consumers() for m in r.outputs[0].consumers()]
    assert after.type == "matmul" and after.outputs[0].shape == (7, 16)  # [I + H, 4H], K = steps x batch
    program = optimize(lower(graph, grads, [x])).program
    assert sum(ins.op == "while_loop" for ins in program.instrs) == 2


def test_the_weight_gradient_summed_after_the_loop_matches_finite_differences():
    """``sum_t h_t^T @ d_t`` over the stacked rows (``_weight_gradients``), for a weight read
    by a loop variable and by a kept value, with a trip count the data decides."""
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float64, (2, 3), name="x")
        w = gc.placeholder(gc.float64, (3, 3), name="w")

        def body(h):
            return [gc.tanh(h @ w) + gc.sigmoid(h) @ w * 0.5]
        y = gc.while_loop(lambda h: gc.reduce_sum(gc.abs(h)) < 20.0, body, [x], maximum_iterations=6)
        loss = gc.reduce_sum(y * y)
        dw = gc.gradients(loss, w)[0]
        xv, wv = RNG.normal(size=(2, 3)) * 0.5, RNG.normal(size=(3, 3))
        for device in DEVICES:
            with gc.Session(device=device) as sess, \
                    gc.Session(device=differences_on(device).get("numeric_device", device)) as numeric:
                got = sess.run(dw, {x: xv, w: wv})
                want = np.zeros_like(wv)
                for idx in np.ndindex(*wv.shape):
                    e = np.zeros_like(wv)
                    e[idx] = 1e-6
                    want[idx] = (numeric.run(loss, {x: xv, w: wv + e}) - numeric.run(loss, {x: xv, w: wv - e})) / 2e-6
                assert_close(got, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("device", DEVICES)
def test_a_training_step_through_a_loop_updates_every_variable(device):
    """The update of a variable that the loop reads runs after the gradient loop, in a stage of
    writes only (a stage with nothing to fetch was once dropped, and its updates with it)."""
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float64, (2, 3), name="x")
        w = gc.Variable(RNG.normal(size=(3, 3)) * 0.5, name="w")
        b = gc.Variable(np.zeros(3), name="b")
        h = gc.while_loop(lambda i, h: i < 3, lambda i, h: (i + 1, gc.tanh(h @ w)), [0, x])[1]
        loss = gc.reduce_sum(h @ w + b)
        grads = gc.gradients(loss, [w, b])
        train = gc.train.GradientDescent(0.1).minimize(loss)
        with gc.Session(device=device) as sess:
            sess.run(gc.global_variables_initializer())
            before = sess.run([w, b])
            xv = RNG.normal(size=(2, 3))
            want = [v - 0.1 * g for v, g in zip(before, sess.run(grads, {x: xv}))]
            sess.run(train, {x: xv})
            for got, expected in zip(sess.run([w, b]), want):
                assert_close(got, expected)


def test_loop_invariant_work_is_hoisted_out_of_the_body():
    """What reads no loop variable runs once before the loop; the body keeps its constants."""
    from graphc.codegen.control_flow import split_invariant
    from graphc.optimizer.pipeline import Settings, body_program
    graph = gc.Graph()
    with graph.as_default():
        w = gc.placeholder(gc.float64, (3, 3), name="w")
        x = gc.placeholder(gc.float64, (3,), name="x")
        op = gc.while_loop(lambda i, h: i < 4, lambda i, h: (i + 1, gc.reshape(gc.tanh(gc.reshape(h, [1, 3]) @ gc.exp(w)) * 0.5, [3])),
                           [0, x], name="L")[1].op
        body = body_program(op.get_attr("body"), Settings())
        before, after = split_invariant(body, 2, Settings())
        assert [ins.op for ins in before.instrs if ins.op != "const"] == ["exp"]
        assert "exp" not in [ins.op for ins in after.instrs]
        assert any(ins.op == "const" for ins in after.instrs)
        xv, wv = RNG.normal(size=3), RNG.normal(size=(3, 3)) * 0.3
        h = xv
        for _ in range(4):
            h = np.tanh(h @ np.exp(wv)) * 0.5
        for device in DEVICES:
            assert_close(run(op.outputs[1], {x: xv, w: wv}, device), h)


def test_the_input_projection_of_an_rnn_is_one_product_before_the_loop():
    """An LSTM cell's ``[x_t, h] @ kernel``: ``x_t @ kernel[:I]`` for every t is one product
    before the loop (hoisting.py, ``project_before_the_loop``), and each iteration multiplies
    ``h`` only. The values are checked on every device by the RNN tests (tests/train)."""
    from graphc.codegen.control_flow import split_invariant
    from graphc.optimizer.pipeline import Settings, body_program
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float64, (2, 5, 3), name="x")
        gc.nn.dynamic_rnn(gc.nn.rnn_cell.LSTMCell(4), x, dtype=gc.float64)
        op = next(o for o in graph.get_operations() if o.type == "while_loop")
    before, each = split_invariant(body_program(op.get_attr("body"), Settings()), op.get_attr("n_vars"), Settings())
    products = [ins for ins in before.instrs if ins.op == "matmul"]
    assert [before.types[p.outputs[0]].shape for p in products] == [(5, 2, 16)]  # [T, B, 4H], all steps
    per_step = [ins for ins in each.instrs if ins.op == "matmul"]
    assert [each.types[p.inputs[1]].shape for p in per_step] == [(4, 16)]  # h @ kernel[I:]
    assert sum(g.kind == "matmul" for g in each.groups) == 1


@pytest.mark.parametrize("device", DEVICES)
def test_a_loop_variable_that_changes_shape_is_refused_at_run_time_by_name_where_it_cannot(device):
    """A ``None`` invariant lets a loop variable grow (reference, cuda). Its gradient cannot
    stack one shape, and the CPU's compiled loop keeps each shape for the run: each is an
    error naming the loop, before anything is written."""
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float64, (None,), name="x")
        grow = gc.while_loop(lambda v: gc.shape(v)[0] < 8, lambda v: gc.concat([v, v * 2.0], 0), [x],
                             shape_invariants=[gc.TensorShape([None])], name="grow")
        grad = gc.gradients(gc.reduce_sum(grow), x)[0]
        with gc.Session(device=device) as sess:
            if device == "cpu":
                with pytest.raises(gc.InvalidArgumentError, match=r"while_loop 'grow' body at run time: loop variable "
                                                                  r"0 enters with shape \[2\] and the body returns "
                                                                  r"shape \[4\].*device='reference'"):
                    sess.run(grow, {x: np.ones(2)})
                return
            assert_close(sess.run(grow, {x: np.ones(2)}), np.array([1, 1, 2, 2, 2, 2, 4, 4.0]))
            with pytest.raises(gc.InvalidArgumentError, match=r"while_loop 'grow' body: loop variable 0 changes "
                                                              r"shape across iterations \(\[2\] -> \[4\]\)"):
                sess.run(grad, {x: np.ones(2)})


@pytest.mark.parametrize("counted", [True, False], ids=["scan", "data_dependent"])
def test_a_counted_loop_runs_from_the_host_without_reading_a_predicate_back(counted):
    """scan's loop counts ``i = 1, 2, ... while i < n``: a host-driven target (CUDA's
    ``HostLoop``) knows its trip count before it runs and never runs the cond; a loop whose
    trip count the data decide runs the cond before every iteration."""
    from collections import Counter
    from graphc.codegen.control_flow import StagedExecutable, host_control
    from graphc.codegen.reference import ReferenceBackend
    from graphc.optimizer.pipeline import optimize
    from graphc.optimizer.program import lower
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float64, (None, 2), name="x")
        if counted:
            out = gc.scan(lambda a, row: a + row, x)
        else:
            out = gc.while_loop(lambda h: gc.reduce_sum(h) < 10.0, lambda h: h * 2.0, [x])
    runs = Counter()

    class Counted:  # a reference executable that counts its runs
        def __init__(self, program):
            self.exe = ReferenceBackend().compile(program)

        def run(self, feeds, ctx):
            runs[self] += 1
            return self.exe.run(feeds, ctx)
    staged = StagedExecutable(optimize(lower(graph, [out], [x]), 1).program, Counted, host_control(Counted))
    loop = next(run for _, _, controls in staged.stages for ins, run in controls if ins.op == "while_loop")
    xv = np.linspace(0.1, 0.5, 10).reshape(5, 2)  # sums to 3: two doublings pass 10
    got = staged.run([xv], None)[0]
    if counted:
        assert loop.counter is not None and loop.cond is None
        assert_close(got, np.cumsum(xv, 0))
        assert runs[loop.body] == 4  # rows 1..4: the first row starts the scan
    else:
        want, trips = xv, 0
        while want.sum() < 10.0:
            want, trips = want * 2.0, trips + 1
        assert loop.counter is None and trips > 0
        assert_close(got, want)
        assert runs[loop.body] == trips and runs[loop.cond] == trips + 1

"""gc.check_numerics, gc.add_check_numerics_ops, the Session's NaN guard, gc.Print and
gc.print (graphc/debugging.py, docs/DEBUGGING.md), on every test device."""
import inspect
import os
import sys

import numpy as np
import pytest

import graphc as gc
from graphc.compat import MISSING

F32 = np.float32


def here() -> str:
    """``test_debugging.py:<the caller's line>``: the location graphc reports for an op made there."""
    return f"{os.path.basename(__file__)}:{inspect.currentframe().f_back.f_lineno}"


def _session(graph, device, **kwargs):
    return gc.Session(graph=graph, device=device, **kwargs)


# --- lowering: a check reached only through control edges runs ---------------------------------------
def test_a_fetched_group_runs_the_checks_it_holds(device):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, [3], name="x")
        check = gc.group(gc.check_numerics(gc.log(x), "m"))
        with _session(g, device) as sess:
            assert sess.run(check, {x: np.array([1, 2, 3], F32)}) is None
            with pytest.raises(gc.errors.InvalidArgumentError, match="CheckNumerics"):
                sess.run(check, {x: np.array([1, -1, 3], F32)})


# --- check_numerics ------------------------------------------------------------------------------------
# (name, builder from x, value fed, the word for the bad value found)
CHECK_CASES = [
    ("nan", lambda x: gc.log(x), [1.0, -1.0], "nan"),
    ("inf", lambda x: gc.exp(x), [1.0, 1000.0], "inf"),
    ("neg_inf", lambda x: gc.log(x), [1.0, 0.0], "-inf"),
]


def test_check_numerics_names_the_message_op_value_and_line(device):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, [2], name="x")
        checks = []
        for case, build, _, _ in CHECK_CASES:
            checks.append((gc.check_numerics(build(x), f"msg-{case}", name=f"check_{case}"), here()))
        with _session(g, device) as sess:
            for (case, _, value, word), (check, line) in zip(CHECK_CASES, checks):
                np.testing.assert_array_equal(sess.run(check, {x: np.array([1, 2], F32)}),
                                              sess.run(check.op.inputs[0], {x: np.array([1, 2], F32)}))
                with pytest.raises(gc.errors.InvalidArgumentError) as e:
                    sess.run(check, {x: np.array(value, F32)})
                text = str(e.value)
                assert f"msg-{case}" in text and f"'check_{case}'" in text and line in text, text
                assert f"got {word}" in text.lower(), text


def test_check_numerics_refuses_integer_tensors_and_passes_gradients(device):
    g = gc.Graph()
    with g.as_default():
        n = gc.constant([1, 2], gc.int32, name="counts")
        with pytest.raises(TypeError, match=r"'counts:0' has dtype int32"):
            gc.check_numerics(n, "ints")
        x = gc.placeholder(gc.float32, [2], name="x")
        (grad,) = gc.gradients(gc.reduce_sum(gc.check_numerics(x * x, "sq")), [x])
        assert gc.debugging.check_numerics is gc.check_numerics
        with _session(g, device) as sess:
            np.testing.assert_allclose(sess.run(grad, {x: np.array([1.5, -2], F32)}), [3, -4])


# --- add_check_numerics_ops ------------------------------------------------------------------------------
def test_add_check_numerics_ops_catches_a_nan_in_an_intermediate(device):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, [3], name="x")
        w = gc.Variable(np.ones(3, F32), name="w")
        masked_log = gc.log(x, name="masked_log"); line = here()  # noqa: E702
        y = gc.where(x > 0, masked_log, gc.zeros_like(x))  # NaN in an intermediate, not in y
        train = w.assign_add(y)
        check = gc.add_check_numerics_ops()
        assert all(op.type == "check_range" for op in check.control_inputs)
        checked = {op.inputs[0].op.name for op in check.control_inputs}
        assert "masked_log" in checked and "w/AssignAdd" not in checked
        with _session(g, device) as sess:
            sess.run(w.initializer)
            good = np.array([1, 2, 3], F32)
            sess.run([train, check], {x: good})
            after_good = sess.run(w)
            np.testing.assert_allclose(after_good, 1 + np.log(good), rtol=1e-6)
            bad = np.array([1, -2, 3], F32)
            np.testing.assert_allclose(sess.run(y, {x: bad}), [0, 0, np.log(3)], rtol=1e-6)  # unchecked: fine
            with pytest.raises(gc.errors.InvalidArgumentError) as e:
                sess.run([train, check], {x: bad})
            assert "masked_log" in str(e.value) and "add_check_numerics_ops" in str(e.value)
            assert line in str(e.value), str(e.value)


# --- the NaN guard --------------------------------------------------------------------------------------------
def _training_graph():
    """x -> log -> a loss; two variables written; a random draw (whose counter must be undone)."""
    g = gc.Graph()
    with g.as_default():
        gc.set_random_seed(3)
        x = gc.placeholder(gc.float32, [2, 3], name="x")
        w = gc.Variable(np.full((3,), 0.5, F32), name="w")
        steps = gc.Variable(np.zeros((), F32), name="steps")
        h = gc.log(x, name="bad_log"); line = here()  # noqa: E702
        noise = gc.random_uniform([3], 0.0, 0.01, name="noise")
        loss = gc.reduce_mean(h * w.value(), name="loss")
        (grad,) = gc.gradients(loss, [w.value()])
        train = gc.group(w.assign_sub(0.1 * grad + noise), steps.assign_add(1.0))
    return g, x, w, steps, loss, train, line


GOOD = np.array([[1, 2, 3], [4, 5, 6]], F32)
BAD = np.array([[1, 2, 3], [4, -5, 6]], F32)


@pytest.mark.parametrize("how", ["keyword", "config"])
def test_the_guard_undoes_a_run_that_makes_nan_and_names_the_first_op(device, how):
    g, x, w, steps, loss, train, line = _training_graph()
    kwargs = {"nan_guard": True} if how == "keyword" else {"config": gc.ConfigProto(nan_guard=True)}
    with _session(g, device, **kwargs) as sess, _session(g, device) as plain:
        for s in (sess, plain):
            s.run([w.initializer, steps.initializer])
        # a clean guarded run returns what an unguarded one does
        a, b = sess.run([loss, train], {x: GOOD}), plain.run([loss, train], {x: GOOD})
        assert a[1] is None and b[1] is None
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(sess.run(w), plain.run(w))
        before = sess.run([w, steps])
        with pytest.raises(gc.errors.NumericsError) as e:
            sess.run([loss, train], {x: BAD})
        assert isinstance(e.value, gc.errors.InvalidArgumentError)
        text = str(e.value)
        assert "log 'bad_log'" in text, text
        assert "input x:0 float32(2, 3): min -5, max 6" in text, text
        assert "1 NaN" in text and line in text, text
        assert "variable 'w'" in text and "loss:0" in text, text
        after = sess.run([w, steps])
        for a, b in zip(before, after):
            np.testing.assert_array_equal(a, b)
        # the random counter was undone too: the next step draws what the plain session draws
        sess.run(train, {x: GOOD})
        plain.run(train, {x: GOOD})
        np.testing.assert_allclose(sess.run(w), plain.run(w), rtol=1e-6)
        assert sess.run(steps) == plain.run(steps) == 2


def test_the_guard_names_an_overflow_a_bad_feed_and_works_through_make_callable(device):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, [2], name="x")
        v = gc.Variable(np.ones(2, F32), name="v")
        grow = v.assign(gc.multiply(v.value(), x, name="grow")); line = here()  # noqa: E702
        y = gc.identity(x * 2.0, name="y")
        with _session(g, device, nan_guard=True) as sess:
            sess.run(v.initializer)
            step = sess.make_callable(grow, [x])
            np.testing.assert_array_equal(step(np.array([2, 3], F32)), [2, 3])
            with pytest.raises(gc.errors.NumericsError) as e:
                step(np.array([1e30, 1e30], F32))
                step(np.array([1e30, 1e30], F32))  # 3e30 * 1e30 overflows float32
            text = str(e.value)
            assert "multiply 'grow'" in text and line in text, text
            assert "+inf" in text, text
            np.testing.assert_array_equal(sess.run(v), np.array([2, 3], F32) * F32(1e30))  # only the first step landed
            with pytest.raises(gc.errors.NumericsError, match=r"the value fed for 'x:0' holds NaN"):
                sess.run(y, {x: np.array([np.nan, 1], F32)})


def test_the_guard_replays_with_scalar_variables(device):
    """The replay starts from the variables' values as the Session holds them (a CUDA session
    keeps a scalar variable as one element): the report still names the op."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, [3], name="x")
        s = gc.Variable(F32(2), name="s")
        y = gc.log(x * s.value(), name="poison"); line = here()  # noqa: E702
        bump = s.assign_add(F32(1))
        with _session(g, device, nan_guard=True) as sess:
            sess.run(s.initializer)
            with pytest.raises(gc.errors.NumericsError) as e:
                sess.run([y, bump], {x: -np.ones(3, F32)})
            assert "log 'poison'" in str(e.value) and line in str(e.value), str(e.value)
            assert sess.run(s) == F32(2)


def test_the_guard_undoes_writes_made_inside_a_loop_and_names_the_loop(device):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, [2], name="x")
        acc = gc.Variable(np.zeros(2, F32), name="acc")

        def body(i):
            with gc.control_dependencies([acc.assign_add(gc.sqrt(x))]):
                return i + 1
        n = gc.while_loop(lambda i: i < 3, body, [gc.constant(0)], name="loop"); line = here()  # noqa: E702
        with _session(g, device, nan_guard=True) as sess:
            sess.run(acc.initializer)
            assert sess.run(n, {x: np.array([1, 4], F32)}) == 3
            np.testing.assert_array_equal(sess.run(acc), [3, 6])
            with pytest.raises(gc.errors.NumericsError) as e:
                sess.run(n, {x: np.array([1, -4], F32)})
            assert "while_loop 'loop'" in str(e.value) and line in str(e.value), str(e.value)
            np.testing.assert_array_equal(sess.run(acc), [3, 6])


# --- Print and print --------------------------------------------------------------------------------------------
def test_print_shows_message_and_values_first_n_times(device, capsys):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, [5], name="x")
        total = gc.reduce_sum(x)
        shown = gc.Print(total, [x, total], message="sum is: ", first_n=2, summarize=2)
        everytime = gc.Print(x, [gc.reshape(x[:4], [2, 2])], message="m: ")
        with _session(g, device) as sess:
            value = np.arange(1, 6, dtype=F32)
            for _ in range(3):
                assert sess.run(shown, {x: value}) == 15
            np.testing.assert_array_equal(sess.run(everytime, {x: value}), value)
    err = capsys.readouterr().err.splitlines()
    assert err == ["sum is: [1 2...]15"] * 2 + ["m: [[1 2][3...]]"], err


def test_tf2_print_as_a_fetch_and_as_a_control_dependency(device, capsys):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, [7], name="x")
        p = gc.print("x =", x, "sum:", gc.reduce_sum(x), output_stream=sys.stdout, summarize=2)
        with gc.control_dependencies([gc.print("before y", sep="", end="!\n")]):
            y = gc.identity(x + 1.0)
        with _session(g, device) as sess:
            value = np.arange(7, dtype=F32)
            assert sess.run(p, {x: value}) is None
            np.testing.assert_array_equal(sess.run(y, {x: value}), value + 1)
    out = capsys.readouterr()
    assert out.out == "x = [0 1 ... 5 6] sum: 21\n", out.out
    assert out.err == "before y!\n", out.err


def test_print_inside_a_loop_body_is_refused_at_build_time():
    g = gc.Graph()
    with g.as_default():
        i = gc.constant(0)
        with pytest.raises(gc.errors.GraphError) as e:
            gc.while_loop(lambda i: i < 3, lambda i: gc.Print(i + 1, [i], "i="), [i], name="counter")
        assert "gc.Print" in str(e.value) and "while_loop 'counter' body" in str(e.value), str(e.value)


def test_print_is_a_tf1_name_now():
    assert "Print" not in MISSING
    assert gc.Print is gc.debugging.Print and callable(gc.print)

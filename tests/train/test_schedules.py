"""Learning-rate schedules (gc.train): Caffe's lr policies and TensorFlow's decay schedules
against their formulas in NumPy over many steps, their errors, and a schedule driving an
optimizer through the global step."""
import math
import os

import numpy as np
import pytest

import graphc as gc
from support import assert_close

THIS_FILE = os.path.basename(__file__)

STEPS = [0, 1, 2, 5, 9, 10, 11, 19, 20, 21, 50, 99, 100, 101, 250, 500, 999, 1000, 1001, 1500]

# float32 schedules: gamma ** 1000 amplifies the rounding of gamma to float32 (about 1e-5)
TOL = {gc.float32: dict(rtol=1e-4, atol=1e-9), gc.float64: dict(rtol=1e-10, atol=1e-15)}


def _caffe_expected(it):
    """Caffe's lr_policy formulas, written out in float64."""
    it = float(it)
    return {
        "fixed": 0.1,
        "step": 0.1 * 0.5 ** math.floor(it / 10),
        "exp": 0.1 * 0.99 ** it,
        "inv": 0.1 * (1 + 1e-3 * it) ** -0.75,
        "multistep": 0.1 * 0.1 ** sum(1 for s in (10, 100, 1000) if s <= it),
        "poly": 0.1 * max(1 - it / 1000, 0.0) ** 2.0,
        "poly_sqrt": 0.1 * max(1 - it / 1000, 0.0) ** 0.5,
        "sigmoid": 0.1 / (1 + math.exp(0.05 * (it - 100))),
    }


@pytest.mark.parametrize("dtype", [gc.float32, gc.float64], ids=["float32", "float64"])
def test_caffe_policies_match_their_formulas(graph, device, dtype):
    it = gc.placeholder(gc.int64, (), name="iter")
    lr = gc.train.caffe_learning_rate
    schedules = {
        "fixed": lr("fixed", 0.1, it, dtype=dtype),
        "step": lr("step", 0.1, it, gamma=0.5, stepsize=10, dtype=dtype),
        "exp": lr("exp", 0.1, it, gamma=0.99, dtype=dtype),
        "inv": lr("inv", 0.1, it, gamma=1e-3, power=0.75, dtype=dtype),
        "multistep": lr("multistep", 0.1, it, gamma=0.1, stepvalues=[10, 100, 1000], dtype=dtype),
        "poly": lr("poly", 0.1, it, power=2.0, max_iter=1000, dtype=dtype),
        "poly_sqrt": lr("poly", 0.1, it, power=0.5, max_iter=1000, dtype=dtype),
        "sigmoid": lr("sigmoid", 0.1, it, gamma=-0.05, stepsize=100, dtype=dtype),
    }
    for name, tensor in schedules.items():
        assert tensor.dtype is dtype, name
        assert tensor.shape == (), name
    with gc.Session(graph=graph, device=device) as sess:
        for step in STEPS:
            got = sess.run(schedules, {it: np.int64(step)})
            expected = _caffe_expected(step)
            for name in schedules:
                try:
                    assert_close(got[name], np.asarray(expected[name], dtype.np), **TOL[dtype])
                except AssertionError as e:
                    raise AssertionError(f"policy {name} at iter {step}: {e}") from None
    # spot checks the formulas must satisfy
    assert _caffe_expected(10)["multistep"] == pytest.approx(0.01)
    assert _caffe_expected(1000)["poly"] == 0.0


def _tf_expected(step):
    s = float(step)
    return {
        "exponential": 0.1 * 0.5 ** (s / 10),
        "exponential_staircase": 0.1 * 0.5 ** math.floor(s / 10),
        "inverse_time": 0.1 / (1 + 0.5 * s / 10),
        "inverse_time_staircase": 0.1 / (1 + 0.5 * math.floor(s / 10)),
        "polynomial": (0.1 - 0.001) * (1 - min(s, 100) / 100) ** 0.5 + 0.001,
        "polynomial_linear": (0.1 - 1e-4) * (1 - min(s, 100) / 100) + 1e-4,
        "piecewise": 1.0 if s <= 10 else 0.5 if s <= 20 else 0.1,
        "cosine": 0.1 * ((1 - 0.1) * 0.5 * (1 + math.cos(math.pi * min(s, 100) / 100)) + 0.1),
        "cosine_no_alpha": 0.1 * 0.5 * (1 + math.cos(math.pi * min(s, 100) / 100)),
    }


@pytest.mark.parametrize("dtype", [gc.float32, gc.float64], ids=["float32", "float64"])
def test_tf_schedules_match_their_formulas(graph, device, dtype):
    step = gc.placeholder(gc.int64, (), name="step")
    t = gc.train
    schedules = {
        "exponential": t.exponential_decay(0.1, step, 10, 0.5, dtype=dtype),
        "exponential_staircase": t.exponential_decay(0.1, step, 10, 0.5, staircase=True, dtype=dtype),
        "inverse_time": t.inverse_time_decay(0.1, step, 10, 0.5, dtype=dtype),
        "inverse_time_staircase": t.inverse_time_decay(0.1, step, 10, 0.5, staircase=True, dtype=dtype),
        "polynomial": t.polynomial_decay(0.1, step, 100, end_learning_rate=0.001, power=0.5, dtype=dtype),
        "polynomial_linear": t.polynomial_decay(0.1, step, 100, dtype=dtype),
        "piecewise": t.piecewise_constant(step, [10, 20], [1.0, 0.5, 0.1], dtype=dtype),
        "cosine": t.cosine_decay(0.1, step, 100, alpha=0.1, dtype=dtype),
        "cosine_no_alpha": t.cosine_decay(0.1, step, 100, dtype=dtype),
    }
    for name, tensor in schedules.items():
        assert tensor.dtype is dtype, name
        assert tensor.shape == (), name
    with gc.Session(graph=graph, device=device) as sess:
        for s in STEPS + [3, 15, 35, 37]:
            got = sess.run(schedules, {step: np.int64(s)})
            expected = _tf_expected(s)
            for name in schedules:
                try:
                    assert_close(got[name], np.asarray(expected[name], dtype.np), **TOL[dtype])
                except AssertionError as e:
                    raise AssertionError(f"schedule {name} at step {s}: {e}") from None


def test_piecewise_constant_boundaries(graph, device):
    """values[i] while step <= boundaries[i] (the boundary itself belongs to the earlier piece)."""
    step = gc.placeholder(gc.int64, (), name="step")
    lr = gc.train.piecewise_constant(step, [0, 4, 5, 100], [5.0, 4.0, 3.0, 2.0, 1.0])
    one_piece = gc.train.piecewise_constant(step, [], [0.25], dtype=gc.float64)
    expected = {-3: 5.0, 0: 5.0, 1: 4.0, 4: 4.0, 5: 3.0, 6: 2.0, 100: 2.0, 101: 1.0, 10 ** 6: 1.0}
    with gc.Session(graph=graph, device=device) as sess:
        for s, value in expected.items():
            got, single = sess.run([lr, one_piece], {step: np.int64(s)})
            assert_close(got, np.float32(value))
            assert_close(single, np.float64(0.25))


def test_schedule_of_a_global_step_variable(graph, device):
    step = gc.train.get_or_create_global_step()
    lr = gc.train.exponential_decay(0.2, step, 5, 0.1, staircase=True, dtype=gc.float64)
    caffe = gc.train.caffe_learning_rate("step", 0.2, step, gamma=0.1, stepsize=5, dtype=gc.float64)
    new_step = gc.placeholder(gc.int64, ())
    set_step = step.assign(new_step)
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())
        for s in (0, 4, 5, 12, 25):
            sess.run(set_step, {new_step: s})
            got, got_caffe = sess.run([lr, caffe])
            expected = np.float64(0.2 * 0.1 ** (s // 5))
            assert_close(got, expected)
            assert_close(got_caffe, expected)


def test_schedule_drives_the_optimizer(graph, device):
    """The step size follows the schedule; each run uses the rate of the step it starts at."""
    w = gc.Variable(np.zeros(2, np.float32), name="w")
    b = gc.Variable(np.zeros(3), name="b")  # float64: the float32 rate is cast
    loss = gc.reduce_sum(w * np.array([1.0, -2.0], np.float32)) + gc.reduce_sum(b * np.array([3.0, 0.5, -1.0]))
    step = gc.train.get_or_create_global_step()
    lr = gc.train.exponential_decay(0.1, step, 1, 0.5, staircase=True)
    train = gc.train.GradientDescent(lr).minimize(loss, global_step=step)
    w_expected = np.zeros(2, np.float32)
    b_expected = np.zeros(3)
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())
        for k in range(6):
            _, rate, at = sess.run([train, lr, step])
            assert at == k
            assert_close(rate, np.float32(0.1 * 0.5 ** k))
            w_expected = w_expected - np.float32(rate) * np.array([1.0, -2.0], np.float32)
            b_expected = b_expected - np.float64(rate) * np.array([3.0, 0.5, -1.0])
            got_w, got_b = sess.run([w, b])
            assert_close(got_w, w_expected)
            assert_close(got_b, b_expected)
        assert sess.run(step) == 6
    # the rate halved every step: the moves shrink geometrically
    assert_close(w_expected, (-0.1 * (2 - 0.5 ** 5) * np.array([1.0, -2.0])).astype(np.float32))


def test_schedule_errors(graph):
    step = gc.placeholder(gc.int64, ())
    with pytest.raises(gc.train.ScheduleError) as err:
        gc.train.caffe_learning_rate("cosine", 0.1, step)
    message = str(err.value)
    assert "'cosine'" in message and "multistep" in message and THIS_FILE in message
    assert isinstance(err.value, gc.GraphcError) and isinstance(err.value, ValueError)

    cases = [
        (dict(policy="step", gamma=0.1), ["stepsize"]),
        (dict(policy="step", stepsize=10), ["gamma"]),
        (dict(policy="exp"), ["gamma"]),
        (dict(policy="inv", gamma=0.1), ["power"]),
        (dict(policy="multistep", gamma=0.1), ["stepvalues"]),
        (dict(policy="poly", power=1.0), ["max_iter"]),
        (dict(policy="sigmoid"), ["gamma", "stepsize"]),
    ]
    for kwargs, missing in cases:
        policy = kwargs.pop("policy")
        with pytest.raises(gc.train.ScheduleError) as err:
            gc.train.caffe_learning_rate(policy, 0.1, step, **kwargs)
        for name in missing:
            assert name in str(err.value), (policy, str(err.value))
        assert repr(policy) in str(err.value)

    with pytest.raises(gc.train.ScheduleError, match="one more value") as err:
        gc.train.piecewise_constant(step, [10, 20], [1.0, 0.5])
    assert THIS_FILE in str(err.value)
    with pytest.raises(gc.train.ScheduleError, match="one more value"):
        gc.train.piecewise_constant(step, [10], [1.0, 0.5, 0.1])
    with pytest.raises(gc.train.ScheduleError, match="increase"):
        gc.train.piecewise_constant(step, [20, 10], [1.0, 0.5, 0.1])

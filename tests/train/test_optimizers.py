"""Optimizers (gc.train): every update rule step by step against an independent NumPy
implementation, the shared options (weight decay, gradient clipping, tensor learning
rates), slot variables, the global step, var_list and the no-gradient errors.

Two variables everywhere: ``W`` (float32 matrix) and ``b`` (float64 vector), so both float
dtypes go through every rule. Gradients are either fed through placeholders
(``apply_gradients``) or come from a small least-squares loss whose gradient NumPy computes
too (``minimize``).
"""
import os

import numpy as np
import pytest

import graphc as gc
from support import assert_close

THIS_FILE = os.path.basename(__file__)
STEPS = 6

# Initial values and a fixed sequence of gradients whose scale shrinks step by step: early
# steps exceed the clip thresholds used below, later ones do not, and AMSGrad's running max
# of v differs from v once the gradients shrink.
_rng = np.random.default_rng(1234)
W0 = _rng.standard_normal((3, 2)).astype(np.float32)
B0 = _rng.standard_normal(2)
SCALES = [3.0, 1.5, 0.8, 0.4, 0.2, 0.1]
GRADS = [(_rng.standard_normal((3, 2)).astype(np.float32) * np.float32(s), _rng.standard_normal(2) * s)
         for s in SCALES]
X = _rng.standard_normal((5, 3)).astype(np.float32)
Y = _rng.standard_normal((5, 2))


# ---------------------------------------------------------------------------------------------
# Independent NumPy implementations. Each works in the variable's own dtype; ``update`` takes
# the variable, its gradient, its slot dict (mutated in place) and the 1-based step number and
# returns the new variable value.
# ---------------------------------------------------------------------------------------------
class NpSGD:
    slots = ()

    def __init__(self, lr):
        self.lr = lr

    def init(self, var):
        return {}

    def update(self, var, g, s, t):
        return var - var.dtype.type(self.lr) * g


class NpMomentum:
    slots = ("momentum",)

    def __init__(self, lr, momentum, nesterov=False):
        self.lr, self.mu, self.nesterov = lr, momentum, nesterov

    def init(self, var):
        return {"momentum": np.zeros_like(var)}

    def update(self, var, g, s, t):
        lr = var.dtype.type(self.lr)
        s["momentum"] = self.mu * s["momentum"] + g
        step = g + self.mu * s["momentum"] if self.nesterov else s["momentum"]
        return var - lr * step


class NpAdagrad:
    slots = ("accumulator",)

    def __init__(self, lr, initial, eps):
        self.lr, self.initial, self.eps = lr, initial, eps

    def init(self, var):
        return {"accumulator": np.full_like(var, self.initial)}

    def update(self, var, g, s, t):
        s["accumulator"] = s["accumulator"] + g * g
        return var - var.dtype.type(self.lr) * g / (np.sqrt(s["accumulator"]) + self.eps)


class NpAdaDelta:
    slots = ("accum", "accum_update")

    def __init__(self, lr, rho, eps):
        self.lr, self.rho, self.eps = lr, rho, eps

    def init(self, var):
        return {"accum": np.zeros_like(var), "accum_update": np.zeros_like(var)}

    def update(self, var, g, s, t):
        rho, eps = self.rho, self.eps
        s["accum"] = rho * s["accum"] + (1 - rho) * g * g
        delta = np.sqrt(s["accum_update"] + eps) / np.sqrt(s["accum"] + eps) * g
        s["accum_update"] = rho * s["accum_update"] + (1 - rho) * delta * delta
        return var - var.dtype.type(self.lr) * delta


class NpRMSProp:
    def __init__(self, lr, decay, momentum, eps, centered=False):
        self.lr, self.decay, self.mu, self.eps, self.centered = lr, decay, momentum, eps, centered
        self.slots = ("rms", "momentum", "mg") if centered else ("rms", "momentum")

    def init(self, var):
        return {name: np.zeros_like(var) for name in self.slots}

    def update(self, var, g, s, t):
        d = self.decay
        s["rms"] = d * s["rms"] + (1 - d) * g * g
        denom = s["rms"]
        if self.centered:
            s["mg"] = d * s["mg"] + (1 - d) * g
            denom = s["rms"] - s["mg"] * s["mg"]
        s["momentum"] = self.mu * s["momentum"] + var.dtype.type(self.lr) * g / np.sqrt(denom + self.eps)
        return var - s["momentum"]


class NpAdam:
    def __init__(self, lr, beta1, beta2, eps, amsgrad=False):
        self.lr, self.b1, self.b2, self.eps, self.amsgrad = lr, beta1, beta2, eps, amsgrad
        self.slots = ("m", "v", "vhat") if amsgrad else ("m", "v")

    def init(self, var):
        return {name: np.zeros_like(var) for name in self.slots}

    def update(self, var, g, s, t):
        dtype = var.dtype.type
        lr_t = dtype(self.lr) * dtype(np.sqrt(1.0 - self.b2 ** t) / (1.0 - self.b1 ** t))
        s["m"] = self.b1 * s["m"] + (1 - self.b1) * g
        s["v"] = self.b2 * s["v"] + (1 - self.b2) * g * g
        v = s["v"]
        if self.amsgrad:
            s["vhat"] = np.maximum(s["vhat"], s["v"])
            v = s["vhat"]
        return var - lr_t * s["m"] / (np.sqrt(v) + self.eps)


class NpOptions:
    """Wraps a rule with the optimizer options, applied to the gradients of all variables
    together: clip each element, clip the global norm, add L2 weight decay."""

    def __init__(self, inner, weight_decay=0.0, clip_norm=None, clip_value=None):
        self.inner, self.wd, self.clip_norm, self.clip_value = inner, weight_decay, clip_norm, clip_value
        self.slots = inner.slots

    def init(self, var):
        return self.inner.init(var)

    def grads(self, grads, variables):
        grads = list(grads)
        if self.clip_value is not None:
            grads = [np.clip(g, -self.clip_value, self.clip_value) for g in grads]
        if self.clip_norm is not None:
            norm = np.sqrt(sum(np.sum(np.square(g.astype(np.float64))) for g in grads))
            scale = self.clip_norm / max(norm, self.clip_norm)
            grads = [(g * scale).astype(g.dtype) for g in grads]
        if self.wd:
            grads = [g + self.wd * v for g, v in zip(grads, variables)]
        return grads

    def update(self, var, g, s, t):
        return self.inner.update(var, g, s, t)


def np_grads(opt, grads, variables):
    return opt.grads(grads, variables) if isinstance(opt, NpOptions) else list(grads)


# name -> (graph optimizer factory, NumPy reference factory)
CONFIGS = {
    "sgd": (lambda: gc.train.GradientDescent(0.1), lambda: NpSGD(0.1)),
    "momentum": (lambda: gc.train.Momentum(0.05, momentum=0.8), lambda: NpMomentum(0.05, 0.8)),
    "nesterov": (lambda: gc.train.Momentum(0.05, momentum=0.8, use_nesterov=True),
                 lambda: NpMomentum(0.05, 0.8, nesterov=True)),
    "adagrad": (lambda: gc.train.Adagrad(0.3, initial_accumulator_value=0.2, epsilon=1e-3),
                lambda: NpAdagrad(0.3, 0.2, 1e-3)),
    "adadelta": (lambda: gc.train.AdaDelta(1.0, rho=0.9, epsilon=1e-3), lambda: NpAdaDelta(1.0, 0.9, 1e-3)),
    "rmsprop": (lambda: gc.train.RMSProp(0.01, decay=0.8, epsilon=1e-6),
                lambda: NpRMSProp(0.01, 0.8, 0.0, 1e-6)),
    "rmsprop_momentum": (lambda: gc.train.RMSProp(0.01, decay=0.8, momentum=0.7, epsilon=1e-6),
                         lambda: NpRMSProp(0.01, 0.8, 0.7, 1e-6)),
    "rmsprop_centered": (lambda: gc.train.RMSProp(0.01, decay=0.8, momentum=0.5, epsilon=1e-6, centered=True),
                         lambda: NpRMSProp(0.01, 0.8, 0.5, 1e-6, centered=True)),
    "adam": (lambda: gc.train.Adam(0.05, beta1=0.8, beta2=0.5, epsilon=1e-6),
             lambda: NpAdam(0.05, 0.8, 0.5, 1e-6)),
    "adam_amsgrad": (lambda: gc.train.Adam(0.05, beta1=0.8, beta2=0.5, epsilon=1e-6, amsgrad=True),
                     lambda: NpAdam(0.05, 0.8, 0.5, 1e-6, amsgrad=True)),
    "adam_weight_decay": (lambda: gc.train.Adam(0.05, beta1=0.8, beta2=0.5, epsilon=1e-6, weight_decay=0.3),
                          lambda: NpOptions(NpAdam(0.05, 0.8, 0.5, 1e-6), weight_decay=0.3)),
    "momentum_clip_value": (lambda: gc.train.Momentum(0.05, momentum=0.8, clip_value=0.5),
                            lambda: NpOptions(NpMomentum(0.05, 0.8), clip_value=0.5)),
    "sgd_clip_norm": (lambda: gc.train.GradientDescent(0.1, clip_norm=1.5),
                      lambda: NpOptions(NpSGD(0.1), clip_norm=1.5)),
}


def _check_state(got, expected_vars, expected_slots, slot_keys, what, rtol=None):
    for value, expected, name in zip(got[:2], expected_vars, ("W", "b")):
        try:
            assert_close(value, expected, rtol=rtol)
        except AssertionError as e:
            raise AssertionError(f"{what}: variable {name}: {e}") from None
    for value, (i, slot) in zip(got[2:], slot_keys):
        try:
            assert_close(value, expected_slots[i][slot], rtol=rtol)
        except AssertionError as e:
            raise AssertionError(f"{what}: slot {slot!r} of {'Wb'[i]}: {e}") from None


@pytest.mark.parametrize("config", list(CONFIGS))
def test_update_rule_step_by_step_with_fed_gradients(graph, device, config):
    make_opt, make_ref = CONFIGS[config]
    W = gc.Variable(W0, name="W")
    b = gc.Variable(B0, name="b")
    gW = gc.placeholder(gc.float32, (3, 2), name="gW")
    gb = gc.placeholder(gc.float64, (2,), name="gb")
    opt, ref = make_opt(), make_ref()
    train = opt.apply_gradients([(gW, W), (gb, b)])
    # The global norm sums the float32 gradient's squares in float32, which limits the
    # precision of the float64 update to about float32's.
    rtol = 1e-6 if config == "sgd_clip_norm" else None

    assert opt.get_slot_names() == list(ref.slots)
    slot_keys = [(i, s) for i in range(2) for s in ref.slots]
    slot_vars = [opt.get_slot((W, b)[i], s) for i, s in slot_keys]
    assert all(isinstance(v, gc.Variable) for v in slot_vars)
    assert [v.dtype for v in slot_vars] == [(gc.float32, gc.float64)[i] for i, _ in slot_keys]
    reads = [W, b] + slot_vars

    values = [W0.copy(), B0.copy()]
    slots = [ref.init(v) for v in values]
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())
        _check_state(sess.run(reads), values, slots, slot_keys, "initial state")
        for t, (g_w, g_b) in enumerate(GRADS, start=1):
            assert sess.run(train, {gW: g_w, gb: g_b}) is None
            grads = np_grads(ref, [g_w, g_b], values)
            values = [ref.update(v, g, s, t) for v, g, s in zip(values, grads, slots)]
            _check_state(sess.run(reads), values, slots, slot_keys, f"{config} after step {t}", rtol)

    assert not np.allclose(values[0], W0) and not np.allclose(values[1], B0)  # the steps moved
    if config == "adam_amsgrad":  # the data exercises the running max
        assert any(np.any(s["vhat"] > s["v"]) for s in slots)


@pytest.mark.parametrize("config", ["sgd", "nesterov", "adagrad", "rmsprop_centered", "adam_amsgrad"])
def test_minimize_least_squares_step_by_step(graph, device, config):
    """minimize() differentiates the loss; each run reports the loss the step started from
    and bumps the global step once."""
    make_opt, make_ref = CONFIGS[config]
    x = gc.constant(X, name="x")
    y = gc.constant(Y, name="y")
    W = gc.Variable(W0, name="W")
    b = gc.Variable(B0, name="b")
    loss = gc.reduce_sum(gc.square(gc.cast(gc.matmul(x, W), gc.float64) + b - y)) * 0.1
    step = gc.train.get_or_create_global_step()
    opt, ref = make_opt(), make_ref()
    train = opt.minimize(loss, global_step=step)

    def np_loss_and_grads(w, bias):
        r = (X @ w).astype(np.float64) + bias - Y
        return 0.1 * np.sum(r * r), [X.T @ (0.2 * r).astype(np.float32), np.sum(0.2 * r, axis=0)]

    values = [W0.copy(), B0.copy()]
    slots = [ref.init(v) for v in values]
    slot_keys = [(i, s) for i in range(2) for s in ref.slots]
    reads = [W, b] + [opt.get_slot((W, b)[i], s) for i, s in slot_keys]
    losses = []
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())
        for t in range(1, STEPS + 1):
            _, got_loss, got_step = sess.run([train, loss, step])
            expected_loss, grads = np_loss_and_grads(*values)
            assert_close(got_loss, np.float64(expected_loss), rtol=1e-5)  # before this step's update
            assert got_step == t - 1
            losses.append(expected_loss)
            values = [ref.update(v, g, s, t) for v, g, s in zip(values, grads, slots)]
            # b's gradient goes through the float32 product x @ W: float32-level agreement only
            _check_state(sess.run(reads), values, slots, slot_keys, f"{config} after step {t}", rtol=1e-5)
        assert sess.run(step) == STEPS
        assert_close(sess.run(loss), np.float64(np_loss_and_grads(*values)[0]), rtol=1e-5)
    assert losses[-1] < losses[0]  # and it trains


def test_learning_rate_placeholder_changes_each_step(graph, device):
    W = gc.Variable(W0, name="W")
    b = gc.Variable(B0, name="b")
    gW = gc.placeholder(gc.float32, (3, 2))
    gb = gc.placeholder(gc.float64, (2,))
    lr = gc.placeholder(gc.float32, (), name="lr")  # cast to float64 for b
    opt = gc.train.MomentumOptimizer(lr, momentum=0.5, use_nesterov=True)
    train = opt.apply_gradients([(gW, W), (gb, b)])
    rates = [0.1, 0.0, 0.3, 0.05, 0.2, 0.0]
    values = [W0.copy(), B0.copy()]
    accum = [np.zeros_like(v) for v in values]
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())
        for rate, (g_w, g_b) in zip(rates, GRADS):
            sess.run(train, {gW: g_w, gb: g_b, lr: rate})
            for i, g in enumerate((g_w, g_b)):
                accum[i] = 0.5 * accum[i] + g
                rate_i = np.float32(rate).astype(values[i].dtype)
                values[i] = values[i] - rate_i * (g + 0.5 * accum[i])
            got_W, got_b, got_acc = sess.run([W, b, opt.get_slot(b, "momentum")])
            assert_close(got_W, values[0])
            assert_close(got_b, values[1])
            assert_close(got_acc, accum[1])


# ---------------------------------------------------------------------------------------------
# Clipping helpers
# ---------------------------------------------------------------------------------------------
def test_clip_by_global_norm_and_clip_by_norm(graph, device):
    a = gc.placeholder(gc.float32, (3, 2), name="a")
    c = gc.placeholder(gc.float64, (4,), name="c")
    (ca, none, cc), norm = gc.clip_by_global_norm([a, None, c], 2.0)
    assert none is None and ca.dtype is gc.float32 and cc.dtype is gc.float64
    gnorm = gc.global_norm([a, c])
    by_norm = gc.clip_by_norm(a, 1.5)
    by_row = gc.clip_by_norm(a, 1.5, axes=[1])
    fetches = [ca, cc, norm, gnorm, by_norm, by_row]
    rng = np.random.default_rng(7)
    with gc.Session(graph=graph, device=device) as sess:
        for scale in (3.0, 0.05):  # clipped, then left alone
            av = (rng.standard_normal((3, 2)) * scale).astype(np.float32)
            av[0] *= 0.01  # one short row, which clip_by_norm over axis 1 keeps
            cv = rng.standard_normal(4) * scale
            got = sess.run(fetches, {a: av, c: cv})
            n = np.sqrt(np.sum(av.astype(np.float64) ** 2) + np.sum(cv ** 2))
            assert (n > 2.0) == (scale > 1)
            s = 2.0 / max(n, 2.0)
            assert_close(got[0], (av * s).astype(np.float32))
            assert_close(got[1], cv * s, rtol=1e-6)  # the norm sums a's squares in float32
            assert_close(np.float64(got[2]), np.float64(n), rtol=1e-6)
            assert_close(np.float64(got[3]), np.float64(n), rtol=1e-6)
            full = np.sqrt(np.sum(av.astype(np.float64) ** 2))
            assert_close(got[4], (av * (1.5 / max(full, 1.5))).astype(np.float32))
            rows = np.sqrt(np.sum(av.astype(np.float64) ** 2, axis=1, keepdims=True))
            assert_close(got[5], (av * (1.5 / np.maximum(rows, 1.5))).astype(np.float32))
            if scale > 1:
                assert_close(np.float64(np.sqrt(np.sum(got[0].astype(np.float64) ** 2) + np.sum(got[1] ** 2))),
                             np.float64(2.0), rtol=1e-6)
                assert rows[0, 0] < 1.5 < rows[1, 0]
                assert_close(got[5][0], av[0])


# ---------------------------------------------------------------------------------------------
# Global step, slots, reads before writes
# ---------------------------------------------------------------------------------------------
def test_get_or_create_global_step(graph):
    assert gc.train.get_global_step() is None
    with gc.name_scope("outer"):
        step = gc.train.get_or_create_global_step()
    assert gc.train.get_or_create_global_step() is step
    assert gc.train.get_or_create_global_step(graph) is step
    assert gc.train.get_global_step() is step
    assert step.dtype is gc.int64 and step.shape == ()
    assert step.var_name == "global_step" and step.name == "global_step:0"
    assert not step.trainable
    assert step in gc.global_variables() and step not in gc.trainable_variables()
    other = gc.Graph()
    other_step = gc.train.get_or_create_global_step(other)
    assert other_step is not step and other_step.graph is other


def test_global_step_counts_runs(graph, device):
    v = gc.Variable(np.array([1.0, -2.0], np.float32), name="v")
    loss = gc.reduce_sum(gc.square(v))
    step = gc.train.get_or_create_global_step()
    train = gc.train.SGD(0.1).minimize(loss, global_step=step)
    untracked = gc.train.SGD(0.1).minimize(loss)  # no global_step: does not count
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())
        assert sess.run(step) == 0
        for i in range(1, 4):
            sess.run(train)
            assert sess.run(step) == i
        sess.run(untracked)
        assert sess.run(step) == 3
        value = sess.run(step)
        assert value.dtype == np.int64
        assert_close(sess.run(v), (np.array([1.0, -2.0], np.float32) * np.float32(0.8) ** 4).astype(np.float32))


def test_slot_variables_are_global_not_trainable_and_named(graph, device):
    with gc.name_scope("layer"):
        W = gc.Variable(W0, name="W")
    b = gc.Variable(B0, name="b")
    loss = gc.reduce_sum(gc.cast(gc.square(W), gc.float64)) + gc.reduce_sum(gc.square(b))
    adam = gc.train.Adam(0.1)
    rms = gc.train.RMSProp(0.1, centered=True)
    mom = gc.train.Momentum(0.1, name="Heavy")
    delta = gc.train.Adadelta(1.0)
    grad = gc.train.AdagradOptimizer(0.1)
    train = gc.group(adam.minimize(loss), rms.minimize(loss), mom.minimize(loss, var_list=[b]),
                     delta.minimize(loss, var_list=[b]), grad.minimize(loss, var_list=[W]))
    assert W.var_name == "layer/W"
    assert adam.get_slot(W, "m").var_name == "layer/W/Adam"
    assert adam.get_slot(W, "v").var_name == "layer/W/Adam_1"
    assert adam.get_slot(b, "m").var_name == "b/Adam"
    assert rms.get_slot(b, "rms").var_name == "b/RMSProp"
    assert rms.get_slot(b, "momentum").var_name == "b/RMSProp_1"
    assert rms.get_slot(b, "mg").var_name == "b/RMSProp_2"
    assert mom.get_slot(b, "momentum").var_name == "b/Heavy"
    assert mom.get_slot(W, "momentum") is None  # W was not in its var_list
    assert delta.get_slot(b, "accum").var_name == "b/Adadelta"
    assert delta.get_slot(b, "accum_update").var_name == "b/Adadelta_1"
    assert grad.get_slot(W, "accumulator").var_name == "layer/W/Adagrad"
    assert adam.get_slot(W, "nonexistent") is None
    assert gc.train.Adam(amsgrad=True).get_slot_names() == ["m", "v", "vhat"]
    assert gc.train.RMSProp(0.1).get_slot_names() == ["rms", "momentum"]
    assert adam.get_name() == "Adam" and mom.get_name() == "Heavy"

    slots = adam.variables() + rms.variables() + mom.variables() + delta.variables() + grad.variables()
    assert len({id(s) for s in slots}) == len(slots) == 2 * 2 + 1 + 3 * 2 + 1 + 2 + 1  # Adam's + its step counter
    for s in slots:
        assert s in gc.global_variables(), s.var_name
        assert s not in gc.trainable_variables(), s.var_name
        assert not s.trainable
    assert gc.trainable_variables() == [W, b]
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())  # covers the slots
        sess.run(train)
        m_W = sess.run(adam.get_slot(W, "m"))
    assert_close(m_W, np.float32(0.1) * (2 * W0))  # (1 - beta1) * g after one step


def test_tf1_aliases():
    assert gc.train.GradientDescentOptimizer is gc.train.GradientDescent is gc.train.SGD
    assert gc.train.MomentumOptimizer is gc.train.Momentum
    assert gc.train.AdagradOptimizer is gc.train.Adagrad
    assert gc.train.AdadeltaOptimizer is gc.train.AdaDelta is gc.train.Adadelta
    assert gc.train.RMSPropOptimizer is gc.train.RMSProp
    assert gc.train.AdamOptimizer is gc.train.Adam
    for cls in (gc.train.SGD, gc.train.Momentum, gc.train.Adagrad, gc.train.AdaDelta, gc.train.RMSProp,
                gc.train.Adam):
        assert issubclass(cls, gc.train.Optimizer)


def test_run_reports_the_loss_before_the_update(graph, device):
    v = gc.Variable(np.array([3.0, -1.0]), name="v")  # float64
    loss = gc.reduce_sum(gc.square(v))
    train = gc.train.GradientDescent(0.25).minimize(loss)
    expected = np.array([3.0, -1.0])
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())
        for _ in range(4):
            _, got_loss, got_v = sess.run([train, loss, v])
            assert_close(got_loss, np.float64(np.sum(expected ** 2)))
            assert_close(got_v, expected)
            expected = expected * 0.5  # v -= 0.25 * 2v
        assert_close(sess.run(v), expected)
        assert_close(sess.run(loss), np.float64(np.sum(expected ** 2)))


# ---------------------------------------------------------------------------------------------
# var_list, unconnected variables, no gradients
# ---------------------------------------------------------------------------------------------
def test_var_list_and_unconnected_variables(graph, device):
    W = gc.Variable(W0, name="W")
    b = gc.Variable(B0, name="b")
    unused = gc.Variable(np.ones(3, np.float32), name="unused")
    x = gc.constant(X)
    loss = gc.reduce_sum(gc.square(gc.cast(gc.matmul(x, W), gc.float64) + b - Y))

    pairs = gc.train.SGD(0.01).compute_gradients(loss)
    assert [v for _, v in pairs] == [W, b, unused]
    assert pairs[2][0] is None and pairs[0][0] is not None and pairs[1][0] is not None

    only_W = gc.train.SGD(0.01).minimize(loss, var_list=[W])
    mom = gc.train.Momentum(0.01, momentum=0.9)
    all_vars = mom.minimize(loss)  # 'unused' has no gradient: skipped, no slot for it
    assert mom.get_slot(unused, "momentum") is None
    assert mom.get_slot(W, "momentum") is not None

    r = (X @ W0).astype(np.float64) + B0 - Y
    gW = X.T @ (2 * r).astype(np.float32)
    gb = np.sum(2 * r, axis=0)
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())
        sess.run(only_W)
        got_W, got_b, got_u = sess.run([W, b, unused])
        assert_close(got_W, W0 - np.float32(0.01) * gW)
        assert_close(got_b, B0)  # not in var_list
        assert_close(got_u, np.ones(3, np.float32))

        sess.run(gc.global_variables_initializer())
        sess.run(all_vars)
        got_W, got_b, got_u = sess.run([W, b, unused])
        assert_close(got_W, W0 - np.float32(0.01) * gW)
        assert_close(got_b, B0 - 0.01 * gb, rtol=1e-6)  # gb goes through the float32 x @ W
        assert_close(got_u, np.ones(3, np.float32))


def test_no_gradients_error_names_the_variables(graph):
    W = gc.Variable(W0, name="W")
    c = gc.Variable(np.zeros(2), name="c")
    x = gc.placeholder(gc.float32, (3,), name="x")
    loss = gc.reduce_sum(gc.square(x))  # depends on no variable
    with pytest.raises(gc.train.NoGradientsError) as err:
        gc.train.Adam(0.1).minimize(loss)
    assert isinstance(err.value, gc.GraphcError) and isinstance(err.value, ValueError)
    message = str(err.value)
    assert "'W'" in message and "'c'" in message and THIS_FILE in message

    with pytest.raises(gc.train.NoGradientsError, match="'c'"):
        gc.train.SGD(0.1).apply_gradients([(None, c)])

    blocked = gc.reduce_sum(gc.square(gc.stop_gradient(W.value())))
    with pytest.raises(gc.train.NoGradientsError, match="'W'"):
        gc.train.Momentum(0.1).minimize(blocked, var_list=[W])

    with pytest.raises(TypeError, match="gc.Variable"):
        gc.train.SGD(0.1).apply_gradients([(x, x)])


def test_compute_gradients_without_trainable_variables(graph):
    frozen = gc.Variable(np.ones(2), name="frozen", trainable=False)
    loss = gc.reduce_sum(gc.square(frozen))
    with pytest.raises(gc.train.NoGradientsError, match="no trainable variables") as err:
        gc.train.SGD(0.1).compute_gradients(loss)
    assert isinstance(err.value, gc.GraphcError)
    with pytest.raises(gc.train.NoGradientsError):
        gc.train.RMSProp(0.1).minimize(loss)
    with pytest.raises(gc.train.NoGradientsError):
        gc.train.SGD(0.1).minimize(loss, var_list=[])

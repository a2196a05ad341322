"""graphc.keras numerics: every loss, metric and activation against independent NumPy code
(one session run per device), the stable cross-entropy paths through softmax and sigmoid
outputs, every optimizer step by step against NumPy code of Keras 2.2.4's update rules, the
optimizers' variables, configs and errors, and the regularizers and initializers."""
import json

import numpy as np
import pytest

import graphc as gc
from graphc.keras import activations, backend, initializers, losses, metrics, optimizers, regularizers
from support import DEVICES, Feeds, assert_close, build_error

EPS = 1e-7
rng = np.random.default_rng(7)
TRUE = rng.uniform(0, 1, (4, 3))
PRED = rng.uniform(0.05, 0.95, (4, 3))
LOGITS = rng.standard_normal((4, 3)) * 2
ONEHOT = np.eye(3)[[0, 2, 1, 2]]
SPARSE = np.array([0, 2, 1, 2])
SIGNS = 2 * ONEHOT - 1
BINARY = np.round(TRUE)
X = np.linspace(-3, 3, 12).reshape(3, 4)
HUGE = np.array([[1e4, -1e4, 0.0], [-3e4, 2e4, 2e4], [5.0, 1e5, -1e5], [0.0, 0.0, 0.0]])


def _logsumexp(z):
    m = z.max(-1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(-1, keepdims=True)))[..., 0]


def _softmax(z):
    return np.exp(z - _logsumexp(z)[..., None])


def _sigmoid_ce(labels, z):
    return np.maximum(z, 0) - z * labels + np.log1p(np.exp(-np.abs(z)))


def _np_categorical_ce(t, p):
    p = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -(t * np.log(p)).sum(-1)


def _np_sparse_ce_of_probabilities(labels, p):
    # Keras: log of the clipped probabilities through the sparse softmax cross-entropy
    return _logsumexp(np.log(np.clip(p, EPS, 1 - EPS))) - np.log(np.clip(p, EPS, 1 - EPS))[np.arange(4), labels]


def _np_binary_ce(t, p):
    p = np.clip(p, EPS, 1 - EPS)
    return (-(t * np.log(p) + (1 - t) * np.log(1 - p))).mean(-1)


def _unit(x):
    return x / np.sqrt(np.maximum((x * x).sum(-1, keepdims=True), 1e-12))


def _in_top_k(pred, labels, k):
    # TF's in_top_k: the label's score is among the k largest (ties count as in)
    return np.array([(row > row[label]).sum() < k for row, label in zip(pred, labels)])


class Inputs(Feeds):
    """The test arrays as placeholders (fed, so that compiled backends compute the cases
    rather than fold them into constants), each made on first use."""

    ARRAYS = dict(TRUE=TRUE, PRED=PRED, LOGITS=LOGITS, ONEHOT=ONEHOT, SPARSE=SPARSE, SIGNS=SIGNS, BINARY=BINARY,
                  HUGE=HUGE, X=X, SPARSE_COLUMN=SPARSE[:, None], SPARSE_COLUMN_FLOAT=SPARSE[:, None].astype(np.float64))

    def __getattr__(self, name):
        if name not in self.ARRAYS:
            raise AttributeError(name)
        placeholder = self(self.ARRAYS[name])
        setattr(self, name, placeholder)
        return placeholder


# name -> (builder of the graph tensor from the Inputs, NumPy value)
LOSS_CASES = {
    "mean_squared_error": (lambda i: losses.mean_squared_error(i.TRUE, i.PRED), ((PRED - TRUE) ** 2).mean(-1)),
    "mse": (lambda i: losses.get("mse")(i.TRUE, i.PRED), ((PRED - TRUE) ** 2).mean(-1)),
    "mean_absolute_error": (lambda i: losses.mae(i.TRUE, i.PRED), np.abs(PRED - TRUE).mean(-1)),
    "mean_absolute_percentage_error": (
        lambda i: losses.MAPE(i.TRUE - 0.5, i.PRED),
        100 * (np.abs(TRUE - 0.5 - PRED) / np.maximum(np.abs(TRUE - 0.5), EPS)).mean(-1)),
    "mean_squared_logarithmic_error": (
        lambda i: losses.msle(i.TRUE, i.PRED - 0.5),
        ((np.log(np.maximum(PRED - 0.5, EPS) + 1) - np.log(np.maximum(TRUE, EPS) + 1)) ** 2).mean(-1)),
    "squared_hinge": (lambda i: losses.squared_hinge(i.SIGNS, i.LOGITS), (np.maximum(1 - SIGNS * LOGITS, 0) ** 2).mean(-1)),
    "hinge": (lambda i: losses.hinge(i.SIGNS, i.LOGITS), np.maximum(1 - SIGNS * LOGITS, 0).mean(-1)),
    "categorical_hinge": (
        lambda i: losses.categorical_hinge(i.ONEHOT, i.LOGITS),
        np.maximum(0, ((1 - ONEHOT) * LOGITS).max(-1) - (ONEHOT * LOGITS).sum(-1) + 1)),
    "logcosh": (lambda i: losses.logcosh(i.TRUE, i.LOGITS), np.log(np.cosh(LOGITS - TRUE)).mean(-1)),
    "categorical_crossentropy": (lambda i: losses.categorical_crossentropy(i.ONEHOT, i.PRED),
                                 _np_categorical_ce(ONEHOT, PRED)),
    "categorical_crossentropy/soft labels": (lambda i: losses.categorical_crossentropy(i.TRUE, i.PRED),
                                             _np_categorical_ce(TRUE, PRED)),
    "categorical_crossentropy/from_logits": (
        lambda i: losses.categorical_crossentropy(i.ONEHOT, i.LOGITS, from_logits=True),
        _logsumexp(LOGITS) - (ONEHOT * LOGITS).sum(-1)),
    "sparse_categorical_crossentropy/(batch,)": (
        lambda i: losses.sparse_categorical_crossentropy(i.SPARSE, i.PRED), _np_sparse_ce_of_probabilities(SPARSE, PRED)),
    "sparse_categorical_crossentropy/(batch,1) float": (
        lambda i: losses.sparse_categorical_crossentropy(i.SPARSE_COLUMN_FLOAT, i.PRED),
        _np_sparse_ce_of_probabilities(SPARSE, PRED)),
    "sparse_categorical_crossentropy/from_logits": (
        lambda i: losses.sparse_categorical_crossentropy(i.SPARSE_COLUMN, i.LOGITS, from_logits=True),
        _logsumexp(LOGITS) - LOGITS[np.arange(4), SPARSE]),
    "binary_crossentropy": (lambda i: losses.binary_crossentropy(i.BINARY, i.PRED), _np_binary_ce(BINARY, PRED)),
    "binary_crossentropy/from_logits": (lambda i: losses.binary_crossentropy(i.TRUE, i.LOGITS, from_logits=True),
                                        _sigmoid_ce(TRUE, LOGITS).mean(-1)),
    "kullback_leibler_divergence": (
        lambda i: losses.kld(i.ONEHOT, i.PRED),
        (np.clip(ONEHOT, EPS, 1) * np.log(np.clip(ONEHOT, EPS, 1) / PRED)).sum(-1)),
    "poisson": (lambda i: losses.poisson(i.TRUE, i.PRED), (PRED - TRUE * np.log(PRED + EPS)).mean(-1)),
    "cosine_proximity": (lambda i: losses.cosine(i.TRUE, i.LOGITS), -(_unit(TRUE) * _unit(LOGITS)).sum(-1)),
    # the stable paths: a softmax / sigmoid output is read through its logits
    "categorical_crossentropy/softmax of huge logits": (
        lambda i: losses.categorical_crossentropy(i.ONEHOT, activations.softmax(i.HUGE)),
        _logsumexp(HUGE) - (ONEHOT * HUGE).sum(-1)),
    "sparse_categorical_crossentropy/softmax of huge logits": (
        lambda i: losses.sparse_categorical_crossentropy(i.SPARSE, activations.softmax(i.HUGE)),
        _logsumexp(HUGE) - HUGE[np.arange(4), SPARSE]),
    "binary_crossentropy/sigmoid of huge logits": (
        lambda i: losses.binary_crossentropy(i.BINARY, activations.sigmoid(i.HUGE)),
        _sigmoid_ce(BINARY, HUGE).mean(-1)),
}

METRIC_CASES = {
    "binary_accuracy": (lambda i: metrics.binary_accuracy(i.BINARY, i.PRED), (BINARY == (PRED > 0.5)).mean(-1)),
    "binary_accuracy/threshold": (lambda i: metrics.binary_accuracy(i.BINARY, i.PRED, threshold=0.3),
                                  (BINARY == (PRED > 0.3)).mean(-1)),
    "categorical_accuracy": (lambda i: metrics.categorical_accuracy(i.ONEHOT, i.PRED),
                             (ONEHOT.argmax(-1) == PRED.argmax(-1)).astype(np.float64)),
    "sparse_categorical_accuracy/(batch,)": (lambda i: metrics.sparse_categorical_accuracy(i.SPARSE, i.PRED),
                                             (SPARSE == PRED.argmax(-1)).astype(np.float64)),
    "sparse_categorical_accuracy/(batch,1) float": (
        lambda i: metrics.sparse_categorical_accuracy(i.SPARSE_COLUMN_FLOAT, i.PRED),
        (SPARSE == PRED.argmax(-1)).astype(np.float64)),
    "top_k_categorical_accuracy": (lambda i: metrics.top_k_categorical_accuracy(i.ONEHOT, i.PRED, k=2),
                                   np.float64(_in_top_k(PRED, SPARSE, 2).mean())),
    "sparse_top_k_categorical_accuracy": (
        lambda i: metrics.sparse_top_k_categorical_accuracy(i.SPARSE_COLUMN, i.PRED, k=1),
        np.float64(_in_top_k(PRED, SPARSE, 1).mean())),
    "metric by a loss's name": (lambda i: metrics.get("mae")(i.TRUE, i.PRED), np.abs(PRED - TRUE).mean(-1)),
}

ACTIVATION_CASES = {
    "relu": (lambda i: activations.relu(i.X), np.maximum(X, 0)),
    "relu/leaky capped": (lambda i: activations.relu(i.X, alpha=0.1, max_value=2.0),
                          np.minimum(np.maximum(X, 0), 2.0) + 0.1 * np.minimum(X, 0)),
    "softmax": (lambda i: activations.softmax(i.X), _softmax(X)),
    "softmax/axis 0": (lambda i: activations.softmax(i.X, axis=0), _softmax(X.T).T),
    "elu": (lambda i: activations.get("elu")(i.X), np.where(X > 0, X, np.expm1(X))),
    "selu": (lambda i: activations.selu(i.X),
             1.0507009873554805 * np.where(X > 0, X, 1.6732632423543772 * np.expm1(X))),
    "softplus": (lambda i: activations.softplus(i.X), np.log1p(np.exp(X))),
    "softsign": (lambda i: activations.softsign(i.X), X / (1 + np.abs(X))),
    "tanh": (lambda i: activations.tanh(i.X), np.tanh(X)),
    "sigmoid": (lambda i: activations.sigmoid(i.X), 1 / (1 + np.exp(-X))),
    "hard_sigmoid": (lambda i: activations.hard_sigmoid(i.X), np.clip(0.2 * X + 0.5, 0, 1)),
    "exponential": (lambda i: activations.exponential(i.X), np.exp(X)),
    "linear": (lambda i: activations.get(None)(i.X), X),
    "regularizer l1": (lambda i: regularizers.l1(0.3)(i.X), 0.3 * np.abs(X).sum()),
    "regularizer l2": (lambda i: regularizers.get("l2")(i.X), 0.01 * (X ** 2).sum()),
    "regularizer l1_l2": (lambda i: regularizers.l1_l2(0.2, 0.5)(i.X),
                          0.2 * np.abs(X).sum() + 0.5 * (X ** 2).sum()),
}


@pytest.mark.parametrize("device", DEVICES)
def test_losses_metrics_and_activations_against_numpy(device):
    tables = {**LOSS_CASES, **METRIC_CASES, **ACTIVATION_CASES}
    with gc.Graph().as_default():
        inputs = Inputs()
        fetches = {name: build(inputs) for name, (build, _) in tables.items()}
        with gc.Session(device=device) as sess:
            out = sess.run(fetches, inputs.feed_dict)
    for name, (_, expected) in tables.items():
        assert np.all(np.isfinite(out[name])), f"{name}: {out[name]}"
        try:
            assert_close(out[name], np.asarray(expected, np.float64), rtol=1e-9, atol=1e-12)
        except AssertionError as e:
            raise AssertionError(f"case {name!r}: {e}") from None


def _ops_of_type(graph, op_type):
    return [op for op in graph.get_operations() if op.type == op_type]


def test_cross_entropy_of_a_softmax_or_sigmoid_output_uses_the_fused_op_on_the_logits():
    with gc.Graph().as_default() as graph:
        logits = gc.placeholder(gc.float32, (None, 3))
        loss = losses.categorical_crossentropy(ONEHOT, activations.softmax(logits))
        assert loss.op.type == "softmax_cross_entropy_with_logits" and loss.op.inputs[1] is logits
        sparse = losses.sparse_categorical_crossentropy(SPARSE, activations.softmax(logits))
        assert sparse.op.type == "sparse_softmax_cross_entropy_with_logits" and sparse.op.inputs[1] is logits
        # a softmax over another axis is not the classes' softmax: the clipped path
        other = losses.categorical_crossentropy(ONEHOT, activations.softmax(logits, axis=0))
        assert other.op.type != "softmax_cross_entropy_with_logits"
        before = {op.name for op in _ops_of_type(graph, "log")}
        binary = losses.binary_crossentropy(BINARY, activations.sigmoid(logits))
        assert not {op.name for op in _ops_of_type(graph, "log")} - before, "the sigmoid's output was clipped"
        assert logits in [t for op in graph.get_operations() for t in op.inputs if op.type == "relu"]
        assert tuple(binary.shape) == (4,)


def test_sparse_labels_that_cannot_fit_the_predictions_name_the_loss_the_shapes_and_the_line():
    with gc.Graph().as_default():
        pred = gc.placeholder(gc.float32, (4, 3))
        build_error(ValueError, lambda: losses.sparse_categorical_crossentropy(ONEHOT, pred),
                    "sparse_categorical_crossentropy", "(4, 3)", "(4,)")
        build_error(ValueError, lambda: losses.sparse_categorical_crossentropy(np.zeros(5, np.int64), pred),
                    "sparse_categorical_crossentropy", "(5,)", "(4, 3)")


@pytest.mark.parametrize("module, kind", [(losses, "loss"), (metrics, "metric"), (optimizers, "optimizer"),
                                          (activations, "activation"), (regularizers, "regularizer"),
                                          (initializers, "initializer")])
def test_unknown_names_list_the_valid_ones(module, kind):
    build_error(ValueError, lambda: module.get("no_such_thing"), f"unknown {kind}", "'no_such_thing'")


def test_name_resolution_and_serialization():
    assert losses.get("mse") is losses.mean_squared_error and losses.get("KLD") is losses.kld
    assert losses.serialize(losses.mse) == "mean_squared_error"
    assert losses.get(losses.hinge) is losses.hinge
    sparse_ce, binary_ce = losses.sparse_categorical_crossentropy, "binary_crossentropy"
    for name in ("acc", "accuracy"):
        assert metrics.get(name, loss="categorical_crossentropy", output_shape=(None, 3)) is \
            metrics.categorical_accuracy
        assert metrics.get(name, loss=sparse_ce, output_shape=(None, 3)) is metrics.sparse_categorical_accuracy
        assert metrics.get(name, loss=binary_ce, output_shape=(None, 3)) is metrics.binary_accuracy
        assert metrics.get(name, loss="mse", output_shape=(None, 1)) is metrics.binary_accuracy
    assert metrics.get("ce", loss=sparse_ce, output_shape=(None, 3)) is losses.sparse_categorical_crossentropy
    assert metrics.get("crossentropy", loss="mse", output_shape=(None, 5)) is losses.categorical_crossentropy
    assert metrics.get("ce", loss="mse", output_shape=(None, 1)) is losses.binary_crossentropy
    assert [metrics.metric_name(m) for m in ("acc", "accuracy", "mse", metrics.top_k_categorical_accuracy)] == \
        ["acc", "acc", "mean_squared_error", "top_k_categorical_accuracy"]
    assert activations.get("relu") is activations.relu and activations.serialize(activations.selu) == "selu"
    build_error(ValueError, lambda: activations.softmax(gc.constant([1.0, 2.0])), "rank >= 2", "(2,)")


# ---------------------------------------------------------------------------------------------
# Optimizers: NumPy code of Keras 2.2.4's rules, in float64. ``lr`` is read from a float32
# Variable, so the rules start from the float32 rounding of the rate.
# ---------------------------------------------------------------------------------------------
def _f32(x):
    return float(np.float32(x))


class NpKeras:
    def __init__(self, kind, **cfg):
        self.kind, self.cfg = kind, cfg
        self.lr = _f32(cfg["lr"])
        self.iterations = 0
        self.m_schedule = 1.0
        self.state = {}

    def step(self, params, grads):
        c, t = self.cfg, self.iterations + 1
        lr = self.lr
        if c.get("decay", 0) > 0:
            lr = lr * (1.0 / (1.0 + c["decay"] * self.iterations))
        eps = c.get("epsilon", EPS)
        if self.kind == "Nadam":
            sd, b1 = c.get("schedule_decay", 0.004), c.get("beta_1", 0.9)
            cache_t = b1 * (1 - 0.5 * 0.96 ** (t * sd))
            cache_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * sd))
            schedule_new = self.m_schedule * cache_t
            schedule_next = schedule_new * cache_next
            self.m_schedule = schedule_new
        new = []
        for i, (p, g) in enumerate(zip(params, grads)):
            s = self.state.setdefault(i, {k: np.zeros_like(p) for k in ("a", "b", "c")})
            if self.kind == "SGD":
                mom = c.get("momentum", 0.0)
                s["a"] = mom * s["a"] - lr * g
                p = p + mom * s["a"] - lr * g if c.get("nesterov") else p + s["a"]
            elif self.kind == "RMSprop":
                rho = c.get("rho", 0.9)
                s["a"] = rho * s["a"] + (1 - rho) * g * g
                p = p - lr * g / (np.sqrt(s["a"]) + eps)
            elif self.kind == "Adagrad":
                s["a"] = s["a"] + g * g
                p = p - lr * g / (np.sqrt(s["a"]) + eps)
            elif self.kind == "Adadelta":
                rho = c.get("rho", 0.95)
                s["a"] = rho * s["a"] + (1 - rho) * g * g
                update = g * np.sqrt(s["b"] + eps) / np.sqrt(s["a"] + eps)
                p = p - lr * update
                s["b"] = rho * s["b"] + (1 - rho) * update * update
            elif self.kind == "Adam":
                b1, b2 = c.get("beta_1", 0.9), c.get("beta_2", 0.999)
                lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                s["a"] = b1 * s["a"] + (1 - b1) * g
                s["b"] = b2 * s["b"] + (1 - b2) * g * g
                v = s["b"]
                if c.get("amsgrad"):
                    s["c"] = v = np.maximum(s["c"], s["b"])
                p = p - lr_t * s["a"] / (np.sqrt(v) + eps)
            elif self.kind == "Adamax":
                b1, b2 = c.get("beta_1", 0.9), c.get("beta_2", 0.999)
                s["a"] = b1 * s["a"] + (1 - b1) * g
                s["b"] = np.maximum(b2 * s["b"], np.abs(g))
                p = p - lr / (1 - b1 ** t) * s["a"] / (s["b"] + eps)
            elif self.kind == "Nadam":
                b1, b2 = c.get("beta_1", 0.9), c.get("beta_2", 0.999)
                g_prime = g / (1 - schedule_new)
                s["a"] = b1 * s["a"] + (1 - b1) * g
                s["b"] = b2 * s["b"] + (1 - b2) * g * g
                m_bar = (1 - cache_t) * g_prime + cache_next * s["a"] / (1 - schedule_next)
                p = p - self.lr * m_bar / (np.sqrt(s["b"] / (1 - b2 ** t)) + eps)
            new.append(p)
        self.iterations += 1
        return new


OPTIMIZER_CASES = [
    ("SGD", {}, {"lr": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}, None),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True, "decay": 0.1}, {"lr": 0.1}),
    ("RMSprop", {}, {"lr": 0.001}),
    ("RMSprop", {"lr": 0.01, "rho": 0.8, "decay": 0.05}, None),
    ("Adagrad", {"lr": 0.1}, None),
    ("Adadelta", {}, {"lr": 1.0}),
    ("Adam", {"lr": 0.01}, None),
    ("Adam", {"lr": 0.01, "amsgrad": True, "decay": 0.01}, None),
    ("Adamax", {}, {"lr": 0.002}),
    ("Nadam", {"lr": 0.01}, None),
]
P0 = [rng.standard_normal(3), rng.standard_normal((2, 2))]
# gradients that shrink and flip sign, so that AMSGrad's running max, Adamax's infinity norm
# and the momentum terms all matter
GRAD_STEPS = [[rng.standard_normal(3) * s, rng.standard_normal((2, 2)) * s] for s in (3.0, 0.2, 1.0, 0.05)]


@pytest.mark.parametrize("device", DEVICES)
def test_every_optimizer_follows_keras_update_rules(device):
    with gc.Graph().as_default():
        grads = [gc.placeholder(gc.float64, p.shape) for p in P0]
        runs = []
        for kind, kwargs, np_extra in OPTIMIZER_CASES:
            opt = getattr(optimizers, kind)(**kwargs)
            params = [gc.Variable(p.copy(), name=f"p{i}") for i, p in enumerate(P0)]
            train = opt.apply_gradients(list(zip(grads, params)))
            cfg = {k: v for k, v in kwargs.items() if k != "learning_rate"}
            runs.append((opt, params, train, NpKeras(kind, **{**cfg, **(np_extra or {})})))
        with gc.Session(device=device) as sess:
            sess.run(gc.global_variables_initializer())
            np_params = [[p.copy() for p in P0] for _ in runs]
            for step, g in enumerate(GRAD_STEPS):
                sess.run([r[2] for r in runs], {grads[0]: g[0], grads[1]: g[1]})
                got = sess.run([r[1] for r in runs])
                for i, (opt, _, _, reference) in enumerate(runs):
                    np_params[i] = reference.step(np_params[i], g)
                    for actual, expected in zip(got[i], np_params[i]):
                        try:
                            assert_close(actual, expected, rtol=1e-9, atol=1e-12)
                        except AssertionError as e:
                            raise AssertionError(f"{OPTIMIZER_CASES[i][:2]} step {step + 1}: {e}") from None
            assert sess.run([r[0].iterations for r in runs]) == [len(GRAD_STEPS)] * len(runs)


@pytest.mark.parametrize("device", DEVICES)
def test_minimize_and_a_learning_rate_set_between_steps(device):
    """minimize on a quadratic; set_value(opt.lr) changes the next step and compiles nothing."""
    target = np.array([1.0, -2.0, 0.5])
    with gc.Graph().as_default() as graph:
        x = gc.Variable(np.zeros(3), name="x")
        loss = gc.reduce_sum(gc.square(x - target))
        opt = optimizers.SGD(lr=0.1, momentum=0.5)
        train = opt.minimize(loss)
        assert opt.lr.graph is graph and opt.iterations.var_name == "SGD/iterations"
        assert opt.lr.dtype == gc.float32 and not opt.lr.trainable
        assert opt.iterations.dtype == gc.int64
        sess = gc.Session(graph=graph, device=device)
        backend.set_session(sess)
        sess.run(gc.global_variables_initializer())
        reference = NpKeras("SGD", lr=0.1, momentum=0.5)
        expected = [np.zeros(3)]
        sess.run(train)
        expected = reference.step(expected, [2 * (expected[0] - target)])
        assert_close(backend.get_value(x), expected[0], rtol=1e-9, atol=1e-12)
        assert backend.get_value(opt.lr) == np.float32(0.1)
        compiled = len(sess._executables)  # the training step and the two reads
        backend.set_value(opt.lr, 0.5)
        reference.lr = _f32(0.5)
        for _ in range(2):
            sess.run(train)
            expected = reference.step(expected, [2 * (expected[0] - target)])
        assert_close(backend.get_value(x), expected[0], rtol=1e-9, atol=1e-12)
        assert backend.get_value(opt.lr) == np.float32(0.5)
        assert len(sess._executables) == compiled, "changing the rate compiled a new program"
        sess.close()


def test_optimizer_variables_weights_and_the_one_graph_rule():
    with gc.Graph().as_default() as graph:
        x, w = gc.Variable(np.zeros(3), name="x"), gc.Variable(np.zeros((2, 2)), name="w")
        loss = gc.reduce_sum(gc.square(x)) + gc.reduce_sum(gc.square(w))
        adam, nadam = optimizers.Adam(), optimizers.Nadam()
        adam.minimize(loss, var_list=[x, w])
        nadam.minimize(loss, var_list=[x, w])
        assert adam.weights == [adam.iterations, adam.get_slot(x, "m"), adam.get_slot(w, "m"),
                                adam.get_slot(x, "v"), adam.get_slot(w, "v")]
        assert [v.var_name for v in nadam.weights[:2]] == ["Nadam/iterations", "Nadam/m_schedule"]
        assert len(nadam.weights) == 6
        backend.set_session(gc.Session(graph=graph, device="reference"))
        values = [np.full(tuple(v.shape), i + 1, v.dtype.np) for i, v in enumerate(adam.weights)]
        adam.set_weights(values)
        for got, want in zip(adam.get_weights(), values):
            assert_close(got, want)
        build_error(ValueError, lambda: adam.set_weights(values[:2]), "expected 5 arrays", "got 2")
    with gc.Graph().as_default():
        y = gc.Variable(np.zeros(2), name="y")
        build_error(ValueError, lambda: adam.minimize(gc.reduce_sum(y)), "Adam", "graph")
    with gc.Graph().as_default() as fresh:
        assert optimizers.RMSprop().lr.graph is fresh  # made in the default graph on first access


def test_optimizer_names_configs_and_serialization():
    defaults = {"sgd": {"lr": 0.01, "momentum": 0.0, "decay": 0.0, "nesterov": False},
                "rmsprop": {"lr": 0.001, "rho": 0.9, "decay": 0.0, "epsilon": 1e-7},
                "adagrad": {"lr": 0.01, "decay": 0.0, "epsilon": 1e-7},
                "adadelta": {"lr": 1.0, "rho": 0.95, "decay": 0.0, "epsilon": 1e-7},
                "adam": {"lr": 0.001, "beta_1": 0.9, "beta_2": 0.999, "decay": 0.0, "epsilon": 1e-7,
                         "amsgrad": False},
                "adamax": {"lr": 0.002, "beta_1": 0.9, "beta_2": 0.999, "decay": 0.0, "epsilon": 1e-7},
                "nadam": {"lr": 0.002, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "schedule_decay": 0.004}}
    for name, config in defaults.items():
        opt = optimizers.get(name)
        assert opt.get_config() == config, name
        again = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(opt))))
        assert type(again) is type(opt) and again.get_config() == config
    custom = optimizers.Adam(learning_rate=0.05, amsgrad=True, clipnorm=1.0)
    assert optimizers.Adam.from_config(custom.get_config()).get_config() == custom.get_config()
    assert custom.get_config()["lr"] == 0.05 and custom.get_config()["clipnorm"] == 1.0
    plain = gc.train.GradientDescent(0.1)
    assert optimizers.get(plain) is plain and optimizers.get(custom) is custom
    assert optimizers.get("Adam").__class__ is optimizers.Adam


# ---------------------------------------------------------------------------------------------
# Initializers and regularizers
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_initializer_values_and_statistics(device):
    fan_in, fan_out = 100, 60
    with gc.Graph().as_default():
        made = {
            "zeros": initializers.get("zeros")((2, 3)),
            "ones": initializers.Ones()((2, 3), "float64"),
            "constant": initializers.Constant(2.5)((2, 3)),
            "normal": initializers.RandomNormal(seed=1)((fan_in, fan_out)),
            "uniform": initializers.get("random_uniform")((fan_in, fan_out)),
            "truncated": initializers.TruncatedNormal(seed=2)((fan_in, fan_out)),
            "glorot_uniform": initializers.get("glorot_uniform")((fan_in, fan_out)),
            "he_normal": initializers.he_normal(seed=3)((fan_in, fan_out)),
            "lecun_uniform": initializers.lecun_uniform()((3, 3, 20, fan_out)),
            "orthogonal": initializers.Orthogonal(gain=2.0, seed=4)((6, 4)),
            "orthogonal again": initializers.Orthogonal(gain=2.0, seed=4)((6, 4)),
            "orthogonal wide": initializers.get("orthogonal")((3, 2, 8)),
            "identity": initializers.Identity(gain=3.0)((3, 3)),
        }
        with gc.Session(device=device) as sess:
            out = sess.run(made)
    assert out["zeros"].dtype == np.float32 and not out["zeros"].any()
    assert out["ones"].dtype == np.float64 and (out["ones"] == 1).all()
    assert (out["constant"] == 2.5).all()
    assert abs(out["normal"].std() - 0.05) < 0.005 and abs(out["normal"].mean()) < 0.005
    assert np.abs(out["uniform"]).max() <= 0.05 and out["uniform"].std() > 0.025
    assert np.abs(out["truncated"]).max() <= 0.1 + 1e-6 and 0.035 < out["truncated"].std() < 0.05
    limit = np.sqrt(6 / (fan_in + fan_out))
    assert np.abs(out["glorot_uniform"]).max() <= limit and out["glorot_uniform"].max() > 0.9 * limit
    assert abs(out["he_normal"].std() - np.sqrt(2 / fan_in)) < 0.1 * np.sqrt(2 / fan_in)
    assert np.abs(out["lecun_uniform"]).max() <= np.sqrt(3 / (9 * 20))
    q = out["orthogonal"]
    assert_close(q.T @ q, 4.0 * np.eye(4, dtype=np.float32), rtol=1e-5, atol=1e-5)
    assert (out["orthogonal again"] == q).all()  # a seed fixes the matrix
    wide = out["orthogonal wide"].reshape(6, 8)
    assert_close(wide @ wide.T, np.eye(6, dtype=np.float32), rtol=1e-5, atol=1e-5)
    assert (out["identity"] == 3.0 * np.eye(3)).all()


def test_initializer_and_regularizer_configs():
    for init in (initializers.Zeros(), initializers.Constant(0.5), initializers.RandomNormal(0.1, 0.2, seed=3),
                 initializers.RandomUniform(-1, 1), initializers.TruncatedNormal(stddev=0.3),
                 initializers.VarianceScaling(2.0, "fan_out", "uniform", seed=9), initializers.Orthogonal(1.5),
                 initializers.Identity(0.5), initializers.glorot_normal(seed=1)):
        config = json.loads(json.dumps(initializers.serialize(init)))
        again = initializers.deserialize(config)
        assert type(again) is type(init) and again.get_config() == init.get_config()
    assert initializers.get("he_uniform").get_config() == {"scale": 2.0, "mode": "fan_in",
                                                           "distribution": "uniform", "seed": None}
    assert initializers.get("random_normal").get_config()["stddev"] == 0.05  # Keras's default, not TF1's 1.0
    build_error(ValueError, lambda: initializers.VarianceScaling(mode="fan_sideways"), "fan_sideways", "fan_in")
    build_error(ValueError, lambda: initializers.Identity()((2, 3)), "square", "(2, 3)")
    for reg in (regularizers.l1(), regularizers.l2(0.5), regularizers.l1_l2(0.1, 0.2)):
        again = regularizers.deserialize(json.loads(json.dumps(regularizers.serialize(reg))))
        assert again.get_config() == reg.get_config()
    assert regularizers.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}
    assert regularizers.get(None) is None

"""The differential fuzzer for graphc.keras: random small Keras models, Sequential stacks and
functional graphs (a trunk that branches and merges with Concatenate/Add/Multiply/Average,
two inputs, two outputs), drawn from Dense (every activation, with or without a bias, with
regularizers), Dropout, BatchNormalization, Activation, Flatten, Reshape, Conv2D, pooling,
DepthwiseConv2D, Conv2DTranspose (channels_last and channels_first), SimpleRNN/LSTM/GRU and
Embedding, compiled with a loss that fits each output, a drawn optimizer and sometimes
metrics. Under one graph seed (the same initial weights and dropout masks everywhere):

  * on every device, predict, two train_on_batch steps (with dropout and batch statistics
    acting), evaluate, predict again, get_weights and the optimizer's weights agree with the
    reference backend (NumPy);
  * predict gives the same result twice (inference is deterministic, Dropout included);
  * the model's config and JSON make a model again, in a fresh graph, with the same layer
    names, classes and output shapes, which with the same weights predicts the same;
  * a saved model, loaded in a fresh graph, predicts the same and takes the same next
    training step (optimizer state and random counters restored).

Dropout trains on every device: its masks are keyed by the graph seed and the op, so they
agree. A model with BatchNormalization trains with SGD or Adadelta only (see draw_plan).

The failing case is printed as the Keras code that builds it. CI runs 9 models (the CI budget; 4 on
the CUDA simulator), about 45 s on 2 workers; GRAPHC_FUZZ_EXAMPLES=50 runs 50 per input kind
(random, not derandomized, shrunk)."""
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import graphc as gc
from graphc import keras
from graphc.keras import layers as L
from support import DEVICES

pytestmark = pytest.mark.timeout(1800)

EXAMPLES = int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "0"))
# Each model compiles three programs per compiled device (and numba compiles its kernels; an
# RNN's loop costs most): a few examples per test, one test per kind of first input, which
# `pytest -n` spreads over its workers. A failing model is printed as code; CI does not spend
# minutes of compiles shrinking it (runs with GRAPHC_FUZZ_EXAMPLES set do).
FUZZ = settings(max_examples=EXAMPLES or 1, deadline=None,
                derandomize=not EXAMPLES, database=None,
                phases=list(Phase) if EXAMPLES else [Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
RTOL, ATOL = 2e-4, 2e-5

ACTIVATIONS = ["relu", "tanh", "sigmoid", "softmax", "elu", "selu", "softplus", "hard_sigmoid", "linear"]
MERGES = ["Concatenate", "Add", "Multiply", "Average"]
OPTIMIZERS = ["sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamax", "nadam",
              ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}), ("SGD", {"lr": 0.1, "momentum": 0.5}),
              ("Adam", {"lr": 0.01, "amsgrad": True}), ("RMSprop", {"lr": 0.01}), ("SGD", {"lr": 0.1, "clipnorm": 0.5})]
SCALED_OPTIMIZERS = ["sgd", "adadelta"] + [o for o in OPTIMIZERS if o[0] == "SGD"]
# loss kind -> (head activations, losses, metrics to draw from)
HEADS = {
    "regression": (["linear", "tanh", "relu", "elu", "softplus", "hard_sigmoid"],
                   ["mse", "mae", "logcosh", "mean_squared_logarithmic_error", "hinge", "squared_hinge",
                    "cosine_proximity"], ["mae", "mse"]),
    "positive": (["softplus", "sigmoid"], ["poisson", "mse"], ["mae"]),
    "categorical": (["softmax"], ["categorical_crossentropy", "kullback_leibler_divergence", "categorical_hinge"],
                    ["accuracy", "categorical_crossentropy"]),
    "binary": (["sigmoid"], ["binary_crossentropy"], ["accuracy", "mse"]),
    "sparse": (["softmax"], ["sparse_categorical_crossentropy"], ["accuracy"]),
}


# -- a model plan: data that builds the same model in any graph, and reads as Keras code ----------------
class Plan:
    """Steps ``(var, class name, kwargs, input vars, listed)``; inputs ``(var, shape, dtype, int
    range)``; outputs; the compile arguments. Drawing builds each layer in a scratch graph, so
    each choice sees the real shapes."""

    def __init__(self, sequential: bool):
        self.sequential = sequential
        self.inputs, self.steps, self.outputs = [], [], []
        self.heads = []  # (output var, loss kind, units)
        self.compile = {}
        self.scratch = gc.Graph()
        self._tensors = {}

    def shape(self, var):
        return tuple(self._tensors[var].shape[1:])

    def add_input(self, shape, dtype="float32", high=None):
        var = f"x{len(self.inputs)}"
        self.inputs.append((var, tuple(shape), dtype, high))
        with self.scratch.as_default():
            self._tensors[var] = keras.Input(shape=shape, dtype=dtype)
        return var

    def add(self, cls, kwargs, sources, listed=False):
        var = f"t{len(self.steps)}"
        self.steps.append((var, cls, kwargs, list(sources), listed))
        with self.scratch.as_default():
            ins = [self._tensors[s] for s in sources]
            self._tensors[var] = _layer(cls, kwargs)(ins if listed else ins[0])
        return var

    def build(self):
        """The model, in the default graph."""
        if self.sequential:
            (var, shape, dtype, _), = self.inputs
            model = keras.Sequential()
            model.add(L.InputLayer(input_shape=shape, dtype=dtype))
            for _, cls, kwargs, _, _ in self.steps:
                model.add(_layer(cls, kwargs))
            return model
        made = {var: keras.Input(shape=shape, dtype=dtype, name=var) for var, shape, dtype, _ in self.inputs}
        for var, cls, kwargs, sources, listed in self.steps:
            ins = [made[s] for s in sources]
            made[var] = _layer(cls, kwargs)(ins if listed else ins[0])
        return keras.Model(inputs=[made[v] for v, *_ in self.inputs], outputs=[made[v] for v in self.outputs])

    def compile_model(self, model):
        c = self.compile
        model.compile(optimizer=_optimizer(c["optimizer"]), loss=c["loss"], metrics=c.get("metrics"),
                      loss_weights=c.get("loss_weights"))

    def describe(self) -> str:
        lines = []
        if self.sequential:
            (var, shape, dtype, _), = self.inputs
            lines.append("model = keras.Sequential()")
            lines.append(f"model.add(L.InputLayer(input_shape={shape}, dtype={dtype!r}))")
            lines += [f"model.add({_code(cls, kwargs)})" for _, cls, kwargs, _, _ in self.steps]
        else:
            lines += [f"{var} = keras.Input(shape={shape}, dtype={dtype!r}, name={var!r})"
                      for var, shape, dtype, _ in self.inputs]
            for var, cls, kwargs, sources, listed in self.steps:
                arg = f"[{', '.join(sources)}]" if listed else sources[0]
                lines.append(f"{var} = {_code(cls, kwargs)}({arg})")
            lines.append(f"model = keras.Model(inputs=[{', '.join(v for v, *_ in self.inputs)}], "
                         f"outputs=[{', '.join(self.outputs)}])")
        c = self.compile
        opt = c["optimizer"]
        opt = repr(opt) if isinstance(opt, str) else f"keras.optimizers.{_code(*opt)}"
        lines.append(f"model.compile(optimizer={opt}, loss={c['loss']!r}, metrics={c.get('metrics')!r}, "
                     f"loss_weights={c.get('loss_weights')!r})")
        return "\n".join("  " + line for line in lines)


def _regularizer(spec):
    if spec is None:
        return None
    kind, value = spec
    return keras.regularizers.l1_l2(l1=value, l2=value) if kind == "l1_l2" else getattr(keras.regularizers, kind)(value)


def _layer(cls, kwargs):
    kwargs = {k: _regularizer(v) if k.endswith("_regularizer") else v for k, v in kwargs.items()}
    return getattr(L, cls)(**kwargs)


def _optimizer(spec):
    if isinstance(spec, str):
        return spec
    cls, kwargs = spec
    return getattr(keras.optimizers, cls)(**kwargs)


def _code(cls, kwargs) -> str:
    def value(k, v):
        if k.endswith("_regularizer"):
            kind, amount = v
            return f"keras.regularizers.l1_l2(l1={amount}, l2={amount})" if kind == "l1_l2" else \
                f"keras.regularizers.{kind}({amount})"
        return repr(v)
    return f"{cls}({', '.join(f'{k}={value(k, v)}' for k, v in kwargs.items())})"


# -- drawing ----------------------------------------------------------------------------------------------
def _maybe_regularizers(draw, kwargs, names):
    for name in names:
        if draw(st.integers(0, 4)) == 0:
            kwargs[f"{name}_regularizer"] = (draw(st.sampled_from(["l1", "l2", "l1_l2"])),
                                             draw(st.sampled_from([0.01, 0.1])))
    return kwargs


def _dense(draw, units=None, activation=None):
    kwargs = {"units": units or draw(st.integers(1, 5)),
              "activation": activation or draw(st.sampled_from(ACTIVATIONS))}
    if draw(st.integers(0, 3)) == 0:
        kwargs["use_bias"] = False
    return "Dense", _maybe_regularizers(draw, kwargs, ["kernel"] + (["bias"] if kwargs.get("use_bias", True) else []))


def _common(draw, shape, channels_axis=-1):
    """Layers that take any rank."""
    kind = draw(st.sampled_from(["Dropout", "BatchNormalization", "Activation"]))
    if kind == "Dropout":
        return "Dropout", {"rate": draw(st.sampled_from([0.2, 0.5]))}
    if kind == "Activation":
        return "Activation", {"activation": draw(st.sampled_from(ACTIVATIONS))}
    kwargs = {"axis": channels_axis} if channels_axis != -1 else {}
    if draw(st.booleans()):
        kwargs["momentum"] = 0.9
    return "BatchNormalization", kwargs


def _layer_for(draw, shape, fmt):
    """A layer that accepts an input of ``shape`` (without the batch dim)."""
    if len(shape) == 1:
        f = shape[0]
        choice = draw(st.sampled_from(["dense", "dense", "common", "reshape"]))
        if choice == "reshape" and f <= 8:
            return "Reshape", {"target_shape": (2, f // 2) if f % 2 == 0 and draw(st.booleans()) else (f, 1)}
        return _dense(draw) if choice != "common" else _common(draw, shape)
    if len(shape) == 2:
        choice = draw(st.sampled_from(["rnn", "rnn", "dense", "common", "flatten"]))
        if choice == "rnn":
            return _rnn(draw)
        if choice == "dense":
            return _dense(draw)
        return ("Flatten", {}) if choice == "flatten" else _common(draw, shape)
    first = fmt == "channels_first"
    h, w = (shape[1], shape[2]) if first else (shape[0], shape[1])
    fmt_kw = {"data_format": fmt} if first else {}
    choice = draw(st.sampled_from(["conv", "pool", "depthwise", "transpose", "conv", "common", "global"]))
    if choice in ("conv", "depthwise", "transpose"):
        k = draw(st.integers(1, min(3, h, w)))
        kwargs = {"kernel_size": (k, draw(st.integers(1, min(3, w))))}
        if choice == "conv" or choice == "transpose":
            kwargs = {"filters": draw(st.integers(1, 3)), **kwargs}
        if choice == "depthwise":
            kwargs["depth_multiplier"] = draw(st.integers(1, 2))
        if draw(st.booleans()):
            kwargs["strides"] = draw(st.sampled_from([1, 2, (1, 2)]))
        if draw(st.booleans()):
            kwargs["padding"] = "same"
        if choice == "transpose" and max(h, w) > 4:
            return "AveragePooling2D", {"pool_size": 2, **fmt_kw}
        kwargs["activation"] = draw(st.sampled_from(ACTIVATIONS))
        if draw(st.integers(0, 3)) == 0:
            kwargs["use_bias"] = False
        kwargs.update(fmt_kw)
        cls = {"conv": "Conv2D", "depthwise": "DepthwiseConv2D", "transpose": "Conv2DTranspose"}[choice]
        weight = "depthwise" if choice == "depthwise" else "kernel"
        return cls, _maybe_regularizers(draw, kwargs, [weight])
    if choice == "pool" and min(h, w) >= 2:
        kwargs = {"pool_size": draw(st.sampled_from([2, (2, 1), (1, 2)]))}
        if draw(st.booleans()):
            kwargs["padding"] = "same"
        return draw(st.sampled_from(["MaxPooling2D", "AveragePooling2D"])), {**kwargs, **fmt_kw}
    if choice == "global":
        return "GlobalAveragePooling2D", fmt_kw
    return _common(draw, shape, channels_axis=1 if first else -1)


def _rnn(draw):
    cls = draw(st.sampled_from(["SimpleRNN", "LSTM", "GRU"]))
    kwargs = {"units": draw(st.integers(1, 4)), "return_sequences": draw(st.booleans())}
    if cls == "GRU" and draw(st.booleans()):
        kwargs["reset_after"] = True
    if draw(st.integers(0, 3)) == 0:
        kwargs["activation"] = draw(st.sampled_from(["relu", "sigmoid", "linear"]))
    return cls, _maybe_regularizers(draw, kwargs, ["kernel", "recurrent"])


# kind of first input -> examples in CI (on the CUDA simulator: one each); the RNNs of
# "sequence" and "ids" cost 20-35 s a model (a numba compile of each program's loop)
INPUT_KINDS = {"features": 4, "image": 3, "sequence": 1, "ids": 1}


def _input_kind(draw, plan, kind):
    """An input of ``kind`` and the layers right after it that only fit there (Embedding)."""
    if kind == "features":
        return plan.add_input((draw(st.integers(1, 6)),)), None
    if kind == "sequence":
        return plan.add_input((draw(st.integers(1, 4)), draw(st.integers(1, 4)))), None
    if kind == "ids":
        n = draw(st.integers(2, 8))
        x = plan.add_input((draw(st.integers(1, 4)),), dtype="int32", high=n)
        return plan.add("Embedding", {"input_dim": n, "output_dim": draw(st.integers(1, 4))}, [x]), None
    fmt = draw(st.sampled_from(["channels_last", "channels_last", "channels_first"]))
    h, w, c = draw(st.integers(2, 6)), draw(st.integers(2, 6)), draw(st.integers(1, 3))
    return plan.add_input((c, h, w) if fmt == "channels_first" else (h, w, c)), fmt


def _stack(draw, plan, var, fmt, min_layers=1, max_layers=3):
    """Some layers on ``var``, then whatever brings it down to (features,)."""
    for _ in range(draw(st.integers(min_layers, max_layers))):
        var = plan.add(*_layer_for(draw, plan.shape(var), fmt), [var])
    shape = plan.shape(var)
    if len(shape) == 2:
        cls, kwargs = _rnn(draw) if draw(st.booleans()) else ("Flatten", {})
        if cls != "Flatten":
            kwargs["return_sequences"] = False
        var = plan.add(cls, kwargs, [var])
    elif len(shape) == 3:
        fmt_kw = {"data_format": fmt} if fmt == "channels_first" else {}
        var = plan.add(draw(st.sampled_from(["Flatten", "GlobalAveragePooling2D"])), fmt_kw, [var])
    return var


def _head(draw, plan, var, name=None):
    kind = draw(st.sampled_from(sorted(HEADS)))
    activations, losses, metrics = HEADS[kind]
    units = draw(st.integers(2, 4)) if kind in ("categorical", "sparse") else draw(st.integers(1, 3))
    cls, kwargs = _dense(draw, units=units, activation=draw(st.sampled_from(activations)))
    if name:
        kwargs["name"] = name
    out = plan.add(cls, kwargs, [var])
    plan.heads.append((out, kind, units))
    return out, draw(st.sampled_from(losses)), draw(st.lists(st.sampled_from(metrics), max_size=1))


def draw_plan(draw, input_kind) -> Plan:
    structure = draw(st.sampled_from(["sequential", "branch", "two outputs", "sequential", "two inputs"]))
    plan = Plan(sequential=structure == "sequential")
    var, fmt = _input_kind(draw, plan, input_kind)
    if structure == "two inputs":
        other = plan.add_input((draw(st.integers(1, 6)),))
        branches = [_stack(draw, plan, var, fmt, 1, 2), _stack(draw, plan, other, None, 0, 1)]
    else:
        var = _stack(draw, plan, var, fmt)
        branches = [var, var] if structure == "branch" else []
    if branches:
        merge = draw(st.sampled_from(MERGES))
        units = draw(st.integers(1, 5))
        ends = []
        for b in branches:
            for _ in range(draw(st.integers(0, 1))):
                b = plan.add(*_layer_for(draw, plan.shape(b), None), [b])
                if len(plan.shape(b)) != 1:
                    b = plan.add("Flatten", {}, [b])
            ends.append(plan.add(*_dense(draw, units=units if merge != "Concatenate" else None), [b]))
        var = plan.add(merge, {}, ends, listed=True)
    if structure == "two outputs" or (structure == "two inputs" and draw(st.booleans())):
        heads = [_head(draw, plan, var, name) for name in ("out_a", "out_b")]
        plan.outputs = [h[0] for h in heads]
        losses = [h[1] for h in heads]
        plan.compile["loss"] = dict(zip(("out_a", "out_b"), losses)) if draw(st.booleans()) else losses
        if draw(st.booleans()):
            plan.compile["loss_weights"] = [draw(st.sampled_from([0.5, 1.0, 2.0])) for _ in heads]
        metrics = sorted({m for h in heads for m in h[2]})
    else:
        out, loss, metrics = _head(draw, plan, var)
        plan.outputs = [out]
        plan.compile["loss"] = loss
    if metrics:
        plan.compile["metrics"] = metrics
    # Batch statistics over 2-5 samples cancel most of the gradient upstream of a
    # BatchNormalization (a bias before it gets exactly zero in exact arithmetic): rounding
    # noise whose sign differs between backends, which the optimizers that divide by the
    # gradient's own scale (adam, rmsprop, adagrad, ...) blow up to steps of lr. With batch
    # norm, only the optimizers whose steps scale with the gradient.
    with_batch_norm = any(cls == "BatchNormalization" for _, cls, *_ in plan.steps)
    plan.compile["optimizer"] = draw(st.sampled_from(SCALED_OPTIMIZERS if with_batch_norm else OPTIMIZERS))
    return plan


def _data(plan, rng, n):
    xs = []
    for _, shape, dtype, high in plan.inputs:
        xs.append(rng.integers(0, high, (n,) + shape).astype(np.int32) if high else
                  rng.uniform(-1.5, 1.5, (n,) + shape).astype(np.float32))
    ys = []
    for _, kind, units in plan.heads:
        if kind == "categorical":
            ys.append(np.eye(units, dtype=np.float32)[rng.integers(0, units, n)])
        elif kind == "sparse":
            ys.append(rng.integers(0, units, (n, 1)).astype(np.int64))
        elif kind == "binary":
            ys.append(rng.integers(0, 2, (n, units)).astype(np.float32))
        elif kind == "positive":
            ys.append(rng.uniform(0, 2, (n, units)).astype(np.float32))
        else:
            ys.append(rng.standard_normal((n, units)).astype(np.float32))
    return xs, ys


# -- checking -----------------------------------------------------------------------------------------------
def _close(actual, expected, what):
    if isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(actual) == len(expected), \
            f"{what}: {actual!r} vs {expected!r}"
        for k, (a, e) in enumerate(zip(actual, expected)):
            _close(a, e, f"{what} [{k}]")
        return
    expected = np.asarray(expected, np.float64)
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=RTOL, atol=ATOL * scale, err_msg=what)


def _as_list(x):
    return x if isinstance(x, list) else [x]


def _run(plan, device, seed, xs, ys, batch_size, folder, story):
    """Everything the model gives on ``device``; checks on the way the invariants that need
    no other device."""
    before = keras.backend.get_device()
    keras.backend.set_device(device)
    try:
        with gc.Graph().as_default():
            gc.set_random_seed(seed)
            model = plan.build()
            plan.compile_model(model)
            out = {"initial weights": model.get_weights(), "predict": model.predict(xs, batch_size=batch_size)}
            _close(model.predict(xs), out["predict"], f"{story}\n{device}: predict in one batch")
            again = model.predict(xs, batch_size=batch_size)
            for a, b in zip(_as_list(again), _as_list(out["predict"])):
                np.testing.assert_array_equal(a, b, err_msg=f"{story}\n{device}: predict twice")
            out["train step 1"] = model.train_on_batch(xs, ys)
            out["train step 2"] = model.train_on_batch(xs, ys)
            out["evaluate"] = model.evaluate(xs, ys, batch_size=batch_size, verbose=0)
            out["weights"] = model.get_weights()
            out["optimizer weights"] = keras.backend.batch_get_value(model.optimizer.weights)
            out["predict after training"] = model.predict(xs)
            if device != "reference":
                return out
            # saving is the same on every device: checked on the reference only (each compiled
            # program costs a compile, an RNN's loop most of all)
            path = os.path.join(folder, f"{device}.gcm")
            model.save(path)
            out["train step 3"] = model.train_on_batch(xs, ys)
            out["weights after step 3"] = model.get_weights()
        with gc.Graph().as_default():
            # the file keeps the random counters, not the graph seed: the loading graph takes
            # the same seed, or its dropout masks are new ones
            gc.set_random_seed(seed)
            loaded = keras.models.load_model(path)
            where = f"{story}\n{device}: the model saved after two steps and loaded in a fresh graph"
            _close(loaded.predict(xs), out["predict after training"], f"{where}: predict")
            _close(loaded.train_on_batch(xs, ys), out["train step 3"], f"{where}: the next train_on_batch")
            _close(loaded.get_weights(), out["weights after step 3"], f"{where}: the weights after it")
        return out
    finally:
        keras.backend.set_device(before)


def _check_config_round_trip(plan, xs, story):
    """On the reference: the config and the JSON make the same architecture again, which with
    the same weights predicts the same."""
    before = keras.backend.get_device()
    keras.backend.set_device("reference")
    try:
        with gc.Graph().as_default():
            model = plan.build()
            weights, expected = model.get_weights(), model.predict(xs)
            entry = {"class_name": type(model).__name__, "config": model.get_config()}
            json_string = model.to_json()
            summary = [(layer.name, type(layer).__name__, layer.output_shape) for layer in model.layers]
        for how, make in (("model_from_config", lambda: keras.models.model_from_config(entry)),
                          ("model_from_json", lambda: keras.models.model_from_json(json_string))):
            with gc.Graph().as_default():
                again = make()
                got = [(layer.name, type(layer).__name__, layer.output_shape) for layer in again.layers]
                assert got == summary, f"{story}\n{how}: layers {got} != {summary}"
                assert type(again) is type(model), f"{story}\n{how}: {type(again).__name__}"
                again.set_weights(weights)
                _close(again.predict(xs), expected, f"{story}\n{how}: predict with the same weights")
    finally:
        keras.backend.set_device(before)


def _check_a_random_model(data, input_kind):
    plan = draw_plan(data.draw, input_kind)
    seed = data.draw(st.integers(0, 2 ** 16), label="seed")
    n = data.draw(st.integers(2, 5), label="batch")
    batch_size = data.draw(st.sampled_from([None, 2, 3]), label="batch_size")
    rng = np.random.default_rng(seed)
    xs, ys = _data(plan, rng, n)
    # one input or output goes in as its array or, as Keras allows, a list of one array
    if len(xs) == 1 and data.draw(st.booleans(), label="x as array"):
        xs = xs[0]
    if len(ys) == 1 and data.draw(st.booleans(), label="y as array"):
        ys = ys[0]
    story = (f"model (gc.set_random_seed({seed}), batch {n}, predict/evaluate batch_size {batch_size}, "
             f"x as {type(xs).__name__}, y as {type(ys).__name__}):\n"
             f"{plan.describe()}")
    _check_config_round_trip(plan, xs, story)
    with tempfile.TemporaryDirectory() as folder:
        reference = _run(plan, "reference", seed, xs, ys, batch_size, folder, story)
        for device in DEVICES:
            if device == "reference":
                continue
            got = _run(plan, device, seed, xs, ys, batch_size, folder, story)
            for key, want in got.items():
                want = reference[key]
                _close(got[key], want, f"{story}\n{device} vs the reference: {key}")


# One test per kind of first input, so that each kind is drawn in CI and `pytest -n` spreads
# the compiles over its workers.
@pytest.mark.parametrize("input_kind", sorted(INPUT_KINDS))
def test_random_keras_models_agree_with_the_reference(input_kind):
    examples = EXAMPLES or (1 if "cuda" in DEVICES else INPUT_KINDS[input_kind])

    @settings(FUZZ, max_examples=examples)
    @given(data=st.data())
    def check(data):
        _check_a_random_model(data, input_kind)
    check()

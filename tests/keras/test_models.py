"""graphc.keras models: shapes and parameter counts by Keras's documented formulas, layers
against NumPy on every device, training semantics (dropout only in fit, batch norm's two
modes, regularizers in the loss), the functional API with several inputs and outputs, a model
inside a hand-written graph, fit on a Dataset, whole-model save and exact resume in a fresh
process, export, and the errors a user can cause."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc as gc
from graphc import keras
from graphc.keras import layers as L
from op_samples import _conv_ref
from support import DEVICES, SIMULATED, build_error

rng = np.random.default_rng(0)
# tests that run on the CPU whatever the devices (subprocesses) run once, in the CPU pass
cpu_pass_only = pytest.mark.skipif(SIMULATED, reason="device-independent: runs in the CPU pass")


@pytest.fixture(params=DEVICES)
def device(request):
    """Keras models of the test run on ``device``, each test in a fresh default graph."""
    before = keras.backend.get_device()
    keras.backend.set_device(request.param)
    g = gc.Graph()
    with g.as_default():
        yield request.param
    keras.backend.set_device(before)


# -- shapes and parameter counts (Keras's formulas; building only, nothing compiles) ---------------
def _shape_cases():
    u, f = 5, 7  # units, input features
    return [
        ("dense", (None, f), lambda: L.Dense(u), (None, u), (f + 1) * u),
        ("dense no bias", (None, f), lambda: L.Dense(u, use_bias=False), (None, u), f * u),
        ("dense rank 3", (None, 4, f), lambda: L.Dense(u), (None, 4, u), (f + 1) * u),
        ("conv valid", (None, 9, 9, 3), lambda: L.Conv2D(4, (3, 3)), (None, 7, 7, 4), 3 * 3 * 3 * 4 + 4),
        ("conv same stride 2", (None, 9, 9, 3), lambda: L.Conv2D(4, 3, strides=2, padding="same"), (None, 5, 5, 4),
         3 * 3 * 3 * 4 + 4),
        ("conv channels_first", (None, 3, 9, 9), lambda: L.Conv2D(4, (3, 2), data_format="channels_first"),
         (None, 4, 7, 8), 3 * 2 * 3 * 4 + 4),
        ("conv transpose", (None, 4, 4, 3), lambda: L.Conv2DTranspose(2, 3, strides=2), (None, 9, 9, 2),
         3 * 3 * 3 * 2 + 2),
        ("conv transpose same", (None, 4, 4, 3), lambda: L.Conv2DTranspose(2, 3, strides=2, padding="same"),
         (None, 8, 8, 2), 3 * 3 * 3 * 2 + 2),
        ("depthwise", (None, 6, 6, 3), lambda: L.DepthwiseConv2D(3, depth_multiplier=2), (None, 4, 4, 6),
         3 * 3 * 3 * 2 + 6),
        ("separable", (None, 6, 6, 3), lambda: L.SeparableConv2D(4, 3), (None, 4, 4, 4), 3 * 3 * 3 + 3 * 4 + 4),
        ("max pool", (None, 9, 9, 3), lambda: L.MaxPooling2D(), (None, 4, 4, 3), 0),
        ("avg pool same", (None, 9, 9, 3), lambda: L.AveragePooling2D(3, 2, padding="same"), (None, 5, 5, 3), 0),
        ("pool channels_first", (None, 3, 8, 6), lambda: L.MaxPooling2D(data_format="channels_first"),
         (None, 3, 4, 3), 0),
        ("global avg pool", (None, 5, 5, 3), lambda: L.GlobalAveragePooling2D(), (None, 3), 0),
        ("flatten", (None, 2, 3, 4), lambda: L.Flatten(), (None, 24), 0),
        ("reshape", (None, 12), lambda: L.Reshape((3, -1)), (None, 3, 4), 0),
        ("dropout", (None, f), lambda: L.Dropout(0.5), (None, f), 0),
        ("activation", (None, f), lambda: L.Activation("relu"), (None, f), 0),
        ("batch norm", (None, 6, 6, 3), lambda: L.BatchNormalization(), (None, 6, 6, 3), 4 * 3),
        ("batch norm axis 1", (None, 3, 6, 6), lambda: L.BatchNormalization(axis=1), (None, 3, 6, 6), 4 * 3),
        ("simple rnn", (None, 4, f), lambda: L.SimpleRNN(u), (None, u), u * (u + f + 1)),
        ("simple rnn sequences", (None, 4, f), lambda: L.SimpleRNN(u, return_sequences=True), (None, 4, u),
         u * (u + f + 1)),
        ("lstm", (None, 4, f), lambda: L.LSTM(u), (None, u), 4 * u * (u + f + 1)),
        ("gru", (None, 4, f), lambda: L.GRU(u, return_sequences=True), (None, 4, u), 3 * u * (u + f + 1)),
        ("gru reset_after", (None, 4, f), lambda: L.GRU(u, reset_after=True), (None, u), 3 * u * (u + f + 2)),
    ]


@pytest.mark.parametrize("name,input_shape,make,output_shape,params", _shape_cases(),
                         ids=[c[0] for c in _shape_cases()])
def test_output_shape_and_parameter_count_follow_keras(graph, name, input_shape, make, output_shape, params):
    layer = make()
    y = layer(keras.Input(batch_shape=input_shape))
    assert tuple(y.shape) == output_shape
    assert layer.output_shape == output_shape
    assert layer.count_params() == params


def test_embedding_and_merges(graph):
    ids = keras.Input(shape=(6,), dtype="int32")
    emb = L.Embedding(50, 8)
    assert tuple(emb(ids).shape) == (None, 6, 8) and emb.count_params() == 400
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(4,))
    assert tuple(L.Concatenate()([a, b]).shape) == (None, 7)
    assert tuple(L.Add()([a, a]).shape) == (None, 3)
    build_error(gc.ShapeError, lambda: L.Concatenate(axis=0)([a, b]), "concatenate", "must match")


def test_the_seed_cnn_summary_is_keras_table(graph, capsys):
    model = _seed_cnn()
    model.summary()
    out = capsys.readouterr().out
    assert "conv2d (Conv2D)              (None, 26, 26, 32)        320" in out
    assert "max_pooling2d (MaxPooling2D) (None, 12, 12, 64)        0" in out
    assert "Total params: 1,199,882" in out and "Trainable params: 1,199,882" in out
    assert "Non-trainable params: 0" in out
    assert [layer.name for layer in model.layers] == ["conv2d", "conv2d_1", "max_pooling2d", "dropout", "flatten",
                                                      "dense", "dropout_1", "dense_1"]


def _seed_cnn():
    model = keras.Sequential()
    model.add(L.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)))
    model.add(L.Conv2D(64, (3, 3), activation="relu"))
    model.add(L.MaxPooling2D(pool_size=(2, 2)))
    model.add(L.Dropout(0.25))
    model.add(L.Flatten())
    model.add(L.Dense(128, activation="relu"))
    model.add(L.Dropout(0.5))
    model.add(L.Dense(10, activation="softmax"))
    return model


# -- numerics against NumPy ---------------------------------------------------------------------------
def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_dense_conv_pool_forward_match_numpy(device):
    x = rng.standard_normal((3, 6, 6, 2)).astype(np.float32)
    model = keras.Sequential([L.Conv2D(4, 3, activation="relu", input_shape=(6, 6, 2)), L.MaxPooling2D(),
                              L.Flatten(), L.Dense(5, activation="softmax")])
    k, b, w, c = model.get_weights()
    conv = np.maximum(_conv_ref(x.astype(np.float64), k, 1, "VALID") + b, 0)
    pooled = conv.reshape(3, 2, 2, 2, 2, 4).max(axis=(2, 4))
    expected = _softmax(pooled.reshape(3, -1) @ w + c)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-5)


def _hard_sigmoid(z):
    return np.clip(0.2 * z + 0.5, 0, 1)


def _rnn_reference(kind, x, weights, units, reset_after=False):
    kernel, recurrent, bias = weights
    h = np.zeros((x.shape[0], units))
    c = np.zeros_like(h)
    outs = []
    for t in range(x.shape[1]):
        if kind == "simple":
            h = np.tanh(x[:, t] @ kernel + h @ recurrent + bias)
        elif kind == "lstm":
            z = x[:, t] @ kernel + h @ recurrent + bias
            i, f, g, o = (z[:, k * units:(k + 1) * units] for k in range(4))
            c = _hard_sigmoid(f) * c + _hard_sigmoid(i) * np.tanh(g)
            h = _hard_sigmoid(o) * np.tanh(c)
        else:
            xw = x[:, t] @ kernel + (bias[0] if reset_after else bias)
            hu = h @ recurrent + (bias[1] if reset_after else 0)
            z = _hard_sigmoid(xw[:, :units] + hu[:, :units])
            r = _hard_sigmoid(xw[:, units:2 * units] + hu[:, units:2 * units])
            hh = np.tanh(xw[:, 2 * units:] + (r * hu[:, 2 * units:] if reset_after else (r * h) @ recurrent[:, 2 *
                                                                                                              units:]))
            h = z * h + (1 - z) * hh
        outs.append(h)
    return np.stack(outs, 1)


def test_recurrent_layers_match_keras_equations(device):
    """SimpleRNN, LSTM and GRU (both reset modes) side by side in one model: one compile."""
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    kinds = {"simple": L.SimpleRNN(3, return_sequences=True), "lstm": L.LSTM(3, return_sequences=True),
             "gru": L.GRU(3, return_sequences=True), "gru_after": L.GRU(3, return_sequences=True, reset_after=True)}
    inp = keras.Input(shape=(5, 4))
    model = keras.Model(inp, [layer(inp) for layer in kinds.values()])
    weights = {}
    for kind, layer in kinds.items():
        weights[kind] = [w + rng.standard_normal(w.shape).astype(np.float32) * 0.1 for w in layer.get_weights()]
        layer.set_weights(weights[kind])
    for (kind, layer), out in zip(kinds.items(), model.predict(x)):
        expected = _rnn_reference(kind.split("_")[0], x.astype(np.float64),
                                  [w.astype(np.float64) for w in weights[kind]], 3, reset_after=kind == "gru_after")
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5, err_msg=kind)
    fresh = L.LSTM(2)  # the forget gate's bias starts at one (unit_forget_bias)
    fresh(keras.Input(shape=(3, 4)))
    np.testing.assert_array_equal(fresh.get_weights()[2], [0, 0, 1, 1, 0, 0, 0, 0])


def test_dropout_acts_only_during_fit(device):
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = rng.standard_normal((64, 6)).astype(np.float32)
    model = keras.Sequential([L.Dropout(0.5, input_shape=(6,))])
    model.compile(optimizer=keras.optimizers.SGD(lr=0.0), loss="mse")  # no weights to train: dropout alone
    np.testing.assert_array_equal(model.predict(x), x)
    expected = float(np.mean((x - y) ** 2))
    assert model.evaluate(x, y, verbose=0, batch_size=64) == pytest.approx(expected, rel=1e-5)
    train_loss = model.train_on_batch(x, y)
    assert abs(train_loss - expected) > 1e-3  # half the inputs dropped, the rest doubled


def test_batch_norm_uses_batch_statistics_in_fit_and_moving_ones_after(device):
    x = (rng.standard_normal((32, 3)) * 2 + 5).astype(np.float32)
    model = keras.Sequential([L.BatchNormalization(momentum=0.9, input_shape=(3,))])
    gamma, beta, mean, var = model.get_weights()
    model.compile(optimizer=keras.optimizers.SGD(lr=0.0), loss="mse")
    np.testing.assert_allclose(model.predict(x), (x - 0) / np.sqrt(1 + 1e-3), rtol=1e-5)  # moving stats at init
    model.train_on_batch(x, np.zeros_like(x))
    _, _, moving_mean, moving_var = model.get_weights()
    np.testing.assert_allclose(moving_mean, 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(moving_var, 0.9 + 0.1 * x.var(0), rtol=1e-5)
    expected = (x - moving_mean) / np.sqrt(moving_var + 1e-3)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-5)
    # in fit the loss sees the batch-normalized output: mean 0, variance 1 per column
    assert model.test_on_batch(x, np.zeros_like(x)) != pytest.approx(model.train_on_batch(x, np.zeros_like(x)))


def test_regularizers_join_the_loss(device):
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = rng.standard_normal((16, 2)).astype(np.float32)
    model = keras.Sequential([L.Dense(2, input_shape=(4,), kernel_regularizer=keras.regularizers.l2(0.1),
                                      bias_regularizer=keras.regularizers.l1(0.2))])
    model.compile(optimizer="sgd", loss="mse")
    kernel, bias = model.get_weights()
    bias = bias + 0.5
    model.set_weights([kernel, bias])
    mse = np.mean(np.mean((x @ kernel + bias - y) ** 2, -1))
    expected = mse + 0.1 * np.sum(kernel ** 2) + 0.2 * np.sum(np.abs(bias))
    assert model.evaluate(x, y, batch_size=16, verbose=0) == pytest.approx(expected, rel=1e-5)


# -- functional API, a model in a TF1 graph, fit on a Dataset ------------------------------------------
def test_functional_model_with_two_inputs_and_two_outputs(device):
    a, b = keras.Input(shape=(3,), name="a"), keras.Input(shape=(2,), name="b")
    merged = L.Concatenate()([L.Dense(4, activation="tanh")(a), b])
    out1 = L.Dense(1, name="regression")(merged)
    out2 = L.Dense(3, activation="softmax", name="classes")(merged)
    model = keras.Model(inputs=[a, b], outputs=[out1, out2])
    model.compile(optimizer="adam", loss={"regression": "mse", "classes": "categorical_crossentropy"},
                  loss_weights={"regression": 0.5, "classes": 2.0}, metrics=["accuracy"])
    assert model.metrics_names == ["loss", "regression_loss", "classes_loss", "regression_acc", "classes_acc"]
    xa, xb = rng.standard_normal((20, 3)).astype(np.float32), rng.standard_normal((20, 2)).astype(np.float32)
    y1 = rng.standard_normal((20, 1)).astype(np.float32)
    y2 = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 20)]
    p1, p2 = model.predict({"a": xa, "b": xb})
    l1, l2 = np.mean((p1 - y1) ** 2), np.mean(-np.sum(y2 * np.log(p2), -1))
    result = model.evaluate([xa, xb], [y1, y2], batch_size=20, verbose=0)
    np.testing.assert_allclose(result[:3], [0.5 * l1 + 2.0 * l2, l1, l2], rtol=1e-4)
    history = model.fit([xa, xb], {"regression": y1, "classes": y2}, epochs=3, batch_size=8, verbose=0)
    assert sorted(history.history) == sorted(model.metrics_names) and len(history.history["loss"]) == 3


def test_a_model_is_callable_inside_a_tf1_graph(device):
    model = keras.Sequential([L.Dense(4, activation="relu", input_shape=(3,)), L.Dense(2)])
    x = gc.placeholder(gc.float32, (None, 3))
    y = model(x) * 2.0 + 1.0
    xv = rng.standard_normal((5, 3)).astype(np.float32)
    sess = keras.backend.get_session()
    keras.backend.initialize_variables(gc.global_variables(), sess)
    np.testing.assert_allclose(sess.run(y, {x: xv}), model.predict(xv) * 2 + 1, rtol=1e-5)


def test_fit_on_a_dataset_equals_fit_on_the_arrays(device):
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)

    def trained(data, **kwargs):
        with gc.Graph().as_default():
            model = keras.Sequential([L.Dense(1, input_shape=(3,), kernel_initializer="zeros")])
            model.compile(optimizer=keras.optimizers.SGD(lr=0.1), loss="mse")
            history = model.fit(*data, epochs=2, verbose=0, **kwargs)
            return model.get_weights(), history.history["loss"]
    by_arrays = trained((x, y), batch_size=10, shuffle=False)
    by_dataset = trained((gc.data.Dataset.from_tensor_slices((x, y)).batch(10),))
    for a, b in zip(by_arrays[0], by_dataset[0]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(by_arrays[1], by_dataset[1], rtol=1e-6)
    assert by_arrays[1][1] < by_arrays[1][0]


# -- saving, resuming, exporting --------------------------------------------------------------------------
_RESUME = textwrap.dedent("""
    import sys
    import numpy as np
    import graphc as gc
    from graphc import keras
    from graphc.keras import layers as L
    keras.backend.set_device("cpu")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((48, 5)).astype(np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 3, 48), 3)
    mode, path, out = sys.argv[1:4]
    if mode == "load":  # the file brings the graph seed back: same dropout masks from here on
        model = keras.models.load_model(path)
    else:
        gc.set_random_seed(7)  # the same initial weights and dropout masks in both runs
        model = keras.Sequential([L.Dense(8, activation="relu", input_shape=(5,)), L.BatchNormalization(),
                                  L.Dropout(0.3), L.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    if mode == "save":
        model.save(path)
    else:
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    np.savez(out, *model.get_weights(), *keras.backend.batch_get_value(model.optimizer.weights))
""")


@cpu_pass_only
def test_a_saved_model_resumes_training_exactly_in_a_fresh_process(tmp_path):
    script = tmp_path / "resume.py"
    script.write_text(_RESUME)
    model_file = tmp_path / "model.gcm"

    def run(*args):
        done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=600,
                              env=dict(os.environ))
        assert done.returncode == 0, done.stderr[-3000:]
    run("straight", str(model_file), str(tmp_path / "straight.npz"))
    run("save", str(model_file), str(tmp_path / "unused.npz"))
    run("load", str(model_file), str(tmp_path / "resumed.npz"))
    straight, resumed = np.load(tmp_path / "straight.npz"), np.load(tmp_path / "resumed.npz")
    assert len(straight.files) == len(resumed.files) > 8
    for key in straight.files:
        np.testing.assert_array_equal(straight[key], resumed[key], err_msg=key)


def test_export_hands_the_inference_graph_to_gc_export(device, tmp_path):
    model = keras.Sequential([L.Dense(4, activation="relu", input_shape=(3,)), L.Dropout(0.5),
                              L.Dense(2, activation="softmax")])
    x = rng.standard_normal((4, 3)).astype(np.float32)
    path = model.export(str(tmp_path / "model.gcm"))
    loaded = gc.export.load_model(path)
    out = loaded(**{model.input_names[0]: x})
    np.testing.assert_allclose(out[model.output_names[0]], model.predict(x), rtol=1e-5)


# -- errors a user can cause -------------------------------------------------------------------------------
def test_errors_name_the_layer_and_the_line(graph, tmp_path):
    dense = L.Dense(3)
    build_error(gc.ShapeError, lambda: dense(keras.Input(batch_shape=(4,))), "Dense 'dense'", "rank 2 or more",
                "(4,)")
    conv = L.Conv2D(2, 3)
    build_error(gc.ShapeError, lambda: conv(keras.Input(shape=(5, 5))), "Conv2D 'conv2d'", "rank 4")
    model = keras.Sequential([L.Dense(3, activation="softmax", input_shape=(4,))])
    x = np.zeros((2, 4), np.float32)
    build_error(keras.NotCompiledError, lambda: model.fit(x, np.zeros((2, 3))), "compile")
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    build_error(gc.ShapeError, lambda: model.fit(x, np.zeros((2, 1)), verbose=0), "(None, 3)", "(2, 1)",
                "categorical_crossentropy", "sparse_categorical_crossentropy")
    build_error(ValueError, lambda: model.compile(optimizer="sgdd", loss="mse"), "sgdd", "adam")
    build_error(ValueError, lambda: model.compile(optimizer="sgd", loss="mean_squared_eror"), "mean_squared_eror",
                "mean_squared_error")
    build_error(TypeError, lambda: L.Dense(3, unitz=4), "Dense", "unitz")
    damaged = tmp_path / "damaged.gcm"
    model.save(str(damaged))
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"\x00" * 64
    damaged.write_bytes(bytes(data))
    with pytest.raises(gc.export.FormatError):
        keras.models.load_model(str(damaged))
    (tmp_path / "not.gcm").write_bytes(b"not a zip")
    with pytest.raises(gc.export.FormatError, match="not.gcm"):
        keras.models.load_model(str(tmp_path / "not.gcm"))


def test_callbacks_drive_a_real_fit(device, tmp_path, capsys):
    x = rng.standard_normal((30, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-1.0], [0.5]], np.float32)).astype(np.float32)
    model = keras.Sequential([L.Dense(1, input_shape=(3,))])
    model.compile(optimizer=keras.optimizers.SGD(lr=0.05), loss="mse", metrics=["mae"])
    rates = []
    callbacks = [keras.callbacks.LearningRateScheduler(lambda epoch: 0.05 / (epoch + 1)),
                 keras.callbacks.ModelCheckpoint(str(tmp_path / "best.gcm"), monitor="loss", save_best_only=True),
                 keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
                 keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: rates.append(logs["lr"])),
                 keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)]
    history = model.fit(x, y, batch_size=10, epochs=5, verbose=2, callbacks=callbacks)
    assert history.epoch == [0, 1]  # no epoch improved the loss by 10: stopped after the second
    np.testing.assert_allclose(rates, [0.05, 0.025], rtol=1e-6)
    assert keras.backend.get_value(model.optimizer.lr) == pytest.approx(0.025)
    assert (tmp_path / "log.csv").read_text().splitlines()[0] == "epoch,loss,lr,mean_absolute_error"
    restored = keras.models.load_model(str(tmp_path / "best.gcm"))
    assert len(restored.get_weights()) == 2
    out = capsys.readouterr().out
    assert "Epoch 1/5" in out and " - loss: " in out and "\r" not in out


@cpu_pass_only
def test_the_seed_keras_cnn_example_learns():
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "keras_cnn.py")
    source = open(example).read()
    assert "from graphc import keras" in source and "model.fit(x_train, y_train," in source
    # Keras's script seeds nothing: unseeded, its test accuracy measured 0.967-0.990 over 11
    # runs, so a bare threshold failed now and then. Seeded as a TF1 user would (the graph's
    # seed for the initializers and dropout, NumPy's for fit's shuffling), it is one figure.
    seeded = ("import runpy, sys, numpy as np, graphc as gc; np.random.seed(1); gc.set_random_seed(1); "
              "sys.argv = [sys.argv[1]]; runpy.run_path(sys.argv[0], run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", seeded, example], capture_output=True, text=True, timeout=900,
                          env=dict(os.environ))
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    accuracy = float(done.stdout.split("Test accuracy:")[1].split()[0])
    assert accuracy >= 0.97


def test_mnist_reads_local_idx_files_and_never_downloads(tmp_path, monkeypatch):
    from graphc.datasets import DatasetError, write_idx
    monkeypatch.delenv("GRAPHC_MNIST_DIR", raising=False)
    build_error(DatasetError, lambda: keras.datasets.mnist.load_data(path=str(tmp_path / "none")), "no MNIST folder",
                "does not download", "train-images-idx3-ubyte.gz")
    images = rng.integers(0, 255, (5, 28, 28)).astype(np.uint8)
    labels = np.arange(5, dtype=np.uint8)
    for prefix, n in (("train", 5), ("t10k", 3)):
        write_idx(str(tmp_path / f"{prefix}-images-idx3-ubyte.gz"), images[:n])
        write_idx(str(tmp_path / f"{prefix}-labels-idx1-ubyte.gz"), labels[:n])
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data(path=str(tmp_path))
    np.testing.assert_array_equal(x_train, images)
    np.testing.assert_array_equal(y_test, labels[:3])
    np.testing.assert_array_equal(keras.utils.to_categorical([[2], [0]], 3), [[0, 0, 1], [1, 0, 0]])
    assert keras.backend.image_data_format() == "channels_last"


def test_sequential_without_input_shape_builds_on_first_fit_and_nests(device):
    x = rng.standard_normal((12, 4)).astype(np.float32)
    y = rng.standard_normal((12, 2)).astype(np.float32)
    model = keras.Sequential([L.Dense(3, activation="tanh"), L.Dense(2)])
    assert not model.outputs and len(model.layers) == 2
    model.compile(optimizer="sgd", loss="mse")  # as in Keras, the model is built by the first fit
    model.fit(x, y, epochs=1, verbose=0)
    assert model.output_shape == (None, 2) and model.count_params() == 4 * 3 + 3 + 3 * 2 + 2
    shared = L.Dense(2, name="shared")
    a, b = keras.Input(shape=(2,)), keras.Input(shape=(2,))
    twice = keras.Model([a, b], L.Add()([shared(a), shared(b)]))
    assert len(twice.weights) == 2  # one kernel and one bias, used twice
    outer = keras.Sequential([model, L.Dense(1)])
    assert outer.output_shape == (None, 1)
    np.testing.assert_allclose(outer.predict(x), model.predict(x) @ outer.layers[1].get_weights()[0]
                               + outer.layers[1].get_weights()[1], rtol=1e-5, atol=1e-6)


def test_review_cases_behave_as_keras(device, tmp_path, capsys):
    x = rng.standard_normal((10, 3)).astype(np.float32)
    y = rng.standard_normal((10, 1)).astype(np.float32)
    # a rate a scheduler set is the rate the file keeps
    model = keras.Sequential([L.Dense(1, input_shape=(3,))])
    model.compile(keras.optimizers.Adam(lr=0.01), "mse")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[keras.callbacks.LearningRateScheduler(lambda e: 0.001)])
    model.save(str(tmp_path / "a.gcm"))
    with gc.Graph().as_default():
        assert keras.backend.get_value(keras.models.load_model(str(tmp_path / "a.gcm")).optimizer.lr) == \
            pytest.approx(0.001)
    # a frozen layer can be unfrozen; a one-array list is the input; fit tells what it trains on
    frozen = L.Dense(1, input_shape=(3,), trainable=False)
    model = keras.Sequential([frozen])
    assert model.trainable_weights == []
    frozen.trainable = True
    model.compile("sgd", "mse")
    assert len(model.trainable_weights) == 2
    assert model.predict([x]).shape == (10, 1)
    seen = []
    model.fit([x], y, epochs=1, verbose=1, validation_split=0.2,
              callbacks=[keras.callbacks.LambdaCallback(on_train_begin=lambda logs: seen.append(1))])
    assert "Train on 8 samples, validate on 2 samples" in capsys.readouterr().out
    # batch norm called with training=True in a hand-written graph updates through UPDATE_OPS
    xp = gc.placeholder(gc.float32, (None, 3))
    bn = L.BatchNormalization()
    out = bn(xp, training=True)
    updates = gc.get_collection(gc.GraphKeys.UPDATE_OPS)
    assert len(updates) == 2 and bn.updates == updates
    sess = keras.backend.get_session()
    keras.backend.initialize_variables(bn.weights, sess)
    sess.run([out, updates], {xp: x})
    np.testing.assert_allclose(bn.get_weights()[2], 0.01 * x.mean(0), rtol=1e-5)
    # Embedding takes sequences of any length; LSTM takes initial_state=[h, c]
    seq = keras.Sequential([L.Embedding(20, 4), L.GlobalAveragePooling1D()])
    assert seq.predict(np.array([[1, 2, 3]])).shape == (1, 4) and seq.predict(np.array([[1, 2, 3, 4, 5]])).shape == \
        (1, 4)
    tokens, h0, c0 = keras.Input(shape=(4, 2)), keras.Input(shape=(3,)), keras.Input(shape=(3,))
    lstm = keras.Model([tokens, h0, c0], L.LSTM(3)(tokens, initial_state=[h0, c0]))
    xs, hs, cs = (rng.standard_normal(s).astype(np.float32) for s in ((2, 4, 2), (2, 3), (2, 3)))
    zero = lstm.predict([xs, np.zeros_like(hs), np.zeros_like(cs)])
    assert not np.allclose(lstm.predict([xs, hs, cs]), zero)
    # Monte-Carlo dropout: an explicit training=True stays in predict; noise_shape takes None
    inp = keras.Input(shape=(6,))
    mc = keras.Model(inp, L.Dropout(0.5, noise_shape=(None, 1))(inp, training=True))
    ones = np.ones((50, 6), np.float32)
    drawn = mc.predict(ones)
    assert set(np.unique(drawn)) <= {0.0, 2.0} and (drawn == drawn[:, :1]).all() and 0 < drawn.mean() < 2


def test_nested_activity_regularizers_and_load_faults(device, tmp_path):
    x = rng.standard_normal((10, 3)).astype(np.float32)
    inner = keras.Sequential([L.Dense(2, activity_regularizer=keras.regularizers.l2(0.5), input_shape=(3,))])
    inp = keras.Input(shape=(3,))
    outer_dense = L.Dense(1, kernel_initializer="ones", use_bias=False)
    model = keras.Model(inp, outer_dense(inner(inp)))
    model.compile(keras.optimizers.SGD(lr=0.0), "mse")
    hidden = x @ inner.get_weights()[0] + inner.get_weights()[1]
    expected = np.mean(hidden.sum(-1) ** 2) + 0.5 * np.sum(hidden ** 2)
    assert model.test_on_batch(x, np.zeros((10, 1))) == pytest.approx(expected, rel=1e-4)
    # a gc.train optimizer trains but is not saved with the model; a Lambda needs its function
    plain = keras.Sequential([L.Dense(1, input_shape=(3,)), L.Lambda(lambda t: t * 2.0)])
    plain.compile(gc.train.GradientDescentOptimizer(0.1), "mse")
    build_error(ValueError, lambda: plain.save(str(tmp_path / "p.gcm")), "gc.train", "include_optimizer=False")
    plain.save(str(tmp_path / "p.gcm"), include_optimizer=False)
    with pytest.raises(gc.export.FormatError, match="custom_objects"):
        keras.models.load_model(str(tmp_path / "p.gcm"))
    # damaged configs are FormatErrors, whatever is wrong in them
    import json
    import zipfile
    model.save(str(tmp_path / "m.gcm"))
    with zipfile.ZipFile(tmp_path / "m.gcm") as archive:
        document = json.loads(archive.read("model.json"))
        weights = archive.read("weights.npz")

    def damaged(change):
        doc = json.loads(json.dumps(document))
        change(doc)
        target = tmp_path / "bad.gcm"
        with zipfile.ZipFile(target, "w") as archive:
            archive.writestr("model.json", json.dumps(doc))
            archive.writestr("weights.npz", weights)
        with pytest.raises(gc.export.FormatError):
            keras.models.load_model(str(target))
    layers = lambda d: d["model"]["config"]["layers"]  # noqa: E731
    damaged(lambda d: layers(d)[1].pop("name"))
    damaged(lambda d: layers(d)[1]["inbound_nodes"][0].__setitem__("inputs", [5]))
    damaged(lambda d: layers(d)[1]["inbound_nodes"][0].__setitem__("inputs", [[layers(d)[0]["name"], 0, 9]]))
    damaged(lambda d: layers(d)[1]["inbound_nodes"][0].__setitem__("kwargs", {"foo": 1}))
    damaged(lambda d: layers(d)[2]["config"].__setitem__("units", -3))
    damaged(lambda d: d["training"].__setitem__("loss", "no_such_loss"))
    damaged(lambda d: d["training"].__setitem__("random_counters", {"x": "y"}))
    damaged(lambda d: d["model"]["config"].pop("input_layers"))

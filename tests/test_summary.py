"""gc.summary and FileWriter, read back with TensorBoard's own event loader (EventAccumulator):
the scalars, histograms, images and text a training loop writes, the graph's nodes with
their types, scopes, shapes and the user's lines, the Keras TensorBoard callback, and the
errors."""
import inspect
import os
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import graphc as gc
from graphc.summary import records
from support import DEVICES

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

HERE = os.path.basename(__file__)


def _load(logdir) -> EventAccumulator:
    ea = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def _png_pixels(data: bytes, height: int, width: int, channels: int) -> np.ndarray:
    """Decode the filter-0 PNG that records.png writes (enough to check its pixels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat = 8, b""
    while at < len(data):
        (n,), kind = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        if kind == b"IDAT":
            idat += data[at + 8:at + 8 + n]
        at += 12 + n
    rows = zlib.decompress(idat)
    stride = 1 + width * channels
    assert all(rows[r * stride] == 0 for r in range(height))
    return np.frombuffer(b"".join(rows[r * stride + 1:(r + 1) * stride] for r in range(height)),
                         np.uint8).reshape(height, width, channels)


def _tf1_histogram_counts(x):
    """The TF1 histogram rule, independently: bucket b holds limits[b-1] <= v < limits[b]."""
    limits = records._tf1_bucket_limits()
    counts = np.zeros(len(limits))
    for v in np.asarray(x, np.float64).reshape(-1):
        counts[min(next((i for i, lim in enumerate(limits) if lim > v), len(limits) - 1), len(limits) - 1)] += 1
    return limits, counts


@pytest.mark.parametrize("device", DEVICES)
def test_a_training_loop_writes_what_tensorboard_reads(device, tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        W = gc.Variable(np.arange(6, dtype=np.float32).reshape(3, 2) / 5, name="W")
        with gc.name_scope("train"):
            loss = gc.reduce_mean(gc.square(gc.matmul(x, W)))
            gc.summary.scalar("loss", loss)
        step = gc.train.GradientDescentOptimizer(0.01).minimize(loss)
        gc.summary.histogram("W", W, family="weights")
        gc.summary.image("pictures", gc.reshape(x, (-1, 1, 3, 1)), max_outputs=2)
        gc.summary.text("note", "hello **TensorBoard**")
        merged = gc.summary.merge_all()
    rng = np.random.RandomState(0)
    losses, weights = [], []
    with gc.Session(graph=g, device=device) as sess:
        sess.run(gc.variables_initializer(gc.global_variables(g)))
        with gc.summary.FileWriter(tmp_path, sess.graph) as writer:
            for i in range(3):
                batch = rng.rand(4, 3).astype(np.float32)
                w_before = sess.run(W)
                summary, loss_value, _ = sess.run([merged, loss, step], {x: batch})
                assert isinstance(summary, bytes)
                writer.add_summary(summary, i)
                losses.append(loss_value)
                weights.append(w_before)
                pictures = batch
    ea = _load(tmp_path)
    tags = ea.Tags()
    assert tags["scalars"] == ["train/loss"] and tags["histograms"] == ["weights/W"] and tags["graph"]
    assert tags["images"] == ["pictures/image/0", "pictures/image/1"] and tags["tensors"] == ["note"]
    scalars = ea.Scalars("train/loss")
    assert [e.step for e in scalars] == [0, 1, 2]
    np.testing.assert_allclose([e.value for e in scalars], losses, rtol=1e-6)
    for event, w in zip(ea.Histograms("weights/W"), weights):  # the summary saw W before the step wrote it
        h = event.histogram_value
        assert (h.num, h.min, h.max) == (6, pytest.approx(w.min()), pytest.approx(w.max()))
        assert h.sum == pytest.approx(w.sum(), rel=1e-6) and h.sum_squares == pytest.approx((w.astype(float) ** 2).sum())
        assert sum(h.bucket) == 6
    image = ea.Images("pictures/image/1")[-1]
    assert (image.width, image.height) == (3, 1)
    expected = np.clip(np.round(pictures[1] * 255), 0, 255).astype(np.uint8).reshape(1, 3, 1)
    np.testing.assert_array_equal(_png_pixels(image.encoded_image_string, 1, 3, 1), expected)
    text = ea.Tensors("note")[-1].tensor_proto
    assert text.string_val == [b"hello **TensorBoard**"]


def test_the_graph_has_every_op_with_its_type_scope_shape_and_line(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 4), name="x")
        with gc.name_scope("dense"):
            W = gc.Variable(np.zeros((4, 2), np.float32), name="kernel")
            y = gc.nn.relu(gc.matmul(x, W)); line = inspect.currentframe().f_lineno  # noqa: E702
    writer = gc.summary.FileWriter(tmp_path, graph=g)
    writer.close()
    nodes = {n.name: n for n in _load(tmp_path).Graph().node}
    assert set(nodes) == {op.name for op in g.get_operations()}
    relu = nodes[y.op.name]
    assert relu.op == y.op.type and relu.name.startswith("dense/")
    assert relu.attr["location"].s.decode().endswith(f"{HERE}:{line}")
    assert relu.input == [y.op.inputs[0].op.name]
    dims = [d.size for d in relu.attr["_output_shapes"].list.shape[0].dim]
    assert dims == [-1, 2]
    assert nodes["x"].op == "placeholder" and nodes["x"].attr["T"].type == 1  # DT_FLOAT


def test_histograms_follow_tf1s_buckets():
    x = np.array([-3.5, -1e-13, 0.0, 0.0, 2e-12, 1.0, 1.0, 7.25, 1e30, -np.inf], np.float64)
    h = records.histogram_proto(x[np.isfinite(x)])
    limits, counts = _tf1_histogram_counts(x[np.isfinite(x)])
    # every non-empty TF1 bucket appears with its count and limit; empty runs are merged
    got = dict(zip(h.bucket_limit, h.bucket))
    for lim, c in zip(limits, counts):
        if c:
            assert got[lim] == c
    assert sum(h.bucket) == 9 and h.min == -3.5 and h.max == 1e30


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40))
def test_histogram_counts_match_the_rule(values):
    x = np.array(values)
    h = records.histogram_proto(x)
    limits, counts = _tf1_histogram_counts(x)
    assert sum(h.bucket) == len(values)
    got = dict(zip(h.bucket_limit, h.bucket))
    assert all(got[lim] == c for lim, c in zip(limits, counts) if c)
    assert h.min == x.min() and h.max == x.max()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=12), st.sampled_from([1, 3]))
def test_png_round_trips_every_pixel(values, channels):
    pixels = records.to_uint8(np.resize(np.array(values, np.float32), (2, 3, channels)))
    np.testing.assert_array_equal(_png_pixels(records.png(pixels), 2, 3, channels), pixels)


def test_summaries_in_make_callable_and_eval(graph, tmp_path):
    x = gc.placeholder(gc.float64, (), name="x")
    s = gc.summary.merge([gc.summary.scalar("x", x), gc.summary.scalar("x2", x * x)])
    assert gc.summary.merge_all("nothing_here") is None
    with gc.Session(device="reference") as sess:
        run = sess.make_callable([s, x * 3], feed_list=[x])
        data, tripled = run(2.0)
        parsed = gc.Summary.FromString(data)
        assert [(v.tag, v.simple_value) for v in parsed.value] == [("x", 2.0), ("x2", 4.0)] and tripled == 6.0
        assert gc.Summary.FromString(s.eval({x: 5.0}, session=sess)).value[1].simple_value == 25.0


def test_errors_name_the_summary_and_the_line(graph, tmp_path):
    v = gc.placeholder(gc.float32, (3,), name="v")
    with pytest.raises(ValueError, match=rf"scalar\('v'\) at .*{HERE}:\d+: expects a scalar .* 'v:0' of shape \(3,\)"):
        gc.summary.scalar("v", v)
    free = gc.placeholder(gc.float32, None, name="free")
    s = gc.summary.scalar("free", free)
    with gc.Session(device="reference") as sess:
        with pytest.raises(gc.InvalidArgumentError, match=rf"scalar\('free'\) made at .*{HERE}:\d+.*shape \(2,\)"):
            sess.run(s, {free: np.ones(2, np.float32)})
        assert gc.Summary.FromString(sess.run(s, {free: np.float32(4)})).value[0].simple_value == 4.0
    with pytest.raises(ValueError, match=r"image\('v'\).*\[batch, height, width, channels\]"):
        gc.summary.image("v", v)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OSError, match=rf"FileWriter at .*{HERE}:\d+: .*logdir .*a_file"):
        gc.summary.FileWriter(blocker)
    with pytest.raises(OSError, match=r"cannot create logdir"):
        gc.summary.FileWriter(blocker / "below")
    writer = gc.summary.FileWriter(tmp_path / "ok")
    with pytest.raises(TypeError, match="add_summary: summary must be"):
        writer.add_summary(3.0)
    with pytest.raises(ValueError, match="not a serialized Summary"):
        writer.add_summary(b"\xff\xff\xff")
    writer.close()
    with pytest.raises(ValueError, match="is closed"):
        writer.add_summary(gc.Summary())
    with pytest.raises(TypeError, match="every input must be a summary"):
        gc.summary.merge([v])


def test_keras_tensorboard_callback_writes_the_epoch_logs_and_the_graph(tmp_path):
    from graphc import keras
    rng = np.random.RandomState(0)
    x = rng.randn(48, 4).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = keras.Sequential([keras.layers.Dense(5, activation="relu", input_shape=(4,)),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    board = keras.callbacks.TensorBoard(str(tmp_path), histogram_freq=1, write_images=True, update_freq="batch")
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.25, callbacks=[board])
    ea = _load(tmp_path)
    tags = ea.Tags()
    assert set(tags["scalars"]) == {"loss", "acc", "val_loss", "val_acc", "batch_loss", "batch_acc"}
    for name in ("loss", "acc", "val_loss", "val_acc"):
        np.testing.assert_allclose([e.value for e in ea.Scalars(name)], history.history[name], rtol=1e-6)
    assert [e.step for e in ea.Scalars("loss")] == [36, 72]  # update_freq: the samples seen
    assert [e.step for e in ea.Scalars("batch_loss")] == [16, 32, 36, 52, 68, 72]
    names = [w.var_name for w in model.weights]
    assert tags["histograms"] == names and tags["images"] == [f"{n}/image" for n in names]
    final = dict(zip(names, model.get_weights()))
    assert ea.Histograms(names[0])[-1].histogram_value.sum == pytest.approx(final[names[0]].sum(), rel=1e-5)
    assert any(n.op == "matmul" for n in ea.Graph().node)
    with pytest.raises(NotImplementedError, match="write_grads"):
        keras.callbacks.TensorBoard(str(tmp_path), write_grads=True)
    with pytest.raises(ValueError, match="update_freq"):
        keras.callbacks.TensorBoard(str(tmp_path), update_freq="sometimes")

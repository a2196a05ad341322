"""Meta graphs and GraphDefs: a fresh process that never ran the model's code imports the
meta graph that Saver.save wrote, restores the checkpoint and resumes training with the same
losses as an uninterrupted run; GraphDefs round-trip through bytes into another graph; bad
files are FormatErrors."""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import graphc as gc
from graphc.export.model_file import FormatError
from support import build_error

rng = np.random.default_rng(0)
X = rng.standard_normal((32, 5)).astype(np.float32)
Y = (X @ np.arange(5) > 0).astype(np.int64)


def _train_graph():
    x = gc.placeholder(gc.float32, [None, 5], name="x")
    y = gc.placeholder(gc.int64, [None], name="y")
    training = gc.placeholder_with_default(True, (), name="training")
    h = gc.layers.dense(x, 8, activation=gc.nn.relu)
    h = gc.layers.batch_normalization(h, training=training)
    logits = gc.layers.dense(h, 2)
    loss = gc.losses.sparse_softmax_cross_entropy(y, logits)
    step = gc.train.get_or_create_global_step()
    with gc.control_dependencies(gc.get_collection(gc.GraphKeys.UPDATE_OPS)):
        train = gc.train.AdamOptimizer(0.01).minimize(loss, global_step=step)
    gc.add_to_collection("train_op", train)
    gc.add_to_collection("loss", loss)
    return x, y, loss, train


def test_a_fresh_process_resumes_training_from_the_meta_graph_and_checkpoint(tmp_path):
    with gc.Graph().as_default():
        x, y, loss, train = _train_graph()
        saver = gc.train.Saver()
        with gc.Session(device="cpu") as sess:
            sess.run(gc.global_variables_initializer())
            for _ in range(3):
                sess.run(train, {x: X, y: Y})
            saver.save(sess, str(tmp_path / "model.ckpt"))
            uninterrupted = [float(sess.run([train, loss], {x: X, y: Y})[1]) for _ in range(4)]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.ckpt.gcckpt", "model.ckpt.meta"]
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    script = textwrap.dedent(f"""
        import numpy as np
        import graphc as tf
        X, Y = np.load({str(tmp_path / 'x.npy')!r}), np.load({str(tmp_path / 'y.npy')!r})
        saver = tf.train.import_meta_graph({str(tmp_path / 'model.ckpt.meta')!r})
        train, loss = tf.get_collection("train_op")[0], tf.get_collection("loss")[0]
        with tf.Session(device="cpu") as sess:
            saver.restore(sess, {str(tmp_path / 'model.ckpt')!r})
            print(repr([float(sess.run([train, loss], {{"x:0": X, "y:0": Y}})[1]) for _ in range(4)]))
            print(int(sess.run(tf.train.get_global_step())), len(tf.trainable_variables()),
                  len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    resumed_line, counts = done.stdout.strip().splitlines()
    np.testing.assert_allclose(eval(resumed_line), uninterrupted, rtol=1e-6)
    assert counts.split() == ["7", "6", "2"]  # 3 + 4 steps; dense x2 + gamma/beta; both BN updates


def test_graph_defs_round_trip_through_bytes_with_input_map_and_return_elements():
    with gc.Graph().as_default() as g:
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        w = gc.constant(np.arange(6, dtype=np.float32).reshape(3, 2), name="w")
        y = gc.nn.relu(gc.matmul(x, w) - 4.0, name="y")
        with gc.control_dependencies([y]):
            done = gc.no_op(name="done")
        data = g.as_graph_def().SerializeToString()
    graph_def = gc.GraphDef.FromString(data)
    assert [n.name for n in graph_def.node][:2] == ["x", "w"] and "^y" in graph_def.node[-1].input
    with gc.Graph() as other:  # `with g:` makes it the default
        assert gc.get_default_graph() is other
        feed = gc.placeholder(gc.float32, (2, 3), name="feed")
        out, op = gc.import_graph_def(graph_def, input_map={"x": feed * 2.0}, return_elements=["y:0", "done"])
        assert out.name == "import/y:0" and op.name == "import/done" and op.control_inputs[0].name == "import/y"
        value = np.ones((2, 3), np.float32)
        got = gc.Session(device="reference").run(out, {feed: value})
    np.testing.assert_allclose(got, np.maximum((value * 2) @ np.arange(6).reshape(3, 2) - 4, 0))
    assert done.name == "done"
    with gc.Graph().as_default():
        gc.import_graph_def(graph_def, name="")
        with pytest.raises(FormatError, match="already has an op named 'x'"):
            gc.import_graph_def(graph_def, name="")


def test_write_graph_and_session_graph_def(tmp_path):
    with gc.Graph().as_default():
        gc.constant(1.0, name="one")
        with gc.Session(device="reference") as sess:
            path = gc.train.write_graph(sess.graph_def, str(tmp_path), "graph.pbtxt")
    assert [n.name for n in gc.GraphDef.FromString(open(path, "rb").read()).node] == ["one"]


def test_meta_graph_import_scope_collections_and_warnings(tmp_path):
    with gc.Graph().as_default():
        v = gc.Variable(np.ones(2, np.float32), name="v")
        gc.add_to_collection("things", v)
        gc.add_to_collection("things", 3)
        gc.add_to_collection("things", object())
        gc.add_to_collection("ops", gc.assign_add(v, [1.0, 2.0]).op)
        with pytest.warns(UserWarning, match="'things' holds \\['object'\\]"):
            gc.train.export_meta_graph(str(tmp_path / "m.meta"))
    with gc.Graph().as_default():
        gc.constant(0.0, name="v")  # a clash that import_scope avoids
        saver = gc.train.import_meta_graph(str(tmp_path / "m.meta"), import_scope="scoped")
        things = gc.get_collection("things")
        assert things[0].var_name == "scoped/v" and things[1] == 3 and len(things) == 2
        with gc.Session(device="reference") as sess:
            sess.run(gc.global_variables_initializer())
            sess.run(gc.get_collection("ops"))
            np.testing.assert_allclose(sess.run(things[0]), [2.0, 3.0])
        assert saver is not None


def test_bad_meta_graph_files_are_format_errors(tmp_path):
    with gc.Graph().as_default():
        gc.Variable(1.0, name="v")
        gc.train.export_meta_graph(str(tmp_path / "good.meta"))
        model_path = tmp_path / "model.gcm"
        x = gc.placeholder(gc.float32, (1,), name="x")
        with gc.Session(device="reference") as sess:
            gc.export.save_model(sess, str(model_path), inputs={"x": x}, outputs={"y": x * 2})
    good = (tmp_path / "good.meta").read_bytes()
    cases = {"truncated": good[:len(good) // 2], "not a zip": b"PK\x03\x04 nonsense", "empty": b""}
    for name, data in cases.items():
        (tmp_path / f"{name}.meta").write_bytes(data)
        with gc.Graph().as_default(), pytest.raises(FormatError):
            gc.train.import_meta_graph(str(tmp_path / f"{name}.meta"))
    with gc.Graph().as_default(), pytest.raises(FormatError, match="does not describe a graphc graphc-metagraph"):
        gc.train.import_meta_graph(str(model_path))  # a model file is not a meta graph
    build_error(FormatError, lambda: gc.train.import_meta_graph({"nodes": []}), "pass the file")


def test_saver_keeps_meta_graphs_with_their_checkpoints(tmp_path):
    with gc.Graph().as_default():
        v = gc.Variable(np.zeros(2, np.float32), name="v")
        bump = gc.assign_add(v, [1.0, 1.0])
        gc.add_to_collection("odd", object())
        saver = gc.train.Saver(max_to_keep=2)
        with gc.Session(device="reference") as sess, warnings.catch_warnings():
            warnings.simplefilter("error")  # Saver leaves Python objects out of its meta graph quietly, as TF1
            sess.run(gc.global_variables_initializer())
            for step in range(3):
                sess.run(bump)
                saver.save(sess, str(tmp_path / "ckpt"), global_step=step)
            saver.save(sess, str(tmp_path / "plain"), write_meta_graph=False)
    # the newest two checkpoints are kept (ckpt-2 and plain), each with its meta graph, if written
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "ckpt-2.gcckpt", "ckpt-2.meta", "plain.gcckpt"]

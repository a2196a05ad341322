"""gc.export.freeze: variables become constants, training-only nodes are gone, the frozen
graph computes what the session computed."""
import numpy as np
import pytest

import graphc as gc
from graphc import zoo


def _op_types(graph) -> set:
    return {op.type for op in graph.get_operations()}


@pytest.fixture(scope="module")
def trained_lenet():
    model = zoo.lenet(input_shape=(8, 8, 1), channels=(4, 8), hidden=16, seed=3, dropout=0.5)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 10, size=40)
    sess = gc.Session(graph=model.graph, device="reference")
    sess.run(model.init)
    zoo.train(model, sess, x, y, epochs=1, batch_size=20)
    yield model, sess, x
    sess.close()


def test_freeze_keeps_outputs_and_drops_training_nodes(trained_lenet):
    model, sess, x = trained_lenet
    frozen = gc.export.freeze(sess, {"logits": model.logits})
    types = _op_types(frozen.graph)
    # variables, their reads, Adam's updates and slots, the loss, dropout's random draws: gone
    assert not types & {"variable", "read_variable", "assign", "assign_add", "assign_sub", "random_uniform",
                        "sparse_softmax_cross_entropy_with_logits", "where", "placeholder_with_default"}
    assert "conv2d" in types and "const" in types
    assert list(frozen.inputs) == ["x"] and list(frozen.outputs) == ["logits"]
    assert frozen.signature.inputs["x"].shape == (None, 8, 8, 1)
    assert frozen.signature.outputs["logits"].dtype is gc.float32
    # inference mode (training defaults to False) on the session equals the frozen graph
    expected = sess.run(model.logits, {model.x: x[:7]})
    with gc.Session(graph=frozen.graph, device="reference") as s2:
        got = s2.run(frozen.outputs["logits"], {frozen.inputs["x"]: x[:7]})
    np.testing.assert_array_equal(got, expected)


def test_constants_hold_the_session_values_not_the_initial_ones(trained_lenet):
    model, sess, _ = trained_lenet
    frozen = gc.export.freeze(sess, [model.logits])
    kernel = next(v for v in gc.global_variables(model.graph) if v.name.startswith("fc2/kernel"))
    value = sess.run(kernel)
    consts = [op.attrs["value"] for op in frozen.graph.get_operations() if op.type == "const"]
    assert any(c.shape == value.shape and np.array_equal(c, value) for c in consts)
    assert list(frozen.outputs) == ["fc2/BiasAdd"]  # a list of outputs is named after their ops


def test_any_tensor_may_be_an_input(trained_lenet):
    model, sess, x = trained_lenet
    pool = model.graph.get_operation_by_name("pool2").outputs[0]
    frozen = gc.export.freeze(sess, {"logits": model.logits}, inputs={"features": pool})
    assert "conv2d" not in _op_types(frozen.graph)
    feats = sess.run(pool, {model.x: x[:3]})
    with gc.Session(graph=frozen.graph, device="reference") as s2:
        got = s2.run(frozen.outputs["logits"], {frozen.inputs["features"]: feats})
    np.testing.assert_allclose(got, sess.run(model.logits, {model.x: x[:3]}), rtol=1e-6)


def test_freeze_errors_name_the_problem(trained_lenet):
    model, sess, _ = trained_lenet
    with pytest.raises(gc.export.FreezeError, match="placeholder 'x'.*not one of the inputs"):
        gc.export.freeze(sess, {"logits": model.logits}, inputs={"labels": model.labels})
    step_plus = model.global_step.assign_add(1)
    with pytest.raises(gc.export.FreezeError, match="variable update assign_add"):
        gc.export.freeze(sess, {"step": step_plus})
    with pytest.raises(gc.export.FreezeError, match="at least one output"):
        gc.export.freeze(sess, {})
    with pytest.raises(gc.export.FreezeError, match="two outputs are named"):
        gc.export.freeze(sess, [model.logits, model.logits])


def test_constant_subgraphs_fold_and_training_flags_take_their_default():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        flag = gc.placeholder_with_default(False, (), name="training")
        w = gc.Variable(np.arange(3, dtype=np.float32), name="w")
        scale = gc.exp(w * 0.5) + 1.0            # depends only on a variable: folds to one constant
        noisy = gc.nn.dropout(x, rate=0.5, training=flag)
        y = noisy * scale
        init = gc.global_variables_initializer()
    with gc.Session(graph=g, device="reference") as sess:
        sess.run(init)
        frozen = gc.export.freeze(sess, {"y": y})
        types = [op.type for op in frozen.graph.get_operations()]
        assert sorted(types) == ["const", "multiply", "placeholder"], types
        xv = np.ones((2, 3), np.float32)
        with gc.Session(graph=frozen.graph, device="reference") as s2:
            np.testing.assert_allclose(s2.run(frozen.outputs["y"], {frozen.inputs["x"]: xv}),
                                       sess.run(y, {x: xv}), rtol=1e-6)
        # an input that has a default stays optional in the signature
        frozen = gc.export.freeze(sess, {"y": y}, inputs={"x": x, "training": flag})
        assert frozen.signature.inputs["training"].optional
        assert not frozen.signature.inputs["x"].optional

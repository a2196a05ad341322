"""gc.onnx.import_model / import_graph, the command line, errors, and hostile files.

ONNX's own node tests (test_backend_suite.py) check each op's semantics; this file checks
what a user does with an imported model, and that a damaged or malicious file is a clear
error (never a crash, another exception, a hang, or a read outside the model's folder)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import graphc as gc  # noqa: E402
from graphc.onnx import FormatError, ImportError as OnnxImportError  # noqa: E402

pytestmark = pytest.mark.timeout(300)
RNG = np.random.default_rng(0)
W1 = RNG.normal(size=(4, 8)).astype(np.float32)
B1 = RNG.normal(size=(8,)).astype(np.float32)
W2 = RNG.normal(size=(8, 3)).astype(np.float32)


def mlp_model(opset: int = 17) -> "onnx.ModelProto":
    """x (batch, 4) -> Gemm -> Relu -> MatMul -> Softmax, batch symbolic."""
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], name="dense1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "W2"], ["logits"], name="dense2"),
             helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1)]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(W1, "W1"), numpy_helper.from_array(B1, "B1"),
                     numpy_helper.from_array(W2, "W2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="test")
    onnx.checker.check_model(model)
    return model


def mlp_numpy(x):
    logits = np.maximum(x @ W1 + B1, 0) @ W2
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_import_model_runs_like_numpy_with_symbolic_batch(device, tmp_path):
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_model(), str(path))
    model = gc.onnx.import_model(str(path), device=device)
    assert isinstance(model, gc.export.Model)
    assert model.signature.inputs["x"].shape == (None, 4)
    assert model.signature.outputs["probs"].shape == (None, 3)
    for batch in (1, 5):
        x = RNG.normal(size=(batch, 4)).astype(np.float32)
        np.testing.assert_allclose(model(x=x)["probs"], mlp_numpy(x), rtol=1e-5, atol=1e-6)
    assert model.metadata["producer"] == "test"


def test_initializers_fold_into_constants_the_optimizer_fuses():
    model = gc.onnx.import_model(mlp_model(), device="cpu")
    ops = {op.type for op in model.frozen.graph.get_operations()}
    assert "variable" not in ops and "const" in ops
    assert {"matmul", "relu", "softmax"} <= ops


def test_bytes_and_modelproto_import_alike():
    x = RNG.normal(size=(2, 4)).astype(np.float32)
    a = gc.onnx.import_model(mlp_model(), device="reference")(x=x)["probs"]
    b = gc.onnx.import_model(mlp_model().SerializeToString(), device="reference")(x=x)["probs"]
    np.testing.assert_array_equal(a, b)


def test_saved_as_a_graphc_model_file_and_loaded_again(tmp_path):
    model = gc.onnx.import_model(mlp_model(), device="reference")
    gc.export.save_model(model, str(tmp_path / "m.gcm"))
    loaded = gc.export.load_model(str(tmp_path / "m.gcm"), device="reference")
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded(x=x)["probs"], mlp_numpy(x), rtol=1e-5, atol=1e-6)


def test_round_trip_through_to_onnx_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    source = mlp_model()
    model = gc.onnx.import_model(source, device="reference")
    again = gc.export.to_onnx(model, str(tmp_path / "again.onnx"))
    x = RNG.normal(size=(6, 4)).astype(np.float32)
    expected = ort.InferenceSession(source.SerializeToString()).run(None, {"x": x})[0]
    out = ort.InferenceSession(str(tmp_path / "again.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert again is not None


def test_import_graph_into_a_graph_and_train_the_initializers():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 4), name="features")
        y = gc.placeholder(gc.float32, (None, 3), name="labels")
        outputs = gc.onnx.import_graph(mlp_model(), inputs={"x": x}, trainable=True)
        probs = outputs["probs"]
        loss = -gc.reduce_mean(gc.reduce_sum(y * gc.log(probs + 1e-7), axis=1))
        variables = gc.trainable_variables()
        step = gc.train.GradientDescentOptimizer(0.5).minimize(loss)
        init = gc.global_variables_initializer()
    assert len(variables) == 3
    xs = RNG.normal(size=(32, 4)).astype(np.float32)
    ys = np.eye(3, dtype=np.float32)[(xs[:, 0] > 0).astype(int) + (xs[:, 1] > 0).astype(int)]
    with gc.Session(graph=g, device="reference") as sess:
        sess.run(init)
        before = sess.run(loss, {x: xs, y: ys})
        for _ in range(30):
            sess.run(step, {x: xs, y: ys})
        after = sess.run(loss, {x: xs, y: ys})
    assert after < before * 0.8


def test_command_line_converts_to_a_model_file(tmp_path):
    src = tmp_path / "mlp.onnx"
    onnx.save(mlp_model(), str(src))
    out = tmp_path / "mlp.gcm"
    proc = subprocess.run([sys.executable, "-m", "graphc", "import", str(src), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "x: float32(None, 4)" in proc.stdout
    loaded = gc.export.load_model(str(out), device="reference")
    x = RNG.normal(size=(2, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded(x=x)["probs"], mlp_numpy(x), rtol=1e-5, atol=1e-6)
    bad = subprocess.run([sys.executable, "-m", "graphc", "import", str(tmp_path / "none.onnx"), "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "no such file" in bad.stderr


def test_a_shape_input_is_named_and_can_be_given_as_a_constant():
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape_it")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6]),
                                            helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(OnnxImportError, match=r"reshape_it.*shape.*\['shape'\].*constants="):
        gc.onnx.import_model(model)
    fixed = gc.onnx.import_model(model, device="reference", constants={"shape": np.array([3, 4])})
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_array_equal(fixed(x=x)["y"], x.reshape(3, 4))
    assert list(fixed.signature.inputs) == ["x"]


def test_backend_runs_a_node_and_fixes_shape_inputs_per_run():
    from graphc.onnx import backend
    node = helper.make_node("Tile", ["x", "repeats"], ["y"])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for reps in ([2, 1], [1, 3]):
        (y,) = backend.run_node(node, [x, np.array(reps, dtype=np.int64)], device="CPU", graphc_device="reference")
        np.testing.assert_array_equal(y, np.tile(x, reps))
    assert backend.supports_device("CPU") and not backend.supports_device("TPU")


# --- errors and hostile files ----------------------------------------------------------------------
def _single(op, inputs, outputs, opset=17, **attrs):
    node = helper.make_node(op, [n for n, _, _ in inputs], outputs, name=f"the_{op.lower()}", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_an_unknown_op_names_the_node_and_the_op():
    model = _single("Relu", [("x", TensorProto.FLOAT, [2])], ["y"])
    model.graph.node[0].op_type = "NoSuchOp"
    with pytest.raises(OnnxImportError, match=r"node 'the_relu' \(NoSuchOp\).*does not import the ONNX op 'NoSuchOp'"):
        gc.onnx.import_model(model)


def test_an_unknown_domain_is_named():
    model = _single("Relu", [("x", TensorProto.FLOAT, [2])], ["y"])
    model.graph.node[0].domain = "com.example.secret"
    with pytest.raises(OnnxImportError, match=r"'Relu' of domain 'com.example.secret'"):
        gc.onnx.import_model(model)


def test_mismatched_types_name_the_node():
    model = _single("Add", [("a", TensorProto.FLOAT, [2]), ("b", TensorProto.INT64, [2])], ["y"])
    with pytest.raises(OnnxImportError, match=r"the_add.*float32.*int64"):
        gc.onnx.import_model(model)


def test_an_unsupported_dtype_is_named():
    model = _single("Relu", [("x", TensorProto.STRING, [2])], ["y"])
    with pytest.raises(OnnxImportError, match=r"graph input 'x' is of ONNX type string"):
        gc.onnx.import_model(model)


def test_a_cycle_is_an_error_not_a_hang():
    a = helper.make_node("Relu", ["b"], ["a"], name="first")
    b = helper.make_node("Relu", ["a"], ["b"], name="second")
    graph = helper.make_graph([a, b], "g", [], [helper.make_tensor_value_info("a", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(OnnxImportError, match=r"cycle"):
        gc.onnx.import_model(model)


def test_a_read_of_an_undefined_name_is_named():
    model = _single("Relu", [("x", TensorProto.FLOAT, [2])], ["y"])
    model.graph.node[0].input[0] = "ghost"
    with pytest.raises(OnnxImportError, match=r"the_relu.*reads 'ghost'"):
        gc.onnx.import_model(model)


def test_a_huge_declared_tensor_is_refused_before_it_is_allocated():
    model = mlp_model()
    t = model.graph.initializer[0]
    del t.dims[:]
    t.dims.extend([1 << 20, 1 << 20])
    with pytest.raises(OnnxImportError, match=r"tensor 'W1' declares shape \[1048576, 1048576\]"):
        gc.onnx.import_model(model)


def test_data_that_does_not_match_its_shape_is_an_error():
    model = mlp_model()
    model.graph.initializer[0].raw_data = model.graph.initializer[0].raw_data[:-4]
    with pytest.raises(OnnxImportError, match=r"W1.*does not match"):
        gc.onnx.import_model(model)


def test_bytes_that_are_no_model_are_a_format_error(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00\xff garbage that is not a protobuf \x13\x37" * 10)
    with pytest.raises(FormatError, match=r"junk.onnx: not an ONNX model"):
        gc.onnx.import_model(str(path))
    with pytest.raises(FormatError, match=r"no such file"):
        gc.onnx.import_model(str(tmp_path / "missing.onnx"))


def _external(model, location: str):
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    t.external_data.add(key="location", value=location)
    return model


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(W1.tobytes())
    folder = tmp_path / "models"
    folder.mkdir()
    for location in ("../secret.bin", str(secret)):
        path = folder / "m.onnx"
        path.write_bytes(_external(mlp_model(), location).SerializeToString())
        with pytest.raises(OnnxImportError, match=r"'W1'.*(outside the model's folder|relative path)"):
            gc.onnx.import_model(str(path))


def test_external_data_inside_the_folder_loads(tmp_path):
    (tmp_path / "w1.bin").write_bytes(W1.tobytes())
    path = tmp_path / "m.onnx"
    path.write_bytes(_external(mlp_model(), "w1.bin").SerializeToString())
    model = gc.onnx.import_model(str(path), device="reference")
    x = RNG.normal(size=(2, 4)).astype(np.float32)
    np.testing.assert_allclose(model(x=x)["probs"], mlp_numpy(x), rtol=1e-5, atol=1e-6)
    (tmp_path / "w1.bin").write_bytes(W1.tobytes()[:8])
    with pytest.raises(OnnxImportError, match=r"W1"):
        gc.onnx.import_model(str(path))


def test_no_pickle_is_used_on_import(monkeypatch):
    import pickle
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("pickle.loads called"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("pickle.load called"))
    gc.onnx.import_model(mlp_model(), device="reference")


VALID = mlp_model().SerializeToString()


@settings(max_examples=int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "0")) or 150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_files_are_clear_errors_or_valid_models(data):
    """Flipped bytes and truncation: a GraphcError (FormatError, ImportError, or an error of
    the graph the file describes), or a model that runs with the declared output shape."""
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    try:
        model = gc.onnx.import_model(bytes(raw), device="reference")
    except gc.GraphcError:
        return
    x = np.ones((2, 4), np.float32)
    try:
        outputs = model.run({k: x for k in model.signature.inputs if k == "x"})
    except gc.GraphcError:
        return
    for name, value in outputs.items():
        spec = model.signature.outputs[name]
        assert value.dtype == spec.dtype.np
        assert len(value.shape) == len(spec.shape)


def test_every_converter_module_is_documented():
    doc = open(os.path.join(os.path.dirname(gc.__file__), "..", "docs", "IMPORT-ONNX.md")).read()
    from graphc.onnx.importer import CONVERTERS
    import graphc.onnx  # noqa: F401
    gc.onnx.import_model(mlp_model(), device="reference")   # registers the converters
    missing = [op for op in CONVERTERS if f"`{op}`" not in doc]
    assert not missing, f"docs/IMPORT-ONNX.md does not list {missing}"


def _conv_model() -> "onnx.ModelProto":
    """Conv -> MaxPool -> Reshape -> Gemm -> Softmax: nodes with many attributes to damage."""
    w = RNG.normal(size=(2, 1, 3, 3)).astype(np.float32)
    fc = RNG.normal(size=(8, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[1, 1]),
             helper.make_node("MaxPool", ["c"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Reshape", ["p", "shape"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc"], ["y"], name="dense", transB=0),
             helper.make_node("Softmax", ["y"], ["probs"], name="softmax", axis=1)]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 3])],
                              initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(fc, "fc"),
                                           numpy_helper.from_array(np.array([1, 8], np.int64), "shape")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


_OPS = ["Add", "Relu", "Conv", "MaxPool", "Reshape", "Gemm", "Softmax", "Transpose", "Slice", "Gather", "Concat",
        "Split", "Squeeze", "Unsqueeze", "Pad", "Resize", "TopK", "LSTM", "Loop", "If", "Einsum", "Expand", "Tile"]


@settings(max_examples=int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "0")) or 150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_structurally_damaged_models_are_clear_errors_or_valid_models(data):
    """Valid protobufs with wrong contents: attributes of other values or kinds, other op
    types, missing or extra inputs, other dims and element types."""
    model = _conv_model()
    for _ in range(data.draw(st.integers(1, 3))):
        node = model.graph.node[data.draw(st.integers(0, len(model.graph.node) - 1))]
        kind = data.draw(st.sampled_from(["attr_int", "attr_ints", "attr_kind", "op", "drop_input", "add_input",
                                          "dims", "elem_type"]))
        if kind.startswith("attr") and node.attribute:
            attr = node.attribute[data.draw(st.integers(0, len(node.attribute) - 1))]
            if kind == "attr_int":
                attr.type, attr.i = attr.INT, data.draw(st.integers(-(1 << 40), 1 << 40))
                del attr.ints[:]
            elif kind == "attr_ints":
                attr.type = attr.INTS
                del attr.ints[:]
                attr.ints.extend(data.draw(st.lists(st.integers(-5, 1 << 33), max_size=6)))
            else:
                attr.type, attr.s = attr.STRING, b"\xffnot a number"
        elif kind == "op":
            node.op_type = data.draw(st.sampled_from(_OPS))
        elif kind == "drop_input" and node.input:
            del node.input[-1]
        elif kind == "add_input":
            node.input.append(data.draw(st.sampled_from(["x", "w", "shape", "", "fc"])))
        elif kind == "dims":
            dims = model.graph.input[0].type.tensor_type.shape.dim
            dims[data.draw(st.integers(0, 3))].dim_value = data.draw(st.integers(0, 9))
        elif kind == "elem_type":
            model.graph.input[0].type.tensor_type.elem_type = data.draw(st.sampled_from([1, 6, 7, 9, 11]))
    try:
        imported = gc.onnx.import_model(model.SerializeToString(), device="reference")
    except gc.GraphcError:
        return
    spec = imported.signature.inputs["x"]
    shape = tuple(1 if d is None else d for d in spec.shape)
    try:
        outputs = imported.run({"x": np.ones(shape, spec.dtype.np)})
    except gc.GraphcError:
        return
    for name, value in outputs.items():
        assert value.dtype == imported.signature.outputs[name].dtype.np


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("kind", ["float16", "bfloat16"])
def test_narrow_float_rounding_is_the_narrow_types_own(kind, device):
    """float16 and bfloat16 are emulated as float32 rounded after each op: the rounding must
    give the bits of NumPy's (ml_dtypes') cast, ties, subnormals, overflow and NaN included."""
    import ml_dtypes
    from graphc.onnx.narrow import BY_NAME
    narrow = np.float16 if kind == "float16" else ml_dtypes.bfloat16
    rng = np.random.default_rng(1)
    values = np.concatenate([
        rng.normal(scale=s, size=4000).astype(np.float32) for s in (1e-8, 1e-5, 1e-3, 1.0, 300.0, 6e4, 1e37)])
    # exact ties between two narrow neighbours, and the edges of the range
    grid = np.arange(1, 2000, dtype=np.float32).astype(narrow).astype(np.float32)
    ties = (grid[:-1] + (grid[1:] - grid[:-1]) / 2).astype(np.float32)
    edges = np.array([0.0, -0.0, 65504, 65519, 65520, 65536, 2 ** -14, 2 ** -24, 2 ** -25, 3e-8, np.inf, -np.inf,
                      np.nan, 3.3895e38, 3.4e38], np.float32)
    x = np.concatenate([values, ties, edges])
    g = gc.Graph()
    with g.as_default():
        p = gc.placeholder(gc.float32, (None,))
        y = BY_NAME[kind].fit(p)
    with np.errstate(over="ignore"):
        expected = x.astype(narrow).astype(np.float32)
    got = gc.Session(graph=g, device=device).run(y, {p: x})
    np.testing.assert_array_equal(got, expected)

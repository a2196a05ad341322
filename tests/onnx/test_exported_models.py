"""Models that real exporters wrote (tests/onnx/models/make_models.py: torch.onnx for a CNN
and an LSTM, skl2onnx for a scikit-learn pipeline) import and match what their source
framework computed, on the reference and the cpu backend; exported again, they match
onnxruntime; the CNN compiles into a native library whose C program, run under ``env -i``,
gets onnxruntime's outputs."""
from __future__ import annotations

import importlib.util
import os
import shutil

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
import graphc as gc  # noqa: E402

MODELS = os.path.join(os.path.dirname(__file__), "models")


def _load(name: str):
    path = os.path.join(MODELS, f"{name}.onnx")
    with np.load(os.path.join(MODELS, f"{name}.npz"), allow_pickle=False) as data:
        arrays = dict(data)
    return path, arrays


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("name, inputs", [("torch_lenet", ["images"]), ("torch_lstm", ["sequence"])])
def test_torch_exports_match_torch(name, inputs, device):
    path, arrays = _load(name)
    model = gc.onnx.import_model(path, device=device)
    outputs = model.run({k: arrays[k] for k in inputs})
    expected = {k: v for k, v in arrays.items() if k not in inputs}
    assert set(outputs) == set(expected)
    for k, v in expected.items():
        np.testing.assert_allclose(outputs[k], v, rtol=1e-4, atol=1e-5, err_msg=k)


def test_the_torch_cnn_keeps_its_symbolic_batch():
    path, arrays = _load("torch_lenet")
    model = gc.onnx.import_model(path, device="reference")
    assert model.signature.inputs["images"].shape == (None, 1, 28, 28)
    one = model(images=arrays["images"][:1])["log_probs"]
    np.testing.assert_allclose(one, arrays["log_probs"][:1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_sklearn_pipeline_matches_sklearn(device):
    """skl2onnx's StandardScaler -> PCA -> LogisticRegression: ai.onnx.ml's Scaler,
    LinearClassifier and Normalizer around a MatMul."""
    path, arrays = _load("sklearn_pipeline")
    model = gc.onnx.import_model(path, device=device)
    out = model.run({"X": arrays["X"]})
    np.testing.assert_array_equal(out["label"], arrays["label"])
    np.testing.assert_allclose(out["probabilities"], arrays["probabilities"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name, inputs", [("torch_lenet", ["images"]), ("torch_lstm", ["sequence"])])
def test_exported_again_matches_onnxruntime_on_the_source(name, inputs, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path, arrays = _load(name)
    feeds = {k: arrays[k] for k in inputs}
    source = ort.InferenceSession(path).run(None, feeds)
    again = tmp_path / "again.onnx"
    gc.export.to_onnx(gc.onnx.import_model(path, device="reference"), str(again))
    ours = ort.InferenceSession(str(again)).run(None, feeds)
    names = [o.name for o in ort.InferenceSession(str(again)).get_outputs()]
    src_names = [o.name for o in ort.InferenceSession(path).get_outputs()]
    for n, value in zip(names, ours):
        np.testing.assert_allclose(value, source[src_names.index(n)], rtol=1e-4, atol=1e-5, err_msg=n)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_imported_cnn_as_a_native_library_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    spec = importlib.util.spec_from_file_location(
        "native_helpers", os.path.join(os.path.dirname(__file__), "..", "export", "test_native.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    path, arrays = _load("torch_lenet")
    images = arrays["images"]
    expected = ort.InferenceSession(path).run(None, {"images": images})[0]
    lib = gc.export.shared_library(gc.onnx.import_model(path, device="reference"), path=tmp_path, name="lenet")
    exe = helpers.compile_c(lib, helpers.runner_source(lib), "runner")
    status, results = helpers.run_native(lib, exe, {"images": images})
    assert status.startswith("status 0"), status
    np.testing.assert_allclose(results["log_probs"], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["mlp", "lenet"])
def test_zoo_models_round_trip_through_import(name, tmp_path):
    """graphc's own zoo models: exported to ONNX, imported, exported again; the second file
    computes what the first does in ONNX Runtime."""
    ort = pytest.importorskip("onnxruntime")
    from graphc import zoo
    model = zoo.mlp(seed=0, hidden=32) if name == "mlp" else zoo.lenet(seed=0, channels=(4, 8), hidden=16)
    with gc.Session(graph=model.graph, device="reference") as sess:
        sess.run(model.init)
        first = tmp_path / "first.onnx"
        gc.export.to_onnx(sess, str(first), inputs={"x": model.x}, outputs={"logits": model.logits})
    second = tmp_path / "second.onnx"
    gc.export.to_onnx(gc.onnx.import_model(str(first), device="reference"), str(second))
    x = np.random.default_rng(0).normal(size=(5, 8, 8, 1)).astype(np.float32)
    want = ort.InferenceSession(str(first)).run(None, {"x": x})[0]
    got = ort.InferenceSession(str(second)).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

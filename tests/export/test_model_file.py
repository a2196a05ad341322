"""Model files: save_model / load_model round trips (every op sample, the digits models, a
fresh process), the Model API, and every check a loaded file goes through."""
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import file_damage
import graphc as gc
from graphc import zoo
from graphc.export.attr_schema import ATTR_TYPES
from graphc.export.model_file import MAX_ELEMENTS
from graphc.ops.registry import OPS
from op_samples import SAMPLES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _placeholders(sample):
    return [gc.placeholder(gc.as_dtype(np.asarray(a).dtype), shape=np.asarray(a).shape, name=f"in{i}")
            for i, a in enumerate(sample.inputs)]


@pytest.mark.parametrize("op_name", sorted(SAMPLES))
def test_every_op_sample_round_trips(op_name, tmp_path):
    """Saving covers every attribute of every op (a new attribute without a schema fails
    here), and the loaded graph computes what the original computed."""
    for k, sample in enumerate(SAMPLES[op_name]):
        g = gc.Graph()
        with g.as_default():
            ins = _placeholders(sample)
            out = sample.build(*ins)
        feeds = dict(zip(ins, sample.inputs))
        with gc.Session(graph=g, device="reference") as sess:
            expected = sess.run(out, feeds)
            path = tmp_path / f"{op_name}-{k}.gcm"
            gc.export.save_model(sess, path, inputs={f"in{i}": t for i, t in enumerate(ins)}, outputs={"out": out})
        model = gc.export.load_model(path, device="reference")
        got = model(**{f"in{i}": v for i, v in enumerate(sample.inputs)})["out"]
        assert got.dtype == expected.dtype and got.shape == expected.shape, f"{op_name} sample {k}"
        np.testing.assert_array_equal(got, expected, err_msg=f"{op_name} sample {k}")


def test_every_registered_attribute_name_has_a_type():
    from graphc.ops import catalog  # noqa: F401
    import inspect
    names = set()
    for opdef in OPS.values():
        for fn in (opdef.infer, opdef.reference):
            source = inspect.getsource(inspect.getmodule(fn))
            names |= {m for m in __import__("re").findall(r'attrs\["([a-z_]+)"\]', source)}
    assert not names - set(ATTR_TYPES), f"attributes with no model-file type: {sorted(names - set(ATTR_TYPES))}"


@pytest.fixture(scope="module")
def digits_models(tmp_path_factory):
    """The MLP and the LeNet CNN, briefly trained on digits, saved; with reference outputs."""
    from graphc import datasets
    x_train, y_train, x_test, _ = datasets.load_digits()
    mean, std = zoo.standardization(x_train)
    out = {}
    root = tmp_path_factory.mktemp("models")
    for name, model in (("mlp", zoo.mlp(hidden=32, input_mean=mean, input_std=std)),
                        ("lenet", zoo.lenet(channels=(4, 8), hidden=16, dropout=0.25))):
        with gc.Session(graph=model.graph) as sess:
            sess.run(model.init)
            zoo.train(model, sess, x_train[:300], y_train[:300], epochs=1)
            path = str(root / f"{name}.gcm")
            gc.export.save_model(sess, path, inputs={"x": model.x}, outputs={"logits": model.logits},
                                 metadata={"model": name})
            out[name] = (path, sess.run(model.logits, {model.x: x_test[:37]}))
    np.save(root / "x.npy", x_test[:37])
    return out, str(root / "x.npy")


def test_digits_models_run_in_a_fresh_process_without_their_code(digits_models):
    models, x_path = digits_models
    for name, (path, expected) in models.items():
        np.save(path + ".expected.npy", expected)
    script = textwrap.dedent(f"""
        import sys, numpy as np, graphc as gc
        x = np.load({x_path!r})
        for path in {[p for p, _ in models.values()]!r}:
            model = gc.export.load_model(path)
            assert list(model.signature.inputs) == ["x"] and model.signature.inputs["x"].shape == (None, 8, 8, 1)
            assert model.signature.outputs["logits"].shape == (None, 10)
            got = model(x=x)["logits"]
            one = model(x=x[:1])["logits"]
            want = np.load(path + ".expected.npy")
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(one, want[:1], rtol=1e-5, atol=1e-5)
            print(path, model.metadata["model"], model.graphc_version, "ok")
        assert "graphc.zoo" not in sys.modules, "loading needed the model-building code"
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count(" ok") == 2 and "mlp" in run.stdout and "lenet" in run.stdout


def test_model_api(digits_models):
    models, x_path = digits_models
    path, expected = models["mlp"]
    x = np.load(x_path)
    with gc.export.load_model(path, device="reference") as model:
        assert model.metadata == {"model": "mlp"} and model.created.endswith("Z")
        assert "x: float32(None, 8, 8, 1)" in str(model.signature)
        np.testing.assert_allclose(model({"x": x})["logits"], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(model.run({"x": x}, outputs="logits")["logits"], expected, rtol=1e-5, atol=1e-5)
        with pytest.raises(gc.FeedError, match=r"input\(s\) \['x'\] not given.*x: float32\(None, 8, 8, 1\)"):
            model()
        with pytest.raises(gc.FeedError, match=r"no input\(s\) \['y'\]"):
            model(x=x, y=x)
        with pytest.raises(gc.FeedError, match=r"no output\(s\) \['probs'\]"):
            model.run({"x": x}, outputs=["probs"])
        with pytest.raises(gc.FeedError, match="x:0"):
            model(x=x[:, :4])      # wrong shape: the session's feed check names the tensor
        # a loaded model can be saved again, and is the same model
        again = path + ".again.gcm"
        gc.export.save_model(model, again)
        np.testing.assert_array_equal(gc.export.load_model(again, device="reference")(x=x)["logits"],
                                      model(x=x)["logits"])


def test_random_ops_are_reproducible_after_loading(tmp_path):
    g = gc.Graph()
    with g.as_default():
        gc.set_random_seed(7)
        x = gc.placeholder(gc.float32, (None, 4), name="x")
        y = x + gc.random_normal((4,), seed=3)
    with gc.Session(graph=g, device="reference") as sess:
        first = sess.run(y, {x: np.zeros((2, 4), np.float32)})
        gc.export.save_model(sess, tmp_path / "r.gcm", outputs={"y": y})
    model = gc.export.load_model(tmp_path / "r.gcm", device="reference")
    np.testing.assert_array_equal(model(x=np.zeros((2, 4), np.float32))["y"], first)


def test_save_is_atomic_and_replaces(tmp_path, digits_models):
    models, _ = digits_models
    target = tmp_path / "m.gcm"
    target.write_bytes(b"old")
    model = gc.export.load_model(models["mlp"][0], device="reference")
    gc.export.save_model(model, target)
    assert zipfile.is_zipfile(target)
    assert os.listdir(tmp_path) == ["m.gcm"]   # no temporary file left behind


# -- validation: each problem is a FormatError that says what and where ----------------------------------
def _small_model_bytes():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        w = gc.Variable(np.arange(6, dtype=np.float32).reshape(3, 2), name="w")
        y = gc.nn.relu(gc.matmul(x, w) + 1.0, name="y")
        init = gc.global_variables_initializer()
    with gc.Session(graph=g, device="reference") as sess:
        sess.run(init)
        frozen = gc.export.freeze(sess, {"y": y})
    from graphc.export.model_file import encode
    return encode(frozen)


def _parts(data: bytes):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return json.loads(z.read("model.json")), z.read("weights.npz")


def _pack(document, weights: bytes, extra=()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("model.json", document if isinstance(document, (bytes, str)) else json.dumps(document))
        z.writestr("weights.npz", weights)
        for name, data in extra:
            z.writestr(name, data)
    return out.getvalue()


def _npz(arrays: dict) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _load_bytes(tmp_path, data: bytes):
    path = tmp_path / "bad.gcm"
    path.write_bytes(data)
    return gc.export.load_model(path, device="reference")


def _node(document, name):
    return next(n for n in document["nodes"] if n["name"] == name)


def _const_node(document):
    return next(n for n in document["nodes"] if n["op"] == "const" and n["outputs"][0]["shape"] == [3, 2])


def _edit(fn):
    def make():
        document, weights = _parts(_small_model_bytes())
        result = fn(document, weights)
        return _pack(*result) if isinstance(result, tuple) else _pack(document, weights)
    return make


CASES = {
    "unknown op": (_edit(lambda d, w: _node(d, "y").update(op="os_system")), "unknown op 'os_system'"),
    "state op": (_edit(lambda d, w: _node(d, "y").update(op="assign")), "needs session state"),
    "wrong attribute type": (_edit(lambda d, w: _node(d, "MatMul")["attrs"].update(transpose_a="yes")),
                             "attribute 'transpose_a' must be a bool"),
    "unknown attribute": (_edit(lambda d, w: _node(d, "MatMul")["attrs"].update(evil=1)),
                          "attribute 'evil' must be a known attribute name"),
    "attribute the op rejects": (_edit(lambda d, w: _node(d, "x")["attrs"].update(dtype={"dtype": "complex128"})),
                                 "unknown dtype 'complex128'"),
    "dangling edge": (_edit(lambda d, w: _node(d, "MatMul").update(inputs=["x:0", "nowhere:0"])),
                      "'nowhere:0' refers to no node"),
    "cycle": (_edit(lambda d, w: _node(d, "MatMul").update(inputs=["x:0", "y:0"])), "a cycle"),
    "self loop": (_edit(lambda d, w: _node(d, "y").update(inputs=["y:0"])), "reads itself"),
    "missing output index": (_edit(lambda d, w: _node(d, "MatMul").update(inputs=["x:0", "x:1"])),
                             "has no output 'x:1'"),
    "shape conflict": (_edit(lambda d, w: _node(d, "y")["outputs"][0].update(shape=[None, 3])),
                       r"recorded as float32\[None, 3\].*float32\[None, 2\]"),
    "dtype conflict": (_edit(lambda d, w: _node(d, "y")["outputs"][0].update(dtype="float64")),
                       "shape or dtype conflict"),
    "input shape conflict": (_edit(lambda d, w: [_node(d, "x")["attrs"].update(shape=[None, 4]),
                                                 _node(d, "x")["outputs"][0].update(shape=[None, 4])] and None),
                             r"node \d+ \('MatMul'\), op matmul: the op rejects its inputs"),
    "weights missing": (_edit(lambda d, w: (d, _npz({}))), r"missing \['w"),
    "unexpected weights": (_edit(lambda d, w: (d, _npz({"w0": np.zeros((3, 2), np.float32),
                                                         "w1": np.zeros((3, 2), np.float32),
                                                         "w9": np.zeros(1)}))), "unexpected"),
    "weights of the wrong shape": (_edit(lambda d, w: (d, _npz({
        _const_node(d)["attrs"]["value"]["array"]: np.zeros((2, 3), np.float32),
        **{n["attrs"]["value"]["array"]: np.float32(1.0) for n in d["nodes"]
           if n["op"] == "const" and n["outputs"][0]["shape"] == []}}))), "stored as float32"),
    "declared weight shape conflicts": (_edit(lambda d, w: _const_node(d)["attrs"]["value"].update(shape=[6])),
                                        "should hold|stored as"),
    "pickled weights": (_edit(lambda d, w: _const_node(d)["attrs"]["value"].update(dtype="object")),
                        "stored arrays are bool, integer, float or complex"),
    "absurd size": (_edit(lambda d, w: _const_node(d)["attrs"]["value"].update(shape=[1 << 20, 1 << 20])),
                    f"more than {MAX_ELEMENTS} elements"),
    "absurd placeholder shape": (_edit(lambda d, w: _node(d, "x")["attrs"].update(shape=[None, 1 << 40])),
                          f"more than {MAX_ELEMENTS} elements"),
    "newer version": (_edit(lambda d, w: d.update(version=99)), "newer graphc .*format version 99"),
    "not a model": (_edit(lambda d, w: d.update(format="zip")), "does not describe a graphc model"),
    "placeholder outside the signature": (_edit(lambda d, w: d["signature"].update(inputs=[])),
                                          r"placeholder\(s\) \['x'\] are not inputs"),
    "output of no node": (_edit(lambda d, w: d["signature"]["outputs"][0].update(tensor="z:0")),
                          "'z:0' is not produced by any node"),
    "signature type conflict": (_edit(lambda d, w: d["signature"]["outputs"][0].update(shape=[None, 5])),
                                "shape or dtype conflict"),
    "duplicate node": (_edit(lambda d, w: d["nodes"].append(dict(_node(d, "y")))), "already exists"),
    "bad metadata": (_edit(lambda d, w: d.update(metadata={"a": 1})), "metadata must map strings"),
    "NaN literal in JSON": (lambda: _pack(json.dumps(_parts(_small_model_bytes())[0]).replace('"metadata": {}',
                                                                                               '"metadata": NaN'),
                                          _parts(_small_model_bytes())[1]), "not valid JSON"),
    "path that escapes": (lambda: _pack(*_parts(_small_model_bytes()), extra=[("../../evil.sh", b"rm -rf /")]),
                          r"unexpected archive member\(s\) \['../../evil.sh'\]"),
    "not a zip": (lambda: b"#!/bin/sh\necho hello\n", "not a readable zip archive"),
    "truncated": (lambda: _small_model_bytes()[:300], "not a readable zip archive|damaged"),
    "no weights member": (lambda: _pack_only_json(), "no weights.npz"),
    # decompression bombs: a few KB that would inflate to many MB before any check
    "JSON bomb (bzip2)": (lambda: _bomb("model.json", zipfile.ZIP_BZIP2), "compressed with method 12"),
    "JSON bomb (deflate)": (lambda: _bomb("model.json", zipfile.ZIP_DEFLATED), "at most 200x"),
    "weights bomb (compressed npz)": (lambda: _bomb("weights.npz", zipfile.ZIP_DEFLATED),
                                      "weights.npz is compressed"),
    "weights larger than declared": (lambda: _bomb("weights.npz", zipfile.ZIP_STORED),
                                     "the arrays the graph declares need at most"),
    "compressed array member": (_edit(lambda d, w: (d, _compressed_npz(w))), "is compressed"),
    # damage that once escaped as another exception (tests/file_damage.py)
    "deeply nested JSON": (lambda: _pack(file_damage.nested_json(100_000), _parts(_small_model_bytes())[1]),
                           "not valid JSON"),
    "untokenizable .npy header": (_edit(lambda d, w: (d, _replace_npy(w, file_damage.npy_with_header(
        file_damage.UNTOKENIZABLE_HEADER, b"\0" * 24)))), "not a valid .npy array"),
    ".npy header declaring 2**40 elements": (_edit(lambda d, w: (d, _replace_npy(w, file_damage.huge_npy(
        data=b"\0" * 24)))), "stored as float32"),
    "zip member needing a future zip version": (lambda: file_damage.bump_zip_version(_small_model_bytes(),
                                                                                     "model.json"), "zip file version 25.5"),
}


def _replace_npy(weights: bytes, npy: bytes) -> bytes:
    """The weights archive with its (3, 2) float32 array's member replaced by ``npy``."""
    with zipfile.ZipFile(io.BytesIO(weights)) as z:
        members = {name: z.read(name) for name in z.namelist()}
    victim = next(name for name, data in members.items() if np.load(io.BytesIO(data)).shape == (3, 2))
    members[victim] = npy
    return file_damage.rezip(members)


def _compressed_npz(weights: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(weights)) as original, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in original.namelist():
            z.writestr(name, original.read(name))
    return out.getvalue()


def _bomb(member: str, compression: int, inner_compression: int = zipfile.ZIP_STORED) -> bytes:
    """A small file that would decompress to a huge ``member``."""
    document, weights = _parts(_small_model_bytes())
    if member == "model.json":
        document["pad"] = [[]] * 5_000_000   # ~15 MB of JSON that compresses to a few KB
        text = json.dumps(document)
    else:
        text = json.dumps(document)
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w", inner_compression) as z:
            with zipfile.ZipFile(io.BytesIO(weights)) as original:
                for name in original.namelist():
                    z.writestr(name, original.read(name))
            z.writestr("w9.npy", b"\0" * 20_000_000)
        weights = inner.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        z.writestr("model.json", text)
        z.writestr("weights.npz", weights)
    return out.getvalue()


def _pack_only_json():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("model.json", json.dumps(_parts(_small_model_bytes())[0]))
    return out.getvalue()


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_files_are_format_errors(case, tmp_path):
    make, pattern = CASES[case]
    with pytest.raises(gc.export.FormatError, match=pattern):
        _load_bytes(tmp_path, make())


def test_the_unedited_small_model_loads(tmp_path):
    model = _load_bytes(tmp_path, _edit(lambda d, w: None)())
    got = model(x=np.ones((2, 3), np.float32))["y"]
    np.testing.assert_allclose(got, np.maximum(np.ones((2, 3)) @ np.arange(6).reshape(3, 2) + 1.0, 0))


def test_missing_file(tmp_path):
    with pytest.raises(gc.export.FormatError, match="no model file"):
        gc.export.load_model(tmp_path / "nothing.gcm")


def test_bombs_are_small_files(tmp_path):
    """The bomb cases above really are small files claiming much more (so the test means it)."""
    for member, method in (("model.json", zipfile.ZIP_DEFLATED), ("weights.npz", zipfile.ZIP_DEFLATED)):
        data = _bomb(member, method)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            assert len(data) < 200_000 and z.getinfo(member).file_size > 10_000_000


def test_inference_errors_point_at_the_node_location_from_the_file(tmp_path):
    document, weights = _parts(_small_model_bytes())
    w = _const_node(document)["name"] + ":0"
    _node(document, "MatMul")["inputs"] = [w, w]     # (3, 2) @ (3, 2) cannot multiply
    _node(document, "MatMul")["location"] = "train.py:42"
    with pytest.raises(gc.export.FormatError, match=r"(?s)MatMul.*created at train\.py:42"):
        _load_bytes(tmp_path, _pack(document, weights))


def test_inspect_command_checks_and_describes_a_file(digits_models, tmp_path):
    models, _ = digits_models
    out = subprocess.run([sys.executable, "-m", "graphc", "inspect", models["lenet"][0]], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "format version 1" in out.stdout and "(x: float32(None, 8, 8, 1)) -> (logits: float32(None, 10))" \
        in out.stdout and "2 conv2d" in out.stdout and "metadata: model = lenet" in out.stdout
    bad = tmp_path / "bad.gcm"
    bad.write_bytes(b"garbage")
    out = subprocess.run([sys.executable, "-m", "graphc", "inspect", str(bad)], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 1 and out.stdout.startswith("invalid: ") and "not a readable zip" in out.stdout


def test_importing_graphc_loads_no_exporter_and_no_numba():
    """gc.export's exporters load on first use: `import graphc` stays light."""
    code = ("import sys, graphc as gc; print(sorted(m for m in ('numba', 'graphc.export.native', 'graphc.export.onnx', "
            "'graphc.export.model') if m in sys.modules)); gc.export.shared_library; "
            "print('graphc.export.native' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "True"]

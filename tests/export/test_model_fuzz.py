"""Fuzzing model files: damaged files (flipped bytes, truncation, edited JSON, swapped
weights) either fail to load with a FormatError or load into a model whose outputs are
well-defined: the declared dtype and shape, or, for an input the (valid) graph cannot take,
graphc's run-time error naming the op. Never a crash, another exception, or a hang."""
import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import file_damage
import graphc as gc
from graphc.export.model_file import encode

# A hang is a failure: no test here may take long (each runs in seconds).
pytestmark = pytest.mark.timeout(300)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])


def _model_bytes() -> bytes:
    """A small model with many kinds of node: conv, pool, reshape, matmul, reductions, softmax."""
    g = gc.Graph()
    rng = np.random.default_rng(0)
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 4, 4, 2), name="x")
        k = gc.Variable(rng.normal(size=(3, 3, 2, 3)).astype(np.float32), name="k")
        w = gc.Variable(rng.normal(size=(12, 5)).astype(np.float32), name="w")
        h = gc.nn.relu(gc.nn.conv2d(x, k, strides=1, padding="SAME"))
        h = gc.nn.max_pool2d(h, 2, 2, padding="VALID")
        h = gc.reshape(h, (-1, 12))
        logits = gc.matmul(h, w) - gc.reduce_mean(h, axis=1, keepdims=True)
        probs = gc.nn.softmax(logits, name="probs")
        norm = gc.reduce_sum(gc.square(x), axis=[1, 2, 3], name="norm")
        init = gc.global_variables_initializer()
    with gc.Session(graph=g, device="reference") as sess:
        sess.run(init)
        return encode(gc.export.freeze(sess, {"probs": probs, "norm": norm, "logits": logits}))


VALID = _model_bytes()


def _split(data: bytes):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return json.loads(z.read("model.json")), z.read("weights.npz")


def _pack(document, weights: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("model.json", document if isinstance(document, str) else json.dumps(document))
        z.writestr("weights.npz", weights)
    return out.getvalue()


def _check(tmp_path, data: bytes) -> str:
    """The property: FormatError, or outputs of the declared dtype and shape."""
    path = tmp_path / "fuzzed.gcm"
    path.write_bytes(data)
    try:
        model = gc.export.load_model(path, device="reference")
    except gc.export.FormatError as e:
        assert str(e)  # says something
        return "rejected"
    feeds = {}
    for name, spec in model.signature.inputs.items():
        if not spec.optional:  # the declared input, with 2 for unknown dims
            shape = tuple(2 if d is None else d for d in spec.shape)
            if np.prod(shape) > 1 << 20:
                return "loaded (inputs too large to try)"
            feeds[name] = np.linspace(-1, 1, int(np.prod(shape))).reshape(shape).astype(spec.dtype.np)
    try:
        outputs = model(**feeds)
    except gc.InvalidArgumentError as e:
        # A valid graph that cannot take this input (e.g. reshape(x, (-1, 12)) of 32 * batch
        # elements when the batch is not a multiple of 3): graphc's run-time error names the op.
        assert "at run time" in str(e) and "created at" in str(e)
        return "loaded (rejects this input)"
    for name, spec in model.signature.outputs.items():
        value = outputs[name]
        assert isinstance(value, np.ndarray) and value.dtype == spec.dtype.np, name
        assert value.ndim == len(spec.shape)
        assert all(d is None or d == n for d, n in zip(spec.shape, value.shape)), (name, spec.shape, value.shape)
    model.close()
    return "loaded"


def test_the_valid_model_loads(tmp_path):
    assert _check(tmp_path, VALID) == "loaded"


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(1, 255)), min_size=1, max_size=8))
def test_flipped_bytes(tmp_path, flips):
    data = bytearray(VALID)
    for at, mask in flips:
        data[at] ^= mask
    _check(tmp_path, bytes(data))


@FUZZ
@given(st.integers(0, len(VALID) - 1))
def test_truncation(tmp_path, length):
    assert _check(tmp_path, VALID[:length]) == "rejected"


def _paths(value, prefix=()):
    """Every location in a JSON document, as a path of keys and indices."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


DOCUMENT, WEIGHTS = _split(VALID)
PATHS = [p for p in _paths(DOCUMENT) if p]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2 ** 40) | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["x:0", "float32", "int64", "SAME", "VALID", "const", "matmul", "placeholder", "w0", "dim"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["dtype", "array", "shape", "float", "name", "op"]), children, max_size=3),
    max_leaves=6)


def _get(document, path):
    for key in path:
        document = document[key]
    return document


def _set(document, path, value):
    target = document
    for key in path[:-1]:
        target = target[key]
    if isinstance(target, list) and value is _DELETE:
        del target[path[-1]]
    elif isinstance(target, dict) and value is _DELETE:
        target.pop(path[-1])
    else:
        target[path[-1]] = value


_DELETE = object()


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), json_values | st.just(_DELETE)), min_size=1, max_size=3))
def test_edited_json(tmp_path, edits):
    document = json.loads(json.dumps(DOCUMENT))
    for path, value in edits:
        try:
            _set(document, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced this location
    _check(tmp_path, _pack(document, WEIGHTS))


LEAVES = [p for p in PATHS if not isinstance(_get(DOCUMENT, p), (dict, list))]
STRINGS = sorted({_get(DOCUMENT, p) for p in LEAVES if isinstance(_get(DOCUMENT, p), str)})


def _plausible(value):
    """A nearby value of the same kind: what a careless edit or a buggy writer produces."""
    if isinstance(value, bool) or value is None:
        return st.sampled_from([True, False, None, 0])
    if isinstance(value, int):
        return st.integers(-3, 3).map(lambda d: value + d) | st.sampled_from([0, -1, 1])
    if isinstance(value, float):
        return st.sampled_from([0.0, -value, value * 2, float("1e300")])
    return st.sampled_from(STRINGS)


@FUZZ
@given(st.lists(st.sampled_from(LEAVES).flatmap(lambda p: st.tuples(st.just(p), _plausible(_get(DOCUMENT, p)))),
                min_size=1, max_size=3))
def test_plausible_json_edits(tmp_path, edits):
    document = json.loads(json.dumps(DOCUMENT))
    for path, value in edits:
        _set(document, path, value)
    _check(tmp_path, _pack(document, WEIGHTS))


@FUZZ
@given(st.data())
def test_swapped_weights(tmp_path, data):
    with zipfile.ZipFile(io.BytesIO(WEIGHTS)) as z:
        arrays = {name[:-4]: np.load(io.BytesIO(z.read(name)), allow_pickle=False) for name in z.namelist()}
    names = sorted(arrays)
    a = data.draw(st.sampled_from(names))
    b = data.draw(st.sampled_from(names))
    arrays[a], arrays[b] = arrays[b], arrays[a]
    if data.draw(st.booleans()):
        victim = data.draw(st.sampled_from(names))
        arrays[victim] = data.draw(st.sampled_from([
            np.zeros(0, np.float32), np.ones((3, 3, 2, 3), np.float64), np.full((12, 5), np.nan, np.float32),
            np.arange(60, dtype=np.int64).reshape(12, 5), np.float32(7)]))
    out = io.BytesIO()
    np.savez(out, **arrays)
    _check(tmp_path, _pack(DOCUMENT, out.getvalue()))


@pytest.mark.parametrize("member", ["model.json", "weights.npz"])
def test_each_member_replaced_by_garbage(tmp_path, member):
    document = json.dumps(DOCUMENT) if member != "model.json" else "\x00garbage"
    weights = WEIGHTS if member != "weights.npz" else b"PK\x03\x04garbage"
    assert _check(tmp_path, _pack(document, weights)) == "rejected"


# --- damage that once escaped the reader as another exception (tests/file_damage.py) -------------------
def _npy_members():
    with zipfile.ZipFile(io.BytesIO(WEIGHTS)) as z:
        return {name: z.read(name) for name in z.namelist()}


@FUZZ
@given(st.sampled_from(sorted(_npy_members())), file_damage.npy_headers(), st.integers(-8, 8))
def test_damaged_npy_headers(tmp_path, member, header, extra):
    members = _npy_members()
    size = np.load(io.BytesIO(members[member])).nbytes  # about the data the index expects
    members[member] = file_damage.npy_with_header(header, b"\x01" * max(0, size + extra))
    _check(tmp_path, _pack(DOCUMENT, file_damage.rezip(members)))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file_damage.json_nesting())
def test_deeply_nested_json(tmp_path, document):
    assert _check(tmp_path, _pack(document, WEIGHTS)) == "rejected"


@FUZZ
@given(st.sampled_from(["model.json", "weights.npz"]), st.integers(0, 255))
def test_zip_version_needed(tmp_path, member, version):
    _check(tmp_path, file_damage.bump_zip_version(VALID, member, version))

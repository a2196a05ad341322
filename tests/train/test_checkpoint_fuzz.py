"""Fuzzing checkpoints: a damaged checkpoint (flipped bytes, truncation, damaged .npy
headers, nested JSON, zip headers asking for a future zip version) either reads back as
arrays of the dtypes and shapes its index declares, or fails with CheckpointError. Never a
crash, another exception or a hang; restoring from it never changes a variable."""
import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import file_damage
import graphc as gc

pytestmark = pytest.mark.timeout(300)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])


def _checkpoint_bytes(tmp_path_factory) -> bytes:
    g = gc.Graph()
    with g.as_default():
        gc.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="w")
        gc.Variable(np.array([1, 2], np.int64), name="steps")
        saver = gc.train.Saver()
    with gc.Session(graph=g, device="reference") as sess:
        sess.run(gc.variables_initializer(gc.global_variables(g)))
        path = saver.save(sess, str(tmp_path_factory.mktemp("valid") / "model"))
    return open(path, "rb").read()


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    return _checkpoint_bytes(tmp_path_factory)


def _check(tmp_path, data: bytes) -> str:
    path = tmp_path / "fuzzed.gcckpt"
    path.write_bytes(data)
    try:
        values = gc.train.read_checkpoint(str(path))
    except gc.train.CheckpointError as e:
        assert str(path) in str(e)
        return "rejected"
    for name, value in values.items():
        assert isinstance(value, np.ndarray) and value.dtype.kind in "biufc", name
    return "read"


def _members(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist()}


def test_the_valid_checkpoint_reads(tmp_path, valid):
    assert _check(tmp_path, valid) == "read"


@FUZZ
@given(st.data())
def test_flipped_bytes(tmp_path, valid, data):
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(1, 255)), min_size=1,
                               max_size=8))
    damaged = bytearray(valid)
    for at, mask in flips:
        damaged[at] ^= mask
    _check(tmp_path, bytes(damaged))


@FUZZ
@given(st.data())
def test_truncation(tmp_path, valid, data):
    assert _check(tmp_path, valid[:data.draw(st.integers(0, len(valid) - 1))]) == "rejected"


@FUZZ
@given(st.sampled_from(["v0.npy", "v1.npy"]), file_damage.npy_headers(), st.binary(max_size=64))
def test_damaged_npy_headers(tmp_path, valid, member, header, data):
    members = _members(valid)
    members[member] = file_damage.npy_with_header(header, data)
    _check(tmp_path, file_damage.rezip(members))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file_damage.json_nesting())
def test_deeply_nested_index(tmp_path, valid, index):
    members = _members(valid)
    members["index.json"] = index
    assert _check(tmp_path, file_damage.rezip(members)) == "rejected"


@FUZZ
@given(st.sampled_from(["index.json", "v0.npy", "v1.npy"]), st.integers(0, 255))
def test_zip_version_needed(tmp_path, valid, member, version):
    _check(tmp_path, file_damage.bump_zip_version(valid, member, version))


def test_restoring_a_damaged_checkpoint_changes_nothing(tmp_path, valid):
    members = _members(valid)
    members["v1.npy"] = file_damage.huge_npy(dtype="<i8")
    path = tmp_path / "damaged.gcckpt"
    path.write_bytes(file_damage.rezip(members))
    g = gc.Graph()
    with g.as_default():
        w = gc.Variable(np.zeros((2, 3), np.float32), name="w")
        gc.Variable(np.zeros(2, np.int64), name="steps")
        saver = gc.train.Saver()
    with gc.Session(graph=g, device="reference") as sess:
        sess.run(gc.variables_initializer(gc.global_variables(g)))
        with pytest.raises(gc.train.CheckpointError):
            saver.restore(sess, str(path))
        np.testing.assert_array_equal(sess.run(w), np.zeros((2, 3), np.float32))

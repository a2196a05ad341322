"""The IDX reader (MNIST's file format) on small files written by the test, and digits."""
import gzip
import struct

import numpy as np
import pytest

from graphc import datasets


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_every_idx_type(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    path = tmp_path / ("data.idx" + (".gz" if compress else ""))
    datasets.write_idx(path, array)
    back = datasets.read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress


def test_reads_the_real_mnist_layout(tmp_path):
    """Bytes laid out by hand exactly as in the MNIST files (magic 0x00000803 / 0x00000801)."""
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    labels = np.array([7, 2], dtype=np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, 2, 28, 28) + images.tobytes())
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(struct.pack(">II", 0x801, 2) + labels.tobytes()))
    x, y = datasets.load_mnist(tmp_path, kind="test")
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(FileNotFoundError, match="train-images"):
        datasets.load_mnist(tmp_path, kind="train")


def test_bad_idx_files_give_clear_errors(tmp_path):
    good = struct.pack(">HBBI", 0, 0x08, 1, 4) + bytes(4)
    cases = {
        "magic": (b"\x01\x00" + good[2:], "not an IDX file"),
        "type": (struct.pack(">HBBI", 0, 0x07, 1, 4) + bytes(4), "unknown IDX element type"),
        "short": (b"\x00\x00", "too short"),
        "header": (struct.pack(">HBB", 0, 0x08, 3) + bytes(4), "truncated header"),
        "data": (good[:-1], "need 4 data bytes"),
        "extra": (good + b"\x00", "need 4 data bytes"),
        "gzip": (b"\x1f\x8b" + b"garbage", "corrupt gzip"),
    }
    for name, (raw, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(raw)
        with pytest.raises(datasets.DatasetError, match=message):
            datasets.read_idx(path)


def test_write_idx_refuses_unsupported_types(tmp_path):
    with pytest.raises(datasets.DatasetError, match="IDX cannot hold"):
        datasets.write_idx(tmp_path / "x.idx", np.zeros(3, np.int64))
    assert not list(tmp_path.iterdir())  # nothing half-written is left behind


def test_digits_split_is_stratified_and_deterministic():
    x_train, y_train, x_test, y_test = datasets.load_digits()
    assert x_train.shape[1:] == (8, 8, 1) and x_train.dtype == np.float32
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert len(x_test) + len(x_train) == 1797
    train_share = np.bincount(y_train) / len(y_train)
    test_share = np.bincount(y_test) / len(y_test)
    assert np.abs(train_share - test_share).max() < 0.01
    again = datasets.load_digits()
    np.testing.assert_array_equal(again[3], y_test)

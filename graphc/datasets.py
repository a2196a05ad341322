"""Datasets: the MNIST IDX file format, and scikit-learn's bundled digits.

IDX (the format of the real MNIST files): two zero bytes, a type byte, a rank byte, one
big-endian uint32 per dim, then the data, big-endian. Files may be gzip-compressed.
"""
from __future__ import annotations

import gzip
import io
import os
import struct
from typing import Optional, Tuple, Union

import numpy as np

from .errors import GraphcError
from .files import atomic_write

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {np.dtype(d).newbyteorder("=").str: code for code, d in _IDX_TYPES.items()}


class DatasetError(GraphcError, ValueError):
    """A data file that is not what it claims to be."""


def _read_bytes(source) -> Tuple[bytes, str]:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            raw = f.read()
        name = os.fspath(source)
    else:
        raw = source.read()
        name = getattr(source, "name", "<stream>")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DatasetError(f"{name}: corrupt gzip data ({e})") from None
    return raw, name


def read_idx(source: Union[str, os.PathLike, io.IOBase]) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a NumPy array in native byte order."""
    raw, name = _read_bytes(source)
    if len(raw) < 4:
        raise DatasetError(f"{name}: too short to be an IDX file ({len(raw)} bytes)")
    zero, code, rank = struct.unpack(">HBB", raw[:4])
    if zero != 0:
        raise DatasetError(f"{name}: not an IDX file (the magic number starts with {raw[:2].hex()}, expected 0000)")
    if code not in _IDX_TYPES:
        raise DatasetError(f"{name}: unknown IDX element type 0x{code:02x}")
    header = 4 + 4 * rank
    if len(raw) < header:
        raise DatasetError(f"{name}: truncated header (rank {rank} needs {header} bytes, file has {len(raw)})")
    dims = struct.unpack(f">{rank}I", raw[4:header])
    dtype = _IDX_TYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(f"{name}: dims {dims} of {dtype.name} need {expected} data bytes, the file has "
                           f"{len(raw) - header}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: Union[str, os.PathLike], array: np.ndarray, compress: Optional[bool] = None) -> None:
    """Write ``array`` as an IDX file, atomically; ``.gz`` paths are gzip-compressed."""
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=").str
    if key not in _IDX_CODES:
        raise DatasetError(f"IDX cannot hold {array.dtype}; use uint8, int8, int16, int32, float32 or float64")
    code = _IDX_CODES[key]
    big = array.astype(_IDX_TYPES[code], copy=False)
    payload = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape) + big.tobytes()
    if compress is None:
        compress = os.fspath(path).endswith(".gz")
    if compress:
        payload = gzip.compress(payload)
    atomic_write(path, payload)


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_mnist(directory: Union[str, os.PathLike], kind: str = "train") -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) from the standard MNIST file names in
    ``directory`` (plain or ``.gz``)."""
    if kind not in _MNIST_FILES:
        raise ValueError(f"kind must be 'train' or 'test', got {kind!r}")
    found = []
    for base in _MNIST_FILES[kind]:
        for candidate in (base, base + ".gz", base.replace("-idx", ".idx")):
            path = os.path.join(directory, candidate)
            if os.path.exists(path):
                found.append(path)
                break
        else:
            raise FileNotFoundError(f"no {base}[.gz] in {directory}")
    images, labels = (read_idx(p) for p in found)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError(f"MNIST {kind} files disagree: images {images.shape}, labels {labels.shape}")
    return images, labels


def load_digits(test_fraction: float = 0.25, seed: int = 0):
    """scikit-learn's 8x8 digits as float32 in [0, 1], split per class into a training and a
    held-out set: ``(x_train, y_train, x_test, y_test)`` with images (N, 8, 8, 1)."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise ImportError("the digits dataset comes with scikit-learn: pip install 'graphc[demo]' "
                          "(or scikit-learn)") from None
    data = sk_load_digits()
    images = (data.images / 16.0).astype(np.float32)[..., None]
    labels = data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):  # stratified: the same fraction of every class is held out
        members = np.flatnonzero(labels == c)
        test[rng.choice(members, size=int(round(test_fraction * len(members))), replace=False)] = True
    return images[~test], labels[~test], images[test], labels[test]

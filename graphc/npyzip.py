"""NumPy arrays in zip archives, without pickle: what checkpoints and model files store
their values in. Writing makes a standard ``.npz`` member layout (one uncompressed ``.npy``
per array); reading accepts only uncompressed members, checks each member's size against the
dtype and shape its index promised before reading it, and reads with ``allow_pickle=False``,
so a hostile file can neither run code nor make graphc allocate more than the file holds."""
from __future__ import annotations

import math
import zipfile
from typing import Type

import numpy as np

# Room for the .npy header (and the zip entry's own) beyond the data itself.
HEADER_SLACK = 1 << 16
# The dtypes a stored array may have (bool, ints, floats, complex): never objects or records.
_ALLOWED_KINDS = "biufc"


def write_array(archive: zipfile.ZipFile, member: str, value) -> np.ndarray:
    """Write ``value`` as ``member`` (a .npy); returns the array as written."""
    value = np.asarray(value, order="C")  # (ascontiguousarray would make a scalar 1-d)
    with archive.open(member, "w", force_zip64=True) as f:
        np.lib.format.write_array(f, value, allow_pickle=False)
    return value


def parse_dtype(text, what: str, error: Type[Exception]) -> np.dtype:
    try:
        dtype = np.dtype(text) if isinstance(text, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.hasobject or dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None:
        raise error(f"{what} has dtype {text!r}; stored arrays are bool, integer, float or complex")
    return dtype


def read_array(archive: zipfile.ZipFile, member: str, dtype: np.dtype, shape: tuple, what: str,
               error: Type[Exception]) -> np.ndarray:
    """The array in ``member``, which must be exactly ``dtype`` and ``shape``; ``error``
    (naming ``what``) for anything else, before more than the member's bytes are read."""
    expected = math.prod(int(d) for d in shape) * dtype.itemsize  # Python ints: no wrap-around
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise error(f"{what}: the archive has no member {member!r}") from None
    if info.compress_type != zipfile.ZIP_STORED:
        # (a compressed member could claim any size in a few bytes)
        raise error(f"{what}: member {member!r} is compressed (method {info.compress_type}); arrays are stored as is")
    if info.file_size < expected or info.file_size > expected + HEADER_SLACK:
        raise error(f"{what} should hold {expected} bytes ({dtype}{list(shape)}), its member {member!r} has "
                    f"{info.file_size}")
    try:
        with archive.open(info) as f:
            value = np.lib.format.read_array(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise error(f"{what}: member {member!r} is not a valid .npy array ({type(e).__name__}: {e})") from None
    if value.shape != tuple(shape) or value.dtype != dtype:
        raise error(f"{what} is stored as {value.dtype}{list(value.shape)}, its index says {dtype}{list(shape)}")
    return value

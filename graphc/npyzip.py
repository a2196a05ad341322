"""NumPy arrays in zip archives, without pickle: what checkpoints and model files store
their values in. Writing makes a standard ``.npz`` member layout (one uncompressed ``.npy``
per array); reading accepts only uncompressed members, checks each member's size against the
dtype and shape its index promised before reading it, and reads with ``allow_pickle=False``,
so a hostile file can neither run code nor make graphc allocate more than the file holds."""
from __future__ import annotations

import math
import struct
import tokenize
import zipfile
import zlib
from typing import Type

import numpy as np

# What the standard readers (zipfile, zlib, json, NumPy's .npy header parser) raise on bytes
# that were damaged or made up: a reader of graphc's files turns any of them into its own
# format error. Found by fuzzing: a zip entry's "version needed" byte -> NotImplementedError,
# a malformed .npy header -> tokenize.TokenError or SyntaxError, nested JSON -> RecursionError.
DAMAGE_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, RuntimeError,
                 ValueError, OverflowError, MemoryError, NotImplementedError, UnicodeError, KeyError, IndexError,
                 TypeError, tokenize.TokenError, SyntaxError)
# An .npy header is a short dict literal; NumPy's own reader stops at 10,000 bytes.
MAX_NPY_HEADER = 10_000

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
            value = _read_npy(f, dtype, shape, what, error)
    except DAMAGE_ERRORS as e:  # RecursionError is a RuntimeError
        raise error(f"{what}: member {member!r} is not a valid .npy array ({type(e).__name__}: {e})") from None
    return value


def _read_npy(f, dtype: np.dtype, shape: tuple, what: str, error: Type[Exception]) -> np.ndarray:
    """Read a .npy whose header must say ``dtype`` and ``shape``: the header is checked before
    any data is read (NumPy's ``read_array`` allocates whatever the header declares: a header
    claiming 2**40 elements was a MemoryError), then exactly the expected bytes are read."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        header_shape, fortran, header_dtype = np.lib.format.read_array_header_1_0(f, max_header_size=MAX_NPY_HEADER)
    elif version in ((2, 0), (3, 0)):
        header_shape, fortran, header_dtype = np.lib.format.read_array_header_2_0(f, max_header_size=MAX_NPY_HEADER)
    else:
        raise error(f"{what}: .npy format version {version} is not one NumPy writes")
    if tuple(header_shape) != tuple(shape) or header_dtype != dtype:
        raise error(f"{what} is stored as {header_dtype}{list(header_shape)}, its index says {dtype}{list(shape)}")
    count = math.prod(int(d) for d in shape)
    data = f.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise error(f"{what}: member ends after {len(data)} of {count * dtype.itemsize} bytes of data")
    value = np.frombuffer(data, dtype=dtype, count=count)
    return np.array(value.reshape(shape, order="F" if fortran else "C"), order="C")  # writable, owned

"""Data types and type promotion.

Promotion follows NumPy 2 (NEP 50): Python scalars are *weak*, so ``x_f32 * 2.0`` stays
float32 and ``x_i32 + 1`` stays int32. Where NumPy would produce a type graphc does not
support (float16, int16, uint16, uint32, uint64) the next wider supported type is used.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "DType", "as_dtype", "float32", "float64", "int8", "int32", "int64", "uint8", "bool_",
    "result_type", "float_result_type", "default_float", "default_int", "ALL_DTYPES",
]


class DType:
    """A graphc element type; a thin, interned wrapper around a NumPy dtype."""

    __slots__ = ("name", "np")

    def __init__(self, name: str, np_dtype: np.dtype):
        self.name = name
        self.np = np.dtype(np_dtype)

    @property
    def is_floating(self) -> bool:
        return self.np.kind == "f"

    @property
    def is_integer(self) -> bool:
        return self.np.kind in "iu"

    @property
    def is_bool(self) -> bool:
        return self.np.kind == "b"

    @property
    def is_numeric(self) -> bool:
        return self.np.kind in "iuf"

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    @property
    def min(self):
        return np.finfo(self.np).min if self.is_floating else (
            False if self.is_bool else np.iinfo(self.np).min)

    @property
    def max(self):
        return np.finfo(self.np).max if self.is_floating else (
            True if self.is_bool else np.iinfo(self.np).max)

    def __repr__(self) -> str:
        return f"gc.{self.name}"

    def __str__(self) -> str:
        return self.name

    def __reduce__(self):  # interned: copies and deep copies stay the same object
        return (as_dtype, (self.name,))


float32 = DType("float32", np.float32)
float64 = DType("float64", np.float64)
int8 = DType("int8", np.int8)
int32 = DType("int32", np.int32)
int64 = DType("int64", np.int64)
uint8 = DType("uint8", np.uint8)
bool_ = DType("bool", np.bool_)

ALL_DTYPES = (float32, float64, int8, int32, int64, uint8, bool_)
_BY_NP = {d.np: d for d in ALL_DTYPES}
_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NAME.update({"bool_": bool_, "float": float32, "int": int64})

# Where NumPy promotion lands on a type we do not support, widen to one we do.
_WIDEN = {
    np.dtype(np.float16): float32,
    np.dtype(np.int16): int32,
    np.dtype(np.uint16): int32,
    np.dtype(np.uint32): int64,
}

default_float = float32
default_int = int64


def as_dtype(value) -> DType:
    """Convert a DType, NumPy dtype, Python type or name into a graphc DType."""
    if isinstance(value, DType):
        return value
    if value is float:
        return default_float
    if value is int:
        return default_int
    if value is bool:
        return bool_
    if isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]
    try:
        npd = np.dtype(value)
    except TypeError:
        npd = None
    if npd is not None:
        if npd in _BY_NP:
            return _BY_NP[npd]
        if npd in _WIDEN:
            raise TypeError(f"dtype {npd} is not supported by graphc; use {_WIDEN[npd].name}")
    supported = ", ".join(d.name for d in ALL_DTYPES)
    raise TypeError(f"unsupported dtype {value!r}; graphc supports {supported}")


def _from_numpy(npd: np.dtype) -> DType:
    npd = np.dtype(npd)
    if npd in _BY_NP:
        return _BY_NP[npd]
    if npd in _WIDEN:
        return _WIDEN[npd]
    raise TypeError(f"type promotion produced {npd}, which graphc does not support")


def result_type(*operands) -> DType:
    """NumPy (NEP 50) promotion over DTypes and weak Python scalars.

    ``operands`` are DTypes (strong) or Python bool/int/float values (weak).
    A weak int that does not fit the integer type it meets raises OverflowError.
    """
    np_ops = [o.np if isinstance(o, DType) else o for o in operands]
    strong = [o for o in operands if isinstance(o, DType)]
    if not strong:  # only Python scalars: use graphc's defaults
        if any(isinstance(o, float) for o in operands):
            return default_float
        if any(isinstance(o, int) and not isinstance(o, bool) for o in operands):
            return default_int
        return bool_
    out = _from_numpy(np.result_type(*np_ops))
    if out.is_integer:
        for o in operands:
            if isinstance(o, int) and not isinstance(o, bool) and not (out.min <= o <= out.max):
                raise OverflowError(f"Python int {o} is out of bounds for {out.name}")
    return out


def float_result_type(dtype: DType) -> DType:
    """The float type NumPy's float functions (exp, sqrt, true division) give for ``dtype``."""
    return _from_numpy(np.result_type(dtype.np, np.float16))

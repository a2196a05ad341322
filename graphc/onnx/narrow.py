"""ONNX element types that graphc lacks, emulated in a wider graphc type.

graphc's tensors are float32, float64, int8, int32, int64, uint8 and bool. An ONNX tensor of
float16, bfloat16, int16, uint16 or uint32 is stored and computed in the wider type of the
table below, and every op that yields such a tensor has its result brought back into the
narrow type's range: floats rounded to the nearest narrow value (ties to even, overflow to
infinity: NumPy's float16 arithmetic computes in float32 and rounds each result the same
way), integers wrapped modulo 2**bits (two's complement, as the narrow type wraps). The
ONNX backend converts inputs to the wide type and outputs back to the declared one.

uint64 has no wider graphc type and stays unsupported.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as dt


class Narrow:
    def __init__(self, name: str, wide: dt.DType, numpy_type, bits: int = 0, signed: bool = True):
        self.name, self.wide, self.bits, self.signed = name, wide, bits, signed
        self._numpy = numpy_type

    @property
    def numpy(self):
        if self._numpy == "bfloat16":
            import ml_dtypes
            return ml_dtypes.bfloat16
        return self._numpy

    def to_narrow(self, array: np.ndarray) -> np.ndarray:
        """An array of the wide type as the narrow NumPy type (the backend's outputs)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(array).astype(self.numpy)

    def fit(self, value):
        """``value`` (of the wide type) brought into the narrow type: a NumPy array, or a
        graphc tensor for which the equivalent ops are built."""
        if isinstance(value, np.ndarray):
            with np.errstate(over="ignore", invalid="ignore"):
                return value.astype(self.numpy).astype(self.wide.np)
        return _round_float(value, self.name) if self.wide.is_floating else _wrap(value, self.bits, self.signed)


# ONNX TensorProto element type -> its emulation.
NARROW = {
    10: Narrow("float16", dt.float32, np.float16),
    16: Narrow("bfloat16", dt.float32, "bfloat16"),
    5: Narrow("int16", dt.int32, np.int16, 16, True),
    4: Narrow("uint16", dt.int32, np.uint16, 16, False),
    12: Narrow("uint32", dt.int64, np.uint32, 32, False),
}
BY_NAME = {n.name: n for n in NARROW.values()}


def _wrap(x, bits: int, signed: bool):
    import graphc as gc
    span = gc.constant(np.asarray(1 << bits, dtype=x.dtype.np))
    if not signed:
        return gc.mod(x, span)
    half = gc.constant(np.asarray(1 << (bits - 1), dtype=x.dtype.np))
    return gc.mod(x + half, span) - half


def _round_float(x, kind: str):
    """float32 ``x`` rounded to the nearest float16 or bfloat16 value, ties to even."""
    import graphc as gc
    # Veltkamp's split keeps the 11 (float16) or 8 (bfloat16) leading significand bits, rounded;
    # strict IEEE kernels (no reassociation) keep c - (c - x) from folding away.
    split = 8193.0 if kind == "float16" else 65537.0
    a = gc.abs(x)
    # x * split must not overflow: a huge bfloat16 is split at 2**-64 of its size (exactly)
    scale = gc.where(a > 2.0 ** 100, gc.constant(np.float32(2.0 ** -64)), gc.constant(np.float32(1.0)))
    xs = x * scale
    c = xs * split
    y = (c - (c - xs)) / scale
    if kind == "float16":
        # Below 2**-14 float16 is subnormal: a fixed spacing of 2**-24.
        tiny = gc.round(x * 16777216.0) * (1.0 / 16777216.0)
        y = gc.where(a < 2.0 ** -14, tiny, y)
        limit = 65520.0          # halfway between float16's largest (65504) and 2**16
    else:
        limit = 3.3961259e38     # about halfway between bfloat16's largest and 2**128
    inf = gc.where(x < 0, gc.constant(np.float32(-np.inf)), gc.constant(np.float32(np.inf)))
    return gc.where(a >= limit, inf, y)


# Ops whose outputs have a fixed type whatever their inputs are (an int64 index or shape):
# never narrow, though their wide type may be the same as a narrow input's.
FIXED_TYPE_OUTPUTS = {"Shape": (0,), "Size": (0,), "ArgMax": (0,), "ArgMin": (0,), "NonZero": (0,),
                      "TopK": (1,), "Unique": (1, 2, 3), "MaxPool": (1,)}

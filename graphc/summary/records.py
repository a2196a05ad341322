"""TensorBoard's records, made with the ``tensorboard`` package's own protobufs.

graphc never writes a protobuf by hand: every ``Summary``, ``Event`` and ``GraphDef`` here is
a message class that the ``tensorboard`` package ships (``tensorboard.compat.proto``), so the
files are exactly what TensorBoard reads. The values are laid out as TF1 wrote them (a scalar
as ``simple_value``, a histogram as ``histo`` with TF1's exponential buckets, an image as PNG),
which TensorBoard's loaders read directly and upgrade as they do TF1's own files.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

_INSTALL = "pip install 'graphc[tensorboard]'"


def protos():
    """The ``tensorboard.compat.proto`` modules graphc uses, or an ImportError saying what to
    install (TensorBoard is an optional extra)."""
    try:
        from tensorboard.compat.proto import (attr_value_pb2, event_pb2, graph_pb2, node_def_pb2, step_stats_pb2,
                                              summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2)
        from tensorboard.compat.proto import config_pb2, versions_pb2
    except ImportError as e:
        raise ImportError(f"gc.summary writes TensorBoard files with the tensorboard package, which is not "
                          f"installed ({e}); install it with: {_INSTALL}") from None

    class P:  # one namespace for the message classes
        pass
    for module in (attr_value_pb2, config_pb2, event_pb2, graph_pb2, node_def_pb2, step_stats_pb2, summary_pb2,
                   tensor_pb2, tensor_shape_pb2, types_pb2, versions_pb2):
        for name in dir(module):
            if not name.startswith("_"):
                setattr(P, name, getattr(module, name))
    return P


# --- values ------------------------------------------------------------------------------------------
def scalar_value(tag: str, value) -> object:
    return protos().Summary.Value(tag=tag, simple_value=float(value))


def _tf1_bucket_limits() -> np.ndarray:
    """TF1's default histogram bucket limits: +-1e-12 * 1.1**k up to 1e20, 0, and DBL_MAX."""
    positive = []
    v = 1e-12
    while v < 1e20:
        positive.append(v)
        v *= 1.1
    positive = np.array(positive)
    return np.concatenate([-positive[::-1], [0.0], positive, [np.finfo(np.float64).max]])


_LIMITS = None


def histogram_proto(values) -> object:
    """TF1's HistogramProto of ``values``: min, max, count, sum, sum of squares, and the counts
    in TF1's buckets with runs of empty buckets merged (as TF1 encodes them)."""
    global _LIMITS
    if _LIMITS is None:
        _LIMITS = _tf1_bucket_limits()
    x = np.asarray(values, np.float64).reshape(-1)
    P = protos()
    if x.size == 0:
        return P.HistogramProto(min=0.0, max=0.0, num=0, sum=0.0, sum_squares=0.0)
    # TF1's bucket b holds limits[b-1] <= x < limits[b] (std::upper_bound); inf and NaN go last
    index = np.minimum(np.searchsorted(_LIMITS, x, side="right"), len(_LIMITS) - 1)
    counts = np.bincount(index, minlength=len(_LIMITS))
    limits, buckets = [], []
    for limit, count in zip(_LIMITS, counts):
        if count == 0 and buckets and buckets[-1] == 0:
            limits[-1] = limit  # extend the empty run
            continue
        limits.append(float(limit))
        buckets.append(float(count))
    return P.HistogramProto(min=float(x.min()), max=float(x.max()), num=float(x.size), sum=float(x.sum()),
                            sum_squares=float(np.dot(x, x)), bucket_limit=limits, bucket=buckets)


def histogram_value(tag: str, values) -> object:
    return protos().Summary.Value(tag=tag, histo=histogram_proto(values))


def png(image: np.ndarray) -> bytes:
    """A PNG file of ``image`` (height, width, channels) of uint8 with 1, 3 or 4 channels."""
    height, width, channels = image.shape
    color = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def to_uint8(images: np.ndarray) -> np.ndarray:
    """TF1's ``summary.image`` conversion: uint8 as is; floats with no negative value scaled so
    the largest is 255 (values in [0, 1] times 255); with negatives, shifted so 0 is 127."""
    if images.dtype == np.uint8:
        return images
    x = images.astype(np.float64)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return np.zeros(x.shape, np.uint8)
    lo, hi = finite.min(), finite.max()
    if lo >= 0:
        scale = 255.0 if hi <= 1.0 else (255.0 / hi if hi > 0 else 0.0)
        out = x * scale
    else:
        scale = 127.0 / max(abs(lo), abs(hi)) if max(abs(lo), abs(hi)) > 0 else 0.0
        out = x * scale + 128.0
    return np.clip(np.nan_to_num(out, nan=0.0), 0, 255).round().astype(np.uint8)


def image_value(tag: str, image: np.ndarray) -> object:
    P = protos()
    height, width, channels = image.shape
    encoded = P.Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=png(image))
    return P.Summary.Value(tag=tag, image=encoded)


def text_value(tag: str, strings: np.ndarray) -> object:
    """A text summary as TensorBoard's text plugin reads it: a string tensor with the plugin's
    metadata."""
    P = protos()
    arr = np.asarray(strings, dtype=object)
    tensor = P.TensorProto(dtype=P.DT_STRING, string_val=[str(s).encode("utf-8") for s in arr.reshape(-1)],
                           tensor_shape=P.TensorShapeProto(dim=[P.TensorShapeProto.Dim(size=d) for d in arr.shape]))
    metadata = P.SummaryMetadata(plugin_data=P.SummaryMetadata.PluginData(plugin_name="text"))
    return P.Summary.Value(tag=tag, metadata=metadata, tensor=tensor)


def summary_bytes(values) -> bytes:
    return protos().Summary(value=list(values)).SerializeToString()

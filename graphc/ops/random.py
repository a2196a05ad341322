"""Random ops: standard uniform, normal and truncated normal, scaled by builders.

Every backend draws the same numbers. Element ``i`` of run ``k`` of a random op with seed
pair ``(graph_seed, op_seed)`` is a pure function of those four integers: a SplitMix64
stream keyed by the seeds and the run counter. So a program is reproducible under a seed,
two ops with the same seeds draw the same values (as in TensorFlow), and compiled backends
can be checked bit for bit against the reference.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from .. import dtypes as dt
from ..dtypes import as_dtype
from ..errors import DTypeMismatch, InvalidArgumentError
from ..graph import Tensor, get_default_graph, user_location
from ..shapes import TensorType
from ._build import dtype_error, graph_of, is_symbolic, make1
from .registry import define
from .shape_spec import resolve_shape_spec, spec_dims_static, spec_like, spec_to_concrete
from .source import convert_to_tensor

DEFAULT_GRAPH_SEED = 87654321
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
TRUNCATED_MAX_ATTEMPTS = 64


def mix64(z):
    """SplitMix64's finalizer (works on NumPy uint64 scalars and arrays; wraps mod 2**64)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def stream_key(seed, counter: int, attempt: int = 0) -> np.uint64:
    """The key of one run (``counter``) of one op; ``attempt`` separates resampling rounds."""
    g, o = (np.uint64(s & 0xFFFFFFFFFFFFFFFF) for s in seed)
    with np.errstate(over="ignore"):
        k = mix64(g * GOLDEN + o)
        k = mix64(k ^ mix64(np.uint64(counter) + GOLDEN))
        return mix64(k + np.uint64(attempt) * _M2)


def random_bits(key: np.uint64, n: int, offset: int = 0) -> np.ndarray:
    with np.errstate(over="ignore"):
        idx = np.arange(offset + 1, offset + n + 1, dtype=np.uint64)
        return mix64(key + idx * GOLDEN)


def bits_to_unit(bits: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Uniform floats in [0, 1) from the top 24 (float32) or 53 (float64) bits."""
    if np.dtype(dtype) == np.float32:
        return ((bits >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24))
    return (bits >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)


def _normal_pairs(key, n):
    """Box-Muller over element-indexed pairs of uniforms, in float64."""
    u1 = bits_to_unit(random_bits(key, n, 0), np.float64)
    u2 = bits_to_unit(random_bits(key, n, n), np.float64)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def sample(kind: str, seed, counter: int, shape, dtype: np.dtype) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    if kind == "uniform":
        out = bits_to_unit(random_bits(stream_key(seed, counter), n), dtype)
    elif kind == "normal":
        out = _normal_pairs(stream_key(seed, counter), n)
    else:  # truncated normal: resample |z| > 2, element by element, round by round
        out = _normal_pairs(stream_key(seed, counter, 0), n)
        for attempt in range(1, TRUNCATED_MAX_ATTEMPTS):
            bad = np.abs(out) > 2.0
            if not bad.any():
                break
            again = _normal_pairs(stream_key(seed, counter, attempt), n)
            out = np.where(bad, again, out)
        out = np.clip(out, -2.0, 2.0)
    return out.astype(dtype, copy=False).reshape(shape)


def _infer_random(inputs, attrs):
    dtype = attrs["dtype"]
    if not dtype.is_floating:
        raise DTypeMismatch(f"random draws must be floating, got {dtype.name}")
    return [TensorType(dtype, spec_dims_static(attrs["shape"], inputs))]


def _random_reference(kind):
    def reference(inputs, attrs, ctx):
        shape = spec_to_concrete(attrs["shape"], inputs)
        counter = ctx.next_random_counter(attrs["stream"])
        return (sample(kind, attrs["seed"], counter, shape, attrs["dtype"].np),)
    return reference


for _kind, _name in (("uniform", "random_uniform"), ("normal", "random_standard_normal"),
                     ("truncated", "truncated_standard_normal")):
    define(_name, "random", _infer_random, _random_reference(_kind), stateful=True, random=True,
           shape_only_inputs=lambda attrs, n: tuple(range(n)),
           doc=f"Standard {_kind} draws; attrs: shape spec, dtype, seed pair, stream (run counter key).")


def set_random_seed(seed: Optional[int]) -> None:
    """The graph-level seed of the default graph (TensorFlow 1.x's tf.set_random_seed)."""
    get_default_graph().seed = None if seed is None else int(seed)


def _seed_pair(graph, op_seed):
    graph_seed = graph.seed
    if graph_seed is None and op_seed is None:
        r = np.frombuffer(os.urandom(16), dtype=np.int64)
        return int(r[0]), int(r[1])
    if graph_seed is None:
        graph_seed = DEFAULT_GRAPH_SEED
    if op_seed is None:
        op_seed = len(graph.get_operations())
    return int(graph_seed), int(op_seed)


def _standard(op: str, shape, dtype, seed, name, graph=None) -> Tensor:
    """A standard draw; ``shape`` is user dims or an already resolved ``(spec, sources)``."""
    graph = graph or graph_of(shape, op_type=op)
    dtype = as_dtype(dtype)
    if isinstance(shape, SpecWithSources):
        spec, sources = shape
    else:
        spec, sources = resolve_shape_spec(shape, op, first_input=0)
    stream = len(graph.get_collection_ref("__random_streams__"))
    graph.add_to_collection("__random_streams__", stream)
    attrs = {"shape": spec, "dtype": dtype if dtype.is_floating else dt.float64,
             "seed": _seed_pair(graph, seed), "stream": stream}
    return make1(op, sources, attrs, name, graph=graph)


def random_uniform(shape, minval=0, maxval=None, dtype=dt.float32, seed=None, name: Optional[str] = None) -> Tensor:
    """Uniform draws in [minval, maxval). Integer dtypes need ``maxval``."""
    from .elementwise import add, cast, floor, multiply
    dtype = as_dtype(dtype)
    if dtype.is_integer:
        if maxval is None:
            raise dtype_error("random_uniform", f"an integer dtype ({dtype.name}) needs maxval")
        if not is_symbolic(minval) and not is_symbolic(maxval) and not minval < maxval:
            raise InvalidArgumentError(f"random_uniform at {user_location()}: {dtype.name} draws need "
                                       f"minval < maxval, got minval={minval}, maxval={maxval}")
        u = _standard("random_uniform", shape, dt.float64, seed, name or "random_uniform")
        return cast(add(floor(multiply(u, float(maxval - minval))), float(minval)), dtype)
    if not dtype.is_floating:
        raise dtype_error("random_uniform", f"unsupported dtype {dtype.name}")
    u = _standard("random_uniform", shape, dtype, seed, name or "random_uniform")
    if maxval is None:
        maxval = 1
    if isinstance(minval, (int, float)) and isinstance(maxval, (int, float)) and (minval, maxval) == (0, 1):
        return u
    minval, maxval = _in_dtype(minval, dtype), _in_dtype(maxval, dtype)
    return add(multiply(u, maxval - minval), minval)


def _in_dtype(value, dtype):
    """A Python or NumPy bound in the draws' dtype, as TF1 converts it (an np.float64 stddev
    must not make float32 draws float64); tensors stay as they are."""
    return value if is_symbolic(value) else convert_to_tensor(value, dtype=dtype)


def _scaled(op, shape, mean, stddev, dtype, seed, name):
    from .elementwise import add, multiply
    dtype = as_dtype(dtype)
    if not dtype.is_floating:
        raise dtype_error(op, f"draws must be floating, got {dtype.name}")
    z = _standard(op, shape, dtype, seed, name)
    if isinstance(stddev, (int, float)) and stddev == 1 and isinstance(mean, (int, float)) and mean == 0:
        return z
    return add(multiply(z, _in_dtype(stddev, dtype)), _in_dtype(mean, dtype))


def random_normal(shape, mean=0.0, stddev=1.0, dtype=dt.float32, seed=None, name: Optional[str] = None) -> Tensor:
    return _scaled("random_standard_normal", shape, mean, stddev, dtype, seed, name or "random_normal")


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=dt.float32, seed=None, name: Optional[str] = None) -> Tensor:
    """Normal draws re-drawn until within two standard deviations of the mean."""
    return _scaled("truncated_standard_normal", shape, mean, stddev, dtype, seed, name or "truncated_normal")


def random_uniform_like(x, seed=None, dtype=None, name: Optional[str] = None) -> Tensor:
    """Uniform [0, 1) draws with the run-time shape of ``x`` (used by dropout)."""
    x = convert_to_tensor(x)
    return _standard("random_uniform", SpecWithSources(*spec_like(x, 0)), dtype or x.dtype, seed,
                     name or "random_uniform", graph=x.graph)


class SpecWithSources(tuple):
    """A shape that is already a resolved ``(spec, sources)`` pair."""

    def __new__(cls, spec, sources):
        return super().__new__(cls, (spec, sources))

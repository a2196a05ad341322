"""Initializers, as in ``gc.Variable(gc.init.glorot_uniform((784, 10)))``.

Called with a shape, each returns the initial-value tensor; called without one, it returns an
:class:`Initializer` that a Variable calls with its ``shape``.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import dtypes as dt
from .dtypes import as_dtype
from .graph import user_location
from .ops import random as rnd
from .ops import source

__all__ = ["Initializer", "zeros", "ones", "constant", "random_normal", "random_uniform",
           "truncated_normal", "glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "compute_fans"]

_TRUNCATED_STDDEV_CORRECTION = 0.87962566103423978  # stddev of a unit normal truncated at +-2


class Initializer:
    def __init__(self, make, dtype=None, description: str = ""):
        self._make = make
        self.dtype = dtype
        self.description = description

    def __call__(self, shape, dtype=None):
        if shape is None:
            raise ValueError(f"the {self.description} initializer needs a shape (pass shape= to gc.Variable)")
        return self._make(tuple(int(d) for d in shape), as_dtype(dtype or self.dtype or dt.float32))

    def __repr__(self) -> str:
        return f"<gc.init {self.description}>"


def compute_fans(shape) -> tuple:
    """(fan_in, fan_out) for a dense kernel (in, out) or an HWIO convolution filter."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _initializer(description, make):
    def factory(shape=None, dtype=dt.float32, seed: Optional[int] = None, **params):
        init = Initializer(lambda s, d: make(s, d, seed, **params), dtype, description)
        return init if shape is None else init(shape, dtype)
    factory.__name__ = description
    return factory


zeros = _initializer("zeros", lambda s, d, seed: source.zeros(s, d))
ones = _initializer("ones", lambda s, d, seed: source.ones(s, d))


def constant(value=0, shape=None, dtype=dt.float32):
    init = Initializer(lambda s, d: source.constant(value, dtype=d, shape=s), dtype, "constant")
    return init if shape is None else init(shape, dtype)


random_normal = _initializer(
    "random_normal",
    lambda s, d, seed, mean=0.0, stddev=0.05: rnd.random_normal(s, mean, stddev, d, seed))
random_uniform = _initializer(
    "random_uniform",
    lambda s, d, seed, minval=-0.05, maxval=0.05: rnd.random_uniform(s, minval, maxval, d, seed))
truncated_normal = _initializer(
    "truncated_normal",
    lambda s, d, seed, mean=0.0, stddev=0.05: rnd.truncated_normal(s, mean, stddev, d, seed))


def _glorot_uniform(s, d, seed):
    fan_in, fan_out = compute_fans(s)
    limit = math.sqrt(6.0 / max(1, fan_in + fan_out))
    return rnd.random_uniform(s, -limit, limit, d, seed)


def _glorot_normal(s, d, seed):
    fan_in, fan_out = compute_fans(s)
    stddev = math.sqrt(2.0 / max(1, fan_in + fan_out)) / _TRUNCATED_STDDEV_CORRECTION
    return rnd.truncated_normal(s, 0.0, stddev, d, seed)


def _he_normal(s, d, seed):
    fan_in, _ = compute_fans(s)
    return rnd.truncated_normal(s, 0.0, math.sqrt(2.0 / max(1, fan_in)) / _TRUNCATED_STDDEV_CORRECTION, d, seed)


def _he_uniform(s, d, seed):
    fan_in, _ = compute_fans(s)
    limit = math.sqrt(6.0 / max(1, fan_in))
    return rnd.random_uniform(s, -limit, limit, d, seed)


glorot_uniform = _initializer("glorot_uniform", _glorot_uniform)
glorot_normal = _initializer("glorot_normal", _glorot_normal)
he_normal = _initializer("he_normal", _he_normal)
he_uniform = _initializer("he_uniform", _he_uniform)
xavier_uniform = glorot_uniform


# --- TF1's initializer classes, by their TF1 names and with TF1's defaults ------------------------
# (``gc.random_normal_initializer()`` has stddev 1.0 as in TF1, where gc.init.random_normal's
# is 0.05.) Each returns an Initializer that get_variable or a Variable calls with its shape.
def zeros_initializer(dtype=dt.float32) -> Initializer:
    return zeros(dtype=dtype)


def ones_initializer(dtype=dt.float32) -> Initializer:
    return ones(dtype=dtype)


def constant_initializer(value=0, dtype=dt.float32, verify_shape: bool = False) -> Initializer:
    return constant(value, dtype=dtype)


def random_normal_initializer(mean=0.0, stddev=1.0, seed=None, dtype=dt.float32) -> Initializer:
    return random_normal(dtype=dtype, seed=seed, mean=mean, stddev=stddev)


def random_uniform_initializer(minval=0.0, maxval=None, seed=None, dtype=dt.float32) -> Initializer:
    return random_uniform(dtype=dtype, seed=seed, minval=minval, maxval=1.0 if maxval is None else maxval)


def truncated_normal_initializer(mean=0.0, stddev=1.0, seed=None, dtype=dt.float32) -> Initializer:
    return truncated_normal(dtype=dtype, seed=seed, mean=mean, stddev=stddev)


def glorot_uniform_initializer(seed=None, dtype=dt.float32) -> Initializer:
    return glorot_uniform(dtype=dtype, seed=seed)


def glorot_normal_initializer(seed=None, dtype=dt.float32) -> Initializer:
    return glorot_normal(dtype=dtype, seed=seed)


def xavier_initializer(uniform: bool = True, seed=None, dtype=dt.float32) -> Initializer:
    """``tf.contrib.layers.xavier_initializer``."""
    return (glorot_uniform if uniform else glorot_normal)(dtype=dtype, seed=seed)


def _variance_scaling(s, d, seed, scale, mode, distribution):
    fan_in, fan_out = compute_fans(s)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    variance = scale / max(1.0, n)
    if distribution in ("normal", "truncated_normal"):
        return rnd.truncated_normal(s, 0.0, math.sqrt(variance) / _TRUNCATED_STDDEV_CORRECTION, d, seed)
    if distribution == "untruncated_normal":
        return rnd.random_normal(s, 0.0, math.sqrt(variance), d, seed)
    limit = math.sqrt(3.0 * variance)
    return rnd.random_uniform(s, -limit, limit, d, seed)


def variance_scaling_initializer(scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                                 dtype=dt.float32) -> Initializer:
    """TF1's ``tf.variance_scaling_initializer`` (``distribution`` "normal" is TF1's old
    spelling of "truncated_normal")."""
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"variance_scaling_initializer at {user_location()}: mode must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")
    if distribution not in ("normal", "truncated_normal", "untruncated_normal", "uniform"):
        raise ValueError(f"variance_scaling_initializer at {user_location()}: distribution must be 'truncated_normal', "
                         f"'untruncated_normal' or 'uniform', got {distribution!r}")
    if scale <= 0:
        raise ValueError(f"variance_scaling_initializer at {user_location()}: scale must be positive, got {scale!r}")
    return _initializer("variance_scaling", _variance_scaling)(dtype=dtype, seed=seed, scale=scale, mode=mode,
                                                               distribution=distribution)


TF1_INITIALIZERS = ("zeros_initializer", "ones_initializer", "constant_initializer", "random_normal_initializer",
                    "random_uniform_initializer", "truncated_normal_initializer", "glorot_uniform_initializer",
                    "glorot_normal_initializer", "variance_scaling_initializer")

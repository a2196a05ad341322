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

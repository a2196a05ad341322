"""``keras.initializers``: Keras 2's initializers, by class and by name. Each is called as
``init(shape, dtype=None)`` and returns the initial-value tensor (``dtype`` defaults to
``backend.floatx()``), so ``gc.Variable(init(shape, dtype))`` works. Defaults are Keras 2's
(RandomNormal's stddev is 0.05, not TF1's 1.0)."""
from __future__ import annotations

import math

import numpy as np

from ..dtypes import as_dtype
from ..graph import get_default_graph, user_location
from ..ops import random as rnd
from ..ops import source
from . import backend
from . import lookup

_TRUNCATED_STDDEV_CORRECTION = 0.87962566103423978  # stddev of a unit normal truncated at +-2


def _dtype(dtype):
    return as_dtype(dtype or backend.floatx())


def _shape(shape) -> tuple:
    return tuple(int(d) for d in shape)


class Initializer:
    """Base class: ``init(shape, dtype=None) -> tensor``; ``get_config``/``from_config``."""

    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        return f"<keras.initializers.{type(self).__name__} {self.get_config()}>"


class Zeros(Initializer):
    def __call__(self, shape, dtype=None):
        return source.zeros(_shape(shape), _dtype(dtype))


class Ones(Initializer):
    def __call__(self, shape, dtype=None):
        return source.ones(_shape(shape), _dtype(dtype))


class Constant(Initializer):
    def __init__(self, value=0):
        self.value = value

    def __call__(self, shape, dtype=None):
        return source.constant(self.value, dtype=_dtype(dtype), shape=_shape(shape))

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean=0., stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype=None):
        return rnd.random_normal(_shape(shape), self.mean, self.stddev, _dtype(dtype), self.seed)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def __call__(self, shape, dtype=None):
        return rnd.random_uniform(_shape(shape), self.minval, self.maxval, _dtype(dtype), self.seed)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class TruncatedNormal(Initializer):
    """A normal redrawn beyond two standard deviations of the mean."""

    def __init__(self, mean=0., stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype=None):
        return rnd.truncated_normal(_shape(shape), self.mean, self.stddev, _dtype(dtype), self.seed)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def compute_fans(shape) -> tuple:
    """Keras's (fan_in, fan_out): a dense kernel (in, out); a 1-3D convolution kernel
    (..., in, out) times its receptive field; any other shape sqrt of its size for both."""
    shape = _shape(shape)
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) in (3, 4, 5):
        receptive_field = int(np.prod(shape[:-2]))
        return shape[-2] * receptive_field, shape[-1] * receptive_field
    fan = math.sqrt(int(np.prod(shape)))
    return fan, fan


class VarianceScaling(Initializer):
    """Samples of variance ``scale / n``, n the fan_in, fan_out or their mean: a truncated
    normal ('normal', its stddev corrected for the truncation) or a uniform on
    [-sqrt(3 * scale / n), sqrt(3 * scale / n)]."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="normal", seed=None):
        where = user_location()
        if scale <= 0.:
            raise ValueError(f"keras.initializers.VarianceScaling at {where}: expected a positive scale, got "
                             f"{scale!r}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"keras.initializers.VarianceScaling at {where}: expected mode 'fan_in', 'fan_out' "
                             f"or 'fan_avg', got {mode!r}")
        if distribution not in ("normal", "uniform"):
            raise ValueError(f"keras.initializers.VarianceScaling at {where}: expected distribution 'normal' or "
                             f"'uniform', got {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def __call__(self, shape, dtype=None):
        shape = _shape(shape)
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "normal":
            stddev = math.sqrt(variance) / _TRUNCATED_STDDEV_CORRECTION
            return rnd.truncated_normal(shape, 0.0, stddev, _dtype(dtype), self.seed)
        limit = math.sqrt(3.0 * variance)
        return rnd.random_uniform(shape, -limit, limit, _dtype(dtype), self.seed)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


class Orthogonal(Initializer):
    """``gain`` times a random orthogonal matrix (rows or columns orthonormal, whichever fit),
    reshaped to ``shape`` (all axes but the last flattened into rows).

    Computed with NumPy when the graph is built, as the QR decomposition of a standard
    normal matrix with the signs of R's diagonal folded into Q (so Q is uniformly
    distributed). With a ``seed`` the matrix is the same on every call and every run
    (``numpy.random.default_rng(seed)``). Without one it follows the graph's seed
    (``gc.set_random_seed``) and the number of ops made so far, as graphc's random ops do, so
    a seeded program gets the same matrices in every run; with neither, NumPy's global
    generator draws it (Keras's behaviour, repeatable under ``np.random.seed``). The result
    is a constant in the graph."""

    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = gain, seed

    def __call__(self, shape, dtype=None):
        shape = _shape(shape)
        if len(shape) < 2:
            raise ValueError(f"keras.initializers.Orthogonal at {user_location()}: expected a shape of rank >= 2, "
                             f"got {shape}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        normal = _orthogonal_rng(self.seed).standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(normal)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return source.constant((self.gain * q).reshape(shape), dtype=_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


def _orthogonal_rng(seed):
    if seed is not None:
        return np.random.default_rng(seed)
    graph = get_default_graph()
    if graph.seed is not None:
        return np.random.default_rng([graph.seed, len(graph.get_operations())])
    return np.random.default_rng(np.random.randint(2 ** 31))


class Identity(Initializer):
    """``gain`` times the identity matrix; 2-D square shapes only, as in Keras 2."""

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        shape = _shape(shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"keras.initializers.Identity at {user_location()}: expected a 2-D square shape, got "
                             f"{shape}")
        return source.constant(self.gain * np.identity(shape[0]), dtype=_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain}


def lecun_uniform(seed=None):
    return VarianceScaling(1., "fan_in", "uniform", seed)


def lecun_normal(seed=None):
    return VarianceScaling(1., "fan_in", "normal", seed)


def glorot_normal(seed=None):
    return VarianceScaling(1., "fan_avg", "normal", seed)


def glorot_uniform(seed=None):
    return VarianceScaling(1., "fan_avg", "uniform", seed)


def he_normal(seed=None):
    return VarianceScaling(2., "fan_in", "normal", seed)


def he_uniform(seed=None):
    return VarianceScaling(2., "fan_in", "uniform", seed)


# Keras's names: classes, their snake-case aliases, and the variance-scaling presets
CLASSES = {cls.__name__: cls for cls in (Initializer, Zeros, Ones, Constant, RandomNormal, RandomUniform,
                                         TruncatedNormal, VarianceScaling, Orthogonal, Identity)}
zero = zeros = Zeros
one = ones = Ones
constant = Constant
uniform = random_uniform = RandomUniform
normal = random_normal = RandomNormal
truncated_normal = TruncatedNormal
variance_scaling = VarianceScaling
identity = Identity
orthogonal = Orthogonal
BY_NAME = dict(CLASSES)
BY_NAME.update(zero=Zeros, zeros=Zeros, one=Ones, ones=Ones, constant=Constant, uniform=RandomUniform,
               random_uniform=RandomUniform, normal=RandomNormal, random_normal=RandomNormal,
               truncated_normal=TruncatedNormal, variance_scaling=VarianceScaling, identity=Identity,
               orthogonal=Orthogonal, lecun_uniform=lecun_uniform, lecun_normal=lecun_normal,
               glorot_normal=glorot_normal, glorot_uniform=glorot_uniform, he_normal=he_normal,
               he_uniform=he_uniform)


def serialize(initializer):
    return lookup.serialize(initializer)


def deserialize(config: dict):
    class_name = config.get("class_name") if isinstance(config, dict) else None
    factory = BY_NAME.get(class_name)
    if factory is None:
        raise ValueError(f"keras.initializers.deserialize at {user_location()}: unknown initializer "
                         f"{class_name!r}; expected one of {sorted(BY_NAME)}")
    return factory(**dict(config.get("config") or {}))


def get(identifier):
    """A name ('glorot_uniform', 'zeros', 'Orthogonal', ...) -> that initializer with Keras's
    defaults; a dict -> deserialize; a callable passes through."""
    names = {k: v for k, v in BY_NAME.items() if v is not Initializer}
    return lookup.resolve("initializer", identifier, names, make=lambda factory: factory(), from_config=deserialize)
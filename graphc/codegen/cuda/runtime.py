"""Scalar helpers for generated CUDA kernels (``rt.<name>``): the CPU backend's helpers,
except where numba's CUDA target lacks what they call (np.fmod, np.floor). Under the
simulator a kernel runs as Python and gets simmath's IEEE math instead of ``math``."""
from ..emit.runtime import *  # noqa: F401,F403  (every helper is target-neutral unless redefined here)
from ..emit.runtime import float_divmod
from numba.extending import register_jitable

from .api import simulated

if simulated():
    from . import simmath as _math
else:
    import math as _math

floordiv_float, mod_float = float_divmod(_math.fmod, _math.floor)


@register_jitable
def rint(x):
    """np.rint (round half to even) from floor: the CUDA target has no np.rint. The result
    has the sign of x, as np.rint's does (rint(-0.4) is -0.0)."""
    f = _math.floor(x)
    d = x - f
    if d > 0.5 or (d == 0.5 and _math.fmod(f, 2.0) != 0.0):
        f = f + 1.0
    return _math.copysign(f, x)


# Strict arithmetic is the CUDA target's default: the accumulators are plain operations.
@register_jitable
def fold_add(acc, value):
    return acc + value


@register_jitable
def fold_mul(acc, value):
    return acc * value


@register_jitable
def muladd(a, b, c):
    return a * b + c


@register_jitable
def fold_muladd(acc, a, b):
    return acc + a * b

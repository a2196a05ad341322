"""``math`` for generated kernels under numba's CUDA simulator.

The simulator runs a kernel as Python, where ``math.exp(1000.0)`` raises OverflowError and
``math.log(0.0)`` raises ValueError; on a GPU (libdevice) they give inf and -inf, as NumPy
does. Kernels built for the simulator import this module as ``math`` so that they compute
what the GPU computes."""
import math as _math

import numpy as np

pi = _math.pi
e = _math.e
inf = _math.inf
nan = _math.nan


def _quiet(ufunc):
    def call(*args):
        with np.errstate(all="ignore"):
            return ufunc(*args)
    call.__name__ = ufunc.__name__
    return call


exp = _quiet(np.exp)
expm1 = _quiet(np.expm1)
log = _quiet(np.log)
log1p = _quiet(np.log1p)
sqrt = _quiet(np.sqrt)
tanh = _quiet(np.tanh)
sin = _quiet(np.sin)
cos = _quiet(np.cos)
tan = _quiet(np.tan)
asin = _quiet(np.arcsin)
acos = _quiet(np.arccos)
atan = _quiet(np.arctan)
sinh = _quiet(np.sinh)
cosh = _quiet(np.cosh)
asinh = _quiet(np.arcsinh)
acosh = _quiet(np.arccosh)
atanh = _quiet(np.arctanh)
floor = _quiet(np.floor)
ceil = _quiet(np.ceil)
copysign = _quiet(np.copysign)
fmod = _quiet(np.fmod)
isnan = np.isnan
isinf = np.isinf
isfinite = np.isfinite


def erf(x):
    return type(x)(_math.erf(x)) if isinstance(x, np.floating) else _math.erf(x)

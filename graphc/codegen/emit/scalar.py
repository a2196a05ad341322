"""Scalar formulas of elementwise ops, as Python source for generated numba kernels.

A formula ``fn(e, x)`` returns the source of one element of the op's result, given ``x``, the
source of one element of each input, and ``e`` (:class:`Element`): the op's attrs, its input
and output dtypes, typed literals, and ``e.call(name, *args)``, the target's spelling of a math
function (graphc's vectorisable ``vm`` functions on the CPU, libdevice ``math`` on a GPU). The
CPU, CUDA and native targets share every formula; only the spellings differ (``CPU_MATH``
here, ``CUDA_MATH`` in cuda/codegen.py).

Results are wrapped in the output dtype so that integer arithmetic wraps as in NumPy (numba
widens int32 + int32 to int64) and float32 stays float32.

A formula lives here when several ops share it or it needs codegen helpers; an op defined in
one place (``define_elementwise(..., formula=...)``, docs/ADDING-AN-OP.md) carries its own.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Sequence

import numpy as np

from ...dtypes import DType
from ...errors import CompileError
from ...ops.registry import find_opdef, rule_registrar


def literal(value, dtype: DType) -> str:
    """Source for a constant of ``dtype`` (exact: floats are written with repr)."""
    if dtype.is_bool:
        return "True" if bool(value) else "False"
    name = f"np.{dtype.np.name}"
    if dtype.is_floating:
        v = float(value)
        if math.isnan(v):
            return f"{name}(np.nan)"
        if math.isinf(v):
            return f"{name}({'-' if v < 0 else ''}np.inf)"
        return f"{name}({v!r})"
    return f"{name}({int(value)})"


def _has_vm(fn: str, suffix: str) -> bool:
    from .. import vmath
    return hasattr(vmath, f"{fn}_{suffix}")


# math functions -> their CPU spelling where it is not graphc's vm (exp, log, tanh, erf,
# sigmoid have vectorisable vm versions; see codegen/vmath.py)
_CPU_NAMES = {"exp": "math.exp", "log": "math.log", "tanh": "math.tanh", "erf": "math.erf", "sigmoid": "rt.sigmoid",
              "expm1": "math.expm1", "log1p": "math.log1p", "sin": "math.sin", "cos": "math.cos",
              "sqrt": "np.sqrt", "floor": "np.floor", "ceil": "np.ceil", "rint": "np.rint", "isnan": "np.isnan",
              "isfinite": "np.isfinite", "max": "max", "min": "min",
              **{f: f"math.{f}" for f in ("tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh")}}


def CPU_MATH(name: str, dtype: DType = None) -> str:
    """The CPU (and native) spelling of math function ``name`` for ``dtype``: graphc's
    vectorisable implementation where there is one, so fused loops vectorize without SVML."""
    if dtype is not None and dtype.is_floating:
        suffix = "f32" if dtype.np == np.float32 else "f64"
        if _has_vm(name, suffix):
            return f"vm.{name}_{suffix}"
    try:
        return _CPU_NAMES[name]
    except KeyError:
        raise CompileError(f"no CPU spelling of math function {name!r}") from None


class Element:
    """What a scalar formula knows of one element: the op's ``attrs``, its input ``dtype`` and
    ``out`` dtype, and the target's math (``call``)."""

    def __init__(self, attrs, dtype: DType, out: DType, spell: Callable = CPU_MATH):
        self.attrs, self.dtype, self.out, self._spell = attrs, dtype, out, spell
        self.widened = False  # a libm call (math.*) returns float64 even for float32

    def lit(self, value) -> str:
        """A literal of the input dtype."""
        return literal(value, self.dtype)

    def call(self, name: str, *args: str) -> str:
        fn = self._spell(name, self.dtype)
        self.widened |= fn.startswith("math.")
        return f"{fn}({', '.join(args)})"


def _cast(dtype: DType, expr: str) -> str:
    return f"np.{dtype.np.name}({expr})"


# op -> fn(e, x) -> expression source (without the final cast)
_TABLE: Dict[str, Callable] = {}
formula = rule_registrar(_TABLE, "scalar formula")


@formula("negative")
def _(e, x):
    return f"-{x[0]}"


@formula("abs")
def _(e, x):
    return f"abs({x[0]})"


@formula("sign")
def _(e, x):
    if e.dtype.is_floating:  # +-inf -> +-1, +-0 -> +0 (NumPy), NaN -> NaN
        one = e.lit(1)
        return f"({one} if {x[0]} > 0 else (-{one} if {x[0]} < 0 else {x[0]} - {x[0]}))"
    return f"(({x[0]} > 0) * 1 - ({x[0]} < 0) * 1)"


def _function(name):
    """The op is the target's math function ``name`` of its one input."""
    def emit(e, x):
        return e.call(name, x[0])
    return emit


for _name in ("exp", "expm1", "log", "log1p", "sqrt", "sin", "cos", "tanh", "sigmoid", "erf"):
    _TABLE[_name] = _function(_name)


@formula("rsqrt")
def _(e, x):
    return f"({e.lit(1)} / {e.call('sqrt', x[0])})"


@formula("square")
def _(e, x):
    return f"({x[0]} * {x[0]})"


@formula("reciprocal")
def _(e, x):
    return f"({e.lit(1)} / {x[0]})"


def _rounding(name):
    def emit(e, x):
        return e.call(name, x[0]) if e.dtype.is_floating else x[0]
    return emit


_TABLE["floor"] = _rounding("floor")
_TABLE["ceil"] = _rounding("ceil")
_TABLE["round"] = _rounding("rint")


@formula("logical_not")
def _(e, x):
    return f"(not {x[0]})"


@formula("isnan")
def _(e, x):
    return e.call("isnan", x[0]) if e.dtype.is_floating else "False"


@formula("isfinite")
def _(e, x):
    return e.call("isfinite", x[0]) if e.dtype.is_floating else "True"


_BINARY = {"add": "+", "subtract": "-", "multiply": "*", "equal": "==", "not_equal": "!=", "less": "<",
           "less_equal": "<=", "greater": ">", "greater_equal": ">="}


def _infix(symbol):
    def emit(e, x):
        return f"({x[0]} {symbol} {x[1]})"
    return emit


for _name, _sym in _BINARY.items():
    _TABLE[_name] = _infix(_sym)


@formula("divide")
def _(e, x):
    return f"({x[0]} / {x[1]})"


@formula("floordiv")
def _(e, x):
    return f"rt.floordiv_float({x[0]}, {x[1]})" if e.dtype.is_floating else f"rt.floordiv_int({x[0]}, {x[1]})"


@formula("mod")
def _(e, x):
    return f"rt.mod_float({x[0]}, {x[1]})" if e.dtype.is_floating else f"rt.mod_int({x[0]}, {x[1]})"


@formula("pow")
def _(e, x):
    return f"({x[0]} ** {x[1]})"


@formula("maximum")
def _(e, x):
    return f"rt.maximum({x[0]}, {x[1]})"


@formula("minimum")
def _(e, x):
    return f"rt.minimum({x[0]}, {x[1]})"


@formula("logical_and")
def _(e, x):
    return f"({x[0]} and {x[1]})"


@formula("logical_or")
def _(e, x):
    return f"({x[0]} or {x[1]})"


@formula("where")
def _(e, x):
    return f"({x[1]} if {x[0]} else {x[2]})"


@formula("clip_by_value")
def _(e, x):
    return f"rt.minimum(rt.maximum({x[0]}, {x[1]}), {x[2]})"


@formula("cast")
def _(e, x):
    if e.out.is_bool:
        return f"({x[0]} != 0)"
    return x[0]


@formula("identity", "stop_gradient", "snapshot", "broadcast_to", "fill", "assign")
def _(e, x):
    return x[0]


@formula("relu")
def _(e, x):
    return f"rt.maximum({x[0]}, {e.lit(0)})"


@formula("leaky_relu")
def _(e, x):
    return f"({x[0]} if {x[0]} > 0 else {e.lit(e.attrs['alpha'])} * {x[0]})"


@formula("elu")
def _(e, x):
    alpha = e.lit(e.attrs["alpha"])
    return f"({x[0]} if {x[0]} > 0 else {alpha} * {e.call('expm1', e.call('min', x[0], e.lit(0)))})"


@formula("softplus")
def _(e, x):
    # log(1 + exp(x)) without overflow: inf -> inf, -inf -> 0, NaN -> NaN
    v = x[0]
    return (f"({v} + {e.call('log1p', e.call('exp', f'-{v}'))} if {v} > 0 "
            f"else {e.call('log1p', e.call('exp', v))})")


@formula("gelu")
def _(e, x):
    v = x[0]
    half, one = e.lit(0.5), e.lit(1)
    if e.attrs["approximate"]:
        c, k = e.lit(math.sqrt(2 / math.pi)), e.lit(0.044715)
        return f"({half} * {v} * ({one} + {e.call('tanh', f'{c} * ({v} + {k} * {v} * {v} * {v})')}))"
    return f"({half} * {v} * ({one} + {e.call('erf', f'{v} * {e.lit(1 / math.sqrt(2))}')}))"


# Float ops whose numba result already has the input's float type (operands and literals are
# typed), so no cast is needed unless a libm call widened it; every other op is wrapped in a
# cast to the output dtype (numba widens int32 + int32 to int64, ...). Casts cost compile time.
_SAME_FLOAT_TYPE = frozenset({
    "negative", "abs", "sign", "exp", "log", "sqrt", "rsqrt", "square", "reciprocal", "tanh", "sigmoid",
    "erf", "floor", "ceil", "round", "add", "subtract", "multiply", "divide", "maximum", "minimum", "where",
    "clip_by_value", "identity", "stop_gradient", "snapshot", "broadcast_to", "fill", "assign", "relu", "leaky_relu",
    "gelu",
})
_NEVER_CAST = frozenset({"isnan", "isfinite", "logical_not", "logical_and", "logical_or", "equal", "not_equal",
                         "less", "less_equal", "greater", "greater_equal"})


def formula_of(op: str):
    """The op's scalar formula: its own (OpDef.formula) or this table's; None if neither."""
    opdef = find_opdef(op)
    if opdef is not None and opdef.formula is not None:
        return opdef.formula
    return _TABLE.get(op)


def expression(op: str, attrs, args: Sequence[str], in_dtype: DType, out_dtype: DType, spell=CPU_MATH) -> str:
    """One element of ``op``'s result as Python source, with the target's math ``spell``."""
    emit = formula_of(op)
    if emit is None:
        raise CompileError(f"no compiled backend has an elementwise kernel for op {op!r}")
    e = Element(attrs, in_dtype, out_dtype, spell)
    expr = emit(e, list(args))
    if op in _NEVER_CAST and out_dtype.is_bool:
        return expr
    if out_dtype.is_floating and in_dtype is out_dtype and op in _SAME_FLOAT_TYPE and not e.widened:
        return expr
    return _cast(out_dtype, expr)


def apply_formula(fn, attrs, args: Sequence[str], dtype: DType, spell=CPU_MATH) -> str:
    """A formula outside an op's element (a reduction's fold, ops/reduce.py), cast to ``dtype``."""
    return _cast(dtype, fn(Element(attrs, dtype, dtype, spell), list(args)))


def supported() -> frozenset:
    """Every op with a scalar formula (here or in its OpDef)."""
    from ...ops.registry import OPS
    return frozenset(_TABLE) | frozenset(name for name, d in OPS.items() if d.formula is not None)


def combine_assign(op: str, current: str, value: str) -> str:
    """The new value a variable write stores."""
    return {"assign": value, "assign_add": f"({current} + {value})", "assign_sub": f"({current} - {value})"}[op]

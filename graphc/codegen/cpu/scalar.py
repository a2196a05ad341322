"""Scalar expressions of elementwise ops, as Python source for generated numba kernels.

``expression(op, attrs, args, in_dtype, out_dtype)`` returns the source of one element of the
op's result, given the source of one element of each input. Results are wrapped in the
output dtype so that integer arithmetic wraps as in NumPy (numba widens int32 + int32 to
int64) and float32 stays float32. Transcendentals use graphc's vectorisable implementations
(``vm``) where they exist, so fused loops vectorize without SVML.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Sequence

import numpy as np

from ...dtypes import DType
from ...errors import CompileError
from ...ops.registry import rule_registrar


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


def _vm(fn: str, dtype: DType) -> str:
    """A vectorisable implementation from graphc.codegen.vmath if there is one, else libm."""
    suffix = "f32" if dtype.np == np.float32 else "f64"
    try:
        from .. import vmath
        if hasattr(vmath, f"{fn}_{suffix}"):
            return f"vm.{fn}_{suffix}"
    except ImportError:
        pass
    return {"exp": "math.exp", "log": "math.log", "tanh": "math.tanh", "erf": "math.erf",
            "sigmoid": "rt.sigmoid"}[fn]


def _cast(dtype: DType, expr: str) -> str:
    return f"np.{dtype.np.name}({expr})"


# op -> fn(attrs, args, in_dtype, out_dtype) -> expression source (without the final cast)
_TABLE: Dict[str, Callable] = {}
_op = rule_registrar(_TABLE, "scalar formula")


@_op("negative")
def _(a, x, t, o):
    return f"-{x[0]}"


@_op("abs")
def _(a, x, t, o):
    return f"abs({x[0]})"


@_op("sign")
def _(a, x, t, o):
    if t.is_floating:  # +-inf -> +-1, +-0 -> +0 (NumPy), NaN -> NaN
        one = literal(1, t)
        return f"({one} if {x[0]} > 0 else (-{one} if {x[0]} < 0 else {x[0]} - {x[0]}))"
    return f"(({x[0]} > 0) * 1 - ({x[0]} < 0) * 1)"


@_op("exp")
def _(a, x, t, o):
    return f"{_vm('exp', t)}({x[0]})"


@_op("expm1")
def _(a, x, t, o):
    return f"math.expm1({x[0]})"


@_op("log")
def _(a, x, t, o):
    return f"{_vm('log', t)}({x[0]})"


@_op("log1p")
def _(a, x, t, o):
    return f"math.log1p({x[0]})"


@_op("sqrt")
def _(a, x, t, o):
    return f"np.sqrt({x[0]})"


@_op("rsqrt")
def _(a, x, t, o):
    return f"({literal(1, t)} / np.sqrt({x[0]}))"


@_op("square")
def _(a, x, t, o):
    return f"({x[0]} * {x[0]})"


@_op("reciprocal")
def _(a, x, t, o):
    return f"({literal(1, t)} / {x[0]})"


@_op("sin")
def _(a, x, t, o):
    return f"math.sin({x[0]})"


@_op("cos")
def _(a, x, t, o):
    return f"math.cos({x[0]})"


@_op("tanh")
def _(a, x, t, o):
    return f"{_vm('tanh', t)}({x[0]})"


@_op("sigmoid")
def _(a, x, t, o):
    return f"{_vm('sigmoid', t)}({x[0]})"


@_op("erf")
def _(a, x, t, o):
    return f"{_vm('erf', t)}({x[0]})"


def _rounding(fn):
    def emit(a, x, t, o):
        return f"{fn}({x[0]})" if t.is_floating else x[0]
    return emit


_TABLE["floor"] = _rounding("np.floor")
_TABLE["ceil"] = _rounding("np.ceil")
_TABLE["round"] = _rounding("np.rint")


@_op("logical_not")
def _(a, x, t, o):
    return f"(not {x[0]})"


@_op("isnan")
def _(a, x, t, o):
    return f"np.isnan({x[0]})" if t.is_floating else "False"


@_op("isfinite")
def _(a, x, t, o):
    return f"np.isfinite({x[0]})" if t.is_floating else "True"


_BINARY = {"add": "+", "subtract": "-", "multiply": "*", "equal": "==", "not_equal": "!=", "less": "<",
           "less_equal": "<=", "greater": ">", "greater_equal": ">="}


def _infix(symbol):
    def emit(a, x, t, o):
        return f"({x[0]} {symbol} {x[1]})"
    return emit


for _name, _sym in _BINARY.items():
    _TABLE[_name] = _infix(_sym)


@_op("divide")
def _(a, x, t, o):
    return f"({x[0]} / {x[1]})"


@_op("floordiv")
def _(a, x, t, o):
    return f"rt.floordiv_float({x[0]}, {x[1]})" if t.is_floating else f"rt.floordiv_int({x[0]}, {x[1]})"


@_op("mod")
def _(a, x, t, o):
    return f"rt.mod_float({x[0]}, {x[1]})" if t.is_floating else f"rt.mod_int({x[0]}, {x[1]})"


@_op("pow")
def _(a, x, t, o):
    return f"({x[0]} ** {x[1]})"


@_op("maximum")
def _(a, x, t, o):
    return f"rt.maximum({x[0]}, {x[1]})"


@_op("minimum")
def _(a, x, t, o):
    return f"rt.minimum({x[0]}, {x[1]})"


@_op("logical_and")
def _(a, x, t, o):
    return f"({x[0]} and {x[1]})"


@_op("logical_or")
def _(a, x, t, o):
    return f"({x[0]} or {x[1]})"


@_op("where")
def _(a, x, t, o):
    return f"({x[1]} if {x[0]} else {x[2]})"


@_op("clip_by_value")
def _(a, x, t, o):
    return f"rt.minimum(rt.maximum({x[0]}, {x[1]}), {x[2]})"


@_op("cast")
def _(a, x, t, o):
    if o.is_bool:
        return f"({x[0]} != 0)"
    return x[0]


@_op("identity", "stop_gradient", "snapshot", "broadcast_to", "fill", "assign")
def _(a, x, t, o):
    return x[0]


@_op("relu")
def _(a, x, t, o):
    return f"rt.maximum({x[0]}, {literal(0, t)})"


@_op("leaky_relu")
def _(a, x, t, o):
    return f"({x[0]} if {x[0]} > 0 else {literal(a['alpha'], t)} * {x[0]})"


@_op("elu")
def _(a, x, t, o):
    return f"({x[0]} if {x[0]} > 0 else {literal(a['alpha'], t)} * math.expm1(min({x[0]}, {literal(0, t)})))"


@_op("softplus")
def _(a, x, t, o):
    # log(1 + exp(x)) without overflow: inf -> inf, -inf -> 0, NaN -> NaN
    v = x[0]
    e = _vm("exp", t)
    return f"({v} + math.log1p({e}(-{v})) if {v} > 0 else math.log1p({e}({v})))"


@_op("gelu")
def _(a, x, t, o):
    v = x[0]
    half, one = literal(0.5, t), literal(1, t)
    if a["approximate"]:
        c, k = literal(math.sqrt(2 / math.pi), t), literal(0.044715, t)
        return f"({half} * {v} * ({one} + {_vm('tanh', t)}({c} * ({v} + {k} * {v} * {v} * {v}))))"
    return f"({half} * {v} * ({one} + {_vm('erf', t)}({v} * {literal(1 / math.sqrt(2), t)})))"


# Float ops whose numba result already has the input's float type (operands and literals are
# typed), so no cast is needed; every other op is wrapped in a cast to the output dtype
# (numba widens int32 + int32 to int64, math.* returns float64, ...). Casts cost compile time.
_SAME_FLOAT_TYPE = frozenset({
    "negative", "abs", "sign", "exp", "log", "sqrt", "rsqrt", "square", "reciprocal", "tanh", "sigmoid",
    "erf", "floor", "ceil", "round", "add", "subtract", "multiply", "divide", "maximum", "minimum", "where",
    "clip_by_value", "identity", "stop_gradient", "snapshot", "broadcast_to", "fill", "assign", "relu", "leaky_relu",
    "gelu",
})
_NEVER_CAST = frozenset({"isnan", "isfinite", "logical_not", "logical_and", "logical_or", "equal", "not_equal",
                         "less", "less_equal", "greater", "greater_equal"})


def expression(op: str, attrs, args: Sequence[str], in_dtype: DType, out_dtype: DType) -> str:
    """One element of ``op``'s result as Python source."""
    emit = _TABLE.get(op)
    if emit is None:
        raise CompileError(f"the CPU backend has no elementwise kernel for op {op!r}")
    expr = emit(attrs, list(args), in_dtype, out_dtype)
    if op in _NEVER_CAST and out_dtype.is_bool:
        return expr
    if out_dtype.is_floating and in_dtype is out_dtype and op in _SAME_FLOAT_TYPE and "math." not in expr:
        return expr
    return _cast(out_dtype, expr)


def supported() -> frozenset:
    return frozenset(_TABLE)


def combine_assign(op: str, current: str, value: str) -> str:
    """The new value a variable write stores."""
    return {"assign": value, "assign_add": f"({current} + {value})", "assign_sub": f"({current} - {value})"}[op]

"""Every algebraic simplification rule (optimizer/simplify.py), one case per rule name at
least: the rule fires on a graph fed through placeholders, the pattern is gone from the
optimized Program, and results (NaN and inf included) match the unoptimized run.

Also: rules that must not fire (x*0, x-x, broadcasting zeros, non-powers of two, lossy
casts, real reductions, run-time-checked broadcasts), and the engine's safety nets (a rule
that changes a type, a pass that returns an ill-typed program under GRAPHC_VALIDATE)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

import graphc as gc
from graphc.ops._build import make1
from graphc.ops.reduce import sum_to
from graphc.optimizer import pipeline, simplify
from graphc.optimizer.pipeline import optimize
from graphc.optimizer.program import lower
from graphc.optimizer.rewrite import Rule, rewrite
from graphc.shapes import TensorType
from support import assert_close, float_edges

F64 = gc.float64
EDGES = float_edges(np.float64)  # 0, -0, +-1, denormals, +-1e30, +-inf, NaN
EDGES32 = float_edges(np.float32)
N = len(EDGES)
RNG = np.random.default_rng(0)


# --- machinery -------------------------------------------------------------------------------------------
@dataclass
class Case:
    """``build()`` runs inside a fresh default graph and returns (placeholders, fetch)."""

    label: str
    build: Callable
    feeds: list
    gone: tuple = ()           # ops that must not be left in the optimized Program
    present: tuple = ()        # ops that must be in it
    count: dict = field(default_factory=dict)  # op -> exact number of instrs left
    disabled: tuple = ()       # passes to switch off (e.g. canonicalize, to see the un-canonical form)


def ph(shape, dtype=gc.float64, name="x"):
    return gc.placeholder(dtype, shape, name=name)


def compiled(case: Case, level: int):
    graph = gc.Graph()
    with graph.as_default():
        placeholders, fetch = case.build()
    program = lower(graph, [fetch], list(placeholders))
    program.validate()
    return graph, list(placeholders), fetch, optimize(program, level, case.disabled, validate=True)


def rewrites_of(optimized, pass_name: str, rule: str) -> int:
    return sum(r.rewrites[rule] for r in optimized.reports if r.name == pass_name)


def ops_of(program) -> list:
    """The program's ops, constants left out."""
    return [ins.op for ins in program.instrs if ins.op != "const"]


def run_at(graph, placeholders, fetch, feeds, level, disabled=()):
    with gc.Session(graph=graph, optimize=level, disable_passes=disabled) as sess:
        with np.errstate(all="ignore"):
            return sess.run(fetch, dict(zip(placeholders, feeds)))


def check_case(rule_name: str, case: Case, pass_name: str):
    """Fires at levels 1 and 2, removes the pattern, and keeps O0's results."""
    baseline = None
    for level in (1, 2):
        graph, placeholders, fetch, optimized = compiled(case, level)
        assert rewrites_of(optimized, pass_name, rule_name) >= 1, \
            f"{rule_name} did not fire at level {level}:\n" + "\n".join(map(str, optimized.reports))
        ops = ops_of(optimized.program)
        for op in case.gone:
            assert op not in ops, f"{op} left after {rule_name} (O{level}):\n{optimized.program}"
        for op in case.present:
            assert op in ops, f"no {op} after {rule_name} (O{level}):\n{optimized.program}"
        for op, n in case.count.items():
            assert ops.count(op) == n, f"expected {n} x {op} after {rule_name} (O{level}):\n{optimized.program}"
        if baseline is None:
            baseline = run_at(graph, placeholders, fetch, case.feeds, 0)
        result = run_at(graph, placeholders, fetch, case.feeds, level, case.disabled)
        assert_close(result, np.asarray(baseline))
    return baseline


def on(shape, dtype, fn):
    """A case's build: one placeholder ``x`` of ``shape`` and ``dtype``; fetch ``fn(x)``."""
    def build():
        x = ph(shape, dtype)
        return (x,), fn(x)
    return build


def on2(fn, shape_a=(N,), shape_b=(N,), dtypes=(gc.float64, gc.float64)):
    """A case's build: two placeholders; fetch ``fn(a, b)``."""
    def build():
        a, b = ph(shape_a, dtypes[0], "a"), ph(shape_b, dtypes[1], "b")
        return (a, b), fn(a, b)
    return build


# --- one or more cases per rule name ---------------------------------------------------------------------
Y = np.roll(EDGES, 5)  # a second operand: pairs inf with -inf, NaN with numbers, zeros with zeros


def _mm(ta=False, tb=False):
    a = RNG.standard_normal((3, 2) if ta else (2, 3))
    b = RNG.standard_normal((4, 3) if tb else (3, 4))
    a[0, 0] = np.inf
    return a, b


MM_A, MM_B = _mm()
MM_AT, _ = _mm(ta=True)
_, MM_BT = _mm(tb=True)
MM_AT[0, 0] = MM_BT[0, 0] = 1.5


def _lossless_values():
    return np.array([0, 1, -1, 7, 2 ** 31 - 1, -2 ** 31, 123456789], dtype=np.int32)


RULE_CASES = {
    "add_zero": [
        Case("x+0", on((N,), F64, lambda x: x + 0.0), [EDGES], gone=("add",)),
        Case("0+x-uncanonical", on((N,), F64, lambda x: gc.add(gc.constant(0.0, gc.float64), x)),
             [EDGES], gone=("add",), disabled=("canonicalize",)),
        Case("x+zeros-same-shape", on((2, 7), F64, lambda x: x + np.zeros((1, 7))),
             [EDGES.reshape(2, 7)], gone=("add",)),
    ],
    "subtract_zero": [
        Case("x-0", on((N,), F64, lambda x: x - 0.0), [EDGES], gone=("subtract",)),
    ],
    "zero_minus": [
        Case("0-x", on((N,), F64, lambda x: 0.0 - x), [EDGES], gone=("subtract",),
             present=("negative",)),
    ],
    "multiply_one": [
        Case("x*1", on((N,), F64, lambda x: x * 1.0), [EDGES], gone=("multiply",)),
        Case("1*x-uncanonical", on((N,), F64, lambda x: gc.multiply(gc.constant(1.0, gc.float64), x)),
             [EDGES], gone=("multiply",), disabled=("canonicalize",)),
        Case("int32", on((4,), gc.int32, lambda x: x * 1),
             [np.array([0, -1, 2 ** 31 - 1, -2 ** 31], np.int32)], gone=("multiply",)),
    ],
    "multiply_minus_one": [
        Case("x*-1", on((N,), F64, lambda x: x * -1.0), [EDGES], gone=("multiply",),
             present=("negative",)),
        Case("-1*x-uncanonical", on((N,), F64, lambda x: gc.multiply(gc.constant(-1.0, gc.float64), x)),
             [EDGES], gone=("multiply",), present=("negative",), disabled=("canonicalize",)),
        Case("int32-wraps", on((3,), gc.int32, lambda x: x * -1),
             [np.array([5, -2 ** 31, 2 ** 31 - 1], np.int32)], gone=("multiply",), present=("negative",)),
    ],
    "divide_one": [
        Case("x/1", on((N,), F64, lambda x: x / 1.0), [EDGES], gone=("divide",)),
    ],
    "divide_by_power_of_two": [
        Case("x/4", on((N,), F64, lambda x: x / 4.0), [EDGES], gone=("divide",),
             present=("multiply",)),
        Case("x/0.125-float32", on((N,), gc.float32, lambda x: x / np.float32(0.125)),
             [EDGES32], gone=("divide",), present=("multiply",)),
        Case("x/-2", on((N,), F64, lambda x: x / -2.0), [EDGES], gone=("divide",),
             present=("multiply",)),
    ],
    "remove_identity": [
        Case("identity", on((N,), F64, lambda x: gc.exp(gc.identity(x))), [EDGES],
             gone=("identity",), count={"exp": 1}),
    ],
    "remove_stop_gradient": [
        Case("stop_gradient", on((N,), F64, lambda x: gc.exp(gc.stop_gradient(x))), [EDGES],
             gone=("stop_gradient",), count={"exp": 1}),
    ],
    "pow_one": [
        Case("x**1", on((N,), F64, lambda x: gc.pow(x, 1.0)), [EDGES], gone=("pow",)),
    ],
    "pow_zero": [
        Case("x**0", on((N,), F64, lambda x: gc.pow(x, 0.0)), [EDGES], gone=("pow",)),
        Case("x**0-dynamic-shape", on((None, 2), F64, lambda x: gc.pow(x, 0.0)),
             [EDGES.reshape(7, 2)], gone=("pow",), present=("fill",)),
        Case("int32", on((3,), gc.int32, lambda x: gc.pow(x, 0)),
             [np.array([0, -3, 7], np.int32)], gone=("pow",)),
    ],
    "pow_small_integer": [
        Case("x**2", on((N,), F64, lambda x: gc.pow(x, 2.0)), [EDGES], gone=("pow",),
             count={"multiply": 1}),
        Case("x**3", on((N,), F64, lambda x: gc.pow(x, 3.0)), [EDGES], gone=("pow",),
             count={"multiply": 2}),
        Case("x**4", on((N,), F64, lambda x: gc.pow(x, 4.0)), [EDGES], gone=("pow",),
             count={"multiply": 2}),
        Case("int32**3", on((4,), gc.int32, lambda x: gc.pow(x, 3)),
             [np.array([0, -3, 7, 2000], np.int32)], gone=("pow",)),
    ],
    "pow_half": [
        Case("x**0.5", on((N,), F64, lambda x: gc.pow(x, 0.5)), [EDGES], gone=("pow",),
             present=("sqrt",)),
        Case("x**-1", on((N,), F64, lambda x: gc.pow(x, -1.0)), [EDGES], gone=("pow",),
             present=("reciprocal",)),
    ],
    "double_negative": [
        Case("--x", on((N,), F64, lambda x: gc.negative(gc.negative(x))), [EDGES],
             gone=("negative",)),
    ],
    "negative_of_subtract": [
        Case("-(a-b)", on2(lambda a, b: gc.negative(a - b)), [EDGES, Y],
             gone=("negative",), count={"subtract": 1}),
    ],
    "subtract_negative": [
        Case("a-(-b)", on2(lambda a, b: a - gc.negative(b)), [EDGES, Y],
             gone=("negative", "subtract"), present=("add",)),
    ],
    "add_negative": [
        Case("a+(-b)", on2(lambda a, b: a + gc.negative(b)), [EDGES, Y],
             gone=("negative", "add"), present=("subtract",)),
        Case("(-a)+b", on2(lambda a, b: gc.negative(a) + b), [EDGES, Y],
             gone=("negative", "add"), present=("subtract",)),
    ],
    "negative_times_negative": [
        Case("(-a)*(-b)", on2(lambda a, b: gc.negative(a) * gc.negative(b)),
             [EDGES, Y], gone=("negative",), count={"multiply": 1}),
    ],
    "double_logical_not": [
        Case("not not b", on((4,), gc.bool_, lambda b: gc.logical_not(gc.logical_not(b))),
             [np.array([True, False, False, True])], gone=("logical_not",)),
    ],
    "max_min_of_self": [
        Case("maximum(x,x)", on((N,), F64, lambda x: gc.exp(gc.maximum(x, x))), [EDGES],
             gone=("maximum",)),
        Case("minimum(x,x)", on((N,), F64, lambda x: gc.exp(gc.minimum(x, x))), [EDGES],
             gone=("minimum",)),
        Case("maximum(e,e)-after-cse", on((N,), F64, lambda x: gc.maximum(gc.exp(x), gc.exp(x))),
             [EDGES], gone=("maximum",), count={"exp": 1}),
    ],
    "where_same_branches": [
        Case("where(c,x,x)", on2(lambda c, x: gc.where(c, x, x), dtypes=(gc.bool_, F64)),
             [np.arange(N) % 2 == 0, EDGES], gone=("where",)),
    ],
    "identity_transpose": [
        Case("transpose(x,(0,1))", on((2, 7), F64, lambda x: gc.exp(gc.transpose(x, (0, 1)))),
             [EDGES.reshape(2, 7)], gone=("transpose",)),
    ],
    "transpose_of_transpose": [
        Case("cancelling", on((2, 7), F64, lambda x: gc.exp(gc.transpose(gc.transpose(x)))),
             [EDGES.reshape(2, 7)], gone=("transpose",)),
        Case("combined", on((2, 3, 4), F64, lambda x: gc.transpose(gc.transpose(x, (1, 2, 0)), (1, 0, 2))),
             [RNG.standard_normal((2, 3, 4))], count={"transpose": 1}),
    ],
    "transpose_through_elementwise": [
        Case("NCHW activation between NHWC ops",
             on((2, 3, 4, 5), F64, lambda x: gc.exp(gc.transpose(gc.nn.relu(gc.transpose(x, (0, 3, 1, 2))),
                                                                 (0, 2, 3, 1)))),
             [RNG.standard_normal((2, 3, 4, 5))], gone=("transpose",)),
        Case("combined", on((2, 3, 4), F64, lambda x: gc.transpose(gc.tanh(gc.transpose(x, (1, 2, 0))), (1, 0, 2))),
             [RNG.standard_normal((2, 3, 4))], count={"transpose": 1, "tanh": 1}),
    ],
    "reshape_of_reshape": [
        Case("reshape(reshape(x))", on((2, 7), F64, lambda x: gc.reshape(gc.reshape(x, (7, 2)), (14, 1))),
             [EDGES.reshape(2, 7)], count={"reshape": 1}),
    ],
    "reshape_to_same_shape": [
        Case("reshape", on((2, 7), F64, lambda x: gc.exp(gc.reshape(x, (2, 7)))),
             [EDGES.reshape(2, 7)], gone=("reshape",)),
        Case("squeeze-nothing", on((2, 7), F64, lambda x: gc.exp(gc.squeeze(x, axis=[]))),
             [EDGES.reshape(2, 7)], gone=("squeeze",)),
        Case("broadcast_to-static", on((2, 7), F64, lambda x: gc.exp(gc.broadcast_to(x, (2, 7)))),
             [EDGES.reshape(2, 7)], gone=("broadcast_to",)),
    ],
    "squeeze_of_expand_dims": [
        Case("squeeze(expand_dims(x,1),1)", on((2, 7), F64, lambda x: gc.exp(gc.squeeze(gc.expand_dims(x, 1), 1))),
             [EDGES.reshape(2, 7)], gone=("squeeze", "expand_dims")),
    ],
    "sum_to_same_shape": [
        Case("sum_to(g,like)", on2(lambda g, like: gc.exp(sum_to(g, like)), (2, 7), (2, 7)),
             [EDGES.reshape(2, 7), np.zeros((2, 7))], gone=("sum_to",)),
    ],
    "cast_to_same_dtype": [
        # gc.cast returns x itself for its own dtype, so make the node directly
        Case("cast(f64->f64)", on((N,), F64, lambda x: gc.exp(make1("cast", (x,), {"dtype": gc.float64}))),
             [EDGES], gone=("cast",)),
    ],
    "cast_of_lossless_cast": [
        Case("f32->f64->f32", on((N,), gc.float32, lambda x: gc.exp(gc.cast(gc.cast(x, gc.float64), gc.float32))),
             [EDGES32], gone=("cast",)),
        Case("i32->i64->f64", on((7,), gc.int32, lambda x: gc.cast(gc.cast(x, gc.int64), gc.float64)),
             [_lossless_values()], count={"cast": 1}),
        Case("i32->f64->i8-wraps", on((7,), gc.int32, lambda x: gc.cast(gc.cast(x, gc.float64), gc.int8)),
             [_lossless_values()], count={"cast": 1}),
    ],
    "reduce_over_nothing": [
        Case("sum-no-axes", on((2, 7), F64, lambda x: gc.exp(gc.reduce_sum(x, axis=[]))),
             [EDGES.reshape(2, 7)], gone=("reduce_sum",)),
        Case("max-size-1-axis", on((N, 1), F64, lambda x: gc.reduce_max(x, axis=1)),
             [EDGES.reshape(N, 1)], gone=("reduce_max",)),
        Case("mean-keepdims", on((N, 1), F64, lambda x: gc.reduce_mean(x, axis=1, keepdims=True)),
             [EDGES.reshape(N, 1)], gone=("reduce_mean",)),
        Case("prod-two-axes", on((1, N, 1), F64, lambda x: gc.reduce_prod(x, axis=(0, 2))),
             [EDGES.reshape(1, N, 1)], gone=("reduce_prod",)),
        Case("min-dynamic-batch", on((None, 1), F64, lambda x: gc.reduce_min(x, axis=1)),
             [EDGES.reshape(N, 1)], gone=("reduce_min",)),
        # found by the gradient fuzzer: keepdims on a None batch was squeezed (a type change)
        Case("max-keepdims-dynamic-batch", on((None, 1), F64, lambda x: gc.reduce_max(x, axis=1, keepdims=True)),
             [EDGES.reshape(N, 1)], gone=("reduce_max",)),
        Case("int8-sum-widens", on((None, 1), gc.int8, lambda x: gc.reduce_sum(x, axis=1)),
             [np.arange(-3, 4, dtype=np.int8).reshape(7, 1)], gone=("reduce_sum",)),
        Case("int32-mean-is-float", on((3, 1), gc.int32, lambda x: gc.reduce_mean(x, axis=1, keepdims=True)),
             [np.array([[1], [-5], [7]], np.int32)], gone=("reduce_mean",)),
        Case("all-bool", on((4, 1), gc.bool_, lambda b: gc.reduce_all(b, axis=1)),
             [np.array([[True], [False], [True], [False]])], gone=("reduce_all",)),
    ],
    "matmul_fold_transpose": [
        Case("matmul(a^T,b)", on2(lambda a, b: gc.matmul(gc.transpose(a), b), (3, 2), (3, 4)),
             [MM_AT, MM_B], gone=("transpose",), count={"matmul": 1}),
        Case("matmul(a,b^T)", on2(lambda a, b: gc.matmul(a, gc.transpose(b)), (2, 3), (4, 3)),
             [MM_A, MM_BT], gone=("transpose",), count={"matmul": 1}),
    ],
}

# matmul_fold_transpose's cases: the transpose flags the folded matmul must carry.
_MATMUL_FLAGS = {"matmul(a^T,b)": (True, False), "matmul(a,b^T)": (False, True)}

CASE_PARAMS = [pytest.param(name, case, id=f"{name}[{case.label}]")
               for name, cases in RULE_CASES.items() for case in cases]


def test_every_simplify_rule_has_a_case():
    names = {r.name for r in simplify.RULES}
    assert set(RULE_CASES) == names, (f"rules without a test: {sorted(names - set(RULE_CASES))}; "
                                      f"cases for unknown rules: {sorted(set(RULE_CASES) - names)}")
    assert all(RULE_CASES[name] for name in names)


def test_every_rule_has_a_doc_and_a_known_op():
    from graphc.ops.registry import get_op
    for r in simplify.RULES:
        assert r.doc, f"rule {r.name} has no docstring"
        get_op(r.op)  # raises for an unknown op


@pytest.mark.parametrize("name, case", CASE_PARAMS)
def test_simplify_rule(name, case):
    check_case(name, case, "simplify")
    if case.label in _MATMUL_FLAGS:
        _, _, _, optimized = compiled(case, 1)
        (mm,) = [ins for ins in optimized.program.instrs if ins.op == "matmul"]
        assert (mm.attrs["transpose_a"], mm.attrs["transpose_b"]) == _MATMUL_FLAGS[case.label]
        assert all(v in optimized.program.feeds for v in mm.inputs)


def test_pow_small_integer_results_are_exact_for_small_integers():
    x = np.arange(-5.0, 6.0)
    case = Case("x**4", on((11,), F64, lambda x_: gc.pow(x_, 4.0)), [x])
    assert_close(check_case("pow_small_integer", case, "simplify"), x ** 4, rtol=0, atol=0)


def test_pow_minus_half_keeps_pows_results_at_minus_inf_and_minus_zero():
    """NumPy: (-inf) ** -0.5 is 0 and (-0.0) ** -0.5 is +inf; rsqrt gives NaN and -inf there.
    Whether or not pow_half rewrites x ** -0.5, the results must not change."""
    case = Case("x**-0.5", on((N,), F64, lambda x: gc.pow(x, -0.5)), [EDGES])
    graph, placeholders, fetch, _ = compiled(case, 1)
    with np.errstate(all="ignore"):
        expected = np.power(EDGES, -0.5)
    assert expected[list(EDGES).index(-np.inf)] == 0.0
    assert expected[1] == np.inf  # EDGES[1] is -0.0
    for level in (0, 1, 2):
        assert_close(run_at(graph, placeholders, fetch, [EDGES], level), expected)


def test_divide_by_power_of_two_with_a_subnormal_divisor():
    """1/2**-1074 overflows; x / 2**-1074 does not for small x."""
    tiny = np.float64(2.0 ** -1074)
    x = np.array([1e-320, 5e-324, -3e-315, 0.0, np.inf, np.nan])
    case = Case("x/2**-1074", on((6,), F64, lambda x_: x_ / tiny), [x])
    graph, placeholders, fetch, _ = compiled(case, 1)
    expected = x / tiny
    assert np.isfinite(expected[:4]).all()
    for level in (0, 1, 2):
        assert_close(run_at(graph, placeholders, fetch, [x], level), expected)


@pytest.mark.parametrize("scale", [0.0, 1e-200])
def test_matmul_with_a_scaled_operand_keeps_overflow_and_nan_behaviour(scale):
    """matmul(a * c, b) must give what it gives unoptimized, even where matmul(a, b) overflows:
    this is why no rule pulls scalar constants out of a matmul."""
    a = np.array([[1e200, 1e200]])
    b = np.array([[1e200], [1e200]])
    case = Case("overflow", on2(lambda a_, b_: gc.matmul(a_ * scale, b_), (1, 2), (2, 1)), [a, b])
    graph, placeholders, fetch, _ = compiled(case, 1)
    expected = (a * scale) @ b
    assert np.isfinite(expected).all()
    for level in (0, 1, 2):
        assert_close(run_at(graph, placeholders, fetch, [a, b], level), expected)


def test_reshape_of_reshape_keeps_the_inner_reshapes_run_time_check():
    """reshape(x, (2, -1)) of 5 elements fails at run time; folding it into the outer
    reshape(., (-1,)) must not make the graph silently succeed."""
    case = Case("reshape(reshape(x,(2,-1)),(-1,))",
                on((None,), F64, lambda x: gc.reshape(gc.reshape(x, (2, -1)), (-1,))), [np.arange(6.0)])
    graph, placeholders, fetch, _ = compiled(case, 1)
    for level in (0, 1, 2):
        assert_close(run_at(graph, placeholders, fetch, [np.arange(6.0)], level), np.arange(6.0))
        with pytest.raises(gc.InvalidArgumentError, match="reshape"):
            run_at(graph, placeholders, fetch, [np.arange(5.0)], level)


def test_where_with_same_branches_keeps_the_conditions_broadcast_check():
    """where(c, x, x) with c of unknown length: a c that cannot broadcast against x is a run-time
    error, and must stay one after simplification."""
    case = Case("where(c,x,x)", on2(lambda c, x: gc.where(c, x, x), (None,), (3,), (gc.bool_, F64)),
                [np.array([True]), np.array([1.0, np.nan, 3.0])])
    graph, placeholders, fetch, _ = compiled(case, 1)
    for level in (0, 1, 2):
        assert_close(run_at(graph, placeholders, fetch, case.feeds, level), case.feeds[1])
        with pytest.raises(gc.InvalidArgumentError, match="broadcast"):
            run_at(graph, placeholders, fetch, [np.array([True, False, True, True]), case.feeds[1]], level)


# --- rules that must not fire ---------------------------------------------------------------------------
def _no_simplify_rewrites(case, rule=None):
    for level in (1, 2):
        graph, placeholders, fetch, optimized = compiled(case, level)
        (report,) = [r for r in optimized.reports if r.name == "simplify"]
        if rule is None:
            assert not report.rewrites, f"unexpected rewrites at O{level}: {report}"
        else:
            assert report.rewrites[rule] == 0, f"{rule} fired at O{level}: {report}"
        yield level, graph, placeholders, fetch, optimized


@pytest.mark.parametrize("form", ["x*0", "0*x", "x-x", "x*zeros"])
def test_x_times_zero_and_x_minus_x_are_never_simplified(form):
    x_values = np.array([np.inf, -np.inf, np.nan, 1.0, -0.0, 1e308])

    def build():
        x = ph((6,))
        return (x,), {"x*0": lambda: x * 0.0, "0*x": lambda: 0.0 * x, "x-x": lambda: x - x,
                      "x*zeros": lambda: x * np.zeros(6)}[form]()

    case = Case(form, build, [x_values])
    with np.errstate(invalid="ignore"):
        expected = x_values * 0.0 if form != "x-x" else x_values - x_values
    assert np.isnan(expected[:3]).all()
    for level, graph, placeholders, fetch, optimized in _no_simplify_rewrites(case):
        assert ops_of(optimized.program) == ["subtract" if form == "x-x" else "multiply"]
        result = run_at(graph, placeholders, fetch, [x_values], level)
        assert_close(result, expected)
        assert np.isnan(result[:3]).all()


@pytest.mark.parametrize("zero_first", [False, True])
def test_add_zero_that_broadcasts_x_is_kept(zero_first):
    x_values = np.array([1.0, np.nan, -np.inf])

    def build():
        x = ph((3,))
        zeros = gc.constant(np.zeros((2, 3)))
        return (x,), (zeros + x if zero_first else x + zeros)

    case = Case("broadcasting zero", build, [x_values])
    for level, graph, placeholders, fetch, optimized in _no_simplify_rewrites(case, "add_zero"):
        assert "add" in ops_of(optimized.program)
        assert tuple(optimized.program.types[optimized.program.fetches[0]].shape) == (2, 3)
        result = run_at(graph, placeholders, fetch, [x_values], level)
        assert result.shape == (2, 3)
        assert_close(result, np.broadcast_to(x_values, (2, 3)))


@pytest.mark.parametrize("op", ["multiply_one", "subtract_zero", "where_same_branches"])
def test_identities_that_would_drop_a_broadcast_are_kept(op):
    x_values = np.array([1.0, np.nan, -np.inf])

    def build():
        x = ph((3,))
        if op == "multiply_one":
            return (x,), x * np.ones((2, 3))
        if op == "subtract_zero":
            return (x,), x - np.zeros((2, 3))
        c = ph((2, 1), gc.bool_, "c")
        return (c, x), gc.where(c, x, x)

    feeds = [x_values] if op != "where_same_branches" else [np.array([[True], [False]]), x_values]
    case = Case(op, build, feeds)
    for level, graph, placeholders, fetch, optimized in _no_simplify_rewrites(case, op):
        result = run_at(graph, placeholders, fetch, feeds, level)
        assert_close(result, np.broadcast_to(x_values, (2, 3)))


@pytest.mark.parametrize("divisor", [3.0, 0.0, 6.0, 0.1])
def test_divide_by_non_power_of_two_is_kept(divisor):
    x_values = np.array([1.0, 7.0, -0.3, np.inf, np.nan, 0.0])
    case = Case(f"x/{divisor}", on((6,), F64, lambda x: x / divisor), [x_values])
    with np.errstate(all="ignore"):
        expected = x_values / divisor
    for level, graph, placeholders, fetch, optimized in _no_simplify_rewrites(case):
        assert ops_of(optimized.program) == ["divide"]
        assert_close(run_at(graph, placeholders, fetch, [x_values], level), expected, rtol=0, atol=0)


def test_lossy_first_cast_is_not_folded():
    x_values = np.array([0.1, 1 / 3, 1e300, 1e-300, np.nan, -np.inf])
    case = Case("f64->f32->f64", on((6,), F64, lambda x: gc.cast(gc.cast(x, gc.float32), gc.float64)), [x_values])
    with np.errstate(over="ignore"):
        expected = x_values.astype(np.float32).astype(np.float64)
    assert not np.array_equal(expected[:2], x_values[:2])
    for level, graph, placeholders, fetch, optimized in _no_simplify_rewrites(case):
        assert ops_of(optimized.program) == ["cast", "cast"]
        assert_close(run_at(graph, placeholders, fetch, [x_values], level), expected, rtol=0, atol=0)


@pytest.mark.parametrize("op", ["reduce_sum", "reduce_max", "reduce_mean"])
def test_reduction_over_an_axis_of_size_two_is_kept(op):
    x_values = np.array([[1.0, 2.0], [np.nan, 0.0], [np.inf, 5.0]])
    case = Case(op, on((3, 2), F64, lambda x: getattr(gc, op)(x, axis=1)), [x_values])
    expected = {"reduce_sum": np.sum, "reduce_max": np.max, "reduce_mean": np.mean}[op](x_values, axis=1)
    for level, graph, placeholders, fetch, optimized in _no_simplify_rewrites(case):
        assert op in ops_of(optimized.program)
        assert_close(run_at(graph, placeholders, fetch, [x_values], level), expected)


def test_reduce_logsumexp_over_a_size_one_axis_is_kept():
    """logsumexp over one element is that element, but the rule skips it on purpose."""
    x_values = np.array([[1.0], [-np.inf], [np.nan]])
    case = Case("lse", on((3, 1), F64, lambda x: gc.reduce_logsumexp(x, axis=1)), [x_values])
    for level, graph, placeholders, fetch, optimized in _no_simplify_rewrites(case, "reduce_over_nothing"):
        assert "reduce_logsumexp" in ops_of(optimized.program)
        assert_close(run_at(graph, placeholders, fetch, [x_values], level), x_values[:, 0])


def test_broadcast_to_a_shape_from_another_tensor_is_kept():
    """The target's length is only known at run time, so broadcast_to also checks it then:
    dropping it would silently accept a mismatched feed."""
    def build():
        x = ph((None,), name="x")
        b = ph((3,), name="b")
        return (x, b), gc.broadcast_to(b, gc.shape(x)[-1:])

    case = Case("dynamic target", build, [np.zeros(3), np.array([1.0, np.nan, 3.0])])
    for level, graph, placeholders, fetch, optimized in _no_simplify_rewrites(case, "reshape_to_same_shape"):
        assert "broadcast_to" in ops_of(optimized.program)
        assert_close(run_at(graph, placeholders, fetch, case.feeds, level), case.feeds[1])
        for bad_level in (0, level):
            with pytest.raises(gc.InvalidArgumentError, match="broadcast"):
                run_at(graph, placeholders, fetch, [np.zeros(4), case.feeds[1]], bad_level)


def test_disabling_simplify_keeps_the_pattern():
    case = RULE_CASES["pow_small_integer"][0]
    graph = gc.Graph()
    with graph.as_default():
        placeholders, fetch = case.build()
    optimized = optimize(lower(graph, [fetch], list(placeholders)), 2, ("simplify",), validate=True)
    assert "simplify" not in [r.name for r in optimized.reports]
    assert "pow" in ops_of(optimized.program)
    with gc.Session(graph=graph, disable_passes=("simplify",)) as sess:
        assert_close(sess.run(fetch, {placeholders[0]: EDGES}), np.power(EDGES, 2.0))


# --- the engine's safety nets ---------------------------------------------------------------------------
def _exp_program():
    graph = gc.Graph()
    with graph.as_default():
        x = ph((2, 3))
        y = gc.exp(x, name="the_exp") + 1.0
    return lower(graph, [y], [x])


@pytest.mark.parametrize("change", ["shape", "dtype", "rank"])
def test_rewrite_rejects_a_rule_that_changes_a_type(change):
    def bad(m):
        x = m.inputs[0]
        if change == "shape":
            return m.emit1("reduce_sum", (x,), {"axes": (0,), "keepdims": True})
        if change == "dtype":
            return m.emit1("cast", (x,), {"dtype": gc.float32})
        return m.emit1("reshape", (x,), {"shape": (6,)})

    bad_rule = Rule("my_bad_rule", "exp", bad, "changes the type of exp")
    program = _exp_program()
    with pytest.raises(gc.CompileError) as info:
        rewrite(program, [bad_rule], "mypass")
    message = str(info.value)
    assert "'mypass'" in message and "'my_bad_rule'" in message and "exp" in message


def test_rewrite_rejects_a_rule_that_returns_the_wrong_number_of_outputs():
    bad_rule = Rule("two_for_one", "exp", lambda m: (m.inputs[0], m.inputs[0]))
    with pytest.raises(gc.CompileError, match="'mypass'.*'two_for_one'"):
        rewrite(_exp_program(), [bad_rule], "mypass")


def test_rewrite_accepts_a_type_preserving_rule_and_counts_it():
    good = Rule("exp_to_exp_of_identity", "exp",
                lambda m: None if m.producer_op(m.inputs[0]) == "negative"
                else m.emit1("exp", (m.emit1("negative", (m.emit1("negative", (m.inputs[0],)),)),)))
    program, applied = rewrite(_exp_program(), [good], "mypass")
    assert applied["exp_to_exp_of_identity"] == 1
    program.validate()
    assert [ins.op for ins in program.instrs].count("negative") == 2


def _mistyped(program):
    """The same program, with the first instr's output recorded as float32 (it infers float64)."""
    v = program.instrs[0].outputs[0]
    types = dict(program.types)
    types[v] = TensorType(gc.float32, types[v].shape)
    return type(program)(program.instrs, types, program.feeds, program.fetches, program.names)


def test_validation_names_the_pass_that_broke_the_program(monkeypatch):
    monkeypatch.setenv("GRAPHC_VALIDATE", "1")  # conftest sets it too; be explicit

    def broken_pass(program):
        return _mistyped(program), {"broke": 1}

    monkeypatch.setattr(pipeline, "PIPELINE", tuple(
        (name, level, broken_pass if name == "simplify" else fn) for name, level, fn in pipeline.PIPELINE))
    graph = gc.Graph()
    with graph.as_default():
        x = ph((2, 3))
        y = gc.exp(x) * 3.0
    with pytest.raises(gc.CompileError, match="pass 'simplify'"):
        optimize(lower(graph, [y], [x]), 1)
    with pytest.raises(gc.CompileError, match="'simplify'.*recorded as float32"):
        with gc.Session(graph=graph, optimize=1) as sess:
            sess.run(y, {x: np.ones((2, 3))})
    # the check is what catches it: without validation the broken program goes through
    optimize(lower(graph, [y], [x]), 1, validate=False)
    monkeypatch.setenv("GRAPHC_VALIDATE", "0")
    optimize(lower(graph, [y], [x]), 1)
    # and level 0 runs no pass at all
    with gc.Session(graph=graph, optimize=0) as sess:
        assert_close(sess.run(y, {x: np.zeros((2, 3))}), np.full((2, 3), 3.0))


def test_a_crashing_pass_is_named(monkeypatch):
    def crashing(program):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(pipeline, "PIPELINE", tuple(
        (name, level, crashing if name == "stabilize" else fn) for name, level, fn in pipeline.PIPELINE))
    with pytest.raises(gc.CompileError, match="pass 'stabilize' failed: ZeroDivisionError: boom"):
        optimize(_exp_program(), 1)

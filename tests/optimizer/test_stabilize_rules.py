"""Every stabilization rule (optimizer/stabilize.py): on inputs where the naive formula
overflows, underflows to -inf, turns into NaN or loses precision, the unoptimized run shows
the problem, while levels 1 and 2 rewrite the formula and give the stable NumPy/SciPy
answer. Also the places the rules must leave alone."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pytest
import scipy.special as sps

import graphc as gc
from graphc.optimizer import stabilize
from graphc.optimizer.pipeline import optimize
from graphc.optimizer.program import lower
from support import assert_close

F64 = gc.float64


@dataclass
class Case:
    """``build()`` runs inside a fresh default graph and returns (placeholders, fetch)."""

    label: str
    build: Callable
    feeds: list
    expected: np.ndarray                   # the stable formula's answer
    naive_is_bad: Optional[Callable]       # (O0 result, expected) -> True where the naive form fails;
    #                                        None where the naive form is already stable
    gone: tuple = ()
    present: tuple = ()
    also_fired: tuple = ()                 # other stabilize rules that fire on the way
    rtol: Optional[float] = None


def ph(shape, dtype=F64, name="x"):
    return gc.placeholder(dtype, shape, name=name)


def on(shape, fn, dtype=F64):
    def build():
        x = ph(shape, dtype)
        return (x,), fn(x)
    return build


def on2(fn, shape_a, shape_b, names=("labels", "logits")):
    def build():
        a, b = ph(shape_a, name=names[0]), ph(shape_b, name=names[1])
        return (a, b), fn(a, b)
    return build


def compiled(build, level, disabled=()):
    graph = gc.Graph()
    with graph.as_default():
        placeholders, fetch = build()
    program = lower(graph, [fetch], list(placeholders))
    return graph, list(placeholders), fetch, optimize(program, level, disabled, validate=True)


def ops_of(program) -> list:
    return [ins.op for ins in program.instrs if ins.op != "const"]


def stabilize_rewrites(optimized) -> dict:
    (report,) = [r for r in optimized.reports if r.name == "stabilize"]
    return report.rewrites


def run_at(graph, placeholders, fetch, feeds, level, disabled=()):
    with gc.Session(graph=graph, optimize=level, disable_passes=disabled) as sess:
        with np.errstate(all="ignore"):
            return sess.run(fetch, dict(zip(placeholders, feeds)))


def non_finite(result, expected):
    return ~np.isfinite(result) & np.isfinite(expected)


# --- inputs -------------------------------------------------------------------------------------------
LOG1P_X = np.array([1e-20, -3e-18, 1e-10, 0.0, -0.5, 3.0, 1e300, np.inf, -1.0, np.nan])
SIGMOID_X = np.array([-800.0, -50.0, -1.0, 0.0, 2.0, 50.0, 800.0, np.inf, -np.inf, np.nan])
LOGITS = np.array([[1000.0, -1000.0, 0.0], [0.0, 1.0, 2.0], [-1000.0, -999.0, -1000.0]])
LABELS = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
LSE_X = np.array([[1000.0, 1000.0, 999.0], [-1000.0, -1000.0, -1000.0], [0.0, 1.0, 2.0]])


def _ce(labels, logits, axis=-1):
    return -np.sum(labels * sps.log_softmax(logits, axis=axis), axis=axis)


with np.errstate(all="ignore"):  # the expected values include inf and NaN
    RULE_CASES = {
        "log1p": [
            Case("log(x+1)", on((10,), lambda x: gc.log(x + 1.0)), [LOG1P_X], np.log1p(LOG1P_X),
                 lambda r, e: (np.arange(10) < 3) & ((r == 0) | (np.abs(r - e) > 1e-3 * np.abs(e))),
                 gone=("log", "add"), present=("log1p",), rtol=1e-15),
            Case("log(1+x)-float32", on((10,), lambda x: gc.log(1.0 + x), gc.float32), [LOG1P_X.astype(np.float32)],
                 np.log1p(LOG1P_X.astype(np.float32)), lambda r, e: (np.arange(10) < 3) & (r != e),
                 gone=("log", "add"), present=("log1p",)),
        ],
        "log_softmax": [
            Case("log(softmax(x))", on((3, 3), lambda x: gc.log(gc.nn.softmax(x))), [LOGITS],
                 sps.log_softmax(LOGITS, axis=-1), non_finite, gone=("log", "softmax"), present=("log_softmax",)),
            Case("log(softmax(x,axis=0))", on((3, 3), lambda x: gc.log(gc.nn.softmax(x, axis=0))), [LOGITS],
                 sps.log_softmax(LOGITS, axis=0), non_finite, gone=("log", "softmax"), present=("log_softmax",)),
        ],
        "log_sigmoid": [
            Case("log(sigmoid(x))", on((10,), lambda x: gc.log(gc.sigmoid(x))), [SIGMOID_X],
                 -np.logaddexp(0.0, -SIGMOID_X), non_finite, gone=("log", "sigmoid"), present=("softplus",)),
        ],
        "log_one_minus_sigmoid": [
            Case("log(1-sigmoid(x))", on((10,), lambda x: gc.log(1.0 - gc.sigmoid(x))), [SIGMOID_X],
                 -np.logaddexp(0.0, SIGMOID_X), non_finite, gone=("log", "sigmoid", "subtract"),
                 present=("softplus",)),
        ],
        "softplus": [
            Case("log1p(exp(x))", on((10,), lambda x: gc.log1p(gc.exp(x))), [SIGMOID_X * 1.25],
                 np.logaddexp(0.0, SIGMOID_X * 1.25), non_finite, gone=("log1p", "exp"), present=("softplus",)),
            Case("log(1+exp(x))", on((10,), lambda x: gc.log(1.0 + gc.exp(x))), [SIGMOID_X * 1.25],
                 np.logaddexp(0.0, SIGMOID_X * 1.25), non_finite, gone=("log", "log1p", "exp", "add"),
                 present=("softplus",), also_fired=("log1p",)),
        ],
        "logsumexp": [
            Case("log(sum(exp(x),1))", on((3, 3), lambda x: gc.log(gc.reduce_sum(gc.exp(x), axis=1))), [LSE_X],
                 sps.logsumexp(LSE_X, axis=1), non_finite, gone=("log", "exp", "reduce_sum"),
                 present=("reduce_logsumexp",)),
            Case("keepdims", on((3, 3), lambda x: gc.log(gc.reduce_sum(gc.exp(x), axis=1, keepdims=True))), [LSE_X],
                 sps.logsumexp(LSE_X, axis=1, keepdims=True), non_finite, gone=("log", "exp", "reduce_sum"),
                 present=("reduce_logsumexp",)),
            Case("all-axes", on((2, 3), lambda x: gc.log(gc.reduce_sum(gc.exp(x)))), [LSE_X[:2]],
                 np.asarray(sps.logsumexp(LSE_X[:2])), lambda r, e: ~np.isfinite(r),
                 gone=("log", "exp", "reduce_sum"), present=("reduce_logsumexp",)),
        ],
        "softmax_cross_entropy": [
            Case("-sum(labels*log(softmax(logits)))",
                 on2(lambda lab, lg: -gc.reduce_sum(lab * gc.log(gc.nn.softmax(lg)), axis=-1), (3, 3), (3, 3)),
                 [LABELS, LOGITS], _ce(LABELS, LOGITS), lambda r, e: np.isnan(r),
                 gone=("log", "softmax", "log_softmax", "multiply", "reduce_sum", "negative"),
                 present=("softmax_cross_entropy_with_logits",), also_fired=("log_softmax",)),
            Case("-sum(log_softmax(logits)*labels)",
                 on2(lambda lab, lg: gc.negative(gc.reduce_sum(gc.nn.log_softmax(lg) * lab, axis=1)), (3, 3), (3, 3)),
                 [LABELS, np.array([[1000.0, -1000.0, 0.0], [0, 1, 2], [5, 5, 5]])],
                 _ce(LABELS, np.array([[1000.0, -1000.0, 0.0], [0, 1, 2], [5, 5, 5]])),
                 None,  # log_softmax is already stable: the fusion is the point
                 gone=("log_softmax", "multiply", "reduce_sum", "negative"),
                 present=("softmax_cross_entropy_with_logits",)),
            Case("axis=0",
                 on2(lambda lab, lg: -gc.reduce_sum(lab * gc.log(gc.nn.softmax(lg, axis=0)), axis=0),
                     (3, 3), (3, 3)),
                 [LABELS.T, LOGITS.T], _ce(LABELS.T, LOGITS.T, axis=0), lambda r, e: np.isnan(r),
                 gone=("log", "softmax", "multiply", "reduce_sum", "negative"),
                 present=("softmax_cross_entropy_with_logits",), also_fired=("log_softmax",)),
        ],
    }

CASE_PARAMS = [pytest.param(name, case, id=f"{name}[{case.label}]")
               for name, cases in RULE_CASES.items() for case in cases]


def test_every_stabilize_rule_has_a_case():
    names = {r.name for r in stabilize.RULES}
    assert set(RULE_CASES) == names, (f"rules without a test: {sorted(names - set(RULE_CASES))}; "
                                      f"cases for unknown rules: {sorted(set(RULE_CASES) - names)}")
    assert all(RULE_CASES[name] for name in names)
    assert all(r.doc for r in stabilize.RULES)


@pytest.mark.parametrize("name, case", CASE_PARAMS)
def test_stabilize_rule(name, case):
    graph, placeholders, fetch, _ = compiled(case.build, 1)
    naive = np.asarray(run_at(graph, placeholders, fetch, case.feeds, 0))
    expected = np.asarray(case.expected, dtype=naive.dtype)
    ok = np.isfinite(naive) & np.isfinite(expected)
    if case.naive_is_bad is not None:
        with np.errstate(invalid="ignore"):
            bad = np.broadcast_to(case.naive_is_bad(naive, expected), naive.shape)
        assert bad.any(), f"the naive form should fail on these inputs, got {naive}"
        ok &= ~bad
    # where the naive form works, it agrees with the stable formula
    np.testing.assert_allclose(naive[ok], expected[ok], rtol=1e-6, atol=1e-12)

    results = {}
    for level in (1, 2):
        graph, placeholders, fetch, optimized = compiled(case.build, level)
        rewrites = stabilize_rewrites(optimized)
        assert rewrites[name] >= 1, f"{name} did not fire at O{level}: {rewrites}"
        for other in case.also_fired:
            assert rewrites[other] >= 1, f"{other} did not fire at O{level}: {rewrites}"
        ops = ops_of(optimized.program)
        for op in case.gone:
            assert op not in ops, f"{op} left after {name} (O{level}):\n{optimized.program}"
        for op in case.present:
            assert op in ops, f"no {op} after {name} (O{level}):\n{optimized.program}"
        results[level] = run_at(graph, placeholders, fetch, case.feeds, level)
        assert np.all(np.isfinite(results[level]) | ~np.isfinite(expected))
        assert_close(results[level], expected, rtol=case.rtol)
    assert_close(results[2], results[1], rtol=0, atol=0)


def test_log1p_precision_example():
    graph, placeholders, fetch, _ = compiled(on((), lambda x: gc.log(1.0 + x)), 1)
    assert run_at(graph, placeholders, fetch, [1e-20], 0) == 0.0
    for level in (1, 2):
        assert run_at(graph, placeholders, fetch, [1e-20], level) == 1e-20 == np.log1p(1e-20)


def test_disabling_stabilize_keeps_the_naive_formula():
    build = on((3, 3), lambda x: gc.log(gc.nn.softmax(x)))
    graph, placeholders, fetch, optimized = compiled(build, 2, disabled=("stabilize",))
    assert "stabilize" not in [r.name for r in optimized.reports]
    assert "log_softmax" not in ops_of(optimized.program)
    result = run_at(graph, placeholders, fetch, [LOGITS], 2, disabled=("stabilize",))
    assert np.isneginf(result[0, 1])
    assert_close(run_at(graph, placeholders, fetch, [LOGITS], 2), sps.log_softmax(LOGITS, axis=-1))


# --- where the rules must not apply -------------------------------------------------------------------------
def _stabilize_report(build, level):
    graph, placeholders, fetch, optimized = compiled(build, level)
    return graph, placeholders, fetch, optimized, stabilize_rewrites(optimized)


def test_log1p_not_applied_when_the_one_broadcasts_x():
    x = np.array([1e-3, 0.5, np.nan])
    build = on((3,), lambda x: gc.log(x + np.ones((2, 3))))
    for level in (1, 2):
        graph, placeholders, fetch, optimized, rewrites = _stabilize_report(build, level)
        assert rewrites["log1p"] == 0
        result = run_at(graph, placeholders, fetch, [x], level)
        assert result.shape == (2, 3)
        assert_close(result, np.log(x + np.ones((2, 3))))


def test_log_one_minus_sigmoid_needs_one_minus_not_minus_one():
    x = np.array([-3.0, 0.0, 2.0])
    build = on((3,), lambda x: gc.log(gc.sigmoid(x) - 1.0 + 2.0))  # log(sigmoid(x) + 1): no rule
    for level in (1, 2):
        graph, placeholders, fetch, optimized, rewrites = _stabilize_report(build, level)
        assert rewrites["log_one_minus_sigmoid"] == 0 and rewrites["log_sigmoid"] == 0
        assert_close(run_at(graph, placeholders, fetch, [x], level), np.log(sps.expit(x) + 1.0))


@pytest.mark.parametrize("variant", ["other-axis", "keepdims", "no-negative"])
def test_cross_entropy_not_fused_when_the_pattern_differs(variant):
    labels, logits = LABELS, np.array([[3.0, -1.0, 0.0], [0.0, 1.0, 2.0], [-2.0, 1.0, 1.5]])

    def fn(lab, lg):
        if variant == "other-axis":  # log_softmax over axis 0, sum over axis 1
            return -gc.reduce_sum(lab * gc.log(gc.nn.softmax(lg, axis=0)), axis=1)
        if variant == "keepdims":
            return -gc.reduce_sum(lab * gc.log(gc.nn.softmax(lg)), axis=1, keepdims=True)
        return gc.reduce_sum(lab * gc.log(gc.nn.softmax(lg)), axis=1)

    build = on2(fn, (3, 3), (3, 3))
    axis = 0 if variant == "other-axis" else 1
    expected = -np.sum(labels * sps.log_softmax(logits, axis=axis), axis=1, keepdims=variant == "keepdims")
    if variant == "no-negative":
        expected = -expected
    for level in (1, 2):
        graph, placeholders, fetch, optimized, rewrites = _stabilize_report(build, level)
        assert rewrites["log_softmax"] == 1
        assert rewrites["softmax_cross_entropy"] == 0
        assert "softmax_cross_entropy_with_logits" not in ops_of(optimized.program)
        assert_close(run_at(graph, placeholders, fetch, [labels, logits], level), expected)


@pytest.mark.parametrize("broadcast", ["labels", "logits"])
def test_cross_entropy_with_dynamic_batch_keeps_broadcasting(broadcast):
    """labels and logits of shape (None, 3): at run time one of them may have batch 1 and
    broadcast against the other in labels * log_softmax(logits). The fused op must not turn
    that into an error (or a wrong shape)."""
    build = on2(lambda lab, lg: -gc.reduce_sum(lab * gc.log(gc.nn.softmax(lg)), axis=-1), (None, 3), (None, 3))
    labels, logits = LABELS[:2], LOGITS[1:]
    if broadcast == "labels":
        labels = labels[:1]
    else:
        logits = logits[:1]
    expected = -np.sum(labels * sps.log_softmax(logits, axis=-1), axis=-1)
    assert expected.shape == (2,)
    graph, placeholders, fetch, _ = compiled(build, 1)
    for level in (0, 1, 2):
        assert_close(run_at(graph, placeholders, fetch, [labels, logits], level), expected)

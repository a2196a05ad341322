"""Stabilization rewrites, as in Theano: replace formulas that overflow or lose precision
with their stable forms. Unlike the algebraic rules these do change results where the naive
form overflows: that is their purpose."""
from __future__ import annotations

from .rewrite import Match, rule_table

RULES, rule = rule_table()


def _producer(m: Match, v: int, op: str):
    p = m.producer(v)
    return p if p is not None and p.op == op else None


@rule("log1p", "log")
def _(m):
    """log(1 + x) -> log1p(x)"""
    p = _producer(m, m.inputs[0], "add")
    if p is None:
        return None
    a, b = p.inputs
    for one, x in ((a, b), (b, a)):
        if m.is_scalar_const(one, 1) and _fits(m, p, x):
            return m.emit1("log1p", (x,))


def _fits(m: Match, producer, x) -> bool:
    """The other operand of ``producer`` is a constant that does not widen ``x``."""
    return m.type(x).shape == m.type(producer.outputs[0]).shape and m.type(x).dtype is m.type(producer.outputs[0]).dtype


@rule("log_softmax", "log")
def _(m):
    """log(softmax(x)) -> log_softmax(x)"""
    p = _producer(m, m.inputs[0], "softmax")
    if p is not None:
        return m.emit1("log_softmax", (p.inputs[0],), dict(p.attrs))


@rule("log_sigmoid", "log")
def _(m):
    """log(sigmoid(x)) -> -softplus(-x)"""
    p = _producer(m, m.inputs[0], "sigmoid")
    if p is not None:
        return m.emit1("negative", (m.emit1("softplus", (m.emit1("negative", (p.inputs[0],)),)),))


@rule("log_one_minus_sigmoid", "log")
def _(m):
    """log(1 - sigmoid(x)) -> -softplus(x)"""
    p = _producer(m, m.inputs[0], "subtract")
    if p is None or not m.is_scalar_const(p.inputs[0], 1):
        return None
    s = _producer(m, p.inputs[1], "sigmoid")
    if s is not None and _fits(m, p, p.inputs[1]):
        return m.emit1("negative", (m.emit1("softplus", (s.inputs[0],)),))


@rule("softplus", "log1p")
def _(m):
    """log1p(exp(x)) -> softplus(x)"""
    p = _producer(m, m.inputs[0], "exp")
    if p is not None:
        return m.emit1("softplus", (p.inputs[0],))


@rule("logsumexp", "log")
def _(m):
    """log(reduce_sum(exp(x))) -> reduce_logsumexp(x)"""
    s = _producer(m, m.inputs[0], "reduce_sum")
    if s is None:
        return None
    e = _producer(m, s.inputs[0], "exp")
    if e is not None:
        return m.emit1("reduce_logsumexp", (e.inputs[0],), dict(s.attrs))


def _cross_entropy_parts(m: Match, product: int):
    """(labels, logits, axis) when ``product`` is labels * log_softmax(logits)."""
    p = _producer(m, product, "multiply")
    if p is None:
        return None
    for i in (0, 1):
        ls = _producer(m, p.inputs[i], "log_softmax")
        labels = p.inputs[1 - i]
        # the fused op broadcasts labels against logits exactly as the multiply did
        if ls is not None and m.type(labels).rank == m.type(ls.outputs[0]).rank \
                and m.type(labels).dtype is m.type(ls.outputs[0]).dtype:
            return labels, ls.inputs[0], ls.attrs["axis"]
    return None


@rule("softmax_cross_entropy", "negative")
def _(m):
    """-reduce_sum(labels * log_softmax(logits), axis) -> softmax_cross_entropy_with_logits"""
    s = _producer(m, m.inputs[0], "reduce_sum")
    if s is None or s.attrs["keepdims"]:
        return None
    parts = _cross_entropy_parts(m, s.inputs[0])
    if parts is None or tuple(s.attrs["axes"]) != (parts[2],):
        return None
    labels, logits, axis = parts
    return m.emit1("softmax_cross_entropy_with_logits", (labels, logits), {"axis": axis})

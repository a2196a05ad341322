"""Numeric gradient checking, like Theano's verify_grad: analytic gradients from
gc.gradients against central finite differences in float64."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..errors import GraphcError


@dataclass
class GradientReport:
    """The worst disagreement between analytic and numeric gradients."""

    max_abs_error: float
    max_rel_error: float
    worst_input: Optional[str]
    worst_index: Optional[tuple]
    analytic: float
    numeric: float
    ok: bool
    checked: int

    def __str__(self) -> str:
        if self.worst_input is None:
            return f"gradient check: nothing to check ({self.checked} elements)"
        verdict = "ok" if self.ok else "FAILED"
        return (f"gradient check {verdict}: worst element {self.worst_input}{list(self.worst_index)} "
                f"analytic={self.analytic:.10g} numeric={self.numeric:.10g} abs err={self.max_abs_error:.3g} "
                f"rel err={self.max_rel_error:.3g} over {self.checked} elements")


class GradientCheckError(GraphcError, AssertionError):
    def __init__(self, report: GradientReport):
        super().__init__(str(report))
        self.report = report


def check_gradients(fn_or_tensors, inputs: Optional[Sequence] = None, *, wrt=None, xs=None, feed_dict=None,
                    eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7, device: str = "reference",
                    seed: int = 0, raise_on_failure: bool = True,
                    numeric_device: Optional[str] = None) -> GradientReport:
    """Compare gradients with central finite differences in float64.

    Two forms:
      * ``check_gradients(fn, [x0, x1, ...])``: ``fn`` maps tensors to a tensor (or a list of
        tensors). Each array becomes a placeholder of its shape (floats as float64); the check
        covers every floating input, or the input positions in ``wrt``.
      * ``check_gradients(y, xs=[t0, t1], feed_dict={...})``: tensors of an existing graph;
        each x is perturbed by feeding it (any tensor can be fed).

    Non-scalar outputs are projected on a fixed random direction, so every output element
    counts. The gradients are computed on ``device``; the finite differences, two runs of the
    loss per input element, on ``numeric_device`` (default: ``device``): a slow device (the
    CUDA simulator) can check its gradient kernels against differences the reference takes.
    Returns a :class:`GradientReport` naming the worst element; raises ``GradientCheckError``
    when it is outside ``atol + rtol * |numeric|`` unless ``raise_on_failure=False``.
    """
    import graphc as gc

    if callable(fn_or_tensors) and not isinstance(fn_or_tensors, (gc.Tensor, list, tuple)):
        if inputs is None:
            raise TypeError("check_gradients(fn, inputs): inputs are required with a function")
        graph = gc.Graph()
        with graph.as_default():
            arrays = [np.asarray(a) for a in inputs]
            arrays = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
            phs = [gc.placeholder(gc.as_dtype(a.dtype), a.shape, name=f"input{i}") for i, a in enumerate(arrays)]
            ys = fn_or_tensors(*phs)
            chosen = range(len(phs)) if wrt is None else wrt
            targets = [phs[i] for i in chosen if arrays[i].dtype.kind == "f"]
            base_feed = dict(zip(phs, arrays))
            loss = _projection(gc, graph, ys, base_feed, seed, device)
            return _compare(gc, graph, loss, targets, base_feed, eps, rtol, atol, device, raise_on_failure,
                            numeric_device or device)
    ys = fn_or_tensors
    if xs is None:
        raise TypeError("check_gradients(y, xs=..., feed_dict=...): xs are required with tensors")
    xs = list(xs) if isinstance(xs, (list, tuple)) else [xs]
    first = ys[0] if isinstance(ys, (list, tuple)) else ys
    graph = first.graph
    with graph.as_default():
        loss = _projection(gc, graph, ys, dict(feed_dict or {}), seed, device)
        return _compare(gc, graph, loss, xs, dict(feed_dict or {}), eps, rtol, atol, device, raise_on_failure,
                        numeric_device or device)


def _projection(gc, graph, ys, feed, seed, device):
    """sum_k <y_k, r_k> for fixed random directions r_k, so every output element counts."""
    rng = np.random.default_rng(seed)
    ys = ys if isinstance(ys, (list, tuple)) else [ys]
    unknown = [y for y in ys if not y.shape.is_fully_defined()]
    shapes = {}
    if unknown:  # the inputs are fixed, so one run tells the output shapes
        with gc.Session(graph=graph, device=device) as sess:
            variables = gc.global_variables(graph)
            if variables:
                sess.run(gc.variables_initializer(variables))
            shapes = {y: np.shape(v) for y, v in zip(unknown, sess.run(unknown, feed))}
    terms = []
    for y in ys:
        if y.shape == ():
            terms.append(y)
            continue
        shape = shapes.get(y, tuple(y.shape))
        direction = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        terms.append(gc.reduce_sum(y * direction.astype(y.dtype.np)))
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def _compare(gc, graph, loss, xs, feed, eps, rtol, atol, device, raise_on_failure, numeric_device):
    grads = gc.gradients(loss, xs, unconnected_gradients="zero")
    with contextlib.ExitStack() as stack:
        sess = stack.enter_context(gc.Session(graph=graph, device=device))
        numeric_sess = sess if numeric_device == device else stack.enter_context(
            gc.Session(graph=graph, device=numeric_device))
        variables = gc.global_variables(graph)
        if variables:
            sess.run(gc.variables_initializer(variables))
            if numeric_sess is not sess:  # the same values, whatever the initializers draw
                for var, value in zip(variables, sess.run(variables)):
                    var.load(value, numeric_sess)
        x_values = sess.run(xs, feed)
        analytic = sess.run(grads, feed)
        others = [k for k in feed if k not in xs]
        evaluate = numeric_sess.make_callable(loss, feed_list=others + list(xs))
        fixed = [feed[k] for k in others]
        worst = dict(abs=0.0, rel=0.0, input=None, index=None, analytic=0.0, numeric=0.0, bad=False)
        checked = 0
        for k, (x, value, a) in enumerate(zip(xs, x_values, analytic)):
            value = np.array(value, dtype=np.float64)
            numeric = np.zeros_like(value)
            current = [np.array(v, dtype=np.float64 if np.asarray(v).dtype.kind == "f" else None)
                       for v in x_values]
            for index in np.ndindex(value.shape):
                step = eps * max(1.0, abs(value[index]))
                plus, minus = value.copy(), value.copy()
                plus[index] += step
                minus[index] -= step
                current[k] = plus
                f_plus = float(evaluate(*fixed, *current))
                current[k] = minus
                f_minus = float(evaluate(*fixed, *current))
                numeric[index] = (f_plus - f_minus) / (2 * step)
            current[k] = value
            a = np.asarray(a, dtype=np.float64)
            err = np.abs(a - numeric)
            limit = atol + rtol * np.abs(numeric)
            scale = np.maximum(np.maximum(np.abs(a), np.abs(numeric)), 1e-12)
            checked += value.size
            if value.size == 0:
                continue
            ratio = err / limit
            i = np.unravel_index(int(np.argmax(ratio)), value.shape)
            if worst["input"] is None or ratio[i] > worst.get("ratio", -1):
                worst.update(abs=float(err[i]), rel=float(err[i] / scale[i]), input=x.name, index=tuple(int(j) for j in i),
                             analytic=float(a[i]), numeric=float(numeric[i]), ratio=float(ratio[i]),
                             bad=bool(ratio[i] > 1))
    report = GradientReport(worst["abs"], worst["rel"], worst["input"], worst["index"], worst["analytic"],
                            worst["numeric"], not worst["bad"], checked)
    if raise_on_failure and not report.ok:
        raise GradientCheckError(report)
    return report

"""Reverse-mode differentiation on the user's graph: ``gc.gradients`` adds gradient nodes to
the same graph, built from ordinary ops, so gradients of gradients work."""
from __future__ import annotations

import contextvars
from typing import Optional, Sequence

from ..errors import DTypeError, GradientError, GraphcError, ShapeError  # noqa: F401  (GradientError: re-exported)
from ..graph import Tensor, user_location
from ..ops import elementwise as ew
from ..ops._build import graph_of
from ..ops.source import convert_to_tensor, ones_like, zeros_like
from ..ops.state import Variable
from .rules import NON_DIFFERENTIABLE, gradient_rule


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _targets_of(x):
    """The tensors a gradient ``wrt x`` sums over: a Variable means all of its reads."""
    if isinstance(x, Variable):
        return x.reads()
    return [convert_to_tensor(x)]


def _accumulate(grads: list) -> Optional[Tensor]:
    grads = [g for g in grads if g is not None]
    if not grads:
        return None
    total = grads[0]
    for g in grads[1:]:
        total = ew.add(total, g)
    return total


def gradients(ys, xs, grad_ys=None, name: str = "gradients", stop_gradients=None,
              unconnected_gradients: str = "none") -> list:
    """Symbolic derivatives of ``sum(ys)`` with respect to each of ``xs``.

    ``grad_ys`` seeds the backward pass (one per y; required for non-scalar ys).
    ``stop_gradients`` are held constant (partial derivatives, as in TF1). An x that ys do not
    depend on gets ``None``, or zeros if ``unconnected_gradients="zero"``. ``xs`` may hold
    Variables; the gradient then sums over all reads of the variable.
    """
    ys, xs_in = _as_list(ys), _as_list(xs)
    if unconnected_gradients not in ("none", "zero"):
        raise ValueError(f"unconnected_gradients must be 'none' or 'zero', got {unconnected_gradients!r}")
    if not ys or not xs_in:
        raise GradientError(f"gc.gradients at {user_location()}: ys and xs must not be empty")
    ys = [convert_to_tensor(y) for y in ys]
    graph = graph_of(ys, [x for x in xs_in if not isinstance(x, Variable)], op_type="gradients")
    grad_ys = _as_list(grad_ys)
    if grad_ys and len(grad_ys) != len(ys):
        raise GradientError(f"gc.gradients at {user_location()}: {len(grad_ys)} grad_ys for {len(ys)} ys")

    for x in xs_in:
        if not x.dtype.is_floating:
            raise GradientError(f"gc.gradients at {user_location()}: cannot differentiate with respect to "
                                f"'{x.name}', which is {x.dtype.name}; gradients need floating tensors")
    for i, y in enumerate(ys):
        if not y.dtype.is_floating:
            raise GradientError(f"gc.gradients at {user_location()}: cannot differentiate '{y.name}', which is "
                                f"{y.dtype.name}; gradients need floating tensors")
        if not grad_ys and y.shape != ():
            raise GradientError(f"gc.gradients at {user_location()}: '{y.name}' has shape {y.shape}, not a "
                                "scalar; pass grad_ys= to seed it (or reduce it to a scalar first)")

    targets = [_targets_of(x) for x in xs_in]
    target_set = {t for ts in targets for t in ts}
    stop = {convert_to_tensor(s) for s in _as_list(stop_gradients)}

    with graph.name_scope(name):
        seeds = []
        for i, y in enumerate(ys):
            if grad_ys and grad_ys[i] is not None:
                g = convert_to_tensor(grad_ys[i])
                if g.dtype is not y.dtype:
                    raise DTypeError(f"gc.gradients at {user_location()}: grad_ys[{i}] is {g.dtype.name} but "
                                     f"'{y.name}' is {y.dtype.name}")
                if not g.shape.is_compatible_with(y.shape):
                    raise ShapeError(f"gc.gradients at {user_location()}: grad_ys[{i}] has shape {g.shape}, "
                                     f"'{y.name}' has shape {y.shape}")
            else:
                g = ones_like(y)
            seeds.append(g)
        accumulated = _backprop(ys, seeds, target_set, stop)

        results = []
        for x, ts in zip(xs_in, targets):
            g = _accumulate([accumulated.get(t) for t in ts])
            if g is None and unconnected_gradients == "zero":
                g = zeros_like(ts[0] if ts else x.value())
            results.append(g)
    return results


# Per input of the op whose rule is running: does any target need its gradient? Rules that
# pay per input (the control-flow rules sum a gradient per captured tensor over every
# iteration) skip the others; most rules need not ask.
_INPUTS_NEEDED: contextvars.ContextVar = contextvars.ContextVar("inputs_needed", default=None)


def inputs_needed(op) -> list:
    """For the gradient rule of ``op`` now running: per input, whether a gradient target needs
    its gradient (every input, when the rule runs outside ``gradients``)."""
    needed = _INPUTS_NEEDED.get()
    return list(needed) if needed is not None and len(needed) == len(op.inputs) else [True] * len(op.inputs)


def _backprop(ys: Sequence[Tensor], seeds: Sequence[Tensor], targets: set, stop: set) -> dict:
    """Propagate gradients from ``ys`` back to ``targets``; returns tensor -> gradient for
    every tensor on a path (including the targets)."""
    # Ops that lie on a path from some target to some y, not crossing a stop tensor.
    reaches_target: dict = {}

    def depends_on_target(op) -> bool:
        # iterative DFS over inputs, memoized
        stack = [(op, False)]
        while stack:
            node, expanded = stack.pop()
            if node in reaches_target:
                continue
            if not expanded:
                stack.append((node, True))
                for t in node.inputs:
                    if t not in stop and t.op not in reaches_target:
                        stack.append((t.op, False))
                continue
            reaches_target[node] = any(
                t in targets or (t not in stop and reaches_target.get(t.op, False)) for t in node.inputs)
        return reaches_target[op]

    pending: dict = {}
    stopped: dict = {}  # gradients reaching an x that is also in stop_gradients: kept, not propagated
    for y, g in zip(ys, seeds):
        if y in stop:
            if y in targets:
                stopped.setdefault(y, []).append(g)
            continue
        pending.setdefault(y, []).append(g)

    on_path = set()
    stack = [y.op for y in ys if y not in stop]
    while stack:
        op = stack.pop()
        if op in on_path or not depends_on_target(op):
            continue
        on_path.add(op)
        for t in op.inputs:
            if t not in stop and t.op not in on_path:
                stack.append(t.op)

    grads: dict = {}
    for op in sorted(on_path, key=lambda o: o._id, reverse=True):
        out_grads = []
        for t in op.outputs:
            g = _accumulate(pending.pop(t, []))
            if g is not None:
                grads[t] = g
            out_grads.append(g)
        if all(g is None for g in out_grads) or op.type in NON_DIFFERENTIABLE:
            continue
        rule = gradient_rule(op.type)
        if rule is None:
            raise GradientError(f"no gradient rule for op type {op.type!r} ('{op.name}', created at "
                                f"{op.location}); mark it non-differentiable or add a rule in "
                                "graphc/autodiff/rules.py or the op's definition (docs/ADDING-AN-OP.md)")
        token = _INPUTS_NEEDED.set([t not in stop and (t in targets or t.op in on_path) for t in op.inputs])
        try:
            with op.graph.name_scope(f"{op.name.replace('/', '_')}_grad"):
                in_grads = rule(op, out_grads)
        finally:
            _INPUTS_NEEDED.reset(token)
        if len(in_grads) != len(op.inputs):
            raise GraphcError(f"internal error: the gradient rule of {op.type} returned {len(in_grads)} "
                              f"gradients for {len(op.inputs)} inputs")
        for t, g in zip(op.inputs, in_grads):
            if g is None or not t.dtype.is_floating:
                continue
            if t in stop:
                if t in targets:
                    stopped.setdefault(t, []).append(g)
                continue
            if t in targets or t.op in on_path:
                pending.setdefault(t, []).append(g)
    for t, gs in pending.items():  # targets (their producers are not on the path)
        g = _accumulate(gs)
        if g is not None:
            grads[t] = _accumulate([grads.get(t), g])
    for t, gs in stopped.items():
        grads[t] = _accumulate([grads.get(t)] + gs)
    return grads

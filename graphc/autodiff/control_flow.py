"""Gradients through control flow (ops/control_flow.py), built from control flow.

cond: a cond on the same pred whose branches rebuild the forward branch (``Body.call``) and
differentiate it, so only the taken branch's gradient runs.

while_loop: the forward loop runs again with ``history`` (each loop variable as it entered
each iteration, stacked), then a backward while_loop walks the iterations from the last to
the first: it rebuilds the body on that iteration's variables, differentiates it with the
incoming gradient as seed, and sums the gradients of the captured tensors over iterations.
The optimizer's ``merge_loop_histories`` runs the two forward loops as one. Only the captured
tensors whose gradient some target needs are summed (``inputs_needed``).
"""
from __future__ import annotations

from ..graph import get_default_graph
from ..ops import elementwise as ew
from ..ops._build import make
from ..ops.control_flow import cond, while_loop
from ..ops.shape import gather
from ..ops.source import zeros_like
from .gradients import gradients, inputs_needed
from .rules import grad


@grad("cond")
def _cond_gradient(op, grads):
    pred, captured = op.inputs[0], list(op.inputs[1:])
    wanted = [k for k, (t, g) in enumerate(zip(op.outputs, grads)) if g is not None and t.dtype.is_floating]
    needed = inputs_needed(op)
    diff = [j for j, c in enumerate(captured) if c.dtype.is_floating and needed[1 + j]]
    result = [None] * len(op.inputs)
    if not wanted or not diff:
        return result
    seeds = [grads[k] for k in wanted]

    def branch(body):
        def differentiate():
            graph = get_default_graph()
            inner = [graph.capture(c) for c in captured]
            outs = body.call(inner)
            return gradients([outs[k] for k in wanted], [inner[j] for j in diff], grad_ys=seeds,
                             unconnected_gradients="zero")
        return differentiate

    grads_in = cond(pred, branch(op.get_attr("then")), branch(op.get_attr("else")), strict=True,
                    name=f"{op.name.replace('/', '_')}_grad")
    for j, g in zip(diff, grads_in):
        result[1 + j] = g
    return result


@grad("while_loop")
def _while_gradient(op, grads):
    n, body = op.get_attr("n_vars"), op.get_attr("body")
    n_captured = len(body.inputs) - n
    values, captured = list(op.inputs[:n]), list(op.inputs[n:n + n_captured])
    result = [None] * len(op.inputs)
    var_diff = [k for k in range(n) if values[k].dtype.is_floating]
    needed = inputs_needed(op)  # a captured tensor no target needs is not summed over the iterations
    cap_diff = [j for j in range(n_captured) if captured[j].dtype.is_floating and needed[n + j]]
    # A loop with history (the forward pass of another loop's gradient, when that gradient is
    # differentiated again) also passes gradients of each iteration's entering values.
    history_grads = list(grads[n + 1:]) if op.attrs.get("history") else [None] * n
    if not op.get_attr("back_prop") or not var_diff or all(
            grads[k] is None and history_grads[k] is None for k in var_diff):
        return result
    forward = op if op.attrs.get("history") else make(
        "while_loop", op.inputs, op.attrs.replace(history=True), f"{op.name.rsplit('/', 1)[-1]}_history", graph=op.graph)
    trips, stacks = forward.outputs[n], forward.outputs[n + 1:]
    seeds = [grads[k] if grads[k] is not None else zeros_like(op.outputs[k]) for k in var_diff]
    zero_caps = [zeros_like(captured[j]) for j in cap_diff]

    def step(i, g_vars, g_caps):
        graph = get_default_graph()
        inner_caps = [graph.capture(c) for c in captured]
        entering = [gather(stacks[k], i) for k in range(n)]
        outs = body.call(entering + inner_caps)
        gs = gradients([outs[k] for k in var_diff], [entering[k] for k in var_diff] + [inner_caps[j] for j in cap_diff],
                       grad_ys=list(g_vars), unconnected_gradients="zero")
        g_entering = [g if history_grads[k] is None else ew.add(g, gather(history_grads[k], i))
                      for k, g in zip(var_diff, gs)]
        return i - 1, g_entering, [ew.add(a, b) for a, b in zip(g_caps, gs[len(var_diff):])]

    _, g_vars, g_caps = while_loop(lambda i, g_vars, g_caps: i >= 0, step, [trips - 1, seeds, zero_caps],
                                   name=f"{op.name.replace('/', '_')}_grad", return_same_structure=True)
    for k, g in zip(var_diff, g_vars):
        result[k] = g
    for j, g in zip(cap_diff, g_caps):
        result[n + j] = g
    return result

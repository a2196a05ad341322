"""Gradients through control flow (ops/control_flow.py), built from control flow.

cond: a cond on the same pred whose branches rebuild the forward branch (``Body.call``) and
differentiate it, so only the taken branch's gradient runs.

while_loop: the forward loop runs again with ``history`` (each loop variable as it entered
each iteration, stacked), and it also stacks, per iteration, the body values that the
gradient reads (TF1 keeps them on stacks too): the products and activations the rules of the
body's ops need. A backward while_loop then walks the iterations from the last to the first:
it differentiates the body with the incoming gradient as seed, reading each forward value as
that iteration's row of its stack (``Graph.reads_from``), so no iteration runs the forward body
again, and it sums the gradients of the captured tensors over iterations. Values that depend
on no loop variable are recomputed once per backward iteration instead (the optimizer hoists
them out of the backward loop); a body that holds control flow of its own is rebuilt whole
(``Body.call``) and differentiated, as cond's branches are. The optimizer's
``merge_loop_histories`` runs the two forward loops as one. Only the captured tensors whose
gradient some target needs are summed (``inputs_needed``).
"""
from __future__ import annotations

from ..graph import Graph, get_default_graph
from ..ops import elementwise as ew
from ..ops._build import make
from ..ops.control_flow import Body, cond, while_op
from ..ops.linalg import matmul
from ..ops.shape import reshape
from ..ops.source import constant, placeholder
from ..ops.shape import gather
from ..ops.source import zeros_like
from .gradients import _accumulate, gradients, inputs_needed
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
    n_stacked = op.attrs.get("n_stacked", 0)
    has_history = bool(op.attrs.get("history"))
    n_captured = len(body.inputs) - n
    values, captured = list(op.inputs[:n]), list(op.inputs[n:n + n_captured])
    result = [None] * len(op.inputs)
    var_diff = [k for k in range(n) if values[k].dtype.is_floating]
    needed = inputs_needed(op)  # a captured tensor no target needs is not summed over the iterations
    cap_diff = [j for j in range(n_captured) if captured[j].dtype.is_floating and needed[n + j]]
    # A loop with history or stacked values (the forward pass of another loop's gradient, when
    # that gradient is differentiated again) also passes gradients of each iteration's entering
    # values and of its stacked values.
    history_grads = list(grads[n + 1:2 * n + 1]) if has_history else [None] * n
    stacked_grads = list(grads[len(grads) - n_stacked:]) if n_stacked else []
    seeded = [j for j, g in enumerate(stacked_grads) if g is not None and body.outputs[n + j].dtype.is_floating]
    if not op.get_attr("back_prop") or not var_diff or (not seeded and all(
            grads[k] is None and history_grads[k] is None for k in var_diff)):
        return result

    def wrt(outputs, inputs) -> tuple:
        """(ys, xs) of the body's gradient among ``outputs`` and ``inputs``: the body's own, or
        those of a copy built again."""
        return ([outputs[k] for k in var_diff] + [outputs[n + j] for j in seeded],
                [inputs[k] for k in var_diff] + [inputs[n + j] for j in cap_diff])
    ys, xs = wrt(body.outputs, body.inputs)
    rebuild_whole = any(o.type in ("while_loop", "cond") for o in body.ops)
    kept = [] if rebuild_whole else _values_the_gradient_reads(body, n, ys, xs)
    name = op.name.rsplit("/", 1)[-1]
    if kept:
        forward = make("while_loop", op.inputs, op.attrs.replace(
            history=True, n_stacked=n_stacked + len(kept),
            body=Body(body.graph, body.inputs, list(body.outputs) + kept, body.label)), f"{name}_history", graph=op.graph)
    else:
        forward = op if has_history else make("while_loop", op.inputs, op.attrs.replace(history=True),
                                              f"{name}_history", graph=op.graph)
    trips, stacks = forward.outputs[n], forward.outputs[n + 1:2 * n + 1]
    kept_stacks = forward.outputs[len(forward.outputs) - len(kept):] if kept else []
    seeds = [grads[k] if grads[k] is not None else zeros_like(op.outputs[k]) for k in var_diff]
    zero_caps = [zeros_like(captured[j]) for j in cap_diff]
    deferred = []  # (position in cap_diff, A_t, B_t): body values whose sum_t A_t^T B_t follows the loop

    def step(j, g_vars, g_caps):
        deferred.clear()
        graph = get_default_graph()
        i = graph.capture(trips) - 1 - j  # the forward iteration this one undoes
        inner_caps = [graph.capture(c) for c in captured]
        entering = [gather(stacks[k], i) for k in range(n)]
        grad_ys = list(g_vars) + [gather(stacked_grads[j], i) for j in seeded]
        # Only how the gradient reads the forward values differs. A body with control flow of
        # its own is built again here on this iteration's values, since the gradients of its
        # loops and conds build ops in their op's graph. Any other body is differentiated as it
        # is, each forward value read as its kept row, an entering value or a capture, else
        # recomputed here (Graph.reads_from).
        if rebuild_whole:
            inputs = entering + inner_caps
            outputs, kept_rows = body.call(inputs), set()
        else:
            inputs, outputs = body.inputs, body.outputs
            rows = dict(zip(kept, (gather(s, i) for s in kept_stacks)))
            kept_rows = set(rows.values()) | set(entering)
            rows.update(zip(body.inputs, entering + inner_caps))
            graph.reads_from[body.graph] = _reader(rows)
        try:
            gs = gradients(*wrt(outputs, inputs), grad_ys=grad_ys, unconnected_gradients="zero")
        finally:
            graph.reads_from.pop(body.graph, None)
        cap_grads = []
        for at, g in enumerate(gs[len(var_diff):]):
            products, rest = _weight_gradients(g, kept_rows)
            deferred.extend((at, a, b) for a, b in products)
            cap_grads.append(_accumulate(rest))
        g_entering = [g if history_grads[k] is None else ew.add(g, gather(history_grads[k], i))
                      for k, g in zip(var_diff, gs)]
        return j + 1, g_entering, [a if g is None else ew.add(a, g) for a, g in zip(g_caps, cap_grads)]

    # counting up to the forward trip count, a counted loop (hoisting.counter_of): CUDA reads
    # no predicate back, and a native library sizes the stacks from the forward loop's count
    n_out = 1 + len(var_diff) + len(cap_diff)
    outs, _ = while_op(lambda j, g_vars, g_caps: j < trips, step, [constant(0, trips.dtype), seeds, zero_caps],
                       name=f"{op.name.replace('/', '_')}_grad",
                       stack=lambda: [t for _, a, b in deferred for t in (a, b)])
    g_vars, g_caps = outs[1:1 + len(var_diff)], outs[1 + len(var_diff):n_out]
    stacked = outs[n_out + 1:]
    for k, (at, _, _) in enumerate(deferred):  # both stacked by the backward loop, rows paired
        a_all, b_all = (reshape(s, [-1, s.shape[-1]]) for s in stacked[2 * k:2 * k + 2])
        g_caps[at] = ew.add(g_caps[at], matmul(a_all, b_all, transpose_a=True))
    for k, g in zip(var_diff, g_vars):
        result[k] = g
    for j, g in zip(cap_diff, g_caps):
        result[n + j] = g
    return result


def _weight_gradients(g, kept_rows: set) -> tuple:
    """A captured tensor's gradient in one iteration, as a sum: its terms ``A_t^T @ B_t``
    where ``A_t`` is a kept row or an entering value (a weight's gradient through
    ``x_t @ W``), as pairs (A_t, B_t), and the other terms. The backward loop stacks A_t and
    B_t instead of adding a product per iteration, and one product over all iterations follows
    the loop (as torch and cuDNN compute an RNN's weight gradient: per iteration it is a
    product with K = batch, a poor shape for a GEMM). With no kept rows (a body built again
    whole) nothing pairs, and ``g`` stays the one term it was built as."""
    if not kept_rows:
        return [], [g]
    products, rest, terms = [], [], [g]
    while terms:
        t = terms.pop()
        op = t.op
        if op.type == "add" and all(u.shape == t.shape for u in op.inputs):
            terms.extend(op.inputs)
        elif (op.type == "matmul" and op.attrs.get("transpose_a") and not op.attrs.get("transpose_b")
              and op.inputs[0] in kept_rows and op.inputs[0].shape.rank == 2 and op.inputs[1].shape.rank == 2):
            products.append(tuple(op.inputs))
        else:
            rest.append(t)
    return products, rest


def _reader(known: dict):
    """What a backward body reads for a forward body's tensor: ``known`` (kept rows, entering
    values, captures), else the tensor recomputed here from what it reads (memoized)."""
    def read(t):
        found = known.get(t)
        if found is None:
            op = t.op
            new = get_default_graph().create_op(op.type, op.inputs, op.attrs, op.name.rsplit("/", 1)[-1],
                                                location=op.location)  # its inputs are read so in turn
            known.update(zip(op.outputs, new.outputs))
            found = known[t]
        return found
    return read


def _values_the_gradient_reads(body: Body, n: int, ys: list, xs: list) -> list:
    """The body's values that depend on a loop variable and that the gradient of ``ys`` with
    respect to ``xs`` reads: the values the forward loop keeps per iteration. Found by building
    that gradient once in a scratch graph."""
    varying = set(body.inputs[:n])
    for o in body.ops:
        if any(t in varying for t in o.inputs):
            varying.update(o.outputs)
    read: dict = {}
    scratch = Graph()
    with scratch.as_default():
        known = {t: placeholder(t.dtype, t.shape) for t in body.inputs}
        recompute = _reader(known)

        def note(t):
            if t in varying and t not in known:
                read.setdefault(t, None)
                known[t] = placeholder(t.dtype, t.shape)
            return recompute(t)
        scratch.reads_from[body.graph] = note
        gradients(ys, xs, grad_ys=[placeholder(y.dtype, y.shape) for y in ys], unconnected_gradients="zero")
    return list(read)

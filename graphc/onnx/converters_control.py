"""Converters for ONNX's control flow: If, Loop, Scan, on graphc's cond and while loops.

A subgraph (a branch, a loop body) is imported inside the function that graphc traces for the
body (``Importer.run_subgraph``), so it reads outer values as captures, as in ONNX. An ``If``
whose condition is known at import time imports only the branch it takes.
"""
from __future__ import annotations

import numpy as np

import graphc as gc

from .. import dtypes as dt
from ..ops.control import check_range
from .converters import _axis
from .importer import Sequence, converts


@converts("If")
def _if(node):
    imp = node.importer
    then_g, else_g = node.attr("then_branch"), node.attr("else_branch")
    known = node.known(0)
    if known is not None:
        return imp.run_subgraph(then_g if bool(np.asarray(known).reshape(-1)[0]) else else_g, [], node.opset)
    pred = gc.reshape(gc.cast(node.x(0), dt.bool_), [])
    outs = gc.cond(pred, lambda: imp.run_subgraph(then_g, [], node.opset),
                   lambda: imp.run_subgraph(else_g, [], node.opset), strict=True)
    return list(outs) if isinstance(outs, (list, tuple)) else [outs]


@converts("Loop")
def _loop(node):
    imp = node.importer
    body = node.attr("body")
    carried = [node.x(i) for i in range(2, len(node.inputs))]
    n_scan = len(body.output) - 1 - len(carried)
    trip = node.known(0) if node.has(0) else None
    if node.has(0) and trip is None:
        trip_t = gc.reshape(gc.cast(node.x(0), dt.int64), [])
    else:
        trip_t = None if trip is None else gc.constant(np.int64(np.asarray(trip).reshape(-1)[0]))
    cond0 = gc.reshape(gc.cast(node.x(1), dt.bool_), []) if node.has(1) else gc.constant(True)

    def run_body(i, c, values):
        outs = imp.run_subgraph(body, [i, c, *values], node.opset)
        return gc.reshape(gc.cast(outs[0], dt.bool_), []), outs[1:1 + len(carried)], outs[1 + len(carried):]

    if n_scan == 0:
        def cond(i, c, *values):
            return c if trip_t is None else gc.logical_and(c, i < trip_t)

        def step(i, c, *values):
            c_out, v_out, _ = run_body(i, c, list(values))
            return (i + 1, c_out, *v_out)
        if trip_t is None and not node.has(1):
            node.fail("a Loop with neither a trip count nor a condition never ends")
        result = gc.while_loop(cond, step, [gc.constant(np.int64(0)), cond0, *carried], return_same_structure=True)
        return list(result[2:])
    # Scan outputs are stacked per iteration: graphc needs the number of iterations when the
    # model is imported, and checks at run time that the condition does not end the loop early.
    if trip is None:
        node.needs(0, "trip count (a Loop with scan outputs stacks one row per iteration)")
    steps = int(np.asarray(trip).reshape(-1)[0])
    if steps < 1:
        node.fail(f"a Loop with scan outputs and {steps} iterations is not imported")

    def fn(i, c, *values):
        c = check_range(gc.cast(c, dt.int64), 1, 1, f"the condition of Loop {node.label} became false before its "
                        f"trip count ({steps}); graphc stacks its scan outputs for exactly that many iterations")
        c_out, v_out, scan = run_body(i, gc.cast(c, dt.bool_), list(values))
        return [i + 1, c_out, *v_out, *scan]

    outs, _ = gc.theano_scan(fn, outputs_info=[gc.constant(np.int64(0)), cond0, *carried] + [None] * n_scan,
                             n_steps=steps)
    outs = outs if isinstance(outs, list) else [outs]
    finals = [o[-1] for o in outs[2:2 + len(carried)]]
    return finals + list(outs[2 + len(carried):])


@converts("Scan")
def _scan(node):
    imp = node.importer
    body = node.attr("body")
    m = node.attr("num_scan_inputs")
    values = [node.x(i) for i in range(len(node.inputs)) if node.has(i)]
    n_state = len(values) - m
    states, seqs = values[:n_state], values[n_state:]
    in_axes = node.attr("scan_input_axes") or [0] * m
    in_dirs = node.attr("scan_input_directions") or [0] * m
    n_out = len(body.output) - n_state
    out_axes = node.attr("scan_output_axes") or [0] * n_out
    out_dirs = node.attr("scan_output_directions") or [0] * n_out
    moved = []
    for x, axis, direction in zip(seqs, in_axes, in_dirs):
        axis = _axis(node, axis, node.rank(x))
        if axis:
            perm = [axis] + [i for i in range(x.ndim) if i != axis]
            x = gc.transpose(x, perm)
        if direction:
            x = gc.reverse(x, [0])
        moved.append(x)

    def fn(*args):
        slices, previous = args[:m], args[m:m + n_state]
        return imp.run_subgraph(body, [*previous, *slices], node.opset)

    outs, _ = gc.theano_scan(fn, sequences=moved, outputs_info=list(states) + [None] * n_out)
    outs = outs if isinstance(outs, list) else [outs]
    finals = [o[-1] for o in outs[:n_state]]
    scanned = []
    for o, axis, direction in zip(outs[n_state:], out_axes, out_dirs):
        if direction:
            o = gc.reverse(o, [0])
        rank = o.ndim
        axis = _axis(node, axis, rank)
        if axis:
            perm = list(range(1, axis + 1)) + [0] + list(range(axis + 1, rank))
            o = gc.transpose(o, perm)
        scanned.append(o)
    return finals + scanned


# --- sequences ----------------------------------------------------------------------------------
# A sequence whose length and positions are known when the model is imported is a Python
# list of graphc tensors (importer.Sequence); its ops rearrange the list.
def _sequence(node, i):
    v = node.value(i)
    if not isinstance(v, Sequence):
        node.fail(f"input {i} ('{node.inputs[i]}') must be a sequence")
    return v


def _position(node, i, length, insert=False):
    if not node.has(i):
        return length if insert else length - 1
    p = int(node.ints(i, "position")[0])
    limit = length + 1 if insert else length
    if not -length <= p < limit:
        node.fail(f"position {p} is out of range for a sequence of {length}")
    return p + length if p < 0 else p


@converts("SequenceEmpty")
def _sequence_empty(node):
    return [Sequence()]


@converts("SequenceConstruct")
def _sequence_construct(node):
    return [Sequence(node.x(i) for i in range(len(node.inputs)) if node.has(i))]


@converts("SequenceInsert")
def _sequence_insert(node):
    seq = _sequence(node, 0)
    out = Sequence(seq)
    out.insert(_position(node, 2, len(seq), insert=True), node.x(1))
    return [out]


@converts("SequenceErase")
def _sequence_erase(node):
    seq = _sequence(node, 0)
    out = Sequence(seq)
    del out[_position(node, 1, len(seq))]
    return [out]


@converts("SequenceAt")
def _sequence_at(node):
    seq = _sequence(node, 0)
    return [gc.identity(seq[_position(node, 1, len(seq))])]


@converts("SequenceLength")
def _sequence_length(node):
    return [np.asarray(len(_sequence(node, 0)), dtype=np.int64)]


@converts("SplitToSequence")
def _split_to_sequence(node):
    x = node.x(0)
    axis = _axis(node, node.attr("axis", 0), node.rank(x))
    dim = x.shape[axis]
    if dim is None:
        node.needs_shape(f"needs the size of axis {axis} at import time")
    if not node.has(1):
        parts = gc.split(x, dim, axis=axis)
        if not node.attr("keepdims", 1):
            parts = [gc.squeeze(p, [axis]) for p in parts]
        return [Sequence(parts)]
    split = node.ints(1, "split")
    if node.known(1).ndim == 0:
        n = split[0]
        split = [n] * (dim // n) + ([dim % n] if dim % n else [])
    return [Sequence(gc.split(x, split, axis=axis))]


@converts("ConcatFromSequence")
def _concat_from_sequence(node):
    seq = _sequence(node, 0)
    if not seq:
        node.fail("cannot concatenate an empty sequence")
    if node.attr("new_axis", 0):
        rank = seq[0].ndim + 1
        return [gc.stack(list(seq), axis=_axis(node, node.attr("axis"), rank))]
    return [gc.concat(list(seq), axis=_axis(node, node.attr("axis"), seq[0].ndim))]

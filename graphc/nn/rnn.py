"""Recurrent networks over sequences: ``dynamic_rnn`` (one while_loop, through ``scan``),
``static_rnn`` (unrolled over a Python list) and ``bidirectional_dynamic_rnn``, with TF1's
signatures and semantics, ``sequence_length`` included: past each sequence's end the outputs
are zeros and the state stays as it was at the end."""
from __future__ import annotations


import numpy as np

from .. import dtypes as dt
from ..errors import DTypeError, ShapeError
from ..graph import name_scope, user_location
from ..nest import flatten
from ..ops import elementwise as ew
from ..ops import shape as sh
from ..ops.control_flow import scan
from ..ops.source import constant, convert_to_tensor, fill, zeros_like
from ..ops.source import shape as shape_of
from .rnn_cell import _depth, dropout_wrappers


def _batch_and_depth(x, time_major: bool, where: str):
    if x.shape.rank != 3:
        raise ShapeError(f"dynamic_rnn at {where}: inputs must be [batch, time, depth] (or [time, batch, depth] with "
                         f"time_major=True), got '{x.name}' {x.shape}")
    if x.shape[2] is None:
        raise ShapeError(f"dynamic_rnn at {where}: the depth (last dim) of '{x.name}' must be known, got {x.shape}")
    batch = shape_of(x)[1 if time_major else 0]
    return batch, x.shape[2]


def _initial(cell, initial_state, batch, dtype, where):
    if initial_state is not None:
        return initial_state
    if dtype is None:
        raise ValueError(f"dynamic_rnn at {where}: give initial_state or dtype")
    return cell.zero_state(batch, dtype)


def _step(cell, x_t, state, t, lengths):
    """One step of ``cell``; past a row's ``lengths`` (step ``t`` and later) its output is zeros
    and its state stays as it was (TF1's sequence_length)."""
    for wrapper in dropout_wrappers(cell):  # which row of the pre-drawn noise this step reads
        wrapper.step = t
    output, new_state = cell(x_t, state)
    if lengths is None:
        return output, new_state
    valid = sh.expand_dims(ew.less(t, lengths), 1)
    new_leaves, rebuild = flatten(new_state)
    kept = [ew.where(valid, new, old) for new, old in zip(new_leaves, flatten(state)[0])]
    return ew.where(valid, output, zeros_like(output)), rebuild(kept)


def dynamic_rnn(cell, inputs, sequence_length=None, initial_state=None, dtype=None, parallel_iterations=None,
                swap_memory: bool = False, time_major: bool = False, scope=None):
    """Run ``cell`` over the time steps of ``inputs`` in one loop (tf.nn.dynamic_rnn).

    Returns ``(outputs, final_state)``: outputs ``[batch, time, cell.output_size]`` (time-major
    with ``time_major``). With ``sequence_length`` ([batch] ints), each row's outputs past its
    length are zeros and its final state is the state at its last step."""
    where = user_location()
    x = convert_to_tensor(inputs)
    batch, depth = _batch_and_depth(x, time_major, where)
    dtype = dt.as_dtype(dtype) if dtype is not None else x.dtype
    with name_scope(scope or "rnn"):
        cell.build(depth, dtype)
        state0 = _initial(cell, initial_state, batch, dtype, where)
        for k, leaf in enumerate(flatten(state0)[0]):
            if convert_to_tensor(leaf).dtype is not dtype:
                raise DTypeError(f"dynamic_rnn at {where}: initial_state part {k} is {convert_to_tensor(leaf).dtype.name}, "
                                 f"but the RNN computes in {dtype.name}")
        steps = x if time_major else sh.transpose(x, [1, 0, 2])
        out_size = _depth(cell.output_size)
        out0 = fill(sh.stack([batch, constant(out_size, dt.int64)]), np.zeros((), x.dtype.np))
        lengths = None if sequence_length is None else ew.cast(convert_to_tensor(sequence_length), dt.int64)
        wrappers = dropout_wrappers(cell)
        for wrapper in wrappers:  # a loop body may not draw: every step's noise is drawn here
            wrapper.draw_sequence_noise(shape_of(steps)[0], batch, dtype)

        def step(acc, x_t):
            t, state, _ = acc
            output, new_state = _step(cell, x_t, state, t, lengths)
            return t + 1, new_state, output

        try:
            _, states, outputs = scan(step, steps, initializer=(constant(0, dt.int64), state0, out0), name="while")
        finally:
            for wrapper in wrappers:
                wrapper.noise = wrapper.step = None
        final = _last(states, state0)
        if steps.shape[0] is not None:  # the loop's stacked rows lost the static number of steps
            outputs = sh.reshape(outputs, [steps.shape[0], -1, out_size])
        if not time_major:
            outputs = sh.transpose(outputs, [1, 0, 2])
        return outputs, final


def _last(stacked_state, initial_state):
    """The state after the last step: the scan's last row, or the initial state when the input
    has no time steps (as TF1 gives)."""
    leaves, rebuild = flatten(stacked_state)
    firsts, _ = flatten(initial_state)
    return rebuild([sh.concat([sh.expand_dims(first, 0), leaf], 0)[-1] for leaf, first in zip(leaves, firsts)])


def static_rnn(cell, inputs, initial_state=None, dtype=None, sequence_length=None, scope=None):
    """``cell`` unrolled over the Python list ``inputs`` of ``[batch, depth]`` tensors
    (tf.nn.static_rnn). Returns ``(outputs list, final_state)``."""
    where = user_location()
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise TypeError(f"static_rnn at {where}: inputs must be a non-empty list of [batch, depth] tensors")
    xs = [convert_to_tensor(i) for i in inputs]
    if xs[0].shape.rank != 2 or xs[0].shape[1] is None:
        raise ShapeError(f"static_rnn at {where}: each input must be [batch, depth] with a known depth, got {xs[0].shape}")
    dtype = dt.as_dtype(dtype) if dtype is not None else xs[0].dtype
    with name_scope(scope or "rnn"):
        cell.build(xs[0].shape[1], dtype)
        state = _initial(cell, initial_state, shape_of(xs[0])[0], dtype, where)
        lengths = None if sequence_length is None else ew.cast(convert_to_tensor(sequence_length), dt.int64)
        outputs = []
        for t, x_t in enumerate(xs):
            output, new_state = _step(cell, x_t, state, constant(t, dt.int64), lengths)  # fresh noise per call
            outputs.append(output)
            state = new_state
        return outputs, state


def _reverse_sequences(x, lengths, time_major: bool, where: str):
    """tf.reverse_sequence along time: each row's first ``lengths[b]`` steps reversed, the rest
    kept (a permutation applied as a batched matmul with one-hot rows; needs a static time)."""
    time_axis = 0 if time_major else 1
    if lengths is None:
        return x[::-1] if time_major else x[:, ::-1]
    steps = x.shape[time_axis]
    if steps is None:
        raise ShapeError(f"bidirectional_dynamic_rnn at {where}: with sequence_length the number of time steps must be "
                         f"static here, got {x.shape}")
    t = constant(np.arange(steps, dtype=np.int64))
    lengths = sh.expand_dims(ew.cast(lengths, dt.int64), 1)                 # [B, 1]
    source = ew.where(ew.less(t, lengths), lengths - 1 - t, t)              # [B, T]
    perm = ew.cast(sh.one_hot(source, steps), x.dtype)                      # [B, T, T]
    batch_major = x if not time_major else sh.transpose(x, [1, 0, 2])
    from ..ops.linalg import matmul
    out = matmul(perm, batch_major)
    return out if not time_major else sh.transpose(out, [1, 0, 2])


def bidirectional_dynamic_rnn(cell_fw, cell_bw, inputs, sequence_length=None, initial_state_fw=None,
                              initial_state_bw=None, dtype=None, parallel_iterations=None, swap_memory: bool = False,
                              time_major: bool = False, scope=None):
    """A forward and a backward dynamic_rnn (tf.nn.bidirectional_dynamic_rnn). Returns
    ``((output_fw, output_bw), (state_fw, state_bw))``, the backward outputs in input order."""
    where = user_location()
    x = convert_to_tensor(inputs)
    with name_scope(scope or "bidirectional_rnn"):
        out_fw, state_fw = dynamic_rnn(cell_fw, x, sequence_length, initial_state_fw, dtype,
                                       time_major=time_major, scope="fw")
        reversed_x = _reverse_sequences(x, sequence_length, time_major, where)
        out_bw, state_bw = dynamic_rnn(cell_bw, reversed_x, sequence_length, initial_state_bw, dtype,
                                       time_major=time_major, scope="bw")
        out_bw = _reverse_sequences(out_bw, sequence_length, time_major, where)
    return (out_fw, out_bw), (state_fw, state_bw)

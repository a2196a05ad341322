"""Recurrent cells with TensorFlow 1.x's variable layouts and names (``tf.nn.rnn_cell``).

A cell is called as ``output, new_state = cell(inputs, state)``. Its variables are made by
``build(input_depth)`` under the cell's name scope the first time it is called (or by
``dynamic_rnn`` before its loop, since a loop body may not create variables), so
``dynamic_rnn(LSTMCell(64), x)`` makes ``rnn/lstm_cell/kernel`` and ``rnn/lstm_cell/bias``
as TF1 does. Layouts, so that TF1 checkpoints and hand-written code line up:

* ``BasicRNNCell``: kernel ``[input + units, units]``, bias ``[units]``.
* ``BasicLSTMCell`` / ``LSTMCell``: one kernel ``[input + hidden, 4 * units]`` and a bias, the
  gates in the order i, j (candidate), f, o; ``forget_bias`` is added inside the forget gate's
  sigmoid. ``LSTMCell(num_proj=p)`` adds ``projection/kernel`` ``[units, p]`` and then its
  hidden state (and output) has p units.
* ``GRUCell``: ``gates/kernel`` ``[input + units, 2 * units]`` (r, u; bias ``gates/bias``
  starts at 1) and ``candidate/kernel`` ``[input + units, units]``.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Callable, Optional

import numpy as np

from .. import dtypes as dt
from .. import init
from ..errors import ShapeError
from ..graph import get_default_graph, name_scope, user_location
from ..ops import elementwise as ew
from ..ops import nn as nn_ops
from ..ops import shape as sh
from ..ops.linalg import matmul
from ..ops.source import convert_to_tensor, fill
from ..ops.state import Variable


class LSTMStateTuple(namedtuple("LSTMStateTuple", ("c", "h"))):
    """The state of an LSTM cell: the memory ``c`` and the hidden state ``h`` (tf.nn.rnn_cell)."""

    __slots__ = ()

    @property
    def dtype(self):
        return self.c.dtype


def _zeros(batch_size, size, dtype):
    if isinstance(size, tuple):
        return type(size)(*(_zeros(batch_size, s, dtype) for s in size)) if hasattr(type(size), "_fields") \
            else tuple(_zeros(batch_size, s, dtype) for s in size)
    batch = convert_to_tensor(batch_size, dt.int64) if not isinstance(batch_size, int) else batch_size
    if isinstance(batch, int):
        return fill((batch, size), np.zeros((), dt.as_dtype(dtype).np))
    return fill(sh.stack([batch, convert_to_tensor(size, dt.int64)]), np.zeros((), dt.as_dtype(dtype).np))


class RNNCell:
    """What every cell has: ``state_size``, ``output_size``, ``zero_state`` and ``__call__``."""

    default_name = "rnn_cell"

    def __init__(self, name: Optional[str] = None, dtype=None):
        self.name = name
        self.dtype = dt.as_dtype(dtype) if dtype is not None else None
        self.built = False
        self.scope_name: Optional[str] = None
        self.variables: list = []

    @property
    def state_size(self):
        raise NotImplementedError

    @property
    def output_size(self):
        raise NotImplementedError

    def zero_state(self, batch_size, dtype):
        """Zeros in the shape of the state, for ``batch_size`` rows (an int or a scalar tensor)."""
        with name_scope(f"{type(self).__name__}ZeroState"):
            return _zeros(batch_size, self.state_size, dtype)

    def build(self, input_depth: int, dtype) -> None:
        """Make the variables (under the cell's name scope, in the graph being built)."""
        if self.built:
            return
        if get_default_graph().outer is not None:
            raise ShapeError(f"{type(self).__name__} at {user_location()}: the cell's variables must be made before "
                             "a loop or branch; call it (or cell.build(input_depth, dtype)) outside first, or use "
                             "gc.nn.dynamic_rnn, which builds it")
        with name_scope(self.name or self.default_name) as scope:
            self.scope_name = scope.rstrip("/")
            self._make_variables(int(input_depth), dt.as_dtype(self.dtype or dtype))
        self.built = True

    def _variable(self, name: str, shape, dtype, initializer) -> Variable:
        v = Variable(initializer(tuple(shape), dtype), name=name)
        self.variables.append(v)
        return v

    def _make_variables(self, input_depth: int, dtype) -> None:
        raise NotImplementedError

    def _built_for(self, inputs):
        """``inputs`` as a [batch, depth] tensor, the cell built for its depth."""
        x = convert_to_tensor(inputs)
        if x.shape.rank != 2 or x.shape[1] is None:
            raise ShapeError(f"{type(self).__name__} at {user_location()}: inputs must be [batch, depth] with a known "
                             f"depth, got '{x.name}' {x.shape}")
        self.build(x.shape[1], x.dtype)
        return x

    def __call__(self, inputs, state, scope=None):
        x = self._built_for(inputs)
        with name_scope(self.name or self.default_name):
            return self.call(x, state)

    def call(self, inputs, state):
        raise NotImplementedError


def _linear(parts, kernel, bias=None):
    y = matmul(sh.concat(list(parts), 1), kernel)
    return nn_ops.bias_add(y, bias) if bias is not None else y


def _kernel_init(initializer):
    return initializer if initializer is not None else init.glorot_uniform()


class BasicRNNCell(RNNCell):
    """``h = activation([x, h] @ kernel + bias)``; output and state are ``h``."""

    default_name = "basic_rnn_cell"

    def __init__(self, num_units: int, activation: Optional[Callable] = None, reuse=None, name=None, dtype=None):
        super().__init__(name, dtype)
        self.num_units = int(num_units)
        self.activation = activation or ew.tanh

    state_size = property(lambda self: self.num_units)
    output_size = property(lambda self: self.num_units)

    def _make_variables(self, input_depth, dtype):
        self.kernel = self._variable("kernel", (input_depth + self.num_units, self.num_units), dtype,
                                     init.glorot_uniform())
        self.bias = self._variable("bias", (self.num_units,), dtype, init.zeros())

    def call(self, inputs, state):
        h = self.activation(_linear([inputs, state], self.kernel, self.bias))
        return h, h


class BasicLSTMCell(RNNCell):
    """The LSTM of Zaremba et al., without peepholes or projection (tf.nn.rnn_cell.BasicLSTMCell)."""

    default_name = "basic_lstm_cell"

    def __init__(self, num_units: int, forget_bias: float = 1.0, state_is_tuple: bool = True,
                 activation: Optional[Callable] = None, reuse=None, name=None, dtype=None):
        super().__init__(name, dtype)
        if not state_is_tuple:
            raise ValueError(f"{type(self).__name__} at {user_location()}: state_is_tuple=False (TF1's deprecated "
                             "concatenated state) is not supported; the state is an LSTMStateTuple")
        self.num_units = int(num_units)
        self.forget_bias = float(forget_bias)
        self.activation = activation or ew.tanh

    state_size = property(lambda self: LSTMStateTuple(self.num_units, self.num_units))
    output_size = property(lambda self: self.num_units)

    def _make_variables(self, input_depth, dtype):
        self.kernel = self._variable("kernel", (input_depth + self.num_units, 4 * self.num_units), dtype,
                                     init.glorot_uniform())
        self.bias = self._variable("bias", (4 * self.num_units,), dtype, init.zeros())

    def call(self, inputs, state):
        c, h = state
        i, j, f, o = sh.split(_linear([inputs, h], self.kernel, self.bias), 4, axis=1)
        new_c = c * ew.sigmoid(f + self.forget_bias) + ew.sigmoid(i) * self.activation(j)
        new_h = self.activation(new_c) * ew.sigmoid(o)
        return new_h, LSTMStateTuple(new_c, new_h)


class LSTMCell(RNNCell):
    """The LSTM with optional peepholes, cell clipping and a projection (tf.nn.rnn_cell.LSTMCell)."""

    default_name = "lstm_cell"

    def __init__(self, num_units: int, use_peepholes: bool = False, cell_clip: Optional[float] = None,
                 initializer=None, num_proj: Optional[int] = None, proj_clip: Optional[float] = None,
                 num_unit_shards=None, num_proj_shards=None, forget_bias: float = 1.0, state_is_tuple: bool = True,
                 activation: Optional[Callable] = None, reuse=None, name=None, dtype=None):
        super().__init__(name, dtype)
        if not state_is_tuple:
            raise ValueError(f"LSTMCell at {user_location()}: state_is_tuple=False (TF1's deprecated concatenated "
                             "state) is not supported; the state is an LSTMStateTuple")
        self.num_units = int(num_units)
        self.use_peepholes = bool(use_peepholes)
        self.cell_clip, self.proj_clip = cell_clip, proj_clip
        self.initializer = initializer
        self.num_proj = int(num_proj) if num_proj is not None else None
        self.forget_bias = float(forget_bias)
        self.activation = activation or ew.tanh

    state_size = property(lambda self: LSTMStateTuple(self.num_units, self.num_proj or self.num_units))
    output_size = property(lambda self: self.num_proj or self.num_units)

    def _make_variables(self, input_depth, dtype):
        hidden = self.num_proj or self.num_units
        self.kernel = self._variable("kernel", (input_depth + hidden, 4 * self.num_units), dtype,
                                     _kernel_init(self.initializer))
        self.bias = self._variable("bias", (4 * self.num_units,), dtype, init.zeros())
        if self.use_peepholes:
            self.w_f_diag = self._variable("w_f_diag", (self.num_units,), dtype, _kernel_init(self.initializer))
            self.w_i_diag = self._variable("w_i_diag", (self.num_units,), dtype, _kernel_init(self.initializer))
            self.w_o_diag = self._variable("w_o_diag", (self.num_units,), dtype, _kernel_init(self.initializer))
        if self.num_proj is not None:
            with name_scope("projection"):
                self.proj_kernel = self._variable("kernel", (self.num_units, self.num_proj), dtype,
                                                  _kernel_init(self.initializer))

    def call(self, inputs, state):
        c_prev, m_prev = state
        i, j, f, o = sh.split(_linear([inputs, m_prev], self.kernel, self.bias), 4, axis=1)
        if self.use_peepholes:
            c = (ew.sigmoid(f + self.forget_bias + self.w_f_diag * c_prev) * c_prev
                 + ew.sigmoid(i + self.w_i_diag * c_prev) * self.activation(j))
        else:
            c = ew.sigmoid(f + self.forget_bias) * c_prev + ew.sigmoid(i) * self.activation(j)
        if self.cell_clip is not None:
            c = ew.clip_by_value(c, -self.cell_clip, self.cell_clip)
        m = (ew.sigmoid(o + self.w_o_diag * c) if self.use_peepholes else ew.sigmoid(o)) * self.activation(c)
        if self.num_proj is not None:
            m = matmul(m, self.proj_kernel)
            if self.proj_clip is not None:
                m = ew.clip_by_value(m, -self.proj_clip, self.proj_clip)
        return m, LSTMStateTuple(c, m)


class GRUCell(RNNCell):
    """The GRU of Cho et al. (tf.nn.rnn_cell.GRUCell)."""

    default_name = "gru_cell"

    def __init__(self, num_units: int, activation: Optional[Callable] = None, reuse=None, kernel_initializer=None,
                 bias_initializer=None, name=None, dtype=None):
        super().__init__(name, dtype)
        self.num_units = int(num_units)
        self.activation = activation or ew.tanh
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer

    state_size = property(lambda self: self.num_units)
    output_size = property(lambda self: self.num_units)

    def _make_variables(self, input_depth, dtype):
        n = self.num_units
        with name_scope("gates"):
            self.gate_kernel = self._variable("kernel", (input_depth + n, 2 * n), dtype,
                                              _kernel_init(self.kernel_initializer))
            self.gate_bias = self._variable("bias", (2 * n,), dtype, self.bias_initializer or init.constant(1.0))
        with name_scope("candidate"):
            self.candidate_kernel = self._variable("kernel", (input_depth + n, n), dtype,
                                                   _kernel_init(self.kernel_initializer))
            self.candidate_bias = self._variable("bias", (n,), dtype, self.bias_initializer or init.zeros())

    def call(self, inputs, state):
        r, u = sh.split(ew.sigmoid(_linear([inputs, state], self.gate_kernel, self.gate_bias)), 2, axis=1)
        c = self.activation(_linear([inputs, r * state], self.candidate_kernel, self.candidate_bias))
        new_h = u * state + (1.0 - u) * c
        return new_h, new_h


class MultiRNNCell(RNNCell):
    """Cells stacked: each one's output is the next one's input; the state is a tuple of theirs."""

    default_name = "multi_rnn_cell"

    def __init__(self, cells, state_is_tuple: bool = True):
        super().__init__(None, None)
        if not cells:
            raise ValueError(f"MultiRNNCell at {user_location()}: needs at least one cell")
        if not state_is_tuple:
            raise ValueError(f"MultiRNNCell at {user_location()}: state_is_tuple=False is not supported")
        self.cells = list(cells)

    state_size = property(lambda self: tuple(c.state_size for c in self.cells))
    output_size = property(lambda self: self.cells[-1].output_size)

    def _make_variables(self, input_depth, dtype):
        depth = input_depth
        for k, cell in enumerate(self.cells):
            with name_scope(f"cell_{k}"):
                cell.build(depth, dtype)
            self.variables.extend(cell.variables)
            depth = _depth(cell.output_size)

    def call(self, inputs, state):
        x, states = inputs, []
        for k, (cell, s) in enumerate(zip(self.cells, state)):
            with name_scope(f"cell_{k}"):
                x, new = cell(x, s)
            states.append(new)
        return x, tuple(states)


class DropoutWrapper(RNNCell):
    """Dropout on a cell's inputs, outputs and new state (TF1's ``DropoutWrapper``).

    The arguments are *keep* probabilities, as in TF1: Python floats or scalar tensors (feed
    1.0 at evaluation); a Python 1.0 switches that dropout off. A kept value is scaled by
    1/keep. The state dropout drops the ``h`` of an ``LSTMStateTuple`` and all of any other
    state (TF1's default filter). With ``variational_recurrent=True`` one mask serves every
    step of a sequence.

    Inside ``dynamic_rnn`` the noise of every step is drawn before the loop
    (``draw_sequence_noise``) and each step reads its row: a loop body may not draw random
    numbers, and the gradient loop must see the forward pass's masks. Called outside a loop
    (``static_rnn``, by hand) it draws its noise per call."""

    KINDS = ("input", "output", "state")

    def __init__(self, cell, input_keep_prob=1.0, output_keep_prob=1.0, state_keep_prob=1.0,
                 variational_recurrent: bool = False, input_size=None, dtype=None, seed=None,
                 dropout_state_filter_visitor=None):
        super().__init__(None, dtype)
        if not isinstance(cell, RNNCell):
            raise TypeError(f"DropoutWrapper at {user_location()}: cell must be an RNNCell, got {cell!r}")
        if dropout_state_filter_visitor is not None:
            raise ValueError(f"DropoutWrapper at {user_location()}: dropout_state_filter_visitor is not supported "
                             "(the state dropout drops an LSTMStateTuple's h and all of any other state)")
        self.cell = cell
        self.keep = {"input": input_keep_prob, "output": output_keep_prob, "state": state_keep_prob}
        for kind, keep in self.keep.items():
            if isinstance(keep, (int, float)) and not 0 < float(keep) <= 1:
                raise ValueError(f"DropoutWrapper at {user_location()}: {kind}_keep_prob must be in (0, 1], got {keep}")
        self.variational = bool(variational_recurrent)
        self.seed = seed
        self.input_depth: Optional[int] = None
        self.noise: Optional[dict] = None  # kind -> [steps, batch, size] draws (or [batch, size]): dynamic_rnn
        self.step = None                   # the loop's time index while dynamic_rnn traces its body

    state_size = property(lambda self: self.cell.state_size)
    output_size = property(lambda self: self.cell.output_size)

    def zero_state(self, batch_size, dtype):
        return self.cell.zero_state(batch_size, dtype)

    def build(self, input_depth: int, dtype) -> None:
        self.cell.build(input_depth, dtype)
        self.input_depth = int(input_depth)
        self.variables = self.cell.variables
        self.built = True

    def _active(self, kind: str) -> bool:
        keep = self.keep[kind]
        return not (isinstance(keep, (int, float)) and float(keep) == 1.0)

    def _state_sizes(self) -> list:
        """Per state leaf: its size, or None when the state dropout leaves it alone."""
        size = self.cell.state_size
        if isinstance(size, LSTMStateTuple):
            return [None, _depth(size.h)]
        leaves = size if isinstance(size, tuple) else (size,)
        return [_depth(s) for s in leaves]

    def draw_sequence_noise(self, steps, batch, dtype) -> None:
        """Draw the uniform noise of ``steps`` steps before a loop (see the class docstring)."""
        from ..ops.random import random_uniform
        sizes = {"input": [self.input_depth], "output": [_depth(self.output_size)], "state": self._state_sizes()}
        self.noise = {}
        for kind in self.KINDS:
            if self._active(kind):
                shape = [batch] if self.variational else [steps, batch]
                self.noise[kind] = [None if n is None else random_uniform(shape + [n], dtype=dtype, seed=self.seed,
                                                                           name=f"{kind}_dropout_noise")
                                    for n in sizes[kind]]

    def _drop(self, kind: str, k: int, x):
        keep = self.keep[kind]
        if self.noise is not None:
            u = self.noise[kind][k]
            if u is None:
                return x
            if not self.variational:
                u = sh.gather(u, self.step)
        else:
            from ..ops.random import random_uniform_like
            u = random_uniform_like(x, seed=self.seed)
        keep = convert_to_tensor(keep, dtype=x.dtype) if not isinstance(keep, (int, float)) else float(keep)
        return ew.multiply(x, ew.where(ew.less(u, keep), ew.divide(1.0, keep), 0.0))

    def __call__(self, inputs, state, scope=None):
        x = self._built_for(inputs)
        if self._active("input"):
            x = self._drop("input", 0, x)
        output, new_state = self.cell(x, state)
        if self._active("output"):
            output = self._drop("output", 0, output)
        if self._active("state"):
            if isinstance(new_state, LSTMStateTuple):
                new_state = LSTMStateTuple(new_state.c, self._drop("state", 1, new_state.h))
            elif isinstance(new_state, tuple):
                new_state = tuple(self._drop("state", k, s) for k, s in enumerate(new_state))
            else:
                new_state = self._drop("state", 0, new_state)
        return output, new_state


def dropout_wrappers(cell) -> list:
    """Every DropoutWrapper in ``cell`` (wrapped or stacked ones too)."""
    if isinstance(cell, DropoutWrapper):
        return [cell] + dropout_wrappers(cell.cell)
    if isinstance(cell, MultiRNNCell):
        return [w for c in cell.cells for w in dropout_wrappers(c)]
    return []


def _depth(size) -> int:
    return int(size) if not isinstance(size, tuple) else int(size[-1])


__all__ = ["RNNCell", "BasicRNNCell", "BasicLSTMCell", "LSTMCell", "GRUCell", "MultiRNNCell", "DropoutWrapper",
           "LSTMStateTuple"]

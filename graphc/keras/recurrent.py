"""``SimpleRNN``, ``LSTM`` and ``GRU``: Keras 2's recurrent layers, run as one loop over the
time steps (``gc.nn.dynamic_rnn``, a ``scan``), never a Python call per step.

Their weights are Keras's, in Keras's layout and order (``kernel`` for the inputs,
``recurrent_kernel`` for the state, ``bias``; the gates side by side in Keras's order: LSTM
i, f, c, o and GRU z, r, h), so weights trained by Keras load as they are. The defaults are
tf.keras's in TF 1.x: ``recurrent_activation='hard_sigmoid'``, ``unit_forget_bias=True`` and,
for GRU, ``reset_after=False``.
"""
from __future__ import annotations

from ..errors import ShapeError
from ..graph import user_location
from ..nn.rnn import dynamic_rnn
from ..nn.rnn_cell import RNNCell
from ..ops import shape as sh
from ..ops.linalg import matmul
from ..ops.source import convert_to_tensor
from . import activations, initializers, regularizers
from .engine import InputSpec, to_list
from .weighted import WeightedLayer


class _KerasCell(RNNCell):
    """A cell whose weights the layer made (outside the loop, as bodies require)."""

    def __init__(self, layer):
        super().__init__(name=layer.name)
        self.layer = layer
        self.built = True

    def build(self, input_depth, dtype):
        pass

    def __call__(self, inputs, state, scope=None):
        return self.call(convert_to_tensor(inputs), state)

    @property
    def output_size(self):
        return self.layer.units

    @property
    def state_size(self):
        return self.layer.units if self.layer.gates != 4 else (self.layer.units, self.layer.units)

    def call(self, inputs, state):
        return self.layer._step(inputs, state)


class _RNN(WeightedLayer):
    gates = 1

    def __init__(self, units: int, activation="tanh", recurrent_activation="hard_sigmoid", use_bias: bool = True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False,
                 unroll: bool = False, **kwargs):
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint, **kwargs)
        name = type(self).__name__
        if dropout or recurrent_dropout:
            raise ValueError(f"{name} at {user_location()}: dropout and recurrent_dropout inside the layer are not in "
                             "graphc's Keras; put a Dropout layer before or after it")
        if stateful:
            raise ValueError(f"{name} at {user_location()}: stateful RNN layers are not in graphc's Keras")
        if recurrent_constraint is not None:
            raise ValueError(f"{name} at {user_location()}: weight constraints are not in graphc's Keras")
        self.units = int(units)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.unroll = bool(go_backwards), bool(unroll)
        self.input_spec = InputSpec(ndim=3)

    def _bias_shape(self) -> tuple:
        return (self.gates * self.units,)

    def _bias_initial(self):
        return self.bias_initializer

    def build(self, input_shape):
        if isinstance(input_shape, list):  # the sequence, then initial states
            input_shape = input_shape[0]
        if input_shape[-1] is None:
            raise ShapeError(f"{self._what()} at {user_location()}: the feature dim of the input must be known, got "
                             f"{input_shape}")
        features, width = int(input_shape[-1]), self.gates * self.units
        self.kernel = self.add_weight("kernel", (features, width), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, width),
                                                initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer)
        self.bias = self.add_weight("bias", self._bias_shape(), initializer=self._bias_initial(),
                                    regularizer=self.bias_regularizer) if self.use_bias else None
        self.input_spec = InputSpec(ndim=3, axes={-1: features})

    def _gate(self, z, k: int):
        return z[:, k * self.units:(k + 1) * self.units]

    def __call__(self, inputs, initial_state=None, training=None, **kwargs):
        """``layer(x)``, or ``layer(x, initial_state=[h])`` (``[h, c]`` for LSTM, as Keras):
        the states are more inputs of the call, so a model records and saves them."""
        if initial_state is not None:
            inputs = [inputs] + to_list(initial_state)
        return super().__call__(inputs, training=training, **kwargs)

    def _check_inputs(self, inputs, where):
        super()._check_inputs(inputs[:1], where)
        expected = 2 if self.gates == 4 else 1
        if len(inputs) > 1 and len(inputs) - 1 != expected:
            raise ValueError(f"{self._what()} at {where}: initial_state takes {expected} tensor(s) "
                             f"({'[h, c]' if expected == 2 else '[h]'}), got {len(inputs) - 1}")

    def call(self, inputs):
        states = None
        if isinstance(inputs, (list, tuple)):
            inputs, states = inputs[0], list(inputs[1:])
        x = sh.reverse(inputs, [1]) if self.go_backwards else inputs
        initial = None
        if states:  # Keras orders LSTM states [h, c]; the loop carries (c, h)
            initial = (states[1], states[0]) if self.gates == 4 else states[0]
        outputs, state = dynamic_rnn(_KerasCell(self), x, initial_state=initial, dtype=x.dtype, scope=None)
        last = outputs[:, -1, :] if outputs.shape[1] != 0 else (state[1] if self.gates == 4 else state)
        y = outputs if self.return_sequences else last
        if self.activity_regularizer is not None:
            self.add_loss(self.activity_regularizer(y))
        if not self.return_state:
            return y
        states = [state[1], state[0]] if self.gates == 4 else [state]  # Keras returns [h, c]
        return [y] + states

    def get_config(self):
        return dict(super().get_config(), units=self.units, **self._weight_config(),
                    recurrent_initializer=initializers.serialize(self.recurrent_initializer),
                    recurrent_regularizer=regularizers.serialize(self.recurrent_regularizer),
                    return_sequences=self.return_sequences, return_state=self.return_state,
                    go_backwards=self.go_backwards, unroll=self.unroll)


class SimpleRNN(_RNN):
    """``h = activation(x @ kernel + h @ recurrent_kernel + bias)``; params
    ``units * (units + features + 1)``."""

    def __init__(self, units: int, activation="tanh", **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=None, **kwargs)

    def _step(self, x, h):
        z = matmul(x, self.kernel.value()) + matmul(h, self.recurrent_kernel.value())
        if self.bias is not None:
            z = z + self.bias.value()
        h = self.activation(z)
        return h, h


class LSTM(_RNN):
    """Keras's LSTM: gates i, f, c, o; ``c = f*c + i*activation(z_c)``, ``h = o*activation(c)``;
    params ``4 * units * (units + features + 1)``. State (as the loop carries it) is (c, h)."""

    gates = 4

    def __init__(self, units: int, activation="tanh", recurrent_activation="hard_sigmoid",
                 unit_forget_bias: bool = True, implementation: int = 1, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.implementation = int(implementation)

    def _bias_initial(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, base = self.units, self.bias_initializer

        def forget_ones(shape, dtype=None):  # Keras: the forget gate's bias starts at 1
            from ..ops.shape import concat
            from ..ops.source import ones
            return concat([base((units,), dtype), ones((units,), dtype), base((2 * units,), dtype)], 0)
        return forget_ones

    def _step(self, x, state):
        c, h = state
        z = matmul(x, self.kernel.value()) + matmul(h, self.recurrent_kernel.value())
        if self.bias is not None:
            z = z + self.bias.value()
        i, f = self.recurrent_activation(self._gate(z, 0)), self.recurrent_activation(self._gate(z, 1))
        c = f * c + i * self.activation(self._gate(z, 2))
        o = self.recurrent_activation(self._gate(z, 3))
        h = o * self.activation(c)
        return h, (c, h)

    def get_config(self):
        return dict(super().get_config(), recurrent_activation=activations.serialize(self.recurrent_activation),
                    unit_forget_bias=self.unit_forget_bias, implementation=self.implementation)


class GRU(_RNN):
    """Keras's GRU: gates z, r, h; ``h = z*h + (1-z)*hh``. With ``reset_after=False`` (TF 1.x's
    default) ``hh = activation(x W_h + (r*h) U_h + b_h)`` and params ``3 * units * (units +
    features + 1)``; with ``reset_after=True`` (CuDNN's) the reset multiplies ``h U_h + b'_h``
    and the bias is (2, 3*units)."""

    gates = 3

    def __init__(self, units: int, activation="tanh", recurrent_activation="hard_sigmoid",
                 reset_after: bool = False, implementation: int = 1, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, **kwargs)
        self.reset_after = bool(reset_after)
        self.implementation = int(implementation)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _step(self, x, h):
        recurrent_kernel = self.recurrent_kernel.value()
        xw = matmul(x, self.kernel.value())
        hu = matmul(h, recurrent_kernel)
        if self.bias is not None:
            bias = self.bias.value()
            if self.reset_after:
                xw, hu = xw + bias[0], hu + bias[1]
            else:
                xw = xw + bias
        z = self.recurrent_activation(self._gate(xw, 0) + self._gate(hu, 0))
        r = self.recurrent_activation(self._gate(xw, 1) + self._gate(hu, 1))
        if self.reset_after:
            hh = self.activation(self._gate(xw, 2) + r * self._gate(hu, 2))
        else:
            u_h = recurrent_kernel[:, 2 * self.units:]
            hh = self.activation(self._gate(xw, 2) + matmul(r * h, u_h))
        h = z * h + (1.0 - z) * hh
        return h, h

    def get_config(self):
        return dict(super().get_config(), recurrent_activation=activations.serialize(self.recurrent_activation),
                    reset_after=self.reset_after, implementation=self.implementation)

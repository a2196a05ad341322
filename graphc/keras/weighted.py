"""``WeightedLayer``: the weight arguments that Dense, the convolutions and the recurrent
layers share (activation, use_bias, initializers, regularizers), how they finish an output
(bias, activation, activity regularizer), and their config."""
from __future__ import annotations

from ..graph import user_location
from ..ops import nn as nn_ops
from . import activations, initializers, regularizers
from .engine import Layer


class WeightedLayer(Layer):
    """The weight arguments that Dense and the convolutions share."""

    def __init__(self, activation=None, use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if kernel_constraint is not None or bias_constraint is not None:
            raise ValueError(f"{type(self).__name__} at {user_location()}: weight constraints are not in graphc's Keras")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)

    def _finish(self, y, data_format: str = "NHWC"):
        if self.use_bias:
            y = nn_ops.bias_add(y, self.bias.value(), data_format=data_format)
        if self.activation is not None:
            y = self.activation(y)
        if self.activity_regularizer is not None:
            self.add_loss(self.activity_regularizer(y))
        return y

    def _weight_config(self) -> dict:
        return {"activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer)}

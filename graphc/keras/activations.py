"""``keras.activations``: Keras 2's activation functions on graphc tensors.

``softmax`` is graphc's own softmax op (not exp/sum built by hand), so that
``keras.losses.categorical_crossentropy`` can recognize a softmax output and compute the loss
from its logits with the fused, overflow-free op, as Keras's TensorFlow backend does.
"""
from __future__ import annotations

from ..graph import user_location
from ..ops import elementwise as ew
from ..ops import nn as nn_ops
from ..ops.source import convert_to_tensor
from .lookup import resolve

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def softmax(x, axis=-1):
    """Softmax along ``axis``. Like Keras, a 1-D input is refused: a softmax over the batch
    axis is almost always a forgotten feature axis."""
    x = convert_to_tensor(x)
    if x.ndim == 1:
        raise ValueError(f"keras.activations.softmax at {user_location()}: expected a tensor of rank >= 2 "
                         f"(batch, ..., classes), got '{x.name}' of shape {tuple(x.shape)}")
    return nn_ops.softmax(x, axis=axis)


def elu(x, alpha=1.0):
    return nn_ops.elu(convert_to_tensor(x), alpha=alpha)


def selu(x):
    """scale * elu(x, alpha) with the constants of Klambauer et al. (2017)."""
    return ew.multiply(nn_ops.elu(convert_to_tensor(x), alpha=_SELU_ALPHA), _SELU_SCALE)


def softplus(x):
    return nn_ops.softplus(convert_to_tensor(x))


def softsign(x):
    return nn_ops.softsign(convert_to_tensor(x))


def relu(x, alpha=0., max_value=None):
    """max(x, 0), capped at ``max_value`` when given; below zero ``alpha * x`` (a leaky relu)."""
    x = convert_to_tensor(x)
    negative_part = nn_ops.relu(ew.negative(x)) if alpha != 0 else None
    out = nn_ops.relu(x)
    if max_value is not None:
        out = ew.clip_by_value(out, 0.0, float(max_value))
    if negative_part is not None:
        out = ew.subtract(out, ew.multiply(negative_part, float(alpha)))
    return out


def tanh(x):
    return ew.tanh(convert_to_tensor(x))


def sigmoid(x):
    """graphc's sigmoid op, which binary_crossentropy recognizes to use the logits."""
    return ew.sigmoid(convert_to_tensor(x))


def hard_sigmoid(x):
    """Keras's piecewise-linear sigmoid: clip(0.2 * x + 0.5, 0, 1)."""
    return ew.clip_by_value(ew.add(ew.multiply(convert_to_tensor(x), 0.2), 0.5), 0.0, 1.0)


def exponential(x):
    return ew.exp(convert_to_tensor(x))


def linear(x):
    return x


_BY_NAME = {f.__name__: f for f in (softmax, elu, selu, softplus, softsign, relu, tanh, sigmoid, hard_sigmoid,
                                    exponential, linear)}


def serialize(activation) -> str:
    return activation.__name__


def deserialize(name: str):
    return get(name)


def get(identifier):
    """None -> linear; a name -> that activation; a callable passes through."""
    return resolve("activation", identifier, _BY_NAME, none=linear)
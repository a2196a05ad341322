"""``keras.layers``: Keras 2's layers on graphc ops. Each takes Keras's arguments, makes its
weights in ``build`` (named ``<layer>/kernel``, ``<layer>/bias``, as Keras names them, in the
order Keras lists them, so ``get_weights`` lines up with Keras), and says in ``get_config``
how to make it again."""
from __future__ import annotations

import numbers

import numpy as np

from .. import dtypes as dt
from ..errors import ShapeError
from ..graph import user_location
from ..layers import _nhwc, _back
from ..ops import elementwise as ew
from ..ops import nn as nn_ops
from ..ops import reduce as rd
from ..ops import shape as sh
from ..ops.embedding import embedding_lookup
from ..ops.linalg import matmul
from ..ops.source import shape as shape_of
from ..ops.state import assign_sub
from . import activations, backend as K, initializers, regularizers
from .engine import InputLayer, InputSpec, Layer  # noqa: F401  (InputLayer is keras.layers.InputLayer)
from .weighted import WeightedLayer

__all__ = ["Layer", "InputLayer", "InputSpec", "Dense", "Activation", "Dropout", "Flatten", "Reshape", "Permute",
           "RepeatVector", "Lambda", "Conv1D", "Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D",
           "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling2D",
           "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "BatchNormalization", "Embedding",
           "SimpleRNN", "LSTM", "GRU", "Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum",
           "Minimum", "concatenate", "add", "subtract", "multiply", "average", "maximum", "minimum", "ZeroPadding2D",
           "LeakyReLU", "ReLU", "Softmax", "ELU"]


def _tuple(value, n: int, what: str, layer: str) -> tuple:
    if isinstance(value, numbers.Integral):
        return (int(value),) * n
    v = tuple(int(d) for d in value)
    if len(v) != n:
        raise ValueError(f"{layer} at {user_location()}: {what} must be an int or a tuple of {n}, got {value!r}")
    return v


def _data_format(value, layer: str) -> str:
    value = value or K.image_data_format()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(f"{layer} at {user_location()}: data_format must be 'channels_last' or 'channels_first', "
                         f"got {value!r}")
    return value


def _padding(value, layer: str) -> str:
    value = str(value).lower()
    if value not in ("valid", "same"):
        raise ValueError(f"{layer} at {user_location()}: padding must be 'valid' or 'same', got {value!r}")
    return value


def _known(layer: Layer, size, what: str, input_shape) -> int:
    if size is None:
        raise ShapeError(f"{layer._what()} at {user_location()}: {what} of the input must be known, got shape "
                         f"{input_shape}")
    return int(size)


def _conv_length(size, kernel, padding, stride, dilation=1):
    if size is None:
        return None
    effective = kernel + (kernel - 1) * (dilation - 1)
    size = size - effective + 1 if padding == "valid" else size
    return (size + stride - 1) // stride


class Dense(WeightedLayer):
    """``activation(inputs @ kernel + bias)`` over the last axis; params ``(in + 1) * units``."""

    def __init__(self, units: int, activation=None, use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint, **kwargs)
        self.units = int(units)
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        features = _known(self, input_shape[-1], "the last dim", input_shape)
        self.kernel = self.add_weight("kernel", (features, self.units), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.units,), initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer) if self.use_bias else None
        self.input_spec = InputSpec(min_ndim=2, axes={-1: features})

    def call(self, inputs):
        x = inputs
        if x.ndim > 2:  # Keras applies the kernel to the last axis of any rank
            lead = shape_of(x)[:-1]
            y = sh.reshape(matmul(sh.reshape(x, (-1, x.shape[-1])), self.kernel.value()),
                           sh.concat([lead, [self.units]], 0))
            y = sh.ensure_shape(y, tuple(x.shape[:-1]) + (self.units,)) if hasattr(sh, "ensure_shape") else y
        else:
            y = matmul(x, self.kernel.value())
        return self._finish(y)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return dict(super().get_config(), units=self.units, **self._weight_config())


class Activation(Layer):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return dict(super().get_config(), activation=activations.serialize(self.activation))


class Dropout(Layer):
    """Drops ``rate`` of the inputs during ``fit`` only (scaling the rest by 1/(1-rate));
    inference passes them through."""

    uses_training = True

    def __init__(self, rate: float, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout at {user_location()}: rate must be in [0, 1), got {rate!r}")
        self.rate, self.noise_shape, self.seed = float(rate), noise_shape, seed

    def call(self, inputs, training=False):
        if training is False or self.rate == 0.0:
            return inputs
        # a None in noise_shape is the input's size on that axis (the op fills it, as Keras)
        return nn_ops.dropout(inputs, rate=self.rate, noise_shape=self.noise_shape, seed=self.seed,
                              training=training)

    def get_config(self):
        return dict(super().get_config(), rate=self.rate, noise_shape=self.noise_shape, seed=self.seed)


class Flatten(Layer):
    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _data_format(data_format, "Flatten")
        self.input_spec = InputSpec(min_ndim=2)

    def call(self, inputs):
        x = inputs
        if self.data_format == "channels_first" and x.ndim > 2:
            x = sh.transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))
        rest = tuple(x.shape[1:])
        if None in rest:
            raise ShapeError(f"{self._what()} at {user_location()}: all dims but the batch must be known, got "
                             f"{x.shape}")
        return sh.reshape(x, (-1, int(np.prod(rest)) if rest else 1))

    def get_config(self):
        return dict(super().get_config(), data_format=self.data_format)


class Reshape(Layer):
    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def call(self, inputs):
        x = inputs
        known = tuple(x.shape[1:])
        target = list(self.target_shape)
        if None not in known:
            total = int(np.prod(known)) if known else 1
            if -1 in target:
                rest = int(np.prod([d for d in target if d != -1])) if len(target) > 1 else 1
                if rest == 0 or total % rest:
                    raise ShapeError(f"{self._what()} at {user_location()}: cannot reshape {x.shape} to (batch,) + "
                                     f"{self.target_shape}")
                target[target.index(-1)] = total // rest  # the batch keeps the one -1 the op allows
            elif int(np.prod(target)) != total:
                raise ShapeError(f"{self._what()} at {user_location()}: cannot reshape {x.shape} ({total} values per "
                                 f"sample) to (batch,) + {self.target_shape} ({int(np.prod(target))} values)")
        return sh.reshape(x, [-1] + target)

    def get_config(self):
        return dict(super().get_config(), target_shape=list(self.target_shape))


class Permute(Layer):
    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)

    def call(self, inputs):
        return sh.transpose(inputs, (0,) + self.dims)

    def get_config(self):
        return dict(super().get_config(), dims=list(self.dims))


class RepeatVector(Layer):
    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)
        self.input_spec = InputSpec(ndim=2)

    def call(self, inputs):
        return sh.tile(sh.expand_dims(inputs, 1), [1, self.n, 1])

    def get_config(self):
        return dict(super().get_config(), n=self.n)


class Lambda(Layer):
    """A function of graphc ops as a layer. A model with one cannot be loaded without the
    function (pass it in ``custom_objects``)."""

    def __init__(self, function, output_shape=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        self.function, self.arguments = function, dict(arguments or {})

    def call(self, inputs):
        return self.function(inputs, **self.arguments)

    def get_config(self):
        return dict(super().get_config(), function=getattr(self.function, "__name__", "<lambda>"),
                    arguments=self.arguments)


# -- convolutions -----------------------------------------------------------------------------------
class _Conv(WeightedLayer):
    rank = 2

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 activation=None, use_bias: bool = True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint, **kwargs)
        name = type(self).__name__
        self.filters = int(filters)
        self.kernel_size = _tuple(kernel_size, self.rank, "kernel_size", name)
        self.strides = _tuple(strides, self.rank, "strides", name)
        self.padding = _padding(padding, name)
        self.data_format = _data_format(data_format, name)
        self.dilation_rate = _tuple(dilation_rate, self.rank, "dilation_rate", name)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _channel_axis(self) -> int:
        return 1 if self.data_format == "channels_first" else -1

    def _kernel_shape(self, channels: int) -> tuple:
        return self.kernel_size + (channels, self.filters)

    def build(self, input_shape):
        channels = _known(self, input_shape[self._channel_axis()], "the channel dim", input_shape)
        self.kernel = self.add_weight("kernel", self._kernel_shape(channels), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.filters,), initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer) if self.use_bias else None
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self._channel_axis(): channels})

    def get_config(self):
        return dict(super().get_config(), filters=self.filters, kernel_size=list(self.kernel_size),
                    strides=list(self.strides), padding=self.padding, data_format=self.data_format,
                    dilation_rate=list(self.dilation_rate), **self._weight_config())


class Conv2D(_Conv):
    """A 2-D convolution with an HWIO kernel; params ``kh*kw*in*filters + filters``.
    ``channels_first`` runs graphc's NCHW convolution."""

    def call(self, inputs):
        fmt = "NCHW" if self.data_format == "channels_first" else "NHWC"
        y = nn_ops.conv2d(inputs, self.kernel.value(), strides=self.strides, padding=self.padding.upper(),
                          data_format=fmt, dilations=self.dilation_rate)
        return self._finish(y, fmt)


class Conv1D(_Conv):
    rank = 1

    def call(self, inputs):
        fmt = "NCW" if self.data_format == "channels_first" else "NWC"
        y = nn_ops.conv1d(inputs, self.kernel.value(), self.strides[0], self.padding.upper(), data_format=fmt,
                          dilations=self.dilation_rate[0])
        return self._finish(y, "NCHW" if fmt == "NCW" else "NHWC")


class Conv2DTranspose(_Conv):
    """The transpose of Conv2D: the output grows by ``strides``. Its kernel is (kh, kw,
    filters, in), as Keras's."""

    def _kernel_shape(self, channels: int) -> tuple:
        return self.kernel_size + (self.filters, channels)

    def call(self, inputs):
        first = self.data_format == "channels_first"
        x = _nhwc(inputs, first)
        (kh, kw), (sy, sx) = self.kernel_size, self.strides
        if self.dilation_rate != (1, 1):
            raise ValueError(f"{self._what()} at {user_location()}: dilation_rate is not supported for Conv2DTranspose")

        def grown(size, k, s):
            if size is None:
                return None
            return size * s if self.padding == "same" else size * s + max(k - s, 0)
        h, w = grown(x.shape[1], kh, sy), grown(x.shape[2], kw, sx)
        if h is None or w is None:
            raise ShapeError(f"{self._what()} at {user_location()}: the height and width of the input must be known, "
                             f"got {inputs.shape}")
        batch = shape_of(x)[0] if x.shape[0] is None else x.shape[0]
        y = nn_ops.conv2d_transpose(x, self.kernel.value(), [batch, h, w, self.filters], strides=(sy, sx),
                                    padding=self.padding.upper())
        return _back(self._finish(y), first)


class DepthwiseConv2D(_Conv):
    """Each input channel convolved with its own ``depth_multiplier`` filters; params
    ``kh*kw*in*depth_multiplier (+ in*depth_multiplier)``."""

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier: int = 1, data_format=None,
                 activation=None, use_bias: bool = True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(1, kernel_size, strides, padding, data_format, 1, activation, use_bias,
                         depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)
        self.depth_multiplier = int(depth_multiplier)

    def build(self, input_shape):
        channels = _known(self, input_shape[self._channel_axis()], "the channel dim", input_shape)
        self.filters = channels * self.depth_multiplier
        self.depthwise_kernel = self.add_weight("depthwise_kernel", self.kernel_size + (channels,
                                                                                        self.depth_multiplier),
                                                initializer=self.kernel_initializer,
                                                regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.filters,), initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer) if self.use_bias else None
        self.input_spec = InputSpec(ndim=4, axes={self._channel_axis(): channels})

    def call(self, inputs):
        fmt = "NCHW" if self.data_format == "channels_first" else "NHWC"
        y = nn_ops.depthwise_conv2d(inputs, self.depthwise_kernel.value(), strides=(1,) + self.strides + (1,)
                                    if fmt == "NHWC" else (1, 1) + self.strides, padding=self.padding.upper(),
                                    data_format=fmt)
        return self._finish(y, fmt)

    def get_config(self):
        config = super().get_config()
        for key in ("filters", "dilation_rate"):
            config.pop(key)
        config["depthwise_initializer"] = config.pop("kernel_initializer")
        config["depthwise_regularizer"] = config.pop("kernel_regularizer")
        return dict(config, depth_multiplier=self.depth_multiplier)


class SeparableConv2D(_Conv):
    def __init__(self, filters: int, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 depth_multiplier: int = 1, activation=None, use_bias: bool = True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         depthwise_initializer, bias_initializer, **kwargs)
        self.depth_multiplier = int(depth_multiplier)
        self.pointwise_initializer = initializers.get(pointwise_initializer)

    def build(self, input_shape):
        channels = _known(self, input_shape[self._channel_axis()], "the channel dim", input_shape)
        self.depthwise_kernel = self.add_weight("depthwise_kernel", self.kernel_size + (channels,
                                                                                        self.depth_multiplier),
                                                initializer=self.kernel_initializer)
        self.pointwise_kernel = self.add_weight("pointwise_kernel", (1, 1, channels * self.depth_multiplier,
                                                                     self.filters),
                                                initializer=self.pointwise_initializer)
        self.bias = self.add_weight("bias", (self.filters,), initializer=self.bias_initializer) \
            if self.use_bias else None
        self.input_spec = InputSpec(ndim=4, axes={self._channel_axis(): channels})

    def call(self, inputs):
        first = self.data_format == "channels_first"
        y = nn_ops.separable_conv2d(_nhwc(inputs, first), self.depthwise_kernel.value(),
                                    self.pointwise_kernel.value(), strides=self.strides,
                                    padding=self.padding.upper(), rate=self.dilation_rate)
        return _back(self._finish(y), first)

    def get_config(self):
        config = super().get_config()
        config["depthwise_initializer"] = config.pop("kernel_initializer")
        config.pop("kernel_regularizer")
        return dict(config, depth_multiplier=self.depth_multiplier,
                    pointwise_initializer=initializers.serialize(self.pointwise_initializer))


class ZeroPadding2D(Layer):
    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(padding, numbers.Integral):
            padding = ((padding, padding), (padding, padding))
        elif all(isinstance(p, numbers.Integral) for p in padding):
            padding = ((padding[0], padding[0]), (padding[1], padding[1]))
        self.padding = tuple(tuple(int(v) for v in p) for p in padding)
        self.data_format = _data_format(data_format, "ZeroPadding2D")
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs):
        spatial = [list(p) for p in self.padding]
        pads = [[0, 0], [0, 0]] + spatial if self.data_format == "channels_first" else [[0, 0]] + spatial + [[0, 0]]
        return sh.pad(inputs, pads)

    def get_config(self):
        return dict(super().get_config(), padding=[list(p) for p in self.padding], data_format=self.data_format)


# -- pooling ----------------------------------------------------------------------------------------
class _Pooling2D(Layer):
    _op = None

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.pool_size = _tuple(pool_size, 2, "pool_size", name)
        self.strides = self.pool_size if strides is None else _tuple(strides, 2, "strides", name)
        self.padding = _padding(padding, name)
        self.data_format = _data_format(data_format, name)
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs):
        first = self.data_format == "channels_first"
        pool = nn_ops.max_pool2d if self._op == "max" else nn_ops.avg_pool2d
        y = pool(_nhwc(inputs, first), (1,) + self.pool_size + (1,), (1,) + self.strides + (1,),
                 self.padding.upper())
        return _back(y, first)

    def get_config(self):
        return dict(super().get_config(), pool_size=list(self.pool_size), strides=list(self.strides),
                    padding=self.padding, data_format=self.data_format)


class MaxPooling2D(_Pooling2D):
    _op = "max"


class AveragePooling2D(_Pooling2D):
    _op = "avg"


class _Pooling1D(Layer):
    _op = None

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)
        self.strides = self.pool_size if strides is None else int(strides)
        self.padding = _padding(padding, type(self).__name__)
        self.data_format = _data_format(data_format, type(self).__name__)
        self.input_spec = InputSpec(ndim=3)

    def call(self, inputs):
        x = sh.transpose(inputs, (0, 2, 1)) if self.data_format == "channels_first" else inputs
        pool = nn_ops.max_pool2d if self._op == "max" else nn_ops.avg_pool2d
        y = sh.squeeze(pool(sh.expand_dims(x, 1), (1, 1, self.pool_size, 1), (1, 1, self.strides, 1),
                            self.padding.upper()), [1])
        return sh.transpose(y, (0, 2, 1)) if self.data_format == "channels_first" else y

    def get_config(self):
        return dict(super().get_config(), pool_size=self.pool_size, strides=self.strides, padding=self.padding,
                    data_format=self.data_format)


class MaxPooling1D(_Pooling1D):
    _op = "max"


class AveragePooling1D(_Pooling1D):
    _op = "avg"


class _GlobalPooling(Layer):
    _op, _rank = None, 2

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _data_format(data_format, type(self).__name__)
        self.input_spec = InputSpec(ndim=self._rank + 2)

    def call(self, inputs):
        axes = list(range(2, self._rank + 2)) if self.data_format == "channels_first" else \
            list(range(1, self._rank + 1))
        return (rd.reduce_max if self._op == "max" else rd.reduce_mean)(inputs, axes)

    def get_config(self):
        return dict(super().get_config(), data_format=self.data_format)


class GlobalAveragePooling2D(_GlobalPooling):
    _op = "avg"


class GlobalMaxPooling2D(_GlobalPooling):
    _op = "max"


class GlobalAveragePooling1D(_GlobalPooling):
    _op, _rank = "avg", 1


class GlobalMaxPooling1D(_GlobalPooling):
    _op, _rank = "max", 1


# -- normalization and embedding --------------------------------------------------------------------
class BatchNormalization(Layer):
    """Normalizes over every axis but ``axis``. During ``fit`` it uses the batch's statistics
    (the fused kernel where the layout allows) and moves ``moving_mean``/``moving_variance``
    toward them by ``1 - momentum``; in inference it uses the moving statistics. Weights in
    Keras's order: gamma, beta, moving_mean, moving_variance; params ``4 * channels``, of which
    ``2 * channels`` are not trainable."""

    uses_training = True

    def __init__(self, axis=-1, momentum: float = 0.99, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis if isinstance(axis, numbers.Integral) else list(axis)[0])
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def build(self, input_shape):
        rank = len(input_shape)
        if not -rank <= self.axis < rank:
            raise ShapeError(f"{self._what()} at {user_location()}: axis {self.axis} is out of range for inputs of "
                             f"shape {input_shape}")
        self._axis = self.axis % rank
        channels = _known(self, input_shape[self._axis], f"dim {self.axis} (the channels)", input_shape)
        shape = (channels,)
        self.gamma = self.add_weight("gamma", shape, initializer=self.gamma_initializer,
                                     regularizer=self.gamma_regularizer) if self.scale else None
        self.beta = self.add_weight("beta", shape, initializer=self.beta_initializer,
                                    regularizer=self.beta_regularizer) if self.center else None
        self.moving_mean = self.add_weight("moving_mean", shape, initializer=self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape,
                                               initializer=self.moving_variance_initializer, trainable=False)
        self.input_spec = InputSpec(ndim=rank, axes={self._axis: channels})

    def _normalize(self, x, mean, variance):
        def shaped(t):
            if t is None or self._axis == x.ndim - 1:
                return t
            stat = [1] * x.ndim
            stat[self._axis] = -1
            return sh.reshape(t, stat)
        return nn_ops.batch_normalization(x, shaped(mean), shaped(variance),
                                          shaped(None if self.beta is None else self.beta.value()),
                                          shaped(None if self.gamma is None else self.gamma.value()), self.epsilon)

    def call(self, inputs, training=False):
        from ..layers.normalization import _batch_normalized
        x = inputs
        if training is False:
            return self._normalize(x, self.moving_mean.value(), self.moving_variance.value())
        if training is not True:
            raise ValueError(f"{self._what()} at {user_location()}: training must be True or False here")
        reduce_axes = [a for a in range(x.ndim) if a != self._axis]
        y, mean, variance = _batch_normalized(x, self._axis, reduce_axes,
                                              None if self.gamma is None else self.gamma.value(),
                                              None if self.beta is None else self.beta.value(), self.epsilon,
                                              lambda m, v: self._normalize(x, m, v))
        decay = 1.0 - self.momentum
        self.add_update([
            assign_sub(self.moving_mean, (self.moving_mean.value() - mean) * decay, name="AssignMovingAvg"),
            assign_sub(self.moving_variance, (self.moving_variance.value() - variance) * decay,
                       name="AssignMovingAvg_1")])
        return y

    def get_config(self):
        return dict(super().get_config(), axis=self.axis, momentum=self.momentum, epsilon=self.epsilon,
                    center=self.center, scale=self.scale,
                    beta_initializer=initializers.serialize(self.beta_initializer),
                    gamma_initializer=initializers.serialize(self.gamma_initializer),
                    moving_mean_initializer=initializers.serialize(self.moving_mean_initializer),
                    moving_variance_initializer=initializers.serialize(self.moving_variance_initializer),
                    beta_regularizer=regularizers.serialize(self.beta_regularizer),
                    gamma_regularizer=regularizers.serialize(self.gamma_regularizer))


class Embedding(Layer):
    """Rows of an (input_dim, output_dim) matrix looked up by integer ids."""

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer="uniform",
                 embeddings_regularizer=None, activity_regularizer=None, embeddings_constraint=None,
                 mask_zero: bool = False, input_length=None, **kwargs):
        if "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            # as Keras: sequences of any length unless input_length fixes it
            kwargs["input_shape"] = (None,) if input_length is None else tuple(input_length) \
                if isinstance(input_length, (list, tuple)) else (int(input_length),)
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        if mask_zero:
            raise ValueError(f"Embedding at {user_location()}: mask_zero (masking) is not in graphc's Keras")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.input_length = input_length

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          dtype=K.floatx(), initializer=self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer)

    def call(self, inputs):
        ids = inputs if inputs.dtype in (dt.int32, dt.int64) else ew.cast(inputs, dt.int32)
        return embedding_lookup(self.embeddings.value(), ids)

    def get_config(self):
        return dict(super().get_config(), input_dim=self.input_dim, output_dim=self.output_dim,
                    embeddings_initializer=initializers.serialize(self.embeddings_initializer),
                    embeddings_regularizer=regularizers.serialize(self.embeddings_regularizer),
                    input_length=self.input_length)


# -- activations as layers ----------------------------------------------------------------------------
class LeakyReLU(Layer):
    def __init__(self, alpha: float = 0.3, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return nn_ops.leaky_relu(inputs, alpha=self.alpha)

    def get_config(self):
        return dict(super().get_config(), alpha=self.alpha)


class ReLU(Layer):
    def __init__(self, max_value=None, negative_slope: float = 0.0, threshold: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value, self.negative_slope, self.threshold = max_value, float(negative_slope), float(threshold)

    def call(self, inputs):
        return activations.relu(inputs, alpha=self.negative_slope, max_value=self.max_value,
                                threshold=self.threshold)

    def get_config(self):
        return dict(super().get_config(), max_value=self.max_value, negative_slope=self.negative_slope,
                    threshold=self.threshold)


class Softmax(Layer):
    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs):
        return nn_ops.softmax(inputs, axis=self.axis)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis)


class ELU(Layer):
    def __init__(self, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return activations.elu(inputs, alpha=self.alpha)

    def get_config(self):
        return dict(super().get_config(), alpha=self.alpha)


# -- merging ------------------------------------------------------------------------------------------
class _Merge(Layer):
    def _check(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"{self._what()} at {user_location()}: expects a list of at least 2 tensors, got "
                             f"{inputs!r}")
        return list(inputs)

    def call(self, inputs):
        xs = self._check(inputs)
        y = xs[0]
        for x in xs[1:]:
            y = self._combine(y, x)
        return y


class Add(_Merge):
    def _combine(self, a, b):
        return a + b


class Subtract(_Merge):
    def call(self, inputs):
        xs = self._check(inputs)
        if len(xs) != 2:
            raise ValueError(f"{self._what()} at {user_location()}: expects exactly 2 tensors, got {len(xs)}")
        return xs[0] - xs[1]


class Multiply(_Merge):
    def _combine(self, a, b):
        return a * b


class Maximum(_Merge):
    def _combine(self, a, b):
        return ew.maximum(a, b)


class Minimum(_Merge):
    def _combine(self, a, b):
        return ew.minimum(a, b)


class Average(_Merge):
    def call(self, inputs):
        xs = self._check(inputs)
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y * (1.0 / len(xs))


class Concatenate(_Merge):
    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs):
        xs = self._check(inputs)
        rank = xs[0].ndim
        axis = self.axis % rank
        for x in xs[1:]:
            same = x.ndim == rank and all(a is None or b is None or a == b or k == axis
                                          for k, (a, b) in enumerate(zip(xs[0].shape, x.shape)))
            if not same:
                raise ShapeError(f"{self._what()} at {user_location()}: inputs must match except on axis {self.axis}, "
                                 f"got shapes {[tuple(t.shape) for t in xs]}")
        return sh.concat(xs, axis)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis)


def _merge_function(cls):
    def apply(inputs, **kwargs):
        return cls(**kwargs)(inputs)
    apply.__name__ = cls.__name__.lower()
    apply.__doc__ = f"``{cls.__name__}(**kwargs)(inputs)``"
    return apply


add, subtract, multiply, average, maximum, minimum, concatenate = (
    _merge_function(c) for c in (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate))


from .recurrent import GRU, LSTM, SimpleRNN  # noqa: E402

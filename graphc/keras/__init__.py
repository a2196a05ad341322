"""``graphc.keras``: Keras 2 (as ``tf.keras`` was in TF 1.x) on graphc's graph, Session,
optimizers and layers. Every model is an ordinary graphc graph: it can be explained,
exported and run on any device. See docs/KERAS.md."""
from . import activations, backend, callbacks, datasets, initializers, layers, losses, metrics, models, optimizers, regularizers, utils  # noqa: F401,E501
from .engine import Input, InputLayer, Layer  # noqa: F401
from .sequential import Sequential  # noqa: F401
from .training import Model, NotCompiledError  # noqa: F401

"""``graphc.keras``: Keras 2 (as ``tf.keras`` was in TF 1.x) on graphc's graph, Session,
optimizers and layers. Every model is an ordinary graphc graph: it can be explained,
exported and run on any device. See docs/KERAS.md."""
from . import backend  # noqa: F401

"""``keras.datasets``: MNIST from local files (graphc never downloads)."""
from . import mnist  # noqa: F401

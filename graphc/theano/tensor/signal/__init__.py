"""``theano.tensor.signal``: pooling."""
from . import downsample, pool  # noqa: F401

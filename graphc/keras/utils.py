"""``keras.utils``: ``to_categorical``, ``normalize`` and the ``Progbar``."""
from __future__ import annotations

import numpy as np

from ..graph import user_location
from .progbar import Progbar  # noqa: F401


def to_categorical(y, num_classes=None, dtype="float32") -> np.ndarray:
    """Class indices (any shape) as one-hot rows: shape ``y.shape + (num_classes,)`` (a
    trailing dim of 1 is dropped first, as Keras does)."""
    y = np.asarray(y)
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
        raise ValueError(f"keras.utils.to_categorical at {user_location()}: expects integer class indices, got "
                         f"{y.dtype} values")
    y = y.astype(np.int64)
    if y.ndim and y.shape[-1] == 1 and y.ndim > 1:
        y = y.reshape(y.shape[:-1])
    if y.size and y.min() < 0:
        raise ValueError(f"keras.utils.to_categorical at {user_location()}: class indices must be >= 0, got "
                         f"{int(y.min())}")
    n = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if y.size and y.max() >= n:
        raise ValueError(f"keras.utils.to_categorical at {user_location()}: class index {int(y.max())} is out of "
                         f"range for num_classes={n}")
    out = np.zeros(y.shape + (n,), dtype=dtype)
    np.put_along_axis(out, y[..., None], 1, axis=-1)
    return out


def normalize(x, axis: int = -1, order: int = 2) -> np.ndarray:
    """``x`` scaled to unit ``order``-norm along ``axis`` (zero rows stay zero)."""
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)

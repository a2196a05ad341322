"""``keras.datasets.mnist.load_data(path=...)``: the real MNIST IDX files from a local folder.

Keras downloads ``mnist.npz``; graphc never downloads (and never reads pickles). Put the four
files from http://yann.lecun.com/exdb/mnist/ (``train-images-idx3-ubyte.gz`` and the rest,
gzipped or not) in a folder and pass it as ``path``, or set ``GRAPHC_MNIST_DIR``; the default
is ``~/.keras/datasets/mnist``."""
from __future__ import annotations

import os
from typing import Optional

from ...datasets import DatasetError, load_mnist
from ...graph import user_location

DEFAULT_DIR = os.path.join("~", ".keras", "datasets", "mnist")


def load_data(path: Optional[str] = None):
    """``(x_train, y_train), (x_test, y_test)``: uint8 images of (n, 28, 28) and uint8 labels."""
    where = user_location()
    directory = os.path.expanduser(path or os.environ.get("GRAPHC_MNIST_DIR") or DEFAULT_DIR)
    if not os.path.isdir(directory):
        raise DatasetError(f"keras.datasets.mnist.load_data at {where}: no MNIST folder at {directory}. graphc does "
                           "not download: put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                           "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz there (or pass "
                           "load_data(path=folder), or set GRAPHC_MNIST_DIR)")
    try:
        return load_mnist(directory, "train"), load_mnist(directory, "test")
    except (DatasetError, OSError) as e:
        raise DatasetError(f"keras.datasets.mnist.load_data at {where}: {e}") from None

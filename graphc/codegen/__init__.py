"""Backends turn a Program into an Executable: "reference" (NumPy), later "cpu" and "cuda"."""
from .backend import Backend, Executable, available_devices, get_backend  # noqa: F401

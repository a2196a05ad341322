"""``gc.export``: inference graphs (freeze), model files, ONNX and native shared libraries.

The names below load their module on first use, so ``import graphc`` does not pay for the
exporters (the native one pulls in the optimizer and the code generators)."""
from __future__ import annotations

import importlib

# Loaded now: its function `freeze` must shadow the submodule of the same name, which the
# import system would otherwise set as this package's attribute when the module first loads.
from .freeze import FreezeError, FrozenGraph, Signature, TensorSpec, freeze  # noqa: F401

_WHERE = {
    "Model": "model", "load_model": "model", "save_model": "model",
    "FormatError": "model_file",
    "NativeExportError": "native", "NativeModel": "native", "SharedLibrary": "native", "shared_library": "native",
    "ExportError": "onnx", "to_onnx": "onnx",
}
__all__ = sorted(_WHERE) + ["FreezeError", "FrozenGraph", "Signature", "TensorSpec", "freeze"]


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'graphc.export' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_WHERE))

"""``gc.export``: inference graphs (freeze), model files, ONNX and native shared libraries."""
from .freeze import FreezeError, FrozenGraph, Signature, TensorSpec, freeze  # noqa: F401
from .native import NativeExportError, NativeModel, SharedLibrary, shared_library  # noqa: F401

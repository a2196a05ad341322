"""``gc.export``: inference graphs (freeze), model files, ONNX and native shared libraries."""
from .freeze import FreezeError, FrozenGraph, Signature, TensorSpec, freeze  # noqa: F401
from .onnx import ExportError, to_onnx  # noqa: F401

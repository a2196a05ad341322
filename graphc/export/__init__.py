"""``gc.export``: inference graphs (freeze), model files, ONNX and native shared libraries."""
from .freeze import FreezeError, FrozenGraph, Signature, TensorSpec, freeze  # noqa: F401
from .model import Model, load_model, save_model  # noqa: F401
from .model_file import FormatError  # noqa: F401
from .native import NativeExportError, NativeModel, SharedLibrary, shared_library  # noqa: F401
from .onnx import ExportError, to_onnx  # noqa: F401

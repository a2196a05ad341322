"""to_onnx(import_model(m)) computes m: a quarter of ONNX's node tests that graphc imports
(every fourth, by name) run again with every imported model exported back to ONNX by
``gc.export.to_onnx`` and run in ONNX Runtime, which must give graphc's outputs
(``graphc.onnx.conformance.backend_for(..., round_trip=True)``). ``python -m
graphc.onnx.conformance --round-trip`` runs all of them (1,509 of the 1,519 imported round-trip)."""
from __future__ import annotations

import unittest
import warnings

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from expected_failures import EXPECTED_FAILURES  # noqa: E402
from graphc.onnx.conformance import backend_for  # noqa: E402
from onnx.backend.test.runner import Runner  # noqa: E402

# Imported models that graphc's ONNX export cannot write back, and why.
ROUND_TRIP_LIMITS = {
    "ONNX opset 17, which graphc exports, has no CumProd (and exp(cumsum(log)) is wrong for zeros and signs)": [
        "test_cumprod_1d", "test_cumprod_1d_exclusive", "test_cumprod_1d_int32_exclusive", "test_cumprod_1d_reverse",
        "test_cumprod_1d_reverse_exclusive", "test_cumprod_2d_axis_0", "test_cumprod_2d_axis_1",
        "test_cumprod_2d_int32", "test_cumprod_2d_negative_axis"],
    "float16 softmax: ONNX Runtime's float16 kernels round differently from graphc's emulation": [
        "test_attention_24_qk_matmul_output_mode3_softmax_precision"],
}

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    runner = Runner(backend_for("reference", round_trip=True), __name__)
_skip = {n for names in EXPECTED_FAILURES.values() for n in names} | \
    {n for names in ROUND_TRIP_LIMITS.values() for n in names}
_items = runner._filtered_test_items["NodeModel"]
_chosen = [name for name in sorted(_items) if name.endswith("_cpu") and name[:-len("_cpu")] not in _skip][::4]
OnnxBackendNodeModelTest = type("OnnxBackendNodeModelTest", (unittest.TestCase,),
                                {name: _items[name].func for name in _chosen})


def test_the_round_trip_sample_is_large():
    assert len(_chosen) > 300

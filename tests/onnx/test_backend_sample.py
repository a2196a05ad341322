"""A sample of ONNX's backend tests on a compiled backend, as ``test_backend_suite.py`` runs all
of them on the reference: the ops whose kernels differ most from their composition
(convolution, pooling, matmul, reductions, gathers, resize, control flow). The cpu backend
runs the whole sample; the CUDA pass (simulator, or a GPU) runs ``CUDA_SAMPLE``, whose
shapes are small enough for the simulator."""
from __future__ import annotations

import unittest
import warnings

import pytest

onnx = pytest.importorskip("onnx")

from expected_failures import EXPECTED_FAILURES  # noqa: E402
from support import DEVICES  # noqa: E402
from graphc.onnx.conformance import backend_for  # noqa: E402
from onnx.backend.test.runner import Runner  # noqa: E402

SAMPLE = [
    "test_conv_with_strides_padding", "test_conv_with_autopad_same", "test_convtranspose", "test_maxpool_2d_pads",
    "test_averagepool_2d_pads_count_include_pad", "test_averagepool_2d_ceil", "test_globalaveragepool",
    "test_gemm_all_attributes", "test_matmul_4d", "test_batchnorm_example", "test_instancenorm_example",
    "test_layer_normalization_4d_axis1", "test_softmax_axis_1", "test_logsoftmax_large_number",
    "test_reduce_sum_keepdims_random", "test_reduce_log_sum_exp_do_not_keepdims_random", "test_argmax_keepdims_random",
    "test_gather_2d_indices", "test_gather_elements_negative_indices", "test_slice_neg_steps", "test_constant_pad",
    "test_edge_pad", "test_resize_upsample_scales_linear", "test_resize_downsample_sizes_cubic",
    "test_resize_upsample_sizes_nearest", "test_where_long_example", "test_einsum_batch_matmul", "test_cumsum_2d_axis_1",
    "test_top_k", "test_mod_mixed_sign_int64", "test_div_int32_trunc",
    "test_range_float_type_positive_delta_expanded", "test_if", "test_scan9_sum", "test_sce_mean_weight",
    "test_nllloss_NCd1d2_with_weight", "test_depthtospace_crd_mode_example", "test_lrn", "test_mish",
    "test_hardswish", "test_cast_FLOAT_to_FLOAT16", "test_cast_FLOAT_to_BFLOAT16", "test_attention_4d_fp16_expanded",
    "test_gridsample_bicubic", "test_dft_rfft", "test_lstm_with_peepholes", "test_gru_seq_length", "test_col2im",
    "test_bitshift_left_int32_overflow", "test_bitwise_xor_i32_2d", "test_div_int16", "test_mul_uint32",
    "test_add_uint16",
]

CUDA_SAMPLE = ["test_conv_with_strides_padding", "test_maxpool_2d_pads", "test_gemm_all_attributes",
               "test_softmax_axis_1", "test_reduce_sum_keepdims_random", "test_gather_2d_indices",
               "test_resize_upsample_scales_linear", "test_cast_FLOAT_to_FLOAT16", "test_bitwise_xor_i32_2d",
               "test_if"]
DEVICE = "cuda" if "cuda" in DEVICES else "cpu"
if DEVICE == "cuda":
    SAMPLE = CUDA_SAMPLE

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    runner = Runner(backend_for(DEVICE), __name__)
_expected = {n for names in EXPECTED_FAILURES.values() for n in names}
_items = runner._filtered_test_items["NodeModel"]
_wanted = {f"{n}_cpu" for n in SAMPLE}
OnnxBackendNodeModelTest = type("OnnxBackendNodeModelTest", (unittest.TestCase,), {
    name: item.func for name, item in sorted(_items.items()) if name in _wanted})


def test_the_sample_is_real_tests_that_pass_on_the_reference():
    missing = _wanted - set(_items)
    assert not missing, f"not ONNX node tests: {sorted(missing)}"
    failing = [n for n in SAMPLE if n in _expected]
    assert not failing, f"the sample must pass on the reference; these are expected failures: {failing}"

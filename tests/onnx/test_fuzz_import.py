"""Differential fuzzer for ONNX import: random ONNX graphs (elementwise, broadcasting,
reductions, matmul, shapes, softmax, pooling and convolution in NCHW) run in ONNX Runtime
and, imported, in graphc; the outputs must agree. On the reference every example runs; the
cpu backend compiles a few (GRAPHC_FUZZ_EXAMPLES raises both)."""
from __future__ import annotations

import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import graphc as gc  # noqa: E402

EXAMPLES = int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXAMPLES or 120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_CPU = settings(max_examples=EXAMPLES or 6, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# (no Floor or Round: a one-ulp difference of NumPy's float32 tanh flips them)
UNARY = ["Relu", "Tanh", "Sigmoid", "Exp", "Abs", "Neg", "Softsign", "Erf", "Sin", "Atan", "Sqrt"]
BINARY = ["Add", "Sub", "Mul", "Max", "Min", "Div"]
REDUCE = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL2", "ReduceLogSumExp"]


@st.composite
def onnx_graphs(draw):
    """(ModelProto, feeds): a chain of 2-8 ops over one or two inputs of rank 2-4."""
    rank = draw(st.integers(2, 4))
    shape = [draw(st.integers(1, 4)) for _ in range(rank)]
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    x = rng.normal(size=shape).astype(np.float32)
    feeds = {"x": x}
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    nodes, inits = [], []
    current, cur_shape, k = "x", list(shape), 0

    def fresh():
        nonlocal k
        k += 1
        return f"v{k}"

    for _ in range(draw(st.integers(2, 8))):
        kind = draw(st.sampled_from(["unary", "binary", "reduce", "transpose", "softmax", "reshape", "concat",
                                     "matmul", "slice", "pool" if len(cur_shape) == 4 else "unary",
                                     "conv" if len(cur_shape) == 4 else "binary"]))
        out = fresh()
        if kind == "unary":
            op = draw(st.sampled_from(UNARY))
            src = current
            if op == "Sqrt":
                nodes.append(helper.make_node("Abs", [current], [out + "a"]))
                src = out + "a"
            nodes.append(helper.make_node(op, [src], [out]))
        elif kind == "binary":
            op = draw(st.sampled_from(BINARY))
            # broadcast: some trailing dims, with 1s
            n = draw(st.integers(1, len(cur_shape)))
            bshape = [d if draw(st.booleans()) else 1 for d in cur_shape[-n:]]
            value = rng.normal(size=bshape).astype(np.float32)
            if op == "Div":
                value = np.abs(value) + 0.5
            inits.append(numpy_helper.from_array(value, f"c{k}"))
            nodes.append(helper.make_node(op, [current, f"c{k}"], [out]))
        elif kind == "reduce":
            op = draw(st.sampled_from(REDUCE))
            axes = sorted(set(draw(st.lists(st.integers(0, len(cur_shape) - 1), min_size=1, max_size=2))))
            keep = draw(st.booleans()) or len(axes) == len(cur_shape)
            inits.append(numpy_helper.from_array(np.asarray(axes, np.int64), f"axes{k}"))
            nodes.append(helper.make_node(op, [current, f"axes{k}"], [out], keepdims=int(keep)))
            cur_shape = [d for i, d in enumerate(cur_shape) if i not in axes or keep] if not keep else \
                [1 if i in axes else d for i, d in enumerate(cur_shape)]
        elif kind == "transpose":
            perm = list(draw(st.permutations(range(len(cur_shape)))))
            nodes.append(helper.make_node("Transpose", [current], [out], perm=perm))
            cur_shape = [cur_shape[p] for p in perm]
        elif kind == "softmax":
            axis = draw(st.integers(-len(cur_shape), len(cur_shape) - 1))
            nodes.append(helper.make_node(draw(st.sampled_from(["Softmax", "LogSoftmax"])), [current], [out],
                                          axis=axis))
        elif kind == "reshape":
            total = int(np.prod(cur_shape))
            new = [total] if draw(st.booleans()) else [-1, cur_shape[-1]]
            inits.append(numpy_helper.from_array(np.asarray(new, np.int64), f"shape{k}"))
            nodes.append(helper.make_node("Reshape", [current, f"shape{k}"], [out]))
            cur_shape = [total] if len(new) == 1 else [total // cur_shape[-1], cur_shape[-1]]
        elif kind == "concat":
            axis = draw(st.integers(0, len(cur_shape) - 1))
            nodes.append(helper.make_node("Concat", [current, current], [out], axis=axis))
            cur_shape[axis] *= 2
        elif kind == "matmul":
            n = draw(st.integers(1, 4))
            w = rng.normal(size=(cur_shape[-1], n)).astype(np.float32)
            inits.append(numpy_helper.from_array(w, f"w{k}"))
            nodes.append(helper.make_node("MatMul", [current, f"w{k}"], [out]))
            cur_shape = cur_shape[:-1] + [n]
        elif kind == "slice":
            axis = draw(st.integers(0, len(cur_shape) - 1))
            d = cur_shape[axis]
            step = draw(st.sampled_from([1, 1, 2, -1]))
            start, end = (draw(st.integers(0, d - 1)), None) if step > 0 else (draw(st.integers(0, d - 1)), None)
            end = draw(st.integers(start + 1, d)) if step > 0 else -d - 1
            for name, v in (("st", start), ("en", end), ("ax", axis), ("sp", step)):
                inits.append(numpy_helper.from_array(np.asarray([v], np.int64), f"{name}{k}"))
            nodes.append(helper.make_node("Slice", [current, f"st{k}", f"en{k}", f"ax{k}", f"sp{k}"], [out]))
            cur_shape[axis] = len(range(*slice(start, end, step).indices(d)))
        elif kind == "conv":
            n, c, h, w = cur_shape
            group = draw(st.sampled_from([g for g in (1, c) if c % g == 0]))
            m = group * draw(st.integers(1, 2))
            kh, kw = draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w)))
            stride = draw(st.integers(1, 2))
            dil = 1 if stride > 1 else draw(st.integers(1, 2))
            pads = [draw(st.integers(0, 1)) for _ in range(4)]
            oh = (h + pads[0] + pads[2] - ((kh - 1) * dil + 1)) // stride + 1
            ow = (w + pads[1] + pads[3] - ((kw - 1) * dil + 1)) // stride + 1
            if oh < 1 or ow < 1:
                nodes.append(helper.make_node("Relu", [current], [out]))
            else:
                wt = rng.normal(size=(m, c // group, kh, kw)).astype(np.float32)
                inits += [numpy_helper.from_array(wt, f"cw{k}"),
                          numpy_helper.from_array(rng.normal(size=m).astype(np.float32), f"cb{k}")]
                nodes.append(helper.make_node("Conv", [current, f"cw{k}", f"cb{k}"], [out], group=group,
                                              strides=[stride, stride], dilations=[dil, dil], pads=pads))
                cur_shape = [n, m, oh, ow]
        elif kind == "pool":
            kernel = [draw(st.integers(1, max(1, min(2, d)))) for d in cur_shape[2:]]
            op = draw(st.sampled_from(["MaxPool", "AveragePool"]))
            nodes.append(helper.make_node(op, [current], [out], kernel_shape=kernel))
            cur_shape = cur_shape[:2] + [d - kk + 1 for d, kk in zip(cur_shape[2:], kernel)]
        current = out
    graph = helper.make_graph(nodes, "fuzz", inputs, [helper.make_tensor_value_info(current, TensorProto.FLOAT, None)],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model, feeds


def _check(model, feeds, device):
    try:
        expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    except Exception:  # noqa: BLE001 - a graph ONNX Runtime refuses is not a graphc question
        return
    imported = gc.onnx.import_model(model, device=device)
    got = imported.run(feeds)
    name = model.graph.output[0].name
    try:
        np.testing.assert_allclose(got[name], expected[0], rtol=2e-4, atol=2e-5)
    except AssertionError as e:
        from onnx import printer
        raise AssertionError(f"{e}\n{printer.to_text(model.graph)}") from None


@FUZZ
@given(onnx_graphs())
def test_random_onnx_graphs_match_onnxruntime_on_the_reference(case):
    _check(*case, "reference")


@FUZZ_CPU
@given(onnx_graphs())
def test_random_onnx_graphs_match_onnxruntime_on_cpu(case):
    _check(*case, "cpu")

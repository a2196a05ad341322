"""gc.export.to_onnx: every converter checked against the reference backend through ONNX
Runtime (op samples, NumPy edge cases, dynamic shapes), every op either exported or refused
with a reason, unsupported ops named, the digits models exported and run."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import graphc as gc  # noqa: E402
from graphc import datasets, zoo  # noqa: E402
from graphc.export.onnx import MIN_OPSET, NOT_EXPORTABLE, ExportError, supported_ops  # noqa: E402

CONVERTERS = supported_ops()  # ops exported by a converter here or by their OpDef's ONNX type
from graphc.ops._build import make1  # noqa: E402
from graphc.ops.registry import OPS  # noqa: E402
from op_samples import SAMPLES, Sample  # noqa: E402
from support import assert_close, made_here  # noqa: E402

I64_MIN, I32_MIN = np.iinfo(np.int64).min, np.iinfo(np.int32).min
nan, inf = np.nan, np.inf


# --- helpers ----------------------------------------------------------------------------------
def run_onnx(model, feeds: dict) -> dict:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def assert_matches(got, want, what="", scaled=False):
    """ONNX Runtime vs graphc: same dtype and shape; ints and bools exact; floats within
    1e-5 (float32) or 1e-10 (float64) relative plus 1e-6 / 1e-12 absolute, NaN and infinities
    in the same places. (Not the signs of zeros: ONNX Runtime's Where turns a selected -0.0
    into +0.0.) ``scaled`` (for sums such as a model's logits, added up in another
    order) scales the absolute part with the largest value."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    finite = np.abs(want[np.isfinite(want)])
    scale = max(1.0, float(finite.max())) if finite.size and scaled else 1.0
    rtol, atol = (1e-5, 1e-6) if want.dtype == np.float32 else (1e-10, 1e-12)
    try:
        assert_close(got, want, rtol=rtol, atol=atol * scale)
    except AssertionError as e:
        raise AssertionError(f"{what}: {e}") from None


def export_and_compare(sess_or_frozen, inputs, outputs, feed_sets, opset=MIN_OPSET, path=None, reference=None,
                       scaled=False):
    """Export, check the model (full check), run every feed set through ONNX Runtime and
    compare with graphc. ``feed_sets`` are dicts {input name: array}."""
    if isinstance(sess_or_frozen, gc.export.FrozenGraph):
        frozen = sess_or_frozen
        model = gc.export.to_onnx(frozen, path, opset=opset)
        reference = reference or gc.Session(graph=frozen.graph, device="reference")
        inputs, outputs = frozen.inputs, frozen.outputs
    else:
        model = gc.export.to_onnx(sess_or_frozen, path, inputs=inputs, outputs=outputs, opset=opset)
        reference = reference or sess_or_frozen
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == list(inputs)
    assert [o.name for o in model.graph.output] == list(outputs)
    results = []
    for feeds in feed_sets:
        got = run_onnx(model, feeds)
        want = reference.run(dict(outputs), {inputs[k]: v for k, v in feeds.items()})
        for k in outputs:
            assert_matches(got[k], want[k], f"output {k!r}", scaled)
        results.append(got)
    return model, results


def E(build, *inputs, note="", float64_only=False):
    """An edge case: a Sample whose expected values come from graphc's reference backend.
    ``float64_only``: values that mean nothing in float32 (they would overflow)."""
    return Sample(build, [np.asarray(a) for a in inputs], expected=None, note=note,
                  extra={"float64_only": float64_only})


def _internal(op_type, **attrs):
    return lambda *xs: make1(op_type, xs, attrs)


F = np.float64
FLOAT_DIV_A = np.array([5.5, -5.5, 5.5, -5.5, 1.0, 0.0, -0.0, 3.0, inf, -3.0, nan, 7.0, -inf, 0.5, -0.5, 1e-30, 4.0,
                        -4.0, 0.0, -0.0, 3.0])
FLOAT_DIV_B = np.array([2.0, 2.0, -2.0, -2.0, 0.1, 3.0, 3.0, 0.0, 3.0, inf, 1.0, nan, 2.0, 3.0, 3.0, -7.0, -2.0,
                        2.0, -3.0, -3.0, -inf])
INT_DIV = [
    (np.array([-7, 7, -7, 7, 0, 5, I64_MIN, I64_MIN, 9, 6], np.int64), np.array([2, 2, -2, -2, 3, 0, -1, 3, -4, 3], np.int64)),
    (np.array([-7, 7, I32_MIN, I32_MIN, 5, 6, -6, 0], np.int32), np.array([2, -2, -1, 7, 0, -1, -1, -1], np.int32)),
    (np.array([-128, -128, 127, -7, 5, 0], np.int8), np.array([-1, 3, -2, 0, -3, -5], np.int8)),
    (np.array([7, 255, 0, 9], np.uint8), np.array([2, 0, 3, 255], np.uint8)),
]

# Cases beyond tests/op_samples.py, each checked against the reference backend: NumPy's
# meaning at the edges (NaN, infinities, signed zeros, integer wrap-around, x // 0) and
# layouts the samples do not reach.
EDGES = {
    "floordiv": [E(gc.floordiv, FLOAT_DIV_A, FLOAT_DIV_B)] + [E(gc.floordiv, a, b) for a, b in INT_DIV],
    "mod": [E(gc.mod, FLOAT_DIV_A, FLOAT_DIV_B)] + [E(gc.mod, a, b) for a, b in INT_DIV],
    "round": [E(gc.round, [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 1e20, nan, inf, -0.0]),
              E(gc.round, np.array([3, -4], np.int32))],
    "floor": [E(gc.floor, np.array([3, -4], np.int8)), E(gc.floor, [-0.5, nan, -inf, 2.0])],
    "ceil": [E(gc.ceil, np.array([3, 200], np.uint8)), E(gc.ceil, [-0.5, nan, inf, 2.1])],
    "sign": [E(gc.sign, [nan, -0.0, 0.0, -3.0, inf, -inf]), E(gc.sign, np.array([-128, 0, 5], np.int8)),
             E(gc.sign, np.array([0, 7], np.uint8))],
    "abs": [E(gc.abs, np.array([-128, 5], np.int8)), E(gc.abs, [-0.0, -inf, nan])],
    "negative": [E(gc.negative, np.array([0, 1, 200], np.uint8)), E(gc.negative, np.array([-128, 5], np.int8)),
                 E(gc.negative, np.array([I64_MIN, 3], np.int64))],
    "isnan": [E(gc.isnan, [0.0, nan, inf, -inf]), E(gc.isnan, np.array([[1, 2]], np.int32))],
    "isfinite": [E(gc.isfinite, [0.0, nan, inf, -inf]), E(gc.isfinite, np.array(3, np.uint8))],
    "maximum": [E(gc.maximum, [nan, 1.0, 2.0, -inf, 0.0], [0.0, nan, 3.0, inf, -0.0]),
                E(gc.maximum, [True, False, False], [False, True, False]),
                E(gc.maximum, np.array([1, 200], np.uint8), np.array([3, 4], np.uint8))],
    "minimum": [E(gc.minimum, [nan, 1.0, 2.0, -inf], [0.0, nan, 3.0, inf]),
                E(gc.minimum, [True, False, True], [False, True, True]),
                E(gc.minimum, np.array([-128, 5], np.int8), np.array([3, -4], np.int8))],
    "clip_by_value": [E(gc.clip_by_value, [nan, -3.0, 0.5, 9.0, 5.0, 0.0], [-1.0, -1.0, 1.0, 0.0, 3.0, nan],
                        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0], note="lo > hi gives hi; NaN bounds"),
                      E(gc.clip_by_value, np.array([[1, 5, 9]], np.int32), np.array([2], np.int32),
                        np.array([[6], [3]], np.int32))],
    "expm1": [E(gc.expm1, [1e-10, -1e-7, 1e-4, 0.0, -0.0, 50.0, -50.0, inf, -inf, nan, 1e-30, -0.3, 0.7, 85.0, 88.5]),
              E(gc.expm1, [700.0, 709.0, 710.0], float64_only=True)],
    "log1p": [E(gc.log1p, [1e-10, -1e-7, 1e-4, 0.0, -0.0, 1e30, inf, -1.0, -2.0, nan, -0.999, 3.0, 3e38]),
              E(gc.log1p, [1e300, 1.7e308], float64_only=True)],
    "softplus": [E(gc.nn.softplus, [-100.0, -20.0, -1e-3, 0.0, 20.0, 100.0, inf, -inf, nan])],
    "elu": [E(lambda x: gc.nn.elu(x, alpha=0.7), [-1e-6, -0.0, 0.0, -3.0, nan, -inf, inf])],
    "leaky_relu": [E(lambda x: gc.nn.leaky_relu(x, 0.3), [-1e-6, -0.0, nan, -inf, 2.0])],
    "relu": [E(gc.nn.relu, [nan, -0.0, -inf, 3.0]), E(gc.nn.relu, np.array([-5, 3], np.int64)),
             E(gc.nn.relu, np.array([-128, 3], np.int8)), E(gc.nn.relu, np.array([0, 9], np.uint8))],
    "pow": [E(gc.pow, np.array([3, -2, 2, 0, 7, -1], np.int64), np.array([40, 3, 63, 0, 1, 5], np.int64)),
            E(gc.pow, np.array([3, -3, 2], np.int32), np.array([25, 7, 31], np.int32)),
            E(gc.pow, np.array([3, -2, 2], np.int8), np.array([5, 7, 7], np.int8)),
            E(gc.pow, np.array([3, 2, 255], np.uint8), np.array([5, 8, 2], np.uint8)),
            E(lambda x: x ** 3, np.array([[5, -7], [1 << 21, 3]], np.int64), note="constant exponent"),
            E(lambda x: x ** np.array([2, 0, 1], np.int32), np.array([[-7, 5, 9]], np.int32)),
            E(gc.pow, [-2.0, -2.0, 0.0, inf], [3.0, 0.5, -1.0, -1.0])],
    "cast": [E(lambda x: gc.cast(x, gc.int32), [-2.7, 2.7, -0.5, 0.5]),
             E(lambda x: gc.cast(x, gc.uint8), np.array([300, -1, 256, 7], np.int64)),
             E(lambda x: gc.cast(x, gc.int8), np.array([200, -129], np.int32)),
             E(lambda x: gc.cast(x, gc.bool_), [nan, 0.0, -0.0, 2.0]),
             E(lambda x: gc.cast(x, gc.float32), [True, False]),
             E(lambda x: gc.cast(x, gc.float64), np.array([7, -1], np.int8))],
    "where": [E(gc.where, [True, False, True], [True, True, False], [[False], [True]]),
              E(gc.where, [[True], [False]], np.array([1, 2], np.int8), np.array(-3, np.int8))],
    "equal": [E(gc.equal, [nan, 1.0, -0.0], [nan, 1.0, 0.0]), E(gc.equal, [True, False], [[True], [False]])],
    "not_equal": [E(gc.not_equal, [nan, 1.0, -0.0], [nan, 1.0, 0.0]), E(gc.not_equal, [True, False], [True, True])],
    "less": [E(gc.less, [True, False, True], [False, True, True]), E(gc.less, [nan, 1.0], [1.0, nan])],
    "less_equal": [E(gc.less_equal, [True, False], [[False], [True]]), E(gc.less_equal, [nan, 1.0], [nan, 1.0])],
    "greater": [E(gc.greater, [True, False], [False, False]), E(gc.greater, np.array([200], np.uint8),
                                                                  np.array([3, 255], np.uint8))],
    "greater_equal": [E(gc.greater_equal, [True, False], [True, True]), E(gc.greater_equal, [nan], [nan])],
    "logical_and": [E(gc.logical_and, [True, False], [[True], [False]])],
    "reduce_max": [E(lambda x: gc.reduce_max(x, axis=1), [[1.0, nan, 3.0], [nan, 1.0, 2.0], [1.0, 2.0, -inf]]),
                   E(lambda x: gc.reduce_max(x, axis=1, keepdims=True), np.zeros((2, 0))),
                   E(lambda x: gc.reduce_max(x, axis=0), [[True, False], [False, False]]),
                   E(lambda x: gc.reduce_max(x, axis=(0, 1)), np.array([[-128, 5], [7, -3]], np.int8)),
                   E(lambda x: gc.reduce_max(x, axis=()), [1.0, 2.0], note="no axes")],
    "reduce_min": [E(lambda x: gc.reduce_min(x, axis=1), [[1.0, nan, 3.0], [0.0, nan, 2.0], [1.0, 2.0, nan]]),
                   E(lambda x: gc.reduce_min(x, axis=0), [[True, False], [True, True]]),
                   E(lambda x: gc.reduce_min(x, axis=0), np.array([[255, 5], [7, 3]], np.uint8))],
    "reduce_sum": [E(lambda x: gc.reduce_sum(x), np.array([[1, 2], [3, 4]], np.int32)),
                   E(_internal("reduce_sum", axes=(0,), keepdims=False), np.array([100, 100, 100], np.int8)),
                   E(lambda x: gc.reduce_sum(x, axis=1), np.zeros((3, 0))),
                   E(lambda x: gc.reduce_sum(x, axis=()), [[1.0, 2.0]], note="no axes")],
    # (ONNX Runtime multiplies and adds int64 reductions in double: kept below 2**53 here)
    "reduce_prod": [E(lambda x: gc.reduce_prod(x, axis=0), np.array([[1 << 20, 3], [1 << 30, -5]], np.int64)),
                    E(_internal("reduce_prod", axes=(0,), keepdims=True), np.array([[16, 3], [17, -5]], np.int8))],
    "reduce_mean": [E(lambda x: gc.reduce_mean(x, axis=(0, 2), keepdims=True), np.arange(24.0).reshape(2, 3, 4))],
    "reduce_logsumexp": [E(lambda x: gc.reduce_logsumexp(x, axis=1),
                           [[1000.0, 1000.0], [-inf, -inf], [nan, 1.0], [inf, 1.0], [-1000.0, -1001.0]]),
                         E(lambda x: gc.reduce_logsumexp(x, keepdims=True), np.arange(12.0).reshape(2, 3, 2))],
    "reduce_any": [E(lambda x: gc.reduce_any(x, axis=1, keepdims=True), np.zeros((2, 0), bool)),
                   E(lambda x: gc.reduce_any(x), [[True, False], [False, False]])],
    "reduce_all": [E(lambda x: gc.reduce_all(x, axis=1), np.zeros((2, 0), bool)),
                   E(lambda x: gc.reduce_all(x, axis=(0, 1), keepdims=True), [[True, False], [True, True]])],
    "argmax": [E(lambda x: gc.argmax(x, axis=1), [[1.0, nan, 3.0], [nan, 1.0, nan], [1.0, 2.0, 2.0]]),
               E(lambda x: gc.argmax(x, keepdims=True), [[1.0, 5.0], [5.0, 0.0]], note="flattened"),
               E(lambda x: gc.argmax(x, axis=0, output_type=gc.int32), [[True, False], [True, True]]),
               E(lambda x: gc.argmax(x), np.array([[3, -128], [127, 127]], np.int8))],
    "argmin": [E(lambda x: gc.argmin(x, axis=0, keepdims=True), [[1.0, nan], [-inf, 0.0], [-inf, nan]]),
               E(lambda x: gc.argmin(x), [[4.0, 1.0], [1.0, nan]])],
    "matmul": [E(gc.matmul, np.array([[1 << 20, 3], [-5, 7]], np.int32), np.array([[1 << 12, 1], [2, 3]], np.int32)),
               E(gc.matmul, np.array([[100, 3], [-5, 7]], np.int8), np.array([[100, 1], [2, 3]], np.int8)),
               E(gc.matmul, np.ones((2, 1, 3, 4)), np.ones((5, 4, 2)), note="batch broadcast"),
               E(lambda a: gc.matmul(a, np.arange(12.0).reshape(3, 4), transpose_a=True, transpose_b=True),
                 np.arange(8.0).reshape(4, 2), note="constant transposed operand"),
               E(lambda a: gc.matmul(a, np.arange(3.0)), np.ones((2, 3)), note="vector operand")],
    "softmax": [E(lambda x: gc.nn.softmax(x, axis=0), np.linspace(-3, 3, 24).reshape(2, 3, 4)),
                E(gc.nn.softmax, [[-inf, 0.0, 1.0], [nan, 1.0, 2.0], [1e30, 0.0, -1e30]])],
    "log_softmax": [E(lambda x: gc.nn.log_softmax(x, axis=1), np.linspace(-3, 3, 24).reshape(2, 3, 4)),
                    E(gc.nn.log_softmax, [[-inf, 0.0, 1.0], [1e30, 0.0, -1e30]])],
    "softmax_cross_entropy_with_logits": [E(
        lambda lab, lg: gc.nn.softmax_cross_entropy_with_logits(labels=lab, logits=lg, axis=0),
        [[0.0], [1.0], [0.0]], [[1.0, -inf], [2.0, 0.0], [-inf, 3.0]], note="zero labels, -inf logits")],
    "sparse_softmax_cross_entropy_with_logits": [E(
        lambda lab, lg: gc.nn.sparse_softmax_cross_entropy_with_logits(labels=lab, logits=lg),
        np.array([[2, 0], [1, 1]], np.int32), np.arange(12.0).reshape(2, 2, 3)), E(
        lambda lab, lg: gc.nn.sparse_softmax_cross_entropy_with_logits(labels=lab, logits=lg),
        np.array([2, 0], np.uint8), [[1.0, -inf, 3.0], [0.5, 0.5, 0.5]])],
    "reshape": [E(lambda x: gc.reshape(x, [gc.shape(x)[0], -1]), np.arange(24.0).reshape(2, 3, 4)),
                E(lambda x: gc.reshape(x, (0, 5)), np.zeros((2, 0, 3))),
                E(lambda x: gc.nn.layers.flatten(x), np.arange(24.0).reshape(2, 3, 4))],
    "broadcast_to": [E(lambda x, y: gc.broadcast_to(x, gc.shape(y)), [[1.0], [2.0]], np.zeros((4, 2, 3))),
                     E(lambda x: gc.broadcast_to(x, (2, 0)), [5.0])],
    "fill": [E(lambda x: gc.ones_like(x, dtype=gc.int8), np.zeros((2, 3))),
             E(lambda x: gc.fill([gc.shape(x)[1], 2], True), np.zeros((2, 3)))],
    "shape": [E(lambda x: gc.shape(x, out_type=gc.int32), np.zeros((2, 0, 3)))],
    "squeeze": [E(lambda x: gc.squeeze(x, axis=()), np.zeros((1, 2))), E(gc.squeeze, np.zeros((1, 3, 1)))],
    "expand_dims": [E(lambda x: gc.expand_dims(x, 0), 3.0)],
    "concat": [E(lambda a, b: gc.concat([a, b], axis=0), [[True]], [[False], [True]])],
    "split": [E(lambda x: gc.split(x, 3, axis=1)[2], np.arange(12.0).reshape(2, 6)),
              E(lambda x: gc.split(x, [2, -1, 0], axis=0)[1], np.arange(10.0).reshape(5, 2)),
              E(lambda x, y: gc.ops.shape.split_like(x, [y, x[:1]], axis=0)[0], np.arange(12.0).reshape(6, 2),
                np.zeros((5, 1)), note="sizes from another tensor")],
    "tile": [E(lambda x: gc.tile(x, (0, 2)), [[1.0, 2.0]]), E(lambda x: gc.tile(x, (3,)), [True, False])],
    "pad": [E(lambda x: gc.pad(x, ((3, 3), (1, 2)), mode="SYMMETRIC"), np.arange(12.0).reshape(3, 4)),
            E(lambda x: gc.pad(x, ((1, 0), (0, 2)), constant_values=7), np.array([[1, 2]], np.int32)),
            E(lambda x: gc.pad(x, ((2, 2),), mode="REFLECT"), [1.0, 2.0, 3.0]),
            E(lambda x: gc.pad(x, ((1, 1),), constant_values=True), [False]),
            E(lambda x: gc.pad(x, ()), 3.0, note="rank 0")],
    "strided_slice": [E(lambda x: x[::-1], np.arange(7.0)), E(lambda x: x[-2::-3], np.arange(7.0)),
                      E(lambda x: x[-10::-1], np.arange(7.0)), E(lambda x: x[5:1:-1], np.arange(7.0)),
                      E(lambda x: x[3:1], np.arange(7.0)), E(lambda x: x[10:], np.arange(7.0)),
                      E(lambda x: x[-1], np.arange(7.0)), E(lambda x: x[-3:-1], np.arange(7.0)),
                      E(lambda x: x[1:-1, ::2], np.arange(20.0).reshape(4, 5)),
                      E(lambda x: x[..., None, 0], np.arange(20.0).reshape(4, 5)),
                      E(lambda x: x[::-1, -1:-4:-1], np.arange(20.0).reshape(4, 5)),
                      E(lambda x: x[None, 2, :, None], np.arange(20.0).reshape(4, 5))],
    "gather": [E(lambda x: gc.gather(x, np.array([-1, 0], np.int8), axis=0),
                 np.arange(6.0).reshape(3, 2)),
               E(lambda x, i: gc.gather(x, i, axis=1), np.arange(6.0).reshape(2, 3), np.array([2, 0, 2], np.uint8)),
               E(lambda x: gc.gather(x, np.array(1), axis=0), np.arange(6.0).reshape(3, 2), note="scalar index")],
    "one_hot": [E(lambda i: gc.one_hot(i, 3, on_value=5, off_value=-1, axis=0, dtype=gc.int32),
                  np.array([[0, -1], [2, 3]], np.int64), note="negative and out-of-range indices"),
                E(lambda i: gc.one_hot(i, 4, dtype=gc.bool_), np.array([3, 0, -4], np.int8))],
    "conv2d": [E(lambda x, f: gc.nn.conv2d(x, f, strides=(2, 1), padding="SAME"), np.random.default_rng(0).normal(
                   size=(2, 5, 4, 3)), np.random.default_rng(1).normal(size=(2, 3, 3, 2))),
               E(lambda x, f: gc.nn.conv2d(x, f, padding="SAME", dilations=2), np.random.default_rng(2).normal(
                   size=(1, 6, 7, 2)), np.random.default_rng(3).normal(size=(3, 2, 2, 3))),
               E(lambda x, f: gc.nn.conv2d(x, f, strides=2, padding="SAME"), np.random.default_rng(4).normal(
                   size=(1, 6, 7, 2)), np.random.default_rng(5).normal(size=(1, 1, 2, 3)), note="stride > kernel"),
               E(lambda x, f: gc.nn.conv2d(x, f, strides=(3, 2), padding="VALID"), np.random.default_rng(6).normal(
                   size=(2, 7, 6, 1)), np.random.default_rng(7).normal(size=(3, 2, 1, 2)))],
    "max_pool2d": [E(lambda x: gc.nn.max_pool2d(x, (2, 3), (2, 1), "SAME"), np.random.default_rng(8).normal(
                       size=(2, 5, 4, 3))),
                   E(lambda x: gc.nn.max_pool2d(x, 2, 2, "VALID"),
                     np.array([nan, 1, 3, 2, -inf, -inf, -inf, nan]).reshape(1, 2, 4, 1), note="NaN propagates"),
                   E(lambda x: gc.nn.max_pool2d(x, 1, 3, "SAME"), np.random.default_rng(9).normal(size=(1, 7, 5, 2)),
                     note="stride > window"),
                   E(lambda x: gc.nn.max_pool2d(x, 2, 1, "SAME"), np.arange(-64, 56, dtype=np.int8).reshape(2, 3, 4, 5)),
                   E(lambda x: gc.nn.max_pool2d(x, (3, 2), 2, "SAME"), np.arange(60, dtype=np.int32).reshape(1, 5, 4, 3)
                     * 1000003),
                   E(lambda x: gc.nn.max_pool2d(x, 2, 2, "SAME"), np.arange(60, dtype=np.uint8).reshape(1, 5, 4, 3))],
    "avg_pool2d": [E(lambda x: gc.nn.avg_pool2d(x, (2, 3), (2, 1), "SAME"), np.random.default_rng(10).normal(
                       size=(2, 5, 4, 3)), note="SAME padding is not counted"),
                   E(lambda x: gc.nn.avg_pool2d(x, 3, 3, "SAME"), np.random.default_rng(11).normal(size=(1, 7, 8, 2)))],
    "window_sum": [E(lambda x: gc.nn.lrn(x, depth_radius=2, bias=2.0, alpha=1e-2, beta=0.75),
                     np.random.default_rng(12).normal(size=(2, 2, 3, 4)))],
}

# Where ONNX Runtime's CPU provider has no float64 kernel (the models are still checked).
ORT_NO_FLOAT64 = {"erf": "Erf", "gelu": "Erf", "softsign": "Softsign", "conv2d": "Conv", "avg_pool2d": "AveragePool",
                  "depthwise_conv2d_native": "Conv", "conv2d_backprop_input": "ConvTranspose",
                  **{op: op.capitalize() for op in ("tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
                                                    "atanh")}}


def _sample_inputs(sample, variant):
    arrays = [np.asarray(a) for a in sample.inputs]
    if variant != "native":
        arrays = [a.astype(np.float32) if a.dtype == np.float64 else a for a in arrays]
    return arrays


def _build(sample, arrays, shapes, scope):
    with gc.name_scope(scope):
        phs = [gc.placeholder(gc.as_dtype(a.dtype), shape=s, name=f"in{i}") for i, (a, s) in
               enumerate(zip(arrays, shapes))]
        return phs, sample.build(*phs)


def build_cases(op_name, variant):
    """All samples and edge cases of ``op_name`` in the default graph, placeholders shaped
    as the inputs ("native", "float32") or with every dim unknown ("dynamic"; where the op
    needs some dims, only the first input's dims, or only its first dim, are unknown).
    Returns inputs, outputs, feeds by name."""
    inputs, outputs, feeds = {}, {}, {}
    for k, sample in enumerate(SAMPLES.get(op_name, []) + EDGES.get(op_name, [])):
        if variant != "native" and sample.extra.get("float64_only"):
            continue
        arrays = _sample_inputs(sample, variant)
        if variant == "dynamic":
            tries = [[(None,) * a.ndim for a in arrays],
                     [(None,) * a.ndim if i == 0 else a.shape for i, a in enumerate(arrays)],
                     [(None,) * min(a.ndim, 1) + a.shape[1:] if i == 0 else a.shape for i, a in enumerate(arrays)]]
        else:
            tries = [[a.shape for a in arrays]]
        for attempt, shapes in enumerate(tries):
            try:
                phs, out = _build(sample, arrays, shapes, f"s{k}_{attempt}")
                break
            except gc.GraphcError:
                if attempt + 1 == len(tries):
                    raise
        for i, (p, a) in enumerate(zip(phs, arrays)):
            inputs[f"s{k}_in{i}"] = p
            feeds[f"s{k}_in{i}"] = a
        outputs[f"out{k}"] = out
    return inputs, outputs, feeds


# --- the converter table --------------------------------------------------------------------------
def test_every_op_is_exported_or_refused_with_a_reason():
    assert not set(CONVERTERS) & set(NOT_EXPORTABLE)
    assert not (set(CONVERTERS) | set(NOT_EXPORTABLE)) - set(OPS), "entries for ops that do not exist"
    missing = sorted(set(OPS) - set(CONVERTERS) - set(NOT_EXPORTABLE))
    assert not missing, f"ops with neither an ONNX converter nor a NOT_EXPORTABLE reason: {missing}"
    assert all(len(reason) > 20 for reason in NOT_EXPORTABLE.values())


# Converters checked by their own tests below rather than by samples.
OWN_TESTS = {"placeholder": "test_inputs_keep_their_names_and_symbolic_dims",
             "placeholder_with_default": "test_input_with_a_constant_default_is_optional",
             "cond": "test_control_flow_exports_and_runs_in_onnxruntime",
             "while_loop": "test_control_flow_exports_and_runs_in_onnxruntime"}


@pytest.mark.parametrize("variant", ["native", "float32", "dynamic"])
@pytest.mark.parametrize("op_name", sorted(CONVERTERS))
def test_converter_matches_reference(op_name, variant):
    if op_name in OWN_TESTS:
        assert callable(globals().get(OWN_TESTS[op_name])), f"{op_name}: its test is missing"
        return
    assert op_name in SAMPLES or op_name in EDGES, f"no test case for the {op_name!r} converter"
    graph = gc.Graph()
    with graph.as_default():
        inputs, outputs, feeds = build_cases(op_name, variant)
    with gc.Session(graph=graph, device="reference") as sess:
        frozen = gc.export.freeze(sess, outputs, inputs)
    assert any(op.type == op_name for op in frozen.graph.get_operations()), f"the cases do not build {op_name}"
    uses_float64 = any(np.asarray(a).dtype == np.float64 for a in feeds.values())
    if variant == "native" and op_name in ORT_NO_FLOAT64 and uses_float64:
        model = gc.export.to_onnx(frozen, None)
        onnx.checker.check_model(model, full_check=True)
        with pytest.raises(Exception, match=f"NOT_IMPLEMENTED.*{ORT_NO_FLOAT64[op_name]}"):
            run_onnx(model, feeds)
        return
    export_and_compare(frozen, None, None, [feeds])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_precision_near_zero_and_in_the_tails(dtype):
    """Relative error only, no absolute floor: exp(x) - 1, log(1 + x), ONNX's Softplus
    (log(exp(x) + 1)) and Elu (alpha * (exp(x) - 1)) lose these digits."""
    tiny = np.logspace(-30, -1, 24)
    graph = gc.Graph()
    with graph.as_default():
        small = gc.placeholder(dtype, (None,), name="small")
        tail = gc.placeholder(dtype, (None,), name="tail")
        outputs = {"expm1": gc.expm1(small), "log1p": gc.log1p(small), "elu": gc.nn.elu(-gc.abs(small)),
                   "softplus": gc.nn.softplus(tail)}
    sess = gc.Session(graph=graph, device="reference")
    feeds = {"small": np.concatenate([tiny, -tiny]).astype(dtype),
             "tail": -np.linspace(15, 80 if dtype == np.float32 else 700, 24).astype(dtype)}
    model = gc.export.to_onnx(sess, None, inputs={"small": small, "tail": tail}, outputs=outputs)
    got = run_onnx(model, feeds)
    want = sess.run(outputs, {small: feeds["small"], tail: feeds["tail"]})
    for k in outputs:
        assert np.all(want[k] != 0), k  # the values are all in the digits that could be lost
        assert_close(got[k], want[k], rtol=1e-5 if dtype == np.float32 else 1e-13, atol=0)


def test_every_op_at_newer_opsets():
    """All exportable samples in one graph at opsets where ONNX moved reduction axes to an
    input (18) and later ones."""
    graph = gc.Graph()
    inputs, outputs, feeds = {}, {}, {}
    with graph.as_default():
        for op_name in sorted(set(CONVERTERS) - set(OWN_TESTS)):
            with gc.name_scope(op_name):
                i, o, f = build_cases(op_name, "float32")
            inputs.update({f"{op_name}/{k}": v for k, v in i.items()})
            outputs.update({f"{op_name}/{k}": v for k, v in o.items()})
            feeds.update({f"{op_name}/{k}": v for k, v in f.items()})
    with gc.Session(graph=graph, device="reference") as sess:
        frozen = gc.export.freeze(sess, outputs, inputs)
    for opset in (18, 21):
        export_and_compare(frozen, None, None, [feeds], opset=opset)


def test_opset_range():
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (2,), name="x")
        y = x + 1.0
    sess = gc.Session(graph=graph, device="reference")
    with pytest.raises(ValueError, match="opset must be an int from 17"):
        gc.export.to_onnx(sess, None, outputs={"y": y}, opset=16)
    newest = onnx.defs.onnx_opset_version()
    with pytest.raises(ValueError, match=f"to {newest}"):
        gc.export.to_onnx(sess, None, outputs={"y": y}, opset=newest + 1)
    model = gc.export.to_onnx(sess, None, outputs={"y": y}, opset=newest)
    assert model.opset_import[0].version == newest
    onnx.checker.check_model(model, full_check=True)


# --- inputs, outputs, files -----------------------------------------------------------------
def test_inputs_keep_their_names_and_symbolic_dims(tmp_path):
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="features")
        n = gc.placeholder(gc.int32, (None, None), name="counts")
        y = gc.reduce_sum(x, axis=1) * 2.0
        z = n + 1
    sess = gc.Session(graph=graph, device="reference")
    path = tmp_path / "m.onnx"
    model, _ = export_and_compare(
        sess, {"x": x, "n": n}, {"y": y, "z": z, "x_again": x, "y_again": y},
        [{"x": np.ones((4, 3), np.float32), "n": np.arange(6, dtype=np.int32).reshape(2, 3)},
         {"x": np.zeros((0, 3), np.float32), "n": np.zeros((1, 0), np.int32)}], path=path)
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(model.graph.input) + list(model.graph.output)}
    assert dims == {"x": ["x_dim0", 3], "n": ["n_dim0", "n_dim1"], "y": ["x_dim0"], "z": ["n_dim0", "n_dim1"],
                    "x_again": ["x_dim0", 3], "y_again": ["x_dim0"]}
    assert onnx.load(str(path)) == model  # the file holds the returned model
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file left behind


def test_input_with_a_constant_default_is_optional():
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (None,), name="x")
        scale = gc.placeholder_with_default(np.float32(2.0), (), name="scale")
        y = x * scale
    sess = gc.Session(graph=graph, device="reference")
    inputs, outputs = {"x": x, "scale": scale}, {"y": y}
    frozen = gc.export.freeze(sess, outputs, inputs)
    assert frozen.inputs["scale"].op.type == "placeholder_with_default"
    xv = np.arange(3, dtype=np.float32)
    model, (defaulted, fed) = export_and_compare(frozen, None, None, [{"x": xv}, {"x": xv, "scale": np.array(-1, np.float32)}])
    np.testing.assert_array_equal(defaulted["y"], xv * 2)
    np.testing.assert_array_equal(fed["y"], -xv)
    assert "scale" in {i.name for i in model.graph.initializer}


def test_input_with_a_computed_default_is_refused():
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (None,), name="x")
        s, where = made_here(gc.placeholder_with_default(x * 2.0, (None,), name="s"))
        y = s + 1.0
    sess = gc.Session(graph=graph, device="reference")
    with pytest.raises(ExportError, match="constant default") as info:
        gc.export.to_onnx(sess, None, inputs={"x": x, "s": s}, outputs={"y": y})
    assert where in str(info.value) and "placeholder_with_default 's'" in str(info.value)


def test_frozen_graph_and_loaded_model_are_accepted():
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (None, 2), name="x")
        w = gc.Variable(np.array([[1.0, -1.0], [2.0, 0.5]], np.float32), name="w")
        y = gc.matmul(x, w)
        z = gc.nn.relu(y)
        init = gc.global_variables_initializer()
    with gc.Session(graph=graph, device="reference") as sess:
        sess.run(init)
        frozen = gc.export.freeze(sess, {"y": y, "z": z}, {"x": x})
    loaded = types.SimpleNamespace(frozen=frozen)  # what gc.export.load_model gives
    model = gc.export.to_onnx(loaded, None, outputs=["z"])
    assert [o.name for o in model.graph.output] == ["z"]
    xv = np.array([[1.0, 2.0], [-3.0, 1.0]], np.float32)
    want = np.maximum(xv @ np.array([[1.0, -1.0], [2.0, 0.5]], np.float32), 0)
    np.testing.assert_array_equal(run_onnx(model, {"x": xv})["z"], want)
    (weights,) = model.graph.initializer  # the variable, now a constant
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(weights), [[1.0, -1.0], [2.0, 0.5]])


def test_missing_onnx_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (2,), name="x")
    with pytest.raises(ImportError, match=r"pip install graphc\[onnx\]"):
        gc.export.to_onnx(gc.Session(graph=graph, device="reference"), None, outputs={"y": x + 1.0})


# --- what cannot be exported ------------------------------------------------------------------
def test_random_op_is_refused_by_name_and_line(tmp_path):
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        noise, where = made_here(gc.random_uniform((2, 3), name="noise"))
        y = x + noise
    path = tmp_path / "model.onnx"
    path.write_bytes(b"an older model")
    with pytest.raises(ExportError) as info:
        gc.export.to_onnx(gc.Session(graph=graph, device="reference"), path, outputs={"y": y})
    msg = str(info.value)
    assert "random_uniform 'noise'" in msg and where in msg and "ONNX export supports: abs, " in msg
    assert path.read_bytes() == b"an older model"  # a failed export leaves the file alone


def test_gradient_op_is_refused():
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (1, 3, 3, 1), name="x")
        g = gc.placeholder(gc.float32, (1, 3, 3, 2), name="g")
        like = gc.constant(np.ones((2, 2, 1, 2), np.float32))
        df, where = made_here(make1("conv2d_backprop_filter", (x, g, like),
                                    {"strides": (1, 1), "dilations": (1, 1), "padding": "SAME"}, "df"))
    with pytest.raises(ExportError, match="conv2d_backprop_filter 'df'.*gradient-only") as info:
        gc.export.to_onnx(gc.Session(graph=graph, device="reference"), None, outputs={"df": df})
    assert where in str(info.value)


def test_avg_pool_same_with_stride_over_window_on_unknown_size_is_refused():
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (1, None, None, 1), name="x")
        y, where = made_here(gc.nn.avg_pool2d(x, 1, 2, "SAME", name="pool"))
    with pytest.raises(ExportError, match="avg_pool2d 'pool'.*static height and width") as info:
        gc.export.to_onnx(gc.Session(graph=graph, device="reference"), None, outputs={"y": y})
    assert where in str(info.value)


def test_int64_max_pool_is_refused():
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.int64, (1, 4, 4, 1), name="x")
        y, where = made_here(gc.nn.max_pool2d(x, 2, 2, name="pool"))
    with pytest.raises(ExportError, match="max_pool2d 'pool'.*int64") as info:
        gc.export.to_onnx(gc.Session(graph=graph, device="reference"), None, outputs={"y": y})
    assert where in str(info.value)


# --- whole models -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    x_train, y_train, x_test, _ = datasets.load_digits()
    return x_train[:320], y_train[:320], x_test[:64]


def _trained(model, digits, device="cpu"):
    sess = gc.Session(graph=model.graph, device=device)
    with model.graph.as_default():
        sess.run(model.init)
    history = zoo.train(model, sess, digits[0], digits[1], epochs=1, seed=0)
    assert np.isfinite(history[0])
    return sess


@pytest.mark.parametrize("name", ["mlp", "lenet", "lenet_dropout"])
def test_digits_model_matches_cpu_backend(name, digits, tmp_path):
    model = {"mlp": lambda: zoo.mlp(seed=0, hidden=64),
             "lenet": lambda: zoo.lenet(seed=0),
             "lenet_dropout": lambda: zoo.lenet(seed=0, dropout=0.3)}[name]()
    sess = _trained(model, digits)
    x_test = digits[2]
    exported, results = export_and_compare(sess, {"x": model.x}, {"logits": model.logits},
                                           [{"x": x_test[:7]}, {"x": x_test}], path=tmp_path / f"{name}.onnx",
                                           scaled=True)
    assert [r["logits"].shape for r in results] == [(7, 10), (64, 10)]
    ops = [n.op_type for n in exported.graph.node]
    if name.startswith("lenet"):
        # one NHWC -> NCHW transpose at the input and one back before flatten; the rest cancel
        assert ops.count("Transpose") == 2 and ops.count("Conv") == 2
        assert not {"RandomUniform", "RandomUniformLike", "Dropout"} & set(ops)
    assert [d.dim_param for d in exported.graph.input[0].type.tensor_type.shape.dim][:1] == ["x_dim0"]


def test_convolutional_net_with_unknown_image_size():
    rng = np.random.default_rng(0)
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (None, None, None, 3), name="images")
        h = gc.nn.conv2d(x, rng.normal(size=(3, 3, 3, 8)).astype(np.float32), strides=2, padding="SAME")
        h = gc.nn.relu(h + rng.normal(size=8).astype(np.float32))
        h = gc.nn.max_pool2d(h, 3, 2, "SAME")
        h = gc.nn.conv2d(h, rng.normal(size=(1, 1, 8, 4)).astype(np.float32), dilations=1, padding="VALID")
        pooled = gc.reduce_mean(h, axis=(1, 2))
        scores = gc.matmul(pooled, rng.normal(size=(4, 5)).astype(np.float32))
    sess = gc.Session(graph=graph, device="reference")
    feeds = [{"images": rng.normal(size=(2, 9, 7, 3)).astype(np.float32)},
             {"images": rng.normal(size=(1, 16, 16, 3)).astype(np.float32)}]
    model, results = export_and_compare(sess, {"images": x}, {"scores": scores, "features": h}, feeds, scaled=True)
    assert [r["features"].shape for r in results] == [(2, 3, 2, 4), (1, 4, 4, 4)]
    assert [n.op_type for n in model.graph.node].count("Transpose") == 2  # in, and back for "features"


def test_softmax_and_layer_norm_graphs():
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (None, None, 16), name="x")
        gamma = gc.constant(np.linspace(0.5, 1.5, 16, dtype=np.float32))
        beta = gc.constant(np.linspace(-1, 1, 16, dtype=np.float32))
        mean = gc.reduce_mean(x, axis=-1, keepdims=True)
        variance = gc.reduce_mean(gc.square(x - mean), axis=-1, keepdims=True)
        normed = (x - mean) * gc.rsqrt(variance + 1e-5) * gamma + beta
        probs = gc.nn.softmax(normed)
    sess = gc.Session(graph=graph, device="reference")
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.normal(3, 2, size=(2, 5, 16)).astype(np.float32)},
             {"x": rng.normal(size=(1, 1, 16)).astype(np.float32)}]
    _, results = export_and_compare(sess, {"x": x}, {"normed": normed, "probs": probs}, feeds)
    np.testing.assert_allclose(results[0]["probs"].sum(-1), 1.0, rtol=1e-5)
    z = (results[0]["normed"] - beta.op.attrs["value"]) / gamma.op.attrs["value"]  # standardized rows
    np.testing.assert_allclose(z.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.var(-1), 1.0, rtol=1e-4)



def test_fused_batch_norm_in_both_modes():
    """Training mode (decomposed: TF1's batch mean and unbiased variance, the count of a None
    batch taken at run time) and inference mode (elementwise ops; NCHW reshapes the
    per-channel factors), a batch of one included."""
    graph = gc.Graph()
    rng = np.random.default_rng(3)
    scale = rng.uniform(0.5, 1.5, 3).astype(np.float32)
    offset, mean, var = rng.normal(size=3).astype(np.float32), rng.normal(size=3).astype(np.float32), \
        rng.uniform(0.5, 1.5, 3).astype(np.float32)
    with graph.as_default():
        nhwc = gc.placeholder(gc.float32, (None, 2, 2, 3), name="nhwc")
        nchw = gc.placeholder(gc.float32, (None, 3, 2, 2), name="nchw")
        y, batch_mean, batch_var = gc.nn.fused_batch_norm(nhwc, scale, offset)
        yc, _, batch_var_c = gc.nn.fused_batch_norm(nchw, scale, offset, data_format="NCHW")
        yi, _, _ = gc.nn.fused_batch_norm(nchw, scale, offset, mean, var, data_format="NCHW", is_training=False)
    sess = gc.Session(graph=graph, device="reference")
    feeds = [{"nhwc": rng.normal(2, 3, size=(4, 2, 2, 3)).astype(np.float32),
              "nchw": rng.normal(size=(2, 3, 2, 2)).astype(np.float32)},
             {"nhwc": rng.normal(size=(1, 2, 2, 3)).astype(np.float32),
              "nchw": rng.normal(size=(1, 3, 2, 2)).astype(np.float32)}]
    outputs = {"y": y, "mean": batch_mean, "var": batch_var, "yc": yc, "var_c": batch_var_c, "yi": yi}
    model, results = export_and_compare(sess, {"nhwc": nhwc, "nchw": nchw}, outputs, feeds)
    assert "BatchNormalization" not in {n.op_type for n in model.graph.node}
    assert_matches(results[0]["var"], feeds[0]["nhwc"].var(axis=(0, 1, 2), ddof=1), "unbiased variance")

# --- ONNX: If and Loop, checked in ONNX Runtime ------------------------------------------------------
def _rnn_like(x):
    w = gc.constant(np.array([0.5, -1.0, 2.0], np.float32))

    def body(i, h):
        return i + 1, gc.cond(gc.equal(i % 2, 0), lambda: gc.tanh(h * w + x), lambda: h * 0.5)
    return gc.while_loop(lambda i, h: i < 5, body, [0, x])[1]


ONNX_CASES = [
    ("cond", lambda x: gc.cond(gc.reduce_sum(x) > 0, lambda: x * 2.0, lambda: -x)),
    ("cond_nested_outputs", lambda x: gc.cond(gc.reduce_sum(x) < 0, lambda: (x, x + 1.0), lambda: (-x, x * x))[1]),
    ("while_with_cond_inside", _rnn_like),
    ("while_maximum_iterations", lambda x: gc.while_loop(lambda v: True, lambda v: v * 1.5, [x], maximum_iterations=4)),
    ("while_zero_trips", lambda x: gc.while_loop(lambda v: gc.reduce_sum(v) > 1e6, lambda v: v * 2.0, [x])),
    ("while_data_dependent_trips", lambda x: gc.while_loop(lambda v: gc.reduce_max(gc.abs(v)) < 50.0,
                                                           lambda v: v * 2.0 + 0.1, [x])),
    ("scan", lambda x: gc.scan(lambda a, e: a * 0.5 + e, x)),
    ("map_fn", lambda x: gc.map_fn(lambda e: gc.reduce_sum(e * e), x)),
    ("foldr", lambda x: gc.foldr(lambda a, e: a * e + 1.0, x)),
    ("stacked_body_values", lambda x: _stacking(gc.while_loop(
        lambda i, h: i < 3, lambda i, h: (i + 1, gc.tanh(h) * gc.sigmoid(h)), [0, x])[1])),
]


def _stacking(final):
    """The loop of ``final`` made to stack its body's tanh per iteration (as the forward loop
    of a gradient keeps the values its rules read): ONNX Loop's scan outputs."""
    from graphc.ops._build import make
    from graphc.ops.control_flow import Body
    op = final.op
    body = op.get_attr("body")
    (tanh,) = [o.outputs[0] for o in body.ops if o.type == "tanh"]
    stacking = make("while_loop", op.inputs, op.attrs.replace(
        n_stacked=1, body=Body(body.graph, body.inputs, list(body.outputs) + [tanh], body.label)), "stacking")
    return stacking.outputs[-1]


@pytest.mark.parametrize("name, build", ONNX_CASES, ids=[c[0] for c in ONNX_CASES])
def test_control_flow_exports_and_runs_in_onnxruntime(name, build):
    xv = (np.arange(12, dtype=np.float32).reshape(4, 3) / 12 - 0.4)
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        y = build(x)
        with gc.Session(device="reference") as sess:
            want = sess.run(y, {x: xv})
            model = gc.export.to_onnx(sess, None, inputs={"x": x}, outputs={"y": y})
    got = run_onnx(model, {"x": xv})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

"""gc.nn: activations, softmax, cross-entropies, l2_loss, bias_add, LRN, batch norm, moments and
dropout, each checked against an independent NumPy/SciPy expression written here."""
from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import scipy.special as sps

import graphc as gc
from support import assert_close, differences_on, float_edges

FLOATS = [np.float32, np.float64]
GC_DTYPE = {np.float32: gc.float32, np.float64: gc.float64}


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _np_log_softmax(x, axis):
    """log_softmax in float64, shifted by the (finite) max; -inf logits give -inf."""
    x = _f64(x)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    s = x - m
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def _np_softmax(x, axis):
    return np.exp(_np_log_softmax(x, axis))


def _here() -> int:
    """The line number of the caller's next line (where the graph node is made)."""
    return inspect.currentframe().f_back.f_lineno + 1


# --- activations --------------------------------------------------------------------------
def _activation_inputs(dtype):
    regular = np.linspace(-7.0, 8.0, 31)
    extra = np.array([80.0, -80.0, 1e4, -1e4, 1e-3, -1e-3])
    return np.concatenate([float_edges(dtype), regular.astype(dtype), extra.astype(dtype)])


def _expected_activations(x64):
    """NumPy/SciPy formulas, evaluated in float64."""
    with np.errstate(all="ignore"):
        return {
            "relu": np.maximum(x64, 0.0),
            "relu6": np.minimum(np.maximum(x64, 0.0), 6.0),
            "leaky_relu": np.where(x64 > 0, x64, 0.2 * x64),
            "leaky_relu_01": np.where(x64 > 0, x64, 0.01 * x64),
            "elu": np.where(x64 > 0, x64, np.expm1(x64)),
            "elu_05": np.where(x64 > 0, x64, 0.5 * np.expm1(x64)),
            "softplus": np.logaddexp(0.0, x64),
            "gelu": 0.5 * x64 * sps.erfc(-x64 / math.sqrt(2.0)),
            "gelu_tanh": 0.5 * x64 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x64 + 0.044715 * x64 ** 3))),
            "silu": x64 * sps.expit(x64),
            "swish": x64 * sps.expit(x64),
            "sigmoid": sps.expit(x64),
            "tanh": np.tanh(x64),
        }


@pytest.mark.parametrize("dtype", FLOATS)
def test_activations_match_numpy_formulas_on_edge_values(evaluate, dtype):
    xv = _activation_inputs(dtype)
    x = gc.placeholder(GC_DTYPE[dtype], shape=(None,), name="x")
    fetches = {
        "relu": gc.nn.relu(x),
        "relu6": gc.nn.relu6(x),
        "leaky_relu": gc.nn.leaky_relu(x),
        "leaky_relu_01": gc.nn.leaky_relu(x, alpha=0.01),
        "elu": gc.nn.elu(x),
        "elu_05": gc.nn.elu(x, alpha=0.5),
        "softplus": gc.nn.softplus(x),
        "gelu": gc.nn.gelu(x),
        "gelu_tanh": gc.nn.gelu(x, approximate=True),
        "silu": gc.nn.silu(x),
        "swish": gc.nn.swish(x),
        "sigmoid": gc.nn.sigmoid(x),
        "tanh": gc.nn.tanh(x),
    }
    for name, t in fetches.items():
        assert t.dtype == GC_DTYPE[dtype], name
        assert t.shape.as_list() == [None], name
    got = evaluate(fetches, {x: xv})
    expected = _expected_activations(_f64(xv))
    for name, want in expected.items():
        with np.errstate(over="ignore"):
            want = want.astype(dtype)
        try:
            assert_close(got[name], want)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None


def test_activation_spot_values(evaluate):
    x = gc.constant(np.array([-2.0, -0.5, 0.0, 0.5, 3.0, 7.0]), dtype=gc.float64)
    got = evaluate({"relu6": gc.nn.relu6(x), "elu": gc.nn.elu(x), "leaky": gc.nn.leaky_relu(x, alpha=0.1),
                    "gelu": gc.nn.gelu(x), "softplus": gc.nn.softplus(x)})
    assert_close(got["relu6"], np.array([0.0, 0.0, 0.0, 0.5, 3.0, 6.0]))
    assert_close(got["leaky"], np.array([-0.2, -0.05, 0.0, 0.5, 3.0, 7.0]))
    assert_close(got["elu"][:2], np.array([math.exp(-2.0) - 1.0, math.exp(-0.5) - 1.0]))
    # gelu(x) = x * Phi(x); Phi(3) = 0.9986501019683699
    assert_close(got["gelu"][4], np.float64(3.0 * 0.9986501019683699))
    assert_close(got["softplus"][2], np.float64(math.log(2.0)))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_relu_on_integers(evaluate, dtype):
    info = np.iinfo(dtype)
    xv = np.array([info.min, -3, -1, 0, 1, 5, info.max], dtype=dtype)
    x = gc.placeholder(gc.as_dtype(dtype), shape=(None,))
    y = gc.nn.relu(x)
    assert y.dtype == gc.as_dtype(dtype)
    assert_close(evaluate(y, {x: xv}), np.maximum(xv, 0).astype(dtype))


# --- softmax / log_softmax --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_and_log_softmax_on_every_axis(evaluate, dtype):
    rng = np.random.default_rng(0)
    xv = (rng.standard_normal((2, 3, 4)) * 3).astype(dtype)
    x = gc.placeholder(GC_DTYPE[dtype], shape=(None, 3, 4))
    fetches = {}
    for axis in (-3, -2, -1, 0, 1, 2):
        fetches[f"softmax{axis}"] = gc.nn.softmax(x, axis=axis)
        fetches[f"log_softmax{axis}"] = gc.nn.log_softmax(x, axis=axis)
    fetches["softmax_default"] = gc.nn.softmax(x)
    fetches["log_softmax_default"] = gc.nn.log_softmax(x)
    for name, t in fetches.items():
        assert t.dtype == GC_DTYPE[dtype] and t.shape.as_list() == [None, 3, 4], name
    got = evaluate(fetches, {x: xv})
    for axis in (-3, -2, -1, 0, 1, 2):
        assert_close(got[f"softmax{axis}"], _np_softmax(xv, axis).astype(dtype))
        assert_close(got[f"log_softmax{axis}"], _np_log_softmax(xv, axis).astype(dtype))
        assert_close(got[f"softmax{axis}"].sum(axis=axis), np.ones_like(xv.sum(axis=axis)),
                     rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(got["softmax_default"], _np_softmax(xv, -1).astype(dtype))
    assert_close(got["log_softmax_default"], _np_log_softmax(xv, -1).astype(dtype))


EXTREME_LOGITS = np.array([
    [1e4, 0.0, -1e4, 5.0],
    [-1e4, -1e4, -1e4, -1e4],
    [1e4, 1e4, 1e4, 1e4],
    [-np.inf, 0.0, 1.0, -np.inf],
    [-np.inf, 1e4, -1e4, 3.0],
    [0.0, 0.0, 0.0, 0.0],
    [88.0, 89.0, 90.0, 91.0],
    [-120.0, -110.0, -100.0, -200.0],
    [710.0, 700.0, -710.0, 0.0],
])


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_with_huge_and_infinite_logits(evaluate, dtype):
    xv = EXTREME_LOGITS.astype(dtype)
    x = gc.placeholder(GC_DTYPE[dtype], shape=(None, 4))
    got = evaluate({"s1": gc.nn.softmax(x), "l1": gc.nn.log_softmax(x),
                    "s0": gc.nn.softmax(x, axis=0), "l0": gc.nn.log_softmax(x, axis=0)}, {x: xv})
    for axis, s, ls in ((1, "s1", "l1"), (0, "s0", "l0")):
        want_log = _np_log_softmax(xv, axis)
        assert np.all(np.isfinite(got[s])), f"softmax axis {axis} produced non-finite values"
        assert_close(got[s], np.exp(want_log).astype(dtype))
        assert_close(got[ls], want_log.astype(dtype))
    # -inf logits get probability 0 and log-probability -inf
    assert got["s1"][3, 0] == 0 and got["l1"][3, 0] == -np.inf
    assert_close(got["s1"][2], np.full(4, 0.25, dtype))
    assert_close(got["l1"][1], np.full(4, -math.log(4.0), dtype))


def test_softmax_axis_out_of_range_and_bad_rank(graph):
    x = gc.placeholder(gc.float32, shape=(2, 3))
    with pytest.raises(gc.ShapeError, match="softmax"):
        gc.nn.softmax(x, axis=2)
    with pytest.raises(gc.ShapeError, match="log_softmax"):
        gc.nn.log_softmax(x, axis=-3)


# --- cross-entropies ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_cross_entropy_on_every_axis(evaluate, dtype):
    rng = np.random.default_rng(1)
    logits_v = (rng.standard_normal((2, 3, 4)) * 2).astype(dtype)
    raw = rng.random((2, 3, 4))
    logits = gc.placeholder(GC_DTYPE[dtype], shape=(None, 3, 4))
    labels = gc.placeholder(GC_DTYPE[dtype], shape=(None, 3, 4))
    fetches = {}
    for axis in (-3, -2, -1, 0, 1, 2):
        fetches[axis] = gc.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=axis)
    fetches["v2"] = gc.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=logits)
    assert fetches[1].shape.as_list() == [None, 4]
    assert fetches[0].shape.as_list() == [3, 4]
    assert fetches[-1].shape.as_list() == [None, 3]
    # one labels tensor for all axes: any non-negative weights are valid labels
    labels_v = raw.astype(dtype)
    got = evaluate(fetches, {logits: logits_v, labels: labels_v})
    for axis in (-3, -2, -1, 0, 1, 2):
        want = -np.sum(_f64(labels_v) * _np_log_softmax(logits_v, axis), axis=axis)
        assert got[axis].dtype == dtype
        assert_close(got[axis], want.astype(dtype))
    assert_close(got["v2"], got[-1])


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_cross_entropy_with_huge_and_infinite_logits(evaluate, dtype):
    logits_v = np.array([
        [1e4, 0.0, -1e4, 5.0],
        [-1e4, -1e4, -1e4, -1e4],
        [-np.inf, 0.0, 1.0, -np.inf],      # zero labels on the -inf logits: finite loss
        [-np.inf, 1e4, -1e4, 3.0],
        [-np.inf, 0.0, 1.0, 2.0],          # positive label on a -inf logit: infinite loss
        [1e4, 1e4, 1e4, 1e4],
    ]).astype(dtype)
    labels_v = np.array([
        [0.0, 0.0, 1.0, 0.0],
        [0.25, 0.25, 0.25, 0.25],
        [0.0, 0.5, 0.5, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.25, 0.25, 0.25, 0.25],
        [1.0, 0.0, 0.0, 0.0],
    ]).astype(dtype)
    logits = gc.placeholder(GC_DTYPE[dtype], shape=(None, 4))
    labels = gc.placeholder(GC_DTYPE[dtype], shape=(None, 4))
    loss = gc.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    got = evaluate(loss, {logits: logits_v, labels: labels_v})
    logp = _np_log_softmax(logits_v, -1)
    with np.errstate(invalid="ignore"):
        want = -np.sum(np.where(labels_v == 0, 0.0, _f64(labels_v) * logp), axis=-1)
    assert want[4] == np.inf and np.all(np.isfinite(np.delete(want, 4)))
    assert_close(got, want.astype(dtype))
    assert_close(got[0], dtype(2e4))  # -log_softmax = 1e4 - (-1e4)


@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("dtype", FLOATS)
def test_sparse_softmax_cross_entropy(evaluate, dtype, label_dtype):
    logits_v = np.concatenate([EXTREME_LOGITS, np.random.default_rng(2).standard_normal((3, 4)) * 3]).astype(dtype)
    labels_v = np.array([2, 0, 3, 3, 0, 2, 3, 1, 2, 0, 1, 3], dtype=label_dtype)
    logits = gc.placeholder(GC_DTYPE[dtype], shape=(None, 4))
    labels = gc.placeholder(gc.as_dtype(label_dtype), shape=(None,))
    loss = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    # rank-3 logits: labels carry every axis but the last
    logits3 = gc.placeholder(GC_DTYPE[dtype], shape=(None, 3, 4))
    labels3 = gc.placeholder(gc.as_dtype(label_dtype), shape=(None, 3))
    loss3 = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels3, logits=logits3)
    assert loss.shape.as_list() == [None] and loss3.shape.as_list() == [None, 3]
    assert loss.dtype == GC_DTYPE[dtype]
    got = evaluate({"loss": loss, "loss3": loss3},
                   {logits: logits_v, labels: labels_v,
                    logits3: logits_v.reshape(4, 3, 4), labels3: labels_v.reshape(4, 3)})
    logp = _np_log_softmax(logits_v, -1)
    want = -logp[np.arange(len(labels_v)), labels_v]
    assert want[3] == np.inf and want[4] == np.inf  # the label points at a -inf logit
    assert_close(got["loss"], want.astype(dtype))
    assert_close(got["loss3"], want.reshape(4, 3).astype(dtype))


@pytest.mark.parametrize("bad", [4, -1, 100])
def test_sparse_softmax_cross_entropy_label_out_of_range_is_a_runtime_error(graph, device, bad):
    logits = gc.placeholder(gc.float32, shape=(None, 4))
    labels = gc.placeholder(gc.int32, shape=(None,))
    loss = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    with gc.Session(graph=graph, device=device) as sess:
        ok = sess.run(loss, {logits: np.zeros((2, 4), np.float32), labels: [0, 3]})
        assert_close(ok, np.full(2, math.log(4.0), np.float32))
        with pytest.raises(gc.InvalidArgumentError) as info:
            sess.run(loss, {logits: np.zeros((3, 4), np.float32), labels: [1, bad, 2]})
    message = str(info.value)
    assert "sparse_softmax_cross_entropy_with_logits" in message
    assert str(bad) in message


def test_cross_entropy_build_errors(graph):
    logits = gc.placeholder(gc.float32, shape=(None, 4))
    with pytest.raises(gc.ShapeError):
        gc.nn.sparse_softmax_cross_entropy_with_logits(labels=gc.placeholder(gc.int32, (None, 4)), logits=logits)
    with pytest.raises(gc.ShapeError):
        gc.nn.sparse_softmax_cross_entropy_with_logits(labels=gc.placeholder(gc.int32, (3,)),
                                                       logits=gc.placeholder(gc.float32, (5, 4)))
    with pytest.raises(gc.DTypeError):
        gc.nn.sparse_softmax_cross_entropy_with_logits(labels=gc.placeholder(gc.float32, (None,)), logits=logits)
    with pytest.raises(gc.ShapeError):
        gc.nn.softmax_cross_entropy_with_logits(labels=gc.placeholder(gc.float32, (None, 3)), logits=logits)
    with pytest.raises(gc.ShapeError):
        gc.nn.softmax_cross_entropy_with_logits(labels=gc.placeholder(gc.float32, (None, 4)), logits=logits,
                                                axis=2)
    with pytest.raises(TypeError):
        gc.nn.softmax_cross_entropy_with_logits(logits=logits)


@pytest.mark.parametrize("dtype", FLOATS)
def test_sigmoid_cross_entropy_with_logits(evaluate, dtype):
    rng = np.random.default_rng(3)
    xv = np.concatenate([[1e4, -1e4, 1e30, -1e30, 0.0, 50.0, -50.0, 1e-40],
                         rng.standard_normal(12) * 4]).astype(dtype)
    zv = np.concatenate([[0.3, 0.3, 1.0, 0.0, 0.5, 0.0, 1.0, 1.0], rng.random(12)]).astype(dtype)
    x = gc.placeholder(GC_DTYPE[dtype], shape=(None,))
    z = gc.placeholder(GC_DTYPE[dtype], shape=(None,))
    loss = gc.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x)
    assert loss.dtype == GC_DTYPE[dtype]
    got = evaluate(loss, {x: xv, z: zv})
    x64, z64 = _f64(xv), _f64(zv)
    # z * -log(sigmoid(x)) + (1 - z) * -log(1 - sigmoid(x)), computed without overflow
    with np.errstate(invalid="ignore"):
        want = z64 * np.logaddexp(0.0, -x64) + (1.0 - z64) * np.logaddexp(0.0, x64)
    want[2] = 0.0   # x = 1e30, z = 1: exactly 0 (the product form would give 0 * inf)
    want[3] = 0.0   # x = -1e30, z = 0
    assert np.all(np.isfinite(got))
    assert_close(got, want.astype(dtype), rtol=1e-5 if dtype == np.float32 else 1e-10,
                 atol=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(got[0], dtype(7000.0))


@pytest.mark.parametrize("dtype", FLOATS)
def test_l2_loss(evaluate, dtype):
    rng = np.random.default_rng(4)
    xv = rng.standard_normal((3, 5)).astype(dtype)
    x = gc.placeholder(GC_DTYPE[dtype], shape=(None, 5))
    edge = gc.placeholder(GC_DTYPE[dtype], shape=(None,))
    loss = gc.nn.l2_loss(x)
    assert loss.dtype == GC_DTYPE[dtype] and loss.shape.as_list() == []
    got = evaluate({"loss": loss, "edge": gc.nn.l2_loss(edge), "empty": gc.nn.l2_loss(x[:0])},
                   {x: xv, edge: np.array([1.0, np.inf], dtype)})
    assert_close(got["loss"], dtype(np.sum(_f64(xv) ** 2) / 2))
    assert got["edge"] == np.inf
    assert_close(got["empty"], dtype(0.0))
    got_nan = evaluate(gc.nn.l2_loss(edge), {edge: np.array([1.0, np.nan], dtype)})
    assert np.isnan(got_nan)


# --- bias_add -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
def test_bias_add(evaluate, dtype):
    rng = np.random.default_rng(5)
    v = rng.standard_normal((2, 3, 4)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    value = gc.placeholder(GC_DTYPE[dtype], shape=(None, 3, 4))
    bias = gc.constant(b)
    y = gc.nn.bias_add(value, bias)
    y2 = gc.nn.bias_add(gc.reshape(value, (-1, 4)), bias)
    assert y.shape.as_list() == [None, 3, 4] and y.dtype == GC_DTYPE[dtype]
    got = evaluate({"y": y, "y2": y2}, {value: v})
    assert_close(got["y"], (v + b).astype(dtype))
    assert_close(got["y2"], (v + b).reshape(-1, 4).astype(dtype))


def test_bias_add_build_errors_name_the_op_and_the_user_line(graph):
    value = gc.placeholder(gc.float32, shape=(None, 3, 4))
    with pytest.raises(gc.ShapeError) as info:
        line = _here()
        gc.nn.bias_add(value, gc.constant(np.zeros(5, np.float32)))
    assert "bias_add" in str(info.value) and f"test_nn.py:{line}" in str(info.value)
    with pytest.raises(gc.ShapeError, match="bias_add"):
        gc.nn.bias_add(value, gc.constant(np.zeros((1, 4), np.float32)))
    with pytest.raises(gc.ShapeError, match="bias_add"):
        gc.nn.bias_add(gc.constant(np.float32(1.0)), gc.constant(np.zeros(1, np.float32)))
    with pytest.raises(gc.ShapeError, match="bias_add"):
        gc.nn.bias_add(value, gc.constant(np.zeros(4, np.float32)), data_format="NCDHW")
    with pytest.raises(gc.DTypeError, match="bias_add"):
        gc.nn.bias_add(value, gc.constant(np.zeros(4, np.float64)))


def test_bias_add_unknown_channel_dim_checked_at_run_time(graph, device):
    """With the last dim unknown at build time, a fed value whose last dim differs from the
    bias size is an error (TensorFlow: 'Must provide as many biases as the last dimension'),
    not a silent broadcast."""
    value = gc.placeholder(gc.float32, shape=(None, None))
    y = gc.nn.bias_add(value, gc.constant(np.arange(3, dtype=np.float32)))
    with gc.Session(graph=graph, device=device) as sess:
        assert_close(sess.run(y, {value: np.ones((2, 3), np.float32)}),
                     np.ones((2, 3), np.float32) + np.arange(3, dtype=np.float32))
        with pytest.raises(gc.InvalidArgumentError):
            sess.run(y, {value: np.ones((2, 1), np.float32)})


# --- local response normalization ---------------------------------------------------------
def _lrn_loop(x, depth_radius, bias, alpha, beta):
    """TensorFlow's formula, one channel at a time."""
    x = _f64(x)
    channels = x.shape[-1]
    out = np.empty_like(x)
    for c in range(channels):
        lo, hi = max(0, c - depth_radius), min(channels - 1, c + depth_radius)
        sqr_sum = np.zeros(x.shape[:-1])
        for j in range(lo, hi + 1):
            sqr_sum += x[..., j] ** 2
        out[..., c] = x[..., c] / (bias + alpha * sqr_sum) ** beta
    return out


def _caffe_lrn_loop(x, local_size, alpha, beta, k):
    """Caffe ACROSS_CHANNELS: x / (k + alpha / n * sum over the n-window of x^2) ** beta."""
    x = _f64(x)
    channels = x.shape[-1]
    half = (local_size - 1) // 2
    out = np.empty_like(x)
    for c in range(channels):
        window = [j for j in range(c - half, c + half + 1) if 0 <= j < channels]
        scale = k + alpha / local_size * sum(x[..., j] ** 2 for j in window)
        out[..., c] = x[..., c] * scale ** (-beta)
    return out


LRN_CASES = {
    "defaults": {},
    "r2": dict(depth_radius=2, bias=1.0, alpha=0.1, beta=0.75),
    "r0": dict(depth_radius=0, bias=2.0, alpha=0.5, beta=0.5),
    "wide": dict(depth_radius=10, bias=0.5, alpha=0.05, beta=1.0),
    "r1": dict(depth_radius=1, bias=1.0, alpha=1e-4, beta=0.75),
}
LRN_DEFAULTS = dict(depth_radius=5, bias=1.0, alpha=1.0, beta=0.5)


@pytest.mark.parametrize("dtype", FLOATS)
def test_local_response_normalization(evaluate, dtype):
    rng = np.random.default_rng(6)
    xv = (rng.standard_normal((2, 3, 2, 7)) * 2).astype(dtype)
    x = gc.placeholder(GC_DTYPE[dtype], shape=(None, 3, 2, 7))
    flat = gc.placeholder(GC_DTYPE[dtype], shape=(None, 7))
    fetches = {name: gc.nn.local_response_normalization(x, **kw) for name, kw in LRN_CASES.items()}
    fetches["lrn_alias"] = gc.nn.lrn(x, depth_radius=2, bias=1.0, alpha=0.1, beta=0.75)
    fetches["rank2"] = gc.nn.lrn(flat, depth_radius=2, bias=1.0, alpha=0.1, beta=0.75)
    # Caffe local_size=5, alpha=0.02, beta=0.75, k=2 through the mapping in the docstring
    fetches["caffe"] = gc.nn.lrn(x, depth_radius=(5 - 1) // 2, bias=2.0, alpha=0.02 / 5, beta=0.75)
    for t in fetches.values():
        assert t.dtype == GC_DTYPE[dtype]
    got = evaluate(fetches, {x: xv, flat: xv.reshape(-1, 7)})
    for name, kw in LRN_CASES.items():
        want = _lrn_loop(xv, **{**LRN_DEFAULTS, **kw}).astype(dtype)
        assert_close(got[name], want, rtol=1e-5 if dtype == np.float32 else 1e-10)
    assert_close(got["lrn_alias"], _lrn_loop(xv, 2, 1.0, 0.1, 0.75).astype(dtype), rtol=1e-5 if dtype == np.float32 else 1e-10)
    assert_close(got["rank2"], _lrn_loop(xv.reshape(-1, 7), 2, 1.0, 0.1, 0.75).astype(dtype),
                 rtol=1e-5 if dtype == np.float32 else 1e-10)
    assert_close(got["caffe"], _caffe_lrn_loop(xv, 5, 0.02, 0.75, 2.0).astype(dtype),
                 rtol=1e-5 if dtype == np.float32 else 1e-10)


# --- batch normalization and moments --------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
def test_batch_normalization(evaluate, dtype):
    rng = np.random.default_rng(7)
    xv = (rng.standard_normal((4, 3, 2, 5)) * 3 + 1).astype(dtype)
    mean_v = rng.standard_normal(5).astype(dtype)
    var_v = (rng.random(5) + 0.5).astype(dtype)
    offset_v = rng.standard_normal(5).astype(dtype)
    scale_v = (rng.random(5) + 0.5).astype(dtype)
    eps = 1e-3
    x = gc.placeholder(GC_DTYPE[dtype], shape=(None, 3, 2, 5))
    mean, var, offset, scale = (gc.constant(v) for v in (mean_v, var_v, offset_v, scale_v))
    fetches = {
        "full": gc.nn.batch_normalization(x, mean, var, offset, scale, eps),
        "no_scale": gc.nn.batch_normalization(x, mean, var, offset, None, eps),
        "no_offset": gc.nn.batch_normalization(x, mean, var, None, scale, eps),
        "bare": gc.nn.batch_normalization(x, mean, var, None, None, eps),
    }
    m, v = gc.nn.moments(x, [0, 1, 2])
    fetches["batch_stats"] = gc.nn.batch_normalization(x, m, v, None, None, 0.0)
    for t in fetches.values():
        assert t.dtype == GC_DTYPE[dtype] and t.shape.as_list() == [None, 3, 2, 5]
    got = evaluate(fetches, {x: xv})
    x64 = _f64(xv)
    norm = (x64 - _f64(mean_v)) / np.sqrt(_f64(var_v) + eps)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else {}
    assert_close(got["full"], (norm * _f64(scale_v) + _f64(offset_v)).astype(dtype), **tol)
    assert_close(got["no_scale"], (norm + _f64(offset_v)).astype(dtype), **tol)
    assert_close(got["no_offset"], (norm * _f64(scale_v)).astype(dtype), **tol)
    assert_close(got["bare"], norm.astype(dtype), **tol)
    standardized = got["batch_stats"].astype(np.float64)
    assert_close(standardized.mean(axis=(0, 1, 2)), np.zeros(5), atol=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(standardized.var(axis=(0, 1, 2)), np.ones(5), rtol=1e-4 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("dtype", FLOATS)
def test_moments(evaluate, dtype):
    rng = np.random.default_rng(8)
    xv = (rng.standard_normal((4, 3, 2, 5)) * 2 + 3).astype(dtype)
    x = gc.placeholder(GC_DTYPE[dtype], shape=(None, 3, 2, 5))
    cases = {
        "nhw": ([0, 1, 2], False),
        "nhw_keep": ([0, 1, 2], True),
        "batch": (0, False),
        "batch_list": ([0], False),
        "last": ([-1], False),
        "first_last": ([0, 3], True),
        "all": ([0, 1, 2, 3], False),
    }
    fetches = {}
    for name, (axes, keep) in cases.items():
        mean, var = gc.nn.moments(x, axes, keepdims=keep)
        fetches[name] = {"mean": mean, "var": var}
    assert fetches["nhw"]["mean"].shape.as_list() == [5]
    assert fetches["nhw_keep"]["var"].shape.as_list() == [1, 1, 1, 5]
    assert fetches["batch"]["mean"].shape.as_list() == [3, 2, 5]
    assert fetches["last"]["var"].shape.as_list() == [None, 3, 2]
    got = evaluate(fetches, {x: xv})
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else {}
    for name, (axes, keep) in cases.items():
        ax = tuple(axes) if isinstance(axes, list) else axes
        assert_close(got[name]["mean"], np.mean(_f64(xv), axis=ax, keepdims=keep).astype(dtype), **tol)
        assert_close(got[name]["var"], np.var(_f64(xv), axis=ax, keepdims=keep).astype(dtype), **tol)


# --- dropout --------------------------------------------------------------------------------
def _dropout_input(shape=(200, 50), seed=9):
    return (np.random.default_rng(seed).random(shape) + 0.5).astype(np.float32)  # no zeros


def _check_dropped(out, xv, rate, tol=0.02):
    dropped = out == 0
    assert abs(dropped.mean() - rate) < tol, f"dropped fraction {dropped.mean()} vs rate {rate}"
    assert_close(out[~dropped], (xv[~dropped] / np.float32(1 - rate)).astype(np.float32), rtol=1e-6)


def test_dropout_training_flag_placeholder(graph, device):
    xv = _dropout_input()
    x = gc.placeholder(gc.float32, shape=(None, 50))
    training = gc.placeholder(gc.bool_, shape=())
    y = gc.nn.dropout(x, rate=0.3, seed=11, training=training)
    with_default = gc.nn.dropout(x, rate=0.3, seed=12, training=gc.placeholder_with_default(False, ()))
    assert y.shape.as_list() == [None, 50] and y.dtype == gc.float32
    with gc.Session(graph=graph, device=device) as sess:
        assert_close(sess.run(y, {x: xv, training: False}), xv, rtol=0, atol=0)
        assert_close(sess.run(with_default, {x: xv}), xv, rtol=0, atol=0)
        _check_dropped(sess.run(y, {x: xv, training: True}), xv, 0.3)
        _check_dropped(sess.run(y, {x: xv[:40], training: True}), xv[:40], 0.3, tol=0.06)


def test_dropout_python_flags_and_rates(evaluate):
    xv = _dropout_input()
    x = gc.placeholder(gc.float32, shape=(None, 50))
    off = gc.nn.dropout(x, rate=0.5, training=False)
    zero_rate = gc.nn.dropout(x, rate=0.0)
    on = gc.nn.dropout(x, rate=0.5, seed=1)
    high = gc.nn.dropout(x, rate=0.9, seed=2)
    got = evaluate({"off": off, "zero": zero_rate, "on": on, "high": high}, {x: xv})
    assert_close(got["off"], xv, rtol=0, atol=0)
    assert_close(got["zero"], xv, rtol=0, atol=0)
    _check_dropped(got["on"], xv, 0.5)
    _check_dropped(got["high"], xv, 0.9)


def test_dropout_symbolic_rate(evaluate):
    xv = _dropout_input()
    x = gc.placeholder(gc.float32, shape=(None, 50))
    rate = gc.placeholder(gc.float32, shape=())
    y = gc.nn.dropout(x, rate=rate, seed=4)
    _check_dropped(evaluate(y, {x: xv, rate: 0.25}), xv, 0.25)


def test_dropout_takes_tf1s_keep_prob_positionally(evaluate):
    """TF1's ``tf.nn.dropout(x, keep_prob)``: the second argument keeps, and the TF1 idiom of
    feeding keep_prob 1.0 at evaluation passes the input through (it once read the second
    argument as the drop rate: all NaN at 1.0, and 80% dropped at 0.8)."""
    xv = _dropout_input()
    x = gc.placeholder(gc.float32, shape=(None, 50))
    keep_prob = gc.placeholder(gc.float32, shape=())
    fed = gc.nn.dropout(x, keep_prob, seed=8)
    static = gc.nn.dropout(x, 0.8, seed=9)
    got = evaluate({"train": fed, "static": static}, {x: xv, keep_prob: 0.8})
    _check_dropped(got["train"], xv, 0.2)
    _check_dropped(got["static"], xv, 0.2)
    assert_close(evaluate(fed, {x: xv, keep_prob: 1.0}), xv, rtol=0, atol=0)
    assert gc.nn.dropout(x, 1.0) is x and gc.nn.dropout(x, keep_prob=1.0) is x


def test_dropout_probability_fed_outside_its_range_stops_the_run_by_name(graph, device):
    """A fed keep_prob outside (0, 1] or rate outside [0, 1) is an InvalidArgumentError naming
    the check, its line and the value; never a NaN (check_range)."""
    xv = _dropout_input((4, 50))
    x = gc.placeholder(gc.float32, shape=(None, 50))
    p = gc.placeholder(gc.float32, shape=())
    by_keep, by_rate = gc.nn.dropout(x, p, seed=3), gc.nn.dropout(x, rate=p, seed=3)
    with gc.Session(graph=graph, device=device) as sess:
        got = (lambda v: r" \(the value fed is outside it, or NaN\)") if device == "cuda" else (lambda v: ", got " + v)
        for y, bad, what in [(by_keep, 0.0, r"keep_prob must be in \(0, 1\]" + got("0")),
                             (by_keep, 1.5, r"keep_prob must be in \(0, 1\]" + got(r"1\.5")),
                             (by_keep, np.nan, r"keep_prob must be in \(0, 1\], got nan"),  # CUDA names it too
                             (by_rate, 1.0, r"rate must be in \[0, 1\)" + got("1"))]:
            with pytest.raises(gc.errors.InvalidArgumentError, match=r"(?s)dropout_(keep_prob|rate)_check.*" + what
                               + r".*test_nn\.py:\d+"):
                sess.run(y, {x: xv, p: bad})
        _check_dropped(sess.run(by_rate, {x: xv, p: 0.0}), xv, 0.0)  # the run goes on after an error


def test_dropout_noise_shape_broadcasts(evaluate):
    xv = _dropout_input((400, 6))
    x = gc.placeholder(gc.float32, shape=(400, 6))
    rows = gc.nn.dropout(x, rate=0.5, noise_shape=[400, 1], seed=5)
    cols = gc.nn.dropout(x, rate=0.5, noise_shape=[1, None], seed=6)
    got = evaluate({"rows": rows, "cols": cols}, {x: xv})
    row_zero = got["rows"] == 0
    assert np.all(row_zero.all(axis=1) | ~row_zero.any(axis=1)), "noise_shape [n, 1] must drop whole rows"
    assert 0.4 < row_zero.all(axis=1).mean() < 0.6
    _check_dropped(got["rows"], xv, 0.5, tol=0.1)
    col_zero = got["cols"] == 0
    assert np.all(col_zero.all(axis=0) | ~col_zero.any(axis=0)), "noise_shape [1, None] must drop whole columns"


def test_dropout_is_reproducible_under_a_seed(graph, device):
    gc.set_random_seed(2024)
    xv = _dropout_input((30, 50))
    x = gc.placeholder(gc.float32, shape=(None, 50))
    y = gc.nn.dropout(x, rate=0.5, seed=7)
    with gc.Session(graph=graph, device=device) as s1:
        first, second = s1.run(y, {x: xv}), s1.run(y, {x: xv})
    with gc.Session(graph=graph, device=device) as s2:
        again_first, again_second = s2.run(y, {x: xv}), s2.run(y, {x: xv})
    assert_close(again_first, first, rtol=0, atol=0)
    assert_close(again_second, second, rtol=0, atol=0)
    assert not np.array_equal(first == 0, second == 0), "successive runs must draw new masks"


def test_dropout_build_errors(graph):
    x = gc.placeholder(gc.float32, shape=(None, 4))
    for rate in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"dropout at .*test_nn\.py:\d+: rate must be in \[0, 1\)"):
            gc.nn.dropout(x, rate=rate)
    for keep in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"dropout at .*test_nn\.py:\d+: keep_prob must be in \(0, 1\]"):
            gc.nn.dropout(x, keep)
    with pytest.raises(TypeError, match=r"dropout at .*test_nn\.py:\d+: give keep_prob .* not both"):
        gc.nn.dropout(x, 0.5, rate=0.5)
    with pytest.raises(TypeError, match="not neither"):
        gc.nn.dropout(x)
    with pytest.raises(gc.DTypeError, match="dropout"):
        gc.nn.dropout(x, rate=0.5, training=gc.placeholder(gc.float32, ()))
    with pytest.raises(gc.GraphcError, match="dropout"):
        gc.nn.dropout(x, rate=0.5, training=gc.placeholder(gc.bool_, (2,)))
    with pytest.raises(gc.ShapeError, match="noise_shape .* one entry per dim"):
        gc.nn.dropout(x, rate=0.5, noise_shape=[None, 1, 1])
    # a None is x's own size there, known when the graph runs (Keras's noise_shape=(None, 1))
    assert gc.nn.dropout(x, rate=0.5, noise_shape=[None, 1]).shape.as_list() == [None, 4]


# --- fused batch norm (TF1's tf.nn.fused_batch_norm) -----------------------------------------------------
def _np_bn_training(x, scale, offset, eps, axis):
    x = _f64(x)
    others = tuple(k for k in range(x.ndim) if k != axis)
    shape = [1] * x.ndim
    shape[axis] = -1
    mean = x.mean(axis=others)
    var = x.var(axis=others)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * _f64(scale).reshape(shape) \
        + _f64(offset).reshape(shape)
    n = x.size // x.shape[axis]
    return y, mean, x.var(axis=others, ddof=1) if n > 1 else var


@pytest.mark.parametrize("dtype", FLOATS)
def test_fused_batch_norm_training_uses_the_batch_statistics(evaluate, dtype):
    """y is normalized with the biased variance; the returned variance is TF1's unbiased one."""
    rng = np.random.default_rng(11)
    cases = {"NHWC": ((3, 2, 4, 5), 3), "NCHW": ((3, 5, 2, 4), 1), "NC": ((7, 5), 1), "one_row": ((1, 5), 1)}
    scale_v, offset_v = (rng.random(5) + 0.5).astype(dtype), rng.standard_normal(5).astype(dtype)
    fetches, feeds, inputs = {}, {}, {}
    for name, (shape, axis) in cases.items():
        xv = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
        x = gc.placeholder(GC_DTYPE[dtype], shape=(None,) + shape[1:])
        y, mean, var = gc.nn.fused_batch_norm(x, scale_v, offset_v, epsilon=0.01,
                                              data_format="NCHW" if name == "NCHW" else "NHWC")
        assert y.shape.as_list() == [None, *shape[1:]] and mean.shape.as_list() == [5] == var.shape.as_list()
        assert y.op.type == "fused_batch_norm" and y.dtype == GC_DTYPE[dtype]
        fetches[name] = (y, mean, var)
        feeds[x] = xv
        inputs[name] = (xv, axis)
    got = evaluate(fetches, feeds)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else {}
    for name, (xv, axis) in inputs.items():
        for g, want in zip(got[name], _np_bn_training(xv, scale_v, offset_v, 0.01, axis)):
            assert_close(g, want.astype(dtype), **tol)
    assert_close(got["one_row"][2], np.zeros(5, dtype))  # n = 1: no correction, as in TF1


@pytest.mark.parametrize("dtype", FLOATS)
def test_fused_batch_norm_inference_uses_the_given_statistics(evaluate, dtype):
    rng = np.random.default_rng(12)
    mean_v, var_v = rng.standard_normal(3).astype(dtype), (rng.random(3) + 0.5).astype(dtype)
    scale_v, offset_v = (rng.random(3) + 0.5).astype(dtype), rng.standard_normal(3).astype(dtype)
    fetches, feeds, want = {}, {}, {}
    for fmt, shape, view in (("NHWC", (2, 4, 2, 3), (3,)), ("NCHW", (2, 3, 4, 2), (3, 1, 1)), ("NHWC", (5, 3), (3,))):
        xv = rng.standard_normal(shape).astype(dtype)
        x = gc.placeholder(GC_DTYPE[dtype], shape=shape)
        key = f"{fmt}{len(shape)}"
        fetches[key] = gc.nn.fused_batch_norm(x, scale_v, offset_v, mean=mean_v, variance=var_v, epsilon=1e-3,
                                              data_format=fmt, is_training=False)
        feeds[x] = xv
        want[key] = ((_f64(xv) - mean_v.reshape(view)) / np.sqrt(_f64(var_v).reshape(view) + 1e-3)
                     * scale_v.reshape(view) + offset_v.reshape(view))
    got = evaluate(fetches, feeds)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else {}
    for key, (y, mean, var) in got.items():
        assert_close(y, want[key].astype(dtype), **tol)
        assert_close(mean, mean_v)
        assert_close(var, var_v)


def test_fused_batch_norm_raises_a_small_epsilon_as_tf1_does(evaluate):
    xv = np.array([[1.0, 0.0], [1.0, 2.0]])
    x = gc.placeholder(gc.float64, (2, 2))
    y, _, _ = gc.nn.fused_batch_norm(x, np.ones(2), np.zeros(2), epsilon=0.0)
    assert y.op.attrs["epsilon"] == 1.001e-5
    got = evaluate(y, {x: xv})
    assert_close(got, np.array([[0.0, -1.0], [0.0, 1.0]]) / np.sqrt(np.array([0.0, 1.0]) + 1.001e-5))


@pytest.mark.parametrize("fmt, shape", [("NHWC", (3, 2, 2, 3)), ("NCHW", (3, 3, 2, 2)), ("NHWC", (4, 3))])
def test_fused_batch_norm_gradients_of_a_loss(device, fmt, shape):
    """d loss / d (x, scale, offset) through training-mode batch norm, against finite
    differences: a loss of y alone (one fused_batch_norm_grad kernel), and one that also uses
    the batch statistics (their gradients are added to dx)."""
    rng = np.random.default_rng(13)
    xv, scale_v, offset_v = rng.standard_normal(shape), rng.random(3) + 0.5, rng.standard_normal(3)
    w = rng.standard_normal(shape)

    def loss_of_y(x, scale, offset):
        y, _, _ = gc.nn.fused_batch_norm(x, scale, offset, data_format=fmt)
        return gc.reduce_sum(gc.sin(y) * w)

    def loss_of_all(x, scale, offset):
        y, mean, var = gc.nn.fused_batch_norm(x, scale, offset, data_format=fmt)
        return gc.reduce_sum(gc.sin(y) * w) + gc.reduce_sum(mean * mean) + gc.reduce_sum(gc.sqrt(var))

    def mean_alone(x, scale, offset):
        return gc.nn.fused_batch_norm(x, scale, offset, data_format=fmt)[1]

    def variance_alone(x, scale, offset):
        return gc.nn.fused_batch_norm(x, scale, offset, data_format=fmt)[2]

    for fn in (loss_of_y, loss_of_all):
        report = gc.test_utils.check_gradients(fn, [xv, scale_v, offset_v], device=device, rtol=1e-5, atol=1e-7,
                                               **differences_on(device))
        assert report.checked == xv.size + 6
    for fn in (mean_alone, variance_alone):  # no gradient reaches scale and offset
        gc.test_utils.check_gradients(fn, [xv, scale_v, offset_v], wrt=(0,), device=device, rtol=1e-5, atol=1e-7,
                                      **differences_on(device))


def test_fused_batch_norm_gradients_with_an_unknown_batch_size(graph, device):
    """A None batch dim: the statistics' gradients count the elements per channel at run time."""
    rng = np.random.default_rng(14)
    xv = rng.standard_normal((5, 3))
    x = gc.placeholder(gc.float64, (None, 3))
    scale = gc.placeholder(gc.float64, (3,))
    y, mean, var = gc.nn.fused_batch_norm(x, scale, gc.zeros((3,), gc.float64))
    loss = gc.reduce_sum(y * y * y) + gc.reduce_sum(mean * var)
    gc.test_utils.check_gradients(loss, xs=[x, scale], feed_dict={x: xv, scale: rng.random(3) + 0.5},
                                  device=device, rtol=1e-5, atol=1e-7, **differences_on(device))


def test_fused_batch_norm_build_errors(graph):
    x = gc.placeholder(gc.float32, (2, 4, 4, 3))
    ones = np.ones(3, np.float32)
    with pytest.raises(gc.ShapeError, match="training mode.*mean and variance must be None"):
        gc.nn.fused_batch_norm(x, ones, ones, mean=ones, variance=ones)
    with pytest.raises(gc.ShapeError, match="inference mode.*required"):
        gc.nn.fused_batch_norm(x, ones, ones, is_training=False)
    with pytest.raises(gc.ShapeError, match="4-D .* or 2-D"):
        gc.nn.fused_batch_norm(gc.placeholder(gc.float32, (2, 3, 3)), ones, ones)
    with pytest.raises(gc.ShapeError, match="data_format"):
        gc.nn.fused_batch_norm(x, ones, ones, data_format="NDHWC")
    with pytest.raises(gc.ShapeError, match="does not match"):
        gc.nn.fused_batch_norm(x, np.ones(4, np.float32), ones)
    with pytest.raises(gc.ShapeError, match="does not match"):
        gc.nn.fused_batch_norm(x, ones, ones, data_format="NCHW")


def test_fused_batch_norm_constants_take_the_dtype_of_x(graph):
    x = gc.placeholder(gc.float32, (2, 3))
    y, mean, var = gc.nn.fused_batch_norm(x, np.ones(3), [0.0, 0.0, 0.0])  # float64 arrays, Python floats
    assert y.dtype == mean.dtype == var.dtype == gc.float32
    with pytest.raises(gc.DTypeError, match="scale .* is float64 but x .* is float32"):
        gc.nn.fused_batch_norm(x, gc.constant(np.ones(3)), np.zeros(3))

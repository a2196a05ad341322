"""conv2d, max_pool2d and avg_pool2d against direct-loop implementations written here, with
TensorFlow's SAME/VALID padding computed independently."""
from __future__ import annotations

import inspect
import itertools
import math

import numpy as np
import pytest

import graphc as gc
from support import assert_close

FLOATS = [np.float32, np.float64]
GC_DTYPE = {np.float32: gc.float32, np.float64: gc.float64, np.int32: gc.int32}


# --- independent reference: TensorFlow padding and direct loops ------------------------------
def tf_axis(size, k, stride, dilation, padding):
    """(output size, padding before) for one spatial axis, as TensorFlow pads."""
    effective = (k - 1) * dilation + 1
    if padding == "SAME":
        out = math.ceil(size / stride)
        pad_total = max((out - 1) * stride + effective - size, 0)
        return out, pad_total // 2
    return math.ceil((size - effective + 1) / stride), 0


def conv2d_loop(x, f, strides, dilations, padding):
    n, h, w, _ = x.shape
    kh, kw, _, cout = f.shape
    oh, ph = tf_axis(h, kh, strides[0], dilations[0], padding)
    ow, pw = tf_axis(w, kw, strides[1], dilations[1], padding)
    x64, f64 = x.astype(np.float64), f.astype(np.float64)
    out = np.zeros((n, oh, ow, cout))
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for a in range(kh):
                    r = i * strides[0] + a * dilations[0] - ph
                    if not 0 <= r < h:
                        continue
                    for c in range(kw):
                        col = j * strides[1] + c * dilations[1] - pw
                        if 0 <= col < w:
                            out[b, i, j, :] += x64[b, r, col, :] @ f64[a, c]
    return out.astype(x.dtype)


def pool_loop(x, ksize, strides, padding, kind):
    """Max or mean over the in-bounds part of each window (padding never counts)."""
    n, h, w, ch = x.shape
    oh, ph = tf_axis(h, ksize[0], strides[0], 1, padding)
    ow, pw = tf_axis(w, ksize[1], strides[1], 1, padding)
    out = np.zeros((n, oh, ow, ch), dtype=np.float64 if kind == "avg" else x.dtype)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                values = []
                for a in range(ksize[0]):
                    for c in range(ksize[1]):
                        r, col = i * strides[0] + a - ph, j * strides[1] + c - pw
                        if 0 <= r < h and 0 <= col < w:
                            values.append(x[b, r, col, :])
                assert values, "a TensorFlow window always overlaps the input"
                values = np.stack(values)
                out[b, i, j, :] = values.max(axis=0) if kind == "max" else values.astype(np.float64).mean(axis=0)
    return out.astype(x.dtype)


def _here() -> int:
    return inspect.currentframe().f_back.f_lineno + 1


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else {}


# --- the reference itself ----------------------------------------------------------------------
def test_tf_padding_formula_examples():
    # TensorFlow's documented examples: 7 wide, kernel 3, stride 2 -> SAME 4 (pad 1 + 1), VALID 3
    assert tf_axis(7, 3, 2, 1, "SAME") == (4, 1)
    assert tf_axis(7, 3, 2, 1, "VALID") == (3, 0)
    assert tf_axis(6, 2, 2, 1, "SAME") == (3, 0)
    assert tf_axis(5, 4, 1, 1, "SAME") == (5, 1)      # pad_total 3: 1 before, 2 after
    assert tf_axis(5, 3, 1, 2, "SAME") == (5, 2)      # dilated kernel spans 5
    assert tf_axis(5, 3, 1, 2, "VALID") == (1, 0)


# --- conv2d ------------------------------------------------------------------------------------
INPUTS = {"a": (7, 5), "b": (6, 9), "c": (5, 7)}
CHANNELS = [(1, 1), (3, 2), (2, 4), (4, 3)]
KERNELS = [(3, 2), (1, 1), (2, 3), (4, 4), (3, 3)]
STRIDES = [(1, 1), (2, 2), (3, 3), (1, 2), (3, 1), (2, 3)]
DILATIONS = [(2, 2), (1, 2), (2, 1)]


def _conv_cases():
    """(input, kernel, strides, dilations, (cin, cout)), cycling inputs and channel counts."""
    combos = [(k, s, (1, 1)) for k in KERNELS for s in STRIDES]
    combos += [(k, (1, 1), d) for k in KERNELS for d in DILATIONS]
    inputs = itertools.cycle(INPUTS)
    channels = itertools.cycle(CHANNELS)
    return [(next(inputs), k, s, d, next(channels)) for k, s, d in combos]


def _fits(size, kernel, dilation):
    return all(n >= (k - 1) * d + 1 for n, k, d in zip(size, kernel, dilation))


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_conv2d_matches_direct_loop(evaluate, dtype, padding):
    rng = np.random.default_rng(0)
    placeholders, feeds, values = {}, {}, {}
    fetches, cases = {}, {}
    for key, size, kernel, strides, dilations, (cin, cout) in (
            (f"{i}:{c[0]} k{c[1]} s{c[2]} d{c[3]} ch{c[4]}", INPUTS[c[0]], *c[1:]) for i, c in enumerate(_conv_cases())):
        if padding == "VALID" and not _fits(size, kernel, dilations):
            continue
        pkey = (size, cin)
        if pkey not in placeholders:
            placeholders[pkey] = gc.placeholder(GC_DTYPE[dtype], shape=(None, *size, cin))
            values[pkey] = rng.standard_normal((2, *size, cin)).astype(dtype)
            feeds[placeholders[pkey]] = values[pkey]
        fv = rng.standard_normal((*kernel, cin, cout)).astype(dtype)
        y = gc.nn.conv2d(placeholders[pkey], gc.constant(fv), strides=strides, padding=padding,
                         dilations=dilations)
        oh, _ = tf_axis(size[0], kernel[0], strides[0], dilations[0], padding)
        ow, _ = tf_axis(size[1], kernel[1], strides[1], dilations[1], padding)
        assert y.shape.as_list() == [None, oh, ow, cout], key
        assert y.dtype == GC_DTYPE[dtype]
        fetches[key] = y
        cases[key] = (values[pkey], fv, strides, dilations)
    assert len(fetches) > 25
    got = evaluate(fetches, feeds)
    for key, (xv, fv, strides, dilations) in cases.items():
        want = conv2d_loop(xv, fv, strides, dilations, padding)
        try:
            assert_close(got[key], want, **_tol(dtype))
        except AssertionError as e:
            raise AssertionError(f"conv2d {padding} {key}: {e}") from None


def test_conv2d_argument_forms(evaluate):
    rng = np.random.default_rng(1)
    xv = rng.standard_normal((2, 7, 5, 3))
    fv = rng.standard_normal((3, 2, 3, 2))
    x = gc.placeholder(gc.float64, shape=(None, 7, 5, 3))
    f = gc.constant(fv)
    got = evaluate({
        "int": gc.nn.conv2d(x, f, strides=2, padding="SAME"),
        "nhwc_list": gc.nn.conv2d(x, f, strides=[1, 2, 2, 1], padding="SAME"),
        "pair": gc.nn.conv2d(x, f, strides=(2, 2), padding="same"),
        "dil_list": gc.nn.conv2d(x, f, strides=1, padding="SAME", dilations=[1, 2, 2, 1]),
        "default": gc.nn.conv2d(x, f),   # strides 1, VALID
    }, {x: xv})
    want = conv2d_loop(xv, fv, (2, 2), (1, 1), "SAME")
    for key in ("int", "nhwc_list", "pair"):
        assert_close(got[key], want)
    assert_close(got["dil_list"], conv2d_loop(xv, fv, (1, 1), (2, 2), "SAME"))
    assert_close(got["default"], conv2d_loop(xv, fv, (1, 1), (1, 1), "VALID"))


def conv2d_filter_gradient_loop(x, g, kernel, strides, dilations, padding):
    """d(sum(conv2d(x, f) * g)) / df, accumulated tap by tap in float64."""
    n, h, w, cin = x.shape
    _, oh, ow, cout = g.shape
    _, ph = tf_axis(h, kernel[0], strides[0], dilations[0], padding)
    _, pw = tf_axis(w, kernel[1], strides[1], dilations[1], padding)
    out = np.zeros((kernel[0], kernel[1], cin, cout))
    for b, i, j in itertools.product(range(n), range(oh), range(ow)):
        for a, c in itertools.product(range(kernel[0]), range(kernel[1])):
            r, col = i * strides[0] + a * dilations[0] - ph, j * strides[1] + c * dilations[1] - pw
            if 0 <= r < h and 0 <= col < w:
                out[a, c] += np.outer(x[b, r, col], g[b, i, j])
    return out


# The CPU kernel takes the filter gradient a chunk of output rows at a time (ops.py,
# FILTER_GRADIENT_CHUNK): these shapes span several chunks and end in a partial one, with the
# chunk fixed at compile time (static shapes) or at 8 rows (unknown spatial dims).
@pytest.mark.parametrize("static, strides, dilations, padding", [
    (True, (1, 1), (1, 1), "SAME"), (False, (1, 1), (1, 1), "SAME"),
    (True, (2, 1), (1, 1), "VALID"), (True, (1, 1), (2, 2), "SAME")])
def test_filter_gradient_over_many_chunks_matches_loop(graph, device, static, strides, dilations, padding):
    rng = np.random.default_rng(11)
    xv, fv = rng.standard_normal((3, 37, 41, 2)), rng.standard_normal((3, 3, 2, 2))
    x = gc.placeholder(gc.float64, shape=xv.shape if static else (None, None, None, 2), name="images")
    f = gc.Variable(fv, name="filters")
    y = gc.nn.conv2d(x, f, strides=strides, dilations=dilations, padding=padding)
    gv = rng.standard_normal(conv2d_loop(xv, fv, strides, dilations, padding).shape)
    (df,) = gc.gradients(gc.reduce_sum(y * gc.constant(gv)), [f])
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())
        got = sess.run(df, {x: xv})
    assert_close(got, conv2d_filter_gradient_loop(xv, gv, (3, 3), strides, dilations, padding), rtol=1e-10, atol=1e-10)


def test_conv2d_known_values(evaluate):
    """A 3x3 sum filter over a 4x4 ramp: SAME pads one zero row/column on each side."""
    xv = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    x = gc.constant(xv)
    f = gc.constant(np.ones((3, 3, 1, 1), np.float32))
    got = evaluate({"valid": gc.nn.conv2d(x, f, padding="VALID"),
                    "same": gc.nn.conv2d(x, f, padding="SAME"),
                    "same_s2": gc.nn.conv2d(x, f, strides=2, padding="SAME")})
    assert_close(got["valid"][0, :, :, 0], np.array([[45, 54], [81, 90]], np.float32))
    assert_close(got["same"][0, 0, :, 0], np.array([10, 18, 24, 18], np.float32))
    # out = 2, pad_total = max(1*2 + 3 - 4, 0) = 1: 0 before, 1 after
    assert_close(got["same_s2"][0, :, :, 0], np.array([[45, 39], [66, 50]], np.float32))


# --- pooling -----------------------------------------------------------------------------------
POOL_KSIZES = [(2, 2), (3, 2), (3, 3), (1, 1), (2, 3)]
POOL_STRIDES = [(1, 1), (2, 2), (3, 3), (1, 2), (2, 1), (3, 2)]


def _pool_cases():
    sizes = itertools.cycle(INPUTS)
    channels = itertools.cycle([1, 3, 2])
    return [(next(sizes), k, s, next(channels)) for k in POOL_KSIZES for s in POOL_STRIDES]


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_pools_match_direct_loop(evaluate, dtype, padding):
    rng = np.random.default_rng(2)
    placeholders, feeds, values, fetches, cases = {}, {}, {}, {}, {}
    for i, (name, kernel, strides, ch) in enumerate(_pool_cases()):
        size = INPUTS[name]
        pkey = (size, ch)
        if pkey not in placeholders:
            placeholders[pkey] = gc.placeholder(GC_DTYPE[dtype], shape=(None, *size, ch))
            # all negative, so a zero from the padding would win the max / change the mean
            values[pkey] = (-np.abs(rng.standard_normal((2, *size, ch))) - 1.0).astype(dtype)
            feeds[placeholders[pkey]] = values[pkey]
        x = placeholders[pkey]
        oh, _ = tf_axis(size[0], kernel[0], strides[0], 1, padding)
        ow, _ = tf_axis(size[1], kernel[1], strides[1], 1, padding)
        for kind, fn in (("max", gc.nn.max_pool2d), ("avg", gc.nn.avg_pool2d)):
            key = f"{kind} {i}: {size} k{kernel} s{strides} ch{ch}"
            y = fn(x, ksize=kernel, strides=strides, padding=padding)
            assert y.shape.as_list() == [None, oh, ow, ch], key
            assert y.dtype == GC_DTYPE[dtype]
            fetches[key] = y
            cases[key] = (kind, values[pkey], kernel, strides)
    got = evaluate(fetches, feeds)
    for key, (kind, xv, kernel, strides) in cases.items():
        want = pool_loop(xv, kernel, strides, padding, kind)
        try:
            assert_close(got[key], want)
        except AssertionError as e:
            raise AssertionError(f"{key} {padding}: {e}") from None
        if kind == "max":
            assert np.all(got[key] < 0), f"{key}: the padding won the max"


def test_pool_known_values_and_aliases(evaluate):
    xv = -np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4, 1)   # -1 .. -16
    x = gc.constant(xv)
    got = evaluate({
        "max_same": gc.nn.max_pool2d(x, 3, 2, "SAME"),
        "avg_same": gc.nn.avg_pool2d(x, 3, 2, "SAME"),
        "max_alias": gc.nn.max_pool(x, [1, 3, 3, 1], [1, 2, 2, 1], "SAME"),
        "avg_alias": gc.nn.avg_pool(x, [1, 3, 3, 1], [1, 2, 2, 1], "SAME"),
        "max_valid": gc.nn.max_pool2d(x, 2, 2, "VALID"),
    })
    # out 2x2, pad 0 before, 1 after: windows rows/cols {0,1,2} and {2,3}
    assert_close(got["max_same"][0, :, :, 0], np.array([[-1, -3], [-9, -11]], np.float32))
    assert_close(got["avg_same"][0, :, :, 0],
                 np.array([[-6, -7.5], [-12, -13.5]], np.float32))   # mean of 9, 6, 6 and 4 values
    assert_close(got["max_alias"], got["max_same"])
    assert_close(got["avg_alias"], got["avg_same"])
    assert_close(got["max_valid"][0, :, :, 0], np.array([[-1, -3], [-9, -11]], np.float32))


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_max_pool_on_integers(evaluate, padding):
    rng = np.random.default_rng(3)
    info = np.iinfo(np.int32)
    xv = rng.integers(-1000, -1, size=(2, 7, 5, 2)).astype(np.int32)
    xv[0, 0, 0, 0] = info.min
    xv[1, 6, 4, 1] = info.max
    x = gc.placeholder(gc.int32, shape=(None, 7, 5, 2))
    fetches = {(k, s): gc.nn.max_pool2d(x, k, s, padding) for k in [(3, 2), (2, 2)] for s in [(1, 1), (2, 3)]}
    for y in fetches.values():
        assert y.dtype == gc.int32
    got = evaluate({f"{k}{s}": y for (k, s), y in fetches.items()}, {x: xv})
    for k, s in fetches:
        assert_close(got[f"{k}{s}"], pool_loop(xv, k, s, padding, "max"))


def pool_gradient_loop(x, g, ksize, strides, padding, kind):
    """d(sum(pool(x) * g)) / dx: a max window hands its value to its first largest tap, an
    average window equal shares to its in-bounds taps."""
    n, h, w, ch = x.shape
    _, oh, ow, _ = g.shape
    _, ph = tf_axis(h, ksize[0], strides[0], 1, padding)
    _, pw = tf_axis(w, ksize[1], strides[1], 1, padding)
    out = np.zeros(x.shape)
    for b, i, j, c in itertools.product(range(n), range(oh), range(ow), range(ch)):
        taps = [(r, col) for a in range(ksize[0]) for d in range(ksize[1])
                for r, col in [(i * strides[0] + a - ph, j * strides[1] + d - pw)] if 0 <= r < h and 0 <= col < w]
        if kind == "max":
            r, col = max(taps, key=lambda t: (x[b, t[0], t[1], c], -taps.index(t)))
            out[b, r, col, c] += g[b, i, j, c]
        else:
            for r, col in taps:
                out[b, r, col, c] += g[b, i, j, c] / len(taps)
    return out


# Inputs large enough (>= 8 Ki elements, the work the CPU driver splits by) for the images to
# run in parts on its pool where it has two threads (ops.py, _images_in_parts), with windows
# at the border (SAME) and overlapping (stride 1); the last case feeds the max pool's input
# back as its gradient, so one array is two of the kernel's inputs.
@pytest.mark.parametrize("ksize, strides, padding, self_gradient", [
    (2, 2, "VALID", False), (3, 2, "SAME", False), (2, 1, "SAME", False), (3, 1, "SAME", True)])
def test_pools_and_their_gradients_over_many_images(graph, device, ksize, strides, padding, self_gradient):
    rng = np.random.default_rng(12)
    xv = rng.permutation(5 * 18 * 17 * 7).reshape(5, 18, 17, 7).astype(np.float64)  # distinct: one max per window
    x = gc.placeholder(gc.float64, shape=xv.shape, name="images")
    got, want = {}, {}
    fetches = {}
    for kind, fn in (("max", gc.nn.max_pool2d), ("avg", gc.nn.avg_pool2d)):
        y = fn(x, ksize, strides, padding)
        if self_gradient:  # stride 1, SAME: the pooled shape is the input's
            fetches[kind + " grad"] = gc.gradients(y, [x], grad_ys=[x])[0]
            want[kind + " grad"] = pool_gradient_loop(xv, xv, (ksize, ksize), (strides, strides), padding, kind)
            continue
        gv = rng.standard_normal(y.shape.as_list())
        fetches[kind] = y
        fetches[kind + " grad"] = gc.gradients(gc.reduce_sum(y * gc.constant(gv)), [x])[0]
        want[kind] = pool_loop(xv, (ksize, ksize), (strides, strides), padding, kind)
        want[kind + " grad"] = pool_gradient_loop(xv, gv, (ksize, ksize), (strides, strides), padding, kind)
    with gc.Session(graph=graph, device=device) as sess:
        got = sess.run(fetches, {x: xv})
    for key in fetches:
        assert_close(got[key], want[key], rtol=1e-12, atol=1e-12)


def test_max_pool_propagates_nan_inside_and_at_the_border(evaluate):
    xv = -np.abs(np.random.default_rng(13).standard_normal((2, 6, 7, 3))).astype(np.float32) - 1
    xv[0, 2, 3, 1] = np.nan   # inside a window
    xv[1, 5, 6, 2] = np.nan   # in the last row and column: a border window under SAME
    x = gc.placeholder(gc.float32, shape=(None, 6, 7, 3))
    got = evaluate({p: gc.nn.max_pool2d(x, 2, 2, p) for p in ("SAME", "VALID")}, {x: xv})
    for padding in ("SAME", "VALID"):
        want = pool_loop(xv, (2, 2), (2, 2), padding, "max")   # np.max propagates NaN
        assert np.array_equal(np.isnan(got[padding]), np.isnan(want)), padding
        assert np.isnan(got[padding]).sum() == (2 if padding == "SAME" else 1)
        assert_close(got[padding], want)


def test_direct_convolution_whose_output_is_also_fetched(evaluate):
    """One input channel, few output channels, static sizes: the CPU backend convolves
    directly, its epilogue (bias, relu) reading the accumulators; the convolution's own
    output leaves the group too, so it is stored as well."""
    rng = np.random.default_rng(14)
    xv, fv, bv = rng.standard_normal((3, 12, 10, 1)), rng.standard_normal((3, 3, 1, 4)), rng.standard_normal(4)
    x = gc.placeholder(gc.float32, shape=(None, 12, 10, 1))
    conv = gc.nn.conv2d(x, gc.constant(fv.astype(np.float32)), padding="SAME")
    got = evaluate({"conv": conv, "act": gc.nn.relu(conv + gc.constant(bv.astype(np.float32)))},
                   {x: xv.astype(np.float32)})
    want = conv2d_loop(xv, fv, (1, 1), (1, 1), "SAME")
    assert_close(got["conv"], want.astype(np.float32), rtol=1e-5, atol=1e-5)
    assert_close(got["act"], np.maximum(want + bv, 0).astype(np.float32), rtol=1e-5, atol=1e-5)


# --- shapes ----------------------------------------------------------------------------------------
def test_static_shape_inference_with_unknown_spatial_dims(graph, device):
    x = gc.placeholder(gc.float32, shape=(None, None, 5, 3))
    f = gc.constant(np.random.default_rng(4).standard_normal((3, 2, 3, 4)).astype(np.float32))
    ys = {
        "conv_same_s2": gc.nn.conv2d(x, f, strides=2, padding="SAME"),
        "conv_valid_s12": gc.nn.conv2d(x, f, strides=(1, 2), padding="VALID"),
        "conv_valid_d2": gc.nn.conv2d(x, f, dilations=2, padding="VALID"),
        "max_same": gc.nn.max_pool2d(x, 2, 2, "SAME"),
        "avg_valid": gc.nn.avg_pool2d(x, (3, 2), (1, 3), "VALID"),
    }
    assert ys["conv_same_s2"].shape.as_list() == [None, None, 3, 4]
    assert ys["conv_valid_s12"].shape.as_list() == [None, None, 2, 4]
    assert ys["conv_valid_d2"].shape.as_list() == [None, None, 3, 4]
    assert ys["max_same"].shape.as_list() == [None, None, 3, 3]
    assert ys["avg_valid"].shape.as_list() == [None, None, 2, 3]
    assert gc.nn.max_pool2d(gc.placeholder(gc.float32, (None, None, None, 2)), 2, 2, "SAME").shape.as_list() == \
        [None, None, None, 2]
    rng = np.random.default_rng(5)
    with gc.Session(graph=graph, device=device) as sess:
        for h in (7, 5, 10):   # one session, several run-time spatial sizes
            xv = rng.standard_normal((2, h, 5, 3)).astype(np.float32)
            got = sess.run(ys, {x: xv})
            assert got["conv_same_s2"].shape == (2, math.ceil(h / 2), 3, 4)
            assert got["conv_valid_s12"].shape == (2, h - 2, 2, 4)
            assert got["conv_valid_d2"].shape == (2, h - 4, 3, 4)
            assert_close(got["max_same"], pool_loop(xv, (2, 2), (2, 2), "SAME", "max"))
            assert_close(got["avg_valid"], pool_loop(xv, (3, 2), (1, 3), "VALID", "avg"))
        empty = sess.run(ys, {x: np.zeros((0, 7, 5, 3), np.float32)})   # an empty batch
        assert empty["conv_same_s2"].shape == (0, 4, 3, 4)
        assert empty["max_same"].shape == (0, 4, 3, 3) and empty["avg_valid"].shape == (0, 5, 2, 3)


def test_conv_on_unknown_spatial_dims_matches_loop_and_checks_size_at_run_time(graph, device):
    rng = np.random.default_rng(6)
    fv = rng.standard_normal((3, 2, 2, 3))
    x = gc.placeholder(gc.float64, shape=(None, None, None, 2))
    y = gc.nn.conv2d(x, gc.constant(fv), strides=(2, 1), padding="VALID")
    z = gc.nn.max_pool2d(x, (3, 3), 1, "VALID")
    assert y.shape.as_list() == [None, None, None, 3]
    with gc.Session(graph=graph, device=device) as sess:
        xv = rng.standard_normal((1, 7, 5, 2))
        assert_close(sess.run(y, {x: xv}), conv2d_loop(xv, fv, (2, 1), (1, 1), "VALID"))
        with pytest.raises(gc.InvalidArgumentError, match="conv2d"):
            sess.run(y, {x: rng.standard_normal((1, 2, 5, 2))})
        with pytest.raises(gc.InvalidArgumentError, match="max_pool2d"):
            sess.run(z, {x: rng.standard_normal((1, 7, 2, 2))})


# --- errors ----------------------------------------------------------------------------------------
def test_valid_padding_with_input_smaller_than_kernel_raises(graph):
    x = gc.placeholder(gc.float32, shape=(None, 7, 5, 3))
    with pytest.raises(gc.ShapeError, match="conv2d"):
        gc.nn.conv2d(x, gc.constant(np.zeros((8, 2, 3, 2), np.float32)), padding="VALID")
    with pytest.raises(gc.ShapeError, match="conv2d"):
        gc.nn.conv2d(x, gc.constant(np.zeros((2, 6, 3, 2), np.float32)), padding="VALID")
    with pytest.raises(gc.ShapeError, match="conv2d"):   # the dilated kernel spans 9 > 7
        gc.nn.conv2d(x, gc.constant(np.zeros((3, 2, 3, 2), np.float32)), dilations=4, padding="VALID")
    with pytest.raises(gc.ShapeError, match="max_pool2d"):
        gc.nn.max_pool2d(x, (2, 6), 1, "VALID")
    with pytest.raises(gc.ShapeError, match="avg_pool2d"):
        gc.nn.avg_pool2d(x, (8, 1), 1, "VALID")
    # the same kernels are fine with SAME padding
    assert gc.nn.conv2d(x, gc.constant(np.zeros((8, 2, 3, 2), np.float32)), padding="SAME").shape.as_list() == \
        [None, 7, 5, 2]
    assert gc.nn.max_pool2d(x, (2, 6), 1, "SAME").shape.as_list() == [None, 7, 5, 3]


def test_channel_mismatch_names_the_op_and_the_user_line(graph):
    x = gc.placeholder(gc.float32, shape=(None, 7, 5, 3))
    f = gc.constant(np.zeros((3, 2, 4, 2), np.float32))
    with pytest.raises(gc.ShapeError) as info:
        line = _here()
        gc.nn.conv2d(x, f, padding="SAME")
    message = str(info.value)
    assert "conv2d" in message
    assert f"test_conv_pool.py:{line}" in message
    assert "3" in message and "4" in message


def test_stride_with_dilation_is_rejected(graph):
    x = gc.placeholder(gc.float32, shape=(None, 7, 5, 3))
    f = gc.constant(np.zeros((3, 2, 3, 2), np.float32))
    for strides, dilations in [(2, 2), ((1, 2), (2, 1)), ((3, 1), (1, 2)), ([1, 2, 1, 1], [1, 1, 2, 1])]:
        with pytest.raises(gc.ShapeError, match="conv2d"):
            gc.nn.conv2d(x, f, strides=strides, dilations=dilations, padding="SAME")


def test_bad_conv_and_pool_arguments(graph):
    x = gc.placeholder(gc.float32, shape=(None, 7, 5, 3))
    f = gc.constant(np.zeros((3, 2, 3, 2), np.float32))
    bad_conv = [
        dict(padding="FULL"),
        dict(padding="SAME", data_format="NCDHW"),
        dict(padding="SAME", strides=0),
        dict(padding="SAME", dilations=0),
        dict(padding="SAME", strides=[2, 1, 1, 1]),
        dict(padding="SAME", strides=[1, 2, 3]),
    ]
    for kwargs in bad_conv:
        with pytest.raises(gc.ShapeError, match="conv2d"):
            gc.nn.conv2d(x, f, **kwargs)
    with pytest.raises(gc.ShapeError, match="conv2d"):
        gc.nn.conv2d(gc.placeholder(gc.float32, (None, 7, 3)), f)
    with pytest.raises(gc.ShapeError, match="conv2d"):
        gc.nn.conv2d(x, gc.placeholder(gc.float32, (None, 2, 3, 2)), padding="SAME")
    for fn in (gc.nn.max_pool2d, gc.nn.avg_pool2d):
        with pytest.raises(gc.ShapeError):
            fn(x, 2, 2, "FULL")
        with pytest.raises(gc.ShapeError):
            fn(x, 0, 1, "SAME")
        with pytest.raises(gc.ShapeError):
            fn(x, 2, 0, "SAME")
        with pytest.raises(gc.ShapeError):
            fn(gc.placeholder(gc.float32, (None, 7, 5)), 2, 2, "SAME")
        with pytest.raises(gc.ShapeError):
            fn(x, 2, 2, "SAME", data_format="NCDHW")

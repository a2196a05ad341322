"""The convolution and its gradients on the CPU backend run their images in parts on the
pool, a block of images at a time. The filter gradient sums each block into its own slot, and
a tail adds the slots in block order (emit/ops.py, ``_filter_gradient_by_images``;
KernelContext.split_tail); the im2col convolution (with its bias and relu on each block's
rows: groups.py, ``_conv_by_images``) and the input gradient write each part's own images.
All must match the reference backend and float64 loops, and be bitwise the same whole and in
parts: blocks sit at fixed multiples of the images, however many threads ran them."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.codegen.cpu import parallel
from fuzz_graphs import pool_at_full_width, splits_on_the_pool

# (images, height, width, in channels, out channels, kernel, strides, dilations, padding)
CASES = [
    (7, 20, 20, 3, 4, 3, 1, 1, "SAME"),     # 3 images per block: blocks of 3, 3 and 1
    (5, 28, 28, 1, 6, 5, 1, 1, "SAME"),     # LeNet's conv1: one image per block
    (6, 13, 11, 2, 3, 3, 2, 1, "VALID"),    # strided, every image in one block
    (4, 16, 15, 2, 5, 3, 1, 2, "SAME"),     # dilated
    (9, 12, 12, 4, 8, 3, 1, 1, "SAME"),     # 4 channels: im2col, not the direct form; blocks of 6 and 3
]


def _numpy_gradients(xv, fv, gv, stride, dilation, padding):
    """(y, dF, dX) of the convolution for output gradient ``gv``, in float64: each filter tap
    reads a strided window of the zero-padded input."""
    n, h, w, c = xv.shape
    k, o = fv.shape[0], fv.shape[3]
    _, oh, ow, _ = gv.shape
    span = (k - 1) * dilation + 1
    pt = max((oh - 1) * stride + span - h, 0) // 2 if padding == "SAME" else 0
    pl = max((ow - 1) * stride + span - w, 0) // 2 if padding == "SAME" else 0
    padded = np.zeros((n, h + 2 * span, w + 2 * span, c))
    padded[:, pt:pt + h, pl:pl + w] = xv
    d_padded = np.zeros_like(padded)
    d_filter = np.zeros((k, k, c, o))
    y = np.zeros((n, oh, ow, o))
    for p in range(k):
        for q in range(k):
            window = (slice(None), slice(p * dilation, p * dilation + (oh - 1) * stride + 1, stride),
                      slice(q * dilation, q * dilation + (ow - 1) * stride + 1, stride))
            y += np.einsum("nhwc,co->nhwo", padded[window], fv[p, q])
            d_filter[p, q] = np.einsum("nhwc,nhwo->co", padded[window], gv)
            d_padded[window] += np.einsum("nhwo,co->nhwc", gv, fv[p, q])
    return y, d_filter, d_padded[:, pt:pt + h, pl:pl + w]


@pytest.fixture(scope="module")
def pool():
    yield from pool_at_full_width()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}x{c[2]}x{c[3]}-k{c[5]}s{c[6]}d{c[7]}-{c[8]}")
def test_convolution_gradients_in_parts_match_and_do_not_depend_on_the_split(case, pool):
    n, h, w, c, o, k, stride, dilation, padding = case
    rng = np.random.default_rng(21)
    xv = rng.standard_normal((n, h, w, c)).astype(np.float32)
    fv = rng.standard_normal((k, k, c, o)).astype(np.float32)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, h, w, c), "x")
        f = gc.placeholder(gc.float32, (k, k, c, o), "f")
        y = gc.nn.conv2d(x, f, strides=stride, padding=padding, dilations=dilation)
        bias = rng.standard_normal(o).astype(np.float32)
        act = gc.nn.relu(y + gc.constant(bias))
        wv = rng.standard_normal(o).astype(np.float32)   # per channel: the product joins the epilogue
        df, dx = gc.gradients(gc.reduce_sum(y * gc.constant(wv)), [f, x])   # y's gradient: wv, each pixel
    feed = {x: xv, f: fv}
    with gc.Session(graph=g, device="reference") as sess:
        want = sess.run([act, df, dx], feed)
    got = {}
    for on_pool in (True, False):
        before = parallel.MIN_WORK
        jobs = parallel.control()[parallel.GEN]
        with splits_on_the_pool(on_pool), gc.Session(graph=g, device="cpu") as sess:
            if not on_pool:
                parallel.MIN_WORK = 1 << 62   # whole: the kernel calls its tail itself
            try:
                got[on_pool] = sess.run([act, df, dx], feed)
            finally:
                parallel.MIN_WORK = before
            (runner,) = sess._runners.values()
            calls = runner.executable.generated.calls
            (filter_call,) = [cl for cl in calls if "def _tail(" in cl.source]
            (input_call,) = [cl for cl in calls if "conv2d_backprop_input" in cl.label]
            (conv_call,) = [cl for cl in calls if "conv2d" in cl.label and "backprop" not in cl.label]
            assert filter_call.split is not None and input_call.split is not None and conv_call.split is not None
            assert "relu" in conv_call.label   # the bias and relu run in the convolution's kernel
        if on_pool and parallel.NATIVE and parallel.THREADS > 1:
            assert parallel.control()[parallel.GEN] > jobs   # its parts ran on the pool
    y64, d_filter, d_input = _numpy_gradients(xv.astype(np.float64), fv.astype(np.float64),
                                              np.broadcast_to(wv, (n, *y.shape.as_list()[1:3], o)).astype(np.float64),
                                              stride, dilation, padding)
    exact = (np.maximum(y64 + bias, 0), d_filter, d_input)
    for j, name in enumerate(("convolution", "filter gradient", "input gradient")):
        assert np.array_equal(got[True][j], got[False][j]), name
        scale = np.abs(exact[j]).max()
        np.testing.assert_allclose(want[j], exact[j], rtol=0, atol=2e-5 * scale, err_msg=name)
        np.testing.assert_allclose(got[True][j], exact[j], rtol=0, atol=2e-5 * scale, err_msg=name)

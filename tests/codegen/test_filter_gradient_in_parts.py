"""The convolution's filter gradient on the CPU backend runs its images in parts on the pool,
each block of images summing into its own slot, and a tail adds the slots in block order
(emit/ops.py, ``_filter_gradient_by_images``; KernelContext.split_tail). The result must match
the reference backend and a float64 loop, and be bitwise the same whole and in parts: blocks
sit at fixed multiples of the images, however many threads ran them."""
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
]


def _numpy_filter_gradient(xv, gv, k, stride, dilation, padding):
    """dF[p, q, c, o] = sum over images and output pixels of x at the tap times g, in float64."""
    n, h, w, c = xv.shape
    _, oh, ow, o = gv.shape
    span = (k - 1) * dilation + 1
    pt = max((oh - 1) * stride + span - h, 0) // 2 if padding == "SAME" else 0
    pl = max((ow - 1) * stride + span - w, 0) // 2 if padding == "SAME" else 0
    padded = np.zeros((n, h + 2 * span, w + 2 * span, c))
    padded[:, pt:pt + h, pl:pl + w] = xv
    out = np.zeros((k, k, c, o))
    for p in range(k):
        for q in range(k):
            taps = padded[:, p * dilation:p * dilation + (oh - 1) * stride + 1:stride,
                          q * dilation:q * dilation + (ow - 1) * stride + 1:stride]
            out[p, q] = np.einsum("nhwc,nhwo->co", taps, gv)
    return out


@pytest.fixture(scope="module")
def pool():
    yield from pool_at_full_width()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}x{c[2]}x{c[3]}-k{c[5]}s{c[6]}d{c[7]}-{c[8]}")
def test_filter_gradient_in_parts_matches_and_does_not_depend_on_the_split(case, pool):
    n, h, w, c, o, k, stride, dilation, padding = case
    rng = np.random.default_rng(21)
    xv = rng.standard_normal((n, h, w, c)).astype(np.float32)
    fv = rng.standard_normal((k, k, c, o)).astype(np.float32)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, h, w, c), "x")
        f = gc.placeholder(gc.float32, (k, k, c, o), "f")
        y = gc.nn.conv2d(x, f, strides=stride, padding=padding, dilations=dilation)
        wv = rng.standard_normal(y.shape.as_list()[1:]).astype(np.float32)
        (df,) = gc.gradients(gc.reduce_sum(y * gc.constant(wv)), [f])   # y's gradient: wv, each image
    feed = {x: xv, f: fv}
    with gc.Session(graph=g, device="reference") as sess:
        want = sess.run(df, feed)
    got = {}
    for on_pool in (True, False):
        before = parallel.MIN_WORK
        jobs = parallel.control()[parallel.GEN]
        with splits_on_the_pool(on_pool), gc.Session(graph=g, device="cpu") as sess:
            if not on_pool:
                parallel.MIN_WORK = 1 << 62   # whole: the kernel calls its tail itself
            try:
                got[on_pool] = sess.run(df, feed)
            finally:
                parallel.MIN_WORK = before
            (runner,) = sess._runners.values()
            (call,) = [cl for cl in runner.executable.generated.calls if "def _tail(" in cl.source]
            assert call.split is not None
        if on_pool and parallel.NATIVE and parallel.THREADS > 1:
            assert parallel.control()[parallel.GEN] > jobs   # its parts ran on the pool
    assert np.array_equal(got[True], got[False])
    exact = _numpy_filter_gradient(xv.astype(np.float64), np.broadcast_to(wv, (n,) + wv.shape).astype(np.float64),
                                   k, stride, dilation, padding)
    scale = np.abs(exact).max()
    np.testing.assert_allclose(want, exact, rtol=0, atol=2e-5 * scale)
    np.testing.assert_allclose(got[True], exact, rtol=0, atol=2e-5 * scale)

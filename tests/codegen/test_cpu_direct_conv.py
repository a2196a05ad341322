"""The CPU backend's direct small-channel convolution (codegen/cpu/direct_conv.py, shared
with the native target): taken where it applies, with bias and ReLU fused, and equal to the
reference backend on every path (1-3 channels, SAME/VALID, height stride, dilation,
float64, a batch split across threads)."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

# (H, W, C, KH, KW, O, strides, dilations, padding, dtype, direct?)
CASES = [
    (28, 28, 1, 5, 5, 6, (1, 1), (1, 1), "SAME", np.float32, True),
    (17, 19, 3, 3, 3, 13, (2, 1), (1, 1), "SAME", np.float32, True),
    (16, 20, 2, 3, 5, 7, (1, 1), (2, 2), "VALID", np.float32, True),
    (15, 12, 3, 4, 2, 5, (1, 1), (1, 3), "SAME", np.float64, True),
    (12, 12, 1, 3, 3, 4, (2, 2), (1, 1), "SAME", np.float32, False),   # strided along the width
    (12, 12, 4, 3, 3, 4, (1, 1), (1, 1), "SAME", np.float32, False),   # 4 channels: im2col
    (9, 6, 1, 3, 3, 4, (1, 1), (1, 1), "VALID", np.float32, False),    # output narrower than a vector
    (10, 10, 1, 3, 3, 17, (1, 1), (1, 1), "SAME", np.float32, False),  # many outputs: BLAS is faster
]


def _conv_calls(sess):
    (runner,) = sess._runners.values()
    return [c for c in runner.executable.generated.calls if "conv" in c.label]


@pytest.mark.parametrize("batch", [1, 3, 64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:6])) + f"-{c[8]}-s{c[6][0]}{c[6][1]}"
                         f"-d{c[7][0]}{c[7][1]}-{np.dtype(c[9]).name}")
def test_direct_conv_matches_reference(case, batch):
    H, W, C, KH, KW, O, strides, dilations, padding, dt, direct = case
    rng = np.random.default_rng(1)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.as_dtype(dt), (None, H, W, C))
        f = gc.constant(rng.standard_normal((KH, KW, C, O)).astype(dt))
        b = gc.constant(rng.standard_normal(O).astype(dt))
        conv = gc.nn.conv2d(x, f, strides=strides, dilations=dilations, padding=padding)
        h = gc.nn.relu(conv + b)
    xv = rng.standard_normal((batch, H, W, C)).astype(dt)
    with gc.Session(graph=g, device="reference") as sess:
        want_h, want_conv = sess.run([h, conv], {x: xv})
    with gc.Session(graph=g, device="cpu") as sess:
        got_h = sess.run(h, {x: xv})
        calls = _conv_calls(sess)
    with gc.Session(graph=g, device="cpu") as sess:  # no epilogue
        got_conv = sess.run(conv, {x: xv})
    tol = 1e-4 if dt == np.float32 else 1e-10
    np.testing.assert_allclose(got_h, want_h, rtol=tol, atol=tol)
    np.testing.assert_allclose(got_conv, want_conv, rtol=tol, atol=tol)
    assert len(calls) == 1                        # conv + bias + relu: one kernel
    (call,) = calls
    assert ("np.dot" not in call.source) == direct, call.source
    if direct:                                    # the batch loop can be split across threads
        assert call.split is not None and ("lo",) in call.params

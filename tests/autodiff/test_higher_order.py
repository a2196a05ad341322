"""Higher-order differentiation: gradients of gradients (tanh, softmax cross-entropy, conv2d,
run-time broadcasting), gc.hessian_vector_product, gc.jvp and gc.hessians, against
analytic NumPy derivatives and central finite differences in float64."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.test_utils import check_gradients
from support import assert_close

rng = np.random.default_rng(77)


def rand(*shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape)


def f64(shape, name=None):
    return gc.placeholder(gc.float64, shape, name=name)


def _np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# --- gradients of gradients --------------------------------------------------------------------
def test_tanh_second_and_third_derivatives(graph, evaluate):
    x0 = rand(5)
    x = f64((5,), "x")
    (g1,) = gc.gradients(gc.reduce_sum(gc.tanh(x)), x)
    (g2,) = gc.gradients(gc.reduce_sum(g1), x)                # the Hessian is diagonal
    (g3,) = gc.gradients(gc.reduce_sum(g2), x)
    got1, got2, got3 = evaluate([g1, g2, g3], {x: x0})
    t = np.tanh(x0)
    assert_close(got1, 1 - t ** 2)
    assert_close(got2, -2 * t * (1 - t ** 2))
    assert_close(got3, (6 * t ** 2 - 2) * (1 - t ** 2))


def test_tanh_gradient_function_matches_finite_differences(device):
    def grad_of_tanh(x):
        return gc.gradients(gc.reduce_sum(gc.tanh(x)), x)[0]
    report = check_gradients(grad_of_tanh, [rand(2, 3)], device=device)
    assert report.ok and report.checked == 6


def test_softmax_cross_entropy_second_order(device):
    labels0 = rng.uniform(0, 1, size=(3, 4))
    logits0 = rand(3, 4)

    def grad_wrt_logits(labels, logits):
        loss = gc.reduce_sum(gc.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        return gc.gradients(loss, logits)[0]
    report = check_gradients(grad_wrt_logits, [labels0, logits0], device=device)
    assert report.ok and report.checked == 24


def test_softmax_cross_entropy_hessian_matches_numpy(graph, evaluate):
    labels0 = rng.uniform(0, 1, size=(2, 3))
    logits0 = rand(2, 3)
    labels, logits = f64((2, 3)), f64((2, 3))
    loss = gc.reduce_sum(gc.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    (h,) = gc.hessians(loss, logits)
    assert tuple(h.shape) == (2, 3, 2, 3)
    got = evaluate(h, {labels: labels0, logits: logits0})
    want = np.zeros((2, 3, 2, 3))
    for i in range(2):
        p = _np_softmax(logits0[i])
        want[i, :, i, :] = labels0[i].sum() * (np.diag(p) - np.outer(p, p))
    assert_close(got, want)


CONV_CASES = [
    pytest.param(dict(strides=2, padding="SAME"), (1, 5, 5, 2), (3, 3, 2, 2), id="same-stride2"),
    pytest.param(dict(dilations=2, padding="VALID"), (1, 6, 6, 2), (2, 2, 2, 3), id="valid-dilation2"),
]


@pytest.mark.parametrize("attrs, x_shape, f_shape", CONV_CASES)
def test_conv2d_gradients_of_gradients(attrs, x_shape, f_shape, device):
    x0, f0 = rand(*x_shape), rand(*f_shape, low=-1.0, high=1.0)
    out_shape = gc.Graph()
    with out_shape.as_default():
        out_shape = tuple(gc.nn.conv2d(gc.zeros(x_shape, gc.float64), gc.zeros(f_shape, gc.float64), **attrs).shape)
    r = rand(*out_shape)

    def second_order(x, f):
        y = gc.nn.conv2d(x, f, **attrs)
        (gx_linear,) = gc.gradients(gc.reduce_sum(y * r), x)  # the input gradient: linear in f
        gx, gf = gc.gradients(gc.reduce_sum(gc.tanh(y) * r), [x, f])
        return [gx_linear, gx, gf]
    report = check_gradients(second_order, [x0, f0], device=device)
    assert report.ok and report.checked == x0.size + f0.size


def test_conv2d_input_gradient_is_linear_in_the_filter(graph, evaluate):
    x0, f0, r0 = rand(1, 4, 4, 1), rand(3, 3, 1, 1), rand(1, 2, 2, 1)
    x, f = f64(x0.shape), f64(f0.shape)
    y = gc.nn.conv2d(x, f, strides=2, padding="SAME")
    (gx,) = gc.gradients(gc.reduce_sum(y * r0), x)
    u0 = rand(*x0.shape)
    gf, gx2 = gc.gradients(gc.reduce_sum(gx * u0), [f, x], unconnected_gradients="zero")
    got_gx, got_gf, got_gx2 = evaluate([gx, gf, gx2], {x: x0, f: f0})
    # SAME with stride 2 on 4x4 and a 3x3 kernel pads (0, 1): output (i, j) reads rows 2i..2i+2.
    want_gx = np.zeros((6, 6))
    want_gf = np.zeros((3, 3))
    padded_u = np.pad(u0[0, :, :, 0], ((0, 2), (0, 2)))
    for i in range(2):
        for j in range(2):
            want_gx[2 * i:2 * i + 3, 2 * j:2 * j + 3] += r0[0, i, j, 0] * f0[:, :, 0, 0]
            want_gf += r0[0, i, j, 0] * padded_u[2 * i:2 * i + 3, 2 * j:2 * j + 3]
    assert_close(got_gx, want_gx[:4, :4].reshape(1, 4, 4, 1))
    assert_close(got_gf, want_gf.reshape(3, 3, 1, 1))
    assert_close(got_gx2, np.zeros(x0.shape))


def test_second_order_through_run_time_broadcasting(graph, evaluate, device):
    a0, b0, r0 = rand(1, 3), rand(4, 3), rand(1, 3)
    a, b = f64((None, 3), "a"), f64((None, 3), "b")
    (ga,) = gc.gradients(gc.reduce_sum(a * b * b), a)       # sum over rows of b^2, shape of a
    report = check_gradients(ga * r0, xs=[a, b], feed_dict={a: a0, b: b0}, device=device)
    assert report.ok and report.checked == 15
    (gb,) = gc.gradients(gc.reduce_sum(ga * r0), b)
    got_ga, got_gb = evaluate([ga, gb], {a: a0, b: b0})
    assert_close(got_ga, (b0 ** 2).sum(0, keepdims=True))
    assert_close(got_gb, 2 * b0 * r0)


# --- hessian_vector_product -----------------------------------------------------------------------
def test_hessian_vector_product_matches_numpy_hessian(graph, evaluate):
    n = 3
    x0, z0, a0 = rand(n), rand(n), rand(n, n)
    vx0, vz0 = rand(n), rand(n)
    x, z = f64((n,), "x"), f64((n,), "z")
    vx = f64((n,), "vx")
    quad = gc.reduce_sum(gc.matmul(gc.reshape(x, (1, n)), gc.matmul(a0, gc.reshape(x, (n, 1)))))
    f = gc.reduce_sum(x * x * x) + quad + gc.reduce_sum(x * z * z)
    (hv_x,) = gc.hessian_vector_product(f, x, vx)           # v as a tensor
    hv_xz = gc.hessian_vector_product(f, [x, z], [vx0, vz0])  # several xs, vs as arrays
    assert len(hv_xz) == 2
    got_x, got_xz = evaluate([hv_x, hv_xz], {x: x0, z: z0, vx: vx0})
    h_xx = np.diag(6 * x0) + a0 + a0.T
    h_xz = np.diag(2 * z0)
    h_zz = np.diag(2 * x0)
    assert_close(got_x, h_xx @ vx0)
    assert_close(got_xz[0], h_xx @ vx0 + h_xz @ vz0)
    assert_close(got_xz[1], h_xz.T @ vx0 + h_zz @ vz0)


def test_hessian_vector_product_edge_cases(graph, evaluate):
    x, w = f64((2,), "x"), f64((2,), "w")
    linear = gc.reduce_sum(x * 3.0)
    (hv,) = gc.hessian_vector_product(linear, x, np.ones(2))  # a zero Hessian
    if hv is not None:                                      # None (unconnected) or zeros
        assert_close(evaluate(hv, {x: np.array([1.0, 2.0])}), np.zeros(2))
    assert gc.hessian_vector_product(gc.reduce_sum(x * x), [w], [np.ones(2)]) == [None]
    with pytest.raises(gc.GradientError, match="2 xs but 1 vs"):
        gc.hessian_vector_product(linear, [x, w], [np.ones(2)])


# --- jvp ---------------------------------------------------------------------------------------------
def test_jvp_matches_numpy_jacobian_vector_products(graph, evaluate):
    w0, x0 = rand(3, 4, low=-1, high=1), rand(4, 1)
    vx0, vw0 = rand(4, 1), rand(3, 4)
    x = f64((4, 1), "x")
    w = gc.Variable(w0, name="W")
    y = gc.tanh(gc.matmul(w, x))                            # (3, 1): a non-scalar y
    energy = gc.reduce_sum(y * y)
    (jx,) = gc.jvp(y, x, vx0)
    (jw,) = gc.jvp(y, [w], [vw0])
    (jboth,) = gc.jvp(y, [x, w], [vx0, vw0])
    jy, je = gc.jvp([y, energy], x, vx0)
    got = evaluate([jx, jw, jboth, jy, je], {x: x0})
    y0 = np.tanh(w0 @ x0)
    d = 1 - y0 ** 2
    assert_close(got[0], d * (w0 @ vx0))
    assert_close(got[1], d * (vw0 @ x0))
    assert_close(got[2], d * (w0 @ vx0 + vw0 @ x0))
    assert_close(got[3], d * (w0 @ vx0))
    assert_close(got[4], np.float64(np.sum(2 * y0 * d * (w0 @ vx0))))


def test_jvp_edge_cases(graph, evaluate):
    x, u = f64((2,), "x"), f64((2,), "u")
    assert gc.jvp(gc.tanh(x), u, np.ones(2)) == [None]
    # a y that does not depend on x, next to one that does, gets zeros of its own shape
    j_x, j_u = gc.jvp([gc.sin(x), gc.reshape(u, (1, 2)) * 3.0], x, np.array([2.0, -1.0]))
    assert tuple(j_u.shape) == (1, 2)
    x0 = np.array([0.5, 1.5])
    got_x, got_u = evaluate([j_x, j_u], {x: x0, u: np.ones(2)})
    assert_close(got_x, np.cos(x0) * np.array([2.0, -1.0]))
    assert_close(got_u, np.zeros((1, 2)))
    with pytest.raises(gc.GradientError, match="1 xs but 2 vs"):
        gc.jvp(gc.tanh(x), x, [np.ones(2), np.ones(2)])


# --- hessians ------------------------------------------------------------------------------------------
def test_hessians_match_numpy(graph, evaluate):
    x0, a0 = rand(3), rand(3, 3)
    m0, b0 = rand(2, 2), rand(2, 2)
    x, m = f64((3,), "x"), f64((2, 2), "m")
    quad = gc.reduce_sum(gc.reshape(x, (3, 1)) * a0 * gc.reshape(x, (1, 3)))
    f = gc.reduce_sum(x * x * x) + quad
    g = gc.reduce_sum(m * m * m) + gc.reduce_sum(m * b0) * gc.reduce_sum(m)
    (hx,) = gc.hessians(f, x)
    (hm,) = gc.hessians(g, [m])
    assert tuple(hx.shape) == (3, 3) and tuple(hm.shape) == (2, 2, 2, 2)
    got_x, got_m = evaluate([hx, hm], {x: x0, m: m0})
    assert_close(got_x, np.diag(6 * x0) + a0 + a0.T)
    flat_b = b0.reshape(-1)
    want_m = np.diag(6 * m0.reshape(-1)) + flat_b[:, None] + flat_b[None, :]
    assert_close(got_m, want_m.reshape(2, 2, 2, 2))


def test_hessians_errors_and_unconnected(graph):
    x = f64((None, 2), "batch_x")
    y = gc.reduce_sum(x * x)
    with pytest.raises(gc.GradientError) as info:
        gc.hessians(y, x)
    message = str(info.value)
    assert "batch_x" in message and "fully known shape" in message
    assert "test_higher_order.py" in message
    z = f64((2,), "z")
    assert gc.hessians(gc.reduce_sum(z * z), [f64((2,), "other")]) == [None]

"""graphc.theano: Theano's names over graphc's graph.

T functions against NumPy, theano.grad against finite differences, shared variables and
theano.function (simultaneous updates, givens with a symbolic slice), conv2d's filter flip
against scipy, pool_2d against NumPy, errors that name the user's line, and the three
tutorial programs in examples/theano (each must reach the error its file states)."""
from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

import graphc as gc
import graphc.theano as theano
import graphc.theano.tensor as T
from graphc.theano.tensor.nnet import conv2d
from graphc.theano.tensor.signal import downsample, pool

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples", "theano")
RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def fresh_graph(graph):
    """Every test builds in its own graph (so in its own Theano session), on the reference
    backend unless it asks for another."""
    device = theano.config.device
    theano.config.device = "reference"
    yield graph
    theano.config.device = device


# --- T functions against NumPy --------------------------------------------------------------------
A = RNG.uniform(0.5, 2.0, size=(3, 4)).astype(np.float32)
B = RNG.uniform(-1.0, 1.0, size=(3, 4)).astype(np.float32)
V = RNG.uniform(-1.0, 1.0, size=(4,)).astype(np.float32)
M = RNG.uniform(-1.0, 1.0, size=(4, 5)).astype(np.float32)
Y = np.array([1, 0, 3], dtype=np.int32)

CASES = [
    ("dot", lambda a, b, v, m, y: T.dot(a, m), lambda a, b, v, m, y: a @ m),
    ("dot matrix-vector", lambda a, b, v, m, y: T.dot(a, v), lambda a, b, v, m, y: a @ v),
    ("dot vector-vector", lambda a, b, v, m, y: T.dot(v, v), lambda a, b, v, m, y: v @ v),
    ("dot 3-D", lambda a, b, v, m, y: T.dot(a.reshape((3, 2, 2)), m[:2]),
     lambda a, b, v, m, y: np.dot(a.reshape(3, 2, 2), m[:2])),
    ("mean", lambda a, b, v, m, y: T.mean(a), lambda a, b, v, m, y: a.mean()),
    ("mean axis", lambda a, b, v, m, y: T.mean(a, axis=1), lambda a, b, v, m, y: a.mean(axis=1)),
    ("sum axis keepdims", lambda a, b, v, m, y: T.sum(a, axis=0, keepdims=True),
     lambda a, b, v, m, y: a.sum(axis=0, keepdims=True)),
    ("max", lambda a, b, v, m, y: T.max(b, axis=1), lambda a, b, v, m, y: b.max(axis=1)),
    ("argmax", lambda a, b, v, m, y: T.argmax(b, axis=1), lambda a, b, v, m, y: b.argmax(axis=1)),
    ("argmax flat", lambda a, b, v, m, y: T.argmax(b), lambda a, b, v, m, y: b.argmax()),
    ("exp log tanh sqrt", lambda a, b, v, m, y: T.exp(b) + T.log(a) + T.tanh(b) + T.sqrt(a),
     lambda a, b, v, m, y: np.exp(b) + np.log(a) + np.tanh(b) + np.sqrt(a)),
    ("maximum", lambda a, b, v, m, y: T.maximum(b, 0), lambda a, b, v, m, y: np.maximum(b, 0)),
    ("neq eq lt gt", lambda a, b, v, m, y: T.cast(T.neq(b, 0) & T.lt(b, 0.5) & T.gt(a, 1.0) | T.eq(a, a[0, 0]),
                                                  "int32"),
     lambda a, b, v, m, y: ((b != 0) & (b < 0.5) & (a > 1.0) | (a == a[0, 0])).astype(np.int32)),
    ("cast floatX", lambda a, b, v, m, y: T.cast(y, "floatX"), lambda a, b, v, m, y: y.astype(np.float32)),
    ("zeros_like ones_like", lambda a, b, v, m, y: T.zeros_like(a) + 2 * T.ones_like(b),
     lambda a, b, v, m, y: np.zeros_like(a) + 2),
    ("switch", lambda a, b, v, m, y: T.switch(T.lt(b, 0), -b, a), lambda a, b, v, m, y: np.where(b < 0, -b, a)),
    ("arange constant", lambda a, b, v, m, y: T.arange(5), lambda a, b, v, m, y: np.arange(5)),
    ("arange of a shape", lambda a, b, v, m, y: T.arange(y.shape[0]), lambda a, b, v, m, y: np.arange(3)),
    ("concatenate", lambda a, b, v, m, y: T.concatenate([a, b], axis=1),
     lambda a, b, v, m, y: np.concatenate([a, b], axis=1)),
    ("flatten", lambda a, b, v, m, y: T.flatten(a), lambda a, b, v, m, y: a.ravel()),
    ("flatten(2) of 3-D", lambda a, b, v, m, y: a.reshape((3, 2, 2)).flatten(2),
     lambda a, b, v, m, y: a.reshape(3, 4)),
    ("reshape with a symbolic dim", lambda a, b, v, m, y: T.reshape(a, (a.shape[0], 2, -1)),
     lambda a, b, v, m, y: a.reshape(3, 2, 2)),
    ("reshape to the shape of another", lambda a, b, v, m, y: T.reshape(a.T, b.T.shape).sum(axis=0),
     lambda a, b, v, m, y: a.T.sum(axis=0)),
    ("dimshuffle transpose + x", lambda a, b, v, m, y: a.dimshuffle(1, "x", 0),
     lambda a, b, v, m, y: a.T[:, None, :]),
    ("dimshuffle bias", lambda a, b, v, m, y: v.dimshuffle("x", 0) + b, lambda a, b, v, m, y: v[None, :] + b),
    ("dimshuffle drop", lambda a, b, v, m, y: a[0:1].dimshuffle(1), lambda a, b, v, m, y: a[0]),
    (".T .shape .mean() .sum()", lambda a, b, v, m, y: a.T.sum(axis=0) * a.shape[1] + a.mean(),
     lambda a, b, v, m, y: a.T.sum(axis=0) * 4 + a.mean()),
    ("advanced index [arange(n), y]", lambda a, b, v, m, y: T.log(a)[T.arange(y.shape[0]), y],
     lambda a, b, v, m, y: np.log(a)[np.arange(3), y]),
    ("negative log likelihood", lambda a, b, v, m, y: -T.mean(T.log(T.nnet.softmax(b))[T.arange(y.shape[0]), y]),
     lambda a, b, v, m, y: -np.mean(np.log(_softmax(b))[np.arange(3), y])),
    ("softmax", lambda a, b, v, m, y: T.nnet.softmax(b), lambda a, b, v, m, y: _softmax(b)),
    ("sigmoid", lambda a, b, v, m, y: T.nnet.sigmoid(b), lambda a, b, v, m, y: 1 / (1 + np.exp(-b))),
    ("relu", lambda a, b, v, m, y: T.nnet.relu(b), lambda a, b, v, m, y: np.maximum(b, 0)),
    ("leaky relu", lambda a, b, v, m, y: T.nnet.relu(b, 0.1), lambda a, b, v, m, y: np.maximum(b, 0.1 * b)),
    ("categorical_crossentropy ints", lambda a, b, v, m, y: T.nnet.categorical_crossentropy(T.nnet.softmax(b), y),
     lambda a, b, v, m, y: -np.log(_softmax(b)[np.arange(3), y])),
    ("categorical_crossentropy one-hot",
     lambda a, b, v, m, y: T.nnet.categorical_crossentropy(T.nnet.softmax(b), T.nnet.softmax(a)),
     lambda a, b, v, m, y: -(_softmax(a) * np.log(_softmax(b))).sum(axis=1)),
    ("binary_crossentropy", lambda a, b, v, m, y: T.nnet.binary_crossentropy(T.nnet.sigmoid(b), a / 2.0),
     lambda a, b, v, m, y: -(a / 2 * np.log(1 / (1 + np.exp(-b))) + (1 - a / 2) * np.log(1 - 1 / (1 + np.exp(-b))))),
]


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("label,build,expect", CASES, ids=[c[0] for c in CASES])
def test_tensor_functions_match_numpy(label, build, expect):
    a, b, v, m, y = T.matrix("a"), T.matrix("b"), T.vector("v"), T.matrix("m"), T.ivector("y")
    out = build(a, b, v, m, y)
    f = theano.function([a, b, v, m, y], out, on_unused_input="ignore")
    np.testing.assert_allclose(f(A, B, V, M, Y), expect(A, B, V, M, Y), rtol=2e-5, atol=1e-6)


def test_constructors_have_theano_types():
    assert T.matrix().dtype == "float32" and T.matrix().ndim == 2
    assert T.dmatrix().dtype == "float64" and T.ivector().dtype == "int32" and T.lscalar().ndim == 0
    assert T.ftensor4().ndim == 4 and T.dtensor4().dtype == "float64" and T.tensor3().ndim == 3
    assert T.lmatrix().dtype == "int64" and T.fscalar().dtype == "float32" and T.iscalar().dtype == "int32"
    assert T.vector(dtype="int64").dtype == "int64" and T.matrix("x").name == "x"
    theano.config.floatX = "float64"
    try:
        assert T.matrix().dtype == "float64" and T.scalar().dtype == "float64"
    finally:
        theano.config.floatX = "float32"
    with pytest.raises(ValueError, match="floatX"):
        theano.config.floatX = "float16"


# --- grad against finite differences ------------------------------------------------------------------
def test_grad_matches_finite_differences():
    x = T.dmatrix("x")
    y = T.ivector("y")
    rng = np.random.default_rng(1)
    W = theano.shared(rng.normal(size=(4, 3)), name="W")
    b = theano.shared(rng.normal(size=(3,)), name="b")
    p = T.nnet.softmax(T.tanh(T.dot(x, W)) + b.dimshuffle("x", 0))
    cost = -T.mean(T.log(p)[T.arange(y.shape[0]), y]) + 0.01 * (W ** 2).sum() + 0.1 * abs(b).sum()
    gW, gb = theano.grad(cost, [W, b])
    xv = rng.normal(size=(5, 4))
    yv = np.array([0, 2, 1, 1, 0], dtype=np.int32)
    f = theano.function([x, y], [cost, gW, gb])
    _, gwv, gbv = f(xv, yv)
    for shared_var, analytic in ((W, gwv), (b, gbv)):
        base = shared_var.get_value()
        numeric = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            for sign in (1, -1):
                moved = base.copy()
                moved[idx] += sign * 1e-6
                shared_var.set_value(moved)
                numeric[idx] += sign * f(xv, yv)[0] / 2e-6
        shared_var.set_value(base)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_grad_options():
    x = T.dvector("x")
    z = T.dvector("z")
    c = T.sum(x * z)
    gx = theano.grad(c, x, consider_constant=[z])
    f = theano.function([x, z], gx)
    np.testing.assert_allclose(f(np.ones(3), np.arange(3.0)), np.arange(3.0))
    with pytest.raises(theano.DisconnectedInputError, match=r"does not depend on 'w'.*" + "test_theano.py"):
        theano.grad(c, T.dvector("w"))
    gw = theano.grad(c, T.dvector("w"), disconnected_inputs="ignore")
    assert gw.ndim == 1
    with pytest.raises(gc.ShapeError, match="must be a scalar"):
        theano.grad(x * 2, x)


# --- shared variables and theano.function ---------------------------------------------------------
def test_shared_values_and_simultaneous_updates():
    a = theano.shared(np.float32(1.0), name="a")
    b = theano.shared(np.float32(10.0), name="b")
    step = T.fscalar("step")
    # both new values come from the old ones: a <- b, b <- a + step (a swap plus a step)
    swap = theano.function([step], [a + b, a * 1], updates=[(a, b), (b, a + step)])
    total, old_a = swap(np.float32(0.5))
    assert total == 11.0 and old_a == 1.0          # outputs see the values before the updates
    assert a.get_value() == 10.0 and b.get_value() == 1.5
    swap(np.float32(0.5))
    assert a.get_value() == 1.5 and b.get_value() == 10.5
    # another function of the same graph sees the same values (one session per graph)
    read = theano.function([], [a, b])
    assert [float(v) for v in read()] == [1.5, 10.5]
    b.set_value(np.float32(-2))
    assert float(read()[1]) == -2.0
    w = theano.shared(np.arange(6, dtype=np.float32).reshape(2, 3), name="w")
    got = w.get_value()
    got[0, 0] = 99                                    # get_value copies
    assert w.get_value()[0, 0] == 0
    # an OrderedDict of updates, a counter
    from collections import OrderedDict
    count = theano.shared(np.int64(0))
    inc = theano.function([], count, updates=OrderedDict([(count, count + 1)]))
    assert [int(inc()) for _ in range(3)] == [0, 1, 2] and int(count.get_value()) == 3


def test_givens_with_a_symbolic_slice():
    data = np.arange(40, dtype=np.float32).reshape(10, 4)
    data_x = theano.shared(data, name="data_x")
    labels = theano.shared(np.arange(10, dtype=np.float32))
    index = T.lscalar("index")
    x = T.matrix("x")
    y = T.ivector("y")
    bs = 3
    f = theano.function([index], [x.sum(axis=1), y * 2],
                        givens={x: data_x[index * bs:(index + 1) * bs],
                                y: T.cast(labels, "int32")[index * bs:(index + 1) * bs]})
    for i in range(3):
        rows, ys = f(i)
        np.testing.assert_allclose(rows, data[i * bs:(i + 1) * bs].sum(axis=1))
        np.testing.assert_array_equal(ys, 2 * np.arange(10)[i * bs:(i + 1) * bs])
    # a plain value as the replacement, and the inputs keep working without givens
    g = theano.function([x], (x * 2).sum())
    assert float(g(np.ones((2, 2), np.float32))) == 8.0
    h = theano.function([], (x * 2).sum(), givens=[(x, np.ones((1, 3), np.float32))])
    assert float(h()) == 6.0
    # clone: the same substitution as a graph transformation
    doubled = theano.clone(x.sum(), replace={x: x * 2})
    assert float(theano.function([x], doubled)(np.ones((2, 2), np.float32))) == 8.0


def test_function_inputs_and_outputs():
    x, y = T.dvector("x"), T.dvector("y")
    f = theano.function([x, y], x + y)
    out = f([1.0, 2.0], [3.0, 4.0])                   # lists convert
    np.testing.assert_allclose(out, [4.0, 6.0])
    assert isinstance(theano.function([x, y], [x + y])(np.ones(2), np.ones(2)), list)
    np.testing.assert_allclose(f(x=[1.0], y=[2.0]), [3.0])   # inputs by name
    v = T.fvector("v")
    strict = theano.function([v], v * 2)
    with pytest.raises(TypeError, match=r"'v'.*float32, got float64.*allow_input_downcast"):
        strict(np.ones(3))
    loose = theano.function([v], v * 2, allow_input_downcast=True)
    np.testing.assert_allclose(loose(np.ones(3)), 2.0)


def test_scan_computes_a_running_sum_and_its_gradient():
    x = T.dvector("x")
    w = theano.shared(np.float64(2.0), name="w")
    outputs, updates = theano.scan(lambda xt, acc, w_: acc + w_ * xt, sequences=x,
                                   outputs_info=T.constant(np.float64(0.0)), non_sequences=w)
    assert isinstance(updates, dict) and not updates
    gw = theano.grad(outputs[-1], w)
    f = theano.function([x], [outputs, gw])
    seq, g = f(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(seq, [2.0, 6.0, 12.0])
    assert float(g) == 6.0


# --- conv2d and pool_2d ------------------------------------------------------------------------------
@pytest.mark.parametrize("border_mode", ["valid", "full", "half", (1, 2)])
@pytest.mark.parametrize("filter_flip", [True, False])
def test_conv2d_is_a_true_convolution(border_mode, filter_flip):
    from scipy.signal import convolve2d, correlate2d
    rng = np.random.default_rng(2)
    xv = rng.normal(size=(2, 3, 6, 7))
    wv = rng.normal(size=(4, 3, 3, 3))
    x, w = T.dtensor4("x"), T.dtensor4("w")
    f = theano.function([x, w], conv2d(x, w, border_mode=border_mode, filter_flip=filter_flip,
                                       filter_shape=wv.shape, input_shape=(None, 3, None, None)))
    got = f(xv, wv)
    op = convolve2d if filter_flip else correlate2d
    if isinstance(border_mode, tuple):
        padded = np.pad(xv, [(0, 0), (0, 0), (border_mode[0],) * 2, (border_mode[1],) * 2])
        mode, source = "valid", padded
    elif border_mode == "half":
        mode, source = "same", xv
    else:
        mode, source = border_mode, xv
    want = np.stack([np.stack([sum(op(source[n, c], wv[o, c], mode=mode) for c in range(3)) for o in range(4)])
                     for n in range(2)])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_conv2d_subsample():
    from scipy.signal import convolve2d
    rng = np.random.default_rng(3)
    xv = rng.normal(size=(1, 1, 7, 7))
    wv = rng.normal(size=(1, 1, 3, 3))
    x = T.dtensor4("x")
    w = theano.shared(wv)  # a shared variable's shape is known: no filter_shape needed
    got = theano.function([x], conv2d(x, w, subsample=(2, 2)))(xv)
    np.testing.assert_allclose(got[0, 0], convolve2d(xv[0, 0], wv[0, 0], mode="valid")[::2, ::2], rtol=1e-10)


def _pool_reference(x, ws, stride, ignore_border, mode, pad=(0, 0)):
    h, w = x.shape[-2:]
    xp = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(pad[0], pad[0]), (pad[1], pad[1])], constant_values=np.nan)
    hp, wp = xp.shape[-2:]
    def out_size(r, d, st):  # Theano's Pool.out_shape
        if ignore_border:
            return (r - d) // st + 1
        return (r - 1) // st + 1 if st >= d else max(0, (r - 1 - d + st) // st) + 1

    oh, ow = out_size(hp, ws[0], stride[0]), out_size(wp, ws[1], stride[1])
    out = np.zeros(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = xp[..., i * stride[0]:i * stride[0] + ws[0], j * stride[1]:j * stride[1] + ws[1]]
            flat = win.reshape(win.shape[:-2] + (-1,))
            if mode == "max":
                out[..., i, j] = np.nanmax(flat, axis=-1)
            elif mode == "sum":
                out[..., i, j] = np.nansum(flat, axis=-1)
            elif mode == "average_exc_pad":
                out[..., i, j] = np.nanmean(flat, axis=-1)
            else:  # average_inc_pad: padding counts, cells past the border do not
                out[..., i, j] = np.nansum(flat, axis=-1) / flat.shape[-1]
    return out


@pytest.mark.parametrize("ws,stride,ignore_border,mode,pad", [
    ((2, 2), None, True, "max", (0, 0)),
    ((2, 2), None, False, "max", (0, 0)),
    ((3, 2), (1, 2), True, "max", (0, 0)),
    ((3, 3), (2, 2), False, "max", (0, 0)),
    ((2, 2), (3, 3), False, "max", (0, 0)),
    ((3, 3), (2, 2), False, "average_exc_pad", (0, 0)),
    ((3, 3), (2, 2), False, "average_inc_pad", (0, 0)),
    ((3, 3), (2, 2), False, "sum", (0, 0)),
    ((2, 2), None, True, "average_exc_pad", (0, 0)),
    ((2, 2), None, True, "sum", (0, 0)),
    ((3, 3), (2, 2), True, "max", (1, 1)),
    ((3, 3), (2, 2), True, "average_exc_pad", (1, 1)),
    ((3, 3), (2, 2), True, "average_inc_pad", (1, 1)),
])
def test_pool_2d_matches_numpy(ws, stride, ignore_border, mode, pad):
    rng = np.random.default_rng(4)
    xv = rng.normal(size=(2, 3, 7, 5))
    x = T.dtensor4("x")
    f = theano.function([x], pool.pool_2d(x.reshape((2, 3, 7, 5)), ws=ws, ignore_border=ignore_border,
                                          stride=stride, pad=pad, mode=mode))
    want = _pool_reference(xv, ws, stride or ws, ignore_border, mode, pad)
    got = f(xv)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_pool_2d_default_and_old_name():
    x = T.dtensor3("x")
    xv = np.arange(2 * 5 * 5, dtype=np.float64).reshape(2, 5, 5)
    with pytest.warns(UserWarning, match="ignore_border"):
        out = pool.pool_2d(x.reshape((2, 5, 5)), ws=(2, 2))
    np.testing.assert_allclose(theano.function([x], out)(xv), _pool_reference(xv, (2, 2), (2, 2), False, "max"))
    old = downsample.max_pool_2d(x, ds=(2, 2), ignore_border=True)
    np.testing.assert_allclose(theano.function([x], old)(xv), _pool_reference(xv, (2, 2), (2, 2), True, "max"))


# --- errors name the user's line ------------------------------------------------------------------
def next_line() -> str:
    """``test_theano.py:N`` for the line after the caller's: where the error must point."""
    return f"test_theano.py:{sys._getframe(1).f_lineno + 2}"


def test_errors_name_the_variable_and_the_users_line():
    x = T.matrix("x")
    y = T.ivector("y")
    W = theano.shared(np.zeros((3, 2), np.float32), name="W")
    line = next_line()
    with pytest.raises(theano.UnusedInputError, match=r"input 1, 'y'.*not part of the graph") as e:
        theano.function([x, y], x.sum())
    assert line in str(e.value)
    line = next_line()
    with pytest.raises(TypeError, match=r"shared variable 'W'.*explicit input.*givens") as e:
        theano.function([W], x.sum())
    assert line in str(e.value)
    line = next_line()
    with pytest.raises(gc.DTypeError, match=r"'W'.*float32.*float64") as e:
        theano.function([], [], updates=[(W, T.cast(W, "float64") * 2)])
    assert line in str(e.value)
    with pytest.raises(TypeError, match=r"not a shared variable"):
        theano.function([x], [], updates=[(x, x * 2)])
    g = theano.function([x], x.sum())
    line = next_line()
    with pytest.raises(TypeError, match=r"expected 1 argument.*'x'") as e:
        g()
    assert line in str(e.value)
    line = next_line()
    with pytest.raises(TypeError, match=r"input 0, 'x'.*expects rank 2.*shape \(3,\)") as e:
        g(np.ones(3, np.float32))
    assert line in str(e.value)
    line = next_line()
    with pytest.raises(gc.ShapeError, match=r"set_value of shared variable 'W'.*expected shape \(3, 2\), got \(4,\)") as e:
        W.set_value(np.zeros(4, np.float32))
    assert line in str(e.value)
    index, other = T.lscalar("index"), T.lscalar("other")
    data = theano.shared(np.zeros((6, 2), np.float32))
    line = next_line()
    with pytest.raises(gc.ShapeError, match=r"depends on tensor values") as e:
        data[index:other]
    assert line in str(e.value)
    line = next_line()
    with pytest.raises(ValueError, match=r"dimshuffle.*drops dim 1.*size 2") as e:
        W.dimshuffle(0)
    assert line in str(e.value)
    line = next_line()
    with pytest.raises(gc.DTypeError, match=r"givens.*'x'.*float32 of rank 2.*int32 of rank 1") as e:
        theano.function([], x.sum(), givens={x: y})
    assert line in str(e.value)
    line = next_line()
    with pytest.raises(gc.ShapeError, match=r"conv2d.*filter_shape=\(2, 1, 3, 3\).*shape \(2, 3, 3, 3\)") as e:
        conv2d(T.tensor4("img"), theano.shared(np.zeros((2, 3, 3, 3), np.float32)), filter_shape=(2, 1, 3, 3))
    assert line in str(e.value)


def test_a_function_runs_on_the_cpu_backend():
    theano.config.device = "cpu"
    x = T.matrix("x")
    W = theano.shared(np.ones((2, 2), np.float32), name="W")
    f = theano.function([x], T.tanh(T.dot(x, W)).sum(), updates=[(W, W * 2)])
    assert abs(float(f(np.ones((1, 2), np.float32))) - 2 * np.tanh(2.0)) < 1e-6
    np.testing.assert_allclose(W.get_value(), 2.0)


# --- the tutorial programs -----------------------------------------------------------------------------
def _load_example(name):
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    spec = importlib.util.spec_from_file_location(f"theano_example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["logistic_sgd", "mlp", "convolutional_mlp"])
def test_example_learns(name, capsys):
    pytest.importorskip("sklearn")
    theano.config.device = os.environ.get("GRAPHC_DEVICE", "cpu")
    module = _load_example(name)
    error = module.main()
    assert "final validation error" in capsys.readouterr().out
    assert error <= module.EXPECTED_MAX_ERROR, f"{name}: validation error {error} > {module.EXPECTED_MAX_ERROR}"


def test_printing_shows_the_ops():
    x = T.matrix("x")
    text = theano.printing.debugprint(T.tanh(x) * 2, file="str")
    assert "tanh" in text and "multiply" in text and "placeholder" in text

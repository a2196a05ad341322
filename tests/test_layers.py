"""gc.layers (TF1's tf.layers): variables named and shared as TF1 names and shares them,
TF1's arguments, each layer against NumPy on every device, the new convolutions'
gradients by finite differences, and batch normalization in both modes with its moving
averages updated through UPDATE_OPS."""
import numpy as np
import pytest

import graphc as gc
from graphc.test_utils import check_gradients
from op_samples import _conv_ref
from support import DEVICES, build_error, simulated

rng = np.random.default_rng(0)


def _conv_transpose_nhwc(y, f, stride, out_hw):
    """The adjoint of a VALID convolution with ``f`` (kh, kw, co, ci): scatter each input pixel."""
    n, h, w, ci = y.shape
    kh, kw, co, _ = f.shape
    out = np.zeros((n, out_hw[0], out_hw[1], co))
    for i in range(h):
        for j in range(w):
            out[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :] += np.einsum("nc,hwoc->nhwo", y[:, i, j],
                                                                                           f)
    return out


def test_layers_name_and_share_variables_as_tf1(graph):
    x = gc.placeholder(gc.float32, (None, 4))
    a = gc.layers.dense(x, 3)
    gc.layers.dense(x, 3)
    gc.layers.dense(x, 2, name="head", kernel_regularizer=gc.contrib.layers.l2_regularizer(0.5))
    shared = gc.layers.dense(x, 2, name="head", reuse=True)
    names = [v.var_name for v in gc.trainable_variables()]
    assert names == ["dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias", "head/kernel", "head/bias"]
    assert len(gc.get_collection(gc.GraphKeys.REGULARIZATION_LOSSES)) == 1
    assert a.shape.as_list() == [None, 3] and shared.shape.as_list() == [None, 2]
    build_error(ValueError, lambda: gc.layers.dense(x, 2, name="head"), "Variable head/kernel already exists")
    build_error(gc.ShapeError, lambda: gc.layers.dense(gc.placeholder(gc.float32, (2, None)), 2), "dense",
                "last dim")
    build_error(gc.ShapeError, lambda: gc.layers.conv2d(x, 2, 3, data_format="NCHW"), "channels_first")
    with gc.variable_scope("tower", reuse=gc.AUTO_REUSE):
        t1 = gc.layers.dense(x, 2, name="fc")
        t2 = gc.layers.dense(x, 2, name="fc")
    assert len(gc.trainable_variables()) == 8 and t1 is not t2
    assert gc.nn.layers is gc.layers  # graphc's old name


def test_layers_against_numpy(evaluate):
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    k = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    kt = rng.standard_normal((2, 2, 5, 3)).astype(np.float32)
    dw = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    pw = rng.standard_normal((1, 1, 6, 4)).astype(np.float32)
    seq = rng.standard_normal((2, 7, 3)).astype(np.float32)
    k1 = rng.standard_normal((3, 3, 2)).astype(np.float32)
    c = gc.constant_initializer
    out = {
        "conv_same_relu": gc.layers.conv2d(x, 4, 3, padding="same", activation=gc.nn.relu, kernel_initializer=c(k),
                                           bias_initializer=c(0.5)),
        "conv_nchw": gc.layers.conv2d(np.transpose(x, (0, 3, 1, 2)), 4, (3, 3), strides=2,
                                      data_format="channels_first", kernel_initializer=c(k), use_bias=False),
        "conv_t": gc.layers.conv2d_transpose(x, 5, 2, strides=2, kernel_initializer=c(kt), use_bias=False),
        "separable": gc.layers.separable_conv2d(x, 4, 3, depth_multiplier=2, depthwise_initializer=c(dw),
                                                pointwise_initializer=c(pw), use_bias=False),
        "conv1d": gc.layers.conv1d(seq, 2, 3, strides=2, kernel_initializer=c(k1), use_bias=False),
        "max_pool": gc.layers.max_pooling2d(x, 2, 2),
        "avg_pool_same": gc.layers.average_pooling2d(x, 3, 2, padding="same"),
        "max_pool1d": gc.layers.max_pooling1d(seq, 2, 2),
        "flatten_nchw": gc.layers.flatten(np.transpose(x, (0, 3, 1, 2)), data_format="channels_first"),
        "dense_3d": gc.layers.dense(seq, 2, kernel_initializer=c(k1[0]), bias_initializer=c(1.0)),
    }
    got = evaluate(out)
    depthwise = np.concatenate([_conv_ref(x[..., i:i + 1], dw[:, :, i:i + 1, :], 1, "VALID") for i in range(3)], axis=-1)
    want = {
        "conv_same_relu": np.maximum(_conv_ref(x, k, 1, "SAME") + 0.5, 0),
        "conv_nchw": np.transpose(_conv_ref(x, k, 2, "VALID"), (0, 3, 1, 2)),
        "conv_t": _conv_transpose_nhwc(x, kt, 2, (12, 12)),
        "separable": _conv_ref(depthwise, pw, 1, "VALID"),
        "conv1d": _conv_ref(seq[:, None], k1[None], 2, "VALID")[:, 0],
        "max_pool": x.reshape(2, 3, 2, 3, 2, 3).max(axis=(2, 4)),
        # SAME pads 6 by one at the end; the average counts only the values inside
        "avg_pool_same": np.stack([np.stack([x[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3].mean(axis=(1, 2))
                                             for j in range(3)], axis=1) for i in range(3)], axis=1),
        "max_pool1d": seq[:, :6].reshape(2, 3, 2, 3).max(axis=2),
        "flatten_nchw": x.reshape(2, -1),
        "dense_3d": seq @ k1[0] + 1.0,
    }
    for name in out:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("device", DEVICES)
def test_new_convolutions_have_gradients(device):
    if simulated(device):
        pytest.skip("finite differences of convolutions: the CPU and the reference cover the rules")
    x = rng.standard_normal((1, 4, 4, 2))
    check_gradients(lambda a, f: gc.nn.conv2d_transpose(a, f, [1, 8, 8, 3], strides=2, padding="SAME"),
                    [x, rng.standard_normal((3, 3, 3, 2))], device=device)
    check_gradients(lambda a, f: gc.nn.depthwise_conv2d(a, f, [1, 1, 1, 1], "VALID"),
                    [x, rng.standard_normal((2, 2, 2, 2))], device=device)
    check_gradients(lambda a, f: gc.nn.conv1d(a, f, 1, "SAME"), [x[:, 0], rng.standard_normal((3, 2, 2))],
                    device=device)


# --- batch normalization ------------------------------------------------------------------------------------
def _bn_numpy(x, gamma, beta, mean, var, eps=1e-3):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


@pytest.mark.parametrize("device", DEVICES)
def test_batch_normalization_in_training_and_inference_with_moving_averages(device):
    x_value = rng.standard_normal((6, 3, 3, 4)).astype(np.float32) * 2 + 1
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 3, 3, 4))
        training = gc.placeholder_with_default(False, ())
        y = gc.layers.batch_normalization(x, momentum=0.9, training=training,
                                          gamma_initializer=gc.constant_initializer(2.0),
                                          beta_initializer=gc.constant_initializer(0.5))
        y_fixed_train = gc.layers.batch_normalization(x, training=True, name="bn2")
        y_fixed_infer = gc.layers.batch_normalization(x, training=False, name="bn2", reuse=True)
        updates = gc.get_collection(gc.GraphKeys.UPDATE_OPS)
        assert len(updates) == 4
        moving = gc.get_collection(gc.GraphKeys.MOVING_AVERAGE_VARIABLES)
        assert [v.var_name for v in moving] == ["batch_normalization/moving_mean",
                                                "batch_normalization/moving_variance", "bn2/moving_mean",
                                                "bn2/moving_variance"]
        assert not any(v.trainable for v in moving)
        with gc.Session(device=device) as sess:
            sess.run(gc.global_variables_initializer())
            infer = sess.run(y, {x: x_value})  # moving statistics: mean 0, variance 1
            np.testing.assert_allclose(infer, _bn_numpy(x_value, 2.0, 0.5, 0.0, 1.0), rtol=1e-5, atol=1e-5)
            sess.run(updates[:2], {x: x_value})  # not training: the averages stay
            np.testing.assert_allclose(sess.run(moving[0]), np.zeros(4), atol=0)
            with gc.control_dependencies(updates[:2]):
                pass
            train, _ = sess.run([y, updates[:2]], {x: x_value, training: True})
            mean, var = x_value.mean(axis=(0, 1, 2)), x_value.var(axis=(0, 1, 2))
            np.testing.assert_allclose(train, _bn_numpy(x_value, 2.0, 0.5, mean, var), rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(sess.run(moving[0]), 0.1 * mean, rtol=1e-5, atol=1e-6)
            # the biased batch variance, as TF 1.x's tf.layers (it undoes the fused kernel's n / (n - 1))
            np.testing.assert_allclose(sess.run(moving[1]), 0.9 + 0.1 * var, rtol=1e-5)
            a, b = sess.run([y_fixed_train, y_fixed_infer], {x: x_value})
            np.testing.assert_allclose(a, _bn_numpy(x_value, 1.0, 0.0, mean, var), rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(b, _bn_numpy(x_value, 1.0, 0.0, 0.0, 1.0), rtol=1e-5, atol=1e-5)


def test_batch_normalization_gradients_and_channel_axis():
    x0 = rng.standard_normal((4, 3))
    check_gradients(lambda x: gc.layers.batch_normalization(x, training=True, name="g"), [x0])
    x1 = rng.standard_normal((2, 3, 2, 2))
    check_gradients(lambda x: gc.layers.batch_normalization(x, axis=1, training=True, name="g1",
                                                            gamma_initializer=gc.constant_initializer(1.5)), [x1])
    with gc.Graph().as_default():
        y = gc.layers.batch_normalization(x1.astype(np.float32), axis=1, training=True)
        with gc.Session(device="reference") as sess:
            sess.run(gc.global_variables_initializer())
            mean, var = x1.mean(axis=(0, 2, 3), keepdims=True), x1.var(axis=(0, 2, 3), keepdims=True)
            np.testing.assert_allclose(sess.run(y), (x1 - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
        build_error(gc.ShapeError, lambda: gc.layers.batch_normalization(x1, axis=5), "axis 5")
        build_error(gc.ShapeError, lambda: gc.layers.batch_normalization(x1, training=gc.constant(1.0)),
                    "training must be")


def test_a_tf1_training_step_runs_update_ops_through_control_dependencies():
    data = rng.standard_normal((8, 5)).astype(np.float32)
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 5))
        h = gc.layers.batch_normalization(gc.layers.dense(x, 4), training=True)
        loss = gc.reduce_mean(gc.square(h))
        with gc.control_dependencies(gc.get_collection(gc.GraphKeys.UPDATE_OPS)):
            train = gc.train.GradientDescentOptimizer(0.1).minimize(loss)
        moving_mean = gc.get_collection(gc.GraphKeys.MOVING_AVERAGE_VARIABLES)[0]
        with gc.Session(device="reference") as sess:
            sess.run(gc.global_variables_initializer())
            sess.run(train, {x: data})
            assert np.abs(sess.run(moving_mean)).sum() > 0  # the update ran with the step


def test_batch_normalization_layer_uses_the_fused_kernel_where_it_fits(graph):
    y4 = gc.layers.batch_normalization(np.ones((2, 3, 3, 4), np.float32), training=True)
    y2 = gc.layers.batch_normalization(np.ones((5, 4), np.float32), training=True)
    y3 = gc.layers.batch_normalization(np.ones((2, 3, 4), np.float32), training=True)  # rank 3: moments
    types = [op.type for op in graph.get_operations()]
    assert types.count("fused_batch_norm") == 2
    assert all(t.shape == s for t, s in ((y4, (2, 3, 3, 4)), (y2, (5, 4)), (y3, (2, 3, 4))))

"""gc.losses and gc.metrics (TF1's tf.losses and tf.metrics): every loss and reduction against
NumPy on every device, gradients by finite differences in float64, the LOSSES collection, and
streaming metrics over several batches."""
import numpy as np
import pytest

import graphc as gc
from graphc.test_utils import check_gradients
from support import DEVICES, build_error

rng = np.random.default_rng(1)
LABELS = rng.uniform(0, 1, (4, 3))
PRED = rng.uniform(0.05, 0.95, (4, 3))
LOGITS = rng.standard_normal((4, 3)) * 2
ONEHOT = np.eye(3)[[0, 2, 1, 2]]
SPARSE = np.array([0, 2, 1, 2])
W_EXAMPLE = np.array([1.0, 0.0, 2.0, 0.5])
W_ROWS = W_EXAMPLE[:, None]  # per-example weights of (batch, 3) losses, as TF1 takes them


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _sigmoid_ce(labels, z):
    return np.maximum(z, 0) - z * labels + np.log1p(np.exp(-np.abs(z)))


def _huber(err, delta):
    a = np.abs(err)
    return np.where(a <= delta, 0.5 * a ** 2, 0.5 * delta ** 2 + delta * (a - delta))


# name -> (builder of the loss from (labels, predictions-or-logits, weights, reduction), per-element NumPy losses)
LOSSES = {
    "mean_squared_error": (lambda w, r: gc.losses.mean_squared_error(LABELS, PRED, w, reduction=r),
                           (PRED - LABELS) ** 2),
    "absolute_difference": (lambda w, r: gc.losses.absolute_difference(LABELS, PRED, w, reduction=r),
                            np.abs(PRED - LABELS)),
    "huber_loss": (lambda w, r: gc.losses.huber_loss(LABELS * 4, PRED, w, delta=0.7, reduction=r),
                   _huber(PRED - LABELS * 4, 0.7)),
    "log_loss": (lambda w, r: gc.losses.log_loss(np.round(LABELS), PRED, w, reduction=r),
                 -np.round(LABELS) * np.log(PRED + 1e-7) - (1 - np.round(LABELS)) * np.log(1 - PRED + 1e-7)),
    "hinge_loss": (lambda w, r: gc.losses.hinge_loss(np.round(LABELS), LOGITS, w, reduction=r),
                   np.maximum(0, 1 - (2 * np.round(LABELS) - 1) * LOGITS)),
    "sigmoid_cross_entropy": (lambda w, r: gc.losses.sigmoid_cross_entropy(LABELS, LOGITS, w, label_smoothing=0.2,
                                                                           reduction=r),
                              _sigmoid_ce(LABELS * 0.8 + 0.1, LOGITS)),
    "softmax_cross_entropy": (lambda w, r: gc.losses.softmax_cross_entropy(ONEHOT, LOGITS, w, label_smoothing=0.3,
                                                                           reduction=r),
                              -((ONEHOT * 0.7 + 0.1) * np.log(_softmax(LOGITS))).sum(-1)),
    "sparse_softmax_cross_entropy": (lambda w, r: gc.losses.sparse_softmax_cross_entropy(SPARSE, LOGITS, w,
                                                                                         reduction=r),
                                     -np.log(_softmax(LOGITS)[np.arange(4), SPARSE])),
}
R = gc.losses.Reduction


def _reduce(losses, weights, reduction):
    weights = np.asarray(weights, np.float64)
    full = np.broadcast_to(weights, losses.shape)
    weighted = losses * full
    return {R.NONE: weighted, R.SUM: weighted.sum(), R.MEAN: weighted.sum() / full.sum(),
            R.SUM_OVER_BATCH_SIZE: weighted.sum() / losses.size,
            R.SUM_BY_NONZERO_WEIGHTS: weighted.sum() / np.count_nonzero(full)}[reduction]


@pytest.mark.parametrize("device", DEVICES)
def test_every_loss_and_reduction_against_numpy(device):
    with gc.Graph().as_default():
        cases = {}
        for name, (build, elementwise) in LOSSES.items():
            per_example = W_ROWS if elementwise.ndim == 2 else W_EXAMPLE
            for weights in (1.0, per_example):
                for reduction in R.all():
                    key = f"{name}/{'scalar' if np.ndim(weights) == 0 else 'per-example'}/{reduction}"
                    cases[key] = (build(weights, reduction), _reduce(elementwise, weights, reduction))
        assert len(gc.get_collection(gc.GraphKeys.LOSSES)) == len(cases)
        with gc.Session(device=device) as sess:
            got = sess.run({k: v[0] for k, v in cases.items()})
    for key, (_, want) in cases.items():
        np.testing.assert_allclose(got[key], want, rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradients_match_finite_differences(name):
    extra = {"mean_squared_error": lambda p: gc.losses.mean_squared_error(LABELS, p, W_ROWS),
             "absolute_difference": lambda p: gc.losses.absolute_difference(LABELS, p, W_ROWS),
             "huber_loss": lambda p: gc.losses.huber_loss(LABELS * 4, p, W_ROWS, delta=0.7),
             "log_loss": lambda p: gc.losses.log_loss(np.round(LABELS), p, W_ROWS),
             "hinge_loss": lambda z: gc.losses.hinge_loss(np.round(LABELS), z, W_ROWS),
             "sigmoid_cross_entropy": lambda z: gc.losses.sigmoid_cross_entropy(LABELS, z, W_ROWS, 0.2),
             "softmax_cross_entropy": lambda z: gc.losses.softmax_cross_entropy(ONEHOT, z, W_EXAMPLE, 0.3),
             "sparse_softmax_cross_entropy": lambda z: gc.losses.sparse_softmax_cross_entropy(SPARSE, z,
                                                                                              W_EXAMPLE)}[name]
    point = PRED if name in ("mean_squared_error", "absolute_difference", "huber_loss", "log_loss") else LOGITS
    check_gradients(extra, [point])


def test_regularization_and_total_loss_and_errors(graph):
    with gc.variable_scope("net", regularizer=gc.contrib.layers.l2_regularizer(0.5)):
        w = gc.get_variable("w", [2], initializer=gc.constant_initializer(2.0))
    assert gc.losses.get_regularization_loss().op.type in ("add", "identity", "multiply")
    data = gc.losses.mean_squared_error([1.0, 1.0], w)
    gc.losses.add_loss(gc.constant(10.0), loss_collection="other")
    total = gc.losses.get_total_loss()
    with gc.Session(device="reference") as sess:
        sess.run(gc.global_variables_initializer())
        reg, t, d = sess.run([gc.losses.get_regularization_loss(), total, data])
    assert reg == pytest.approx(0.5 * 8 / 2) and d == pytest.approx(1.0) and t == pytest.approx(3.0)
    assert gc.losses.get_losses() == [data] and len(gc.losses.get_regularization_losses(scope="net")) == 1
    build_error(gc.ShapeError, lambda: gc.losses.mean_squared_error(np.ones(3), np.ones(2)), "mean_squared_error",
                "same shape")
    build_error(gc.ShapeError, lambda: gc.losses.absolute_difference(np.ones((2, 3)), np.ones((2, 3)),
                                                                     weights=np.ones(4)), "weights", "(4,)")
    # per-class (3,) weights on (3, 3) losses: refused as TF1 does, never read per example
    build_error(gc.ShapeError, lambda: gc.losses.absolute_difference(np.ones((3, 3)), np.ones((3, 3)),
                                                                     weights=np.ones(3)), "[batch, 1]")
    build_error(ValueError, lambda: gc.losses.compute_weighted_loss(np.ones(2), reduction="mean"), "reduction")


def test_weighted_loss_with_all_zero_weights_is_zero_not_nan(graph):
    loss = gc.losses.mean_squared_error(np.ones(3), np.zeros(3), weights=0.0)
    assert gc.Session(device="reference").run(loss) == 0.0


@pytest.mark.parametrize("device", DEVICES)
def test_streaming_metrics_over_batches(device):
    batches = [(np.array([1, 2, 3, 0]), np.array([1, 2, 0, 0]), np.array([1.0, 1.0, 2.0, 0.0])),
               (np.array([4, 4]), np.array([4, 1]), np.array([1.0, 3.0]))]
    with gc.Graph().as_default():
        labels = gc.placeholder(gc.int64, (None,))
        predictions = gc.placeholder(gc.int64, (None,))
        weights = gc.placeholder(gc.float32, (None,))
        acc, acc_update = gc.metrics.accuracy(labels, predictions)
        wacc, wacc_update = gc.metrics.accuracy(labels, predictions, weights=weights, name="weighted")
        mse, mse_update = gc.metrics.mean_squared_error(gc.to_float(labels), gc.to_float(predictions))
        rmse, rmse_update = gc.metrics.root_mean_squared_error(gc.to_float(labels), gc.to_float(predictions))
        mean, mean_update = gc.metrics.mean(gc.to_float(predictions), updates_collections=["my_updates"])
        assert gc.get_collection("my_updates") == [mean_update]
        assert {v.var_name for v in gc.local_variables()} >= {"accuracy/total", "accuracy/count", "weighted/total"}
        assert not gc.trainable_variables() and not set(gc.local_variables()) & set(gc.global_variables())
        updates = [acc_update, wacc_update, mse_update, rmse_update, mean_update]
        with gc.Session(device=device) as sess:
            sess.run(gc.local_variables_initializer())
            assert sess.run(acc) == 0.0  # nothing seen yet: 0, not NaN
            for lab, pred, w in batches:
                sess.run(updates, {labels: lab, predictions: pred, weights: w})
            got = sess.run([acc, wacc, mse, rmse, mean])
            sess.run(gc.local_variables_initializer())  # a reset, as in TF1
            assert sess.run(acc) == 0.0
    lab = np.concatenate([b[0] for b in batches])
    pred = np.concatenate([b[1] for b in batches])
    w = np.concatenate([b[2] for b in batches])
    want = [np.mean(lab == pred), np.sum((lab == pred) * w) / w.sum(), np.mean((lab - pred) ** 2.0),
            np.sqrt(np.mean((lab - pred) ** 2.0)), pred.mean()]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_two_metrics_of_one_kind_and_metrics_inside_a_reuse_scope(graph):
    train_acc, _ = gc.metrics.accuracy([1, 2], [1, 2])
    test_acc, _ = gc.metrics.accuracy([1, 2], [1, 0])  # TF1 makes accuracy_1
    with gc.variable_scope("model", reuse=True):
        inside, _ = gc.metrics.mean([1.0, 2.0])  # TF1's metric variables never go through reuse
    names = sorted(v.var_name for v in gc.local_variables())
    assert names == ["accuracy/count", "accuracy/total", "accuracy_1/count", "accuracy_1/total",
                     "model/mean/count", "model/mean/total"]

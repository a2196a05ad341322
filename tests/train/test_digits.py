"""Real models learn: a two-layer MLP and a LeNet-style CNN reach at least 97% held-out
accuracy on scikit-learn's digits, with fixed seeds, on the default backend."""
import numpy as np
import pytest

import graphc as gc
from graphc import datasets, zoo


@pytest.fixture(scope="module")
def digits():
    return datasets.load_digits()


def _train_and_score(model, digits, epochs, x_transform=lambda x: x):
    x_train, y_train, x_test, y_test = digits
    with gc.Session(graph=model.graph) as sess:
        sess.run(model.init)
        history = zoo.train(model, sess, x_train, y_train, epochs, seed=0)
        accuracy = zoo.evaluate_accuracy(model, sess, x_test, y_test)
        steps = int(sess.run(model.global_step))
    return history, accuracy, steps


def test_mlp_reaches_97_percent(digits):
    mean, std = zoo.standardization(digits[0])
    model = zoo.mlp(input_mean=mean, input_std=std, seed=0)
    history, accuracy, steps = _train_and_score(model, digits, epochs=50)
    assert history[-1] < 0.25 * history[0]
    assert accuracy >= 0.97, f"held-out accuracy {accuracy:.4f}"
    assert steps == 50 * int(np.ceil(len(digits[0]) / 64))


def test_lenet_reaches_97_percent(digits):
    model = zoo.lenet(seed=0)
    history, accuracy, _ = _train_and_score(model, digits, epochs=20)
    assert history[-1] < 0.1 * history[0]
    assert accuracy >= 0.97, f"held-out accuracy {accuracy:.4f}"

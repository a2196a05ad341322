"""Reference models used by the demo, the tests and the benchmarks: a two-layer MLP and a
LeNet-style CNN (conv -> pool -> conv -> pool -> dense -> dense), with a small trainer."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

import graphc as gc


@dataclass
class Classifier:
    """The tensors of a built classifier graph."""

    graph: "gc.Graph"
    x: "gc.Tensor"
    labels: "gc.Tensor"
    logits: "gc.Tensor"
    loss: "gc.Tensor"
    accuracy: "gc.Tensor"
    train_op: "gc.Operation"
    init: "gc.Operation"
    global_step: "gc.Variable"
    training: Optional["gc.Tensor"] = None
    extra: dict = field(default_factory=dict)


def _head(graph, x, labels, logits, learning_rate, optimizer, weight_decay, training=None) -> Classifier:
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits), name="loss")
    correct = gc.equal(gc.argmax(logits, axis=1), labels)
    accuracy = gc.reduce_mean(gc.cast(correct, gc.float32), name="accuracy")
    step = gc.train.get_or_create_global_step()
    opt = (optimizer or gc.train.Adam)(learning_rate, weight_decay=weight_decay)
    train_op = opt.minimize(loss, global_step=step)
    return Classifier(graph, x, labels, logits, loss, accuracy, train_op, gc.global_variables_initializer(), step,
                      training)


def mlp(input_shape=(8, 8, 1), hidden: int = 256, classes: int = 10, learning_rate=1e-3, optimizer=None,
        weight_decay: float = 1e-3, input_mean=None, input_std=None, seed: int = 0,
        graph: Optional["gc.Graph"] = None) -> Classifier:
    """[(x - input_mean) / input_std ->] flatten -> dense(hidden, relu) -> dense(classes).
    The standardization constants become part of the graph (and of an exported model)."""
    graph = graph or gc.Graph()
    with graph.as_default():
        gc.set_random_seed(seed)
        x = gc.placeholder(gc.float32, (None,) + tuple(input_shape), name="x")
        labels = gc.placeholder(gc.int64, (None,), name="labels")
        h = x
        if input_mean is not None:
            h = (h - np.asarray(input_mean, np.float32)) / np.asarray(input_std, np.float32)
        h = gc.nn.layers.flatten(h)
        h = gc.nn.layers.dense(h, hidden, activation=gc.nn.relu, kernel_initializer=gc.init.he_normal(), name="fc1")
        logits = gc.nn.layers.dense(h, classes, name="fc2")
        return _head(graph, x, labels, logits, learning_rate, optimizer, weight_decay)


def lenet(input_shape=(8, 8, 1), classes: int = 10, channels=(16, 32), hidden: int = 64, learning_rate=3e-3,
          optimizer=None, weight_decay: float = 0.0, seed: int = 0, dropout: float = 0.0,
          graph: Optional["gc.Graph"] = None) -> Classifier:
    """conv(3x3, SAME, relu) -> maxpool 2 -> conv(3x3, SAME, relu) -> maxpool 2 -> dense(relu) -> dense.
    With ``dropout``, a bool placeholder ``training`` (default False) switches it on."""
    graph = graph or gc.Graph()
    with graph.as_default():
        gc.set_random_seed(seed)
        x = gc.placeholder(gc.float32, (None,) + tuple(input_shape), name="x")
        labels = gc.placeholder(gc.int64, (None,), name="labels")
        training = gc.placeholder_with_default(False, (), name="training") if dropout else None
        he = gc.init.he_normal()
        h = gc.nn.layers.conv2d(x, channels[0], 3, padding="SAME", activation=gc.nn.relu, kernel_initializer=he,
                                name="conv1")
        h = gc.nn.layers.max_pooling2d(h, 2, 2, name="pool1")
        h = gc.nn.layers.conv2d(h, channels[1], 3, padding="SAME", activation=gc.nn.relu, kernel_initializer=he,
                                name="conv2")
        h = gc.nn.layers.max_pooling2d(h, 2, 2, name="pool2")
        h = gc.nn.layers.flatten(h)
        h = gc.nn.layers.dense(h, hidden, activation=gc.nn.relu, kernel_initializer=he, name="fc1")
        if dropout:
            h = gc.nn.layers.dropout(h, rate=dropout, training=training)
        logits = gc.nn.layers.dense(h, classes, name="fc2")
        return _head(graph, x, labels, logits, learning_rate, optimizer, weight_decay, training)


def train(model: Classifier, sess: "gc.Session", x_train, y_train, epochs: int, batch_size: int = 64,
          seed: int = 0, on_epoch: Optional[Callable[[int, float], None]] = None) -> list:
    """Mini-batch training with a fixed shuffling seed; returns the mean loss of each epoch."""
    rng = np.random.default_rng(seed)
    feeds = {}
    if model.training is not None:
        feeds[model.training] = True
    step = sess.make_callable([model.train_op, model.loss], feed_list=[model.x, model.labels] + list(feeds))
    history = []
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        losses = []
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            _, loss = step(x_train[idx], y_train[idx], *feeds.values())
            losses.append(float(loss))
        history.append(float(np.mean(losses)))
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history


def standardization(x_train, floor: float = 0.1):
    """Per-feature (mean, std + floor) of the training inputs, for ``mlp(input_mean, input_std)``."""
    return x_train.mean(axis=0), x_train.std(axis=0) + floor


def evaluate_accuracy(model: Classifier, sess: "gc.Session", x, y) -> float:
    return float(sess.run(model.accuracy, {model.x: x, model.labels: y}))

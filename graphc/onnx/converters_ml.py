"""Converters for the ops of ONNX's ``ai.onnx.ml`` domain that scikit-learn pipelines use
most (through skl2onnx): Scaler, Normalizer, LinearClassifier, LinearRegressor. Tree
ensembles and the other ML ops are not imported (their error names the op)."""
from __future__ import annotations

import numpy as np

import graphc as gc

from .. import dtypes as dt
from .importer import converts


def _float(node, x):
    return x if x.dtype.is_floating else gc.cast(x, dt.float32)


@converts("ai.onnx.ml:Scaler")
def _scaler(node):
    x = _float(node, node.x(0))
    offset = np.asarray(node.attr("offset") or [0.0], np.float32)
    scale = np.asarray(node.attr("scale") or [1.0], np.float32)
    return [(x - gc.constant(offset.astype(x.dtype.np))) * gc.constant(scale.astype(x.dtype.np))]


@converts("ai.onnx.ml:Normalizer")
def _normalizer(node):
    x = _float(node, node.x(0))
    norm = node.attr("norm", "MAX")
    if norm == "MAX":
        d = gc.reduce_max(x, axis=1, keepdims=True)
    elif norm == "L1":
        d = gc.reduce_sum(gc.abs(x), axis=1, keepdims=True)
    elif norm == "L2":
        d = gc.sqrt(gc.reduce_sum(gc.square(x), axis=1, keepdims=True))
    else:
        node.fail(f"norm must be MAX, L1 or L2, got {norm!r}")
    return [x / d]


def _post_transform(node, scores):
    kind = node.attr("post_transform", "NONE")
    if kind == "NONE":
        return scores
    if kind == "SOFTMAX":
        return gc.nn.softmax(scores, axis=-1)
    if kind == "LOGISTIC":
        return gc.sigmoid(scores)
    if kind == "SOFTMAX_ZERO":
        e = gc.where(gc.equal(scores, gc.zeros_like(scores)), gc.zeros_like(scores),
                     gc.exp(scores - gc.reduce_max(scores, axis=-1, keepdims=True)))
        return e / gc.reduce_sum(e, axis=-1, keepdims=True)
    node.fail(f"post_transform {kind!r} is not imported (NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO are)")


def _linear(node, x, n_targets_attr):
    x = _float(node, x)
    coef = np.asarray(node.attr("coefficients"), np.float32)
    n_features = x.shape[-1]
    if n_features is None:
        node.needs_shape("needs the number of features")
    n = coef.size // n_features
    if n * n_features != coef.size:
        node.fail(f"{coef.size} coefficients do not divide into rows of {n_features} features")
    intercepts = np.asarray(node.attr("intercepts") or [0.0] * n, np.float32)
    w = gc.constant(coef.reshape(n, n_features).T.astype(x.dtype.np))
    return gc.matmul(x, w) + gc.constant(intercepts.astype(x.dtype.np)), n


@converts("ai.onnx.ml:LinearClassifier")
def _linear_classifier(node):
    scores, n = _linear(node, node.x(0), "classlabels")
    labels = node.attr("classlabels_ints")
    if labels is None:
        node.fail("string class labels are not imported (graphc has no string tensors)")
    if n != len(labels):
        node.fail(f"{n} rows of coefficients for {len(labels)} classes (the one-row binary form is not imported)")
    probs = _post_transform(node, scores)
    label = gc.gather(gc.constant(np.asarray(labels, np.int64)), gc.argmax(scores, axis=1, output_type=dt.int64))
    return [label, probs]


@converts("ai.onnx.ml:LinearRegressor")
def _linear_regressor(node):
    scores, _ = _linear(node, node.x(0), "targets")
    return [_post_transform(node, scores)]

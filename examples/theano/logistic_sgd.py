"""Multiclass logistic regression trained with minibatch SGD, as a Theano tutorial writes it.

Only the imports differ from a Theano program: the minibatches are slices of shared
variables chosen by a symbolic index (``givens``), and the loss is the classic
``-T.mean(T.log(p_y_given_x)[T.arange(y.shape[0]), y])``. The data are scikit-learn's
8x8 digits (nothing is downloaded).

    python examples/theano/logistic_sgd.py
"""
from __future__ import annotations

import timeit

import numpy

import graphc.theano as theano
import graphc.theano.tensor as T

EXPECTED_MAX_ERROR = 0.10  # validation error this program must reach (tests/test_theano.py checks it)


class LogisticRegression:
    """p(y = i | x) = softmax(x W + b)_i; the prediction is the most probable class."""

    def __init__(self, input, n_in, n_out):
        self.W = theano.shared(numpy.zeros((n_in, n_out), dtype=theano.config.floatX), name="W", borrow=True)
        self.b = theano.shared(numpy.zeros((n_out,), dtype=theano.config.floatX), name="b", borrow=True)
        self.p_y_given_x = T.nnet.softmax(T.dot(input, self.W) + self.b)
        self.y_pred = T.argmax(self.p_y_given_x, axis=1)
        self.params = [self.W, self.b]
        self.input = input

    def negative_log_likelihood(self, y):
        # the log-probability of the right class of each example, averaged
        return -T.mean(T.log(self.p_y_given_x)[T.arange(y.shape[0]), y])

    def errors(self, y):
        if y.ndim != self.y_pred.ndim:
            raise TypeError("y should have the same shape as self.y_pred", ("y", y.type, "y_pred", self.y_pred.type))
        if y.dtype.startswith("int"):
            return T.mean(T.neq(self.y_pred, y))
        raise NotImplementedError()


def load_data(seed=1234):
    """The digits as three (shared x, int32 y) pairs: training, validation and test sets."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(numpy.float64)
    y = digits.target
    order = numpy.random.RandomState(seed).permutation(len(y))
    x, y = x[order], y[order]
    train, valid = 1200, 1500

    def shared_dataset(data_x, data_y, borrow=True):
        shared_x = theano.shared(numpy.asarray(data_x, dtype=theano.config.floatX), borrow=borrow)
        shared_y = theano.shared(numpy.asarray(data_y, dtype=theano.config.floatX), borrow=borrow)
        # labels are stored as floats (as on a GPU) and used as ints
        return shared_x, T.cast(shared_y, "int32")

    return [shared_dataset(x[:train], y[:train]), shared_dataset(x[train:valid], y[train:valid]),
            shared_dataset(x[valid:], y[valid:])]


def sgd_optimization(learning_rate=0.5, n_epochs=15, batch_size=50):
    datasets = load_data()
    train_set_x, train_set_y = datasets[0]
    valid_set_x, valid_set_y = datasets[1]
    test_set_x, test_set_y = datasets[2]

    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    n_valid_batches = valid_set_x.get_value(borrow=True).shape[0] // batch_size
    n_test_batches = test_set_x.get_value(borrow=True).shape[0] // batch_size

    print("... building the model")
    index = T.lscalar()
    x = T.matrix("x")
    y = T.ivector("y")
    classifier = LogisticRegression(input=x, n_in=8 * 8, n_out=10)
    cost = classifier.negative_log_likelihood(y)

    test_model = theano.function(
        inputs=[index], outputs=classifier.errors(y),
        givens={x: test_set_x[index * batch_size: (index + 1) * batch_size],
                y: test_set_y[index * batch_size: (index + 1) * batch_size]})
    validate_model = theano.function(
        inputs=[index], outputs=classifier.errors(y),
        givens={x: valid_set_x[index * batch_size: (index + 1) * batch_size],
                y: valid_set_y[index * batch_size: (index + 1) * batch_size]})

    g_W = T.grad(cost=cost, wrt=classifier.W)
    g_b = T.grad(cost=cost, wrt=classifier.b)
    updates = [(classifier.W, classifier.W - learning_rate * g_W),
               (classifier.b, classifier.b - learning_rate * g_b)]
    train_model = theano.function(
        inputs=[index], outputs=cost, updates=updates,
        givens={x: train_set_x[index * batch_size: (index + 1) * batch_size],
                y: train_set_y[index * batch_size: (index + 1) * batch_size]})

    print("... training the model")
    start_time = timeit.default_timer()
    validation_error = 1.0
    for epoch in range(1, n_epochs + 1):
        for minibatch_index in range(n_train_batches):
            train_model(minibatch_index)
        validation_error = numpy.mean([validate_model(i) for i in range(n_valid_batches)])
        print(f"epoch {epoch}, validation error {validation_error * 100.0:.2f} %")
    test_error = numpy.mean([test_model(i) for i in range(n_test_batches)])
    end_time = timeit.default_timer()
    print(f"Optimization complete: validation error {validation_error * 100.0:.2f} %, "
          f"test error {test_error * 100.0:.2f} %, {end_time - start_time:.1f} s")
    return float(validation_error)


def main():
    error = sgd_optimization()
    print(f"final validation error {error:.4f} (expected at most {EXPECTED_MAX_ERROR})")
    return error


if __name__ == "__main__":
    main()

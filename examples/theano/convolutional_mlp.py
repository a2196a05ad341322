"""LeNet: two convolution + max-pooling layers, a tanh hidden layer and a logistic regression
on top, trained with minibatch SGD, as a Theano tutorial writes it; only the imports differ
from Theano. The 8x8 digits take 3x3 then 2x2 filters.

    python examples/theano/convolutional_mlp.py
"""
from __future__ import annotations

import numpy

import graphc.theano as theano
import graphc.theano.tensor as T
from graphc.theano.tensor.nnet import conv2d
from graphc.theano.tensor.signal import pool
from logistic_sgd import LogisticRegression, load_data
from mlp import HiddenLayer

EXPECTED_MAX_ERROR = 0.12  # validation error this program must reach (tests/test_theano.py checks it)


class LeNetConvPoolLayer:
    """A convolution (Theano's: the filters are flipped) followed by max pooling and tanh."""

    def __init__(self, rng, input, filter_shape, image_shape, poolsize=(2, 2)):
        assert image_shape[1] == filter_shape[1]
        self.input = input
        fan_in = numpy.prod(filter_shape[1:])
        fan_out = filter_shape[0] * numpy.prod(filter_shape[2:]) // numpy.prod(poolsize)
        W_bound = numpy.sqrt(6.0 / (fan_in + fan_out))
        self.W = theano.shared(
            numpy.asarray(rng.uniform(low=-W_bound, high=W_bound, size=filter_shape), dtype=theano.config.floatX),
            borrow=True)
        self.b = theano.shared(numpy.zeros((filter_shape[0],), dtype=theano.config.floatX), borrow=True)
        conv_out = conv2d(input=input, filters=self.W, filter_shape=filter_shape, input_shape=image_shape)
        pooled_out = pool.pool_2d(input=conv_out, ws=poolsize, ignore_border=True)
        self.output = T.tanh(pooled_out + self.b.dimshuffle("x", 0, "x", "x"))
        self.params = [self.W, self.b]
        self.input = input


def evaluate_lenet5(learning_rate=0.2, n_epochs=10, nkerns=(8, 16), batch_size=20):
    rng = numpy.random.RandomState(23455)
    datasets = load_data()
    train_set_x, train_set_y = datasets[0]
    valid_set_x, valid_set_y = datasets[1]

    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    n_valid_batches = valid_set_x.get_value(borrow=True).shape[0] // batch_size

    index = T.lscalar()
    x = T.matrix("x")
    y = T.ivector("y")

    print("... building the model")
    layer0_input = x.reshape((batch_size, 1, 8, 8))
    # 8x8 -> conv 3x3 -> 6x6 -> pool 2x2 -> 3x3
    layer0 = LeNetConvPoolLayer(rng, input=layer0_input, image_shape=(batch_size, 1, 8, 8),
                                filter_shape=(nkerns[0], 1, 3, 3), poolsize=(2, 2))
    # 3x3 -> conv 2x2 -> 2x2 -> pool 2x2 -> 1x1
    layer1 = LeNetConvPoolLayer(rng, input=layer0.output, image_shape=(batch_size, nkerns[0], 3, 3),
                                filter_shape=(nkerns[1], nkerns[0], 2, 2), poolsize=(2, 2))
    layer2_input = layer1.output.flatten(2)
    layer2 = HiddenLayer(rng, input=layer2_input, n_in=nkerns[1] * 1 * 1, n_out=64, activation=T.tanh)
    layer3 = LogisticRegression(input=layer2.output, n_in=64, n_out=10)
    cost = layer3.negative_log_likelihood(y)

    validate_model = theano.function(
        [index], layer3.errors(y),
        givens={x: valid_set_x[index * batch_size: (index + 1) * batch_size],
                y: valid_set_y[index * batch_size: (index + 1) * batch_size]})

    params = layer3.params + layer2.params + layer1.params + layer0.params
    grads = T.grad(cost, params)
    updates = [(param_i, param_i - learning_rate * grad_i) for param_i, grad_i in zip(params, grads)]
    train_model = theano.function(
        [index], cost, updates=updates,
        givens={x: train_set_x[index * batch_size: (index + 1) * batch_size],
                y: train_set_y[index * batch_size: (index + 1) * batch_size]})

    print("... training")
    validation_error = 1.0
    for epoch in range(1, n_epochs + 1):
        costs = [train_model(i) for i in range(n_train_batches)]
        validation_error = numpy.mean([validate_model(i) for i in range(n_valid_batches)])
        print(f"epoch {epoch}, cost {numpy.mean(costs):.4f}, validation error {validation_error * 100.0:.2f} %")
    return float(validation_error)


def main():
    error = evaluate_lenet5()
    print(f"final validation error {error:.4f} (expected at most {EXPECTED_MAX_ERROR})")
    return error


if __name__ == "__main__":
    main()

"""Linear regression with gradient descent (the classic TF1 first program)."""
import numpy as np
import graphc as tf

MAX_FINAL_COST = 0.01  # noise of variance 0.01: half the mean squared error settles near 0.005

rng = np.random.RandomState(1)
train_X = rng.uniform(0, 10, 100).astype(np.float32)
train_Y = (0.3 * train_X + 2.0 + rng.normal(0, 0.1, 100)).astype(np.float32)
n_samples = train_X.shape[0]

learning_rate = 0.02
training_epochs = 2000

X = tf.placeholder(tf.float32, [None])
Y = tf.placeholder(tf.float32, [None])
W = tf.Variable(rng.randn(), name="weight", dtype=tf.float32)
b = tf.Variable(rng.randn(), name="bias", dtype=tf.float32)

pred = tf.add(tf.multiply(X, W), b)
cost = tf.reduce_sum(tf.pow(pred - Y, 2)) / (2 * n_samples)
optimizer = tf.train.GradientDescentOptimizer(learning_rate).minimize(cost)

init = tf.global_variables_initializer()

with tf.Session() as sess:
    sess.run(init)
    for epoch in range(training_epochs):
        sess.run(optimizer, feed_dict={X: train_X, Y: train_Y})
        if (epoch + 1) % 500 == 0:
            c = sess.run(cost, feed_dict={X: train_X, Y: train_Y})
            print("Epoch:", "%04d" % (epoch + 1), "cost=", "{:.9f}".format(c), "W=", sess.run(W), "b=", sess.run(b))
    training_cost = sess.run(cost, feed_dict={X: train_X, Y: train_Y})
    print("Training cost=", training_cost, "W=", sess.run(W), "b=", sess.run(b))

assert training_cost < MAX_FINAL_COST, training_cost

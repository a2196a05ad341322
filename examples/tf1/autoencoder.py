"""An autoencoder (64 -> 32 -> 16 -> 32 -> 64) with variable_scope / get_variable and RMSProp."""
import numpy as np
from sklearn.datasets import load_digits
import graphc as tf

MAX_TEST_MSE = 0.035  # predicting the mean image scores about 0.085

digits = load_digits()
images = (digits.data / 16.0).astype(np.float32)
perm = np.random.RandomState(0).permutation(len(images))
train_x, test_x = images[perm[:1400]], images[perm[1400:]]

X = tf.placeholder(tf.float32, [None, 64])


def layer(x, n_out, name, activation=tf.nn.sigmoid):
    with tf.variable_scope(name):
        w = tf.get_variable("weights", [x.get_shape().as_list()[1], n_out],
                            initializer=tf.glorot_uniform_initializer(seed=1))
        b = tf.get_variable("biases", [n_out], initializer=tf.zeros_initializer())
        return activation(tf.matmul(x, w) + b)


with tf.variable_scope("encoder"):
    h = layer(X, 32, "layer1")
    code = layer(h, 16, "layer2")
with tf.variable_scope("decoder"):
    h = layer(code, 32, "layer1")
    reconstruction = layer(h, 64, "layer2")

loss = tf.reduce_mean(tf.pow(X - reconstruction, 2))
optimizer = tf.train.RMSPropOptimizer(0.01).minimize(loss)
assert [v.op.name for v in tf.trainable_variables()][:2] == ["encoder/layer1/weights", "encoder/layer1/biases"]

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for epoch in range(30):
        for i in range(0, len(train_x), 64):
            _, l = sess.run([optimizer, loss], feed_dict={X: train_x[i:i + 64]})
        if (epoch + 1) % 10 == 0:
            print("Epoch %d, loss %.5f" % (epoch + 1, l))
    test_mse = sess.run(loss, feed_dict={X: test_x})
    print("test reconstruction MSE", test_mse)

assert test_mse <= MAX_TEST_MSE, test_mse

"""A convolutional network from raw ops: conv2d / max_pool with TF1's 4-element strides and
ksize, weights and biases in dicts, dropout through keep_prob."""
import numpy as np
from sklearn.datasets import load_digits
import graphc as tf

MIN_TEST_ACCURACY = 0.93

digits = load_digits()
images = (digits.images / 16.0).astype(np.float32).reshape(-1, 64)
labels = np.eye(10, dtype=np.float32)[digits.target]
perm = np.random.RandomState(0).permutation(len(images))
images, labels = images[perm], labels[perm]
train_x, test_x, train_y, test_y = images[:1400], images[1400:], labels[:1400], labels[1400:]

learning_rate = 0.002
epochs = 8
batch_size = 32
dropout = 0.75

X = tf.placeholder(tf.float32, [None, 64])
Y = tf.placeholder(tf.float32, [None, 10])
keep_prob = tf.placeholder(tf.float32)


def conv2d(x, W, b, strides=1):
    x = tf.nn.conv2d(x, W, strides=[1, strides, strides, 1], padding="SAME")
    x = tf.nn.bias_add(x, b)
    return tf.nn.relu(x)


def maxpool2d(x, k=2):
    return tf.nn.max_pool(x, ksize=[1, k, k, 1], strides=[1, k, k, 1], padding="SAME")


def conv_net(x, weights, biases, dropout):
    x = tf.reshape(x, shape=[-1, 8, 8, 1])
    conv1 = maxpool2d(conv2d(x, weights["wc1"], biases["bc1"]), k=2)
    conv2 = maxpool2d(conv2d(conv1, weights["wc2"], biases["bc2"]), k=2)
    fc1 = tf.reshape(conv2, [-1, weights["wd1"].get_shape().as_list()[0]])
    fc1 = tf.nn.relu(tf.add(tf.matmul(fc1, weights["wd1"]), biases["bd1"]))
    fc1 = tf.nn.dropout(fc1, dropout)
    return tf.add(tf.matmul(fc1, weights["out"]), biases["out"])


tf.set_random_seed(1)
weights = {
    "wc1": tf.Variable(tf.truncated_normal([3, 3, 1, 16], stddev=0.1)),
    "wc2": tf.Variable(tf.truncated_normal([3, 3, 16, 32], stddev=0.1)),
    "wd1": tf.Variable(tf.truncated_normal([2 * 2 * 32, 128], stddev=0.1)),
    "out": tf.Variable(tf.truncated_normal([128, 10], stddev=0.1)),
}
biases = {
    "bc1": tf.Variable(tf.constant(0.1, shape=[16])),
    "bc2": tf.Variable(tf.constant(0.1, shape=[32])),
    "bd1": tf.Variable(tf.constant(0.1, shape=[128])),
    "out": tf.Variable(tf.constant(0.1, shape=[10])),
}

logits = conv_net(X, weights, biases, keep_prob)
prediction = tf.nn.softmax(logits)
loss_op = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logits, labels=Y))
train_op = tf.train.AdamOptimizer(learning_rate=learning_rate).minimize(loss_op)
correct_pred = tf.equal(tf.argmax(prediction, 1), tf.argmax(Y, 1))
accuracy = tf.reduce_mean(tf.cast(correct_pred, tf.float32))

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for epoch in range(epochs):
        for i in range(0, len(train_x), batch_size):
            sess.run(train_op, feed_dict={X: train_x[i:i + batch_size], Y: train_y[i:i + batch_size],
                                          keep_prob: dropout})
        loss, acc = sess.run([loss_op, accuracy], feed_dict={X: train_x, Y: train_y, keep_prob: 1.0})
        print("Epoch " + str(epoch + 1) + ", Minibatch Loss= {:.4f}".format(loss) + ", Training Accuracy= {:.3f}".format(acc))
    test_accuracy = sess.run(accuracy, feed_dict={X: test_x, Y: test_y, keep_prob: 1.0})
    print("Testing Accuracy:", test_accuracy)

assert test_accuracy >= MIN_TEST_ACCURACY, test_accuracy

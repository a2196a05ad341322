"""A CNN with tf.layers and batch normalization: the moving statistics are updated through
UPDATE_OPS, and a `training` placeholder switches batch and moving statistics."""
import numpy as np
from sklearn.datasets import load_digits
import graphc as tf

MIN_TEST_ACCURACY = 0.93

digits = load_digits()
images = (digits.images / 16.0).astype(np.float32)[..., None]
labels = digits.target.astype(np.int64)
perm = np.random.RandomState(0).permutation(len(images))
images, labels = images[perm], labels[perm]
train_x, test_x, train_y, test_y = images[:1400], images[1400:], labels[:1400], labels[1400:]

tf.set_random_seed(2)
x = tf.placeholder(tf.float32, [None, 8, 8, 1], name="x")
y = tf.placeholder(tf.int64, [None], name="y")
training = tf.placeholder(tf.bool, name="training")

net = tf.layers.conv2d(x, 16, 3, padding="same", use_bias=False)
net = tf.layers.batch_normalization(net, training=training)
net = tf.nn.relu(net)
net = tf.layers.max_pooling2d(net, 2, 2)
net = tf.layers.conv2d(net, 32, 3, padding="same", activation=tf.nn.relu)
net = tf.layers.max_pooling2d(net, 2, 2)
net = tf.layers.flatten(net)
net = tf.layers.dense(net, 64, activation=tf.nn.relu)
net = tf.layers.dropout(net, rate=0.3, training=training)
logits = tf.layers.dense(net, 10)

loss = tf.losses.sparse_softmax_cross_entropy(labels=y, logits=logits)
update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
with tf.control_dependencies(update_ops):
    train_op = tf.train.AdamOptimizer(0.003).minimize(loss)
accuracy, accuracy_update = tf.metrics.accuracy(labels=y, predictions=tf.argmax(logits, 1))

with tf.Session() as sess:
    sess.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
    for epoch in range(6):
        order = np.random.RandomState(epoch).permutation(len(train_x))
        for i in range(0, len(order), 32):
            idx = order[i:i + 32]
            sess.run(train_op, {x: train_x[idx], y: train_y[idx], training: True})
        print("epoch", epoch + 1, "loss", sess.run(loss, {x: train_x, y: train_y, training: False}))
    for i in range(0, len(test_x), 100):  # the streaming metric over the test set, in batches
        sess.run(accuracy_update, {x: test_x[i:i + 100], y: test_y[i:i + 100], training: False})
    test_accuracy = sess.run(accuracy)
    print("test accuracy", test_accuracy)

assert test_accuracy >= MIN_TEST_ACCURACY, test_accuracy

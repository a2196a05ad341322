"""Save a model, then rebuild it from its .meta file in a fresh graph, restore the weights
and keep training (the checkpoint workflow of TF1 tutorials)."""
import os
import tempfile

import numpy as np
from sklearn.datasets import load_digits
import graphc as tf

MIN_TEST_ACCURACY = 0.9

digits = load_digits()
images = (digits.data / 16.0).astype(np.float32)
labels = digits.target.astype(np.int64)
perm = np.random.RandomState(0).permutation(len(images))
images, labels = images[perm], labels[perm]
train_x, test_x, train_y, test_y = images[:1400], images[1400:], labels[:1400], labels[1400:]
model_path = os.path.join(tempfile.mkdtemp(), "model.ckpt")

x = tf.placeholder(tf.float32, [None, 64], name="x")
y = tf.placeholder(tf.int64, [None], name="y")
hidden = tf.layers.dense(x, 32, activation=tf.nn.relu)
logits = tf.layers.dense(hidden, 10)
loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits), name="loss")
train_op = tf.train.AdamOptimizer(0.01).minimize(loss, name="train_op")
accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32), name="accuracy")
saver = tf.train.Saver()

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for epoch in range(2):
        for i in range(0, len(train_x), 50):
            sess.run(train_op, {x: train_x[i:i + 50], y: train_y[i:i + 50]})
    first_accuracy = sess.run(accuracy, {x: test_x, y: test_y})
    save_path = saver.save(sess, model_path)
    print("Model saved in file: %s (accuracy %.3f)" % (save_path, first_accuracy))

tf.reset_default_graph()  # forget everything: the graph comes back from the .meta file

with tf.Session() as sess:
    saver = tf.train.import_meta_graph(model_path + ".meta")
    saver.restore(sess, model_path)
    graph = tf.get_default_graph()
    x, y = graph.get_tensor_by_name("x:0"), graph.get_tensor_by_name("y:0")
    accuracy = graph.get_tensor_by_name("accuracy:0")
    train_op = graph.get_operation_by_name("train_op")
    restored_accuracy = sess.run(accuracy, {x: test_x, y: test_y})
    print("Restored accuracy %.3f" % restored_accuracy)
    assert abs(restored_accuracy - first_accuracy) < 1e-6
    for epoch in range(4):
        for i in range(0, len(train_x), 50):
            sess.run(train_op, {x: train_x[i:i + 50], y: train_y[i:i + 50]})
    test_accuracy = sess.run(accuracy, {x: test_x, y: test_y})
    print("Accuracy after more training: %.3f" % test_accuracy)

assert test_accuracy >= MIN_TEST_ACCURACY, test_accuracy

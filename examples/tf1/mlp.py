"""A multilayer perceptron from raw ops, with dropout driven by a fed keep_prob."""
import numpy as np
from sklearn.datasets import load_digits
import graphc as tf

MIN_TEST_ACCURACY = 0.93

digits = load_digits()
images = (digits.data / 16.0).astype(np.float32)
labels = np.eye(10, dtype=np.float32)[digits.target]
perm = np.random.RandomState(0).permutation(len(images))
images, labels = images[perm], labels[perm]
train_x, test_x, train_y, test_y = images[:1400], images[1400:], labels[:1400], labels[1400:]

learning_rate = 0.005
training_epochs = 20
batch_size = 50
n_hidden_1 = 128
n_hidden_2 = 64
n_input = 64
n_classes = 10

X = tf.placeholder("float", [None, n_input])
Y = tf.placeholder("float", [None, n_classes])
keep_prob = tf.placeholder(tf.float32)

tf.set_random_seed(0)
weights = {
    "h1": tf.Variable(tf.random_normal([n_input, n_hidden_1], stddev=0.1)),
    "h2": tf.Variable(tf.random_normal([n_hidden_1, n_hidden_2], stddev=0.1)),
    "out": tf.Variable(tf.random_normal([n_hidden_2, n_classes], stddev=0.1)),
}
biases = {
    "b1": tf.Variable(tf.zeros([n_hidden_1])),
    "b2": tf.Variable(tf.zeros([n_hidden_2])),
    "out": tf.Variable(tf.zeros([n_classes])),
}


def multilayer_perceptron(x):
    layer_1 = tf.nn.relu(tf.add(tf.matmul(x, weights["h1"]), biases["b1"]))
    layer_1 = tf.nn.dropout(layer_1, keep_prob)
    layer_2 = tf.nn.relu(tf.add(tf.matmul(layer_1, weights["h2"]), biases["b2"]))
    return tf.matmul(layer_2, weights["out"]) + biases["out"]


logits = multilayer_perceptron(X)
loss_op = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logits, labels=Y))
train_op = tf.train.AdamOptimizer(learning_rate=learning_rate).minimize(loss_op)
correct_pred = tf.equal(tf.argmax(logits, 1), tf.argmax(Y, 1))
accuracy = tf.reduce_mean(tf.cast(correct_pred, tf.float32))

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for epoch in range(training_epochs):
        perm = np.random.RandomState(epoch).permutation(len(train_x))
        for i in range(0, len(train_x), batch_size):
            idx = perm[i:i + batch_size]
            sess.run(train_op, feed_dict={X: train_x[idx], Y: train_y[idx], keep_prob: 0.8})
        if (epoch + 1) % 5 == 0:
            loss, acc = sess.run([loss_op, accuracy], feed_dict={X: train_x, Y: train_y, keep_prob: 1.0})
            print("Epoch " + str(epoch + 1) + ", Loss= {:.4f}".format(loss) + ", Training Accuracy= {:.3f}".format(acc))
    test_accuracy = sess.run(accuracy, feed_dict={X: test_x, Y: test_y, keep_prob: 1.0})
    print("Testing Accuracy:", test_accuracy)

assert test_accuracy >= MIN_TEST_ACCURACY, test_accuracy

"""An LSTM that reads each 8x8 digit as a sequence of 8 rows (tf.contrib.rnn, static_rnn)."""
import numpy as np
from sklearn.datasets import load_digits
import graphc as tf

MIN_TEST_ACCURACY = 0.88

digits = load_digits()
images = (digits.images / 16.0).astype(np.float32)
labels = np.eye(10, dtype=np.float32)[digits.target]
perm = np.random.RandomState(0).permutation(len(images))
images, labels = images[perm], labels[perm]
train_x, test_x, train_y, test_y = images[:1400], images[1400:], labels[:1400], labels[1400:]

learning_rate = 0.01
training_steps = 300
batch_size = 64
num_input = 8
timesteps = 8
num_hidden = 32
num_classes = 10

X = tf.placeholder("float", [None, timesteps, num_input])
Y = tf.placeholder("float", [None, num_classes])
tf.set_random_seed(3)
weights = {"out": tf.Variable(tf.random_normal([num_hidden, num_classes], stddev=0.1))}
biases = {"out": tf.Variable(tf.zeros([num_classes]))}


def RNN(x, weights, biases):
    x = tf.unstack(x, timesteps, 1)
    lstm_cell = tf.contrib.rnn.BasicLSTMCell(num_hidden, forget_bias=1.0)
    outputs, states = tf.contrib.rnn.static_rnn(lstm_cell, x, dtype=tf.float32)
    return tf.matmul(outputs[-1], weights["out"]) + biases["out"]


logits = RNN(X, weights, biases)
prediction = tf.nn.softmax(logits)
loss_op = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logits, labels=Y))
train_op = tf.train.AdamOptimizer(learning_rate=learning_rate).minimize(loss_op)
correct_pred = tf.equal(tf.argmax(prediction, 1), tf.argmax(Y, 1))
accuracy = tf.reduce_mean(tf.cast(correct_pred, tf.float32))

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    rng = np.random.RandomState(0)
    for step in range(1, training_steps + 1):
        idx = rng.randint(0, len(train_x), batch_size)
        sess.run(train_op, feed_dict={X: train_x[idx], Y: train_y[idx]})
        if step % 100 == 0:
            loss, acc = sess.run([loss_op, accuracy], feed_dict={X: train_x, Y: train_y})
            print("Step " + str(step) + ", Loss= {:.4f}".format(loss) + ", Training Accuracy= {:.3f}".format(acc))
    test_accuracy = sess.run(accuracy, feed_dict={X: test_x, Y: test_y})
    print("Testing Accuracy:", test_accuracy)

assert test_accuracy >= MIN_TEST_ACCURACY, test_accuracy

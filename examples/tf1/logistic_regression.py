"""Softmax (multinomial logistic) regression on the 8x8 digits."""
import numpy as np
from sklearn.datasets import load_digits
import graphc as tf

MIN_TEST_ACCURACY = 0.90

digits = load_digits()
images = (digits.data / 16.0).astype(np.float32)
labels = np.eye(10, dtype=np.float32)[digits.target]
perm = np.random.RandomState(0).permutation(len(images))
images, labels = images[perm], labels[perm]
train_x, test_x, train_y, test_y = images[:1400], images[1400:], labels[:1400], labels[1400:]

learning_rate = 0.5
training_epochs = 25
batch_size = 100

x = tf.placeholder(tf.float32, [None, 64])
y = tf.placeholder(tf.float32, [None, 10])
W = tf.Variable(tf.zeros([64, 10]))
b = tf.Variable(tf.zeros([10]))

pred = tf.nn.softmax(tf.matmul(x, W) + b)
cost = tf.reduce_mean(-tf.reduce_sum(y * tf.log(pred + 1e-10), reduction_indices=1))
optimizer = tf.train.GradientDescentOptimizer(learning_rate).minimize(cost)
correct_prediction = tf.equal(tf.argmax(pred, 1), tf.argmax(y, 1))
accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for epoch in range(training_epochs):
        avg_cost = 0.0
        total_batch = len(train_x) // batch_size
        for i in range(total_batch):
            batch_xs = train_x[i * batch_size:(i + 1) * batch_size]
            batch_ys = train_y[i * batch_size:(i + 1) * batch_size]
            _, c = sess.run([optimizer, cost], feed_dict={x: batch_xs, y: batch_ys})
            avg_cost += c / total_batch
        if (epoch + 1) % 5 == 0:
            print("Epoch:", "%04d" % (epoch + 1), "cost=", "{:.9f}".format(avg_cost))
    test_accuracy = accuracy.eval({x: test_x, y: test_y})
    print("Accuracy:", test_accuracy)

assert test_accuracy >= MIN_TEST_ACCURACY, test_accuracy

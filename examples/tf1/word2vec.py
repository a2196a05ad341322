"""A skip-gram word2vec trained with noise-contrastive estimation (tf.nn.nce_loss) on a
generated corpus whose words come in topics: words of one topic end up close together."""
import collections

import numpy as np
import graphc as tf

MIN_TOPIC_PRECISION = 0.8  # of each word's 5 nearest neighbours, the share from its own topic

# -- a corpus: 5 topics of 10 words; a sentence draws its words from one topic ------------------
rng = np.random.RandomState(0)
topics = [["t%d_w%d" % (t, w) for w in range(10)] for t in range(5)]
words = []
for _ in range(3000):
    topic = topics[rng.randint(5)]
    words += [topic[i] for i in rng.randint(10, size=6)]

vocabulary_size = 50
count = collections.Counter(words).most_common(vocabulary_size)
dictionary = {word: i for i, (word, _) in enumerate(count)}
reverse_dictionary = {i: word for word, i in dictionary.items()}
data = [dictionary[w] for w in words]

data_index = 0


def generate_batch(batch_size, num_skips, skip_window):
    global data_index
    batch = np.ndarray(shape=(batch_size), dtype=np.int32)
    labels = np.ndarray(shape=(batch_size, 1), dtype=np.int32)
    span = 2 * skip_window + 1
    buffer = collections.deque(maxlen=span)
    if data_index + span > len(data):
        data_index = 0
    buffer.extend(data[data_index:data_index + span])
    data_index += span
    for i in range(batch_size // num_skips):
        context_words = [w for w in range(span) if w != skip_window]
        words_to_use = rng.choice(context_words, num_skips, replace=False)
        for j, context_word in enumerate(words_to_use):
            batch[i * num_skips + j] = buffer[skip_window]
            labels[i * num_skips + j, 0] = buffer[context_word]
        if data_index == len(data):
            buffer.extend(data[0:span])
            data_index = span
        else:
            buffer.append(data[data_index])
            data_index += 1
    data_index = (data_index + len(data) - span) % len(data)
    return batch, labels


batch_size = 128
embedding_size = 16
skip_window = 1
num_skips = 2
num_sampled = 8

tf.set_random_seed(0)
train_inputs = tf.placeholder(tf.int32, shape=[batch_size])
train_labels = tf.placeholder(tf.int32, shape=[batch_size, 1])
embeddings = tf.Variable(tf.random_uniform([vocabulary_size, embedding_size], -1.0, 1.0))
embed = tf.nn.embedding_lookup(embeddings, train_inputs)
nce_weights = tf.Variable(tf.truncated_normal([vocabulary_size, embedding_size], stddev=1.0 / np.sqrt(embedding_size)))
nce_biases = tf.Variable(tf.zeros([vocabulary_size]))
loss = tf.reduce_mean(tf.nn.nce_loss(weights=nce_weights, biases=nce_biases, labels=train_labels, inputs=embed,
                                     num_sampled=num_sampled, num_classes=vocabulary_size))
optimizer = tf.train.GradientDescentOptimizer(1.0).minimize(loss)
norm = tf.sqrt(tf.reduce_sum(tf.square(embeddings), 1, keep_dims=True))
normalized_embeddings = embeddings / norm

with tf.Session() as session:
    tf.global_variables_initializer().run()
    average_loss = 0
    for step in range(3001):
        batch_inputs, batch_labels = generate_batch(batch_size, num_skips, skip_window)
        _, loss_val = session.run([optimizer, loss], feed_dict={train_inputs: batch_inputs,
                                                                train_labels: batch_labels})
        average_loss += loss_val
        if step % 1000 == 0 and step > 0:
            print("Average loss at step ", step, ": ", average_loss / 1000)
            average_loss = 0
    final_embeddings = normalized_embeddings.eval()

similarity = final_embeddings @ final_embeddings.T
same_topic = []
for i in range(vocabulary_size):
    nearest = (-similarity[i]).argsort()[1:6]
    topic = reverse_dictionary[i].split("_")[0]
    same_topic += [reverse_dictionary[j].split("_")[0] == topic for j in nearest]
precision = float(np.mean(same_topic))
print("nearest neighbours from the same topic: %.3f" % precision)

assert precision >= MIN_TOPIC_PRECISION, precision

"""A Horovod TF1 training script, ported by changing its imports: data-parallel training of a
small CNN on the 8x8 digits, one process per rank.

    python -m graphc.distribute.run -np 2 examples/horovod/tf1_digits_horovod.py
    mpirun -np 2 python examples/horovod/tf1_digits_horovod.py      (the same, with MPICH on PATH)

What Horovod's examples do, and this one too:
  * scale the learning rate by the number of ranks (the global batch grows with it);
  * wrap the optimizer in hvd.DistributedOptimizer (gradients averaged over the ranks);
  * broadcast rank 0's initial variables to every rank;
  * give each rank its own shard of the data;
  * save checkpoints on rank 0 only, and restore them on every rank.
"""
import os
import sys
import tempfile

import numpy as np

import graphc as tf                      # was: import tensorflow as tf
import graphc.distribute as hvd          # was: import horovod.tensorflow as hvd
from graphc.datasets import load_digits  # the digits come with scikit-learn: no download

STEPS, BATCH = 300, 32


def main(checkpoint_dir: str) -> None:
    hvd.init()
    x_train, y_train, x_test, y_test = load_digits()
    # each rank trains on its own shard: every size()-th example, starting at its rank
    shard = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shard(hvd.size(), hvd.rank())
    batches = shard.shuffle(512, seed=hvd.rank()).repeat().batch(BATCH)
    images, labels = tf.data.make_one_shot_iterator(batches).get_next()

    conv = tf.layers.conv2d(images, 16, 3, padding="same", activation=tf.nn.relu)
    pool = tf.layers.max_pooling2d(conv, 2, 2)
    hidden = tf.layers.dense(tf.layers.flatten(pool), 64, activation=tf.nn.relu)
    logits = tf.layers.dense(hidden, 10)
    loss = tf.losses.sparse_softmax_cross_entropy(labels=labels, logits=logits)

    global_step = tf.train.get_or_create_global_step()
    opt = tf.train.AdamOptimizer(1e-3 * hvd.size())          # the learning rate scales with the ranks
    opt = hvd.DistributedOptimizer(opt)
    train_op = opt.minimize(loss, global_step=global_step)

    saver = tf.train.Saver()
    path = os.path.join(checkpoint_dir, "model.ckpt")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(hvd.broadcast_global_variables(0))          # every rank starts from rank 0's weights
        for step in range(STEPS):
            _, l = sess.run([train_op, loss])
            if step % 100 == 0 and hvd.rank() == 0:
                print(f"step {step}: loss {l:.3f}", flush=True)
        if hvd.rank() == 0:                                  # one rank writes the checkpoint
            saver.save(sess, path)
    hvd.barrier()                                            # the file exists before anyone reads it

    with tf.Session() as sess:                               # every rank restores it
        saver.restore(sess, path)
        # any tensor may be fed, as in TF1: the held-out images replace the input pipeline's
        accuracy = float(np.mean(np.argmax(sess.run(logits, {images: x_test}), 1) == y_test))
    print(f"rank {hvd.rank()} of {hvd.size()}: held-out accuracy {accuracy:.3f}", flush=True)
    assert accuracy > 0.9, f"the model did not learn: accuracy {accuracy:.3f}"


if __name__ == "__main__":
    # one directory that every rank on this machine sees (across machines: a shared file system)
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.gettempdir(), "graphc-horovod-digits"))

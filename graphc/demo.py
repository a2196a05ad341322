"""The demo: build a logistic-regression graph, run it through a Session, show what happened."""
from __future__ import annotations

import time

import numpy as np


def run_demo(device=None) -> int:
    import graphc as gc
    from graphc.optimizer.program import lower

    rng = np.random.default_rng(0)
    n, features, classes = 256, 20, 3
    centers = rng.normal(0, 3, size=(classes, features)).astype(np.float32)
    labels = rng.integers(0, classes, size=n)
    data = (centers[labels] + rng.normal(0, 1, size=(n, features))).astype(np.float32)

    graph = gc.Graph()
    with graph.as_default():
        gc.set_random_seed(0)
        x = gc.placeholder(gc.float32, shape=(None, features), name="x")
        y = gc.placeholder(gc.int64, shape=(None,), name="y")
        with gc.name_scope("logreg"):
            W = gc.Variable(gc.init.glorot_uniform((features, classes)), name="W")
            b = gc.Variable(gc.zeros((classes,)), name="b")
            logits = gc.nn.bias_add(x @ W, b)
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        accuracy = gc.reduce_mean(gc.cast(gc.equal(gc.argmax(logits, axis=1), y), gc.float32))
        init = gc.global_variables_initializer()

    print(f"graphc {gc.__version__} demo: logistic regression on {n} synthetic points, "
          f"{features} features, {classes} classes")
    print(f"graph: {len(graph.get_operations())} nodes; logits {logits.name} {logits.dtype.name}{logits.shape}")
    program = lower(graph, [loss, accuracy], [x, y])
    print(f"a run of [loss, accuracy] needs {len(program.instrs)} of them (pruned, fed x and y):")
    print("\n".join("  " + line for line in program.format().splitlines()[1:]))

    kwargs = {} if device is None else {"device": device}
    with gc.Session(graph=graph, **kwargs) as sess:
        sess.run(init)
        t0 = time.perf_counter()
        l, acc = sess.run([loss, accuracy], feed_dict={x: data, y: labels})
        t1 = time.perf_counter()
        print(f"session device={sess.device!r}: loss={float(l):.4f} accuracy={float(acc):.3f} "
              f"(untrained weights; first run {1e3 * (t1 - t0):.1f} ms incl. compile)")
        W_value = sess.run(W)
        print(f"W is {W_value.dtype}{W_value.shape}, glorot-uniform in "
              f"[{W_value.min():+.3f}, {W_value.max():+.3f}]")
    print("training, export and the numba backends arrive with the next issues.")
    return 0

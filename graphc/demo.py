"""The demo: train a LeNet-style CNN on the digits dataset and report what happened."""
from __future__ import annotations

import time


def run_demo(device=None, epochs: int = 20) -> int:
    import graphc as gc
    from graphc import datasets, zoo
    from graphc.optimizer.program import lower

    try:
        x_train, y_train, x_test, y_test = datasets.load_digits()
    except ImportError as e:
        print(f"graphc demo: {e}")
        return 1
    print(f"graphc {gc.__version__} demo: a LeNet-style CNN on scikit-learn's 8x8 digits "
          f"({len(x_train)} training images, {len(x_test)} held out)")

    model = zoo.lenet(seed=0)
    graph = model.graph
    print(f"graph: {len(graph.get_operations())} nodes, {len(gc.global_variables(graph))} variables "
          f"(weights and Adam slots); the logits are {model.logits.name} {model.logits.dtype.name}{model.logits.shape}")
    step_program = lower(graph, [model.train_op, model.loss], [model.x, model.labels])
    print(f"one training step runs {len(step_program.instrs)} ops of the graph (forward, gradients, "
          f"Adam updates); the first ones:")
    for line in step_program.format().splitlines()[3:8]:
        print("   " + line.strip())

    kwargs = {} if device is None else {"device": device}
    with gc.Session(graph=graph, **kwargs) as sess:
        sess.run(model.init)
        print(f"training on device={sess.device!r}:")
        start = time.perf_counter()

        def report(epoch, loss):
            if epoch % 3 == 2 or epoch == 0:
                acc = zoo.evaluate_accuracy(model, sess, x_test, y_test)
                print(f"  epoch {epoch + 1:2d}/{epochs}  loss {loss:.4f}  held-out accuracy {acc:.3f}")
            else:
                print(f"  epoch {epoch + 1:2d}/{epochs}  loss {loss:.4f}")

        zoo.train(model, sess, x_train, y_train, epochs, on_epoch=report)
        elapsed = time.perf_counter() - start
        accuracy = zoo.evaluate_accuracy(model, sess, x_test, y_test)
        steps = int(sess.run(model.global_step))
        print(f"trained {steps} steps in {elapsed:.1f} s; final held-out accuracy {accuracy:.4f}")
    print("the numba backends and export arrive with the next issues.")
    return 0

"""The demo: train a LeNet-style CNN on the digits dataset, then deploy it: save a model
file, reload it in a fresh process, export it to ONNX, and build a native shared library
that a C program calls without Python. Each step prints what it did."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time

# What the fresh process runs: only graphc and the model file, never this module.
_RELOAD = """
import sys, numpy as np, graphc as gc
model = gc.export.load_model(sys.argv[1])
data = np.load(sys.argv[2])
logits = model(x=data["x"])["logits"]
accuracy = float(np.mean(np.argmax(logits, axis=1) == data["y"]))
print(f"{model.signature} {accuracy:.4f} {'graphc.demo' in sys.modules}")
"""


def run_demo(device=None, epochs: int = 20, out_dir: str = os.path.join("build", "demo")) -> int:
    import numpy as np

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

    os.makedirs(out_dir, exist_ok=True)
    kwargs = {} if device is None else {"device": device}
    with gc.Session(graph=graph, **kwargs) as sess:
        sess.run(model.init)
        print(f"[1/5] training on device={sess.device!r}:")
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
        logits = sess.run(model.logits, {model.x: x_test})

        path = os.path.join(out_dir, "digits.gcm")
        gc.export.save_model(sess, path, inputs={"x": model.x}, outputs={"logits": model.logits},
                             metadata={"dataset": "sklearn digits", "accuracy": f"{accuracy:.4f}"})
    print(f"[2/5] saved the frozen inference graph to {path} ({os.path.getsize(path) / 1024:.0f} KiB: "
          f"JSON graph + weights.npz, no pickle)")

    data_path = os.path.join(out_dir, "digits-test.npz")
    np.savez(data_path, x=x_test, y=y_test)
    run = subprocess.run([sys.executable, "-c", _RELOAD, path, data_path], capture_output=True, text=True)
    if run.returncode != 0:
        print(f"[3/5] reloading in a fresh process FAILED:\n{run.stderr}")
        return 1
    signature, reloaded, imported_demo = run.stdout.rsplit(" ", 2)
    without = "never imported the demo's code" if imported_demo.strip() == "False" else "imported the demo's code"
    print(f"[3/5] reloaded in a fresh process that {without}: {signature}; "
          f"accuracy of the reloaded model {float(reloaded):.4f}")

    model_file = gc.export.load_model(path)
    _onnx_step(gc, model_file, out_dir, x_test, logits)
    _native_step(gc, model_file, out_dir, x_test, y_test, logits)
    return 0


def _onnx_step(gc, model, out_dir, x_test, logits) -> None:
    if importlib.util.find_spec("onnx") is None:
        print("[4/5] ONNX export skipped: onnx is not installed (pip install 'graphc[onnx]')")
        return
    import numpy as np
    path = os.path.join(out_dir, "digits.onnx")
    proto = gc.export.to_onnx(model, path)
    nodes = len(proto.graph.node) if hasattr(proto, "graph") else "?"
    line = f"[4/5] exported to ONNX: {path} ({nodes} nodes)"
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = session.run(None, {"x": x_test})[0]
        line += f"; onnxruntime agrees with graphc to {float(np.max(np.abs(got - logits))):.1e}"
    print(line)


def _native_step(gc, model, out_dir, x_test, y_test, logits) -> None:
    if shutil.which("cc") is None:
        print("[5/5] native library skipped: no C compiler (cc) on this machine")
        return
    print("[5/5] native library: (arrives with the shared-library export)")

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

        board = _tensorboard_writer(gc, graph, os.path.join(out_dir, "tensorboard"))

        def report(epoch, loss):
            if epoch % 3 == 2 or epoch == 0:
                acc = zoo.evaluate_accuracy(model, sess, x_test, y_test)
                print(f"  epoch {epoch + 1:2d}/{epochs}  loss {loss:.4f}  held-out accuracy {acc:.3f}")
            else:
                acc = None
                print(f"  epoch {epoch + 1:2d}/{epochs}  loss {loss:.4f}")
            if board is not None:
                board.log(sess, epoch, loss, acc)

        zoo.train(model, sess, x_train, y_train, epochs, on_epoch=report)
        # one traced inference run: its kernels as a Chrome trace, and in TensorBoard's graph view
        traced = gc.RunMetadata()
        sess.run(model.logits, {model.x: x_test[:64]}, run_metadata=traced,
                 options=gc.RunOptions(trace_level=gc.RunOptions.FULL_TRACE))
        trace_path = os.path.join(out_dir, "inference.trace.json")
        with open(trace_path, "w") as f:
            f.write(gc.profiler.Timeline(traced).generate_chrome_trace_format())
        print(f"Chrome trace of one inference run ({len(traced.kernels())} kernels): {trace_path} "
              "(open it in chrome://tracing or https://ui.perfetto.dev)")
        if board is not None:
            board.writer.add_run_metadata(traced, "inference")
            board.writer.close()
            print(f"TensorBoard log (loss, accuracy, weight histograms, the graph): "
                  f"tensorboard --logdir {board.writer.get_logdir()}")
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


class _Board:
    """The demo's TensorBoard log: loss and held-out accuracy per epoch (TF1's idiom for
    Python numbers, a hand-made ``gc.Summary``) and the weights' histograms (summary ops)."""

    def __init__(self, gc, graph, logdir):
        self.gc = gc
        self.writer = gc.summary.FileWriter(logdir, graph)
        with graph.as_default():
            self.histograms = gc.summary.merge([gc.summary.histogram(v.var_name, v)
                                                for v in gc.trainable_variables(graph)])

    def log(self, sess, epoch, loss, accuracy):
        Value = self.gc.Summary.Value
        values = [Value(tag="loss", simple_value=loss)]
        if accuracy is not None:
            values.append(Value(tag="held_out_accuracy", simple_value=accuracy))
        self.writer.add_summary(self.gc.Summary(value=values), epoch + 1)
        self.writer.add_summary(sess.run(self.histograms), epoch + 1)


def _tensorboard_writer(gc, graph, logdir):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        print("TensorBoard log skipped: tensorboard is not installed (pip install 'graphc[tensorboard]')")
        return None
    import shutil
    shutil.rmtree(logdir, ignore_errors=True)  # one run per log: a rerun replaces the last one
    return _Board(gc, graph, logdir)


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


# A C program that scores the native library on the held-out digits: no Python involved.
_C_EVAL = r"""
#include <stdio.h>
#include <stdlib.h>
#include "digits.h"

static void *load(const char *path, size_t bytes) {
    void *data = malloc(bytes);
    FILE *f = fopen(path, "rb");
    if (!data || !f || fread(data, 1, bytes, f) != bytes) { fprintf(stderr, "cannot read %s\n", path); exit(3); }
    fclose(f);
    return data;
}

int main(int argc, char **argv) {
    if (argc != 4) return 3;
    int64_t n = atoll(argv[3]);
    float *x = load(argv[1], (size_t)n * 64 * sizeof(float));
    int64_t *labels = load(argv[2], (size_t)n * sizeof(int64_t));
    float *logits = malloc((size_t)n * 10 * sizeof(float));
    int32_t status = digits_run(x, n, logits);
    if (status != DIGITS_OK) { fprintf(stderr, "%s\n", digits_last_error()); return 2; }
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++) if (logits[i * 10 + k] > logits[i * 10 + best]) best = k;
        correct += best == labels[i];
    }
    printf("%.4f %d %d\n", (double)correct / (double)n, digits_run(NULL, n, logits), digits_run(x, -1, logits));
    return 0;
}
"""


def _native_step(gc, model, out_dir, x_test, y_test, logits) -> None:
    import numpy as np
    cc = shutil.which("cc")
    if cc is None:
        print("[5/5] native library skipped: no C compiler (cc) on this machine")
        return
    start = time.perf_counter()
    # for this machine's CPU, since the demo runs it here (the default is the x86-64-v3 baseline)
    lib = gc.export.shared_library(model, path=os.path.join(out_dir, "native"), name="digits", cpu="native")
    built = time.perf_counter() - start
    directory = str(lib.directory)
    with open(os.path.join(directory, "eval.c"), "w") as f:
        f.write(_C_EVAL)
    x_test.astype(np.float32).tofile(os.path.join(directory, "x.bin"))
    y_test.astype(np.int64).tofile(os.path.join(directory, "y.bin"))
    compiled = subprocess.run([cc, "-O2", "-o", "eval", "eval.c", f"-I{directory}", "-L.", "-ldigits",
                               "-Wl,-rpath,$ORIGIN"], cwd=directory, capture_output=True, text=True)
    if compiled.returncode != 0:
        print(f"[5/5] built {lib.library}, but compiling the C program failed:\n{compiled.stderr}")
        return
    run = subprocess.run(["env", "-i", "./eval", "x.bin", "y.bin", str(len(x_test))], cwd=directory,
                         capture_output=True, text=True)
    if run.returncode != 0:
        print(f"[5/5] the C program failed (status {run.returncode}): {run.stderr.strip()}")
        return
    accuracy, null_status, bad_dim_status = run.stdout.split()
    size = os.path.getsize(lib.library) / 1024
    print(f"[5/5] built {lib.library} ({size:.0f} KiB, cpu {lib.cpu}, needs only {', '.join(lib.needed)}) "
          f"in {built:.1f} s; a C program run with an empty environment (env -i, no Python) scores held-out "
          f"accuracy {float(accuracy):.4f}; a NULL input returns status {null_status}, a negative batch "
          f"{bad_dim_status}")

"""The demo command trains the CNN in a fresh process and reports what it did."""
import re
import shutil
import subprocess
import sys


def test_demo_trains_the_cnn():
    out = subprocess.run([sys.executable, "-m", "graphc", "demo"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "epoch  1/20" in text and "epoch 20/20" in text
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)", text)]
    assert len(losses) == 20 and losses[-1] < losses[0]
    accuracy = float(re.search(r"final held-out accuracy (\d\.\d+)", text).group(1))
    assert accuracy >= 0.95
    assert "demo.py:" in text  # nodes point at the demo's own lines
    # the TensorBoard log holds the loss curve the demo printed, and the graph (the test extra has tensorboard)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    board = EventAccumulator(re.search(r"tensorboard --logdir (\S+)", text).group(1), size_guidance={"scalars": 0})
    board.Reload()
    assert [round(e.value, 4) for e in board.Scalars("loss")] == losses and board.Tags()["graph"]
    assert len(board.Tags()["histograms"]) >= 8  # the weights of the convolutions and dense layers
    assert board.Tags()["run_metadata"] == ["inference"]  # the traced run, for the graph view
    # the Chrome trace of that run: one complete event per kernel it printed
    import json
    kernels, trace_path = re.search(r"Chrome trace of one inference run \((\d+) kernels\): (\S+)", text).groups()
    events = json.load(open(trace_path))["traceEvents"]
    assert sum(e["ph"] == "X" and e["cat"] == "kernel" for e in events) == int(kernels) > 0
    # deployment: saved, reloaded in a fresh process with the same accuracy, exported
    assert "[2/5] saved the frozen inference graph to" in text
    reloaded = re.search(r"\[3/5\] reloaded in a fresh process that never imported the demo's code: "
                         r"\(x: float32\(None, 8, 8, 1\)\) -> \(logits: float32\(None, 10\)\); "
                         r"accuracy of the reloaded model (\d\.\d+)", text)
    assert reloaded and float(reloaded.group(1)) == accuracy
    onnx = re.search(r"\[4/5\] exported to ONNX: .*digits.onnx \(\d+ nodes\); onnxruntime agrees with graphc to "
                     r"(\S+)", text)  # the test extra installs onnx and onnxruntime
    assert onnx and float(onnx.group(1)) < 1e-4
    if shutil.which("cc"):
        native = re.search(r"\[5/5\] built .*libdigits.so .*needs only (.*)\) in .* scores held-out accuracy "
                           r"(\d\.\d+); a NULL input returns status 1, a negative batch 2", text)
        assert native and float(native.group(2)) == accuracy
        assert "python" not in native.group(1)
    else:
        assert "[5/5] native library skipped: no C compiler" in text


def test_devices_command_lists_every_device_and_says_why_one_is_unusable():
    out = subprocess.run([sys.executable, "-m", "graphc", "devices"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    assert set(lines) == {"cpu", "cuda", "reference"}
    assert "threads" in lines["cpu"] and "BLAS" in lines["cpu"]
    # a GPU, the simulator, or what to install: never a traceback
    assert lines["cuda"].startswith(("not usable: device='cuda'", "numba CUDA simulator")) or "compute capability" \
        in lines["cuda"]

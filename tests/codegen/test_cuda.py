"""The CUDA backend as a whole: device-resident state, the memory plan on device buffers,
fused kernels, run-time errors from inside kernels, and training steps against the
reference backend.

These run where a CUDA device is usable: under numba's simulator in the CUDA pass of
`python3 dev.py test` (NUMBA_ENABLE_CUDASIM=1, tiny shapes: every GPU thread is a Python
thread), or on a real GPU. The op tests reach the CUDA backend through GRAPHC_TEST_DEVICES;
the one test that needs no device checks the error a machine without one gives."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import graphc as gc
from graphc import zoo
from support import assert_close

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _cuda_usable() -> bool:
    if SIMULATED:
        return True
    try:
        from graphc.codegen.cuda.api import cuda
        cuda()
        return True
    except gc.CompileError:
        return False


needs_cuda = pytest.mark.skipif(not _cuda_usable(), reason="no CUDA device and not under NUMBA_ENABLE_CUDASIM=1")


def test_cuda_without_a_device_is_a_clear_error():
    if _cuda_usable() and not SIMULATED:
        pytest.skip("this machine has a usable CUDA GPU")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    code = ("import graphc as gc\n"
            "try:\n"
            "    gc.Session(device='cuda')\n"
            "except gc.CompileError as e:\n"
            "    print('ERROR:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ERROR: device='cuda'" in out.stdout
    assert "pip install graphc[cuda]" in out.stdout and "NUMBA_ENABLE_CUDASIM=1" in out.stdout


def _executable(sess):
    (runner,) = sess._runners.values()
    return runner.executable


@needs_cuda
def test_fused_groups_are_one_kernel_each(graph):
    x = gc.placeholder(gc.float32, (None, 5))
    b = gc.constant(np.linspace(-1, 1, 5, dtype=np.float32))
    y = gc.tanh(x * 2.0 + b) * x                          # elementwise chain: one kernel
    m = gc.reduce_sum(gc.exp(x - 1.0), axis=1) * 0.5     # reduce with prologue and epilogue: one kernel
    xv = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    for fetch, want, kernels in ((y, np.tanh(xv * 2 + b.eval(session=gc.Session(graph=graph, device="reference")))
                                  * xv, 1),
                                 (m, np.exp(xv - 1).sum(axis=1) * 0.5, 1)):
        with gc.Session(graph=graph, device="cuda") as sess:
            got = sess.run(fetch, {x: xv})
            executable = _executable(sess)
            assert len(executable.generated.calls) == executable.optimized.kernel_count == kernels
        assert_close(got, want.astype(np.float32), rtol=1e-5, atol=1e-6)


@needs_cuda
def test_variables_stay_on_the_device_between_runs(graph):
    v = gc.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="v")
    step = gc.assign_add(v, gc.ones_like(v))
    with gc.Session(graph=graph, device="cuda") as sess:
        sess.run(v.initializer)
        for _ in range(3):
            sess.run(step)
        stored = sess._state.variables["v"]
        assert hasattr(stored, "copy_to_host"), f"variable kept as {type(stored).__name__}, not a device array"
        got = sess.run(v)
        assert type(got) is np.ndarray  # fetches come back as NumPy arrays
        assert_close(got, np.arange(6, dtype=np.float32).reshape(2, 3) + 3)


@needs_cuda
def test_memory_plan_shares_device_buffers(graph):
    x = gc.placeholder(gc.float32, (None, 4))
    h = x
    for k in range(6):  # a chain whose intermediates cannot all fuse: matmuls between them
        h = gc.tanh(gc.matmul(h, gc.constant(np.eye(4, dtype=np.float32) * (0.5 + k))))
    xv = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    with gc.Session(graph=graph, device="cuda") as sess:
        got = sess.run(h, {x: xv})
        executable = _executable(sess)
        (binding,) = executable._bindings.values()
        buffered = [v for v in binding.target["device"].values if executable.schedule.place(v).kind == "buffer"]
        buffers = [key for key in binding.region_bytes if key[0] == "buffer"]
        assert len(buffered) >= 4
        assert len(buffers) < len(buffered), "every intermediate got its own device buffer"
    want = xv
    for k in range(6):
        want = np.tanh(want @ (np.eye(4, dtype=np.float32) * (0.5 + k)))
    assert_close(got, want, rtol=1e-5, atol=1e-6)


@needs_cuda
def test_kernel_errors_reach_the_user_with_the_op(graph):
    params = gc.placeholder(gc.float32, (4, 2), name="table")
    idx = gc.placeholder(gc.int64, (None,), name="ids")
    out = gc.gather(params, idx)
    with gc.Session(graph=graph, device="cuda") as sess:
        table = np.arange(8, dtype=np.float32).reshape(4, 2)
        assert_close(sess.run(out, {params: table, idx: np.array([3, 0])}), table[[3, 0]])
        with pytest.raises(gc.errors.GraphcError) as info:
            sess.run(out, {params: table, idx: np.array([1, 7])})
        text = str(info.value)
        assert "7" in text and "gather" in text.lower() and "test_cuda.py" in text
        # the session is still usable after the error, and the next bad index is caught too
        assert_close(sess.run(out, {params: table, idx: np.array([2])}), table[[2]])
        assert_close(sess.run(out, {params: table, idx: np.array([1, 2])}), table[[1, 2]])
        with pytest.raises(gc.errors.GraphcError, match="-5"):
            sess.run(out, {params: table, idx: np.array([0, -5])})
        assert_close(sess.run(out, {params: table, idx: np.array([0, 3])}), table[[0, 3]])


@needs_cuda
def test_random_ops_are_seeded_and_match_the_cpu_streams(graph):
    gc.set_random_seed(7)
    u = gc.random_uniform((5,), seed=3)
    n = gc.random_normal((2, 3), seed=4)
    with gc.Session(graph=graph, device="cuda") as a, gc.Session(graph=graph, device="reference") as b:
        first = a.run([u, n])
        second = a.run([u, n])
        expected = b.run([u, n])
    assert not np.array_equal(first[0], second[0])  # a new draw each run
    for got, want in zip(first, expected):
        assert_close(got, want, rtol=1e-6, atol=1e-7)


def _train(build, device, steps, data):
    model = build()
    x, y = data
    losses = []
    with gc.Session(graph=model.graph, device=device) as sess:
        sess.run(model.init)
        for _ in range(steps):
            loss, _ = sess.run([model.loss, model.train_op], {model.x: x, model.labels: y})
            losses.append(loss)
        variables = {v.name: sess.run(v) for v in gc.trainable_variables(model.graph)}
    return np.array(losses), variables


TINY_MODELS = {
    "mlp": lambda: zoo.mlp(input_shape=(4, 4, 1), hidden=8, classes=3),
    "lenet": lambda: zoo.lenet(input_shape=(4, 4, 1), channels=(2, 2), hidden=4, classes=3),
}


@needs_cuda
@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_training_steps_match_the_reference(name):
    rng = np.random.default_rng(2)
    data = (rng.standard_normal((3, 4, 4, 1)).astype(np.float32), np.array([0, 2, 1], np.int64))
    losses, variables = _train(TINY_MODELS[name], "cuda", 3, data)
    want_losses, want_variables = _train(TINY_MODELS[name], "reference", 3, data)
    assert losses[-1] < losses[0]
    assert_close(losses, want_losses, rtol=1e-4, atol=1e-5)
    assert variables.keys() == want_variables.keys()
    for key in variables:
        assert_close(variables[key], want_variables[key], rtol=1e-4, atol=1e-5)


@needs_cuda
def test_cuda_benchmark_script_runs_at_tiny_sizes(tmp_path):
    # keeps benchmarks/cuda_run.py working for sessions that have a GPU (timings mean nothing
    # here; W5 is left out: its 28x28 LeNet takes minutes in the simulator)
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "RESULTS-CUDA.md"
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "cuda_run.py"), "--tiny", "--out", str(out),
                           "--frameworks", "graphc,torch", "--workloads", "W1a,W1a-bw,W1b,W2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in out.read_text().splitlines() if line.startswith("| W")}
    for name in ("W1a", "W1a-bw", "W1b", "W2"):
        assert re.fullmatch(r"[0-9.]+ (µs|ms|s)", rows[name][0]), (name, rows[name])


@needs_cuda
def test_a_model_trained_on_the_gpu_exports_and_loads_on_any_device(graph, tmp_path):
    """Variables live on the device: freezing and saving read them back."""
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    w = gc.Variable(np.ones((3, 2), np.float32), name="w")
    y = gc.nn.relu(x @ w)
    step = gc.assign_sub(w, gc.reduce_sum(y) * 0.01 * gc.ones_like(w))
    xv = np.arange(6, dtype=np.float32).reshape(2, 3) / 6
    with gc.Session(graph=graph, device="cuda") as sess:
        sess.run(w.initializer)
        for _ in range(2):
            sess.run(step, {x: xv})
        want = sess.run(y, {x: xv})
        gc.export.save_model(sess, tmp_path / "m.gcm", outputs={"y": y})
        device_model = gc.export.load_model(tmp_path / "m.gcm", device="cuda")
        assert_close(device_model(x=xv)["y"], want, rtol=1e-6, atol=1e-6)
    assert not np.allclose(want, np.maximum(xv @ np.ones((3, 2), np.float32), 0))  # the steps changed w
    assert_close(gc.export.load_model(tmp_path / "m.gcm", device="reference")(x=xv)["y"], want, rtol=1e-6, atol=1e-6)

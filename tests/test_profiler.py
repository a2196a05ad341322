"""gc.profiler: traced runs fill TF1's RunMetadata, Timeline writes Chrome traces, and a
``trace`` block (or ``python -m graphc profile``) traces every run in it. Every device the
suite runs on (DEVICES) is traced; results of a traced run equal an untraced run's."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc as gc
from support import DEVICES, assert_close

FULL = gc.RunOptions(trace_level=gc.RunOptions.FULL_TRACE)
THIS_FILE = "test_profiler.py"


def _mlp_graph():
    """A small training step: matmul, relu, a reduction and a variable update (line numbers
    of its ops are this file's)."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (4, 6), "x")
        w = gc.Variable(np.linspace(-1, 1, 18, dtype=np.float32).reshape(6, 3), name="w")
        loss = gc.reduce_sum(gc.nn.relu(gc.matmul(x, w)))
        train = gc.train.GradientDescentOptimizer(0.1).minimize(loss)
        init = gc.global_variables_initializer()
    return g, x, w, loss, train, init


FEED = np.arange(24, dtype=np.float32).reshape(4, 6) / 24


@pytest.fixture(scope="module", params=DEVICES)
def traced(request):
    """One session per device: (session, graph parts, the RunMetadata of a traced step, the
    traced step's loss, the variable after it, the untraced twin's loss and variable)."""
    g, x, w, loss, train, init = _mlp_graph()
    results = {}
    for traced_run in (False, True):
        sess = gc.Session(graph=g, device=request.param)
        sess.run(init)
        md = gc.RunMetadata()
        kwargs = dict(options=FULL, run_metadata=md) if traced_run else {}
        value, _ = sess.run([loss, train], {x: FEED}, **kwargs)
        results[traced_run] = (sess, md, value, sess.run(w))
    yield request.param, (g, x, w, loss, train, init), results
    for sess, *_ in results.values():
        sess.close()


def test_traced_run_computes_what_an_untraced_run_does(traced):
    _, _, results = traced
    _, _, plain_loss, plain_w = results[False]
    _, _, loss, w = results[True]
    assert_close(loss, plain_loss)
    assert_close(w, plain_w)


def test_run_metadata_has_every_kernel_with_its_ops_lines_and_bytes(traced):
    device, _, results = traced
    _, md, _, _ = results[True]
    devices = [d.device for d in md.step_stats.dev_stats]
    assert len(devices) == 2 and "graphc host" in devices[1]
    assert ("GPU" if device == "cuda" else "CPU") in devices[0]
    kernels = md.kernels()
    assert kernels, "a traced run recorded no kernels"
    ops = {t for n in kernels for t, _, _ in n.ops}
    assert {"matmul", "relu", "reduce_sum"} <= ops, ops
    for n in kernels:
        assert n.kind == "kernel" and n.group and n.timeline_label
        assert n.op_end_rel_micros >= n.op_start_rel_micros == 0 and n.all_end_rel_micros == n.op_end_rel_micros
        assert n.all_start_micros > 1e15  # microseconds since the epoch (TF1's all_start_micros)
        for _, name, where in n.ops:
            assert name and ":" in where
    lines = {where for n in kernels for _, _, where in n.ops}
    assert any(THIS_FILE in where for where in lines), lines
    # the matmul reads x (4x6 float32) and w (6x3 float32), whatever it is fused with
    matmul = next(n for n in kernels if any(t == "matmul" for t, _, _ in n.ops))
    assert matmul.bytes_read >= (24 + 18) * 4
    assert matmul.bytes_written >= 12 * 4
    # the variable update writes the whole variable
    update = next(n for n in kernels if any(t == "assign_sub" for t, _, _ in n.ops))
    assert update.bytes_written >= 18 * 4
    host = {n.node_name for n in md.step_stats.dev_stats[1].node_stats}
    assert {"feeds and fetches", "run", "fetch results"} <= host


def test_timeline_is_a_chrome_trace(traced):
    _, _, results = traced
    _, md, _, _ = results[True]
    for timeline in (gc.profiler.Timeline(md), gc.profiler.Timeline(md.step_stats)):
        trace = json.loads(timeline.generate_chrome_trace_format(show_memory=True))
        events = trace["traceEvents"]
        complete = [e for e in events if e["ph"] == "X"]
        assert len(complete) == sum(len(d.node_stats) for d in md.step_stats.dev_stats)
        assert {e["name"] for e in events if e["ph"] == "M"} == {"process_name"}
        assert all(e["ts"] >= 0 and e["dur"] >= 0 for e in complete)
        kernel = next(e for e in complete if e["cat"] == "kernel")
        assert {"group", "ops", "bytes_read", "bytes_written"} <= set(kernel["args"])
        assert any(e["ph"] == "C" for e in events)  # show_memory's counter


def test_tensorboard_takes_the_run_metadata(traced, tmp_path):
    pytest.importorskip("tensorboard")
    _, _, results = traced
    _, md, _, _ = results[True]
    proto = gc.summary.run_metadata_proto(md)
    names = [n.node_name for d in proto.step_stats.dev_stats for n in d.node_stats]
    assert names == [n.node_name for d in md.step_stats.dev_stats for n in d.node_stats]


def test_untraced_run_leaves_run_metadata_empty_and_timeline_says_so():
    g, x, w, loss, train, init = _mlp_graph()
    with gc.Session(graph=g) as sess:
        sess.run(init)
        md = gc.RunMetadata()
        sess.run(loss, {x: FEED}, run_metadata=md)  # TF1: no trace_level, no step_stats
        assert md.kernels() == []
        with pytest.raises(ValueError, match="trace_level=gc.RunOptions.FULL_TRACE"):
            gc.profiler.Timeline(md)


@pytest.mark.parametrize("level", [gc.RunOptions.SOFTWARE_TRACE, gc.RunOptions.HARDWARE_TRACE,
                                   gc.RunOptions.FULL_TRACE])
def test_every_trace_level_traces_with_make_callable_options(level):
    g, x, w, loss, train, init = _mlp_graph()
    with gc.Session(graph=g) as sess:
        sess.run(init)
        f = sess.make_callable(loss, [x], accept_options=True)
        md = gc.RunMetadata()
        value = f(FEED, options=gc.RunOptions(trace_level=level), run_metadata=md)
        assert_close(value, f(FEED))
        assert md.kernels()


@pytest.mark.parametrize("kwargs, error, fragment", [
    (dict(trace_level=7), ValueError, "trace_level must be"),
    (dict(trace_level="FULL"), ValueError, "trace_level must be"),
    (dict(timeout_in_ms=-1), ValueError, "timeout_in_ms"),
])
def test_bad_run_options_name_the_argument(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        gc.RunOptions(**kwargs)


def test_report_tensor_allocations_upon_oom_is_accepted():
    g, x, w, loss, train, init = _mlp_graph()
    with gc.Session(graph=g) as sess:
        sess.run(init)
        value = sess.run(loss, {x: FEED}, options=gc.RunOptions(report_tensor_allocations_upon_oom=True))
        assert_close(value, sess.run(loss, {x: FEED}))


def test_bad_run_metadata_and_options_are_type_errors():
    g, x, w, loss, train, init = _mlp_graph()
    with gc.Session(graph=g) as sess:
        sess.run(init)
        with pytest.raises(TypeError, match="run_metadata must be a gc.RunMetadata"):
            sess.run(loss, {x: FEED}, options=FULL, run_metadata={})
        with pytest.raises(TypeError, match="options must be a gc.RunOptions"):
            sess.run(loss, {x: FEED}, options={"trace_level": 3})


def test_a_backend_that_cannot_time_kernels_is_an_error_naming_trace_level():
    from graphc.codegen import backend as backends
    from graphc.codegen.reference import ReferenceBackend, ReferenceExecutable

    class Untimed(ReferenceExecutable):
        traceable = False

    class UntimedBackend(ReferenceBackend):
        def compile(self, program):
            return Untimed(program)

    backends._BACKENDS["untimed-test"] = f"{__name__}:_UNUSED"
    backends._instances["untimed-test"] = UntimedBackend()
    try:
        g, x, w, loss, train, init = _mlp_graph()
        with gc.Session(graph=g, device="reference") as sess:
            sess.run(init)
            expected = sess.run(loss, {x: FEED})
        with gc.Session(graph=g, device="untimed-test") as sess:
            sess.run(init)
            assert_close(sess.run(loss, {x: FEED}), expected)  # it runs untraced
            with pytest.raises(ValueError, match="trace_level.*'untimed-test' backend cannot time"):
                sess.run(loss, {x: FEED}, options=FULL, run_metadata=gc.RunMetadata())
    finally:
        backends._BACKENDS.pop("untimed-test")
        backends._instances.pop("untimed-test")


def test_control_flow_is_traced_as_coarser_steps():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (3,), "x")
        _, r = gc.while_loop(lambda i, v: i < 4, lambda i, v: (i + 1, v * 2.0), [gc.constant(0), x])
        out = gc.cond(gc.reduce_sum(x) > 0, lambda: r + 1.0, lambda: r)
    for device in DEVICES:
        with gc.Session(graph=g, device=device) as sess:
            md = gc.RunMetadata()
            assert_close(sess.run(out, {x: np.ones(3, np.float32)}, options=FULL, run_metadata=md),
                         np.full(3, 17, np.float32))
            ops = {t for n in md.kernels() for t, _, _ in n.ops}
            assert {"while_loop", "cond"} <= ops, (device, ops)


def test_trace_block_traces_run_and_make_callable_and_writes_one_file(tmp_path):
    g, x, w, loss, train, init = _mlp_graph()
    path = tmp_path / "steps.trace.json"
    with gc.Session(graph=g) as sess:
        sess.run(init)
        f = sess.make_callable(loss, [x])
        plain = f(FEED)
        with gc.profiler.trace(path) as prof:
            traced_values = [sess.run(loss, {x: FEED}), f(FEED)]
        after = f(FEED)  # outside the block: untraced again
    assert len(prof.runs) == 2
    for value in traced_values + [after]:
        assert_close(value, plain)
    events = json.loads(path.read_text())["traceEvents"]
    assert sum(e["ph"] == "X" and e["cat"] == "kernel" for e in events) == sum(len(r.kernels()) for r in prof.runs)
    assert "ms in kernels" in prof.report()


def test_start_stop_and_an_unwritable_trace_path(tmp_path):
    with pytest.raises(PermissionError, match="cannot write a trace"):
        with gc.profiler.trace(tmp_path / "missing" / "t.json"):
            pass
    with pytest.raises(RuntimeError, match="no profiling started"):
        gc.profiler.stop()
    g, x, w, loss, train, init = _mlp_graph()
    with gc.Session(graph=g) as sess:
        sess.run(init)
        gc.profiler.start(tmp_path / "t.json")
        sess.run(loss, {x: FEED})
        prof = gc.profiler.stop()
    assert len(prof.runs) == 1 and (tmp_path / "t.json").exists()
    assert not gc.profiler.active()


def test_python_m_graphc_profile_writes_the_trace_of_a_script(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import sys
        import numpy as np
        import graphc as gc
        x = gc.placeholder(gc.float32, (2, 3), "x")
        y = gc.reduce_sum(gc.exp(x))
        with gc.Session(device="reference") as sess:
            for _ in range(int(sys.argv[1])):
                sess.run(y, {x: np.ones((2, 3), np.float32)})
    """))
    out = tmp_path / "train.trace.json"
    done = subprocess.run([sys.executable, "-m", "graphc", "profile", "--out", str(out), str(script), "3"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "3 traced runs" in done.stderr and str(out) in done.stderr
    events = json.loads(out.read_text())["traceEvents"]
    assert any("exp" in " ".join(e["args"].get("ops", [])) for e in events if e["ph"] == "X")
    empty = tmp_path / "nothing.py"
    empty.write_text("print('no runs')\n")
    done = subprocess.run([sys.executable, "-m", "graphc", "profile", "--out", str(tmp_path / "n.json"), str(empty)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "nothing to trace" in done.stderr
    assert not (tmp_path / "n.json").exists()


def test_a_guarded_session_traces_too():
    """The NaN guard (graphc/debugging.py) runs the program its own way; traced, it still fills
    the RunMetadata, and a trace block still sees the run."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (3,), "x")
        y = gc.reduce_sum(gc.log(x))
    with gc.Session(graph=g, nan_guard=True) as sess:
        md = gc.RunMetadata()
        assert_close(sess.run(y, {x: np.ones(3, np.float32)}, options=FULL, run_metadata=md), np.float32(0))
        assert any(t == "log" for n in md.kernels() for t, _, _ in n.ops)
        with gc.profiler.trace() as prof:
            sess.run(y, {x: np.full(3, 2.0, np.float32)})
        assert len(prof.runs) == 1 and prof.runs[0].kernels()
        with pytest.raises(gc.errors.NumericsError, match="log"):
            sess.run(y, {x: -np.ones(3, np.float32)}, options=FULL, run_metadata=gc.RunMetadata())

"""graphc.distribute in one process (a job of size 1, as ``hvd.init()`` in a plain ``python``
gives): the API, the ops on every device, and every error a user can cause. The collectives
across ranks are tests/distribute/test_mpi.py."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc as gc

pytest.importorskip("mpi4py", reason="graphc[mpi] is not installed (it is part of graphc[test])")
import graphc.distribute as hvd  # noqa: E402
from graphc.distribute import run as launcher  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module", autouse=True)
def job():
    hvd.init()
    hvd.init()  # a second call does nothing
    assert hvd.is_initialized()


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_ranks_of_a_job_of_one():
    assert (hvd.rank(), hvd.size(), hvd.local_rank(), hvd.local_size(), hvd.cross_rank(), hvd.cross_size()) == \
        (0, 1, 0, 1, 0, 1)
    assert hvd.mpi_enabled() and hvd.mpi_built() and not hvd.gloo_enabled() and not hvd.nccl_built()
    assert isinstance(hvd.mpi_threads_supported(), bool)
    assert hvd.communication_seconds() >= 0.0


def test_the_shared_window_places_the_buckets_in_flight_together_and_alternates_halves():
    """shared_window.SharedWindow's bookkeeping (a job of one never reduces through it: its
    two-rank use is test_mpi.py's): buckets in flight together take consecutive places; the
    next set takes the other half; buckets that found no room go through MPI, and once none is
    in flight the window grows to hold the whole set."""
    from graphc.distribute import shared_window, world
    assert world.current().shared is None  # one rank: MPI's all-reduce (of nothing)
    window = shared_window.SharedWindow(world.current())
    assert [window.place(128) for _ in range(3)] == [None, None, None]
    window.done(), window.done()
    window.grow()  # one still in flight: no reallocation under it
    assert window.grown == 0 and window.capacity == 0
    window.done()
    window.grow()
    assert window.grown == 1 and window.capacity == 384
    assert [window.place(128) for _ in range(3)] == [0, 128, 256]
    for _ in range(3):
        window.done()
    assert [window.place(128), window.place(256)] == [384, 512]  # the next set: the other half
    window.done(), window.done()
    window.grow()  # 384 bytes again: room enough
    assert window.grown == 1 and window.place(512) is None  # more than fits: through MPI
    window.done()
    window.grow()
    assert window.grown == 2 and window.capacity == 512 and window.place(512) == 0
    window.done()
    arrays = [np.arange(5, dtype=np.float32), np.arange(3, dtype=np.int64), np.ones((2, 2), np.float32)]
    layout = shared_window.regions(arrays)
    assert [(dt, at, [i for i, _, _ in placed]) for dt, at, placed, _ in layout] == \
        [(np.dtype(np.float32), 0, [0, 2]), (np.dtype(np.int64), 64, [1])]
    assert shared_window.nbytes(layout) == 128
    window.copy_in(arrays, layout, 384)
    outputs = [np.empty_like(a) for a in arrays]
    window.copy_out(layout, 384, outputs)
    for a, o in zip(arrays, outputs):
        np.testing.assert_array_equal(a, o)


def test_rank_queries_before_init_say_what_to_do():
    run = python("""
        import graphc.distribute as hvd
        for query in (hvd.size, hvd.rank, hvd.local_rank):
            try:
                query()
            except ValueError as e:
                print("ERR", e)
    """)
    assert run.stdout.count("ERR") == 3, run.stderr
    assert "hvd.size() needs hvd.init() first: call hvd.init() once at the start" in run.stdout


def test_without_mpi4py_init_says_what_to_install():
    run = python("""
        import sys
        sys.modules["mpi4py"] = None     # as if it were not installed
        import graphc.distribute as hvd
        try:
            hvd.init()
        except ImportError as e:
            print("ERR", e)
    """)
    assert 'ERR graphc.distribute needs mpi4py and an MPI library: pip install "graphc[mpi]"' in run.stdout, run.stderr


def test_ops_of_a_job_of_one_are_identities(evaluate):
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    n = gc.placeholder(gc.int32, (2,), name="n")
    xv = np.arange(6, dtype=np.float32).reshape(2, 3)
    fetches = [hvd.allreduce(x), hvd.allreduce(x * 2.0, op=hvd.Sum), hvd.allgather(x), hvd.broadcast(x, 0),
               *hvd.grouped_allreduce([x, n], op=hvd.Sum), hvd.allreduce(x, prescale_factor=2.0, postscale_factor=3.0)]
    got = evaluate(fetches, {x: xv, n: np.array([4, 5], np.int32)})
    for value, want in zip(got, [xv, 2 * xv, xv, xv, xv, [4, 5], 6 * xv]):
        np.testing.assert_allclose(value, want, rtol=1e-6)


def test_gradients_of_a_job_of_one(evaluate):
    x = gc.placeholder(gc.float64, (2, 3), name="x")
    loss = gc.reduce_sum(gc.sin(hvd.allreduce(x)) + hvd.allgather(x) ** 2 + hvd.broadcast(x, 0) * x)
    (dx,) = gc.gradients(loss, [x])
    xv = np.linspace(-1, 1, 6).reshape(2, 3)
    got = evaluate(dx, {x: xv})
    np.testing.assert_allclose(got, np.cos(xv) + 2 * xv + 2 * xv, rtol=1e-12)


def test_distributed_optimizer_is_the_wrapped_optimizer_at_size_one():
    results = []
    for wrap in (False, True):
        g = gc.Graph()
        with g.as_default():
            w = gc.Variable(np.array([1.0, -2.0], np.float32), name="w")
            loss = gc.reduce_sum(w * w)
            opt = gc.train.Momentum(0.1, 0.9)
            if wrap:
                opt = hvd.DistributedOptimizer(opt)
                # an instance of the optimizer's own class, under its own name (Horovod's way)
                assert isinstance(opt, gc.train.Momentum) and type(opt).__name__ == "Momentum"
            train = opt.minimize(loss)
            with gc.Session(graph=g) as sess:
                sess.run(gc.global_variables_initializer())
                sess.run(hvd.broadcast_global_variables(0))
                for _ in range(3):
                    sess.run(train)
                results.append(sess.run(w))
                assert opt.get_slot(w, "momentum") is not None
    np.testing.assert_array_equal(results[0], results[1])


def test_keras_compile_takes_the_distributed_optimizer_and_callbacks(tmp_path):
    g = gc.Graph()
    with g.as_default():
        keras = gc.keras
        model = keras.Sequential([keras.layers.Dense(4, activation="relu", input_shape=(3,)), keras.layers.Dense(2)])
        model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.SGD(0.05)), loss="mse", metrics=["mae"])
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(16, 3)).astype(np.float32), rng.normal(size=(16, 2)).astype(np.float32)
        history = model.fit(x, y, epochs=2, batch_size=8, verbose=0,
                            callbacks=[hvd.keras.BroadcastGlobalVariablesCallback(0), hvd.keras.MetricAverageCallback()])
        assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
        assert hvd.keras.DistributedOptimizer is hvd.DistributedOptimizer
        # the model file names the wrapped optimizer, and loads back with it (ModelCheckpoint on rank 0)
        path = str(tmp_path / "model.h5")
        model.save(path)
    g2 = gc.Graph()
    with g2.as_default():
        again = gc.keras.models.load_model(path)
        assert type(again.optimizer).__name__ == "SGD"
        np.testing.assert_allclose(again.predict(x), model.predict(x), rtol=1e-6)


@pytest.mark.parametrize("build, message", [
    (lambda x: hvd.allreduce(x, op=hvd.Adasum), "op=hvd.Adasum is not supported"),
    (lambda x: hvd.allreduce(x, op="max"), "op must be hvd.Average or hvd.Sum"),
    (lambda x: hvd.allreduce(x, average=True, op=hvd.Sum), "give op= or the older average=, not both"),
    (lambda x: hvd.allreduce(x, compression=hvd.Compression.fp16), "needs a float16 type"),
    (lambda x: hvd.allreduce(gc.cast(x, gc.int32)), "the average of 'Cast:0' (int32) is not an integer"),
    (lambda x: hvd.allreduce(x > 0), "collectives take numbers"),
    (lambda x: hvd.allgather(gc.reduce_sum(x)), "needs rank 1 or more"),
    (lambda x: hvd.broadcast(x, 1), "root_rank 1 is not a rank of this job (size 1: ranks 0..0)"),
    (lambda x: hvd.broadcast(x, -1), "root_rank -1 is not a rank of this job"),
    (lambda x: hvd.broadcast(x, 0.5), "root_rank must be a rank"),
    (lambda x: hvd.DistributedOptimizer(gc.train.Adam(1e-3), backward_passes_per_step=2),
     "backward_passes_per_step=2 (local gradient accumulation) is not supported"),
    (lambda x: hvd.DistributedOptimizer(hvd.DistributedOptimizer(gc.train.Adam(1e-3))), "already distributed"),
    (lambda x: hvd.DistributedOptimizer("adam"), "expected a gc.train or gc.keras optimizer, got str"),
])
def test_bad_arguments_are_errors_that_say_why(graph, build, message):
    x = gc.placeholder(gc.float32, (2, 3), name="x")
    with pytest.raises((ValueError, TypeError)) as e:
        build(x)
    assert message in str(e.value)
    if "at " in str(e.value):
        assert "test_api.py:" in str(e.value)  # the user's line


def test_a_collective_in_a_loop_body_is_refused_by_name(graph):
    x = gc.placeholder(gc.float32, (3,), name="x")
    with pytest.raises(gc.GraphcError, match=r"collective_allreduce 'HorovodAllreduce' \(created at .*test_api.py:\d+\) "
                                             r"is inside the function; a collective .* is a call into MPI"):
        gc.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, hvd.allreduce(v) * 2.0), [gc.constant(0), x])


def test_exports_refuse_a_collective_with_the_reason(graph, tmp_path):
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    y = hvd.allreduce(x) + 1.0
    with gc.Session() as sess:
        with pytest.raises(gc.GraphcError, match="is a collective of a data-parallel run"):
            gc.export.to_onnx(sess, str(tmp_path / "m.onnx"), inputs={"x": x}, outputs={"y": y})
        with pytest.raises(gc.GraphcError, match="is a collective of a data-parallel run"):
            gc.export.save_model(sess, str(tmp_path / "m.gcm"), inputs={"x": x}, outputs={"y": y})
    assert not (tmp_path / "m.gcm").exists()


def test_a_training_graph_with_collectives_round_trips_through_a_meta_graph(graph, tmp_path):
    # Saver's .meta keeps the whole graph, collectives included (their attributes are in the schema)
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    w = gc.Variable(np.ones((3, 2), np.float32), name="w")
    loss = gc.reduce_sum(hvd.allreduce(x @ w, op=hvd.Sum) ** 2)
    train = hvd.DistributedOptimizer(gc.train.GradientDescent(0.1)).minimize(loss)
    with gc.Session() as sess:
        sess.run(gc.global_variables_initializer())
        path = gc.train.Saver().save(sess, str(tmp_path / "ckpt"))
    g2 = gc.Graph()
    with g2.as_default():
        saver = gc.train.import_meta_graph(str(tmp_path / "ckpt.meta"))
        types = {op.type for op in g2.get_operations()}
        assert "collective_allreduce" in types
        with gc.Session(graph=g2) as sess:
            saver.restore(sess, path)
            xv = np.ones((2, 3), np.float32)
            before = sess.run("Sum:0", {"x:0": xv})
            sess.run(g2.get_operation_by_name(train.name), {"x:0": xv})
            assert sess.run("Sum:0", {"x:0": xv}) < before


def test_the_launcher_says_what_to_install_without_mpiexec(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("GRAPHC_MPIEXEC", raising=False)
    with pytest.raises(FileNotFoundError, match=r'no mpiexec or mpirun .* pip install "graphc\[mpi\]"'):
        launcher.find_mpiexec()
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    assert launcher.main(["-np", "2", str(script)]) == 127
    assert 'pip install "graphc[mpi]"' in capsys.readouterr().err
    monkeypatch.setenv("GRAPHC_MPIEXEC", str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="GRAPHC_MPIEXEC=.* is not an executable file"):
        launcher.find_mpiexec()


def test_the_launcher_checks_its_arguments(tmp_path):
    with pytest.raises(SystemExit):
        launcher.main(["-np", "0", str(tmp_path / "x.py")])
    with pytest.raises(SystemExit):
        launcher.main(["-np", "2", str(tmp_path / "missing.py")])


def test_the_launcher_runs_a_script_on_two_ranks(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("import graphc.distribute as hvd\nhvd.init()\nprint(f'rank {hvd.rank()} of {hvd.size()}', flush=True)\n")
    run = subprocess.run([sys.executable, "-m", "graphc.distribute.run", "-np", "2", str(script)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "rank 0 of 2" in run.stdout and "rank 1 of 2" in run.stdout


def test_bool_variables_are_broadcast(graph):
    flag = gc.Variable(True, name="flag", trainable=False)
    w = gc.Variable(np.ones(2, np.float32), name="w")
    with gc.Session() as sess:
        sess.run(gc.global_variables_initializer())
        sess.run(hvd.broadcast_global_variables(0))
        assert sess.run(flag) is np.True_ or bool(sess.run(flag)) is True
        np.testing.assert_array_equal(sess.run(w), [1.0, 1.0])


def test_a_collective_from_a_second_thread_at_once_is_refused(graph):
    from graphc.distribute import world
    x = gc.placeholder(gc.float32, (2,), name="x")
    y = hvd.allreduce(x)
    with gc.Session() as sess:
        w = world.current()
        w.lock.acquire()  # as if another thread were inside a collective
        try:
            with pytest.raises(gc.errors.FailedPreconditionError, match="another thread of this process runs a "
                                                                          "collective"):
                sess.run(y, {x: np.ones(2, np.float32)})
        finally:
            w.lock.release()
        np.testing.assert_array_equal(sess.run(y, {x: np.ones(2, np.float32)}), [1.0, 1.0])


def test_fusion_threshold_comes_from_horovods_variable(monkeypatch):
    from graphc.distribute import world
    monkeypatch.delenv("HOROVOD_FUSION_THRESHOLD", raising=False)
    assert world.fusion_threshold() == 64 << 20
    monkeypatch.setenv("HOROVOD_FUSION_THRESHOLD", "100")
    arrays = [np.zeros(10, np.float32), np.zeros(10, np.float32), np.zeros(3, np.float64), np.zeros(20, np.float32)]
    assert world._fusion_buffers(arrays, world.fusion_threshold()) == [[0, 1], [2], [3]]
    assert world._fusion_buffers(arrays, 200) == [[0, 1, 3], [2]]
    assert world._fusion_buffers(arrays, 50) == [[0], [1], [2], [3]]
    assert world._fusion_buffers(arrays, 0) == [[0], [1], [2], [3]]
    monkeypatch.setenv("HOROVOD_FUSION_THRESHOLD", "lots")
    with pytest.raises(ValueError, match="HOROVOD_FUSION_THRESHOLD must be a number of bytes"):
        world.fusion_threshold()


# --- collectives as steps of the CPU schedule: started early, waited for late, in place ----------------
def _mlp_with_reduced_gradients():
    """An MLP whose gradients go through one grouped all-reduce (a job of one: each result is
    its input), then SGD: the shape of a DistributedOptimizer step."""
    rng = np.random.default_rng(3)
    x = gc.placeholder(gc.float32, (None, 8), name="x")
    y = gc.placeholder(gc.int64, (None,), name="y")
    params = [gc.Variable(rng.normal(size=s).astype(np.float32) * 0.3, name=n)
              for n, s in (("w1", (8, 32)), ("b1", (32,)), ("w2", (32, 4)), ("b2", (4,)))]
    h = gc.nn.relu(gc.matmul(x, params[0]) + params[1])
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=gc.matmul(h, params[2])
                                                                         + params[3]))
    opt = gc.train.GradientDescent(0.5)
    pairs = opt.compute_gradients(loss)
    reduced = hvd.grouped_allreduce([g for g, _ in pairs], op=hvd.Sum)
    train = opt.apply_gradients(list(zip(reduced, [v for _, v in pairs])))
    feed = {x: rng.normal(size=(16, 8)).astype(np.float32), y: rng.integers(0, 4, 16)}
    return params, loss, train, feed


def _only_executable(sess):
    """The session's one CPU executable that runs collectives."""
    (exe,) = [e for e in sess._executables.values() if getattr(e, "collectives", None)]
    return exe


@pytest.mark.parametrize("threshold", [None, "0"])
def test_an_allreduce_starts_when_its_tensors_are_made_and_is_waited_for_before_they_are_read(
        graph, monkeypatch, threshold):
    from graphc.codegen.schedule import KERNEL, START, WAIT
    if threshold is None:
        monkeypatch.delenv("HOROVOD_FUSION_THRESHOLD", raising=False)
    else:  # 0: no fusion, every tensor starts as soon as it is made
        monkeypatch.setenv("HOROVOD_FUSION_THRESHOLD", threshold)
    params, loss, train, feed = _mlp_with_reduced_gradients()
    results = {}
    for device in ("cpu", "reference"):
        with gc.Session(device=device) as sess:
            sess.run(gc.global_variables_initializer())
            for _ in range(3):
                sess.run(train, feed)
            results[device] = sess.run(params + [loss], feed)
            if device == "cpu":
                exe = _only_executable(sess)
    for got, want in zip(results["cpu"], results["reference"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    schedule, program = exe.schedule, exe.program
    (gi,) = schedule.buckets
    ins = program.instrs[program.groups[gi].members[0]]
    steps = list(schedule.steps)
    made_at = {}  # root value -> index of the step whose group makes it
    for k, step in enumerate(steps):
        if step.kind == KERNEL:
            for i in program.groups[step.group].members:
                for v in program.instrs[i].outputs:
                    made_at.setdefault(schedule.root(v), k)
    starts = [k for k, s in enumerate(steps) if s.kind == START]
    (wait,) = [k for k, s in enumerate(steps) if s.kind == WAIT]
    positions = {made_at[schedule.root(v)] for v in ins.inputs}
    # one bucket per point where gradients are made without fusion; one bucket in all with it
    assert len(starts) == (len(positions) if threshold == "0" else 1)
    for k in starts:
        members = schedule.buckets[gi][steps[k].bucket][1]
        last = max(made_at[schedule.root(ins.inputs[m])] for m in members)
        assert last == k - 1 or all(s.kind == START for s in steps[last + 1:k])  # started right after
    assert max(starts) < wait
    readers = [k for k, s in enumerate(steps) if s.kind == KERNEL and any(
        schedule.root(v) in {schedule.root(o) for o in ins.outputs}
        for i in program.groups[s.group].members for v in program.instrs[i].inputs)]
    assert readers and min(readers) > wait  # the updates run after the wait, and only they


def test_gradients_are_reduced_in_place_laid_end_to_end(graph):
    params, loss, train, feed = _mlp_with_reduced_gradients()
    with gc.Session(device="cpu") as sess:
        sess.run(gc.global_variables_initializer())
        sess.run(train, feed)
        exe = _only_executable(sess)
        plan, schedule = exe.program.buffers, exe.schedule
        (step,) = exe.collectives
        assert step.in_place == [[True] * 4]  # each result is written over its gradient
        (run,) = schedule.laid_end_to_end()
        assert sorted(run) == sorted(plan.collective) and len(run) == 4
        # between a gradient's making and the wait, its buffer holds nothing else
        (gi,) = schedule.buckets
        wait = gi
        for b in plan.collective:
            holders = [v for v, bb in plan.buffer_of.items() if bb == b]
            gradient = min(holders, key=lambda v: plan.live[v][0])
            made = plan.live[gradient][0]
            for v in holders:
                if v != gradient:
                    assert not (made <= plan.live[v][0] <= wait), (v, gradient)
        # the run lays them end to end: the bucket goes to MPI as one span over them
        fixed = exe.fixed_values(exe.binding([feed[t] for t in sorted(feed, key=lambda t: t.name)]))
        views = [a for a, key in zip(fixed, exe._fixed) if key[0] == "buffer"
                 and plan.buffer_of.get(key[1]) in plan.collective and plan.live[key[1]][0] <= wait]
        assert len(views) >= 4
        addresses = sorted((a.__array_interface__["data"][0], a.nbytes) for a in views)
        assert all(p + n <= q for (p, n), (q, _) in zip(addresses, addresses[1:]))
        assert addresses[-1][0] + addresses[-1][1] - addresses[0][0] <= sum(n for _, n in addresses) + 8 * 4


def test_a_traced_run_shows_each_start_and_wait(graph):
    params, loss, train, feed = _mlp_with_reduced_gradients()
    with gc.Session(device="cpu") as sess:
        sess.run(gc.global_variables_initializer())
        md = gc.RunMetadata()
        sess.run(train, feed, options=gc.RunOptions(trace_level=gc.RunOptions.FULL_TRACE), run_metadata=md)
        labels = [n.timeline_label for n in md.kernels()]
    assert "collective_allreduce start, bucket 1 of 1" in labels and "collective_allreduce wait" in labels
    gradient_bytes = sum(4 * int(np.prod(p.shape)) for p in params)
    start, wait = (next(n for n in md.kernels() if n.timeline_label == label)
                   for label in ("collective_allreduce start, bucket 1 of 1", "collective_allreduce wait"))
    assert start.bytes_read == gradient_bytes and wait.bytes_written == gradient_bytes
    assert labels.index("collective_allreduce start, bucket 1 of 1") < labels.index("collective_allreduce wait")


def test_a_run_that_fails_between_a_start_and_its_wait_stops_the_job(graph):
    from graphc.distribute import world
    x = gc.placeholder(gc.float32, (4,), name="x")
    idx = gc.placeholder(gc.int32, (4,), name="idx")
    gathered = gc.gather(x, idx)  # a kernel of its own, then the start
    checked = gc.debugging.check_numerics(gathered / x, "the check between the start and the wait")
    reduced = hvd.allreduce(gathered, op=hvd.Sum)
    out = reduced + checked
    w = world.current()
    try:
        with gc.Session(device="cpu") as sess:
            ok = {x: np.ones(4, np.float32), idx: np.arange(4, dtype=np.int32)}
            np.testing.assert_array_equal(sess.run(out, ok), [2.0, 2.0, 2.0, 2.0])
            exe = _only_executable(sess)
            kinds = [s.kind for s in exe.schedule.steps]
            assert kinds.index("start") < kinds.index("wait") - 1  # the check runs in between
            with pytest.raises(gc.errors.InvalidArgumentError, match="the check between the start"):
                sess.run(out, {x: np.array([1, 0, 1, 1], np.float32), idx: np.arange(4, dtype=np.int32)})
            with pytest.raises(gc.errors.FailedPreconditionError, match="an earlier collective failed .a run "
                                                                        "stopped by an error between starting"):
                sess.run(out, ok)
    finally:  # (this process's job goes on for the other tests)
        w.broken, w.in_flight, w.owner = None, 0, None
        if w.lock.locked():
            w.lock.release()


@pytest.mark.parametrize("name", ["BroadcastGlobalVariablesHook", "alltoall", "join", "elastic"])
def test_a_horovod_name_graphc_lacks_says_what_it_is_and_what_to_do(name):
    with pytest.raises(AttributeError, match=rf"graphc.distribute has no hvd.{name} \(.*\) at .*test_api.py:\d+: "):
        getattr(hvd, name)
    assert not hasattr(hvd, "no_such_name")

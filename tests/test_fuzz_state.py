"""The differential fuzzer for state under fusion: random graphs that mix variables, reads
and writes (assign, assign_add, assign_sub, with their results used, reduced, fetched and
written again), control dependencies, groups and optimizer updates with elementwise math,
reductions, softmax, matmul, conv/pool, gather, slices and concat. Each graph runs several
times with different fetches, and every fetch and every variable after every run must

  * follow the README's variable semantics, computed by an oracle in plain NumPy
    (tests/fuzz_graphs.py), wherever the oracle models it; and
  * agree with the reference backend at optimize=0, on every device and level, and after the
    graph is written as a meta graph and read back (export_meta_graph / import_meta_graph).

CI runs a few hundred graphs; GRAPHC_FUZZ_EXAMPLES=5000 runs more (random, not derandomized)."""
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import graphc as gc
from fuzz_graphs import (RangeViolation, STATE_CONTROL_FLOW_STEPS, build_state_graph, drawn_configs, evaluate_oracle,
                         tiny_collective_buckets, pool_at_full_width, splits_on_the_pool)
from support import DEVICES

pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(autouse=True, scope="module")
def _collectives_in_tiny_buckets():
    yield from tiny_collective_buckets()


@pytest.fixture(autouse=True, scope="module")
def _pool_at_full_width():
    yield from pool_at_full_width()


EXAMPLES = int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXAMPLES or (30 if "cuda" in DEVICES else 200), deadline=None,
                derandomize=not EXAMPLES, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
# The compiled configurations, each compared with the reference backend at optimize=0.
CONFIGS = [("reference", 2)] + [(d, level) for d in DEVICES if d != "reference"
                                for level in ((0, 1, 2) if d == "cpu" else (0, 2))]
RTOL, ATOL = 2e-4, 2e-5
TRACE = gc.RunOptions(trace_level=gc.RunOptions.FULL_TRACE)


def _run_all(sg, runs, device, level):
    """Per run: (the fetched values or the exception, every variable's value after it)."""
    out = []
    with gc.Session(graph=sg.graph, device=device, optimize=level) as sess:
        sess.run(sg.init)
        variables = [var for var, _ in sg.variables.values()]
        for j, (fetch, feeds) in enumerate(runs):
            feed_dict = {sg.placeholders[k][0]: value for k, value in feeds.items()}
            # every other run is traced (gc.profiler): it must compute exactly what it would untraced
            traced = dict(options=TRACE, run_metadata=gc.RunMetadata()) if j % 2 else {}
            fetches = [sg.nodes[i].tensor for i in fetch]
            # a histogram summary of every fetched tensor rides along: the same program (its
            # tensors are fetched already), and it must describe exactly the values fetched
            with sg.graph.as_default():
                summary = gc.summary.merge([gc.summary.histogram(f"n{i}", t, collections=[])
                                            for i, t in zip(fetch, fetches) if isinstance(t, gc.Tensor)])
            try:
                *values, serialized = sess.run(fetches + [summary], feed_dict, **traced)
            except gc.GraphcError as e:
                values = e
            else:
                _check_histograms(serialized, [v for v, t in zip(values, fetches) if isinstance(t, gc.Tensor)])
                if traced:
                    _check_trace(traced["run_metadata"])
            out.append((values, sess.run(variables)))
    return out


def _check_trace(md) -> None:
    """A traced run's metadata: its host steps, and kernels that each name their group."""
    host = [n.node_name for n in md.step_stats.dev_stats[1].node_stats]
    assert "run" in host and "fetch results" in host, host
    for n in md.kernels():
        assert n.group and n.op_end_rel_micros >= 0 and n.bytes_read >= 0 and n.bytes_written >= 0


def _check_histograms(serialized: bytes, values) -> None:
    histograms = [v.histo for v in gc.Summary.FromString(serialized).value]
    assert len(histograms) == len(values)
    for h, value in zip(histograms, values):
        x = np.asarray(value, np.float64).reshape(-1)
        assert h.num == x.size and sum(h.bucket) == x.size
        if x.size:
            np.testing.assert_array_equal([h.min, h.max], [x.min(), x.max()])
            np.testing.assert_allclose(h.sum, x.sum(), rtol=1e-9, atol=1e-12)


def _close(actual, expected, what):
    expected = np.asarray(expected, np.float64)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=RTOL, atol=ATOL * scale,
                               err_msg=what)


def _describe(sg, runs) -> str:
    lines = ["graph:"] + [f"  {line}" for line in sg.log]
    lines += [f"  variables: {', '.join(f'{n}{tuple(v.shape)}' for n, (v, _) in sg.variables.items())}"]
    lines += [f"  run {r}: fetch {fetch}" for r, (fetch, _) in enumerate(runs)]
    return "\n".join(lines)


@FUZZ
@given(st.data())
def test_state_and_fusion_agree_with_the_semantics_and_the_reference(data):
    _check_state_graph(data, build_state_graph(data.draw))


# A compiled loop costs a numba compile of its module per graph: fewer examples.
@settings(FUZZ, max_examples=EXAMPLES or (3 if "cuda" in DEVICES else 20))
@given(st.data())
def test_state_with_control_flow_agrees_with_the_semantics_and_the_reference(data):
    _check_state_graph(data, build_state_graph(data.draw, STATE_CONTROL_FLOW_STEPS))


def _check_state_graph(data, sg):
    fetchable = list(range(len(sg.nodes)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    runs = []
    for _ in range(data.draw(st.integers(1, 3))):
        fetch = data.draw(st.lists(st.sampled_from(fetchable), min_size=1, max_size=4, unique=True))
        feeds = {k: rng.uniform(-1, 1, size=shape).astype(np.float32) for k, (_, shape) in enumerate(sg.placeholders)}
        runs.append((fetch, feeds))
    story = _describe(sg, runs)

    reference = _run_all(sg, runs, "reference", 0)
    # 1. the reference follows the semantics (where the oracle models them)
    state = {name: init for name, (_, init) in sg.variables.items()}
    for r, (fetch, feeds) in enumerate(runs):
        got, after = reference[r]
        try:
            expected, final = evaluate_oracle(sg, fetch, feeds, state)
        except RangeViolation as e:
            assert isinstance(got, gc.InvalidArgumentError) and "check_range" in str(got), \
                f"{story}\nrun {r}: a check_range must stop the run ({e}); the reference gave {got!r}"
            expected = None
        if isinstance(got, gc.InvalidArgumentError) and "check_range" in str(got):
            assert expected is None or _a_check_is_unmodelled(sg, fetch, feeds, state), \
                f"{story}\nrun {r}: the reference stopped at a check the oracle passes: {got}"
            # The writes before the check have landed (as in TF1); the runs stop here, so
            # that no device is compared on a state that depends on where it stopped.
            runs, reference = runs[:r + 1], reference[:r + 1]
            break
        if isinstance(got, gc.GraphcError):
            # control dependencies that contradict read-before-write (a cycle): an error
            # before anything runs, which every backend must give too
            assert "cycle" in str(got), f"{story}\nrun {r}: {got!r}"
            continue
        for i, want, have in zip(fetch, expected, got):
            if want is not None:
                _close(have, want, f"{story}\nrun {r}: node #{i} ({sg.nodes[i].kind})")
            elif sg.nodes[i].shape is None:
                assert have is None
        for name, value in zip(sg.variables, after):
            if final[name] is not None:
                _close(value, final[name], f"{story}\nrun {r}: variable {name} after the run")
        # continue from the reference's state where the oracle cannot follow (optimizer updates)
        state = {name: value for name, value in zip(sg.variables, after)}

    # 2. every compiled configuration, and the graph after a meta-graph round trip, agree
    #    with the reference, run by run
    # a quarter of the graphs run their split kernels on the CPU pool's threads at level 2
    on_pool = data.draw(st.sampled_from([True, False, False, False]))
    for device, level in drawn_configs(data.draw, CONFIGS) + [("meta-graph", 0)]:
        with splits_on_the_pool(on_pool and device == "cpu" and level == 2):
            results = _run_imported(sg, runs) if device == "meta-graph" else _run_all(sg, runs, device, level)
        for r, ((got, after), (want, want_after)) in enumerate(zip(results, reference)):
            pooled = " (split kernels on the CPU pool)" if on_pool and device == "cpu" and level == 2 else ""
            where = f"{story}\n{device} optimize={level}{pooled}, run {r}"
            if isinstance(want, Exception):
                assert type(got) is type(want), f"{where}: {got!r} where the reference raised {want!r}"
                assert ("check_range" in str(got)) == ("check_range" in str(want)), f"{where}: {got!r} vs {want!r}"
                continue
            assert not isinstance(got, Exception), f"{where}: {got!r}"
            for i, a, b in zip(runs[r][0], got, want):
                if b is None:
                    assert a is None, where
                else:
                    _close(a, b, f"{where}: node #{i} ({sg.nodes[i].kind})")
            for name, a, b in zip(sg.variables, after, want_after):
                _close(a, b, f"{where}: variable {name} after the run")


def _a_check_is_unmodelled(sg, fetch, feeds, state) -> bool:
    """Whether a check_range that the run executes checks a value the oracle cannot compute
    (after an optimizer update, say): then the oracle cannot say whether the run stops."""
    checks = [i for i in sg.closure(fetch) if sg.nodes[i].kind == "check_range"]
    values, _ = evaluate_oracle(sg, checks, feeds, state)
    return any(v is None for v in values)


def _run_imported(sg, runs):
    """``_run_all`` on the reference, for the graph written with export_meta_graph and read
    back with import_meta_graph into a fresh graph (every node found by its name)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "graph.meta")
        gc.train.export_meta_graph(path, graph=sg.graph)
        graph = gc.Graph()
        with graph.as_default():
            gc.train.import_meta_graph(path)

    def find(x):
        return graph.get_tensor_by_name(x.name) if isinstance(x, gc.Tensor) else graph.get_operation_by_name(x.name)
    by_name = {v.var_name: v for v in gc.global_variables(graph)}
    variables = [by_name[var.var_name] for var, _ in sg.variables.values()]
    out = []
    with gc.Session(graph=graph, device="reference", optimize=0) as sess:
        sess.run(find(sg.init))
        for fetch, feeds in runs:
            feed_dict = {find(sg.placeholders[k][0]): value for k, value in feeds.items()}
            try:
                values = sess.run([find(sg.nodes[i].tensor) for i in fetch], feed_dict)
            except gc.GraphcError as e:
                values = e
            out.append((values, sess.run(variables)))
    return out


# --- the NaN guard under fuzzing -------------------------------------------------------------------------------
# Each graph gets a poison: log of a fed scalar (0 for 1, NaN for -1) added to one of its tensors
# and, drawn, to one variable's write. Runs with the poison fed -1 must stop under the guard, naming
# the poison when nothing else in the run is non-finite, and leave every variable as it was; runs
# without it must give exactly what the same Session options without the guard give.
GUARD_CONFIGS = [("reference", 2)] + [(d, 2) for d in DEVICES if d != "reference"]


@settings(FUZZ, max_examples=EXAMPLES or (3 if "cuda" in DEVICES else 15))
@given(st.data())
def test_the_nan_guard_stops_injected_nans_and_changes_nothing_else(data):
    sg = build_state_graph(data.draw)
    tensors = [i for i, n in enumerate(sg.nodes) if n.shape is not None and isinstance(n.tensor, gc.Tensor)
               and n.tensor.dtype.is_floating]
    with sg.graph.as_default():
        z = gc.placeholder(gc.float32, [], name="poison_feed")
        poison = gc.log(z, name="poison")
        target = data.draw(st.sampled_from(tensors))
        poisoned = [gc.add(sg.nodes[target].tensor, poison, name="poisoned")]
        poisoned_var = None
        if sg.variables and data.draw(st.booleans()):
            poisoned_var = data.draw(st.sampled_from(sorted(sg.variables)))
            var = sg.variables[poisoned_var][0]
            poisoned.append(var.assign_add(gc.zeros_like(var.value()) * poison, name="poisoned_write"))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    runs = []
    for _ in range(data.draw(st.integers(1, 3))):
        fetch = data.draw(st.lists(st.sampled_from(tensors), min_size=0, max_size=3, unique=True))
        feeds = {p: rng.uniform(-1, 1, size=shape).astype(np.float32) for p, shape in sg.placeholders}
        feeds[z] = np.float32(data.draw(st.sampled_from([1.0, -1.0])))
        runs.append(([sg.nodes[i].tensor for i in [target] + fetch] + poisoned, feeds))
    story = _describe(sg, [([target], None)]) + f"\n  poison added to #{target}, write to {poisoned_var}"
    names = sorted(sg.variables)
    variables = [sg.variables[n][0] for n in names]
    for device, level in GUARD_CONFIGS:
        with gc.Session(graph=sg.graph, device=device, optimize=level) as plain, \
                gc.Session(graph=sg.graph, device=device, optimize=level, nan_guard=True) as guarded:
            plain.run(sg.init)
            guarded.run(sg.init)
            for r, (fetches, feeds) in enumerate(runs):
                where = f"{story}\n{device} optimize={level}, run {r} (poison fed {feeds[z]})"
                before = guarded.run(variables)
                want = _outcome(plain, fetches, feeds)
                got = _outcome(guarded, fetches, feeds)
                after = guarded.run(variables)
                plain_after = plain.run(variables)
                if isinstance(got, Exception):
                    for name, a, b in zip(names, before, after):
                        np.testing.assert_array_equal(a, b, err_msg=f"{where}: variable {name} changed")
                if isinstance(got, gc.errors.NumericsError):
                    assert not isinstance(want, Exception), f"{where}: the guard fired where the run raised {want!r}"
                    nonfinite = [k for k, v in enumerate(want) if v is not None and not np.isfinite(v).all()]
                    bad_vars = [n for n, v in zip(names, plain_after) if not np.isfinite(v).all()]
                    assert nonfinite or bad_vars, f"{where}: the guard fired on a finite run: {got}"
                    others = [k for k in nonfinite if k < len(fetches) - len(poisoned)]
                    if feeds[z] < 0 and not others and set(bad_vars) <= {poisoned_var}:
                        assert "log 'poison'" in str(got), f"{where}: {got}"
                    break  # the unguarded Session kept the bad run's writes: the two differ from here
                if isinstance(got, Exception):
                    assert type(got) is type(want), f"{where}: {got!r} where the unguarded run raised {want!r}"
                    break
                assert feeds[z] > 0, f"{where}: the poison did not stop the guarded run"
                assert not isinstance(want, Exception), f"{where}: {want!r} where the guarded run passed"
                for k, (a, b) in enumerate(zip(got, want)):
                    assert (a is None) == (b is None), where
                    if a is not None:
                        assert np.isfinite(a).all(), f"{where}: fetch {k} is not finite under the guard"
                        np.testing.assert_array_equal(a, b, err_msg=f"{where}: fetch {k}")
                for name, a, b in zip(names, after, plain_after):
                    np.testing.assert_array_equal(a, b, err_msg=f"{where}: variable {name} after the run")


def _outcome(sess, fetches, feeds):
    try:
        return sess.run(fetches, feeds)
    except gc.GraphcError as e:
        return e

"""The gradient fuzzer: random float64 graphs (elementwise math with broadcasting,
reductions including logsumexp, max and mean with keepdims, softmax, matmul, conv/pool,
gather, slices and concat) and a scalar loss; gc.gradients of the loss for every input,
fetched alone, in subsets of several fetches, and with the loss or an intermediate value,
on every device and optimization level, against central finite differences of the loss
computed by a NumPy oracle (tests/fuzz_graphs.py).

A wrong gradient hid exactly there: fetched without its loss, at optimize=2 (a fused
logsumexp re-read an input that an in-place output had overwritten)."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import graphc as gc
from fuzz_graphs import (CONTROL_FLOW_STEPS, build_math_graph, drawn_configs, evaluate_oracle, pool_at_full_width,
                         splits_on_the_pool, tiny_collective_buckets)
from support import DEVICES

pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(autouse=True, scope="module")
def _collectives_in_tiny_buckets():
    yield from tiny_collective_buckets()


@pytest.fixture(autouse=True, scope="module")
def _pool_at_full_width():
    yield from pool_at_full_width()


EXAMPLES = int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "0"))
# CI runs a smoke amount (60 graphs took about 190 s of a worker on 2 cores; the CUDA
# simulator interprets every kernel in Python, 12 graphs took 80 s); runs with
# GRAPHC_FUZZ_EXAMPLES set take more (400 found the reassociation bug of the strict kernels).
FUZZ = settings(max_examples=EXAMPLES or (6 if "cuda" in DEVICES else 60), deadline=None,
                derandomize=not EXAMPLES, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
CONFIGS = [(d, level) for d in DEVICES for level in ((0, 1, 2) if d in ("cpu", "reference") else (0, 2))]
EPS = 1e-6


@pytest.fixture(autouse=True, scope="module")
def _filter_gradients_in_many_chunks():
    """The CPU filter gradient works a chunk of output rows at a time (FILTER_GRADIENT_CHUNK
    elements of patches); at one element a chunk is one row, so the fuzz graphs' small images
    take several chunks and a wrong sum over chunks shows."""
    from graphc.codegen.emit import ops
    saved, ops.FILTER_GRADIENT_CHUNK = ops.FILTER_GRADIENT_CHUNK, 1
    yield
    ops.FILTER_GRADIENT_CHUNK = saved


def _finite_differences(sg, loss, feeds: dict) -> dict:
    """d loss / d feed k, by central differences of the oracle's loss, in float64."""
    grads = {}
    for k, x in feeds.items():
        g = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            values = []
            for sign in (1, -1):
                shifted = dict(feeds)
                shifted[k] = x.copy()
                shifted[k][index] += sign * EPS
                (value,), _ = evaluate_oracle(sg, [loss], shifted, {})
                values.append(float(value))
            g[index] = (values[0] - values[1]) / (2 * EPS)
        grads[k] = g
    return grads


@FUZZ
@given(st.data())
def test_gradients_match_finite_differences_in_every_fetch_set(data):
    _check_gradients_of_a_random_graph(data, build_math_graph(data.draw), CONFIGS)


# Every compiled loop costs a numba compile of its module: fewer examples, the compiled
# targets at the default level (the reference at every level).
FUZZ_CONTROL_FLOW = settings(FUZZ, max_examples=EXAMPLES or (3 if "cuda" in DEVICES else 10))
CONTROL_FLOW_CONFIGS = [(d, level) for d, level in CONFIGS if d == "reference" or level == 2]


@FUZZ_CONTROL_FLOW
@given(st.data())
def test_gradients_through_control_flow_match_finite_differences(data):
    """The same, with cond and while_loop among the steps (bodies capturing outer nodes)."""
    _check_gradients_of_a_random_graph(data, build_math_graph(data.draw, steps=CONTROL_FLOW_STEPS),
                                       CONTROL_FLOW_CONFIGS)


def _check_gradients_of_a_random_graph(data, sg, configs):
    loss = sg.loss
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    feeds = {k: rng.uniform(-1, 1, size=shape) for k, (_, shape) in enumerate(sg.placeholders)}
    (loss_value,), _ = evaluate_oracle(sg, [loss], feeds, {})
    expected = _finite_differences(sg, loss, feeds)
    with sg.graph.as_default():
        grads = gc.gradients(sg.nodes[loss].tensor, [p for p, _ in sg.placeholders], unconnected_gradients="zero")
    middle = data.draw(st.sampled_from(range(len(sg.placeholders), len(sg.nodes))))
    names = [f"d/dp{k}" for k in range(len(grads))]
    fetch_sets = [[k] for k in range(len(grads))] + [list(range(len(grads)))]
    fetch_sets += [["loss"] + list(range(len(grads))), [len(grads) - 1, "middle"]]
    story = "graph:\n" + "\n".join(f"  {line}" for line in sg.log)
    feed_dict = {p: feeds[k] for k, (p, _) in enumerate(sg.placeholders)}
    # a quarter of the graphs run their split kernels on the CPU pool's threads at level 2
    on_pool = data.draw(st.sampled_from([True, False, False, False]))
    for device, level in drawn_configs(data.draw, configs):
        with splits_on_the_pool(on_pool and device == "cpu" and level == 2), \
                gc.Session(graph=sg.graph, device=device, optimize=level) as sess:
            for fetch in fetch_sets:
                tensors = [sg.nodes[loss].tensor if f == "loss" else sg.nodes[middle].tensor if f == "middle"
                           else grads[f] for f in fetch]
                pooled = " (split kernels on the CPU pool)" if on_pool and device == "cpu" and level == 2 else ""
                where = f"{story}\n{device} optimize={level}{pooled}, fetching {fetch}"
                try:
                    got = sess.run(tensors, feed_dict)
                except Exception as e:  # a crash names the graph too
                    raise AssertionError(f"{type(e).__name__}: {e}\n{where}") from e
                for f, value in zip(fetch, got):
                    if f == "loss":
                        np.testing.assert_allclose(value, loss_value, rtol=1e-9, atol=1e-12, err_msg=where)
                    elif f != "middle":
                        np.testing.assert_allclose(value, expected[f], rtol=1e-5, atol=1e-6,
                                                   err_msg=f"{where}: {names[f]}")

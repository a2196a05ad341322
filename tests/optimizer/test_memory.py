"""Memory planning: liveness, reuse, in place, pinned fetches, and the savings it reports."""
import numpy as np

import graphc as gc
from graphc import zoo
from graphc.optimizer.memory import check_plan, plan_memory
from graphc.optimizer.pipeline import optimize
from graphc.optimizer.program import lower
from graphc.optimizer.symbolic import SymbolicShapes


def _plan(graph, fetches, feeds, **kwargs):
    return optimize(lower(graph, fetches, feeds), 2, **kwargs).program


def _binding(program, batch):
    sym = SymbolicShapes(program)
    return {d: batch for v in program.types for d in sym.shape(v) if isinstance(d, tuple)}


def test_mlp_step_planning_cuts_peak_bytes_by_30_percent():
    m = zoo.mlp()
    program = _plan(m.graph, [m.train_op, m.loss], [m.x, m.labels])
    plan = program.buffers
    binding = _binding(program, 64)
    peak, naive = plan.peak_bytes(binding), plan.naive_bytes(binding)
    assert peak <= 0.70 * naive, f"planned {peak} vs naive {naive}"
    unplanned = plan_memory(program, reuse=False)[0].buffers
    assert unplanned.peak_bytes(binding) == naive


def test_plans_of_the_zoo_are_valid():
    for build in (zoo.mlp, zoo.lenet):
        m = build()
        program = _plan(m.graph, [m.train_op, m.loss, m.accuracy, m.logits], [m.x, m.labels])
        check_plan(program)  # raises if two live values share a buffer
        assert program.buffers.inplace, "elementwise chains should run in place"


def test_fetched_values_are_never_reused(graph):
    x = gc.placeholder(gc.float32, (None, 4), name="x")
    a = gc.exp(x)
    b = gc.sin(gc.reduce_sum(a, 1, keepdims=True) + x)
    c = gc.cos(b * 2.0)
    program = _plan(graph, [a, c], [x])
    plan = program.buffers
    for v in program.fetches:
        root = plan.root(v)
        buffer = plan.buffer_of[root]
        assert buffer in plan.pinned
        assert [u for u, bb in plan.buffer_of.items() if bb == buffer] == [root]


def test_variables_and_feeds_are_not_planned(graph):
    x = gc.placeholder(gc.float32, (None, 4), name="x")
    W = gc.Variable(np.ones((4, 4), np.float32), name="W")
    loss = gc.reduce_sum(gc.square(x @ W))
    train = gc.train.GradientDescent(0.1).minimize(loss)
    program = _plan(graph, [train, loss], [x])
    planned = set(program.buffers.buffer_of)
    assert 0 not in planned  # the feed
    for ins in program.instrs:
        if ins.op in ("read_variable", "assign", "assign_sub", "assign_add", "const"):
            assert not set(ins.outputs) & planned


def test_in_place_elementwise_when_the_input_dies(graph):
    x = gc.placeholder(gc.float32, (None, 8), name="x")
    h = gc.reduce_sum(x, 1, keepdims=True) * x      # a reduce kernel's output ...
    y = gc.exp(gc.matmul(h, gc.constant(np.eye(8, dtype=np.float32))) * 3.0)  # ... dies in a matmul epilogue
    z = gc.reduce_max(y, axis=1) + gc.reduce_min(y, axis=1)
    program = _plan(graph, [z], [x])
    check_plan(program)
    assert program.buffers.inplace or len(program.buffers.capacity) < len(program.buffers.sizes)


def test_results_with_and_without_planning_agree(graph, device):
    m = zoo.mlp(graph=graph)
    rng = np.random.default_rng(0)
    xb = rng.random((32, 8, 8, 1)).astype(np.float32)
    yb = rng.integers(0, 10, 32)
    results = []
    for disabled in ((), ("plan_memory",), ("fuse", "plan_memory")):
        with gc.Session(graph=graph, device=device, disable_passes=disabled) as sess:
            sess.run(m.init)
            losses = [sess.run([m.train_op, m.loss], {m.x: xb, m.labels: yb})[1] for _ in range(3)]
            results.append((losses, sess.run(m.logits, {m.x: xb})))
    for losses, logits in results[1:]:
        np.testing.assert_allclose(losses, results[0][0], rtol=1e-5)
        np.testing.assert_allclose(logits, results[0][1], rtol=1e-5, atol=1e-6)

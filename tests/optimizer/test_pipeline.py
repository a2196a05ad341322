"""The pass pipeline: levels, disabling passes by name, reports, folding, CSE, explain()."""
import io

import numpy as np
import pytest

import graphc as gc
from graphc.optimizer import pipeline
from graphc.optimizer.pipeline import PASS_NAMES, optimize
from graphc.optimizer.program import lower


def _graph_with_redundancy(graph):
    x = gc.placeholder(gc.float32, (None, 4), name="x")
    a = gc.exp(x) * 1.0
    b = gc.exp(x) * 1.0          # the same again: CSE merges it
    k = gc.constant(np.arange(4, dtype=np.float32)) * 2.0 + 1.0   # folds to a constant
    return x, gc.identity(a + b + k)


def test_levels(graph):
    x, y = _graph_with_redundancy(graph)
    program = lower(graph, [y], [x])
    o0, o1, o2 = (optimize(program, level) for level in (0, 1, 2))
    assert [r.name for r in o0.reports] == ["order_state"]  # the one pass correctness needs
    assert "fuse" not in [r.name for r in o1.reports] and "simplify" in [r.name for r in o1.reports]
    assert [r.name for r in o2.reports][-2:] == ["fuse", "plan_memory"]
    assert len(o1.program.instrs) < len(o0.program.instrs)
    assert o2.program.buffers is not None and o1.program.buffers is None
    assert o2.kernel_count < o1.kernel_count


def test_reports_count_rewrites_by_rule(graph):
    x, y = _graph_with_redundancy(graph)
    from collections import Counter
    rewrites = {}
    for r in optimize(lower(graph, [y], [x]), 1).reports:  # cse and folding run twice: add them up
        rewrites.setdefault(r.name, Counter()).update(r.rewrites)
    assert rewrites["cse"]["merge_exp"] >= 1
    assert rewrites["simplify"]["multiply_one"] >= 1
    assert rewrites["simplify"]["remove_identity"] == 1
    assert any(k.startswith("fold_") for k in rewrites["constant_fold"])
    first = next(r for r in optimize(lower(graph, [y], [x]), 1).reports if r.name == "cse")
    assert first.nodes_after < first.nodes_before
    assert "cse:" in str(first) and "merge_exp" in str(first)


def test_passes_can_be_switched_off_by_name(graph):
    x, y = _graph_with_redundancy(graph)
    program = lower(graph, [y], [x])
    names = [r.name for r in optimize(program, 2, disabled={"cse", "fuse"}).reports]
    assert "cse" not in names and "fuse" not in names and "simplify" in names
    with pytest.raises(gc.CompileError, match="unknown pass"):
        optimize(program, 2, disabled={"no_such_pass"})
    with pytest.raises(ValueError, match="unknown pass"):
        gc.Session(graph=graph, disable_passes=("nope",))
    assert {"canonicalize", "constant_fold", "cse", "merge_loop_histories", "simplify", "stabilize", "fuse",
            "plan_memory", "project_before_the_loop"} == PASS_NAMES


def test_session_levels_give_equal_results(graph, device):
    x, y = _graph_with_redundancy(graph)
    feed = {x: np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)}
    results = []
    for level in (0, 1, 2):
        with gc.Session(graph=graph, device=device, optimize=level) as sess:
            results.append(sess.run(y, feed))
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6)
    np.testing.assert_allclose(results[2], results[0], rtol=1e-6)


def test_constant_folding_has_a_size_cap(graph):
    big = gc.fill((pipeline.FOLD_MAX_ELEMENTS + 1,), 1.5)
    small = gc.fill((8,), 2.5)
    program = optimize(lower(graph, [big, small], []), 1).program
    ops = [ins.op for ins in program.instrs]
    assert ops.count("fill") == 1  # the big one stays an op; the small one is a constant now
    consts = [ins.attrs["value"] for ins in program.instrs if ins.op == "const"]
    assert all(c.size <= pipeline.FOLD_MAX_ELEMENTS for c in consts)


def test_shape_of_a_static_tensor_folds(graph):
    x = gc.placeholder(gc.float32, (3, 4), name="x")
    s = gc.shape(x) * 2
    program = optimize(lower(graph, [s], [x]), 1).program
    assert [ins.op for ins in program.instrs] == ["const"]


def test_cse_never_merges_random_or_stateful_ops(graph):
    u1 = gc.random_uniform((4,), seed=1)
    u2 = gc.random_uniform((4,), seed=1)
    v = gc.Variable(0.0, name="v")
    inc1, inc2 = v.assign_add(1.0), v.assign_add(1.0)
    program = optimize(lower(graph, [u1, u2, inc1, inc2], []), 1).program
    ops = [ins.op for ins in program.instrs]
    assert ops.count("random_uniform") == 2 and ops.count("assign_add") == 2


def test_explain_shows_passes_groups_and_buffers(graph):
    x = gc.placeholder(gc.float32, (None, 8), name="x")
    W = gc.Variable(gc.init.glorot_uniform((8, 4)), name="W")
    loss = gc.reduce_mean(gc.square(gc.nn.relu(x @ W) - 1.0))
    train = gc.train.GradientDescent(0.1).minimize(loss)
    out = io.StringIO()
    with gc.Session(graph=graph) as sess:
        sess.run(gc.global_variables_initializer())
        text = sess.explain([train, loss], {x: np.ones((16, 8), np.float32)}, file=out)
    assert out.getvalue().strip() == text.strip()
    for section in ("=== lowered", "=== canonicalize", "=== cse", "=== fuse", "=== final program",
                    "=== kernel groups", "=== buffer plan", "planned peak", "without planning"):
        assert section in text, section
    assert "kernel " in text and "matmul" in text and "test_pipeline.py" in text

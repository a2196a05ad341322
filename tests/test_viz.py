"""gc.viz: DOT pictures of the user's graph (ops, types, shapes, the user's line, name scopes
as clusters or collapsed) and of the compiled program (kernel groups as clusters, one per
kernel the Session runs), render to a .dot file without Graphviz, and `python -m graphc graph`."""
import os
import subprocess
import sys

import numpy as np
import pytest

import graphc as gc


def _model():
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    with gc.name_scope("layer1"):
        w = gc.Variable(np.ones((3, 4), np.float32), name="w")
        h = gc.nn.relu(gc.matmul(x, w))
    with gc.name_scope("head"):
        y = gc.nn.softmax(h * 2.0, name="probs")
    return x, y


def test_the_user_graph_shows_ops_types_shapes_lines_and_scopes(graph):
    x, y = _model()
    line = f"test_viz.py:{_model.__code__.co_firstlineno + 3}"
    dot = gc.viz.to_dot(graph)
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    assert '"cluster_layer1"' in dot and '"cluster_head"' in dot
    assert "probs\\nsoftmax\\nfloat32[?, 4]" in dot
    assert line in dot  # the relu/matmul line, as the tooltip of its ops
    assert '"op:x" -> "op:layer1/MatMul" [label="float32[?, 3]"]' in dot
    collapsed = gc.viz.to_dot([y], collapse_scopes=True)
    assert "cluster_" not in collapsed and '"scope:layer1"' in collapsed and '"scope:layer1" -> "scope:head"' in collapsed
    assert gc.viz.to_dot([x]).count("[label=") == 1  # fetches draw only what they need


def test_the_optimized_program_draws_one_cluster_per_kernel(graph):
    x, y = _model()
    with gc.Session(graph=graph, device="reference") as sess:
        sess.run(gc.global_variables_initializer())
        dot = gc.viz.to_dot(y, session=sess, optimized=True)
        kernels = sess._optimized([y], [x], {}).kernel_count
    assert dot.count('label="kernel ') == kernels >= 2
    with pytest.raises(ValueError, match="session="):
        gc.viz.to_dot(y, optimized=True)


def test_render_and_the_command_line(graph, tmp_path):
    x, y = _model()
    path = gc.viz.render(graph, tmp_path / "g.dot")
    assert open(path).read() == gc.viz.to_dot(graph)
    with gc.Session(graph=graph, device="reference") as sess:
        sess.run(gc.global_variables_initializer())
        model = gc.export.save_model(sess, str(tmp_path / "m.gcm"), inputs={"x": x}, outputs={"y": y})
    done = subprocess.run([sys.executable, "-m", "graphc", "graph", model, "--out", str(tmp_path / "m.dot")],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "softmax" in (tmp_path / "m.dot").read_text()
    bad = tmp_path / "bad.gcm"
    bad.write_bytes(b"nope")
    done = subprocess.run([sys.executable, "-m", "graphc", "graph", str(bad)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))
    assert done.returncode == 1 and "invalid" in done.stderr
    try:
        import graphviz  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"graphc\[viz\]"):
            gc.viz.render(graph, tmp_path / "g.svg")

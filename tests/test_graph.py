"""The user's graph: default graphs, names and scopes, lookups, control dependencies,
finalize, source locations and graph mixing."""
import os
import threading

import numpy as np
import pytest

import graphc as gc

THIS_FILE = os.path.basename(__file__)


def test_default_graph_and_as_default():
    outer = gc.get_default_graph()
    g = gc.Graph()
    with g.as_default() as entered:
        assert entered is g
        assert gc.get_default_graph() is g
        c = gc.constant(1.0)
    assert c.graph is g
    assert gc.get_default_graph() is outer


def test_reset_default_graph_replaces_it_and_refuses_inside_a_block():
    before = gc.get_default_graph()
    gc.reset_default_graph()
    assert gc.get_default_graph() is not before
    with gc.Graph().as_default():
        with pytest.raises(gc.GraphError, match="reset_default_graph"):
            gc.reset_default_graph()


def test_default_graph_is_per_thread_inside_as_default(graph):
    seen = {}

    def worker():
        seen["graph"] = gc.get_default_graph()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["graph"] is not graph


def test_tensor_and_operation_basics(graph):
    x = gc.placeholder(gc.float32, shape=(None, 3), name="x")
    y = x * 2.0
    assert isinstance(x, gc.Tensor) and isinstance(x.op, gc.Operation)
    assert x.name == "x:0" and x.op.name == "x" and x.op.type == "placeholder"
    assert x.shape == (None, 3) and x.shape.as_list() == [None, 3] and x.dtype is gc.float32
    assert x.get_shape().rank == 2 and not x.shape.is_fully_defined()
    assert y.op.inputs[0] is x
    assert y.op in x.consumers()
    assert x.graph is graph and y.op.graph is graph


def test_unique_names_and_name_scopes(graph):
    a = gc.constant(1.0, name="c")
    b = gc.constant(2.0, name="c")
    assert (a.op.name, b.op.name) == ("c", "c_1")
    with gc.name_scope("layer") as scope:
        assert scope == "layer/"
        d = gc.constant(3.0, name="c")
        with gc.name_scope("inner"):
            e = gc.add(d, d)
    with gc.name_scope("layer"):  # reopening makes a new, unique scope
        f = gc.constant(4.0, name="c")
    with gc.name_scope("layer/"):  # a trailing slash re-enters exactly
        h = gc.constant(5.0, name="h")
    assert d.op.name == "layer/c"
    assert e.op.name == "layer/inner/add"
    assert f.op.name == "layer_1/c"
    assert h.op.name == "layer/h"
    assert d.name == "layer/c:0"


def test_get_tensor_and_operation_by_name(graph):
    with gc.name_scope("s"):
        x = gc.placeholder(gc.float32, (2,), name="x")
    parts = gc.split(gc.constant(np.arange(4.0)), 2)
    assert graph.get_tensor_by_name("s/x:0") is x
    assert graph.get_operation_by_name("s/x") is x.op
    assert graph.get_tensor_by_name(parts[1].name) is parts[1]
    with pytest.raises(gc.GraphError, match="did you mean 's/x'"):
        graph.get_operation_by_name("s/y")
    with pytest.raises(gc.GraphError, match="has 1 output"):
        graph.get_tensor_by_name("s/x:3")
    with pytest.raises(gc.GraphError, match="not a tensor name"):
        graph.get_tensor_by_name("s/x")


def test_control_dependencies_group_identity_no_op(graph, evaluate):
    v = gc.Variable(0.0, name="v")
    inc = v.assign_add(1.0)
    with gc.control_dependencies([inc]):
        after = gc.identity(v.read_value() * 10.0)
        n = gc.no_op(name="after_inc")
    assert inc.op in after.op.control_inputs
    assert n.control_inputs == (inc.op,)
    with gc.control_dependencies(None):
        free = gc.constant(1.0)
    assert free.op.control_inputs == ()
    g2 = gc.group(inc, [n], name="both")
    assert isinstance(g2, gc.Operation) and g2.name == "both"
    assert set(g2.control_inputs) == {inc.op, n}
    out = evaluate({"after": after, "grouped": g2})
    assert out["grouped"] is None
    assert out["after"] == pytest.approx(10.0)


def test_finalize_forbids_new_nodes(graph):
    x = gc.constant(1.0)
    graph.finalize()
    assert graph.finalized
    with pytest.raises(gc.GraphError, match=r"graph is finalized") as err:
        gc.add(x, x)
    assert THIS_FILE in str(err.value)


def test_nodes_record_the_users_line(graph):
    line = _line_of_next()
    x = gc.placeholder(gc.float32, (None,), name="x")
    y = gc.nn.relu(x)  # built inside graphc, but located here
    assert x.op.location.endswith(f"{THIS_FILE}:{line}")
    assert y.op.location.endswith(f"{THIS_FILE}:{line + 1}")
    W = gc.Variable(gc.zeros((2,)), name="W")
    assert THIS_FILE in W.location and THIS_FILE in W.value().op.location


def _line_of_next():
    import sys
    return sys._getframe(1).f_lineno + 1


def test_mixing_graphs_names_both(graph):
    a = gc.constant(1.0, name="a")
    other = gc.Graph()
    with other.as_default():
        b = gc.constant(2.0, name="b")
    with pytest.raises(gc.GraphError) as err:
        gc.add(a, b)
    msg = str(err.value)
    assert "'a:0'" in msg and "'b:0'" in msg and repr(graph) in msg and repr(other) in msg
    assert THIS_FILE in msg


def test_tensor_refuses_python_truth_iteration_and_numpy_conversion(graph):
    x = gc.placeholder(gc.float32, (3,), name="x")
    with pytest.raises(TypeError, match="truth value"):
        bool(x)
    with pytest.raises(TypeError, match="not iterable"):
        list(x)
    with pytest.raises(TypeError, match="NumPy"):
        np.asarray(x)
    # ndarray on the left defers to the tensor
    y = np.ones(3, dtype=np.float32) + x
    assert isinstance(y, gc.Tensor) and y.op.type == "add"


def test_tensors_are_hashable_by_identity(graph):
    x = gc.placeholder(gc.float32, (3,))
    y = gc.placeholder(gc.float32, (3,))
    d = {x: 1, y: 2}
    assert d[x] == 1 and d[y] == 2
    assert (x == x) is True and (x == y) is False


def test_shape_error_names_op_inputs_and_line(graph):
    a = gc.placeholder(gc.float32, (3, 4), name="a")
    b = gc.placeholder(gc.float32, (5,), name="b")
    with pytest.raises(gc.ShapeError) as err:
        gc.add(a, b, name="bad_add")
    msg = str(err.value)
    assert "add 'bad_add'" in msg and "(3, 4)" in msg and "(5,)" in msg
    assert "a:0 float32" in msg and "b:0 float32" in msg and THIS_FILE in msg


def test_dtype_error_names_op_and_line(graph):
    flag = gc.placeholder(gc.bool_, (3,), name="flag")
    with pytest.raises(gc.DTypeError) as err:
        gc.negative(flag)
    assert "negative" in str(err.value) and "bool" in str(err.value) and THIS_FILE in str(err.value)


def test_gc_shape_is_the_run_time_shape(graph, evaluate):
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    s = gc.shape(x)
    assert s.shape == (2,) and s.dtype is gc.int64
    out = evaluate([s, gc.size(x), gc.rank(x)], {x: np.zeros((5, 3))})
    np.testing.assert_array_equal(out[0], [5, 3])
    assert out[1] == 15 and out[2] == 2

"""Lowering a graph into a Program: pruning, feeds cutting the graph, effect ordering,
validation, and the user's graph staying untouched."""
import numpy as np
import pytest

import graphc as gc
from graphc.optimizer.program import lower


def _ops(program):
    return [ins.op for ins in program.instrs]


def test_pruning_keeps_only_what_fetches_need(graph):
    x = gc.placeholder(gc.float32, (None,), name="x")
    used = gc.exp(x)
    gc.log(x)  # not fetched
    gc.constant(5.0, name="unused")
    program = lower(graph, [used], [x])
    assert _ops(program) == ["exp"]
    assert program.feeds == (0,) and program.names[0] == "x:0"
    program.validate()


def test_fed_tensors_cut_the_graph(graph):
    x = gc.placeholder(gc.float32, (3,), name="x")
    h = gc.tanh(x, name="h")
    y = gc.sigmoid(h)
    program = lower(graph, [y], [h])
    assert _ops(program) == ["sigmoid"]  # neither tanh nor the placeholder is needed


def test_control_dependencies_are_kept_and_no_ops_dropped(graph):
    v = gc.Variable(0.0, name="v")
    inc = v.assign_add(1.0)
    with gc.control_dependencies([gc.group(inc)]):
        out = gc.constant(2.0) * 3.0
    program = lower(graph, [out], [])
    ops = _ops(program)
    assert "assign_add" in ops and "no_op" not in ops and "variable" not in ops


def test_write_after_reads_gets_an_effect_edge(graph):
    v = gc.Variable(1.0, name="v")
    loss = v * 2.0
    upd = v.assign(3.0)
    program = lower(graph, [loss, upd], [])
    reads = [ins for ins in program.instrs if ins.op == "read_variable"]
    write = next(ins for ins in program.instrs if ins.op == "assign")
    assert reads and reads[0].outputs[0] in write.after
    order = [ins.op for ins in program.instrs]
    assert order.index("read_variable") < order.index("assign")


def test_lowering_never_changes_the_users_graph(graph):
    x = gc.placeholder(gc.float32, (2,), name="x")
    y = gc.exp(x) + 1.0
    before = [(op.name, op.type, op.inputs, op.control_inputs) for op in graph.get_operations()]
    lower(graph, [y], [x])
    with gc.Session(graph=graph) as sess:
        sess.run(y, {x: np.ones(2)})
    after = [(op.name, op.type, op.inputs, op.control_inputs) for op in graph.get_operations()]
    assert before == after


def test_validate_catches_a_broken_program(graph):
    x = gc.placeholder(gc.float32, (2,), name="x")
    program = lower(graph, [gc.exp(x)], [x])
    bad_instr = program.instrs[0].__class__(op="exp", inputs=(99,), outputs=program.instrs[0].outputs,
                                            attrs=program.instrs[0].attrs)
    broken = program.__class__((bad_instr,), program.types, program.feeds, program.fetches)
    with pytest.raises(gc.GraphcError, match="before it is defined"):
        broken.validate()


def test_program_text_is_readable(graph):
    x = gc.placeholder(gc.float32, (None, 2), name="x")
    y = gc.reduce_sum(x * 2.0, axis=1, name="rowsum")
    text = lower(graph, [y], [x]).format()
    assert "feed x:0" in text and "reduce_sum" in text and "rowsum" in text and "test_program.py" in text

"""Issue 15's ops beyond their registry samples (tests/op_samples.py runs those on every
device, with gradients, ONNX and native export): einsum's forms against np.einsum with
finite-difference gradients, the segment ops' constant-ids rule, and build errors naming the
op and the caller's line."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from support import Cases, Feeds, build_error, check

rng = np.random.default_rng(15)

EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),           # matmul
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),  # batched
    ("i,j->ij", [(3,), (4,)]),                 # outer
    ("ij->ji", [(3, 4)]),                      # transpose
    ("ij->", [(3, 4)]),                        # sum
    ("ij", [(3, 4)]),                          # implicit output
    ("ij,jk", [(3, 4), (4, 2)]),               # implicit output, two operands
    ("i,i->", [(4,), (4,)]),                   # dot
    ("...ij,jk->...ik", [(2, 3, 3, 4), (4, 2)]),
    ("...i,...i->...", [(2, 1, 3), (4, 3)]),   # broadcasting ellipsis
    ("bqhd,bkhd->bhqk", [(2, 3, 2, 4), (2, 5, 2, 4)]),
    ("ab,bc,cd->ad", [(2, 3), (3, 4), (4, 2)]),
    ("ij,ij->ij", [(3, 4), (1, 4)]),
    ("ijk,ikl->jl", [(2, 3, 4), (2, 4, 2)]),
]


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "none_dims"])
def test_einsum_matches_numpy(graph, evaluate, dynamic):
    f = Feeds()
    c = Cases()
    for eq, shapes in EINSUM:
        arrays = [rng.standard_normal(s) for s in shapes]
        ins = [f(a, shape=[None] * a.ndim if dynamic else None) for a in arrays]
        out = gc.einsum(eq, *ins)
        want = np.einsum(eq, *arrays)
        c.add(eq, out, want, static=(None,) * want.ndim if dynamic and out.ndim else None)
    check(evaluate, c, f)


def test_einsum_lowers_a_contraction_to_one_matmul(graph):
    a, b = gc.placeholder(gc.float32, (5, 3, 4)), gc.placeholder(gc.float32, (5, 4, 2))
    gc.einsum("bij,bjk->bik", a, b)
    assert [op.type for op in graph.get_operations()].count("matmul") == 1


@pytest.mark.parametrize("eq,shapes", [e for e in EINSUM if e[0] in (
    "ij,jk->ik", "bij,bjk->bik", "i,j->ij", "...i,...i->...", "ab,bc,cd->ad", "ij,ij->ij")])
def test_einsum_gradients_match_finite_differences(eq, shapes):
    arrays = [rng.standard_normal(s) for s in shapes]
    gc.test_utils.check_gradients(lambda *xs: gc.einsum(eq, *xs), arrays)


def test_einsum_errors_name_the_op_and_line(graph):
    x = gc.placeholder(gc.float32, (3, 3))
    y = gc.placeholder(gc.float32, (5, 6))
    build_error(gc.ShapeError, lambda: gc.einsum("ii->i", x), "einsum", "diagonals and traces")
    build_error(gc.ShapeError, lambda: gc.einsum("ij,jk->ik", x), "einsum", "2 operand(s) but 1 input")
    build_error(gc.ShapeError, lambda: gc.einsum("ij->k", x), "einsum", "'k'", "in no input")
    build_error(gc.ShapeError, lambda: gc.einsum("ijk->i", x), "einsum", "rank 2")
    build_error(gc.ShapeError, lambda: gc.einsum("ij,jk->ik", x, y), "einsum", "label 'j'", "3", "5")
    build_error(gc.ShapeError, lambda: gc.einsum("i2->i", x), "einsum", "labels are letters")


def test_segment_sum_needs_constant_ids(graph):
    data = gc.placeholder(gc.float32, (4, 2))
    fed = gc.placeholder(gc.int32, (4,))
    build_error(gc.ShapeError, lambda: gc.segment_sum(data, fed), "segment_sum", "must be a constant",
                "unsorted_segment_sum")
    build_error(gc.ShapeError, lambda: gc.segment_mean(data, [0, 2, 1, 1]), "segment_mean", "sorted")
    build_error(gc.ShapeError, lambda: gc.segment_sum(data, [0, 1]), "segment_sum", "2 ids")


def test_segment_ops_from_a_constant_tensor(graph, evaluate):
    f = Feeds()
    d = rng.standard_normal((5, 2)).astype(np.float32)
    ids = np.array([0, 0, 1, 3, 3])
    x = f(d)
    c = Cases()
    c.add("sum", gc.segment_sum(x, gc.constant(ids)), np.stack([d[:2].sum(0), d[2], 0 * d[0], d[3:].sum(0)]))
    c.add("mean", gc.segment_mean(x, gc.constant(ids)), np.stack([d[:2].mean(0), d[2], 0 * d[0], d[3:].mean(0)]))
    check(evaluate, c, f, rtol=1e-6, atol=1e-6)


def test_run_time_errors(graph, evaluate):
    data = gc.placeholder(gc.float64, (3,))
    ids = gc.placeholder(gc.int64, (3,))
    with pytest.raises(gc.InvalidArgumentError, match="segment id 7 is out of range for 2 segments"):
        evaluate(gc.unsorted_segment_sum(data, ids, 2), {data: np.ones(3), ids: np.array([0, 7, 1])})


def test_builder_errors(graph):
    x = gc.placeholder(gc.float32, (3, 4))
    build_error(gc.ShapeError, lambda: gc.cumsum(x, axis=2), "cumsum", "axis")
    build_error(gc.ShapeError, lambda: gc.reverse(x, [1, -1]), "reverse", "twice")
    build_error(gc.ShapeError, lambda: gc.nn.top_k(x, k=5), "top_k", "larger than the last dim")
    build_error(gc.ShapeError, lambda: gc.sort(x, direction="UP"), "sort", "direction")
    build_error(gc.DTypeError, lambda: gc.nn.in_top_k(x, x, 1), "in_top_k", "targets")


def test_top_k_and_sort_on_none_dims(graph, evaluate):
    f = Feeds()
    v = rng.standard_normal((3, 6))
    x = f(v, shape=(None, None))
    values, indices = gc.nn.top_k(x, k=2)
    c = Cases()
    c.add("values", values, -np.sort(-v, -1)[:, :2], static=(None, 2))
    c.add("indices", indices, np.argsort(-v, -1)[:, :2].astype(np.int32), static=(None, 2))
    c.add("sort", gc.sort(x, axis=0), np.sort(v, 0), static=(None, None))
    c.add("cumsum", gc.cumsum(x, axis=1, exclusive=True), np.cumsum(v, 1) - v, static=(None, None))
    check(evaluate, c, f, rtol=1e-12, atol=1e-12)

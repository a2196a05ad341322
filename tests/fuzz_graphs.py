"""Random graphs for the differential fuzzers (tests/test_fuzz_state.py and
tests/autodiff/test_fuzz_gradients.py), each with an oracle of its meaning written here in
plain NumPy, independent of graphc's own reference implementations.

A graph is built step by step from hypothesis draws. Every step adds a ``Node``: the graphc
tensor (or operation), its static shape, the nodes it depends on, and how to compute its
value from theirs. The state fuzzer's oracle is the README's variable semantics, modelled
directly: the writes to one variable form a chain (each depends on the one before: the
generator makes them), a write's result is the value it wrote, and a read sees the value of
the last write in that chain it depends on, or the run's starting value if none. Optimizer
updates are not modelled: a variable they write is "opaque" from that write on, and its
values are then only compared between backends.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import contextlib
import os

import numpy as np
from hypothesis import strategies as st

import graphc as gc
from graphc.ops.registry import OPS

# The shapes values take. (2, 3) is the main space; the others broadcast into it.
SHAPES = [(2, 3), (2, 1), (1, 3), (3,), (2,), (1, 1), (1,), ()]


@dataclass
class Node:
    tensor: object            # gc.Tensor, or gc.Operation (value None)
    shape: Optional[tuple]    # None for an operation
    deps: frozenset           # indices of every node this one runs after (data and control)
    compute: Callable         # (values: dict index -> array, versions: dict var -> list) -> array
    kind: str
    var: Optional[str] = None  # the variable a read or write touches
    chain: int = 0             # a write: its place in its variable's chain (1, 2, ...)
    opaque: bool = False       # a value the oracle does not model
    inputs: tuple = ()         # the nodes whose values ``compute`` reads


@dataclass
class StateGraph:
    graph: object
    nodes: list = field(default_factory=list)
    variables: dict = field(default_factory=dict)   # name -> (gc.Variable, initial value)
    placeholders: list = field(default_factory=list)  # (tensor, shape fed)
    chains: dict = field(default_factory=dict)      # var -> node indices of its writes, in order
    opaque_from: dict = field(default_factory=dict)  # var -> first chain index the oracle cannot model
    log: list = field(default_factory=list)          # what was built, for failure reports
    init: object = None                              # the graph's variable initializer
    loss: Optional[int] = None                       # a math graph's scalar loss

    def add(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def value(self, tensor, shape, inputs, compute, kind, after=(), opaque=False, note="") -> int:
        """Add a node computed from ``inputs`` (node indices) that also runs after ``after``."""
        inputs = tuple(inputs)
        args = ", ".join([f"#{i}" for i in inputs] + ([note] if note else []))
        self.log.append(f"#{len(self.nodes)} = {kind}({args})" + (f" after {list(after)}" if after else ""))
        return self.add(Node(tensor, shape, self.closure(inputs + tuple(after)), compute, kind, inputs=inputs,
                             opaque=opaque or any(self.nodes[i].opaque for i in inputs)))

    def closure(self, indices) -> frozenset:
        out = set()
        for i in indices:
            out.add(i)
            out |= self.nodes[i].deps
        return frozenset(out)


def _f32(x):
    return np.asarray(x, np.float64)


def _logsumexp(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _conv_same(x2d, filt):
    """conv2d of a (2, 3) image (one channel) with a 2x2 filter, SAME padding (TF's: pad the
    bottom and right), as gc.nn.conv2d on (1, 2, 3, 1)."""
    padded = np.pad(x2d, ((0, 1), (0, 1)))
    out = np.zeros_like(x2d)
    for i in range(x2d.shape[0]):
        for j in range(x2d.shape[1]):
            out[i, j] = np.sum(padded[i:i + 2, j:j + 2] * filt)
    return out


def _max_pool_same(x2d):
    padded = np.pad(x2d, ((0, 1), (0, 1)), constant_values=-np.inf)
    out = np.zeros_like(x2d)
    for i in range(x2d.shape[0]):
        for j in range(x2d.shape[1]):
            out[i, j] = np.max(padded[i:i + 2, j:j + 2])
    return out


REDUCTIONS = {
    "reduce_sum": lambda x, a, k: np.sum(x, axis=a, keepdims=k),
    "reduce_mean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "reduce_max": lambda x, a, k: np.max(x, axis=a, keepdims=k),
    "reduce_logsumexp": _logsumexp,
    "reduce_prod": lambda x, a, k: np.prod(x, axis=a, keepdims=k),
    "reduce_min": lambda x, a, k: np.min(x, axis=a, keepdims=k),
}
UNARY = {
    "tanh": (gc.tanh, np.tanh),
    "sigmoid": (gc.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "negative": (gc.negative, np.negative),
    "abs": (gc.abs, np.abs),
    "half_square": (lambda t: gc.square(t) * 0.5, lambda x: np.square(x) * 0.5),
}


# Maps from the real line into the domain of an op that is not defined (or not tame) on all of
# it (asin, acosh, tan, ...): the first under which the op is finite and moderate is used.
_DOMAIN_MAPS = [
    (lambda t: gc.tanh(t) * 0.9, lambda x: np.tanh(x) * 0.9),       # (-0.9, 0.9)
    (lambda t: gc.square(t) + 1.1, lambda x: np.square(x) + 1.1),  # (1.1, inf)
]


def _within_domain(build, ref):
    """(build, ref) of a one-input op as the fuzzers use it: the op itself where it is finite
    and moderate on [-4, 4], else composed with the first domain map under which it is (so
    that values and finite differences stay defined)."""
    probe = np.linspace(-4.0, 4.0, 801)

    def tame(f):
        with np.errstate(all="ignore"):
            y = np.asarray(f(probe), dtype=np.float64)
        return bool(np.all(np.isfinite(y)) and np.max(np.abs(y)) < 1e3)

    if tame(ref):
        return build, ref
    for map_gc, map_np in _DOMAIN_MAPS:
        if tame(lambda x, m=map_np: ref(m(x))):
            return (lambda t, m=map_gc: build(m(t))), (lambda x, m=map_np: ref(m(x)))
    raise AssertionError("no domain map makes this op finite on [-4, 4]: add one to _DOMAIN_MAPS")


def _join_ops_defined_in_one_place() -> None:
    """An op that carries its own formula (elementwise, one float input, no attrs) or fold
    (a reduction) joins the fuzzers here, with its NumPy reference as the oracle: adding such
    an op (docs/ADDING-AN-OP.md) needs nothing in this file."""
    from graphc.ops._build import make1
    from graphc.shapes import TensorType
    for name, opdef in sorted(OPS.items()):
        if opdef.formula is not None and opdef.elementwise:
            try:
                opdef.infer([TensorType(gc.float64, (2,))], {})
            except Exception:  # not a one-input op without attrs
                continue
            build = lambda t, name=name: make1(name, (t,), None, name)  # noqa: E731
            ref = lambda x, opdef=opdef: opdef.reference([x], {}, None)[0]  # noqa: E731
            UNARY[name] = _within_domain(build, ref)
        if opdef.fold is not None:
            def ref(x, axis, keepdims, opdef=opdef):
                axes = tuple(range(x.ndim)) if axis is None else (axis % x.ndim,)
                return opdef.reference([x], {"axes": axes, "keepdims": keepdims}, None)[0]
            REDUCTIONS[name] = ref


BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "subtract": (lambda a, b: a - b, np.subtract),
    "multiply": (lambda a, b: a * b, np.multiply),
    "maximum": (gc.maximum, np.maximum),
}


_join_ops_defined_in_one_place()


def _broadcast(a, b):
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


def _fits(value_shape, var_shape) -> bool:
    """Can a value of ``value_shape`` be written into a variable of ``var_shape``?"""
    return len(value_shape) <= len(var_shape) and _broadcast(value_shape, var_shape) == tuple(var_shape)


# --- the state graph ------------------------------------------------------------------------------------------
def build_state_graph(draw, steps=None) -> StateGraph:
    """A random graph of variables, placeholders, math that fuses, and reads and writes.
    ``draw`` is hypothesis's ``data.draw``."""
    return _build(draw, steps or STEPS, variables=True, dtype=gc.float32)


def build_math_graph(draw, dtype=gc.float64, steps=None) -> StateGraph:
    """A random graph of differentiable math on placeholders (no state), ending in a scalar
    loss (the last node): elementwise ops with broadcasting, reductions (logsumexp, max and
    mean, with keepdims), softmax, matmul, conv/pool, gather, slices and concat."""
    sg = _build(draw, steps or MATH_STEPS, variables=False, dtype=dtype)
    with sg.graph.as_default():
        terms = draw(st.lists(st.sampled_from(range(len(sg.placeholders), len(sg.nodes))), min_size=1, max_size=2,
                              unique=True)) if len(sg.nodes) > len(sg.placeholders) else [0]
        loss = reduce(sg, draw(st.sampled_from(["reduce_sum", "reduce_logsumexp"])), terms[0], None, False) \
            if sg.nodes[terms[0]].shape else terms[0]
        for t in terms[1:]:
            term = reduce(sg, "reduce_mean", t, None, False) if sg.nodes[t].shape else t
            loss = binary(sg, "add", loss, term)
    sg.loss = loss
    return sg


def _build(draw, steps, variables: bool, dtype) -> StateGraph:
    g = gc.Graph()
    sg = StateGraph(g)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    with g.as_default():
        for k in range(draw(st.integers(1, 3)) if variables else 0):
            shape = draw(st.sampled_from([(2, 3), (2, 3), (2, 1), (3,), ()]))
            init = rng.uniform(-1, 1, size=shape).astype(np.float32)
            name = f"v{k}"
            sg.variables[name] = (gc.Variable(init, name=name), init)
            sg.chains[name] = []
        for k in range(draw(st.integers(1, 2))):
            # a static shape, a batch dim, or none (the rank comes from the feed: tests/test_rank_free.py)
            declared = draw(st.sampled_from([(2, 3), (None, 3), None]))
            p = gc.placeholder(dtype, declared, name=f"p{k}")
            sg.placeholders.append((p, (2, 3)))
            sg.add(Node(p, (2, 3), frozenset(), lambda vals, ver, k=k: vals[("feed", k)], "feed"))
        for name, (var, _) in sg.variables.items():  # the plain read: the run's starting value
            sg.add(Node(var.value(), tuple(var.shape), frozenset(), _read(name, 0), "read", name))
        for _ in range(draw(st.integers(2, 14))):
            step = draw(st.sampled_from(steps))
            try:
                step(draw, sg, rng)
            except gc.errors.RankUnknownError:
                sg.log.append(f"({step.__name__} needs a rank that only the feed gives: skipped)")
        sg.init = gc.global_variables_initializer()  # optimizer slots included
    return sg


def _job_of_one():
    """graphc.distribute as a job of one process (``hvd.init()`` here), or None without mpi4py."""
    try:
        import graphc.distribute as hvd
        hvd.init()
    except ImportError:
        return None
    return hvd


def tiny_collective_buckets():
    """For a module fixture: a fusion threshold of 8 bytes, so that every tensor of a grouped
    all-reduce starts in a bucket of its own as soon as it is made (codegen/schedule.py)."""
    before = os.environ.get("HOROVOD_FUSION_THRESHOLD")
    os.environ["HOROVOD_FUSION_THRESHOLD"] = "8"
    try:
        yield
    finally:
        if before is None:
            del os.environ["HOROVOD_FUSION_THRESHOLD"]
        else:
            os.environ["HOROVOD_FUSION_THRESHOLD"] = before


def pool_at_full_width():
    """For a module fixture: the CPU pool (codegen/cpu/parallel.py) splits jobs at its full
    width whatever the load (pytest-xdist's other worker would narrow it to one), and every
    job wakes its workers; ``splits_on_the_pool`` then sends tiny kernels to it."""
    from graphc.codegen.cpu import cores, parallel
    pool, ctl = parallel.pool(), parallel.control()
    wake = int(ctl[parallel.WAKE])
    listening = pool.follow in cores.monitor().listeners
    if listening:
        cores.monitor().listeners.remove(pool.follow)
    ctl[parallel.WAKE] = 1
    pool.follow(len(pool.workers) + 1)
    try:
        yield
    finally:
        ctl[parallel.WAKE] = wake
        if listening:
            cores.monitor().listeners.append(pool.follow)
        pool.follow(cores.monitor().width)


@contextlib.contextmanager
def splits_on_the_pool(enabled: bool):
    """While enabled, every kernel whose outer loop can be split runs in parts on the pool,
    however small, so that the fuzzed graphs' tiny shapes go through it; products with few
    rows are split by columns however few (emit/groups.py, ``split_product``). Each split
    kernel then compiles a part module (0.1-0.2 s cold), so the fuzzers draw this for some
    graphs and one configuration only."""
    from graphc.codegen.cpu import parallel
    from graphc.codegen.emit import groups
    before = parallel.MIN_WORK, groups.SPLIT_COLUMNS
    if enabled:
        parallel.MIN_WORK, groups.SPLIT_COLUMNS = 1, 1
    try:
        yield
    finally:
        parallel.MIN_WORK, groups.SPLIT_COLUMNS = before


def drawn_configs(draw, configs: list) -> list:
    """The (device, level) pairs one fuzzed graph runs on: the reference's (interpreted, no
    compiles) and every device at level 2, what users run; of a compiled device's lower
    levels, one drawn per graph. Each level compiles every program of the graph again, so
    this takes a third off the CPU's compiles, and a CI run still covers every level. With
    GRAPHC_FUZZ_EXAMPLES set (the long runs), every graph runs on all of them."""
    if os.environ.get("GRAPHC_FUZZ_EXAMPLES"):
        return list(configs)
    kept, lower = [], {}
    for device, level in configs:
        if device == "reference" or level == 2:
            kept.append((device, level))
        else:
            lower.setdefault(device, []).append(level)
    for device, levels in lower.items():
        kept.append((device, draw(st.sampled_from(levels))))
    return sorted(kept, key=configs.index)


COLLECTIVES = {
    "allreduce": lambda hvd, t: hvd.allreduce(t),
    "allreduce_sum": lambda hvd, t: hvd.allreduce(t, op=hvd.Sum),
    "allgather": lambda hvd, t: hvd.allgather(t),
    "broadcast": lambda hvd, t: hvd.broadcast(t, 0),
}


def step_collective(draw, sg, rng):
    """A collective of a job of one (each is the identity there, its gradient too). On the
    CPU an all-reduce or broadcast is a start and a wait between kernels, its result often
    written over its input, and a grouped all-reduce starts in buckets as its tensors are made
    (the fuzz tests set a tiny HOROVOD_FUSION_THRESHOLD); elsewhere each is a stage boundary
    (ops/collective.py). So the fuzzers cover fused kernels, reads and writes around both."""
    hvd = _job_of_one()
    floating = lambda n: isinstance(n.tensor, gc.Tensor) and n.tensor.dtype.is_floating  # noqa: E731
    a = _pick(draw, sg, floating)
    if hvd is None or a is None:
        return
    n = sg.nodes[a]
    kinds = sorted(COLLECTIVES) if n.shape else ["allreduce", "allreduce_sum", "broadcast"]
    kind = draw(st.sampled_from(kinds + ["grouped"]))
    if kind != "grouped":
        sg.value(COLLECTIVES[kind](hvd, n.tensor), n.shape, [a], lambda v, ver: v[a], kind)
        return
    b = _pick(draw, sg, floating)  # made elsewhere in the run, perhaps the same tensor again
    first, second = hvd.grouped_allreduce([n.tensor, sg.nodes[b].tensor], op=hvd.Sum)
    # one op: fetching either result runs everything both inputs depend on (writes too)
    sg.value(first, n.shape, [a], lambda v, ver: v[a], "grouped_allreduce", after=(b,))
    sg.value(second, sg.nodes[b].shape, [b], lambda v, ver: v[b], "grouped_allreduce", after=(a,))


def _read(name, version):
    return lambda vals, ver: ver[name][version]


def _version(sg: StateGraph, name: str, deps: frozenset) -> int:
    """The chain index of the last write to ``name`` among ``deps`` (0: none)."""
    return max([sg.nodes[i].chain for i in deps if sg.nodes[i].kind == "write" and sg.nodes[i].var == name],
               default=0)


def _pick(draw, sg: StateGraph, ok=lambda n: True) -> Optional[int]:
    """A node to build on: often one of the last few, so that chains of ops form (a write's
    result reduced and then used against the reduction, as in the bugs this fuzzer is for)."""
    choices = [i for i, n in enumerate(sg.nodes) if n.shape is not None and ok(n)]
    if not choices:
        return None
    if draw(st.booleans()):
        choices = choices[-3:]
    return draw(st.sampled_from(choices))


def step_unary(draw, sg, rng):
    a = _pick(draw, sg)
    if a is None:
        return
    name = draw(st.sampled_from(sorted(UNARY)))
    fn, ref = UNARY[name]
    n = sg.nodes[a]
    sg.value(fn(n.tensor), n.shape, [a], lambda v, ver: ref(v[a]), name)


def binary(sg, name, a, b) -> int:
    fn, ref = BINARY[name]
    shape = _broadcast(sg.nodes[a].shape, sg.nodes[b].shape)
    return sg.value(fn(sg.nodes[a].tensor, sg.nodes[b].tensor), shape, [a, b], lambda v, ver: ref(v[a], v[b]), name)


def reduce(sg, op, a, axis, keepdims) -> int:
    n = sg.nodes[a]
    out = getattr(gc, op)(n.tensor, axis=axis, keepdims=keepdims)
    shape = tuple(np.zeros(n.shape)[...].sum(axis=axis, keepdims=keepdims).shape)
    ref = REDUCTIONS[op]
    return sg.value(out, shape, [a], lambda v, ver: np.asarray(ref(v[a], axis, keepdims)), op,
                    note=f"axis={axis}, keepdims={keepdims}")


def step_binary(draw, sg, rng):
    a = _pick(draw, sg)
    b = None if a is None else _pick(draw, sg, lambda n: _broadcast(n.shape, sg.nodes[a].shape) in SHAPES)
    if b is None:
        return
    binary(sg, draw(st.sampled_from(sorted(BINARY))), a, b)


def step_reduce(draw, sg, rng):
    a = _pick(draw, sg, lambda n: len(n.shape) >= 1)
    if a is None:
        return
    axis = draw(st.sampled_from([None, -1] + ([0] if len(sg.nodes[a].shape) == 2 else [])))
    reduce(sg, draw(st.sampled_from(sorted(REDUCTIONS))), a, axis, draw(st.booleans()))


def step_softmax(draw, sg, rng):
    a = _pick(draw, sg, lambda n: len(n.shape) >= 1)
    if a is None:
        return
    n = sg.nodes[a]
    sg.value(gc.nn.softmax(n.tensor), n.shape, [a], lambda v, ver: _softmax(v[a]), "softmax")


def step_row_chain(draw, sg, rng):
    """A reduction over the last axis (kept) that a second one over the same rows follows, as
    layer norm's mean and variance or softmax's max and sum: on the CPU one row kernel runs
    both (fusion's ROW_REDUCTION_CHAINS). The shapes vary what the row kernel must keep
    apart: the first reduction's own prologue (``feeder``), a second input that reads the
    first result or not, a row-space member that mixes the feeder with the first result
    outside the second's prologue (the reduce_prod gradient has one), and row epilogues."""
    a = _pick(draw, sg, lambda n: len(n.shape) >= 1)
    if a is None:
        return
    first, then = draw(st.sampled_from(["reduce_mean", "reduce_max", "reduce_sum", "reduce_prod"])), \
        draw(st.sampled_from(["reduce_mean", "reduce_sum", "reduce_max"]))
    n = sg.nodes[a]
    feeder = a
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(UNARY)))
        fn, ref = UNARY[name]
        feeder = sg.value(fn(n.tensor), n.shape, [a], lambda v, ver: ref(v[a]), name)
    r1 = reduce(sg, first, feeder, -1, True)
    second = draw(st.sampled_from(["centered", "squared", "scaled", "independent"]))
    if second == "independent":  # the second reduction does not read the first's result
        x2 = binary(sg, "multiply", a, a)
    elif second == "scaled":
        x2 = binary(sg, "multiply", feeder, r1)
    else:
        x2 = binary(sg, "subtract", a, r1)
        if second == "squared":
            x2 = binary(sg, "multiply", x2, x2)
    side = binary(sg, draw(st.sampled_from(["multiply", "subtract"])), feeder, r1) if draw(st.booleans()) else None
    r2 = reduce(sg, then, x2, -1, True)
    epilogue = draw(st.sampled_from(["none", "centered", "side"]))
    if epilogue == "centered":  # a row epilogue that reads both results
        binary(sg, "multiply", binary(sg, "subtract", a, r1), r2)
    elif epilogue == "side" and side is not None:
        binary(sg, "add", side, r2)


def step_matmul(draw, sg, rng):
    """(2, 3) @ (3, 3) constant (the epilogue then fuses), or a (2, 3) by (2, 3) transposed."""
    a = _pick(draw, sg, lambda n: n.shape == (2, 3))
    if a is None:
        return
    if draw(st.booleans()):
        w = rng.uniform(-1, 1, size=(3, 3)).astype(sg.nodes[a].tensor.dtype.np)
        sg.value(gc.matmul(sg.nodes[a].tensor, w), (2, 3), [a], lambda v, ver: v[a] @ w, "matmul")
    else:
        b = _pick(draw, sg, lambda n: n.shape == (2, 3))
        out = gc.matmul(sg.nodes[a].tensor, sg.nodes[b].tensor, transpose_b=True)  # (2, 2)
        out = gc.concat([out, out[:, :1]], axis=1)  # back to (2, 3)
        sg.value(out, (2, 3), [a, b], lambda v, ver: np.concatenate([v[a] @ v[b].T, (v[a] @ v[b].T)[:, :1]], axis=1),
                 "matmul_t")


def step_conv_pool(draw, sg, rng):
    a = _pick(draw, sg, lambda n: n.shape == (2, 3))
    if a is None:
        return
    # -1: the image's batch dim is the source's, unknown until run time where a placeholder
    # of a None batch dim reaches it (a kernel then takes it as a size parameter)
    batch = draw(st.sampled_from([1, -1]))
    image = gc.reshape(sg.nodes[a].tensor, (batch, 2, 3, 1))
    kind = draw(st.sampled_from(["conv2d", "max_pool2d", "depthwise_conv2d"]))
    nchw = draw(st.booleans())  # one channel: NCHW is a different layout of the same values
    fmt, image = ("NCHW", gc.reshape(image, (batch, 1, 2, 3))) if nchw else ("NHWC", image)
    same = sg.nodes[a].tensor.dtype
    b = _pick(draw, sg, lambda n: n.shape == (2, 3) and n.tensor.dtype == same) if kind != "max_pool2d" and draw(st.booleans()) else None
    if kind != "max_pool2d" and b is not None:  # a filter computed in the graph: its gradient runs too
        filt = gc.reshape(sg.nodes[b].tensor[:, :2], (2, 2, 1, 1))
        build = gc.nn.conv2d if kind == "conv2d" else gc.nn.depthwise_conv2d
        out = build(image, filt, [1, 1, 1, 1], "SAME", data_format=fmt)
        sg.value(gc.reshape(out, (2, 3)), (2, 3), [a, b], lambda v, ver: _conv_same(v[a], v[b][:, :2]), kind,
                 note=fmt + ", graph filter")
        return
    if kind != "max_pool2d":
        filt = rng.uniform(-1, 1, size=(2, 2)).astype(sg.nodes[a].tensor.dtype.np)
        build = gc.nn.conv2d if kind == "conv2d" else gc.nn.depthwise_conv2d
        out = build(image, filt.reshape(2, 2, 1, 1), [1, 1, 1, 1], "SAME", data_format=fmt)
        ref = (lambda v, ver: _conv_same(v[a], filt))
    else:
        out = gc.nn.max_pool2d(image, 2, 1, padding="SAME", data_format=fmt)
        ref = (lambda v, ver: _max_pool_same(v[a]))
    sg.value(gc.reshape(out, (2, 3)), (2, 3), [a], ref, kind, note=fmt)


def step_gather_slice(draw, sg, rng):
    a = _pick(draw, sg, lambda n: n.shape == (2, 3))
    if a is None:
        return
    x = sg.nodes[a].tensor
    kind = draw(st.sampled_from(["gather", "embedding_lookup", "roll"]))
    if kind == "gather":
        idx = [2, 0, 2]
        sg.value(gc.gather(x, idx, axis=1), (2, 3), [a], lambda v, ver: v[a][:, idx], "gather")
    elif kind == "embedding_lookup":  # rows of x held in two partitions ("div": one row each)
        rows = [gc.reshape(x[k:k + 1], (1, -1)) for k in (0, 1)]  # partitions need a static first dim
        out = gc.nn.embedding_lookup(rows, [1, 0], partition_strategy="div")
        sg.value(out, (2, 3), [a], lambda v, ver: v[a][[1, 0]], "embedding_lookup")
    else:  # a rotation: slices and a concat
        out = gc.concat([x[:, 1:], x[:, :1]], axis=1)
        sg.value(out, (2, 3), [a], lambda v, ver: np.roll(v[a], -1, axis=1), "roll")



_BN_EPSILON = 0.1  # bounds y's gain, 1 / sqrt(var + eps), where a column's two values nearly agree
_BN_OUTPUTS = (("batch_norm", (2, 3)), ("batch_mean", (3,)), ("batch_variance", (3,)))


def _batch_norm(x, scale, offset, k):
    """Output k of training-mode batch norm over the rows of (N, C) ``x``: y, the batch mean,
    TF1's unbiased batch variance (y is normalized with the biased one)."""
    mean, var = x.mean(axis=0), x.var(axis=0)
    return ((x - mean) / np.sqrt(var + _BN_EPSILON) * scale + offset, mean, x.var(axis=0, ddof=1))[k]


def step_batch_norm(draw, sg, rng):
    """gc.nn.fused_batch_norm of a (2, 3) node as N=2 rows of C=3 channels, with constant
    scale and offset: one kernel computing the statistics and y (and one for its gradient)."""
    a = _pick(draw, sg, lambda n: n.shape == (2, 3))
    if a is None:
        return
    dtype = sg.nodes[a].tensor.dtype.np
    scale, offset = rng.uniform(0.5, 1.5, size=3).astype(dtype), rng.uniform(-1, 1, size=3).astype(dtype)
    k = draw(st.sampled_from([0, 0, 1, 2]))
    name, shape = _BN_OUTPUTS[k]
    out = gc.nn.fused_batch_norm(sg.nodes[a].tensor, scale, offset, epsilon=_BN_EPSILON)[k]
    sg.value(out, shape, [a], lambda v, ver: _batch_norm(v[a], scale, offset, k), name)

class RangeViolation(Exception):
    """The oracle's verdict that a run stops at a check_range: every device must raise
    InvalidArgumentError there."""


def _checked(draw, sg, ranges):
    """check_range over a node: a pass-through whose interval is drawn from ``ranges``."""
    from graphc.ops.control import check_range
    a = _pick(draw, sg)
    if a is None:
        return
    low, high = draw(st.sampled_from(ranges))
    low_open, high_open = draw(st.booleans()), draw(st.booleans())

    def compute(v, ver):
        x = v[a]
        inside = (x > low if low_open else x >= low) & (x < high if high_open else x <= high)
        if not np.all(inside):
            raise RangeViolation(f"#{a} outside ({low}, {high})")
        return x

    sg.value(check_range(sg.nodes[a].tensor, low, high, "fuzzed value", low_open, high_open), sg.nodes[a].shape,
             [a], compute, "check_range", note=f"[{low}, {high}]")


def step_check_range_passes(draw, sg, rng):
    """A check whose interval holds every value these graphs make: its gradient and its
    place in fused kernels are a pass-through."""
    _checked(draw, sg, [(-1e6, 1e6)])


def step_check_range(draw, sg, rng):
    """A check that may stop the run: the values are often outside [-0.5, 0.5]."""
    _checked(draw, sg, [(-1e6, 1e6), (-1e6, 1e6), (-0.5, 0.5), (-1.0, 2.0)])


def _cum_oracle(x, axis, exclusive, reverse):
    y = np.flip(x, axis) if reverse else x
    out = np.cumsum(y, axis=axis)
    if exclusive:  # shifted by one, starting from 0
        out = np.moveaxis(np.concatenate([np.zeros_like(np.moveaxis(out, axis, 0)[:1]),
                                          np.moveaxis(out, axis, 0)[:-1]]), 0, axis)
    return np.flip(out, axis) if reverse else out


def step_scan_reverse(draw, sg, rng):
    """cumsum (exclusive and reverse drawn), reverse or sort, along the last or the first axis."""
    a = _pick(draw, sg, lambda n: len(n.shape) >= 1)
    if a is None:
        return
    n = sg.nodes[a]
    axis = draw(st.sampled_from([0, -1]))
    kind = draw(st.sampled_from(["cumsum", "reverse", "sort"]))
    if kind == "sort":  # random values: no ties, so the gradient is defined everywhere
        descending = draw(st.booleans())
        sg.value(gc.sort(n.tensor, axis=axis, direction="DESCENDING" if descending else "ASCENDING"), n.shape, [a],
                 lambda v, ver: np.flip(np.sort(v[a], axis), axis) if descending else np.sort(v[a], axis), "sort",
                 note=f"axis={axis}, descending={descending}")
    elif kind == "cumsum":
        exclusive, reverse = draw(st.booleans()), draw(st.booleans())
        sg.value(gc.cumsum(n.tensor, axis=axis, exclusive=exclusive, reverse=reverse), n.shape, [a],
                 lambda v, ver: _cum_oracle(v[a], axis, exclusive, reverse), "cumsum",
                 note=f"axis={axis}, exclusive={exclusive}, reverse={reverse}")
    else:
        sg.value(gc.reverse(n.tensor, [axis]), n.shape, [a], lambda v, ver: np.flip(v[a], axis), "reverse",
                 note=f"axis={axis}")


def write(sg, op, name, value) -> int:
    """``op`` (assign, assign_add, assign_sub) of node ``value`` into variable ``name``,
    after the variable's previous write (by a control dependency, unless its value already
    depends on it): the chain the oracle models."""
    var, _ = sg.variables[name]
    shape = tuple(var.shape)
    combine = COMBINE[op]
    return chained_write(sg, name, (value,), lambda: getattr(gc, op)(var, sg.nodes[value].tensor),
                         lambda old, v: combine(old, np.broadcast_to(v[value], shape)), f"{op}({name}, #{value})")


COMBINE = {"assign": lambda old, x: x, "assign_add": np.add, "assign_sub": np.subtract}


def chained_write(sg, name, inputs, build, update, text) -> int:
    """A node that writes variable ``name`` after its previous write (by a control dependency,
    unless its value already depends on it): the chain the oracle models. ``build()`` makes the
    tensor (its value is the variable's new value); ``update(old, values)`` is the oracle's."""
    shape = tuple(sg.variables[name][0].shape)
    chain = sg.chains[name]
    previous = chain[-1] if chain else None
    deps = list(inputs) + ([previous] if previous is not None else [])
    needs_edge = previous is not None and previous not in sg.closure(inputs)
    with gc.control_dependencies([sg.nodes[previous].tensor] if needs_edge else []):
        tensor = build()
    index = len(chain) + 1

    def compute(v, ver):
        assert len(ver[name]) == index, "the chain's writes run in order"
        old = ver[name][index - 1]
        new = None if old is None or any(v[i] is None for i in inputs) else update(old, v)
        ver[name].append(new)
        return new

    node = sg.add(Node(tensor, shape, sg.closure(deps), compute, "write", name, index, inputs=tuple(inputs)))
    chain.append(node)
    sg.log.append(f"#{node} = {text}" + (f" after #{previous}" if needs_edge else ""))
    return node


WRITES = ["assign", "assign_add", "assign_sub"]


def step_write(draw, sg, rng):
    name = draw(st.sampled_from(sorted(sg.variables)))
    shape = tuple(sg.variables[name][0].shape)
    value = _pick(draw, sg, lambda n: _fits(n.shape, shape))
    if value is not None:
        write(sg, draw(st.sampled_from(WRITES)), name, value)


def _plain_read(sg, name) -> int:
    return next(i for i, n in enumerate(sg.nodes) if n.kind == "read" and n.var == name)


# --- motifs: the shapes of the bugs this fuzzer was written for, made likely ----------------------------------
def motif_reduce_a_write(draw, sg, rng):
    """y = w - reduce(w), w a write's result: the write must not be applied again by a pass
    of the reduction (a write inside a fused reduction was applied twice)."""
    name = draw(st.sampled_from(sorted(sg.variables)))
    shape = tuple(sg.variables[name][0].shape)
    if len(shape) < 1:
        return
    value = _pick(draw, sg, lambda n: n.shape == shape)
    if value is None:
        return
    w = write(sg, draw(st.sampled_from(WRITES)), name, value)
    m = reduce(sg, draw(st.sampled_from(sorted(REDUCTIONS))), w, -1, draw(st.booleans()) or len(shape) == 1)
    if _broadcast(sg.nodes[m].shape, shape) == shape:
        binary(sg, draw(st.sampled_from(["subtract", "add", "multiply"])), w, m)


def motif_moving_average(draw, sg, rng):
    """A reduction's result written into a variable (a moving average) next to a row
    epilogue that uses it (x - mean)."""
    x = _pick(draw, sg, lambda n: n.shape == (2, 3))
    targets = [name for name, (var, _) in sg.variables.items() if tuple(var.shape) in ((2, 1), (2,), ())]
    if x is None or not targets:
        return
    name = draw(st.sampled_from(targets))
    shape = tuple(sg.variables[name][0].shape)
    m = reduce(sg, draw(st.sampled_from(sorted(REDUCTIONS))), x, -1 if shape else None, len(shape) == 2)
    decayed = binary(sg, "multiply", _plain_read(sg, name), _constant(sg, 0.9))
    write(sg, "assign", name, binary(sg, "add", decayed, m))
    binary(sg, "subtract", x, m)


def motif_write_twice(draw, sg, rng):
    """w1 = v += c; w2 = v += w1; t = w1 * 10: a write's result is the value it wrote, even
    after a later write to the same variable."""
    name = draw(st.sampled_from(sorted(sg.variables)))
    shape = tuple(sg.variables[name][0].shape)
    c = _pick(draw, sg, lambda n: _fits(n.shape, shape))
    if c is None:
        return
    w1 = write(sg, draw(st.sampled_from(WRITES)), name, c)
    write(sg, draw(st.sampled_from(WRITES)), name, w1)
    binary(sg, "multiply", w1, _constant(sg, 10.0))


def motif_recurrence(draw, sg, rng):
    """h = tanh(h @ U + x): a write in the epilogue of a product that reads the variable."""
    names = [name for name, (var, _) in sg.variables.items() if tuple(var.shape) == (2, 3)]
    x = _pick(draw, sg, lambda n: _fits(n.shape, (2, 3)))
    if not names or x is None:
        return
    name = draw(st.sampled_from(names))
    u = rng.uniform(-1, 1, size=(3, 3)).astype(np.float32)
    h = _plain_read(sg, name) if draw(st.booleans()) else _pick(draw, sg, lambda n: n.kind == "read" and n.var == name)
    product = sg.value(gc.matmul(sg.nodes[h].tensor, u), (2, 3), [h], lambda v, ver: v[h] @ u, "matmul")
    pre = binary(sg, "add", product, x)
    act = sg.value(gc.tanh(sg.nodes[pre].tensor), (2, 3), [pre], lambda v, ver: np.tanh(v[pre]), "tanh")
    write(sg, "assign", name, act)


def _constant(sg, value) -> int:
    node = sg.value(gc.constant(np.float32(value)), (), [], lambda v, ver: np.float64(np.float32(value)), "const")
    return node


def step_read_after(draw, sg, rng):
    """A fresh read under control dependencies: it sees the writes it depends on."""
    name = draw(st.sampled_from(sorted(sg.variables)))
    var, _ = sg.variables[name]
    after = [i for i, n in enumerate(sg.nodes) if n.kind in ("write", "group")]
    chosen = draw(st.lists(st.sampled_from(after), max_size=2, unique=True)) if after else []
    with gc.control_dependencies([sg.nodes[i].tensor for i in chosen]):
        tensor = var.read_value()
    deps = sg.closure(chosen)
    version = _version(sg, name, deps)
    opaque = name in sg.opaque_from and version >= sg.opaque_from[name]

    def compute(v, ver):
        return ver[name][version]

    node = sg.add(Node(tensor, tuple(var.shape), deps, compute, "read", name, opaque=opaque))
    sg.log.append(f"#{node} = read({name}) after {chosen} (version {version})")


def step_identity_after(draw, sg, rng):
    a = _pick(draw, sg)
    after = [i for i, n in enumerate(sg.nodes) if n.kind in ("write", "group")]
    if not after or a is None:
        return
    w = draw(st.sampled_from(after))
    with gc.control_dependencies([sg.nodes[w].tensor]):
        tensor = gc.identity(sg.nodes[a].tensor)
    sg.value(tensor, sg.nodes[a].shape, [a], lambda v, ver: v[a], "identity", after=[w])


def step_group(draw, sg, rng):
    writes = [i for i, n in enumerate(sg.nodes) if n.kind == "write"]
    if not writes:
        return
    chosen = draw(st.lists(st.sampled_from(writes), min_size=1, max_size=3, unique=True))
    op = gc.group(*[sg.nodes[i].tensor for i in chosen])
    node = sg.add(Node(op, None, sg.closure(chosen), lambda v, ver: None, "group"))
    sg.log.append(f"#{node} = group({chosen})")


def step_optimizer_update(draw, sg, rng):
    """An optimizer's update of one variable, from the gradient of a node: not modelled."""
    name = draw(st.sampled_from(sorted(sg.variables)))
    var, _ = sg.variables[name]
    a = _pick(draw, sg, lambda n: n.kind != "write" and not n.opaque)
    if a is None:
        return
    optimizer = draw(st.sampled_from(["sgd", "momentum", "adam"]))
    # the variable's own term keeps the gradient defined when node a does not depend on it
    loss = gc.reduce_sum(gc.square(sg.nodes[a].tensor)) + 0.5 * gc.reduce_sum(gc.square(var.value()))
    chain = sg.chains[name]
    # (node a only feeds the loss, which the update may not need: the dependency is made explicit)
    with gc.control_dependencies(([sg.nodes[chain[-1]].tensor] if chain else []) + [sg.nodes[a].tensor]):
        opt = {"sgd": lambda: gc.train.GradientDescentOptimizer(0.1), "momentum": lambda: gc.train.Momentum(0.1, 0.9),
               "adam": lambda: gc.train.Adam(0.05)}[optimizer]()
        update = opt.minimize(loss, var_list=[var])
    index = len(chain) + 1
    sg.opaque_from.setdefault(name, index)

    def compute(v, ver):  # a placeholder in the chain: the oracle does not know the value
        ver[name].append(None)
        return None

    deps = sg.closure([a] + ([chain[-1]] if chain else []))
    node = sg.add(Node(update, None, deps, compute, "write", name, index, opaque=True))
    chain.append(node)
    sg.log.append(f"#{node} = {optimizer} update of {name} from #{a}")


def step_cond(draw, sg, rng):
    """cond on the sign of a sum: each branch a unary op of one node, plus another node
    captured from outside (broadcast back to the first node's shape)."""
    a = _pick(draw, sg)
    b = None if a is None else _pick(draw, sg)
    c = None if a is None else _pick(draw, sg, lambda n: _broadcast(n.shape, sg.nodes[a].shape) == sg.nodes[a].shape)
    if c is None:
        return
    (f, f_ref), (g, g_ref) = (UNARY[draw(st.sampled_from(sorted(UNARY)))] for _ in range(2))
    A, B, C = (sg.nodes[i].tensor for i in (a, b, c))
    out = gc.cond(gc.reduce_sum(B) > 0.0, lambda: f(A) + C, lambda: g(A) * C)
    sg.value(out, sg.nodes[a].shape, [a, b, c],
             lambda v, ver: f_ref(v[a]) + v[c] if np.sum(v[b]) > 0 else g_ref(v[a]) * v[c], "cond")


def step_while(draw, sg, rng):
    """A loop of 0-3 trips whose body applies a unary op and mixes in a captured node."""
    a = _pick(draw, sg)
    c = None if a is None else _pick(draw, sg, lambda n: _broadcast(n.shape, sg.nodes[a].shape) == sg.nodes[a].shape)
    if c is None:
        return
    trips = draw(st.integers(0, 3))
    f, f_ref = UNARY[draw(st.sampled_from(sorted(UNARY)))]
    A, C = sg.nodes[a].tensor, sg.nodes[c].tensor
    out = gc.while_loop(lambda i, h: i < trips, lambda i, h: (i + 1, f(h) * 0.5 + C), [0, A])[1]

    def oracle(v, ver):
        h = v[a]
        for _ in range(trips):
            h = f_ref(h) * 0.5 + v[c]
        return h
    sg.value(out, sg.nodes[a].shape, [a, c], oracle, "while_loop", note=f"trips={trips}")


def motif_loop_write_group(draw, sg, rng):
    """A loop over a node, a write of its result, and a group of that write: fetching the group
    runs the write after the loop, in a stage that fetches nothing."""
    before = len(sg.nodes)
    step_while(draw, sg, rng)
    if len(sg.nodes) == before:
        return
    loop = len(sg.nodes) - 1
    names = [n for n in sorted(sg.variables) if _fits(sg.nodes[loop].shape, tuple(sg.variables[n][0].shape))]
    if not names:
        return
    node = write(sg, draw(st.sampled_from(WRITES)), draw(st.sampled_from(names)), loop)
    group = sg.add(Node(gc.group(sg.nodes[node].tensor), None, sg.closure([node]), lambda v, ver: None, "group"))
    sg.log.append(f"#{group} = group([{node}])")


def motif_write_in_loop(draw, sg, rng):
    """A loop of 0-3 trips whose body reads a variable (the value its last iteration wrote)
    and writes it; a read that depends on the loop sees the last write."""
    name = draw(st.sampled_from(sorted(sg.variables)))
    var, _ = sg.variables[name]
    shape = tuple(var.shape)
    a = _pick(draw, sg, lambda n: _fits(n.shape, shape))
    if a is None:
        return
    trips, op = draw(st.integers(0, 3)), draw(st.sampled_from(WRITES))
    f, f_ref = UNARY[draw(st.sampled_from(sorted(UNARY)))]
    combine = COMBINE[op]

    def build():
        def body(i, h):
            h = f(h) * 0.5 + gc.reduce_sum(var.value()) * 0.125
            getattr(gc, op)(var, h)
            return i + 1, h
        out = gc.while_loop(lambda i, h: i < trips, body, [0, sg.nodes[a].tensor])[1]
        with gc.control_dependencies([out]):
            return var.read_value()

    def update(old, v):
        h, current = v[a], old
        for _ in range(trips):
            h = f_ref(h) * 0.5 + np.sum(current) * 0.125
            current = combine(current, np.broadcast_to(h, shape))
        return current
    chained_write(sg, name, (a,), build, update, f"while_loop writing {op}({name}) (#{a}, trips={trips})")


def motif_write_in_cond(draw, sg, rng):
    """A cond whose true branch writes a variable and whose false branch reads it: the result is
    the variable's value after the cond, whichever branch ran."""
    name = draw(st.sampled_from(sorted(sg.variables)))
    var, _ = sg.variables[name]
    shape = tuple(var.shape)
    a = _pick(draw, sg, lambda n: _fits(n.shape, shape))
    b = None if a is None else _pick(draw, sg)
    if b is None:
        return
    op = draw(st.sampled_from(WRITES))
    f, f_ref = UNARY[draw(st.sampled_from(sorted(UNARY)))]
    combine = COMBINE[op]

    def build():
        return gc.cond(gc.reduce_sum(sg.nodes[b].tensor) > 0.0,
                       lambda: getattr(gc, op)(var, f(sg.nodes[a].tensor)), lambda: var.value() * 1.0)

    def update(old, v):
        return combine(old, np.broadcast_to(f_ref(v[a]), shape)) if np.sum(v[b]) > 0 else old
    chained_write(sg, name, (a, b), build, update, f"cond writing {op}({name}) (#{a} if sum(#{b}) > 0)")


STEPS = ([step_unary, step_binary, step_binary, step_reduce, step_reduce, step_softmax, step_row_chain, step_matmul,
          step_conv_pool, step_gather_slice, step_check_range, step_scan_reverse, step_batch_norm, step_collective]
         + [step_write] * 4
         + [step_read_after, step_read_after, step_identity_after, step_group, step_optimizer_update]
         + [motif_reduce_a_write, motif_moving_average, motif_write_twice, motif_recurrence])
MATH_STEPS = [step_unary, step_binary, step_binary, step_reduce, step_reduce, step_reduce, step_softmax, step_row_chain,
              step_matmul, step_conv_pool, step_gather_slice, step_check_range_passes, step_scan_reverse, step_batch_norm,
              step_collective]
CONTROL_FLOW_STEPS = MATH_STEPS + [step_cond, step_cond, step_while, step_while]
# Loops and conds among reads and writes: their captures are reads and write results, and
# writes read their outputs (a program with control flow runs in stages on the compiled
# targets, and a stage of writes only was once dropped).
STATE_CONTROL_FLOW_STEPS = STEPS + [step_cond, step_while, step_while, motif_loop_write_group, motif_loop_write_group,
                                    *[motif_write_in_loop] * 4, *[motif_write_in_cond] * 3]


def evaluate_oracle(sg: StateGraph, fetch: list, feeds: dict, state: dict) -> tuple:
    """The values of nodes ``fetch`` in one run from ``state`` (var -> array; None where
    unknown) with ``feeds`` (placeholder index -> array): (values, final state). A value the
    oracle does not model is None."""
    needed = sorted(sg.closure(fetch))
    versions = {name: [None if state[name] is None else np.asarray(state[name], np.float64)]
                for name in sg.variables}
    values: dict = {("feed", k): np.asarray(v, np.float64) for k, v in feeds.items()}
    for i in needed:
        node = sg.nodes[i]
        if node.kind == "write":
            values[i] = node.compute(values, versions)  # a write keeps the chain (None: not modelled)
        elif node.opaque or any(values.get(j) is None for j in node.inputs):
            values[i] = None
        else:
            with np.errstate(all="ignore"):
                values[i] = node.compute(values, versions)
    final = {}
    for name in sg.variables:
        executed = [sg.nodes[i].chain for i in sg.chains[name] if i in needed]
        final[name] = versions[name][max(executed)] if executed else versions[name][0]
    return [values.get(i) for i in fetch], final

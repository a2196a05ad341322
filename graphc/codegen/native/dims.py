"""Sizes in a native library: every dim of every value, as a function of the input dims.

A native library computes every size from the input dims before it runs (the C wrapper lays
the workspace out, ``NAME_output_dims`` answers without running). ``optimizer/symbolic.py``
names each ``None`` dim with a symbol, and an op whose output dim is not one of its inputs'
symbols (a concat of ``n`` and ``1`` rows, a loop's history) gets a fresh one. Here every dim
of every value (``Dims``) is solved as

* an ``int`` (a static size), or
* ``Aff(k, c)``: symbol ``k`` of the library's ``Space`` plus a constant (``n + 1`` rows of a
  concat, the ``n`` trips of a scan over an input's leading dim),

by running the op's own inference on two sets of probe sizes (as symbolic.py does) and
reading the result back; per value, because symbolic.py may unify more symbols than an op
needed. The symbols are the input dims and, after them, the trip counts of loops whose
history only ``maximum_iterations`` bounds (stored by the loop at run time). Control flow is
solved through its bodies (``control_dims``, at the end): a loop variable keeps its dims; a
loop's history has one row per trip (``trip_count``); a cond's outputs are its branches'
dims, which must agree. An op in a body that needs two input dims equal raises ``Unify``: the
library is built again with them one symbol.

Workspace regions are sized with ``SymSize`` (``coef * product(symbols)``) over the input
dims: an ``Aff`` with ``c > 0`` is bounded by ``max((c + 1) * s, c)`` and a trip count by its
bound (``upper_terms``), so a region is never too small. Kernel dims and view lengths use the
exact value.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from ...errors import CompileError, InferenceError
from ...optimizer.hoisting import counter_of
from ...optimizer.symbolic import SymSize
from ...shapes import TensorType
from ..control_flow import body_program, settings_of

# Probe sizes (``_Probe``); offsets up to MAX_OFFSET from one are solved.
_PROBE_A = 1_000_003
_PROBE_B = 1_500_007
MAX_OFFSET = 1 << 16
_SCALAR_ELEMENTS = 64  # values the scalar evaluator computes: shapes and counters, never data
_AMBIGUOUS = object()  # a symbol seen with two different dims


@dataclass(frozen=True)
class Aff:
    """Symbol ``k`` (an input dim, or a loop's trip count: ``Space``) plus ``c``, clamped at 0
    where it is used as a size."""

    k: int
    c: int = 0

    def at(self, probe: Sequence[int]) -> int:
        return probe[self.k] + self.c


class Space:
    """The size symbols of one library: the input dims (``0 .. nsym - 1``), then one per loop
    whose history has a number of rows that only running it decides but the input dims bound
    (``maximum_iterations``): its trip count, which the loop stores in ``RT`` (a workspace
    region) once it ends, so what reads the history later sees its real size, while the
    regions are sized by the bound."""

    def __init__(self, nsym: int, labels):
        self.nsym = nsym
        self.labels = list(labels)                          # per symbol, in messages
        self.source = [f"s{k}" for k in range(nsym)]        # per symbol, in generated source
        self.bounds: list = []                              # per run-time symbol: int | Aff over inputs
        self._runs: dict = {}

    def __len__(self) -> int:
        return len(self.source)

    def run_symbol(self, ins, bound, label: str) -> "Aff":
        """The run-time symbol of the loop ``ins`` (one per instr, however often it is solved)."""
        if id(ins) not in self._runs:
            self._runs[id(ins)] = (ins, len(self.source))
            self.source.append(f"RT[{len(self.bounds)}]")
            self.bounds.append(bound)
            self.labels.append(f"the trip count of {label}")
        return Aff(self._runs[id(ins)][1])

    def bound(self, d):
        """``d`` with every run-time symbol replaced by its bound (a dim over the inputs)."""
        if not isinstance(d, Aff) or d.k < self.nsym:
            return d
        b = self.bounds[d.k - self.nsym]
        return Aff(b.k, b.c + d.c) if isinstance(b, Aff) else max(int(b) + d.c, 0)


class _Probe:
    """A size per symbol of ``space``: far apart (so an answer near one names it) and large
    (so no op's arithmetic confuses a probe with a static size)."""

    def __init__(self, space, base: int, step: int):
        self.space, self.base, self.step = space, base, step

    def __getitem__(self, k: int) -> int:
        return self.base * (k + 1) + self.step * k

    def __len__(self) -> int:
        return max(len(self.space), 1)

    def __iter__(self):
        return (self[k] for k in range(len(self)))


def probes(space):
    """The two probe assignments (one size per symbol)."""
    return _Probe(space, _PROBE_A, 0), _Probe(space, _PROBE_B, 2)


def evaluate(d, probe) -> int:
    return d.at(probe) if isinstance(d, Aff) else int(d)


def solve(a: int, b: int, pa, pb):
    """The dim whose value is ``a`` under probe ``pa`` and ``b`` under ``pb``, or None."""
    if a == b:
        return int(a) if abs(a) < _PROBE_A // 2 else None
    for k, (x, y) in enumerate(zip(pa, pb)):
        if a - x == b - y and abs(a - x) <= MAX_OFFSET:
            return Aff(k, int(a - x))
    return None


def render(d, sym_names) -> str:
    """Source (numba) for a dim's run-time value."""
    if not isinstance(d, Aff):
        return str(int(d))
    name = sym_names[d.k]
    if d.c == 0:
        return name
    if d.c > 0:
        return f"({name} + {d.c})"
    return f"max({name} - {-d.c}, 0)"


def upper_terms(coef: int, dims, space: Optional[Space] = None) -> List[SymSize]:
    """SymSizes (over input symbol numbers) whose largest is at least ``coef * product(dims)``
    for every binding of the input dims: ``s + c`` is at most ``s`` for ``c <= 0`` and at most
    ``max((c + 1) * s, c)`` for ``c > 0``; a run-time symbol is at most its bound."""
    options = []
    for d in dims:
        if space is not None:
            d = space.bound(d)
        if not isinstance(d, Aff):
            options.append([(int(d), None)])
        elif d.c <= 0:
            options.append([(1, d.k)])
        else:
            options.append([(d.c + 1, d.k), (d.c, None)])
    terms = []
    for choice in itertools.product(*options):
        c, symbols = coef, []
        for factor, k in choice:
            c *= factor
            if k is not None:
                symbols.append(k)
        terms.append(SymSize(c, tuple(sorted(symbols))))
    return terms


def exact(dims, space: Space) -> bool:
    """Whether every dim is static or an input symbol itself (what the C API can state)."""
    return all(not isinstance(d, Aff) or (d.c == 0 and d.k < space.nsym) for d in dims)


class NativeError(CompileError):
    """A program the native target cannot compile; names the op and where it was created."""


def describe(ins) -> str:
    return str(ins.origin) if ins.origin is not None else f"{ins.op} (an op the optimizer made)"


class Unify(Exception):
    """Raised while solving when ``ins`` only checks out with the input symbols ``ks`` equal:
    the library is built again assuming they are (the C wrapper checks it)."""

    def __init__(self, ks, ins):
        super().__init__(f"{describe(ins)} needs input dims {sorted(ks)} equal")
        self.ks, self.ins = frozenset(ks), ins


# --- solving a Program's dims ---------------------------------------------------------------------------------
class Dims:
    """The dims of every value of ``program`` (a tuple of int | Aff per value), given its
    feeds' dims and, where known, its feeds' values as sizes (``feed_scalars``: a scalar
    capture such as a scan's length), over the symbols of ``space``."""

    def __init__(self, program, feed_dims, space: Space, feed_scalars: Optional[dict] = None, label: str = ""):
        self.program, self.space, self.label = program, space, label
        self.names = space.labels
        self.sym = program.symbolic()
        self.root: Dict[tuple, object] = {}
        self.values: Dict[int, tuple] = {}
        self.unknown: Dict[int, str] = {}  # value -> why its dims are not known (raised where it is used)
        self.feed_scalars = dict(feed_scalars or {})
        self.probes = probes(space)
        self.producer = {v: ins for ins in program.instrs for v in ins.outputs}
        self._scalar_cache: dict = {}
        for v, dims in zip(program.feeds, feed_dims):
            self._assign(v, tuple(dims), None)
        for ins in program.instrs:
            self._instr(ins)
        for v in program.fetches:
            self.of(v)

    # -- lookup ---------------------------------------------------------------------------------------------
    def of(self, v: int) -> tuple:
        """The dims of ``v`` (an error saying why, where they are not known: ``unknown``)."""
        if v in self.unknown:
            raise NativeError(self.unknown[v])
        return self.values[v]

    def text(self, dims) -> str:
        """``dims`` as messages show them: ``[batch, 3]``."""
        return "[" + ", ".join(render(d, self.names) for d in dims) + "]"

    def _assign(self, v: int, dims: tuple, ins) -> None:
        shape = self.sym.shape(v)
        if len(shape) != len(dims):
            raise NativeError(f"internal error: {len(dims)} dims for a value of rank {len(shape)}")
        for axis, (s, d) in enumerate(zip(shape, dims)):
            if isinstance(s, tuple):
                # symbolic.py may have unified more symbols than an op needed (it unifies all of
                # an op's symbols when its probe fails): a symbol seen with two sizes is not used
                if self.root.setdefault(s, d) != d:
                    self.root[s] = _AMBIGUOUS
            elif isinstance(d, Aff) or int(d) != int(s):
                raise NativeError(f"{self._where(ins)}: dim {axis} of a value is {s} inside, but the value passed "
                                  f"in has {'a size from the input dims' if isinstance(d, Aff) else d}")
        self.values[v] = dims

    def _where(self, ins) -> str:
        if ins is not None:
            return describe(ins)
        return self.label or "an input"

    # -- one instr --------------------------------------------------------------------------------------------
    def _instr(self, ins) -> None:
        if ins.op in ("while_loop", "cond"):
            for v, dims in zip(ins.outputs, control_dims(self, ins)):
                if isinstance(dims, str):
                    self.unknown[v] = dims
                else:
                    self._assign(v, dims, ins)
            return
        missing = [v for v in ins.inputs if v in self.unknown]
        if missing:
            for v in ins.outputs:
                self.unknown[v] = self.unknown[missing[0]]
            return
        results = [self._infer(ins, probe) for probe in self.probes]
        if None in results:
            # the op needs some of its input dims equal (a body's where() between the batch of
            # sequence_length and of the inputs): the library must assume they are, and check
            ks = {d.k for u in ins.inputs for d in self.values[u] if isinstance(d, Aff) and d.k < self.space.nsym}
            if len(ks) > 1:
                raise Unify(ks, ins)
        for k, v in enumerate(ins.outputs):
            dims = []
            for axis, s in enumerate(self.sym.shape(v)):
                a, b = (r[k][axis] if r is not None else None for r in results)
                d = solve(a, b, *self.probes) if a is not None and b is not None else None
                if d is None and isinstance(s, tuple) and self.root.get(s, _AMBIGUOUS) is not _AMBIGUOUS:
                    d = self.root[s]  # e.g. fill's shape, a value symbolic.py follows
                if d is None:
                    t = self.program.types[v]
                    which = "" if len(ins.outputs) == 1 else f" {k}"
                    raise NativeError(
                        f"{describe(ins)}: dim {axis} of its output{which} {t} is not known from the input dims alone "
                        "(it depends on the data, or on the input dims other than by being equal to one plus a "
                        "constant); a native library computes every size from the input dims. Give the dim a "
                        "static size, or make it equal to an input dim")
                dims.append(d)
            self._assign(v, tuple(dims), ins)

    def _infer(self, ins, probe):
        """The op's output shapes for its inputs' dims under ``probe``, or None."""
        types = [TensorType(self.program.types[u].dtype, tuple(evaluate(d, probe) for d in self.values[u]))
                 for u in ins.inputs]
        try:
            return [tuple(t.shape) for t in ins.opdef.infer(types, ins.attrs)]
        except (InferenceError, ValueError, ZeroDivisionError, OverflowError, TypeError):
            return None

    # -- small integer values computed from shapes -----------------------------------------------------------
    def scalar(self, v: int):
        """``v`` (an integer scalar) as a dim (int | Aff), when it follows from the input dims
        alone (a size of an input, a constant, arithmetic on them); else None."""
        if v in self._scalar_cache:
            return self._scalar_cache[v]
        out = None
        a, b = (self._value(v, p, {}) for p in self.probes)
        if a is not None and b is not None and a.size == 1 and a.dtype.kind in "iu":
            out = solve(int(a.reshape(())), int(b.reshape(())), *self.probes)
        self._scalar_cache[v] = out
        return out

    def _value(self, v: int, probe, memo: dict):
        if v in memo:
            return memo[v]
        t = self.program.types[v]
        out = None
        ins = self.producer.get(v)
        if ins is None:
            if v in self.program.feeds and self.program.feeds.index(v) in self.feed_scalars:
                d = self.feed_scalars[self.program.feeds.index(v)]
                out = np.asarray(evaluate(d, probe), t.dtype.np) if d is not None else None
        elif t.shape.is_fully_defined() and int(np.prod(t.shape)) <= _SCALAR_ELEMENTS:
            if ins.op == "const":
                out = np.asarray(ins.attrs["value"])
            elif ins.op == "shape":
                out = np.asarray([evaluate(d, probe) for d in self.values[ins.inputs[0]]], t.dtype.np)
            elif ins.op == "while_loop" and v == ins.outputs[ins.attrs["n_vars"]]:
                # a loop's trip count, when the input dims decide it (a gradient's backward loop
                # counts up to its forward loop's)
                trips, _ = trip_count(self, ins)
                out = np.asarray(evaluate(trips, probe), t.dtype.np) if trips is not None else None
            elif not (ins.opdef.stateful or ins.opdef.random or ins.op in ("while_loop", "cond")):
                args = [self._value(u, probe, memo) for u in ins.inputs]
                if all(a is not None for a in args):
                    try:
                        out = np.asarray(ins.opdef.reference(args, ins.attrs, None)[ins.outputs.index(v)])
                    except Exception:  # noqa: BLE001 - not computable on the probes: not a size
                        out = None
        memo[v] = out
        return out


# --- control flow: its outputs' dims, solved through its bodies ----------------------------------------------
def control_dims(dims: Dims, ins) -> list:
    """Per output of the control-flow instr ``ins`` of ``dims.program``: its dims, or why they
    are not known from the input dims (a str, raised only where the output is used)."""
    settings = settings_of(dims.program)
    if ins.op == "cond":
        captures = [dims.of(v) for v in ins.inputs[1:]]
        scalars = {j: dims.scalar(v) for j, v in enumerate(ins.inputs[1:])}
        out = []
        for key in ("then", "else"):
            branch = Dims(body_program(ins.attrs[key], settings), captures, dims.space, scalars,
                          ins.attrs[key].label)
            out.append([branch.of(v) for v in branch.program.fetches])
        for k, (a, b) in enumerate(zip(*out)):
            if tuple(a) != tuple(b):
                raise NativeError(
                    f"{describe(ins)}: its branches return output {k} with different shapes ({dims.text(a)} when "
                    f"true, {dims.text(b)} when false), so its size depends on the data; a native library "
                    "computes every size from the input dims before it runs. Make both branches return the same "
                    "shape")
        return out[0]
    attrs = ins.attrs
    n = attrs["n_vars"]
    var_dims = [dims.of(v) for v in ins.inputs[:n]]
    out = list(var_dims) + [()]
    rows = list(var_dims) if attrs.get("history") else []
    if attrs.get("n_stacked"):  # the body's values past the loop variables: the body's dims
        n_in = len(ins.inputs) - (1 if attrs["has_limit"] else 0)
        body = Dims(body_program(attrs["body"], settings), [dims.of(v) for v in ins.inputs[:n_in]], dims.space,
                    {j: dims.scalar(v) for j, v in enumerate(ins.inputs[:n_in]) if j >= n}, attrs["body"].label)
        rows += [body.of(v) for v in body.program.fetches[n:]]
    if rows:
        trips, why = trip_count(dims, ins)
        if trips is None and attrs["has_limit"] and dims.scalar(ins.inputs[-1]) is not None:
            # only bounded: the history region holds maximum_iterations rows; what reads it
            # sees the trip count the loop stores when it ends (a run-time symbol)
            trips = dims.space.run_symbol(ins, dims.scalar(ins.inputs[-1]), describe(ins))
        for row in rows:
            out.append((trips, *row) if trips is not None else
                       f"{describe(ins)} returns its history (the loop variables or values of every iteration, "
                       f"stacked, as gc.scan, map_fn and dynamic_rnn outputs and gradients through a loop read them), "
                       f"which has one row per iteration, and {why}; a "
                       "native library computes every size from the input dims before it runs")
    return out


def trip_count(dims: Dims, ins):
    """(the number of iterations of the while_loop ``ins`` as a dim (int | Aff), None) when the
    input dims decide it, else (None, why). Decided: a counter ``i`` that starts at a value
    known from the input dims, steps by 1, and a cond ``i < n`` with ``n`` known from the
    input dims (scan, map_fn and dynamic_rnn loop so), the trips are ``max(n - start, 0)``;
    a cond that is always true and ``maximum_iterations``, the limit; each bounded by
    ``maximum_iterations`` when both are known and one bounds the other."""
    attrs = ins.attrs
    n = attrs["n_vars"]
    settings = settings_of(dims.program)
    cond = body_program(attrs["cond"], settings)
    body = body_program(attrs["body"], settings)
    limit = dims.scalar(ins.inputs[-1]) if attrs["has_limit"] else None
    if attrs["has_limit"] and limit is None:
        return None, "its maximum_iterations is not known from the input dims"
    trips = None
    cprod = cond.producers()
    pred = cprod.get(cond.fetches[0])
    pred = cond.instrs[pred] if pred is not None else None
    if pred is not None and pred.op == "const" and bool(pred.attrs["value"]) and limit is not None:
        trips = limit
    elif counter_of(cond, body, n) is not None:
        c, (kind, value) = counter_of(cond, body, n)
        bound = dims.scalar(ins.inputs[value]) if kind == "feed" else value
        start = dims.scalar(ins.inputs[c])
        if bound is not None and isinstance(start, int):
            if isinstance(bound, Aff):
                trips = Aff(bound.k, bound.c - start)
            else:
                trips = max(int(bound) - start, 0)
    if trips is None:
        return None, ("its trip count is not known from the input dims (only a counter i = start, start + 1, ... "
                      "with the cond i < n, n from the input dims, or maximum_iterations with a cond that is "
                      "always true, decides it) and no maximum_iterations known from them bounds it")
    if limit is not None and trips != limit:
        if isinstance(trips, int) and isinstance(limit, int):
            trips = max(min(trips, limit), 0)
        else:
            return None, "its trip count is the smaller of two sizes (the cond's and maximum_iterations)"
    return trips, None

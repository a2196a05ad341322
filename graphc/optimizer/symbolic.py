"""Symbolic dims: which ``None`` dims of a Program are the same run-time size.

Every ``None`` dim of a feed is a symbol. Symbols flow through ops by running each op's own
shape inference on *probe* sizes (a distinct large prime per symbol) and reading the probes
back out of the result, so no op needs a symbolic rule of its own. When an op only checks
out with two symbols equal (broadcasting (None, 3) with (None, 3), labels against logits),
the symbols are unified: the program is compiled assuming they are equal, and
``check_bindings`` verifies that assumption on each new set of concrete feed shapes.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence

from ..errors import InferenceError
from ..shapes import TensorType
from .program import Program


@dataclass(frozen=True)
class SymSize:
    """``coef * product(symbols)``: a size (in bytes, or elements) that holds for every
    binding of the run-time dims. The memory plan's buffers, the schedule's regions and the
    native library's workspace are sized with it."""

    coef: int
    symbols: tuple = ()

    def evaluate(self, binding: Mapping) -> int:
        n = self.coef
        for s in self.symbols:
            n *= binding[s]
        return n

    def relabel(self, names: Mapping) -> "SymSize":
        """The same size over other names for the symbols (the native library numbers them)."""
        return SymSize(self.coef, tuple(sorted(names[s] for s in self.symbols)))

    def render(self, names: Mapping) -> str:
        """Source for the size (Python or C), with ``names[symbol]`` for each symbol."""
        parts = [names[s] for s in self.symbols]
        if self.coef != 1 or not parts:
            parts.append(str(self.coef))
        return " * ".join(parts)

    def __str__(self) -> str:
        return " * ".join([str(self.coef)] + [f"s{s[1]}" if isinstance(s, tuple) else f"s{s}" for s in self.symbols])


def largest(sizes) -> list:
    """The sizes no other one bounds (same symbols, a smaller coefficient), in a fixed order:
    a region that must hold any of ``sizes`` holds these."""
    best: dict = {}
    for t in sizes:
        if t.symbols not in best or best[t.symbols].coef < t.coef:
            best[t.symbols] = t
    return sorted(best.values(), key=lambda t: (t.symbols, t.coef))


def _primes():
    n = 1_000_003
    while True:
        if all(n % p for p in range(3, int(n ** 0.5) + 1, 2)):
            yield n
        n += 2


class SymbolicShapes:
    """Computed once per Program (``Program.symbolic()``): fusion, the memory plan, the
    schedule and every target share it."""

    def __init__(self, program: Program):
        self.types = program.types
        self.parent: dict = {}
        self.dims: dict = {}
        self._fresh = itertools.count()
        for v in program.feeds:
            self.dims[v] = tuple(d if d is not None else self._new() for d in program.types[v].shape)
        for ins in program.instrs:
            self._propagate(program, ins)

    # -- union-find over symbols (a symbol is a tuple ("s", id)) --------------------------------
    def _new(self):
        s = ("s", next(self._fresh))
        self.parent[s] = s
        return s

    def find(self, s):
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def _unify(self, symbols) -> None:
        roots = sorted({self.find(s) for s in symbols})
        for r in roots[1:]:
            self.parent[r] = roots[0]

    def shape(self, v: int) -> tuple:
        """Symbolic dims of value ``v``: ints where static, canonical symbols elsewhere."""
        return tuple(self.find(d) if isinstance(d, tuple) else d for d in self.dims[v])

    def same_shape(self, a: int, b: int) -> bool:
        return self.shape(a) == self.shape(b)

    def size(self, dims, itemsize: int = 1) -> SymSize:
        """The SymSize of ``itemsize * product(dims)``, dims being ints or symbols."""
        coef, symbols = itemsize, []
        for d in dims:
            if isinstance(d, tuple):
                symbols.append(self.find(d))
            else:
                coef *= d
        return SymSize(coef, tuple(sorted(symbols)))

    def nbytes(self, v: int) -> SymSize:
        return self.size(self.shape(v), self.types[v].dtype.itemsize)

    # -- propagation ------------------------------------------------------------------------------------
    def _propagate(self, program: Program, ins) -> None:
        in_dims = [self.shape(v) for v in ins.inputs]
        symbols = sorted({d for dims in in_dims for d in dims if isinstance(d, tuple)})
        out_types = [program.types[v] for v in ins.outputs]
        result = self._probe(ins, in_dims, symbols, program)
        if result is None and symbols:
            self._unify(symbols)  # the op needs its symbolic dims equal: assume they are
            in_dims = [self.shape(v) for v in ins.inputs]
            symbols = sorted({d for dims in in_dims for d in dims if isinstance(d, tuple)})
            result = self._probe(ins, in_dims, symbols, program)
        for k, (v, t) in enumerate(zip(ins.outputs, out_types)):
            dims = []
            for j, d in enumerate(t.shape):
                if d is not None:
                    dims.append(d)
                elif result is not None and isinstance(result[k][j], tuple):
                    dims.append(result[k][j])
                else:
                    dims.append(self._new())
            self.dims[v] = tuple(dims)

    def _probe(self, ins, in_dims, symbols, program) -> Optional[list]:
        probe_of = dict(zip(symbols, _primes()))
        symbol_of = {p: s for s, p in probe_of.items()}
        types = [TensorType(program.types[v].dtype, tuple(probe_of.get(d, d) for d in dims))
                 for v, dims in zip(ins.inputs, in_dims)]
        try:
            out = ins.opdef.infer(types, ins.attrs)
        except (InferenceError, ValueError, ZeroDivisionError):
            return None
        return [tuple(symbol_of.get(d, None) for d in t.shape) for t in out]

    # -- run time -------------------------------------------------------------------------------------
    def check_bindings(self, concrete: Dict[int, Sequence[int]]) -> Optional[str]:
        """Given concrete shapes of (some) values, ``None`` if every symbol has one size,
        else a description of the first conflict."""
        seen: dict = {}
        for v, shape in concrete.items():
            for d, n in zip(self.shape(v) if v in self.dims else (), shape):
                if isinstance(d, tuple):
                    if seen.setdefault(d, n) != n:
                        return f"dims assumed equal have sizes {seen[d]} and {n}"
        return None

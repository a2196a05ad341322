"""Loop nests over an iteration space, with per-operand offsets, and the SourceWriter they
are written with (the indexing half of the emitters; context.py holds a kernel's storage and
arguments, groups.py and ops.py what each element computes)."""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Dict, List, Sequence

class SourceWriter:
    def __init__(self, indent: int = 0):
        self.lines: list = []
        self.level = indent

    def __call__(self, line: str = "") -> None:
        self.lines.append(("    " * self.level + line) if line else "")

    @contextlib.contextmanager
    def block(self, header: str):
        self(header)
        self.level += 1
        try:
            yield
        finally:
            self.level -= 1

    def extend_lines(self, lines) -> None:
        for line in lines:
            self(line)

    def extend(self, other: "SourceWriter") -> None:
        self.lines.extend(other.lines)

    def text(self) -> str:
        return "\n".join(self.lines)


def product(terms) -> str:
    terms = [str(t) for t in terms]
    return " * ".join(terms) if terms else "1"


def static_int(expr: str):
    """A dim expression's value where it is a literal (the static shape fixed it), else None."""
    try:
        return int(expr)
    except (TypeError, ValueError):
        return None


# Runs up to this long are copied as straight-line code (see copy_run).
STRAIGHT_COPY = 64


def copy_run(w, dst_array: str, dst: str, src_array: str, src: str, length: str, j: str) -> None:
    """``dst_array[dst:dst + length] = src_array[src:src + length]``. A run of short literal
    length is written as all its loads, then all its stores: LLVM cannot tell two arrays
    apart, so a short loop of copies stays scalar (fully unrolled, each store possibly
    feeding the next load), while loads that come first may be bundled into vectors (LeNet's
    conv2 patches, runs of 30: 4.4 -> 1.1 us)."""
    n = literal_product(length)
    if n is None or n > STRAIGHT_COPY:
        with w.block(f"for {j} in range({length}):"):
            w(f"{dst_array}[{dst} + {j}] = {src_array}[{src} + {j}]")
        return
    for k in range(n):
        w(f"{j}_{k} = {src_array}[{src} + {k}]")
    for k in range(n):
        w(f"{dst_array}[{dst} + {k}] = {j}_{k}")


def literal_product(expr: str):
    """The value of ``"a * b * ..."`` (or of one literal) when every factor is a literal,
    else None."""
    parts = [static_int(p.strip(" ()")) for p in str(expr).split("*")]
    return math.prod(parts) if parts and all(v is not None for v in parts) else None


# Broadcasting modes of a kernel (codegen.py): fixed at compile time from symbolic shapes, or
# computed at run time for the shapes that break that assumption.
STATIC, DYNAMIC = "static", "dynamic"


def classify(cg, u: int, space: int) -> List[str]:
    """Per dim of ``space``: 'e' if operand ``u`` runs along it (the same static size or the
    same symbol: the executable checks symbols on concrete shapes), 'b' if it is broadcast
    (missing, or a static 1), 'r' if only the run-time sizes can tell."""
    su, ss = cg.sym.shape(u), cg.sym.shape(space)
    offset = len(ss) - len(su)
    out = []
    for k, d in enumerate(ss):
        j = k - offset
        if j < 0 or (su[j] == 1 and d != 1):
            out.append("b")
        elif su[j] == d:
            out.append("e")
        else:
            out.append("r")
    return out


class Operand:
    """How to read (or write) one array in a loop nest over a space."""

    def __init__(self, name: str, strides: Sequence[str]):
        self.name = name          # flat array variable
        self.strides = list(strides)  # one source expression per space dim ("0", "1", or a local)


def strides_for(cg, w: SourceWriter, u: int, space: int, mode: str) -> List[str]:
    """Strides of operand ``u`` along each dim of ``space`` (0 where broadcast)."""
    rank_s, rank_u = cg.rank(space), cg.rank(u)
    offset = rank_s - rank_u
    dims_u = [cg.dim(u, j) for j in range(rank_u)]
    kinds = classify(cg, u, space) if mode == STATIC else None
    strides = []
    for k in range(rank_s):
        j = k - offset
        if j < 0:
            strides.append("0")
            continue
        contiguous = product(dims_u[j + 1:])
        if mode == STATIC and kinds[k] != "r":
            strides.append("0" if kinds[k] == "b" else contiguous)
        else:
            name = cg.uid("st")
            w(f"{name} = 0 if {dims_u[j]} == 1 else {contiguous}")
            strides.append(name)
    return strides


def contiguous_strides(cg, space: int) -> List[str]:
    dims = [cg.dim(space, k) for k in range(cg.rank(space))]
    return [product(dims[k + 1:]) for k in range(len(dims))]


def rebase(cg, w: SourceWriter, operands: Dict[object, Operand], bounds) -> str:
    """For a loop split to ``[lo, hi)`` along the outermost dim: view every operand that
    moves along that dim from its part's start, and return the part's extent."""
    lo, hi = bounds
    for op in operands.values():
        if op.name and op.strides and op.strides[0] != "0":
            view = cg.uid("part")
            w(f"{view} = {op.name}[{lo} * {op.strides[0]}:]")
            op.name = view
    return f"({hi} - {lo})"


def nest(cg, w: SourceWriter, dims: Sequence[str], operands: Dict[object, Operand],
         body: Callable[[SourceWriter, Dict[object, str]], None], outer_range: str = None) -> None:
    """Nested loops over ``dims``; ``body`` gets, per operand key, the offset expression of
    the current element. A rank-0 space runs the body once with offsets 0. ``outer_range``
    replaces the outermost loop's ``range(...)``. On a GPU: ``grid_nest``."""
    if cg.target == "cuda":
        assert outer_range is None
        grid_nest(cg, w, dims, operands, body)
        return
    if not dims:
        body(w, {key: "0" for key in operands})
        return
    level_offsets = {key: None for key in operands}

    def open_level(k: int) -> None:
        idx = cg.uid("i")
        loop_range = outer_range if (k == 0 and outer_range) else f"range({dims[k]})"
        w.lines.append("    " * w.level + f"for {idx} in {loop_range}:")
        w.level += 1
        last = k == len(dims) - 1
        for key, op in operands.items():
            stride = op.strides[k]
            prev = level_offsets[key]
            term = None if stride == "0" else (idx if stride == "1" else f"{idx} * {stride}")
            if prev is None and term is None:
                expr = "0"
            elif prev is None:
                expr = term
            elif term is None:
                expr = prev
            else:
                expr = f"{prev} + {term}"
            if last or expr in ("0",) or expr == prev:
                level_offsets[key] = expr
            else:
                name = cg.uid("o")
                w(f"{name} = {expr}")
                level_offsets[key] = name

    for k in range(len(dims)):
        open_level(k)
    body(w, dict(level_offsets))
    w.level -= len(dims)


def decode_index(cg, w: SourceWriter, dims: Sequence[str], flat: str, names: Sequence[str] = ()) -> list:
    """Locals holding the per-dim indices (``names``, or fresh ``d`` names) of the element
    whose flat (row-major) index in a space of ``dims`` is ``flat``: divisions, innermost first."""
    index = list(names) or [cg.uid("d") for _ in dims]
    rest = flat
    for k in range(len(dims) - 1, -1, -1):
        if k == 0:
            w(f"{index[k]} = {rest}")
        else:
            w(f"{index[k]} = {rest} % ({dims[k]})")
            nxt = cg.uid("r")
            w(f"{nxt} = {rest} // ({dims[k]})")
            rest = nxt
    return index


def decode_offsets(cg, w: SourceWriter, dims: Sequence[str], operands: Dict[object, Operand],
                   flat: str) -> Dict[object, str]:
    """Offsets of every operand at the element whose flat (row-major) index in a space of
    ``dims`` is ``flat``."""
    index = decode_index(cg, w, dims, flat)
    offsets = {}
    for key, op in operands.items():
        terms = [index[k] if st == "1" else f"{index[k]} * {st}" for k, st in enumerate(op.strides) if st != "0"]
        offsets[key] = " + ".join(terms) if terms else "0"
    return offsets


def grid_nest(cg, w: SourceWriter, dims: Sequence[str], operands: Dict[object, Operand],
              body: Callable[[SourceWriter, Dict[object, str]], None]) -> None:
    """``nest`` for a GPU: one grid-stride loop over the flattened space; each thread
    decodes its flat index into per-dim indices and forms every operand's offset."""
    flat = cg.uid("i")
    with w.block(f"for {flat} in range(cuda.grid(1), {product(dims) if dims else '1'}, cuda.gridsize(1)):"):
        body(w, decode_offsets(cg, w, dims, operands, flat))

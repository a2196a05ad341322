"""``gc.einsum(equation, *inputs)``: TF1's ``tf.einsum``, built from existing ops.

An equation lowers to transposes, reshapes, ``reduce_sum``, broadcasting ``multiply`` and
``matmul``, so every target, the gradients and the fusion rules come with those ops. Two
operands become one (batched) matmul: batch labels (in both operands and the output) stay
leading axes, each operand's other kept labels and the contracted labels are merged into one
axis each. Where a merge cannot be written as a reshape (two merged groups with unknown
sizes, or a size-1 axis broadcast against a contracted one), the operands are broadcast
against each other and multiplied, and the contracted labels summed (one fused reduction).
More than two operands are contracted left to right.

Supported: explicit (``ij,jk->ik``) and implicit (``ij,jk``: the labels that appear once,
sorted) outputs, ``...`` for leading broadcast axes, any number of operands. Not supported (a
clear error): a label repeated within one operand (diagonals and traces).
"""
from __future__ import annotations

import string
from typing import List, Optional

import numpy as np

from ..graph import Tensor
from ._build import shape_error
from .source import convert_to_tensor

_LETTERS = set(string.ascii_letters)


def _error(message: str):
    return shape_error("einsum", message)


def _parse_term(term: str, rank: int, which: str, n_ellipsis: Optional[int] = None) -> List[str]:
    """The labels of one operand's axes; ``...`` becomes labels "0", "1", ... aligned right
    against the widest ellipsis (so that shorter ones broadcast)."""
    if term.count("...") > 1:
        raise _error(f"{which} {term!r} has more than one '...'")
    head, dots, tail = term.partition("...")
    for part in (head, tail):
        bad = [c for c in part if c not in _LETTERS]
        if bad:
            raise _error(f"{which} {term!r} has {bad[0]!r}: labels are letters, with at most one '...'")
    if not dots:
        if rank is not None and len(term) != rank:
            raise _error(f"{which} {term!r} has {len(term)} labels but the operand has rank {rank}")
        return list(term)
    k = rank - len(head) - len(tail) if rank is not None else n_ellipsis
    if k < 0:
        raise _error(f"{which} {term!r} names {len(head) + len(tail)} axes but the operand has rank {rank}")
    width = n_ellipsis if n_ellipsis is not None else k
    return list(head) + [str(width - k + j) for j in range(k)] + list(tail)


def _parse(equation: str, tensors: List[Tensor]):
    if not isinstance(equation, str):
        raise _error(f"the equation must be a string, got {equation!r}")
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    if "->" in rhs:
        raise _error(f"equation {equation!r} has more than one '->'")
    terms = lhs.split(",")
    if len(terms) != len(tensors):
        raise _error(f"equation {equation!r} has {len(terms)} operand(s) but {len(tensors)} input(s) were given")
    labels = [_parse_term(t, x.ndim, f"operand {i} of {equation!r}") for i, (t, x) in enumerate(zip(terms, tensors))]
    n_ellipsis = max([sum(1 for c in ls if c.isdigit()) for ls in labels] + [0])
    labels = [_parse_term(t, x.ndim, f"operand {i} of {equation!r}", n_ellipsis)
              for i, (t, x) in enumerate(zip(terms, tensors))]
    for t, ls in zip(terms, labels):
        seen = [c for c in ls if ls.count(c) > 1]
        if seen:
            raise _error(f"label {seen[0]!r} appears twice in operand {t!r} of {equation!r}: diagonals and traces "
                         "are not supported")
    counts: dict = {}
    for ls in labels:
        for c in ls:
            counts[c] = counts.get(c, 0) + 1
    ell = [str(j) for j in range(n_ellipsis)]
    if arrow:
        if "..." not in rhs and n_ellipsis and any(c.isdigit() for ls in labels for c in ls):
            raise _error(f"equation {equation!r}: the output must have '...' where the inputs have it")
        out = _parse_term(rhs, None, f"the output of {equation!r}", n_ellipsis)
        for c in out:
            if out.count(c) > 1:
                raise _error(f"label {c!r} appears twice in the output of {equation!r}")
            if c not in counts:
                raise _error(f"output label {c!r} of {equation!r} is in no input")
    else:
        out = ell + sorted(c for c, n in counts.items() if n == 1 and not c.isdigit())
    sizes: dict = {}
    for t, ls, x in zip(terms, labels, tensors):
        for c, d in zip(ls, x.shape):
            prev = sizes.get(c)
            if d is None or d == 1:
                sizes.setdefault(c, d)
            elif prev not in (None, 1, d):
                name = "'...'" if c.isdigit() else repr(c)
                raise _error(f"label {name} of {equation!r} has size {prev} in one operand and {d} in operand {t!r}")
            else:
                sizes[c] = d
    return labels, out


def _sum_out(x: Tensor, ls: List[str], keep) -> tuple:
    from .reduce import reduce_sum
    drop = [k for k, c in enumerate(ls) if c not in keep]
    if drop:
        x = reduce_sum(x, axis=drop)
        ls = [c for c in ls if c in keep]
    return x, ls


def _arrange(x: Tensor, ls: List[str], order: List[str]) -> Tensor:
    """``x`` with its axes in ``order`` (labels it lacks become size-1 axes)."""
    from .shape import reshape, transpose
    mine = [c for c in order if c in ls]
    perm = [ls.index(c) for c in mine]
    if perm != list(range(len(perm))):
        x = transpose(x, perm)
    if len(mine) == len(order):
        return x
    spec = [_dim(x, mine.index(c)) if c in mine else 1 for c in order]
    return reshape(x, spec)


def _dim(x: Tensor, k: int):
    from .source import shape
    d = x.shape[k]
    return int(d) if d is not None else shape(x)[k]


def _group(x: Tensor, axes: List[int]):
    """A reshape entry for the product of ``x``'s ``axes``: an int, a run-time dim, or None
    where only a -1 can say it."""
    if not axes:
        return 1
    if len(axes) == 1:
        return _dim(x, axes[0])
    dims = [x.shape[k] for k in axes]
    return int(np.prod(dims)) if None not in dims else None


def _pair(a: Tensor, la: List[str], b: Tensor, lb: List[str], keep) -> tuple:
    """Contract two operands, keeping the labels in ``keep``; returns (tensor, labels)."""
    from .linalg import matmul
    from .shape import reshape
    batch = [c for c in la if c in lb and c in keep]
    contracted = [c for c in la if c in lb and c not in keep]
    free_a = [c for c in la if c not in lb]
    free_b = [c for c in lb if c not in la]
    xa = _arrange(a, la, batch + free_a + contracted)
    xb = _arrange(b, lb, batch + contracted + free_b)
    nb = len(batch)
    ga = [_group(xa, list(range(nb, nb + len(free_a)))), _group(xa, list(range(nb + len(free_a), xa.ndim)))]
    gb = [_group(xb, list(range(nb, nb + len(contracted)))), _group(xb, list(range(nb + len(contracted), xb.ndim)))]
    ka = [xa.shape[nb + len(free_a) + j] for j in range(len(contracted))]
    kb = [xb.shape[nb + j] for j in range(len(contracted))]
    broadcast_k = any(p != q and (p == 1 or q == 1) for p, q in zip(ka, kb))  # a size-1 axis spread
    if not contracted or ga.count(None) > 1 or gb.count(None) > 1 or broadcast_k:  # nothing to contract: a product
        return _broadcast_pair(xa, batch + free_a + contracted, xb, batch + contracted + free_b, keep)
    lead_a = [_dim(xa, k) for k in range(nb)]
    lead_b = [_dim(xb, k) for k in range(nb)]
    ma = reshape(xa, lead_a + [-1 if g is None else g for g in ga])
    mb = reshape(xb, lead_b + [-1 if g is None else g for g in gb])
    prod = matmul(ma, mb)
    dims = [_dim(prod, k) for k in range(nb)] + [_dim(xa, nb + j) for j in range(len(free_a))] + \
           [_dim(xb, nb + len(contracted) + j) for j in range(len(free_b))]
    if not (len(free_a) == 1 and len(free_b) == 1):  # the merged [FA, FB] back to their labels' axes
        prod = reshape(prod, dims)
    return prod, batch + free_a + free_b


def _broadcast_pair(a: Tensor, la: List[str], b: Tensor, lb: List[str], keep) -> tuple:
    from .reduce import reduce_sum
    order = [c for c in la if c in keep] + [c for c in lb if c in keep and c not in la]
    for c in la + lb:
        if c not in order:
            order.append(c)
    prod = _arrange(a, la, order) * _arrange(b, lb, order)
    summed = [k for k, c in enumerate(order) if c not in keep]
    if summed:
        prod = reduce_sum(prod, axis=summed)
    return prod, [c for c in order if c in keep]


def einsum(equation, *inputs, name: Optional[str] = None) -> Tensor:
    """TF1's ``tf.einsum(equation, *inputs)``: e.g. ``'ij,jk->ik'`` (matmul), ``'bij,bjk->bik'``
    (batched), ``'i,j->ij'`` (outer), ``'ij->ji'``, ``'ij->'``, ``'...ij,jk->...ik'``.
    Lowers to transpose, reshape, reduce_sum, multiply and matmul (see the module doc)."""
    from .control import identity
    from .reduce import reduce_sum
    if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
        inputs = tuple(inputs[0])
    if not inputs:
        raise _error("needs at least one input")
    tensors = [convert_to_tensor(x) for x in inputs]
    labels, out = _parse(equation, tensors)
    if len({t.dtype for t in tensors}) > 1:
        from ._build import dtype_error
        raise dtype_error("einsum", "inputs must have one dtype, got " + ", ".join(t.dtype.name for t in tensors))
    x, lx = tensors[0], labels[0]
    later = [c for ls in labels[1:] for c in ls]
    x, lx = _sum_out(x, lx, set(out) | set(later))
    for k in range(1, len(tensors)):
        rest = set(out) | {c for ls in labels[k + 1:] for c in ls}
        y, ly = _sum_out(tensors[k], labels[k], rest | set(lx))
        x, lx = _pair(x, lx, y, ly, rest)
    if len(tensors) == 1:
        extra = [k for k, c in enumerate(lx) if c not in out]
        if extra:
            x = reduce_sum(x, axis=extra)
            lx = [c for c in lx if c in out]
    x = _arrange(x, lx, out)
    return identity(x, name=name or "einsum") if name else x

"""The op registry: every op is defined once, here in ``graphc/ops/``, by an :class:`OpDef`.

An OpDef holds the op's type and shape inference and its NumPy reference implementation. An
op that the emitters can compose also carries, in the same place, its gradient rule, its
scalar formula (shared by every compiled target) and its ONNX op type (docs/ADDING-AN-OP.md).
Rules that need more than the op itself (shared by several ops, backend overrides, many-node
ONNX translations) live in tables keyed by op name: ``graphc/autodiff/rules.py``,
``graphc/codegen/emit/``, ``graphc/export/onnx.py``. The registry tests check that every op
is covered one way or the other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from ..attrs import Attrs
from ..shapes import TensorType

InferFn = Callable[[Sequence[TensorType], Attrs], Sequence[TensorType]]
# reference(inputs, attrs, ctx) -> outputs. ``ctx`` is the run's context (session state) for
# stateful ops and None when an op is evaluated outside a run (constant folding).
ReferenceFn = Callable[[Sequence[np.ndarray], Attrs, object], Sequence[np.ndarray]]


@dataclass(frozen=True)
class OpDef:
    name: str
    family: str
    infer: InferFn
    reference: ReferenceFn
    # Reads or writes session state (variables, random counters): never folded, merged or dropped.
    stateful: bool = False
    random: bool = False
    # One output, computed element by element over the broadcast of its inputs.
    elementwise: bool = False
    # Inputs whose data is never read, only their run-time shape (e.g. the ``like`` of zeros_like).
    shape_only_inputs: Callable[[Attrs, int], tuple] = field(default=lambda attrs, n: ())
    # Has no outputs and exists only for ordering or naming (no_op, variable declarations).
    structural: bool = False
    # A run-time check that can stop the run (check_range): it runs whenever the fetches reach
    # it, through data or control edges, even when nothing reads its output; dead-code
    # elimination never drops it (it may still be merged with an identical check, or folded
    # away when its input is a constant that passes).
    check: bool = False
    doc: str = ""
    # gradient(op, grads) -> one gradient (or None) per input, in graph ops (autodiff/rules.py
    # holds the rules of ops that do not carry their own).
    gradient: Optional[Callable] = None
    # formula(e, x) -> source of one element (codegen/emit/scalar.py explains ``e`` and ``x``).
    formula: Optional[Callable] = None
    # The ONNX op type computing the same thing from the same inputs (a reduction: with its
    # axes and keepdims), with no other attributes.
    onnx: Optional[str] = None
    # A reduction the emitters compose (ops/reduce.py, Fold).
    fold: Optional[object] = None
    # The attributes that hold bodies (control flow: ops/control_flow.py); never folded.
    bodies: tuple = ()


OPS: dict[str, OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    if opdef.name in OPS:
        raise ValueError(f"op {opdef.name!r} is registered twice")
    OPS[opdef.name] = opdef
    return opdef


def get_op(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op type {name!r}") from None


def define(name: str, family: str, infer: InferFn, reference: ReferenceFn, **flags) -> OpDef:
    return register(OpDef(name=name, family=family, infer=infer, reference=reference, **flags))


def one_output(fn: Callable[..., np.ndarray]) -> ReferenceFn:
    """Adapt ``fn(*inputs, attrs)`` returning one array into the reference signature."""
    def reference(inputs, attrs, ctx=None):
        return (fn(*inputs, attrs),)
    reference.__name__ = getattr(fn, "__name__", "reference")
    return reference


def find_opdef(name: str) -> Optional[OpDef]:
    return OPS.get(name)


def rule_registrar(table: dict, what: str, replace: bool = False) -> Callable:
    """A decorator factory filling ``table`` (op name -> rule), the way gradient rules,
    kernels and exporters are kept: ``@rule("add", "subtract") def _(...)``. A name
    registered twice is an error unless ``replace`` (a backend overriding a copied table)."""
    def rule(*names: str):
        def register(fn):
            for name in names:
                if name in table and not replace:
                    raise ValueError(f"{what} for {name!r} registered twice")
                table[name] = fn
            return fn
        return register
    return rule

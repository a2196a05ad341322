"""``theano.function``, ``theano.grad``, ``theano.clone`` and ``theano.scan`` over graphc.

``theano.function(inputs, outputs, updates, givens)`` becomes one compiled graphc callable
(``Session.make_callable``) in the graph's Theano session (``variables.session_for``):

- ``givens`` are built into the graph: ``clone`` copies the ops between the outputs (and the
  update expressions) and the replaced variables, with the replacements as their inputs. A
  replacement may be any expression (``train_set_x[index * batch_size: ...]``), so one run
  per call computes it together with the outputs; nothing is fed twice.
- ``updates`` are ``assign`` ops fetched with the outputs. graphc's state rule (a read sees the
  value from before any write to the same variable unless it depends on that write) gives
  Theano's simultaneous updates: every new value and every output is computed from the old
  values, then the writes land.
"""
from __future__ import annotations

import numbers
import warnings
from collections import OrderedDict
from typing import Optional

import numpy as np

from ..autodiff import gradients
from ..errors import DTypeError, GraphcError, ShapeError
from ..graph import Operation, Tensor, ancestors, user_location
from ..ops.control_flow import theano_scan
from ..ops.source import convert_to_tensor, zeros_like
from .variables import SharedVariable, TensorVariable, session_for, unwrap, unwrap_tensor, wrap


class UnusedInputError(GraphcError, ValueError):
    """An input of ``theano.function`` that the outputs do not need (``on_unused_input='raise'``)."""


class DisconnectedInputError(GraphcError, ValueError):
    """``theano.grad`` with respect to a variable the cost does not depend on."""


def _label(v) -> str:
    if isinstance(v, SharedVariable):
        return f"'{v.name or v.variable.var_name}' (created at {v.variable.location})"
    if isinstance(v, TensorVariable):
        return f"'{v.name or v.gc.name}' (created at {v.gc.location})"
    if isinstance(v, Tensor):
        return f"'{v.name}' (created at {v.location})"
    return repr(v)


# --- clone ---------------------------------------------------------------------------------------
def clone_tensors(outputs: list, replace: dict) -> list:
    """``outputs`` (graphc tensors and operations) with each key of ``replace`` (a tensor)
    replaced by its value: the ops between them are added again with the new inputs; ops that
    do not depend on a replaced tensor are shared. The graph is append-only, so an op's id
    orders it after its inputs."""
    if not replace:
        return list(outputs)
    cut = set(replace)
    needed = sorted(ancestors(outputs, cut=cut), key=lambda op: op._id)
    mapping: dict = dict(replace)
    new_ops: dict = {}
    for op in needed:
        inputs = [mapping.get(t, t) for t in op.inputs]
        controls = [new_ops.get(c, c) for c in op.control_inputs]
        if all(a is b for a, b in zip(inputs, op.inputs)) and all(a is b for a, b in zip(controls, op.control_inputs)):
            continue
        graph = op.graph
        with graph.control_dependencies(None), graph.control_dependencies(controls or None):
            new = graph.create_op(op.type, inputs, op.attrs, name=op.name, location=op.location)
        new_ops[op] = new
        for old_t, new_t in zip(op.outputs, new.outputs):
            mapping[old_t] = new_t
    return [new_ops.get(o, o) if isinstance(o, Operation) else mapping.get(o, o) for o in outputs]


def _replacement_pairs(givens, where: str) -> dict:
    """``givens`` (pairs or a dict) as a map from graphc tensors to graphc tensors."""
    items = list(givens.items()) if isinstance(givens, dict) else list(givens or [])
    out: dict = {}
    for pair in items:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise TypeError(f"givens at {where}: expected (variable, replacement) pairs, got {pair!r}")
        key, value = pair
        if not isinstance(key, TensorVariable):
            raise TypeError(f"givens at {where}: the variable to replace must be a Theano variable, got {key!r}")
        old = unwrap_tensor(key)
        new = unwrap_tensor(value) if isinstance(value, (TensorVariable, Tensor)) else \
            convert_to_tensor(np.asarray(value, dtype=old.dtype.np))
        if new.dtype is not old.dtype or new.ndim != old.ndim:
            raise DTypeError(f"givens at {where}: {_label(key)} is {old.dtype.name} of rank {old.ndim}, but its "
                             f"replacement {_label(value)} is {new.dtype.name} of rank {new.ndim} (cast it with T.cast)")
        keys = key.variable.reads() if isinstance(key, SharedVariable) else [old]
        for k in keys:
            out[k] = new
    return out


def clone(output, replace=None, strict: bool = True, share_inputs: bool = True):
    """``theano.clone(output, replace)``: ``output`` (a variable or a list) with the variables in
    ``replace`` (a dict or pairs) replaced."""
    where = user_location()
    mapping = _replacement_pairs(replace, where)
    single = not isinstance(output, (list, tuple))
    outs = [unwrap_tensor(o) for o in ([output] if single else output)]
    result = wrap(clone_tensors(outs, mapping))
    return result[0] if single else result


# --- function -------------------------------------------------------------------------------------
def _update_pairs(updates, where: str) -> list:
    if updates is None:
        return []
    if isinstance(updates, dict):
        items = list(updates.items())
    else:
        items = list(updates)
    pairs = []
    seen = set()
    for pair in items:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise TypeError(f"updates at {where}: expected (shared variable, new value) pairs, got {pair!r}")
        var, new = pair
        if not isinstance(var, SharedVariable):
            raise TypeError(f"updates at {where}: {_label(var)} is not a shared variable; only theano.shared "
                            "variables can be updated")
        if var in seen:
            raise ValueError(f"updates at {where}: shared variable {_label(var)} is updated twice")
        seen.add(var)
        gv = var.variable
        if isinstance(new, (TensorVariable, Tensor)):
            t = unwrap_tensor(new)
        else:
            t = convert_to_tensor(np.asarray(new, dtype=gv.dtype.np))
        if t.dtype is not gv.dtype:
            raise DTypeError(f"updates at {where}: shared variable {_label(var)} is {gv.dtype.name}, but its update "
                             f"{_label(new)} is {t.dtype.name}; an update must have the shared variable's type "
                             "(cast it with T.cast, or build it from floatX values)")
        if t.ndim != gv.ndim or any(a is not None and a != b for a, b in zip(t.shape, gv.shape)):
            raise ShapeError(f"updates at {where}: shared variable {_label(var)} has shape {tuple(gv.shape)}, but "
                             f"its update {_label(new)} has shape {tuple(t.shape)}")
        pairs.append((var, t))
    return pairs


class Function:
    """A compiled Theano function: ``f(*input values)`` returns the outputs (one array, or a list)
    and applies the updates."""

    def __init__(self, inputs, outputs, updates, givens, allow_input_downcast, on_unused_input, name):
        where = user_location()
        self.name = name or "theano.function"
        if on_unused_input not in ("raise", "warn", "ignore", None):
            raise ValueError(f"theano.function at {where}: on_unused_input must be 'raise', 'warn' or 'ignore', "
                             f"got {on_unused_input!r}")
        if isinstance(inputs, TensorVariable) or not isinstance(inputs, (list, tuple)):
            raise TypeError(f"theano.function at {where}: inputs must be a list of variables, got {inputs!r}")
        for i, v in enumerate(inputs):
            if isinstance(v, SharedVariable):
                raise TypeError(f"theano.function at {where}: input {i} is the shared variable {_label(v)}; a shared "
                                "variable cannot be an explicit input (replace it through givens instead)")
            if not isinstance(v, TensorVariable):
                raise TypeError(f"theano.function at {where}: input {i} must be a Theano variable (e.g. T.matrix()), "
                                f"got {v!r}")
        self.inputs = list(inputs)
        self.single = outputs is not None and not isinstance(outputs, (list, tuple))
        outs = [] if outputs is None else ([outputs] if self.single else list(outputs))
        out_tensors = []
        for k, o in enumerate(outs):
            if not isinstance(o, (TensorVariable, Tensor)):
                raise TypeError(f"theano.function at {where}: output {k} must be a Theano variable, got {o!r}")
            out_tensors.append(unwrap_tensor(o))
        pairs = _update_pairs(updates, where)
        replace = _replacement_pairs(givens, where)
        in_tensors = [v.gc for v in self.inputs]
        for i, t in enumerate(in_tensors):
            if in_tensors.index(t) != i:
                raise ValueError(f"theano.function at {where}: input {_label(self.inputs[i])} is given twice")
        cloned = clone_tensors(out_tensors + [t for _, t in pairs], replace)
        out_tensors, new_values = cloned[:len(out_tensors)], cloned[len(out_tensors):]
        graphs = {t.graph for t in out_tensors + new_values + in_tensors}
        if len(graphs) > 1:
            raise ValueError(f"theano.function at {where}: the inputs, outputs and updates belong to different graphs")
        graph = graphs.pop() if graphs else None
        writes = [var.variable.assign(t) for (var, _), t in zip(pairs, new_values)]
        fetches = out_tensors + writes
        needed = ancestors(fetches) if fetches else set()
        used = []
        for i, (v, t) in enumerate(zip(self.inputs, in_tensors)):
            if t.op in needed:
                used.append(i)
                continue
            message = (f"theano.function at {where}: input {i}, {_label(v)}, is not part of the graph needed to "
                       "compute the outputs and updates; pass on_unused_input='warn' or 'ignore' to allow it")
            if on_unused_input in ("raise", None):
                raise UnusedInputError(message)
            if on_unused_input == "warn":
                warnings.warn(message, stacklevel=3)
        self._used = used
        self._allow_downcast = allow_input_downcast
        self._n_out = len(out_tensors)
        self.session = session_for(graph)
        self._call = self.session.make_callable(fetches, [in_tensors[i] for i in used]) if fetches else None

    def _convert(self, i: int, value) -> np.ndarray:
        v = self.inputs[i]
        t = v.gc
        want = t.dtype.np
        arr = np.asarray(value)
        if arr.ndim != t.ndim:
            raise TypeError(f"{self.name} called at {user_location()}: input {i}, {_label(v)}, expects rank "
                            f"{t.ndim} (shape {tuple(t.shape)}), got an array of shape {arr.shape}")
        if arr.dtype == want:
            return arr
        python_number = isinstance(value, (numbers.Number, list)) and arr.dtype.kind in "biuf"
        if np.can_cast(arr.dtype, want, "safe") or self._allow_downcast or (
                python_number and (self._allow_downcast is None or want.kind == arr.dtype.kind or want.kind == "f")):
            return arr.astype(want)
        raise TypeError(f"{self.name} called at {user_location()}: input {i}, {_label(v)}, is {want.name}, got "
                        f"{arr.dtype.name} which cannot be converted without loss; cast the data to {want.name} "
                        "or pass allow_input_downcast=True to theano.function")

    def __call__(self, *args, **kwargs):
        if kwargs:
            names = {v.name: i for i, v in enumerate(self.inputs) if v.name}
            args = list(args) + [None] * (len(self.inputs) - len(args))
            for key, value in kwargs.items():
                if key not in names:
                    raise TypeError(f"{self.name} called at {user_location()}: no input is named {key!r} "
                                    f"(inputs: {[v.name for v in self.inputs]})")
                args[names[key]] = value
        if len(args) != len(self.inputs):
            raise TypeError(f"{self.name} called at {user_location()}: expected {len(self.inputs)} argument(s) "
                            f"({', '.join(_label(v) for v in self.inputs) or 'none'}), got {len(args)}")
        if self._call is None:
            return [] if not self.single else None
        values = [self._convert(i, args[i]) for i in self._used]
        results = self._call(*values)
        outs = list(results[:self._n_out])
        return outs[0] if self.single else outs


def function(inputs, outputs=None, mode=None, updates=None, givens=None, no_default_updates=False,
             accept_inplace=False, name: Optional[str] = None, rebuild_strict=True, allow_input_downcast=None,
             profile=None, on_unused_input="raise"):
    """``theano.function(inputs, outputs=None, mode=None, updates=None, givens=None, ...,
    allow_input_downcast=None, on_unused_input='raise')``: see this module's docstring."""
    return Function(inputs, outputs, updates, givens, allow_input_downcast, on_unused_input, name)


# --- grad ----------------------------------------------------------------------------------------
def grad(cost, wrt, consider_constant=None, disconnected_inputs: str = "raise", add_names=True, known_grads=None,
         return_disconnected: str = "zero", null_gradients: str = "raise"):
    """``theano.grad(cost, wrt, consider_constant=None, disconnected_inputs='raise')``: the
    gradient of the scalar ``cost`` with respect to ``wrt`` (a variable or a list of them)."""
    where = user_location()
    if known_grads is not None:
        raise NotImplementedError(f"theano.grad at {where}: known_grads is not supported")
    if disconnected_inputs not in ("raise", "warn", "ignore"):
        raise ValueError(f"theano.grad at {where}: disconnected_inputs must be 'raise', 'warn' or 'ignore', "
                         f"got {disconnected_inputs!r}")
    c = unwrap_tensor(cost)
    if c.ndim != 0:
        raise ShapeError(f"theano.grad at {where}: the cost {_label(cost)} must be a scalar, got rank {c.ndim} "
                         "(take its sum or mean)")
    single = not isinstance(wrt, (list, tuple))
    xs = [wrt] if single else list(wrt)
    for k, x in enumerate(xs):
        if not isinstance(x, (TensorVariable, Tensor)):
            raise TypeError(f"theano.grad at {where}: wrt[{k}] must be a Theano variable, got {x!r}")
    stops = [unwrap_tensor(v) for v in (consider_constant or [])]
    grads = gradients(c, [unwrap(x) for x in xs], stop_gradients=stops or None)
    out = []
    for x, g in zip(xs, grads):
        if g is None:
            message = (f"theano.grad at {where}: the cost {_label(cost)} does not depend on {_label(x)}; pass "
                       "disconnected_inputs='warn' or 'ignore' to get a zero gradient")
            if disconnected_inputs == "raise":
                raise DisconnectedInputError(message)
            if disconnected_inputs == "warn":
                warnings.warn(message, stacklevel=2)
            g = zeros_like(unwrap_tensor(x))
        out.append(TensorVariable(g))
    return out[0] if single else out


# --- scan ------------------------------------------------------------------------------------------
def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None, truncate_gradient=-1,
         go_backwards=False, mode=None, name=None, profile=False, allow_gc=None, strict=False, return_list=False):
    """``theano.scan``: graphc's ``theano_scan`` (``gc.theano_scan``) with Theano variables.
    Returns ``(outputs, updates)``; ``updates`` is an empty OrderedDict (graphc's scan makes
    no shared-variable updates)."""
    def lift_info(v):
        if isinstance(v, dict):
            return {k: unwrap(x) for k, x in v.items()}
        return unwrap(v)

    def step(*args):
        result = fn(*wrap(list(args)))
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict):
            if result[1]:
                raise NotImplementedError(f"theano.scan '{name or 'scan'}': the step function returns shared "
                                          "variable updates, which graphc's scan does not support")
            result = result[0]
        return unwrap(list(result) if isinstance(result, (list, tuple)) else result)

    info = outputs_info if outputs_info is None or not isinstance(outputs_info, (list, tuple)) \
        else [lift_info(v) for v in outputs_info]
    if isinstance(info, dict):
        info = lift_info(info)
    outputs, _ = theano_scan(step, sequences=unwrap(sequences), outputs_info=unwrap(info),
                             non_sequences=unwrap(non_sequences), n_steps=unwrap(n_steps),
                             truncate_gradient=truncate_gradient, go_backwards=go_backwards, name=name, strict=strict)
    outputs = wrap(outputs)
    if return_list and not isinstance(outputs, list):
        outputs = [outputs]
    return outputs, OrderedDict()


__all__ = ["function", "grad", "clone", "scan", "Function", "UnusedInputError", "DisconnectedInputError"]

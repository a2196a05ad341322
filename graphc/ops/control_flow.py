"""Control flow: ``cond`` and ``while_loop``, ops whose attributes hold bodies (DESIGN.md,
decision 9).

A body is a graph of its own, traced once from the user's function: a :class:`Graph` whose
``outer`` is the graph the op is built in. Its inputs are placeholders: the loop variables
(for a loop), then one per tensor of an enclosing graph that the function used (its
*captures*, made by ``Graph.capture`` when an op in the body reads an outer tensor). The
control-flow op takes those outer tensors as ordinary inputs, so pruning, gradients and the
state rules see plain data edges. A variable that a body only reads is read once per run,
before the op, as everywhere else; one that a body writes is carried through the op (a loop
variable, a cond output) and written after it ("Variables in bodies" below).

    cond(pred, *captures, *variables)                     attrs: then, else  -> results, written variables
    while_loop(*loop_vars, *written variables, *captures[, limit])
                                                          attrs: cond, body, ...  -> final loop vars, trips

Every branch and body of one op takes the same captures, in the same order (a body that does
not use one has a placeholder for it all the same), so a target passes one list to both.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional

import numpy as np

from .. import dtypes as dt
from ..attrs import Attrs, OpaqueAttr
from ..errors import DTypeError, GraphcError, InferenceError, InvalidArgumentError, ShapeError
from ..graph import Graph, Operation, Tensor, ancestors, get_default_graph, user_location
from ..nest import flatten, same_structure, structure_text
from ..shapes import TensorShape, TensorType, format_shape
from ._build import graph_of, make, make1
from .elementwise import equal, minimum
from .registry import define, get_op
from .shape import broadcast_to, concat, expand_dims, gather, reshape, scalar_flag
from .source import constant, convert_to_tensor
from .source import shape as shape_of

def refused_in_bodies(op_type: str) -> Optional[str]:
    """Why a body may not hold an op of ``op_type`` (None: it may). A body holds no variable
    ops: reads and writes of variables become values the op carries ("Variables in bodies"
    below). A variable declared inside a function, or a random draw there (whose gradient
    would rebuild the body with other draws), is refused."""
    opdef = get_op(op_type)
    if op_type == "variable":
        return "creating variables there is not supported (create them before the loop or branch, outside its function)"
    if opdef.random:
        return "random draws there are not supported yet (draw before the loop and index the draws inside)"
    if opdef.family == "collective":
        return ("a collective (hvd.allreduce, allgather, broadcast) is a call into MPI between stages of a run, and "
                "a body runs as compiled code: all-reduce the loop's results after it instead")
    if opdef.stateful:
        return "it reads or writes session state directly (use the variable's value(), assign, assign_add, assign_sub)"
    return None


class Body(OpaqueAttr):
    """A traced function: its graph, input placeholders and output tensors."""

    def __init__(self, graph: Graph, inputs, outputs, label: str):
        self.graph = graph
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.label = label  # e.g. "while_loop 'while' body", for messages
        needed = ancestors(self.outputs, cut=frozenset(self.inputs))
        self.ops = tuple(sorted(needed, key=lambda op: op._id))  # creation order is topological
        # what evaluate runs, looked up once rather than per op and iteration
        self._steps = tuple((op, get_op(op.type)) for op in self.ops if not get_op(op.type).structural)
        # what the compiled targets made of it (codegen/control_flow.py), per target and settings
        self.compiled: dict = {}

    @property
    def input_types(self) -> list:
        return [t.type for t in self.inputs]

    @property
    def output_types(self) -> list:
        return [t.type for t in self.outputs]

    def evaluate(self, arrays, ctx) -> list:
        """Run the body with each op's NumPy reference (the reference backend's semantics)."""
        env = dict(zip(self.inputs, arrays))
        for op, opdef in self._steps:
            values = [env[t] for t in op.inputs]
            try:
                outs = opdef.reference(values, op.attrs, ctx)
            except GraphcError:
                raise
            except Exception as e:
                shapes = ", ".join(f"{t.name} {np.asarray(v).dtype}{format_shape(np.shape(v))}"
                                   for t, v in zip(op.inputs, values))
                raise InvalidArgumentError(f"{op.type} '{op.name}' in the {self.label} at run time: "
                                           f"{type(e).__name__}: {e}\n  inputs: {shapes or 'none'}\n"
                                           f"  created at {op.location}") from e
            for t, o in zip(op.outputs, outs):
                env[t] = np.asarray(o, dtype=t.dtype.np)
        return [env[t] for t in self.outputs]

    def call(self, inputs) -> list:
        """Build this body's ops again in the default graph, reading ``inputs`` instead of its
        input placeholders; returns the new outputs (gradients rebuild a forward body so)."""
        graph = get_default_graph()
        env = dict(zip(self.inputs, inputs))
        for op, _ in self._steps:
            new = graph.create_op(op.type, [env[t] for t in op.inputs], op.attrs, op.name.rsplit("/", 1)[-1],
                                  location=op.location)
            env.update(zip(op.outputs, new.outputs))
        return [env[t] for t in self.outputs]

    def __repr__(self) -> str:
        return f"<{self.label}: {len(self.inputs)} inputs, {len(self.ops)} ops, {len(self.outputs)} outputs>"


# --- variables in bodies ------------------------------------------------------------------------
# A body holds no variable ops. A read there is the variable's value as the body entered (a
# placeholder bound to the enclosing graph's value of it), unless the read depends on one of
# the body's own writes (a control dependency): then it is that write's value. A write is its
# new value, computed in the body (assign_add adds to the value of the body's last write, as
# writes are applied in the order they are made). The op built from the body carries each
# written variable out, a loop as one more loop variable and a cond as one more output, and the
# enclosing graph writes it: an assign, or a write of the body around it. The results the user
# gets from the op run after those writes. So the compiled targets, gradients and the state rules
# see plain data edges, a variable is read in a loop's iteration as that iteration's writes left
# it, and the forward loop that a gradient rebuilds leaves the writes out (it makes no assign).
def _entering(var, graph: Graph) -> Tensor:
    """The placeholder in body ``graph`` for ``var``'s value as the body enters."""
    found = graph.variable_entering.get(var.var_name)
    if found is None:
        outer = graph.outer
        value = var.graph_value() if outer is var.graph else body_read(var, outer)
        with graph.control_dependencies(None):
            ph = graph.create_op("placeholder", (), Attrs(dtype=var.dtype, shape=tuple(var.shape)),
                                 f"variable/{var.var_name.replace('/', '_')}").outputs[0]
        found = graph.variable_entering[var.var_name] = (var, value, ph)
    return found[2]


def body_read(var, graph: Graph) -> Tensor:
    """What a read of ``var`` made now in body ``graph`` sees."""
    writes = graph.variable_writes.get(var.var_name)
    if writes:
        after = ancestors(graph.current_control_ops())
        for w in reversed(writes):
            if w.op in after:
                return w
    return _entering(var, graph)


def body_write(var, op_type: str, value: Tensor, name: Optional[str], graph: Graph) -> Tensor:
    """A write of ``var`` (assign, assign_add, assign_sub) made in body ``graph``: its new value."""
    try:
        get_op(op_type).infer([value.type], {"var": var.var_name, "dtype": var.dtype, "shape": tuple(var.shape)})
    except InferenceError as e:
        raise e.kind(f"{op_type} of variable '{var.var_name}' at {user_location()}: {e}") from None
    entering = _entering(var, graph)
    writes = graph.variable_writes.setdefault(var.var_name, [])
    with graph.as_default():
        if op_type == "assign":
            new = value if value.shape == var.shape else broadcast_to(value, tuple(var.shape))
        else:
            base = writes[-1] if writes else entering
            new = base + value if op_type == "assign_add" else base - value
        new = make1("identity", (new,), None, name or f"{var.var_name}/{op_type.title().replace('_', '')}",
                    graph=graph)
    writes.append(new)
    return new


def _write_back(var, value: Tensor, graph: Graph) -> Tensor:
    """``graph`` writes ``value``, a control-flow op's output, to ``var``."""
    if graph is var.graph:
        return var.graph_write("assign", value, f"{var.var_name}/write_{value.op.name.replace('/', '_')}")
    return body_write(var, "assign", value, None, graph)


def _entering_values(graphs, names, after=None, written=None) -> list:
    """For each variable name, the enclosing graph's value that the bodies enter with (every
    graph gets a placeholder for it). A variable the op writes (``written``; all of ``names``
    when None) is read after everything the op's inputs (``after``) need, as the op reads it
    when it runs: a write that a loop's inputs depend on is not lost when the loop writes the
    variable again."""
    outer = graphs[0].outer
    values = []
    for n in names:
        var, value, _ = next(g.variable_entering[n] for g in graphs if n in g.variable_entering)
        for g in graphs:
            _entering(var, g)
        if after and (written is None or n in written):
            with outer.control_dependencies([t.op for t in after]):
                value = var.graph_value() if outer is var.graph else body_read(var, outer)
        values.append(value)
    return values


def _after_writes(graph: Graph, outputs: list, variables: list, values: list, label: str):
    """Write each of ``variables`` with its value from the op. Returns ``outputs`` such that
    using them runs those writes (TF1's ``with_dependencies``), and the writes."""
    if not variables:
        return list(outputs), []
    writes = [_write_back(var, v, graph) for var, v in zip(variables, values)]
    with graph.control_dependencies(writes):
        return [make1("identity", (t,), None, f"{label}/after_writes", graph=graph) for t in outputs], writes


# --- tracing ----------------------------------------------------------------------------------
def _trace(fn, args, label: str, outer: Graph, where: str):
    """Call ``fn(*args)`` with each leaf of ``args`` (TensorTypes) a placeholder of a new body
    graph. Returns (graph, placeholders, result structure, result tensors)."""
    graph = Graph()
    graph.outer = outer
    graph.seed = outer.seed
    graph.traced_as = f"{label} (at {where})"  # for build-time errors about the body (gc.Print)
    leaves, rebuild = flatten(list(args))
    with graph.as_default():
        placeholders = [graph.create_op("placeholder", (), Attrs(dtype=t.dtype, shape=tuple(t.shape)),
                                        f"arg{i}").outputs[0] for i, t in enumerate(leaves)]
        result = fn(*rebuild(placeholders))
        out_leaves, out_rebuild = flatten(result)
        tensors = []
        for k, leaf in enumerate(out_leaves):
            if isinstance(leaf, Operation):
                raise TypeError(f"{label} at {where}: the function returned the operation '{leaf.name}' "
                                "as a value; return tensors (wrap an update in gc.control_dependencies)")
            try:
                t = convert_to_tensor(leaf)
            except (TypeError, ValueError) as e:
                raise TypeError(f"{label} at {where}: result {k} ({leaf!r}) is not a tensor: {e}") from None
            if t.graph is not graph:
                t = graph.capture(t)
            tensors.append(t)
    for op in graph.get_operations():
        why = refused_in_bodies(op.type)
        if why is not None:
            raise GraphcError(f"{label} at {where}: {op.type} '{op.name}' (created at {op.location}) is inside "
                              f"the function; {why}")
    return graph, placeholders, result, tensors


def _share_captures(graphs) -> list:
    """The outer tensors any of ``graphs`` captured, in first-use order; afterwards every graph
    has a placeholder for each of them."""
    union = list(dict.fromkeys(t for g in graphs for t in g.captures))
    for g in graphs:
        for t in union:
            g.capture(t)
    return union


def _merged_shape(a: TensorShape, b: TensorShape) -> TensorShape:
    return TensorShape(x if x == y else None for x, y in zip(a, b))


# --- cond -----------------------------------------------------------------------------------------
def _check_inputs(body: Body, given, what: str) -> None:
    if len(given) != len(body.inputs):
        raise ShapeError(f"{what} takes {len(body.inputs)} inputs, the op gives {len(given)}")
    for k, (g, want) in enumerate(zip(given, body.input_types)):
        if g.dtype is not want.dtype or not want.shape.is_compatible_with(g.shape):
            raise ShapeError(f"{what} input {k} is {want}, the op gives {g}")


def _infer_cond(inputs, attrs):
    pred = inputs[0]
    if pred.dtype is not dt.bool_ or pred.rank != 0:
        raise DTypeError(f"pred must be a scalar bool tensor, got {pred}")
    then, other = attrs["then"], attrs["else"]
    _check_inputs(then, inputs[1:], "the true branch")
    _check_inputs(other, inputs[1:], "the false branch")
    if [(t.dtype, t.rank) for t in then.output_types] != [(t.dtype, t.rank) for t in other.output_types]:
        raise DTypeError("the branches return different dtypes or ranks")
    return [TensorType(a.dtype, _merged_shape(a.shape, b.shape))
            for a, b in zip(then.output_types, other.output_types)]


def _cond_reference(inputs, attrs, ctx=None):
    body = attrs["then"] if bool(inputs[0]) else attrs["else"]
    return body.evaluate(list(inputs[1:]), ctx)


define("cond", "control", _infer_cond, _cond_reference, bodies=("then", "else"),
       doc="Runs the `then` body if the scalar bool pred is true, else the `else` body, on the captured inputs.")


def cond(pred, true_fn=None, false_fn=None, strict: bool = False, name: Optional[str] = None, fn1=None, fn2=None):
    """``true_fn()`` if ``pred`` else ``false_fn()`` (tf.cond). Only the taken branch runs.

    The branches return the same structure of tensors with the same dtypes (shapes may differ:
    the result has the dims they agree on). With ``strict=False``, as in TF1, a branch result
    that is a one-element list or tuple comes back as its element."""
    true_fn = true_fn if true_fn is not None else fn1
    false_fn = false_fn if false_fn is not None else fn2
    where = user_location()
    label = f"cond '{name or 'cond'}'"
    if not callable(true_fn) or not callable(false_fn):
        raise TypeError(f"{label} at {where}: true_fn and false_fn must be callables, got {true_fn!r} and {false_fn!r}")
    pred = scalar_flag(pred)  # tf.placeholder(tf.bool) as the predicate: a scalar, as TF1 feeds it
    if pred.dtype is not dt.bool_ or pred.shape.rank != 0:
        raise DTypeError(f"{label} at {where}: pred must be a scalar bool tensor, got '{pred.name}' "
                         f"{pred.dtype.name}{format_shape(pred.shape)}")
    outer = graph_of(pred, op_type="cond")  # a body being traced, when pred is from further out
    g_then, _, r_then, t_then = _trace(true_fn, [], f"{label} true_fn", outer, where)
    g_else, _, r_else, t_else = _trace(false_fn, [], f"{label} false_fn", outer, where)
    if not same_structure(r_then, r_else):
        raise TypeError(f"{label} at {where}: the branches return different structures: true_fn gives "
                        f"{structure_text(r_then)}, false_fn gives {structure_text(r_else)}")
    for k, (a, b) in enumerate(zip(t_then, t_else)):
        if a.dtype is not b.dtype:
            raise DTypeError(f"{label} at {where}: result {k} is {a.dtype.name} in true_fn and {b.dtype.name} "
                             f"in false_fn; the branches must return the same dtypes")
        if a.shape.rank != b.shape.rank:
            raise ShapeError(f"{label} at {where}: result {k} has shape {format_shape(a.shape)} in true_fn and "
                             f"{format_shape(b.shape)} in false_fn; the ranks must agree")
    # Every variable a branch reads or writes enters both as an input; one that a branch writes
    # comes out of both as one more output (the other branch passes the entering value on).
    variables = list(dict.fromkeys([*g_then.variable_entering, *g_else.variable_entering]))
    written = [n for n in variables if n in g_then.variable_writes or n in g_else.variable_writes]
    captured = _share_captures([g_then, g_else])
    entering = _entering_values([g_then, g_else], variables, after=[pred, *captured], written=set(written))

    def branch(g, tensors, what):
        last = [g.variable_writes[n][-1] if n in g.variable_writes else g.variable_entering[n][2] for n in written]
        return Body(g, [g.captures[t] for t in captured] + [g.variable_entering[n][2] for n in variables],
                    tensors + last, f"{label} {what} branch")
    then, other = branch(g_then, t_then, "true"), branch(g_else, t_else, "false")
    op = make("cond", (pred, *captured, *entering), {"then": then, "else": other}, name or "cond", graph=outer)
    n = len(t_then)
    outs, writes = _after_writes(outer, op.outputs[:n], [g_then.variable_entering[k][0] for k in written],
                                 op.outputs[n:], op.name)
    if not outs:
        if not writes:
            return op
        with outer.control_dependencies(writes):  # running it runs the writes
            return make("no_op", (), None, f"{op.name}/writes", graph=outer)
    _, rebuild = flatten(r_then)
    result = rebuild(list(outs))
    if not strict and isinstance(result, (list, tuple)) and len(result) == 1:
        return result[0]
    return result


# --- while_loop -------------------------------------------------------------------------------
def _infer_while(inputs, attrs):
    n, body, cond_body = attrs["n_vars"], attrs["body"], attrs["cond"]
    m = attrs.get("n_stacked", 0)
    n_in = len(inputs) - (1 if attrs["has_limit"] else 0)
    _check_inputs(body, inputs[:n_in], "the body")
    _check_inputs(cond_body, inputs[:n_in], "the cond")
    out = cond_body.output_types
    if len(out) != 1 or out[0].dtype is not dt.bool_ or out[0].rank != 0:
        raise DTypeError(f"the cond must return one scalar bool, returns {', '.join(map(str, out)) or 'nothing'}")
    if n > len(body.inputs) or len(body.outputs) != n + m:
        raise ShapeError(f"the body returns {len(body.outputs)} values for {n} loop variables and {m} stacked values")
    for k, (t, want) in enumerate(zip(body.output_types, body.input_types[:n])):
        if t.dtype is not want.dtype or not want.shape.is_compatible_with(t.shape):
            raise ShapeError(f"the body returns {t} for loop variable {k}, whose invariant is {want}")
    if attrs["has_limit"] and (inputs[-1].rank != 0 or not inputs[-1].dtype.is_integer):
        raise DTypeError(f"maximum_iterations must be an integer scalar, got {inputs[-1]}")
    # With ``history`` (a gradient's forward pass), also each loop variable as it entered each
    # iteration, stacked: [trips, *shape]. Then the ``n_stacked`` body outputs past the loop
    # variables, as each iteration computed them, stacked (the values a gradient keeps).
    history = [TensorType(t.dtype, (None, *t.shape)) for t in body.input_types[:n]] if attrs.get("history") else []
    stacked = [TensorType(t.dtype, (None, *t.shape)) for t in body.output_types[n:]]
    return body.input_types[:n] + [TensorType(dt.int64, ())] + history + stacked


def _while_reference(inputs, attrs, ctx=None):
    n, cond_body, body = attrs["n_vars"], attrs["cond"], attrs["body"]
    captured = list(inputs[n:len(body.inputs)])
    return run_while(lambda values: bool(cond_body.evaluate(values + captured, ctx)[0]),
                     lambda values: body.evaluate(values + captured, ctx), list(inputs[:n]),
                     int(inputs[-1]) if attrs["has_limit"] else None, bool(attrs.get("history")), body.label, ctx,
                     invariants=[t.shape for t in body.input_types[:n]], stacked=body.output_types[n:])


def run_while(cond, body, values: list, limit, history: bool, label: str, ctx, invariants=None,
              stacked=()) -> list:
    """A while_loop's semantics, for the targets that run it from Python: the reference (bodies
    evaluated with NumPy) and the host-driven loops (codegen/control_flow.py). ``cond(values)``
    says whether to go on and ``body(values)`` returns the next values, then the values to
    stack (of the types ``stacked``). Returns the op's outputs: the final values, the trip
    count, with ``history`` each loop variable as it entered each iteration, stacked, and the
    stacked values. ``invariants``: the shapes each variable must keep."""
    trips, rows = 0, [] if history else None
    stacked_rows = []
    initial = values
    while (limit is None or trips < limit) and cond(values):
        if ctx is not None:
            ctx.check_deadline(f"{label} (after {trips} iterations)")
        if rows is not None:
            rows.append(values)
        computed = [np.asarray(v) for v in body(values)]
        new = computed[:len(values)]
        if stacked:
            stacked_rows.append(computed[len(values):])
        for k, (old, v) in enumerate(zip(values, new)):
            if invariants is not None and not invariants[k].is_compatible_with(v.shape):
                raise InvalidArgumentError(f"{label}: loop variable {k} has shape {list(v.shape)} after "
                                           f"iteration {trips + 1}, but its invariant is {format_shape(invariants[k])}")
            if history and v.shape != np.shape(old):
                raise InvalidArgumentError(f"{label}: loop variable {k} changes shape across iterations "
                                           f"({list(np.shape(old))} -> {list(v.shape)}); its gradient needs one shape")
        values = new
        trips += 1
    out = [np.asarray(v) for v in values] + [np.int64(trips)]
    if history:
        out += [np.stack([r[k] for r in rows]) if rows else np.zeros((0, *np.shape(v)), np.asarray(v).dtype)
                for k, v in enumerate(initial)]
    # (no trips: a dim only the body decides is 0; nothing reads rows that were never made)
    out += [np.stack([r[k] for r in stacked_rows]) if stacked_rows
            else np.zeros((0, *(d or 0 for d in t.shape)), t.dtype.np) for k, t in enumerate(stacked)]
    return out


define("while_loop", "control", _infer_while, _while_reference, bodies=("cond", "body"),
       doc="Repeats `body` on the loop variables while `cond` holds (and fewer than the optional limit "
           "trips have run); outputs the final loop variables and the trip count.")


def _invariant(k: int, value: Tensor, invariant, label: str, where: str) -> TensorShape:
    if invariant is None:
        return value.shape
    shape = TensorShape(invariant if not hasattr(invariant, "as_list") else invariant.as_list())
    if shape.rank != value.shape.rank or not shape.is_compatible_with(value.shape) \
            or any(s is not None and v is None for s, v in zip(shape, value.shape)):
        raise ShapeError(f"{label} at {where}: loop variable {k} ('{value.name}') enters the loop with shape "
                         f"{format_shape(value.shape)}, which its shape invariant {format_shape(shape)} does not allow")
    return shape


def while_loop(cond, body, loop_vars, shape_invariants=None, parallel_iterations: int = 10, back_prop: bool = True,
               swap_memory: bool = False, name: Optional[str] = None, maximum_iterations=None,
               return_same_structure: bool = False):
    """Repeat ``loop_vars = body(*loop_vars)`` while ``cond(*loop_vars)`` (tf.while_loop).

    ``loop_vars`` is a nested structure of tensors; ``body`` returns the same structure with the
    same dtypes, and shapes that the ``shape_invariants`` allow (by default, each variable's
    entering shape; a ``None`` dim may change across iterations). The trip count is decided at
    run time; ``maximum_iterations`` (an integer scalar) bounds it. As in TF1, a single loop
    variable given as a one-element list comes back as the tensor itself, unless
    ``return_same_structure``. ``parallel_iterations`` and ``swap_memory`` are accepted for
    TF1 code and have no effect; ``back_prop=False`` stops gradients at the loop."""
    outs, rebuild = while_op(cond, body, loop_vars, shape_invariants, back_prop, name, maximum_iterations)
    result = rebuild(outs)  # takes the final loop variables, the first outputs
    if not return_same_structure and isinstance(result, (list, tuple)) and len(result) == 1 \
            and type(result) in (list, tuple):
        return result[0]
    return result


def while_op(cond, body, loop_vars, shape_invariants=None, back_prop: bool = True, name: Optional[str] = None,
             maximum_iterations=None, history: bool = False, stack=None):
    """Build the while_loop op; returns its outputs and the function that rebuilds the loop
    variables' structure from them. With ``history``, the op also outputs each loop variable as
    it entered each iteration, stacked (scan's outputs, and a gradient's forward pass). ``stack``
    (called once the body is traced) returns values of the body to stack per iteration, which
    come last (a gradient's backward loop stacks its weight gradients' factors so)."""
    where = user_location()
    label = f"while_loop '{name or 'while'}'"
    if not callable(cond) or not callable(body):
        raise TypeError(f"{label} at {where}: cond and body must be callables, got {cond!r} and {body!r}")
    if not isinstance(loop_vars, (list, tuple, dict)):
        raise TypeError(f"{label} at {where}: loop_vars must be a list or tuple of tensors, got {loop_vars!r}")
    leaves, rebuild = flatten(loop_vars)
    if not leaves:
        raise ValueError(f"{label} at {where}: loop_vars is empty")
    values = [convert_to_tensor(v) for v in leaves]
    outer = graph_of(values, op_type="while_loop")
    if shape_invariants is None:
        invariants = [None] * len(values)
    else:
        invariants = _items_at_leaves(loop_vars, shape_invariants, label, where)
    types = [TensorType(v.dtype, _invariant(k, v, s, label, where)) for k, (v, s) in
             enumerate(zip(values, invariants))]
    loop_structure = rebuild(types)
    args = loop_structure if isinstance(loop_structure, (list, tuple)) else [loop_structure]

    limit = None
    if maximum_iterations is not None:
        if isinstance(maximum_iterations, (bool, float)) or not isinstance(maximum_iterations, (int, np.integer, Tensor)):
            raise TypeError(f"{label} at {where}: maximum_iterations must be an integer scalar, got "
                            f"{maximum_iterations!r}")
        limit = convert_to_tensor(maximum_iterations)
        if not limit.dtype.is_integer or limit.shape.rank != 0:
            raise TypeError(f"{label} at {where}: maximum_iterations must be an integer scalar, got "
                            f"'{limit.name}' {limit.dtype.name}{format_shape(limit.shape)}")

    g_cond, ph_cond, _, t_cond = _trace(cond, args, f"{label} cond", outer, where)
    if len(t_cond) != 1 or t_cond[0].dtype is not dt.bool_ or t_cond[0].shape.rank != 0:
        got = ", ".join(f"{t.dtype.name}{format_shape(t.shape)}" for t in t_cond) or "nothing"
        raise DTypeError(f"{label} at {where}: cond must return a scalar bool tensor, got {got}")
    g_body, ph_body, r_body, t_body = _trace(body, args, f"{label} body", outer, where)
    if isinstance(loop_structure, (list, tuple)) and len(loop_structure) == 1 and not isinstance(r_body, (list, tuple)):
        r_body = type(loop_structure)([r_body]) if type(loop_structure) in (list, tuple) else r_body
    if not same_structure(r_body, loop_structure, check_types=False):
        raise TypeError(f"{label} at {where}: body returns {structure_text(r_body)}, but the loop variables are "
                        f"{structure_text(loop_structure)}; body must return the same structure")
    for k, (t, want) in enumerate(zip(t_body, types)):
        if t.dtype is not want.dtype:
            raise DTypeError(f"{label} at {where}: loop variable {k} enters as {want.dtype.name} but body "
                             f"returns {t.dtype.name}")
        if not want.shape.is_compatible_with(t.shape) or any(
                s is not None and d is None for s, d in zip(want.shape, t.shape)):
            raise ShapeError(f"{label} at {where}: loop variable {k} ('{values[k].name}') enters the loop with "
                             f"shape {format_shape(values[k].shape)}, but has shape {format_shape(t.shape)} after "
                             f"one iteration; to let its shape vary across iterations, give a shape invariant "
                             f"with None for the dims that change")
    if g_cond.variable_writes:
        raise GraphcError(f"{label} at {where}: cond writes the variables {', '.join(g_cond.variable_writes)}; a "
                          "loop's cond may read variables, not write them (write them in the body)")
    # A variable the body writes is one more loop variable; one the functions only read is
    # read once, as the loop starts (a capture).
    written = list(g_body.variable_writes)
    read_only = [n for n in dict.fromkeys([*g_body.variable_entering, *g_cond.variable_entering]) if n not in written]
    captured = _share_captures([g_cond, g_body])
    written_values = _entering_values([g_body, g_cond], written, after=values + captured)
    read_values = _entering_values([g_body, g_cond], read_only)

    def body_inputs(g, placeholders):
        return (placeholders + [g.variable_entering[n][2] for n in written] + [g.captures[t] for t in captured]
                + [g.variable_entering[n][2] for n in read_only])
    cond_body = Body(g_cond, body_inputs(g_cond, ph_cond), t_cond, f"{label} cond")
    stacked = list(stack()) if stack is not None else []
    loop_body = Body(g_body, body_inputs(g_body, ph_body),
                     t_body + [g_body.variable_writes[n][-1] for n in written] + stacked, f"{label} body")
    inputs = values + written_values + captured + read_values + ([limit] if limit is not None else [])
    n_vars = len(values) + len(written)
    attrs = {"cond": cond_body, "body": loop_body, "n_vars": n_vars, "has_limit": limit is not None,
             "back_prop": bool(back_prop)}
    if history:
        attrs["history"] = True
    if stacked:
        attrs["n_stacked"] = len(stacked)
    op = make("while_loop", inputs, attrs, name or "while", graph=outer)
    # What the caller sees: the final loop variables, the trip count and, with history, the
    # stacked loop variables (the op's layout, without the written variables), then the
    # stacked body values.
    n = len(values)
    outs = [*op.outputs[:n], op.outputs[n_vars], *(op.outputs[n_vars + 1:n_vars + 1 + n] if history else ()),
            *op.outputs[len(op.outputs) - len(stacked):len(op.outputs)]]
    variables = [g_body.variable_entering[k][0] for k in written]
    return _after_writes(outer, outs, variables, op.outputs[n:n_vars], op.name)[0], rebuild


def _items_at_leaves(structure, other, label: str, where: str) -> list:
    """The items of ``other`` at the places of ``structure``'s leaves (shape invariants are
    given in the loop variables' structure; a shape is a leaf there, though it is a tuple)."""
    if isinstance(structure, dict):
        if not isinstance(other, dict) or set(other) != set(structure):
            raise ValueError(f"{label} at {where}: shape_invariants {other!r} do not match the loop variables")
        return [x for k in structure for x in _items_at_leaves(structure[k], other[k], label, where)]
    if isinstance(structure, (list, tuple)):
        if not isinstance(other, (list, tuple)) or len(other) != len(structure):
            raise ValueError(f"{label} at {where}: shape_invariants {other!r} do not match the loop variables "
                             f"{structure_text(structure)}")
        return [x for s, o in zip(structure, other) for x in _items_at_leaves(s, o, label, where)]
    return [other]


# --- scan, foldl, foldr, map_fn: loops over the leading dim of ``elems`` --------------------------
def _sequence(elems, label: str, where: str):
    """(the elems leaves as tensors, rebuild, n as an int64 scalar tensor, n if static)."""
    leaves, rebuild = flatten(elems)
    if not leaves:
        raise ValueError(f"{label} at {where}: elems is empty")
    tensors = [convert_to_tensor(e) for e in leaves]
    for t in tensors:
        if t.shape.rank == 0:
            raise ShapeError(f"{label} at {where}: '{t.name}' is a scalar; elems are sliced along their first dim")
    static = {t.shape[0] for t in tensors if t.shape[0] is not None}
    if len(static) > 1:
        raise ShapeError(f"{label} at {where}: the elems have different lengths {sorted(static)} in their first dim")
    n = shape_of(tensors[0])[0]

    def at(i):
        return rebuild([gather(t, i) for t in tensors])
    return at, n, (static.pop() if static else None)


def _stacked(outs, k: int, n_vars: int, include_initial: bool, n_static):
    """Scan's output k: the loop variable k after each iteration (its history, shifted by one,
    then its final value); with ``include_initial``, the value before the first one too.
    ``outs`` are ``while_op``'s outputs."""
    history, final = outs[n_vars + 1 + k], outs[k]
    rows = concat([history, expand_dims(final, 0)], 0)
    if not include_initial:
        rows = rows[1:]
    if n_static is not None and rows.shape[0] is None and final.shape.is_fully_defined():
        rows = reshape(rows, [n_static, *final.shape])  # the static row count the loop's stack lost
    return rows


def _accumulating_loop(fn, elems, initializer, reverse: bool, back_prop: bool, name: Optional[str], kind: str,
                       history: bool):
    """The one while_loop behind scan and the folds: ``a = fn(a, x_i)`` over the slices of
    ``elems`` (from the last with ``reverse``), starting from ``initializer`` or, without one,
    from the first slice. Returns (the op, rebuild of the accumulator's structure, its number
    of leaves, the static number of slices or None)."""
    where = user_location()
    label = f"{kind} '{name or kind}'"
    at, n, n_static = _sequence(elems, label, where)
    last = n - 1
    if initializer is None:
        first, start = at(last if reverse else 0), 1
    else:
        first, start = initializer, 0
    acc_leaves, acc_rebuild = flatten(first)
    acc_leaves = [convert_to_tensor(a) for a in acc_leaves]

    def body(i, *accs):
        acc = acc_rebuild(list(accs))
        new = fn(acc, at(last - i if reverse else i))
        if not same_structure(new, acc, check_types=False):
            raise TypeError(f"{label} at {where}: fn returns {structure_text(new)}, but the accumulator is "
                            f"{structure_text(acc)}")
        return (i + 1, *flatten(new)[0])

    outs, _ = while_op(lambda i, *accs: i < n, body, [constant(start, dt.int64), *acc_leaves], back_prop=back_prop,
                       name=name or kind, history=history)
    return outs, acc_rebuild, len(acc_leaves), n_static


def scan(fn, elems, initializer=None, parallel_iterations: int = 10, back_prop: bool = True,
         swap_memory: bool = False, infer_shape: bool = True, reverse: bool = False, name: Optional[str] = None):
    """``a_t = fn(a_{t-1}, x_t)`` over ``elems`` sliced along their first dim; returns every
    ``a_t`` stacked (tf.scan). Without ``initializer``, ``a_0`` is the first element and is
    the first output. ``elems`` and the accumulator may be nested structures. Runs as one
    while_loop; ``reverse`` walks the elems from the last."""
    loop, rebuild, n_acc, n_static = _accumulating_loop(fn, elems, initializer, reverse, back_prop, name, "scan",
                                                        history=True)
    outs = [_stacked(loop, 1 + k, 1 + n_acc, initializer is None, n_static) for k in range(n_acc)]
    if reverse:
        outs = [o[::-1] for o in outs]
    return rebuild(outs)


def _fold(fn, elems, initializer, back_prop, name, reverse: bool, kind: str):
    outs, rebuild, n_acc, _ = _accumulating_loop(fn, elems, initializer, reverse, back_prop, name, kind, history=False)
    return rebuild(list(outs[1:1 + n_acc]))


def foldl(fn, elems, initializer=None, parallel_iterations: int = 10, back_prop: bool = True,
          swap_memory: bool = False, name: Optional[str] = None):
    """``fn(...fn(fn(initializer, x_0), x_1)..., x_{n-1})`` (tf.foldl); without
    ``initializer``, the first element starts."""
    return _fold(fn, elems, initializer, back_prop, name, False, "foldl")


def foldr(fn, elems, initializer=None, parallel_iterations: int = 10, back_prop: bool = True,
          swap_memory: bool = False, name: Optional[str] = None):
    """foldl from the last element to the first (tf.foldr)."""
    return _fold(fn, elems, initializer, back_prop, name, True, "foldr")


def map_fn(fn, elems, dtype=None, parallel_iterations: int = 10, back_prop: bool = True, swap_memory: bool = False,
           infer_shape: bool = True, name: Optional[str] = None):
    """``fn`` applied to each slice of ``elems`` along the first dim, the results stacked
    (tf.map_fn). ``dtype`` is accepted for TF1 code: the results' dtypes come from ``fn``.
    ``elems`` must not be empty (the first slice is computed before the loop, to learn the
    structure of the results)."""
    where = user_location()
    label = f"map_fn '{name or 'map'}'"
    at, n, n_static = _sequence(elems, label, where)
    first = fn(at(0))
    out_leaves, out_rebuild = flatten(first)
    out_leaves = [convert_to_tensor(o) for o in out_leaves]

    def body(i, *outs):
        return (i + 1, *flatten(fn(at(i)))[0])

    loop, _ = while_op(lambda i, *outs: i < n, body, [constant(1, dt.int64), *out_leaves], back_prop=back_prop,
                       name=name or "map", history=True)
    return out_rebuild([_stacked(loop, 1 + k, 1 + len(out_leaves), True, n_static) for k in range(len(out_leaves))])


def theano_scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None, truncate_gradient: int = -1,
                go_backwards: bool = False, name: Optional[str] = None, strict: bool = False):
    """Theano's ``scan``: ``fn(*sequence slices, *previous outputs, *non_sequences)`` at each step.

    ``outputs_info`` has one entry per output of ``fn``: ``None`` (not fed back) or the initial
    value of an output that the next step receives (a dict ``{"initial": x}`` or
    ``{"initial": x, "taps": [-1]}`` also works; other taps are refused). Returns
    ``(outputs, updates)`` as Theano does: each output stacked over the steps (one tensor if
    ``fn`` has one output), and an empty ``updates`` dict (graphc's scan makes no shared-variable
    updates). ``n_steps`` is required without sequences; with them it may cut them short."""
    where = user_location()
    label = f"theano_scan '{name or 'scan'}'"
    seqs = [convert_to_tensor(s) for s in _as_list(sequences)]
    extra = [convert_to_tensor(s) for s in _as_list(non_sequences)]
    info = _as_list(outputs_info)
    initial = []
    for k, entry in enumerate(info):
        if isinstance(entry, dict):
            taps = entry.get("taps", [-1])
            if list(taps) != [-1]:
                raise ValueError(f"{label} at {where}: outputs_info[{k}] has taps {taps}; only [-1] (the previous "
                                 "step) is supported")
            entry = entry.get("initial")
        initial.append(None if entry is None else convert_to_tensor(entry))
    if truncate_gradient != -1:
        raise ValueError(f"{label} at {where}: truncate_gradient={truncate_gradient} is not supported (only -1: the "
                         "full gradient)")
    if seqs:
        at, n, _ = _sequence(seqs, label, where)
        if n_steps is not None:
            n = minimum(n, convert_to_tensor(n_steps, dt.int64))
    elif n_steps is None:
        raise ValueError(f"{label} at {where}: give sequences or n_steps")
    else:
        n = convert_to_tensor(n_steps, dt.int64)
        at = None
    last = n - 1

    def slices(i):
        if at is None:
            return []
        return list(at(last - i if go_backwards else i))

    def step(i, previous):
        fed = [p for p, init in zip(previous, initial) if init is not None]
        outs = fn(*slices(i), *fed, *extra)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        if info and len(outs) != len(info):
            raise ValueError(f"{label} at {where}: fn returns {len(outs)} outputs but outputs_info has {len(info)} "
                             "entries")
        return [convert_to_tensor(o) for o in outs]

    # The first step runs before the loop, to learn the outputs' types (as map_fn does).
    zero = constant(0, dt.int64)
    first = step(zero, [init if init is not None else None for init in (initial or [])])
    if not initial:
        initial[:] = [None] * len(first)
    carried = list(first)

    def body(i, *outs):
        return (i + 1, *step(i, list(outs)))

    loop, _ = while_op(lambda i, *outs: i < n, body, [constant(1, dt.int64), *carried], name=name or "scan",
                       history=True)
    n_out = len(carried)
    stacked = [_stacked(loop, 1 + k, 1 + n_out, True, None) for k in range(n_out)]
    return (stacked[0] if n_out == 1 else stacked), OrderedDict()


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def case(pred_fn_pairs, default=None, exclusive: bool = False, strict: bool = False, name: str = "case"):
    """The function of the first true predicate in ``pred_fn_pairs`` ((pred, fn) pairs, or a
    dict), else ``default()`` (tf.case): nested conds, so only the chosen function runs.
    Without ``default`` the last pair's function is the default. ``exclusive=True`` (TF1's
    run-time check that at most one predicate holds) is refused: graphc has no assert op yet."""
    where = user_location()
    pairs = list(pred_fn_pairs.items()) if isinstance(pred_fn_pairs, dict) else list(pred_fn_pairs)
    if not pairs:
        raise ValueError(f"case '{name}' at {where}: pred_fn_pairs is empty")
    if exclusive:
        raise ValueError(f"case '{name}' at {where}: exclusive=True needs a run-time assertion, which graphc does not "
                         "have yet; order the pairs (the first true predicate wins) and leave exclusive=False")
    for k, pair in enumerate(pairs):
        if not (isinstance(pair, tuple) and len(pair) == 2 and callable(pair[1])):
            raise TypeError(f"case '{name}' at {where}: entry {k} must be a (pred, fn) pair, got {pair!r}")
    if default is None:
        *pairs, (_, default) = pairs
    chosen = default
    for pred, fn in reversed(pairs):
        chosen = (lambda p, f, otherwise: lambda: cond(p, f, otherwise, strict=strict, name=name))(pred, fn, chosen)
    return chosen()


def switch_case(branch_index, branch_fns, default=None, name: str = "switch_case"):
    """``branch_fns[branch_index]()`` (tf.switch_case); ``branch_fns`` is a list, or a dict of
    int keys; an index with no branch runs ``default`` (by default the branch with the largest
    index). Only the chosen branch runs."""
    where = user_location()
    index = convert_to_tensor(branch_index)
    if not index.dtype.is_integer or index.shape.rank != 0:
        raise DTypeError(f"switch_case '{name}' at {where}: branch_index must be an integer scalar, got "
                         f"'{index.name}' {index.dtype.name}{format_shape(index.shape)}")
    items = sorted(branch_fns.items()) if isinstance(branch_fns, dict) else list(enumerate(branch_fns))
    if not items or not all(callable(fn) for _, fn in items):
        raise TypeError(f"switch_case '{name}' at {where}: branch_fns must be a non-empty list or dict of callables")
    if default is None:
        default = items[-1][1]
    return case([(equal(index, k), fn) for k, fn in items], default=default, name=name)

"""Variables: state that lives in a Session and persists across runs.

A Variable is declared by a structural ``variable`` op; ``read_variable`` yields its value and
``assign`` / ``assign_add`` / ``assign_sub`` write it. Within one run, a read happens before
every write to the same variable unless it (transitively) depends on that write, so
``sess.run([train, loss])`` sees the values from before the update. Using a variable inside
``gc.control_dependencies`` creates a fresh read that runs after those dependencies, which is
what TensorFlow 1.x users expect.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..dtypes import as_dtype
from ..errors import DTypeError, DTypeMismatch, ShapeError, ShapeMismatch
from ..default_session import session_or_default
from ..graph import GraphKeys, Operation, Tensor, TensorOperators, get_default_graph, user_location
from ..shapes import TensorShape, TensorType, broadcast_shapes, format_shape
from ._build import is_symbolic, make, make1
from .control_flow import body_read, body_write
from .registry import define
from .source import convert_to_tensor


def _infer_variable(inputs, attrs):
    return []


def _infer_read(inputs, attrs):
    return [TensorType(attrs["dtype"], attrs["shape"])]


def _infer_assign(inputs, attrs):
    """The value must broadcast to the variable's shape without changing it (NumPy's rule
    for ``v[...] = value`` and ``v += value``)."""
    (value,) = inputs
    if value.dtype is not attrs["dtype"]:
        raise DTypeMismatch(f"value has dtype {value.dtype.name}, variable '{attrs['var']}' is {attrs['dtype'].name}")
    target = TensorShape(attrs["shape"])
    try:
        fits = value.rank <= target.rank and broadcast_shapes(target, value.shape) == target
    except ShapeMismatch:
        fits = False
    if not fits:
        raise ShapeMismatch(f"value of shape {format_shape(value.shape)} does not fit variable "
                            f"'{attrs['var']}' of shape {format_shape(attrs['shape'])}")
    return [TensorType(attrs["dtype"], target)]


def _ref_read(inputs, attrs, ctx):
    return (ctx.read_variable(attrs["var"]).copy(),)


def _assigner(combine):
    def reference(inputs, attrs, ctx):
        value = inputs[0]
        if combine is not None:
            value = combine(ctx.read_variable(attrs["var"]), value)
        value = np.broadcast_to(value, attrs["shape"])
        ctx.write_variable(attrs["var"], np.array(value, dtype=attrs["dtype"].np, copy=True))
        return (ctx.read_variable(attrs["var"]).copy(),)
    return reference


define("variable", "state", _infer_variable, lambda xs, a, ctx=None: (), structural=True,
       doc="Declares a variable (attrs: dtype, shape). Its storage lives in the Session.")
define("read_variable", "state", _infer_read, _ref_read, stateful=True, doc="The variable's current value.")
define("assign", "state", _infer_assign, _assigner(None), stateful=True, doc="var = value; yields the new value.")
define("assign_add", "state", _infer_assign, _assigner(np.add), stateful=True, doc="var += value.")
define("assign_sub", "state", _infer_assign, _assigner(np.subtract), stateful=True, doc="var -= value.")

define("snapshot", "state", lambda inputs, attrs: [inputs[0]], lambda xs, a, ctx=None: (np.array(xs[0], copy=True),),
       elementwise=True,
       doc="A copy of a value held in a variable's storage, taken before a later write to that variable. "
           "Never built by users: the state pass (optimizer/state.py) inserts it into Programs.")

VARIABLE_WRITES = ("assign", "assign_add", "assign_sub")


class Variable(TensorOperators):
    """A trainable (or not) value that persists in a Session across runs.

    ``gc.Variable(initial_value, name=None, trainable=True, dtype=None)``. ``initial_value``
    may be a tensor (e.g. ``gc.init.glorot_uniform(shape)``), a NumPy or Python value, or a
    callable returning one. Its shape must be fully known.
    """

    __slots__ = ("_op", "_read", "_initializer", "_initial_value", "trainable", "dtype", "_shape")

    def __init__(self, initial_value=None, name: Optional[str] = None, trainable: bool = True,
                 dtype=None, shape=None, collections=None):
        if initial_value is None:
            raise ValueError(f"gc.Variable at {user_location()}: initial_value is required")
        graph = initial_value.graph if is_symbolic(initial_value) else get_default_graph()
        with graph.control_dependencies(None):
            base = graph.unique_name(name or "Variable")
            with graph.name_scope(base + "/"):
                if callable(initial_value) and not is_symbolic(initial_value):
                    initial_value = initial_value(shape, dtype) if _takes_shape(initial_value) else initial_value()
                if is_symbolic(initial_value):
                    init = convert_to_tensor(initial_value)
                else:
                    init = convert_to_tensor(initial_value, dtype=dtype, name="initial_value", graph=graph)
                if dtype is not None and init.dtype is not as_dtype(dtype):
                    from .elementwise import cast
                    init = cast(init, dtype)
            if not init.shape.is_fully_defined():
                raise ShapeError(f"gc.Variable '{base}' at {user_location()}: the initial value has shape "
                                 f"{format_shape(init.shape)}; variables need a fully known shape")
            self.dtype = init.dtype
            self._shape = init.shape
            self.trainable = bool(trainable)
            attrs = {"var": base, "dtype": self.dtype, "shape": tuple(self._shape)}
            self._op = graph.create_op("variable", (), {"dtype": self.dtype, "shape": tuple(self._shape)}, base,
                                       exact_name=True)
            with graph.name_scope(base + "/"):
                self._read = make1("read_variable", (), attrs, "read", graph=graph)
                self._initializer = make("assign", (init,), attrs, "Assign", graph=graph)
        self._initial_value = init
        graph.add_to_collection(f"__variable__/{base}", self)
        for key in collections or [GraphKeys.GLOBAL_VARIABLES]:
            graph.add_to_collection(key, self)
        if self.trainable and GraphKeys.TRAINABLE_VARIABLES not in (collections or []):
            graph.add_to_collection(GraphKeys.TRAINABLE_VARIABLES, self)

    @classmethod
    def from_ops(cls, var_op: Operation, read: Tensor, initializer: Operation, initial_value: Tensor,
                 trainable: bool) -> "Variable":
        """The Variable made of ops that already exist (a graph read from a meta graph file);
        the caller restores its collections."""
        self = cls.__new__(cls)
        self._op, self._read, self._initializer, self._initial_value = var_op, read, initializer, initial_value
        self.trainable = bool(trainable)
        self.dtype = read.dtype
        self._shape = read.shape
        var_op.graph.add_to_collection(f"__variable__/{var_op.name}", self)
        return self

    # -- identity -------------------------------------------------------------------------
    @property
    def op(self) -> Operation:
        return self._op

    @property
    def name(self) -> str:
        """TensorFlow-style ``"W:0"``; ``var.op.name`` is ``"W"``."""
        return f"{self._op.name}:0"

    @property
    def var_name(self) -> str:
        return self._op.name

    @property
    def graph(self):
        return self._op.graph

    @property
    def location(self) -> str:
        return self._op.location

    @property
    def initializer(self) -> Operation:
        return self._initializer

    @property
    def initial_value(self) -> Tensor:
        return self._initial_value

    # -- reading ----------------------------------------------------------------------------
    def value(self) -> Tensor:
        """The variable's read tensor (``W/read:0``); inside the function of a cond or a loop,
        the value that the body sees (ops/control_flow.py, "Variables in bodies")."""
        body = self._body()
        return self._read if body is None else body_read(self, body)

    def read_value(self) -> Tensor:
        """A fresh read that honours the current control dependencies."""
        body = self._body()
        return self.graph_value() if body is None else body_read(self, body)

    def graph_value(self) -> Tensor:
        """The value a read in the variable's own graph sees: its read tensor, or a fresh read
        when control dependencies are active there."""
        if not self.graph.has_control_dependencies:
            return self._read
        attrs = dict(self._read.op.attrs)
        return make1("read_variable", (), attrs, f"{self._op.name}/read", graph=self.graph)

    def _as_tensor(self) -> Tensor:
        body = self._body()
        return self.graph_value() if body is None else body_read(self, body)

    def _body(self):
        """The body being traced (a cond branch, a loop's function) that reads or writes this
        variable now, or None when the default graph is the variable's own."""
        graph = get_default_graph()
        return graph if graph is not self.graph and graph.encloses(self.graph) else None

    def reads(self) -> list:
        """Every read of this variable in the graph (gradients sum over them)."""
        return [op.outputs[0] for op in self.graph.get_operations()
                if op.type == "read_variable" and op.attrs["var"] == self._op.name]

    # -- writing ------------------------------------------------------------------------------
    def _write(self, op_type: str, value, name):
        if is_symbolic(value):
            v = convert_to_tensor(value)
            if v.dtype is not self.dtype:
                raise DTypeError(f"{op_type} at {user_location()}: variable '{self.var_name}' is "
                                 f"{self.dtype.name} but the value '{v.name}' is {v.dtype.name} (use gc.cast)")
        else:
            body = self._body()
            v = convert_to_tensor(value, dtype=self.dtype, graph=body or self.graph)
        body = self._body()
        if body is not None:
            return body_write(self, op_type, v, name, body)
        return self.graph_write(op_type, v, name)

    def graph_write(self, op_type: str, value: Tensor, name: Optional[str] = None) -> Tensor:
        """The write op in the variable's own graph (``op_type``: assign, assign_add, assign_sub)."""
        attrs = dict(self._read.op.attrs)
        return make1(op_type, (value,), attrs, name or f"{self._op.name}/{op_type.title().replace('_', '')}",
                     graph=self.graph)

    def assign(self, value, name: Optional[str] = None) -> Tensor:
        return self._write("assign", value, name)

    def assign_add(self, delta, name: Optional[str] = None) -> Tensor:
        return self._write("assign_add", delta, name)

    def assign_sub(self, delta, name: Optional[str] = None) -> Tensor:
        return self._write("assign_sub", delta, name)

    # -- session helpers ------------------------------------------------------------------------
    def eval(self, session=None):
        return self._read.eval(session=session)

    def load(self, value, session=None) -> None:
        """Set the variable's value in ``session`` without adding ops to the graph."""
        session_or_default(session, self).load_variable(self, value)

    def __repr__(self) -> str:
        return f"<gc.Variable '{self._op.name}' shape={format_shape(self._shape)} dtype={self.dtype.name}>"


def _takes_shape(fn) -> bool:
    from ..init import Initializer
    return isinstance(fn, Initializer)


def _variables(key: str, graph=None) -> list:
    return (graph or get_default_graph()).get_collection(key)


def global_variables(graph=None) -> list:
    return _variables(GraphKeys.GLOBAL_VARIABLES, graph)


def trainable_variables(graph=None) -> list:
    return _variables(GraphKeys.TRAINABLE_VARIABLES, graph)


def local_variables(graph=None) -> list:
    """Variables in ``GraphKeys.LOCAL_VARIABLES`` (not saved; metrics' counters)."""
    return _variables(GraphKeys.LOCAL_VARIABLES, graph)


def model_variables(graph=None) -> list:
    return _variables(GraphKeys.MODEL_VARIABLES, graph)


def variables_initializer(var_list, name: str = "init") -> Operation:
    from .control import group, no_op
    var_list = list(var_list)
    if not var_list:
        return no_op(name=name)
    return group(*[v.initializer for v in var_list], name=name)


def global_variables_initializer() -> Operation:
    return variables_initializer(global_variables(), name="init")


def local_variables_initializer() -> Operation:
    return variables_initializer(local_variables(), name="init_local")


# TF1's pre-1.0 names, still in tutorials.
initialize_all_variables = global_variables_initializer
initialize_local_variables = local_variables_initializer
all_variables = global_variables


def initialize_variables(var_list, name: str = "init") -> Operation:
    return variables_initializer(var_list, name)


def assign(ref: Variable, value, name: Optional[str] = None) -> Tensor:
    return _as_variable(ref, "assign").assign(value, name)


def assign_add(ref: Variable, value, name: Optional[str] = None) -> Tensor:
    return _as_variable(ref, "assign_add").assign_add(value, name)


def assign_sub(ref: Variable, value, name: Optional[str] = None) -> Tensor:
    return _as_variable(ref, "assign_sub").assign_sub(value, name)


def _as_variable(ref, op):
    if not isinstance(ref, Variable):
        raise TypeError(f"gc.{op} at {user_location()}: expects a gc.Variable, got {ref!r}")
    return ref


def variable_for(graph, name: str) -> Optional[Variable]:
    found = graph.get_collection(f"__variable__/{name}")
    return found[0] if found else None

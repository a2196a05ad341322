"""The user's graph: append-only nodes that keep names, scopes and the line that made them.

A :class:`Graph` holds :class:`Operation` nodes; an Operation's outputs are :class:`Tensor`s.
Nothing here is ever changed by compilation: a Session lowers the needed part of the graph
into an immutable ``Program`` (``graphc.optimizer.program``) and works on that.
"""
from __future__ import annotations

import contextlib
import difflib
import itertools
import os
import sys
import threading
from typing import Any, Iterable, Optional, Sequence

from .attrs import Attrs
from .default_session import session_or_default
from .dtypes import DType
from .errors import GraphError, InferenceError
from .ops.registry import get_op
from .shapes import TensorShape, TensorType, UnknownRankShape, format_shape

__all__ = [
    "Graph", "Operation", "Tensor", "GraphKeys", "get_default_graph", "reset_default_graph",
    "name_scope", "control_dependencies", "user_location",
]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# Files inside the package that are user code (they build graphs as a user would).
_USER_CODE_IN_PACKAGE = {os.path.join(_PACKAGE_DIR, "demo.py")}
_graph_ids = itertools.count(1)


def user_location(skip_frames: int = 1) -> str:
    """``file:line`` of the first stack frame outside the graphc package: the user's line."""
    frame = sys._getframe(skip_frames)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        inside = filename.startswith(_PACKAGE_DIR) and filename not in _USER_CODE_IN_PACKAGE
        if not (inside or frame.f_code.co_filename.startswith("<frozen")
                or os.path.basename(filename) == "contextlib.py"):
            break
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    filename = frame.f_code.co_filename
    try:
        rel = os.path.relpath(filename)
        if not rel.startswith(".."):
            filename = rel
    except ValueError:
        pass
    return f"{filename}:{frame.f_lineno}"


class GraphKeys:
    GLOBAL_VARIABLES = "variables"
    TRAINABLE_VARIABLES = "trainable_variables"
    LOCAL_VARIABLES = "local_variables"
    UPDATE_OPS = "update_ops"
    LOSSES = "losses"
    REGULARIZATION_LOSSES = "regularization_losses"
    MODEL_VARIABLES = "model_variables"
    MOVING_AVERAGE_VARIABLES = "moving_average_variables"
    METRIC_VARIABLES = "metric_variables"
    SUMMARIES = "summaries"
    ACTIVATIONS = "activations"
    WEIGHTS = "weights"
    BIASES = "biases"
    INIT_OP = "init_op"
    LOCAL_INIT_OP = "local_init_op"
    SAVERS = "savers"
    TRAIN_OP = "train_op"
    GLOBAL_STEP = "global_step"


def describe_inputs(inputs: Sequence["Tensor"]) -> str:
    return ", ".join(f"{t.name} {t.dtype.name}{format_shape(t.shape)}" for t in inputs) or "none"


def op_failure_message(op_type: str, name: str, inputs: Sequence["Tensor"], message: str,
                       location: str, when: str = "") -> str:
    head = f"{op_type} '{name}'{when}: {message}"
    return f"{head}\n  inputs: {describe_inputs(inputs)}\n  created at {location}"


_STAND_IN_RANKS = (0, 1, 2, 3, 4, 5)


def _infer_without_rank(opdef, in_types, attrs) -> tuple:
    """Output types of an op with an input of unknown rank (downstream of a placeholder made
    without a shape). The op's own inference runs with that input standing in at every rank
    up to 5 (all dims None): the dtypes come from the ranks it accepts, and an output keeps a
    rank where every accepted rank gives the same one (``sum_to`` to a known shape, a reshape
    to ``[-1]``), with the dims they agree on; elsewhere its rank is unknown too. The Session infers the real
    shapes once the rank is fed (optimizer/program.py ``lower``). Ops with bodies need every
    rank now: their bodies are built once."""
    unknown = next(t.shape for t in in_types if not t.shape.known_rank)
    if opdef.bodies:
        unknown._needs_rank()
    results, first_error = [], None
    for rank in _STAND_IN_RANKS:
        stand_in = [TensorType(t.dtype, (None,) * rank) if not t.shape.known_rank else t for t in in_types]
        try:
            results.append(tuple(opdef.infer(stand_in, attrs)))
        except InferenceError as e:
            first_error = first_error or e
    if not results:
        raise first_error
    outputs = []
    for i, t in enumerate(results[0]):
        shapes = {r[i].shape for r in results}
        if len({len(s) for s in shapes}) == 1:  # one rank at every rank fed: merge the dims
            dims = zip(*shapes)
            outputs.append(TensorType(t.dtype, tuple(d[0] if len(set(d)) == 1 else None for d in dims)))
        else:
            outputs.append(TensorType(t.dtype, UnknownRankShape(unknown.source, unknown.where)))
    return tuple(outputs)


class Operation:
    """A node of the graph. Fetching an Operation runs it and yields ``None``."""

    __slots__ = ("graph", "type", "name", "inputs", "control_inputs", "attrs", "outputs",
                 "location", "device", "_id", "__weakref__")

    def __init__(self, graph, op_type, name, inputs, control_inputs, attrs, out_types, location, op_id):
        self.graph = graph
        self.type = op_type
        self.name = name
        self.inputs = tuple(inputs)
        self.control_inputs = tuple(control_inputs)
        self.attrs = attrs
        self.location = location
        self.device = ""  # TF1's tf.device, recorded (Session._check_placement)
        self._id = op_id
        self.outputs = tuple(Tensor(self, i, t.dtype, t.shape) for i, t in enumerate(out_types))

    def get_attr(self, name: str) -> Any:
        return self.attrs[name]

    @property
    def op_def(self):
        return get_op(self.type)

    def run(self, feed_dict=None, session=None) -> None:
        session_or_default(session, self).run(self, feed_dict)

    def __repr__(self) -> str:
        return f"<gc.Operation '{self.name}' type={self.type} at {self.location}>"


class StaticShape:
    """The static-shape accessors of anything that converts to a tensor (``self._shape``)."""

    __slots__ = ()

    @property
    def shape(self) -> TensorShape:
        return self._shape

    def get_shape(self) -> TensorShape:
        return self._shape

    @property
    def ndim(self) -> int:
        return len(self._shape)


class TensorOperators(StaticShape):
    """Python operators for anything that converts to a tensor (Tensor, Variable).

    ``==`` and ``!=`` keep Python identity semantics so tensors can be dict keys (as in
    TensorFlow 1.x); use ``gc.equal`` / ``gc.not_equal`` for elementwise comparison.
    """

    __slots__ = ()
    __array_ufunc__ = None  # make `ndarray + tensor` defer to Tensor.__radd__
    __array_priority__ = 100

    def __add__(self, other): return _math().add(self, other)
    def __radd__(self, other): return _math().add(other, self)
    def __sub__(self, other): return _math().subtract(self, other)
    def __rsub__(self, other): return _math().subtract(other, self)
    def __mul__(self, other): return _math().multiply(self, other)
    def __rmul__(self, other): return _math().multiply(other, self)
    def __truediv__(self, other): return _math().divide(self, other)
    def __rtruediv__(self, other): return _math().divide(other, self)
    def __floordiv__(self, other): return _math().floordiv(self, other)
    def __rfloordiv__(self, other): return _math().floordiv(other, self)
    def __mod__(self, other): return _math().mod(self, other)
    def __rmod__(self, other): return _math().mod(other, self)
    def __pow__(self, other): return _math().pow(self, other)
    def __rpow__(self, other): return _math().pow(other, self)
    def __matmul__(self, other): return _linalg().matmul(self, other)
    def __rmatmul__(self, other): return _linalg().matmul(other, self)
    def __neg__(self): return _math().negative(self)
    def __pos__(self): return self
    def __abs__(self): return _math().abs(self)
    def __lt__(self, other): return _math().less(self, other)
    def __le__(self, other): return _math().less_equal(self, other)
    def __gt__(self, other): return _math().greater(self, other)
    def __ge__(self, other): return _math().greater_equal(self, other)
    def __and__(self, other): return _math().logical_and(self, other)
    def __rand__(self, other): return _math().logical_and(other, self)
    def __or__(self, other): return _math().logical_or(self, other)
    def __ror__(self, other): return _math().logical_or(other, self)
    def __xor__(self, other): return _math().logical_xor(self, other)
    def __rxor__(self, other): return _math().logical_xor(other, self)
    def __invert__(self): return _math().logical_not(self)

    def __getitem__(self, index):
        from .ops import shape as shape_ops
        return shape_ops.getitem(self, index)

    @property
    def T(self):
        from .ops import shape as shape_ops
        return shape_ops.transpose(self)

    def __bool__(self):
        raise TypeError(
            f"the truth value of symbolic tensor {self.name!r} is not defined while the graph is "
            "built; use gc.where / gc.logical_* for symbolic conditions, or fetch it with Session.run")

    def __iter__(self):
        raise TypeError(f"symbolic tensor {self.name!r} is not iterable; use gc.split or indexing")

    def __len__(self):
        raise TypeError(f"len() of symbolic tensor {self.name!r} is not defined; use .shape or gc.shape()")

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            f"symbolic tensor {self.name!r} cannot be converted to a NumPy array; "
            "fetch its value with Session.run")

    __hash__ = object.__hash__


_math_module = None
_linalg_module = None


def _math():
    global _math_module
    if _math_module is None:
        from .ops import elementwise
        _math_module = elementwise
    return _math_module


def _linalg():
    global _linalg_module
    if _linalg_module is None:
        from .ops import linalg
        _linalg_module = linalg
    return _linalg_module


class Tensor(TensorOperators):
    """An output of an Operation: a symbolic value with a dtype and a static shape."""

    __slots__ = ("op", "value_index", "dtype", "_shape", "_consumers", "__weakref__")

    def __init__(self, op: Operation, index: int, dtype: DType, shape):
        self.op = op
        self.value_index = index
        self.dtype = dtype
        self._shape = TensorShape(shape)
        self._consumers: list[Operation] = []

    @property
    def name(self) -> str:
        return f"{self.op.name}:{self.value_index}"

    @property
    def type(self) -> TensorType:
        return TensorType(self.dtype, self._shape)

    @property
    def graph(self) -> "Graph":
        return self.op.graph

    @property
    def location(self) -> str:
        return self.op.location

    def consumers(self) -> list[Operation]:
        return list(self._consumers)

    def eval(self, feed_dict=None, session=None):
        return session_or_default(session, self).run(self, feed_dict)

    def __repr__(self) -> str:
        return f"<gc.Tensor '{self.name}' shape={format_shape(self._shape)} dtype={self.dtype.name}>"


class _ThreadState(threading.local):
    def __init__(self):
        self.graph_stack: list[Graph] = []


_thread_state = _ThreadState()
_global_default_graph: Optional["Graph"] = None


class Graph:
    """A dataflow graph. Nodes are only ever added; names are unique within a graph."""

    def __init__(self):
        self._id = next(_graph_ids)
        self.location = user_location()
        self._operations: list[Operation] = []
        self._by_name: dict[str, Operation] = {}
        self._names_in_use: dict[str, int] = {}
        self._finalized = False
        self._lock = threading.RLock()
        self._scope = threading.local()
        self._control = threading.local()
        self._device = threading.local()
        self._origin = threading.local()  # location_scope: where ops made by an importer come from
        self.placed = False  # whether any op was made under gc.device
        # Objects whose ``before_run(session, fetches, feed_dict)`` sees every Session.run of
        # this graph first and may add feeds (gc.data's iterators fill their tensors so).
        self.session_hooks: list = []
        # gc.Print / gc.print ops of this graph: op -> what it prints (graphc/debugging.py);
        # a Session runs fetches that may reach one on its general path
        self.prints: dict = {}
        self._entered = threading.local()  # the as_default contexts ``with g:`` opened
        self._collections: dict[str, list] = {}
        self.seed: Optional[int] = None
        # The graph this one is a body of (a cond branch, a loop body; ops/control_flow.py),
        # and the outer tensors it uses: outer tensor -> its placeholder here.
        self.outer: Optional["Graph"] = None
        self.captures: dict = {}
        # The variables a body reads or writes (ops/control_flow.py, "Variables in bodies"):
        # name -> (variable, the enclosing graph's value of it, its placeholder here), and
        # name -> the value after each of this body's writes, in order.
        self.variable_entering: dict = {}
        self.variable_writes: dict = {}
        # Graphs whose tensors ops of this one may read, each through a function that gives
        # the tensor here that stands for it: a loop gradient's backward body reads the forward
        # body's values so (autodiff/control_flow.py), as kept rows or recomputed.
        self.reads_from: dict = {}

    # -- bodies of control flow ----------------------------------------------------------
    def encloses(self, other: "Graph") -> bool:
        """``other`` is a graph this one is (transitively) a body of."""
        g = self.outer
        while g is not None:
            if g is other:
                return True
            g = g.outer
        return False

    def capture(self, t: "Tensor") -> "Tensor":
        """The placeholder that stands for the enclosing graph's tensor ``t`` in this body (made
        on first use; a tensor from further out is captured by each body in between)."""
        if t.graph is not self.outer:
            t = self.outer.capture(t)
        found = self.captures.get(t)
        if found is None:
            with self.control_dependencies(None):
                found = self.create_op("placeholder", (), Attrs(dtype=t.dtype, shape=tuple(t.shape)),
                                       f"capture/{t.op.name.replace('/', '_')}_{t.value_index}").outputs[0]
            self.captures[t] = found
        return found

    # -- default graph -----------------------------------------------------------------
    def __enter__(self):
        """``with g:`` makes ``g`` the default graph, as ``with g.as_default():`` does."""
        context = self.as_default()
        self._entered_stack().append(context)
        return context.__enter__()

    def __exit__(self, *exc):
        return self._entered_stack().pop().__exit__(*exc)

    def _entered_stack(self) -> list:
        if not hasattr(self._entered, "stack"):  # per thread, as the default-graph stack is
            self._entered.stack = []
        return self._entered.stack

    def as_graph_def(self, from_version=None, add_shapes: bool = False):
        """The graph's nodes as a ``gc.GraphDef`` (graphc/export/meta_graph.py)."""
        from .export.meta_graph import as_graph_def
        return as_graph_def(self)

    @contextlib.contextmanager
    def as_default(self):
        _thread_state.graph_stack.append(self)
        try:
            yield self
        finally:
            _thread_state.graph_stack.pop()

    # -- building ----------------------------------------------------------------------
    def create_op(self, op_type: str, inputs: Sequence[Tensor] = (), attrs=None,
                  name: Optional[str] = None, exact_name: bool = False,
                  location: Optional[str] = None) -> Operation:
        """Add an op. ``name`` is made unique under the current name scope, unless
        ``exact_name``: then it is the full name, already reserved with ``unique_name``.
        ``location`` (default: the user's calling line) is where errors say the op was made."""
        opdef = get_op(op_type)
        attrs = attrs if isinstance(attrs, Attrs) else Attrs(attrs or {})
        inputs = tuple(inputs)
        with self._lock:
            location = location or getattr(self._origin, "text", None) or user_location()
            label = name or op_type
            if self._finalized:
                raise GraphError(
                    f"cannot add {op_type} '{label}' at {location}: the graph is finalized "
                    "(graph.finalize() was called, e.g. by a training loop that forbids new nodes)")
            resolved = []
            for t in inputs:
                if not isinstance(t, Tensor):
                    raise TypeError(f"{op_type} '{label}' at {location}: input {t!r} is not a Tensor")
                if t.graph is not self and t.graph in self.reads_from:
                    t = self.reads_from[t.graph](t)
                if t.graph is not self and self.encloses(t.graph):
                    t = self.capture(t)
                if t.graph is not self:
                    raise GraphError(
                        f"{op_type} '{label}' at {location}: input '{t.name}' belongs to {t.graph!r} "
                        f"(created at {t.location}), but the op is being added to {self!r}; "
                        "tensors from two graphs cannot be mixed")
                resolved.append(t)
            inputs = tuple(resolved)
            try:
                in_types = [t.type for t in inputs]
                if any(not t.shape.known_rank for t in in_types):
                    out_types = _infer_without_rank(opdef, in_types, attrs)
                else:
                    out_types = tuple(opdef.infer(in_types, attrs))
            except InferenceError as e:
                raise e.kind(op_failure_message(op_type, self._scoped(label), inputs, str(e), location)) from None
            if exact_name:
                if label in self._by_name:
                    raise GraphError(f"an operation named {label!r} already exists in {self!r}")
                op_name = label
            else:
                op_name = self.unique_name(label)
            control = self._current_control_inputs(inputs)
            op = Operation(self, op_type, op_name, inputs, control, attrs, out_types, location,
                           len(self._operations))
            op.device = getattr(self._device, "name", "")
            for t in op.outputs:  # a placeholder without a shape: errors downstream name it
                if not t._shape.known_rank and t._shape.source is None:
                    t._shape = UnknownRankShape(op_name, location)
            self._operations.append(op)
            self._by_name[op_name] = op
            for t in inputs:
                t._consumers.append(op)
            return op

    def _scoped(self, name: str) -> str:
        scope = self.current_name_scope
        return f"{scope}/{name}" if scope else name

    def unique_name(self, name: str, mark_as_used: bool = True) -> str:
        """``scope/name``, made unique by a ``_N`` suffix as TensorFlow does."""
        if not name or ":" in name:
            raise GraphError(f"invalid node name {name!r}: names are non-empty and have no ':'")
        full = self._scoped(name)
        if full not in self._names_in_use and full not in self._by_name:
            if mark_as_used:
                self._names_in_use[full] = 1
            return full
        i = self._names_in_use.get(full, 1)
        while f"{full}_{i}" in self._names_in_use or f"{full}_{i}" in self._by_name:
            i += 1
        candidate = f"{full}_{i}"
        if mark_as_used:
            self._names_in_use[full] = i + 1
            self._names_in_use[candidate] = 1
        return candidate

    @property
    def current_name_scope(self) -> str:
        return getattr(self._scope, "name", "")

    @contextlib.contextmanager
    def location_scope(self, text: str):
        """Ops made inside say they were made at ``text`` (an importer names the node of the
        file it translates, which is what the user can find, rather than its own line)."""
        before = getattr(self._origin, "text", None)
        self._origin.text = text
        try:
            yield
        finally:
            self._origin.text = before

    @contextlib.contextmanager
    def name_scope(self, name: Optional[str]):
        """Open a name scope. ``"a"`` opens a new unique scope under the current one,
        ``"a/"`` re-enters exactly scope ``a``, ``None`` or ``""`` returns to the root."""
        old = self.current_name_scope
        if not name:
            new = ""
        elif name.endswith("/"):
            new = name[:-1]
        else:
            with self._lock:
                new = self.unique_name(name)
        self._scope.name = new
        try:
            yield (new + "/") if new else ""
        finally:
            self._scope.name = old

    @contextlib.contextmanager
    def device(self, name: Optional[str]):
        """Record ``name`` (TF1's "/gpu:0", "/cpu:0", ...) on the ops made inside; ``None``
        or "" clears it. What the Session does with it: gc.device in graphc/compat.py."""
        old = getattr(self._device, "name", "")
        self._device.name = name or ""
        self.placed = self.placed or bool(name)
        try:
            yield
        finally:
            self._device.name = old

    def _control_stack(self) -> list:
        if not hasattr(self._control, "stack"):
            self._control.stack = []
        return self._control.stack

    @contextlib.contextmanager
    def control_dependencies(self, control_inputs: Optional[Iterable]):
        """Ops created inside run after every op in ``control_inputs``. ``None`` clears."""
        if control_inputs is None:
            frame = None
        else:
            frame = []
            for c in control_inputs:
                op = self._as_control_op(c)
                if op not in frame:
                    frame.append(op)
        stack = self._control_stack()
        stack.append(frame)
        try:
            yield
        finally:
            stack.pop()

    def _as_control_op(self, c) -> Operation:
        from .ops.state import Variable  # variables are a state-module concept
        if isinstance(c, Variable):
            c = c.value()
        if isinstance(c, Tensor):
            c = c.op
        if not isinstance(c, Operation):
            raise TypeError(f"control_dependencies expects Operations or Tensors, got {c!r}")
        if c.graph is not self:
            raise GraphError(f"control input '{c.name}' belongs to {c.graph!r}, not {self!r}")
        return c

    def _current_control_inputs(self, inputs: Sequence[Tensor]) -> tuple:
        ops: list[Operation] = []
        for frame in self._control_stack():
            if frame is None:
                ops = []
            else:
                ops.extend(op for op in frame if op not in ops)
        data_ops = {t.op for t in inputs}
        return tuple(op for op in ops if op not in data_ops)

    def current_control_ops(self) -> tuple:
        """The ops that an op created now would run after (its control inputs)."""
        return self._current_control_inputs(())

    @property
    def has_control_dependencies(self) -> bool:
        return bool(self._current_control_inputs(()))

    def finalize(self) -> None:
        self._finalized = True

    @property
    def finalized(self) -> bool:
        return self._finalized

    # -- lookup ------------------------------------------------------------------------
    def get_operations(self) -> list[Operation]:
        return list(self._operations)

    def get_operation_by_name(self, name: str) -> Operation:
        if not isinstance(name, str):
            raise TypeError(f"operation names are strings, got {name!r}")
        op = self._by_name.get(name)
        if op is None:
            raise GraphError(f"no operation named {name!r} in {self!r}{self._did_you_mean(name)}")
        return op

    def get_tensor_by_name(self, name: str) -> Tensor:
        if not isinstance(name, str):
            raise TypeError(f"tensor names are strings, got {name!r}")
        op_name, sep, index = name.rpartition(":")
        if not sep or not index.isdigit():
            raise GraphError(f"{name!r} is not a tensor name; tensor names look like 'op_name:0'")
        op = self.get_operation_by_name(op_name)
        i = int(index)
        if i >= len(op.outputs):
            raise GraphError(f"operation {op_name!r} has {len(op.outputs)} output(s), so {name!r} does not exist")
        return op.outputs[i]

    def _did_you_mean(self, name: str) -> str:
        close = difflib.get_close_matches(name, self._by_name, n=3)
        return f"; did you mean {', '.join(map(repr, close))}?" if close else ""

    def as_graph_element(self, obj, *, allow_operation: bool = True):
        """Resolve a fetch: a Tensor, an Operation, a Variable, or a name ("op" or "op:0")."""
        from .ops.state import Variable
        if isinstance(obj, Variable):
            obj = obj.value()
        if isinstance(obj, str):
            if ":" in obj:
                return self.get_tensor_by_name(obj)
            op = self.get_operation_by_name(obj)
            return op.outputs[0] if op.outputs else op
        if isinstance(obj, (Tensor, Operation)):
            if obj.graph is not self:
                raise GraphError(f"'{obj.name}' belongs to {obj.graph!r}, not {self!r}")
            if isinstance(obj, Operation) and not allow_operation:
                raise TypeError(f"expected a Tensor, got operation '{obj.name}'")
            return obj
        raise TypeError(f"cannot interpret {obj!r} as a tensor or operation")

    # -- collections -------------------------------------------------------------------
    def add_to_collection(self, name: str, value) -> None:
        with self._lock:
            self._collections.setdefault(name, []).append(value)

    def get_collection(self, name: str) -> list:
        return list(self._collections.get(name, ()))

    def get_collection_ref(self, name: str) -> list:
        return self._collections.setdefault(name, [])

    def __repr__(self) -> str:
        return f"<gc.Graph#{self._id} created at {self.location}>"


def get_default_graph() -> Graph:
    if _thread_state.graph_stack:
        return _thread_state.graph_stack[-1]
    global _global_default_graph
    if _global_default_graph is None:
        _global_default_graph = Graph()
    return _global_default_graph


def reset_default_graph() -> None:
    """Replace the global default graph with a new empty one."""
    if _thread_state.graph_stack:
        raise GraphError("reset_default_graph() cannot be called inside a `with graph.as_default()` block")
    global _global_default_graph
    _global_default_graph = Graph()


def name_scope(name: Optional[str]):
    return get_default_graph().name_scope(name)


def control_dependencies(control_inputs):
    return get_default_graph().control_dependencies(control_inputs)


def ancestors(targets: Iterable, cut=frozenset(), control: bool = True) -> set:
    """The ops that ``targets`` (Tensors and Operations) need, themselves included: through
    data edges, and control edges if ``control``; a tensor in ``cut`` (a fed value) stops
    the walk there, and a control edge to an op whose every output is fed is satisfied."""
    needed: set = set()
    stack = [t.op if isinstance(t, Tensor) else t for t in targets if t not in cut]
    while stack:
        op = stack.pop()
        if op in needed:
            continue
        needed.add(op)
        stack.extend(t.op for t in op.inputs if t not in cut and t.op not in needed)
        if control:
            stack.extend(c for c in op.control_inputs
                         if c not in needed and not (c.outputs and all(t in cut for t in c.outputs)))
    return needed

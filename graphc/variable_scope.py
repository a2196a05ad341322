"""TF1's variable sharing: ``variable_scope``, ``get_variable``, ``AUTO_REUSE``, and the
collections helpers (``get_collection`` with a ``scope=`` filter).

A variable made by ``get_variable`` is named by the *variable* scopes around it, not the name
scopes (as in TF1): ``with variable_scope("rnn"): get_variable("w", ...)`` is ``rnn/w`` even
inside ``name_scope("step_3")``. Each graph keeps a store of those variables by full name;
``reuse`` decides whether a name already in the store is returned (``True``), made
(``None``/``False``, an error if it exists), or either (``AUTO_REUSE``). A scope's reuse,
initializer, regularizer and dtype are inherited by the scopes inside it.
"""
from __future__ import annotations

import contextlib
import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import dtypes as dt
from .dtypes import as_dtype
from .errors import GraphcError
from .graph import Graph, GraphKeys, get_default_graph, user_location
from .shapes import format_shape


class VariableScopeError(GraphcError, ValueError):
    """A ``get_variable`` that breaks the scope's reuse rule (TF1 raised ValueError)."""


class _AutoReuse:
    def __repr__(self) -> str:
        return "gc.AUTO_REUSE"


AUTO_REUSE = _AutoReuse()


@dataclass
class VariableScope:
    """A variable scope, as ``with gc.variable_scope(...) as scope`` yields it."""
    name: str
    reuse: object = None                    # None, True or AUTO_REUSE (False is stored as None)
    initializer: Optional[Callable] = None
    regularizer: Optional[Callable] = None
    dtype: dt.DType = dt.float32
    original_name_scope: str = ""

    def reuse_variables(self) -> None:
        """Variables made from here on in this scope are shared (TF1's ``scope.reuse_variables()``)."""
        self.reuse = True

    def set_initializer(self, initializer) -> None:
        self.initializer = initializer

    def set_regularizer(self, regularizer) -> None:
        self.regularizer = regularizer


@dataclass
class _Store:
    """One graph's variables by full name, the scope stack (per thread) and the names that
    ``default_name`` scopes have taken."""
    variables: dict = field(default_factory=dict)       # full name -> (Variable, user location)
    taken: dict = field(default_factory=dict)           # scope name -> times opened by default_name
    local: threading.local = field(default_factory=threading.local)

    def stack(self) -> list:
        if not hasattr(self.local, "stack"):
            self.local.stack = [VariableScope("")]
        return self.local.stack


_STORES: "weakref.WeakKeyDictionary[Graph, _Store]" = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def _store(graph: Graph) -> _Store:
    with _STORES_LOCK:
        if graph not in _STORES:
            _STORES[graph] = _Store()
        return _STORES[graph]


def get_variable_scope() -> VariableScope:
    """The innermost variable scope of the default graph (the root scope is named "")."""
    return _store(get_default_graph()).stack()[-1]


@contextlib.contextmanager
def variable_scope(name_or_scope=None, default_name: Optional[str] = None, values=None, initializer=None,
                   regularizer=None, reuse=None, dtype=None, auxiliary_name_scope: bool = True):
    """TF1's ``tf.variable_scope``: ``name_or_scope`` is a name (nested under the current
    variable scope) or a VariableScope (re-entered as it is, wherever this is). With neither,
    ``default_name`` is made unique (``dense``, ``dense_1``, ...). ``reuse=True`` shares the
    scope's variables, ``AUTO_REUSE`` shares or makes them; inner scopes inherit it. Also opens
    a name scope for the ops inside, as TF1 does."""
    if name_or_scope is None and default_name is None:
        raise VariableScopeError(f"variable_scope at {user_location()}: give a name, a VariableScope, or "
                                 "default_name=")
    if reuse is False:
        reuse = None
    if reuse not in (None, True) and reuse is not AUTO_REUSE:
        raise VariableScopeError(f"variable_scope at {user_location()}: reuse must be None, False, True or "
                                 f"gc.AUTO_REUSE, got {reuse!r}")
    graph = get_default_graph()
    store = _store(graph)
    outer = store.stack()[-1]
    if isinstance(name_or_scope, VariableScope):
        base, full = name_or_scope, name_or_scope.name
    else:
        base = outer
        if name_or_scope is not None:
            leaf = str(name_or_scope)
        else:
            prefix = f"{outer.name}/{default_name}" if outer.name else default_name
            count = store.taken.get(prefix, 0)
            store.taken[prefix] = count + 1
            leaf = default_name if count == 0 else f"{default_name}_{count}"
        full = f"{outer.name}/{leaf}" if outer.name else leaf
    inherited_reuse = True if outer.reuse is True else (AUTO_REUSE if outer.reuse is AUTO_REUSE else None)
    scope = VariableScope(
        name=full,
        reuse=reuse if reuse is not None else (base.reuse if isinstance(name_or_scope, VariableScope)
                                               else inherited_reuse),
        initializer=initializer if initializer is not None else base.initializer,
        regularizer=regularizer if regularizer is not None else base.regularizer,
        dtype=as_dtype(dtype) if dtype is not None else base.dtype,
    )
    leaf_name = full.rsplit("/", 1)[-1]
    names = graph.name_scope(leaf_name) if auxiliary_name_scope and leaf_name else contextlib.nullcontext("")
    with names as name_scope_path:
        scope.original_name_scope = name_scope_path or ""
        store.stack().append(scope)
        try:
            yield scope
        finally:
            store.stack().pop()


def _default_initializer(dtype: dt.DType):
    from . import init
    if dtype.is_floating:
        return init.glorot_uniform()
    return init.zeros()


def get_variable(name: str, shape=None, dtype=None, initializer=None, regularizer=None, trainable=None,
                 collections=None, caching_device=None, partitioner=None, validate_shape: bool = True,
                 use_resource=None, custom_getter=None, constraint=None):
    """TF1's ``tf.get_variable``: the variable ``<scope>/<name>``, made or shared as the
    scope's ``reuse`` says. ``initializer`` is an initializer (``gc.zeros_initializer()``,
    ``gc.init.glorot_uniform()``), a tensor or a value; the default is the scope's, else
    Glorot-uniform for floats and zeros for integers, as in TF1. A ``regularizer``'s loss goes
    to ``GraphKeys.REGULARIZATION_LOSSES``."""
    from .ops.state import Variable
    where = user_location()
    if partitioner is not None:
        raise VariableScopeError(f"get_variable '{name}' at {where}: partitioned variables (partitioner=) "
                                 "are TF1's parameter-server sharding; graphc does not have them")
    graph = get_default_graph()
    store = _store(graph)
    scope = store.stack()[-1]
    full = f"{scope.name}/{name}" if scope.name else name
    shape = _as_shape(shape, full, where)
    found = store.variables.get(full)
    if scope.reuse is True or (scope.reuse is AUTO_REUSE and found is not None):
        if found is None:
            raise VariableScopeError(
                f"Variable {full} does not exist, or was not created with gc.get_variable(). Did you mean to set "
                f"reuse=gc.AUTO_REUSE in VarScope?\n  get_variable at {where}")
        var, made_at = found
        if shape is not None and validate_shape and tuple(shape) != tuple(var.shape):
            raise VariableScopeError(
                f"Trying to share variable {full}, but specified shape {format_shape(shape)} and found shape "
                f"{format_shape(var.shape)}.\n  get_variable at {where}; the variable was made at {made_at}")
        if dtype is not None and as_dtype(dtype) is not var.dtype:
            raise VariableScopeError(
                f"Trying to share variable {full}, but specified dtype {as_dtype(dtype).name} and found dtype "
                f"{var.dtype.name}.\n  get_variable at {where}; the variable was made at {made_at}")
        return var
    if found is not None:
        raise VariableScopeError(
            f"Variable {full} already exists, disallowed. Did you mean to set reuse=True or reuse=gc.AUTO_REUSE "
            f"in VarScope? Originally defined at:\n  {found[1]}\n  get_variable again at {where}")
    dtype = as_dtype(dtype) if dtype is not None else scope.dtype
    initializer = initializer if initializer is not None else scope.initializer
    if initializer is None:
        initializer = _default_initializer(dtype)
    if callable(initializer) and shape is None:
        raise VariableScopeError(f"get_variable '{full}' at {where}: a new variable made from an initializer "
                                 "needs shape=")
    from .init import Initializer
    if callable(initializer) and not isinstance(initializer, Initializer):
        value = lambda initializer=initializer: initializer(shape, dtype)  # noqa: E731  (TF1 initializers take shape, dtype)
    else:
        value = initializer
    with graph.control_dependencies(None), graph.name_scope(scope.name + "/" if scope.name else None):
        trainable = True if trainable is None else bool(trainable)
        keys = list(collections) if collections is not None else [GraphKeys.GLOBAL_VARIABLES]
        var = Variable(value, name=name, trainable=trainable, dtype=dtype, shape=shape, collections=keys)
        if shape is not None and tuple(var.shape) != tuple(shape):
            raise VariableScopeError(f"get_variable '{full}' at {where}: shape={format_shape(shape)}, but the "
                                     f"initial value has shape {format_shape(var.shape)}")
    store.variables[full] = (var, where)
    regularizer = regularizer if regularizer is not None else scope.regularizer
    if regularizer is not None:
        with graph.name_scope(var.var_name + "/Regularizer/"):
            loss = regularizer(var)
        if loss is not None:
            graph.add_to_collection(GraphKeys.REGULARIZATION_LOSSES, loss)
    return var


def _as_shape(shape, name: str, where: str):
    """A shape argument as TF1 takes it (ints, NumPy ints, a TensorShape, or one int); a
    variable's dims must all be known."""
    from .ops.shape_spec import static_shape
    return None if shape is None else static_shape(shape, "get_variable", name, allow_none=False)


def get_local_variable(name: str, shape=None, dtype=None, initializer=None, **kwargs):
    """``get_variable`` in ``GraphKeys.LOCAL_VARIABLES``, not trainable (metrics' counters)."""
    kwargs.pop("trainable", None)
    kwargs.setdefault("collections", [GraphKeys.LOCAL_VARIABLES])
    return get_variable(name, shape, dtype, initializer, trainable=False, **kwargs)


# --- collections ---------------------------------------------------------------------------------
def get_collection(key: str, scope: Optional[str] = None) -> list:
    """The items of collection ``key`` in the default graph; with ``scope``, those whose name
    matches it from the start (``re.match``, as TF1)."""
    items = get_default_graph().get_collection(key)
    if scope is None:
        return items
    pattern = re.compile(scope)
    return [item for item in items if _named(item) is not None and pattern.match(_named(item))]


def _named(item) -> Optional[str]:
    name = getattr(item, "name", None)
    return name if isinstance(name, str) else None


def get_collection_ref(key: str) -> list:
    return get_default_graph().get_collection_ref(key)


def add_to_collection(name: str, value) -> None:
    get_default_graph().add_to_collection(name, value)


def add_to_collections(names, value) -> None:
    for name in ([names] if isinstance(names, str) else names):
        add_to_collection(name, value)

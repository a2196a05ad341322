"""``gc.data``: TF1's input pipelines (``tf.data``).

A Dataset is a recipe of Python-side stages over NumPy elements (slices, generators, map,
filter, shuffle, batch, repeat, shard, prefetch, ...). An iterator's ``get_next()`` tensors
are placeholders that the Session fills on every run that needs them: a background thread
per (iterator, Session) runs the recipe ahead into a bounded queue, so the next batch is ready
while the step computes. The end of the data is ``gc.errors.OutOfRangeError``, as TF1's
``while True: try: sess.run(...) except OutOfRangeError: break`` idiom expects.

``map`` and ``filter`` take graph functions, as in TF1: the function is traced once on
placeholders of the element's spec, in a graph of its own, compiled for the CPU and called
per element in the background thread (it may not use the main graph's tensors).
"""
from __future__ import annotations

import os
import queue
import threading
import time
import traceback
import weakref
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .. import dtypes as dt
from ..dtypes import as_dtype
from ..errors import (
    DeadlineExceededError, FailedPreconditionError, GraphcError, InvalidArgumentError, OutOfRangeError, ShapeError,
)
from ..graph import Graph, Operation, Tensor, ancestors, get_default_graph, user_location
from ..nest import flatten
from ..shapes import TensorShape, format_shape

AUTOTUNE = -1
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@dataclass(frozen=True)
class TensorSpec:
    """The dtype and static shape of one component of a dataset's elements."""
    dtype: dt.DType
    shape: TensorShape

    def __repr__(self) -> str:
        return f"TensorSpec({format_shape(self.shape)}, {self.dtype.name})"


class _Run:
    """One pass of a pipeline in one Session: the values of its source tensors, and the
    per-pass state of its stages (shuffle generators, caches, compiled map functions)."""

    def __init__(self, values: dict):
        self.values = values
        self.state: dict = {}


class Dataset:
    """A pipeline of elements. Build one with ``from_tensor_slices``, ``from_tensors``,
    ``from_generator``, ``range`` or ``zip``, and chain the transformations."""

    def __init__(self, elements: Callable, structure, sources=(), parents=(), what: str = "Dataset",
                 location: Optional[str] = None):
        self._elements = elements          # _Run -> iterator of nested NumPy elements
        self._structure = structure        # nested TensorSpecs
        self._sources = tuple(sources)     # this stage's tensors, evaluated when an iterator starts
        self._parents = tuple(parents)
        self._what = what
        self._location = location or user_location(2)

    # -- the element's structure (TF1's names and TF2's) ----------------------------------------
    @property
    def element_spec(self):
        return self._structure

    @property
    def output_types(self):
        return _each(self._structure, lambda spec: spec.dtype)

    @property
    def output_shapes(self):
        return _each(self._structure, lambda spec: spec.shape)

    def _specs(self) -> list:
        return flatten(self._structure)[0]

    def all_sources(self) -> list:
        out = list(self._sources)
        for p in self._parents:
            out += [t for t in p.all_sources() if t not in out]
        return out

    def _derived(self, elements, structure, what, parents=None) -> "Dataset":
        return Dataset(elements, structure, (), parents if parents is not None else (self,), what, user_location(3))

    # -- sources ----------------------------------------------------------------------------------
    @staticmethod
    def from_tensor_slices(tensors) -> "Dataset":
        """Elements are the slices of ``tensors`` (a nested structure of arrays or tensors,
        placeholders included: their values come with the iterator's initializer run) along
        their first dimension."""
        leaves, rebuild = flatten(tensors)
        where = user_location()
        specs, constants, sources = [], [], []
        for leaf in leaves:
            if isinstance(leaf, Tensor) or hasattr(leaf, "value") and hasattr(leaf, "var_name"):
                t = leaf if isinstance(leaf, Tensor) else leaf.value()
                if t.ndim == 0:
                    raise ShapeError(f"gc.data.Dataset.from_tensor_slices at {where}: '{t.name}' is a scalar; slices "
                                     "need a first dimension")
                specs.append(TensorSpec(t.dtype, TensorShape(t.shape[1:])))
                constants.append(t)
                sources.append(t)
            else:
                arr = _as_array(leaf)
                if arr.ndim == 0:
                    raise ShapeError(f"gc.data.Dataset.from_tensor_slices at {where}: a scalar cannot be sliced; "
                                     "slices need a first dimension")
                specs.append(TensorSpec(as_dtype(arr.dtype), TensorShape(arr.shape[1:])))
                constants.append(arr)
        sizes = {c.shape[0] for c in constants if c.shape[0] is not None}
        if len(sizes) > 1:
            raise ShapeError(f"gc.data.Dataset.from_tensor_slices at {where}: the components have different first "
                             f"dimensions {sorted(sizes)}")

        def elements(run):
            arrays = [run.values[c] if isinstance(c, Tensor) else c for c in constants]
            lengths = {len(a) for a in arrays}
            if len(lengths) > 1:
                raise InvalidArgumentError(f"gc.data.Dataset.from_tensor_slices (made at {where}): the fed "
                                           f"components have different first dimensions {sorted(lengths)}")
            for i in range(lengths.pop() if lengths else 0):
                yield rebuild([a[i] for a in arrays])
        return Dataset(elements, rebuild(specs), sources, (), "from_tensor_slices", where)

    @staticmethod
    def from_tensors(tensors) -> "Dataset":
        """One element: ``tensors`` itself."""
        leaves, rebuild = flatten(tensors)
        stacked = Dataset.from_tensor_slices(rebuild([_expand(leaf) for leaf in leaves]))
        stacked._what = "from_tensors"
        return stacked

    @staticmethod
    def range(*args) -> "Dataset":
        """``range(stop)``, ``range(start, stop[, step])`` of int64 scalars."""
        values = range(*args)
        return Dataset(lambda run: (np.int64(v) for v in values), TensorSpec(dt.int64, TensorShape(())),
                       what="range", location=user_location())

    @staticmethod
    def from_generator(generator, output_types, output_shapes=None, args=None) -> "Dataset":
        """Elements from calling ``generator(*args)``, a Python generator of NumPy-like values
        of ``output_types`` (a nested structure of dtypes) and ``output_shapes`` (the same
        structure of shapes; ``None`` dims are free). Without output_shapes the rank comes
        from the first element; every element is checked against the spec."""
        where = user_location()
        types, rebuild = flatten(output_types)
        types = [as_dtype(t) for t in types]
        if output_shapes is None:
            shapes = [None] * len(types)
        else:
            shape_leaves = _shape_leaves(output_shapes, len(types), where)
            shapes = [TensorShape(s) for s in shape_leaves]
        if any(s is None for s in shapes):
            raise ShapeError(f"gc.data.Dataset.from_generator at {where}: give output_shapes (None for a free dim): "
                             "graphc needs each component's rank to build the graph")
        structure = rebuild([TensorSpec(t, s) for t, s in zip(types, shapes)])
        return Dataset(lambda run: iter(generator(*(args or ()))), structure, what="from_generator", location=where)

    @staticmethod
    def zip(datasets) -> "Dataset":
        parts, rebuild = flatten(datasets)
        where = user_location()

        def elements(run):
            iterators = [p._elements(run) for p in parts]
            while True:
                row = []
                for it in iterators:
                    try:
                        row.append(next(it))
                    except StopIteration:
                        return
                yield rebuild(row)
        return Dataset(elements, rebuild([p._structure for p in parts]), (), parts, "zip", where)

    # -- transformations -----------------------------------------------------------------------------
    def map(self, map_func, num_parallel_calls=None) -> "Dataset":
        """``map_func`` applied to every element (a tuple element is passed as arguments)."""
        traced = _Traced(map_func, self._structure, "map", user_location())
        upstream = self._elements

        def elements(run):
            call = traced.callable(run)
            for element in upstream(run):
                yield call(element)
        return self._derived(elements, traced.out_structure, "map")

    def filter(self, predicate) -> "Dataset":
        """The elements for which ``predicate`` (a graph function giving a scalar bool) holds."""
        traced = _Traced(predicate, self._structure, "filter", user_location())
        out = traced.out_specs
        if len(out) != 1 or out[0].dtype is not dt.bool_ or out[0].shape != ():
            raise ShapeError(f"gc.data filter at {traced.location}: the predicate must give a scalar bool tensor, "
                             f"got {traced.out_structure}")
        upstream = self._elements

        def elements(run):
            call = traced.callable(run)
            for element in upstream(run):
                if bool(np.asarray(call(element))):
                    yield element
        return self._derived(elements, self._structure, "filter")

    def batch(self, batch_size: int, drop_remainder: bool = False) -> "Dataset":
        """Consecutive elements stacked on a new first dimension (``None`` in the static shape,
        unless ``drop_remainder``)."""
        size = _positive("batch", "batch_size", batch_size)
        specs, rebuild = flatten(self._structure)
        first = size if drop_remainder else None
        structure = rebuild([TensorSpec(s.dtype, TensorShape((first,) + tuple(s.shape))) for s in specs])
        upstream = self._elements
        where = user_location()

        def stack(rows):
            try:
                return rebuild([np.stack(column) for column in zip(*rows)])
            except ValueError:
                shapes = sorted({tuple(np.shape(c)) for row in rows for c in row})
                raise InvalidArgumentError(f"gc.data batch (made at {where}): the elements of one batch have "
                                           f"different shapes {shapes}") from None

        def elements(run):
            rows = []
            for element in upstream(run):
                rows.append(flatten(element)[0])
                if len(rows) == size:
                    yield stack(rows)
                    rows = []
            if rows and not drop_remainder:
                yield stack(rows)
        return self._derived(elements, structure, "batch")

    def shuffle(self, buffer_size: int, seed: Optional[int] = None, reshuffle_each_iteration: bool = True
                ) -> "Dataset":
        """TF1's buffered shuffle: each element is drawn at random from a buffer of the next
        ``buffer_size`` ones. With ``seed`` the orders are reproducible (and, with
        ``reshuffle_each_iteration``, differ from one repetition to the next)."""
        size = _positive("shuffle", "buffer_size", buffer_size)
        upstream = self._elements
        key = object()
        graph = get_default_graph()
        if seed is None and graph.seed is not None:
            # gc.set_random_seed makes the order reproducible too; the graph's op count stands
            # for TF1's op seed (the same program makes the same graph)
            seed = (int(graph.seed), len(graph.get_operations()))

        def elements(run):
            if key not in run.state:  # the pass's seed: drawn once, so that without reshuffling every
                run.state[key] = (seed if seed is not None else np.random.SeedSequence().entropy, 0)
            base, repetition = run.state[key]
            if reshuffle_each_iteration:
                run.state[key] = (base, repetition + 1)  # the next repetition draws another order
            rng = np.random.default_rng(np.random.SeedSequence([*np.atleast_1d(base), repetition]))
            buffer = []
            for element in upstream(run):
                if len(buffer) < size:
                    buffer.append(element)
                    continue
                i = int(rng.integers(len(buffer)))
                yield buffer[i]
                buffer[i] = element
            for i in rng.permutation(len(buffer)):
                yield buffer[i]
        return self._derived(elements, self._structure, "shuffle")

    def repeat(self, count: Optional[int] = None) -> "Dataset":
        """The elements ``count`` times (``None`` or -1: forever; a pass with no elements ends it)."""
        upstream = self._elements

        def elements(run):
            n = 0
            while count is None or count < 0 or n < count:
                produced = False
                for element in upstream(run):
                    produced = True
                    yield element
                if not produced:
                    return
                n += 1
        return self._derived(elements, self._structure, "repeat")

    def take(self, count: int) -> "Dataset":
        upstream = self._elements

        def elements(run):
            if count < 0:
                yield from upstream(run)
                return
            for i, element in enumerate(upstream(run)):
                if i >= count:
                    return
                yield element
        return self._derived(elements, self._structure, "take")

    def skip(self, count: int) -> "Dataset":
        upstream = self._elements

        def elements(run):
            for i, element in enumerate(upstream(run)):
                if i >= count:
                    yield element
        return self._derived(elements, self._structure, "skip")

    def shard(self, num_shards: int, index: int) -> "Dataset":
        """Every ``num_shards``-th element, starting at ``index`` (one worker's share)."""
        n = _positive("shard", "num_shards", num_shards)
        if not 0 <= int(index) < n:
            raise ValueError(f"gc.data shard at {user_location()}: index must be in [0, {n}), got {index}")
        upstream = self._elements

        def elements(run):
            for i, element in enumerate(upstream(run)):
                if i % n == index:
                    yield element
        return self._derived(elements, self._structure, "shard")

    def prefetch(self, buffer_size) -> "Dataset":
        """How many elements the background thread prepares ahead (AUTOTUNE: 2)."""
        ds = self._derived(self._elements, self._structure, "prefetch")
        ds.prefetch_size = 2 if buffer_size in (None, AUTOTUNE) else _positive("prefetch", "buffer_size", buffer_size)
        return ds

    def cache(self, filename: str = "") -> "Dataset":
        """Keeps the elements of the first full pass in memory and replays them."""
        if filename:
            raise ValueError(f"gc.data cache at {user_location()}: a file cache is not supported; cache() keeps the "
                             "elements in memory")
        upstream = self._elements
        key = object()

        def elements(run):
            if key in run.state:
                yield from run.state[key]
                return
            seen = []
            for element in upstream(run):
                seen.append(element)
                yield element
            run.state[key] = seen
        return self._derived(elements, self._structure, "cache")

    def concatenate(self, dataset: "Dataset") -> "Dataset":
        a, b = self._specs(), dataset._specs()
        if [s.dtype for s in a] != [s.dtype for s in b] or [s.shape.rank for s in a] != [s.shape.rank for s in b]:
            raise ShapeError(f"gc.data concatenate at {user_location()}: the datasets' elements differ: "
                             f"{self._structure} and {dataset._structure}")
        upstream, other = self._elements, dataset._elements

        def elements(run):
            yield from upstream(run)
            yield from other(run)
        return self._derived(elements, self._structure, "concatenate", parents=(self, dataset))

    def apply(self, transformation) -> "Dataset":
        return transformation(self)

    # -- iterators ------------------------------------------------------------------------------------
    def make_one_shot_iterator(self) -> "Iterator":
        """An iterator that starts on its first use, with no initializer to run."""
        return Iterator(self._structure, self, one_shot=True, location=user_location())

    def make_initializable_iterator(self, shared_name=None) -> "Iterator":
        """An iterator that starts (and restarts) when its ``initializer`` runs; placeholders
        the dataset was made from are fed in that run."""
        return Iterator(self._structure, self, one_shot=False, location=user_location())

    def __iter__(self):
        raise TypeError(f"a gc.data Dataset (made at {self._location}) is iterated in a Session: make an iterator "
                        "(make_one_shot_iterator / make_initializable_iterator) and run its get_next()")

    def __repr__(self) -> str:
        return f"<gc.data.Dataset {self._what} {self._structure}>"


class Iterator:
    """TF1's iterator: ``get_next()`` gives the tensors of the next element, filled by the
    Session on every run that needs them."""

    def __init__(self, structure, dataset: Optional[Dataset], one_shot: bool, location: str,
                 graph: Optional[Graph] = None):
        from ..ops.source import placeholder
        self._graph = graph or get_default_graph()
        self._structure = structure
        self._dataset = dataset
        self._one_shot = one_shot
        self.location = location
        specs, rebuild = flatten(structure)
        with self._graph.as_default(), self._graph.name_scope("IteratorGetNext"):
            self._tensors = [placeholder(s.dtype, tuple(s.shape), name=f"component_{i}") for i, s in enumerate(specs)]
        self._next = rebuild(self._tensors)
        self._specs = specs
        self.initializer = None if one_shot or dataset is None else self.make_initializer(dataset)
        _hook(self._graph).iterators.append(self)

    @staticmethod
    def from_structure(output_types, output_shapes=None, shared_name=None, output_classes=None) -> "Iterator":
        """A reinitializable iterator: ``make_initializer(dataset)`` points it at any dataset
        of this structure (training and validation data through one get_next)."""
        types, rebuild = flatten(output_types)
        where = user_location()
        if output_shapes is None:
            raise ShapeError(f"gc.data.Iterator.from_structure at {where}: give output_shapes (graphc needs ranks)")
        shapes = _shape_leaves(output_shapes, len(types), where)
        structure = rebuild([TensorSpec(as_dtype(t), TensorShape(s)) for t, s in zip(types, shapes)])
        return Iterator(structure, None, one_shot=False, location=where)

    @property
    def output_types(self):
        return _each(self._structure, lambda spec: spec.dtype)

    @property
    def output_shapes(self):
        return _each(self._structure, lambda spec: spec.shape)

    def get_next(self, name: Optional[str] = None):
        return self._next

    def make_initializer(self, dataset: Dataset, name: Optional[str] = None) -> Operation:
        from ..ops.control import no_op
        mine, theirs = self._specs, dataset._specs()
        if [s.dtype for s in mine] != [s.dtype for s in theirs] or not all(
                a.shape.is_compatible_with(b.shape) for a, b in zip(mine, theirs)) or len(mine) != len(theirs):
            raise ShapeError(f"gc.data make_initializer at {user_location()}: the dataset's elements "
                             f"{dataset._structure} do not fit the iterator's {self._structure}")
        with self._graph.as_default():
            op = no_op(name=name or "MakeIterator")
        _hook(self._graph).initializers[op] = (self, dataset)
        return op

    def __repr__(self) -> str:
        return f"<gc.data.Iterator {self._structure} made at {self.location}>"


def make_one_shot_iterator(dataset: Dataset) -> Iterator:
    return dataset.make_one_shot_iterator()


def make_initializable_iterator(dataset: Dataset, shared_name=None) -> Iterator:
    return dataset.make_initializable_iterator()


def get_output_types(dataset):
    return dataset.output_types


def get_output_shapes(dataset):
    return dataset.output_shapes


# --- the Session's side: starting iterators and filling get_next ---------------------------------
_END = object()


class _Producer:
    """One iterator's pass in one Session: a daemon thread that runs the pipeline into a
    bounded queue. ``pull`` takes the next element, or raises at the end or on an error."""

    def __init__(self, iterator: Iterator, dataset: Dataset, values: dict):
        self.iterator = iterator
        self.dataset = dataset
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, _prefetch_size(dataset)))
        self.stopped = threading.Event()
        self.finished = None
        self.thread = threading.Thread(target=self._produce, args=(_Run(values),), daemon=True,
                                       name=f"gc.data {iterator.location}")
        self.thread.start()

    def _produce(self, run):
        try:
            for element in self.dataset._elements(run):
                if self.stopped.is_set() or not self._put(self._checked(element)):
                    return
        except GraphcError as e:
            self._put(e)
            return
        except Exception as e:  # a user's generator or map function failed: say where
            frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith(_PACKAGE)]
            at = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
            error = InvalidArgumentError(f"gc.data: the pipeline of the iterator made at {self.iterator.location} "
                                         f"failed{at}: {type(e).__name__}: {e}")
            error.__cause__ = e
            self._put(error)
            return
        self._put(_END)

    def _put(self, item) -> bool:
        """Put ``item`` when there is room; False once the producer is stopped."""
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _checked(self, element) -> list:
        leaves = flatten(element)[0]
        if len(leaves) != len(self.iterator._specs):
            raise InvalidArgumentError(f"gc.data: the iterator made at {self.iterator.location} expects elements of "
                                       f"{self.iterator._structure}, got {len(leaves)} components")
        out = []
        for value, spec, tensor in zip(leaves, self.iterator._specs, self.iterator._tensors):
            arr = np.asarray(value)
            if arr.dtype != spec.dtype.np:
                if not np.can_cast(arr.dtype, spec.dtype.np, casting="same_kind"):
                    raise InvalidArgumentError(f"gc.data: an element for '{tensor.name}' (iterator made at "
                                               f"{self.iterator.location}) has dtype {arr.dtype}, expected "
                                               f"{spec.dtype.name}")
                arr = arr.astype(spec.dtype.np)
            if not spec.shape.is_compatible_with(arr.shape):
                raise InvalidArgumentError(f"gc.data: an element for '{tensor.name}' (iterator made at "
                                           f"{self.iterator.location}) has shape {format_shape(arr.shape)}, expected "
                                           f"{format_shape(spec.shape)}")
            out.append(np.asarray(arr, order="C"))  # (ascontiguousarray would make a 0-d array 1-d)
        return out

    def pull(self, deadline: Optional[float] = None) -> list:
        if self.finished is not None:
            raise self.finished
        while True:
            try:
                item = self.queue.get(timeout=0.1)
                break
            except queue.Empty:
                if self.stopped.is_set():
                    raise FailedPreconditionError(f"gc.data: the iterator made at {self.iterator.location} was "
                                                  "restarted or its Session closed while a run waited for it") from None
                if deadline is not None and time.monotonic() > deadline:
                    raise DeadlineExceededError(f"gc.data: the iterator made at {self.iterator.location} gave no "
                                                "element within the run's timeout_in_ms") from None
        if item is _END:
            self.finished = OutOfRangeError(f"End of sequence: the iterator made at {self.iterator.location} has no "
                                            "more elements (re-run its initializer to start again)")
            raise self.finished
        if isinstance(item, Exception):
            self.finished = item
            raise item
        return item

    def stop(self) -> None:
        self.stopped.set()


def _prefetch_size(dataset: Dataset) -> int:
    node = dataset
    while node is not None:
        size = getattr(node, "prefetch_size", None)
        if size is not None:
            return size
        node = node._parents[0] if node._parents else None
    return 2


class _IteratorHook:
    """Sees each Session.run of its graph first (``Graph.session_hooks``): runs iterator
    initializers among the fetches, and feeds the next element of every iterator whose
    tensors the fetches need."""

    def __init__(self):
        self.iterators: list = []
        self.initializers: dict = {}   # initializer op -> (iterator, dataset)
        self._producers = weakref.WeakKeyDictionary()  # Session -> {iterator: _Producer}
        self._needed: dict = {}        # (fetch key) -> iterators the fetches need
        # one run at a time starts an iterator or takes its element: two threads' first runs
        # must not each start a pass, and each element goes to exactly one run
        self._lock = threading.RLock()

    def involved(self, session, fetches, feed_list) -> bool:
        """Whether a run of ``fetches`` starts an iterator or takes an element."""
        leaves = flatten(fetches)[0]
        return any(isinstance(leaf, Operation) and leaf in self.initializers for leaf in leaves) or bool(
            self._find_needed(session, leaves, {k: None for k in (feed_list or [])}))

    def session_closed(self, session) -> None:
        with self._lock:
            for producer in self._producers.pop(session, {}).values():
                producer.stop()

    def before_run(self, session, fetches, feed_dict):
        from ..runtime.session import _cached_call_key
        leaves = flatten(fetches)[0]
        with self._lock:
            if session not in self._producers:
                self._producers[session] = {}
                # a Session that is dropped without close() stops its threads too
                weakref.finalize(session, _stop_all, self._producers[session])
            producers = self._producers[session]
            for leaf in leaves:
                if isinstance(leaf, Operation) and leaf in self.initializers:
                    iterator, dataset = self.initializers[leaf]
                    self._start(session, producers, iterator, dataset, feed_dict)
            key = _cached_call_key(fetches, feed_dict)
            needed = self._needed.get(key) if key is not None else None
            if needed is None:
                needed = self._find_needed(session, leaves, feed_dict)
                if key is not None:
                    self._needed[key] = needed
            if not needed:
                return feed_dict
            feed_dict = dict(feed_dict or {})
            timeout = session._state.timeout_ms()  # RunOptions(timeout_in_ms=...) of this run
            deadline = time.monotonic() + timeout / 1000 if timeout else None
            for iterator in needed:
                producer = producers.get(iterator)
                if producer is None:
                    if not iterator._one_shot:
                        raise FailedPreconditionError(
                            f"GetNext() failed because the iterator made at {iterator.location} has not been "
                            f"initialized: run its initializer (sess.run(iterator.initializer)) before the run at "
                            f"{user_location()}")
                    producer = self._start(session, producers, iterator, iterator._dataset, {})
                for tensor, value in zip(iterator._tensors, producer.pull(deadline)):
                    feed_dict[tensor] = value
            return feed_dict

    def _find_needed(self, session, leaves, feed_dict) -> list:
        targets = [session._resolve_fetch(f) for f in leaves]
        fed = {session._resolve_feed_key(k) for k in (feed_dict or {})}
        ops = ancestors(targets, fed)
        return [it for it in self.iterators if any(t.op in ops and t not in fed for t in it._tensors)]

    def _start(self, session, producers, iterator, dataset, feed_dict) -> _Producer:
        old = producers.pop(iterator, None)
        if old is not None:
            old.stop()
        sources = dataset.all_sources()
        values = {}
        if sources:
            fed = {k: v for k, v in (feed_dict or {}).items()}
            values = dict(zip(sources, session.run(sources, fed)))
        producer = producers[iterator] = _Producer(iterator, dataset, values)
        return producer


def _stop_all(producers: dict) -> None:
    for producer in producers.values():
        producer.stop()


_HOOKS_LOCK = threading.Lock()


def _hook(graph: Graph) -> _IteratorHook:
    with _HOOKS_LOCK:
        for hook in graph.session_hooks:
            if isinstance(hook, _IteratorHook):
                return hook
        hook = _IteratorHook()
        graph.session_hooks.append(hook)
        return hook


# --- graph functions for map and filter ------------------------------------------------------------
class _Traced:
    """A user's map or filter function, traced once on placeholders of the element's spec in
    a graph of its own, and compiled (per pipeline pass) as a CPU callable."""

    def __init__(self, fn, structure, what: str, location: str):
        from ..ops.source import convert_to_tensor, placeholder
        self.location = location
        self.graph = Graph()
        specs, rebuild = flatten(structure)
        with self.graph.as_default():
            self.inputs = [placeholder(s.dtype, tuple(s.shape), name=f"element_{i}") for i, s in enumerate(specs)]
            element = rebuild(self.inputs)
            try:
                out = fn(*element) if isinstance(element, tuple) and not hasattr(type(element), "_fields") \
                    else fn(element)
            except GraphcError:
                raise
            except Exception as e:
                raise ShapeError(f"gc.data {what} at {location}: the function failed on the element's placeholders "
                                 f"{structure}: {type(e).__name__}: {e} (map and filter take graph functions, as in "
                                 "TF1)") from e
            leaves, self.rebuild = flatten(out)
            self.outputs = [convert_to_tensor(v) for v in leaves]
        self.out_specs = [TensorSpec(t.dtype, TensorShape(t.shape)) for t in self.outputs]
        self.out_structure = self.rebuild(self.out_specs)

    def callable(self, run: _Run):
        from ..runtime.session import Session
        key = ("traced", id(self))
        if key not in run.state:
            session = Session(graph=self.graph, device="cpu")
            run.state[key] = session.make_callable(self.outputs, feed_list=self.inputs)
        call = run.state[key]
        rebuild = self.rebuild

        def apply(element):
            return rebuild(call(*flatten(element)[0]))
        return apply


# --- helpers ---------------------------------------------------------------------------------------------
def _each(structure, field):
    """The structure of TensorSpecs with ``field(spec)`` in place of each (TF1's output_types
    and output_shapes)."""
    leaves, rebuild = flatten(structure)
    return rebuild([field(spec) for spec in leaves])


def _as_array(value) -> np.ndarray:
    """A Python value as TF converts it (floats to float32, ints to int32); arrays keep their dtype."""
    if isinstance(value, np.ndarray):
        return value
    arr = np.asarray(value)
    if arr.dtype == np.float64:
        return arr.astype(np.float32)
    if arr.dtype == np.int64:
        return arr.astype(np.int32)
    return arr


def _expand(leaf):
    from ..ops.shape import expand_dims
    if isinstance(leaf, Tensor):
        return expand_dims(leaf, 0)
    return _as_array(leaf)[None]


def _shape_leaves(shapes, n: int, where: str) -> list:
    """The shapes of a structure's components: a shape is a list/tuple of dims or a TensorShape."""
    def is_shape(x):
        return isinstance(x, TensorShape) or (isinstance(x, (list, tuple)) and all(
            d is None or isinstance(d, (int, np.integer)) for d in x))
    if n == 1 and is_shape(shapes):
        return [tuple(shapes)]
    out = []

    def walk(x):
        if is_shape(x):
            out.append(tuple(x))
        elif isinstance(x, dict):
            for k in x:
                walk(x[k])
        elif isinstance(x, (list, tuple)):
            for item in x:
                walk(item)
        else:
            raise ShapeError(f"gc.data at {where}: {x!r} is not a shape")
    walk(shapes)
    if len(out) != n:
        raise ShapeError(f"gc.data at {where}: {n} output types but {len(out)} output shapes")
    return out


def _positive(op: str, what: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"gc.data {op} at {user_location(3)}: {what} must be a positive int, got {value!r}")
    return int(value)


class experimental:  # noqa: N801  (tf.data.experimental)
    AUTOTUNE = AUTOTUNE

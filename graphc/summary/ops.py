"""TF1's summary ops: ``scalar``, ``histogram``, ``image``, ``text``, ``merge``, ``merge_all``.

In TF1 a summary op is a string tensor holding a serialized ``Summary``. graphc has no string
tensors, so a summary is a ``SummaryOp``: a fetch that stands for the numeric tensors it
summarizes. ``sess.run`` computes those tensors with everything else it fetches, in the same
compiled program, and hands back the serialized ``Summary`` bytes in the summary's place, as
TF1 does, ready for ``FileWriter.add_summary``. The encoding (histogram buckets, PNG) runs on
the host after the run, as TF1's summary kernels run on the CPU.
"""
from __future__ import annotations

import re
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import InvalidArgumentError
from ..graph import Graph, GraphKeys, Tensor, get_default_graph, user_location
from ..ops.source import convert_to_tensor
from ..shapes import format_shape
from . import records

_ILLEGAL = re.compile(r"[^-/\w\.]")


class SummaryOp:
    """A summary in the graph. Fetch it with ``sess.run`` to get the serialized ``Summary``
    bytes; ``merge`` and ``merge_all`` combine several into one fetch."""

    def __init__(self, graph: Graph, name: str, tensors: Sequence[Tensor], encode: Callable, location: str,
                 kind: str):
        self.graph = graph
        self.name = name
        self.tensors = tuple(tensors)   # what the run computes for it
        self._encode = encode           # values of ``tensors`` -> list of Summary.Value
        self.location = location
        self.type = kind

    def _values(self, arrays) -> list:
        return self._encode(list(arrays))

    def _graphc_fetch_parts_(self):
        """The Session's protocol for a fetch that stands for several tensors: the tensors to
        compute, and how their values become this fetch's result."""
        return self.tensors, lambda arrays: records.summary_bytes(self._values(arrays))

    def eval(self, feed_dict=None, session=None) -> bytes:
        from ..default_session import session_or_default
        return session_or_default(session, self).run(self, feed_dict)

    def __repr__(self) -> str:
        return f"<gc.summary {self.type} '{self.name}' at {self.location}>"


def _tag(graph: Graph, name: str, family: Optional[str]) -> str:
    """TF1's tag: the name scope, then the family, then the name, with characters TensorBoard
    does not take replaced by '_'."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a summary's name must be a non-empty string, got {name!r} at {user_location(3)}")
    clean = _ILLEGAL.sub("_", name).lstrip("/")
    if family:
        clean = f"{_ILLEGAL.sub('_', family)}/{clean}"
    scope = graph.current_name_scope
    return f"{scope}/{clean}".lstrip("/") if scope else clean


def _add(summary: SummaryOp, collections) -> SummaryOp:
    for key in (collections if collections is not None else [GraphKeys.SUMMARIES]):
        summary.graph.add_to_collection(key, summary)
    return summary


def _tensor(value, what: str) -> Tensor:
    x = convert_to_tensor(value)
    if not (x.dtype.is_floating or x.dtype.is_integer or x.dtype.is_bool):
        raise TypeError(f"{what}: a summary takes a numeric tensor, got {x!r}")
    return x


def scalar(name: str, tensor, collections=None, family: Optional[str] = None) -> SummaryOp:
    """``tf.summary.scalar``: the value of a scalar tensor, as one point of a curve."""
    x = _tensor(tensor, f"gc.summary.scalar('{name}')")
    graph, location = x.graph, user_location(2)
    if x.shape.known_rank and len(x.shape) != 0:
        raise ValueError(f"gc.summary.scalar('{name}') at {location}: expects a scalar tensor (shape ()), got "
                         f"'{x.name}' of shape {format_shape(x.shape)}; reduce it first (gc.reduce_mean) or "
                         "use gc.summary.histogram")
    tag = _tag(graph, name, family)

    def encode(arrays):
        value = np.asarray(arrays[0])
        if value.size != 1 or value.ndim != 0:
            raise InvalidArgumentError(f"gc.summary.scalar('{name}') made at {location}: expects a scalar, but "
                                       f"'{x.name}' has shape {value.shape} in this run")
        return [records.scalar_value(tag, value)]
    return _add(SummaryOp(graph, tag, [x], encode, location, "scalar"), collections)


def histogram(name: str, values, collections=None, family: Optional[str] = None) -> SummaryOp:
    """``tf.summary.histogram``: the distribution of every element of ``values``."""
    x = _tensor(values, f"gc.summary.histogram('{name}')")
    tag = _tag(x.graph, name, family)
    return _add(SummaryOp(x.graph, tag, [x], lambda a: [records.histogram_value(tag, a[0])], user_location(2),
                          "histogram"), collections)


def image(name: str, tensor, max_outputs: int = 3, collections=None, family: Optional[str] = None) -> SummaryOp:
    """``tf.summary.image``: up to ``max_outputs`` images of a [batch, height, width, channels]
    tensor with 1, 3 or 4 channels (uint8 as is; floats scaled as TF1 does)."""
    x = _tensor(tensor, f"gc.summary.image('{name}')")
    location = user_location(2)
    if x.shape.known_rank and (len(x.shape) != 4 or x.shape[3] not in (None, 1, 3, 4)):
        raise ValueError(f"gc.summary.image('{name}') at {location}: expects [batch, height, width, channels] with "
                         f"1, 3 or 4 channels, got '{x.name}' of shape {format_shape(x.shape)}")
    if not isinstance(max_outputs, int) or max_outputs < 1:
        raise ValueError(f"gc.summary.image('{name}') at {location}: max_outputs must be a positive int, got "
                         f"{max_outputs!r}")
    tag = _tag(x.graph, name, family)

    def encode(arrays):
        batch = np.asarray(arrays[0])
        if batch.ndim != 4 or batch.shape[3] not in (1, 3, 4):
            raise InvalidArgumentError(f"gc.summary.image('{name}') made at {location}: expects [batch, height, "
                                       f"width, channels] with 1, 3 or 4 channels, got shape {batch.shape}")
        pixels = records.to_uint8(batch[:max_outputs])
        if len(pixels) == 1 and max_outputs == 1:
            return [records.image_value(f"{tag}/image", pixels[0])]
        return [records.image_value(f"{tag}/image/{i}", img) for i, img in enumerate(pixels)]
    return _add(SummaryOp(x.graph, tag, [x], encode, location, "image"), collections)


def text(name: str, tensor, collections=None) -> SummaryOp:
    """``tf.summary.text``: text for TensorBoard's text tab. graphc has no string tensors, so
    ``tensor`` is a Python string (or a list or array of strings), shown as it is, or a
    numeric tensor, whose value each run is shown as text."""
    location = user_location(2)
    if isinstance(tensor, str) or (isinstance(tensor, (list, tuple, np.ndarray))
                                   and np.asarray(tensor, dtype=object).size
                                   and all(isinstance(s, str) for s in np.asarray(tensor, dtype=object).flat)):
        graph = get_default_graph()
        tag = _tag(graph, name, None)
        strings = np.asarray(tensor, dtype=object)
        return _add(SummaryOp(graph, tag, [], lambda a: [records.text_value(tag, strings)], location, "text"),
                    collections)
    x = _tensor(tensor, f"gc.summary.text('{name}')")
    tag = _tag(x.graph, name, None)
    return _add(SummaryOp(x.graph, tag, [x], lambda a: [records.text_value(tag, np.array(np.array2string(
        np.asarray(a[0]), threshold=1000), dtype=object))], location, "text"), collections)


def merge(inputs, collections=None, name: Optional[str] = None) -> SummaryOp:
    """``tf.summary.merge``: one fetch for several summaries (their values in one Summary)."""
    parts = list(inputs)
    location = user_location(2)
    for p in parts:
        if not isinstance(p, SummaryOp):
            raise TypeError(f"gc.summary.merge at {location}: every input must be a summary (gc.summary.scalar, "
                            f"histogram, image, text or merge), got {p!r}")
    graph = parts[0].graph if parts else get_default_graph()
    sizes = [len(p.tensors) for p in parts]

    def encode(arrays):
        values, at = [], 0
        for p, n in zip(parts, sizes):
            values.extend(p._values(arrays[at:at + n]))
            at += n
        return values
    merged = SummaryOp(graph, name or "Merge/MergeSummary", [t for p in parts for t in p.tensors], encode, location,
                       "merge")
    if collections:
        _add(merged, collections)
    return merged


def merge_all(key: str = GraphKeys.SUMMARIES, scope: Optional[str] = None, name: Optional[str] = None):
    """``tf.summary.merge_all``: every summary in collection ``key`` (of tags under ``scope``)
    as one fetch, or None when there is none (as TF1)."""
    summaries = [s for s in get_default_graph().get_collection(key) if isinstance(s, SummaryOp)]
    if scope is not None:
        pattern = re.compile(scope)
        summaries = [s for s in summaries if pattern.match(s.name)]
    if not summaries:
        return None
    return merge(summaries, name=name)

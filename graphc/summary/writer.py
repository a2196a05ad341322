"""``gc.summary.FileWriter``: TF1's writer of TensorBoard event files.

The records and the file (``events.out.tfevents.<time>.<host>``, length-prefixed and
CRC-checked) are written by the ``tensorboard`` package's own ``EventFileWriter``; graphc
only makes the events. ``add_graph`` turns a graphc graph into TensorBoard's ``GraphDef``:
one node per op with its type, its name (so name scopes group in the graph view), its inputs,
the shapes of its outputs (``_output_shapes``, which TensorBoard draws on the edges), its
dtype, its attributes, and the user's file:line (``location``).
"""
from __future__ import annotations

import os
import time
from typing import Optional

import numpy as np

from ..graph import Graph, Operation, user_location
from . import records

_TF_DTYPES = {"float16": "DT_HALF", "float32": "DT_FLOAT", "float64": "DT_DOUBLE", "int8": "DT_INT8",
              "int16": "DT_INT16", "int32": "DT_INT32", "int64": "DT_INT64", "uint8": "DT_UINT8", "bool": "DT_BOOL"}


def _shape_proto(P, shape):
    if not shape.known_rank:
        return P.TensorShapeProto(unknown_rank=True)
    return P.TensorShapeProto(dim=[P.TensorShapeProto.Dim(size=-1 if d is None else int(d)) for d in shape])


def _attr_text(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape} {value.dtype}" if value.size > 8 else np.array2string(value)
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _node_def(P, op: Operation):
    inputs = [t.op.name if t.value_index == 0 else f"{t.op.name}:{t.value_index}" for t in op.inputs]
    inputs += [f"^{c.name}" for c in op.control_inputs]
    attr = {"location": P.AttrValue(s=op.location.encode("utf-8"))}
    if op.outputs:
        attr["_output_shapes"] = P.AttrValue(list=P.AttrValue.ListValue(
            shape=[_shape_proto(P, t.shape) for t in op.outputs]))
        tf_dtype = _TF_DTYPES.get(op.outputs[0].dtype.name)
        if tf_dtype is not None:
            attr["T"] = P.AttrValue(type=P.DataType.Value(tf_dtype))
    for key in op.attrs:
        if key not in attr:
            attr[key] = P.AttrValue(s=_attr_text(op.attrs[key]).encode("utf-8"))
    return P.NodeDef(name=op.name, op=op.type, input=inputs, device=op.device or "", attr=attr)


def graph_def_proto(graph: Graph):
    """TensorBoard's ``GraphDef`` of a graphc graph (its top-level ops)."""
    P = records.protos()
    return P.GraphDef(node=[_node_def(P, op) for op in graph.get_operations()],
                      versions=P.VersionDef(producer=22))


_NODE_STAT_FIELDS = ("all_start_micros", "op_start_rel_micros", "op_end_rel_micros", "all_end_rel_micros")


def run_metadata_proto(run_metadata):
    """TensorBoard's ``RunMetadata`` of a ``gc.RunMetadata`` (its TF1-shaped ``step_stats``)."""
    P = records.protos()
    step_stats = getattr(run_metadata, "step_stats", None)
    if step_stats is None:
        raise TypeError(f"add_run_metadata: expects a gc.RunMetadata filled by a traced sess.run, got "
                        f"{type(run_metadata).__name__}")
    proto = P.RunMetadata()
    for device in step_stats.dev_stats:
        out = proto.step_stats.dev_stats.add(device=device.device)
        for node in device.node_stats:
            stat = out.node_stats.add(node_name=node.node_name, timeline_label=getattr(node, "timeline_label", ""))
            for field in _NODE_STAT_FIELDS:
                setattr(stat, field, int(getattr(node, field, 0)))
    return proto


def _writable_logdir(logdir, location: str) -> str:
    if not isinstance(logdir, (str, os.PathLike)) or not str(logdir):
        raise TypeError(f"gc.summary.FileWriter at {location}: logdir must be a directory path, got {logdir!r}")
    path = os.fspath(logdir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"gc.summary.FileWriter at {location}: logdir {path!r} exists and is not a "
                                 "directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise PermissionError(f"gc.summary.FileWriter at {location}: cannot create logdir {path!r}: "
                              f"{e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"gc.summary.FileWriter at {location}: logdir {path!r} is not writable")
    return path


class FileWriter:
    """``tf.summary.FileWriter(logdir, graph=None, max_queue=10, flush_secs=120)``.

    ``add_summary(summary, global_step)`` takes what ``sess.run`` returned for a summary (bytes)
    or a ``gc.Summary`` message; ``add_graph(graph)`` writes a graph for TensorBoard's graph
    view; ``add_run_metadata(run_metadata, tag)`` a traced run (``gc.RunMetadata``). Events are
    queued and written by a background thread; ``flush`` and ``close`` write them out."""

    def __init__(self, logdir, graph: Optional[Graph] = None, max_queue: int = 10, flush_secs: float = 120,
                 graph_def=None, filename_suffix: Optional[str] = None, session=None):
        location = user_location(2)
        self._location = location
        self._logdir = _writable_logdir(logdir, location)
        self._P = records.protos()
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        self._writer = EventFileWriter(self._logdir, max_queue, flush_secs, filename_suffix or "")
        self._closed = False
        if session is not None and graph is None:
            graph = session.graph
        if graph is not None or graph_def is not None:
            self.add_graph(graph, graph_def=graph_def)

    def get_logdir(self) -> str:
        return self._logdir

    def _event(self, step=None, **fields):
        if self._closed:
            raise ValueError(f"gc.summary.FileWriter for {self._logdir!r} (made at {self._location}) is closed; "
                             "call reopen() first")
        event = self._P.Event(wall_time=time.time(), **fields)
        if step is not None:
            event.step = int(step)
        self._writer.add_event(event)

    def add_summary(self, summary, global_step: Optional[int] = None) -> None:
        if isinstance(summary, bytes):
            parsed = self._P.Summary()
            try:
                parsed.ParseFromString(summary)
            except Exception as e:  # noqa: BLE001  (protobuf's DecodeError, named below)
                raise ValueError(f"add_summary: summary is not a serialized Summary ({type(e).__name__}: {e})") from None
            summary = parsed
        elif not isinstance(summary, self._P.Summary):
            raise TypeError(f"add_summary: summary must be what sess.run returned for a gc.summary op (bytes) or "
                            f"a gc.Summary, got {type(summary).__name__}")
        self._event(global_step, summary=summary)

    def add_graph(self, graph=None, global_step: Optional[int] = None, graph_def=None) -> None:
        if graph is None and graph_def is None:
            raise ValueError("add_graph: give a graph (sess.graph) or a graph_def")
        if graph is not None and not isinstance(graph, Graph):
            raise TypeError(f"add_graph: graph must be a gc.Graph (sess.graph), got {type(graph).__name__}")
        proto = graph_def_proto(graph) if graph is not None else graph_def
        if not isinstance(proto, self._P.GraphDef):
            raise TypeError(f"add_graph: graph_def must be TensorBoard's GraphDef, got {type(proto).__name__}")
        self._event(global_step, graph_def=proto.SerializeToString())

    def add_run_metadata(self, run_metadata, tag: str, global_step: Optional[int] = None) -> None:
        """A traced run (``sess.run(..., options=gc.RunOptions(trace_level=FULL_TRACE),
        run_metadata=md)``) for TensorBoard's graph view ("Session runs")."""
        tagged = self._P.TaggedRunMetadata(tag=tag, run_metadata=run_metadata_proto(run_metadata).SerializeToString())
        self._event(global_step, tagged_run_metadata=tagged)

    def add_event(self, event) -> None:
        self._writer.add_event(event)

    def add_session_log(self, session_log, global_step: Optional[int] = None) -> None:
        self._event(global_step, session_log=session_log)

    def flush(self) -> None:
        if not self._closed:
            self._writer.flush()

    def close(self) -> None:
        if not self._closed:
            self._writer.close()
            self._closed = True

    def reopen(self) -> None:
        if self._closed:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
            self._writer = EventFileWriter(self._logdir)
            self._closed = False

    def __enter__(self) -> "FileWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<gc.summary.FileWriter {self._logdir!r}>"

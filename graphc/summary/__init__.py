"""``gc.summary``: TF1's summaries and TensorBoard event files (``tf.summary``).

    loss_summary = gc.summary.scalar("loss", loss)
    gc.summary.histogram("weights", W)
    merged = gc.summary.merge_all()
    writer = gc.summary.FileWriter("logs/run1", sess.graph)
    _, s = sess.run([train, merged], feed_dict)
    writer.add_summary(s, step)

Files are written with the ``tensorboard`` package (``pip install 'graphc[tensorboard]'``);
building summaries needs nothing. ``docs/TENSORBOARD.md`` has the details.
"""
from .ops import SummaryOp, histogram, image, merge, merge_all, scalar, text  # noqa: F401
from .writer import FileWriter, graph_def_proto, run_metadata_proto  # noqa: F401

_MESSAGES = ("Summary", "SummaryMetadata", "HistogramProto", "Event", "SessionLog", "TaggedRunMetadata")


def __getattr__(name: str):
    """TensorBoard's message classes (``gc.summary.Summary(value=[gc.summary.Summary.Value(
    tag="x", simple_value=1.0)])``, as TF1's ``tf.Summary``), loaded with tensorboard."""
    if name in _MESSAGES:
        from .records import protos
        return getattr(protos(), name)
    raise AttributeError(f"module 'graphc.summary' has no attribute {name!r}")

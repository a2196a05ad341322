"""TF1 names beyond graphc's own API: the aliases a TF1 program reaches for (``tf.app``,
``tf.flags``, ``tf.logging``, ``tf.gfile``, ``tf.contrib.rnn``, ``tf.contrib.layers``,
``tf.device``), and the error for a TF1 name graphc lacks.

That error is the point of this module: a TF1 program that reaches for a missing name learns
which TF1 feature it is and whether graphc plans it, not Python's bare ``AttributeError``
with a "did you mean 'divide'?". ``MISSING`` is the table; a graphc namespace
(``graphc``, ``graphc.nn``, ``graphc.train``, ...) answers an unknown attribute with
:func:`missing_name`.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import glob as _glob
import logging as _logging
import os
import shutil
import sys
import types
from typing import Optional

from .errors import GraphcError
from .graph import get_default_graph, user_location


class MissingTF1NameError(GraphcError, AttributeError):
    """A TF1 name that graphc does not have (an AttributeError, so ``hasattr`` is False)."""


_SUMMARY = "renamed in TF 1.0, as graphc names it: use the gc.summary name (gc.summary.scalar, merge, FileWriter, ...)"
_ISSUE15 = "planned in issue 15 (TF1 breadth), not built yet"
_QUEUES = ("not planned: TF1's queue runners were replaced by tf.data; use gc.data.Dataset (issue 15) or feed_dict")
_PS = ("not planned: parameter-server training; graphc distributes with MPI (Horovod's API, issue 20: "
       "graphc.distribute)")

# TF1 name (as the user writes it after ``tf.``) -> (the TF1 feature, graphc's plan).
MISSING = {
    "merge_all_summaries": ("tf.merge_all_summaries, the pre-1.0 name of tf.summary.merge_all", _SUMMARY),
    "merge_summary": ("tf.merge_summary, the pre-1.0 name of tf.summary.merge", _SUMMARY),
    "scalar_summary": ("tf.scalar_summary, the pre-1.0 name of tf.summary.scalar", _SUMMARY),
    "histogram_summary": ("tf.histogram_summary, the pre-1.0 name of tf.summary.histogram", _SUMMARY),
    "image_summary": ("tf.image_summary, the pre-1.0 name of tf.summary.image", _SUMMARY),
    "train.SummaryWriter": ("tf.train.SummaryWriter, the pre-1.0 name of tf.summary.FileWriter", _SUMMARY),
    "estimator": ("Estimators (tf.estimator)", "not planned: graphc.keras (issue 16) covers fit/evaluate/predict"),
    "contrib.learn": ("tf.contrib.learn", "not planned: graphc.keras (issue 16) covers fit/evaluate/predict"),
    "py_func": ("tf.py_func (a Python function as an op)",
                "not planned: it would cost a Python call per run inside compiled code; write the step as graph ops"),
    "sparse": ("sparse tensors (tf.sparse, tf.SparseTensor)", "not planned: graphc's tensors are dense"),
    "SparseTensor": ("sparse tensors (tf.SparseTensor)", "not planned: graphc's tensors are dense"),
    "string": ("string tensors (tf.string)", "not planned: graphc's tensors hold numbers and bools"),
    "strings": ("string ops (tf.strings)", "not planned: graphc's tensors hold numbers and bools"),
    "float16": ("half precision (tf.float16)", "not planned yet: graphc computes in float32 and float64"),
    "complex64": ("complex numbers (tf.complex64)", "not planned: graphc's tensors are real"),
    "FIFOQueue": ("queues (tf.FIFOQueue)", _QUEUES),
    "RandomShuffleQueue": ("queues (tf.RandomShuffleQueue)", _QUEUES),
    "train.start_queue_runners": ("queue runners (tf.train.start_queue_runners)", _QUEUES),
    "train.string_input_producer": ("queue-based input (tf.train.string_input_producer)", _QUEUES),
    "train.shuffle_batch": ("queue-based batching (tf.train.shuffle_batch)", _QUEUES),
    "train.batch": ("queue-based batching (tf.train.batch)", _QUEUES),
    "train.Coordinator": ("queue-runner threads (tf.train.Coordinator)", _QUEUES),
    "train.Server": ("distributed TF servers (tf.train.Server)", _PS),
    "train.ClusterSpec": ("distributed TF clusters (tf.train.ClusterSpec)", _PS),
    "train.replica_device_setter": ("parameter-server placement (tf.train.replica_device_setter)", _PS),
    "train.MonitoredTrainingSession": ("tf.train.MonitoredTrainingSession",
                                       "not yet: use gc.Session with a Saver (docs/TF1-COMPAT.md)"),
    "saved_model": ("SavedModel directories (tf.saved_model)",
                    "not planned: export with gc.export.save_model (a graphc model file) or to ONNX"),
    "lite": ("TensorFlow Lite", "not planned: gc.export.native builds a C library instead"),
    "TFRecordReader": ("TFRecord files (tf.TFRecordReader)", "not planned: read the data in Python and use gc.data"),
    "python_io": ("TFRecord files (tf.python_io)", "not planned: read the data in Python and use gc.data"),
    "image": ("image ops (tf.image)", "not planned yet: resize and crop the data in NumPy before feeding it"),
}


def missing_name(namespace: str, name: str, have) -> MissingTF1NameError:
    """The error for ``tf.<namespace>.<name>`` (``namespace`` "" for the top level) that graphc
    lacks; ``have`` is the namespace's own names, for a suggestion when the name is not TF1's."""
    key = f"{namespace}.{name}" if namespace else name
    written = f"tf.{key}"
    where = user_location()
    if key in MISSING:
        feature, plan = MISSING[key]
        return MissingTF1NameError(f"graphc has no {written} ({feature}) at {where}: {plan}.")
    if namespace == "contrib" or key.startswith("contrib."):
        return MissingTF1NameError(
            f"graphc has no tf.contrib beyond tf.contrib.rnn and tf.contrib.layers; {written} at {where} is not in "
            "graphc (docs/TF1-COMPAT.md lists what graphc covers).")
    close = difflib.get_close_matches(name, [n for n in have if not n.startswith("_")], n=3)
    hint = f" graphc's names close to it: {', '.join(close)}." if close else ""
    return MissingTF1NameError(
        f"graphc has no {written} at {where}: it is not a TF1 name graphc covers (docs/TF1-COMPAT.md lists "
        f"them; TF2-only names are not covered).{hint}")


def namespace_getattr(namespace: str, module_globals: dict):
    """A module ``__getattr__`` (PEP 562) that answers unknown names with missing_name."""
    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)  # Python's own probes (__path__, __wrapped__, ...)
        raise missing_name(namespace, name, module_globals)
    return __getattr__


# --- tf.device ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def device(device_name):
    """TF1's ``tf.device``. graphc places a whole graph on the Session's device, so the
    device named here is recorded on each op made inside (``op.device``) and checked by the
    Session: ops placed on a CPU run in any Session (a CPU copy is what TF1's soft placement
    did), and ops placed on a GPU need a Session with ``device="cuda"``; in another Session
    the run stops with an error naming the op (see docs/TF1-COMPAT.md)."""
    where = user_location(3)
    if callable(device_name):
        raise GraphcError(f"gc.device at {where}: a device function ({device_name!r}, e.g. "
                          "replica_device_setter) places ops on parameter servers; graphc has none (it places a whole "
                          "graph on the Session's device)")
    name = device_name if device_name is None or isinstance(device_name, str) else str(device_name)
    if name and not any(k in name.lower() for k in ("cpu", "gpu", "cuda")):
        if not all(part.split(":")[0].lower() in ("job", "replica", "task", "")
                   for part in name.strip("/").split("/")):
            raise GraphcError(f"gc.device at {where}: {name!r} names no CPU or GPU; TF1 device strings look like "
                              "'/cpu:0', '/gpu:0' or '/device:GPU:0'")
        name = ""  # a job/replica/task alone places nothing on one machine
    graph = get_default_graph()
    with graph.device(name):
        yield


# --- tf.app and tf.flags -------------------------------------------------------------------------
class _FlagValues:
    """``tf.app.flags.FLAGS``: the values of the defined flags, parsed from ``sys.argv`` the
    first time one is read (as absl does), or by ``tf.app.run``."""

    def __init__(self):
        object.__setattr__(self, "_parser", argparse.ArgumentParser(allow_abbrev=False))
        object.__setattr__(self, "_values", None)
        object.__setattr__(self, "_defaults", {})

    def _define(self, name, default, help, kind):
        if name in self._defaults:
            raise ValueError(f"flag --{name} at {user_location(3)} is defined twice")
        self._defaults[name] = default
        if kind is bool:
            self._parser.add_argument(f"--{name}", nargs="?", const=True, default=default, type=_as_bool, help=help)
            self._parser.add_argument(f"--no{name}", dest=name, action="store_false")
        else:
            self._parser.add_argument(f"--{name}", default=default, type=kind, help=help)
        if self._values is not None:
            setattr(self._values, name, default)

    def _parse(self, argv):
        values, rest = self._parser.parse_known_args(argv[1:])
        object.__setattr__(self, "_values", values)
        return [argv[0]] + rest

    def __getattr__(self, name):
        if self._values is None:
            self._parse(sys.argv)
        if name not in self._defaults:
            raise AttributeError(f"no flag --{name} is defined (define it with tf.app.flags.DEFINE_...)")
        return getattr(self._values, name)

    def __setattr__(self, name, value):
        if self._values is None:
            self._parse(sys.argv)
        setattr(self._values, name, value)

    def __contains__(self, name) -> bool:
        return name in self._defaults


def _as_bool(text) -> bool:
    if isinstance(text, bool):
        return text
    if text.lower() in ("1", "true", "t", "yes", "y"):
        return True
    if text.lower() in ("0", "false", "f", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


FLAGS = _FlagValues()


def _definer(kind):
    def define(name, default, help=None, *args, **kwargs):
        FLAGS._define(name, default, help, kind)
    return define


flags = types.ModuleType("graphc.flags", "TF1's tf.app.flags (tf.flags): command-line flags.")
flags.FLAGS = FLAGS
flags.DEFINE_string = _definer(str)
flags.DEFINE_integer = _definer(int)
flags.DEFINE_float = _definer(float)
flags.DEFINE_boolean = flags.DEFINE_bool = _definer(bool)
flags.__getattr__ = namespace_getattr("flags", vars(flags))


def _run(main=None, argv=None):
    """``tf.app.run``: parses the flags, calls ``main(argv)`` (the caller's ``main`` by
    default) and exits with its return value."""
    rest = FLAGS._parse(list(sys.argv if argv is None else argv))
    if main is None:
        main = sys.modules["__main__"].main
    sys.exit(main(rest))


app = types.ModuleType("graphc.app", "TF1's tf.app: run and flags.")
app.run = _run
app.flags = flags
app.__getattr__ = namespace_getattr("app", vars(app))


# --- tf.logging -------------------------------------------------------------------------------------
_log = _logging.getLogger("graphc.tf1")
logging = types.ModuleType("graphc.logging", "TF1's tf.logging, on Python's logging.")
logging.DEBUG, logging.INFO, logging.WARN, logging.ERROR, logging.FATAL = (
    _logging.DEBUG, _logging.INFO, _logging.WARNING, _logging.ERROR, _logging.CRITICAL)
def _set_verbosity(level) -> None:
    """The level of graphc's TF1 logger, with a handler of its own (the application's root
    logger is left alone)."""
    _log.setLevel(level)
    if not _log.handlers:
        handler = _logging.StreamHandler()
        handler.setFormatter(_logging.Formatter("%(levelname)s:tensorflow:%(message)s"))
        _log.addHandler(handler)
        _log.propagate = False


logging.set_verbosity = _set_verbosity
logging.get_verbosity = lambda: _log.getEffectiveLevel()
logging.debug, logging.info, logging.warning, logging.error = _log.debug, _log.info, _log.warning, _log.error
logging.warn, logging.fatal, logging.log = _log.warning, _log.critical, _log.log
logging.__getattr__ = namespace_getattr("logging", vars(logging))


# --- tf.gfile -----------------------------------------------------------------------------------------
def _delete_recursively(path):
    shutil.rmtree(path)


gfile = types.ModuleType("graphc.gfile", "TF1's tf.gfile, for local files.")
gfile.Exists = os.path.exists
gfile.IsDirectory = os.path.isdir
gfile.MakeDirs = lambda path: os.makedirs(path, exist_ok=True)
gfile.MkDir = os.mkdir
gfile.ListDirectory = os.listdir
gfile.Glob = _glob.glob
gfile.Remove = os.remove
def _refuse_existing(path, what: str):
    if os.path.exists(path):
        raise FileExistsError(f"tf.gfile.{what}: {path} exists (pass overwrite=True to replace it)")


def _rename(old, new, overwrite=False):
    if not overwrite:
        _refuse_existing(new, "Rename")
    os.replace(old, new)


def _copy(old, new, overwrite=False):
    if not overwrite:
        _refuse_existing(new, "Copy")
    shutil.copyfile(old, new)


gfile.Rename = _rename
gfile.Copy = _copy
gfile.DeleteRecursively = _delete_recursively
gfile.GFile = gfile.Open = open
gfile.__getattr__ = namespace_getattr("gfile", vars(gfile))


# --- tf.contrib: rnn and layers -------------------------------------------------------------------
def _contrib() -> types.ModuleType:
    from . import init
    from .nn import rnn, rnn_cell
    contrib = types.ModuleType("graphc.contrib", "TF1's tf.contrib: rnn and layers, as aliases of graphc's own.")
    contrib_rnn = types.ModuleType("graphc.contrib.rnn", "tf.contrib.rnn: graphc.nn.rnn_cell and the rnn functions.")
    for name in dir(rnn_cell):
        if not name.startswith("_"):
            setattr(contrib_rnn, name, getattr(rnn_cell, name))
    contrib_rnn.static_rnn = rnn.static_rnn
    contrib_rnn.__getattr__ = namespace_getattr("contrib.rnn", vars(contrib_rnn))
    contrib_layers = types.ModuleType("graphc.contrib.layers", "tf.contrib.layers: initializers, regularizers "
                                      "and the layers graphc has.")
    contrib_layers.xavier_initializer = init.xavier_initializer
    contrib_layers.xavier_initializer_conv2d = init.xavier_initializer
    contrib_layers.variance_scaling_initializer = _contrib_variance_scaling
    contrib_layers.l2_regularizer = l2_regularizer
    contrib_layers.l1_regularizer = l1_regularizer
    contrib_layers.__getattr__ = namespace_getattr("contrib.layers", vars(contrib_layers))
    contrib.rnn = contrib_rnn
    contrib.layers = contrib_layers
    contrib.__getattr__ = namespace_getattr("contrib", vars(contrib))
    return contrib


def _contrib_variance_scaling(factor=2.0, mode="FAN_IN", uniform=False, seed=None, dtype=None):
    """tf.contrib.layers.variance_scaling_initializer (He by default): its own defaults."""
    from . import dtypes as dt
    from .init import variance_scaling_initializer
    return variance_scaling_initializer(factor, {"FAN_IN": "fan_in", "FAN_OUT": "fan_out", "FAN_AVG": "fan_avg"}[mode],
                                        "uniform" if uniform else "truncated_normal", seed, dtype or dt.float32)


def l2_regularizer(scale: float, scope: Optional[str] = None):
    """``scale * sum(w ** 2) / 2`` (tf.contrib.layers.l2_regularizer); 0 scale gives no loss."""
    from .ops.elementwise import multiply
    from .ops.nn import l2_loss
    if scale < 0:
        raise ValueError(f"l2_regularizer at {user_location()}: scale must be >= 0, got {scale}")
    return lambda w: None if scale == 0 else multiply(l2_loss(w), float(scale), name="l2_regularizer")


def l1_regularizer(scale: float, scope: Optional[str] = None):
    from .ops.elementwise import abs as abs_, multiply
    from .ops.reduce import reduce_sum
    if scale < 0:
        raise ValueError(f"l1_regularizer at {user_location()}: scale must be >= 0, got {scale}")
    return lambda w: None if scale == 0 else multiply(reduce_sum(abs_(w)), float(scale), name="l1_regularizer")


contrib = _contrib()


# --- tf.ConfigProto and device placement ------------------------------------------------------------
class GPUOptions(types.SimpleNamespace):
    """``tf.GPUOptions`` (``allow_growth``, ``per_process_gpu_memory_fraction``): accepted and
    recorded; graphc's CUDA target plans its memory per program, so they change nothing."""

    def __init__(self, allow_growth: bool = False, per_process_gpu_memory_fraction: float = 1.0, **kwargs):
        super().__init__(allow_growth=allow_growth,
                         per_process_gpu_memory_fraction=per_process_gpu_memory_fraction, **kwargs)


class ConfigProto(types.SimpleNamespace):
    """``tf.ConfigProto`` for ``gc.Session(config=...)``. ``allow_soft_placement`` is honoured
    (ops placed with gc.device on a device the Session does not run may run on its device);
    ``nan_guard`` (graphc's, not TF1's) turns on the Session's NaN guard (docs/DEBUGGING.md);
    the other fields are accepted and recorded (docs/TF1-COMPAT.md says why each changes
    nothing)."""

    def __init__(self, allow_soft_placement: bool = False, log_device_placement: bool = False,
                 gpu_options: Optional[GPUOptions] = None, intra_op_parallelism_threads: int = 0,
                 inter_op_parallelism_threads: int = 0, device_count=None, nan_guard: bool = False, **kwargs):
        super().__init__(allow_soft_placement=allow_soft_placement, log_device_placement=log_device_placement,
                         nan_guard=bool(nan_guard),
                         gpu_options=gpu_options or GPUOptions(),
                         intra_op_parallelism_threads=intra_op_parallelism_threads,
                         inter_op_parallelism_threads=inter_op_parallelism_threads, device_count=device_count or {},
                         **kwargs)


def device_kind(name: str) -> str:
    """"cuda" for a TF1 GPU device string ("/gpu:0", "/device:GPU:1"), "cpu" for a CPU one."""
    lowered = name.lower()
    if "gpu" in lowered or "cuda" in lowered:
        return "cuda"
    if "cpu" in lowered:
        return "cpu"
    raise ValueError(f"unknown device {name!r}: TF1 device strings name a CPU or a GPU ('/cpu:0', '/gpu:0')")


def check_placement(graph, targets, fed, session_device: str, config) -> None:
    """Ops placed on a GPU need a CUDA Session, unless the config allows soft placement (as
    TF1's did); a CPU placement runs anywhere (graphc copies the values, as TF1 did)."""
    from .graph import ancestors
    if session_device == "cuda" or (config is not None and getattr(config, "allow_soft_placement", False)):
        return
    for op in sorted(ancestors(targets, set(fed)), key=lambda op: op._id):
        if op.device and device_kind(op.device) == "cuda":
            raise GraphcError(
                f"{op.type} '{op.name}' (created at {op.location}) is placed on {op.device!r} by gc.device, but "
                f"this Session runs on {session_device!r}. Run it in gc.Session(device='cuda'), or pass "
                "config=gc.ConfigProto(allow_soft_placement=True) to run it here, as TF1's soft placement did.")

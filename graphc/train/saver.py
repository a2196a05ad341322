"""Checkpoints: ``gc.train.Saver`` and ``gc.train.latest_checkpoint``, as in TensorFlow 1.x.

A checkpoint is one file, ``<prefix>[-<step>].gcckpt``: a zip archive holding ``index.json``
(format, graphc version, time, step, and every variable's name, dtype and shape) and one
``.npy`` per variable, read back with ``allow_pickle=False``. Nothing in a checkpoint is
ever executed. A directory's ``checkpoint`` file (JSON) lists its checkpoints, newest last.

Crash safety: each file is written to a temporary file, fsynced and renamed over its name
(graphc/files.py), so it is either the old or the new version, whole. The checkpoint file is
written before the list that names it, and an old checkpoint is deleted only after the list
that drops it is in place: whenever the process dies, the list names only whole files.
"""
from __future__ import annotations

import io
import json
import os
import re
import time
import zipfile
from typing import Dict, List, Optional

import numpy as np

from .. import npyzip
from ..errors import GraphcError
from ..files import atomic_write, sweep_stale_temporaries

FORMAT = "graphc-checkpoint"
VERSION = 1
SUFFIX = ".gcckpt"
STATE_FILE = "checkpoint"
MAX_VARIABLES = 1_000_000
MAX_INDEX_BYTES = 64 << 20


class CheckpointError(GraphcError, ValueError):
    """A checkpoint that cannot be read, or does not match the variables restored into."""


class Saver:
    """Saves and restores variables. ``var_list``: a list of variables or a dict name ->
    variable (default: every global variable of the default graph, optimizer slots included).
    ``max_to_keep``: how many recent checkpoints ``save`` keeps (None or 0: all)."""

    def __init__(self, var_list=None, max_to_keep: Optional[int] = 5):
        from ..ops.state import Variable, global_variables
        if var_list is None:
            var_list = global_variables()
        if isinstance(var_list, dict):
            items = list(var_list.items())
        else:
            items = [(v.var_name, v) for v in var_list]
        for name, v in items:
            if not isinstance(v, Variable):
                raise TypeError(f"gc.train.Saver: {name!r} is {type(v).__name__}, not a gc.Variable")
        names = [n for n, _ in items]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"gc.train.Saver: variable names {duplicates} appear more than once")
        if not items:
            raise ValueError("gc.train.Saver: no variables to save")
        self._vars: Dict[str, object] = dict(items)
        self.max_to_keep = max_to_keep
        self._last: List[str] = []

    # -- saving ------------------------------------------------------------------------------------
    def save(self, sess, save_path: str, global_step=None, latest_filename=None, meta_graph_suffix: str = "meta",
             write_meta_graph: bool = True, write_state: bool = True, strip_default_attrs: bool = False,
             save_debug_info: bool = False) -> str:
        """Write every variable's value from ``sess``; returns the checkpoint's path. With
        ``global_step`` (an int, or a variable/tensor evaluated in ``sess``) the path is
        ``save_path-<step>``, and only the newest ``max_to_keep`` such checkpoints are kept.
        As in TF1, the whole graph goes beside it as ``<prefix>.meta`` (a meta graph that
        ``gc.train.import_meta_graph`` reads), unless ``write_meta_graph=False``."""
        step = None
        if global_step is not None:
            step = int(global_step if isinstance(global_step, (int, np.integer)) else sess.run(global_step))
        prefix = os.path.abspath(os.fspath(save_path) + (f"-{step}" if step is not None else ""))
        path = prefix + SUFFIX
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        values = {name: sess._state.read_variable(v.var_name) for name, v in self._vars.items()}
        sweep_stale_temporaries(directory)
        atomic_write(path, _encode(values, step))
        if write_meta_graph:  # after the checkpoint: a failed save leaves no .meta without one
            self._write_meta_graph(sess, f"{prefix}.{meta_graph_suffix}")
        state = _read_state(directory)
        kept = [p for p in state if p != path] + [path]
        removed = []
        if self.max_to_keep:
            removed, kept = kept[:-self.max_to_keep], kept[-self.max_to_keep:]
        _write_state(directory, kept)
        self._last = kept
        if self.max_to_keep:
            # the dropped ones, and any this prefix left behind when a process died between
            # writing the list and deleting (the list no longer names them)
            base = re.escape(os.path.basename(os.fspath(save_path)))
            pattern = re.compile(rf"{base}-\d+{re.escape(SUFFIX)}")
            stale = set(removed) | {os.path.join(directory, f) for f in os.listdir(directory) if pattern.fullmatch(f)}
            for old in stale - set(kept):
                for dropped in (old, old[:-len(SUFFIX)] + f".{meta_graph_suffix}"):
                    try:
                        os.unlink(dropped)
                    except FileNotFoundError:
                        pass
        return path

    def _write_meta_graph(self, sess, path: str) -> None:
        import warnings

        from ..export.meta_graph import export_meta_graph
        from ..export.model_file import FormatError
        graph = next(iter(self._vars.values())).graph
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # collections of Python objects: left out, as TF1 does
                export_meta_graph(path, graph=graph)
        except FormatError as e:
            warnings.warn(f"gc.train.Saver.save: the checkpoint is written, but not the meta graph {path}: {e} "
                          "(pass write_meta_graph=False to skip it)", stacklevel=3)

    # -- restoring ---------------------------------------------------------------------------------
    def restore(self, sess, save_path: str, allow_world_size_change: bool = False) -> None:
        """Load every variable of this Saver from the checkpoint at ``save_path`` (with or
        without the ``.gcckpt`` suffix). Every variable missing from the checkpoint, or stored
        with another shape or dtype, is named in one error, and nothing is changed.

        A checkpoint written in a data-parallel job of several ranks (graphc.distribute) records
        the job's size; restoring it in a job of another size (of several ranks) is an error
        unless ``allow_world_size_change``, because the global batch (and a learning rate scaled
        by ``hvd.size()``) would change without a word. A single process, or a job of one,
        restores any checkpoint (to evaluate it, or to fine-tune)."""
        path = _resolve(save_path)
        index, stored = _read(path)
        _check_world_size(path, index.get("world_size"), allow_world_size_change)
        problems = []
        for name, v in self._vars.items():
            if name not in stored:
                problems.append(f"variable '{name}' ({v.dtype.name}{list(v.shape.as_list())}) is not in the checkpoint")
                continue
            value = stored[name]
            want_shape, want_dtype = tuple(v.shape.as_list()), np.dtype(v.dtype.np)
            if value.shape != want_shape or value.dtype != want_dtype:
                problems.append(f"variable '{name}': the graph has {want_dtype.name}{list(want_shape)}, the checkpoint "
                                f"{value.dtype.name}{list(value.shape)}")
        if problems:
            raise CheckpointError(f"cannot restore {path} into this graph:\n  " + "\n  ".join(problems))
        for name, v in self._vars.items():
            sess.load_variable(v, stored[name])

    @property
    def last_checkpoints(self) -> List[str]:
        """The checkpoints this Saver's directory keeps, oldest first (after its last save)."""
        return list(self._last)


def latest_checkpoint(checkpoint_dir: str) -> Optional[str]:
    """The newest checkpoint listed in ``checkpoint_dir`` that is still on disk, or None."""
    for path in reversed(_read_state(os.path.abspath(os.fspath(checkpoint_dir)))):
        if os.path.isfile(path):
            return path
    return None


def read_checkpoint(path: str) -> Dict[str, np.ndarray]:
    """Every variable stored at ``path``, name -> array, after checking the whole file."""
    return _read(_resolve(path))[1]


def _world_size():
    """The size of this process's data-parallel job, or None outside one (or in a job of one,
    which trains as a single process does)."""
    from ..distribute import world
    size = world.current().size if world.is_initialized() else None
    return size if size and size > 1 else None


def _check_world_size(path: str, saved, allowed: bool) -> None:
    size = _world_size()
    if saved is None or size is None or saved == size or allowed:
        return
    raise CheckpointError(
        f"{path} was written by a data-parallel job of {saved} ranks, and this job has {size}: the global batch "
        f"(and a learning rate scaled by hvd.size()) would change on resuming. Launch {saved} ranks (-np {saved}), "
        "or, to resume with this many on purpose, call restore(sess, path, allow_world_size_change=True)")


def _read(path: str) -> tuple:
    """(index, name -> array) of the checkpoint at ``path``, after checking the whole file."""
    try:
        archive = zipfile.ZipFile(path)
    except npyzip.DAMAGE_ERRORS as e:
        raise CheckpointError(f"{path} is not a graphc checkpoint: {type(e).__name__}: {e}") from None
    with archive:
        try:
            index = _read_index(archive, path)
            out = {}
            for entry in index["variables"]:
                out[entry["name"]] = _read_array(archive, entry, path)
        except CheckpointError:
            raise
        except npyzip.DAMAGE_ERRORS as e:  # zipfile's, zlib's and NumPy's complaints about damaged bytes
            raise CheckpointError(f"{path} is damaged: {type(e).__name__}: {e}") from None
    return index, out


# -- the file format ------------------------------------------------------------------------------
def _encode(values: Dict[str, np.ndarray], step) -> bytes:
    from .. import __version__
    entries = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for k, (name, value) in enumerate(values.items()):
            member = f"v{k}.npy"
            value = npyzip.write_array(archive, member, value)
            entries.append({"name": name, "file": member, "dtype": value.dtype.str, "shape": list(value.shape)})
        index = {"format": FORMAT, "version": VERSION, "graphc": __version__, "created": time.time(),
                 "global_step": step, "variables": entries}
        size = _world_size()
        if size is not None:  # written in a data-parallel job: restore checks the size (Saver.restore)
            index["world_size"] = size
        archive.writestr("index.json", json.dumps(index, indent=1))
    return buffer.getvalue()


def _read_index(archive: zipfile.ZipFile, path: str) -> dict:
    try:
        info = archive.getinfo("index.json")
    except KeyError:
        raise CheckpointError(f"{path} has no index.json: not a graphc checkpoint") from None
    if info.file_size > MAX_INDEX_BYTES:
        raise CheckpointError(f"{path}: index.json is {info.file_size} bytes, more than any checkpoint needs")
    try:
        index = json.loads(archive.read(info))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # (a deeply nested document recurses)
        raise CheckpointError(f"{path}: index.json is not valid JSON ({e})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise CheckpointError(f"{path}: index.json does not describe a graphc checkpoint")
    if index.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {index.get('version')!r}; this graphc reads "
                              f"version {VERSION}")
    entries = index.get("variables")
    if not isinstance(entries, list) or len(entries) > MAX_VARIABLES:
        raise CheckpointError(f"{path}: index.json has no valid variable list")
    for e in entries:
        if not (isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("file"), str)
                and isinstance(e.get("dtype"), str) and isinstance(e.get("shape"), list)
                and all(isinstance(d, int) and d >= 0 for d in e["shape"])):
            raise CheckpointError(f"{path}: malformed variable entry {str(e)[:200]}")
    size = index.get("world_size")
    if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and size >= 1):
        raise CheckpointError(f"{path}: world_size must be a number of ranks (an int >= 1), got {str(size)[:50]}")
    return index


def _read_array(archive: zipfile.ZipFile, entry: dict, path: str) -> np.ndarray:
    what = f"{path}: variable '{entry['name']}'"
    dtype = npyzip.parse_dtype(entry["dtype"], what, CheckpointError)
    return npyzip.read_array(archive, entry["file"], dtype, tuple(entry["shape"]), what, CheckpointError)


def _resolve(save_path: str) -> str:
    path = os.fspath(save_path)
    if not path.endswith(SUFFIX) and not os.path.exists(path):
        path += SUFFIX
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}")
    return path


# -- the directory's list of checkpoints ----------------------------------------------------------
def _read_state(directory: str) -> List[str]:
    """Checkpoint paths listed in ``directory/checkpoint``, oldest first ([] if none or damaged)."""
    try:
        with open(os.path.join(directory, STATE_FILE), "rb") as f:
            state = json.loads(f.read(MAX_INDEX_BYTES))
        paths = state["all_model_checkpoint_paths"]
    except npyzip.DAMAGE_ERRORS:
        return []
    if not isinstance(paths, list):
        return []
    return [os.path.join(directory, p) for p in paths if isinstance(p, str) and os.path.basename(p) == p]


def _write_state(directory: str, paths: List[str]) -> None:
    names = [os.path.basename(p) for p in paths]
    state = {"model_checkpoint_path": names[-1] if names else None, "all_model_checkpoint_paths": names}
    atomic_write(os.path.join(directory, STATE_FILE), json.dumps(state, indent=1))


def write_graph(graph_or_graph_def, logdir: str, name: str, as_text: bool = True) -> str:
    """TF1's ``tf.train.write_graph``: the graph (or GraphDef) written atomically to
    ``logdir/name`` in graphc's GraphDef format (as_text is accepted; the file is the same).
    Returns the path."""
    from ..export.meta_graph import GraphDef
    graph_def = graph_or_graph_def if isinstance(graph_or_graph_def, GraphDef) else graph_or_graph_def.as_graph_def()
    os.makedirs(logdir, exist_ok=True)
    path = os.path.join(logdir, name)
    atomic_write(path, graph_def.SerializeToString())
    return path

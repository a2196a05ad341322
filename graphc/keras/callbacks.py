"""``keras.callbacks``: the Keras 2.2.4 callback protocol and its standard callbacks.

``fit`` calls, in this order: ``on_train_begin``; per epoch ``on_epoch_begin``, per batch
``on_batch_begin``/``on_batch_end`` (logs ``batch``, ``size`` and the batch's loss and metrics),
then ``on_epoch_end`` (logs the epoch's averages, written by ``BaseLogger``, and the ``val_*``
values); finally ``on_train_end``. ``params`` hold ``epochs``, ``steps``, ``samples``,
``batch_size``, ``verbose``, ``do_validation`` and ``metrics`` (every name the epoch logs carry).

TF 1.14's names are here too: ``on_train_batch_begin``/``end`` are what ``fit`` dispatches, and by
default they call ``on_batch_begin``/``end``, so a callback overriding either name is called
once per batch. ``evaluate`` and ``predict`` call the ``on_test_*`` and ``on_predict_*`` hooks.
"""
from __future__ import annotations

import csv
import inspect
import io
import numbers
import os
import warnings
from typing import Callable, Iterable, List, Optional

import numpy as np

from ..files import atomic_write
from ..graph import user_location
from . import backend as K
from .progbar import Progbar

_MODES = ("auto", "min", "max")


class Callback:
    """Base class: every hook is a no-op. ``fit`` sets ``params``, ``model`` and, when it
    validates, ``validation_data``."""

    def __init__(self):
        self.validation_data = None
        self.model = None
        self.params = {}

    def set_params(self, params) -> None:
        self.params = params

    def set_model(self, model) -> None:
        self.model = model

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    # TF 1.14 names. The training-batch ones forward to the Keras 2.2.4 names, so that old
    # callbacks (which override on_batch_*) and new ones (on_train_batch_*) both work.
    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass


def _hook(callback, name: str, fallback: Optional[str] = None):
    """``callback``'s hook ``name``; for an object not derived from Callback that lacks it, its
    ``fallback`` (the Keras 2.2.4 name), or nothing."""
    method = getattr(callback, name, None)
    if method is None and fallback is not None:
        method = getattr(callback, fallback, None)
    return method


class CallbackList:
    """Calls each hook on every callback, in order. All of them see the same ``logs`` dict, so a
    callback sees what earlier ones wrote into it (BaseLogger's averages, for one)."""

    def __init__(self, callbacks: Optional[Iterable] = None):
        self.callbacks = list(callbacks or ())

    def append(self, callback) -> None:
        self.callbacks.append(callback)

    def __iter__(self):
        return iter(self.callbacks)

    def set_params(self, params) -> None:
        for callback in self.callbacks:
            callback.set_params(params)

    def set_model(self, model) -> None:
        for callback in self.callbacks:
            callback.set_model(model)

    def _call(self, name: str, *args, logs=None, fallback: Optional[str] = None) -> None:
        logs = {} if logs is None else logs
        for callback in self.callbacks:
            method = _hook(callback, name, fallback)
            if method is not None:
                method(*args, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs=logs)

    def on_batch_begin(self, batch, logs=None):
        """A training batch begins (what ``fit`` calls)."""
        self._call("on_train_batch_begin", batch, logs=logs, fallback="on_batch_begin")

    def on_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs=logs, fallback="on_batch_end")

    on_train_batch_begin = on_batch_begin
    on_train_batch_end = on_batch_end

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs=logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs=logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs=logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs=logs)


class BaseLogger(Callback):
    """Averages the batch logs over the epoch, weighted by each batch's ``size``, and writes the
    averages of ``params['metrics']`` into the epoch logs (``fit`` always adds it first: the
    epoch's ``loss`` is this average). Names in ``stateful_metrics`` keep their last value."""

    def __init__(self, stateful_metrics: Optional[Iterable[str]] = None):
        super().__init__()
        self.stateful_metrics = set(stateful_metrics or ())
        self.seen = 0
        self.totals = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.seen = 0
        self.totals = {}

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        size = logs.get("size", 0)
        self.seen += size
        for name, value in logs.items():
            if name in ("batch", "size"):
                continue
            if name in self.stateful_metrics:
                self.totals[name] = value
            else:
                self.totals[name] = self.totals.get(name, 0) + value * size

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        names = self.params.get("metrics")
        for name in self.totals if names is None else names:
            if name not in self.totals:
                continue
            if name in self.stateful_metrics:
                logs[name] = self.totals[name]
            elif self.seen:
                logs[name] = self.totals[name] / self.seen


class ProgbarLogger(Callback):
    """Prints ``Epoch i/n`` and a progress bar of the epoch's batches, ending with the epoch's
    averages and ``val_*`` values. ``count_mode``: count the bar in 'samples' or 'steps'."""

    def __init__(self, count_mode: str = "samples", stateful_metrics: Optional[Iterable[str]] = None):
        super().__init__()
        if count_mode not in ("samples", "steps"):
            raise ValueError(f"ProgbarLogger at {user_location()}: count_mode must be 'samples' or 'steps', "
                             f"got {count_mode!r}")
        self.use_steps = count_mode == "steps"
        self.stateful_metrics = set(stateful_metrics or ())
        self.verbose = 0
        self.epochs = 0
        self.target = None
        self.progbar = None
        self.seen = 0
        self.log_values = []
        self._batch_names = set()

    def on_train_begin(self, logs=None):
        self.verbose = self.params["verbose"]
        self.epochs = self.params["epochs"]

    def on_epoch_begin(self, epoch, logs=None):
        self.seen = 0
        self.log_values = []
        self._batch_names = set()
        if not self.verbose:
            return
        print(f"Epoch {epoch + 1}/{self.epochs}")
        self.target = self.params["steps"] if self.use_steps else self.params["samples"]
        self.progbar = Progbar(target=self.target, verbose=self.verbose, stateful_metrics=self.stateful_metrics,
                               unit_name="step" if self.use_steps else "sample")

    def on_batch_begin(self, batch, logs=None):
        self.log_values = []

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        self.seen += 1 if self.use_steps else logs.get("size", 0)
        self.log_values = [(name, logs[name]) for name in self.params["metrics"] if name in logs]
        self._batch_names.update(name for name, _ in self.log_values)
        # The last batch's values are shown by on_epoch_end, which ends the bar.
        if self.verbose and (self.target is None or self.seen < self.target):
            self.progbar.update(self.seen, self.log_values, finalize=False)
            self.log_values = []

    def on_epoch_end(self, epoch, logs=None):
        if not self.verbose:
            return
        logs = logs or {}
        # The last batch's values (unless given already: an epoch stopped early) enter the averages
        # as every other batch's did, so the bar's averages agree with BaseLogger's; then the
        # epoch-level values (val_*) are added.
        values = self.log_values + [(name, logs[name]) for name in self.params["metrics"]
                                    if name in logs and name not in self._batch_names]
        self.progbar.update(self.seen, values, finalize=True)


class History(Callback):
    """Records the epoch logs: ``history[name]`` lists the values of each epoch, ``epoch`` the
    epoch numbers. ``fit`` returns it."""

    def __init__(self):
        super().__init__()
        self.epoch: List[int] = []
        self.history = {}

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)


def _increases(monitor: str) -> bool:
    """Keras's 'auto' mode: accuracies (and f-measures) improve upwards, everything else down."""
    return "acc" in monitor or monitor.startswith("fmeasure")


def _checked_mode(mode: str, owner: str, location: str) -> str:
    # Keras warns and falls back to 'auto' rather than raising: kept, so code written for it runs.
    if mode not in _MODES:
        warnings.warn(f"{owner} at {location}: mode must be 'auto', 'min' or 'max', got {mode!r}; "
                      f"using 'auto'", RuntimeWarning, stacklevel=3)
        return "auto"
    return mode


def _warn_unavailable(owner: str, monitor: str, logs, location: str) -> None:
    warnings.warn(f"{owner} (made at {location}) monitors {monitor!r}, which the epoch logs do not hold; "
                  f"available: {', '.join(sorted(logs)) or '(none)'}", RuntimeWarning, stacklevel=3)


class CheckpointPathError(KeyError):
    """A ModelCheckpoint file name names a value the epoch logs lack. A KeyError, as Keras raises,
    whose message reads as written (KeyError's own str would print it quoted and escaped)."""

    def __str__(self) -> str:
        return str(self.args[0])


class ModelCheckpoint(Callback):
    """Saves the model (or only its weights) after every ``period`` epochs.

    ``filepath`` is formatted with ``epoch`` (counted from 1) and the epoch logs:
    ``weights.{epoch:02d}-{val_loss:.2f}.gcm``. With ``save_best_only`` the model is saved only
    when ``monitor`` improves on the best value so far (higher for accuracies in 'auto' mode)."""

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0, save_best_only: bool = False,
                 save_weights_only: bool = False, mode: str = "auto", period: int = 1):
        super().__init__()
        self._location = user_location()
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.period = period
        self.epochs_since_last_save = 0
        mode = _checked_mode(mode, "ModelCheckpoint", self._location)
        self.monitor_op = np.greater if mode == "max" or (mode == "auto" and _increases(monitor)) else np.less
        self.best = -np.inf if self.monitor_op is np.greater else np.inf

    def _path(self, epoch: int, logs) -> str:
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as e:
            raise CheckpointPathError(f"ModelCheckpoint (made at {self._location}): filepath {self.filepath!r} "
                                      f"names {e.args[0]!r}, which the logs of epoch {epoch + 1} do not hold; "
                                      f"available: epoch, {', '.join(sorted(logs))}") from None

    def _save(self, path: str) -> None:
        if self.save_weights_only:
            self.model.save_weights(path, overwrite=True)
        else:
            self.model.save(path, overwrite=True)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epochs_since_last_save += 1
        if self.epochs_since_last_save < self.period:
            return
        self.epochs_since_last_save = 0
        if not self.save_best_only:
            path = self._path(epoch, logs)
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1:05d}: saving model to {path}")
            self._save(path)
            return
        current = logs.get(self.monitor)
        if current is None:
            _warn_unavailable("ModelCheckpoint with save_best_only", self.monitor, logs, self._location)
            return
        if self.monitor_op(current, self.best):
            path = self._path(epoch, logs)
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1:05d}: {self.monitor} improved from {self.best:0.5f} to "
                      f"{current:0.5f}, saving model to {path}")
            self.best = current
            self._save(path)
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1:05d}: {self.monitor} did not improve from {self.best:0.5f}")


class EarlyStopping(Callback):
    """Stops training when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs (``model.stop_training = True``). ``baseline``: the value to beat from
    the start. ``restore_best_weights``: on stopping, put back the weights of the best epoch."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0, verbose: int = 0,
                 mode: str = "auto", baseline: Optional[float] = None, restore_best_weights: bool = False):
        super().__init__()
        self._location = user_location()
        self.monitor = monitor
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        mode = _checked_mode(mode, "EarlyStopping", self._location)
        self.monitor_op = np.greater if mode == "max" or (mode == "auto" and _increases(monitor)) else np.less
        # An improvement must beat the best by min_delta in the improving direction.
        self.min_delta = abs(min_delta) if self.monitor_op is np.greater else -abs(min_delta)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best = None

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        if self.baseline is not None:
            self.best = self.baseline
        else:
            self.best = np.inf if self.monitor_op is np.less else -np.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        current = logs.get(self.monitor)
        if current is None:
            _warn_unavailable("EarlyStopping", self.monitor, logs, self._location)
            return
        if self.monitor_op(current - self.min_delta, self.best):
            self.best = current
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            # (No best weights when no epoch beat the baseline: the last weights stay.)
            if self.restore_best_weights and self.best_weights is not None:
                if self.verbose > 0:
                    print("Restoring model weights from the end of the best epoch")
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1:05d}: early stopping")


def _learning_rate_variable(model, owner: str):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "lr"):
        raise ValueError(f"{owner} at {user_location()}: expected the model's optimizer to have an 'lr' variable, "
                         f"got {type(optimizer).__name__ if optimizer is not None else 'no optimizer'}")
    return optimizer.lr


def _takes_learning_rate(schedule: Callable) -> Optional[bool]:
    """Whether ``schedule`` is called as ``schedule(epoch, lr)`` (TF 1.x) or ``schedule(epoch)``
    (Keras 2.2); None when its signature cannot be read (some builtins)."""
    try:
        signature = inspect.signature(schedule)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(0, 0.0)
        return True
    except TypeError:
        return False


def _where_defined(function) -> str:
    code = getattr(function, "__code__", None)
    if code is None:
        return repr(function)
    filename = code.co_filename
    try:
        filename = os.path.relpath(filename)
    except ValueError:  # (another drive, on Windows)
        pass
    return f"{getattr(function, '__qualname__', 'schedule')} ({filename}:{code.co_firstlineno})"


def _is_number(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and np.issubdtype(value.dtype, np.number) and not np.issubdtype(value.dtype, np.bool_)
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(value, (bool, np.bool_))


class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate at the beginning of each epoch to ``schedule(epoch)``
    or ``schedule(epoch, lr)`` (epochs counted from 0; ``lr`` is the current rate)."""

    def __init__(self, schedule: Callable, verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler at {user_location()}: expected a function of (epoch) or "
                            f"(epoch, lr), got {type(schedule).__name__} {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        self._with_lr = _takes_learning_rate(schedule)

    def _scheduled(self, epoch: int, lr: float):
        if self._with_lr is None:  # (unreadable signature: try the TF 1.x form first, as TF 1.x does)
            try:
                return self.schedule(epoch, lr)
            except TypeError:
                return self.schedule(epoch)
        return self.schedule(epoch, lr) if self._with_lr else self.schedule(epoch)

    def on_epoch_begin(self, epoch, logs=None):
        variable = _learning_rate_variable(self.model, "LearningRateScheduler")
        lr = float(K.get_value(variable))
        new_lr = self._scheduled(epoch, lr)
        if not _is_number(new_lr):
            # (ValueError, as Keras raises here)
            raise ValueError(f"LearningRateScheduler at {user_location()}: the schedule "
                            f"{_where_defined(self.schedule)} returned {new_lr!r} "
                            f"({type(new_lr).__name__}) for epoch {epoch}; expected a number (the learning rate)")
        new_lr = float(new_lr)
        K.set_value(variable, new_lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1:05d}: LearningRateScheduler setting learning rate to {new_lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = K.get_value(_learning_rate_variable(self.model, "LearningRateScheduler"))


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` (down to ``min_lr``) when ``monitor`` has not
    improved by more than ``min_delta`` for ``patience`` epochs, then waits ``cooldown`` epochs
    before counting again."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, verbose: int = 0,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0, **kwargs):
        super().__init__()
        self._location = user_location()
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau at {self._location}: expected a factor below 1.0 (it multiplies "
                             f"the learning rate to reduce it), got {factor!r}")
        if "epsilon" in kwargs:  # (Keras 2.1's name for min_delta)
            min_delta = kwargs.pop("epsilon")
            warnings.warn(f"ReduceLROnPlateau at {self._location}: `epsilon` is deprecated, use `min_delta`",
                          DeprecationWarning, stacklevel=2)
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau at {self._location}: unexpected arguments {sorted(kwargs)}")
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.min_delta = min_delta
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.mode = _checked_mode(mode, "ReduceLROnPlateau", self._location)
        self.cooldown_counter = 0
        self.wait = 0
        self._reset()

    def _reset(self):
        if self.mode == "min" or (self.mode == "auto" and not _increases(self.monitor)):
            self.monitor_op = lambda a, b: np.less(a, b - self.min_delta)
            self.best = np.inf
        else:
            self.monitor_op = lambda a, b: np.greater(a, b + self.min_delta)
            self.best = -np.inf
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        variable = _learning_rate_variable(self.model, "ReduceLROnPlateau")
        logs["lr"] = K.get_value(variable)  # (the rate this epoch trained with)
        current = logs.get(self.monitor)
        if current is None:
            _warn_unavailable("ReduceLROnPlateau", self.monitor, logs, self._location)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(K.get_value(variable))
                if old_lr > self.min_lr:
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    K.set_value(variable, new_lr)
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1:05d}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class CSVLogger(Callback):
    """Writes the epoch logs to a CSV file: a header ``epoch`` + the sorted log names of the first
    epoch, then one row per epoch (a name missing from an epoch's logs is written 'NA').

    The file is rewritten whole, atomically, after every epoch: it can be read at any time during
    training and a crash never leaves a torn row. ``append=True`` continues an existing file
    (keeping its columns, and writing no second header)."""

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        self._location = user_location()
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger at {self._location}: expected a one-character separator, got {separator!r}")
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys: Optional[List[str]] = None
        self._text = ""

    def on_train_begin(self, logs=None):
        self.keys = None
        self._text = ""
        if self.append and os.path.exists(self.filename):
            with open(self.filename, newline="") as f:
                self._text = f.read()
            if self._text and not self._text.endswith("\n"):
                self._text += "\n"
            header = next(csv.reader(io.StringIO(self._text), delimiter=self.sep), None)
            if header and header[0] == "epoch":
                self.keys = header[1:]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        out = io.StringIO()
        writer = csv.writer(out, delimiter=self.sep, lineterminator="\n")
        if self.keys is None:
            self.keys = sorted(logs)
            writer.writerow(["epoch"] + self.keys)
        writer.writerow([epoch] + [_csv_value(logs[key]) if key in logs else "NA" for key in self.keys])
        self._text += out.getvalue()
        atomic_write(self.filename, self._text)


def _csv_value(value):
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, Iterable):
        return "[%s]" % ", ".join(map(str, value))
    return value


class TerminateOnNaN(Callback):
    """Stops training at the first batch whose loss is NaN or infinite."""

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.all(np.isfinite(loss)):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


_LAMBDA_HOOKS = ("on_epoch_begin", "on_epoch_end", "on_batch_begin", "on_batch_end", "on_train_begin",
                 "on_train_end", "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
                 "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end", "on_test_begin",
                 "on_test_end", "on_predict_begin", "on_predict_end")


class LambdaCallback(Callback):
    """A callback made of functions: ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``,
    ``on_batch_begin(batch, logs)``, ``on_batch_end(batch, logs)``, ``on_train_begin(logs)``,
    ``on_train_end(logs)`` (and the TF 1.14 hook names as keywords)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_batch_begin=None, on_batch_end=None,
                 on_train_begin=None, on_train_end=None, **kwargs):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_batch_begin=on_batch_begin,
                     on_batch_end=on_batch_end, on_train_begin=on_train_begin, on_train_end=on_train_end)
        for name in list(kwargs):
            if name in _LAMBDA_HOOKS:
                hooks[name] = kwargs.pop(name)
            elif name.startswith("on_"):
                # Keras stores unknown keywords as attributes; a misspelt hook would then never run.
                raise TypeError(f"LambdaCallback at {user_location()}: unknown hook {name!r}; expected one of "
                                f"{', '.join(_LAMBDA_HOOKS)}")
        self.__dict__.update(kwargs)
        for name, function in hooks.items():
            if function is None:
                continue
            if not callable(function):
                raise TypeError(f"LambdaCallback at {user_location()}: {name} must be a function, got "
                                f"{type(function).__name__} {function!r}")
            setattr(self, name, function)


class TensorBoard(Callback):
    """Keras 2.2.4's ``TensorBoard(log_dir='./logs', histogram_freq=0, batch_size=32,
    write_graph=True, write_grads=False, write_images=False, update_freq='epoch')``.

    Writes an event file in ``log_dir`` (with ``gc.summary.FileWriter``): every number of the
    epoch logs (``loss``, ``acc``, ``val_loss``, ...) per epoch, the model's graph, and with
    ``histogram_freq=n`` the histogram of every weight each n-th epoch. Keras computed those
    from a pass over the validation data; graphc reads the weights themselves, which is the
    same histogram and needs no validation data. ``write_images`` draws each weight of rank 1
    to 3 as an image, as Keras did. ``update_freq='batch'`` or a number of samples also writes
    ``batch_<name>`` scalars; the step is then the number of samples seen, as in Keras.
    ``write_grads`` and the embedding options raise an error naming them (not built)."""

    def __init__(self, log_dir: str = "./logs", histogram_freq: int = 0, batch_size: int = 32,
                 write_graph: bool = True, write_grads: bool = False, write_images: bool = False,
                 embeddings_freq: int = 0, embeddings_layer_names=None, embeddings_metadata=None,
                 embeddings_data=None, update_freq="epoch"):
        super().__init__()
        self._location = user_location()
        for option, value in (("write_grads", write_grads), ("embeddings_freq", embeddings_freq),
                              ("embeddings_layer_names", embeddings_layer_names),
                              ("embeddings_metadata", embeddings_metadata), ("embeddings_data", embeddings_data)):
            if value:
                raise NotImplementedError(f"TensorBoard at {self._location}: {option}={value!r} is not built in "
                                          "graphc (gradient histograms and the embedding projector); leave it unset")
        if not isinstance(histogram_freq, int) or histogram_freq < 0:
            raise ValueError(f"TensorBoard at {self._location}: histogram_freq must be an int >= 0, got "
                             f"{histogram_freq!r}")
        if update_freq not in ("epoch", "batch") and not (isinstance(update_freq, int) and update_freq > 0):
            raise ValueError(f"TensorBoard at {self._location}: update_freq must be 'epoch', 'batch' or a positive "
                             f"number of samples, got {update_freq!r}")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.batch_size = batch_size
        self.write_graph = write_graph
        self.write_images = write_images
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.writer = None
        self.samples_seen = 0
        self._samples_at_last_write = 0

    def set_model(self, model) -> None:
        from ..summary import FileWriter
        super().set_model(model)
        if self.writer is None:
            self.writer = FileWriter(self.log_dir)
            if self.write_graph:
                self.writer.add_graph(model._graph)

    def _write(self, values: dict, step: int) -> None:
        from ..summary import records
        scalars = [records.scalar_value(name, value) for name, value in values.items()
                   if name not in ("batch", "size") and _is_number(value)]
        if scalars:
            self.writer.add_summary(records.protos().Summary(value=scalars), step)

    def on_epoch_end(self, epoch, logs=None):
        from ..summary import records
        step = epoch if self.update_freq == "epoch" else self.samples_seen
        self._write(dict(logs or {}), step)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            values = []
            for layer in self.model.layers:
                weights = layer.weights
                for variable, value in zip(weights, K.batch_get_value(weights) if weights else []):
                    tag = variable.var_name.replace(":", "_")
                    values.append(records.histogram_value(tag, value))
                    image = _weight_image(np.asarray(value)) if self.write_images else None
                    if image is not None:
                        values.append(records.image_value(f"{tag}/image", records.to_uint8(image)))
            if values:
                self.writer.add_summary(records.protos().Summary(value=values), epoch)
        self.writer.flush()

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        self.samples_seen += int(logs.get("size", 1))
        if self.update_freq != "epoch" and self.samples_seen - self._samples_at_last_write >= self.update_freq:
            self._write({f"batch_{name}": value for name, value in logs.items() if name not in ("batch", "size")},
                        self.samples_seen)
            self._samples_at_last_write = self.samples_seen

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _weight_image(w: np.ndarray):
    """Keras 2.2.4's picture of a weight: [height, width, 1], or None for ranks it skipped."""
    if w.ndim == 1:  # a bias: one column
        return w.reshape(w.shape[0], 1, 1)
    if w.ndim == 2:  # a dense kernel, the long side down
        return (w.T if w.shape[0] > w.shape[1] else w)[:, :, None]
    if w.ndim == 3:  # a 1-D convolution's kernel: its channels side by side
        return np.concatenate(list(np.transpose(w, (2, 0, 1))), axis=1)[:, :, None]
    return None

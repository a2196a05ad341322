"""graphc.keras.callbacks and Progbar, driven by a fake model through a loop that calls the hooks
exactly as Keras 2.2.4's ``fit_loop`` does. The learning rate is a real graphc Variable (in the
fake model's own graph) so that the schedulers go through keras.backend.get_value/set_value."""
from __future__ import annotations

import csv
import re
import sys
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import graphc as gc
from graphc.keras import backend as K
from graphc.keras import callbacks as cbks
from graphc.keras.progbar import Progbar, format_eta, format_time_per_unit, format_value


@pytest.fixture(autouse=True)
def reference_device():
    """Sessions on the reference device: no compiling just to read a learning rate."""
    previous = K.get_device()
    K.set_device("reference")
    yield
    K.set_device(previous)


class FakeModel:
    """What the callbacks use of a Model: stop_training, optimizer.lr (a Variable), save and
    save_weights (recorded, and written as a file), get_weights/set_weights."""

    def __init__(self, lr=0.1):
        self.stop_training = False
        self.graph = gc.Graph()
        with self.graph.as_default():
            self.optimizer = SimpleNamespace(lr=gc.Variable(np.float32(lr), name="lr"))
        self.weights = [np.zeros(3, np.float32), np.zeros((2, 2), np.float32)]
        self.saved = []

    def save(self, path, overwrite=False):
        self.saved.append(("model", path, overwrite))
        with open(path, "w") as f:
            f.write("model")

    def save_weights(self, path, overwrite=False):
        self.saved.append(("weights", path, overwrite))
        with open(path, "w") as f:
            f.write("weights")

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]


def fit(model, callbacks, epochs, batch_logs, val_logs=None, sizes=(32, 32, 16), verbose=0, count_mode="samples",
        metrics=("loss", "acc")):
    """Keras 2.2.4's fit_loop with the model's work replaced by given values.

    ``batch_logs(epoch, batch)`` gives the batch's {'loss': .., 'acc': ..}; ``val_logs(epoch)`` the
    validation values (without the 'val_' prefix). "Training" sets every weight to the epoch
    number, so restored weights tell which epoch they came from."""
    history = cbks.History()
    callbacks = [cbks.BaseLogger()] + list(callbacks) + [history]
    if verbose:
        callbacks.insert(1, cbks.ProgbarLogger(count_mode))
    callback_list = cbks.CallbackList(callbacks)
    names = list(metrics) + (["val_" + m for m in metrics] if val_logs else [])
    callback_list.set_model(model)
    callback_list.set_params({"batch_size": sizes[0], "epochs": epochs, "steps": len(sizes),
                              "samples": sum(sizes), "verbose": verbose, "do_validation": bool(val_logs),
                              "metrics": names})
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(epochs):
        callback_list.on_epoch_begin(epoch)
        epoch_logs = {}
        for batch, size in enumerate(sizes):
            logs = {"batch": batch, "size": size}
            callback_list.on_batch_begin(batch, logs)
            model.weights = [np.full_like(w, epoch) for w in model.weights]
            logs.update(batch_logs(epoch, batch))
            callback_list.on_batch_end(batch, logs)
            if model.stop_training:
                break
            if batch == len(sizes) - 1 and val_logs:
                epoch_logs.update({"val_" + k: v for k, v in val_logs(epoch).items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return history


def constant_batches(epoch, batch):
    return {"loss": [1.0, 2.0, 4.0][batch], "acc": [0.5, 0.5, 1.0][batch]}


def val_sequence(name, values):
    return lambda epoch: {name: values[epoch], ("acc" if name == "loss" else "loss"): 0.0}


# --- BaseLogger and History --------------------------------------------------------------------------------

def test_base_logger_averages_batches_weighted_by_size():
    history = fit(FakeModel(), [], epochs=2, batch_logs=constant_batches)
    # (1*32 + 2*32 + 4*16) / 80 and (0.5*64 + 1*16) / 80
    assert history.history["loss"] == [pytest.approx(2.0), pytest.approx(2.0)]
    assert history.history["acc"] == [pytest.approx(0.6), pytest.approx(0.6)]
    assert "batch" not in history.history and "size" not in history.history


def test_base_logger_keeps_the_last_value_of_stateful_metrics():
    logger = cbks.BaseLogger(stateful_metrics=["acc"])
    logger.set_params({"metrics": ["loss", "acc"]})
    logger.on_epoch_begin(0)
    logger.on_batch_end(0, {"batch": 0, "size": 10, "loss": 1.0, "acc": 0.25})
    logger.on_batch_end(1, {"batch": 1, "size": 30, "loss": 3.0, "acc": 0.75})
    logs = {}
    logger.on_epoch_end(0, logs)
    assert logs == {"loss": pytest.approx(2.5), "acc": 0.75}


def test_history_records_every_epoch_with_validation_values():
    model = FakeModel()
    history = fit(model, [], epochs=3, batch_logs=lambda e, b: {"loss": 1.0 / (e + 1), "acc": 0.1 * e},
                  val_logs=lambda e: {"loss": 10.0 + e, "acc": 0.5})
    assert history.epoch == [0, 1, 2]
    assert history.history["loss"] == [pytest.approx(1.0), pytest.approx(0.5), pytest.approx(1 / 3)]
    assert history.history["val_loss"] == [10.0, 11.0, 12.0]
    assert history.history["val_acc"] == [0.5, 0.5, 0.5]
    assert history.model is model
    assert history.params["epochs"] == 3 and history.params["samples"] == 80


# --- CallbackList dispatch ---------------------------------------------------------------------------------

def test_fit_dispatches_batch_hooks_once_to_old_and_new_names():
    calls = []

    class OldStyle(cbks.Callback):
        def on_batch_begin(self, batch, logs=None):
            calls.append(("old begin", batch))

        def on_batch_end(self, batch, logs=None):
            calls.append(("old end", batch, logs["loss"]))

    class NewStyle(cbks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            calls.append(("new begin", batch))

        def on_test_batch_begin(self, batch, logs=None):
            calls.append(("test begin", batch))

    class DuckTyped:  # not a Callback: only the Keras 2.2.4 names
        def set_params(self, params):
            pass

        def set_model(self, model):
            pass

        def on_batch_end(self, batch, logs):
            calls.append(("duck end", batch))

    fit(FakeModel(), [OldStyle(), NewStyle(), DuckTyped()], epochs=1, batch_logs=constant_batches, sizes=(4, 4))
    assert calls == [("old begin", 0), ("new begin", 0), ("old end", 0, 1.0), ("duck end", 0),
                     ("old begin", 1), ("new begin", 1), ("old end", 1, 2.0), ("duck end", 1)]

    calls.clear()
    callback_list = cbks.CallbackList([OldStyle(), NewStyle()])
    callback_list.on_test_batch_begin(7)
    callback_list.on_predict_batch_begin(7)
    assert calls == [("test begin", 7)]  # evaluate's hooks are not training batches


def test_callbacks_share_the_epoch_logs_in_order():
    seen = []
    writer = cbks.LambdaCallback(on_epoch_end=lambda epoch, logs: logs.update(extra=epoch * 10))
    reader = cbks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((logs["loss"], logs["extra"])))
    fit(FakeModel(), [writer, reader], epochs=2, batch_logs=constant_batches)
    assert seen == [(pytest.approx(2.0), 0), (pytest.approx(2.0), 10)]


def test_lambda_callback_calls_its_functions_and_rejects_a_misspelt_hook():
    events = []
    callback = cbks.LambdaCallback(on_train_begin=lambda logs: events.append("train begin"),
                                   on_epoch_begin=lambda epoch, logs: events.append(f"epoch {epoch}"),
                                   on_batch_end=lambda b, l: events.append(f"batch {b} loss {l['loss']}"),
                                   on_train_end=lambda logs: events.append("train end"))
    fit(FakeModel(), [callback], epochs=1, batch_logs=constant_batches, sizes=(8, 8))
    assert events == ["train begin", "epoch 0", "batch 0 loss 1.0", "batch 1 loss 2.0", "train end"]
    with pytest.raises(TypeError, match=r"test_callbacks\.py:\d+: unknown hook 'on_epoch_ends'"):
        cbks.LambdaCallback(on_epoch_ends=print)


# --- ModelCheckpoint ---------------------------------------------------------------------------------------

def test_model_checkpoint_formats_the_file_name_with_epoch_and_logs(tmp_path):
    model = FakeModel()
    pattern = str(tmp_path / "weights.{epoch:02d}-{val_loss:.2f}.gcm")
    fit(model, [cbks.ModelCheckpoint(pattern, save_weights_only=True)], epochs=3, batch_logs=constant_batches,
        val_logs=val_sequence("loss", [0.5, 0.25, 0.125]))
    names = ["weights.01-0.50.gcm", "weights.02-0.25.gcm", "weights.03-0.12.gcm"]
    assert model.saved == [("weights", str(tmp_path / n), True) for n in names]
    assert sorted(p.name for p in tmp_path.iterdir()) == names


def test_model_checkpoint_saves_the_model_every_period_epochs(tmp_path):
    model = FakeModel()
    fit(model, [cbks.ModelCheckpoint(str(tmp_path / "m{epoch}.gcm"), period=2)], epochs=5,
        batch_logs=constant_batches)
    assert model.saved == [("model", str(tmp_path / "m2.gcm"), True), ("model", str(tmp_path / "m4.gcm"), True)]


def test_model_checkpoint_save_best_only_lower_loss(tmp_path, capsys):
    model = FakeModel()
    fit(model, [cbks.ModelCheckpoint(str(tmp_path / "m{epoch}.gcm"), save_best_only=True, verbose=1)], epochs=4,
        batch_logs=constant_batches, val_logs=val_sequence("loss", [0.5, 0.4, 0.45, 0.3]))
    assert [path for _, path, _ in model.saved] == [str(tmp_path / f"m{e}.gcm") for e in (1, 2, 4)]
    out = capsys.readouterr().out
    assert f"Epoch 00002: val_loss improved from 0.50000 to 0.40000, saving model to {tmp_path / 'm2.gcm'}" in out
    assert "Epoch 00003: val_loss did not improve from 0.40000" in out


def test_model_checkpoint_auto_mode_maximizes_accuracy_and_min_mode_overrides(tmp_path):
    model = FakeModel()
    val = val_sequence("acc", [0.5, 0.4, 0.6])
    fit(model, [cbks.ModelCheckpoint(str(tmp_path / "a{epoch}"), monitor="val_acc", save_best_only=True)],
        epochs=3, batch_logs=constant_batches, val_logs=val)
    assert [path for _, path, _ in model.saved] == [str(tmp_path / "a1"), str(tmp_path / "a3")]

    model = FakeModel()
    fit(model, [cbks.ModelCheckpoint(str(tmp_path / "b{epoch}"), monitor="val_acc", save_best_only=True,
                                     mode="min")], epochs=3, batch_logs=constant_batches, val_logs=val)
    assert [path for _, path, _ in model.saved] == [str(tmp_path / "b1"), str(tmp_path / "b2")]


def test_model_checkpoint_warns_naming_the_available_logs_when_the_monitor_is_missing(tmp_path):
    model = FakeModel()
    with pytest.warns(RuntimeWarning, match=r"'val_loss'.*available: acc, loss"):
        fit(model, [cbks.ModelCheckpoint(str(tmp_path / "m.gcm"), save_best_only=True)], epochs=1,
            batch_logs=constant_batches)
    assert model.saved == []


def test_model_checkpoint_names_a_file_name_key_the_logs_lack(tmp_path):
    checkpoint = cbks.ModelCheckpoint(str(tmp_path / "m{val_acc:.2f}.gcm"))
    with pytest.raises(KeyError, match=r"made at tests/keras/test_callbacks\.py:\d+\): filepath .* names 'val_acc', "
                                       r"which the logs of epoch 1 do not hold; available: epoch, acc, loss$"):
        fit(FakeModel(), [checkpoint], epochs=1, batch_logs=constant_batches)


def test_unknown_mode_warns_and_falls_back_to_auto(tmp_path):
    with pytest.warns(RuntimeWarning, match=r"mode must be 'auto', 'min' or 'max', got 'minimum'"):
        checkpoint = cbks.ModelCheckpoint(str(tmp_path / "m"), monitor="val_acc", mode="minimum")
    assert checkpoint.monitor_op is np.greater


# --- EarlyStopping -----------------------------------------------------------------------------------------

def test_early_stopping_stops_after_patience_and_restores_the_best_weights(capsys):
    model = FakeModel()
    stopper = cbks.EarlyStopping(patience=2, restore_best_weights=True, verbose=1)
    history = fit(model, [stopper], epochs=10, batch_logs=constant_batches,
                  val_logs=val_sequence("loss", [1.0, 0.8, 0.9, 0.85, 0.7, 0.6]))
    assert history.epoch == [0, 1, 2, 3]  # epoch 1 was best; epochs 2 and 3 did not improve
    assert stopper.stopped_epoch == 3 and model.stop_training
    assert all(np.all(w == 1) for w in model.weights)  # the weights at the end of epoch 1
    out = capsys.readouterr().out
    assert "Restoring model weights from the end of the best epoch" in out
    assert "Epoch 00004: early stopping" in out


def test_early_stopping_min_delta_and_accuracy_direction():
    model = FakeModel()
    # val_acc rises by only 0.005 per epoch: below min_delta, so no epoch after the first improves.
    history = fit(model, [cbks.EarlyStopping(monitor="val_acc", min_delta=0.01, patience=1)], epochs=10,
                  batch_logs=constant_batches, val_logs=val_sequence("acc", [0.5 + 0.005 * e for e in range(10)]))
    assert history.epoch == [0, 1]
    model = FakeModel()
    history = fit(model, [cbks.EarlyStopping(monitor="val_acc", patience=1)], epochs=4,
                  batch_logs=constant_batches, val_logs=val_sequence("acc", [0.5 + 0.005 * e for e in range(4)]))
    assert history.epoch == [0, 1, 2, 3] and not model.stop_training


def test_early_stopping_baseline_never_beaten_keeps_the_last_weights():
    model = FakeModel()
    history = fit(model, [cbks.EarlyStopping(baseline=0.1, patience=2, restore_best_weights=True)], epochs=10,
                  batch_logs=constant_batches, val_logs=val_sequence("loss", [0.5] * 10))
    assert history.epoch == [0, 1]
    assert all(np.all(w == 1) for w in model.weights)


# --- Learning rate -----------------------------------------------------------------------------------------

def _record_lr(model, into):
    """A callback (placed after the scheduler) that reads the rate each epoch trains with."""
    return cbks.LambdaCallback(on_epoch_begin=lambda epoch, logs: into.append(float(K.get_value(model.optimizer.lr))))


def test_learning_rate_scheduler_of_the_epoch():
    model, rates = FakeModel(lr=0.1), []
    history = fit(model, [cbks.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1)), _record_lr(model, rates)],
                  epochs=3, batch_logs=constant_batches)
    assert rates == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert history.history["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert float(K.get_value(model.optimizer.lr)) == pytest.approx(0.1 / 3)


def test_learning_rate_scheduler_of_the_epoch_and_the_current_rate(capsys):
    model, rates = FakeModel(lr=0.2), []
    fit(model, [cbks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr, verbose=1),
                _record_lr(model, rates)], epochs=3, batch_logs=constant_batches)
    assert rates == pytest.approx([0.2, 0.1, 0.05])
    assert "Epoch 00002: LearningRateScheduler setting learning rate to 0.1" in capsys.readouterr().out


def test_learning_rate_scheduler_accepts_numpy_and_int_rates():
    model, rates = FakeModel(lr=0.5), []
    fit(model, [cbks.LearningRateScheduler(lambda epoch: np.float32(0.25) if epoch else 1),
                _record_lr(model, rates)], epochs=2, batch_logs=constant_batches)
    assert rates == [1.0, 0.25]


def test_learning_rate_scheduler_rejects_a_schedule_returning_a_non_number():
    def schedule(epoch):
        return "fast"

    with pytest.raises(ValueError, match=r"schedule.*test_callbacks\.py:\d+\) returned 'fast' \(str\) for epoch 0; "
                                        r"expected a number"):
        fit(FakeModel(), [cbks.LearningRateScheduler(schedule)], epochs=1, batch_logs=constant_batches)


def test_learning_rate_callbacks_name_a_missing_optimizer_rate():
    model = FakeModel()
    model.optimizer = SimpleNamespace()
    with pytest.raises(ValueError, match=r"optimizer to have an 'lr' variable, got SimpleNamespace"):
        fit(model, [cbks.LearningRateScheduler(lambda epoch: 0.1)], epochs=1, batch_logs=constant_batches)


def test_reduce_lr_on_plateau_with_cooldown_and_min_lr():
    model = FakeModel(lr=0.1)
    reduce = cbks.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, min_lr=0.02)
    rates = []
    after = cbks.LambdaCallback(on_epoch_end=lambda epoch, logs: rates.append(float(K.get_value(model.optimizer.lr))))
    history = fit(model, [reduce, after], epochs=8, batch_logs=constant_batches,
                  val_logs=val_sequence("loss", [1.0] * 8))
    # Epoch 0 sets the best; then the rate is cut at epochs 1, 3 and 5: after a cut, the next epoch
    # is in cooldown and the one after ends it (Keras counts the cooldown down before comparing);
    # the last cut is clipped to min_lr, and at min_lr nothing changes any more.
    assert rates == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02])
    # logs['lr'] is the rate the epoch trained with
    assert history.history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02])


def test_reduce_lr_on_plateau_improvement_resets_the_wait(capsys):
    model = FakeModel(lr=1.0)
    fit(model, [cbks.ReduceLROnPlateau(monitor="val_acc", patience=2, verbose=1)], epochs=5,
        batch_logs=constant_batches, val_logs=val_sequence("acc", [0.1, 0.1, 0.2, 0.2, 0.2]))
    assert float(K.get_value(model.optimizer.lr)) == pytest.approx(0.1)  # once: at epoch 4, not at epoch 1
    assert "Epoch 00005: ReduceLROnPlateau reducing learning rate to 0.1" in capsys.readouterr().out


def test_reduce_lr_on_plateau_rejects_a_factor_of_one_or_more():
    with pytest.raises(ValueError, match=r"test_callbacks\.py:\d+: expected a factor below 1.0.*got 1.5"):
        cbks.ReduceLROnPlateau(factor=1.5)


# --- CSVLogger ---------------------------------------------------------------------------------------------

def _rows(path, separator=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=separator))


def test_csv_logger_writes_a_header_and_a_row_per_epoch_readable_during_training(tmp_path):
    path = tmp_path / "log.csv"
    during = []
    peek = cbks.LambdaCallback(on_epoch_begin=lambda epoch, logs: during.append(_rows(path) if epoch else None))
    fit(FakeModel(), [cbks.CSVLogger(str(path)), peek], epochs=2,
        batch_logs=lambda e, b: {"loss": 1.0 + e, "acc": 0.5}, val_logs=val_sequence("loss", [3.0, 2.5]))
    assert during[1] == [["epoch", "acc", "loss", "val_acc", "val_loss"], ["0", "0.5", "1.0", "0.0", "3.0"]]
    assert _rows(path) == during[1] + [["1", "0.5", "2.0", "0.0", "2.5"]]
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]  # no temporary file left behind


def test_csv_logger_append_continues_without_a_second_header(tmp_path):
    path = tmp_path / "log.csv"
    fit(FakeModel(), [cbks.CSVLogger(str(path), separator=";")], epochs=1, batch_logs=constant_batches)
    fit(FakeModel(), [cbks.CSVLogger(str(path), separator=";", append=True)], epochs=2, batch_logs=constant_batches)
    assert _rows(path, ";") == [["epoch", "acc", "loss"], ["0", "0.6", "2.0"], ["0", "0.6", "2.0"],
                                ["1", "0.6", "2.0"]]
    fit(FakeModel(), [cbks.CSVLogger(str(path), separator=";")], epochs=1, batch_logs=constant_batches)
    assert _rows(path, ";") == [["epoch", "acc", "loss"], ["0", "0.6", "2.0"]]  # append=False starts over


def test_csv_logger_writes_na_for_a_value_an_epoch_lacks(tmp_path):
    path = tmp_path / "log.csv"
    logger = cbks.CSVLogger(str(path))
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    logger.on_epoch_end(1, {"loss": 0.5})  # (stopped before validating)
    assert _rows(path) == [["epoch", "loss", "val_loss"], ["0", "1.0", "2.0"], ["1", "0.5", "NA"]]


# --- TerminateOnNaN ----------------------------------------------------------------------------------------

def test_terminate_on_nan_stops_at_the_first_bad_batch(capsys):
    model, batches = FakeModel(), []
    count = cbks.LambdaCallback(on_batch_end=lambda batch, logs: batches.append(batch))
    history = fit(model, [cbks.TerminateOnNaN(), count], epochs=3,
                  batch_logs=lambda e, b: {"loss": float("nan") if b == 1 else 1.0, "acc": 0.0})
    assert batches == [0, 1] and model.stop_training and history.epoch == [0]
    assert "Batch 1: Invalid loss, terminating training" in capsys.readouterr().out


# --- Progbar and ProgbarLogger -----------------------------------------------------------------------------

def test_value_and_time_formatting():
    assert format_value(0.1234) == "0.1234"
    assert format_value(1234.5) == "1234.5000"
    assert format_value(1e-4) == "1.0000e-04"
    assert format_value(-5e-4) == "-5.0000e-04"
    assert format_value(-0.5) == "-0.5000"  # (by magnitude: a negative value is not "tiny")
    assert format_eta(5.7) == "5s"
    assert format_eta(125) == "2:05"
    assert format_eta(3725) == "1:02:05"
    assert format_time_per_unit(2.2, "step") == "2s/step"
    assert format_time_per_unit(0.0021, "step") == "2ms/step"
    assert format_time_per_unit(0.0000021, "sample") == "2us/sample"


def test_progbar_averages_values_weighted_by_step_except_stateful(capsys):
    bar = Progbar(target=40, verbose=2, stateful_metrics=["acc"])
    bar.add(10, [("loss", 1.0), ("acc", 0.25)])
    bar.add(30, [("loss", 3.0), ("acc", 0.75)])
    assert re.fullmatch(r" - \d+s - loss: 2\.5000 - acc: 0\.7500\n", capsys.readouterr().out)


def test_progbar_in_a_log_writes_only_the_finished_line(capsys):
    assert not sys.stdout.isatty()
    bar = Progbar(target=100, interval=0)
    for step in range(1, 11):
        bar.add(10, [("loss", 0.5)])
    out = capsys.readouterr().out
    assert "\r" not in out and "ETA" not in out
    assert re.fullmatch(r"100/100 \[={30}\] - \d+s \d+(us|ms|s)/step - loss: 0\.5000\n", out)


def test_progbar_on_a_terminal_redraws_in_place(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    bar = Progbar(target=3, width=9, interval=0)
    bar.update(1, [("loss", 1.0)])
    bar.update(2, [("loss", 2.0)])
    bar.update(3, [("loss", 6.0)])
    out = capsys.readouterr().out
    assert out.count("\r") == 3 and out.endswith("\n") and out.count("\n") == 1
    drawn = out.split("\r")[1:]
    assert re.fullmatch(r"1/3 \[==>\.{6}\] - ETA: \d+s - loss: 1\.0000 *", drawn[0])
    assert re.fullmatch(r"2/3 \[=====>\.{3}\] - ETA: \d+s - loss: 1\.5000 *", drawn[1])
    assert re.fullmatch(r"3/3 \[={9}\] - \d+s \d+(us|ms|s)/step - loss: 3\.0000 *\n", drawn[2])


def test_progbar_on_a_terminal_blanks_out_a_longer_previous_line(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    bar = Progbar(target=None, interval=0)
    bar.update(1, [("a_long_metric_name", 1.0)])
    first = capsys.readouterr().out
    bar._values.clear()  # (a shorter line next)
    bar.update(2, finalize=True)
    second = capsys.readouterr().out
    assert len(second.rstrip("\n")) >= len(first)
    assert re.match(r"\r {6}2/Unknown - \d+s \d+(us|ms|s)/step +\n", second)


def test_progbar_logger_in_a_log_prints_one_line_per_epoch(capsys):
    fit(FakeModel(), [], epochs=2, verbose=1, batch_logs=constant_batches, val_logs=val_sequence("loss", [3.0, 2.0]))
    out = capsys.readouterr().out
    assert "\r" not in out
    lines = out.splitlines()
    assert len(lines) == 4 and lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    for line, val_loss in ((lines[1], "3.0000"), (lines[3], "2.0000")):
        assert re.fullmatch(r"80/80 \[={30}\] - \d+s \d+(us|ms|s)/sample - loss: 2\.0000 - acc: 0\.6000 "
                            rf"- val_loss: {val_loss} - val_acc: 0\.0000e\+00", line), line


def test_progbar_logger_on_a_terminal_counting_steps(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    logger = cbks.ProgbarLogger(count_mode="steps")
    model = FakeModel()

    def slow_batches(epoch, batch):  # past the bar's 0.05 s redraw interval
        time.sleep(0.06)
        return constant_batches(epoch, batch)

    callback_list = cbks.CallbackList([cbks.BaseLogger(), logger])
    callback_list.set_model(model)
    callback_list.set_params({"epochs": 1, "steps": 3, "samples": 80, "verbose": 1, "metrics": ["loss", "acc"]})
    callback_list.on_train_begin()
    callback_list.on_epoch_begin(0)
    for batch, size in enumerate((32, 32, 16)):
        logs = {"batch": batch, "size": size}
        callback_list.on_batch_begin(batch, logs)
        logs.update(slow_batches(0, batch))
        callback_list.on_batch_end(batch, logs)
    callback_list.on_epoch_end(0, {})
    out = capsys.readouterr().out
    assert out.startswith("Epoch 1/1\n")
    drawn = out[len("Epoch 1/1\n"):].split("\r")[1:]
    assert len(drawn) == 3  # after the first two batches, then at the epoch's end
    assert re.fullmatch(r"1/3 \[=========>\.{20}\] - ETA: \d+s - loss: 1\.0000 - acc: 0\.5000 *", drawn[0])
    assert re.fullmatch(r"3/3 \[={30}\] - \d+s \d+ms/step - loss: 2\.3333 - acc: 0\.6667 *\n", drawn[2])


def test_progbar_logger_verbose_2_prints_a_summary_per_epoch(capsys):
    fit(FakeModel(), [], epochs=2, verbose=2, batch_logs=constant_batches)
    out = capsys.readouterr().out
    assert re.fullmatch(r"Epoch 1/2\n - \d+s - loss: 2\.0000 - acc: 0\.6000\n"
                        r"Epoch 2/2\n - \d+s - loss: 2\.0000 - acc: 0\.6000\n", out)


def test_progbar_logger_ends_the_bar_of_an_epoch_stopped_early(capsys):
    fit(FakeModel(), [cbks.TerminateOnNaN()], epochs=2, verbose=1,
        batch_logs=lambda e, b: {"loss": float("inf") if b == 1 else 1.0, "acc": 0.0})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[1] == "Batch 1: Invalid loss, terminating training"
    assert re.fullmatch(r"64/80 \[={23}>\.{6}\] - \d+s \d+(us|ms|s)/sample - loss: inf - acc: 0\.0000e\+00",
                        lines[2])
    assert len(lines) == 3


def test_progbar_logger_rejects_an_unknown_count_mode():
    with pytest.raises(ValueError, match=r"test_callbacks\.py:\d+: count_mode must be 'samples' or 'steps', "
                                         r"got 'batches'"):
        cbks.ProgbarLogger(count_mode="batches")


def test_no_warning_from_a_plain_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = fit(FakeModel(), [cbks.EarlyStopping(monitor="loss"), cbks.ReduceLROnPlateau(monitor="loss")],
                      epochs=2, batch_logs=constant_batches)
    assert history.history["lr"] == pytest.approx([0.1, 0.1])

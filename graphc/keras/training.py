"""``Model``: a Network that trains (Keras 2's ``engine/training.py``): ``compile`` adds the
targets, the loss, the metrics and the optimizer's update ops to the model's graph, and
``fit`` / ``evaluate`` / ``predict`` run three compiled programs (train, test, predict) made
once with ``Session.make_callable``, one call per batch."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import dtypes as dt
from ..errors import OutOfRangeError, ShapeError
from ..graph import user_location
from ..ops import elementwise as ew
from ..ops import reduce as rd
from ..ops.control import group
from ..ops.source import placeholder
from . import backend as K
from .engine import to_list
from .network import Network


class NotCompiledError(RuntimeError):
    """``fit``/``evaluate``/``train_on_batch`` before ``compile``."""


class Model(Network):
    """``keras.Model(inputs, outputs)``: the functional API, and the base of Sequential."""

    def __init__(self, inputs=None, outputs=None, name: Optional[str] = None, trainable: bool = True, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, name=name, trainable=trainable)
        self.optimizer = None
        self.stop_training = False
        self.history = None
        self._compiled = None  # the compile() arguments, for saving
        self._functions: dict = {}

    # -- compile ------------------------------------------------------------------------------------
    def compile(self, optimizer, loss=None, metrics=None, loss_weights=None, sample_weight_mode=None,
                weighted_metrics=None, target_tensors=None, **kwargs):
        """Add the training graph: a target placeholder per output, the total loss (each
        output's mean loss, weighted, plus the regularization losses), the metrics, and the
        optimizer's updates together with the layers' own (batch norm's moving averages)."""
        from . import losses as losses_module
        from . import metrics as metrics_module
        from . import optimizers
        where = user_location()
        if kwargs:
            raise TypeError(f"{self._what()}.compile at {where}: unknown argument(s) {', '.join(sorted(kwargs))}")
        if sample_weight_mode is not None or weighted_metrics is not None or target_tensors is not None:
            raise ValueError(f"{self._what()}.compile at {where}: sample_weight_mode, weighted_metrics and "
                             "target_tensors are not in graphc's Keras")
        self._ensure_built(where)
        if loss is None:
            raise ValueError(f"{self._what()}.compile at {where}: give a loss (a Keras loss name or a function)")
        graph = self._graph
        with graph.as_default():
            self.optimizer = optimizers.get(optimizer)
            loss_functions = self._per_output(loss, "loss", where)
            loss_functions = [losses_module.get(f) for f in loss_functions]
            weights = self._per_output(loss_weights if loss_weights is not None else 1.0, "loss_weights", where)
            metric_lists = self._metrics_per_output(metrics, where)
            train_outputs, updates, call_losses = self._call_collecting(training=True)
            self.targets = [placeholder(_target_dtype(fn, y), shape=_target_shape(fn, y), name=f"{name}_target")
                            for fn, y, name in zip(loss_functions, self.outputs, self.output_names)]
            self.loss_functions = loss_functions
            self.metrics_names = ["loss"]
            several = len(self.outputs) > 1
            if several:
                self.metrics_names += [f"{name}_loss" for name in self.output_names]
            self.metrics_names += [metrics_module.metric_name(m) if not several
                                   else f"{name}_{metrics_module.metric_name(m)}"
                                   for name, ms in zip(self.output_names, metric_lists) for m in ms]

            def totals(outputs, extra_losses):
                per_output = [rd.reduce_mean(fn(t, y)) for fn, t, y in zip(loss_functions, self.targets, outputs)]
                total = None
                for w, value in zip(weights, per_output):
                    term = value if w == 1.0 else value * float(w)
                    total = term if total is None else total + term
                for extra in self.weight_losses() + list(extra_losses):
                    total = total + ew.cast(extra, total.dtype) if extra.dtype is not total.dtype else total + extra
                values = []
                for fn, t, y, ms in zip(loss_functions, self.targets, outputs, metric_lists):
                    for m in ms:
                        metric = metrics_module.get(m, loss=fn, output_shape=tuple(y.shape))
                        values.append(rd.reduce_mean(ew.cast(metric(t, y), dt.float32)))
                return total, (per_output if several else []) + values

            self.total_loss, train_metrics = totals(train_outputs, call_losses)
            trainable = self.trainable_weights
            # a model without trainable weights still compiles (Keras allows it): its step
            # runs only the layers' updates
            steps = [self.optimizer.minimize(self.total_loss, var_list=trainable)] if trainable else []
            train_op = group(*steps, *updates)
            test_loss, test_metrics = totals(list(self.outputs), [l for n in self._nodes for l in n.losses]) \
                if self.uses_training else (self.total_loss, train_metrics)
        self._train_fetches = [train_op, self.total_loss] + train_metrics
        self._test_fetches = [test_loss] + test_metrics
        self._functions = {}
        self._compiled = {"optimizer": optimizer, "loss": loss, "metrics": metrics, "loss_weights": loss_weights}

    def _per_output(self, value, what: str, where: str) -> list:
        n = len(self.outputs)
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(self.output_names))
            if unknown:
                raise ValueError(f"{self._what()}.compile at {where}: {what} names unknown output(s) {unknown}; the "
                                 f"outputs are {self.output_names}")
            missing = [name for name in self.output_names if name not in value]
            if missing and what == "loss":
                raise ValueError(f"{self._what()}.compile at {where}: {what} has no entry for output(s) {missing}")
            return [value.get(name, 1.0) for name in self.output_names]
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"{self._what()}.compile at {where}: {what} has {len(value)} entries, the model has "
                                 f"{n} output(s) ({', '.join(self.output_names)})")
            return list(value)
        return [value] * n

    def _metrics_per_output(self, metrics, where: str) -> list:
        if metrics is None:
            return [[] for _ in self.outputs]
        if isinstance(metrics, dict):
            return [to_list(metrics.get(name)) for name in self.output_names]
        return [list(metrics) for _ in self.outputs]

    def _ensure_built(self, where: str) -> None:
        if not self.outputs:
            raise ValueError(f"{self._what()} at {where}: the model has no layers with a known input shape yet; give "
                             "the first layer input_shape=..., or call model.build(input_shape)")

    def _function(self, kind: str):
        """The compiled call for ``kind`` ("train", "test", "predict"), made on first use."""
        fn = self._functions.get(kind)
        if fn is None:
            session = K.get_session(self._graph)
            feeds = list(self.inputs) + (list(self.targets) if kind != "predict" else [])
            fetches = {"train": getattr(self, "_train_fetches", None), "test": getattr(self, "_test_fetches", None),
                       "predict": list(self.outputs)}[kind]
            K.initialize_variables(_graph_variables(self._graph), session)
            fn = session.make_callable(fetches, feed_list=feeds)
            self._functions[kind] = fn
        return fn

    def _require_compiled(self, what: str, where: str) -> None:
        if self._compiled is None and not getattr(self, "_deferred_compile", None):
            raise NotCompiledError(f"{self._what()}.{what} at {where}: the model must be compiled first: call "
                                   "model.compile(optimizer, loss, metrics) before fit, evaluate or train_on_batch")

    # -- data -----------------------------------------------------------------------------------------
    def _standardize(self, data, tensors: list, names: list, what: str, where: str, loss_functions=None) -> list:
        """``data`` (an array, a list, or a dict by name) as one array per tensor, in its dtype,
        each checked against the tensor's shape with an error that names it."""
        if isinstance(data, dict):
            missing = [n for n in names if n not in data]
            if missing:
                raise ValueError(f"{self._what()} at {where}: {what} has no entry for {missing}; expected keys "
                                 f"{names}")
            arrays = [data[n] for n in names]
        else:
            arrays = list(data) if _one_per_tensor(data, tensors) else [data]
        if len(arrays) != len(tensors):
            raise ValueError(f"{self._what()} at {where}: the model expects {len(tensors)} {what} array(s) "
                             f"({', '.join(names)}), got {len(arrays)}")
        out = []
        for k, (value, t, name) in enumerate(zip(arrays, tensors, names)):
            arr = np.asarray(value)
            expected = tuple(t.shape)
            if arr.ndim == len(expected) - 1 and what == "target":
                arr = arr.reshape(arr.shape + (1,))  # Keras accepts (batch,) labels for a (batch, 1) target
            fits = arr.ndim == len(expected) and all(e is None or e == g for e, g in zip(expected, arr.shape))
            if not fits:
                hint = ""
                if what == "target" and loss_functions is not None:
                    fn = loss_functions[k]
                    hint = (f" for loss {getattr(fn, '__name__', fn)}")
                    if getattr(fn, "__name__", "") == "categorical_crossentropy" and arr.shape[-1:] == (1,):
                        hint += ("; labels look like class indices: use loss='sparse_categorical_crossentropy' or "
                                 "keras.utils.to_categorical(y)")
                raise ShapeError(f"{self._what()} at {where}: {what} '{name}' expects arrays of shape "
                                 f"{_shape_str(expected)}, got an array of shape {arr.shape}{hint}")
            out.append(np.ascontiguousarray(arr, dtype=t.dtype.np) if arr.dtype != t.dtype.np else arr)
        lengths = {a.shape[0] for a in out if a.ndim}
        if len(lengths) > 1:
            raise ValueError(f"{self._what()} at {where}: the {what} arrays have different numbers of samples "
                             f"{sorted(lengths)}")
        return out

    def _build_from_data(self, x, where: str) -> None:
        """Models whose input shape comes from the first data (Sequential overrides it)."""

    def _inputs_and_targets(self, x, y, where: str, need_targets: bool = True):
        if not self.outputs:
            self._build_from_data(x, where)
        xs = self._standardize(x, self.inputs, self.input_names, "input", where)
        if not need_targets:
            return xs, []
        if y is None:
            raise ValueError(f"{self._what()} at {where}: give targets y")
        ys = self._standardize(y, self.targets, self.output_names, "target", where, self.loss_functions)
        if xs and ys and xs[0].shape[0] != ys[0].shape[0]:
            raise ValueError(f"{self._what()} at {where}: {xs[0].shape[0]} input samples but {ys[0].shape[0]} target "
                             "samples")
        return xs, ys

    # -- one batch ------------------------------------------------------------------------------------
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        where = user_location()
        self._require_compiled("train_on_batch", where)
        _no_weights(sample_weight, class_weight, self, where)
        xs, ys = self._inputs_and_targets(x, y, where)
        outs = self._function("train")(*xs, *ys)[1:]
        return _scalar_or_list(outs)

    def test_on_batch(self, x, y, sample_weight=None):
        where = user_location()
        self._require_compiled("test_on_batch", where)
        _no_weights(sample_weight, None, self, where)
        xs, ys = self._inputs_and_targets(x, y, where)
        return _scalar_or_list(self._function("test")(*xs, *ys))

    def predict_on_batch(self, x):
        where = user_location()
        xs, _ = self._inputs_and_targets(x, None, where, need_targets=False)
        return _unlist_arrays(self._function("predict")(*xs))

    # -- loops ------------------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs: int = 1, verbose: int = 1, callbacks=None,
            validation_split: float = 0.0, validation_data=None, shuffle=True, class_weight=None, sample_weight=None,
            initial_epoch: int = 0, steps_per_epoch=None, validation_steps=None, **kwargs):
        """Train for ``epochs`` over ``x``/``y`` (NumPy arrays, lists or dicts of them) or a
        ``gc.data.Dataset`` of ``(x, y)`` batches, and return the ``History``."""
        where = user_location()
        if kwargs:
            raise TypeError(f"{self._what()}.fit at {where}: unknown argument(s) {', '.join(sorted(kwargs))}")
        self._require_compiled("fit", where)
        _no_weights(sample_weight, class_weight, self, where)
        batch_size = 32 if batch_size is None else int(batch_size)
        if _is_dataset(x):
            if not self.outputs:
                self._build_from_data(x, where)
            return self._fit_dataset(x, epochs, verbose, callbacks, validation_data, initial_epoch, steps_per_epoch,
                                     validation_steps, where)
        xs, ys = self._inputs_and_targets(x, y, where)
        val = None
        if validation_data is not None:
            val_x, val_y = _validation_pair(validation_data, self, where)
            val = self._inputs_and_targets(val_x, val_y, where)
        elif validation_split and 0.0 < validation_split < 1.0:
            split_at = int(xs[0].shape[0] * (1.0 - validation_split))  # Keras takes the last samples
            val = ([a[split_at:] for a in xs], [a[split_at:] for a in ys])
            xs, ys = [a[:split_at] for a in xs], [a[:split_at] for a in ys]
        samples = xs[0].shape[0]
        out_labels = list(self.metrics_names)
        callback_list = self._callback_list(callbacks, verbose, "samples", val is not None, batch_size=batch_size,
                                            epochs=epochs, steps=None, samples=samples)
        if val is not None:
            # Keras 2.2 gives callbacks the validation arrays (inputs, targets, sample weights)
            val_ins = val[0] + val[1] + [np.ones(len(val[1][0]), np.float32) for _ in val[1]]
            for callback in callback_list.callbacks:
                callback.validation_data = val_ins
            if verbose:
                print(f"Train on {samples} samples, validate on {len(val[0][0])} samples")
        train = self._function("train")
        arrays = xs + ys
        self.stop_training = False
        callback_list.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            epoch_logs: dict = {}
            order = np.arange(samples)
            if shuffle == "batch":
                order = _batch_shuffle(order, batch_size)
            elif shuffle:
                np.random.shuffle(order)
            finished = True
            for batch_index, start in enumerate(range(0, samples, batch_size)):
                ids = order[start:start + batch_size]
                batch_logs = {"batch": batch_index, "size": len(ids)}
                callback_list.on_batch_begin(batch_index, batch_logs)
                contiguous = shuffle is False
                batch = [a[start:start + batch_size] if contiguous else a[ids] for a in arrays]
                outs = train(*batch)
                for label, value in zip(out_labels, outs[1:]):
                    batch_logs[label] = float(value)
                callback_list.on_batch_end(batch_index, batch_logs)
                if self.stop_training:
                    finished = start + batch_size >= samples
                    break
            if val is not None and finished:  # as Keras: no validation of an epoch stopped early
                val_outs = self._test_loop(val[0] + val[1], batch_size)
                for label, value in zip(out_labels, val_outs):
                    epoch_logs[f"val_{label}"] = value
            callback_list.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        callback_list.on_train_end()
        return self.history

    def _callback_list(self, callbacks, verbose: int, count_mode: str, do_validation: bool, **params):
        """Keras 2.2's callbacks around a fit: BaseLogger (the epoch averages), the progress bar
        when verbose, the user's, then a fresh History (returned by fit)."""
        from . import callbacks as cbks
        self.history = cbks.History()
        progress = [cbks.ProgbarLogger(count_mode=count_mode)] if verbose else []
        callback_list = cbks.CallbackList([cbks.BaseLogger()] + progress + to_list(callbacks) + [self.history])
        callback_list.set_model(self)
        labels = list(self.metrics_names)
        callback_list.set_params(dict(params, verbose=verbose, do_validation=do_validation,
                                      metrics=labels + ([f"val_{n}" for n in labels] if do_validation else [])))
        return callback_list

    def _fit_dataset(self, dataset, epochs, verbose, callbacks, validation_data, initial_epoch, steps_per_epoch,
                     validation_steps, where):
        """Batches of ``(x, y)`` drawn from a Dataset through its iterator (the Session fills it
        from a background thread); an epoch is ``steps_per_epoch`` batches, or one pass."""
        session = K.get_session(self._graph)
        with self._graph.as_default():
            iterator = dataset.make_initializable_iterator()
            next_element = iterator.get_next()
        out_labels = list(self.metrics_names)
        do_validation = validation_data is not None
        callback_list = self._callback_list(callbacks, verbose, "steps", do_validation, batch_size=None,
                                            epochs=epochs, steps=steps_per_epoch, samples=None)
        train = self._function("train")
        self.stop_training = False
        session.run(iterator.initializer)
        callback_list.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            if steps_per_epoch is None and epoch > initial_epoch:
                session.run(iterator.initializer)
            step = 0
            while steps_per_epoch is None or step < steps_per_epoch:
                try:
                    element = session.run(next_element)
                except OutOfRangeError:
                    if steps_per_epoch is not None:
                        raise OutOfRangeError(f"{self._what()}.fit at {where}: the dataset ran out after {step} "
                                              f"steps of epoch {epoch + 1}, steps_per_epoch is {steps_per_epoch}; "
                                              "add .repeat() to the dataset") from None
                    break
                x, y = _split_element(element, self, where)
                xs, ys = self._inputs_and_targets(x, y, where)
                batch_logs = {"batch": step, "size": xs[0].shape[0]}
                callback_list.on_batch_begin(step, batch_logs)
                outs = train(*xs, *ys)
                for label, value in zip(out_labels, outs[1:]):
                    batch_logs[label] = float(value)
                callback_list.on_batch_end(step, batch_logs)
                step += 1
                if self.stop_training:
                    break
            epoch_logs: dict = {}
            if do_validation:
                val_result = to_list(self.evaluate(*_validation_pair(validation_data, self, where), verbose=0)) \
                    if not _is_dataset(validation_data) else \
                    to_list(self.evaluate(validation_data, steps=validation_steps, verbose=0))
                epoch_logs.update({f"val_{label}": v for label, v in zip(out_labels, val_result)})
            callback_list.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        callback_list.on_train_end()
        return self.history

    def _test_loop(self, arrays: list, batch_size: int, verbose: int = 0) -> list:
        """Each test fetch averaged over the batches, weighted by their sizes."""
        from .progbar import Progbar
        test = self._function("test")
        samples = arrays[0].shape[0]
        totals = None
        bar = Progbar(target=samples) if verbose == 1 else None
        for start in range(0, samples, batch_size):
            outs = test(*[a[start:start + batch_size] for a in arrays])
            n = min(batch_size, samples - start)
            values = [float(v) * n for v in outs]
            totals = values if totals is None else [t + v for t, v in zip(totals, values)]
            if bar is not None:
                bar.update(start + n)
        return [t / samples for t in totals] if totals else []

    def evaluate(self, x=None, y=None, batch_size=None, verbose: int = 1, sample_weight=None, steps=None,
                 callbacks=None):
        """The loss (and metrics) on ``x``/``y``, averaged over batches weighted by their size:
        a float, or a list in the order of ``metrics_names``."""
        where = user_location()
        self._require_compiled("evaluate", where)
        _no_weights(sample_weight, None, self, where)
        if _is_dataset(x):
            return self._evaluate_dataset(x, steps, where)
        xs, ys = self._inputs_and_targets(x, y, where)
        return _scalar_or_list(self._test_loop(xs + ys, 32 if batch_size is None else int(batch_size), verbose))

    def _evaluate_dataset(self, dataset, steps, where):
        session = K.get_session(self._graph)
        with self._graph.as_default():
            iterator = dataset.make_initializable_iterator()
            next_element = iterator.get_next()
        session.run(iterator.initializer)
        test = self._function("test")
        totals, samples, step = None, 0, 0
        while steps is None or step < steps:
            try:
                element = session.run(next_element)
            except OutOfRangeError:
                break
            xs, ys = self._inputs_and_targets(*_split_element(element, self, where), where)
            n = xs[0].shape[0]
            values = [float(v) * n for v in test(*xs, *ys)]
            totals = values if totals is None else [t + v for t, v in zip(totals, values)]
            samples += n
            step += 1
        return _scalar_or_list([t / samples for t in totals] if totals else [])

    def predict(self, x, batch_size=None, verbose: int = 0, steps=None, callbacks=None):
        """The outputs for ``x``, batch by batch, concatenated (one array, or a list for a
        model with several outputs)."""
        from .progbar import Progbar
        where = user_location()
        if _is_dataset(x):
            raise ValueError(f"{self._what()}.predict at {where}: predict takes NumPy arrays; iterate the dataset's "
                             "inputs yourself")
        xs, _ = self._inputs_and_targets(x, None, where, need_targets=False)
        batch_size = 32 if batch_size is None else int(batch_size)
        predict = self._function("predict")
        samples = xs[0].shape[0]
        bar = Progbar(target=samples) if verbose == 1 else None
        chunks: list = []
        for start in range(0, samples, batch_size):
            outs = predict(*[a[start:start + batch_size] for a in xs])
            chunks.append([np.array(o) for o in outs])
            if bar is not None:
                bar.update(min(start + batch_size, samples))
        if not chunks:
            return _unlist_arrays([np.zeros((0,) + tuple(d or 0 for d in y.shape[1:]), y.dtype.np)
                                   for y in self.outputs])
        return _unlist_arrays([np.concatenate(parts) for parts in zip(*chunks)])


    # -- saving ---------------------------------------------------------------------------------------
    def save(self, filepath, overwrite: bool = True, include_optimizer: bool = True) -> None:
        """The whole model in one safe file: architecture, weights, and (compiled) the
        optimizer's state; ``keras.models.load_model`` restores it without this code."""
        from .saving import save_model
        save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        from .saving import save_weights
        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, by_name: bool = False) -> None:
        from .saving import load_weights
        if by_name:
            raise ValueError(f"{self._what()}.load_weights at {user_location()}: by_name=True is not in graphc's "
                             "Keras; the weights are matched by order")
        load_weights(self, filepath)

    def to_json(self, **kwargs) -> str:
        import json
        return json.dumps({"class_name": type(self).__name__, "config": self.get_config()}, **kwargs)

    def export(self, path, format: str = "model", **options):
        """The inference graph (``training=False``) with the current weights, handed to
        ``gc.export``: ``format="model"`` (a graphc model file), ``"onnx"`` or ``"native"`` (a
        shared library that needs only libc). Inputs and outputs are named after their layers."""
        from .. import export
        where = user_location()
        self._ensure_built(where)
        session = K.get_session(self._graph)
        K.initialize_variables(_graph_variables(self._graph), session)
        inputs = dict(zip(self.input_names, self.inputs))
        outputs = dict(zip(self.output_names, self.outputs))
        if format == "model":
            return export.save_model(session, path, inputs=inputs, outputs=outputs, **options)
        if format == "onnx":
            return export.to_onnx(session, path, inputs=inputs, outputs=outputs, **options)
        if format == "native":
            return export.shared_library(session, inputs=inputs, outputs=outputs, path=path, **options)
        raise ValueError(f"{self._what()}.export at {where}: format must be 'model', 'onnx' or 'native', got "
                         f"{format!r}")


def _one_per_tensor(data, tensors) -> bool:
    """Whether a list holds one array per tensor (Keras accepts ``[x]`` for a model with one
    input) rather than being the rows of one array."""
    if not isinstance(data, (list, tuple)) or len(data) != len(tensors):
        return False
    return len(tensors) > 1 or np.ndim(data[0]) == len(tensors[0].shape)


def _graph_variables(graph) -> list:
    from ..graph import GraphKeys
    return list(graph.get_collection(GraphKeys.GLOBAL_VARIABLES)) + list(graph.get_collection(GraphKeys.LOCAL_VARIABLES))


def _target_shape(loss_fn, output) -> tuple:
    if getattr(loss_fn, "__name__", "") == "sparse_categorical_crossentropy":
        return tuple(output.shape[:-1]) + (1,)
    return tuple(output.shape)


def _target_dtype(loss_fn, output):
    if getattr(loss_fn, "__name__", "") == "sparse_categorical_crossentropy":
        return dt.int64
    return output.dtype


def _shape_str(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _scalar_or_list(values):
    values = [float(v) for v in values]
    return values[0] if len(values) == 1 else values


def _unlist_arrays(arrays):
    arrays = list(arrays)
    return arrays[0] if len(arrays) == 1 else arrays


def _no_weights(sample_weight, class_weight, model, where) -> None:
    if sample_weight is not None or class_weight is not None:
        raise ValueError(f"{model._what()} at {where}: sample_weight and class_weight are not in graphc's Keras yet")


def _batch_shuffle(order: np.ndarray, batch_size: int) -> np.ndarray:
    """Keras's shuffle='batch': whole batches change places, samples stay within them."""
    full = (len(order) // batch_size) * batch_size
    head = order[:full].reshape(-1, batch_size)
    np.random.shuffle(head)
    return np.concatenate([head.ravel(), order[full:]])


def _is_dataset(x) -> bool:
    from ..data import Dataset
    return isinstance(x, Dataset)


def _validation_pair(validation_data, model, where):
    if _is_dataset(validation_data):
        return validation_data, None
    if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
        raise ValueError(f"{model._what()}.fit at {where}: validation_data must be (x_val, y_val), got "
                         f"{type(validation_data).__name__}")
    if len(validation_data) == 3:
        raise ValueError(f"{model._what()}.fit at {where}: validation sample weights are not in graphc's Keras yet")
    return validation_data[0], validation_data[1]


def _split_element(element, model, where):
    if isinstance(element, (list, tuple)) and len(element) == 2:
        return element[0], element[1]
    raise ValueError(f"{model._what()}.fit at {where}: a dataset for fit must yield (x, y) pairs of batches, got "
                     f"{type(element).__name__}")

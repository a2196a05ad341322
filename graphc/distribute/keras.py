"""Horovod's Keras pieces for ``graphc.keras``: ``hvd.keras.DistributedOptimizer``,
``BroadcastGlobalVariablesCallback`` and ``MetricAverageCallback``.

    model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.Adam(1e-3 * hvd.size())), ...)
    model.fit(x_shard, y_shard, callbacks=[hvd.keras.BroadcastGlobalVariablesCallback(0),
                                           hvd.keras.MetricAverageCallback()],
              verbose=1 if hvd.rank() == 0 else 0)
"""
from __future__ import annotations

import numpy as np

from ..keras import backend as K
from ..keras.callbacks import Callback
from . import DistributedOptimizer, broadcast_variables  # noqa: F401 (hvd.keras.DistributedOptimizer)
from . import world as _world


class BroadcastGlobalVariablesCallback(Callback):
    """At the start of training, sets every variable of the model's graph (weights and the
    optimizer's state) to rank ``root_rank``'s values, so that all ranks start the same.
    ``fit`` has made and initialized them by then, so no step runs from different weights."""

    def __init__(self, root_rank: int = 0, device: str = ""):
        super().__init__()
        self.root_rank = root_rank
        self.done = False

    def on_train_begin(self, logs=None):
        if self.done:
            return
        from ..keras.training import _graph_variables
        graph = self.model._graph
        with graph.as_default():
            op = broadcast_variables(_graph_variables(graph), self.root_rank)
        K.get_session(graph).run(op)
        self.done = True


class MetricAverageCallback(Callback):
    """At the end of each epoch, replaces every number in ``logs`` with its mean over the
    ranks (one fused all-reduce, in the order of the sorted names, the same on every rank).
    Put it before callbacks that read the metrics (ReduceLROnPlateau, EarlyStopping,
    ModelCheckpoint), so they decide the same on every rank."""

    def __init__(self, device: str = ""):
        super().__init__()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        names = sorted(k for k, v in logs.items() if isinstance(v, (int, float, np.number)) and not isinstance(v, bool))
        if not names:
            return
        world = _world.current("MetricAverageCallback")
        means = world.allreduce_host(np.array([float(logs[k]) for k in names], np.float64),
                                     key=f"the epoch's logs ({', '.join(names)})")
        for k, v in zip(names, means):
            logs[k] = float(v)

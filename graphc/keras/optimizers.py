"""``keras.optimizers``: the standalone Keras 2.2.4 optimizers (SGD, RMSprop, Adagrad, Adadelta,
Adam, Adamax, Nadam) with Keras's update rules and defaults, as subclasses of graphc's
``gc.train.Optimizer``: ``minimize``/``compute_gradients``/``apply_gradients`` work, and the
state (slots, ``iterations``, the learning rate) lives in ordinary graph Variables.

The learning rate is a float32 Variable (``opt.lr``) read by every step, so a callback can
change it with ``backend.set_value(opt.lr, v)`` and the next step uses it without a new
compiled program. ``iterations`` (int64, ``<Name>/iterations``) counts applied steps; the
time-based ``decay`` divides the rate by ``1 + decay * iterations`` as Keras does.

Each update reads the values from before the step (a read precedes the writes to the same
variable in a run), which is Keras's order: ``t = iterations + 1`` uses the old count.

One optimizer object serves one graph: its variables are made in the graph of the first
loss it minimizes (or the default graph, if ``opt.lr``/``opt.iterations`` is read first).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..graph import get_default_graph, user_location
from ..ops import elementwise as ew
from ..ops.control import group
from ..ops.source import constant, zeros
from ..ops.state import Variable
from ..train.optimizers import Optimizer as _TrainOptimizer
from . import backend
from .lookup import resolve


class Optimizer(_TrainOptimizer):
    """Base of the Keras optimizers. Subclasses name their slots in ``_slots``, their
    hyperparameters (besides ``lr``) in ``_hyper``, and give ``_keras_update``."""

    _hyper: tuple = ()

    def __init__(self, lr, learning_rate=None, clipnorm=None, clipvalue=None, decay=0.0):
        lr = float(lr if learning_rate is None else learning_rate)
        super().__init__(lr, type(self).__name__, clip_norm=clipnorm, clip_value=clipvalue)
        self.initial_lr = lr
        self.decay = float(decay)
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self._graph = None
        self._lr_variable = None
        self._iterations = None
        self._trained = []  # variables in the order they were first given to apply_gradients

    # -- the optimizer's own variables --------------------------------------------------------------
    def _variables_in(self, graph):
        """Make ``iterations`` and ``lr`` in ``graph`` on first use; a second graph is an error."""
        if self._graph is None:
            with graph.as_default(), graph.name_scope(None), graph.control_dependencies(None):
                self._iterations = Variable(zeros((), dt.int64), name=f"{self._name}/iterations", trainable=False)
                self._lr_variable = Variable(constant(np.float32(self.initial_lr)), name=f"{self._name}/lr",
                                             trainable=False)
                self._make_extra_variables()
            self._graph = graph
        elif self._graph is not graph:
            raise ValueError(f"keras.optimizers.{self._name} at {user_location()}: this optimizer's variables "
                             f"live in the graph it was first used in; expected that graph, got another one "
                             f"(make one optimizer per model)")

    def _make_extra_variables(self):
        """Non-slot state besides iterations and lr (Nadam's momentum schedule)."""

    @property
    def lr(self) -> Variable:
        """The learning-rate Variable (float32); change it with ``backend.set_value``."""
        if self._graph is None:
            self._variables_in(get_default_graph())
        return self._lr_variable

    @property
    def iterations(self) -> Variable:
        """The int64 Variable counting applied steps."""
        if self._graph is None:
            self._variables_in(get_default_graph())
        return self._iterations

    def _extra_weights(self) -> list:
        return []

    @property
    def weights(self) -> list:
        """The optimizer's state in a stable order: ``iterations``, any other non-slot state,
        then each slot kind in ``_slots`` order, for the variables in the order they were
        first trained (Keras's grouping: all first moments, then all second moments). The
        learning rate is not state here: it is in ``get_config`` and saved with it."""
        if self._graph is None:
            return []
        slots = [self._slot_vars[(v, s)] for s in self._slots for v in self._trained if (v, s) in self._slot_vars]
        return [self._iterations] + self._extra_weights() + slots

    def get_weights(self) -> list:
        return backend.batch_get_value(self.weights)

    def set_weights(self, values) -> None:
        weights = self.weights
        values = list(values)
        if len(values) != len(weights):
            raise ValueError(f"{self._name}.set_weights at {user_location()}: expected {len(weights)} arrays "
                             f"(the optimizer's weights), got {len(values)}")
        for w, value in zip(weights, values):
            if tuple(np.shape(value)) != tuple(w.shape):
                raise ValueError(f"{self._name}.set_weights at {user_location()}: expected shape "
                                 f"{tuple(w.shape)} for '{w.var_name}', got {tuple(np.shape(value))}")
        backend.batch_set_value(zip(weights, values))

    # -- the step -------------------------------------------------------------------------------------
    def _prepare(self, grads_and_vars):
        pairs = super()._prepare(grads_and_vars)
        self._variables_in(pairs[0][1].graph)  # before any slot is made in a graph it cannot serve
        return pairs

    def _step_inputs(self, graph, pairs):
        for _, v in pairs:
            if v not in self._trained:
                self._trained.append(v)
        return {"iterations": self._iterations.value(), "by_dtype": {}}

    def _in_dtype(self, step, dtype):
        """(learning rate after decay, iterations as a float) in ``dtype``, made once per dtype."""
        found = step["by_dtype"].get(dtype)
        if found is None:
            iterations = ew.cast(step["iterations"], dtype)
            lr = ew.cast(self._lr_variable.value(), dtype)
            if self.decay > 0:
                lr = lr * (1.0 / (1.0 + iterations * self.decay))
            found = step["by_dtype"][dtype] = (lr, iterations)
        return found

    def _finish(self, step) -> list:
        return [self._iterations.assign_add(1)]

    def _update(self, var, grad, slots, step):
        lr, iterations = self._in_dtype(step, var.dtype)
        return group(*self._keras_update(var, var.value(), grad, slots, lr, iterations + 1.0))

    def _keras_update(self, var, p, g, slots, lr, t) -> list:
        """The writes of one step for one variable: ``p`` its value, ``g`` its gradient, ``lr``
        the decayed rate and ``t`` the 1-based step number, both in the variable's dtype."""
        raise NotImplementedError

    # -- configuration ----------------------------------------------------------------------------
    def get_config(self) -> dict:
        # the rate as it is now (a scheduler may have changed the variable), as Keras saves it
        config = {"lr": self.initial_lr if self._graph is None else float(backend.get_value(self._lr_variable))}
        config.update({name: getattr(self, name) for name in self._hyper})
        if self.clipnorm is not None:
            config["clipnorm"] = self.clipnorm
        if self.clipvalue is not None:
            config["clipvalue"] = self.clipvalue
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


def _epsilon(epsilon):
    return backend.epsilon() if epsilon is None else float(epsilon)


class SGD(Optimizer):
    """v = momentum * v - lr * g;  p += v  (Nesterov: p += momentum * v - lr * g)."""

    _slots = ("momentum",)
    _hyper = ("momentum", "decay", "nesterov")

    def __init__(self, lr=0.01, momentum=0., decay=0., nesterov=False, *, learning_rate=None, clipnorm=None,
                 clipvalue=None):
        super().__init__(lr, learning_rate, clipnorm, clipvalue, decay)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def _keras_update(self, var, p, g, slots, lr, t):
        moment = slots["momentum"]
        velocity = moment.value() * self.momentum - lr * g
        new_p = p + velocity * self.momentum - lr * g if self.nesterov else p + velocity
        return [moment.assign(velocity), var.assign(new_p)]


class RMSprop(Optimizer):
    """a = rho * a + (1 - rho) * g^2;  p -= lr * g / (sqrt(a) + epsilon)."""

    _slots = ("accumulator",)
    _hyper = ("rho", "decay", "epsilon")

    def __init__(self, lr=0.001, rho=0.9, epsilon=None, decay=0., *, learning_rate=None, clipnorm=None,
                 clipvalue=None):
        super().__init__(lr, learning_rate, clipnorm, clipvalue, decay)
        self.rho = float(rho)
        self.epsilon = _epsilon(epsilon)

    def _keras_update(self, var, p, g, slots, lr, t):
        accumulator = slots["accumulator"]
        new_a = accumulator.value() * self.rho + ew.square(g) * (1.0 - self.rho)
        return [accumulator.assign(new_a), var.assign(p - lr * g / (ew.sqrt(new_a) + self.epsilon))]


class Adagrad(Optimizer):
    """a += g^2 (from 0, unlike gc.train.Adagrad's 0.1);  p -= lr * g / (sqrt(a) + epsilon)."""

    _slots = ("accumulator",)
    _hyper = ("decay", "epsilon")

    def __init__(self, lr=0.01, epsilon=None, decay=0., *, learning_rate=None, clipnorm=None, clipvalue=None):
        super().__init__(lr, learning_rate, clipnorm, clipvalue, decay)
        self.epsilon = _epsilon(epsilon)

    def _keras_update(self, var, p, g, slots, lr, t):
        accumulator = slots["accumulator"]
        new_a = accumulator.value() + ew.square(g)
        return [accumulator.assign(new_a), var.assign(p - lr * g / (ew.sqrt(new_a) + self.epsilon))]


class Adadelta(Optimizer):
    """a = rho*a + (1-rho)*g^2;  u = g * sqrt(d + eps) / sqrt(a + eps);  p -= lr * u;
    d = rho*d + (1-rho)*u^2. Keras's default lr is 1.0 (the method has no rate of its own)."""

    _slots = ("accumulator", "delta_accumulator")
    _hyper = ("rho", "decay", "epsilon")

    def __init__(self, lr=1.0, rho=0.95, epsilon=None, decay=0., *, learning_rate=None, clipnorm=None,
                 clipvalue=None):
        super().__init__(lr, learning_rate, clipnorm, clipvalue, decay)
        self.rho = float(rho)
        self.epsilon = _epsilon(epsilon)

    def _keras_update(self, var, p, g, slots, lr, t):
        accumulator, delta = slots["accumulator"], slots["delta_accumulator"]
        rho, eps = self.rho, self.epsilon
        new_a = accumulator.value() * rho + ew.square(g) * (1.0 - rho)
        update = g * ew.sqrt(delta.value() + eps) / ew.sqrt(new_a + eps)
        new_delta = delta.value() * rho + ew.square(update) * (1.0 - rho)
        return [accumulator.assign(new_a), var.assign(p - lr * update), delta.assign(new_delta)]


class Adam(Optimizer):
    """lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t);  m = beta_1*m + (1-beta_1)*g;
    v = beta_2*v + (1-beta_2)*g^2;  p -= lr_t * m / (sqrt(v) + epsilon)  (AMSGrad: with
    vhat = max(vhat, v) in place of v)."""

    _slots = ("m", "v", "vhat")
    _hyper = ("beta_1", "beta_2", "decay", "epsilon", "amsgrad")

    def __init__(self, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=None, decay=0., amsgrad=False, *,
                 learning_rate=None, clipnorm=None, clipvalue=None):
        super().__init__(lr, learning_rate, clipnorm, clipvalue, decay)
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon = _epsilon(epsilon)
        self.amsgrad = bool(amsgrad)
        if not self.amsgrad:
            self._slots = ("m", "v")

    def _keras_update(self, var, p, g, slots, lr, t):
        b1, b2 = self.beta_1, self.beta_2
        lr_t = lr * (ew.sqrt(1.0 - ew.pow(b2, t)) / (1.0 - ew.pow(b1, t)))
        m, v = slots["m"], slots["v"]
        m_t = m.value() * b1 + g * (1.0 - b1)
        v_t = v.value() * b2 + ew.square(g) * (1.0 - b2)
        writes = [m.assign(m_t), v.assign(v_t)]
        if self.amsgrad:
            vhat = slots["vhat"]
            v_t = ew.maximum(vhat.value(), v_t)
            writes.append(vhat.assign(v_t))
        writes.append(var.assign(p - lr_t * m_t / (ew.sqrt(v_t) + self.epsilon)))
        return writes


class Adamax(Optimizer):
    """Adam with the infinity norm: m = beta_1*m + (1-beta_1)*g;  u = max(beta_2*u, |g|);
    p -= lr / (1 - beta_1^t) * m / (u + epsilon)."""

    _slots = ("m", "u")
    _hyper = ("beta_1", "beta_2", "decay", "epsilon")

    def __init__(self, lr=0.002, beta_1=0.9, beta_2=0.999, epsilon=None, decay=0., *, learning_rate=None,
                 clipnorm=None, clipvalue=None):
        super().__init__(lr, learning_rate, clipnorm, clipvalue, decay)
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon = _epsilon(epsilon)

    def _keras_update(self, var, p, g, slots, lr, t):
        lr_t = lr / (1.0 - ew.pow(self.beta_1, t))
        m, u = slots["m"], slots["u"]
        m_t = m.value() * self.beta_1 + g * (1.0 - self.beta_1)
        u_t = ew.maximum(u.value() * self.beta_2, ew.abs(g))
        return [m.assign(m_t), u.assign(u_t), var.assign(p - lr_t * m_t / (u_t + self.epsilon))]


class Nadam(Optimizer):
    """Adam with Nesterov momentum and Keras's warming momentum schedule:
    mu_t = beta_1 * (1 - 0.5 * 0.96^(t * schedule_decay)); the running product of the mu's
    (``m_schedule``, a float64 Variable) is state, saved among ``weights`` (Keras 2.2.4
    left it out, so a reloaded Nadam restarted its schedule)."""

    _slots = ("m", "v")
    _hyper = ("beta_1", "beta_2", "epsilon", "schedule_decay")

    def __init__(self, lr=0.002, beta_1=0.9, beta_2=0.999, epsilon=None, schedule_decay=0.004, *,
                 learning_rate=None, clipnorm=None, clipvalue=None):
        super().__init__(lr, learning_rate, clipnorm, clipvalue)
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon = _epsilon(epsilon)
        self.schedule_decay = float(schedule_decay)
        self._m_schedule = None

    def _make_extra_variables(self):
        self._m_schedule = Variable(constant(1.0, dtype=dt.float64), name=f"{self._name}/m_schedule",
                                    trainable=False)

    def _extra_weights(self):
        return [self._m_schedule]

    def _step_inputs(self, graph, pairs):
        step = super()._step_inputs(graph, pairs)
        # the schedule in float64 whatever the variables' dtype: it is a product of many
        # factors near 1, and the Variable keeping it is float64
        t = ew.cast(step["iterations"], dt.float64) + 1.0
        cache_t = (1.0 - ew.pow(0.96, t * self.schedule_decay) * 0.5) * self.beta_1
        cache_next = (1.0 - ew.pow(0.96, (t + 1.0) * self.schedule_decay) * 0.5) * self.beta_1
        m_schedule_new = self._m_schedule.value() * cache_t
        step["schedule"] = (cache_t, cache_next, m_schedule_new, m_schedule_new * cache_next)
        return step

    def _finish(self, step):
        return super()._finish(step) + [self._m_schedule.assign(step["schedule"][2])]

    def _update(self, var, grad, slots, step):
        _, iterations = self._in_dtype(step, var.dtype)
        schedule = [ew.cast(s, var.dtype) for s in step["schedule"]]
        return group(*self._nadam_update(var, grad, slots, iterations + 1.0, *schedule))

    def _nadam_update(self, var, g, slots, t, cache_t, cache_next, m_schedule_new, m_schedule_next):
        # Nadam has no decay: the rate is the lr Variable as set
        lr = ew.cast(self._lr_variable.value(), var.dtype)
        b1, b2 = self.beta_1, self.beta_2
        m, v = slots["m"], slots["v"]
        g_prime = g / (1.0 - m_schedule_new)
        m_t = m.value() * b1 + g * (1.0 - b1)
        m_t_prime = m_t / (1.0 - m_schedule_next)
        v_t = v.value() * b2 + ew.square(g) * (1.0 - b2)
        v_t_prime = v_t / (1.0 - ew.pow(b2, t))
        m_t_bar = (1.0 - cache_t) * g_prime + cache_next * m_t_prime
        return [m.assign(m_t), v.assign(v_t),
                var.assign(var.value() - lr * m_t_bar / (ew.sqrt(v_t_prime) + self.epsilon))]


CLASSES = {cls.__name__.lower(): cls for cls in (SGD, RMSprop, Adagrad, Adadelta, Adam, Adamax, Nadam)}
# Keras's lower-case aliases
sgd, rmsprop, adagrad, adadelta, adam, adamax, nadam = SGD, RMSprop, Adagrad, Adadelta, Adam, Adamax, Nadam


def serialize(optimizer) -> dict:
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict):
    """``{"class_name": ..., "config": {...}}`` -> the optimizer (class names in any case)."""
    class_name = config.get("class_name") if isinstance(config, dict) else None
    cls = CLASSES.get(str(class_name).lower())
    if cls is None:
        raise ValueError(f"keras.optimizers.deserialize at {user_location()}: unknown optimizer "
                         f"{class_name!r}; expected one of {sorted(CLASSES)}")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """A name ('adam', 'sgd', ...) -> that optimizer with Keras's defaults; a dict ->
    ``deserialize``; an optimizer (Keras or gc.train) passes through."""
    if identifier is None:
        raise ValueError(f"keras.optimizers.get at {user_location()}: expected an optimizer name, a config dict or "
                         "an optimizer, got None")
    return resolve("optimizer", identifier, CLASSES, make=lambda cls: cls(), from_config=deserialize,
                   accept=lambda x: isinstance(x, _TrainOptimizer), key=str.lower)
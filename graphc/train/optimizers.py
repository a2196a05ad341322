"""Optimizers in the TensorFlow 1.x mould: ``compute_gradients``, ``apply_gradients`` and
``minimize`` add update ops to the graph; slot variables (momentum, moments) are ordinary
graph Variables, so they are initialized, saved and restored like any other.

Every update reads the values from before the step (a read precedes the writes to the same
variable in a run), so ``sess.run([train_op, loss])`` reports the loss the step started from.
"""
from __future__ import annotations

from typing import Optional

from .. import dtypes as dt
from ..errors import GraphcError
from ..graph import GraphKeys, Operation, Tensor, get_default_graph, user_location
from ..ops import elementwise as ew
from ..ops.control import group
from ..ops.source import convert_to_tensor, zeros
from ..ops.state import Variable, trainable_variables
from ..autodiff import gradients
from .clipping import clip_by_global_norm


class NoGradientsError(GraphcError, ValueError):
    """None of the variables an optimizer was asked to train has a gradient."""


def get_global_step(graph=None) -> Optional[Variable]:
    found = (graph or get_default_graph()).get_collection(GraphKeys.GLOBAL_STEP)
    return found[0] if found else None


def get_or_create_global_step(graph=None) -> Variable:
    """The graph's int64 ``global_step`` variable (created at 0 on first use)."""
    graph = graph or get_default_graph()
    step = get_global_step(graph)
    if step is None:
        with graph.as_default(), graph.name_scope(None):
            step = Variable(zeros((), dt.int64), name="global_step", trainable=False)
        graph.add_to_collection(GraphKeys.GLOBAL_STEP, step)
    return step


class Optimizer:
    """Base class. Subclasses define ``_slots`` (names of per-variable state) and
    ``_update(var, grad, slots, step)`` returning the update op for one variable.

    Options every optimizer takes (applied in this order, as Caffe's solvers do):
      * ``weight_decay``: L2 decay added to each gradient (``g + weight_decay * var``), as
        Caffe's solvers do;
      * ``clip_norm``: rescale all gradients together so their global norm is at most this;
      * ``clip_value``: clip every gradient element into ``[-clip_value, clip_value]``.
    """

    _slots: tuple = ()

    def __init__(self, learning_rate, name: str, weight_decay: float = 0.0, clip_norm: Optional[float] = None,
                 clip_value: Optional[float] = None):
        self._learning_rate = learning_rate
        self._name = name
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self._slot_vars: dict = {}
        self._extra_vars: dict = {}

    def get_name(self) -> str:
        return self._name

    # -- gradients ------------------------------------------------------------------------
    def compute_gradients(self, loss, var_list=None, grad_loss=None, stop_gradients=None) -> list:
        """``[(gradient or None, variable)]`` for each variable in ``var_list`` (default: the
        graph's trainable variables)."""
        loss = convert_to_tensor(loss)
        if var_list is None:
            var_list = trainable_variables(loss.graph)
        var_list = list(var_list)
        if not var_list:
            raise NoGradientsError(f"{self._name}.compute_gradients at {user_location()}: there are no "
                                   "trainable variables to optimize")
        grads = gradients(loss, var_list, grad_ys=None if grad_loss is None else [grad_loss],
                          stop_gradients=stop_gradients)
        return list(zip(grads, var_list))

    def _prepare(self, grads_and_vars):
        pairs = [(g, v) for g, v in grads_and_vars]
        for g, v in pairs:
            if not isinstance(v, Variable):
                raise TypeError(f"{self._name}: expected (gradient, gc.Variable) pairs, got a {type(v).__name__}")
        if all(g is None for g, _ in pairs):
            names = ", ".join(f"'{v.var_name}'" for _, v in pairs)
            raise NoGradientsError(
                f"{self._name} at {user_location()}: no gradients for any variable ({names}); check that the "
                "loss depends on them and that nothing stops the gradient on the way")
        pairs = [(convert_to_tensor(g), v) for g, v in pairs if g is not None]
        if self.clip_value is not None:
            pairs = [(ew.clip_by_value(g, -self.clip_value, self.clip_value), v) for g, v in pairs]
        if self.clip_norm is not None:
            clipped, _ = clip_by_global_norm([g for g, _ in pairs], self.clip_norm)
            pairs = list(zip(clipped, [v for _, v in pairs]))
        if self.weight_decay:
            pairs = [(g + v.value() * self.weight_decay, v) for g, v in pairs]
        return pairs

    # -- state -------------------------------------------------------------------------------
    def _slot(self, var: Variable, slot: str, initial=0.0) -> Variable:
        key = (var, slot)
        if key not in self._slot_vars:
            graph = var.graph
            name = f"{var.var_name}/{self._name}" + ("" if slot == self._slots[0] else f"_{self._slots.index(slot)}")
            with graph.as_default(), graph.name_scope(None), graph.control_dependencies(None):
                init = zeros(tuple(var.shape), var.dtype) if initial == 0 else \
                    ew.add(zeros(tuple(var.shape), var.dtype), initial)
                self._slot_vars[key] = Variable(init, name=name, trainable=False)
        return self._slot_vars[key]

    def get_slot(self, var: Variable, name: str) -> Optional[Variable]:
        return self._slot_vars.get((var, name))

    def get_slot_names(self) -> list:
        return list(self._slots)

    def variables(self) -> list:
        return list(self._slot_vars.values()) + list(self._extra_vars.values())

    def _non_slot(self, graph, name: str, initial: float, dtype) -> Variable:
        if name not in self._extra_vars:
            with graph.as_default(), graph.name_scope(None), graph.control_dependencies(None):
                self._extra_vars[name] = Variable(zeros((), dtype) + initial, name=f"{self._name}/{name}",
                                                  trainable=False)
        return self._extra_vars[name]

    def _lr(self, dtype) -> Tensor:
        lr = convert_to_tensor(self._learning_rate) if isinstance(self._learning_rate, (Tensor, Variable)) else None
        if lr is None:
            return convert_to_tensor(float(self._learning_rate), dtype=dtype)
        return lr if lr.dtype is dtype else ew.cast(lr, dtype)

    # -- applying -------------------------------------------------------------------------------
    def apply_gradients(self, grads_and_vars, global_step: Optional[Variable] = None,
                        name: Optional[str] = None) -> Operation:
        pairs = self._prepare(grads_and_vars)
        graph = pairs[0][1].graph
        with graph.as_default(), graph.name_scope(name or self._name) as scope:
            for _, v in pairs:  # create every slot before any update reads them
                for s in self._slots:
                    self._slot(v, s, self._slot_initial(s))
            step = self._step_inputs(graph, pairs)
            updates = [self._update(v, g, {s: self._slot(v, s) for s in self._slots}, step) for g, v in pairs]
            updates += self._finish(step)
            if global_step is not None:
                with graph.control_dependencies(updates):  # the step counts finished updates
                    updates = [global_step.assign_add(1)]
        # TF1 names the training op as its scope ("Adam", or minimize's name=): found by
        # graph.get_operation_by_name(name) after a meta graph import
        op_name = scope.rstrip("/")
        with graph.as_default(), graph.name_scope(None):
            if op_name in graph._by_name:  # a second minimize(name=...) of the same name
                return group(*updates, name=op_name)
            with graph.control_dependencies(updates):
                return graph.create_op("no_op", (), None, op_name, exact_name=True)

    def minimize(self, loss, global_step: Optional[Variable] = None, var_list=None, name: Optional[str] = None,
                 grad_loss=None) -> Operation:
        """compute_gradients then apply_gradients; returns the training op."""
        grads_and_vars = self.compute_gradients(loss, var_list=var_list, grad_loss=grad_loss)
        return self.apply_gradients(grads_and_vars, global_step=global_step, name=name)

    # -- for subclasses -------------------------------------------------------------------------
    def _slot_initial(self, slot: str) -> float:
        return 0.0

    def _step_inputs(self, graph, pairs):
        return None

    def _finish(self, step) -> list:
        return []

    def _update(self, var: Variable, grad: Tensor, slots: dict, step):
        raise NotImplementedError


class GradientDescent(Optimizer):
    """var -= lr * g"""

    def __init__(self, learning_rate, name: str = "GradientDescent", **options):
        super().__init__(learning_rate, name, **options)

    def _update(self, var, grad, slots, step):
        return var.assign_sub(self._lr(var.dtype) * grad)


class Momentum(Optimizer):
    """accum = momentum * accum + g;  var -= lr * accum  (Nesterov: var -= lr * (g + momentum * accum))"""

    _slots = ("momentum",)

    def __init__(self, learning_rate, momentum: float = 0.9, use_nesterov: bool = False, name: str = "Momentum",
                 **options):
        super().__init__(learning_rate, name, **options)
        self.momentum = momentum
        self.use_nesterov = use_nesterov

    def _update(self, var, grad, slots, step):
        accum = slots["momentum"]
        new_accum = accum.value() * self.momentum + grad
        set_accum = accum.assign(new_accum)
        direction = grad + new_accum * self.momentum if self.use_nesterov else new_accum
        return group(set_accum, var.assign_sub(self._lr(var.dtype) * direction))


class Adagrad(Optimizer):
    """accum += g^2;  var -= lr * g / (sqrt(accum) + epsilon)"""

    _slots = ("accumulator",)

    def __init__(self, learning_rate, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7,
                 name: str = "Adagrad", **options):
        super().__init__(learning_rate, name, **options)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def _slot_initial(self, slot):
        return self.initial_accumulator_value

    def _update(self, var, grad, slots, step):
        acc = slots["accumulator"]
        new_acc = acc.value() + grad * grad
        return group(acc.assign(new_acc),
                     var.assign_sub(self._lr(var.dtype) * grad / (ew.sqrt(new_acc) + self.epsilon)))


class AdaDelta(Optimizer):
    """accum = rho*accum + (1-rho)*g^2; update = sqrt(accum_update+eps)/sqrt(accum+eps)*g;
    accum_update = rho*accum_update + (1-rho)*update^2; var -= lr * update"""

    _slots = ("accum", "accum_update")

    def __init__(self, learning_rate=0.001, rho: float = 0.95, epsilon: float = 1e-8, name: str = "Adadelta",
                 **options):
        super().__init__(learning_rate, name, **options)
        self.rho = rho
        self.epsilon = epsilon

    def _update(self, var, grad, slots, step):
        acc, acc_up = slots["accum"], slots["accum_update"]
        rho, eps = self.rho, self.epsilon
        new_acc = acc.value() * rho + grad * grad * (1 - rho)
        update = ew.sqrt(acc_up.value() + eps) / ew.sqrt(new_acc + eps) * grad
        new_acc_up = acc_up.value() * rho + update * update * (1 - rho)
        return group(acc.assign(new_acc), acc_up.assign(new_acc_up), var.assign_sub(self._lr(var.dtype) * update))


class RMSProp(Optimizer):
    """ms = decay*ms + (1-decay)*g^2; (centered: mg = decay*mg + (1-decay)*g, denom = ms - mg^2);
    mom = momentum*mom + lr*g/sqrt(denom + epsilon); var -= mom"""

    _slots = ("rms", "momentum", "mg")

    def __init__(self, learning_rate, decay: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-10,
                 centered: bool = False, name: str = "RMSProp", **options):
        super().__init__(learning_rate, name, **options)
        self.decay = decay
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered
        if not centered:
            self._slots = ("rms", "momentum")

    def _update(self, var, grad, slots, step):
        ms, mom = slots["rms"], slots["momentum"]
        d = self.decay
        new_ms = ms.value() * d + grad * grad * (1 - d)
        writes = [ms.assign(new_ms)]
        denom = new_ms
        if self.centered:
            mg = slots["mg"]
            new_mg = mg.value() * d + grad * (1 - d)
            writes.append(mg.assign(new_mg))
            denom = new_ms - new_mg * new_mg
        new_mom = mom.value() * self.momentum + self._lr(var.dtype) * grad / ew.sqrt(denom + self.epsilon)
        writes.append(mom.assign(new_mom))
        writes.append(var.assign_sub(new_mom))
        return group(*writes)


class Adam(Optimizer):
    """t += 1; lr_t = lr*sqrt(1-beta2^t)/(1-beta1^t); m = beta1*m + (1-beta1)*g;
    v = beta2*v + (1-beta2)*g^2; (AMSGrad: vhat = max(vhat, v), used for v);
    var -= lr_t * m / (sqrt(v) + epsilon)"""

    _slots = ("m", "v", "vhat")

    def __init__(self, learning_rate=0.001, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
                 amsgrad: bool = False, name: str = "Adam", **options):
        super().__init__(learning_rate, name, **options)
        self.beta1, self.beta2, self.epsilon, self.amsgrad = beta1, beta2, epsilon, amsgrad
        if not amsgrad:
            self._slots = ("m", "v")

    def _step_inputs(self, graph, pairs):
        t = self._non_slot(graph, "t", 0.0, dt.float64)
        return t, t.value() + 1.0

    def _finish(self, step):
        t, t_next = step
        return [t.assign(t_next)]

    def _update(self, var, grad, slots, step):
        _, t_next = step
        b1, b2 = self.beta1, self.beta2
        correction = ew.sqrt(1.0 - ew.pow(b2, t_next)) / (1.0 - ew.pow(b1, t_next))
        lr_t = self._lr(var.dtype) * ew.cast(correction, var.dtype)
        m, v = slots["m"], slots["v"]
        new_m = m.value() * b1 + grad * (1 - b1)
        new_v = v.value() * b2 + grad * grad * (1 - b2)
        writes = [m.assign(new_m), v.assign(new_v)]
        if self.amsgrad:
            vhat = slots["vhat"]
            new_v = ew.maximum(vhat.value(), new_v)
            writes.append(vhat.assign(new_v))
        writes.append(var.assign_sub(lr_t * new_m / (ew.sqrt(new_v) + self.epsilon)))
        return group(*writes)


# TensorFlow 1.x names
GradientDescentOptimizer = GradientDescent
SGD = GradientDescent
MomentumOptimizer = Momentum
AdagradOptimizer = Adagrad
AdadeltaOptimizer = AdaDelta
Adadelta = AdaDelta
RMSPropOptimizer = RMSProp
AdamOptimizer = Adam

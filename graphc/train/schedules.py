"""Learning-rate schedules as graph tensors driven by the global step.

Caffe's policies (``caffe_learning_rate``): fixed, step, exp, inv, multistep, poly, sigmoid;
and TensorFlow's exponential_decay, piecewise_constant, cosine_decay, polynomial_decay,
inverse_time_decay. ``iter`` below is the global step.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

from .. import dtypes as dt
from ..errors import GraphcError
from ..graph import user_location
from ..ops import elementwise as ew
from ..ops import reduce
from ..ops import shape as sh
from ..ops.source import constant, convert_to_tensor


class ScheduleError(GraphcError, ValueError):
    pass


def _step(global_step, dtype=dt.float32):
    step = convert_to_tensor(global_step)
    return ew.cast(step, dtype)


def caffe_learning_rate(policy: str, base_lr: float, global_step, gamma: Optional[float] = None,
                        power: Optional[float] = None, stepsize: Optional[int] = None,
                        stepvalues: Optional[Sequence[int]] = None, max_iter: Optional[int] = None,
                        dtype=dt.float32):
    """Caffe's ``lr_policy``:

    - fixed:     base_lr
    - step:      base_lr * gamma ^ floor(iter / stepsize)
    - exp:       base_lr * gamma ^ iter
    - inv:       base_lr * (1 + gamma * iter) ^ (-power)
    - multistep: base_lr * gamma ^ (number of stepvalues <= iter)
    - poly:      base_lr * (1 - iter / max_iter) ^ power   (0 after max_iter)
    - sigmoid:   base_lr / (1 + exp(-gamma * (iter - stepsize)))
    """
    need = {"step": ("gamma", "stepsize"), "exp": ("gamma",), "inv": ("gamma", "power"),
            "multistep": ("gamma", "stepvalues"), "poly": ("power", "max_iter"), "sigmoid": ("gamma", "stepsize"),
            "fixed": ()}
    if policy not in need:
        raise ScheduleError(f"caffe_learning_rate at {user_location()}: unknown policy {policy!r}; "
                            f"choose one of {', '.join(need)}")
    given = dict(gamma=gamma, power=power, stepsize=stepsize, stepvalues=stepvalues, max_iter=max_iter)
    missing = [k for k in need[policy] if given[k] is None]
    if missing:
        raise ScheduleError(f"caffe_learning_rate at {user_location()}: policy {policy!r} needs "
                            f"{', '.join(missing)}")
    it = _step(global_step, dtype)
    lr = constant(base_lr, dtype=dtype)
    if policy == "fixed":
        return lr + it * 0.0
    if policy == "step":
        return lr * ew.pow(gamma, ew.floor(it / float(stepsize)))
    if policy == "exp":
        return lr * ew.pow(gamma, it)
    if policy == "inv":
        return lr * ew.pow(it * gamma + 1.0, -float(power))
    if policy == "multistep":
        passed = reduce.reduce_sum(ew.cast(sh.expand_dims(it, 0) >= constant(list(stepvalues), dtype=dtype), dtype))
        return lr * ew.pow(gamma, passed)
    if policy == "poly":
        return lr * ew.pow(ew.maximum(1.0 - it / float(max_iter), 0.0), float(power))
    return lr * ew.sigmoid((it - float(stepsize)) * gamma)


def exponential_decay(learning_rate, global_step, decay_steps, decay_rate, staircase: bool = False,
                      dtype=dt.float32):
    """learning_rate * decay_rate ^ (step / decay_steps), the exponent floored if staircase."""
    p = _step(global_step, dtype) / float(decay_steps)
    if staircase:
        p = ew.floor(p)
    return constant(learning_rate, dtype=dtype) * ew.pow(decay_rate, p)


def inverse_time_decay(learning_rate, global_step, decay_steps, decay_rate, staircase: bool = False,
                       dtype=dt.float32):
    """learning_rate / (1 + decay_rate * step / decay_steps)."""
    p = _step(global_step, dtype) / float(decay_steps)
    if staircase:
        p = ew.floor(p)
    return constant(learning_rate, dtype=dtype) / (p * decay_rate + 1.0)


def polynomial_decay(learning_rate, global_step, decay_steps, end_learning_rate=0.0001, power=1.0,
                     dtype=dt.float32):
    """(lr - end) * (1 - min(step, decay_steps) / decay_steps) ^ power + end."""
    step = ew.minimum(_step(global_step, dtype), float(decay_steps))
    return (learning_rate - end_learning_rate) * ew.pow(1.0 - step / float(decay_steps), power) \
        + end_learning_rate


def piecewise_constant(x, boundaries: Sequence, values: Sequence, dtype=dt.float32):
    """values[0] while x <= boundaries[0], values[1] while x <= boundaries[1], ..., then values[-1]."""
    if len(values) != len(boundaries) + 1:
        raise ScheduleError(f"piecewise_constant at {user_location()}: needs one more value than boundaries, "
                            f"got {len(values)} values and {len(boundaries)} boundaries")
    if any(later <= earlier for earlier, later in zip(boundaries, boundaries[1:])):
        raise ScheduleError(f"piecewise_constant at {user_location()}: boundaries must increase, got {boundaries}")
    step = convert_to_tensor(x)
    out = constant(values[-1], dtype=dtype)
    for bound, value in reversed(list(zip(boundaries, values[:-1]))):
        out = ew.where(step <= bound, constant(value, dtype=dtype), out)
    return out


def cosine_decay(learning_rate, global_step, decay_steps, alpha: float = 0.0, dtype=dt.float32):
    """lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps)) + alpha)."""
    step = ew.minimum(_step(global_step, dtype), float(decay_steps))
    cosine = (ew.cos(step * (math.pi / float(decay_steps))) + 1.0) * 0.5
    return constant(learning_rate, dtype=dtype) * (cosine * (1.0 - alpha) + alpha)

"""Sampling built on the counter-based uniform draws of ``ops/random.py``: TF1's
``random_shuffle``, ``multinomial`` / ``random.categorical`` and the log-uniform candidate
sampler of the sampled losses.

They are compositions of ops that have kernels on every target (random_uniform, argsort,
top_k, argmax, gather), so they draw the same numbers on the reference, the CPU, CUDA and in
native libraries (a seed reproduces them everywhere), but not TensorFlow's numbers:

* ``random_shuffle``: the permutation that sorts one float64 uniform key per row (argsort,
  stable; keys tie with probability about n^2 / 2^54).
* ``multinomial``: the Gumbel-max trick, ``argmax(logits + G)`` with ``G = -log(-log(u))``
  drawn per (row, sample, class): an exact draw from ``softmax(logits)`` (a logit of ``-inf``
  is never drawn). It costs ``batch * num_samples * classes`` draws.
* ``log_uniform_candidate_sampler``: with ``unique=False``, TF1's own formula per draw,
  ``floor(exp(u * log(range_max + 1))) - 1 (mod range_max)``. With ``unique=True`` (the
  losses' default) TF1 draws with replacement and rejects repeats until ``num_sampled``
  distinct classes; that process picks, at each step, a class not yet picked with
  probability proportional to P(class): sampling without replacement. graphc draws that same
  distribution with the Gumbel-top-k trick, ``top_k(log P + G, num_sampled)`` over all
  ``range_max`` classes (``range_max`` draws per run; the order of the result is the order
  of picking). The expected counts use TF1's formula ``-expm1(num_tries * log1p(-P))``,
  where TF1's ``num_tries`` is the number of draws its rejection loop made; there is no such
  loop here, so graphc uses its expectation given the classes picked and their order,
  ``sum_j 1 / (1 - P(s_1) - ... - P(s_{j-1}))`` (a float, not an int). TF1 uses
  ``P * num_sampled`` when no draw was rejected; graphc always uses the formula.
"""
from __future__ import annotations

import numbers
from typing import Optional

import numpy as np

from .. import dtypes as dt
from ..dtypes import as_dtype
from ..graph import Tensor
from ._build import dtype_error, is_symbolic, shape_error
from .random import SpecWithSources, _standard
from .source import constant, convert_to_tensor


def _uniform64(op: str, spec, sources, seed, name, graph) -> Tensor:
    return _standard("random_uniform", SpecWithSources(tuple(spec), tuple(sources)), dt.float64, seed, name,
                     graph=graph)


def _dim_of(x: Tensor, axis: int, sources: list, first_input: int = 0):
    d = x.shape[axis]
    if d is not None:
        return int(d)
    if x not in sources:
        sources.append(x)
    return ("dim", first_input + sources.index(x), axis)


def _gumbel(u: Tensor) -> Tensor:
    from .elementwise import log, negative
    return negative(log(negative(log(u))))


def _python_int(op: str, value, what: str) -> int:
    if is_symbolic(value):
        from .cumulative import _constant_of
        c = _constant_of(convert_to_tensor(value))
        if c is None or c.ndim != 0:
            raise shape_error(op, f"{what} must be a Python int or a constant scalar (it sets an output size, "
                                  f"which graphc fixes before a run), got the computed tensor "
                                  f"'{convert_to_tensor(value).name}'")
        value = c.item()
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise shape_error(op, f"{what} must be a non-negative int, got {value!r}")
    return int(value)


# --- random_shuffle -----------------------------------------------------------------------------------
def random_shuffle(value, seed=None, name: Optional[str] = None) -> Tensor:
    """TF1's ``tf.random_shuffle``: ``value`` with its first dim in a random order (the same
    permutation for every slice), a new order each run; a scalar comes back unchanged."""
    from .shape import gather
    from .sorting import argsort
    x = convert_to_tensor(value)
    if x.ndim == 0:
        from .control import identity
        return identity(x, name=name or "RandomShuffle")
    sources: list = []
    spec = [_dim_of(x, 0, sources)]
    keys = _uniform64("random_shuffle", spec, sources, seed, "random_shuffle_keys", x.graph)
    return gather(x, argsort(keys, axis=0), name=name or "RandomShuffle")


# --- multinomial / categorical ----------------------------------------------------------------------------
def multinomial(logits, num_samples, seed=None, name: Optional[str] = None, output_dtype=dt.int64) -> Tensor:
    """TF1's ``tf.multinomial``: ``[batch, num_samples]`` class indices, each drawn from
    ``softmax(logits[b])`` (``logits`` is ``[batch, num_classes]``, unnormalized log
    probabilities). Drawn with the Gumbel-max trick (module doc)."""
    from .elementwise import add, cast
    from .reduce import argmax
    from .shape import expand_dims
    op = "multinomial"
    x = convert_to_tensor(logits)
    if not x.dtype.is_floating:
        raise dtype_error(op, f"logits '{x.name}' must be floating, got {x.dtype.name}")
    if x.ndim != 2:
        raise shape_error(op, f"logits '{x.name}' must be 2-D [batch_size, num_classes], got shape {x.shape}")
    if x.shape[1] == 0:
        raise shape_error(op, f"logits '{x.name}' has no classes (shape {x.shape})")
    k = _python_int(op, num_samples, "num_samples")
    out_dtype = as_dtype(output_dtype)
    if out_dtype not in (dt.int32, dt.int64):
        raise dtype_error(op, f"output_dtype must be int32 or int64, got {out_dtype.name}")
    sources: list = []
    spec = [_dim_of(x, 0, sources), k, _dim_of(x, 1, sources)]
    u = _uniform64(op, spec, sources, seed, "multinomial_draws", x.graph)
    scores = add(expand_dims(cast(x, dt.float64), 1), _gumbel(u))
    return cast(argmax(scores, axis=2, output_type=out_dtype), out_dtype, name=name or "Multinomial")


def categorical(logits, num_samples, dtype=None, seed=None, name: Optional[str] = None) -> Tensor:
    """TF1's ``tf.random.categorical`` (1.13+): ``multinomial`` with ``dtype`` (default int64)."""
    return multinomial(logits, num_samples, seed=seed, name=name or "categorical",
                       output_dtype=dt.int64 if dtype is None else dtype)


# --- the log-uniform candidate sampler ----------------------------------------------------------------------
def log_uniform_probability(classes: Tensor, range_max: int) -> Tensor:
    """TF1's LogUniformSampler probability, ``log((c + 2) / (c + 1)) / log(range_max + 1)``,
    as float64."""
    from .elementwise import cast, log1p, multiply, reciprocal
    c = cast(classes, dt.float64)
    return multiply(log1p(reciprocal(c + 1.0)), 1.0 / float(np.log(range_max + 1.0)))


def log_uniform_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max, seed=None,
                                  name: Optional[str] = None):
    """TF1's ``tf.nn.log_uniform_candidate_sampler``: ``(sampled_candidates,
    true_expected_count, sampled_expected_count)``, drawn from the Zipfian distribution
    ``P(c) = log((c + 2) / (c + 1)) / log(range_max + 1)`` over ``[0, range_max)``.

    ``sampled_candidates`` is int64 ``[num_sampled]``; the expected counts (float32, shaped
    like ``true_classes`` and like the candidates) say how many times each class is expected
    among the candidates. ``unique=True`` samples without replacement; how, and how the
    expected counts then differ from TF1's, is in this module's doc."""
    from .control import identity, stop_gradient
    from .cumulative import cumsum
    from .elementwise import cast, exp, expm1, floor, floormod, log, log1p, multiply, reciprocal, subtract
    from .reduce import reduce_sum
    from .sorting import top_k
    op = "log_uniform_candidate_sampler"
    t = convert_to_tensor(true_classes)
    if not t.dtype.is_integer:
        raise dtype_error(op, f"true_classes '{t.name}' must be integer, got {t.dtype.name}")
    num_true = _python_int(op, num_true, "num_true")
    num_sampled = _python_int(op, num_sampled, "num_sampled")
    range_max = _python_int(op, range_max, "range_max")
    if t.ndim != 2 or t.shape[1] not in (None, num_true):
        raise shape_error(op, f"true_classes '{t.name}' must be [batch_size, num_true={num_true}], got shape "
                              f"{t.shape}")
    if range_max < 1:
        raise shape_error(op, "range_max must be at least 1")
    if unique and num_sampled > range_max:
        raise shape_error(op, f"cannot draw {num_sampled} unique classes from range_max={range_max}")
    graph = t.graph
    if not unique:
        u = _uniform64(op, [num_sampled], [], seed, "log_uniform_draws", graph)
        drawn = subtract(floor(exp(multiply(u, float(np.log(range_max + 1.0))))), 1.0)
        sampled = floormod(cast(drawn, dt.int64), constant(np.int64(range_max), graph=graph))
        tries = float(num_sampled)
    else:
        classes = constant(np.arange(range_max, dtype=np.int64), graph=graph)
        u = _uniform64(op, [range_max], [], seed, "log_uniform_draws", graph)
        keys = log(log_uniform_probability(classes, range_max)) + _gumbel(u)
        _, picked = top_k(keys, k=num_sampled)
        sampled = cast(picked, dt.int64)
        p_sampled = log_uniform_probability(sampled, range_max)
        before = cumsum(p_sampled, exclusive=True)
        tries = reduce_sum(reciprocal(subtract(1.0, before)))

    def expected(classes):
        p = log_uniform_probability(classes, range_max)
        if not unique:
            return cast(multiply(p, tries), dt.float32)
        return cast(-expm1(multiply(tries, log1p(-p))), dt.float32)

    base = name or "LogUniformCandidateSampler"
    sampled = stop_gradient(sampled)
    return (identity(sampled, name=base),
            identity(stop_gradient(expected(t)), name=base + "_true_expected_count"),
            identity(stop_gradient(expected(sampled)), name=base + "_sampled_expected_count"))

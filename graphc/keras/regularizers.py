"""``keras.regularizers``: weight penalties. A regularizer is called on a weight and returns
a scalar tensor, which a layer adds to the model's loss."""
from __future__ import annotations

from ..graph import user_location
from ..ops import elementwise as ew
from ..ops.reduce import reduce_sum
from ..ops.source import constant, convert_to_tensor
from . import lookup


class Regularizer:
    """Base class: ``regularizer(weight) -> scalar tensor``."""

    def __call__(self, x):
        return constant(0.0, dtype=convert_to_tensor(x).dtype)

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


class L1L2(Regularizer):
    """l1 * sum(|x|) + l2 * sum(x^2)."""

    def __init__(self, l1=0., l2=0.):
        self.l1 = float(l1)
        self.l2 = float(l2)

    def __call__(self, x):
        x = convert_to_tensor(x)
        terms = []
        if self.l1:
            terms.append(reduce_sum(ew.multiply(ew.abs(x), self.l1)))
        if self.l2:
            terms.append(reduce_sum(ew.multiply(ew.square(x), self.l2)))
        if not terms:
            return constant(0.0, dtype=x.dtype)
        return terms[0] if len(terms) == 1 else ew.add(terms[0], terms[1])

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


def l1(l=0.01):  # noqa: E741  (Keras's argument name)
    return L1L2(l1=l)


def l2(l=0.01):  # noqa: E741
    return L1L2(l2=l)


def l1_l2(l1=0.01, l2=0.01):
    return L1L2(l1=l1, l2=l2)


_CLASSES = {"L1L2": L1L2, "Regularizer": Regularizer}
_FACTORIES = {"l1": l1, "l2": l2, "l1_l2": l1_l2}


def serialize(regularizer):
    return lookup.serialize(regularizer)


def deserialize(config: dict):
    class_name = config.get("class_name") if isinstance(config, dict) else None
    if class_name in _CLASSES:
        return _CLASSES[class_name].from_config(dict(config.get("config") or {}))
    if class_name in _FACTORIES:
        return _FACTORIES[class_name](**dict(config.get("config") or {}))
    raise ValueError(f"keras.regularizers.deserialize at {user_location()}: unknown regularizer {class_name!r}; "
                     f"expected one of {sorted(_CLASSES) + sorted(_FACTORIES)}")


def get(identifier):
    """None -> None; 'l1'/'l2'/'l1_l2' -> that regularizer at 0.01; a dict -> deserialize;
    a callable passes through."""
    return lookup.resolve("regularizer", identifier, _FACTORIES, make=lambda factory: factory(),
                          from_config=deserialize)
"""Imports every op family, registering all ops in ``registry.OPS``."""
from . import source, elementwise, reduce, shape, linalg, control, random, state, nn, control_flow  # noqa: F401
from . import collective, cumulative, masking, sorting  # noqa: F401
from .registry import OPS, OpDef, get_op  # noqa: F401

FAMILIES = ("source", "elementwise", "reduce", "shape", "linalg", "control", "random", "state", "nn", "collective")

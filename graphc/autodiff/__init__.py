"""Symbolic differentiation: gradients(), higher-order helpers and numeric gradient checks."""
from .gradients import GradientError, gradients  # noqa: F401
from .higher import hessian_vector_product, hessians, jvp  # noqa: F401
from . import control_flow  # noqa: F401,E402  (registers the gradients of cond and while_loop)

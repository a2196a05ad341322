"""Symbolic differentiation: gradients(), higher-order helpers and numeric gradient checks."""
from .gradients import GradientError, gradients  # noqa: F401
from .higher import hessian_vector_product, hessians, jvp  # noqa: F401

"""``gc.test_utils``: utilities for testing graphs, like Theano's verify_grad."""
from .autodiff.checker import GradientCheckError, GradientReport, check_gradients  # noqa: F401

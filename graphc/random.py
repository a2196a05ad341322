"""``gc.random``: TF1's ``tf.random`` namespace (1.13+), the same ops as the top-level names
(``tf.random.uniform`` is ``tf.random_uniform``, ``tf.random.shuffle`` is
``tf.random_shuffle``), plus ``categorical``."""
from .ops.random import random_normal as normal  # noqa: F401
from .ops.random import random_uniform as uniform  # noqa: F401
from .ops.random import set_random_seed, truncated_normal  # noqa: F401
from .ops.sampling import categorical, log_uniform_candidate_sampler, multinomial  # noqa: F401
from .ops.sampling import random_shuffle as shuffle  # noqa: F401

from .compat import namespace_getattr as _namespace_getattr  # noqa: E402

__getattr__ = _namespace_getattr("random", globals())

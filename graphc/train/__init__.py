"""``gc.train``: optimizers, gradient clipping, the global step, learning-rate schedules and
checkpoints (Saver)."""
from .clipping import clip_by_global_norm, clip_by_norm, global_norm  # noqa: F401
from .optimizers import (  # noqa: F401
    SGD, AdaDelta, Adadelta, AdadeltaOptimizer, Adagrad, AdagradOptimizer, Adam, AdamOptimizer, GradientDescent,
    GradientDescentOptimizer, Momentum, MomentumOptimizer, NoGradientsError, Optimizer, RMSProp, RMSPropOptimizer,
    get_global_step, get_or_create_global_step,
)
from .saver import CheckpointError, Saver, latest_checkpoint, read_checkpoint, write_graph  # noqa: F401
from ..export.meta_graph import export_meta_graph, import_meta_graph  # noqa: F401,E402
from .schedules import (  # noqa: F401
    ScheduleError, caffe_learning_rate, cosine_decay, exponential_decay, inverse_time_decay, piecewise_constant,
    polynomial_decay,
)

from ..compat import namespace_getattr as _namespace_getattr  # noqa: E402

__getattr__ = _namespace_getattr("train", globals())

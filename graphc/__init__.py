"""graphc: a static computation-graph compiler with sessions.

    import graphc as gc
    x = gc.placeholder(gc.float32, shape=(None, 784), name="x")
    ...
    with gc.Session() as sess:
        sess.run(fetches, feed_dict={x: batch})
"""
__version__ = "0.1.0"

from . import dtypes  # noqa: F401
from .dtypes import DType, as_dtype, bool_, float32, float64, int8, int32, int64, uint8  # noqa: F401
from .errors import (  # noqa: F401
    AbortedError, CompileError, DeadlineExceededError, DTypeError, FailedPreconditionError, FeedError, FetchError,
    GraphcError,
    GraphError, InvalidArgumentError, NumericsError, OutOfRangeError, ShapeError,
)
from .graph import (  # noqa: F401
    Graph, GraphKeys, Operation, Tensor, control_dependencies, get_default_graph, name_scope,
    reset_default_graph,
)
from .shapes import TensorShape  # noqa: F401
from .ops import catalog as _catalog  # noqa: F401  (registers every op)
from .ops.source import (  # noqa: F401
    constant, convert_to_tensor, fill, ones, ones_like, placeholder, placeholder_with_default, rank, shape,
    size, zeros, zeros_like,
)
from .ops.source import range_ as range  # noqa: F401,A001
from .ops.elementwise import (  # noqa: F401
    abs, acos, acosh, add, add_n, asin, asinh, atan, atanh, cast, ceil, clip_by_value, cos, cosh, divide, equal, erf, exp, expm1, floor, floor_div, floordiv,
    floormod, greater, greater_equal, is_finite, is_nan, isfinite, isnan, less, less_equal, log, log1p,
    logical_and, logical_not, logical_or, logical_xor, maximum, minimum, mod, multiply, neg, negative,
    not_equal, pow, reciprocal, round, rsqrt, sigmoid, sign, sin, sinh, sqrt, square, squared_difference,
    subtract, tan, tanh, to_double, to_float, to_int32, to_int64, truediv, where,
)
from .ops.reduce import (  # noqa: F401
    argmax, argmin, reduce_all, reduce_any, reduce_euclidean_norm, reduce_logsumexp, reduce_max, reduce_mean,
    reduce_min, reduce_prod, reduce_sum,
)
from .ops.shape import (  # noqa: F401
    broadcast_to, concat, expand_dims, gather, one_hot, pad, reshape, split, squeeze, stack, tile,
    transpose, unstack,
)
from .ops.linalg import matmul  # noqa: F401
from .ops.cumulative import cumprod, cumsum, segment_mean, segment_sum, unsorted_segment_sum  # noqa: F401
from .ops.shape import reverse, reverse_v2  # noqa: F401
from .ops.sorting import argsort, sort  # noqa: F401
from .ops.einsum import einsum  # noqa: F401
from .ops.control import group, identity, no_op, stop_gradient  # noqa: F401
from .ops.control_flow import (  # noqa: F401
    case, cond, foldl, foldr, map_fn, scan, switch_case, theano_scan, while_loop,
)
from .ops.random import random_normal, random_uniform, set_random_seed, truncated_normal  # noqa: F401
from .ops.sampling import multinomial, random_shuffle  # noqa: F401
from .ops.masking import boolean_mask  # noqa: F401
from .ops.state import (  # noqa: F401
    Variable, all_variables, assign, assign_add, assign_sub, global_variables, global_variables_initializer,
    initialize_all_variables, initialize_local_variables, initialize_variables, local_variables,
    local_variables_initializer, model_variables, trainable_variables, variables_initializer,
)
from .variable_scope import (  # noqa: F401
    AUTO_REUSE, VariableScope, VariableScopeError, add_to_collection, add_to_collections, get_collection,
    get_collection_ref, get_local_variable, get_variable, get_variable_scope, variable_scope,
)
from .module import Module  # noqa: F401
from .export.meta_graph import GraphDef, import_graph_def  # noqa: F401
from .init import (  # noqa: F401
    constant_initializer, glorot_normal_initializer, glorot_uniform_initializer, ones_initializer,
    random_normal_initializer, random_uniform_initializer, truncated_normal_initializer,
    variance_scaling_initializer, zeros_initializer,
)
from .autodiff import GradientError, gradients, hessian_vector_product, hessians, jvp  # noqa: F401
from . import data, export, init, layers, losses, metrics, nn, profiler, summary, test_utils, train  # noqa: F401
from . import random  # noqa: F401,E402  (gc.random: TF1's tf.random namespace)
from .train.clipping import clip_by_global_norm, clip_by_norm, global_norm  # noqa: F401
from .profiler import RunMetadata  # noqa: F401
from .runtime.session import InteractiveSession, RunOptions, Session, get_default_session  # noqa: F401
from . import debugging  # noqa: F401,E402
from .debugging import Print, add_check_numerics_ops, check_numerics  # noqa: F401,E402
from .debugging import print  # noqa: F401,E402,A004  (TF2's tf.print; shadows the builtin only as gc.print)

from .compat import ConfigProto, GPUOptions, app, contrib, device, flags, gfile, logging  # noqa: F401,E402
from . import compat as _compat  # noqa: E402

bool = bool_  # noqa: A001  (TF's name, tf.bool; the dtype, not Python's builtin)
# A TF1 name graphc lacks is an error that says which TF1 feature it is (graphc/compat.py).
_missing_name = _compat.namespace_getattr("", globals())
# Front ends and tools load on first use (``gc.keras.layers.Dense``, as TF1's ``tf.keras``),
# so ``import graphc`` does not pay for them.
_ON_FIRST_USE = ("keras", "theano", "viz", "onnx")


def __getattr__(name: str):
    if name in ("Summary", "SummaryMetadata", "HistogramProto", "Event", "SessionLog"):  # TF1's tf.Summary, ...
        return getattr(summary, name)
    if name in _ON_FIRST_USE:
        import importlib
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    return _missing_name(name)

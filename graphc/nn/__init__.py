"""``gc.nn``: activations, losses, convolution, pooling, normalization and dropout."""
from ..ops.elementwise import sigmoid, tanh  # noqa: F401
from ..ops.nn import (  # noqa: F401
    avg_pool, avg_pool2d, batch_normalization, bias_add, conv1d, conv2d, conv2d_transpose, conv_output_size,
    depthwise_conv2d, depthwise_conv2d_native, dropout, elu, fused_batch_norm, gelu, separable_conv2d,
    l2_loss, l2_normalize, leaky_relu, local_response_normalization, log_softmax, lrn, max_pool, max_pool2d, moments,
    relu, relu6, sigmoid_cross_entropy_with_logits, silu, softmax, softmax_cross_entropy_with_logits,
    softmax_cross_entropy_with_logits_v2, softplus, softsign, sparse_softmax_cross_entropy_with_logits, swish,
)
from ..ops.sorting import in_top_k, top_k  # noqa: F401,E402
from ..ops.embedding import embedding_lookup, nce_loss, sampled_softmax_loss  # noqa: F401,E402
from ..ops.sampling import log_uniform_candidate_sampler  # noqa: F401,E402
from .. import layers  # noqa: F401,E402  (gc.nn.layers: graphc's old name of gc.layers)
from . import rnn_cell  # noqa: F401,E402
from .rnn import bidirectional_dynamic_rnn, dynamic_rnn, static_rnn  # noqa: F401,E402

from ..compat import namespace_getattr as _namespace_getattr  # noqa: E402

__getattr__ = _namespace_getattr("nn", globals())

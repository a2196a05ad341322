"""Every kernel the CUDA backend generates lowers to PTX for a real target.

The simulator (the other half of the CUDA tests, ``tests/codegen/test_cuda.py``) runs kernels
as Python and forgives what NVVM rejects. Here every op sample, its gradient, and the
training steps of the zoo models are compiled to PTX with ``numba.cuda.compile_ptx``, in both
kernel modes, which needs the CUDA toolkit but no GPU. Skipped where the toolkit is missing
or the process runs under the simulator (which replaces numba's CUDA compiler)."""
import os

import numpy as np
import pytest

import graphc as gc
from graphc.codegen.cuda.ptx import program_ptx, toolkit_available
from graphc.optimizer.pipeline import optimize
from graphc.optimizer.program import lower
from graphc import zoo
from op_samples import SAMPLES

pytestmark = [
    pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"),
                       reason="the CUDA simulator replaces numba's CUDA compiler"),
    pytest.mark.skipif(not toolkit_available(), reason="no CUDA toolkit (NVVM) to generate PTX with"),
]


def _program(graph, fetches, feeds):
    return optimize(lower(graph, fetches, feeds), 2).program


def _samples_graph(names):
    """One graph: every sample of the named ops, and the gradient of each float sample."""
    graph = gc.Graph()
    fetches, feeds = [], []
    with graph.as_default():
        for name in names:
            for k, sample in enumerate(SAMPLES[name]):
                with gc.name_scope(f"{name}{k}"):
                    ins = [gc.placeholder(gc.as_dtype(np.asarray(a).dtype), shape=np.asarray(a).shape)
                           for a in sample.inputs]
                    out = sample.build(*ins)
                    fetches.append(out)
                    feeds.extend(ins)
                    wrt = [ins[i] for i in (sample.wrt if sample.wrt is not None else range(len(ins)))
                           if ins[i].dtype.is_floating]
                    if sample.grad and out.dtype.is_floating and wrt:
                        fetches.extend(g for g in gc.gradients(gc.reduce_sum(out * out), wrt) if g is not None)
    return graph, fetches, feeds


OP_CHUNKS = 4
_NAMES = sorted(SAMPLES)


@pytest.mark.parametrize("chunk", range(OP_CHUNKS))
@pytest.mark.parametrize("mode", ["fast", "general"])
def test_op_samples_and_gradients_lower_to_ptx(chunk, mode):
    names = _NAMES[chunk::OP_CHUNKS]
    graph, fetches, feeds = _samples_graph(names)
    ptx = program_ptx(_program(graph, fetches, feeds), mode=mode)
    assert len(ptx) >= len(names)
    for label, text in ptx:
        assert ".visible .entry" in text, label


@pytest.mark.parametrize("build", [zoo.mlp, zoo.lenet], ids=["mlp", "lenet"])
def test_training_steps_lower_to_ptx(build):
    model = build(input_shape=(8, 8, 1))
    fetches = [model.loss, model.accuracy, model.train_op]
    ptx = program_ptx(_program(model.graph, fetches, [model.x, model.labels]))
    assert len(ptx) > 10
    # the backward of conv2d/max_pool and the optimizer's variable updates are among them
    assert all(".visible .entry" in text for _, text in ptx)

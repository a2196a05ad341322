"""The op registry: every op has inference, a reference, docs, and a sample that runs on
every device and matches NumPy. Adding an op without these fails here."""
import numpy as np
import pytest

import graphc as gc
from graphc.ops.catalog import FAMILIES
from graphc.ops.registry import OPS
from op_samples import EXEMPT, SAMPLES
from support import assert_close


def test_every_op_is_complete():
    problems = []
    for name, opdef in sorted(OPS.items()):
        if not callable(opdef.infer):
            problems.append(f"{name}: no inference")
        if not callable(opdef.reference):
            problems.append(f"{name}: no reference implementation")
        if not opdef.doc:
            problems.append(f"{name}: no doc")
        if opdef.family not in FAMILIES:
            problems.append(f"{name}: unknown family {opdef.family!r}")
        if name not in SAMPLES and name not in EXEMPT:
            problems.append(f"{name}: no sample in tests/op_samples.py and no exemption")
    assert not problems, "\n".join(problems)


def test_every_op_has_a_cpu_kernel():
    from graphc.codegen.cpu import NOT_COMPILED, supported_ops
    missing = sorted(set(OPS) - supported_ops() - set(NOT_COMPILED))
    assert not missing, f"ops without a CPU kernel (add one in graphc/codegen/cpu): {missing}"
    assert not set(NOT_COMPILED) - set(OPS)


def test_every_op_has_a_cuda_kernel():
    # the set is built from the CUDA backend's own emitter tables, without importing CUDA
    from graphc.codegen.cpu import NOT_COMPILED
    from graphc.codegen.cuda import supported_ops
    missing = sorted(set(OPS) - supported_ops() - set(NOT_COMPILED))
    assert not missing, f"ops without a CUDA kernel (add one in graphc/codegen/cuda): {missing}"


def test_samples_name_registered_ops():
    assert not (set(SAMPLES) | set(EXEMPT)) - set(OPS)


def _placeholders(sample):
    out = []
    for i, a in enumerate(sample.inputs):
        a = np.asarray(a)
        out.append(gc.placeholder(gc.as_dtype(a.dtype), shape=a.shape, name=f"in{i}"))
    return out


@pytest.mark.parametrize("op_name", sorted(SAMPLES))
def test_sample_matches_numpy(op_name, graph, evaluate):
    fetches, feeds, expected = {}, {}, {}
    for k, sample in enumerate(SAMPLES[op_name]):
        with gc.name_scope(f"s{k}"):
            ins = _placeholders(sample)
            out = sample.build(*ins)
        assert any(op.type == op_name for op in graph.get_operations()), f"sample does not build {op_name}"
        fetches[k] = out
        feeds.update(zip(ins, sample.inputs))
        expected[k] = np.asarray(sample.expected(*sample.inputs))
    results = evaluate(fetches, feeds)
    for k, want in expected.items():
        got = np.asarray(results[k])
        assert got.shape == want.shape, f"{op_name} sample {k}"
        assert_close(got, want.astype(got.dtype), check_dtype=False)

"""Every op has a gradient rule or is marked non-differentiable, and every rule agrees with
central finite differences in float64 on the op's samples (several shapes, broadcasting)."""
import pytest

from graphc.autodiff.rules import NON_DIFFERENTIABLE, differentiable_ops

GRADIENTS = differentiable_ops()
from graphc.ops.registry import OPS
from graphc.test_utils import check_gradients
from op_samples import SAMPLES
from support import differences_on, simulated


def test_every_op_has_a_rule_or_a_non_differentiable_mark():
    problems = []
    for name in sorted(OPS):
        has_rule, marked = name in GRADIENTS, name in NON_DIFFERENTIABLE
        if has_rule == marked:
            problems.append(f"{name}: {'both a rule and a mark' if has_rule else 'neither a gradient rule nor a mark'}")
    assert not problems, "\n".join(problems)
    assert not (set(GRADIENTS) | NON_DIFFERENTIABLE) - set(OPS)


DIFFERENTIABLE_WITH_SAMPLES = sorted(op for op in GRADIENTS if op in SAMPLES)


# Ops whose gradients are checked against finite differences in a test file of their own.
OWN_GRADIENT_TESTS = {"cond": "tests/ops/test_control_flow.py", "while_loop": "tests/ops/test_control_flow.py",
                      # across ranks, against finite differences of the sum of the ranks' losses
                      "collective_allreduce": "tests/distribute/collectives.py",
                      "collective_allgather": "tests/distribute/collectives.py",
                      "collective_broadcast": "tests/distribute/collectives.py"}


def test_every_differentiable_op_is_checked():
    missing = sorted(op for op in GRADIENTS if op not in SAMPLES and op not in OWN_GRADIENT_TESTS)
    assert not missing, f"differentiable ops without samples to check: {missing}"


@pytest.mark.parametrize("op_name", DIFFERENTIABLE_WITH_SAMPLES)
def test_gradient_matches_finite_differences(op_name, device):
    checked = 0
    samples = [sample for sample in SAMPLES[op_name] if sample.grad]
    for sample in samples[:1] if simulated(device) else samples:  # a finite difference is two runs per element
        options = dict(eps=1e-6, rtol=1e-5, atol=1e-7)
        options.update(sample.extra)
        options.update(differences_on(device))
        report = check_gradients(sample.build, sample.inputs, wrt=sample.wrt, device=device, **options)
        assert report.checked > 0
        checked += 1
    assert checked

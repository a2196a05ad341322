"""ONNX's own backend tests (the node tests that ship with the onnx package, and its simple,
pytorch-converted and pytorch-operator model tests) through ``graphc.onnx.backend``.

They run on the NumPy reference, which compiles nothing (about 2,000 tests in seconds);
``test_backend_sample.py`` runs a sample of them on cpu (and on CUDA in the CUDA pass). A test that graphc
fails is listed, with its reason, in ``expected_failures.py``; one listed there that passes
fails the suite (an unexpected success), so the list and docs/IMPORT-ONNX.md stay true.
The pass figures are printed at the end of the run (conftest.py).
"""
from __future__ import annotations

import unittest
import warnings

import pytest

onnx = pytest.importorskip("onnx")

from expected_failures import EXPECTED_FAILURES  # noqa: E402
from graphc.onnx.conformance import backend_for  # noqa: E402
from onnx.backend.test.runner import Runner  # noqa: E402

KINDS = ("Node", "Simple", "PyTorchConverted", "PyTorchOperator")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    runner = Runner(backend_for("reference"), __name__)
for names in EXPECTED_FAILURES.values():
    for name in names:
        runner.xfail(f"^{name}_cpu$")
ITEMS = runner._filtered_test_items   # {category: {test name: item}}; computed once (it wraps the functions)

# One unittest class per kind, with the "CPU" tests only (the CUDA ones would only be skipped).
for _kind in KINDS:
    _name = f"OnnxBackend{_kind}ModelTest"
    globals()[_name] = type(_name, (unittest.TestCase,), {
        test: item.func for test, item in sorted(ITEMS[f"{_kind}Model"].items()) if test.endswith("_cpu")})


def test_every_expected_failure_names_a_test():
    known = {name[:-len("_cpu")] for items in ITEMS.values() for name in items if name.endswith("_cpu")}
    listed = [n for names in EXPECTED_FAILURES.values() for n in names]
    assert len(listed) == len(set(listed)), "a test is listed under two reasons"
    assert not set(listed) - known, f"listed tests that do not exist: {sorted(set(listed) - known)[:5]}"

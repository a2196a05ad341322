"""Prints the ONNX backend-test pass figures at the end of a run (docs/IMPORT-ONNX.md records them)."""
from __future__ import annotations

import collections

_OUTCOMES: dict = collections.defaultdict(collections.Counter)


def pytest_runtest_logreport(report):
    if "OnnxBackend" not in report.nodeid or (report.when != "call" and not report.skipped):
        return
    kind = report.nodeid.split("OnnxBackend", 1)[1].split("ModelTest", 1)[0]
    import os
    if "test_backend_sample" in report.nodeid:
        device = "cuda" if "cuda" in os.environ.get("GRAPHC_TEST_DEVICES", "") else "cpu"
    elif "test_backend_round_trip" in report.nodeid:
        device = "reference, exported again and run in ONNX Runtime"
    else:
        device = "reference"
    if report.when == "call" or report.skipped:
        outcome = "xfail" if hasattr(report, "wasxfail") else report.outcome
        _OUTCOMES[(device, kind)][outcome] += 1


def pytest_terminal_summary(terminalreporter):
    if not _OUTCOMES:
        return
    terminalreporter.section("ONNX backend tests")
    for (device, kind), counts in sorted(_OUTCOMES.items()):
        total = sum(counts.values())
        passed = counts["passed"]
        terminalreporter.write_line(
            f"{kind} on {device}: {passed} of {total} pass ({100.0 * passed / max(total, 1):.1f}%), "
            f"{counts['xfail']} expected failures, {counts['failed']} failures")

"""ONNX's own backend tests over graphc, outside pytest: counts and failure reasons.

    python -m graphc.onnx.conformance --device reference            # every node test
    python -m graphc.onnx.conformance --kind PyTorchConverted --device cpu -v

The test suite runs the same tests through pytest (tests/onnx/test_backend_suite.py) with the
expected failures of tests/onnx/expected_failures.py; this command is for seeing where graphc
stands and why each failing test fails.
"""
from __future__ import annotations

import argparse
import collections
import re
import sys
import unittest
import warnings

from .backend import GraphcBackend

KINDS = ("Node", "Simple", "PyTorchConverted", "PyTorchOperator", "Real")


def backend_for(device: str):
    """A backend class whose "CPU" runs on graphc device ``device``; CUDA tests are off."""
    class Backend(GraphcBackend):
        @classmethod
        def prepare(cls, model, dev="CPU", **kwargs):
            kwargs.pop("rtol", None), kwargs.pop("atol", None)
            return GraphcBackend.prepare(model, dev, graphc_device=device, **kwargs)

        @classmethod
        def supports_device(cls, dev: str) -> bool:
            return str(dev).upper() == "CPU"

    Backend.__name__ = f"GraphcBackend_{device}"
    return Backend


def test_cases(device: str, kinds=KINDS, pattern: str = "") -> dict:
    """``{name: unittest test method}`` for the tests of ``kinds`` on CPU."""
    from onnx.backend.test.runner import Runner
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = Runner(backend_for(device), __name__)
    out = {}
    for category, items in runner._filtered_test_items.items():
        kind = category[:-len("Model")] if category.endswith("Model") else category
        if kind not in kinds:
            continue
        for name, item in items.items():
            if name.endswith("_cpu") and re.search(pattern, name):
                out[name] = (kind, item.func)
    return out


def reason_of(error: BaseException) -> str:
    """A failure's reason with the test-specific parts (names, numbers) taken out."""
    text = str(error).strip().splitlines()
    head = next((line for line in text if line.strip()), type(error).__name__)
    head = re.sub(r"'[^']*'", "'…'", head)
    head = re.sub(r"\b\d+(\.\d+)?\b", "N", head)
    return f"{type(error).__name__}: {head[:160]}"


def run(device: str, kinds=KINDS, pattern: str = "", verbose: bool = False) -> dict:
    cases = test_cases(device, kinds, pattern)
    results = {}
    for name, (kind, func) in sorted(cases.items()):
        case = type("Case", (unittest.TestCase,), {"runTest": func})()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                func(case)
            results[name] = (kind, "pass", "")
        except unittest.SkipTest as e:
            results[name] = (kind, "skip", str(e))
        except Exception as e:  # noqa: BLE001 - every failure is counted and grouped
            results[name] = (kind, "fail", reason_of(e))
        if verbose:
            print(name, *results[name][1:], flush=True)
    return results


def summarize(results: dict) -> str:
    lines = []
    by_kind = collections.defaultdict(collections.Counter)
    for kind, outcome, _ in results.values():
        by_kind[kind][outcome] += 1
    for kind, counts in by_kind.items():
        total = sum(counts.values())
        lines.append(f"{kind}: {counts['pass']} of {total} pass ({100.0 * counts['pass'] / max(total, 1):.1f}%)")
    reasons = collections.Counter(group_of(r) for _, outcome, r in results.values() if outcome == "fail")
    lines.append("failure reasons:")
    lines += [f"  {n:4d}  {r}" for r, n in reasons.most_common()]
    return "\n".join(lines)


# Failure reasons, as docs/IMPORT-ONNX.md states them: (pattern over the failure, the reason).
# The first pattern that matches names the group in tests/onnx/expected_failures.py.
REASON_GROUPS = [
    (r"ONNX type (float16|bfloat16|float8\w*|float4\w*|u?int[24]|int16|uint16|uint32|uint64)\b",
     "graphc has no {0} dtype"),
    (r"ONNX type string|string tensors", "string tensors (text processing is out of scope)"),
    (r"target type is of ONNX type (\w+)", "graphc has no {0} dtype"),
    (r"sequence_type|optional_type|Sequence\w+|Optional\w*\)|SplitToSequence|ConcatFromSequence",
     "ONNX sequences and optionals (graphc has tensors only)"),
    (r"domain '…'|does not import the ai\.onnx\.ml op",
     "ops of other domains (ai.onnx.ml, ai.onnx.preview.training) are out of scope"),
    (r"\((ImageDecoder|TfIdfVectorizer|StringNormalizer|RegexFullMatch|StringConcat|StringSplit|LabelEncoder)\)",
     "text and image decoding are out of scope"),
    (r"\((RandomUniformLike|RandomNormalLike|RandomUniform|RandomNormal|Bernoulli|Multinomial)\)|Dropout.*training",
     "random draws follow graphc's counter-based streams, which cannot reproduce ONNX's expected values"),
    (r"training-mode BatchNormalization", "training-mode BatchNormalization is not imported (inference graphs)"),
    (r"\((\w+)\): graphc does not import the ONNX op", "the ONNX op {0} is not imported yet"),
    (r"\((\w+)\): graphc imports \w+ and \w+ \w+ \(an input", "3-D {0} is not imported yet"),
    (r"\((\w+)\)", "{0}: semantics not imported yet"),
]


# Tests whose expected values graphc cannot match for a reason their failure does not show.
_FP16_SUMS = ("graphc rounds float16 after each op as NumPy does, but sums inside a reduction in float32; "
              "NumPy's float16 softmax sums in float16, and one of the values differs by one unit in the last "
              "place, just over the test's rtol")
BY_NAME = {
    "test_attention_4d_fp16": _FP16_SUMS,
    "test_attention_4d_causal_fp16_expanded": _FP16_SUMS,
    "test_dft_inverse": "the expected values carry float32 FFT round-off (2e-7) above the test's atol (1e-7); "
                        "graphc's inverse DFT is exact to 1e-14 there",
    "test_dft_inverse_opset19": "the expected values carry float32 FFT round-off (2e-7) above the test's atol "
                                "(1e-7); graphc's inverse DFT is exact to 1e-14 there",
}


def group_of(reason: str) -> str:
    for pattern, text in REASON_GROUPS:
        m = re.search(pattern, reason)
        if m:
            return text.format(*m.groups())
    return "other: " + reason[:100]


def write_expected(results: dict, path: str) -> None:
    """Write tests/onnx/expected_failures.py: every failing test, grouped by reason."""
    groups = collections.defaultdict(list)
    for name, (kind, outcome, reason) in sorted(results.items()):
        if outcome == "fail":
            test = name[:-len("_cpu")]
            groups[BY_NAME.get(test) or group_of(reason)].append(test)
    lines = ['"""ONNX backend tests that graphc fails, grouped by reason (docs/IMPORT-ONNX.md states each).',
             "",
             "Generated by ``python -m graphc.onnx.conformance --write-expected tests/onnx/expected_failures.py``;",
             'a test listed here that passes fails the suite, so the list stays true."""',
             "", "EXPECTED_FAILURES = {"]
    for reason in sorted(groups, key=lambda r: (-len(groups[r]), r)):
        lines.append(f"    {reason!r}: [")
        lines += [f"        {n!r}," for n in groups[reason]]
        lines.append("    ],")
    lines.append("}")
    from ..files import atomic_write
    atomic_write(path, "\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphc.onnx.conformance")
    parser.add_argument("--device", default="reference")
    parser.add_argument("--kind", action="append", choices=KINDS)
    parser.add_argument("-k", "--pattern", default="")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--write-expected", metavar="PATH", help="write the expected-failures file here")
    args = parser.parse_args(argv)
    results = run(args.device, tuple(args.kind or ("Node", "Simple", "PyTorchConverted", "PyTorchOperator")),
                  args.pattern, args.verbose)
    print(summarize(results))
    if args.write_expected:
        write_expected(results, args.write_expected)
    return 0


if __name__ == "__main__":
    sys.exit(main())

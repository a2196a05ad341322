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

from ..export.onnx import to_onnx
from .backend import GraphcBackend

KINDS = ("Node", "Simple", "PyTorchConverted", "PyTorchOperator", "Real")


class RoundTripError(AssertionError):
    """graphc's ONNX export of an imported model disagrees with graphc in ONNX Runtime."""


def _round_trip(rep, feed: dict, results) -> None:
    """Export the model that answered ``feed`` with ``gc.export.to_onnx``, run the file in
    ONNX Runtime, and require ONNX Runtime to give graphc's answers."""
    import numpy as np
    import onnxruntime as ort
    from ..export.onnx import ExportError
    model, fed = rep._model_for({k: np.asarray(v).astype(rep.wide_inputs[k]) if k in rep.wide_inputs else v
                                 for k, v in feed.items()})
    try:
        proto = to_onnx(model, None)
    except ExportError as e:
        raise RoundTripError(f"export refused: {str(e).splitlines()[0][:200]}") from None
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    wanted = [o.name for o in session.get_outputs()]
    outs = dict(zip(wanted, session.run(None, {k: np.asarray(v) for k, v in fed.items()})))
    for name, value in zip(rep.output_names, results):
        if name in outs:
            got = np.asarray(outs[name])
            ours = np.asarray(value).astype(got.dtype)
            try:
                np.testing.assert_allclose(got, ours, rtol=1e-4, atol=1e-5)
            except AssertionError as e:
                raise RoundTripError(f"output {name!r} differs in ONNX Runtime: {str(e).strip()[:300]}") from None


def backend_for(device: str, round_trip: bool = False):
    """A backend class whose "CPU" runs on graphc device ``device``; CUDA tests are off.
    ``round_trip``: every run also exports the imported model back to ONNX and checks it in
    ONNX Runtime against graphc's own outputs (to_onnx(import_model(m)) computes m)."""
    class Backend(GraphcBackend):
        @classmethod
        def prepare(cls, model, dev="CPU", **kwargs):
            kwargs.pop("rtol", None), kwargs.pop("atol", None)
            rep = GraphcBackend.prepare(model, dev, graphc_device=device, **kwargs)
            if round_trip:
                run = rep.run

                def checked(inputs, **kw):
                    results = run(inputs, **kw)
                    feed = dict(inputs) if isinstance(inputs, dict) else dict(zip(rep.input_names, inputs))
                    _round_trip(rep, feed, results)
                    return results
                rep.run = checked
            return rep

        @classmethod
        def supports_device(cls, dev: str) -> bool:
            return str(dev).upper() == "CPU"

    Backend.__name__ = f"GraphcBackend_{device}"
    return Backend


def test_cases(device: str, kinds=KINDS, pattern: str = "", round_trip: bool = False) -> dict:
    """``{name: unittest test method}`` for the tests of ``kinds`` on CPU."""
    from onnx.backend.test.runner import Runner
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = Runner(backend_for(device, round_trip), __name__)
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


def run(device: str, kinds=KINDS, pattern: str = "", verbose: bool = False, round_trip: bool = False) -> dict:
    cases = test_cases(device, kinds, pattern, round_trip)
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
    (r"domain '…'|does not import the ai\.onnx\.ml op|test_ai_onnx_ml",
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
    parser.add_argument("--round-trip", action="store_true",
                        help="also export each imported model with to_onnx and check it in ONNX Runtime")
    args = parser.parse_args(argv)
    results = run(args.device, tuple(args.kind or ("Node", "Simple", "PyTorchConverted", "PyTorchOperator")),
                  args.pattern, args.verbose, args.round_trip)
    print(summarize(results))
    if args.write_expected:
        write_expected(results, args.write_expected)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""W9: inference of imported ONNX models, graphc against ONNX Runtime on the same files.

    python benchmarks/import_run.py              # writes benchmarks/RESULTS-IMPORT.md
    python benchmarks/import_run.py --tiny       # a smoke run (numbers mean nothing)

Models: the LeNet-style CNN that torch.onnx exported (tests/onnx/models/torch_lenet.onnx,
28x28x1 NCHW, BatchNorm, max and average pooling) and an MLP (784-256-256-10, Gemm/Relu,
LogSoftmax) written with onnx.helper. Runners, each in its own process, interleaved over
rounds (a figure is the median over rounds of each round's median):
  graphc-session   ``gc.onnx.import_model(file)``, device="cpu"
  graphc-native-py the imported model as a shared library (``gc.export.shared_library``),
                   called through ctypes (``NativeModel``)
  onnxruntime      the same file in ONNX Runtime (CPUExecutionProvider)
Every runner's outputs are checked against ONNX Runtime's before they are timed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / "tests" / "onnx" / "models"
RUNNERS = ("graphc-session", "graphc-native-py", "onnxruntime")
BATCHES = (1, 64)
WORKLOADS = {"lenet": ("images", (1, 28, 28)), "mlp": ("x", (784,))}


def build(work: Path) -> None:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save
    shutil.copy(MODELS / "torch_lenet.onnx", work / "lenet.onnx")
    rng = np.random.default_rng(0)
    sizes = (784, 256, 256, 10)
    inits, nodes, h = [], [], "x"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        inits += [numpy_helper.from_array((rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32), f"w{i}"),
                  numpy_helper.from_array(rng.normal(size=b).astype(np.float32) * 0.1, f"b{i}")]
        nodes.append(helper.make_node("Gemm", [h, f"w{i}", f"b{i}"], [f"g{i}"]))
        h = f"g{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [h], [f"r{i}"]))
            h = f"r{i}"
    nodes.append(helper.make_node("LogSoftmax", [h], ["log_probs"], axis=1))
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 784])],
                              [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["n", 10])], inits)
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(work / "mlp.onnx"))
    for name, (input_name, shape) in WORKLOADS.items():
        np.save(work / f"{name}-x.npy", rng.normal(size=(max(BATCHES),) + shape).astype(np.float32))


def _time(fn, samples: int) -> float:
    sys.path.insert(0, str(HERE))
    from export_run import _time as time_it
    return time_it(fn, samples)


def _runner(name: str, work: Path, model: str):
    """fn(x batch) -> callable running one batch and returning the output, and versions."""
    input_name = WORKLOADS[model][0]
    path = str(work / f"{model}.onnx")
    if name == "onnxruntime":
        import onnxruntime as ort
        s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return lambda xb: (lambda: s.run(None, {input_name: xb})[0]), {"onnxruntime": ort.__version__}
    import graphc as gc
    imported = gc.onnx.import_model(path, device="cpu")
    output = list(imported.signature.outputs)[0]
    if name == "graphc-session":
        return lambda xb: (lambda: imported.run({input_name: xb})[output]), {"graphc": gc.__version__}
    if name == "graphc-native-py":
        if not shutil.which("cc"):
            raise ImportError("no C compiler")
        lib = gc.export.shared_library(imported, path=work / f"native-{model}", name=model)
        native = gc.export.NativeModel(lib)
        return lambda xb: (lambda: native(**{input_name: xb})[output]), {"graphc": gc.__version__}
    raise ValueError(name)


def worker(name: str, work: Path, tiny: bool) -> dict:
    import numpy as np
    import onnxruntime as ort
    samples = 3 if tiny else 25
    out = {}
    versions = {}
    for model, (input_name, _) in WORKLOADS.items():
        x = np.load(work / f"{model}-x.npy")
        reference = ort.InferenceSession(str(work / f"{model}.onnx"), providers=["CPUExecutionProvider"])
        try:
            make, versions = _runner(name, work, model)
        except ImportError as e:
            return {"unavailable": str(e)}
        for n in BATCHES:
            xb = np.ascontiguousarray(x[:n])
            fn = make(xb)
            np.testing.assert_allclose(fn(), reference.run(None, {input_name: xb})[0], rtol=1e-4, atol=1e-4)
            out[f"{model} batch {n}"] = _time(fn, samples)
    out["versions"] = versions
    return out


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.3f} ms"


def report(results: dict, tiny: bool) -> str:
    sys.path.insert(0, str(HERE))
    from run import machine
    keys = [f"{m} batch {n}" for m in WORKLOADS for n in BATCHES]
    present = [r for r in RUNNERS if keys[0] in results.get(r, {})]
    versions = {}
    for r in results.values():
        versions.update(r.get("versions", {}))
    import numba
    import numpy
    import onnx
    versions.update(numba=numba.__version__, numpy=numpy.__version__, onnx=onnx.__version__)
    lines = ["# W9: imported ONNX models, graphc against ONNX Runtime", "",
             "Measured by `python benchmarks/import_run.py` in one run (each runner in its own process, "
             "interleaved rounds; a figure is the median over rounds of each round's median). The files: "
             "the torch.onnx LeNet of `tests/onnx/models/torch_lenet.onnx` and a 784-256-256-10 MLP. "
             "*vs ort* is graphc's time over ONNX Runtime's on the same file (below 1: faster). Every "
             "runner's outputs were checked against ONNX Runtime's.", "",
             f"Machine: {machine()}", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())), "",
             f"Sizes: {'tiny (smoke run: the numbers mean nothing)' if tiny else 'full'}.", "",
             "| W9 | " + " | ".join(present) + " | " + " | ".join(
                 f"{r} vs ort" for r in present if r.startswith("graphc")) + " |",
             "|---|" + "---|" * (len(present) + sum(r.startswith("graphc") for r in present))]
    for key in keys:
        cells = [_fmt(results[r][key]) for r in present]
        ort_time = results.get("onnxruntime", {}).get(key)
        ratios = [f"{results[r][key] / ort_time:.2f}" if ort_time else "n/a" for r in present if r.startswith("graphc")]
        lines.append(f"| {key} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    spread = [f"{r} {key}: {_fmt(lo)}–{_fmt(hi)}" for r in present for key, (lo, hi) in
              results[r].get("spread", {}).items()]
    if spread:
        lines += ["", "Spread over rounds (fastest and slowest round): " + "; ".join(spread) + "."]
    missing = [f"{r} ({results[r].get('unavailable', 'error')})" for r in RUNNERS if r not in present]
    if missing:
        lines += ["", "Not measured: " + "; ".join(missing) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--out", default=str(HERE / "RESULTS-IMPORT.md"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.work), args.tiny)))
        return 0
    with tempfile.TemporaryDirectory(prefix="graphc-import-bench-") as tmp:
        work = Path(tmp)
        build(work)
        rounds = args.rounds or (1 if args.tiny else 3)
        runs: dict = {r: [] for r in RUNNERS}
        for k in range(rounds):
            for r in RUNNERS:
                cmd = [sys.executable, __file__, "--worker", r, "--work", str(work)] + (["--tiny"] if args.tiny else [])
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    runs[r].append({"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"})
                    print(f"round {k + 1}: {r} failed: {runs[r][-1]['error']}", file=sys.stderr)
                    continue
                runs[r].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"round {k + 1}: {r} done", file=sys.stderr)
    keys = [f"{m} batch {n}" for m in WORKLOADS for n in BATCHES]
    results = {}
    for r, got in runs.items():
        timed = [g for g in got if keys[0] in g]
        if not timed:
            results[r] = got[0] if got else {"unavailable": "not run"}
            continue
        merged = {"versions": timed[0].get("versions", {}), "spread": {}}
        for key in keys:
            times = [g[key] for g in timed]
            merged[key] = statistics.median(times)
            merged["spread"][key] = (min(times), max(times))
        results[r] = merged
    text = report(results, args.tiny)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

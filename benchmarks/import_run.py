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
Every runner's outputs are checked against ONNX Runtime's before they are timed (computed
once, in the parent process: no runner's process hosts another framework's threads).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from export_run import _fmt, _time, bench_main, versions_of  # noqa: E402  (shared with W6)

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
    import onnxruntime as ort
    for name, (input_name, shape) in WORKLOADS.items():
        x = rng.normal(size=(max(BATCHES),) + shape).astype(np.float32)
        np.save(work / f"{name}-x.npy", x)
        # ONNX Runtime's outputs, made here so that graphc's processes never load its thread
        # pool (with it loaded, graphc's MLP at batch 1 measured 19-23 us against 15-16 us)
        s = ort.InferenceSession(str(work / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        for n in BATCHES:
            np.save(work / f"{name}-expected-{n}.npy", s.run(None, {input_name: np.ascontiguousarray(x[:n])})[0])


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
    samples = 3 if tiny else 25
    out = {}
    versions = {}
    for model, (input_name, _) in WORKLOADS.items():
        x = np.load(work / f"{model}-x.npy")
        try:
            make, versions = _runner(name, work, model)
        except ImportError as e:
            return {"unavailable": str(e)}
        for n in BATCHES:
            xb = np.ascontiguousarray(x[:n])
            fn = make(xb)
            np.testing.assert_allclose(fn(), np.load(work / f"{model}-expected-{n}.npy"), rtol=1e-4, atol=1e-4)
            out[f"{model} batch {n}"] = _time(fn, samples)
    out["versions"] = versions
    return out


def report(results: dict, tiny: bool) -> str:
    from run import machine
    keys = [f"{m} batch {n}" for m in WORKLOADS for n in BATCHES]
    present = [r for r in RUNNERS if keys[0] in results.get(r, {})]
    lines = ["# W9: imported ONNX models, graphc against ONNX Runtime", "",
             "Measured by `python benchmarks/import_run.py` in one run (each runner in its own process, "
             "interleaved rounds; a figure is the median over rounds of each round's median). The files: "
             "the torch.onnx LeNet of `tests/onnx/models/torch_lenet.onnx` and a 784-256-256-10 MLP. "
             "*vs ort* is graphc's time over ONNX Runtime's on the same file (below 1: faster). Every "
             "runner's outputs were checked against ONNX Runtime's, computed in the parent process, so "
             "that no runner's process hosts another framework's threads.", "",
             f"Machine: {machine()}", "", versions_of(results, "numba", "numpy", "onnx"), "",
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
    return bench_main(argv, script=__file__, out=HERE / "RESULTS-IMPORT.md", runners=RUNNERS,
                      keys=[f"{m} batch {n}" for m in WORKLOADS for n in BATCHES], build=build, worker=worker,
                      report=report)


if __name__ == "__main__":
    sys.exit(main())

"""Deployed inference, side by side: the LeNet-5 of W5 (28x28, same weights) answering one
batch, as graphc runs it after export and as its peers run it.

    python benchmarks/export_run.py              # writes benchmarks/RESULTS-EXPORT.md
    python benchmarks/export_run.py --tiny       # a smoke run (numbers mean nothing)

Runners, each in its own process, interleaved over rounds (a figure is the median over
rounds of each round's median):
  graphc-session   the loaded model file (``gc.export.load_model``), device="cpu"
  graphc-native-c  the shared library (``gc.export.shared_library``) timed by a C program:
                   no Python anywhere in the loop
  graphc-native-py the same library called from Python (``SharedLibrary.load()``, ctypes)
  onnxruntime      graphc's ONNX export (``gc.export.to_onnx``) in ONNX Runtime
  torch            the same network in PyTorch (inference_mode, NCHW)
  jax              the same network under jax.jit
Peers that are not installed are left out. Every runner checks its logits against the
Session's before it is timed.
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
RUNNERS = ("graphc-session", "graphc-native-c", "graphc-native-py", "onnxruntime", "torch", "jax")
PEERS = ("onnxruntime", "torch", "jax")
BATCHES = (1, 64)

_C_TIMER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "lenet.h"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmp(const void *a, const void *b) { double d = *(const double *)a - *(const double *)b; return (d > 0) - (d < 0); }

int main(int argc, char **argv) {
    int64_t n = atoll(argv[1]);
    int samples = atoi(argv[2]);
    float *x = malloc((size_t)n * 28 * 28 * sizeof(float)), *y = malloc((size_t)n * 10 * sizeof(float));
    FILE *f = fopen(argv[3], "rb");
    if (!f || fread(x, sizeof(float), (size_t)n * 784, f) != (size_t)n * 784) return 3;
    fclose(f);
    size_t bytes; lenet_workspace_size(n, &bytes);
    void *ws = malloc(bytes ? bytes : 1);
    for (int i = 0; i < 5; i++) if (lenet_run_with_workspace(x, n, y, ws, bytes)) return 2;
    double t0 = now(); lenet_run_with_workspace(x, n, y, ws, bytes);
    double once = now() - t0;
    int batch = once > 1e-3 ? 1 : (int)(1e-3 / (once > 1e-7 ? once : 1e-7));
    double *med = malloc(samples * sizeof(double));
    for (int s = 0; s < samples; s++) {
        t0 = now();
        for (int i = 0; i < batch; i++) lenet_run_with_workspace(x, n, y, ws, bytes);
        med[s] = (now() - t0) / batch;
    }
    qsort(med, samples, sizeof(double), cmp);
    f = fopen(argv[4], "wb"); fwrite(y, sizeof(float), (size_t)n * 10, f); fclose(f);
    printf("%.9g\n", med[samples / 2]);
    return 0;
}
"""


def _workloads():
    sys.path.insert(0, str(HERE))
    import workloads
    return workloads


def _params():
    return _workloads()._lenet_data(max(BATCHES))


def build(work: Path) -> None:
    """The graphc model (W5's LeNet-5 with W5's weights) as a model file, ONNX and a library."""
    import numpy as np
    import graphc as gc
    wl = _workloads()
    x, _, params = _params()
    g = gc.Graph()
    with g.as_default():
        xp = gc.placeholder(gc.float32, (None, 28, 28, 1), name="x")
        logits = wl.graphc_lenet_logits(gc, xp, params)
        init = gc.global_variables_initializer()
    with gc.Session(graph=g) as sess:
        sess.run(init)
        gc.export.save_model(sess, work / "lenet.gcm", inputs={"x": xp}, outputs={"logits": logits})
        np.save(work / "expected.npy", sess.run(logits, {xp: x}))
    model = gc.export.load_model(work / "lenet.gcm")
    np.save(work / "x.npy", x)
    try:
        gc.export.to_onnx(model, work / "lenet.onnx")
    except ImportError:
        pass
    if shutil.which("cc"):
        lib = gc.export.shared_library(model, path=work / "native", name="lenet")
        (work / "native" / "timer.c").write_text(_C_TIMER)
        subprocess.run(["cc", "-O2", "-o", "timer", "timer.c", "-I.", "-L.", "-llenet", "-Wl,-rpath,$ORIGIN"],
                       cwd=lib.directory, check=True)


def _time(fn, samples: int) -> float:
    import time
    for _ in range(5):
        fn()
    t0 = time.perf_counter()
    fn()
    return timed_samples(fn, max(1, int(1e-3 / max(time.perf_counter() - t0, 1e-7))), samples)


def timed_samples(fn, batch: int, samples: int) -> float:
    """The median over ``samples`` of the time per call of ``batch`` calls of ``fn``."""
    import time
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        out.append((time.perf_counter() - t0) / batch)
    return statistics.median(out)


def _runner(name: str, work: Path, x, params):
    """(fn(batch) -> callable that runs one batch and returns its logits, versions) for a runner."""
    import numpy as np
    if name == "graphc-session":
        import graphc as gc
        model = gc.export.load_model(work / "lenet.gcm")
        return lambda xb: (lambda: model(x=xb)["logits"]), {"graphc": gc.__version__}
    if name == "graphc-native-py":
        import graphc as gc
        if not (work / "native" / "liblenet.so").exists():
            raise ImportError("no C compiler: the library was not built")
        lib = gc.export.load_model(work / "lenet.gcm")  # the signature; the library is already built
        native = gc.export.NativeModel(_library(work, lib.signature))
        return lambda xb: (lambda: native(x=xb)["logits"]), {"graphc": gc.__version__}
    if name == "onnxruntime":
        import onnxruntime as ort
        if not (work / "lenet.onnx").exists():
            raise ImportError("no ONNX export (onnx not installed)")
        s = ort.InferenceSession(str(work / "lenet.onnx"), providers=["CPUExecutionProvider"])
        return lambda xb: (lambda: s.run(None, {"x": xb})[0]), {"onnxruntime": ort.__version__}
    if name == "torch":
        import torch
        F = torch.nn.functional
        ps = [torch.from_numpy(p.transpose(3, 2, 0, 1).copy() if p.ndim == 4 else p) for p in params]

        def make(xb):
            xt = torch.from_numpy(np.ascontiguousarray(xb.transpose(0, 3, 1, 2)))

            def run():
                with torch.inference_mode():
                    h = F.max_pool2d(F.relu(F.conv2d(xt, ps[0], ps[1], padding=2)), 2)
                    h = F.max_pool2d(F.relu(F.conv2d(h, ps[2], ps[3])), 2)
                    # NCHW flattens in another order than NHWC: compare after moving channels last
                    h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)
                    h = F.relu(h @ ps[4] + ps[5])
                    h = F.relu(h @ ps[6] + ps[7])
                    return (h @ ps[8] + ps[9]).numpy()
            return run
        return make, {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    if name == "jax":
        import jax
        jnp, lax = jax.numpy, jax.lax

        def conv(h, w, padding):
            return lax.conv_general_dilated(h, w, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))

        def pool(h):
            return lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

        @jax.jit
        def forward(p, xb):
            h = pool(jax.nn.relu(conv(xb, p[0], "SAME") + p[1]))
            h = pool(jax.nn.relu(conv(h, p[2], "VALID") + p[3]))
            h = h.reshape(h.shape[0], -1)
            h = jax.nn.relu(h @ p[4] + p[5])
            h = jax.nn.relu(h @ p[6] + p[7])
            return h @ p[8] + p[9]
        pj = [jax.device_put(p) for p in params]

        def make(xb):
            xj = jax.device_put(xb)
            return lambda: np.asarray(forward(pj, xj).block_until_ready())
        return make, {"jax": jax.__version__}
    raise ValueError(name)


def _library(work: Path, signature):
    from graphc.export.native import SharedLibrary
    d = work / "native"
    return SharedLibrary(d, d / "liblenet.so", d / "lenet.h", d / "README.md", "lenet", "x86-64-v3", signature, ())


def worker(name: str, work: Path, tiny: bool) -> dict:
    import numpy as np
    x, _, params = _params()
    expected = np.load(work / "expected.npy")
    samples = 3 if tiny else 25
    out = {}
    if name == "graphc-native-c":
        timer = work / "native" / "timer"
        if not timer.exists():
            return {"unavailable": "no C compiler"}
        for n in BATCHES:
            xin, got = work / f"x{n}.bin", work / f"y{n}.bin"
            x[:n].tofile(xin)
            run = subprocess.run(["env", "-i", str(timer), str(n), str(samples), str(xin), str(got)],
                                 capture_output=True, text=True, check=True)
            y = np.fromfile(got, np.float32).reshape(n, 10)
            np.testing.assert_allclose(y, expected[:n], rtol=1e-4, atol=1e-4)
            out[f"batch {n}"] = float(run.stdout)
        out["versions"] = {}
        return out
    try:
        make, versions = _runner(name, work, x, params)
    except ImportError as e:
        return {"unavailable": str(e)}
    for n in BATCHES:
        fn = make(np.ascontiguousarray(x[:n]))
        np.testing.assert_allclose(fn(), expected[:n], rtol=1e-4, atol=1e-4)
        out[f"batch {n}"] = _time(fn, samples)
    out["versions"] = versions
    return out


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.3f} ms"


def versions_of(results: dict, *modules: str) -> str:
    """"Versions: ..." for a report: what the runners reported, and these modules'."""
    import importlib
    versions = {}
    for r in results.values():
        versions.update(r.get("versions", {}))
    versions.update({m: importlib.import_module(m).__version__ for m in modules})
    return "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))


def report(results: dict, tiny: bool) -> str:
    sys.path.insert(0, str(HERE))
    from run import machine
    present = [r for r in RUNNERS if "batch 1" in results.get(r, {})]
    lines = ["# Deployed inference: graphc's exports against their peers", "",
             "Measured by `python benchmarks/export_run.py` in one run (each runner in its own process, "
             "interleaved rounds; a figure is the median over rounds of each round's median). "
             "W6: the LeNet-5 of W5 (28x28x1, same weights), logits for one batch. *vs* is the time over "
             "the fastest peer's (below 1: faster). Every runner's logits were checked against the Session's.",
             "", f"Machine: {machine()}", "", versions_of(results, "numba", "llvmlite", "numpy"), "",
             f"Sizes: {'tiny (smoke run: the numbers mean nothing)' if tiny else 'full'}.", "",
             "| W6 | " + " | ".join(present) + " | best peer | " + " | ".join(
                 f"{r} vs best" for r in present if r.startswith("graphc")) + " |",
             "|---|" + "---|" * (len(present) + 1 + sum(r.startswith("graphc") for r in present))]
    for n in BATCHES:
        key = f"batch {n}"
        peers = {r: results[r][key] for r in PEERS if r in present}
        best = min(peers, key=peers.get) if peers else None
        cells = [_fmt(results[r][key]) for r in present]
        ratios = [f"{results[r][key] / peers[best]:.2f}" if best else "n/a" for r in present if r.startswith("graphc")]
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {best or 'n/a'} | " + " | ".join(ratios) + " |")
    missing = [f"{r} ({results[r].get('unavailable', 'error')})" for r in RUNNERS if r not in present]
    if missing:
        lines += ["", "Not measured: " + "; ".join(missing) + "."]
    spread = [f"{r} {key}: {_fmt(lo)}–{_fmt(hi)}" for r in present for key, (lo, hi) in
              results[r].get("spread", {}).items()]
    if spread:
        lines += ["", "Spread over rounds (fastest and slowest round): " + "; ".join(spread) + "."]
    return "\n".join(lines) + "\n"


def interleaved_rounds(script: str, runners, work: Path, rounds: int, tiny: bool) -> dict:
    """``{runner: [its worker's JSON per round]}``: each runner in its own process
    (``script --worker NAME``), the runners interleaved round after round."""
    runs: dict = {r: [] for r in runners}
    for k in range(rounds):
        for r in runners:
            cmd = [sys.executable, script, "--worker", r, "--work", str(work)] + (["--tiny"] if tiny else [])
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                runs[r].append({"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"})
                print(f"round {k + 1}: {r} failed: {runs[r][-1]['error']}", file=sys.stderr)
                continue
            runs[r].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {k + 1}: {r} done", file=sys.stderr)
    return runs


def merge_rounds(runs: dict, keys) -> dict:
    """Per runner: the median over rounds of each key, its spread, and the versions (or
    the reason it was not measured)."""
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
    return results


def bench_main(argv, *, script: str, out: Path, runners, keys, build, worker, report) -> int:
    """The command line both deployed-inference benchmarks share: ``--tiny``, ``--rounds``,
    ``--out``, and the hidden ``--worker`` mode that one runner's process runs."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--out", default=str(out))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.work), args.tiny)))
        return 0
    with tempfile.TemporaryDirectory(prefix="graphc-bench-") as tmp:
        work = Path(tmp)
        build(work)
        runs = interleaved_rounds(script, runners, work, args.rounds or (1 if args.tiny else 3), args.tiny)
    text = report(merge_rounds(runs, keys), args.tiny)
    Path(args.out).write_text(text)
    print(text)
    return 0


def main(argv=None) -> int:
    return bench_main(argv, script=__file__, out=HERE / "RESULTS-EXPORT.md", runners=RUNNERS,
                      keys=[f"batch {n}" for n in BATCHES], build=build, worker=worker, report=report)


if __name__ == "__main__":
    sys.exit(main())

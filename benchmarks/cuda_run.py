"""W1a, W1b, W2 and W5 on a GPU: graphc (device="cuda") beside torch and jax on CUDA.

    python benchmarks/cuda_run.py                 # full sizes, writes benchmarks/RESULTS-CUDA.md
    python benchmarks/cuda_run.py --tiny --out X  # tiny sizes (runs under NUMBA_ENABLE_CUDASIM=1 too)

Data and parameters stay on the device for every framework, so the figures compare kernels
and per-step overhead, not PCIe copies: graphc's inputs are variables, an elementwise or layer
norm result is assigned to a variable (nothing is fetched), and a training step fetches only
its scalar loss, as torch's ``loss.item()`` and jax's ``block_until_ready`` do.

W1a also runs at 2**26 elements and is reported as memory bandwidth (bytes read and written
over time) against the device's peak, computed from its memory clock and bus width.
Each framework runs in its own subprocess; rounds interleave them (see run.py).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workloads as wl  # noqa: E402
from run import _fmt, _time, machine  # noqa: E402

FRAMEWORKS = ("graphc", "torch", "jax")
WORKLOADS = ("W1a", "W1a-bw", "W1b", "W2", "W5")
TARGETS = {"W2": ("torch", 1.5)}  # graphc / torch on CUDA
BANDWIDTH_TARGET = 0.8             # fused elementwise: fraction of peak memory bandwidth
SIZES = {
    "full": {"W1a": 4_194_304, "W1a-bw": 1 << 26, "W1b": (4096, 1024), "W2": (256, 784, 512, 512, 10), "W5": 64},
    "tiny": {"W1a": 256, "W1a-bw": 512, "W1b": (4, 16), "W2": (4, 8, 6, 6, 10), "W5": 1},
}


# --- graphc ------------------------------------------------------------------------------------------------
def _graphc_assign(build, *arrays):
    """A step that computes ``build(*variables)`` on device-resident inputs into a variable."""
    import graphc as gc
    g = gc.Graph()
    with g.as_default():
        inputs = [gc.Variable(a, name=f"in{i}") for i, a in enumerate(arrays)]
        y = build(gc, *inputs)
        out = gc.Variable(gc.zeros(y.shape.as_list(), y.dtype), name="out")
        step = gc.assign(out, y).op
        init = gc.global_variables_initializer()
    sess = gc.Session(graph=g, device="cuda")
    sess.run(init)
    run_step = sess.make_callable(step)
    from numba import cuda

    def step_and_wait():  # kernel launches return at once: time the work, not the launch
        run_step()
        cuda.synchronize()
    return step_and_wait


def _gelu(gc, x):
    return gc.nn.gelu(x, approximate=True)


def _layer_norm(gc, x, gamma, beta):
    mean = gc.reduce_mean(x, -1, keepdims=True)
    var = gc.reduce_mean(gc.square(x - mean), -1, keepdims=True)
    return (x - mean) * gc.rsqrt(var + 1e-5) * gamma + beta


def graphc(name, size):
    import numpy as np
    rng = np.random.default_rng(0)
    if name in ("W1a", "W1a-bw"):
        return _graphc_assign(_gelu, rng.standard_normal(size).astype(np.float32))
    if name == "W1b":
        rows, cols = size
        return _graphc_assign(_layer_norm, rng.standard_normal(size).astype(np.float32),
                              rng.standard_normal(cols).astype(np.float32), rng.standard_normal(cols).astype(np.float32))
    return wl.w2("graphc", size, "cuda") if name == "W2" else wl.w5("graphc", size, "cuda")


# --- torch ---------------------------------------------------------------------------------------------------
def torch(name, size):
    import numpy as np
    torch = wl._import("torch")
    if not torch.cuda.is_available():
        raise wl.Unavailable("torch: CUDA is not available")
    dev = torch.device("cuda")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    sync = torch.cuda.synchronize
    if name in ("W1a", "W1a-bw"):
        x = torch.from_numpy(rng.standard_normal(size).astype(np.float32)).to(dev)

        def gelu():  # graphc's step writes a variable; torch allocates its output from its cache
            F.gelu(x, approximate="tanh")
            sync()
        return gelu
    if name == "W1b":
        rows, cols = size
        x = torch.from_numpy(rng.standard_normal(size).astype(np.float32)).to(dev)
        gamma, beta = (torch.from_numpy(rng.standard_normal(cols).astype(np.float32)).to(dev) for _ in range(2))

        def ln():
            F.layer_norm(x, (cols,), gamma, beta, 1e-5)
            sync()
        return ln
    return wl.w2("torch", size, "cuda") if name == "W2" else wl.w5("torch", size, "cuda")


# --- jax -------------------------------------------------------------------------------------------------------
def jax(name, size):
    jax = wl._import("jax")
    if not any(d.platform == "gpu" for d in jax.devices()):
        raise wl.Unavailable("jax: no GPU device")
    # the CPU workloads' jits: device_put lands on the GPU, and block_until_ready waits for it
    if name in ("W1a", "W1a-bw"):
        return wl.w1a("jax", size)
    return {"W1b": wl.w1b, "W2": wl.w2, "W5": wl.w5}[name]("jax", size)


BUILDERS = {"graphc": graphc, "torch": torch, "jax": jax}


def peak_bandwidth() -> float:
    """Bytes per second the device's memory can move (DDR: two transfers per clock)."""
    from numba import cuda
    device = cuda.get_current_device()
    clock_khz = device.MEMORY_CLOCK_RATE
    bus_bits = device.GLOBAL_MEMORY_BUS_WIDTH
    return 2.0 * clock_khz * 1e3 * bus_bits / 8


def worker(framework: str, tiny: bool, workloads=WORKLOADS) -> dict:
    sizes = SIZES["tiny" if tiny else "full"]
    out = {}
    for name in workloads:
        try:
            fn = BUILDERS[framework](name, sizes[name])
        except wl.Unavailable as e:
            out[name] = {"unavailable": str(e)}
            continue
        except Exception as e:
            out[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
            continue
        out[name] = {"seconds": _time(fn, min_time=2.0, max_reps=30, tiny=tiny)}
    if framework == "graphc":
        try:
            from graphc.codegen.cuda.api import describe, simulated
            out["device"] = describe()
            out["peak_bandwidth"] = None if simulated() else peak_bandwidth()
        except Exception as e:
            out["device"] = f"unknown ({type(e).__name__}: {e})"
    return out


def report(results: dict, tiny: bool) -> str:
    sizes = SIZES["tiny" if tiny else "full"]
    g = results.get("graphc", {})
    lines = ["# CUDA benchmark results", "",
             "Measured by `python benchmarks/cuda_run.py` in one run (frameworks in their own processes,",
             "interleaved rounds, median of round medians). Data and parameters stay on the device.", "",
             f"Device: {g.get('device', 'unknown')}", f"Host: {machine()}", "",
             "| workload | " + " | ".join(FRAMEWORKS) + " | graphc / torch | graphc / jax | target | met |",
             "|---|" + "---|" * (len(FRAMEWORKS) + 4)]
    for name in WORKLOADS:
        cells = {fw: results.get(fw, {}).get(name, {}).get("seconds") for fw in FRAMEWORKS}
        ratio = {p: (f"{cells['graphc'] / cells[p]:.2f}" if cells["graphc"] and cells[p] else "n/a")
                 for p in ("torch", "jax")}
        target, met = "", "n/a"
        if name in TARGETS:
            peer, goal = TARGETS[name]
            target = f"≤ {goal}× {peer}"
            if cells["graphc"] and cells[peer]:
                met = "yes" if cells["graphc"] / cells[peer] <= goal else "no"
        if name == "W1a-bw":
            peak = g.get("peak_bandwidth")
            target = f"≥ {BANDWIDTH_TARGET:.0%} of peak bandwidth"
            if peak and cells["graphc"]:
                achieved = 2 * 4 * sizes[name] / cells["graphc"]
                met = f"{achieved / 1e9:.0f} GB/s = {achieved / peak:.0%} of {peak / 1e9:.0f} GB/s: " + \
                    ("yes" if achieved / peak >= BANDWIDTH_TARGET else "no")
                if achieved > peak:  # faster than the memory can move data: the timing did not wait
                    met = f"invalid: {achieved / 1e9:.0f} GB/s is above the peak; the step was not waited for"
        lines.append(f"| {name} | " + " | ".join(_fmt(c) if c else "n/a" for c in cells.values())
                     + f" | {ratio['torch']} | {ratio['jax']} | {target} | {met} |")
    problems = [f"- {fw} {w}: {e.get('error') or e.get('unavailable')}" for fw, r in results.items()
                for w, e in r.items() if isinstance(e, dict) and ("error" in e or "unavailable" in e)]
    if problems:
        lines += ["", "Not measured:", ""] + problems
    lines += ["", f"Sizes: {sizes}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default=str(HERE / "RESULTS-CUDA.md"))
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--python", action="append", default=[], metavar="FW=PATH")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.tiny, args.workloads.split(","))))
        return 0
    pythons = dict(item.split("=", 1) for item in args.python)
    frameworks = args.frameworks.split(",")
    runs: dict = {fw: [] for fw in frameworks}
    for r in range(1 if args.tiny else args.rounds):
        for fw in frameworks:
            cmd = [pythons.get(fw, sys.executable), __file__, "--worker", fw, "--workloads", args.workloads] + \
                (["--tiny"] if args.tiny else [])
            print(f"[cuda-bench] round {r + 1}: {fw} ...", flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"[cuda-bench] {fw} failed: {proc.stderr[-300:]}", flush=True)
                runs[fw].append({name: {"error": proc.stderr[-300:]} for name in WORKLOADS})
                continue
            runs[fw].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    results = {}
    for fw, rounds in runs.items():
        merged = dict(rounds[0])
        for name in WORKLOADS:
            secs = [r[name]["seconds"] for r in rounds if "seconds" in r.get(name, {})]
            if secs:
                merged[name] = {"seconds": statistics.median(secs)}
        results[fw] = merged
    text = report(results, args.tiny)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the benchmark workloads side by side with every installed peer; write RESULTS.md.

    python benchmarks/run.py                 # full sizes, writes benchmarks/RESULTS.md
    python benchmarks/run.py --tiny --out X  # tiny sizes (CI keeps the script working)

Each framework runs in its own subprocess (so thread pools and BLAS libraries do not fight),
one after the other, in several interleaved rounds (this machine's speed drifts by up to 2x
from minute to minute). A figure is the median over rounds of each round's median.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAMEWORKS = ("graphc", "numpy", "jax", "torch", "tf1", "pytensor")
WORKLOADS = ("W1a", "W1b", "W2", "W3-run", "W3-callable", "W5", "W7", "W7-small")
TARGETS = {  # graphc / best peer, or absolute seconds
    "W1a": ("ratio", 1.0, "jax"), "W1b": ("ratio", 1.0, "torch"), "W2": ("ratio", 0.95, "jax"),  # named peer
    "W5": ("ratio", 0.9, "tf1"), "W3-run": ("abs", 5e-6, None), "W3-callable": ("abs", 2e-6, None),
    "W7": ("ratio", 1.0, None), "W7-small": ("ratio", 1.0, None),  # None: the best peer
    "W4-cold": ("abs", 1.5, None), "W4-warm": ("abs", 0.2, None), "import": ("abs", 0.5, None),
}


def _time(fn, min_time: float, max_reps: int, tiny: bool) -> float:
    """Median seconds per call (calls are batched so each sample lasts ~1 ms or more)."""
    for _ in range(2 if tiny else 5):
        fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    batch = max(1, int(1e-3 / once))
    samples = []
    deadline = time.perf_counter() + (0.05 if tiny else min_time)
    while len(samples) < (3 if tiny else max_reps) and (time.perf_counter() < deadline or len(samples) < 3):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - t0) / batch)
    return statistics.median(samples)


def worker(framework: str, tiny: bool) -> dict:
    """Runs in a subprocess: every workload for one framework."""
    sys.path.insert(0, str(HERE))
    import workloads as wl
    sizes = wl.SIZES["tiny" if tiny else "full"]
    out = {"versions": _versions(framework)}
    plan = [("W1a", lambda: wl.w1a(framework, sizes["W1a"])),
            ("W1b", lambda: wl.w1b(framework, sizes["W1b"])),
            ("W2", lambda: wl.w2(framework, sizes["W2"])),
            ("W3-run", lambda: wl.w3(framework, "run")),
            ("W3-callable", lambda: wl.w3(framework, "callable")),
            ("W5", lambda: wl.w5(framework, sizes["W5"])),
            ("W7", lambda: wl.w7(framework, sizes["W7"])),
            ("W7-small", lambda: wl.w7(framework, sizes["W7-small"]))]
    for name, build in plan:
        try:
            fn = build()
        except wl.Unavailable as e:
            out[name] = {"unavailable": str(e)}
            continue
        except Exception as e:  # a peer that cannot run a workload is reported, not fatal
            out[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
            continue
        out[name] = {"seconds": _time(fn, min_time=2.0, max_reps=30, tiny=tiny)}
    return out


def _combine_rounds(runs: list) -> dict:
    """One result per workload: the median over rounds of each round's median; the spread
    (min, max over rounds) is kept for the report."""
    out = {"versions": next((r["versions"] for r in runs if r.get("versions")), {})}
    names = {k for r in runs for k, v in r.items() if isinstance(v, dict) and k != "versions"}
    for name in names:
        times = [r[name]["seconds"] for r in runs if "seconds" in r.get(name, {})]
        if times:
            out[name] = {"seconds": statistics.median(times), "spread": (min(times), max(times)),
                         "rounds": len(times)}
        else:
            out[name] = next(r[name] for r in runs if name in r)
    return out


def _versions(framework: str) -> dict:
    import numpy
    v = {"numpy": numpy.__version__}
    try:
        if framework == "graphc":
            import graphc, numba, llvmlite, scipy
            v.update(graphc=graphc.__version__, numba=numba.__version__, llvmlite=llvmlite.__version__,
                     scipy=scipy.__version__)
        elif framework == "jax":
            import jax
            v["jax"] = jax.__version__
        elif framework == "torch":
            import torch
            v["torch"] = torch.__version__
            v["torch_threads"] = torch.get_num_threads()
        elif framework == "tf1":
            import tensorflow
            v["tensorflow"] = tensorflow.__version__
        elif framework == "pytensor":
            import pytensor
            v["pytensor"] = pytensor.__version__
    except Exception:
        pass
    return v


W4_SCRIPT = r"""
import sys, time
sys.path.insert(0, {here!r})
t0 = time.perf_counter()
import graphc as gc
import workloads as wl
t1 = time.perf_counter()
g, x, y, loss, train, init, xv, yv = wl.build_graphc_mlp({sizes!r})
with gc.Session(graph=g) as sess:
    sess.run(init)
    sess.run([train, loss], {{x: xv, y: yv}})
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def w4(tiny: bool, python: str) -> dict:
    """Definition to first training step of W2 in a fresh process, cold and warm cache."""
    sys.path.insert(0, str(HERE))
    import workloads as wl
    sizes = wl.SIZES["tiny" if tiny else "full"]["W2"]
    script = W4_SCRIPT.format(here=str(HERE), sizes=sizes)
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, GRAPHC_CACHE_DIR=cache)
        runs = []
        for _ in range(2 if tiny else 4):
            out = subprocess.run([python, "-c", script], capture_output=True, text=True, env=env, check=True)
            runs.append([float(v) for v in out.stdout.split()])
    return {"W4-cold": {"seconds": runs[0][1]}, "W4-warm": {"seconds": statistics.median(r[1] for r in runs[1:])}}


def import_time(tiny: bool, python: str) -> dict:
    code = "import time; t = time.perf_counter(); import graphc; print(time.perf_counter() - t)"
    times = [float(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)
             for _ in range(2 if tiny else 7)]
    return {"import": {"seconds": statistics.median(times)}}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    env = ", ".join(f"{k}={os.environ[k]}" for k in sorted(os.environ)
                    if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "GRAPHC_", "XLA_")))
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}; environment: {env or 'no thread or BLAS variables set'}")


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.2f} s"


def report(results: dict, tiny: bool, notes: str) -> str:
    lines = ["# Benchmark results", "",
             "Every figure in the table was measured by `python benchmarks/run.py` in one run: each framework in",
             "its own process, frameworks interleaved over several rounds; a figure is the median over rounds of",
             "each round's median. *vs* columns are graphc's time over the peer's (below 1: graphc is faster).",
             "Tests never assert timings: performance is recorded here.", "",
             "Also measured: memory of the training steps against the peers in [RESULTS-MEMORY.md](RESULTS-MEMORY.md)",
             "(`benchmarks/memory.py`), and how time grows with size (W1a by elements, W2 by batch) in",
             "[RESULTS-SWEEP.md](RESULTS-SWEEP.md) (`benchmarks/sweep.py`).", "",
             f"Machine: {machine()}", ""]
    versions = {}
    for fw, r in results.items():
        if isinstance(r, dict):
            versions.update(r.get("versions", {}))
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    lines += ["", f"Sizes: {'tiny (CI smoke run)' if tiny else 'full'}.", ""]
    present = [fw for fw in FRAMEWORKS if fw in results]
    lines.append("| workload | " + " | ".join(present) + " | best peer | vs best | target | vs target peer | met |")
    lines.append("|---|" + "---|" * (len(present) + 5))
    for wname in WORKLOADS:
        cells, peers = [], {}
        for fw in present:
            entry = results[fw].get(wname, {})
            if "seconds" in entry:
                cells.append(_fmt(entry["seconds"]))
                if fw != "graphc":
                    peers[fw] = entry["seconds"]
            else:
                cells.append("n/a")
        mine = results.get("graphc", {}).get(wname, {}).get("seconds")
        best = min(peers.items(), key=lambda kv: kv[1]) if peers else None
        kind, goal, peer = TARGETS[wname]
        ratio = f"{mine / best[1]:.2f}" if mine and best else "n/a"
        if kind == "ratio":
            # the target is a ratio to one named peer; the best peer is shown as well
            theirs = peers.get(peer) if peer else (best[1] if best else None)
            vs_peer = f"{mine / theirs:.2f}" if mine and theirs else "n/a"
            met = "n/a" if not (mine and theirs) else ("yes" if mine / theirs <= goal else "no")
            target = f"≤ {goal}× {peer or 'best peer'}"
        else:
            vs_peer = "n/a"
            met = "yes" if mine is not None and mine <= goal else "no"
            target = f"≤ {_fmt(goal)}"
        lines.append(f"| {wname} | " + " | ".join(cells)
                     + f" | {best[0] if best else 'n/a'} | {ratio} | {target} | {vs_peer} | {met} |")
    for name in ("W4-cold", "W4-warm", "import"):
        entry = results.get("graphc-process", {}).get(name)
        if entry:
            goal = TARGETS[name][1]
            met = "yes" if entry["seconds"] <= goal else "no"
            lines.append(f"| {name} | {_fmt(entry['seconds'])} |" + " |" * (len(present) - 1)
                         + f" n/a | n/a | ≤ {_fmt(goal)} | n/a | {met} |")
    lines += ["", "Workloads (float32): W1a GELU-tanh on 4,194,304 elements; W1b row layer norm on (4096, 1024);",
              "W2 MLP 784-512-512-10 training step (ReLU, softmax cross-entropy, SGD, batch 256); W3 call",
              "overhead of `Session.run` / `make_callable` on z = a*b + c, shape (1,); W4 definition to first W2",
              "step in a fresh process (cold and warm kernel cache); W5 LeNet-5 training step, batch 64, 28×28;",
              "W7 LSTM training step (graphc BasicLSTMCell in dynamic_rnn / torch nn.LSTM / jax lax.scan / TF1",
              "graph mode tf.scan, since TF 2.21's dynamic_rnn cells need Keras 2; sequence 50, batch 32, input",
              "64, hidden 256; W7-small hidden 32; loss on the last output, SGD);",
              "import: `import graphc`. graphc runs with `make_callable` except W3-run.", ""]
    spreads = []
    for wname in WORKLOADS:
        parts = [f"{fw} {_fmt(e['spread'][0])}–{_fmt(e['spread'][1])}" for fw in present
                 for e in [results[fw].get(wname, {})] if "spread" in e and e.get("rounds", 1) > 1]
        if parts:
            spreads.append(f"- {wname}: " + "; ".join(parts))
    if spreads:
        lines += ["Spread over rounds (fastest and slowest round median):", ""] + spreads + [""]
    errors = [f"- {fw} {w}: {e.get('error') or e.get('unavailable')}" for fw, r in results.items()
              if isinstance(r, dict) for w, e in r.items() if isinstance(e, dict) and ("error" in e)]
    if errors:
        lines += ["Peers that failed a workload:", ""] + errors + [""]
    if notes:
        lines += [notes.strip(), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, few repeats (CI)")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--notes", default=str(HERE / "NOTES.md"), help="analysis appended to the report")
    parser.add_argument("--python", action="append", default=[], metavar="FW=PATH",
                        help="run framework FW under another interpreter (e.g. graphc=.venv/bin/python when "
                             "the peers live in a separate environment)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians over rounds")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.tiny)))
        return 0
    pythons = dict(item.split("=", 1) for item in args.python)
    frameworks = args.frameworks.split(",")
    rounds = 1 if args.tiny else args.rounds
    per_round: dict = {fw: [] for fw in frameworks}
    for r in range(rounds):  # frameworks interleaved, so a noisy minute hits all of them alike
        for fw in frameworks:
            cmd = [pythons.get(fw, sys.executable), __file__, "--worker", fw] + (["--tiny"] if args.tiny else [])
            print(f"[bench] round {r + 1}/{rounds}: {fw} ...", flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                per_round[fw].append({"versions": {}, "error": proc.stderr[-500:]})
                print(f"[bench] {fw} failed: {proc.stderr[-300:]}", flush=True)
                continue
            per_round[fw].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    results = {fw: _combine_rounds(runs) for fw, runs in per_round.items()}
    if "graphc" in results:
        print("[bench] W4 and import time ...", flush=True)
        python = pythons.get("graphc", sys.executable)
        results["graphc-process"] = {**w4(args.tiny, python), **import_time(args.tiny, python)}
    notes = Path(args.notes).read_text() if args.notes and Path(args.notes).exists() and not args.tiny else ""
    text = report(results, args.tiny, notes)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)  # atomic: a failed run never leaves half a report
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

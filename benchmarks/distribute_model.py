"""A cost model of data-parallel training past one machine, checked against this machine.

    python benchmarks/distribute_model.py            # writes benchmarks/RESULTS-DISTRIBUTE-MODEL.md
    python benchmarks/distribute_model.py --tiny     # CI: a few sizes, few repeats

Ring all-reduce of B bytes over N ranks (each rank sends and receives 2(N-1) chunks of B/N):

    T(N, B) = 2 (N - 1) alpha  +  2 (N - 1) / N * B / bandwidth

1. Measure graphc's all-reduce (``hvd.allreduce``'s host path, with its same-collective
   check) on 2 ranks of this machine for buffers from 4 KiB to 16 MiB, and fit alpha and the
   bandwidth of its shared memory by least squares (for N = 2, T = 2 alpha + B / bandwidth).
2. Check the model against the measured W10 figures (benchmarks/RESULTS-DISTRIBUTE.json):
   the predicted all-reduce time of each workload's gradients against the communication the
   profiler measured in its 2-rank step.
3. Apply it to the models at 2-256 ranks over common networks (nominal figures, stated in the
   table), with the step's computation from W10's one-rank time: the efficiency without
   overlap, t / (t + T), which is graphc's today (docs/DISTRIBUTED.md).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RANKS = (2, 4, 8, 16, 32, 64, 128, 256)
# name: (bandwidth in bytes/s, latency alpha in seconds) -- nominal, for the model's tables
NETWORKS = {
    "10 GbE (TCP)": (1.25e9, 25e-6),
    "25 GbE (TCP)": (3.1e9, 15e-6),
    "100 Gb/s InfiniBand (EDR)": (12.5e9, 2e-6),
    "NVLink 3 (NCCL ring)": (150e9, 5e-6),
}
# Well-known parameter counts, for scale (float32 gradients: 4 bytes each).
REFERENCE_MODELS = {"ResNet-50": 25_557_032, "BERT-base": 110_000_000}


def ring_seconds(n: int, nbytes: float, bandwidth: float, alpha: float) -> float:
    """Time of one ring all-reduce of ``nbytes`` over ``n`` ranks."""
    if n <= 1:
        return 0.0
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes / bandwidth


def fit(measured: dict) -> tuple:
    """(alpha, bandwidth) from {bytes: seconds} measured on 2 ranks (T = 2 alpha + B / bw), by
    least squares on relative errors (so that 4 KiB counts as much as 16 MiB)."""
    sizes = np.array([float(b) for b in measured])
    times = np.array([measured[b] for b in measured])
    a = np.vstack([np.full_like(sizes, 2.0), sizes]).T / times[:, None]
    (alpha, inverse), *_ = np.linalg.lstsq(a, np.ones_like(times), rcond=None)
    return max(float(alpha), 0.0), 1.0 / max(float(inverse), 1e-15)


# --- measuring (each rank runs this under mpiexec) --------------------------------------------------
def measure_rank(sizes, repeats: int) -> None:
    import graphc.distribute as hvd
    from graphc.distribute import world
    hvd.init()
    w = world.current()
    out = {}
    for nbytes in sizes:
        a = [np.ones(nbytes // 4, np.float32)]
        for _ in range(3):
            w.allreduce(a, True, f"{nbytes} bytes")
        times = []
        for _ in range(repeats):
            w.comm.Barrier()
            t0 = time.perf_counter()
            w.allreduce(a, True, f"{nbytes} bytes")
            times.append(time.perf_counter() - t0)
        out[nbytes] = float(np.median(times))
    if hvd.rank() == 0:
        print(json.dumps(out), flush=True)


def measure(sizes, repeats: int) -> dict:
    from graphc.distribute.run import find_mpiexec
    env = dict(os.environ, GRAPHC_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [find_mpiexec(), "-n", "2", sys.executable, str(Path(__file__).resolve()), "--measure-rank",
           ",".join(map(str, sizes)), str(repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    line = [s for s in done.stdout.splitlines() if s.startswith("{")][-1]
    return {int(k): v for k, v in json.loads(line).items()}


# --- the models ------------------------------------------------------------------------------------
def gradient_bytes() -> dict:
    """Bytes of float32 gradients per step of each model."""
    sys.path.insert(0, str(HERE))
    import graphc as gc
    import workloads as wl
    from graphc import zoo
    out = {}
    sizes = wl.SIZES["full"]
    _, _, weights = wl._mlp_data(sizes["W2"])
    out["W2 MLP 784-512-512-10"] = sum(w.size for w in weights) * 4
    _, _, params = wl._lenet_data(sizes["W5"])
    out["W5 LeNet-5"] = sum(p.size for p in params) * 4
    for name, build in (("zoo.mlp (digits)", zoo.mlp), ("zoo.lenet (digits)", zoo.lenet)):
        model = build()
        with model.graph.as_default():
            out[name] = sum(int(np.prod(v.shape.as_list())) for v in gc.trainable_variables()) * 4
    for name, count in REFERENCE_MODELS.items():
        out[name] = count * 4
    return out


def _fmt_time(s: float) -> str:
    return f"{s * 1e6:.0f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def report(measured: dict, alpha: float, bandwidth: float, w10: dict, grads: dict, tiny: bool) -> str:
    sys.path.insert(0, str(HERE))
    from run import machine
    lines = ["# The cost model of ring all-reduce, checked on this machine", "",
             "Written by `python benchmarks/distribute_model.py` (docs/DISTRIBUTED.md explains the model). "
             "T(N, B) = 2(N−1)·α + 2(N−1)/N · B / bandwidth for B bytes on N ranks.", "",
             f"Machine: {machine()}", "",
             f"Sizes: {'tiny (smoke run: the numbers mean nothing)' if tiny else 'full'}.", "",
             "## 1. graphc's all-reduce on 2 ranks of this machine (shared memory)", "",
             "| bytes | measured | model | model / measured |", "|---|---|---|---|"]
    for b, t in sorted(measured.items()):
        model = ring_seconds(2, b, bandwidth, alpha)
        lines.append(f"| {b:,} | {_fmt_time(t)} | {_fmt_time(model)} | {model / t:.2f} |")
    lines += ["", f"Fitted: α = {alpha * 1e6:.1f} µs per step, bandwidth = {bandwidth / 1e9:.2f} GB/s.", "",
              "## 2. The model against W10's measured 2-rank steps", ""]
    if w10:
        lines += ["| workload | gradient bytes | predicted all-reduce | measured communication (profiler) | "
                  "predicted / measured |", "|---|---|---|---|---|"]
        for key, gname in (("W2", "W2 MLP 784-512-512-10"), ("W5", "W5 LeNet-5")):
            measured_comm = w10.get(key, {}).get("comm_seconds")
            if measured_comm is None:
                continue
            predicted = ring_seconds(2, grads[gname], bandwidth, alpha)
            lines.append(f"| {key} | {grads[gname]:,} | {_fmt_time(predicted)} | {_fmt_time(measured_comm)} | "
                         f"{predicted / measured_comm:.2f} |")
        lines += ["", "The measured communication is the all-reduce's host step, which includes waiting for the "
                  "slower rank to arrive: the model counts only the transfer."]
    else:
        lines += ["(benchmarks/RESULTS-DISTRIBUTE.json is missing: run benchmarks/distribute_run.py first.)"]
    lines += ["", "## 3. Past one machine: all-reduce time per step", "",
              "Nominal networks: " + "; ".join(f"{k}: {bw / 1e9:g} GB/s, α {a * 1e6:g} µs"
                                               for k, (bw, a) in NETWORKS.items()) + ".", ""]
    for net, (bw, a) in NETWORKS.items():
        lines += [f"### {net}", "", "| model | gradient bytes | " + " | ".join(f"N={n}" for n in RANKS) + " |",
                  "|---|---|" + "---|" * len(RANKS)]
        for name, b in grads.items():
            lines.append(f"| {name} | {b:,} | " + " | ".join(_fmt_time(ring_seconds(n, b, bw, a)) for n in RANKS)
                         + " |")
        lines.append("")
    if w10:
        lines += ["## 4. Predicted weak-scaling efficiency without overlap, t / (t + T)", "",
                  "t: the one-rank step measured in W10 on this machine (one thread).", ""]
        for key, gname in (("W2", "W2 MLP 784-512-512-10"), ("W5", "W5 LeNet-5")):
            t = w10.get(key, {}).get("step_seconds")
            if t is None:
                continue
            lines += [f"### {key} (t = {_fmt_time(t)})", "", "| network | " + " | ".join(f"N={n}" for n in RANKS)
                      + " |", "|---|" + "---|" * len(RANKS)]
            for net, (bw, a) in NETWORKS.items():
                lines.append(f"| {net} | " + " | ".join(
                    f"{t / (t + ring_seconds(n, grads[gname], bw, a)):.2f}" for n in RANKS) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--measure-rank":
        measure_rank([int(s) for s in argv[1].split(",")], int(argv[2]))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default=str(HERE / "RESULTS-DISTRIBUTE-MODEL.md"))
    parser.add_argument("--w10", default=str(HERE / "RESULTS-DISTRIBUTE.json"))
    args = parser.parse_args(argv)
    sizes = [4096, 65536, 1 << 20] if args.tiny else [4096, 16384, 65536, 262144, 1 << 20, 4 << 20, 16 << 20]
    measured = measure(sizes, 5 if args.tiny else 30)
    alpha, bandwidth = fit(measured)
    w10 = json.loads(Path(args.w10).read_text()) if os.path.exists(args.w10) else {}
    text = report(measured, alpha, bandwidth, w10, gradient_bytes(), args.tiny)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

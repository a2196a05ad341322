"""W10: weak scaling of data-parallel training (graphc.distribute) on this machine.

    python benchmarks/distribute_run.py              # writes benchmarks/RESULTS-DISTRIBUTE.md
    python benchmarks/distribute_run.py --tiny       # a smoke run (numbers mean nothing)

The W2 MLP step (batch 256 per rank) and the W5 LeNet-5 step (batch 64 per rank), with SGD
wrapped in ``hvd.DistributedOptimizer``. Every process runs one thread (GRAPHC_NUM_THREADS=1,
OPENBLAS_NUM_THREADS=1). Runners, each in its own process(es), interleaved over rounds (a
figure is the median over rounds of each round's median step time):
  1x1              one rank (no collective: a job of one averages nothing)
  2x1              two ranks under mpiexec, each on its own batch; gradients all-reduced
  2x1-independent  two ranks under mpiexec with the plain optimizer: no communication at all,
                   so its time over 1x1 is what sharing the machine costs by itself
Weak-scaling efficiency = time(1x1) / time(2x1): 1.0 when two ranks do twice the work in the
same time. Communication against computation comes from the profiler (a traced step times the
all-reduce's start and wait steps, docs/PROFILING.md) and from ``hvd.communication_seconds()``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import numpy as np  # noqa: E402

from export_run import _fmt, bench_main, timed_samples, versions_of  # noqa: E402  (shared with W6 and W9)

RUNNERS = ("1x1", "2x1", "2x1-independent")
WORKLOADS = ("W2", "W5")
KEYS = list(WORKLOADS) + [f"{w} {k}" for w in WORKLOADS for k in ("comm_us", "compute_us", "waiting")]
ONE_THREAD = {"GRAPHC_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "GRAPHC_ADAPTIVE_THREADS": "0"}


def build(work: Path) -> None:
    """Nothing to prepare: every rank builds its graphs from benchmarks/workloads.py."""


def _step(workload: str, tiny: bool, distributed: bool):
    """(step function, session, train op, feeds) for one rank."""
    import graphc as gc
    import graphc.distribute as hvd
    import workloads as wl
    sizes = wl.SIZES["tiny" if tiny else "full"]
    opt = gc.train.GradientDescent(0.01)
    if distributed:
        opt = hvd.DistributedOptimizer(opt)
    if workload == "W2":
        g, xp, yp, loss, _, _, x, y = wl.build_graphc_mlp(sizes["W2"])
    else:
        x, y, params = wl._lenet_data(sizes["W5"])
        g = gc.Graph()
        with g.as_default():
            xp = gc.placeholder(gc.float32, (None,) + x.shape[1:], "x")
            yp = gc.placeholder(gc.int64, (None,), "y")
            loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(
                labels=yp, logits=wl.graphc_lenet_logits(gc, xp, params)))
    with g.as_default():
        train = opt.minimize(loss)
        init = gc.global_variables_initializer()
    sess = gc.Session(graph=g, device="cpu")
    sess.run(init)
    f = sess.make_callable([train, loss], [xp, yp])
    return (lambda: f(x, y)), sess, (train, loss), {xp: x, yp: y}


def _time_together(fn, samples: int) -> float:
    """``export_run._time``, with the ranks agreeing on how many calls make a sample: each
    rank's own choice (from its own clock) would make them run different numbers of steps,
    and so different collectives (the same-collective check stops exactly that)."""
    import time
    from graphc.distribute import world
    for _ in range(5):
        fn()
    t0 = time.perf_counter()
    fn()
    mine = max(1, int(1e-3 / max(time.perf_counter() - t0, 1e-7)))
    w = world.current()
    batch = max(1, int(w.allreduce_host(np.array([mine], np.int64), average=False, key="the calls per sample")[0])
                // w.size)  # their mean
    return timed_samples(fn, batch, samples)


def _profile(sess, fetches, feeds, steps: int) -> dict:
    """Per step, from the profiler: microseconds in the collectives' host steps and in the rest."""
    import graphc as gc
    comm = compute = 0.0
    for _ in range(steps):
        md = gc.RunMetadata()
        sess.run(fetches, feeds, options=gc.RunOptions(trace_level=gc.RunOptions.FULL_TRACE), run_metadata=md)
        for dev in md.step_stats.dev_stats:
            for n in dev.node_stats:
                if n.kind != "kernel":
                    continue
                took = n.op_end_rel_micros - n.op_start_rel_micros
                if n.timeline_label.startswith("collective_"):
                    comm += took
                else:
                    compute += took
    return {"comm_us": comm / steps, "compute_us": compute / steps}


def rank_worker(distributed: bool, tiny: bool) -> None:
    """One rank of a run: time each workload; rank 0 prints the JSON line."""
    import graphc as gc
    import graphc.distribute as hvd
    hvd.init()
    samples = 3 if tiny else 15
    out = {"versions": {"graphc": gc.__version__}, "ranks": hvd.size()}
    for workload in WORKLOADS:
        step, sess, fetches, feeds = _step(workload, tiny, distributed)
        calls = [0]

        def counted():
            calls[0] += 1
            step()
        waited = hvd.communication_seconds()
        out[workload] = _time_together(counted, samples)
        out[f"{workload} waiting"] = (hvd.communication_seconds() - waited) / calls[0]
        for k, v in _profile(sess, fetches, feeds, 3 if tiny else 20).items():
            out[f"{workload} {k}"] = v
        sess.close()
    if hvd.rank() == 0:
        from mpi4py import MPI
        out["versions"].update({"mpi4py": __import__("mpi4py").__version__,
                                "MPI": MPI.Get_library_version().split("\n")[0].strip()})
        print(json.dumps(out), flush=True)


def worker(name: str, work: Path, tiny: bool) -> dict:
    env = dict(os.environ, **ONE_THREAD)
    args = [str(Path(__file__).resolve()), "--rank-worker", "distributed" if name == "2x1" else "plain"] + (
        ["--tiny"] if tiny else [])
    if name == "1x1":
        cmd = [sys.executable, *args]
    else:
        from graphc.distribute.run import find_mpiexec
        cmd = [find_mpiexec(), "-n", "2", sys.executable, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:  # one line (the report keeps the last): the ranks' errors
        errors = [line for line in done.stderr.splitlines() if "Error" in line and not line.startswith(" ")]
        raise RuntimeError(" | ".join(errors)[-1500:] or done.stderr.strip().replace("\n", " | ")[-1500:])
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def report(results: dict, tiny: bool) -> str:
    from run import machine
    lines = ["# W10: weak scaling of data-parallel training (graphc.distribute)", "",
             "Measured by `python benchmarks/distribute_run.py` in one run (each runner in its own processes, "
             "interleaved rounds; a figure is the median over rounds of each round's median step). Per rank: "
             "the W2 MLP step at batch 256 and the W5 LeNet-5 step at batch 64, SGD in "
             "`hvd.DistributedOptimizer`, one thread per process. *Efficiency* is the 1x1 step time over the "
             "2x1 step time (1.0: two ranks do twice the work in the same time); the target is at least 0.90. "
             "*Sharing* is 2x1-independent (two ranks, no communication) over 1x1: what two processes on this "
             "machine cost each other by themselves. Communication and computation are per step, from the "
             "profiler's traced steps of rank 0 (the all-reduce's start and wait steps; the kernels between them "
             "run while MPI moves the data).", "",
             f"Machine: {machine()}", "", versions_of(results, "numba", "numpy"), "",
             f"Sizes: {'tiny (smoke run: the numbers mean nothing)' if tiny else 'full'}.", "",
             "| workload | 1x1 | 2x1 | 2x1-independent | efficiency | sharing | 2x1 communication | "
             "2x1 computation | communication share |",
             "|---|---|---|---|---|---|---|---|---|"]
    for w in WORKLOADS:
        if not all(w in results.get(r, {}) for r in RUNNERS):
            continue
        one, two, alone = (results[r][w] for r in RUNNERS)
        comm, comp = results["2x1"][f"{w} comm_us"], results["2x1"][f"{w} compute_us"]
        share = comm / (comm + comp) if comm + comp else 0.0
        lines.append(f"| {w} | {_fmt(one)} | {_fmt(two)} | {_fmt(alone)} | {one / two:.2f} | {alone / one:.2f} | "
                     f"{_fmt(comm * 1e-6)} | {_fmt(comp * 1e-6)} | {share:.0%} |")
    spread = [f"{r} {w}: {_fmt(lo)}–{_fmt(hi)}" for r in RUNNERS for w, (lo, hi) in
              results.get(r, {}).get("spread", {}).items() if w in WORKLOADS]
    if spread:
        lines += ["", "Spread over rounds (fastest and slowest round): " + "; ".join(spread) + "."]
    if not tiny:  # the figures benchmarks/distribute_model.py checks its cost model against
        summary = {w: {"step_seconds": results["1x1"][w], "two_rank_step_seconds": results["2x1"][w],
                       "comm_seconds": results["2x1"][f"{w} comm_us"] * 1e-6}
                   for w in WORKLOADS if all(w in results.get(r, {}) for r in ("1x1", "2x1"))}
        (HERE / "RESULTS-DISTRIBUTE.json").write_text(json.dumps(summary, indent=1) + "\n")
    missing = [f"{r} ({results[r].get('unavailable', results[r].get('error', '?'))})" for r in RUNNERS
               if WORKLOADS[0] not in results.get(r, {})]
    if missing:
        lines += ["", "Not measured: " + "; ".join(missing) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--rank-worker" in argv:
        i = argv.index("--rank-worker")
        rank_worker(argv[i + 1] == "distributed", "--tiny" in argv)
        return 0
    return bench_main(argv, script=__file__, out=HERE / "RESULTS-DISTRIBUTE.md", runners=RUNNERS,
                      keys=KEYS, build=build, worker=worker, report=report)


if __name__ == "__main__":
    sys.exit(main())

"""W2, W5 and W8 with one core busy: how much each framework loses to another process.

    python benchmarks/busy_core.py --python graphc=.venv/bin/python   # writes RESULTS-BUSY.md
    python benchmarks/busy_core.py --tiny --out X                     # CI keeps it working

A laptop or a shared CI runner rarely has every core free. Threads that assume they have
(OpenBLAS' spinning workers, a kernel split in equal parts) then wait on the busy core, and
a step can take ten times as long. Each framework runs in its own subprocess, as in run.py;
in it every workload is timed quietly and then with a competing process (a Python busy loop
pinned to the last core the benchmark may use), alternating over rounds so that drift hits
both alike. A figure is the median over rounds of each round's median (run.py's ``_time``).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as R  # noqa: E402  (run.py's timing, versions and machine description)

FRAMEWORKS = ("graphc", "jax", "torch", "tf1")
WORKLOADS = ("W2", "W5", "W8")
HOG = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"


def _busy_core() -> int:
    return max(os.sched_getaffinity(0))


class Hog:
    """A process that keeps one core busy while it lives."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", HOG, str(_busy_core())])
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def worker(framework: str, tiny: bool, rounds: int) -> dict:
    import workloads as wl
    sizes = wl.SIZES["tiny" if tiny else "full"]
    builders = {"W2": lambda: wl.w2(framework, sizes["W2"]), "W5": lambda: wl.w5(framework, sizes["W5"]),
                "W8": lambda: wl.w8(framework, sizes["W8"])}
    out = {"versions": R._versions(framework)}
    for name in WORKLOADS:
        try:
            fn = builders[name]()
        except wl.Unavailable as e:
            out[name] = {"unavailable": str(e)}
            continue
        except Exception as e:  # a peer that cannot run a workload is reported, not fatal
            out[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
            continue
        quiet, busy = [], []
        for _ in range(rounds):
            quiet.append(R._time(fn, min_time=1.0, max_reps=20, tiny=tiny))
            with Hog():
                busy.append(R._time(fn, min_time=1.0, max_reps=20, tiny=tiny))
        out[name] = {"quiet": statistics.median(quiet), "busy": statistics.median(busy),
                     "quiet_spread": [min(quiet), max(quiet)], "busy_spread": [min(busy), max(busy)]}
    return out


def _run_worker(python: str, framework: str, tiny: bool, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "out.json"
        code = (f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import busy_core; "
                f"json.dump(busy_core.worker({framework!r}, {tiny!r}, {rounds}), open({str(path)!r}, 'w'))")
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0 or not path.exists():
            return {"error": (proc.stderr or proc.stdout)[-400:]}
        return json.loads(path.read_text())


def report(results: dict, tiny: bool) -> str:
    lines = ["# One core busy", "",
             "`python benchmarks/busy_core.py` (see its docstring): every workload timed with all cores free",
             f"and with a busy loop pinned to core {_busy_core()} of {len(os.sched_getaffinity(0))}; *busy/quiet* is "
             "what the other process costs each framework, *vs best* is graphc's time over the best peer's in "
             "the same state. Tests never assert timings.", "",
             f"Machine: {R.machine()}", ""]
    versions = {}
    for r in results.values():
        versions.update(r.get("versions", {}))
    lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())), "",
              f"Sizes: {'tiny (the figures mean nothing)' if tiny else 'full'}.", "",
              "| workload | framework | quiet | busy | busy/quiet | vs best quiet | vs best busy |",
              "|---|---|---|---|---|---|---|"]
    for w in WORKLOADS:
        got = {f: r[w] for f, r in results.items() if isinstance(r.get(w), dict) and "quiet" in r[w]}
        best = {state: min((v[state] for f, v in got.items() if f != "graphc"), default=None)
                for state in ("quiet", "busy")}
        for f in FRAMEWORKS:
            if f not in results:
                continue
            v = results[f].get(w, {})
            if "quiet" not in v:
                why = v.get("unavailable") or v.get("error") or results[f].get("error", "not run")
                lines.append(f"| {w} | {f} | n/a | n/a | | | {str(why)[:80]} |")
                continue
            vs = [f"{v[s] / best[s]:.2f}" if f == "graphc" and best[s] else "" for s in ("quiet", "busy")]
            lines.append(f"| {w} | {f} | {R._fmt(v['quiet'])} | {R._fmt(v['busy'])} | {v['busy'] / v['quiet']:.2f} "
                         f"| {vs[0]} | {vs[1]} |")
    lines += ["", "Spread over rounds (fastest and slowest round median, quiet; busy):", ""]
    for w in WORKLOADS:
        for f, r in results.items():
            v = r.get(w, {})
            if "quiet" in v:
                q, b = v["quiet_spread"], v["busy_spread"]
                lines.append(f"- {w} {f}: {R._fmt(q[0])}–{R._fmt(q[1])}; {R._fmt(b[0])}–{R._fmt(b[1])}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--python", action="append", default=[], help="framework=interpreter (graphc runs in .venv)")
    ap.add_argument("--out", default=str(HERE / "RESULTS-BUSY.md"))
    args = ap.parse_args(argv)
    if len(os.sched_getaffinity(0)) < 2:
        print("busy_core.py needs at least two cores", file=sys.stderr)
        return 2
    pythons = dict(p.split("=", 1) for p in args.python)
    rounds = args.rounds or (1 if args.tiny else 3)
    results = {}
    for f in args.frameworks.split(","):
        results[f] = _run_worker(pythons.get(f, sys.executable), f, args.tiny, rounds)
        print(f, json.dumps({w: results[f].get(w) for w in WORKLOADS}), flush=True)
    Path(args.out).write_text(report(results, args.tiny))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

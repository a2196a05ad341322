"""Where the start-up time goes: definition to the first training step, phase by phase.

    python benchmarks/startup_breakdown.py [--size full|tiny] [--repeats 3]

For W2 (the MLP step of W4) and W5 (the LeNet step), each in fresh processes: one with an
empty kernel cache (cold), then ``--repeats`` with that cache filled (warm). A phase is the
time spent inside these functions. Phases nest in one place only: `numba start` is part of
`compile or load`, and is shown apart from it.

| phase | what is timed |
|---|---|
| import | `import graphc` |
| build | the workload's graph: placeholders, layers, gradients, the optimizer |
| lowering | `optimizer.program.lower` |
| passes | `optimizer.pipeline.optimize`: folding, CSE, rewrites, fusion, the memory plan |
| numba import | `import numba`, which graphc does on the first compile (timed apart, before the build) |
| codegen | `ProgramCodegen.generate`: the kernels' Python source |
| compile or load | `codegen.cpu.cache.load`: numba compiles a kernel, or loads it from its cache |
| numba start | numba's first dispatcher: typing and target registries (inside compile or load) |
| the rest | everything else up to the end of the first step: the Session's glue, binding the schedule, the runs |

Bytecode caching stays as the user has it; a sandbox that sets PYTHONDONTWRITEBYTECODE
recompiles every module on every start. This script unsets it for the processes it starts.
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
PHASES = ("import", "build", "lowering", "passes", "numba import", "codegen", "compile or load", "numba start",
          "the rest", "total")

CHILD = r"""
import json, sys, time
sys.path.insert(0, {here!r})
clock = time.perf_counter
spent = dict.fromkeys(("lowering", "passes", "codegen", "compile or load", "numba start"), 0.0)
t0 = clock()
import graphc as gc
t_import = clock() - t0
import workloads as wl
t0 = clock()
import numba  # noqa: E402,F401  (graphc imports it on the first compile; timed apart here)
t_numba = clock() - t0
import graphc.runtime.session as session_module
import graphc.codegen.emit.context as context_module
from graphc.codegen.cpu import cache as cache_module

depth = [0]


def timed(phase, fn):
    def wrapper(*args, **kwargs):
        depth[0] += 1
        start = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0 or phase == "numba start":
                spent[phase] += clock() - start
    return wrapper


session_module.lower = timed("lowering", session_module.lower)
session_module.optimize = timed("passes", session_module.optimize)
context_module.ProgramCodegen.generate = timed("codegen", context_module.ProgramCodegen.generate)
cache_module.load = timed("compile or load", cache_module.load)
import numba.core.base as numba_base  # noqa: E402  (numba is imported by the cache anyway)
numba_base.BaseContext.refresh = timed("numba start", numba_base.BaseContext.refresh)
t1 = clock()
workload = {workload!r}
if workload == "W2":
    g, x, y, loss, train, init, xv, yv = wl.build_graphc_mlp({sizes!r})
    t_build = clock() - t1
    t2 = clock()
    with gc.Session(graph=g) as sess:
        sess.run(init)
        sess.run([train, loss], {{x: xv, y: yv}})
else:
    step = wl.w5("graphc", {sizes!r})  # builds the graph, initializes, and returns the step
    t_build = 0.0
    t2 = clock()
    step()
total = clock() - t1
total += t_numba
spent.update({{"import": t_import, "build": t_build, "numba import": t_numba, "total": total}})
spent["the rest"] = total - t_build - t_numba - sum(spent[p] for p in ("lowering", "passes", "codegen",
                                                                      "compile or load"))
print(json.dumps(spent))
"""


def measure(workload: str, sizes, repeats: int, python: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    script = CHILD.format(here=str(HERE), workload=workload, sizes=sizes)
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env["GRAPHC_CACHE_DIR"] = cache
        for _ in range(1 + repeats):
            out = subprocess.run([python, "-c", script], capture_output=True, text=True, env=env)
            if out.returncode != 0:
                raise SystemExit(f"{workload}: the child failed:\n{out.stderr}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    warm = {p: statistics.median(r[p] for r in rows[1:]) for p in PHASES}
    return {"cold": rows[0], "warm": warm}


def table(results: dict) -> str:
    lines = ["| phase | " + " | ".join(f"{w} {k}" for w in results for k in ("cold", "warm")) + " |",
             "|---|" + "---:|" * (2 * len(results))]
    for phase in PHASES:
        cells = [f"{results[w][k][phase]:.3f}" for w in results for k in ("cold", "warm")]
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="full", choices=("full", "tiny"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    import workloads as wl
    sizes = wl.SIZES[args.size]
    results = {}
    for workload in ("W2", "W5"):
        results[workload] = measure(workload, sizes[workload], args.repeats, args.python)
    print("seconds, definition to the end of the first training step (import apart); "
          "warm: median of", args.repeats)
    print(table(results))


if __name__ == "__main__":
    main()

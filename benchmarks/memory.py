"""Memory of one training step (W2, W5, W7): graphc's buffer plan against the peers; writes
RESULTS-MEMORY.md.

    python benchmarks/memory.py --python graphc=.venv/bin/python   # full sizes
    python benchmarks/memory.py --tiny --out X                      # tiny sizes (a smoke run)

Every (framework, workload) runs in a fresh subprocess, one after the other. Each reports:

* the peak resident set of the process (``getrusage(RUSAGE_SELF).ru_maxrss``), and its
  increase over the baseline taken after the imports and the data (before the step is built):
  building, compiling, the first step and ``--steps`` more;
* the closest figure the framework gives for its own buffers during the step: graphc's memory
  plan (planned peak, and the naive total without reuse), XLA's ``memory_analysis()`` of the
  compiled step for jax, the allocator's bytes in use during a traced step for TF1
  (``RunMetadata`` with FULL_TRACE, in a second process that runs TF's BFC allocator so that
  the allocator keeps counts); torch on the CPU has none (its RSS increase is all there is).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import machine  # noqa: E402  (benchmarks/run.py: the machine line of every report)

FRAMEWORKS = ("graphc", "jax", "torch", "tf1")
WORKLOADS = ("W2", "W5", "W7")
MIB = 1 << 20


def _maxrss() -> int:
    """Peak resident set of this process so far, bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _imports(framework: str, wl) -> None:
    if framework == "graphc":
        import graphc  # noqa: F401
    elif framework == "jax":
        import jax
        import jax.numpy  # noqa: F401
    elif framework == "torch":
        import torch  # noqa: F401
    elif framework == "tf1":
        wl._tf1()


def _data(workload: str, sizes, wl):
    if workload == "W2":
        return wl._mlp_data(sizes)
    if workload == "W5":
        return wl._lenet_data(sizes)
    return wl._lstm_data(sizes)


def _build(framework: str, workload: str, sizes, wl):
    return {"W2": wl.w2, "W5": wl.w5, "W7": wl.w7}[workload](framework, sizes)


# --- graphc: the memory plan of the compiled training program ------------------------------------------------
def _plan_figures(exe) -> dict:
    """Planned peak, naive total and scratch of one CPU executable, for the shapes it last ran."""
    program = exe.program
    sym = program.symbolic()
    binding_shapes = list(exe._bindings.values())[-1]  # the Binding of the shapes the step ran with
    dims = {}
    for v, shape in binding_shapes.shapes.items():
        if v in program.types:
            for d, n in zip(sym.shape(v), shape):
                if isinstance(d, tuple):
                    dims[d] = n
    plan = program.buffers
    scratch = sum(n for key, n in binding_shapes.region_bytes.items() if key[0] == "scratch")
    temporaries = sum(n for key, n in binding_shapes.region_bytes.items() if key[0] == "temporary")
    return {"planned_peak": plan.peak_bytes(dims), "naive": plan.naive_bytes(dims),
            "scratch": scratch + temporaries, "buffers": len(plan.capacity), "values": len(plan.sizes)}


def graphc_figures(step) -> dict:
    """Run ``step`` once more and read the memory plan of its compiled training program.

    A program without control flow is one CPU executable. W7's program has loops: it runs in
    stages (plain programs between the loops, each with its own plan), and each loop returns
    arrays it allocates itself (the loop variables' histories, kept values for the gradient);
    those are counted here as they come out of one step. The buffers a loop body reuses on
    every iteration (its own plan, sized by one iteration's values) are not counted."""
    sess = step.session
    exe = next(e for key, e in sess._executables.items() if step.loss in key[0])
    if not hasattr(exe, "stages"):
        step()
        out = _plan_figures(exe)
        out["what"] = "one program"
        return out
    loop_bytes, loop_outputs = [], []

    def wrap(run):
        def counted(inputs, ctx):
            outputs = run(inputs, ctx)
            loop_bytes.append(sum(getattr(o, "nbytes", 0) for o in outputs))
            loop_outputs.append([[list(getattr(o, "shape", ())), int(getattr(o, "nbytes", 0))] for o in outputs])
            return outputs
        return counted

    original = exe.stages
    exe.stages = [(sub, e, [(ins, wrap(run)) for ins, run in controls]) for sub, e, controls in original]
    try:
        step()
    finally:
        exe.stages = original
    out = {"planned_peak": 0, "naive": 0, "scratch": 0, "buffers": 0, "values": 0}
    stages = 0
    for sub, e, _ in original:
        if e is not None and getattr(e, "_bindings", None):
            stages += 1
            for k, v in _plan_figures(e).items():
                out[k] += v
    out["loop_outputs"] = sum(loop_bytes)
    out["loops"] = loop_outputs  # per loop: [shape, bytes] of each array it returned
    out["planned_peak"] += out["loop_outputs"]
    out["naive"] += out["loop_outputs"]
    out["what"] = (f"{stages} planned stages + {len(loop_bytes)} loops' outputs "
                   f"({out['loop_outputs']:,} bytes); loop bodies' per-iteration buffers not counted")
    return out


# --- the peers ---------------------------------------------------------------------------------------------
def jax_figures(step) -> dict:
    compiled = step.jitted.lower(*step.args()).compile()
    ma = compiled.memory_analysis()
    if ma is None:
        return {"unavailable": "memory_analysis() returned None"}
    return {"temp": ma.temp_size_in_bytes, "argument": ma.argument_size_in_bytes,
            "output": ma.output_size_in_bytes, "alias": ma.alias_size_in_bytes}


def tf1_figures(step) -> dict:
    """A traced step: the allocator's bytes in use after each op. The step's peak is the most
    in use during it less what was in use before its first allocation (variables, feeds)."""
    import tensorflow as tf
    sess, fetches, feed = step.tf
    meta = tf.compat.v1.RunMetadata()
    options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
    sess.run(fetches, feed, options=options, run_metadata=meta)
    records, total = [], 0
    for dev in meta.step_stats.dev_stats:
        for ns in dev.node_stats:
            for m in ns.memory:
                total += m.total_bytes
                records.append((ns.all_start_micros, m.total_bytes, m.allocator_bytes_in_use, m.allocator_name))
    records.sort()
    in_use = [r for r in records if r[2] > 0]
    if not in_use:
        return {"allocated": total, "peak": None, "allocator": records[0][3] if records else None}
    before = in_use[0][2] - in_use[0][1]
    return {"allocated": total, "peak": max(r[2] for r in in_use) - before, "before": before,
            "allocator": in_use[0][3]}


def worker(framework: str, workload: str, tiny: bool, steps: int, trace_only: bool) -> dict:
    import workloads as wl
    sizes = wl.SIZES["tiny" if tiny else "full"][workload]
    start = _maxrss()
    _imports(framework, wl)
    data = _data(workload, sizes, wl)
    baseline = _maxrss()
    step = _build(framework, workload, sizes, wl)
    step()
    for _ in range(steps):
        step()
    peak = _maxrss()
    del data
    out = {"start": start, "baseline": baseline, "peak": peak, "steps": steps + 1}
    if framework == "graphc":
        out["own"] = graphc_figures(step)
    elif framework == "jax":
        out["own"] = jax_figures(step)
    elif framework == "tf1" and trace_only:
        out["own"] = tf1_figures(step)
    return out


def _mib(n) -> str:
    """MiB with one decimal, or three below 1 MiB (the tiny sizes)."""
    if n is None:
        return "n/a"
    return f"{n / MIB:.1f}" if abs(n) >= MIB else f"{n / MIB:.3f}"


def _own_cell(fw: str, r: dict) -> str:
    own = r.get("own") or {}
    if fw == "graphc":
        return (f"planned peak {_mib(own.get('planned_peak'))} (naive {_mib(own.get('naive'))}; "
                f"+ kernel scratch {_mib(own.get('scratch'))})")
    if fw == "jax":
        if "temp" not in own:
            return own.get("unavailable", "n/a")
        return (f"XLA temp {_mib(own['temp'])} (outputs {_mib(own['output'])}, arguments "
                f"{_mib(own['argument'])})")
    if fw == "tf1":
        if not own:
            return "n/a"
        return (f"allocator peak in step {_mib(own.get('peak'))} (allocated over the step "
                f"{_mib(own.get('allocated'))})")
    return "none on CPU (RSS increase only)"


def comparable(fw: str, r: dict):
    """The figure compared against graphc's planned peak (bytes), or None."""
    own = r.get("own") or {}
    if fw == "graphc":
        return own.get("planned_peak")
    if fw == "jax":
        return own.get("temp")
    if fw == "tf1":
        return own.get("peak")
    return None


def report(results: dict, tiny: bool, load: str, versions: dict, steps: int, machine_line: str,
           notes: str = "") -> str:
    lines = ["# Memory of one training step", "",
             "Measured by `python benchmarks/memory.py`: each framework and workload in a fresh process, one",
             "after the other; the same workload builders as `run.py` (`benchmarks/workloads.py`). Tests never",
             "assert these figures. MiB = 2^20 bytes.", "",
             f"Machine: {machine_line}", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())), "",
             f"Sizes: {'tiny (smoke run)' if tiny else 'full'} (W2 MLP 784-512-512-10, batch 256; W5 LeNet-5, "
             "batch 64; W7 LSTM, sequence 50, batch 32, input 64, hidden 256).", "",
             f"Load (`uptime`, before and after): {load}", "",
             "## What each column is", "",
             "- **peak RSS**: `getrusage(RUSAGE_SELF).ru_maxrss` at the end: the process's peak resident set,",
             "  after the imports, the data, building and compiling the step and "
             f"{steps + 1} steps. Imports dominate it.",
             "- **RSS increase**: peak RSS less the peak after the imports and the data were created (before the",
             "  step was built). It holds everything building the step costs: compilers (XLA, numba/LLVM, TF's",
             "  graph optimizer), caches, the frameworks' copies of the data, and the step's buffers.",
             "- **own buffers**: the closest figure each framework gives for the buffers of the step itself.",
             "  - graphc: its memory plan of the compiled training program (`BufferPlan.peak_bytes` for the",
             "    shapes run: every planned buffer, which the executable holds for the whole run), the naive",
             "    total (`naive_bytes`: each value its own buffer), and, beside them, the kernels' scratch",
             "    (outside the plan: one buffer per dtype shared by every kernel, as large as its largest use:",
             "    im2col patches of the convolutions, a reduction's partial sums). Feeds and variables are",
             "    outside the plan (variables are updated in place). For W7 the program runs in stages",
             "    between its loops: the sum of the stages' plans plus the arrays the loops return (histories",
             "    and the values kept for the gradient) as measured in one step; the buffers a loop body reuses",
             "    per iteration are not counted.",
             "  - jax: `jax.jit(update).lower(...).compile().memory_analysis()`: XLA's temp bytes (its buffer",
             "    assignment of the intermediates, reuse included), shown with the outputs (new parameters and",
             "    the loss: no donation in this workload, so they are fresh buffers) and the arguments.",
             "  - TF1: one step run with `RunOptions(trace_level=FULL_TRACE)` in a separate process with",
             "    `TF_CPU_ALLOCATOR_USE_BFC=true` (TF's default CPU allocator keeps no counts): the most bytes",
             "    in use after any op less those in use before the step's first allocation (variables, the",
             "    fed batch). It samples after each op, so an op's own short-lived temporaries can be missed.",
             "    'allocated over the step' is the sum of every op's allocations (no reuse counted).",
             "  - torch: no figure for its own buffers on the CPU (`torch.cuda` memory statistics have no CPU",
             "    counterpart); only the RSS columns.",
             "- **compared**: the figure set against graphc's planned peak: XLA temp for jax, the allocator",
             "  peak for TF1. None for torch. The RSS increases are not compared with the plan (they measure",
             "  different things), only with each other.", ""]
    lines += ["## Summary: buffers of one step (MiB)", "",
              "| workload | graphc planned peak | graphc naive | graphc kernel scratch | jax XLA temp "
              "| jax outputs | TF1 allocator peak | torch | graphc's planned peak the lowest |",
              "|---|---|---|---|---|---|---|---|---|"]
    for wname in WORKLOADS:
        g = (results.get("graphc", {}).get(wname, {}).get("own") or {})
        j = (results.get("jax", {}).get(wname, {}).get("own") or {})
        t = (results.get("tf1", {}).get(wname, {}).get("own") or {})
        peers = [v for v in (j.get("temp"), t.get("peak")) if v is not None]
        mine = g.get("planned_peak")
        met = "n/a" if mine is None or not peers else ("yes" if mine <= min(peers) else "no")
        lines.append(f"| {wname} | {_mib(mine)} | {_mib(g.get('naive'))} | {_mib(g.get('scratch'))} | "
                     f"{_mib(j.get('temp'))} | {_mib(j.get('output'))} | {_mib(t.get('peak'))} | no figure | {met} |")
    lines += ["", "'the lowest' compares graphc's planned peak with jax's XLA temp and TF1's allocator peak; each",
              "workload's section below also gives it with graphc's scratch added and against jax's temp plus",
              "its outputs.", ""]
    for wname in WORKLOADS:
        present = [fw for fw in FRAMEWORKS if wname in results.get(fw, {})]
        if not present:
            continue
        lines += [f"## {wname}", "", "| framework | peak RSS (MiB) | RSS increase (MiB) | own buffers (MiB) |",
                  "|---|---|---|---|"]
        for fw in present:
            r = results[fw][wname]
            if "error" in r:
                lines.append(f"| {fw} | failed | | {r['error'][:200]} |")
                continue
            lines.append(f"| {fw} | {_mib(r['peak'])} | {_mib(r['peak'] - r['baseline'])} | {_own_cell(fw, r)} |")
        mine = comparable("graphc", results.get("graphc", {}).get(wname, {}))
        others = {fw: comparable(fw, results[fw][wname]) for fw in present if fw != "graphc"}
        others = {fw: v for fw, v in others.items() if v is not None}
        lines.append("")
        if mine is None or not others:
            lines.append("Target (graphc's planned peak the lowest): not decided (a figure is missing).")
        else:
            lowest = min(others.values())
            verdict = "met" if mine <= lowest else "not met"
            parts = ", ".join(f"{fw} {_mib(v)} MiB" for fw, v in others.items())
            scratch = (results["graphc"][wname].get("own") or {}).get("scratch", 0)
            with_scratch = "met" if mine + scratch <= lowest else "not met"
            lines.append(f"Target (graphc's planned peak the lowest): **{verdict}** — graphc {_mib(mine)} MiB "
                         f"against {parts} (torch: no figure, not compared). With the kernels' scratch added "
                         f"({_mib(mine + scratch)} MiB): {with_scratch}.")
            jax_own = (results.get("jax", {}).get(wname, {}).get("own") or {})
            if "temp" in jax_own:
                fresh = jax_own["temp"] + jax_own["output"]
                lines.append(f"Against jax's temp plus its outputs ({_mib(fresh)} MiB: the new parameters are fresh "
                             "buffers each step, where graphc updates its variables in place): "
                             f"{'met' if mine <= fresh else 'not met'}.")
        own = (results.get("graphc", {}).get(wname, {}).get("own") or {})
        if own.get("what") and own["what"] != "one program":
            lines.append(f"graphc's figure for {wname}: {own['what']}.")
        lines.append("")
    if notes:
        lines += [notes.strip(), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--out", default=str(HERE / "RESULTS-MEMORY.md"))
    parser.add_argument("--json", help="raw results (default: next to --out, .json)")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--steps", type=int, default=10, help="steps after the first")
    parser.add_argument("--python", action="append", default=[], metavar="FW=PATH",
                        help="run framework FW under another interpreter (graphc=.venv/bin/python)")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from the raw JSON")
    parser.add_argument("--notes", default=str(HERE / "MEMORY-NOTES.md"), help="analysis appended to the report")
    args = parser.parse_args(argv)
    steps = 1 if args.tiny else args.steps
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.tiny, steps, args.trace)))
        return 0
    out = Path(args.out)
    raw_path = Path(args.json or out.with_suffix(".json"))
    if args.report_only:  # the report again from the raw results (its text changed, not the figures)
        raw = json.loads(raw_path.read_text())
        text = report(raw["results"], raw["tiny"], raw["load"], raw["versions"], raw["steps"], raw["machine"],
                      _notes(args.notes, raw["tiny"]))
        out.write_text(text)
        print(text)
        return 0
    pythons = dict(item.split("=", 1) for item in args.python)
    frameworks = args.frameworks.split(",")
    load_before = _load()
    results: dict = {fw: {} for fw in frameworks}
    versions: dict = {}
    for fw in frameworks:
        python = pythons.get(fw, sys.executable)
        versions.update(_fw_versions(fw, python))
        if fw == "graphc":  # the kernel cache warm, as in run.py's timed runs (W4 measures a cold one)
            for wname in args.workloads.split(","):
                _run([python, __file__, "--worker", fw, wname] + (["--tiny"] if args.tiny else []))
        for wname in args.workloads.split(","):
            cmd = [python, __file__, "--worker", fw, wname] + (["--tiny"] if args.tiny else []) + \
                ["--steps", str(args.steps)]
            print(f"[memory] {fw} {wname} ...", flush=True)
            results[fw][wname] = _run(cmd)
            if fw == "tf1" and "error" not in results[fw][wname]:
                traced = _run(cmd + ["--trace"], dict(os.environ, TF_CPU_ALLOCATOR_USE_BFC="true"))
                results[fw][wname]["own"] = traced.get("own") or {"error": traced.get("error")}
    load = f"{load_before} / {_load()}"
    text = report(results, args.tiny, load, versions, steps, machine(), _notes(args.notes, args.tiny))
    out.parent.mkdir(parents=True, exist_ok=True)
    raw_path.write_text(json.dumps({"machine": machine(), "load": load, "versions": versions, "tiny": args.tiny,
                                    "steps": steps, "results": results}, indent=1))
    out.write_text(text)
    print(text)
    return 0


def _notes(path, tiny: bool) -> str:
    return Path(path).read_text() if path and Path(path).exists() and not tiny else ""


def _run(cmd, env=None) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        print(f"[memory] failed: {proc.stderr[-300:]}", flush=True)
        return {"error": proc.stderr.strip().splitlines()[-1][:300] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fw_versions(fw: str, python: str) -> dict:
    code = f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import run; print(json.dumps(run._versions({fw!r})))"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {}


def _load() -> str:
    """The load averages over 1, 5 and 15 minutes."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())

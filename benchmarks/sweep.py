"""How cost grows with size: W1a (GELU-tanh, float32) over 1K to 64M elements and W2 (the MLP
training step) over batch sizes 1 to 2048, graphc against every peer run.py knows. Writes raw
JSON, two log-log plots and RESULTS-SWEEP.md.

    python benchmarks/sweep.py --python graphc=.venv/bin/python    # full sizes (~15 min)
    python benchmarks/sweep.py --tiny --frameworks graphc,numpy --no-plot --out-dir X   # CI

Each framework runs in its own subprocess per sweep (one after the other, frameworks
interleaved over ``--rounds``), timing every size with run.py's ``_time`` on a shorter budget;
a figure is the median over rounds. A size a framework fails at is reported, not fatal, and
so is a framework that dies (its remaining sizes are reported missing). W1a also runs at
graphc's thread threshold (``MIN_WORK`` - 1 and ``MIN_WORK`` elements,
graphc/codegen/cpu/parallel.py), where its kernels start splitting their outer loop.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import FRAMEWORKS, _fmt, _time, _versions, machine  # noqa: E402  (benchmarks/run.py)

MIN_WORK = 1 << 17  # graphc/codegen/cpu/parallel.py (read from graphc in the graphc worker and checked)
SWEEPS = {
    "W1a": {"full": sorted([1024 * 4 ** k for k in range(9)] + [MIN_WORK - 1, MIN_WORK]), "tiny": [1024, 4096]},
    "W2": {"full": [2 ** k for k in range(12)], "tiny": [1, 2, 4]},
}
UNIT = {"W1a": ("elements", "elements/s"), "W2": ("batch", "samples/s")}
BUDGET = {"full": (0.5, 20), "tiny": (0.05, 3)}  # _time's min_time and max_reps per size


def worker(framework: str, sweep: str, tiny: bool) -> None:
    """Runs in a subprocess: one sweep for one framework, a JSON line per size as it finishes
    (so a crash keeps what was measured before it)."""
    import workloads as wl
    mode = "tiny" if tiny else "full"
    min_time, max_reps = BUDGET[mode]
    print(json.dumps({"versions": _versions(framework)}), flush=True)
    if framework == "graphc":
        from graphc.codegen.cpu import parallel
        print(json.dumps({"min_work": parallel.MIN_WORK, "threads": parallel.THREADS}), flush=True)
    mlp = wl.SIZES[mode]["W2"]
    for size in SWEEPS[sweep][mode]:
        row = {"size": size}
        try:
            fn = wl.w1a(framework, size) if sweep == "W1a" else wl.w2(framework, (size,) + tuple(mlp[1:]))
            row["seconds"] = _time(fn, min_time=min_time, max_reps=max_reps, tiny=False)
            del fn
        except wl.Unavailable as e:
            row["unavailable"] = str(e)[:200]
        except Exception as e:  # a framework that fails at one size is reported at that size
            row["error"] = f"{type(e).__name__}: {e}"[:300]
        print(json.dumps(row), flush=True)


def _cpu_seconds() -> tuple:
    """(CPU seconds the whole machine was busy, CPU seconds of this process's finished
    children): their difference over a worker's run is what other processes took meanwhile."""
    import resource
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # all but idle and iowait
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy / os.sysconf("SC_CLK_TCK"), children.ru_utime + children.ru_stime


def _wait_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait (up to ``max_wait`` seconds) for a second in which other processes use less than
    ``threshold`` of the CPUs: this machine is shared. Returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait:
        busy0, _ = _cpu_seconds()
        time.sleep(1.0)
        busy1, _ = _cpu_seconds()
        if (busy1 - busy0) / (os.cpu_count() or 1) < threshold:
            break
    return time.perf_counter() - t0


def _collect(cmd: list, timeout: float) -> tuple:
    """Run a worker; its JSON lines and an error text (None when it finished cleanly)."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        stdout, error = proc.stdout, (None if proc.returncode == 0 else
                                      f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        stdout, error = (out.decode() if isinstance(out, bytes) else out), f"timed out after {timeout:.0f} s"
    rows = []
    for line in stdout.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    return rows, error


def run_sweeps(frameworks, pythons, tiny: bool, rounds: int, timeout: float, quiet_wait: float = 0.0) -> dict:
    mode = "tiny" if tiny else "full"
    raw: dict = {s: {fw: [] for fw in frameworks} for s in SWEEPS}
    info: dict = {"versions": {}}
    for r in range(rounds):
        order = frameworks if r % 2 == 0 else frameworks[::-1]  # a slow minute falls on different ones
        for sweep in SWEEPS:
            for fw in order:
                print(f"[sweep] round {r + 1}/{rounds}: {sweep} {fw} ...", flush=True)
                waited = _wait_quiet(quiet_wait) if quiet_wait > 0 else 0.0
                t0 = time.perf_counter()
                busy0, mine0 = _cpu_seconds()
                cmd = [pythons.get(fw, sys.executable), __file__, "--worker", fw, sweep] + (["--tiny"] if tiny else [])
                rows, error = _collect(cmd, timeout)
                busy1, mine1 = _cpu_seconds()
                wall = time.perf_counter() - t0
                # the share of the machine's CPUs that other processes used while this worker ran
                others = max(0.0, (busy1 - busy0) - (mine1 - mine0)) / (wall * (os.cpu_count() or 1))
                info.setdefault("others_cpu", {}).setdefault(sweep, {}).setdefault(fw, []).append(round(others, 3))
                sizes = {}
                for row in rows:
                    if "versions" in row:
                        info["versions"].update(row["versions"])
                    elif "min_work" in row:
                        info["graphc"] = row
                    else:
                        sizes[row["size"]] = row
                for size in SWEEPS[sweep][mode]:  # sizes a dead worker never reached
                    if size not in sizes:
                        sizes[size] = {"size": size, "error": f"not measured: the worker ended ({error})"}
                raw[sweep][fw].append(sizes)
                print(f"[sweep]   {wall:.1f} s (after waiting {waited:.0f} s), other processes {100 * others:.0f}% "
                      "of the CPUs"
                      + (f"; {error}" if error else ""), flush=True)
    results: dict = {}
    for sweep in SWEEPS:
        results[sweep] = {}
        for fw in frameworks:
            per_size = {}
            for size in SWEEPS[sweep][mode]:
                entries = [rnd[size] for rnd in raw[sweep][fw]]
                times = [e["seconds"] for e in entries if "seconds" in e]
                if times:
                    per_size[str(size)] = {"seconds": statistics.median(times), "spread": [min(times), max(times)],
                                           "rounds": len(times)}
                else:
                    e = entries[0]
                    per_size[str(size)] = {k: e[k] for k in ("error", "unavailable") if k in e}
            results[sweep][fw] = per_size
    return {"results": results, **info}


# --- the machine ------------------------------------------------------------------------------------------
def caches() -> list:
    """(level, type, size text, shared by how many CPUs) of cpu0's caches, from sysfs."""
    out = []
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(base.glob("index*")):
        try:
            read = lambda name: (index / name).read_text().strip()  # noqa: E731
            shared = read("shared_cpu_list")
            out.append((int(read("level")), read("type"), read("size"), shared))
        except OSError:
            continue
    return out


def _bytes(text: str) -> int:
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * mult[text[-1]] if text[-1] in mult else int(text)


# --- the report -------------------------------------------------------------------------------------------
def _size_label(n: int) -> str:
    for unit, scale in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return f"{n:,}"


def _rate(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f} {unit}"
    return f"{x:.1f}"


def table(data: dict, sweep: str, mode: str, frameworks: list) -> list:
    name, per = UNIT[sweep]
    lines = [f"| {name} | " + " | ".join(frameworks) + f" | graphc {per} | best peer | graphc / best |",
             "|---|" + "---|" * (len(frameworks) + 3)]
    for size in SWEEPS[sweep][mode]:
        cells, peers = [], {}
        for fw in frameworks:
            e = data[fw].get(str(size), {})
            if "seconds" in e:
                cells.append(_fmt(e["seconds"]))
                if fw != "graphc":
                    peers[fw] = e["seconds"]
            else:
                cells.append("failed" if "error" in e else "n/a")
        mine = data.get("graphc", {}).get(str(size), {}).get("seconds")
        best = min(peers.items(), key=lambda kv: kv[1]) if peers else None
        rate = _rate(size / mine) if mine else "n/a"
        ratio = f"{mine / best[1]:.2f}" if mine and best else "n/a"
        lines.append(f"| {_size_label(size)} | " + " | ".join(cells) + f" | {rate} | {best[0] if best else 'n/a'} | "
                     f"{ratio} |")
    return lines


def graphc_steps(data: dict, sweep: str, mode: str, cache_list: list) -> list:
    """graphc's curve size by size: time ratio to the previous size against the size ratio,
    the throughput, and (W1a) the working set (input + output) against the caches."""
    g = data.get("graphc", {})
    sizes = [s for s in SWEEPS[sweep][mode] if "seconds" in g.get(str(s), {})]
    if not sizes:
        return []
    name, per = UNIT[sweep]
    levels = [(lvl, _bytes(size), shared) for lvl, kind, size, shared in cache_list if kind != "Instruction"]
    head = f"| {name} | time | time ratio to the previous row (size ratio) | {per} |"
    head += " working set (in + out) | fits in |" if sweep == "W1a" else ""
    lines = [head, "|---|---|---|---|" + ("---|---|" if sweep == "W1a" else "")]
    prev = None
    for s in sizes:
        t = g[str(s)]["seconds"]
        step = f"{t / g[str(prev)]['seconds']:.2f} ({s / prev:.2f})" if prev else "—"
        row = f"| {_size_label(s)} | {_fmt(t)} | {step} | {_rate(s / t)} |"
        if sweep == "W1a":
            ws = 8 * s
            fits = next((f"L{lvl} ({_size_label(b)}B)" for lvl, b, _ in sorted(levels) if ws <= b), "memory")
            row += f" {ws / (1 << 20):.3f} MiB | {fits} |"
        lines.append(row)
        prev = s
    return lines


def report(out: dict, tiny: bool, frameworks: list, images: dict, notes: str, rounds: int) -> str:
    mode = "tiny" if tiny else "full"
    cache_list = caches()
    cache_text = "; ".join(f"L{lvl} {kind.lower()} {size} (shared by CPUs {shared})"
                           for lvl, kind, size, shared in cache_list) or "unknown"
    graphc_info = out.get("graphc") or {}
    lines = ["# How cost grows with size", "",
             "Measured by `python benchmarks/sweep.py`: each framework in its own process per sweep, frameworks",
             f"interleaved over {rounds} round(s); every size timed with `run.py`'s `_time` (median of samples of",
             f"at least 1 ms; {BUDGET[mode][0]} s and at most {BUDGET[mode][1]} samples per size); a figure is the",
             "median over rounds. Raw figures: `sweep.json`. Tests never assert timings.", "",
             ("This machine is shared: before each worker the script waited up to "
              f"{out.get('quiet_wait', 0):.0f} s for a second in which other processes used under 15% of the CPUs;"
              if out.get("quiet_wait") else "This machine is shared (this run did not wait for quiet seconds);"),
             "each section ends with the share of the CPUs other processes used while each worker ran.", "",
             f"Machine: {machine()}", "",
             f"Caches (cpu0, sysfs): {cache_text}", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(out.get("versions", {}).items())), "",
             f"Load (`uptime` 1/5/15-minute averages, before / after): {out.get('load', 'unknown')}", "",
             f"Sizes: {'tiny (CI smoke run)' if tiny else 'full'}. graphc's kernels split their outer loop over "
             f"{graphc_info.get('threads', '?')} threads from `MIN_WORK` = {graphc_info.get('min_work', MIN_WORK):,} "
             "elements of work (graphc/codegen/cpu/parallel.py); W1a is also measured at `MIN_WORK` - 1 and "
             "`MIN_WORK`.", ""]
    mlp = "(batch, 784) → 512 → 512 → 10" if not tiny else "(tiny MLP)"
    for sweep, title in (("W1a", "W1a: GELU-tanh, float32, n elements"),
                         ("W2", f"W2: MLP training step {mlp}, SGD, by batch size")):
        data = out["results"][sweep]
        lines += [f"## {title}", ""]
        if sweep in images:
            lines += [f"![{sweep}]({images[sweep]})", ""]
        lines += ["Time per call:", ""] + table(data, sweep, mode, frameworks) + [""]
        steps = graphc_steps(data, sweep, mode, cache_list)
        if steps:
            lines += ["graphc's curve, size by size:", ""] + steps + [""]
        busy = out.get("others_cpu", {}).get(sweep)
        if busy:
            lines += ["Share of the machine's CPUs that other processes used while each worker ran (per round):",
                      "", "| framework | " + " | ".join(f"round {r + 1}" for r in range(len(next(iter(busy.values())))))
                      + " |", "|---|" + "---|" * len(next(iter(busy.values())))]
            lines += [f"| {fw} | " + " | ".join(f"{100 * v:.0f}%" for v in busy[fw]) + " |"
                      for fw in frameworks if fw in busy]
            lines.append("")
        failed = [f"- {fw} at {_size_label(int(s))}: {e.get('error') or e.get('unavailable')}"
                  for fw in frameworks for s, e in data[fw].items() if "seconds" not in e]
        if failed:
            lines += ["Sizes not measured:", ""] + failed + [""]
        spreads = [f"{fw} {_size_label(int(s))} {_fmt(e['spread'][0])}–{_fmt(e['spread'][1])}"
                   for fw in frameworks for s, e in data[fw].items()
                   if e.get("rounds", 1) > 1 and e["spread"][1] > 1.5 * e["spread"][0]]
        if spreads:
            lines += ["Rounds that differ by more than 1.5× (fastest–slowest): " + "; ".join(spreads) + ".", ""]
    if notes:
        lines += [notes.strip(), ""]
    return "\n".join(lines)


def plot(out: dict, tiny: bool, frameworks: list, out_dir: Path) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    images = {}
    for sweep, title in (("W1a", "W1a GELU-tanh (float32)"), ("W2", "W2 MLP training step")):
        name, per = UNIT[sweep]
        fig, (ax_t, ax_r) = plt.subplots(1, 2, figsize=(12, 4.8))
        for fw in frameworks:
            pts = [(int(s), e["seconds"]) for s, e in out["results"][sweep][fw].items() if "seconds" in e]
            pts.sort()
            if not pts:
                continue
            xs, ts = [p[0] for p in pts], [p[1] for p in pts]
            style = dict(marker="o", markersize=3.5, linewidth=2.2 if fw == "graphc" else 1.2, label=fw)
            ax_t.plot(xs, ts, **style)
            ax_r.plot(xs, [x / t for x, t in zip(xs, ts)], **style)
        for ax, ylabel in ((ax_t, "seconds per call"), (ax_r, per)):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel(name)
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
        if sweep == "W1a":
            info = out.get("graphc") or {}
            for ax in (ax_t, ax_r):
                ax.axvline(info.get("min_work", MIN_WORK), color="grey", linestyle="--", linewidth=0.8)
                for lvl, kind, size, _ in caches():
                    if kind != "Instruction":
                        ax.axvline(_bytes(size) / 8, color="tab:red", linestyle=":", linewidth=0.8)
            ax_t.text(0.01, 0.98, "dashed: graphc MIN_WORK; dotted: in+out = L1d, L2, L3 size",
                      transform=ax_t.transAxes, va="top", fontsize=8)
        ax_t.set_title(f"{title}: time per call")
        ax_r.set_title(f"{title}: throughput")
        ax_r.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"sweep-{sweep.lower()}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        images[sweep] = path.name
    return images


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="few tiny sizes (CI keeps the script working)")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--python", action="append", default=[], metavar="FW=PATH",
                        help="run framework FW under another interpreter (graphc=.venv/bin/python)")
    parser.add_argument("--out-dir", default=str(HERE), help="where sweep.json, the plots and RESULTS-SWEEP.md go")
    parser.add_argument("--no-plot", action="store_true", help="no matplotlib: JSON and markdown only")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300, help="seconds per framework and sweep")
    parser.add_argument("--quiet-wait", type=float, default=20,
                        help="before each worker, wait up to this many seconds for a second in which other "
                             "processes use under 15%% of the CPUs (0: never wait; --tiny never waits)")
    parser.add_argument("--notes", default=str(HERE / "SWEEP-NOTES.md"), help="analysis appended to the report")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report and plots from sweep.json")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], args.worker[1], args.tiny)
        return 0
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frameworks = args.frameworks.split(",")
    if args.report_only:
        out = json.loads((out_dir / "sweep.json").read_text())
        frameworks, tiny = out["frameworks"], out["tiny"]
    else:
        tiny = args.tiny
        pythons = dict(item.split("=", 1) for item in args.python)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        started = time.perf_counter()
        out = run_sweeps(frameworks, pythons, tiny, 1 if tiny else args.rounds, args.timeout,
                         0.0 if tiny else args.quiet_wait)
        out.update(rounds=1 if tiny else args.rounds, quiet_wait=0.0 if tiny else args.quiet_wait, load=f"{load} / " + " ".join(f"{x:.2f}" for x in os.getloadavg()), tiny=tiny,
                   frameworks=frameworks, machine=machine(), caches=caches(),
                   wall_seconds=round(time.perf_counter() - started, 1))
        (out_dir / "sweep.json").write_text(json.dumps(out, indent=1))
    images = {} if args.no_plot else plot(out, tiny, frameworks, out_dir)
    notes = Path(args.notes).read_text() if args.notes and Path(args.notes).exists() and not tiny else ""
    text = report(out, tiny, frameworks, images, notes, out.get("rounds", 1))
    (out_dir / "RESULTS-SWEEP.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CI keeps the benchmark script working: one run at tiny sizes, graphc and NumPy only.
(It asserts that every workload produced a time, never how fast: timings live in
benchmarks/RESULTS.md.)"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_script_runs_at_tiny_sizes(tmp_path):
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--tiny", "--frameworks",
                           "graphc,numpy", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    assert "Sizes: tiny" in text
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| W") or line.startswith("| import")}
    for name in ("W1a", "W1b", "W2", "W3-run", "W3-callable", "W5"):
        graphc_cell, numpy_cell = rows[name][0], rows[name][1]
        assert re.fullmatch(r"[0-9.]+ (µs|ms|s)", graphc_cell), (name, rows[name])
        if name in ("W1a", "W1b", "W2"):  # the workloads NumPy has a version of
            assert re.fullmatch(r"[0-9.]+ (µs|ms|s)", numpy_cell), (name, rows[name])
    for name in ("W4-cold", "W4-warm", "import"):
        assert re.fullmatch(r"[0-9.]+ (µs|ms|s)", rows[name][0]), (name, rows[name])


def test_export_benchmark_script_runs_at_tiny_sizes(tmp_path):
    """benchmarks/export_run.py: every graphc runner (and ONNX Runtime, which the test extra
    installs) produced a time, after checking its logits against the Session's."""
    import shutil
    out = tmp_path / "RESULTS-EXPORT.md"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "export_run.py"), "--tiny", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = out.read_text().splitlines()
    header = next(line for line in lines if line.startswith("| W6"))
    columns = [c.strip() for c in header.split("|")[2:-1]]
    expected = ["graphc-session", "onnxruntime"] + (["graphc-native-c", "graphc-native-py"] if shutil.which("cc")
                                                    else [])
    assert set(expected) <= set(columns), columns
    for row in (line for line in lines if line.startswith("| batch")):
        cells = dict(zip(columns, (c.strip() for c in row.split("|")[2:-1])))
        for runner in expected:
            assert re.fullmatch(r"[0-9.]+ (µs|ms)", cells[runner]), (runner, row)


def test_busy_core_script_runs_at_tiny_sizes(tmp_path):
    """benchmarks/busy_core.py: graphc's three workloads timed quietly and beside a busy loop
    (the figures mean nothing at these sizes; the table's structure is what is checked)."""
    import os
    if len(os.sched_getaffinity(0)) < 2:
        import pytest
        pytest.skip("busy_core.py needs two cores")
    out = tmp_path / "RESULTS-BUSY.md"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "busy_core.py"), "--tiny", "--frameworks",
                           "graphc", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in out.read_text().splitlines() if line.startswith("| W")]
    assert [r.split("|")[1].strip() for r in rows] == ["W2", "W5", "W8"]
    for row in rows:
        quiet, busy, ratio = (c.strip() for c in row.split("|")[3:6])
        assert re.fullmatch(r"[0-9.]+ (µs|ms|s)", quiet) and re.fullmatch(r"[0-9.]+ (µs|ms|s)", busy), row
        assert float(ratio) > 0


def test_sweep_script_runs_at_tiny_sizes(tmp_path):
    """benchmarks/sweep.py --tiny writes its raw JSON and its report with a time for every size
    of both sweeps (graphc and NumPy; no plots: matplotlib is a bench extra)."""
    import json
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sweep.py"), "--tiny", "--frameworks",
                           "graphc,numpy", "--no-plot", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert data["tiny"] is True and data["frameworks"] == ["graphc", "numpy"]
    expected = {"W1a": ["1024", "4096"], "W2": ["1", "2", "4"]}
    for sweep, sizes in expected.items():
        for fw in ("graphc", "numpy"):
            entries = data["results"][sweep][fw]
            assert sorted(entries, key=int) == sizes, (sweep, fw, entries)
            for size in sizes:
                assert entries[size]["seconds"] > 0, (sweep, fw, size, entries[size])
    assert not list(tmp_path.glob("*.png"))
    text = (tmp_path / "RESULTS-SWEEP.md").read_text()
    assert "Sizes: tiny" in text
    for heading, first_column, labels in (("## W1a", "elements", ["1K", "4K"]), ("## W2", "batch", ["1", "2", "4"])):
        section = text.split(heading, 1)[1]
        lines = section.splitlines()
        header = next(line for line in lines if line.startswith(f"| {first_column} | graphc | numpy |"))
        rows = lines[lines.index(header) + 2:lines.index(header) + 2 + len(labels)]
        assert [r.split("|")[1].strip() for r in rows] == labels, rows
        for row in rows:
            graphc_cell, numpy_cell = (c.strip() for c in row.split("|")[2:4])
            assert re.fullmatch(r"[0-9.]+ (µs|ms|s)", graphc_cell), row
            assert re.fullmatch(r"[0-9.]+ (µs|ms|s)", numpy_cell), row


def test_memory_script_reads_graphc_plans_at_tiny_sizes(tmp_path):
    """benchmarks/memory.py --tiny, graphc alone: the RSS figures and the memory plan of each
    training program (one executable for W2 and W5, stages and loops for W7) come out."""
    import json
    out = tmp_path / "RESULTS-MEMORY.md"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory.py"), "--tiny", "--frameworks", "graphc",
                           "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    raw = json.loads(out.with_suffix(".json").read_text())
    for name in ("W2", "W5", "W7"):
        r = raw["results"]["graphc"][name]
        assert r["peak"] >= r["baseline"] > 0, (name, r)
        own = r["own"]
        assert 0 < own["planned_peak"] <= own["naive"], (name, own)
    assert "loops' outputs" in raw["results"]["graphc"]["W7"]["own"]["what"]
    text = out.read_text()
    assert "| W2 |" in text and "| graphc |" in text

"""The demo command runs in a fresh process and reports what it did."""
import subprocess
import sys


def test_demo_runs():
    out = subprocess.run([sys.executable, "-m", "graphc", "demo"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "loss=" in out.stdout and "accuracy=" in out.stdout
    assert "demo.py:" in out.stdout  # nodes point at the demo's own lines

"""docs/ARCHITECTURE.md states how many graphc files a first Session.run enters; this holds
the document to the trace (tools/trace_first_run.py)."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _documented() -> int:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    found = re.search(r"\*\*(\d+) graphc files\*\*", text)
    assert found, "docs/ARCHITECTURE.md no longer states the measured number of files in bold"
    return int(found.group(1))


def test_first_run_enters_no_more_files_than_documented():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import trace_first_run
    finally:
        sys.path.remove(str(ROOT / "tools"))
    result = trace_first_run.trace("cpu")
    files = result["files"]
    # The walk's stations really are entered (the trace is not vacuous).
    for station in ("runtime/session.py", "optimizer/program.py", "optimizer/fusion.py", "codegen/schedule.py",
                    "codegen/emit/context.py", "codegen/cpu/executable.py"):
        assert station in files, f"the first run no longer enters {station}: update docs/ARCHITECTURE.md"
    assert len(files) <= _documented(), (
        f"a first Session.run now enters {len(files)} files, more than docs/ARCHITECTURE.md's "
        f"{_documented()}: {sorted(files)}")


def test_no_import_cycle_at_module_level():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import import_cycles
    finally:
        sys.path.remove(str(ROOT / "tools"))
    found = import_cycles.cycles(inside_functions=False)
    assert not found, f"module-level import cycles: {[sorted(c) for c in found]}"
    # the reading is not vacuous: imports inside functions do close some cycles
    assert import_cycles.cycles(inside_functions=True)

"""Every program in examples/tf1 runs as a TF1 user would run it and learns: each checks its
own threshold (on accuracy or loss, stated in the program) and fails otherwise."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "tf1"
PROGRAMS = sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_the_folder_has_the_programs_the_issue_lists():
    assert len(PROGRAMS) >= 8
    for program in PROGRAMS:
        source = (EXAMPLES / program).read_text()
        assert "import graphc as tf" in source and "assert " in source, program
        assert "graphc." not in source.replace("import graphc as tf", ""), f"{program} uses graphc by name"


@pytest.mark.parametrize("program", PROGRAMS)
def test_the_program_learns(program):
    done = subprocess.run([sys.executable, str(EXAMPLES / program)], capture_output=True, text=True, timeout=900,
                          cwd=str(EXAMPLES.parents[1]), env=dict(os.environ))
    assert done.returncode == 0, f"{program} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"

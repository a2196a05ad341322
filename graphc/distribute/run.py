"""Launch a data-parallel run: ``python -m graphc.distribute.run -np 2 train.py [args...]``.

It runs ``mpiexec -n 2 <this python> train.py [args...]`` with the ``mpiexec`` that
``pip install "graphc[mpi]"`` put beside this Python (MPICH's, from its wheel), so a fresh
virtual environment needs no system MPI and no PATH set-up. Hosts go through to mpiexec:
``-H host1:2,host2:2`` or ``--hostfile FILE`` (docs/DISTRIBUTED.md). The exit status is
mpiexec's: non-zero when any rank failed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

from .world import INSTALL

LAUNCHERS = ("mpiexec", "mpirun")


def find_mpiexec() -> str:
    """The mpiexec beside this Python (a virtual environment's bin/), else the first on PATH.
    ``GRAPHC_MPIEXEC`` names one explicitly."""
    chosen = os.environ.get("GRAPHC_MPIEXEC")
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise FileNotFoundError(f"GRAPHC_MPIEXEC={chosen!r} is not an executable file")
        return chosen
    here = Path(sys.executable).parent
    for name in LAUNCHERS:
        candidate = here / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    for name in LAUNCHERS:
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError(f"no mpiexec or mpirun beside {sys.executable} or on PATH: {INSTALL}, "
                            "then run this again (or set GRAPHC_MPIEXEC to your MPI's launcher)")


def command(np_: int, script: str, args: List[str], hosts: Optional[str] = None,
            hostfile: Optional[str] = None) -> List[str]:
    cmd = [find_mpiexec(), "-n", str(np_)]
    if hosts:
        cmd += ["-hosts", hosts]
    if hostfile:
        cmd += ["-f", hostfile]
    return cmd + [sys.executable, script, *args]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphc.distribute.run",
                                     description="Run a graphc.distribute (Horovod-style) script on N ranks.")
    parser.add_argument("-np", "-n", dest="np", type=int, required=True, help="number of ranks (processes)")
    parser.add_argument("-H", "--hosts", help="comma-separated hosts, as mpiexec's -hosts (host:slots)")
    parser.add_argument("--hostfile", help="a file of hosts, one per line (host:slots)")
    parser.add_argument("script", help="the Python script every rank runs")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    ns = parser.parse_args(argv)
    if ns.np < 1:
        parser.error(f"-np must be at least 1, got {ns.np}")
    if not os.path.isfile(ns.script):
        parser.error(f"no script at {ns.script}")
    try:
        cmd = command(ns.np, ns.script, ns.args, ns.hosts, ns.hostfile)
    except FileNotFoundError as e:
        print(f"graphc.distribute.run: {e}", file=sys.stderr)
        return 127
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

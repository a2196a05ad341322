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
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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


# MPICH's launcher ends the job the moment a rank dies, before any other rank can say which,
# and names the dead process by its pid: "PID 22170 RUNNING AT host". Each rank writes its pid
# to RANK_MAP at init (distribute/world.py), so the launcher can name the rank. That pid is
# not always the rank that died: the launcher kills the others with the same signal 9 that a
# killed rank dies of, and has reported one of those (seen once in CI under load). So this
# launcher also watches the ranks on its own host as they exit (``_FirstDeaths``).
RANK_MAP = "GRAPHC_RANK_MAP"
_DEAD = re.compile(r"PID (\d+) RUNNING AT (\S+)")


class _FirstDeaths(threading.Thread):
    """Waits on a pidfd of every rank on this host (from RANK_MAP as the ranks write it) and
    records the ranks whose processes are gone when it first wakes: the rank that died, before
    the launcher's clean-up kills the rest. Linux 5.3 or later; elsewhere it records nothing."""

    def __init__(self, rank_map: str, stop: threading.Event):
        super().__init__(name="graphc-rank-watch", daemon=True)
        self.rank_map, self.stop = rank_map, stop
        self.first: List[str] = []

    def run(self) -> None:
        if not hasattr(os, "pidfd_open"):
            return
        host, fds, seen = socket.gethostname(), {}, 0
        poller = select.poll()
        while not self.stop.is_set() and not self.first:
            try:
                with open(self.rank_map, encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except OSError:
                lines = []
            for line in lines[seen:]:
                parts = line.split()
                if len(parts) == 3 and parts[1] == host:
                    try:
                        fd = os.pidfd_open(int(parts[2]))
                    except (OSError, ValueError):
                        continue
                    fds[fd] = (parts[0], parts[2], parts[1])  # rank, pid, host
                    poller.register(fd, select.POLLIN)
            seen = len(lines)
            ready = poller.poll(50) if fds else []
            if ready:
                self.first = sorted(fds[fd] for fd, _ in ready)
        for fd in fds:
            os.close(fd)


def launch(cmd: List[str]) -> int:
    """Run ``cmd`` (an mpiexec command), passing its output through; if a rank died, say which."""
    with tempfile.TemporaryDirectory(prefix="graphc-run-") as tmp:
        ranks = os.path.join(tmp, "ranks")
        env = dict(os.environ, **{RANK_MAP: ranks})
        dead = []
        stop = threading.Event()
        watch = _FirstDeaths(ranks, stop)
        watch.start()
        with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace") as process:
            try:
                for line in process.stdout:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                    m = _DEAD.search(line)
                    if m:
                        dead.append(m.groups())
            except KeyboardInterrupt:
                process.send_signal(signal.SIGINT)
            code = process.wait()
        stop.set()
        watch.join(timeout=1)
        if code != 0 and dead and len(watch.first) == 1:  # one rank on this host was gone first: that one
            rank, pid, host = watch.first[0]
            print(f"graphc.distribute.run: rank {rank} (pid {pid} on {host}) died, so the launcher ended the job "
                  f"(exit status {code})", file=sys.stderr)
        elif code != 0 and dead and os.path.exists(ranks):
            with open(ranks, encoding="utf-8") as f:
                owners = {(parts[2], parts[1]): parts[0] for parts in (line.split() for line in f) if len(parts) == 3}
            for pid, host in dead:
                rank = owners.get((pid, host))
                if rank is not None:
                    print(f"graphc.distribute.run: rank {rank} (pid {pid} on {host}) died, so the launcher ended "
                          f"the job (exit status {code})", file=sys.stderr)
        return code


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
    return launch(cmd)


if __name__ == "__main__":
    sys.exit(main())

"""How many of the process's cores are free now, so that threads never wait on a busy core.

Measured on the 2-core benchmark machine with another process pinned to one core
(benchmarks/busy_core.py): OpenBLAS' threads and graphc's kernel threads that assume two
cores spin or wait on the busy one, and a W2 step that takes 7.7 ms quietly took a median
of 15.7 ms with a 90th percentile of 49 ms (another host: 132 ms against jax's 16 ms). One
thread on the free core takes 10.8 ms. So every parallel region asks ``width()`` how many
threads to use, and OpenBLAS is given the same count.

``width()`` comes from a daemon thread that samples, every ``PERIOD`` seconds, how much CPU
time the cores this process may run on spent busy (``/proc/stat``) minus what this process
itself used (``/proc/self/stat``): what is left is other processes' load. With ``n`` allowed
cores and other processes using ``b`` cores' worth, the width is ``round(n - b)`` clamped to
``[1, THREADS]``. Reading the two files costs about 30 µs per sample, i.e. about 0.01% of a
core. Off Linux (no ``/proc``), or with ``GRAPHC_ADAPTIVE_THREADS=0``, the width is fixed at
``THREADS``. A container's CPU quota (cgroup ``cpu.max``) is not read: set
``GRAPHC_NUM_THREADS`` there.
"""
from __future__ import annotations

import os
import threading
import time

PERIOD = 0.25  # seconds between samples: a change of load is followed within about this long


def _jiffies_busy(cpus) -> tuple:
    """(busy, total) jiffies of the given CPUs since boot, from /proc/stat."""
    busy = total = 0
    wanted = {f"cpu{c}" for c in cpus}
    with open("/proc/stat", "rb") as f:
        for line in f:
            if not line.startswith(b"cpu"):
                break
            fields = line.split()
            if fields[0].decode() not in wanted:
                continue
            values = [int(v) for v in fields[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            t = sum(values[:8])  # guest time is already counted in user
            busy += t - idle
            total += t
    return busy, total


def _own_jiffies() -> int:
    """This process's user + system time in clock ticks (all its threads)."""
    with open("/proc/self/stat", "rb") as f:
        text = f.read()
    fields = text[text.rindex(b")") + 2:].split()  # the command name may hold spaces
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


def free_width(busy: int, own: int, elapsed: int, cores: int, threads: int) -> int:
    """Threads to use, from one sample: ``busy`` jiffies the allowed cores were busy, ``own``
    of them this process's, out of ``elapsed`` jiffies summed over the ``cores`` cores."""
    if elapsed <= 0:
        return threads
    others = max(0.0, busy - own) / elapsed * cores  # other processes' load, in cores
    return max(1, min(threads, round(cores - others)))


class _Monitor:
    def __init__(self, threads: int):
        self.threads = threads
        self.width = threads
        self.listeners = []  # called with the new width whenever it changes
        self._cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self._thread = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="graphc-cores", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            busy, total = _jiffies_busy(self._cpus)
            own = _own_jiffies()
        except (OSError, ValueError, IndexError):
            return  # no /proc: the width stays fixed
        while True:
            time.sleep(PERIOD)
            try:
                busy2, total2 = _jiffies_busy(self._cpus)
                own2 = _own_jiffies()
            except (OSError, ValueError, IndexError):
                return
            self.set_width(free_width(busy2 - busy, own2 - own, total2 - total, len(self._cpus), self.threads))
            busy, total, own = busy2, total2, own2

    def set_width(self, width: int) -> None:
        if width != self.width:
            self.width = width
            for listener in list(self.listeners):
                listener(width)


def _make_monitor() -> _Monitor:
    from .parallel import THREADS
    return _Monitor(THREADS)


_monitor = None
_monitor_pid = None


def monitor() -> _Monitor:
    """The process's monitor, started on first use (a forked child starts its own)."""
    global _monitor, _monitor_pid
    if _monitor is None or _monitor_pid != os.getpid():
        _monitor = _make_monitor()
        _monitor_pid = os.getpid()
        if _monitor.threads > 1 and os.environ.get("GRAPHC_ADAPTIVE_THREADS", "1") != "0" and _monitor._cpus:
            _monitor.start()
    return _monitor


def width() -> int:
    """Threads a parallel region should use now."""
    return monitor().width

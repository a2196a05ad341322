"""When an array may be reused: nothing but its owner holds it.

Two places reuse arrays from one run to the next instead of taking fresh memory, which
page-faults on its first write (4 KiB at a time): the outputs of a stage that the next stage
reads and drops (codegen/cpu/executable.py, ``_fresh``) and the results of a collective
(distribute/world.py, ``_buffer``). An array is reused only when ``sys.getrefcount`` shows
that no one else references it: no result a user kept, no view of it (a view references its
base), no other thread's run.

How many references "free" means depends on the interpreter (CPython 3.14 stopped counting
the reference that loading a local takes), so it is measured here, at import, by probes
shaped exactly like the two places that ask. On a free-threaded build reference counts are
not exact, and nothing is reused.
"""
from __future__ import annotations

import sys


def _held_by_a_dict_and_a_name() -> int:
    owner = {0: object()}
    last = owner.get(0)  # as CpuExecutable._fresh: ``last = self._recycled.get(value)``
    return sys.getrefcount(last)


def _held_by_a_list_in_a_loop() -> int:
    owner = [object()]
    for item in owner:  # as World._buffer: ``for buf in pool``
        return sys.getrefcount(item)
    return -1


_EXACT = getattr(sys, "_is_gil_enabled", lambda: True)()
FREE_IN_DICT = _held_by_a_dict_and_a_name() if _EXACT else -1
FREE_IN_LIST = _held_by_a_list_in_a_loop() if _EXACT else -1

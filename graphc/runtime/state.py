"""What a Session keeps between runs: variable values and random-stream counters; and, per
thread, the deadline of the run in progress (``RunOptions(timeout_in_ms=...)``)."""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional

import numpy as np

from ..errors import DeadlineExceededError, FailedPreconditionError


class SessionState:
    def __init__(self, describe_variable: Optional[Callable[[str], str]] = None):
        self.variables: dict = {}
        self.random_counters: dict = {}
        self.lock = threading.Lock()
        self._describe = describe_variable or (lambda name: f"'{name}'")
        self._run = threading.local()
        self.tracing = 0

    def set_timeout(self, timeout_ms: Optional[int]) -> None:
        """Start this thread's run with a timeout (None or 0: none)."""
        self._run.deadline = time.monotonic() + timeout_ms / 1000.0 if timeout_ms else None
        self._run.timeout_ms = timeout_ms

    def check_deadline(self, what: str) -> None:
        """Raise if this thread's run is past its deadline; loops call it once per iteration."""
        deadline = getattr(self._run, "deadline", None)
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExceededError(f"{what} ran past the run's timeout of {self._run.timeout_ms} ms "
                                        "(RunOptions(timeout_in_ms=...)); the run stopped there")

    def deadline_ns(self) -> int:
        """This thread's run deadline on ``time.monotonic_ns``'s clock, 0 if none: compiled loops
        check it themselves (codegen/emit/runtime.py, ``monotonic_ns``)."""
        deadline = getattr(self._run, "deadline", None)
        return int(deadline * 1e9) if deadline is not None else 0

    def begin_trace(self, tracer) -> None:
        """This thread's run is traced into ``tracer`` (a ``gc.profiler.Tracer``) until
        ``end_trace``. ``tracing`` counts the traced runs in progress in any thread: a plain
        attribute, so an untraced run's check of it costs one attribute read."""
        with self.lock:
            self.tracing += 1
        self._run.tracer = tracer

    def end_trace(self) -> None:
        self._run.tracer = None
        with self.lock:
            self.tracing -= 1

    def current_tracer(self):
        """This thread's tracer, or None (a traced run in another thread is not this one's)."""
        return getattr(self._run, "tracer", None)

    def timeout_ms(self):
        return getattr(self._run, "timeout_ms", None)

    def read_variable(self, name: str) -> np.ndarray:
        """The value as a NumPy array (a CUDA session keeps its variables on the device)."""
        try:
            value = self.variables[name]
        except KeyError:
            raise FailedPreconditionError(
                f"attempting to use uninitialized variable {self._describe(name)}; run "
                "gc.global_variables_initializer() (or the variable's initializer) first") from None
        return value.copy_to_host() if hasattr(value, "copy_to_host") else value

    def write_variable(self, name: str, value: np.ndarray) -> None:
        self.variables[name] = value

    def next_random_counter(self, stream: int) -> int:
        with self.lock:
            k = self.random_counters.get(stream, 0)
            self.random_counters[stream] = k + 1
            return k

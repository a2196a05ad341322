"""What a Session keeps between runs: variable values and random-stream counters."""
from __future__ import annotations

import threading
from typing import Callable, Optional

import numpy as np

from ..errors import FailedPreconditionError


class SessionState:
    def __init__(self, describe_variable: Optional[Callable[[str], str]] = None):
        self.variables: dict = {}
        self.random_counters: dict = {}
        self.lock = threading.Lock()
        self._describe = describe_variable or (lambda name: f"'{name}'")

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

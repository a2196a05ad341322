"""The backend interface and the table of backends by device name."""
from __future__ import annotations

import importlib
import os
import threading
from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from ..errors import CompileError
from ..optimizer.program import Program


class _Miss:
    """What a backend's specialized fast path returns when its cheap checks fail."""

    def __repr__(self):
        return "MISS"


MISS = _Miss()


def machine_memory() -> int:
    """Bytes of physical memory: a run whose buffers need more cannot succeed, and asking for
    them could get the process killed rather than an error."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 62


class Executable(ABC):
    """A Program compiled for one backend. ``run`` returns the values of ``program.fetches``."""

    program: Program

    @abstractmethod
    def run(self, feeds: Sequence[np.ndarray], ctx) -> list:
        ...


class Backend(ABC):
    name: str
    # What this backend can run in one kernel group beyond what every backend can; fusion
    # builds only groups the backend can run (optimizer/state.py names them).
    capabilities: frozenset = frozenset()

    @abstractmethod
    def compile(self, program: Program) -> Executable:
        ...


# device name -> "module:Class"; modules are imported on first use so that importing graphc
# does not pay for numba.
_BACKENDS = {
    "reference": "graphc.codegen.reference:ReferenceBackend",
    "cpu": "graphc.codegen.cpu:CpuBackend",
    "cuda": "graphc.codegen.cuda:CudaBackend",
}
_instances: dict = {}
_lock = threading.Lock()


def register_backend(device: str, target: str) -> None:
    _BACKENDS[device] = target


def available_devices() -> list:
    return sorted(_BACKENDS)


def get_backend(device: str) -> Backend:
    with _lock:
        if device in _instances:
            return _instances[device]
        if device not in _BACKENDS:
            raise CompileError(f"unknown device {device!r}; available devices: {', '.join(available_devices())}")
        module_name, cls_name = _BACKENDS[device].split(":")
        backend = getattr(importlib.import_module(module_name), cls_name)()
        _instances[device] = backend
        return backend

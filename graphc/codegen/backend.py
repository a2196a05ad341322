"""The backend interface and the table of backends by device name."""
from __future__ import annotations

import importlib
import os
import threading
from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from ..errors import CompileError, InvalidArgumentError
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


def variable_use(program: Program) -> tuple:
    """(the variables the program reads or updates, sorted; {variable it only assigns:
    (shape, NumPy dtype)}): what a run needs in the session's state before it starts."""
    needed = sorted({ins.attrs["var"] for ins in program.instrs
                     if ins.op in ("read_variable", "assign_add", "assign_sub")})
    created = {ins.attrs["var"]: (tuple(ins.attrs["shape"]), ins.attrs["dtype"].np)
               for ins in program.instrs if ins.op == "assign" and ins.attrs["var"] not in needed}
    return needed, created


def ensure_variables(ctx, needed, created) -> None:
    """Raise the uninitialized-variable error for a needed variable the session lacks; give a
    variable the run only assigns a zero value to write into."""
    variables = ctx.variables
    for name in needed:
        if name not in variables:
            ctx.read_variable(name)  # raises the uninitialized-variable error
    for name, (shape, dtype) in created.items():
        if name not in variables:
            ctx.write_variable(name, np.zeros(shape, dtype))


def program_error(program: Program, i: int, message: str) -> InvalidArgumentError:
    """A kernel's run-time error, naming the user's op and where it was created."""
    ins = program.instrs[i]
    origin = ins.origin
    label = f"{origin.op} '{origin.name}'" if origin else ins.op
    where = f"\n  created at {origin.location}" if origin else ""
    return InvalidArgumentError(f"{label} at run time: {message}{where}")


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

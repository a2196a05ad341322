"""The numba CPU backend: each Program becomes one generated, cached numba function."""
from __future__ import annotations

from ..backend import Backend, Executable


class CpuBackend(Backend):
    name = "cpu"

    def compile(self, program) -> Executable:
        from .executable import CpuExecutable
        return CpuExecutable(program)

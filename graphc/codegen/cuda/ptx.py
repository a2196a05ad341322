"""Every kernel of a program lowered to PTX, without a GPU.

The simulator runs a kernel as Python, so it forgives what a real target rejects (a Python
object where numba needs a typed value, an unsupported math function, a shared array of a
run-time size). ``program_ptx`` compiles each generated kernel with ``numba.cuda.compile_ptx``
for the argument types the driver passes at run time, which needs the CUDA toolkit (NVVM)
but no driver. CI uses it as the check that the CUDA backend lowers for a real target.
"""
from __future__ import annotations

import contextlib
import types as pytypes
from typing import List, Tuple
from unittest import mock

import numpy as np

from ...errors import CompileError
from ...optimizer.program import Program

DEFAULT_CC = (8, 0)


def toolkit_available() -> bool:
    """True where numba can find NVVM (the CUDA toolkit), so PTX can be generated here."""
    try:
        from numba.cuda.cudadrv import nvvm
        return bool(nvvm.is_available())
    except Exception:
        return False


def _array_type(dtype):
    from numba import types
    dtype = np.dtype(dtype)
    return types.Array(types.boolean if dtype == np.bool_ else getattr(types, dtype.name), 1, "C")


def variable_dtypes(program: Program) -> dict:
    return {ins.attrs["var"]: ins.attrs["dtype"].np for ins in program.instrs if "var" in ins.attrs}


def argument_types(program: Program, call, var_dtypes: dict) -> tuple:
    """The numba types the driver passes ``call``: flat C-contiguous device arrays for values,
    variables (``var_dtypes``: ``variable_dtypes(program)``), scratch, error and random-seed
    arrays; int64 for run-time sizes."""
    from numba import types
    out = []
    for key in call.params:
        kind = key[0]
        if kind in ("in", "out"):
            out.append(_array_type(program.types[key[1]].dtype.np))
        elif kind == "var":
            out.append(_array_type(var_dtypes[key[1]]))
        elif kind == "scratch":
            out.append(_array_type(key[1]))
        elif kind in ("errors", "rng"):
            out.append(_array_type(np.int64))
        elif kind == "dim":
            out.append(types.int64)
        else:
            raise AssertionError(f"no PTX argument type for a {kind!r} parameter")
    return tuple(out)


@contextlib.contextmanager
def _without_driver(cc):
    """numba asks the driver for the current device's compute capability when a kernel
    calls device functions, even when compile_ptx is given ``cc``; answer for it."""
    import numba.cuda.dispatcher as dispatcher
    stub = pytypes.SimpleNamespace(compute_capability=cc)
    with mock.patch.object(dispatcher, "get_current_device", lambda: stub):
        yield


def program_ptx(program: Program, mode: str = "static", cc: Tuple[int, int] = DEFAULT_CC) -> List[Tuple[str, str]]:
    """(label, PTX text) for every kernel the CUDA backend generates for ``program``. Raises
    CompileError naming the kernel when one does not lower."""
    from numba import cuda

    from ..cpu import cache
    from .api import simulated
    from .codegen import CudaProgramCodegen
    from .executable import cuda_module_source
    if simulated():
        raise CompileError("PTX cannot be generated under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1): "
                           "it replaces numba's CUDA compiler")
    from ..control_flow import body_program, has_control_flow, settings_of, split_stages
    if has_control_flow(program):  # in stages, as the CUDA backend runs it (codegen/control_flow.py)
        staged = []
        for stage in split_stages(program):
            if stage.program is not None:
                staged += program_ptx(stage.program, mode, cc)
            for i in stage.control:  # bodies are programs of their own; data-sized ops run on the host
                ins = program.instrs[i]
                for key in ins.opdef.bodies:
                    staged += program_ptx(body_program(ins.attrs[key], settings_of(program)), mode, cc)
        return staged
    generated = CudaProgramCodegen(program, mode).generate()
    out = []
    var_dtypes = variable_dtypes(program)
    with _without_driver(cc):
        for call in generated.calls:
            module = cache.load(cuda_module_source(call.source))
            try:
                ptx, _ = cuda.compile_ptx(module._kernel, argument_types(program, call, var_dtypes), cc=cc)
            except Exception as e:
                raise CompileError(f"CUDA kernel {call.label} does not lower to PTX: {type(e).__name__}: {e}\n"
                                   f"{call.source}") from None
            out.append((call.label, ptx))
    return out

"""The one place graphc imports CUDA from.

numba 0.6x ships ``numba.cuda`` (deprecated in favour of NVIDIA's ``numba-cuda`` package,
which installs itself as ``numba.cuda`` too), so ``from numba import cuda`` gives whichever
is installed. Everything CUDA in graphc goes through ``cuda()`` so that a missing driver is
one clear error, raised when a CUDA session compiles, never at ``import graphc``.
"""
from __future__ import annotations

import os

from ...errors import CompileError

INSTALL_HINT = ("install a GPU build with `pip install graphc[cuda]` (NVIDIA's numba-cuda and the CUDA "
                "runtime libraries) on a machine with an NVIDIA driver, or set NUMBA_ENABLE_CUDASIM=1 "
                "before importing graphc to run CUDA kernels in numba's (slow) simulator")


def simulated() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _restore_numpy_aliases_numba_cuda_uses() -> None:
    """numba-cuda 0.30 registers an overload for ``np.row_stack``, which NumPy 2.5 removed (it
    was an alias of ``np.vstack``), so its first kernel compile fails with an AttributeError
    from inside numba-cuda. Seen on an H200 with numpy 2.5.2 and numba-cuda 0.30.4. Putting the
    alias back is harmless: it is the same function NumPy had under that name."""
    import numpy as np
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack


def cuda():
    """The ``numba.cuda`` module, checked usable: a GPU and driver, or the simulator."""
    _restore_numpy_aliases_numba_cuda_uses()
    try:
        from numba import cuda as module
    except ImportError as e:  # pragma: no cover - numba without its CUDA target
        raise CompileError(f"device='cuda' needs numba's CUDA target, which failed to import ({e}); "
                           f"{INSTALL_HINT}") from None
    if simulated():
        return module
    try:
        available = module.is_available()
    except Exception as e:  # a broken driver install raises instead of answering
        raise CompileError(f"device='cuda': the CUDA driver failed to load ({type(e).__name__}: {e}); "
                           f"{INSTALL_HINT}") from None
    if not available:
        raise CompileError(f"device='cuda' but no CUDA GPU is usable here (numba.cuda.is_available() is "
                           f"False); {INSTALL_HINT}")
    return module


def describe() -> str:
    """One line about the CUDA device in use, for ``python -m graphc`` and reports."""
    module = cuda()
    if simulated():
        return "numba CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
    device = module.get_current_device()
    name = device.name.decode() if isinstance(device.name, bytes) else device.name
    return f"{name}, compute capability {device.compute_capability[0]}.{device.compute_capability[1]}"

"""The native target: a Program compiled ahead of time into a C shared library that needs
only libc and libm (``gc.export.shared_library``). It retargets the CPU backend's emitters
(codegen.py), replaces library calls with graphc's own loops (kernels.py), lowers numba's
LLVM IR to an object file for a chosen CPU (build.py) and wraps it in a checked C API
(capi.py)."""

"""Every CPU kernel asks LLVM for the CPU's widest vectors (cpu/executable.full_vector_width): LLVM's
x86 tuning otherwise stays at 256 bits on AVX-512 CPUs. The speed is measured in
benchmarks/ (W1a); here, that the request is made and reaches the compiled function."""
import numpy as np
from numba import njit

from graphc.codegen.cpu.executable import full_vector_width, kernel_module_source


def test_every_cpu_kernel_module_asks_for_the_widest_vectors():
    source = kernel_module_source("_K0 = 1\n\n\ndef _kernel(A0, N1):\n    A0[0] = _K0\n    return 0",
                                  ['types.Array(types.float32, 1, "C")', "types.int64"])
    body = source[source.index("def _kernel("):]
    assert body.splitlines()[1].strip() == "full_vector_width()"
    namespace: dict = {}
    exec(compile(source.replace("cache=True", "cache=False"), "<kernel>", "exec"), namespace)
    out = np.zeros(4, np.float32)
    assert namespace["kernel"](out, 4) == 0 and out[0] == 1


def test_the_request_reaches_llvm_and_changes_no_result():
    @njit(fastmath={"contract", "reassoc"})
    def total(x):
        full_vector_width()
        s = np.float32(0)
        for v in x:
            s += v
        return s

    x = np.arange(1000, dtype=np.float32)
    assert total(x) == np.float32(499500)
    llvm_ir = next(iter(total.inspect_llvm().values()))
    assert '"prefer-vector-width"="512"' in llvm_ir

"""From generated numba source to a position-independent object file, with no Python in it.

1. numba compiles the driver (and, through it, every kernel) for raw pointers, with no
   CPython or cfunc wrapper;
2. its LLVM IR (``library.get_llvm_str()``, which holds the kernels it calls) gets a C-ABI
   entry point ``int32_t NAME__driver(args)`` that calls numba's native function and returns
   the driver's result, or -1 if numba's own status says it raised;
3. every other symbol becomes internal; any call out of the module that is not libc/libm
   (numba's Python-linked helpers, NRT allocation) is an error naming the kernel's ops;
4. LLVM's O3 pipeline runs for the chosen CPU, and llvmlite emits a PIC object.
"""
from __future__ import annotations

import contextlib
import re

from ...errors import CompileError

# Calls that may leave the object: libm/libc functions LLVM lowers math and memory intrinsics
# to, and NRT_MemInfo_call_dtor, which NRT_decref calls only for memory NRT allocated (none
# here: every array is a view of the caller's memory); the C wrapper defines an empty one.
ALLOWED_EXTERNAL = re.compile(
    r"^(llvm\..*|NRT_MemInfo_call_dtor|memcpy|memmove|memset|"
    r"(exp|exp2|expm1|log|log2|log10|log1p|pow|sqrt|cbrt|sin|cos|tan|asin|acos|atan|atan2|sinh|cosh|tanh|"
    r"asinh|acosh|atanh|erf|erfc|lgamma|tgamma|fmod|remainder|floor|ceil|trunc|round|rint|nearbyint|fma|"
    r"hypot|copysign|fabs|ldexp|frexp|modf|fmin|fmax|sincos)f?)$")

KNOWN_CPUS = ("x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4", "haswell", "broadwell", "skylake", "skylake-avx512",
              "cascadelake", "icelake-client", "icelake-server", "sapphirerapids", "alderlake", "znver1",
              "znver2", "znver3", "znver4", "znver5")


class NativeBuildError(CompileError):
    """numba or LLVM could not build the library (names the kernel's ops when it can)."""


def cpu_features(cpu: str) -> str:
    """The LLVM features to build for ``cpu`` as the user named it: this machine's own for
    "native" (a virtual machine can report a CPU name, e.g. znver4, whose AVX-512 its
    hypervisor masks: the name alone would emit instructions this machine lacks), else the
    named CPU's defaults ("")."""
    from llvmlite import binding as llvm
    return llvm.get_host_cpu_features().flatten() if cpu in ("native", "host") else ""


def resolve_cpu(cpu: str) -> str:
    from llvmlite import binding as llvm
    if cpu in ("native", "host"):
        return llvm.get_host_cpu_name()
    if cpu not in KNOWN_CPUS:
        raise ValueError(f"unknown cpu {cpu!r}; use one of {', '.join(KNOWN_CPUS)}, or 'native' for this machine's")
    return cpu


@contextlib.contextmanager
def numba_unoptimized():
    """numba's own LLVM passes at level 0 while it compiles the native module: the IR is
    optimized once, by ``object_code``, for the library's CPU (not twice, the first time for
    this machine's). Measured on LeNet: the export took 7 s with numba at level 3.
    numba reads ``config.OPT`` whenever it builds a pass pipeline; its compiler lock keeps
    other threads from compiling meanwhile."""
    from numba.core import config
    from numba.core.compiler_lock import global_compiler_lock
    with global_compiler_lock:
        saved = config.OPT
        config.OPT = type(saved)(0)
        try:
            yield
        finally:
            config.OPT = saved


def _first_lines(text: str, n: int = 12) -> str:
    lines = text.strip().splitlines()
    return "\n".join(lines[:n]) + ("\n..." if len(lines) > n else "")


def driver_ir(module) -> tuple:
    """(LLVM IR text, mangled name of the driver's native function)."""
    dispatcher = module.driver
    (cres,) = dispatcher.overloads.values()
    return cres.library.get_llvm_str(), cres.fndesc.mangled_name


def external_calls(ir: str) -> dict:
    """Declared (undefined) functions -> names of the defined functions that call them."""
    declared = set(re.findall(r'^declare [^@]*@("[^"]+"|[\w.$]+)\(', ir, re.M))
    declared = {d.strip('"') for d in declared}
    callers: dict = {d: set() for d in declared if not ALLOWED_EXTERNAL.match(d)}
    if not callers:
        return {}
    current = None
    for line in ir.splitlines():
        m = re.match(r'^define [^@]*@("[^"]+"|[\w.$]+)\(', line)
        if m:
            current = m.group(1).strip('"')
            continue
        if current is None:
            continue
        for name in callers:
            if f"@{name}(" in line or f'@"{name}"(' in line:
                callers[name].add(current)
    return callers


def object_code(ir: str, mangled: str, entry: str, cpu: str, features: str = "") -> bytes:
    """Add the C entry point ``entry``, internalize the rest, optimize for ``cpu``, emit a PIC
    object."""
    from llvmlite import binding as llvm
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    # numba targets the build machine; the library targets ``cpu``: drop per-function pins
    ir = re.sub(r'\s"target-(cpu|features)"="[^"]*"', "", ir)
    module = llvm.parse_assembly(ir)
    fn = module.get_function(mangled)
    arg_types = [str(a.type) for a in fn.arguments]
    args = arg_types[2:]  # after numba's return-value pointer and exception-info pointer
    params = ", ".join(f"{t} %a{i}" for i, t in enumerate(args))
    call_args = ", ".join(f"{t} %a{i}" for i, t in enumerate(args))
    wrapper = "\n".join([
        f"define hidden i32 @{entry}({params}) {{",
        "entry:",
        "  %ret = alloca i64, align 8",
        "  store i64 0, ptr %ret, align 8",
        "  %exc = alloca ptr, align 8",
        "  store ptr null, ptr %exc, align 8",
        f"  %status = call i32 @\"{mangled}\"(ptr %ret, ptr %exc{', ' + call_args if call_args else ''})",
        "  %raised = icmp ne i32 %status, 0",
        "  br i1 %raised, label %fail, label %ok",
        "fail:",
        "  ret i32 -1",
        "ok:",
        "  %r = load i64, ptr %ret, align 8",
        "  %r32 = trunc i64 %r to i32",
        "  ret i32 %r32",
        "}",
    ])
    module = llvm.parse_assembly(ir + "\n" + wrapper + "\n")
    for f in module.functions:
        if not f.is_declaration and f.name != entry:
            f.linkage = "internal"
    for g in module.global_variables:
        if not g.is_declaration:
            g.linkage = "internal"
    target = llvm.Target.from_triple(llvm.get_process_triple())
    tm = target.create_target_machine(cpu=cpu, features=features, opt=3, reloc="pic", codemodel="default")
    module.triple = tm.triple
    module.data_layout = str(tm.target_data)
    module.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(module, pb)
    module.verify()
    return tm.emit_object(module)

"""``gc.export.shared_library``: a model as a C shared library that needs only libc and libm.

    lib = gc.export.shared_library(sess, inputs={"x": x}, outputs={"logits": logits},
                                   path="build/model", name="model")
    # build/model/libmodel.so, model.h, README.md

The inference graph (``freeze``) goes through the optimizer like any Session program; the
native target (graphc/codegen/native) generates the kernels with the CPU backend's emitters
and a driver over raw pointers, numba compiles them, LLVM optimizes for ``cpu`` and emits a
position-independent object, and the system C compiler links it with a small generated C
wrapper that checks every argument. See docs/NATIVE.md.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from ..errors import InvalidArgumentError
from ..optimizer.pipeline import optimize
from ..optimizer.program import lower
from ..codegen.native.codegen import NativeError, NativeProgramCodegen, find_kernel
from .freeze import Signature, TensorsArg, as_frozen

NativeExportError = NativeError
ALLOWED_NEEDED = re.compile(r"^(libc\.so\.\d+|libm\.so\.\d+|ld-linux[\w.-]*\.so\.\d+|linux-vdso\.so\.\d+)$")
# lib<name>.so next to a program must not shadow a system library it links with.
SYSTEM_LIBRARIES = frozenset({"c", "m", "dl", "rt", "pthread", "util", "resolv", "crypt", "gcc", "gcc_s", "stdc++",
                              "atomic", "gomp", "z", "python3"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class SharedLibrary:
    """What ``shared_library`` wrote: the library, its header and README, and the model's
    signature. ``load()`` opens the library in this process (with ctypes) to call it."""

    directory: Path
    library: Path
    header: Path
    readme: Path
    name: str
    cpu: str
    signature: Signature
    needed: tuple  # the library's NEEDED entries (shared libraries it loads)

    def load(self) -> "NativeModel":
        """The library opened with ctypes (``dlopen`` keeps the first library loaded from a
        path: a process that re-exports to the same path keeps running the old one)."""
        return NativeModel(self)


def shared_library(sess_or_model, inputs: TensorsArg = None, outputs: TensorsArg = None, path=None,
                   name: str = "model", cpu: str = "x86-64-v3") -> SharedLibrary:
    """Compile the inference graph of ``outputs`` (from ``inputs``) into ``path/libNAME.so``,
    with ``path/NAME.h`` and ``path/README.md``.

    ``sess_or_model`` is a Session (``outputs={name: tensor}`` required, ``inputs`` optional:
    every placeholder the outputs need by default), a FrozenGraph, or a loaded model.
    ``cpu`` is the oldest CPU the library must run on ("x86-64-v3": AVX2 and FMA, the
    default; "x86-64" for any 64-bit x86; "native" for this machine's).

    Raises NativeExportError naming the op (its type, name and where it was created) when
    part of the graph has no native code or a size cannot be computed from the input dims.
    """
    from .. import __version__
    from ..codegen.cpu.cache import import_file  # (imports numba: not at `import graphc`)
    from ..codegen.native import build, capi
    if path is None:
        raise TypeError("shared_library needs path=, the directory to write the library into")
    if not isinstance(name, str) or not _NAME.match(name) or name in capi.C_KEYWORDS:
        raise ValueError(f"name must be a C identifier (letters, digits, _), got {name!r}")
    if name in SYSTEM_LIBRARIES:
        raise ValueError(f"name {name!r} would make lib{name}.so, which '-l{name}' would pick instead of the system's "
                         f"lib{name}; choose another name")
    features = build.cpu_features(cpu)
    cpu = build.resolve_cpu(cpu)
    cc = shutil.which(os.environ.get("CC") or "cc")
    if cc is None:
        raise NativeExportError("shared_library needs a C compiler: no 'cc' on PATH (set CC to choose one)")
    frozen = as_frozen(sess_or_model, inputs, outputs)
    signature = frozen.signature
    program = lower(frozen.graph, list(frozen.outputs.values()), list(frozen.inputs.values()))
    program = optimize(program, 2).program
    prog = NativeProgramCodegen(program, list(frozen.inputs), list(frozen.outputs)).build(name)
    api = capi.CApi(prog, name, str(signature), __version__, cpu)

    out_dir = Path(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="graphc-native-") as tmp:
        tmp = Path(tmp)
        digest = hashlib.sha256(prog.module_source.encode()).hexdigest()[:16]
        module_path = tmp / f"{name}_native.py"
        module_path.write_text(prog.module_source)
        module = import_file(module_path, f"graphc_native_{name}_{digest}", keep=False)
        _compile_driver(module, prog)
        ir, mangled = build.driver_ir(module)
        bad = build.external_calls(ir)
        if bad:
            raise NativeExportError(_external_message(bad, prog))
        obj = tmp / f"{name}_kernels.o"
        obj.write_bytes(build.object_code(ir, mangled, prog.driver_name, cpu, features))
        consts = tmp / "consts.bin"
        consts.write_bytes(prog.consts)
        header = tmp / f"{name}.h"
        header.write_text(api.header())
        source = tmp / f"{name}.c"
        source.write_text(api.source(str(consts)))
        lib_tmp = tmp / f"lib{name}.so"
        command = [cc, "-shared", "-fPIC", "-O2", "-std=gnu11", "-fvisibility=hidden", f"-I{tmp}", "-o",
                   str(lib_tmp), str(source), str(obj), "-lm", "-Wl,--no-undefined", f"-Wl,-soname,lib{name}.so"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise NativeExportError(f"linking lib{name}.so failed ({' '.join(command)}):\n{done.stderr.strip()}")
        needed = _needed(lib_tmp)
        unexpected = [n for n in needed if not ALLOWED_NEEDED.match(n)]
        if unexpected:
            raise NativeExportError(f"lib{name}.so would load {unexpected}; a native library may only need libc "
                                    "and libm")
        library = out_dir / f"lib{name}.so"
        _install(lib_tmp, library)
        _install(header, out_dir / f"{name}.h")
        readme = out_dir / "README.md"
        readme_tmp = tmp / "README.md"
        readme_tmp.write_text(api.readme())
        _install(readme_tmp, readme)
    return SharedLibrary(out_dir, library, out_dir / f"{name}.h", readme, name, cpu, signature, tuple(needed))


def _compile_driver(module, prog) -> None:
    """numba compiles the driver (and the kernels it calls); a failure is narrowed down to
    the kernel that fails and named by its ops."""
    from numba.core.errors import NumbaWarning

    from ..codegen.native import build
    from ..codegen.native.build import NativeBuildError, _first_lines
    try:
        with build.numba_unoptimized(), warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaWarning)  # e.g. vmath's cache=True has no use here
            module.compile_driver()
        return
    except Exception as e:  # noqa: BLE001 - numba raises many kinds; reported below
        first = e
    for c, signature in enumerate(module.KERNEL_SIGNATURES):
        try:
            getattr(module, f"_kernel_{c}").compile(signature)
        except Exception as e:  # noqa: BLE001
            ops = prog.kernel_ops[c]
            main = next((i for i in ops if i.op in ("matmul", "conv2d") or i.opdef.family == "reduce"), ops[0])
            from ..codegen.native.codegen import describe
            raise NativeBuildError(f"{describe(main)}: numba cannot compile its native kernel "
                                   f"[{' '.join(i.op for i in ops)}]: {type(e).__name__}: "
                                   f"{_first_lines(str(e), 8)}") from e
    raise NativeBuildError(f"numba cannot compile the native driver: {type(first).__name__}: "
                           f"{_first_lines(str(first), 8)}") from first


def _external_message(bad: dict, prog) -> str:
    from ..codegen.native.codegen import describe
    lines = []
    for symbol, callers in sorted(bad.items()):
        kernels = sorted({k for k in (find_kernel(c) for c in callers) if k is not None})
        where = "; ".join(f"{describe(prog.kernel_ops[k][0])} [{' '.join(i.op for i in prog.kernel_ops[k])}]"
                          for k in kernels) or "the driver"
        lines.append(f"  {symbol}, called by {where}")
    return ("the compiled code calls functions outside libc and libm (numba's Python-linked runtime), so these "
            "ops have no native code:\n" + "\n".join(lines))


def _needed(library: Path) -> list:
    readelf = shutil.which("readelf")
    if readelf is None:
        return []
    done = subprocess.run([readelf, "-d", str(library)], capture_output=True, text=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", done.stdout)


def _install(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically (a temporary name in dst's directory, then rename),
    so a running program that has the old library open keeps a consistent file."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o755 if dst.suffix == ".so" else 0o644)
    os.replace(tmp, dst)


# --- calling a library from Python ---------------------------------------------------------------------------
class NativeModel:
    """A native library opened with ctypes: ``model(x=array)`` returns ``{name: array}``.
    Handy for checking a library against ``Session.run``; C programs use the header."""

    def __init__(self, lib: SharedLibrary):
        self.lib = lib
        self._dll = ctypes.CDLL(str(lib.library))
        sig = lib.signature
        self._inputs = list(sig.inputs.values())
        self._outputs = list(sig.outputs.values())
        n = lib.name
        self._run = getattr(self._dll, f"{n}_run")
        self._run.restype = ctypes.c_int32
        self._out_dims = getattr(self._dll, f"{n}_output_dims")
        self._out_dims.restype = ctypes.c_int32
        self._last_error = getattr(self._dll, f"{n}_last_error")
        self._last_error.restype = ctypes.c_char_p

    def last_error(self) -> str:
        return self._last_error().decode(errors="replace")

    def __call__(self, **feeds) -> dict:
        unknown = sorted(set(feeds) - {s.name for s in self._inputs})
        if unknown:
            raise InvalidArgumentError(f"{self.lib.name}: unknown input(s) {unknown}; inputs are "
                                       f"{[s.name for s in self._inputs]}")
        arrays, dims = [], []
        for spec in self._inputs:
            if spec.name not in feeds:
                raise InvalidArgumentError(f"{self.lib.name}: missing input {spec.name!r}")
            a = np.asarray(feeds[spec.name], dtype=spec.dtype.np, order="C")  # keeps rank 0
            if a.ndim != len(spec.shape) or any(d is not None and d != n for d, n in zip(spec.shape, a.shape)):
                raise InvalidArgumentError(f"{self.lib.name}: input {spec.name!r} has shape {a.shape}, expected "
                                           f"{spec.shape}")
            arrays.append(a)
            dims.append([a.shape[k] for k, d in enumerate(spec.shape) if d is None])
        dim_args = [ctypes.c_int64(d) for ds in dims for d in ds]
        out_dims = [(ctypes.c_int64 * max(1, len(s.shape)))() for s in self._outputs]
        status = self._out_dims(*dim_args, *out_dims)
        if status != 0:
            raise InvalidArgumentError(f"{self.lib.name}_output_dims: status {status}: {self.last_error()}")
        outs = [np.empty(tuple(od[:len(s.shape)]), s.dtype.np) for od, s in zip(out_dims, self._outputs)]
        args = []
        for a, ds in zip(arrays, dims):
            args.append(ctypes.c_void_p(a.ctypes.data))
            args.extend(ctypes.c_int64(d) for d in ds)
        args.extend(ctypes.c_void_p(o.ctypes.data) for o in outs)
        status = self._run(*args)
        if status != 0:
            raise InvalidArgumentError(f"{self.lib.name}_run: status {status}: {self.last_error()}")
        return {s.name: o for s, o in zip(self._outputs, outs)}

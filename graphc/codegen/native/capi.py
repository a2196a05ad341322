"""The C side of a native library: the header users include, the wrapper that checks every
argument before any generated code runs, and a README.

The wrapper binds the symbols (each ``None`` dim of an input) from the dims the caller
passes, rejects negative dims and dims that contradict what graphc assumed (two ``None`` dims
it compiled as the same size), checks that no size overflows, lays the workspace out
(64-byte aligned regions), allocates it (or takes the caller's), calls the compiled driver,
and turns its result into a status code and a message (``NAME_last_error()``, per thread).
"""
from __future__ import annotations

import keyword
import re
from typing import List

import numpy as np

from .codegen import NativeProgram, Sym

C_TYPES = {"float32": "float", "float64": "double", "int8": "int8_t", "uint8": "uint8_t", "int32": "int32_t",
           "int64": "int64_t", "bool": "bool"}
C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while bool true false int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t size_t
uintptr_t NULL SIZE_MAX INT64_MAX malloc calloc free posix_memalign printf snprintf vsnprintf va_list va_start
va_end workspace workspace_bytes status""".split())

STATUS = [  # (suffix, value, meaning)
    ("OK", 0, "success"),
    ("ERR_NULL", 1, "a required pointer is NULL"),
    ("ERR_DIM", 2, "a dim is negative, or contradicts the signature (dims graphc compiled as equal differ)"),
    ("ERR_SIZE", 3, "a size does not fit in 64 bits"),
    ("ERR_NOMEM", 4, "the workspace could not be allocated"),
    ("ERR_KERNEL", 5, "the computation stopped on bad data (e.g. an index out of range)"),
    ("ERR_WORKSPACE", 6, "the workspace passed to run_with_workspace is too small"),
]


def c_identifier(text: str, taken: set) -> str:
    """A C identifier for a tensor name: never containing "__" (the wrapper's own names all
    do), never a C keyword or a libc name the wrapper calls, unique among ``taken``."""
    name = re.sub(r"_{2,}", "_", re.sub(r"\W", "_", text, flags=re.ASCII)) or "t"
    if name[0].isdigit():
        name = "t_" + name
    base, k = name.rstrip("_") or "t", 2
    while name in taken or name in C_KEYWORDS or keyword.iskeyword(name):
        name, k = f"{base}{k}", k + 1
    taken.add(name)
    return name


def c_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode())
    return '"' + "".join(out) + '"'


def _comment(text: str) -> str:
    return text.replace("*/", "* /")


class CApi:
    """Names and pieces shared by the header, the wrapper and the README."""

    def __init__(self, prog: NativeProgram, name: str, signature_text: str, version: str, cpu: str):
        self.prog, self.name, self.upper = prog, name, name.upper()
        self.signature_text, self.version, self.cpu = signature_text, version, cpu
        taken: set = set()
        self.in_names = [c_identifier(t.key, taken) for t in prog.inputs]
        self.dim_names = []  # per input: [(axis, C name)] of its None dims
        for t, cname in zip(prog.inputs, self.in_names):
            self.dim_names.append([(axis, c_identifier(f"{cname}_d{axis}", taken))
                                   for axis, d in enumerate(t.shape) if d is None])
        self.out_names = [c_identifier(t.key, taken) for t in prog.outputs]
        self.out_dims_names = [c_identifier(f"{c}_dims", taken) for c in self.out_names]
        # each symbol's first binding names it in messages and docs
        self.sym_label = []
        for bindings in prog.symbols:
            j, axis = bindings[0]
            self.sym_label.append(dict(self.dim_names[j])[axis])

    # -- pieces -----------------------------------------------------------------------------------------
    def ctype(self, dtype) -> str:
        return C_TYPES[np.dtype(dtype.np).name]

    def dim_text(self, d) -> str:
        return self.sym_label[d.k] if isinstance(d, Sym) else str(d)

    def shape_text(self, t) -> str:
        return "[" + ", ".join(self.dim_text(d) for d in t.dims) + "]"

    def dims_params(self) -> List[str]:
        return [f"int64_t {n}" for dims in self.dim_names for _, n in dims]

    def dims_args(self) -> List[str]:
        return [n for dims in self.dim_names for _, n in dims]

    def run_params(self) -> List[str]:
        params = []
        for t, cname, dims in zip(self.prog.inputs, self.in_names, self.dim_names):
            params.append(f"const {self.ctype(t.dtype)}* {cname}")
            params.extend(f"int64_t {n}" for _, n in dims)
        params.extend(f"{self.ctype(t.dtype)}* {cname}" for t, cname in zip(self.prog.outputs, self.out_names))
        return params

    def run_args(self) -> List[str]:
        args = []
        for cname, dims in zip(self.in_names, self.dim_names):
            args.append(cname)
            args.extend(n for _, n in dims)
        args.extend(self.out_names)
        return args

    def count_expr(self, t) -> str:
        parts = [f"s__[{d.k}]" if isinstance(d, Sym) else f"(int64_t){d}" for d in t.dims]
        return " * ".join(parts) if parts else "(int64_t)1"

    # -- the header -------------------------------------------------------------------------------------
    def header(self) -> str:
        n, N = self.name, self.upper
        lines = [f"/* {n}.h: the C API of lib{n}.so, generated by graphc {self.version} "
                 "(gc.export.shared_library). Do not edit.",
                 " *",
                 f" * Signature: {_comment(self.signature_text)}",
                 f" * Built for cpu: {self.cpu}. Needs only libc and libm.",
                 " *",
                 " * Tensors are dense, C-contiguous (row-major) arrays. Inputs:"]
        for t, cname in zip(self.prog.inputs, self.in_names):
            lines.append(f" *   {cname}: {t.dtype.name} {self.shape_text(t)}  (input {_comment(repr(t.key))})")
        lines.append(" * Outputs (allocated by the caller; NAME_output_dims gives their dims):".replace("NAME", n))
        for t, cname in zip(self.prog.outputs, self.out_names):
            lines.append(f" *   {cname}: {t.dtype.name} {self.shape_text(t)}  (output {_comment(repr(t.key))})")
        if self.prog.symbols:
            lines.append(" * Dims passed at run time (int64_t, >= 0):")
            for k, bindings in enumerate(self.prog.symbols):
                names = [dict(self.dim_names[j])[axis] for j, axis in bindings]
                same = f"; {', '.join(names[1:])} must equal it" if len(names) > 1 else ""
                lines.append(f" *   {names[0]}{same}")
        lines += [" *",
                  f" * Every function returns a status ({N}_OK = 0 on success) and never crashes on bad",
                  " * arguments; NAME_last_error() describes the calling thread's last failure.",
                  " * Functions are reentrant: each call uses its own workspace. Outputs must not overlap",
                  " * inputs. A pointer may be NULL only for a tensor with no elements.",
                  " */"]
        lines = [ln.replace("NAME_", f"{n}_") for ln in lines]
        lines += [f"#ifndef {N}_H", f"#define {N}_H", "", "#include <stdbool.h>", "#include <stddef.h>",
                  "#include <stdint.h>", "", "#ifdef __cplusplus", 'extern "C" {', "#endif", ""]
        for suffix, value, meaning in STATUS:
            lines.append(f"#define {N}_{suffix} {value}  /* {meaning} */")
        lines.append("")
        lines.append(f"#define {N}_NUM_INPUTS {len(self.prog.inputs)}")
        lines.append(f"#define {N}_NUM_OUTPUTS {len(self.prog.outputs)}")
        for t, cname in zip(self.prog.inputs + self.prog.outputs, self.in_names + self.out_names):
            lines.append(f"#define {N}_{cname.upper()}_RANK {len(t.dims)}")
        run = ", ".join(self.run_params())
        out_dims = ", ".join([*self.dims_params()] + [f"int64_t* {c}" for c in self.out_dims_names])
        ws = ", ".join([*self.dims_params(), "size_t* workspace_bytes"])
        lines += [
            "",
            "/* Runs the model: reads the inputs, writes every output. Allocates its workspace with",
            "   malloc and frees it before returning. */",
            f"int32_t {n}_run({run});",
            "",
            "/* The dims of each output for these input dims (each *_dims array has the output's rank). */",
            f"int32_t {n}_output_dims({out_dims});",
            "",
            f"/* The workspace {n}_run_with_workspace needs for these input dims, in bytes. */",
            f"int32_t {n}_workspace_size({ws});",
            "",
            f"/* {n}_run with a caller-provided workspace (any alignment): no allocation. */",
            f"int32_t {n}_run_with_workspace({', '.join(self.run_params() + ['void* workspace', 'size_t workspace_bytes'])});",
            "",
            "/* What went wrong in the calling thread's last call that failed (\"\" after a success). */",
            f"const char* {n}_last_error(void);",
            "",
            "/* A fixed description of a status code. */",
            f"const char* {n}_status_string(int32_t status);",
            "",
            f"/* The signature, e.g. for logging: \"{_comment(self.signature_text)}\". */",
            f"const char* {n}_signature(void);",
            "",
            "#ifdef __cplusplus",
            "}",
            "#endif",
            "",
            f"#endif /* {N}_H */",
            "",
        ]
        return "\n".join(lines)

    # -- the wrapper ------------------------------------------------------------------------------------
    def source(self, consts_path: str) -> str:
        n, N, prog = self.name, self.upper, self.prog
        nsym = max(1, len(prog.symbols))
        nmeta = 1 + 2 * len(prog.regions)
        out = [f"/* lib{n}.so: argument checks and workspace around the compiled model. Generated by graphc. */",
               "#include <stdarg.h>", "#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>",
               f'#include "{n}.h"', "",
               '#define API __attribute__((visibility("default")))',
               '#define HIDDEN __attribute__((visibility("hidden")))',
               f"#define NSYM {nsym}", f"#define NMETA {nmeta}", ""]
        # the constants, embedded from a file at assembly time
        out += ["__asm__(",
                '    ".section .rodata\\n"',
                '    ".balign 64\\n"',
                f'    ".globl {n}__consts\\n"',
                f'    ".hidden {n}__consts\\n"',
                f'    "{n}__consts:\\n"',
                f'    ".incbin \\"{_asm_path(consts_path)}\\"\\n"',
                '    ".byte 0\\n"',
                '    ".previous\\n");',
                f"extern HIDDEN const unsigned char {n}__consts[];", ""]
        # NRT_decref calls this only for memory numba's runtime allocated; nothing here is
        out += ["HIDDEN void NRT_MemInfo_call_dtor(void* meminfo) { (void)meminfo; }", ""]
        # the compiled driver
        driver_params = [self.driver_param(prm)[0] for prm in prog.driver_params]
        out += [f"extern HIDDEN int32_t {prog.driver_name}({', '.join(driver_params) or 'void'});", ""]
        # errors
        out += [f"static _Thread_local char {n}__error[1024];", "",
                f"static int32_t {n}__fail(int32_t status, const char* fmt, ...) {{",
                "    va_list ap;",
                "    va_start(ap, fmt);",
                f"    vsnprintf({n}__error, sizeof {n}__error, fmt, ap);",
                "    va_end(ap);",
                "    return status;",
                "}", "",
                f"static int32_t {n}__ok(void) {{",
                f"    {n}__error[0] = 0;",
                f"    return {N}_OK;",
                "}", "",
                f"API const char* {n}_last_error(void) {{ return {n}__error; }}", "",
                f"API const char* {n}_status_string(int32_t status) {{",
                "    switch (status) {"]
        for suffix, value, meaning in STATUS:
            out.append(f"    case {N}_{suffix}: return {c_string(f'{n.upper()}_{suffix}: {meaning}')};")
        out += ['    default: return "unknown status";', "    }", "}", "",
                f"API const char* {n}_signature(void) {{ return {c_string(self.signature_text)}; }}", ""]
        raises = [f"{where}: {message}" for where, message, _ in prog.raises]
        out.append(f"static const char* const {n}__raised[] = {{")
        for text in raises:
            text = text.replace("%", "%%").replace("{}", "%lld")
            out.append(f"    {c_string(text)},")
        out += ['    ""', "};", ""]
        # products without overflow
        out += [f"static int {n}__prod(int64_t coef, int count, const int64_t* f, int64_t* result) {{",
                "    int64_t r = coef;",
                "    for (int i = 0; i < count; i++)",
                "        if (f[i] == 0) { *result = 0; return 1; }",
                "    for (int i = 0; i < count; i++)",
                "        if (__builtin_mul_overflow(r, f[i], &r)) return 0;",
                "    *result = r;",
                "    return 1;",
                "}", ""]
        # binding the symbols
        dims_params = ", ".join(self.dims_params() + ["int64_t* s__"])
        out += [f"static int32_t {n}__bind({dims_params}) {{"]
        for dims in self.dim_names:
            for _, dname in dims:
                out += [f"    if ({dname} < 0)",
                        f'        return {n}__fail({N}_ERR_DIM, "{dname} = %lld is negative", (long long){dname});']
        for k, bindings in enumerate(prog.symbols):
            first = self.sym_label[k]
            out.append(f"    s__[{k}] = {first};")
            for j, axis in bindings[1:]:
                other = dict(self.dim_names[j])[axis]
                out += [f"    if ({other} != s__[{k}])",
                        f'        return {n}__fail({N}_ERR_DIM, "{other} = %lld must equal {first} = %lld: the '
                        f'model was compiled with these dims the same size", (long long){other}, (long long)s__[{k}]);']
        if not prog.symbols:
            out.append("    s__[0] = 0;")
        out += ["    return 0;", "}", ""]
        # layout
        out += [f"static int32_t {n}__layout(const int64_t* s, int64_t* meta) {{",
                "    int64_t t, size, off = 0;",
                "    (void)s;"]

        def product(term, what) -> List[str]:
            if not term.symbols:
                return [f"    t = {term.coef};"]
            f = ", ".join(f"s[{k}]" for k in term.symbols)
            return [f"    {{ const int64_t f[] = {{{f}}};",
                    f"      if (!{n}__prod({term.coef}, {len(term.symbols)}, f, &t))",
                    f'          return {n}__fail({N}_ERR_SIZE, "{what} does not fit in 64 bits"); }}']

        for term in prog.checks:
            if term.symbols:
                out += product(term, "a tensor's size in bytes")
        for r, region in enumerate(prog.regions):
            out.append(f"    /* region {r}: {_comment(region.label)} */")
            out.append("    size = 0;")
            for term in region.terms:
                out += product(term, "the workspace")
                out.append("    if (t > size) size = t;")
            out += [f"    meta[{1 + 2 * r}] = off;",
                    f"    meta[{2 + 2 * r}] = size;",
                    "    if (__builtin_add_overflow(off, size, &off) || __builtin_add_overflow(off, 63, &off))",
                    f'        return {n}__fail({N}_ERR_SIZE, "the workspace does not fit in 64 bits");',
                    "    off &= ~(int64_t)63;"]
        out += ["    if ((uint64_t)off > (uint64_t)(SIZE_MAX / 2))",
                f'        return {n}__fail({N}_ERR_SIZE, "the workspace does not fit in memory");',
                "    meta[0] = off;", "    return 0;", "}", ""]
        # pointer checks
        ptr_params = []
        for t, cname in zip(prog.inputs, self.in_names):
            ptr_params.append(f"const {self.ctype(t.dtype)}* {cname}")
        for t, cname in zip(prog.outputs, self.out_names):
            ptr_params.append(f"{self.ctype(t.dtype)}* {cname}")
        out += [f"static int32_t {n}__check_pointers({', '.join(ptr_params + ['const int64_t* s__'])}) {{",
                "    (void)s__;"]
        for kind, tensors, names in (("input", prog.inputs, self.in_names), ("output", prog.outputs, self.out_names)):
            for t, cname in zip(tensors, names):
                out += [f"    if ({cname} == NULL && {self.count_expr(t)} != 0)",
                        f'        return {n}__fail({N}_ERR_NULL, "{kind} {cname} is NULL");']
        out += ["    return 0;", "}", ""]
        # the call
        call_params = ptr_params + ["void* ws__", "const int64_t* s__", "const int64_t* meta__"]
        out += [f"static int32_t {n}__call({', '.join(call_params)}) {{",
                "    int64_t err__[4] = {0, 0, 0, 0};"]
        args = [self.driver_param(prm)[1] for prm in prog.driver_params]
        out += [f"    int32_t r__ = {prog.driver_name}({', '.join(args)});",
                "    (void)ws__; (void)s__; (void)meta__;",
                f"    if (r__ == 0) return {n}__ok();",
                f"    if (r__ > 0 && r__ <= {len(raises)})",
                f"        return {n}__fail({N}_ERR_KERNEL, {n}__raised[r__ - 1], (long long)err__[0], (long long)err__[1],",
                "                        (long long)err__[2], (long long)err__[3]);",
                f'    return {n}__fail({N}_ERR_KERNEL, "the compiled code stopped with status %d", (int)r__);',
                "}", ""]
        dims_args = self.dims_args()
        bind_call = f"{n}__bind({', '.join(dims_args + ['s__'])})"
        ptr_args = self.in_names + self.out_names
        prologue = ["    int64_t s__[NSYM];", "    int64_t meta__[NMETA];", "    int32_t st__;",
                    f"    if ((st__ = {bind_call})) return st__;",
                    f"    if ((st__ = {n}__layout(s__, meta__))) return st__;"]
        # run
        out += [f"API int32_t {n}_run({', '.join(self.run_params())}) {{", *prologue,
                f"    if ((st__ = {n}__check_pointers({', '.join(ptr_args + ['s__'])}))) return st__;",
                "    void* ws__ = NULL;",
                "    if (meta__[0] > 0 && posix_memalign(&ws__, 64, (size_t)meta__[0]) != 0)",
                f'        return {n}__fail({N}_ERR_NOMEM, "could not allocate a workspace of %lld bytes", '
                "(long long)meta__[0]);",
                f"    st__ = {n}__call({', '.join(ptr_args + ['ws__', 's__', 'meta__'])});",
                "    free(ws__);",
                "    return st__;",
                "}", ""]
        # run with workspace
        out += [f"API int32_t {n}_run_with_workspace("
                f"{', '.join(self.run_params() + ['void* workspace', 'size_t workspace_bytes'])}) {{",
                *prologue,
                f"    if ((st__ = {n}__check_pointers({', '.join(ptr_args + ['s__'])}))) return st__;",
                "    void* ws__ = NULL;",
                "    if (meta__[0] > 0) {",
                "        if (workspace == NULL)",
                f'            return {n}__fail({N}_ERR_NULL, "workspace is NULL");',
                "        uintptr_t start__ = ((uintptr_t)workspace + 63) & ~(uintptr_t)63;",
                "        size_t skip__ = (size_t)(start__ - (uintptr_t)workspace);",
                "        if (workspace_bytes < skip__ || workspace_bytes - skip__ < (size_t)meta__[0])",
                f'            return {n}__fail({N}_ERR_WORKSPACE, "the workspace has %zu bytes; these dims need %lld '
                f'(see {n}_workspace_size)", workspace_bytes, (long long)meta__[0] + 63);',
                "        ws__ = (void*)start__;",
                "    }",
                f"    return {n}__call({', '.join(ptr_args + ['ws__', 's__', 'meta__'])});",
                "}", ""]
        # output dims
        out_params = self.dims_params() + [f"int64_t* {c}" for c in self.out_dims_names]
        out += [f"API int32_t {n}_output_dims({', '.join(out_params) or 'void'}) {{", *prologue]
        for t, dname in zip(prog.outputs, self.out_dims_names):
            out += [f"    if ({dname} == NULL && {len(t.dims)} > 0)",
                    f'        return {n}__fail({N}_ERR_NULL, "{dname} is NULL");']
            for axis, d in enumerate(t.dims):
                out.append(f"    {dname}[{axis}] = {f's__[{d.k}]' if isinstance(d, Sym) else d};")
        out += [f"    return {n}__ok();", "}", ""]
        # workspace size
        out += [f"API int32_t {n}_workspace_size({', '.join(self.dims_params() + ['size_t* workspace_bytes'])}) {{",
                *prologue,
                "    if (workspace_bytes == NULL)",
                f'        return {n}__fail({N}_ERR_NULL, "workspace_bytes is NULL");',
                "    *workspace_bytes = meta__[0] > 0 ? (size_t)meta__[0] + 63 : 0;",
                f"    return {n}__ok();", "}", ""]
        return "\n".join(out)

    # -- the README -------------------------------------------------------------------------------------
    def driver_param(self, prm) -> tuple:
        """(C type, argument in the wrapper's call) of one parameter of the compiled driver."""
        kind = prm[0]
        if kind == "in":
            return f"const {self.ctype(prm[2])}*", self.in_names[prm[1]]
        if kind == "out":
            return f"{self.ctype(prm[2])}*", self.out_names[prm[1]]
        if kind == "ws":
            return f"{C_TYPES[prm[1].name]}*", f"({C_TYPES[prm[1].name]}*)ws__"
        if kind == "cst":
            return f"const {C_TYPES[prm[1].name]}*", f"(const {C_TYPES[prm[1].name]}*){self.name}__consts"
        if kind == "meta":
            return "const int64_t*", "meta__"
        if kind == "err":
            return "int64_t*", "err__"
        return "int64_t", f"s__[{prm[1]}]"  # a symbol's size

    def readme(self) -> str:
        n, N, prog = self.name, self.upper, self.prog
        decls = []
        for t, cname in zip(prog.inputs, self.in_names):
            decls.append(f"    /* {cname}: {t.dtype.name} {self.shape_text(t)} */")
        example_dims = {}
        for dims in self.dim_names:
            for _, d in dims:
                example_dims[d] = "1"
        set_dims = [f"    int64_t {d} = {v};" for d, v in example_dims.items()]
        counts = []
        for t, cname in zip(prog.inputs, self.in_names):
            count = " * ".join(self.dim_text(d) for d in t.dims) or "1"
            counts.append(f"    {self.ctype(t.dtype)}* {cname} = calloc({count}, sizeof *{cname});  "
                          "/* fill with your data */")
        out_dims = []
        for t, dname in zip(prog.outputs, self.out_dims_names):
            out_dims.append(f"    int64_t {dname}[{max(1, len(t.dims))}];")
        out_alloc = []
        for t, cname, dname in zip(prog.outputs, self.out_names, self.out_dims_names):
            count = " * ".join(f"{dname}[{k}]" for k in range(len(t.dims))) or "1"
            out_alloc.append(f"    {self.ctype(t.dtype)}* {cname} = malloc(({count}) * sizeof *{cname});")
        dims_args = self.dims_args()
        od_args = ", ".join(dims_args + self.out_dims_names)
        frees = "".join(f" free({c});" for c in self.in_names + self.out_names)
        tensors = "\n".join(
            [f"| `{c}` | input | {t.dtype.name} | `{self.shape_text(t)}` |" for t, c in zip(prog.inputs, self.in_names)]
            + [f"| `{c}` | output | {t.dtype.name} | `{self.shape_text(t)}` |"
               for t, c in zip(prog.outputs, self.out_names)])
        status = "\n".join(f"| `{N}_{s}` | {v} | {m} |" for s, v, m in STATUS)
        body = "\n".join(set_dims + decls + counts + out_dims)
        return f"""# lib{n}: a graphc model as a C library

Generated by graphc {self.version} (`gc.export.shared_library`) for cpu `{self.cpu}`.
It needs only libc and libm: no Python, no numba, no BLAS.

Signature: `{self.signature_text}`

| C name | kind | dtype | shape |
|---|---|---|---|
{tensors}

Tensors are dense, C-contiguous (row-major) arrays. Dims written as names are passed at run
time as `int64_t`; see `{n}.h` for which must be equal.

## Usage

```c
#include <stdio.h>
#include <stdlib.h>
#include "{n}.h"

int main(void) {{
{body}
    if ({n}_output_dims({od_args}) != {N}_OK) {{
        fprintf(stderr, "%s\\n", {n}_last_error());
        return 1;
    }}
{chr(10).join(out_alloc)}
    int32_t status = {n}_run({', '.join(self.run_args())});
    if (status != {N}_OK) {{
        fprintf(stderr, "{n}_run: %s\\n", {n}_last_error());
        return 1;
    }}
    /* ... use the outputs ... */
   {frees}
    return 0;
}}
```

Build and run (the library and the header in this directory):

```sh
cc -O2 -I. main.c -L. -l{n} -Wl,-rpath,'$ORIGIN' -o main
./main
```

`{n}_run` allocates its workspace per call; `{n}_workspace_size` and
`{n}_run_with_workspace` let you allocate it once. Calls are reentrant (any number of
threads may run the model at once); `{n}_last_error()` is per thread.

## Status codes

| constant | value | meaning |
|---|---|---|
{status}
"""


def _asm_path(path: str) -> str:
    if any(c in path for c in '"\\\n'):
        raise ValueError(f"the build directory path {path!r} cannot be used in an .incbin directive")
    return path

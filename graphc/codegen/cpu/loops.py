"""Control flow on the CPU: a loop runs inside compiled code.

A body (its optimized Program, codegen/control_flow.py) is compiled as a CPU executable would
be (the same kernels, cached by content), and its driver is rendered as an njit function
instead of Python (``body_function``): it takes the flat input arrays and the binding's fixed
values (sizes, host values, the memory plan's buffers, scratch) as a tuple, calls the kernels
in order, and returns the outputs. A ``while_loop`` is one generated njit function that
evaluates the cond function, stores the history row, calls the body function and swaps the
loop variables, with no Python per iteration. Its body's buffers are bound once per run and
reused by every iteration. Loop-invariant instrs run once, before the loop.

A ``cond`` is a choice made once per run, so the branch's executable is called from Python.

Limits (each an error that names the loop): a loop variable keeps its shape for the whole run
(the body is bound to one set of shapes; the reference backend lets a ``None`` dim change),
and a body holding control flow of its own does not compile yet.
"""
from __future__ import annotations

import numpy as np

from ...errors import CompileError, DeadlineExceededError, InvalidArgumentError
from ..backend import program_error
from ..control_flow import CONTROL_FLOW_OPS, body_program, settings_of, split_invariant
from ..emit.context import DYNAMIC, FASTMATH, STATIC
from ..emit.loops import SourceWriter
from . import cache
from .executable import CpuExecutable, _RAISED

NO_DEADLINE = np.int64(0)
HISTORY_START = 16  # rows a history starts with when the trip count has no cheap bound
HISTORY_BYTES = 1 << 28  # a history up to this size is allocated for maximum_iterations rows at once


def _check_plain(program, label: str) -> None:
    for ins in program.instrs:
        if ins.op in CONTROL_FLOW_OPS:
            where = f" ({ins.origin})" if ins.origin else ""
            raise CompileError(f"the cpu backend cannot compile {label} yet: it holds a {ins.op}{where}, and "
                               "control flow inside a loop body is compiled on the reference backend only "
                               "(device='reference')")


def body_function(exe: CpuExecutable, name: str, prefix: str) -> tuple:
    """(source of an njit function ``name(f0, .., fn, P, W)`` that runs ``exe``'s program, the
    module-level lines that bind its kernels). ``W[0]`` is set to each kernel's index before
    the call, so an error raised inside names the op."""
    head = []
    for k, kernel in enumerate(exe._kernels):
        head.append(f"{prefix}{k} = _sys.modules[{kernel.py_func.__module__!r}].kernel")

    def r(ref) -> str:
        kind, i = ref
        if kind == "F":
            return f"f{i}"
        if kind == "P":
            return f"P[{i}]"
        if kind == "B":
            return f"b{i}"
        raise CompileError(f"internal error: a loop body's kernel takes a {kind!r} argument")

    w = SourceWriter(1)
    for st in exe._statements:
        if st[0] == "alloc":
            w(f"b{st[1]} = np.empty({r(st[2])}, np.{st[3]})")
            continue
        k, args, split = st[1], st[2], st[3]
        w(f"W[0] = {k}")
        rendered = []
        for a in args:
            if a[0] == "LO":
                rendered.append("0")
            elif a[0] == "HI":
                rendered.append(" * ".join(r(d) for d in split[0]) or "1")
            else:
                rendered.append(r(a))
        w(f"{prefix}{k}({', '.join(rendered)})")
    outs = []
    for kind, ref in exe._outs:
        if kind == "literal":
            outs.append(f"np.full(1, {ref})")
        else:
            outs.append(r(ref) if kind == "as_is" else f"{r(ref)}.copy()")
    params = [f"f{j}" for j in range(len(exe.program.feeds))] + ["P", "W"]
    src = SourceWriter()
    src(f"def {name}({', '.join(params)}):")
    src.extend(w)
    src(f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
    return src.text(), head


class _Part:
    """One body Program compiled for the loop: its executable and its fixed values per shapes."""

    def __init__(self, program, mode):
        self.exe = CpuExecutable(program, mode=mode)

    def fixed(self, arrays):
        """(the binding for these inputs, a fixed-values tuple from its pool)."""
        binding = self.exe.binding(arrays)
        pool = binding.target.setdefault("loop_pool", [])
        return binding, (pool.pop() if pool else tuple(self.exe._fixed_values(binding))), pool


class CpuWhileLoop:
    """A while_loop instr as one compiled loop function (see the module docstring)."""

    def __init__(self, program, i: int, mode: str = STATIC):
        self._made_from = (program, i)
        ins = program.instrs[i]
        self.ins, self.origin = ins, ins.origin
        attrs = ins.attrs
        self.n = attrs["n_vars"]
        self.has_limit = attrs["has_limit"]
        self.history = bool(attrs.get("history"))
        self.body_label, self.cond_label = attrs["body"].label, attrs["cond"].label
        settings = settings_of(program)
        body = body_program(attrs["body"], settings)
        cond = body_program(attrs["cond"], settings)
        _check_plain(body, self.body_label)
        _check_plain(cond, self.cond_label)
        hoisted, body = split_invariant(body, self.n, settings)
        self.n_captures = len(ins.inputs) - self.n - (1 if self.has_limit else 0)
        self.mode = mode
        self.hoisted = CpuExecutable(hoisted, mode=mode) if hoisted is not None else None
        self.body, self.cond = _Part(body, mode), _Part(cond, mode)
        self.n_hoisted = len(hoisted.fetches) if hoisted is not None else 0
        self._dynamic = None
        self.fn = cache.load(self._source()).kernel

    def _source(self) -> str:
        n, m = self.n, self.n_captures + self.n_hoisted
        cond_src, cond_head = body_function(self.cond.exe, "_cond", "KC")
        body_src, body_head = body_function(self.body.exe, "_body", "KB")
        V = [f"v{k}" for k in range(n)]
        C = [f"c{k}" for k in range(m)]
        w = SourceWriter(1)
        w("trips = 0")
        w("timed_out = False")
        for k in range(n):
            w(f"h{k} = np.empty((cap if {int(self.history)} else 0, v{k}.size), v{k}.dtype)")
        with w.block("while trips < limit:"):
            w("W[1] = 0")
            w(f"p = _cond({', '.join(V + C[:self.n_captures])}, PC, W)")
            with w.block("if not p[0][0]:"):
                w("break")
            with w.block("if deadline > 0 and rt.monotonic_ns() > deadline:"):
                w("timed_out = True")
                w("break")
            if self.history:
                with w.block("if trips == h0.shape[0]:"):
                    for k in range(n):
                        w(f"g{k} = np.empty((2 * h{k}.shape[0] + 1, v{k}.size), v{k}.dtype)")
                        w(f"g{k}[:trips] = h{k}[:trips]")
                        w(f"h{k} = g{k}")
                for k in range(n):
                    w(f"h{k}[trips] = v{k}")
            w("W[1] = 1")
            w(f"{', '.join(V)}{',' if n == 1 else ''} = _body({', '.join(V + C)}, PB, W)")
            w("trips += 1")
        H = [f"h{k}[:trips]" for k in range(n)]
        w(f"return ({', '.join(V + H)}, trips, timed_out)")
        flags = "{" + ", ".join(repr(f) for f in sorted(FASTMATH)) + "}"
        options = f"cache=True, nogil=True, error_model=\"numpy\", fastmath={flags}"
        lines = ["import sys as _sys", "import numpy as np", "from numba import njit",
                 "from graphc.codegen.emit import runtime as rt", "", *cond_head, *body_head, "", "",
                 cond_src, "", "", body_src, "", "",
                 f"def _loop({', '.join(V + C)}, limit, cap, PC, PB, W, deadline):", w.text(), "", "",
                 f"_cond = njit({options})(_cond)", f"_body = njit({options})(_body)",
                 f"kernel = njit({options})(_loop)", ""]
        return "\n".join(lines)

    def _dynamic_loop(self):
        """The same loop with every broadcasting stride computed at run time (the rare shapes
        that break the static kernels' assumptions, as CpuExecutable does)."""
        if self._dynamic is None:
            self._dynamic = CpuWhileLoop(*self._made_from, mode=DYNAMIC)
        return self._dynamic

    def __call__(self, inputs, ctx) -> list:
        n, nc = self.n, self.n_captures
        values = [_flat(a) for a in inputs[:n]]
        shapes = [np.shape(a) for a in inputs[:n]]
        captures = list(inputs[n:n + nc])
        limit = int(inputs[-1]) if self.has_limit else np.iinfo(np.int64).max
        if self.hoisted is not None:
            captures += self.hoisted.run(captures, ctx)
        body_inputs = list(inputs[:n]) + captures
        cond_binding, pc, cond_pool = self.cond.fixed(list(inputs[:n]) + captures[:nc])
        body_binding, pb, body_pool = self.body.fixed(body_inputs)
        try:
            if (cond_binding.general or body_binding.general) and self.mode == STATIC:
                return self._dynamic_loop()(inputs, ctx)
            for k, (shape, out) in enumerate(zip(shapes, body_binding.fetch_shapes)):
                if tuple(out) != tuple(shape):
                    raise InvalidArgumentError(
                        f"{self.body_label} at run time: loop variable {k} enters with shape {list(shape)} and the "
                        f"body returns shape {list(out)}; a compiled loop keeps each loop variable's shape for the "
                        f"whole run (run it with device='reference' to let it change){self._where()}")
            cap = 0
            if self.history:  # rows for every trip when that is cheap; else grown by doubling
                row_bytes = max(sum(v.nbytes for v in values), 1)
                cap = limit if self.has_limit and limit * row_bytes <= HISTORY_BYTES else HISTORY_START
            deadline_ns = np.int64(ctx.deadline_ns()) if ctx is not None else NO_DEADLINE
            where = np.full(2, -1, np.int64)
            try:
                out = self.fn(*values, *[_flat(c) for c in captures], np.int64(max(limit, 0)), np.int64(cap),
                              pc, pb, where, deadline_ns)
            except ValueError as e:
                raise self._raised(e, where) from None
        finally:
            cond_pool.append(pc)
            body_pool.append(pb)
        trips, timed_out = int(out[2 * n]), bool(out[2 * n + 1])
        if timed_out:
            raise DeadlineExceededError(f"{self.body_label} (after {trips} iterations) ran past the run's timeout "
                                        f"of {ctx.timeout_ms()} ms (RunOptions(timeout_in_ms=...)); the run "
                                        "stopped there")
        result = [v.reshape(s) for v, s in zip(out[:n], shapes)] + [np.array(trips, np.int64)]
        if self.history:
            result += [h.reshape((trips, *s)) for h, s in zip(out[n:2 * n], shapes)]
        return result

    def _where(self) -> str:
        return f"\n  created at {self.origin.location}" if self.origin else ""

    def _raised(self, e: ValueError, where) -> Exception:
        m = _RAISED.fullmatch(str(e.args[0])) if e.args else None
        part = {0: self.cond, 1: self.body}.get(int(where[1]))
        if m is None or part is None or where[0] < 0:
            return e
        call = part.exe.generated.calls[int(where[0])]
        i, message = call.raise_codes[int(m.group(1))]
        return program_error(part.exe.program, i, message.format(*e.args[1:]))


class CpuCond:
    """A cond instr: the taken branch's executable, chosen once per run."""

    def __init__(self, program, i: int, compile_program):
        ins = program.instrs[i]
        settings = settings_of(program)
        self.branches = [compile_program(body_program(ins.attrs[k], settings)) for k in ("then", "else")]
        self.shapes = [tuple(t.shape) for t in (program.types[v] for v in ins.outputs)]

    def __call__(self, inputs, ctx) -> list:
        branch = self.branches[0] if bool(inputs[0]) else self.branches[1]
        return [np.asarray(o) for o in branch.run(list(inputs[1:]), ctx)]


def _flat(a) -> np.ndarray:
    a = np.asarray(a)
    if not (a.flags.c_contiguous and a.flags.writeable):
        a = a.copy()
    return a.reshape(-1)


def compile_control(compile_program):
    """``StagedExecutable``'s compile_control for the CPU backend."""
    def compile_one(program, i: int):
        op = program.instrs[i].op
        if op == "while_loop":
            return CpuWhileLoop(program, i)
        if op == "cond":
            return CpuCond(program, i, compile_program)
        raise CompileError(f"internal error: {op} is not control flow")
    return compile_one


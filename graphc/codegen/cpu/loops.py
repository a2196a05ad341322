"""Control flow on the CPU: a loop runs inside compiled code.

Each body is an optimized Program (codegen/control_flow.py). It becomes an njit *function*
``name(inputs.., P, W)`` that returns its outputs as flat arrays:

* ``PlainFunction``: a Program without control flow, compiled as a CPU executable would be
  (the same kernels, cached by content), with its driver rendered as njit source instead of
  Python. ``P`` holds what the binding fixes for one set of input shapes: sizes, host
  values, the memory plan's buffers and the kernels' scratch, made once per run and reused by
  every iteration.
* ``LoopFunction``: a ``while_loop``: runs the hoisted instrs once (loop-invariant, see
  ``split_invariant``), then evaluates the cond function, stores the history row, calls the
  body function and swaps the loop variables, with no Python per iteration.
* ``CondFunction``: a ``cond`` inside a body: calls the taken branch's function.
* ``StagedFunction``: a body that holds control flow of its own, in stages, as one function.

All of one top-level loop's functions are one generated module (``_Module``), cached by
content. ``W`` is an int64[4] array: the kernel and the part running (so an error raised in
a kernel names the user's op) and the deadline flag.

A top-level ``cond`` is a choice made once per run: the branch's executable is called from
Python (``HostCond``).

Limits (each an error that names the loop): a loop variable keeps its shape for the whole run
(the body is bound to one set of shapes; the reference backend lets a ``None`` dim change);
a loop inside a body cannot return its history (its size would be known only after it runs),
and a cond inside a body returns the same shapes from both branches.
"""
from __future__ import annotations

import numpy as np

from ...errors import CompileError, DeadlineExceededError, InvalidArgumentError
from ..backend import program_error
from ..control_flow import (DATA_SIZED_OPS, HOST_OPS, HostCond, HostOp, body_program, has_control_flow, in_body, settings_of, split_invariant,
                            split_stages)
from ..emit.context import DYNAMIC, FASTMATH, STATIC
from ..emit.loops import SourceWriter
from . import cache
from .executable import CpuExecutable, RAISED_CODE

NO_DEADLINE = np.int64(0)
HISTORY_START = 16  # rows a history starts with when the trip count has no cheap bound
HISTORY_BYTES = 1 << 28  # a history up to this size is allocated for maximum_iterations rows at once
_OPTIONS = f"cache=True, nogil=True, error_model=\"numpy\", fastmath={FASTMATH}"


class _Shape:
    """What ``Schedule.bind`` reads of a feed: its shape."""

    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = tuple(shape)


def _tuple(names) -> str:
    return f"({', '.join(names)}{',' if len(names) == 1 else ''})"


class _Module:
    """The generated module of one top-level loop: every function it calls, and the executables
    of its plain parts (``parts``, for error messages)."""

    def __init__(self, mode: str, settings):
        self.mode, self.settings = mode, settings
        self.lines: list = []
        self.wrap: list = []
        self.parts: list = []
        self._count = 0

    def name(self, kind: str) -> str:
        self._count += 1
        return f"_{kind}{self._count}"

    def add(self, source: str, name: str) -> None:
        self.lines += [source, "", ""]
        self.wrap.append(f"{name} = njit({_OPTIONS})({name})")

    def function_for(self, program, label: str, into: tuple = ()):
        """The function for ``program``; outputs ``into`` are written into arrays the caller
        passes after the inputs (``d0, d1, ..``), and returned as those arrays."""
        if has_control_flow(program):
            return StagedFunction(program, self, label, into)
        return PlainFunction(program, self, label, into)

    def source(self, entry: str) -> str:
        return "\n".join(["import sys as _sys", "import numpy as np", "from numba import njit",
                          "from graphc.codegen.emit import runtime as rt", "", "", *self.lines, *self.wrap,
                          f"kernel = {entry}", ""])


def _body_params(program, into) -> str:
    """A body function's parameters: its feeds, the caller's arrays for the outputs ``into``
    (``d<j>`` for output j), the bound sizes ``P`` and the run's words ``W``."""
    return ", ".join([f"f{j}" for j in range(len(program.feeds))] + [f"d{j}" for j in into] + ["P", "W"])


class PlainFunction:
    def __init__(self, program, module: _Module, label: str, into: tuple = ()):
        self.exe = exe = CpuExecutable(program, mode=module.mode)
        self.part = len(module.parts)
        module.parts.append((exe, label))
        self.name = module.name("plain")
        prefix = f"K{self.part}_"
        for k, kernel in enumerate(exe.kernel_functions[:len(exe.generated.calls)]):  # (not few-row variants)
            module.lines.append(f"{prefix}{k} = _sys.modules[{kernel.py_func.__module__!r}].kernel")

        def r(ref) -> str:
            kind, i = ref
            if kind in ("F", "P", "B"):
                return {"F": f"f{i}", "P": f"P[{i}]", "B": f"b{i}"}[kind]
            raise CompileError(f"internal error: a loop body's kernel takes a {kind!r} argument")

        # An output written into the caller's array (a loop's stack row): a buffer made for that
        # output alone is that array, so its kernel writes the row in place; any other output
        # is copied into it once (a loop's stack used to take a fresh buffer and a second copy).
        outputs = exe.driver_outputs
        dest = {j: f"d{j}" for j in into}
        in_place = {ref[1]: dest[j] for j, (kind, ref) in enumerate(outputs)
                    if j in dest and kind == "as_is" and ref[0] == "B" and outputs.count((kind, ref)) == 1}
        w = SourceWriter(1)
        w(f"W[1] = {self.part}")
        for st in exe.driver_statements:
            if st[0] not in ("alloc", "call"):  # (collectives are refused when a body is traced)
                raise CompileError(f"internal error: a compiled loop body has a {st[0]!r} step")
            if st[0] == "alloc":
                w(f"b{st[1]} = {in_place[st[1]]}" if st[1] in in_place else f"b{st[1]} = np.empty({r(st[2])}, np.{st[3]})")
                continue
            k, args, split = st[1], st[2], st[3]
            w(f"W[0] = {k}")
            rendered = ["0" if a[0] == "LO" else (" * ".join(r(d) for d in split[0]) or "1") if a[0] == "HI"
                        else r(a) for a in args]
            w(f"{prefix}{k}({', '.join(rendered)})")
        outs = []
        for j, (kind, ref) in enumerate(outputs):
            value = f"np.full(1, {ref})" if kind == "literal" else r(ref)
            if j in dest and not (kind == "as_is" and ref[0] == "B" and ref[1] in in_place):
                w(f"{dest[j]}[:] = {value}")
            outs.append(dest[j] if j in dest else value if kind != "copy" else f"{value}.copy()")
        module.add("\n".join([f"def {self.name}({_body_params(exe.program, into)}):", w.text(),
                               f"    return {_tuple(outs)}"]),
                   self.name)

    def bind(self, shapes):
        """(P for inputs of these shapes, the output shapes, whether they break the static
        kernels' assumptions)."""
        binding = self.exe.binding([_Shape(s) for s in shapes])
        return tuple(self.exe.fixed_values(binding)), [tuple(s) for s in binding.fetch_shapes], binding.general


class LoopFunction:
    """``name(v.., c.., L, cap, R, P, W, deadline)`` -> (final v.., history.., stacked.., trips as
    int64[1]). ``cap``: the rows to allocate first; ``R``: each stacked value's size."""

    def __init__(self, ins, module: _Module, nested: bool):
        attrs = ins.attrs
        self.ins, self.n, self.has_limit = ins, attrs["n_vars"], attrs["has_limit"]
        self.history = bool(attrs.get("history"))
        self.stacked = attrs["body"].output_types[self.n:]
        self.label = attrs["body"].label
        self.where = f"\n  created at {ins.origin.location}" if ins.origin else ""
        if nested and (self.history or self.stacked):
            raise CompileError(f"the cpu backend cannot compile {self.label} yet: it stacks its history (a scan, or "
                               "a loop whose gradient is taken) inside another body, where its size would be known "
                               f"only after it runs; run it with device='reference'{self.where}")
        n = self.n
        self.n_captures = len(ins.inputs) - n - (1 if self.has_limit else 0)
        body = body_program(attrs["body"], module.settings)
        cond = body_program(attrs["cond"], module.settings)
        hoisted, body = split_invariant(body, n, module.settings)
        self.hoisted = module.function_for(hoisted, self.label) if hoisted is not None else None
        self.cond = module.function_for(cond, attrs["cond"].label)
        # The body writes its stacked values into this iteration's stack rows and, where the
        # history is kept, the next loop variables into the history's next row (no copies).
        self.body = module.function_for(body, self.label, into=tuple(range(0 if self.history else n,
                                                                           n + len(self.stacked))))
        self.name = module.name("loop")
        V = [f"v{k}" for k in range(n)]
        S = [f"s{k}" for k in range(len(self.stacked))]
        C = [f"c{k}" for k in range(self.n_captures)]
        H = [f"z{k}" for k in range(len(hoisted.fetches))] if hoisted is not None else []
        w = SourceWriter(1)
        w("limit = np.int64(L[0])" if self.has_limit else "limit = np.int64(9223372036854775807)")
        if self.hoisted is not None:
            w(f"{_tuple(H)} = {self.hoisted.name}({', '.join(C)}, P[0], W)")
        w("trips = 0")
        for k in range(n):
            w(f"h{k} = np.empty((cap, v{k}.size), v{k}.dtype)")
        for k, t in enumerate(self.stacked):
            w(f"q{k} = np.empty((cap, R[{k}]), np.{np.dtype(t.dtype.np).name})")
        with w.block("while trips < limit:"):
            w(f"p = {self.cond.name}({', '.join(V + C)}, P[1], W)")
            with w.block("if not p[0][0]:"):
                w("break")
            with w.block("if deadline > 0 and rt.monotonic_ns() > deadline:"):
                w("W[2] = 1")
                w("break")
            # The histories and the stacks start with the same rows and double together, so
            # one check grows them all, before this iteration's rows are written.
            # With a history, the body writes row trips + 1, and the loop variables are views of it.
            grown = ([f"h{k}" for k in range(n)] if self.history else []) + [f"q{k}" for k in range(len(S))]
            if grown:
                with w.block(f"if trips + {int(self.history)} >= {grown[0]}.shape[0]:"):
                    for j, a in enumerate(grown):
                        w(f"g{j} = np.empty((2 * {a}.shape[0] + 2, {a}.shape[1]), {a}.dtype)")
                        w(f"g{j}[:trips + {int(self.history)}] = {a}[:trips + {int(self.history)}]")
                        w(f"{a} = g{j}")
            rows = [f"q{k}[trips]" for k in range(len(S))]
            if self.history:
                with w.block("if trips == 0:"):
                    for k in range(n):
                        w(f"h{k}[0] = v{k}")
                rows = [f"h{k}[trips + 1]" for k in range(n)] + rows
            w(f"{_tuple(V + S)} = {self.body.name}({', '.join(V + C + H + rows)}, P[2], W)")
            w("trips += 1")
            with w.block("if W[2]:"):  # a loop inside the body ran past the deadline
                w("break")
        outs = (V + ([f"h{k}[:trips]" for k in range(n)] if self.history else []) + [f"q{k}[:trips]" for k in range(len(S))]
                + ["np.full(1, trips, np.int64)"])
        w(f"return {_tuple(outs)}")
        module.add("\n".join([f"def {self.name}({', '.join(V + C)}, L, cap, R, P, W, deadline):", w.text()]),
                   self.name)

    def bind(self, shapes):
        n, nc = self.n, self.n_captures
        var_shapes, capture_shapes = [tuple(s) for s in shapes[:n]], list(shapes[n:n + nc])
        p_hoisted, general = (), False
        if self.hoisted is not None:
            p_hoisted, hoisted_shapes, general = self.hoisted.bind(capture_shapes)
            body_shapes = var_shapes + capture_shapes + hoisted_shapes
        else:
            body_shapes = var_shapes + capture_shapes
        p_cond, _, general_cond = self.cond.bind(var_shapes + capture_shapes)
        p_body, out_shapes, general_body = self.body.bind(body_shapes)
        for k, (shape, out) in enumerate(zip(var_shapes, out_shapes)):
            if out != shape:
                raise InvalidArgumentError(
                    f"{self.label} at run time: loop variable {k} enters with shape {list(shape)} and the body "
                    f"returns shape {list(out)}; a compiled loop keeps each loop variable's shape for the whole run "
                    f"(run it with device='reference' to let it change){self.where}")
        # the output shapes: the loop variables', the trip count's, then each stacked value's row
        return (p_hoisted, p_cond, p_body), var_shapes + [(1,)] + out_shapes[n:], general or general_cond or general_body

    def call_source(self, args, outs) -> list:
        """Lines that call this loop inside another function (no history there, see __init__)."""
        n, nc = self.n, self.n_captures
        limit = args[-1] if self.has_limit else "LNONE"
        return [f"{_tuple(outs)} = {self.name}({', '.join(args[:n + nc])}, {limit}, 0, RNONE, P{{k}}, W, deadline)"]


class CondFunction:
    """``name(p, c.., P, W)``: the taken branch's function (both return the same shapes)."""

    def __init__(self, ins, module: _Module):
        self.label = f"cond '{ins.origin.name}'" if ins.origin else "cond"
        self.where = f"\n  created at {ins.origin.location}" if ins.origin else ""
        self.branches = [module.function_for(body_program(ins.attrs[k], module.settings), ins.attrs[k].label)
                         for k in ("then", "else")]
        self.name = module.name("cond")
        C = [f"c{k}" for k in range(len(ins.inputs) - 1)]
        then, other = self.branches
        module.add("\n".join([f"def {self.name}(p, {''.join(c + ', ' for c in C)}P, W):",
                              "    if p[0]:", f"        return {then.name}({''.join(c + ', ' for c in C)}P[0], W)",
                              f"    return {other.name}({''.join(c + ', ' for c in C)}P[1], W)"]), self.name)

    def bind(self, shapes):
        p_then, then_shapes, g1 = self.branches[0].bind(shapes[1:])
        p_else, else_shapes, g2 = self.branches[1].bind(shapes[1:])
        if then_shapes != else_shapes:
            raise InvalidArgumentError(
                f"{self.label} at run time: inside a compiled loop body, both branches must return the same shapes; "
                f"the true branch returns {then_shapes} and the false branch {else_shapes} (run it with "
                f"device='reference'){self.where}")
        return (p_then, p_else), then_shapes, g1 or g2


class StagedFunction:
    """A body holding control flow: its stages (codegen/control_flow.py) as one function."""

    def __init__(self, program, module: _Module, label: str, into: tuple = ()):
        self.program = program
        self.steps = []   # (function, input values, output values)
        for stage in split_stages(program):
            if stage.program is not None:
                self.steps.append((PlainFunction(stage.program, module, label), stage.program.feeds,
                                   stage.program.fetches))
            for i in stage.control:
                ins = program.instrs[i]
                if ins.op in DATA_SIZED_OPS:  # (collectives are refused when a body is traced)
                    origin = ins.origin
                    what = f"{origin.op} '{origin.name}' (created at {origin.location})" if origin else ins.op
                    raise CompileError(
                        f"{what} in the {label}: its output size is decided by the data on each iteration, "
                        "and the CPU compiles a loop body for one set of sizes; on the CPU, compute the mask "
                        "outside the loop or use gc.where(mask, x, 0) (the reference and CUDA targets run it "
                        "between the body's stages)")
                fn = LoopFunction(ins, module, nested=True) if ins.op == "while_loop" else CondFunction(ins, module)
                self.steps.append((fn, ins.inputs, ins.outputs))
        self.name = module.name("staged")
        w = SourceWriter(1)
        w("LNONE = np.zeros(1, np.int64)")
        w("RNONE = np.zeros(0, np.int64)")
        w("deadline = np.int64(W[3])")
        for j, v in enumerate(program.feeds):
            w(f"x{v} = f{j}")
        for k, (fn, inputs, outputs) in enumerate(self.steps):
            args = [f"x{v}" for v in inputs]
            outs = [f"x{v}" for v in outputs]
            if isinstance(fn, LoopFunction):
                for line in fn.call_source(args, outs):
                    w(line.replace("P{k}", f"P[{k}]"))
            elif isinstance(fn, CondFunction):
                w(f"{_tuple(outs)} = {fn.name}({', '.join(args)}, P[{k}], W)")
            else:
                w(f"{_tuple(outs)} = {fn.name}({''.join(a + ', ' for a in args)}P[{k}], W)")
        results = [f"x{v}" for v in program.fetches]
        for j in into:  # the caller's arrays (function_for)
            w(f"d{j}[:] = {results[j]}")
            results[j] = f"d{j}"
        w(f"return {_tuple(results)}")
        module.add("\n".join([f"def {self.name}({_body_params(program, into)}):", w.text()]), self.name)

    def bind(self, shapes):
        env = dict(zip(self.program.feeds, [tuple(s) for s in shapes]))
        parts, general = [], False
        for fn, inputs, outputs in self.steps:
            p, out_shapes, g = fn.bind([env[v] for v in inputs])
            if isinstance(fn, LoopFunction):
                out_shapes = out_shapes[:-1] + [()]
            parts.append(p)
            general = general or g
            env.update(zip(outputs, out_shapes))
        return tuple(parts), [env[v] for v in self.program.fetches], general


class CpuWhileLoop:
    """A top-level while_loop: its module, bound once per set of input shapes and called once
    per run."""

    def __init__(self, program, i: int, mode: str = STATIC):
        self._made_from = (program, i)
        module = _Module(mode, settings_of(program))
        self.loop = LoopFunction(program.instrs[i], module, nested=False)
        self.module, self.mode = module, mode
        self._compiled = cache.load(module.source(self.loop.name))
        self.fn = self._compiled.kernel
        self._sealed_signatures = 0
        self._pools: dict = {}
        self._dynamic = None

    def _dynamic_loop(self):
        """The same loop with every broadcasting stride computed at run time (the rare shapes
        that break the static kernels' assumptions, as CpuExecutable does)."""
        if self._dynamic is None:
            self._dynamic = CpuWhileLoop(*self._made_from, mode=DYNAMIC)
        return self._dynamic

    def __call__(self, inputs, ctx) -> list:
        loop = self.loop
        n = loop.n
        shapes = tuple(np.shape(a) for a in inputs)
        pool = self._pools.setdefault(shapes, [])
        bound = pool.pop() if pool else loop.bind(shapes)
        try:
            params, out_shapes, general = bound
            if general and self.mode == STATIC:
                return self._dynamic_loop()(inputs, ctx)
            values = [_flat(a) for a in inputs]
            limit = int(inputs[-1]) if loop.has_limit else np.iinfo(np.int64).max
            stacked_shapes = out_shapes[n + 1:]
            row_sizes = np.array([int(np.prod(s, dtype=np.int64)) for s in stacked_shapes], np.int64)
            cap = 0
            if loop.history or loop.stacked:  # rows for every trip when that is cheap; else grown by doubling
                row_bytes = max(sum(v.nbytes for v in values[:n]) if loop.history else 0, 1) + sum(
                    int(r) * np.dtype(t.dtype.np).itemsize for r, t in zip(row_sizes, loop.stacked))
                cap = limit if loop.has_limit and limit * row_bytes <= HISTORY_BYTES else HISTORY_START
            deadline = np.int64(ctx.deadline_ns()) if ctx is not None else NO_DEADLINE
            where = np.array([-1, -1, 0, deadline], np.int64)
            limit_array = values[-1] if loop.has_limit else np.zeros(1, np.int64)
            try:
                out = self.fn(*values[:n + loop.n_captures], limit_array, np.int64(max(cap, 0)), row_sizes, params,
                              where, deadline)
            except ValueError as e:
                if where[2]:
                    raise self._timed_out(ctx, -1) from None
                raise self._raised(e, where) from None
        finally:
            pool.append(bound)
        if len(self.fn.signatures) != self._sealed_signatures:
            # numba compiles a loop's functions at their first call with new argument types,
            # after the module was imported and sealed: record the cache files that call wrote,
            # or the next process finds them unverified and compiles them again (cache.load)
            self._sealed_signatures = len(self.fn.signatures)
            cache.seal(self._compiled.cache_path)
        trips = int(out[-1][0])
        if where[2]:
            raise self._timed_out(ctx, trips)
        result = [v.reshape(s) for v, s in zip(out[:n], shapes)] + [np.array(trips, np.int64)]
        at = n
        if loop.history:
            result += [h.reshape((trips, *s)) for h, s in zip(out[n:2 * n], shapes)]
            at = 2 * n
        result += [q.reshape((trips, *s)) for q, s in zip(out[at:at + len(loop.stacked)], stacked_shapes)]
        return result

    def _timed_out(self, ctx, trips: int) -> DeadlineExceededError:
        after = f" (after {trips} iterations)" if trips >= 0 else ""
        return DeadlineExceededError(f"{self.loop.label}{after} ran past the run's timeout of {ctx.timeout_ms()} ms "
                                     "(RunOptions(timeout_in_ms=...)); the run stopped there")

    def _raised(self, e: ValueError, where) -> Exception:
        m = RAISED_CODE.fullmatch(str(e.args[0])) if e.args else None
        if m is None or not 0 <= where[1] < len(self.module.parts) or where[0] < 0:
            return e
        exe, label = self.module.parts[int(where[1])]
        i, message = exe.generated.calls[int(where[0])].raise_codes[int(m.group(1))]
        return in_body(program_error(exe.program, i, message.format(*e.args[1:])), label)


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
        if op == "cond":  # one choice per run, made on the host
            return HostCond(program, i, compile_program)
        if op in HOST_OPS:  # a size only the data decides, or a collective: on the host, between stages
            return HostOp(program, i)
        raise CompileError(f"internal error: {op} is not control flow")
    return compile_one




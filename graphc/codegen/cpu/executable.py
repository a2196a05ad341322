"""The CPU executable: the schedule (codegen/schedule.py) rendered as compiled kernels and a
generated Python driver that calls them in order."""
from __future__ import annotations

import re
import sys
import threading
from typing import Sequence

import numpy as np
from numba import types
from numba.extending import intrinsic

from ... import profiler
from ...reuse import FREE_IN_DICT
from ...optimizer.program import Program, VARIABLE_WRITES
from ..backend import MISS, Executable, ensure_variables, program_error, variable_use
from ..collectives import CollectiveStep, abandon
from ..schedule import (BUFFER, CONSTANT, FEED, HOST, KERNEL, OUTPUT, START, TEMPORARY, VARIABLE, Binding, Place,
                        Schedule, fetch_sources)
from . import cache, cores
from . import parallel as PARALLEL
from ..emit.context import DYNAMIC, FASTMATH, STATIC, ProgramCodegen
from ..emit.loops import SourceWriter

# A kernel raises ValueError("graphc:<code>", values...); the code indexes its call's raise_codes.
RAISED_CODE = re.compile(r"graphc:(\d+)")
_KERNEL_DEF = re.compile(r"^def _kernel\(.*\):$", re.M)


@intrinsic
def full_vector_width(typingctx):
    """Emits nothing; lets LLVM vectorize the enclosing function in the CPU's widest registers.
    LLVM's x86 tuning prefers 256-bit vectors even where AVX-512 exists (early AVX-512 parts
    lowered their clock for 512-bit code). Measured on an Emerald Rapids host, the GELU kernel
    ran 1.4x faster single-threaded in 512-bit vectors, with bit-identical results. On a CPU
    without AVX-512 the preference is capped at what the CPU has and changes nothing."""
    def codegen(context, builder, signature, args):
        # llvmlite's AttributeSet.add accepts only its own list of names; a string attribute
        # is rendered as written.
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()
    return types.none(), codegen


def _numba_array(dtype) -> str:
    name = "boolean" if np.dtype(dtype) == np.bool_ else np.dtype(dtype).name
    return f'types.Array(types.{name}, 1, "C")'


def kernel_module_source(source: str, param_types) -> str:
    header = ["import math", "import numpy as np", "from numba import njit, types",
              "from graphc.codegen.emit import runtime as rt",
              "from graphc.codegen.cpu.executable import full_vector_width"]
    if "vm." in source:
        header.append("from graphc.codegen import vmath as vm")
    # The kernel's first statement asks LLVM for the CPU's widest vectors (full_vector_width says why).
    source = _KERNEL_DEF.sub(lambda m: m.group(0) + "\n    full_vector_width()", source, count=1)
    options = f"cache=True, nogil=True, error_model=\"numpy\", fastmath={FASTMATH}"
    # a split kernel's tail (KernelContext.split_tail) is compiled first: the kernel calls it
    tail = f"tail = njit(_ARGS, {options})(_tail)\n" if has_tail(source) else ""
    return ("\n".join(header) + "\n\n\n" + source + "\n\n\n"
            + f"_ARGS = ({', '.join(param_types)}{',' if len(param_types) == 1 else ''})\n"
            + tail + f"kernel = njit(_ARGS, {options})(_kernel)\n")


def has_tail(source: str) -> bool:
    return "\ndef _tail(" in source


CACHE_LINE = 64  # bytes


class _FirstCall:
    """A few-row variant's entry in ``kernel_functions`` until it is first called: it then
    compiles (or loads) the kernel, puts it in its place, and runs it."""

    def __init__(self, executable, k: int):
        self.executable, self.k = executable, k

    def __call__(self, *args):
        return self.executable._variant(self.k)(*args)


def empty_aligned(n: int, dtype) -> np.ndarray:
    """``np.empty(n, dtype)`` starting on a cache line (NumPy's start on 16 bytes). A kernel
    split across threads meets at line edges (parallel.part_bound) only if its arrays start
    on one; used for what a binding allocates (planned buffers, scratch), not per run."""
    dtype = np.dtype(dtype)
    raw = np.empty(n * dtype.itemsize + CACHE_LINE, np.uint8)
    start = -raw.ctypes.data % CACHE_LINE
    return raw[start:start + n * dtype.itemsize].view(dtype)


class CpuExecutable(Executable):
    """The schedule (codegen/schedule.py) rendered for the CPU: one numba kernel per step, a
    generated Python driver that calls them in order, and per set of concrete feed shapes a
    binding (every size, the regions, the host's values) and, for the last shapes seen, a
    driver specialized to them."""
    fresh_outputs = True

    def __init__(self, program: Program, mode: str = STATIC, schedule: Schedule = None,
                 recycle_outputs: bool = False):
        # recycle_outputs: a stage of a staged program (codegen/control_flow.py), whose outputs
        # the next stage reads and drops: an output array is reused by the next run once nothing
        # holds it (``_fresh``), instead of new memory that page-faults on first write (measured:
        # 0.5-1 ms per step for the 2.7 MB of gradients a data-parallel W2 step hands to MPI)
        self.recycle_outputs = recycle_outputs
        self._recycled: dict = {}
        self.schedule = schedule or Schedule(program)
        self.program = program = self.schedule.program
        self.mode = mode
        gen = ProgramCodegen(program, mode).generate()
        self.generated = gen
        self.scratch = self.schedule.scratch_regions(gen.calls)
        var_dtypes = {ins.attrs["var"]: ins.attrs["dtype"].np for ins in program.instrs if "var" in ins.attrs}

        def types_of(call) -> list:
            types_ = []
            for key in call.params:
                if key[0] in ("in", "out"):
                    types_.append(_numba_array(program.types[key[1]].dtype.np))
                elif key[0] == "var":
                    types_.append(_numba_array(var_dtypes[key[1]]))
                elif key[0] == "rng":
                    types_.append(_numba_array(np.int64))
                elif key[0] == "scratch":
                    types_.append(_numba_array(np.dtype(key[1])))
                else:
                    types_.append("types.int64")
            return types_
        # Kernel k < len(gen.calls) is step k's; after them come the few-row variants
        # (KernelCall.few_rows), compiled on first use: a training step at batch 256 never
        # pays for the variant of its products.
        self.calls = list(gen.calls) + [call.few_rows[0] for call in gen.calls if call.few_rows is not None]
        self._param_types = [types_of(call) for call in self.calls]
        sources = [kernel_module_source(call.source, types_) for call, types_ in zip(self.calls, self._param_types)]
        main = len(gen.calls)
        cache.compile_ahead(sources[:main], cores.width())
        modules = [cache.load(source) for source in sources[:main]]
        # (None for a variant until it is first used)
        self.kernels = [m.kernel for m in modules] + [None] * (len(sources) - main)
        self._kernel_modules = [m.__name__ for m in modules] + [None] * (len(sources) - main)
        self._sources = sources
        self._runners: dict = {}  # kernel -> (run, part address) of its part module (parallel.py)
        self._bindings: dict = {}
        self._dynamic = None
        self._dynamic_lock = threading.Lock()
        self._var_needed, self._var_created = variable_use(program)
        self._build_driver()

    # -- the driver ---------------------------------------------------------------------------------------
    def _build_driver(self) -> None:
        """Lay out the run as statements over slots, then render the generic driver."""
        schedule, gen = self.schedule, self.generated
        fixed: list = []          # what P holds: ("dim", v, k) | ("size", v) | ("host", v) | ("buffer", v)
        #                           | ("scratch", dtype, ordinal): shared by every kernel
        fixed_index: dict = {}
        var_names: list = []
        made = set()
        statements = []           # ("alloc", v, size_slot, dtype) | ("call", k, args, split)

        def slot(key):
            if key not in fixed_index:
                fixed_index[key] = len(fixed)
                fixed.append(key)
            return ("P", fixed_index[key])

        def var(name):
            if name not in var_names:
                var_names.append(name)
            return ("V", var_names.index(name))

        def ref(place: Place):
            if place.kind == FEED:
                return ("F", place.key)
            if place.kind == VARIABLE:
                return var(place.key)
            if place.kind in (CONSTANT, HOST):
                return slot(("host", place.value))
            if place.kind == BUFFER:
                return slot(("buffer", place.value))
            if place.value not in made:  # an output or a temporary: made by this run
                raise AssertionError(f"%{place.value} used before it is made")
            return ("B", place.value)

        collectives: dict = {}    # collective group -> its index in self.collectives
        self._poolable = set()    # kernels whose parts may run on the pool's threads
        variant_of = {k: len(gen.calls) + j  # (the order of self.calls)
                      for j, k in enumerate(k for k, call in enumerate(gen.calls) if call.few_rows is not None)}

        def arguments(call, step, kernel: int):
            """(argument refs, split refs or None) of one kernel of ``step``."""
            args = []
            for key in call.params:
                bound = schedule.argument(key)
                if isinstance(bound, Place):
                    if key[0] == "out" and bound.kind in (OUTPUT, TEMPORARY) and bound.value not in made:
                        statements.append(("alloc", bound.value, slot(("size", bound.value)),
                                           self.program.types[bound.value].dtype.np.name))
                        made.add(bound.value)
                    args.append(ref(bound))
                elif key[0] == "rng":
                    args.append(("RNG", step.kernel))
                elif key[0] in ("lo", "hi"):
                    args.append((key[0].upper(), 0))
                else:  # a dim or a scratch region
                    args.append(slot(key))
            if call.split is None:
                return args, None
            # a part that raises is run again in the caller (parallel.py): not where that
            # would write a variable twice
            if not (call.raise_codes and any(self.program.instrs[m].op in VARIABLE_WRITES
                                             for m in self.program.groups[step.group].members)):
                self._poolable.add(kernel)
            return args, ([slot(("dim", v, k)) for v, k in call.split.extent_dims],
                          [slot(key) for key in call.split.work], call.split.per)
        for step in schedule.steps:
            if step.kind != KERNEL:  # a collective's start or wait, run by the host (codegen/collectives.py)
                c = collectives.setdefault(step.group, len(collectives))
                ins = self.program.instrs[self.program.groups[step.group].members[0]]
                if step.kind == START:
                    values = [ins.inputs[k] for k in schedule.buckets[step.group][step.bucket][1]]
                    shapes = [tuple(slot(("dim", v, a)) for a in range(len(self.program.types[v].shape)))
                              if self.program.types[v].shape.rank is not None else (slot(("size", v)),)
                              for v in values]
                    statements.append(("start", c, step.bucket, [ref(schedule.place(v)) for v in values], shapes))
                else:  # the results the wait hands over (one written over its input is already in place)
                    outs = [v if schedule.place(v).value == v else None for v in ins.outputs]
                    made.update(v for v in outs if v is not None)
                    statements.append(("wait", c, len(schedule.buckets[step.group]), outs))
                continue
            call = gen.calls[step.kernel]
            args, split = arguments(call, step, step.kernel)
            few = None
            if call.few_rows is not None:  # (args, split) of the variant, its rows, its limit
                variant, row_keys, limit = call.few_rows
                index = variant_of[step.kernel]
                few = (index, *arguments(variant, step, index), [slot(("dim", v, a)) for v, a in row_keys], limit)
            statements.append(("call", step.kernel, args, split, few))
        outs = []
        for j, (how, place) in enumerate(fetch_sources(schedule)):
            if place.kind == CONSTANT and place.value in gen.literals:
                outs.append(("literal", gen.literals[place.value]))
            else:
                outs.append(("as_is" if how == "returned" else "copy", ref(place)))
        # The driver plan, public because it is rendered twice: as this executable's Python
        # driver (_render) and as an njit function inside a compiled loop (cpu/loops.py).
        # statements: ("alloc", buffer, size ref, dtype) and ("call", kernel, arg refs, split, few),
        # few: None or (variant kernel, its arg refs, its split, row dim refs, row limit);
        # outputs: per fetch, ("as_is" | "copy", ref) or ("literal", value).
        self.driver_statements, self.driver_outputs = statements, outs
        self.collectives = [CollectiveStep(self.program, self.program.groups[g], schedule.buckets[g])
                            for g in collectives]
        self._end_to_end = schedule.laid_end_to_end() if collectives else []
        self._fixed = fixed
        self._var_names = var_names
        self._rng_calls = [(i, c.rng_streams) for i, c in enumerate(gen.calls)]
        self._has_rng = any(streams for _, streams in self._rng_calls)
        # a list so profilers can wrap entries in place; variants load on their first call
        self.kernel_functions = [kernel if kernel is not None else _FirstCall(self, k)
                                 for k, kernel in enumerate(self.kernels)]
        self._writes_variables = bool(self.generated.calls) and any(
            ins.op in VARIABLE_WRITES for ins in self.program.instrs)
        self._uses_pool = any(k[0] in ("buffer", "scratch") for k in fixed)  # one set per concurrent call
        src = self._render(generic=True)
        namespace = {"np": np, "PAR": PARALLEL.call, "RUNNER": self._runner, "FRESH": self._fresh,
                     **self._host_names()}
        exec(compile(src, f"<graphc driver {id(self)}>", "exec"), namespace)
        self._driver = namespace["driver"]
        self.driver_source = src
        self._traced_driver = None

    def _variant(self, k: int):
        """Kernel ``k``, a few-row variant, compiled (or loaded) now: the first binding with few
        rows asks for it."""
        if self.kernels[k] is None:
            module = cache.load(self._sources[k])
            self.kernels[k], self._kernel_modules[k] = module.kernel, module.__name__
        if isinstance(self.kernel_functions[k], _FirstCall):
            self.kernel_functions[k] = self.kernels[k]
        return self.kernels[k]

    def _runner(self, k: int):
        """``(run, part address)`` of kernel ``k``'s part module (parallel.py), made on first
        use; None where its parts run in the calling thread."""
        if k not in self._runners:
            runner = None
            if k in self._poolable and PARALLEL.NATIVE and PARALLEL.THREADS > 1:
                self._variant(k)  # (the kernel's own module first)
                lo, hi = (next(j for j, key in enumerate(self.calls[k].params) if key[0] == which)
                          for which in ("lo", "hi"))
                module = cache.load(PARALLEL.part_module_source(self._kernel_modules[k], self._param_types[k], lo, hi,
                                                                self.calls[k].split.grain,
                                                                has_tail(self.calls[k].source)))
                runner = (module.run, module.part.address)
            self._runners[k] = runner
        return self._runners[k]

    def _host_names(self) -> dict:
        """What a driver's collective steps call (codegen/collectives.py)."""
        return {"CS": self.collectives, "ABANDON": abandon} if self.collectives else {}

    def _fresh(self, value: int, n: int, dtype) -> np.ndarray:
        """The array for output ``value`` of this run: last run's, if nothing holds it any more."""
        last = self._recycled.get(value)
        # referenced only by the dict and the name ``last``: free (graphc/reuse.py)
        if last is not None and last.size == n and last.dtype == dtype and sys.getrefcount(last) <= FREE_IN_DICT:
            return last
        # (np.empty, not empty_aligned: a view of an output, which the caller may keep, holds
        # the allocation's owner, not the output, so the reference count above would miss it)
        out = self._recycled[value] = np.empty(n, dtype)
        return out

    # -- tracing (gc.profiler) ------------------------------------------------------------------------------
    traceable = True

    def _traced_run(self, tracer, flat, var_arrays, fixed, rng):
        """The generic driver with a timer around each kernel (made on the first traced run)."""
        if self._traced_driver is None:
            src = self._render(generic=True, traced=True)
            namespace = {"np": np, "PAR": PARALLEL.call, "RUNNER": self._runner, "CLOCK": profiler.Tracer.clock,
                         "FRESH": self._fresh, **self._host_names()}
            exec(compile(src, f"<graphc traced driver {id(self)}>", "exec"), namespace)
            self._kernel_infos = profiler.kernel_infos(self.program, self.schedule, self.generated.calls)
            self._collective_infos = [step.trace_infos(self.program) for step in self.collectives]
            self._traced_driver = namespace["driver"]
        infos = self._kernel_infos

        def record(k, start, args):
            tracer.kernel(infos[k], start, args)

        def record_host(c, bucket, start, args):
            tracer.kernel(self._collective_infos[c][bucket], start, args)
        return self._traced_driver(flat, var_arrays, fixed, rng, self.kernel_functions, record, record_host)
    def _render(self, generic: bool, binding: Binding = None, order=None, one_fetch=None, traced=False) -> str:
        """Python source of the driver. The generic one takes (F, V, P, RNG, K) lists (and a
        traced one TR, called after each kernel with its start time and arguments); a
        specialized one (for one binding, i.e. one set of feed shapes) takes the feed values in
        the caller's order, checks them cheaply, and has every size as a literal."""
        def r(ref) -> str:
            kind, i = ref
            if kind == "B":
                return f"b{i}"
            if generic:
                return f"{kind}[{i}]"
            if kind in ("F", "V"):
                return f"{kind.lower()}{i}"
            if kind == "RNG":
                return f"RNG[{i}]"
            key = self._fixed[i]
            if key[0] in ("dim", "size"):
                return str(binding.shapes[key[1]][key[2]] if key[0] == "dim" else binding.sizes[key[1]])
            return f"P[{i}]"

        def kernel_call(w: SourceWriter, step: int, k: int, args, split) -> None:
            """Kernel ``k`` of ``step`` (itself, or its few-row variant), whole or in parts."""
            if split is None:
                rendered = [r(a) for a in args]
                line = f"K[{k}]({', '.join(rendered)})"
            else:
                extent = " * ".join(r(d) for d in split[0]) or "1"
                lo = next(j for j, a in enumerate(args) if a[0] == "LO")
                hi = next(j for j, a in enumerate(args) if a[0] == "HI")
                rendered = ["0" if a[0] in ("LO", "HI") else r(a) for a in args]
                work = f"({' * '.join(r(f) for f in split[1])}) // {split[2]}"
                line = f"PAR(K[{k}], {extent}, {work}, ({', '.join(rendered)},), {lo}, {hi}, RUNNER, {k})"
                if not generic:
                    extent_value = int(np.prod([int(r(d)) for d in split[0]], dtype=np.int64))
                    work = int(np.prod([int(r(f)) for f in split[1]], dtype=np.int64)) // split[2]
                    whole = [str(extent_value) if a[0] == "HI" else ("0" if a[0] == "LO" else r(a)) for a in args]
                    line = f"K[{k}]({', '.join(whole)})"
                    if work >= PARALLEL.MIN_WORK and extent_value > 1 and self._runner(k) is not None:
                        line = f"RUN{k}(CTL(), ADDR{k}, {work}, {', '.join(whole)})"
            if traced:  # the kernel's time, and its arguments for the bytes it reads and writes
                w("t = CLOCK()")
                w(line)
                w(f"TR({step}, t, ({', '.join(rendered)},))")
            else:
                w(line)

        w = SourceWriter(2)
        for st in self.driver_statements:
            if st[0] in ("start", "wait"):  # a collective's step: the host starts it, or waits for it
                c, b = st[1], st[2]
                if st[0] == "start":
                    args = [r(a) for a in st[3]]
                    shapes = ", ".join("(" + "".join(f"{r(d)}, " for d in dims) + ")" for dims in st[4])
                    line = f"h{c}_{b} = CS[{c}].start({b}, ({', '.join(args)},), ({shapes},))"
                else:
                    args = [f"b{v}" if v is not None else f"_{k}" for k, v in enumerate(st[3])]
                    line = f"{', '.join(args)}, = CS[{c}].wait(({''.join(f'h{c}_{k}, ' for k in range(b))}))"
                if traced:
                    w("t = CLOCK()")
                    w(line)
                    w(f"TRC({c}, {b if st[0] == 'start' else -1}, t, ({', '.join(args)},))")
                else:
                    w(line)
                continue
            if st[0] == "alloc":
                if self.recycle_outputs:
                    w(f"b{st[1]} = FRESH({st[1]}, {r(st[2])}, np.{st[3]})")
                else:
                    w(f"b{st[1]} = np.empty({r(st[2])}, np.{st[3]})")
                continue
            w(f"step = {st[1]}")
            few = st[4]
            if few is None:
                kernel_call(w, st[1], st[1], st[2], st[3])
                continue
            variant, v_args, v_split, rows, limit = few
            if not generic:  # the sizes are known: the one call that fits them
                if int(np.prod([int(r(d)) for d in rows], dtype=np.int64)) <= limit:
                    kernel_call(w, st[1], variant, v_args, v_split)
                else:
                    kernel_call(w, st[1], st[1], st[2], st[3])
                continue
            with w.block(f"if {' * '.join(r(d) for d in rows)} <= {limit}:"):
                kernel_call(w, st[1], variant, v_args, v_split)
            with w.block("else:"):
                kernel_call(w, st[1], st[1], st[2], st[3])
        outs = []
        for kind, ref in self.driver_outputs:
            if kind == "literal":
                outs.append(f"np.full(1, {ref})")
            else:
                outs.append(r(ref) if kind == "as_is" else f"{r(ref)}.copy()")
        src = SourceWriter()
        if generic:
            src(f"def driver(F, V, P, RNG, K{', TR, TRC' if traced else ''}):")
            src("    step = -1")
            src("    try:")
            src.extend(w)
            src(f"        return ({', '.join(outs)}{',' if len(outs) == 1 else ''})" if outs else "        return ()")
            self._render_handlers(src, "raise")
            return src.text()
        # specialized: values arrive in the caller's order; order[j] is the program feed each is
        n = len(order)
        src(f"def specialized({', '.join(f'u{j}' for j in range(n))}):")
        checks = []
        for j, feed in enumerate(order):
            checks.append(f"type(u{j}) is ND and u{j}.dtype is DT{j} and u{j}.shape == SH{j}")
        if checks:
            src(f"    if not ({' and '.join(checks)}):")
            src("        return MISS")
        if self._writes_variables:  # no retry after a partial run: check layout up front
            for j in range(n):
                src(f"    fl = u{j}.flags")
                src("    if not (fl.c_contiguous and fl.writeable):")
                src("        return MISS")
        for j, feed in enumerate(order):
            rank = len(binding.shapes[self.program.feeds[feed]])
            src(f"    f{feed} = u{j}" + ("" if rank == 1 else ".reshape(-1)"))
        if self._var_names:
            src("    variables = CTX.variables")
            src("    try:")
            for k, name in enumerate(self._var_names):
                src(f"        v{k} = variables[{name!r}].reshape(-1)")
            src("    except KeyError:")
            src("        return MISS")
        if self._has_rng:
            src("    RNG = RNG_ARRAYS(CTX)")
        if self._uses_pool:
            src("    P = POOL.pop() if POOL else MAKE()")
        else:
            src("    P = FIXED")
        src("    step = -1")
        src("    try:")
        src.extend(w)
        if one_fetch is not None:
            src(f"        out = {outs[0]}")
            shape = binding.fetch_shapes[0]
            src("        return out" + ("" if (len(shape) == 1) else
                                         ("[0]" if shape == () else f".reshape({shape!r})")))
        else:
            outs = [o + ("" if len(s) == 1 else ("[0]" if s == () else f".reshape({s!r})"))
                    for o, s in zip(outs, binding.fetch_shapes)]
            src(f"        return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
        if not self._writes_variables and not self.collectives:  # (no retry after a partial run)
            src("    except TypeError:")  # a feed numba cannot take as is: the slow path converts it
            src("        return MISS")
        self._render_handlers(src, "raise ERR(e) from None")
        if self._uses_pool:
            src("    finally:")
            src("        POOL.append(P)")
        return src.text()

    def _render_handlers(self, src: SourceWriter, reraise: str) -> None:
        """A driver's ``except`` clauses: a kernel's ValueError learns its step (``_raised``
        names the op); a run that fails between a collective's start and its wait leaves the
        world unusable (codegen/collectives.py)."""
        abandon = ["        ABANDON()"] if self.collectives else []
        src("    except ValueError as e:")
        src.lines.extend(abandon)
        src("        e.graphc_step = step")
        src(f"        {reraise}")
        if abandon:
            src("    except BaseException:")
            src.lines.extend(abandon)
            src("        raise")

    def specialized_runner(self, feeds, order, ctx, one_fetch: bool):
        """A runner specialized to the shapes and dtypes of ``feeds`` (program order), taking
        values in the caller's order (``order[j]``: the program feed of argument j). It returns
        the fetched values (a tuple, or the one value if ``one_fetch``), or MISS when its cheap
        checks fail; the caller then takes the general path. None if not available."""
        binding = self._bindings.get(tuple(f.shape for f in feeds))
        if binding is None or (binding.general and self.mode == STATIC):
            return None
        pool = binding.target.setdefault("pool", [])
        src = self._render(False, binding, order, one_fetch if one_fetch else None)
        namespace = {"np": np, "FRESH": self._fresh, "ND": np.ndarray, "MISS": MISS, "CTX": ctx,
                     "CTL": PARALLEL.control, **self._host_names(),
                     **{f"RUN{k}": r[0] for k, r in self._runners.items() if r is not None},
                     **{f"ADDR{k}": r[1] for k, r in self._runners.items() if r is not None},
                     "K": self.kernel_functions,
                     "RNG_ARRAYS": self._rng_arrays, "POOL": pool, "MAKE": lambda: self.fixed_values(binding),
                     "ERR": self._raised}
        if not self._uses_pool:
            namespace["FIXED"] = pool[-1] if pool else self.fixed_values(binding)
        for j, feed in enumerate(order):
            namespace[f"DT{j}"] = feeds[feed].dtype
            namespace[f"SH{j}"] = feeds[feed].shape
        exec(compile(src, f"<graphc specialized driver {id(self)}>", "exec"), namespace)
        return namespace["specialized"]

    # -- per-signature bindings -----------------------------------------------------------------------------
    def fixed_values(self, binding: Binding) -> list:
        """P for one set of regions: sizes, host values, and views into fresh buffers."""
        program = self.program
        buffers: dict = {}
        for run in self._end_to_end:  # a collective bucket's buffers, end to end (Schedule.laid_end_to_end)
            keys = [("buffer", b) for b in run]
            offsets = np.cumsum([0] + [-(-binding.region_bytes[k] // 8) * 8 for k in keys])  # (8-byte aligned)
            arena = empty_aligned(max(int(offsets[-1]), 1), np.uint8)
            for k, start, end in zip(keys, offsets[:-1], offsets[1:]):
                buffers[k] = arena[start:end]
        for key, n in binding.region_bytes.items():
            if key[0] == "buffer" and key not in buffers:
                buffers[key] = empty_aligned(max(n, 1), np.uint8)
        out = []
        for key in self._fixed:
            kind, v = key[0], key[1]
            if kind == "dim":
                out.append(binding.shapes[v][key[2]])
            elif kind == "size":
                out.append(binding.sizes[v])
            elif kind == "scratch":
                dtype = np.dtype(key[1])
                out.append(empty_aligned(max(binding.region_bytes[key] // dtype.itemsize, 1), dtype))
            elif kind == "host":
                arr = binding.host_values[v]
                out.append(arr if arr.flags.writeable else arr.copy())
            else:  # a planned buffer's view for value v
                dt = program.types[v].dtype.np
                raw = buffers[("buffer", program.buffers.buffer_of[v])]
                out.append(raw[:binding.sizes[v] * dt.itemsize].view(dt))
        return out

    def _dynamic_executable(self):
        """The same program with every broadcasting stride computed at run time: for the rare
        shapes that break the symbolic assumptions of the static kernels."""
        with self._dynamic_lock:
            if self._dynamic is None:
                self._dynamic = CpuExecutable(self.program, mode=DYNAMIC, schedule=self.schedule)
            return self._dynamic

    # -- running ------------------------------------------------------------------------------------------
    def run(self, feeds: Sequence[np.ndarray], ctx) -> list:
        """Feeds are C-contiguous, writable arrays of the right dtypes (the Session checks)."""
        binding = self.binding(feeds)
        if binding.general and self.mode == STATIC:
            return self._dynamic_executable().run(feeds, ctx)
        if self._var_needed or self._var_created:
            ensure_variables(ctx, self._var_needed, self._var_created)
        pool = binding.target.setdefault("pool", [])
        try:
            fixed = pool.pop()
        except IndexError:
            fixed = self.fixed_values(binding)
        flat = [f if f.ndim == 1 else f.reshape(-1) for f in feeds]
        variables = ctx.variables
        var_arrays = [variables[n].reshape(-1) for n in self._var_names]
        rng = self._rng_arrays(ctx) if self._has_rng else None
        tracer = ctx.current_tracer() if getattr(ctx, "tracing", 0) else None
        try:
            if tracer is None:
                outs = self._driver(flat, var_arrays, fixed, rng, self.kernel_functions)
            else:
                outs = self._traced_run(tracer, flat, var_arrays, fixed, rng)
        except ValueError as e:
            raise self._raised(e) from None
        finally:
            pool.append(fixed)
        shapes = binding.fetch_shapes
        return [o if o.shape == s else o.reshape(s) for o, s in zip(outs, shapes)]

    def binding(self, feeds) -> Binding:
        """The schedule bound to these feeds' shapes (made once per set of shapes)."""
        key = tuple([f.shape for f in feeds])
        binding = self._bindings.get(key)
        if binding is None:
            binding = self._bindings[key] = self.schedule.bind(feeds, self.scratch)
        return binding

    def _rng_arrays(self, ctx) -> list:
        rng = [None] * len(self.kernel_functions)
        for i, streams in self._rng_calls:
            if streams:
                seeds = []
                for s, (g_seed, o_seed) in zip(streams, self._seeds_of(i)):
                    seeds.extend((g_seed, o_seed, ctx.next_random_counter(s)))
                rng[i] = np.array(seeds, np.int64)
        return rng

    def _seeds_of(self, call: int) -> list:
        seeds = getattr(self, "_seed_cache", None)
        if seeds is None:
            seeds = {}
            by_stream = {ins.attrs["stream"]: ins.attrs["seed"] for ins in self.program.instrs if ins.opdef.random}
            for i, c in enumerate(self.generated.calls):
                seeds[i] = [by_stream[s] for s in c.rng_streams]
            self._seed_cache = seeds
        return seeds[call]

    def _raised(self, e: ValueError) -> Exception:
        m = RAISED_CODE.fullmatch(str(e.args[0])) if e.args else None
        step = getattr(e, "graphc_step", -1)
        if m is None or step < 0:
            return e
        i, message = self.generated.calls[step].raise_codes[int(m.group(1))]
        return program_error(self.program, i, message.format(*e.args[1:]))

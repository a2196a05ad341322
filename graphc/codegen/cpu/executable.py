"""The CPU executable: compiled kernels, a generated Python driver that calls them in order,
and per set of concrete feed shapes a plan (every size, the arena of planned buffers, the
values computed from shapes alone)."""
from __future__ import annotations

import re
import threading
from typing import Sequence

import numpy as np

from ...errors import InferenceError, InvalidArgumentError
from ...optimizer.program import Program, VARIABLE_WRITES
from ...optimizer.symbolic import SymbolicShapes
from ...shapes import TensorType
from ..backend import MISS, Executable, machine_memory
from ..reference import evaluate as reference_evaluate, runtime_error
from . import cache
from . import parallel as PARALLEL
from .codegen import FASTMATH, ProgramCodegen
from .source import SourceWriter

_RAISED = re.compile(r"graphc:(\d+)")



def _numba_array(dtype) -> str:
    name = "boolean" if np.dtype(dtype) == np.bool_ else np.dtype(dtype).name
    return f'types.Array(types.{name}, 1, "C")'


def kernel_module_source(source: str, param_types) -> str:
    header = ["import math", "import numpy as np", "from numba import njit, types",
              "from graphc.codegen.cpu import runtime as rt"]
    if "vm." in source:
        header.append("from graphc.codegen import vmath as vm")
    flags = "{" + ", ".join(repr(f) for f in sorted(FASTMATH)) + "}"
    return ("\n".join(header) + "\n\n\n" + source + "\n\n\n"
            + f"_ARGS = ({', '.join(param_types)}{',' if len(param_types) == 1 else ''})\n"
            + f"kernel = njit(_ARGS, cache=True, nogil=True, error_model=\"numpy\", fastmath={flags})(_kernel)\n")


class _Plan:
    __slots__ = ("dims", "sizes", "fetch_shapes", "arena_bytes", "shape_values", "general", "free", "shapes",
                 "device")  # device: the CUDA backend's buffers for this plan

    def __init__(self):
        self.free: list = []


def make_plan(program: Program, feeds: Sequence[np.ndarray], shape_members) -> _Plan:
    """Concrete shapes, sizes and buffer sizes of every value for one set of feed shapes;
    values of shape groups (computed here, on the host, with the reference ops)."""
    shapes = {v: f.shape for v, f in zip(program.feeds, feeds)}
    values = {}
    for i, ins in enumerate(program.instrs):
        if ins.op == "const":
            values[ins.outputs[0]] = ins.attrs["value"]
        in_types = [TensorType(program.types[v].dtype, shapes[v]) for v in ins.inputs]
        try:
            out_types = ins.opdef.infer(in_types, ins.attrs)
        except InferenceError as e:
            dummies = [np.broadcast_to(np.zeros((), program.types[v].dtype.np), shapes[v]) for v in ins.inputs]
            raise runtime_error(program, ins, dummies, str(e)) from None
        for v, t in zip(ins.outputs, out_types):
            shapes[v] = tuple(t.shape)
        if i in shape_members:
            arrays = [values[v] if v in values else np.broadcast_to(np.zeros((), program.types[v].dtype.np),
                                                                   shapes[v]) for v in ins.inputs]
            for v, out in zip(ins.outputs, reference_evaluate(ins, arrays, None, program)):
                values[v] = out
    plan = _Plan()
    plan.general = False
    plan.dims = {}
    plan.sizes = {v: int(np.prod(s, dtype=np.int64)) for v, s in shapes.items()}
    plan.fetch_shapes = [shapes[v] for v in program.fetches]
    plan.shape_values = {v: np.ascontiguousarray(values[v]).reshape(-1) for v in values}
    buffers = program.buffers
    nbytes: dict = {}
    if buffers is not None:
        for v, b in buffers.buffer_of.items():
            nbytes[b] = max(nbytes.get(b, 0), plan.sizes[v] * program.types[v].dtype.itemsize)
    plan.arena_bytes = nbytes
    plan.shapes = shapes
    return plan


def variable_use(program: Program) -> tuple:
    """(the variables the program reads or updates, sorted; {variable it only assigns:
    (shape, NumPy dtype)}): what a run needs in the session's state before it starts."""
    needed = sorted({ins.attrs["var"] for ins in program.instrs
                     if ins.op in ("read_variable", "assign_add", "assign_sub")})
    created = {ins.attrs["var"]: (tuple(ins.attrs["shape"]), ins.attrs["dtype"].np)
               for ins in program.instrs if ins.op == "assign" and ins.attrs["var"] not in needed}
    return needed, created


def ensure_variables(ctx, needed, created) -> None:
    """Raise the uninitialized-variable error for a needed variable the session lacks; give a
    variable the run only assigns a zero value to write into."""
    variables = ctx.variables
    for name in needed:
        if name not in variables:
            ctx.read_variable(name)  # raises the uninitialized-variable error
    for name, (shape, dtype) in created.items():
        if name not in variables:
            ctx.write_variable(name, np.zeros(shape, dtype))


def check_memory(program: Program, plan: _Plan, fresh, scratch_uses: dict) -> None:
    """A run whose buffers (the memory plan's, ``fresh`` values', and scratch: {(kind, dtype,
    ordinal): [factors per use]}) would not fit in this machine's memory is an error naming
    the largest value, before anything is allocated: a fed shape that broadcasts to gigabytes
    was a bare NumPy MemoryError, or an allocation the kernel then touched."""
    scratch = 0
    for key, uses in scratch_uses.items():
        counts = [int(np.prod([f if isinstance(f, int) else plan.shapes[f[0]][f[1]] for f in factors],
                              dtype=np.int64)) for factors in uses]
        scratch += max(counts, default=0) * np.dtype(key[1]).itemsize
    total = sum(plan.arena_bytes.values()) + scratch + sum(
        plan.sizes[v] * program.types[v].dtype.itemsize for v in fresh)
    limit = machine_memory()
    if total <= limit:
        return
    allocated = [v for v in plan.sizes if (program.buffers is not None and v in program.buffers.buffer_of)
                 or v in fresh] or list(plan.sizes)
    largest = max(allocated, key=lambda v: plan.sizes[v] * program.types[v].dtype.itemsize)
    producer = next(i for i, ins in enumerate(program.instrs) if largest in ins.outputs)
    nbytes = plan.sizes[largest] * program.types[largest].dtype.itemsize
    raise program_error(program, producer, (
        f"this run needs {total:,} bytes of buffers, more than this machine's {limit:,} bytes of memory; the "
        f"largest is {program.name_of(largest)} {program.types[largest].dtype.name}{list(plan.shapes[largest])} "
        f"({nbytes:,} bytes): check the shapes fed"))


def program_error(program: Program, i: int, message: str) -> InvalidArgumentError:
    """A kernel's run-time error, naming the user's op and where it was created."""
    ins = program.instrs[i]
    origin = ins.origin
    label = f"{origin.op} '{origin.name}'" if origin else ins.op
    where = f"\n  created at {origin.location}" if origin else ""
    return InvalidArgumentError(f"{label} at run time: {message}{where}")


class CpuExecutable(Executable):
    fresh_outputs = True

    def __init__(self, program: Program, mode: str = "fast"):
        self.program = program
        self.mode = mode
        gen = ProgramCodegen(program, mode).generate()
        self.generated = gen
        var_dtypes = {ins.attrs["var"]: ins.attrs["dtype"].np for ins in program.instrs if "var" in ins.attrs}
        self.kernels = []
        for call in gen.calls:
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
            self.kernels.append(cache.load(kernel_module_source(call.source, types_)).kernel)
        self._sym = SymbolicShapes(program) if mode == "fast" else None
        self._plans: dict = {}
        self._general = None
        self._general_lock = threading.Lock()
        self._var_needed, self._var_created = variable_use(program)
        self._shape_members = {i for g in program.groups if g.kind == "shape" for i in g.members}
        self._build_driver()

    # -- the driver ---------------------------------------------------------------------------------------
    def _storage(self, v: int) -> tuple:
        """Where value ``v``'s data lives: (kind, key)."""
        gen, p = self.generated, self.program
        while v in gen.alias:
            v = gen.alias[v]
        if v in self._feed_index:
            return ("feed", self._feed_index[v])
        ins = self._producer_ins.get(v)
        if ins is not None and (ins.op == "read_variable" or ins.op in VARIABLE_WRITES):
            return ("var", ins.attrs["var"])
        if ins is not None and ins.op == "const":
            return ("const", v)
        if ins is not None and self._producer_group_kind.get(v) == "shape":
            return ("shape", v)
        buf = p.buffers.buffer_of.get(v) if p.buffers is not None else None
        if buf is not None and buf not in p.buffers.pinned:
            return ("arena", v)
        return ("fresh", v)

    def _build_driver(self) -> None:
        """Lay out the run as statements over slots, then render the generic driver."""
        p, gen = self.program, self.generated
        self._feed_index = {v: i for i, v in enumerate(p.feeds)}
        self._producer_ins = {v: ins for ins in p.instrs for v in ins.outputs}
        self._producer_group_kind = {v: g.kind for g in p.groups for i in g.members for v in p.instrs[i].outputs}
        fixed: list = []          # what P holds: ("dim", v, k) | ("size", v) | ("const", v) | ("shape", v) | ("arena", v)
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

        def ref(v: int):
            kind, key = self._storage(v)
            if kind == "feed":
                return ("F", key)
            if kind == "var":
                return var(key)
            if kind == "fresh":
                if key not in made:
                    raise AssertionError(f"%{key} used before it is made")
                return ("B", key)
            return slot((kind, key))

        call_index = 0
        for g in p.groups:
            if g.kind in ("view", "shape"):
                continue
            call = gen.calls[call_index]
            args = []
            for key in call.params:
                if key[0] == "in":
                    args.append(ref(key[1]))
                elif key[0] == "out":
                    kind, root = self._storage(key[1])
                    if kind == "fresh" and root not in made:
                        statements.append(("alloc", root, slot(("size", root)), p.types[root].dtype.np.name))
                        made.add(root)
                    args.append(ref(key[1]))
                elif key[0] == "var":
                    args.append(var(key[1]))
                elif key[0] == "rng":
                    args.append(("RNG", call_index))
                elif key[0] in ("lo", "hi"):
                    args.append((key[0].upper(), 0))
                else:
                    args.append(slot(key))
            split = None
            if call.split is not None:
                extent_dims, work_value = call.split
                split = ([slot(("dim", v, k)) for v, k in extent_dims], slot(("size", work_value)))
            statements.append(("call", call_index, args, split))
            call_index += 1
        outs = []
        for v in p.fetches:
            if v in gen.literals and self._storage(v)[0] == "const":
                outs.append(("literal", gen.literals[v]))
                continue
            kind, key = self._storage(v)
            outs.append(("as_is" if kind == "fresh" and key == v else "copy", ref(v)))
        self._statements, self._outs = statements, outs
        self._fixed = fixed
        self._var_names = var_names
        self._rng_calls = [(i, c.rng_streams) for i, c in enumerate(gen.calls)]
        self._has_rng = any(streams for _, streams in self._rng_calls)
        self._kernels = list(self.kernels)  # a list so profilers can wrap entries in place
        self._writes_variables = bool(self.generated.calls) and any(
            ins.op in VARIABLE_WRITES for ins in p.instrs)
        self._scratch_uses: dict = {}
        for call in gen.calls:
            for dtype, ordinal, factors in call.scratch_uses:
                self._scratch_uses.setdefault(("scratch", dtype, ordinal), []).append(factors)
        self._uses_pool = any(k[0] in ("arena", "scratch") for k in fixed)  # one set per concurrent call
        src = self._render(generic=True)
        namespace = {"np": np, "PAR": PARALLEL.call}
        exec(compile(src, f"<graphc driver {id(self)}>", "exec"), namespace)
        self._driver = namespace["driver"]
        self.driver_source = src

    def _render(self, generic: bool, plan: "_Plan" = None, order=None, single=None) -> str:
        """Python source of the driver. The generic one takes (F, V, P, RNG, K) lists; a
        specialized one (for one plan, i.e. one set of feed shapes) takes the feed values in
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
                return str(plan.shapes[key[1]][key[2]] if key[0] == "dim" else plan.sizes[key[1]])
            return f"P[{i}]"

        w = SourceWriter(2)
        for st in self._statements:
            if st[0] == "alloc":
                w(f"b{st[1]} = np.empty({r(st[2])}, np.{st[3]})")
            else:
                w(f"step = {st[1]}")
                args, split = st[2], st[3]
                if split is None:
                    w(f"K[{st[1]}]({', '.join(r(a) for a in args)})")
                    continue
                extent = " * ".join(r(d) for d in split[0]) or "1"
                lo = next(k for k, a in enumerate(args) if a[0] == "LO")
                hi = next(k for k, a in enumerate(args) if a[0] == "HI")
                if not generic:
                    extent_value = int(np.prod([int(r(d)) for d in split[0]], dtype=np.int64))
                    if int(r(split[1])) < PARALLEL.MIN_WORK or PARALLEL.THREADS < 2:
                        plain = [str(extent_value) if a[0] == "HI" else ("0" if a[0] == "LO" else r(a)) for a in args]
                        w(f"K[{st[1]}]({', '.join(plain)})")
                        continue
                    extent = str(extent_value)
                rendered = ["0" if a[0] in ("LO", "HI") else r(a) for a in args]
                w(f"PAR(K[{st[1]}], {extent}, {r(split[1])}, ({', '.join(rendered)},), {lo}, {hi})")
        outs = []
        for kind, ref in self._outs:
            if kind == "literal":
                outs.append(f"np.full(1, {ref})")
            else:
                outs.append(r(ref) if kind == "as_is" else f"{r(ref)}.copy()")
        src = SourceWriter()
        if generic:
            src("def driver(F, V, P, RNG, K):")
            src("    step = -1")
            src("    try:")
            src.extend(w)
            src(f"        return ({', '.join(outs)}{',' if len(outs) == 1 else ''})" if outs else "        return ()")
            src("    except ValueError as e:")
            src("        e.graphc_step = step")
            src("        raise")
            return src.text()
        # specialized: values arrive in the caller's order; order[j] is the program feed each is
        n = len(order)
        src(f"def fast({', '.join(f'u{j}' for j in range(n))}):")
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
            rank = len(plan.shapes[self.program.feeds[feed]])
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
        if single is not None:
            src(f"        out = {outs[0]}")
            shape = plan.fetch_shapes[0]
            src("        return out" + ("" if (len(shape) == 1) else
                                         ("[0]" if shape == () else f".reshape({shape!r})")))
        else:
            outs = [o + ("" if len(s) == 1 else ("[0]" if s == () else f".reshape({s!r})"))
                    for o, s in zip(outs, plan.fetch_shapes)]
            src(f"        return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
        if not self._writes_variables:
            src("    except TypeError:")  # a feed numba cannot take as is: the slow path converts it
            src("        return MISS")
        src("    except ValueError as e:")
        src("        e.graphc_step = step")
        src("        raise ERR(e) from None")
        if self._uses_pool:
            src("    finally:")
            src("        POOL.append(P)")
        return src.text()

    def fast_function(self, feeds, order, ctx, single: bool):
        """A specialized runner for the shapes and dtypes of ``feeds`` (program order), taking
        values in the caller's order (``order[j]``: the program feed of argument j). It returns
        the fetched values (a tuple, or the one value if ``single``), or MISS when its cheap
        checks fail; the caller then takes the general path. None if not available."""
        plan = self._plans.get(tuple(f.shape for f in feeds))
        if plan is None or plan.general:
            return None
        src = self._render(False, plan, order, single if single else None)
        namespace = {"np": np, "PAR": PARALLEL.call, "ND": np.ndarray, "MISS": MISS, "CTX": ctx, "K": self._kernels,
                     "RNG_ARRAYS": self._rng_arrays, "POOL": plan.free, "MAKE": lambda: self._fixed_values(plan),
                     "ERR": self._raised}
        if not self._uses_pool:
            namespace["FIXED"] = plan.free[-1] if plan.free else self._fixed_values(plan)
        for j, feed in enumerate(order):
            namespace[f"DT{j}"] = feeds[feed].dtype
            namespace[f"SH{j}"] = feeds[feed].shape
        exec(compile(src, f"<graphc fast path {id(self)}>", "exec"), namespace)
        return namespace["fast"]

    # -- per-signature plans ------------------------------------------------------------------------------
    def _make_plan(self, feeds: Sequence[np.ndarray]) -> _Plan:
        plan = make_plan(self.program, feeds, self._shape_members)
        plan.general = self.mode == "fast" and self._sym.check_bindings(plan.shapes) is not None
        if not plan.general:
            check_memory(self.program, plan, [st[1] for st in self._statements if st[0] == "alloc"],
                         self._scratch_uses)
        return plan

    def _fixed_values(self, plan: _Plan) -> list:
        """P for one arena: sizes, constants, shape values and views into fresh buffers."""
        program = self.program
        buffers = {b: np.empty(max(n, 1), np.uint8) for b, n in plan.arena_bytes.items()}
        out = []
        for key in self._fixed:
            kind, v = key[0], key[1]
            if kind == "dim":
                out.append(plan.shapes[v][key[2]])
            elif kind == "size":
                out.append(plan.sizes[v])
            elif kind == "scratch":
                count = 0
                for factors in self._scratch_uses[key]:
                    size = 1
                    for factor in factors:
                        size *= factor if isinstance(factor, int) else plan.shapes[factor[0]][factor[1]]
                    count = max(count, size)
                out.append(np.empty(count, np.dtype(key[1])))
            elif kind in ("const", "shape"):
                arr = plan.shape_values[v]
                out.append(arr if arr.flags.writeable else arr.copy())
            else:  # arena
                dt = program.types[v].dtype.np
                raw = buffers[program.buffers.buffer_of[v]]
                out.append(raw[:plan.sizes[v] * dt.itemsize].view(dt))
        return out

    def _general_executable(self):
        with self._general_lock:
            if self._general is None:
                self._general = CpuExecutable(self.program, mode="general")
            return self._general

    # -- running ------------------------------------------------------------------------------------------
    def run(self, feeds: Sequence[np.ndarray], ctx) -> list:
        """Feeds are C-contiguous, writable arrays of the right dtypes (the Session checks)."""
        plan = self._plans.get(tuple([f.shape for f in feeds]))
        if plan is None:
            plan = self._make_plan(feeds)
            self._plans[tuple(f.shape for f in feeds)] = plan
        if plan.general:
            return self._general_executable().run(feeds, ctx)
        if self._var_needed or self._var_created:
            ensure_variables(ctx, self._var_needed, self._var_created)
        try:
            fixed = plan.free.pop()
        except IndexError:
            fixed = self._fixed_values(plan)
        flat = [f if f.ndim == 1 else f.reshape(-1) for f in feeds]
        variables = ctx.variables
        var_arrays = [variables[n].reshape(-1) for n in self._var_names]
        rng = self._rng_arrays(ctx) if self._has_rng else None
        try:
            outs = self._driver(flat, var_arrays, fixed, rng, self._kernels)
        except ValueError as e:
            raise self._raised(e) from None
        finally:
            plan.free.append(fixed)
        shapes = plan.fetch_shapes
        return [o if o.shape == s else o.reshape(s) for o, s in zip(outs, shapes)]

    def _rng_arrays(self, ctx) -> list:
        rng = [None] * len(self._kernels)
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
        m = _RAISED.fullmatch(str(e.args[0])) if e.args else None
        step = getattr(e, "graphc_step", -1)
        if m is None or step < 0:
            return e
        i, message = self.generated.calls[step].raise_codes[int(m.group(1))]
        return program_error(self.program, i, message.format(*e.args[1:]))

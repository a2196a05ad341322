"""Running a compiled program on a GPU.

Data stays on the device: variables are uploaded once and then live in the Session as device
arrays (written in place by update kernels), constants are uploaded once per executable,
intermediate values live in device arenas laid out by the memory plan (one set per input
shape signature). Only feeds go up and fetches come down. Runs of one executable are
serialized (the arenas are shared).
"""
from __future__ import annotations

import math
import threading
from typing import Sequence

import numpy as np

from ...optimizer.program import Program, VARIABLE_WRITES
from ...optimizer.symbolic import SymbolicShapes
from ..backend import Executable
from ..cpu import cache
from ..cpu.executable import check_memory, ensure_variables, make_plan, program_error, variable_use
from . import api
from .codegen import CudaProgramCodegen, block_sizes

ERROR_SLOTS = 4            # an error code and up to three values per kernel that can fail
MAX_BLOCKS = 4096          # grid-stride kernels cover any size with at most this many blocks
SIMULATOR_MAX_BLOCKS = 2   # the simulator runs every thread as a Python thread: keep grids tiny


def cuda_module_source(source: str) -> str:
    # under the simulator a kernel is Python: give it IEEE math (see simmath)
    math = "from graphc.codegen.cuda import simmath as math" if api.simulated() else "import math"
    header = [math, "import numpy as np", "import numba as nb", "from numba import cuda",
              "from graphc.codegen.cuda import runtime as rt"]
    # compiled at the first launch, for the argument types of that launch; cache=True keeps
    # the result on disk next to this file for the next process
    return "\n".join(header) + "\n\n\n" + source + "\n\n\nkernel = cuda.jit(cache=True)(_kernel)\n"


_FILL_SOURCE = """def _kernel(array, value):
    for i in range(cuda.grid(1), array.size, cuda.gridsize(1)):
        array[i] = value
"""
_FILL = {}


def _fill_kernel():
    """``fill(array, value)``: every element set to value (outputs some kernels accumulate
    into). A generated module like every kernel: the simulator swaps only module globals."""
    if "kernel" not in _FILL:
        _FILL["kernel"] = cache.load(cuda_module_source(_FILL_SOURCE)).kernel
    return _FILL["kernel"]


class DevicePlan:
    """The device buffers of one input-shape signature, reused by every run with it: the
    memory plan's arenas, shape values and scratch (``buffers``), the feeds' upload buffers,
    and buffers for values outside the plan (``fresh``)."""

    def __init__(self, buffers: dict, feeds):
        cuda = api.cuda()
        self.buffers = buffers
        self.feeds = [cuda.device_array(max(f.size, 1), f.dtype) for f in feeds]
        self.fresh: dict = {}


class CudaExecutable(Executable):
    fresh_outputs = True

    def __init__(self, program: Program, mode: str = "fast"):
        self.cuda = api.cuda()
        self.program = program
        self.mode = mode
        self._general = None
        self._sym = SymbolicShapes(program) if mode == "fast" else None
        gen = CudaProgramCodegen(program, mode).generate()
        self.generated = gen
        self._modules = [cache.load(cuda_module_source(call.source)) for call in gen.calls]
        self.kernels = [m.kernel for m in self._modules]
        self._sealed = False  # CUDA kernels compile (and write numba's cache) at their first launch
        self._shape_members = {i for g in program.groups if g.kind == "shape" for i in g.members}
        self._shape_values = {v for i in self._shape_members for v in program.instrs[i].outputs}
        self._producer = {v: ins for ins in program.instrs for v in ins.outputs}
        self._feed_index = {v: i for i, v in enumerate(program.feeds)}
        instrs = program.instrs
        self._var_needed, self._var_created = variable_use(program)
        self._consts: dict = {}
        self._seeds = {ins.attrs["stream"]: ins.attrs["seed"] for ins in instrs if ins.opdef.random}
        self._plans: dict = {}
        self._lock = threading.Lock()
        self._raising = [k for k, call in enumerate(gen.calls) if any(key[0] == "errors" for key in call.params)]
        # per kernel that can fail: (code + 1, values...) in one zeroed device array; a kernel
        # writes its slots only on an error, so the array is re-zeroed only after one
        self._errors_all = self.cuda.to_device(np.zeros(max(1, len(self._raising)) * ERROR_SLOTS, np.int64))
        self._errors = {k: self._errors_all[j * ERROR_SLOTS:(j + 1) * ERROR_SLOTS]
                        for j, k in enumerate(self._raising)}
        self._steps = self._schedule()
        self._fresh_values = sorted({ref[1] for step in self._steps for ref in step[2] if ref[0] == "fresh"})
        self._scratch_uses: dict = {}
        for call in gen.calls:
            for dtype, ordinal, factors in call.scratch_uses:
                self._scratch_uses.setdefault(("scratch", dtype, ordinal), []).append(factors)
        # where each fetch comes from, worked out once: a literal constant, a feed, or a device array
        producers = program.producers()
        self._fetch_refs = [("literal", instrs[producers[v]].attrs["value"])
                            if v in gen.literals and self._storage(v)[0] == "const" else self._storage(v)
                            for v in program.fetches]
        sizes = block_sizes()
        self._threads, self._reduce_threads, self._tile = sizes.threads, sizes.reduce_threads, sizes.tile
        self._max_blocks = SIMULATOR_MAX_BLOCKS if api.simulated() else MAX_BLOCKS

    # -- where each value lives ---------------------------------------------------------------------
    def _root(self, v: int) -> int:
        while v in self.generated.alias:
            v = self.generated.alias[v]
        return v

    def _storage(self, v: int) -> tuple:
        v = self._root(v)
        if v in self._feed_index:
            return ("feed", self._feed_index[v])
        ins = self._producer.get(v)
        if ins is not None and (ins.op == "read_variable" or ins.op in VARIABLE_WRITES):
            return ("var", ins.attrs["var"])
        if ins is not None and ins.op == "const":
            return ("const", v)
        if v in self._shape_values:
            return ("shape", v)
        buffers = self.program.buffers
        if buffers is not None and v in buffers.buffer_of and buffers.buffer_of[v] not in buffers.pinned:
            return ("arena", v)
        return ("fresh", v)

    def _schedule(self) -> list:
        """The run as steps: ("call", k, args, prefills) launches kernel k with args given as
        storage references."""
        p, gen = self.program, self.generated
        steps, calls = [], iter(range(len(gen.calls)))
        for g in p.groups:
            if g.kind in ("view", "shape"):
                continue
            k = next(calls)
            args = []
            for key in gen.calls[k].params:
                if key[0] in ("in", "out"):
                    args.append(self._storage(key[1]))
                elif key[0] == "var":
                    args.append(("var", key[1]))
                elif key[0] == "dim":
                    args.append(("dim", key[1], key[2]))
                elif key[0] == "scratch":
                    args.append(key)
                elif key[0] == "errors":
                    args.append(("errors", k))
                elif key[0] == "rng":
                    args.append(("rng", k))
                else:
                    raise AssertionError(f"the CUDA driver cannot pass a {key[0]!r} parameter")
            prefills = [(self._storage(v), np.dtype(p.types[v].dtype.np).type(eval(literal, {"np": np})))
                        for v, literal in gen.calls[k].prefills]
            steps.append(("call", k, args, prefills))
        return steps

    # -- running --------------------------------------------------------------------------------------
    def run(self, feeds: Sequence[np.ndarray], ctx) -> list:
        with self._lock:
            out = self._run(feeds, ctx)
            if not self._sealed:  # record the cache files the first launches wrote (cache.seal)
                self._sealed = True
                for module in self._modules:
                    cache.seal(module.cache_path)
            return out

    def _run(self, feeds, ctx) -> list:
        cuda = self.cuda
        shapes_key = tuple(f.shape for f in feeds)
        plan = self._plans.get(shapes_key)
        if plan is None:
            plan = make_plan(self.program, feeds, self._shape_members)
            # sizes that break the symbolic assumptions of the fast kernels (a None dim that
            # turns out to broadcast): kernels that read every size at run time
            plan.general = self.mode == "fast" and self._sym.check_bindings(plan.shapes) is not None
            if not plan.general:
                check_memory(self.program, plan, self._fresh_values, self._scratch_uses)
            plan.device = None if plan.general else DevicePlan(self._device_buffers(plan), feeds)
            self._plans[shapes_key] = plan
        if plan.general:
            if self._general is None:
                self._general = CudaExecutable(self.program, mode="general")
            return self._general.run(feeds, ctx)
        variables = self._device_variables(ctx)
        flat_vars = {name: value.reshape(-1) for name, value in variables.items()}
        # device buffers are kept per shape signature and reused by the next run with these
        # shapes (fetches are copied to the host before a run returns): no allocation per run
        device_feeds = plan.device.feeds
        for buffer, f in zip(device_feeds, feeds):
            if f.size:
                buffer[:f.size].copy_to_device(np.ascontiguousarray(f).reshape(-1))
        fresh = plan.device.fresh
        errors = self._errors
        rng = self._rng_arrays(ctx)

        def array(ref):
            kind, key = ref[0], ref[1]
            if kind == "feed":
                return device_feeds[key]
            if kind == "var":
                return flat_vars[key]
            if kind == "const":
                return self._const(key)
            if kind in ("shape", "arena"):
                return plan.device.buffers[key]
            if kind == "scratch":
                return plan.device.buffers[ref]
            if kind == "errors":
                return errors[key]  # a view of the executable's one error array
            if kind == "rng":
                return rng[key]
            if key not in fresh:
                fresh[key] = cuda.device_array(max(plan.sizes[key], 1), self.program.types[key].dtype.np)
            return fresh[key]

        for step in self._steps:
            _, k, refs, prefills = step
            for ref, value in prefills:
                target = array(ref)
                _fill_kernel()[self._launch(("size", target.size), plan)](target, value)
            args = [plan.shapes[ref[1]][ref[2]] if ref[0] == "dim" else array(ref) for ref in refs]
            grid, block = self._launch(self.generated.calls[k].launch, plan)
            self.kernels[k][grid, block](*args)
        if errors:  # one copy back for every kernel that can fail
            found = self._errors_all.copy_to_host().reshape(-1, ERROR_SLOTS)
            for j, k in enumerate(self._raising):
                if found[j, 0]:
                    self._errors_all.copy_to_device(np.zeros_like(found).reshape(-1))
                    raise self._error(k, found[j])
        out = []
        for v, ref, shape in zip(self.program.fetches, self._fetch_refs, plan.fetch_shapes):
            if ref[0] == "literal":
                out.append(np.asarray(ref[1]).reshape(shape))
            elif ref[0] == "feed":
                out.append(np.array(feeds[ref[1]]).reshape(shape))
            else:
                out.append(array(ref).copy_to_host()[:plan.sizes[v]].reshape(shape))
        return out

    def _launch(self, launch, plan) -> tuple:
        kind, v = launch
        cap, THREADS, REDUCE_THREADS, TILE = self._max_blocks, self._threads, self._reduce_threads, self._tile
        if kind == "flat":
            return max(1, min(math.ceil(plan.sizes[v] / THREADS), cap)), THREADS
        if kind == "size":
            return max(1, min(math.ceil(v / THREADS), cap)), THREADS
        if kind == "rows":
            return max(1, min(plan.sizes[v], cap)), REDUCE_THREADS
        if kind == "tiles":
            shape = plan.shapes[v]
            m, n = shape[-2], shape[-1]
            batch = int(np.prod(shape[:-2], dtype=np.int64))
            grid = tuple(max(1, min(math.ceil(e / TILE), cap)) for e in (n, m)) + (max(1, min(batch, cap)),)
            return grid, (TILE, TILE)
        raise AssertionError(f"unknown launch kind {kind!r}")

    def _error(self, k: int, found) -> Exception:
        i, message = self.generated.calls[k].raise_codes[int(found[0]) - 1]
        return program_error(self.program, i, message.format(*[int(v) for v in found[1:]]))

    def _rng_arrays(self, ctx) -> dict:
        """Per kernel with random ops: (graph seed, op seed, run counter) per op, on the device."""
        out = {}
        for k, call in enumerate(self.generated.calls):
            if call.rng_streams:
                seeds = []
                for stream in call.rng_streams:
                    seed = self._seeds[stream]
                    seeds.extend((seed[0], seed[1], ctx.next_random_counter(stream)))
                out[k] = self.cuda.to_device(np.array(seeds, np.int64))
        return out

    # -- device storage ----------------------------------------------------------------------------
    def _device_buffers(self, plan) -> dict:
        """Per shape signature: the memory plan's buffers as device arenas (a view per value),
        shape-group values, and the scratch arrays kernels ask for."""
        cuda, program = self.cuda, self.program
        device = {}
        # an empty value still gets a one-element view: room for one of the widest dtype
        arenas = {b: cuda.device_array(max(n, 16), np.uint8) for b, n in plan.arena_bytes.items()}
        for v, b in (program.buffers.buffer_of.items() if program.buffers is not None else ()):
            if self._storage(v)[0] == "arena":
                dt = program.types[v].dtype.np
                device[v] = arenas[b][:max(plan.sizes[v], 1) * dt.itemsize].view(dt)
        for v, value in plan.shape_values.items():
            device[v] = cuda.to_device(np.ascontiguousarray(value).reshape(-1) if value.size else np.zeros(1, value.dtype))
        uses: dict = {}
        for call in self.generated.calls:
            for dtype, ordinal, factors in call.scratch_uses:
                size = int(np.prod([f if isinstance(f, int) else plan.shapes[f[0]][f[1]] for f in factors]))
                key = ("scratch", dtype, ordinal)
                uses[key] = max(uses.get(key, 0), size)
        for key, size in uses.items():
            device[key] = cuda.device_array(max(size, 1), np.dtype(key[1]))
        return device

    def _const(self, v: int):
        if v not in self._consts:
            value = self.program.instrs[self.program.producers()[v]].attrs["value"]
            flat = np.ascontiguousarray(value).reshape(-1)
            self._consts[v] = self.cuda.to_device(flat if flat.size else np.zeros(1, flat.dtype))
        return self._consts[v]

    def _device_variables(self, ctx) -> dict:
        """The session's variables as device arrays (uploaded the first time a host value is
        seen, then kept on the device in the session itself)."""
        ensure_variables(ctx, self._var_needed, self._var_created)
        variables = ctx.variables
        for name, value in list(variables.items()):
            if isinstance(value, np.ndarray):
                variables[name] = self.cuda.to_device(np.ascontiguousarray(value))
        return variables

"""Running a compiled program on a GPU: the schedule (codegen/schedule.py) rendered as kernel
launches from the host.

Data stays on the device: variables are uploaded once and then live in the Session as device
arrays (written in place by update kernels), constants are uploaded once per executable, the
schedule's regions (planned buffers, temporaries, scratch) and outputs are device arrays kept
per input-shape signature. Only feeds go up and fetches come down. Runs of one executable are
serialized (the regions are shared).
"""
from __future__ import annotations

import math
import threading
from typing import Sequence

import numpy as np

from ...optimizer.program import Program
from ...profiler import kernel_infos
from ..backend import Executable, ensure_variables, program_error, variable_use
from ..cpu import cache
from ..emit.context import DYNAMIC, STATIC
from ..schedule import BUFFER, CONSTANT, FEED, HOST, OUTPUT, VARIABLE, Binding, Place, Schedule
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


class DeviceBinding:
    """The device memory of one input-shape signature, reused by every run with it: a device
    array per region and per output, the values the host computed from shapes, and the
    feeds' upload buffers."""

    def __init__(self, executable, binding: Binding, feeds):
        cuda, program, schedule = executable.cuda, executable.program, executable.schedule
        self.feeds = [cuda.device_array(max(f.size, 1), f.dtype) for f in feeds]
        # an empty value still gets a one-element view: room for one of the widest dtype
        self.regions = {key: cuda.device_array(max(n, 16), np.uint8) for key, n in binding.region_bytes.items()}
        self.values: dict = {}

        def view(v, region):
            dt = program.types[v].dtype.np
            return self.regions[region][:max(binding.sizes[v], 1) * dt.itemsize].view(dt)

        for v, b in program.buffers.buffer_of.items():
            if schedule.place(v).kind == BUFFER:
                self.values[v] = view(v, ("buffer", b))
        for region in schedule.regions:
            if region.key[0] == "temporary":
                self.values[region.key[1]] = view(region.key[1], region.key)
        for place in schedule.outputs:
            if place.kind == OUTPUT and place.value not in self.values:
                self.values[place.value] = cuda.device_array(max(binding.sizes[place.value], 1),
                                                             program.types[place.value].dtype.np)
        for v, value in binding.host_values.items():
            if schedule.place(v).kind == HOST:
                self.values[v] = cuda.to_device(value if value.size else np.zeros(1, value.dtype))
        self.scratch = {key: self.regions[key].view(np.dtype(key[1])) for key in binding.region_bytes
                        if key[0] == "scratch"}


class CudaExecutable(Executable):
    fresh_outputs = True

    def __init__(self, program: Program, mode: str = STATIC, schedule: Schedule = None):
        self.cuda = api.cuda()
        self.schedule = schedule or Schedule(program)
        self.program = program = self.schedule.program
        self.mode = mode
        self._dynamic = None
        gen = CudaProgramCodegen(program, mode).generate()
        self.generated = gen
        self.scratch = self.schedule.scratch_regions(gen.calls)
        self._modules = [cache.load(cuda_module_source(call.source)) for call in gen.calls]
        self.kernels = [m.kernel for m in self._modules]
        self._sealed = False  # CUDA kernels compile (and write numba's cache) at their first launch
        instrs = program.instrs
        self._var_needed, self._var_created = variable_use(program)
        self._consts: dict = {}
        self._seeds = {ins.attrs["stream"]: ins.attrs["seed"] for ins in instrs if ins.opdef.random}
        self._bindings: dict = {}
        self._lock = threading.Lock()
        self._raising = [k for k, call in enumerate(gen.calls) if any(key[0] == "errors" for key in call.params)]
        # per kernel that can fail: (code + 1, values...) in one zeroed device array; a kernel
        # writes its slots only on an error, so the array is re-zeroed only after one
        self._errors_all = self.cuda.to_device(np.zeros(max(1, len(self._raising)) * ERROR_SLOTS, np.int64))
        self._errors = {k: self._errors_all[j * ERROR_SLOTS:(j + 1) * ERROR_SLOTS]
                        for j, k in enumerate(self._raising)}
        self._steps = []
        for step in self.schedule.steps:
            call = gen.calls[step.kernel]
            args = [self.schedule.argument(key) for key in call.params]
            prefills = [(self.schedule.place(v), np.dtype(program.types[v].dtype.np).type(value))
                        for v, value in call.prefills]
            self._steps.append((step.kernel, args, prefills))
        self._fetches = [("literal", instrs[program.producers()[p.value]].attrs["value"])
                         if p.kind == CONSTANT and p.value in gen.literals else p for p in self.schedule.outputs]
        sizes = block_sizes()
        self._threads, self._reduce_threads, self._tile = sizes.threads, sizes.reduce_threads, sizes.tile
        self._max_blocks = SIMULATOR_MAX_BLOCKS if api.simulated() else MAX_BLOCKS

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
        shapes_key = tuple(f.shape for f in feeds)
        binding = self._bindings.get(shapes_key)
        if binding is None:
            binding = self._bindings[shapes_key] = self.schedule.bind(feeds, self.scratch)
        if binding.general and self.mode == STATIC:
            # sizes that break the symbolic assumptions of the static kernels (a None dim that
            # turns out to broadcast): kernels that read every size at run time
            if self._dynamic is None:
                self._dynamic = CudaExecutable(self.program, mode=DYNAMIC, schedule=self.schedule)
            return self._dynamic.run(feeds, ctx)
        device = binding.target.get("device")
        if device is None:
            device = binding.target["device"] = DeviceBinding(self, binding, feeds)
        variables = self._device_variables(ctx)
        flat_vars = {name: value.reshape(-1) for name, value in variables.items()}
        # device memory is kept per shape signature and reused by the next run with these
        # shapes (fetches are copied to the host before a run returns): no allocation per run
        tracer = ctx.current_tracer() if getattr(ctx, "tracing", 0) else None
        if tracer is not None:
            infos = self._kernel_infos()
            started = tracer.clock()
        for buffer, f in zip(device.feeds, feeds):
            if f.size:
                buffer[:f.size].copy_to_device(np.ascontiguousarray(f).reshape(-1))
        if tracer is not None:
            self.cuda.synchronize()
            tracer.host("feeds to the device", started, f"copy {len(feeds)} fed values to the GPU")
        errors = self._errors
        rng = self._rng_arrays(ctx)

        def array(arg):
            if isinstance(arg, Place):
                if arg.kind == FEED:
                    return device.feeds[arg.key]
                if arg.kind == VARIABLE:
                    return flat_vars[arg.key]
                if arg.kind == CONSTANT:
                    return self._const(arg.value)
                return device.values[arg.value]
            kind = arg[0]
            if kind == "dim":
                return binding.shapes[arg[1]][arg[2]]
            if kind == "scratch":
                return device.scratch[arg]
            raise AssertionError(f"the CUDA driver cannot pass a {kind!r} parameter")

        for k, args, prefills in self._steps:
            if tracer is not None:
                started = tracer.clock()
            for place, value in prefills:
                target = array(place)
                _fill_kernel()[self._launch(("size", target.size), binding)](target, value)
            values = [errors[k] if arg == ("errors",) else rng[k] if arg == ("rng",) else array(arg) for arg in args]
            grid, block = self._launch(self.generated.calls[k].launch, binding)
            self.kernels[k][grid, block](*values)
            if tracer is not None:  # a traced run waits for each kernel: its own time, not the queue's
                self.cuda.synchronize()
                tracer.kernel(infos[k], started, values)
        if tracer is not None:
            started = tracer.clock()
        if errors:  # one copy back for every kernel that can fail
            found = self._errors_all.copy_to_host().reshape(-1, ERROR_SLOTS)
            for j, k in enumerate(self._raising):
                if found[j, 0]:
                    self._errors_all.copy_to_device(np.zeros_like(found).reshape(-1))
                    raise self._error(k, found[j])
        out = []
        for v, source, shape in zip(self.program.fetches, self._fetches, binding.fetch_shapes):
            if not isinstance(source, Place):
                out.append(np.asarray(source[1]).reshape(shape))
            elif source.kind == FEED:
                out.append(np.array(feeds[source.key]).reshape(shape))
            else:
                out.append(array(source).copy_to_host()[:binding.sizes[v]].reshape(shape))
        if tracer is not None:
            tracer.host("fetches to the host", started, f"check kernel errors, copy {len(out)} fetched values back")
        return out

    # -- tracing (gc.profiler) ------------------------------------------------------------------------------
    traceable = True

    def _kernel_infos(self) -> list:
        infos = getattr(self, "_infos", None)
        if infos is None:
            infos = self._infos = kernel_infos(self.program, self.schedule, self.generated.calls)
        return infos

    def _launch(self, launch, binding: Binding) -> tuple:
        kind, v = launch
        cap, THREADS, REDUCE_THREADS, TILE = self._max_blocks, self._threads, self._reduce_threads, self._tile
        if kind == "flat":
            return max(1, min(math.ceil(binding.sizes[v] / THREADS), cap)), THREADS
        if kind == "size":
            return max(1, min(math.ceil(v / THREADS), cap)), THREADS
        if kind == "rows":
            return max(1, min(binding.sizes[v], cap)), REDUCE_THREADS
        if kind == "tiles":
            shape = binding.shapes[v]
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

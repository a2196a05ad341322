"""Generates the CPU code of a Program: one small numba function per kernel group, and a
plain-Python driver that calls them in order.

Kernel source is canonical: it names nothing after the program (no value ids; every size is
a parameter), so the same group structure anywhere (the Adam update of each variable, the
same layer in another model, the same op in another test) is the same source, compiled once
and cached on disk by content (cache.py). Small functions also compile much faster in numba
than one large one.

Every value lives in a flat, C-contiguous 1-D array; reshapes are free.

Two modes of broadcasting:
  * ``STATIC``: broadcasting patterns are fixed at compile time from symbolic shapes (a dim
    that is the same symbol as the iteration space's is taken as equal), so inner loops have
    unit or zero strides and vectorize. The executable checks the assumption for each new
    set of concrete shapes (``SymbolicShapes.check_bindings``).
  * ``DYNAMIC``: every stride is computed at run time. Correct for any shapes; used for the
    rare shapes that break the static mode's assumption.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Tuple


from ...dtypes import DType
from ...errors import CompileError
from ...optimizer.program import Program, VIEW_OPS
from ...optimizer.symbolic import SymbolicShapes
from . import scalar
from .loops import DYNAMIC, STATIC  # noqa: F401  (the broadcasting modes, see above)
from .loops import SourceWriter, product

# numba's fastmath option for every generated CPU and native kernel: strict IEEE arithmetic, so
# that a value a fused kernel recomputes in several loops gets the same bits in each. Sums
# vectorize through rt.fold_add and products of taps fuse through rt.muladd (runtime.py).
FASTMATH = "False"
_TYPED_LITERAL = re.compile(r"np\.(?:float32|float64|int8|int32|int64|uint8|bool_)\("
                            r"(?:-?np\.(?:inf|nan)|-?[0-9][0-9.e+\-]*|True|False)\)")


class KernelContext:
    """Builds one kernel's source. Emitters (kernels.py, ops.py) ask it for the arrays and
    sizes they use; it turns each into a parameter, in order of first use. Parameters are
    upper case (A3, N4, R5); names made with ``uid`` are lower case, so they never clash."""

    def __init__(self, program: Program, sym: SymbolicShapes, mode: str, literals: Dict[int, str]):
        self.p = program
        self.instrs = program.instrs
        self.types = program.types
        self.sym = sym
        self.mode = mode
        self.literals = literals
        self.producer = program.producers()
        self.params: List[Tuple] = []  # ("in", v) | ("out", v) | ("var", name) | ("dim", v, k) | ("rng",)
        #                                | ("lo",) | ("hi",) | ("scratch", dtype, ordinal)
        self.scratch_uses: list = []  # (dtype, ordinal, factors) per scratch() call
        self._param_names: dict = {}
        self.flat: dict = {}
        self.raise_codes: dict = {}
        self.rng_streams: list = []
        self._uid = 0
        self._lids: dict = {}
        self.body = SourceWriter(1)
        self.split = None  # a Split when the outer loop may run in parts
        self.tail = None   # what runs after the parts (split_tail)
        self.scratch_buffers = {}  # scratch name -> the buffer parameter it starts (for a tail)
        # A product whose row count is a size parameter: (row dims, most rows) when a variant
        # split by columns would serve few rows (groups.split_product); assume_few_rows emits it.
        self.few_rows = None
        self.assume_few_rows = False
        self.launch = None  # GPU only, see KernelCall.launch
        self.prefills: list = []  # GPU only, see KernelCall.prefills

    # -- what differs between targets -------------------------------------------------------------
    # Emitters are shared by the CPU and CUDA backends; they say *what* is independent, zeroed
    # first or accumulated, and the context says how on its target.
    target = "cpu"  # the CUDA backend's context says "cuda"

    def parallel_loop(self, idx: str, n: str) -> str:
        """The header of a loop whose iterations are independent: a plain loop on the CPU
        (the driver may split it), a grid-stride loop on a GPU."""
        return f"for {idx} in range({n}):"

    @contextlib.contextmanager
    def parallel_nest(self, w: SourceWriter, dims, prefixes=None):
        """Loops over the index space ``dims`` whose iterations are independent (each writes
        its own outputs); yields the index names. Nested loops here, one grid-stride loop
        with decoded indices on a GPU."""
        names = [self.uid(p) for p in (prefixes or ["i"] * len(dims))]
        for name, d in zip(names, dims):
            w.lines.append("    " * w.level + f"for {name} in range({d}):")
            w.level += 1
        try:
            yield names
        finally:
            w.level -= len(dims)

    def prefill(self, w: SourceWriter, v: int, array: str, value, count: str = None) -> None:
        """Set every element of output ``v`` (or the first ``count``: a CPU kernel's part) to
        ``value`` (a Python number) before the kernel's main loop (on a GPU the driver does it
        before the launch: threads cannot wait for each other)."""
        z = self.uid("z")
        with w.block(f"for {z} in range({count or self.size(v)}):"):
            w(f"{array}[{z}] = {scalar.literal(value, self.dtype(v))}")

    def accumulate(self, array: str, index: str, value: str) -> str:
        """``array[index] += value`` where several iterations may hit the same element."""
        return f"{array}[{index}] += {value}"

    def math(self, name: str, dtype: DType = None) -> str:
        """This target's spelling of math function ``name`` (exp, log, sqrt, isfinite, max,
        ...) for ``dtype``; with no dtype, the plain libm or builtin function."""
        return scalar.CPU_MATH(name, dtype)

    def call(self, name: str, dtype, *args: str) -> str:
        """Source calling math function ``name`` (see ``math``) on ``args``."""
        return f"{self.math(name, dtype)}({', '.join(args)})"

    # what a kernel returns when it succeeds (a CPU kernel returns a status; a GPU kernel nothing)
    success_return = "return 0"
    # whether a value passed to raise_error reaches the message as it is (a GPU kernel stores
    # it in an int64 error array: a float would show truncated)
    raises_floats = True

    def raise_error(self, w: SourceWriter, i: int, message: str, *values: str) -> None:
        """Stop with a run-time error; ``message`` has a ``{}`` for each value."""
        code = self.raise_code(i, message)
        w(f'raise ValueError("graphc:{code}"{"".join(", " + v for v in values)})')

    # -- naming ---------------------------------------------------------------------------------------
    def uid(self, prefix: str) -> str:
        self._uid += 1
        return f"{prefix}{self._uid}"

    def lid(self, v: int) -> int:
        """A kernel-local id for value ``v`` (so the source does not depend on value ids)."""
        if v not in self._lids:
            self._lids[v] = len(self._lids)
        return self._lids[v]

    def _param(self, key: Tuple, prefix: str) -> str:
        if key not in self._param_names:
            self._param_names[key] = f"{prefix}{len(self.params)}"
            self.params.append(key)
        return self._param_names[key]

    # -- types and sizes ---------------------------------------------------------------------------------
    def dtype(self, v: int) -> DType:
        return self.types[v].dtype

    def rank(self, v: int) -> int:
        return self.types[v].rank

    def dim(self, v: int, k: int) -> str:
        """Axis ``k`` of ``v``: a literal where the static shape fixes it (so LLVM can unroll
        and vectorize short loops over channels and filter taps), else a size parameter."""
        static = self.types[v].shape[k]
        if static is not None:
            return str(static)
        return self._param(("dim", v, k), "N")

    def runtime_dim(self, v: int, k: int) -> str:
        """Axis ``k`` of ``v`` as a size parameter even where the static shape fixes it: the
        extent of a loop that folds values into an accumulator (a reduced axis, softmax's
        classes). With a literal extent of about 8 to 24 LLVM unrolls such loops completely
        and then spends from seconds to minutes on the result (a logsumexp over 12 elements
        never finished compiling); with an unknown extent it vectorizes them as usual."""
        return self._param(("dim", v, k % self.rank(v)), "N")

    def dims(self, v: int) -> list:
        return [self.dim(v, k) for k in range(self.rank(v))]

    def size(self, v: int) -> str:
        return f"({product(self.dims(v))})"

    # -- arrays ------------------------------------------------------------------------------------------
    def array(self, v: int) -> str:
        """The flat array holding ``v``'s data, as a parameter (or a kernel-local array)."""
        if v in self.flat:
            return self.flat[v]
        return self._param(("in", v), "A")

    def define_output(self, v: int, w: SourceWriter) -> str:
        """The flat array the kernel writes ``v`` into (the driver provides it)."""
        if v not in self.flat:
            self.flat[v] = self._param(("out", v), "A")
        return self.flat[v]

    def var_array(self, name: str) -> str:
        return self._param(("var", name), "A")

    def temp(self, v: int, w: SourceWriter) -> str:
        """Scratch space shaped like ``v`` (see ``scratch``)."""
        return self.scratch([(v, k) for k in range(self.rank(v))], self.dtype(v), w)

    def scratch(self, factors, dtype: DType, w: SourceWriter, disjoint_parts: bool = False) -> str:
        """A flat scratch array of prod(factors) elements, where a factor is an int or a
        (value, axis) dim. The driver allocates one buffer per (dtype, ordinal) for the whole
        program, as large as its largest use, once per set of input shapes; every kernel
        slices it. A kernel that allocated megabytes per call ran 0.7 or 2.5 ms depending on
        the process's heap; separate buffers per kernel were slower than one shared buffer
        that stays in cache. A kernel split across threads may take scratch only where each
        part writes its own region of it (``disjoint_parts``), e.g. one slot per block of its
        split loop."""
        assert self.split is None or disjoint_parts, "a kernel split across threads cannot share one scratch array"
        ordinal = sum(1 for key in self.params if key[0] == "scratch")
        buffer = self._param(("scratch", dtype.np.name, ordinal), "S")
        self.scratch_uses.append((dtype.np.name, ordinal, tuple(factors)))
        count = product([str(f) if isinstance(f, int) else self.dim(*f) for f in factors])
        name = self.uid("scratch")
        w(f"{name} = {buffer}[:{count}]")
        self.scratch_buffers[name] = buffer
        return name

    def is_literal(self, v: int) -> bool:
        return v in self.literals

    def raise_code(self, i: int, message: str) -> int:
        code = len(self.raise_codes)
        self.raise_codes[code] = (i, message)
        return code

    def split_bounds(self, extent_dims, work_value: int, work_dims=(), per: int = 1, grain: int = 1):
        """``(lo, hi)`` parameter names bounding the kernel's outermost loop, whose full extent
        is the product of ``extent_dims`` ((value, axis) pairs): the driver may run disjoint
        parts ``[lo, hi)`` on several threads. The kernel slices every operand to its part
        and loops from 0 (a loop starting at a run-time ``lo`` indexes with a possibly
        negative int, and numba's wraparound check then stops LLVM from vectorizing).
        The driver splits when the work, ``size(work_value) * product(work_dims) // per``,
        is large enough (parallel.MIN_WORK): an elementwise loop's elements, or a
        product's multiply-adds over how many of them cost one element. Parts meet at
        multiples of ``grain`` (parallel.part_bound)."""
        assert self.split is None, "only one loop per kernel can be split"
        assert not any(key[0] == "scratch" for key in self.params), "scratch arrays are per call, not per part"
        for v, k in extent_dims:
            self.dim(v, k)
        self.split = Split(tuple(extent_dims), (("size", work_value),) + tuple(("dim", v, k) for v, k in work_dims),
                           per, grain)
        return self._param(("lo",), "L"), self._param(("hi",), "H")

    def part_buffer(self, w: SourceWriter, count: int, dtype: DType) -> str:
        """A split kernel's own working array of ``count`` elements (a block's patches), made
        by each part as it starts: the program's scratch is shared by every part, and a
        region of it per part would have to be sized for every image (LeNet's conv1 filter
        gradient: 5 MB planned, against 78 KB per part)."""
        assert self.split is not None, "a whole kernel takes scratch (see scratch)"
        name = self.uid("own")
        w(f"{name} = np.empty({count}, np.{dtype.np.name})")
        return name

    def split_tail(self) -> SourceWriter:
        """Where to write what runs once all parts of a split kernel have run (the sum of
        the parts' partial results): ``_tail``, a function of the kernel's own parameters. A
        kernel run whole (lo = 0, hi = the extent) calls it itself, as its last statement;
        split, the part module's ``run`` calls it after the parts (parallel.py)."""
        assert self.split is not None, "a tail follows the parts of a split kernel"
        if self.tail is None:
            self.tail = SourceWriter(1)
        return self.tail

    def rng_slot(self, stream: int) -> str:
        """``r[3k + 2]``: the run counter of this kernel's k-th random op; ``r[3k]`` and
        ``r[3k + 1]`` hold its graph and op seeds."""
        self.rng_streams.append(stream)
        return f"{self._param(('rng',), 'R')}[{3 * (len(self.rng_streams) - 1) + 2}]"

    def source(self) -> str:
        """The kernel's module-level constants and function. Typed literals such as
        ``np.float32(0.5)`` become module constants: numba freezes globals, and a call per
        literal costs compile time."""
        names = [self._param_names[k] for k in self.params]
        head = SourceWriter()
        head(f"def _kernel({', '.join(names)}):")
        head.extend(self.body)
        if not self.body.lines:
            head("    pass")
        if self.tail is not None:  # run whole, the kernel ends with its tail (split_tail)
            lo, hi = self._param_names[("lo",)], self._param_names[("hi",)]
            extent = " * ".join(self.dim(v, k) for v, k in self.split.extent_dims)
            head(f"    if {lo} == 0 and {hi} == {extent}:")
            head(f"        tail({', '.join(names)})")
        head(f"    {self.success_return}")
        if self.tail is not None:
            head(f"def _tail({', '.join(names)}):")
            head.extend(self.tail)
            head("    return 0")
        constants: dict = {}

        def hoist(m) -> str:
            if m.group(0) not in constants:
                constants[m.group(0)] = f"_K{len(constants)}"
            return constants[m.group(0)]

        text = _TYPED_LITERAL.sub(hoist, head.text())
        defs = "".join(f"{name} = {value}\n" for value, name in constants.items())
        return (defs + "\n\n" if defs else "") + text


class Split(NamedTuple):
    """How the driver may run a kernel's outer loop in parts (``KernelContext.split_bounds``)."""

    extent_dims: Tuple            # (value, axis) pairs whose product is the loop's extent
    work: Tuple                   # slot keys, ("size", v) or ("dim", v, k), whose product ...
    per: int                      # ... divided by this is the work that decides a split
    grain: int = 1                # parts meet at multiples of this


@dataclass
class KernelCall:
    """One kernel of the program and what to pass it."""

    source: str
    params: List[Tuple]
    raise_codes: Dict
    rng_streams: List
    label: str
    split: Optional[Split] = None   # when the outer loop can be split
    scratch_uses: List = field(default_factory=list)  # (dtype, ordinal, factors): sizes the driver provides
    launch: Optional[Tuple] = None  # GPU only: (kind, value) the driver sizes the grid from
    prefills: List = field(default_factory=list)  # GPU only: (value, number) filled before the launch
    # (variant KernelCall, row dim keys, limit): the driver calls the variant instead when the
    # product of those dims is at most the limit (CPU only, groups.split_product)
    few_rows: Optional[Tuple] = None


@dataclass
class Generated:
    calls: List[KernelCall]
    literals: Dict
    fetch_values: tuple


class ProgramCodegen:
    """Kernel sources for every group of a program. Backends share this walk and the
    KernelContext bookkeeping; each passes its own context class and group emitters."""
    context_class = KernelContext
    backend_name = "CPU"

    def emitters(self) -> dict:
        from . import groups
        return groups.GROUP_EMITTERS

    def __init__(self, program: Program, mode: str = STATIC):
        if program.groups is None:
            raise CompileError(f"the {self.backend_name} backend needs kernel groups (the optimizer always "
                               "provides them)")
        self.p = program
        self.mode = mode
        self.sym = program.symbolic()
        self.group_of = {i: k for k, g in enumerate(program.groups) for i in g.members}

    def generate(self) -> Generated:
        emitters = self.emitters()
        p = self.p
        literals: dict = {}
        calls: List[KernelCall] = []
        for k, g in enumerate(p.groups):
            if g.kind == "view":
                for i in g.members:
                    ins = p.instrs[i]
                    out = ins.outputs[0]
                    if ins.op == "const":
                        value = ins.attrs["value"]
                        if value.size == 1:
                            literals[out] = scalar.literal(value.reshape(()).item(), ins.outputs and p.types[out].dtype)
                    elif ins.op == "read_variable":
                        pass  # the variable's own storage: optimizer/state.py orders its uses
                    elif ins.op in VIEW_OPS:
                        if ins.inputs[0] in literals:
                            literals[out] = literals[ins.inputs[0]]
                    else:
                        raise CompileError(f"the {self.backend_name} backend has no view for op {ins.op!r}")
                continue
            if g.kind in ("shape", "collective"):  # the host computes these (codegen/schedule.py)
                continue
            emitter = emitters.get(g.kind)
            if emitter is None:
                raise CompileError(f"the {self.backend_name} backend cannot compile {g.label(p, k, 'group')}")
            ctx = self._emit(emitter, g, literals)
            calls.append(self._call(ctx, g, k))
            if ctx.few_rows is not None:
                variant = self._emit(emitter, g, literals, assume_few_rows=True)
                calls[-1].few_rows = (self._call(variant, g, k), *ctx.few_rows)
        return Generated(calls, literals, tuple(p.fetches))

    def _emit(self, emitter, g, literals, assume_few_rows: bool = False):
        ctx = self.context_class(self.p, self.sym, self.mode, literals)
        ctx.assume_few_rows = assume_few_rows
        emitter(ctx, g)
        return ctx

    def _call(self, ctx, g, k: int) -> KernelCall:
        return KernelCall(ctx.source(), list(ctx.params), dict(ctx.raise_codes), list(ctx.rng_streams),
                          g.label(self.p, k), ctx.split, list(ctx.scratch_uses), ctx.launch, list(ctx.prefills))

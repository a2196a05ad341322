"""conv2d with few input channels as direct loops, vectorized along the output width: the
CPU backend (``Session`` on ``device="cpu"``) and the native target (``native/kernels.py``)
both emit it here, where im2col + a product would be a GEMM with a short k (KH*KW*C) and few
columns (LeNet's first layer: k=25, n=6). Also the group's row-by-row epilogue
(``row_epilogue``), which both run on each finished row of a product or convolution."""
from __future__ import annotations

from . import groups
from . import scalar
from ...optimizer.program import VARIABLE_WRITES
from .loops import classify, copy_run, static_int

VECTOR = 8         # elements per accumulator vector
CO_BLOCK = 6       # output channels per pass: KW * CO_BLOCK filter values live
MAX_CHANNELS = 3   # input channels the direct form takes (the native target's implicit GEMM
#                    takes over at 4, the step of its k unrolling)


# Where BLAS is the alternative (the CPU backend), the direct form wins only for few output
# channels: on the 2-core benchmark machine, 32x32x3 -> 16 channels took 0.33 ms against
# 0.70 ms for im2col + BLAS, but -> 64 channels 2.1 ms against 1.7 ms, and 32x32x1 -> 64
# 2.0 ms against 0.57 ms (batch 32, 3x3 SAME).
MAX_OUTPUTS_WITH_BLAS = 16


def direct_conv_fits(cg, root, x, f, max_outputs=None) -> bool:
    """``direct_conv`` takes floating-point convolutions with few input channels (where the
    product's k is short and its rows are short), stride 1 along the width, static filter,
    channel and spatial sizes (literals in the kernel) and at least one vector of output
    width; and at most ``max_outputs`` output channels if given. The batch may be a size
    parameter."""
    a = root.attrs
    sizes = [static_int(d) for d in list(cg.dims(f)) + list(cg.dims(x))[1:] + list(cg.dims(root.outputs[0]))[1:3]]
    return (cg.dtype(root.outputs[0]).is_floating and all(s is not None for s in sizes)
            and sizes[2] <= MAX_CHANNELS and a["strides"][1] == 1 and sizes[-1] >= VECTOR
            and (max_outputs is None or sizes[3] <= max_outputs))


def direct_conv(cg, w, root, x, f, target, row_done, split: bool = False) -> None:
    """conv2d with few input channels, vectorized along the output width: per image, the
    input is copied channel by channel into a zero-padded planar scratch (so a row of taps is
    a contiguous, unconditional run); per output row, a block of accumulators ``acc[o, ow]``
    (output width rounded up to whole vectors) takes, for each filter row and input channel,
    all KW taps of up to CO_BLOCK output channels in one pass along the width (KW loads of
    the input row, KW*CO_BLOCK multiply-adds per load and store of an accumulator); then,
    pixel by pixel, the epilogue reads the accumulators (storing the convolution's own value
    channels-last only if it leaves the group), or without an epilogue the row is stored.

    With ``split`` (the CPU backend, whose driver may run parts of a kernel's outer loop on
    several threads), the batch loop is that loop and the two buffers are the part's own
    (small: one padded image and one row of accumulators), since the program's shared
    scratch cannot be split; otherwise (the native target: one thread, no allocation) they
    are scratch."""
    a = root.attrs
    dtype = cg.dtype(root.outputs[0])
    zero = scalar.literal(0, dtype)
    kh, kw, cin, n = (int(d) for d in cg.dims(f))
    _, h, wd, _ = cg.dims(x)
    h, wd = int(h), int(wd)
    do = cg.dims(root.outputs[0])
    oh_, ow_ = int(do[1]), int(do[2])
    sh, _ = a["strides"]
    dh, dw = a["dilations"]
    pt = pl = 0
    if a["padding"] == "SAME":
        pt = max((oh_ - 1) * sh + (kh - 1) * dh + 1 - h, 0) // 2
        pl = max((ow_ - 1) + (kw - 1) * dw + 1 - wd, 0) // 2
    owv = -(-ow_ // VECTOR) * VECTOR               # accumulator row: whole vectors
    wp = owv + (kw - 1) * dw                       # padded input row
    hp = (oh_ - 1) * sh + (kh - 1) * dh + 1        # padded input rows the output reads
    X, F = cg.array(x), cg.array(f)
    b, t, ih, iw, c, oh, p, ow, o = (cg.uid(v) for v in ("cb", "ct", "cih", "ciw", "cc", "coh", "cp", "cow", "co"))
    if split:
        out = root.outputs[0]
        lo, hi = cg.split_bounds([(out, 0)], out)
        xp, acc, part = cg.uid("cxp"), cg.uid("cacc"), cg.uid("cpart")
        w(f"{xp} = np.empty({cin * hp * wp}, np.{dtype.np.name})")
        w(f"{acc} = np.empty({n * owv}, np.{dtype.np.name})")
        images = f"for {part} in range({hi} - {lo}):"
    else:
        xp = cg.scratch([cin * hp * wp], dtype, w)
        acc = cg.scratch([n * owv], dtype, w)
        images = f"for {b} in range({do[0]}):"
    with w.block(images):
        if split:
            w(f"{b} = {lo} + {part}")
        with w.block(f"for {t} in range({cin * hp * wp}):"):
            w(f"{xp}[{t}] = {zero}")
        with w.block(f"for {ih} in range({max(0, min(h, hp - pt))}):"):
            if cin == 1:  # rows are contiguous runs
                copy_run(w, xp, f"{pt * wp + pl} + {ih} * {wp}", X, f"({b} * {h} + {ih}) * {wd}",
                         str(max(0, min(wd, wp - pl))), iw)
            else:
                with w.block(f"for {iw} in range({max(0, min(wd, wp - pl))}):"):
                    for ci in range(cin):
                        w(f"{xp}[{(ci * hp + pt) * wp + pl} + {ih} * {wp} + {iw}] = "
                          f"{X}[(({b} * {h} + {ih}) * {wd} + {iw}) * {cin} + {ci}]")
        with w.block(f"for {oh} in range({oh_}):"):
            with w.block(f"for {t} in range({n * owv}):"):
                w(f"{acc}[{t}] = {zero}")
            with w.block(f"for {p} in range({kh}):"):
                for ci in range(cin):
                    w(f"cx = ({ci * hp} + {oh} * {sh} + {p} * {dh}) * {wp}")
                    for o0 in range(0, n, CO_BLOCK):
                        outs = range(o0, min(n, o0 + CO_BLOCK))
                        for q in range(kw):
                            for co in outs:
                                w(f"cf{q}_{co - o0} = {F}[(({p} * {kw} + {q}) * {cin} + {ci}) * {n} + {co}]")
                        with w.block(f"for {ow} in range({owv}):"):
                            for q in range(kw):
                                w(f"cv{q} = {xp}[cx + {ow} + {q * dw}]")
                            for co in outs:
                                total = f"{acc}[{co * owv} + {ow}]"
                                for q in range(kw):  # FMAs (runtime.muladd: kernels are strict)
                                    total = f"rt.muladd(cv{q}, cf{q}_{co - o0}, {total})"
                                w(f"{acc}[{co * owv} + {ow}] = {total}")
            with w.block(f"for {ow} in range({ow_}):"):
                w(f"crow = ({b} * {oh_} + {oh}) * {ow_} + {ow}")
                if row_done is not None:  # the epilogue reads the accumulators: one pass, not two (LeNet conv1 6.8 -> 5.6 us)
                    row_done(w, "crow", "0", str(n), root=lambda col: f"{acc}[{col} * {owv} + {ow}]")
                else:
                    with w.block(f"for {o} in range({n}):"):
                        w(f"{target}[crow * {n} + {o}] = {acc}[{o} * {owv} + {ow}]")



def row_operands(cg, g):
    """``(members, external operands, their (row, column) kinds)`` of the group's epilogue when
    it can run row by row (``row_epilogue``), else None."""
    members = [i for i in g.members if i != g.root]
    if not members:
        return None
    out = cg.instrs[g.root].outputs[0]
    produced = {v for i in members for v in cg.instrs[i].outputs} | {out}
    external, kinds = [], {}
    for i in members:
        for u in groups.data_inputs(cg.instrs[i]):
            if u in produced or u in external or cg.is_literal(u):
                continue
            k = classify(cg, u, out)
            rows, col = set(k[:-1]) or {"b"}, k[-1]
            if len(rows) != 1 or "r" in rows or col == "r":
                return None
            external.append(u)
            kinds[u] = (rows.pop(), col)
    if any(cg.instrs[i].op in VARIABLE_WRITES for i in members) or cg.rank(out) < 1:
        return None
    return members, external, kinds


def row_epilogue(cg, g, target: str, n: str, shift: str = None):
    """The group's elementwise epilogue (bias, activation) as ``row_done`` for ``gemm`` and
    ``direct_conv``: run on each row of the product as soon as it is final, while it is in
    cache, instead of in a pass of its own (``direct_conv`` passes ``root``: see ``emit``). None when an operand does not broadcast row by row (the epilogue then
    runs as a separate loop). With ``shift``, for one part of a product split by columns
    (``groups.split_product``): every array that moves along the columns is viewed from
    column ``shift``, so that the part's columns count from 0 (see ``split_bounds``)."""
    operands = row_operands(cg, g)
    if operands is None:
        return None
    members, external, kinds = operands
    out = cg.instrs[g.root].outputs[0]
    stores = set(g.outputs)
    targets = {}
    for i in members:
        for v in cg.instrs[i].outputs:
            if v in stores:
                targets[v] = cg.define_output(v, cg.body)
    arrays = {u: cg.array(u) for u in external}
    if shift is not None:
        views: dict = {}

        def from_shift(name: str) -> str:
            if name not in views:
                views[name] = cg.uid("part")
                cg.body(f"{views[name]} = {name}[{shift}:]")
            return views[name]
        arrays.update({u: from_shift(arrays[u]) for u in external if kinds[u][1] == "e"})
        targets = {v: from_shift(t) for v, t in targets.items()}
        target = from_shift(target)

    def emit(w, i: str, j0: str, jn: str, root=None) -> None:
        """``root(col)``, if given, is where the product's value of column ``col`` is read
        (direct_conv's accumulators), instead of from ``target``; it is stored to ``target``
        only if it leaves the group."""
        base, j, col = cg.uid("eb"), cg.uid("ej"), cg.uid("ec")
        w(f"{base} = ({i}) * {n}")
        scalars = {}
        for u in external:  # one value per row (or per product): loaded once
            index = {("b", "b"): "0", ("e", "b"): f"({i})"}.get(kinds[u])
            if index is not None:
                w(f"x{cg.lid(u)} = {arrays[u]}[{index}]")
                scalars[u] = f"x{cg.lid(u)}"
        with w.block(f"for {j} in range({jn}):"):
            w(f"{col} = {j0} + {j}")
            row = dict(scalars)
            for u in external:
                if u not in row:
                    index = f"{base} + {col}" if kinds[u] == ("e", "e") else col
                    w(f"x{cg.lid(u)} = {arrays[u]}[{index}]")
                    row[u] = f"x{cg.lid(u)}"
            if root is None:
                w(f"mm_root = {target}[{base} + {col}]")
            else:
                w(f"mm_root = {root(col)}")
                if out in stores:
                    w(f"{target}[{base} + {col}] = mm_root")
            row[out] = "mm_root"
            groups.emit_scalar_members(cg, w, members, row, targets, f"{base} + {col}")
    return emit

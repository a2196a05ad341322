"""CUDA kernels for the ops that are neither elementwise, reductions, matmul nor conv2d.

Most share their emitter with the CPU backend (graphc/codegen/cpu/ops.py): those emitters
say which loops are independent (``parallel_nest``), what is zeroed first (``prefill``) and
where iterations accumulate into one element (``accumulate``), and the CUDA context turns
that into grid-stride loops, fills before the launch and atomics. The convolution
gradients differ: the CPU computes them with im2col and BLAS, a GPU thread computes one
output element directly (a gather, so no atomics). So does batch norm: the CPU walks x in
memory order, a GPU thread takes one channel.
"""
from __future__ import annotations

import contextlib

from ..emit import ops as shared_ops
from ..emit import scalar
from ..emit.ops import bn_geometry, conv_geometry, input_coordinate
from ...ops.registry import rule_registrar

OP_KERNELS: dict = dict(shared_ops.OP_KERNELS)
kernel = rule_registrar(OP_KERNELS, "CUDA kernel", replace=True)  # CUDA's own replace the CPU's


def _gradient_setup(cg, w, ins, x, kernel, grad):
    """A conv gradient's geometry (input ``x``, output gradient ``grad``), strides,
    dilations and the output's NumPy type constructor."""
    a = ins.attrs
    geo = conv_geometry(cg, w, x, kernel, a["strides"], a["dilations"], a["padding"], grad)
    return geo, a["strides"], a["dilations"], f"np.{cg.dtype(ins.outputs[0]).np.name}"


@kernel("conv2d_backprop_input")
def _(cg, w, i, ins):
    g, f, like = ins.inputs
    Y, G, F = cg.define_output(ins.outputs[0], w), cg.array(g), cg.array(f)
    kh, kw, c_in, c_out = cg.dims(f)
    geo, (sh, sw), (dh, dw), t = _gradient_setup(cg, w, ins, like, (kh, kw), g)
    with cg.parallel_nest(w, [geo["N"], geo["H"], geo["W"], c_in], ["n", "ih", "iw", "c"]) as (n, ih, iw, c):
        w(f"acc = {t}(0)")
        with w.block(f"for p in range({kh}):"):
            w(f"top = {ih} + {geo['PT']} - p * {dh}")
            with w.block(f"if top < 0 or top % {sh} != 0 or top // {sh} >= {geo['OH']}:"):
                w("continue")
            w(f"oh = top // {sh}")
            with w.block(f"for q in range({kw}):"):
                w(f"left = {iw} + {geo['PL']} - q * {dw}")
                with w.block(f"if left < 0 or left % {sw} != 0 or left // {sw} >= {geo['OW']}:"):
                    w("continue")
                w(f"ow = left // {sw}")
                w(f"src = (({n} * {geo['OH']} + oh) * {geo['OW']} + ow) * {c_out}")
                w(f"tap = ((p * {kw} + q) * {c_in} + {c}) * {c_out}")
                with w.block(f"for o in range({c_out}):"):
                    w(f"acc = {t}(acc + {G}[src + o] * {F}[tap + o])")
        w(f"{Y}[(({n} * {geo['H']} + {ih}) * {geo['W']} + {iw}) * {c_in} + {c}] = acc")


@kernel("conv2d_backprop_filter")
def _(cg, w, i, ins):
    x, g, like = ins.inputs
    Y, X, G = cg.define_output(ins.outputs[0], w), cg.array(x), cg.array(g)
    kh, kw, c_in, c_out = cg.dims(like)
    geo, (sh, sw), (dh, dw), t = _gradient_setup(cg, w, ins, x, (kh, kw), g)
    with cg.parallel_nest(w, [kh, kw, c_in, c_out], ["p", "q", "c", "o"]) as (p, q, c, o):
        w(f"acc = {t}(0)")
        with w.block(f"for n in range({geo['N']}):"):
            with w.block(f"for oh in range({geo['OH']}):"):
                input_coordinate(w, "ih", "oh", p, sh, dh, geo["PT"], geo["H"])
                with w.block(f"for ow in range({geo['OW']}):"):
                    input_coordinate(w, "iw", "ow", q, sw, dw, geo["PL"], geo["W"])
                    w(f"acc = {t}(acc + {X}[((n * {geo['H']} + ih) * {geo['W']} + iw) * {c_in} + {c}] * "
                      f"{G}[((n * {geo['OH']} + oh) * {geo['OW']} + ow) * {c_out} + {o}])")
        w(f"{Y}[(({p} * {kw} + {q}) * {c_in} + {c}) * {c_out} + {o}] = acc")


@kernel("argsort")
def _(cg, w, i, ins):
    """Each thread places one element at its rank (the count of elements that go before it):
    no scratch and no waiting between threads (the CPU merges rows in scratch)."""
    from ..emit.ops import _axis_split, _before
    x, out = ins.inputs[0], ins.outputs[0]
    X, Y = cg.array(x), cg.define_output(out, w)
    axis = ins.attrs["axis"]
    outer, _, inner = _axis_split(cg.dims(x), axis)
    length = cg.runtime_dim(x, axis)
    l = cg.uid("l")
    with cg.parallel_nest(w, [outer, length, inner], ["o", "p", "j"]) as (o, p, j):
        w(f"base = {o} * {length} * {inner} + {j}")
        w(f"v = {X}[base + {p} * {inner}]")
        w("rank = 0")
        with w.block(f"for {l} in range({length}):"):
            w(f"u = {X}[base + {l} * {inner}]")
            w(f"rank += 1 if {_before(cg, x, 'u', 'v', l, p, ins.attrs['descending'])} else 0")
        w(f"{Y}[base + rank * {inner}] = np.{cg.dtype(out).np.name}({p})")


@contextlib.contextmanager
def _bn_channel_elements(cg, w, outer, channels, inner, c):
    """Loops over the elements of channel ``c``; ``at`` is the element's flat index."""
    o, j = cg.uid("o"), cg.uid("j")
    with w.block(f"for {o} in range({outer}):"):
        with w.block(f"for {j} in range({inner}):"):
            w(f"at = ({o} * {channels} + {c}) * {inner} + {j}")
            yield


@kernel("fused_batch_norm")
def _(cg, w, i, ins):
    """A thread per channel: its mean, its variance about the mean (two passes, no
    cancellation), then y; the statistics land in their outputs. Simple, not fast: C
    threads, each walking N*H*W strided elements (a block-wide reduction per channel would
    use the GPU)."""
    x, scale, offset = ins.inputs
    X, S, B = cg.array(x), cg.array(scale), cg.array(offset)
    Y, M, V, I = (cg.define_output(v, w) for v in ins.outputs)
    dtype = cg.dtype(x)
    t = f"np.{cg.dtype(x).np.name}"
    outer, channels, inner, n = bn_geometry(cg, w, x, ins.attrs["axis"])
    eps = scalar.literal(ins.attrs["epsilon"], dtype)
    with cg.parallel_nest(w, [channels], ["c"]) as (c,):
        w(f"s = {t}(0)")
        with _bn_channel_elements(cg, w, outer, channels, inner, c):
            w(f"s += {X}[at]")
        w(f"m = {t}(s / {t}({n}))")
        w(f"s = {t}(0)")
        with _bn_channel_elements(cg, w, outer, channels, inner, c):
            w(f"d = {X}[at] - m")
            w("s += d * d")
        w(f"var = {t}(s / {t}({n}))")
        w(f"inv = {t}({t}(1) / {cg.call('sqrt', dtype, f'var + {eps}')})")
        w(f"k = {t}(inv * {S}[{c}])")
        w(f"b = {B}[{c}]")
        with _bn_channel_elements(cg, w, outer, channels, inner, c):
            w(f"{Y}[at] = {t}(({X}[at] - m) * k + b)")
        w(f"{M}[{c}] = m")
        # TF1's moving-average statistic: the unbiased variance, n / (n - 1) times the biased one
        w(f"{V}[{c}] = {t}(var * {t}({n}) / {t}({n} - 1)) if {n} > 1 else var")
        w(f"{I}[{c}] = inv")


@kernel("fused_batch_norm_grad")
def _(cg, w, i, ins):
    """A thread per channel: the sums of dy and dy * xhat, then dx from them."""
    dy, x, scale, mean, inv = ins.inputs
    DY, X, S, M, IV = (cg.array(v) for v in ins.inputs)
    DX, DS, DB = (cg.define_output(v, w) for v in ins.outputs)
    t = f"np.{cg.dtype(x).np.name}"
    outer, channels, inner, n = bn_geometry(cg, w, x, ins.attrs["axis"])
    with cg.parallel_nest(w, [channels], ["c"]) as (c,):
        w(f"m = {M}[{c}]")
        w(f"inv = {IV}[{c}]")
        w(f"sg = {t}(0)")
        w(f"sgx = {t}(0)")
        with _bn_channel_elements(cg, w, outer, channels, inner, c):
            w(f"g = {DY}[at]")
            w("sg += g")
            w(f"sgx += g * ({X}[at] - m)")
        w(f"ds = {t}(sgx * inv)")
        w(f"k = {t}({S}[{c}] * inv / {t}({n}))")
        w(f"gn = {t}({n})")
        with _bn_channel_elements(cg, w, outer, channels, inner, c):
            w(f"{DX}[at] = {t}(k * (gn * {DY}[at] - sg - ({X}[at] - m) * inv * ds))")
        w(f"{DS}[{c}] = ds")
        w(f"{DB}[{c}] = sg")

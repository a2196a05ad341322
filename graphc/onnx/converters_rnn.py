"""Converters for ONNX's recurrent layers: RNN, GRU and LSTM, as graphc loops.

Each direction is one ``theano_scan`` over time (a compiled while loop, no Python per step).
The input projection ``X @ W^T + Wb`` of every step is one matmul before the loop; the loop
body does the recurrent product and the gates, as the ONNX operator specification writes
them (gate orders: LSTM ``iofc``, GRU ``zrh``). ``sequence_lens`` masks the steps past each
sequence's end: the state is carried unchanged and the output is zero there.
"""
from __future__ import annotations

import numpy as np

import graphc as gc

from .. import dtypes as dt
from .converters import _const_like
from .importer import converts


def _activation(node, name: str, alpha, beta):
    n = name.lower()
    table = {
        "sigmoid": gc.sigmoid, "tanh": gc.tanh, "relu": gc.nn.relu, "softsign": gc.nn.softsign,
        "softplus": gc.nn.softplus,
    }
    if n in table:
        return table[n]
    if n == "affine":
        return lambda x: _const_like(x, 1.0 if alpha is None else alpha) * x + _const_like(x, beta or 0.0)
    if n == "leakyrelu":
        return lambda x: gc.nn.leaky_relu(x, alpha=0.01 if alpha is None else alpha)
    if n == "thresholdedrelu":
        return lambda x: gc.where(x > _const_like(x, 1.0 if alpha is None else alpha), x, gc.zeros_like(x))
    if n == "scaledtanh":
        return lambda x: _const_like(x, alpha or 1.0) * gc.tanh(_const_like(x, beta or 1.0) * x)
    if n == "hardsigmoid":
        return lambda x: gc.clip_by_value(_const_like(x, 0.2 if alpha is None else alpha) * x
                                          + _const_like(x, 0.5 if beta is None else beta),
                                          _const_like(x, 0), _const_like(x, 1))
    if n == "elu":
        return lambda x: gc.where(x > 0, x, _const_like(x, 1.0 if alpha is None else alpha) * gc.expm1(x))
    node.fail(f"activation {name!r} is not one ONNX defines for recurrent layers")


def _activations(node, defaults, n_dirs):
    names = node.attr("activations") or defaults * n_dirs
    alphas = node.attr("activation_alpha") or []
    betas = node.attr("activation_beta") or []
    if len(names) != len(defaults) * n_dirs:
        node.fail(f"activations {names} must list {len(defaults)} per direction")
    fns = [_activation(node, nm, alphas[i] if i < len(alphas) else None, betas[i] if i < len(betas) else None)
           for i, nm in enumerate(names)]
    return [fns[d * len(defaults):(d + 1) * len(defaults)] for d in range(n_dirs)]


def _recurrent(node, kind: str):
    n_gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
    x, w, r = node.x(0), node.x(1), node.x(2)
    layout = node.attr("layout", 0)
    if layout:
        x = gc.transpose(x, [1, 0, 2])                  # (seq, batch, input)
    direction = node.attr("direction", "forward")
    n_dirs = 2 if direction == "bidirectional" else 1
    hidden = node.attr("hidden_size") or (w.shape[1] // n_gates if w.shape[1] is not None else None)
    if hidden is None:
        node.fail("needs hidden_size")
    seq, batch = x.shape[0], x.shape[1]
    if seq is None:
        node.needs_shape(f"needs the sequence length at import time, got input shape {x.shape}")
    clip = node.attr("clip")
    defaults = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}[kind]
    acts = _activations(node, defaults, n_dirs)
    bias = node.x(3) if node.has(3) else None
    lens = node.x(4) if node.has(4) else None
    h0 = node.x(5) if node.has(5) else None
    c0 = node.x(6) if kind == "LSTM" and node.has(6) else None
    peep = node.x(7) if kind == "LSTM" and node.has(7) else None
    if kind == "LSTM" and node.attr("input_forget", 0):
        node.fail("LSTM's input_forget (coupled input and forget gates) is not imported")
    batch_dim = batch if batch is not None else gc.shape(x)[1]
    zeros = gc.zeros(gc.stack([gc.cast(batch_dim, dt.int64), gc.constant(np.int64(hidden))]), dtype=x.dtype) \
        if batch is None else gc.constant(np.zeros((batch, hidden), x.dtype.np))
    steps = gc.constant(np.arange(seq, dtype=np.int64))
    ys, hs, cs = [], [], []
    for d in range(n_dirs):
        reverse = direction == "reverse" or d == 1
        wd, rd = w[d], r[d]
        xw = gc.matmul(x, gc.transpose(wd))            # (seq, batch, G*hidden)
        rb = None
        if bias is not None:
            wb, rb = bias[d][:n_gates * hidden], bias[d][n_gates * hidden:]
            xw = xw + wb
        if kind != "GRU" and rb is not None:
            xw, rb = xw + rb, None
        h_init = h0[d] if h0 is not None else zeros
        c_init = (c0[d] if c0 is not None else zeros) if kind == "LSTM" else None
        p = peep[d] if peep is not None else None
        seq_in, t_in = xw, steps
        if reverse:
            if lens is not None:
                node.fail("reverse or bidirectional layers with sequence_lens are not imported")
            seq_in = gc.reverse(xw, [0])
        f_acts = acts[d]

        def clip_(v):
            return v if clip is None else gc.clip_by_value(v, _const_like(v, -clip), _const_like(v, clip))

        def cell(xw_t, t, h, c=None, rd=rd, rb=rb, p=p, f_acts=f_acts):
            hr = gc.matmul(h, gc.transpose(rd))
            if kind == "RNN":
                return f_acts[0](clip_(xw_t + hr)), None
            if kind == "LSTM":
                gi, go, gf, gc_ = (xw_t[:, k * hidden:(k + 1) * hidden] + hr[:, k * hidden:(k + 1) * hidden]
                                   for k in range(4))
                if p is not None:
                    gi = gi + p[:hidden] * c
                    gf = gf + p[2 * hidden:] * c
                i_ = f_acts[0](clip_(gi))
                f_ = f_acts[0](clip_(gf))
                cand = f_acts[1](clip_(gc_))
                c_new = f_ * c + i_ * cand
                if p is not None:
                    go = go + p[hidden:2 * hidden] * c_new
                o_ = f_acts[0](clip_(go))
                return o_ * f_acts[2](c_new), c_new
            # GRU
            xz, xr, xh = (xw_t[:, k * hidden:(k + 1) * hidden] for k in range(3))
            rz, rr = hr[:, :hidden], hr[:, hidden:2 * hidden]
            if rb is not None:
                rz, rr = rz + rb[:hidden], rr + rb[hidden:2 * hidden]
            z = f_acts[0](clip_(xz + rz))
            rg = f_acts[0](clip_(xr + rr))
            rbh = rb[2 * hidden:] if rb is not None else None
            if node.attr("linear_before_reset", 0):
                hh = hr[:, 2 * hidden:] + (rbh if rbh is not None else 0.0)
                cand = f_acts[1](clip_(xh + rg * hh))
            else:
                hh = gc.matmul(rg * h, gc.transpose(rd[2 * hidden:]))
                cand = f_acts[1](clip_(xh + hh + (rbh if rbh is not None else 0.0)))
            return (1.0 - z) * cand + z * h, None

        def step(xw_t, t, h, *rest, cell=cell):
            c = rest[0] if rest else None
            h_new, c_new = cell(xw_t, t, h, c)
            y = h_new
            if lens is not None:
                alive = gc.expand_dims(gc.cast(t, lens.dtype) < lens, 1)
                h_new = gc.where(alive, h_new, h)
                y = gc.where(alive, y, gc.zeros_like(y))
                if c_new is not None:
                    c_new = gc.where(alive, c_new, c)
            return [h_new, c_new, y] if c_new is not None else [h_new, y]

        infos = [h_init, c_init, None] if kind == "LSTM" else [h_init, None]
        outs, _ = gc.theano_scan(step, sequences=[seq_in, t_in], outputs_info=infos)
        y = outs[-1]
        if reverse:
            y = gc.reverse(y, [0])
        ys.append(y)
        hs.append(outs[0][-1])
        if kind == "LSTM":
            cs.append(outs[1][-1])
    y = gc.stack(ys, axis=1)                            # (seq, dirs, batch, hidden)
    y_h = gc.stack(hs, axis=0)
    if layout:
        y = gc.transpose(y, [2, 0, 1, 3])               # (batch, seq, dirs, hidden)
        y_h = gc.transpose(y_h, [1, 0, 2])
    outs = [y, y_h]
    if kind == "LSTM":
        y_c = gc.stack(cs, axis=0)
        outs.append(gc.transpose(y_c, [1, 0, 2]) if layout else y_c)
    return outs


@converts("RNN")
def _rnn(node):
    return _recurrent(node, "RNN")


@converts("GRU")
def _gru(node):
    return _recurrent(node, "GRU")


@converts("LSTM")
def _lstm(node):
    return _recurrent(node, "LSTM")

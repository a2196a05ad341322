"""The benchmark workloads, written once per framework.

Every builder returns a zero-argument callable that runs one iteration and blocks until its
results are ready, or raises ``Unavailable`` when the framework is not installed. Inputs are
created once, outside the timed call. All workloads are float32.
"""
from __future__ import annotations

import math

import numpy as np


class Unavailable(Exception):
    pass


def _import(name):
    try:
        return __import__(name)
    except Exception as e:  # ImportError, or a broken install
        raise Unavailable(f"{name}: {e}") from None


SIZES = {
    "full": {"W1a": 4_194_304, "W1b": (4096, 1024), "W2": (256, 784, 512, 512, 10), "W5": 64,
             "W7": (50, 32, 64, 256), "W7-small": (50, 32, 64, 32), "W8": (28, 128, 28, 128)},
    "tiny": {"W1a": 4096, "W1b": (16, 32), "W2": (8, 16, 12, 12, 10), "W5": 2,
             "W7": (4, 2, 3, 5), "W7-small": (4, 2, 3, 2), "W8": (3, 2, 3, 4)},
}


def _expose(step, **internals):
    """``step`` with what benchmarks/memory.py reads of a framework (its jitted function and
    arguments, its session and fetches) as attributes; the timed call is unchanged."""
    for k, v in internals.items():
        setattr(step, k, v)
    return step


def _rng():
    return np.random.default_rng(0)


# --- W1a: GELU (tanh form) ----------------------------------------------------------------------------
def w1a(framework, n):
    x = _rng().standard_normal(n).astype(np.float32)
    c = math.sqrt(2 / math.pi)
    if framework == "graphc":
        import graphc as gc
        g = gc.Graph()
        with g.as_default():
            xp = gc.placeholder(gc.float32, (None,), "x")
            y = gc.nn.gelu(xp, approximate=True)
        sess = gc.Session(graph=g)
        f = sess.make_callable(y, [xp])
        return lambda: f(x)
    if framework == "numpy":
        return lambda: 0.5 * x * (1 + np.tanh(np.float32(c) * (x + np.float32(0.044715) * x * x * x)))
    if framework == "jax":
        jax = _import("jax")
        f = jax.jit(lambda v: jax.nn.gelu(v, approximate=True))
        xj = jax.device_put(x)
        return lambda: f(xj).block_until_ready()
    if framework == "torch":
        torch = _import("torch")
        xt = torch.from_numpy(x)
        return lambda: torch.nn.functional.gelu(xt, approximate="tanh")
    if framework == "tf1":
        tf = _tf1()
        g = tf.Graph()
        with g.as_default():
            xp = tf.compat.v1.placeholder(tf.float32, (None,))
            y = tf.nn.gelu(xp, approximate=True)
        sess = tf.compat.v1.Session(graph=g)
        return lambda: sess.run(y, {xp: x})
    if framework == "pytensor":
        pt = _import("pytensor")
        import pytensor.tensor as ptt
        xp = ptt.vector("x", dtype="float32")
        y = 0.5 * xp * (1 + ptt.tanh(np.float32(c) * (xp + np.float32(0.044715) * xp ** 3)))
        f = pt.function([xp], y)
        return lambda: f(x)
    raise Unavailable(framework)


# --- W1b: row layer norm -------------------------------------------------------------------------------
def w1b(framework, shape):
    rows, cols = shape
    rng = _rng()
    x = rng.standard_normal(shape).astype(np.float32)
    gamma = rng.standard_normal(cols).astype(np.float32)
    beta = rng.standard_normal(cols).astype(np.float32)
    eps = 1e-5
    if framework == "graphc":
        import graphc as gc
        g = gc.Graph()
        with g.as_default():
            xp = gc.placeholder(gc.float32, (None, cols), "x")
            mean = gc.reduce_mean(xp, -1, keepdims=True)
            var = gc.reduce_mean(gc.square(xp - mean), -1, keepdims=True)
            y = (xp - mean) * gc.rsqrt(var + eps) * gamma + beta
        f = gc.Session(graph=g).make_callable(y, [xp])
        return lambda: f(x)
    if framework == "numpy":
        def run():
            mean = x.mean(-1, keepdims=True)
            var = ((x - mean) ** 2).mean(-1, keepdims=True)
            return (x - mean) / np.sqrt(var + np.float32(eps)) * gamma + beta
        return run
    if framework == "jax":
        jax = _import("jax")

        def ln(v):
            mean = v.mean(-1, keepdims=True)
            var = ((v - mean) ** 2).mean(-1, keepdims=True)
            return (v - mean) * jax.lax.rsqrt(var + eps) * gamma + beta
        f = jax.jit(ln)
        xj = jax.device_put(x)
        return lambda: f(xj).block_until_ready()
    if framework == "torch":
        torch = _import("torch")
        xt, gt, bt = (torch.from_numpy(a) for a in (x, gamma, beta))
        return lambda: torch.nn.functional.layer_norm(xt, (cols,), gt, bt, eps)
    if framework == "tf1":
        tf = _tf1()
        g = tf.Graph()
        with g.as_default():
            xp = tf.compat.v1.placeholder(tf.float32, (None, cols))
            mean, var = tf.nn.moments(xp, [1], keepdims=True)
            y = tf.nn.batch_normalization(xp, mean, var, beta, gamma, eps)
        sess = tf.compat.v1.Session(graph=g)
        return lambda: sess.run(y, {xp: x})
    if framework == "pytensor":
        pt = _import("pytensor")
        import pytensor.tensor as ptt
        xp = ptt.matrix("x", dtype="float32")
        mean = xp.mean(axis=-1, keepdims=True)
        var = ((xp - mean) ** 2).mean(axis=-1, keepdims=True)
        f = pt.function([xp], (xp - mean) / ptt.sqrt(var + np.float32(eps)) * gamma + beta)
        return lambda: f(x)
    raise Unavailable(framework)


# --- W2: MLP training step ----------------------------------------------------------------------------
def _mlp_data(sizes):
    batch, d_in, h1, h2, classes = sizes
    rng = _rng()
    x = rng.standard_normal((batch, d_in)).astype(np.float32)
    y = rng.integers(0, classes, batch)
    weights = []
    for a, b in ((d_in, h1), (h1, h2), (h2, classes)):
        weights.append((rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32))
        weights.append(np.zeros(b, np.float32))
    return x, y, weights


def _graphc_batch(gc, x_v, y_v, resident):
    """The batch as placeholders, or (``resident``: on a GPU, as the peers keep it there) as
    variables that never leave the device."""
    if resident:
        return gc.Variable(x_v, name="x", trainable=False), gc.Variable(y_v, name="y", trainable=False)
    return (gc.placeholder(gc.float32, (None,) + x_v.shape[1:], "x"), gc.placeholder(gc.int64, (None,), "y"))


def _graphc_step(g, train, loss, init, feeds, device):
    import graphc as gc
    sess = gc.Session(graph=g, device=device)
    sess.run(init)
    if feeds is None:
        f = sess.make_callable([train, loss])
        return _expose(lambda: f(), session=sess, loss=loss)
    f = sess.make_callable([train, loss], list(feeds))
    return _expose(lambda: f(*feeds.values()), session=sess, loss=loss)


def _torch_device(torch, device):
    if device != "cpu" and not torch.cuda.is_available():
        raise Unavailable("torch: CUDA is not available")
    dev = torch.device(device)
    # a GPU step ends when its loss is on the host, as graphc's (and jax's) do
    finish = (lambda loss: loss.item()) if device != "cpu" else (lambda loss: None)
    return dev, finish


def build_graphc_mlp(sizes, resident=False):
    """The W2 model in graphc: (graph, x, y, loss, train, init, x values, y values)."""
    import graphc as gc
    x_v, y_v, weights = _mlp_data(sizes)
    g = gc.Graph()
    with g.as_default():
        x, y = _graphc_batch(gc, x_v, y_v, resident)
        h = x
        params = [gc.Variable(w, name=f"p{i}") for i, w in enumerate(weights)]
        for i in range(0, 6, 2):
            h = h @ params[i] + params[i + 1]
            if i < 4:
                h = gc.nn.relu(h)
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=h))
        train = gc.train.GradientDescent(0.01).minimize(loss)
        init = gc.global_variables_initializer()
    return g, x, y, loss, train, init, x_v, y_v


def w2(framework, sizes, device="cpu"):
    x, y, weights = _mlp_data(sizes)
    lr = 0.01
    if framework == "graphc":
        resident = device != "cpu"
        g, xp, yp, loss, train, init, _, _ = build_graphc_mlp(sizes, resident)
        return _graphc_step(g, train, loss, init, None if resident else {xp: x, yp: y}, device)
    if framework == "numpy":
        w = [a.copy() for a in weights]

        def step():
            acts = [x]
            for i in range(0, 6, 2):
                z = acts[-1] @ w[i] + w[i + 1]
                acts.append(np.maximum(z, 0) if i < 4 else z)
            logits = acts[-1]
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            d = p
            d[np.arange(len(y)), y] -= 1
            d /= len(y)
            for i in (4, 2, 0):
                gw, gb = acts[i // 2].T @ d, d.sum(0)
                if i:
                    d = (d @ w[i].T) * (acts[i // 2] > 0)
                w[i] -= lr * gw
                w[i + 1] -= lr * gb
        return step
    if framework == "jax":
        jax = _import("jax")
        jnp = jax.numpy

        def loss_fn(params, xb, yb):
            h = xb
            for i in range(0, 6, 2):
                h = h @ params[i] + params[i + 1]
                if i < 4:
                    h = jax.nn.relu(h)
            logp = jax.nn.log_softmax(h)
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

        @jax.jit
        def update(params, xb, yb):
            l, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
            return [p - lr * g for p, g in zip(params, grads)], l

        state = {"p": [jax.device_put(w) for w in weights]}
        xj, yj = jax.device_put(x), jax.device_put(y.astype(np.int32))

        def step():
            state["p"], l = update(state["p"], xj, yj)
            l.block_until_ready()
        return _expose(step, jitted=update, args=lambda: (state["p"], xj, yj))
    if framework == "torch":
        torch = _import("torch")
        dev, finish = _torch_device(torch, device)
        params = [torch.tensor(w, requires_grad=True, device=dev) for w in weights]
        opt = torch.optim.SGD(params, lr=lr)
        xt, yt = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)

        def step():
            opt.zero_grad(set_to_none=True)
            h = xt
            for i in range(0, 6, 2):
                h = h @ params[i] + params[i + 1]
                if i < 4:
                    h = torch.relu(h)
            loss = torch.nn.functional.cross_entropy(h, yt)
            loss.backward()
            opt.step()
            finish(loss)
        return step
    if framework == "tf1":
        tf = _tf1()
        g = tf.Graph()
        with g.as_default():
            xp = tf.compat.v1.placeholder(tf.float32, (None, x.shape[1]))
            yp = tf.compat.v1.placeholder(tf.int64, (None,))
            vs = [tf.compat.v1.Variable(w) for w in weights]
            h = xp
            for i in range(0, 6, 2):
                h = tf.matmul(h, vs[i]) + vs[i + 1]
                if i < 4:
                    h = tf.nn.relu(h)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yp, logits=h))
            train = tf.compat.v1.train.GradientDescentOptimizer(lr).minimize(loss)
            init = tf.compat.v1.global_variables_initializer()
        sess = tf.compat.v1.Session(graph=g)
        sess.run(init)
        return _expose(lambda: sess.run([train, loss], {xp: x, yp: y}), tf=(sess, [train, loss], {xp: x, yp: y}))
    if framework == "pytensor":
        pt = _import("pytensor")
        import pytensor.tensor as ptt
        xp, yp = ptt.matrix("x", dtype="float32"), ptt.vector("y", dtype="int64")
        shared = [pt.shared(w) for w in weights]
        h = xp
        for i in range(0, 6, 2):
            h = ptt.dot(h, shared[i]) + shared[i + 1]
            if i < 4:
                h = ptt.maximum(h, 0)
        logp = h - ptt.log(ptt.sum(ptt.exp(h - h.max(axis=1, keepdims=True)), axis=1, keepdims=True)) \
            - h.max(axis=1, keepdims=True)
        loss = -logp[ptt.arange(yp.shape[0]), yp].mean()
        grads = pt.grad(loss, shared)
        f = pt.function([xp, yp], loss, updates=[(s, s - np.float32(lr) * gr) for s, gr in zip(shared, grads)])
        return lambda: f(x, y)
    raise Unavailable(framework)


# --- W3: call overhead ------------------------------------------------------------------------------------
def w3(framework, mode):
    a, b, c = (np.array([v], np.float32) for v in (2.0, 3.0, 4.0))
    if framework == "graphc":
        import graphc as gc
        g = gc.Graph()
        with g.as_default():
            ap, bp, cp = (gc.placeholder(gc.float32, (1,), n) for n in "abc")
            z = ap * bp + cp
        sess = gc.Session(graph=g)
        if mode == "run":
            feed = {ap: a, bp: b, cp: c}
            sess.run(z, feed)
            return lambda: sess.run(z, feed)
        f = sess.make_callable(z, [ap, bp, cp])
        return lambda: f(a, b, c)
    if framework == "numpy":
        return lambda: a * b + c
    if framework == "jax":
        jax = _import("jax")
        f = jax.jit(lambda x, y, w: x * y + w)
        aj, bj, cj = (jax.device_put(v) for v in (a, b, c))
        return lambda: f(aj, bj, cj).block_until_ready()
    if framework == "torch":
        torch = _import("torch")
        at, bt, ct = (torch.from_numpy(v) for v in (a, b, c))
        return lambda: at * bt + ct
    if framework == "tf1":
        tf = _tf1()
        g = tf.Graph()
        with g.as_default():
            ap, bp, cp = (tf.compat.v1.placeholder(tf.float32, (1,)) for _ in range(3))
            z = ap * bp + cp
        sess = tf.compat.v1.Session(graph=g)
        feed = {ap: a, bp: b, cp: c}
        if mode == "run":
            return lambda: sess.run(z, feed)
        f = sess.make_callable(z, [ap, bp, cp])
        return lambda: f(a, b, c)
    if framework == "pytensor":
        pt = _import("pytensor")
        import pytensor.tensor as ptt
        xs = [ptt.vector(n, dtype="float32") for n in "abc"]
        f = pt.function(xs, xs[0] * xs[1] + xs[2])
        return lambda: f(a, b, c)
    raise Unavailable(framework)


# --- W5: LeNet-5 training step -----------------------------------------------------------------------------
def _lenet_data(batch):
    rng = _rng()
    x = rng.random((batch, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    shapes = [(5, 5, 1, 6), (6,), (5, 5, 6, 16), (16,), (400, 120), (120,), (120, 84), (84,), (84, 10), (10,)]
    params = [(rng.standard_normal(s) * 0.1).astype(np.float32) for s in shapes]
    return x, y, params


def graphc_lenet_logits(gc, x, params):
    """W5's LeNet-5 forward pass in graphc, its parameters as variables (also benchmarks/export_run.py)."""
    v = [gc.Variable(p, name=f"p{i}") for i, p in enumerate(params)]
    h = gc.nn.max_pool2d(gc.nn.relu(gc.nn.conv2d(x, v[0], padding="SAME") + v[1]), 2, 2)
    h = gc.nn.max_pool2d(gc.nn.relu(gc.nn.conv2d(h, v[2], padding="VALID") + v[3]), 2, 2)
    h = gc.reshape(h, (-1, 400))
    h = gc.nn.relu(h @ v[4] + v[5])
    h = gc.nn.relu(h @ v[6] + v[7])
    return h @ v[8] + v[9]


def w5(framework, batch, device="cpu"):
    x, y, params = _lenet_data(batch)
    lr = 0.01
    if framework == "graphc":
        import graphc as gc
        resident = device != "cpu"
        g = gc.Graph()
        with g.as_default():
            xp, yp = _graphc_batch(gc, x, y, resident)
            logits = graphc_lenet_logits(gc, xp, params)
            loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=yp, logits=logits))
            train = gc.train.GradientDescent(lr).minimize(loss)
            init = gc.global_variables_initializer()
        return _graphc_step(g, train, loss, init, None if resident else {xp: x, yp: y}, device)
    if framework == "torch":
        torch = _import("torch")
        F = torch.nn.functional
        dev, finish = _torch_device(torch, device)
        # torch is NCHW with OIHW filters
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(dev)
        yt = torch.from_numpy(y).to(dev)
        ps = [torch.tensor(p.transpose(3, 2, 0, 1).copy() if p.ndim == 4 else p, requires_grad=True, device=dev)
              for p in params]
        opt = torch.optim.SGD(ps, lr=lr)

        def step():
            opt.zero_grad(set_to_none=True)
            h = F.max_pool2d(F.relu(F.conv2d(xt, ps[0], ps[1], padding=2)), 2)
            h = F.max_pool2d(F.relu(F.conv2d(h, ps[2], ps[3])), 2)
            h = h.reshape(h.shape[0], -1)
            h = F.relu(h @ ps[4] + ps[5])
            h = F.relu(h @ ps[6] + ps[7])
            loss = F.cross_entropy(h @ ps[8] + ps[9], yt)
            loss.backward()
            opt.step()
            finish(loss)
        return step
    if framework == "jax":
        jax = _import("jax")
        jnp = jax.numpy
        lax = jax.lax

        def conv(h, w, padding):
            return lax.conv_general_dilated(h, w, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))

        def pool(h):
            return lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

        def loss_fn(p, xb, yb):
            h = pool(jax.nn.relu(conv(xb, p[0], "SAME") + p[1]))
            h = pool(jax.nn.relu(conv(h, p[2], "VALID") + p[3]))
            h = h.reshape(h.shape[0], -1)
            h = jax.nn.relu(h @ p[4] + p[5])
            h = jax.nn.relu(h @ p[6] + p[7])
            logp = jax.nn.log_softmax(h @ p[8] + p[9])
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

        @jax.jit
        def update(p, xb, yb):
            l, g = jax.value_and_grad(loss_fn)(p, xb, yb)
            return [a - lr * b for a, b in zip(p, g)], l

        state = {"p": [jax.device_put(p) for p in params]}
        xj, yj = jax.device_put(x), jax.device_put(y.astype(np.int32))

        def step():
            state["p"], l = update(state["p"], xj, yj)
            l.block_until_ready()
        return _expose(step, jitted=update, args=lambda: (state["p"], xj, yj))
    if framework == "tf1":
        tf = _tf1()
        g = tf.Graph()
        with g.as_default():
            xp = tf.compat.v1.placeholder(tf.float32, (None, 28, 28, 1))
            yp = tf.compat.v1.placeholder(tf.int64, (None,))
            v = [tf.compat.v1.Variable(p) for p in params]
            h = tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(xp, v[0], 1, "SAME") + v[1]), 2, 2, "VALID")
            h = tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(h, v[2], 1, "VALID") + v[3]), 2, 2, "VALID")
            h = tf.reshape(h, (-1, 400))
            h = tf.nn.relu(tf.matmul(h, v[4]) + v[5])
            h = tf.nn.relu(tf.matmul(h, v[6]) + v[7])
            logits = tf.matmul(h, v[8]) + v[9]
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yp, logits=logits))
            train = tf.compat.v1.train.GradientDescentOptimizer(lr).minimize(loss)
            init = tf.compat.v1.global_variables_initializer()
        sess = tf.compat.v1.Session(graph=g)
        sess.run(init)
        return _expose(lambda: sess.run([train, loss], {xp: x, yp: y}), tf=(sess, [train, loss], {xp: x, yp: y}))
    raise Unavailable(framework)


def _tf1():
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = _import("tensorflow")
    tf.compat.v1.disable_eager_execution()
    return tf


# --- W7: LSTM training step (sequence 50, batch 32, input 64; hidden 256, and 32 for "W7-small") ---------
def _lstm_data(sizes):
    steps, batch, inputs, hidden = sizes
    rng = _rng()
    x = rng.standard_normal((batch, steps, inputs)).astype(np.float32)
    kernel = (rng.standard_normal((inputs + hidden, 4 * hidden)) * 0.05).astype(np.float32)
    bias = np.zeros(4 * hidden, np.float32)
    return x, kernel, bias


def w7(framework, sizes, device="cpu"):
    """One SGD step of an LSTM (TF1's BasicLSTMCell: gates i, j, f, o; forget bias 1) over the
    whole sequence, with a loss on the last output: forward and backward through time."""
    steps, batch, inputs, hidden = sizes
    x, kernel, bias = _lstm_data(sizes)
    lr = 0.01
    if framework == "graphc":
        import graphc as gc
        g = gc.Graph()
        with g.as_default():
            xp = gc.placeholder(gc.float32, (batch, steps, inputs), name="x")
            cell = gc.nn.rnn_cell.BasicLSTMCell(hidden)
            _, state = gc.nn.dynamic_rnn(cell, xp, dtype=gc.float32)
            loss = gc.reduce_mean(gc.square(state.h))
            train = gc.train.GradientDescent(lr).minimize(loss)
            init = gc.global_variables_initializer()
        return _graphc_step(g, train, loss, init, {xp: x}, device)
    if framework == "torch":
        torch = _import("torch")
        dev, finish = _torch_device(torch, device)
        lstm = torch.nn.LSTM(inputs, hidden, batch_first=True).to(dev)
        xt = torch.from_numpy(x).to(dev)
        opt = torch.optim.SGD(lstm.parameters(), lr=lr)

        def step():
            opt.zero_grad(set_to_none=True)
            _, (h, _) = lstm(xt)
            loss = (h[-1] ** 2).mean()
            loss.backward()
            opt.step()
            finish(loss)
        return step
    if framework == "jax":
        jax = _import("jax")
        jnp = jax.numpy

        def loss_fn(p, xb):
            w, b = p

            def cell(carry, x_t):
                c, h = carry
                z = jnp.concatenate([x_t, h], axis=1) @ w + b
                i, j, f, o = jnp.split(z, 4, axis=1)
                c = c * jax.nn.sigmoid(f + 1.0) + jax.nn.sigmoid(i) * jnp.tanh(j)
                h = jnp.tanh(c) * jax.nn.sigmoid(o)
                return (c, h), None
            zeros = jnp.zeros((xb.shape[0], hidden), xb.dtype)
            (_, h), _ = jax.lax.scan(cell, (zeros, zeros), jnp.swapaxes(xb, 0, 1))
            return jnp.mean(h * h)

        @jax.jit
        def update(p, xb):
            l, grads = jax.value_and_grad(loss_fn)(p, xb)
            return [a - lr * d for a, d in zip(p, grads)], l

        state = {"p": [jax.device_put(kernel), jax.device_put(bias)]}
        xj = jax.device_put(x)

        def step():
            state["p"], l = update(state["p"], xj)
            l.block_until_ready()
        return _expose(step, jitted=update, args=lambda: (state["p"], xj))
    if framework == "tf1":
        # TF1's dynamic_rnn builds its cells from Keras 2, which TensorFlow 2.21 no longer has:
        # the same cell in tf.scan (a tf.while_loop in graph mode, as dynamic_rnn is inside)
        tf = _tf1()
        g = tf.Graph()
        with g.as_default():
            xp = tf.compat.v1.placeholder(tf.float32, (batch, steps, inputs))
            w, b = tf.compat.v1.Variable(kernel), tf.compat.v1.Variable(bias)

            def cell(carry, x_t):
                c, h = carry
                i, j, f, o = tf.split(tf.matmul(tf.concat([x_t, h], 1), w) + b, 4, axis=1)
                c = c * tf.sigmoid(f + 1.0) + tf.sigmoid(i) * tf.tanh(j)
                return c, tf.tanh(c) * tf.sigmoid(o)
            zeros = tf.zeros((batch, hidden))
            _, hs = tf.scan(cell, tf.transpose(xp, [1, 0, 2]), initializer=(zeros, zeros))
            loss = tf.reduce_mean(tf.square(hs[-1]))
            train = tf.compat.v1.train.GradientDescentOptimizer(lr).minimize(loss)
            init = tf.compat.v1.global_variables_initializer()
        sess = tf.compat.v1.Session(graph=g)
        sess.run(init)
        return _expose(lambda: sess.run([train, loss], {xp: x}), tf=(sess, [train, loss], {xp: x}))
    raise Unavailable(framework)


# --- W8: the same LSTM cell unrolled in Python (TF1's static_rnn): 28 steps, batch 128, input 28, hidden 128 --
def w8(framework, sizes, device="cpu"):
    """One SGD step of an LSTM whose time steps are written out one by one (``static_rnn``,
    MNIST rows as the sequence), so the step is hundreds of small kernels rather than one
    loop: the shape of many TF1 programs, and the one that suffers most when threads wait on
    a busy core."""
    steps, batch, inputs, hidden = sizes
    x, kernel, bias = _lstm_data(sizes)
    lr = 0.01
    if framework == "graphc":
        import graphc as gc
        g = gc.Graph()
        with g.as_default():
            xp = gc.placeholder(gc.float32, (batch, steps, inputs), name="x")
            cell = gc.nn.rnn_cell.BasicLSTMCell(hidden)
            _, state = gc.nn.static_rnn(cell, gc.unstack(xp, steps, axis=1), dtype=gc.float32)
            loss = gc.reduce_mean(gc.square(state.h))
            train = gc.train.GradientDescent(lr).minimize(loss)
            init = gc.global_variables_initializer()
        return _graphc_step(g, train, loss, init, {xp: x}, device)
    if framework == "torch":
        torch = _import("torch")
        dev, finish = _torch_device(torch, device)
        cell = torch.nn.LSTMCell(inputs, hidden).to(dev)
        xt = torch.from_numpy(x).to(dev)
        opt = torch.optim.SGD(cell.parameters(), lr=lr)

        def step():
            opt.zero_grad(set_to_none=True)
            h = c = torch.zeros(batch, hidden, device=dev)
            for t in range(steps):
                h, c = cell(xt[:, t], (h, c))
            loss = (h ** 2).mean()
            loss.backward()
            opt.step()
            finish(loss)
        return step
    if framework == "jax":
        jax = _import("jax")
        jnp = jax.numpy

        def loss_fn(p, xb):
            w, b = p
            c = h = jnp.zeros((xb.shape[0], hidden), xb.dtype)
            for t in range(steps):  # unrolled at trace time, as static_rnn is
                i, j, f, o = jnp.split(jnp.concatenate([xb[:, t], h], axis=1) @ w + b, 4, axis=1)
                c = c * jax.nn.sigmoid(f + 1.0) + jax.nn.sigmoid(i) * jnp.tanh(j)
                h = jnp.tanh(c) * jax.nn.sigmoid(o)
            return jnp.mean(h * h)

        @jax.jit
        def update(p, xb):
            l, grads = jax.value_and_grad(loss_fn)(p, xb)
            return [a - lr * d for a, d in zip(p, grads)], l

        state = {"p": [jax.device_put(kernel), jax.device_put(bias)]}
        xj = jax.device_put(x)

        def step():
            state["p"], l = update(state["p"], xj)
            l.block_until_ready()
        return step
    if framework == "tf1":
        tf = _tf1()
        g = tf.Graph()
        with g.as_default():
            xp = tf.compat.v1.placeholder(tf.float32, (batch, steps, inputs))
            w, b = tf.compat.v1.Variable(kernel), tf.compat.v1.Variable(bias)
            c = h = tf.zeros((batch, hidden))
            for x_t in tf.unstack(xp, steps, axis=1):
                i, j, f, o = tf.split(tf.matmul(tf.concat([x_t, h], 1), w) + b, 4, axis=1)
                c = c * tf.sigmoid(f + 1.0) + tf.sigmoid(i) * tf.tanh(j)
                h = tf.tanh(c) * tf.sigmoid(o)
            loss = tf.reduce_mean(tf.square(h))
            train = tf.compat.v1.train.GradientDescentOptimizer(lr).minimize(loss)
            init = tf.compat.v1.global_variables_initializer()
        sess = tf.compat.v1.Session(graph=g)
        sess.run(init)
        return lambda: sess.run([train, loss], {xp: x})
    raise Unavailable(framework)

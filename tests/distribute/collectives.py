"""Run by tests/distribute/test_mpi.py on N ranks: every collective's values against NumPy,
fusion into several buffers of mixed dtypes, and every gradient against central finite
differences in float64 of the sum over the ranks of each rank's loss (Horovod's meaning of a
collective's gradient). Prints one "ok <check>" line per check from rank 0.

    mpiexec -n N python collectives.py DEVICE
"""
import sys

import numpy as np

import graphc as gc
import graphc.distribute as hvd


def main(device: str) -> None:
    hvd.init()
    r, n = hvd.rank(), hvd.size()
    say = (lambda text: print(f"ok {text}", flush=True)) if r == 0 else (lambda text: None)
    from graphc.distribute import world
    say("all-reduce through " + ("a shared window" if world.current().shared is not None else "MPI"))
    rng = np.random.default_rng(0)
    everyone = [rng.normal(size=(r_ + 1, 3)) for r_ in range(n)]  # rank r_ has r_ + 1 rows
    mine = everyone[r]
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float64, (None, 3), name="x")
        w = gc.placeholder(gc.float64, (2, 3), name="w")        # same first dim on every rank
        ints = gc.placeholder(gc.int32, (4,), name="ints")
        f32 = gc.placeholder(gc.float32, (5,), name="f32")
        gathered = hvd.allgather(x)
        total, mean = hvd.allreduce(w, op=hvd.Sum), hvd.allreduce(w)
        from_root = hvd.broadcast(w, root_rank=n - 1)
        fused = hvd.grouped_allreduce([w, ints, f32, w * 2.0], op=hvd.Sum)
        ws = [rng.normal(size=(2, 3)) for _ in range(n)]
        iv = [np.arange(4, dtype=np.int32) * (q + 1) for q in range(n)]
        fv = [np.linspace(0, 1, 5).astype(np.float32) + q for q in range(n)]
        feed = {x: mine, w: ws[r], ints: iv[r], f32: fv[r]}
        with gc.Session(device=device) as sess:
            out = sess.run([gathered, total, mean, from_root, fused], feed)
            np.testing.assert_array_equal(out[0], np.concatenate(everyone))
            np.testing.assert_allclose(out[1], sum(ws), rtol=1e-12)
            np.testing.assert_allclose(out[2], sum(ws) / n, rtol=1e-12)
            np.testing.assert_array_equal(out[3], ws[n - 1])
            np.testing.assert_allclose(out[4][0], sum(ws), rtol=1e-12)
            np.testing.assert_array_equal(out[4][1], sum(iv))
            np.testing.assert_allclose(out[4][2], sum(fv), rtol=1e-6)
            np.testing.assert_allclose(out[4][3], 2 * sum(ws), rtol=1e-12)
            say(f"values on {device}")

            # results written over the tensors the kernels made (optimizer/memory.py), started
            # in buckets as each is made (a threshold of 8 bytes: every tensor its own bucket),
            # run twice: a run must not reduce what the last one left in those buffers
            a, b, c = w * 3.0, gc.matmul(w, gc.transpose(w)), gc.reduce_sum(gc.exp(w), axis=0)
            buckets = hvd.grouped_allreduce([a, b, c], op=hvd.Sum)
            import os
            threshold = os.environ.get("HOROVOD_FUSION_THRESHOLD")
            os.environ["HOROVOD_FUSION_THRESHOLD"] = "8"
            for _ in range(2):
                got = sess.run(buckets + [b], feed)
                np.testing.assert_allclose(got[0], 3 * sum(ws), rtol=1e-12)
                np.testing.assert_allclose(got[1], sum(q @ q.T for q in ws), rtol=1e-12)
                np.testing.assert_allclose(got[2], sum(np.exp(q).sum(0) for q in ws), rtol=1e-12)
                np.testing.assert_allclose(got[3], ws[r] @ ws[r].T, rtol=1e-12)  # fetched too: not overwritten
                got = sess.run(buckets, feed)
                np.testing.assert_allclose(got[1], sum(q @ q.T for q in ws), rtol=1e-12)
            if threshold is None:
                del os.environ["HOROVOD_FUSION_THRESHOLD"]
            else:
                os.environ["HOROVOD_FUSION_THRESHOLD"] = threshold
            say(f"buckets in place on {device}")

            # gradients: rank q's loss L_q mixes every collective; the gradient each rank
            # computes is d(sum over ranks of L_q)/d(its own inputs)
            c = np.arange(1.0, 7.0).reshape(2, 3) * (r + 1)
            loss = (gc.reduce_sum(gc.sin(hvd.allreduce(w * w)) * c) + gc.reduce_sum(hvd.allgather(x) ** 2) * (r + 1)
                    + gc.reduce_sum(hvd.broadcast(w, 0) * w) + gc.reduce_sum(hvd.allreduce(x[:1] * 3.0, op=hvd.Sum)))
            everything = hvd.allreduce(loss, op=hvd.Sum)
            dx, dw = gc.gradients(loss, [x, w])
            got_dx, got_dw = sess.run([dx, dw], feed)
            eps = 1e-6
            for name, value, got in (("x", mine, got_dx), ("w", ws[r], got_dw)):
                for q in range(n):  # rank q's element i moves; every rank measures the total
                    rows = everyone[q].shape[0] if name == "x" else 2
                    for i in range(rows * 3):
                        totals = []
                        for sign in (1.0, -1.0):
                            moved = dict(feed)
                            if r == q:
                                bumped = value.copy()
                                bumped.reshape(-1)[i] += sign * eps
                                moved[x if name == "x" else w] = bumped
                            totals.append(sess.run(everything, moved))
                        numeric = (totals[0] - totals[1]) / (2 * eps)
                        if r == q:
                            np.testing.assert_allclose(got.reshape(-1)[i], numeric, rtol=1e-5, atol=1e-6,
                                                       err_msg=f"d/d{name}[{i}] on rank {q}")
            say(f"gradients on {device}")
    random_allreduces(r, n, say)
    print(f"rank {r}: done", flush=True)


def random_allreduces(r: int, n: int, say) -> None:
    """The host all-reduce (shared window or MPI), fuzzed: rounds of 1-4 buckets started
    together and waited for in order, of random dtypes, shapes (empty ones too) and sizes (up
    to 80,000 elements, so the window grows mid-run), sums and averages, some received in
    place. Rank q's array is q + 1 times a round's integer base, so the exact result is known."""
    from graphc.distribute import world
    w = world.current()
    rng = np.random.default_rng(2024)  # the same draws on every rank: the ranks run the same collectives
    for round_ in range(40):
        buckets = []
        for b in range(int(rng.integers(1, 5))):
            big = rng.random() < 0.15
            arrays, in_place, bases = [], [], []
            for _ in range(int(rng.integers(1, 5))):
                dtype = np.dtype(rng.choice(["float32", "float64", "int32", "int64"]))
                shape = (int(rng.integers(0, 80_000)),) if big else tuple(int(d) for d in rng.integers(0, 7, rng.integers(0, 3)))
                base = rng.integers(-50, 50, size=shape).astype(dtype)
                arrays.append(np.array(base * (r + 1), dtype=dtype))  # (an array also when 0-d)
                bases.append(base)
                in_place.append(bool(rng.random() < 0.5))
            average = all(a.dtype.kind == "f" for a in arrays) and bool(rng.random() < 0.5)
            pending = w.start_allreduce(arrays, average, f"fuzz round {round_} bucket {b}", in_place=in_place)
            buckets.append((arrays, bases, in_place, average, pending))
        for arrays, bases, in_place, average, pending in buckets:
            got = w.finish(pending)
            for k, (a, base, flag, out) in enumerate(zip(arrays, bases, in_place, got)):
                want = base * (n * (n + 1) // 2)
                if average:
                    want = want / n
                assert out.dtype == a.dtype and out.shape == a.shape, (round_, k, out.dtype, out.shape)
                if flag:
                    assert out is a, (round_, k, "an in-place result is the array itself")
                np.testing.assert_allclose(out, want.astype(a.dtype), rtol=1e-6, err_msg=f"round {round_} array {k}")
    if w.shared is not None:  # the window grew mid-run, and buckets that found no room went through MPI
        assert w.shared.grown >= 2 and w.shared.through_mpi >= 1, (w.shared.grown, w.shared.through_mpi)
    say("random all-reduces")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cpu")

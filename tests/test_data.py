"""gc.data (TF1's tf.data): pipelines against the same data in NumPy, iterators filled by the
Session (one element per run that needs them), OutOfRangeError at the end, initializable and
reinitializable iterators, errors that name the pipeline stage, and training on a Dataset
giving the same weights as the same steps fed by hand."""
import numpy as np
import pytest

import graphc as gc
from support import build_error


@pytest.fixture(autouse=True)
def fresh_graph():
    with gc.Graph().as_default() as g:
        yield g


def drain(fetch, sess=None, feed_dict=None):
    sess = sess or gc.Session(device="reference")
    out = []
    while True:
        try:
            out.append(sess.run(fetch, feed_dict))
        except gc.errors.OutOfRangeError:
            return out


X = np.arange(20, dtype=np.float32).reshape(10, 2)
Y = np.arange(10, dtype=np.int64)


def test_slices_map_filter_batch_against_numpy():
    ds = (gc.data.Dataset.from_tensor_slices({"x": X, "y": Y})
          .map(lambda e: {"x": e["x"] * 2.0, "y": e["y"] + 1})
          .filter(lambda e: gc.equal(gc.floormod(e["y"], 2), 0))
          .batch(2))
    assert ds.output_shapes == {"x": (None, 2), "y": (None,)} and ds.output_types == {"x": gc.float32, "y": gc.int64}
    batches = drain(ds.make_one_shot_iterator().get_next())
    keep = (Y + 1) % 2 == 0
    xs, ys = X[keep] * 2, Y[keep] + 1
    assert [len(b["y"]) for b in batches] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([b["x"] for b in batches]), xs)
    np.testing.assert_array_equal(np.concatenate([b["y"] for b in batches]), ys)


def test_repeat_take_skip_shard_cache_concatenate_zip_range():
    r = gc.data.Dataset.range(6)
    cases = {
        "repeat": (r.repeat(2), list(range(6)) * 2),
        "take_skip": (r.skip(1).take(3), [1, 2, 3]),
        "shard": (r.shard(3, 1), [1, 4]),
        "cache_repeat": (r.map(lambda v: v * 10).cache().repeat(2), [0, 10, 20, 30, 40, 50] * 2),
        "concatenate": (r.take(2).concatenate(gc.data.Dataset.range(7, 9)), [0, 1, 7, 8]),
        "range_step": (gc.data.Dataset.range(1, 8, 3), [1, 4, 7]),
    }
    for name, (ds, want) in cases.items():
        assert [int(v) for v in drain(ds.make_one_shot_iterator().get_next())] == want, name
    zipped = gc.data.Dataset.zip((r, r.map(lambda v: gc.cast(v, gc.float32) / 2))).batch(4, drop_remainder=True)
    assert zipped.output_shapes == ((4,), (4, ))
    (a, b), = drain(zipped.make_one_shot_iterator().get_next())
    np.testing.assert_array_equal(b, a / 2)
    with pytest.raises(ValueError, match="index must be in"):
        r.shard(2, 2)


def test_shuffle_is_a_permutation_reproducible_by_seed_and_reshuffled_each_pass():
    def orders(seed, reshuffle=True):
        ds = gc.data.Dataset.range(50).shuffle(10, seed=seed, reshuffle_each_iteration=reshuffle).repeat(2)
        values = [int(v) for v in drain(ds.make_one_shot_iterator().get_next())]
        return values[:50], values[50:]
    first, second = orders(3)
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert first != list(range(50)) and first != second
    assert orders(3) == (first, second)
    same_a, same_b = orders(3, reshuffle=False)
    assert same_a == same_b
    # a buffer of 10 moves no element more than ~10 places early
    assert all(v <= i + 10 for i, v in enumerate(first))


def test_one_run_one_element_and_runs_that_do_not_need_it_do_not_advance():
    nxt = gc.data.Dataset.range(5).make_one_shot_iterator().get_next()
    doubled = nxt * 2
    other = gc.constant(7)
    with gc.Session(device="reference") as sess:
        assert sess.run([nxt, doubled]) == [0, 0]  # both from one element
        assert sess.run(other) == 7
        assert sess.run(doubled) == 2
        assert sess.run(nxt, {nxt: 40}) == 40  # a fed value: the iterator does not move
        assert sess.run(nxt) == 2
        call = sess.make_callable(doubled)
        assert [call(), call()] == [6, 8]
        with pytest.raises(gc.errors.OutOfRangeError, match="no more elements"):
            call()
        with pytest.raises(gc.errors.OutOfRangeError):  # and it stays at the end
            sess.run(nxt)
    with gc.Session(device="reference") as sess:  # each Session has its own position
        assert sess.run(nxt) == 0


def test_initializable_iterator_over_placeholders_and_reinitializable_iterators():
    features = gc.placeholder(gc.float32, (None, 2))
    ds = gc.data.Dataset.from_tensor_slices(features).batch(4)
    it = ds.make_initializable_iterator()
    total = gc.reduce_sum(it.get_next())
    with gc.Session(device="reference") as sess:
        build_error(gc.FailedPreconditionError, lambda: sess.run(total), "has not been initialized",
                    "test_data.py")
        sess.run(it.initializer, {features: X})
        assert [float(v) for v in drain(total, sess)] == [X[:4].sum(), X[4:8].sum(), X[8:].sum()]
        sess.run(it.initializer, {features: X[:3]})  # restart, with other data
        assert drain(total, sess) == [X[:3].sum()]

    train = gc.data.Dataset.from_tensor_slices((X, Y)).batch(5)
    valid = gc.data.Dataset.from_tensor_slices((X[:2] + 100, Y[:2])).batch(5)
    it = gc.data.Iterator.from_structure(train.output_types, train.output_shapes)
    x, y = it.get_next()
    train_init, valid_init = it.make_initializer(train), it.make_initializer(valid)
    with gc.Session(device="reference") as sess:
        sess.run(train_init)
        assert len(drain(x, sess)) == 2
        sess.run(valid_init)
        (only,) = drain(x, sess)
        np.testing.assert_array_equal(only, X[:2] + 100)
    build_error(gc.ShapeError, lambda: it.make_initializer(gc.data.Dataset.range(3)), "do not fit")


def test_generators_and_pipeline_errors_name_the_stage():
    def rows():
        yield np.ones(3, np.float32), 1
        yield np.ones(3, np.float32), 2
        yield np.ones(4, np.float32), 3  # the wrong length
    ds = gc.data.Dataset.from_generator(rows, (gc.float32, gc.int64), ([3], []))
    v, k = ds.make_one_shot_iterator().get_next()
    with gc.Session(device="reference") as sess:
        assert sess.run(k) == 1 and sess.run(k) == 2
        with pytest.raises(gc.InvalidArgumentError, match=r"has shape \(4,\), expected \(3,\)"):
            sess.run(v)
    build_error(gc.ShapeError, lambda: gc.data.Dataset.from_generator(rows, (gc.float32, gc.int64)),
                "give output_shapes")
    ragged = gc.data.Dataset.from_generator(lambda: iter([np.ones(2), np.ones(3)]), gc.float64, [None]).batch(2)
    with pytest.raises(gc.InvalidArgumentError, match=r"batch \(made at .*test_data.py.*different shapes"):
        gc.Session(device="reference").run(ragged.make_one_shot_iterator().get_next())
    failing = gc.data.Dataset.from_generator(lambda: (1 / 0 for _ in range(1)), gc.float32, [])
    with pytest.raises(gc.InvalidArgumentError, match="ZeroDivisionError"):
        gc.Session(device="reference").run(failing.make_one_shot_iterator().get_next())
    build_error(gc.ShapeError, lambda: gc.data.Dataset.range(3).map(lambda v: v.no_such_method()), "map",
                "graph functions")
    build_error(gc.ShapeError, lambda: gc.data.Dataset.range(3).filter(lambda v: v + 1), "scalar bool")
    build_error(gc.ShapeError, lambda: gc.data.Dataset.from_tensor_slices((X, Y[:3])), "different first")
    with pytest.raises(TypeError, match="iterated in a Session"):
        iter(gc.data.Dataset.range(3))


def _model():
    x = gc.placeholder(gc.float32, (None, 2), name="x")
    y = gc.placeholder(gc.float32, (None,), name="y")
    w = gc.Variable(np.array([[0.5], [-0.25]], np.float32), name="w")
    loss = gc.reduce_mean(gc.square(gc.reshape(gc.matmul(x, w), [-1]) - y))
    return x, y, w, gc.train.GradientDescentOptimizer(0.001).minimize(loss)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_training_on_a_dataset_equals_the_same_steps_fed_by_hand(device):
    targets = Y.astype(np.float32)
    with gc.Graph().as_default():
        x, y, w, train = _model()
        with gc.Session(device=device) as sess:
            sess.run(gc.global_variables_initializer())
            for epoch in range(2):
                for start in range(0, 10, 4):
                    sess.run(train, {x: X[start:start + 4], y: targets[start:start + 4]})
            by_hand = sess.run(w)
    with gc.Graph().as_default():
        ds = gc.data.Dataset.from_tensor_slices((X, targets)).batch(4).repeat(2).prefetch(2)
        bx, by = ds.make_one_shot_iterator().get_next()
        x, y, w, train = _model()
        with gc.Session(device=device) as sess:
            sess.run(gc.global_variables_initializer())
            steps = 0
            while True:
                try:
                    # TF1's way to put a dataset into a model made of placeholders: feed the
                    # iterator's tensors, or build the model on them (below)
                    bx_v, by_v = sess.run([bx, by])
                    sess.run(train, {x: bx_v, y: by_v})
                    steps += 1
                except gc.errors.OutOfRangeError:
                    break
            assert steps == 6
            np.testing.assert_allclose(sess.run(w), by_hand, rtol=1e-6)
    with gc.Graph().as_default():
        bx, by = gc.data.Dataset.from_tensor_slices((X, targets)).batch(4).repeat(2).make_one_shot_iterator() \
            .get_next()
        w = gc.Variable(np.array([[0.5], [-0.25]], np.float32), name="w")
        loss = gc.reduce_mean(gc.square(gc.reshape(gc.matmul(bx, w), [-1]) - by))
        train = gc.train.GradientDescentOptimizer(0.001).minimize(loss)
        with gc.Session(device=device) as sess:
            sess.run(gc.global_variables_initializer())
            assert len(drain(train, sess)) == 6
            np.testing.assert_allclose(sess.run(w), by_hand, rtol=1e-6)


def test_pipeline_threads_stop_with_their_session_and_threads_share_one_pass():
    import threading
    import time
    nxt = gc.data.Dataset.range(1000).repeat().make_one_shot_iterator().get_next()
    before = {t for t in threading.enumerate() if t.name.startswith("gc.data")}
    sess = gc.Session(device="reference")
    sess.run(nxt)
    assert len({t for t in threading.enumerate() if t.name.startswith("gc.data")} - before) == 1
    sess.close()
    time.sleep(0.5)
    assert not {t for t in threading.enumerate() if t.name.startswith("gc.data") and t.is_alive()} - before
    # two threads' first runs start one pass: each element goes to exactly one run
    once = gc.data.Dataset.range(200).make_one_shot_iterator().get_next()
    with gc.Session(device="reference") as shared:
        seen = []

        def take():
            for _ in range(50):
                seen.append(int(shared.run(once)))
        workers = [threading.Thread(target=take) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert sorted(seen) == list(range(200))


def test_a_failing_generator_names_its_line_and_unseeded_shuffles_keep_their_order_when_asked():
    def rows():
        yield 1.0
        raise KeyError("missing row")  # the line the error names
    nxt = gc.data.Dataset.from_generator(rows, gc.float32, []).make_one_shot_iterator().get_next()
    with gc.Session(device="reference") as sess:
        sess.run(nxt)
        with pytest.raises(gc.InvalidArgumentError, match=r"test_data.py:\d+\): KeyError") as info:
            sess.run(nxt)
    assert isinstance(info.value.__cause__, KeyError)
    ds = gc.data.Dataset.range(30).shuffle(30, reshuffle_each_iteration=False).repeat(2)
    values = [int(v) for v in drain(ds.make_one_shot_iterator().get_next())]
    assert values[:30] == values[30:] and values[:30] != list(range(30))

    def program(graph_seed):  # the graph seed makes unseeded shuffles reproducible
        with gc.Graph().as_default():
            gc.set_random_seed(graph_seed)
            return [int(v) for v in drain(gc.data.Dataset.range(30).shuffle(30).make_one_shot_iterator().get_next())]
    assert program(5) == program(5) != program(6)

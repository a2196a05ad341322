"""Checkpoints: gc.train.Saver, latest_checkpoint, and what a crash or a bad file does."""
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import file_damage
import graphc as gc


def _model(graph):
    with graph.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        w = gc.Variable(np.arange(6, dtype=np.float32).reshape(3, 2), name="w")
        b = gc.Variable(np.zeros(2, np.float32), name="b")
        loss = gc.reduce_mean(gc.square(x @ w + b))
        step = gc.train.get_or_create_global_step()
        train = gc.train.Adam(0.1).minimize(loss, global_step=step)
    return x, w, b, step, train


def _values(sess, graph):
    return {v.var_name: sess.run(v) for v in gc.global_variables(graph)}


def test_save_and_restore_every_variable_including_optimizer_slots(graph, device, tmp_path):
    x, w, b, step, train = _model(graph)
    names = {v.var_name for v in gc.global_variables(graph)}
    assert any("Adam" in n for n in names)  # slots are global variables, and saved
    saver = gc.train.Saver()
    xv = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    with gc.Session(graph=graph, device=device) as sess:
        sess.run(gc.global_variables_initializer())
        for _ in range(3):
            sess.run(train, {x: xv})
        path = saver.save(sess, str(tmp_path / "model"), global_step=step)
        saved = _values(sess, graph)
    assert path.endswith("model-3.gcckpt") and os.path.isfile(path)
    assert gc.train.latest_checkpoint(str(tmp_path)) == path
    with gc.Session(graph=graph, device=device) as fresh:
        saver.restore(fresh, gc.train.latest_checkpoint(str(tmp_path)))
        restored = _values(fresh, graph)
        assert restored.keys() == saved.keys()
        for k in saved:
            np.testing.assert_array_equal(restored[k], saved[k])
            assert restored[k].dtype == saved[k].dtype and restored[k].shape == saved[k].shape
        # training goes on from the restored state exactly as it would have
        fresh.run(train, {x: xv})
        assert fresh.run(step) == 4


def test_max_to_keep_deletes_the_oldest(graph, tmp_path):
    _model(graph)
    saver = gc.train.Saver(max_to_keep=2)
    with gc.Session(graph=graph, device="reference") as sess:
        sess.run(gc.global_variables_initializer())
        paths = [saver.save(sess, str(tmp_path / "ckpt"), global_step=i) for i in range(5)]
    # each checkpoint has its meta graph beside it (TF1's Saver writes both), deleted with it
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "ckpt-3.gcckpt", "ckpt-3.meta", "ckpt-4.gcckpt",
                                            "ckpt-4.meta"]
    assert saver.last_checkpoints == paths[-2:]
    assert gc.train.latest_checkpoint(str(tmp_path)) == paths[-1]
    state = json.loads((tmp_path / "checkpoint").read_text())
    assert state["model_checkpoint_path"] == "ckpt-4.gcckpt"


def test_latest_checkpoint_of_an_empty_directory_is_none(tmp_path):
    assert gc.train.latest_checkpoint(str(tmp_path)) is None
    (tmp_path / "checkpoint").write_text("{not json")
    assert gc.train.latest_checkpoint(str(tmp_path)) is None


def test_restoring_into_a_mismatched_graph_names_every_mismatch(tmp_path):
    g1 = gc.Graph()
    with g1.as_default():
        gc.Variable(np.ones((3, 2), np.float32), name="w")
        gc.Variable(np.ones(2, np.float32), name="b")
        saver = gc.train.Saver()
    with gc.Session(graph=g1, device="reference") as sess:
        sess.run(gc.variables_initializer(gc.global_variables(g1)))
        path = saver.save(sess, str(tmp_path / "m"))
    g2 = gc.Graph()
    with g2.as_default():
        w = gc.Variable(np.full((4, 2), 7, np.float32), name="w")          # other shape
        b = gc.Variable(np.full(2, 7, np.int32), name="b")                 # other dtype
        extra = gc.Variable(np.full(5, 7, np.float32), name="extra")       # not saved
        saver2 = gc.train.Saver()
    with gc.Session(graph=g2, device="reference") as sess:
        sess.run(gc.variables_initializer(gc.global_variables(g2)))
        with pytest.raises(gc.train.CheckpointError) as info:
            saver2.restore(sess, path)
        text = str(info.value)
        assert "'w'" in text and "[4, 2]" in text and "[3, 2]" in text
        assert "'b'" in text and "int32" in text and "float32" in text
        assert "'extra'" in text and "not in the checkpoint" in text
        # nothing was changed
        for v, want in ((w, 7), (b, 7), (extra, 7)):
            assert np.all(sess.run(v) == want)


def test_var_list_as_a_dict_renames(graph, tmp_path):
    with graph.as_default():
        v = gc.Variable(np.arange(3, dtype=np.float64), name="local_name")
    saver = gc.train.Saver({"stored_name": v})
    with gc.Session(graph=graph, device="reference") as sess:
        sess.run(v.initializer)
        path = saver.save(sess, str(tmp_path / "d"))
    assert set(gc.train.read_checkpoint(path)) == {"stored_name"}


def _valid_checkpoint(tmp_path):
    g = gc.Graph()
    with g.as_default():
        gc.Variable(np.arange(4, dtype=np.float32), name="w")
        saver = gc.train.Saver()
    with gc.Session(graph=g, device="reference") as sess:
        sess.run(gc.variables_initializer(gc.global_variables(g)))
        return saver.save(sess, str(tmp_path / "good"))


def _rewrite(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "no_index", "bad_json", "future_version", "object_dtype",
                                    "wrong_size", "pickled_npy", "huge_dim", "wrapping_dims", "compressed",
                                    # these once escaped as RecursionError, tokenize.TokenError, MemoryError
                                    # and NotImplementedError (tests/file_damage.py)
                                    "nested_index", "untokenizable_npy_header", "huge_npy_header", "zip_version"])
def test_damaged_checkpoints_are_a_clear_error(tmp_path, damage):
    path = _valid_checkpoint(tmp_path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    index = json.loads(members["index.json"])
    if damage == "garbage":
        open(path, "wb").write(b"\x00not a zip at all" * 10)
    elif damage == "truncated":
        data = open(path, "rb").read()
        open(path, "wb").write(data[:len(data) // 2])
    elif damage == "no_index":
        del members["index.json"]
        _rewrite(path, members)
    elif damage == "bad_json":
        members["index.json"] = b"{\"format\": "
        _rewrite(path, members)
    elif damage == "future_version":
        index["version"] = 99
        members["index.json"] = json.dumps(index)
        _rewrite(path, members)
    elif damage == "object_dtype":
        index["variables"][0]["dtype"] = "|O"
        members["index.json"] = json.dumps(index)
        _rewrite(path, members)
    elif damage in ("wrong_size", "huge_dim", "wrapping_dims"):
        # (2**33 * 2**31 wraps to 0 in int64 arithmetic; 2**70 does not fit in it at all)
        index["variables"][0]["shape"] = {"wrong_size": [400000], "huge_dim": [2 ** 70],
                                          "wrapping_dims": [2 ** 33, 2 ** 31]}[damage]
        members["index.json"] = json.dumps(index)
        _rewrite(path, members)
    elif damage == "nested_index":
        members["index.json"] = file_damage.nested_json(100_000, '{"a":')
        _rewrite(path, members)
    elif damage == "untokenizable_npy_header":
        members["v0.npy"] = file_damage.npy_with_header(file_damage.UNTOKENIZABLE_HEADER, b"\0" * 16)
        _rewrite(path, members)
    elif damage == "huge_npy_header":
        members["v0.npy"] = file_damage.huge_npy()
        _rewrite(path, members)
    elif damage == "zip_version":
        data = open(path, "rb").read()
        open(path, "wb").write(file_damage.bump_zip_version(data, "v0.npy"))
    elif damage == "compressed":  # a compressed member could claim any size in a few bytes
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in members.items():
                z.writestr(name, data)
    else:  # an .npy holding a pickled object array: must never be unpickled
        import io
        buf = io.BytesIO()
        np.save(buf, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
        members["v0.npy"] = buf.getvalue()
        index["variables"][0]["shape"] = [2]
        index["variables"][0]["dtype"] = "<f8"
        members["index.json"] = json.dumps(index)
        _rewrite(path, members)
    with pytest.raises(gc.train.CheckpointError) as info:
        gc.train.read_checkpoint(path)
    assert path in str(info.value) or "good" in str(info.value)


def test_the_state_file_cannot_point_outside_its_directory(tmp_path):
    _valid_checkpoint(tmp_path)
    outside = tmp_path.parent / "elsewhere.gcckpt"
    (tmp_path / "checkpoint").write_text(json.dumps({"all_model_checkpoint_paths": [str(outside), "../x.gcckpt"]}))
    assert gc.train.latest_checkpoint(str(tmp_path)) is None


# -- a crash while saving loses nothing ------------------------------------------------------------
SAVER_LOOP = textwrap.dedent("""
    import sys
    import numpy as np
    import graphc as gc
    directory = sys.argv[1]
    start = int(sys.argv[2])
    g = gc.Graph()
    with g.as_default():
        w = gc.Variable(np.zeros((256, 256), np.float32), name="w")
        b = gc.Variable(np.zeros(300, np.int64), name="b")
        saver = gc.train.Saver(max_to_keep=3)
    with gc.Session(graph=g, device="reference") as sess:
        print("ready", flush=True)
        step = start
        while True:
            w.load(np.full((256, 256), step, np.float32), sess)
            b.load(np.arange(300) + step, sess)
            saver.save(sess, directory + "/model", global_step=step)
            step += 1
""")


def test_killing_a_saving_process_never_loses_the_latest_checkpoint(tmp_path):
    script = tmp_path / "loop.py"
    script.write_text(SAVER_LOOP)
    directory = tmp_path / "ckpts"
    directory.mkdir()
    rng = random.Random(0)
    step, kills = 0, 12
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, str(script), str(directory), str(step)], stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        latest = gc.train.latest_checkpoint(str(directory))
        if latest is None:  # only before the first save ever completed: never lost afterwards
            assert step == 0, "the checkpoint list was lost or damaged by a kill"
            continue
        stored = gc.train.read_checkpoint(latest)  # whole and readable, every time
        k = int(latest.rsplit("-", 1)[1].split(".")[0])
        np.testing.assert_array_equal(stored["w"], np.full((256, 256), k, np.float32))
        np.testing.assert_array_equal(stored["b"], np.arange(300) + k)
        step = k + 1
        # never more than max_to_keep (+ the one being written when killed) on disk
        assert len([p for p in os.listdir(directory) if p.endswith(".gcckpt")]) <= 4
        # and the next save sweeps away what a killed writer left half-written
        assert len([p for p in os.listdir(directory) if p.startswith(".graphc-tmp-")]) <= 1
    assert step > 0, "no checkpoint was ever completed: the kills came too early to test anything"


def test_a_save_sweeps_temporaries_that_dead_writers_left(tmp_path):
    from graphc import files
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = files.host_tag()
    left = tmp_path / f".graphc-tmp-{host}-{int(dead.stdout)}-abc"
    mine = tmp_path / f".graphc-tmp-{host}-{os.getpid()}-abc"
    other_host = tmp_path / f".graphc-tmp-{'0' * 8 if host != '0' * 8 else '1' * 8}-{int(dead.stdout)}-abc"
    for p in (left, mine, other_host):
        p.write_bytes(b"half")
    g = gc.Graph()
    with g.as_default():
        gc.Variable(np.zeros(3, np.float32), name="v")
        saver = gc.train.Saver()
        init = gc.global_variables_initializer()
    with gc.Session(graph=g, device="reference") as sess:
        sess.run(init)
        saver.save(sess, str(tmp_path / "m"), global_step=1)
    assert not left.exists() and mine.exists() and other_host.exists()

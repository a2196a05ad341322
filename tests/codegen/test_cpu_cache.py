"""The on-disk kernel cache: a second process loads instead of compiling, damaged entries
are rebuilt, concurrent cold processes agree, and the CLI shows and clears it."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent("""
    import json, sys
    import numpy as np
    import graphc as gc
    from graphc.codegen.cpu import cache
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 4), name="x")
        y = gc.reduce_sum(gc.tanh(x * 3.0) + 1.0, axis=1)
    with gc.Session(graph=g, device="cpu") as sess:
        out = sess.run(y, {x: np.arange(8, dtype=np.float32).reshape(2, 4) / 8})
    print(json.dumps({"out": out.tolist(), "stats": cache.STATS}))
""")
EXPECTED = [float(v) for v in (__import__("numpy").tanh(
    __import__("numpy").arange(8, dtype="float32").reshape(2, 4) / 8 * 3.0) + 1.0).sum(axis=1)]


def _run(cache_dir, code=PROGRAM):
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _start(cache_dir):
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(cache_dir))
    return subprocess.Popen([sys.executable, "-c", PROGRAM], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def test_second_process_loads_instead_of_compiling(tmp_path):
    first = _run(tmp_path)
    assert first["stats"]["compiled"] >= 1 and first["stats"]["loaded"] == 0
    second = _run(tmp_path)
    assert second["stats"]["compiled"] == 0 and second["stats"]["loaded"] == first["stats"]["compiled"]
    assert second["out"] == pytest.approx(EXPECTED, rel=1e-6) and first["out"] == second["out"]


def test_truncated_generated_source_is_rebuilt(tmp_path):
    _run(tmp_path)
    sources = list((tmp_path / "kernels").glob("*/g_*.py"))
    assert sources
    for path in sources:
        path.write_text(path.read_text()[: len(path.read_text()) // 2])
    again = _run(tmp_path)
    assert again["stats"]["rebuilt"] >= 1
    assert again["out"] == pytest.approx(EXPECTED, rel=1e-6)


def test_truncated_numba_cache_entry_is_rebuilt(tmp_path):
    _run(tmp_path)
    entries = list((tmp_path / "kernels").glob("*/__pycache__/*.nbc"))
    assert entries
    for path in entries:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    again = _run(tmp_path)
    assert again["out"] == pytest.approx(EXPECTED, rel=1e-6)
    assert again["stats"]["rebuilt"] + again["stats"]["compiled"] >= 1


def test_two_cold_processes_at_once_both_give_correct_results(tmp_path):
    procs = [_start(tmp_path) for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    for r in results:
        assert r["out"] == pytest.approx(EXPECTED, rel=1e-6)
    # under the file lock, whichever comes second loads what the first compiled
    assert min(r["stats"]["compiled"] for r in results) == 0
    assert max(r["stats"]["compiled"] for r in results) >= 1


def test_cache_cli_info_and_clear(tmp_path):
    _run(tmp_path)
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path))
    info = subprocess.run([sys.executable, "-m", "graphc", "cache", "info"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert info.returncode == 0 and str(tmp_path) in info.stdout and "generated kernels" in info.stdout
    assert "numba=" in info.stdout and "llvmlite=" in info.stdout and "graphc=" in info.stdout
    cleared = subprocess.run([sys.executable, "-m", "graphc", "cache", "clear"], capture_output=True, text=True,
                             env=env, timeout=120)
    assert cleared.returncode == 0 and "removed" in cleared.stdout
    assert not (tmp_path / "kernels").exists()


def _flip_bits(path, rng, count):
    data = bytearray(path.read_bytes())
    for _ in range(count):
        bit = int(rng.integers(len(data) * 8))
        data[bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(data))


# Each seed is one process started on a cache whose object code had bits flipped at random, as
# a user's disk would damage it. Before the cache files were checked against recorded hashes,
# such a process died inside LLVM (SIGSEGV/SIGABRT) and every later one did too.
BIT_FLIP_SEEDS = int(os.environ.get("GRAPHC_TEST_BIT_FLIP_SEEDS", "6"))


def test_random_bit_flips_in_cached_object_code_are_rebuilt(tmp_path):
    import shutil

    import numpy as np
    pristine = tmp_path / "pristine"
    _run(pristine)
    kernels = pristine / "kernels"
    assert list(kernels.glob("*/g_*.sums")), "every compiled kernel records the hashes of its cache files"
    for seed in range(BIT_FLIP_SEEDS):
        rng = np.random.default_rng(seed)
        damaged = tmp_path / f"seed{seed}"
        shutil.copytree(pristine, damaged)
        objects = sorted((damaged / "kernels").glob("*/__pycache__/*.nbc"))
        assert objects
        for path in objects:
            _flip_bits(path, rng, count=int(rng.integers(1, 9)))
        flipped = {p.name: p.read_bytes() for p in objects}
        again = _run(damaged)  # asserts the process exits normally
        assert again["out"] == pytest.approx(EXPECTED, rel=1e-6), f"seed {seed}"
        assert again["stats"]["rebuilt"] >= 1, f"seed {seed}"
        rebuilt = {p.name: p.read_bytes() for p in (damaged / "kernels").glob("*/__pycache__/*.nbc")}
        assert all(rebuilt.get(name) != data for name, data in flipped.items()), "the damaged entry was replaced"
        third = _run(damaged)  # and the rebuilt entry loads
        assert third["stats"]["compiled"] == 0 and third["stats"]["rebuilt"] == 0


def test_a_damaged_record_of_hashes_rebuilds_rather_than_trusting(tmp_path):
    _run(tmp_path)
    for sums in (tmp_path / "kernels").glob("*/g_*.sums"):
        sums.write_text("{not json")
    again = _run(tmp_path)
    assert again["stats"]["rebuilt"] >= 1 and again["out"] == pytest.approx(EXPECTED, rel=1e-6)


AHEAD = textwrap.dedent("""
    import json
    import numpy as np
    from graphc.codegen.cpu import cache
    from graphc.codegen.cpu.executable import kernel_module_source
    ARR = 'types.Array(types.float64, 1, "C")'
    sources = [kernel_module_source(
        f"def _kernel(x, y):\\n    for i in range(x.shape[0]):\\n        y[i] = x[i] * {k} + 1.0\\n    return 0",
        [ARR, ARR]) for k in range(5)]
    children = cache.compile_ahead(sources, 2)
    after_ahead = dict(cache.STATS)
    outs = []
    for k, src in enumerate(sources):
        y = np.zeros(3)
        cache.load(src).kernel(np.arange(3.0), y)
        outs.append(y.tolist())
    print(json.dumps({"children": children, "ahead": after_ahead, "stats": cache.STATS, "outs": outs}))
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="compile_ahead forks")
def test_compile_ahead_shares_a_cold_compile_with_a_forked_child(tmp_path):
    """The child's kernels reach this process through the disk cache: they are loaded, not
    compiled, and compute what they should."""
    got = _run(tmp_path, AHEAD)
    assert got["children"] == 1
    assert got["ahead"]["compiled"] == 3 and got["ahead"]["loaded"] == 0  # the first and the parent's share
    assert got["stats"]["compiled"] == 3 and got["stats"]["loaded"] == 2  # the child's share, from its cache
    assert got["outs"] == [[k * v + 1.0 for v in range(3)] for k in range(5)]
    again = _run(tmp_path, AHEAD)  # everything cached: no child is forked
    assert again["children"] == 0 and again["stats"]["compiled"] == 0


LOOP_PROGRAM = textwrap.dedent("""
    import json
    import numpy as np
    import graphc as gc
    from graphc.codegen.cpu import cache
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float64, (3,), name="x")
        _, y = gc.while_loop(lambda i, v: i < 4, lambda i, v: (i + 1, gc.tanh(v) * 1.5),
                             [gc.constant(0), x])
    with gc.Session(graph=g, device="cpu") as sess:
        out = sess.run(y, {x: np.array([0.1, -0.2, 0.3])})
    # a loop's numba functions compile at their first call, after cache.load imported them
    misses = sum(sum(m.kernel.stats.cache_misses.values()) for m in cache._modules.values())
    hits = sum(sum(m.kernel.stats.cache_hits.values()) for m in cache._modules.values())
    print(json.dumps({"out": out.tolist(), "misses": misses, "hits": hits}))
""")


def test_a_loop_compiled_at_its_first_call_is_loaded_by_the_next_process(tmp_path):
    first = _run(tmp_path, LOOP_PROGRAM)
    assert first["misses"] >= 1
    second = _run(tmp_path, LOOP_PROGRAM)
    assert second["misses"] == 0 and second["hits"] >= first["misses"]
    expected = __import__("numpy").array([0.1, -0.2, 0.3])
    for _ in range(4):
        expected = __import__("numpy").tanh(expected) * 1.5
    assert second["out"] == pytest.approx(expected.tolist(), rel=1e-12) and first["out"] == second["out"]

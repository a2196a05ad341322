"""gc.export.shared_library: models as C libraries that run with no Python.

Each library is built once per module (numba's compile time is the cost) and checked from a
C program compiled against its header and run under ``env -i`` (an empty environment), and
against Session.run on the CPU backend."""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc import datasets, zoo
from graphc.export.freeze import as_frozen
from graphc.export.native import SharedLibrary
from support import assert_close

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")

C_TYPES = {"float32": "float", "float64": "double", "int64": "int64_t", "int32": "int32_t", "uint8": "uint8_t",
           "int8": "int8_t", "bool": "bool"}


# --- helpers ---------------------------------------------------------------------------------------------
def compile_c(lib, source: str, program: str) -> Path:
    """Compile ``source`` against the library's header, next to it, found through $ORIGIN."""
    src = lib.directory / f"{program}.c"
    src.write_text(source)
    exe = lib.directory / program
    done = subprocess.run(["cc", "-O1", "-std=gnu11", "-Wall", "-Werror", f"-I{lib.directory}", str(src), "-o",
                           str(exe), f"-L{lib.directory}", f"-l{lib.name}", "-Wl,-rpath,$ORIGIN"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return exe


def run_c(exe: Path, *args) -> str:
    """Run with an empty environment: no PYTHONPATH, no LD_LIBRARY_PATH."""
    done = subprocess.run(["env", "-i", f"./{exe.name}", *map(str, args)], cwd=exe.parent, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, f"{exe.name} exited {done.returncode}: {done.stdout}{done.stderr}"
    return done.stdout


def runner_source(lib) -> str:
    """A C program for any library: ``prog in.bin out.bin dims...`` reads every input's raw
    bytes from in.bin (in signature order), calls NAME_output_dims and NAME_run, prints the
    status and writes every output's raw bytes to out.bin."""
    n = lib.name
    ins, outs = list(lib.signature.inputs.values()), list(lib.signature.outputs.values())
    lines = ["#include <stdio.h>", "#include <stdlib.h>", f'#include "{n}.h"', "",
             "static void* slurp(FILE* f, size_t bytes) {",
             "    void* p = malloc(bytes ? bytes : 1);",
             "    if (bytes && fread(p, 1, bytes, f) != bytes) { printf(\"short input\\n\"); exit(0); }",
             "    return p;", "}", "",
             "int main(int argc, char** argv) {",
             "    FILE* fi = fopen(argv[1], \"rb\");",
             "    FILE* fo = fopen(argv[2], \"wb\");",
             "    int a = 3;", "    (void)argc;"]
    dims, args = [], []
    for j, spec in enumerate(ins):
        count = []
        for k, d in enumerate(spec.shape):
            if d is None:
                lines.append(f"    int64_t d{j}_{k} = atoll(argv[a++]);")
                dims.append(f"d{j}_{k}")
                count.append(f"(size_t)d{j}_{k}")
            else:
                count.append(str(d))
        t = C_TYPES[spec.dtype.name]
        lines.append(f"    {t}* in{j} = slurp(fi, {' * '.join(count) or '1'} * sizeof({t}));")
        args.append(f"in{j}")
        args.extend(f"d{j}_{k}" for k, d in enumerate(spec.shape) if d is None)
    for j, spec in enumerate(outs):
        lines.append(f"    int64_t od{j}[{max(1, len(spec.shape))}];")
    lines += [f"    int32_t st = {n}_output_dims({', '.join(dims + [f'od{j}' for j in range(len(outs))])});",
              f"    if (st) {{ printf(\"status %d %s\\n\", st, {n}_last_error()); return 0; }}"]
    for j, spec in enumerate(outs):
        t = C_TYPES[spec.dtype.name]
        lines.append(f"    size_t oc{j} = 1;")
        lines.append(f"    for (int k = 0; k < {len(spec.shape)}; k++) oc{j} *= (size_t)od{j}[k];")
        lines.append(f"    {t}* out{j} = malloc(oc{j} * sizeof({t}) + 1);")
        args.append(f"out{j}")
    lines += [f"    st = {n}_run({', '.join(args)});"]
    for j, spec in enumerate(outs):
        lines.append(f"    for (int k = 0; k < {len(spec.shape)}; k++) printf(\"%lld \", (long long)od{j}[k]);")
        lines.append("    printf(\"\\n\");")
    lines += [f"    printf(\"status %d %s\\n\", st, {n}_last_error());"]
    for j, spec in enumerate(outs):
        t = C_TYPES[spec.dtype.name]
        lines.append(f"    if (st == 0) fwrite(out{j}, sizeof({t}), oc{j}, fo);")
    lines += ["    fclose(fo);", "    return 0;", "}", ""]
    return "\n".join(lines)


def run_native(lib, exe, feeds: dict) -> tuple:
    """(status line, {output name: array}) from the C runner."""
    ins, outs = list(lib.signature.inputs.values()), list(lib.signature.outputs.values())
    arrays = [np.ascontiguousarray(feeds[s.name], s.dtype.np) for s in ins]
    # named per process: test workers may share one library (built_once)
    fin, fout = f"in-{os.getpid()}.bin", f"out-{os.getpid()}.bin"
    (lib.directory / fin).write_bytes(b"".join(a.tobytes() for a in arrays))
    dims = [a.shape[k] for a, s in zip(arrays, ins) for k, d in enumerate(s.shape) if d is None]
    lines = run_c(exe, fin, fout, *dims).strip().splitlines()
    status = lines[-1]
    if not status.startswith("status 0"):
        return status, None
    data = (lib.directory / fout).read_bytes()
    results, at = {}, 0
    for s, line in zip(outs, lines):
        shape = tuple(int(d) for d in line.split())
        nbytes = int(np.prod(shape, dtype=np.int64)) * s.dtype.np.itemsize
        results[s.name] = np.frombuffer(data[at:at + nbytes], s.dtype.np).reshape(shape)
        at += nbytes
    assert at == len(data)
    return status, results


def close(got, want):
    want = np.asarray(want)
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    assert_close(got, want, rtol=1e-5, atol=1e-5 * scale)


def needed(library: Path) -> list:
    out = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def built_once(tmp_path_factory, sess, inputs: dict, outputs: dict, name: str) -> tuple:
    """(library, C runner) for a library that the test workers of one pytest-xdist run build
    once between them (under a lock, in a folder of the run's) rather than once each: the
    control-flow library takes a minute and a half of numba compiling. Without xdist it is
    simply built."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        lib = gc.export.shared_library(sess, inputs=inputs, outputs=outputs, path=tmp_path_factory.mktemp(name),
                                       name=name)
        return lib, compile_c(lib, runner_source(lib), "runner")
    folder = tmp_path_factory.getbasetemp().parent / f"shared-{run}-{name}"
    folder.mkdir(exist_ok=True)
    # what the worker that builds gets back, for the others, as JSON (the signature is the
    # session's, recomputed as shared_library computes it); written last, so its presence
    # means all is there
    record = folder / "built.json"
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            lib = gc.export.shared_library(sess, inputs=inputs, outputs=outputs, path=folder, name=name)
            runner = compile_c(lib, runner_source(lib), "runner")
            record.write_text(json.dumps({"cpu": lib.cpu, "needed": list(lib.needed), "runner": str(runner)}))
            return lib, runner
    built = json.loads(record.read_text())
    signature = as_frozen(sess, inputs, outputs).signature
    lib = SharedLibrary(folder, folder / f"lib{name}.so", folder / f"{name}.h", folder / "README.md", name,
                        built["cpu"], signature, tuple(built["needed"]))
    return lib, Path(built["runner"])


# --- fixtures: one trained model and one library each ------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    return datasets.load_digits()


def _trained(build, digits):
    x_train, y_train, _, _ = digits
    model = build()
    sess = gc.Session(graph=model.graph, device="cpu")
    sess.run(model.init)
    zoo.train(model, sess, x_train[:320], y_train[:320], epochs=1, batch_size=64)  # 5 steps: non-trivial weights
    return model, sess


@pytest.fixture(scope="module")
def lenet(tmp_path_factory, digits):
    model, sess = _trained(zoo.lenet, digits)
    lib = gc.export.shared_library(sess, inputs={"x": model.x}, outputs={"logits": model.logits},
                                   path=tmp_path_factory.mktemp("lenet"), name="lenet")
    yield model, sess, lib, compile_c(lib, runner_source(lib), "runner")
    sess.close()


@pytest.fixture(scope="module")
def mlp(tmp_path_factory, digits):
    x_train = digits[0]
    mean, std = zoo.standardization(x_train)
    model, sess = _trained(lambda: zoo.mlp(hidden=64, input_mean=mean, input_std=std), digits)
    lib = gc.export.shared_library(sess, inputs={"x": model.x}, outputs={"logits": model.logits},
                                   path=tmp_path_factory.mktemp("mlp"), name="mlp")
    yield model, sess, lib, compile_c(lib, runner_source(lib), "runner")
    sess.close()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two inputs whose batch dims graphc unifies, an index input, gather (can fail at run
    time), softmax, a reduction and a value computed from a shape, and a strided convolution
    and average pooling of an image input; built for baseline x86-64."""
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder(gc.float32, (None, 4), name="a")
        b = gc.placeholder(gc.float32, (None, 4), name="b")
        idx = gc.placeholder(gc.int64, (None,), name="idx")
        img = gc.placeholder(gc.float32, (None, 6, 7, 4), name="img")
        h = gc.nn.relu(a * b + 1.0)
        rows = gc.cast(gc.shape(a)[0], gc.float32)
        picked = gc.gather(gc.nn.softmax(h / rows), idx)
        total = gc.reduce_sum(h, axis=0)
        f = gc.constant(np.random.default_rng(3).standard_normal((3, 3, 4, 5)).astype(np.float32))
        conv = gc.nn.relu(gc.nn.conv2d(img, f, strides=2, padding="SAME") + np.linspace(-1, 1, 5, dtype=np.float32))
        pooled = gc.nn.avg_pool2d(conv, 2, 1, "SAME")
    sess = gc.Session(graph=g, device="cpu")
    outputs = {"picked": picked, "total": total, "pooled": pooled}
    lib = gc.export.shared_library(sess, inputs={"a": a, "b": b, "idx": idx, "img": img}, outputs=outputs,
                                   path=tmp_path_factory.mktemp("small"), name="small", cpu="x86-64")
    yield (a, b, idx, img), outputs, sess, lib, compile_c(lib, runner_source(lib), "runner")
    sess.close()


# --- the C API against Session.run ---------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 37])
def test_lenet_from_c_matches_session(lenet, digits, batch):
    model, sess, lib, exe = lenet
    x = digits[2][:batch]
    status, got = run_native(lib, exe, {"x": x})
    assert status == "status 0", status
    close(got["logits"], sess.run(model.logits, {model.x: x}))


@pytest.mark.parametrize("batch", [1, 37])
def test_mlp_from_c_matches_session(mlp, digits, batch):
    model, sess, lib, exe = mlp
    x = digits[2][-batch:]
    status, got = run_native(lib, exe, {"x": x})
    assert status == "status 0", status
    close(got["logits"], sess.run(model.logits, {model.x: x}))


def test_lenet_through_ctypes_any_batch(lenet, digits):
    model, sess, lib, _ = lenet
    native = lib.load()
    for batch in (0, 2, 200):
        x = digits[2][:batch]
        got = native(x=x)["logits"]
        assert got.shape == (batch, 10)
        if batch:
            close(got, sess.run(model.logits, {model.x: x}))


@pytest.mark.skipif(shutil.which("readelf") is None or shutil.which("ldd") is None, reason="no readelf/ldd")
def test_files_and_dependencies(lenet):
    _, _, lib, _ = lenet
    assert lib.library.name == "liblenet.so" and lib.header.name == "lenet.h" and lib.readme.name == "README.md"
    header = lib.header.read_text()
    for text in ("#define LENET_OK 0", "LENET_ERR_NULL", "LENET_ERR_DIM", "LENET_ERR_NOMEM", "LENET_ERR_KERNEL",
                 "int32_t lenet_run(const float* x, int64_t x_d0, float* logits);",
                 "int32_t lenet_output_dims(int64_t x_d0, int64_t* logits_dims);",
                 "x: float32 [x_d0, 8, 8, 1]", "logits: float32 [x_d0, 10]"):
        assert text in header
    readme = lib.readme.read_text()
    assert "lenet_run(" in readme and "-llenet" in readme
    ldd = subprocess.run(["ldd", str(lib.library)], capture_output=True, text=True).stdout
    assert "python" not in ldd.lower() and "numba" not in ldd.lower()
    libs = needed(lib.library)
    assert libs and all(re.match(r"(libc|libm|ld-linux[\w.-]*|linux-vdso)\.so", n) for n in libs), libs
    assert tuple(libs) == lib.needed


def test_readme_example_builds_and_runs(mlp):
    _, _, lib, _ = mlp
    readme = lib.readme.read_text()
    example = re.search(r"```c\n(.*?)```", readme, re.S).group(1)
    command = re.search(r"```sh\n(cc .*?)\n", readme).group(1)
    (lib.directory / "main.c").write_text(example)
    subprocess.run(command.replace("'$ORIGIN'", "$ORIGIN").split(), cwd=lib.directory, check=True)
    assert run_c(lib.directory / "main") == ""


# --- bad input through the C API --------------------------------------------------------------------------
BAD_LENET = r"""
#include <stdio.h>
#include <stdlib.h>
#include "lenet.h"

int main(void) {
    static float x[3 * 64], y[3 * 10];
    int64_t dims[2] = {0, 0};
    static char tiny[64];
    size_t need = 0;
    printf("null_input %d\n", lenet_run(NULL, 3, y));
    printf("null_output %d\n", lenet_run(x, 3, NULL));
    printf("null_dims %d\n", lenet_output_dims(3, NULL));
    printf("negative %d\n", lenet_run(x, -1, y));
    printf("negative_dims %d\n", lenet_output_dims(-5, dims));
    printf("overflow %d\n", lenet_run(x, INT64_MAX / 8, y));
    printf("too_big %d\n", lenet_run(x, (int64_t)1 << 44, y));
    printf("empty %d\n", lenet_run(NULL, 0, NULL));
    printf("ok %d\n", lenet_run(x, 3, y));
    printf("error_after_ok [%s]\n", lenet_last_error());
    printf("small_workspace %d\n", lenet_run_with_workspace(x, 3, y, tiny, sizeof tiny));
    printf("workspace_size %d\n", lenet_workspace_size(3, &need));
    void* ws = malloc(need);
    printf("own_workspace %d\n", lenet_run_with_workspace(x, 3, y, ws, need));
    free(ws);
    int32_t st = lenet_output_dims(3, dims);
    printf("dims %d %lld %lld\n", st, (long long)dims[0], (long long)dims[1]);
    lenet_run(x, -7, y);
    printf("message [%s]\n", lenet_last_error());
    printf("status_string [%s]\n", lenet_status_string(LENET_ERR_DIM));
    return 0;
}
"""


def test_bad_input_returns_status_never_crashes(lenet):
    _, _, lib, _ = lenet
    out = run_c(compile_c(lib, BAD_LENET, "bad"))
    got = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert got["null_input"] == "1" and got["null_output"] == "1" and got["null_dims"] == "1"   # ERR_NULL
    assert got["negative"] == "2" and got["negative_dims"] == "2"                              # ERR_DIM
    assert got["overflow"] == "3"                                                              # ERR_SIZE
    assert got["too_big"] == "4"                                                               # ERR_NOMEM
    assert got["empty"] == "0" and got["ok"] == "0" and got["error_after_ok"] == "[]"
    assert got["small_workspace"] == "6" and got["workspace_size"] == "0" and got["own_workspace"] == "0"
    assert got["dims"] == "0 3 10"
    assert "x_d0 = -7 is negative" in got["message"]
    assert got["status_string"].startswith("[LENET_ERR_DIM")


def test_unified_dims_gather_and_baseline_cpu(small):
    (a, b, idx, img), outputs, sess, lib, exe = small
    assert lib.cpu == "x86-64"
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((5, 4), np.float32), rng.standard_normal((5, 4), np.float32)
    index = np.array([4, 0, -1, 2, 2])
    image = rng.standard_normal((3, 6, 7, 4), np.float32)
    status, got = run_native(lib, exe, {"a": A, "b": B, "idx": index, "img": image})
    assert status == "status 0", status
    want = sess.run(outputs, {a: A, b: B, idx: index, img: image})
    for key in outputs:
        close(got[key], want[key])
    # a dim that contradicts the signature: graphc compiled a and b with the same batch
    status, _ = run_native(lib, exe, {"a": A, "b": B[:3], "idx": index, "img": image})
    assert status.startswith("status 2 ") and "b_d0 = 3 must equal a_d0 = 5" in status
    # an index out of range stops the gather kernel: a status, not a crash
    status, _ = run_native(lib, exe, {"a": A, "b": B, "idx": np.array([1, 9]), "img": image})
    assert status.startswith("status 5 ") and "gather" in status and "index 9 is out of range" in status
    assert "test_native.py" in status  # where the op was created
    if shutil.which("objdump"):  # baseline x86-64: no AVX registers anywhere
        asm = subprocess.run(["objdump", "-d", str(lib.library)], capture_output=True, text=True).stdout
        assert "ymm" not in asm and "zmm" not in asm


# --- export-time errors ----------------------------------------------------------------------------------
def _graph_and_session(build):
    g = gc.Graph()
    with g.as_default():
        tensors = build()
    return g, tensors, gc.Session(graph=g, device="cpu")


def test_random_op_is_rejected_naming_it(tmp_path):
    def build():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        return x, x + gc.random_uniform((3,), name="noise")
    _, (x, y), sess = _graph_and_session(build)
    with pytest.raises(gc.export.NativeExportError, match=r"random_uniform 'noise' \(created at .*test_native\.py"):
        gc.export.shared_library(sess, {"x": x}, {"y": y}, path=tmp_path)
    assert not list(tmp_path.iterdir())


def test_op_without_native_code_is_rejected_naming_it(tmp_path):
    def build():
        x = gc.placeholder(gc.float32, (None, 6, 6, 1), name="x")
        f = gc.constant(np.ones((3, 3, 1, 2), np.float32))
        y = gc.nn.conv2d(x, f, strides=1, padding="SAME", name="conv")
        return x, gc.gradients(gc.reduce_sum(y * y), [x])[0]
    _, (x, dx), sess = _graph_and_session(build)
    with pytest.raises(gc.export.NativeExportError, match=r"conv2d_backprop_input '.*' \(created at .*"
                                                         r"test_native\.py:\d+\) has no native code"):
        gc.export.shared_library(sess, {"x": x}, {"dx": dx}, path=tmp_path)


def test_size_not_known_from_input_dims_is_rejected(tmp_path):
    def build():
        x = gc.placeholder(gc.float32, (None, None, None, 1), name="x")
        f = gc.constant(np.ones((3, 3, 1, 2), np.float32))
        return x, gc.nn.conv2d(x, f, strides=2, padding="SAME", name="strided")
    _, (x, y), sess = _graph_and_session(build)
    with pytest.raises(gc.export.NativeExportError, match=r"conv2d 'strided' .* dim 1 of its output"):
        gc.export.shared_library(sess, {"x": x}, {"y": y}, path=tmp_path)


def test_bad_arguments(tmp_path, lenet):
    model, sess, _, _ = lenet
    with pytest.raises(ValueError, match="C identifier"):
        gc.export.shared_library(sess, {"x": model.x}, {"logits": model.logits}, path=tmp_path, name="my-model")
    with pytest.raises(ValueError, match="'-lm' would pick instead of the system's libm"):
        gc.export.shared_library(sess, {"x": model.x}, {"logits": model.logits}, path=tmp_path, name="m")
    with pytest.raises(ValueError, match="unknown cpu"):
        gc.export.shared_library(sess, {"x": model.x}, {"logits": model.logits}, path=tmp_path, cpu="pentium")
    with pytest.raises(gc.export.FreezeError, match="outputs"):
        gc.export.shared_library(sess, path=tmp_path)


# (H, W, C, KH, KW, O, strides, dilations, padding, dtype): each path of the native conv and
# pool kernels: direct small-channel conv, im2col, bounds-free windows, dilation, stride.
CONV_CASES = [
    (28, 28, 1, 5, 5, 6, (1, 1), (1, 1), "SAME", np.float32),
    (17, 19, 3, 3, 3, 13, (2, 1), (1, 1), "SAME", np.float32),
    (16, 20, 2, 3, 5, 7, (1, 1), (2, 2), "VALID", np.float32),
    (15, 12, 3, 4, 2, 5, (1, 1), (1, 3), "SAME", np.float64),
    (14, 14, 6, 5, 5, 16, (1, 1), (1, 1), "VALID", np.float32),
    (13, 11, 5, 3, 3, 9, (2, 2), (1, 1), "VALID", np.float32),
    (12, 12, 4, 3, 3, 8, (1, 1), (1, 2), "VALID", np.float32),
]


def test_conv_and_pool_kernels_match_the_reference(tmp_path):
    rng = np.random.default_rng(1)
    g = gc.Graph()
    inputs, outputs, feeds = {}, {}, {}
    with g.as_default():
        for k, (H, W, C, KH, KW, O, strides, dilations, padding, dt) in enumerate(CONV_CASES):
            x = gc.placeholder(gc.as_dtype(dt), (None, H, W, C), name=f"x{k}")
            f = gc.constant(rng.standard_normal((KH, KW, C, O)).astype(dt))
            b = gc.constant(rng.standard_normal(O).astype(dt))
            h = gc.nn.relu(gc.nn.conv2d(x, f, strides=strides, dilations=dilations, padding=padding) + b)
            inputs[f"x{k}"] = x
            outputs.update({f"h{k}": h, f"max{k}": gc.nn.max_pool2d(h, 2, 2, padding="SAME"),
                            f"avg{k}": gc.nn.avg_pool2d(h, 3, 2, padding="SAME")})
            feeds[f"x{k}"] = rng.standard_normal((3, H, W, C)).astype(dt)
    with gc.Session(graph=g, device="reference") as sess:
        want = sess.run(outputs, {inputs[k]: v for k, v in feeds.items()})
        lib = gc.export.shared_library(sess, inputs=inputs, outputs=outputs, path=tmp_path, name="convs")
    got = lib.load()(**feeds)
    for name, value in want.items():
        tol = 1e-4 if value.dtype == np.float32 else 1e-10
        np.testing.assert_allclose(got[name], value, rtol=tol, atol=tol, err_msg=name)


@pytest.mark.slow
def test_every_op_sample_natively(tmp_path):
    """The first sample of every op of tests/op_samples.py in one library, against NumPy: ops
    without native code must be exactly the ones the exporter names as such. (The other
    samples vary shapes and attributes, which the CPU backend's op tests cover through the
    same kernel emitter, codegen/emit; all 180 samples took 140 s of compiling, the first of
    each 95 ops about half.)"""
    from graphc.ops.registry import get_op
    from op_samples import SAMPLES
    no_native = {"conv2d_backprop_filter", "conv2d_backprop_input", "where_indices"}
    g = gc.Graph()
    feeds, outputs, expected = {}, {}, {}
    with g.as_default():
        for op_name in sorted(SAMPLES):
            if op_name in no_native or get_op(op_name).random:
                continue
            for k, sample in enumerate(SAMPLES[op_name][:1]):
                with gc.name_scope(f"{op_name}_{k}"):
                    phs = []
                    for i, a in enumerate(sample.inputs):
                        a = np.asarray(a)
                        phs.append(gc.placeholder(gc.as_dtype(a.dtype), shape=a.shape, name=f"in{i}"))
                        feeds[phs[-1]] = a
                    outputs[f"{op_name}_{k}"] = sample.build(*phs)
                    expected[f"{op_name}_{k}"] = np.asarray(sample.expected(*sample.inputs))
    with gc.Session(graph=g, device="cpu") as sess:
        lib = gc.export.shared_library(sess, None, outputs, path=tmp_path, name="ops")
    by_name = {t.op.name: a for t, a in feeds.items()}  # inputs are named after their placeholders
    got = lib.load()(**{name: by_name[name] for name in lib.signature.inputs})
    for key, want in expected.items():
        assert_close(got[key], want.astype(got[key].dtype), check_dtype=False)


# --- control flow ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def loops(tmp_path_factory):
    """One library of control flow, run from C: a while_loop whose trip count depends on the
    data, a cond on a fed value, scans over a None dim (with and without an initializer),
    nesting (a cond in a fold, a scan in a map_fn, a while_loop in a cond), the gradient of a
    loop bounded by maximum_iterations, and a frozen LSTM dynamic_rnn over a None number of
    time steps."""
    g = gc.Graph()
    with g.as_default():
        gc.set_random_seed(14)  # the same initial weights in every test worker (built_once shares the library)
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        z = gc.placeholder(gc.float32, (None, 2), name="z")
        pick = gc.placeholder(gc.float32, (), name="pick")
        seq = gc.placeholder(gc.float32, (None, None, 3), name="seq")
        lens = gc.placeholder(gc.int64, (None,), name="lens")
        halved, trips = gc.while_loop(lambda v, i: gc.reduce_sum(gc.abs(v)) > 1e-3,
                                      lambda v, i: [v * 0.5, i + 1], [x, gc.constant(0, gc.int64)])
        chosen = gc.cond(pick > 0, lambda: gc.reduce_sum(x, axis=0) * 2.0, lambda: gc.reduce_max(x, axis=0) - 1.0)
        cumsum = gc.scan(lambda a, e: a + e, x, initializer=gc.zeros((3,), gc.float32))
        cumprod = gc.scan(lambda a, e: a * e, z)  # no initializer: the first row starts
        signed = gc.foldl(lambda a, e: a + gc.cond(gc.reduce_sum(e) > 0, lambda: e, lambda: -e), x,
                          initializer=gc.zeros((3,), gc.float32))
        row_sums = gc.map_fn(lambda r: gc.scan(lambda a, e: a + e, r, initializer=gc.constant(0.0)), z)
        shrunk = gc.cond(pick > 0, lambda: gc.while_loop(lambda v: gc.reduce_sum(gc.abs(v)) > 1.0,
                                                         lambda v: [v * 0.5], [x]), lambda: x * 3.0)
        # its gradient stacks the loop's history: at most maximum_iterations rows
        bounded = gc.while_loop(lambda v: gc.reduce_sum(v * v) > 1e-2, lambda v: [v * 0.5 + gc.sin(v) * 0.1], [x],
                                maximum_iterations=gc.shape(x)[0] + 5)
        bounded_grad = gc.gradients(gc.reduce_sum(bounded * bounded), [x])[0]
        cell = gc.nn.rnn_cell.LSTMCell(4)
        rnn_out, state = gc.nn.dynamic_rnn(cell, seq, dtype=gc.float32)
        # its gradient's forward loop stacks the body values the backward loop reads
        rnn_dseq = gc.gradients(gc.reduce_sum(rnn_out * rnn_out), [seq])[0]
        with gc.name_scope("gru"):  # its body needs the batch of lens equal to seq's
            gru_out, gru_state = gc.nn.dynamic_rnn(gc.nn.rnn_cell.GRUCell(3), seq, sequence_length=lens,
                                                   dtype=gc.float32)
        init = gc.global_variables_initializer()
    sess = gc.Session(graph=g, device="reference")
    sess.run(init)
    inputs = {"x": x, "z": z, "pick": pick, "seq": seq, "lens": lens}
    outputs = {"halved": halved, "trips": trips, "chosen": chosen, "cumsum": cumsum, "cumprod": cumprod,
               "signed": signed, "row_sums": row_sums, "shrunk": shrunk, "bounded": bounded,
               "bounded_grad": bounded_grad, "rnn_out": rnn_out, "rnn_c": state.c, "rnn_h": state.h,
               "gru_out": gru_out, "gru_state": gru_state, "rnn_dseq": rnn_dseq}
    lib, exe = built_once(tmp_path_factory, sess, inputs, outputs, "loops")
    yield inputs, outputs, sess, lib, exe
    sess.close()


def _loop_feeds(rows=4, steps=5, pick=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((rows, 3)).astype(np.float32),
            "z": rng.uniform(0.5, 1.5, (max(rows, 1), 2)).astype(np.float32),
            "pick": np.float32(pick), "seq": rng.standard_normal((2, steps, 3)).astype(np.float32),
            "lens": np.array([steps, steps // 2], np.int64)}


def _check_loops(loops, feeds, keys):
    inputs, outputs, sess, lib, exe = loops
    status, got = run_native(lib, exe, feeds)
    assert status == "status 0", status
    want = sess.run({k: outputs[k] for k in keys}, {inputs[k]: v for k, v in feeds.items()})
    for k in keys:
        assert got[k].shape == np.shape(want[k]), k
        close(got[k], want[k])


@pytest.mark.parametrize("rows", [0, 1, 6])
def test_while_loop_with_a_data_dependent_trip_count(loops, rows):
    feeds = _loop_feeds(rows)
    feeds["x"] *= 10.0 ** rows  # more halvings for more rows
    _check_loops(loops, feeds, ["halved", "trips"])


@pytest.mark.parametrize("pick", [1.0, -1.0])
def test_cond_runs_the_branch_the_fed_value_picks(loops, pick):
    _check_loops(loops, _loop_feeds(3, pick=pick), ["chosen"])


@pytest.mark.parametrize("rows", [0, 1, 5])
def test_scan_over_a_none_dim(loops, rows):
    _check_loops(loops, _loop_feeds(rows), ["cumsum", "cumprod", "signed"])


@pytest.mark.parametrize("rows", [0, 1, 4])
def test_gradient_through_a_loop_bounded_by_maximum_iterations(loops, rows):
    feeds = _loop_feeds(rows)
    feeds["x"] *= 3.0  # some rows need more than maximum_iterations halvings, some fewer
    _check_loops(loops, feeds, ["bounded", "bounded_grad"])


@pytest.mark.parametrize("pick", [1.0, -1.0])
def test_nested_control_flow(loops, pick):
    _check_loops(loops, _loop_feeds(4, pick=pick), ["signed", "row_sums", "shrunk"])


def test_error_in_a_loop_body_is_a_status(loops):
    _, _, _, lib, exe = loops
    feeds = _loop_feeds(2)
    feeds["z"] = feeds["z"][:0]  # map_fn and a scan without initializer read row 0 of z
    status, _ = run_native(lib, exe, feeds)
    assert status.startswith("status 5 ") and "is out of range" in status and "test_native.py" in status, status


@pytest.mark.parametrize("steps", [0, 1, 6])
def test_lstm_dynamic_rnn_over_a_none_number_of_steps(loops, steps):
    _check_loops(loops, _loop_feeds(2, steps=steps), ["rnn_out", "rnn_c", "rnn_h"])


@pytest.mark.parametrize("steps", [0, 1, 6])
def test_gradient_through_an_lstm_that_keeps_its_body_values(loops, steps):
    _check_loops(loops, _loop_feeds(2, steps=steps), ["rnn_dseq"])


@pytest.mark.parametrize("steps", [0, 5])
def test_gru_dynamic_rnn_with_sequence_length(loops, steps):
    _check_loops(loops, _loop_feeds(2, steps=steps), ["gru_out", "gru_state"])
    _, _, _, lib, exe = loops
    feeds = _loop_feeds(2, steps=steps)
    feeds["lens"] = feeds["lens"][:1]  # the library was compiled with lens' batch equal to seq's
    status, _ = run_native(lib, exe, feeds)
    assert status.startswith("status 2 ") and "lens_d0 = 1 must equal seq_d0 = 2" in status, status


def test_control_flow_whose_sizes_depend_on_the_data_is_rejected(tmp_path):
    def build():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        y = gc.cond(gc.reduce_sum(x) > 0, lambda: x, lambda: x[1:], name="uneven")
        return x, y
    _, (x, y), sess = _graph_and_session(build)
    with pytest.raises(gc.export.NativeExportError, match=r"cond 'uneven' \(created at .*test_native\.py:\d+\): its "
                                                         r"branches return output 0 with different shapes"):
        gc.export.shared_library(sess, {"x": x}, {"y": y}, path=tmp_path)

    def build_gradient():  # the gradient stacks the loop's history: one row per (data-dependent) trip
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        y = gc.while_loop(lambda v: gc.reduce_sum(v * v) > 1e-2, lambda v: [v * 0.5], [x], name="halving")
        return x, gc.gradients(gc.reduce_sum(y), [x])[0]
    _, (x, dx), sess = _graph_and_session(build_gradient)
    with pytest.raises(gc.export.NativeExportError, match=r"while_loop 'halving' \(created at .*test_native\.py:\d+\) "
                                                         r"returns its history .* trip count is not known .* no "
                                                         r"maximum_iterations"):
        gc.export.shared_library(sess, {"x": x}, {"dx": dx}, path=tmp_path)


def test_a_history_past_its_capacity_is_a_named_error_code():
    """A loop whose history outgrows its region (it cannot, when the trip count analysis holds)
    stops with an error number the C wrapper turns into a message naming the loop."""
    from graphc.codegen.native.codegen import NativeProgramCodegen
    from graphc.optimizer.pipeline import optimize
    from graphc.optimizer.program import lower

    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        y = gc.scan(lambda a, e: a + e, x, initializer=gc.zeros((3,), gc.float32), name="running")
    program = optimize(lower(g, [y], [x]), 2).program
    prog = NativeProgramCodegen(program, ["x"], ["y"]).build("cap")  # generated source only: no compile
    (code,) = [k + 1 for k, (where, message, _) in enumerate(prog.raises) if "history holds" in message]
    assert re.match(r"while_loop 'running' \(created at .*test_native\.py:\d+\)", prog.raises[code - 1][0])
    assert f"return {code}" in prog.module_source and "if trips >= capacity:" in prog.module_source


def test_native_cpu_builds_for_this_machines_features():
    """cpu="native" takes this machine's features, not only its CPU's name: a virtual machine
    can report a name (znver4) whose AVX-512 its hypervisor masks, and code for the name alone
    stopped the demo's C program with SIGILL. A named CPU takes that CPU's defaults."""
    from llvmlite import binding as llvm
    from graphc.codegen.native import build
    assert build.cpu_features("native") == llvm.get_host_cpu_features().flatten() != ""
    assert build.cpu_features("x86-64-v3") == ""

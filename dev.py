#!/usr/bin/env python3
"""One entry point for a fresh machine with only python3:

    python3 dev.py demo     # create .venv, install graphc[demo], run the demo
    python3 dev.py test     # create .venv, install graphc[test], run the whole test suite
                            # (then its CUDA pass, under numba's simulator)
    python3 dev.py bench    # also create .venv-bench with the peers; run benchmarks/run.py

Extra arguments after ``test`` go to pytest (see ``run_tests`` for test paths and ``--cuda``).
The environment is reused when pyproject.toml has not changed since it was installed.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("GRAPHC_VENV", ROOT / ".venv"))
# The peers live apart: pytensor pins an older numba than graphc is measured with.
BENCH_VENV = Path(os.environ.get("GRAPHC_BENCH_VENV", ROOT / ".venv-bench"))


def _python(env: Path) -> Path:
    return env / ("Scripts" if os.name == "nt" else "bin") / ("python.exe" if os.name == "nt" else "python")


PYTHON = _python(VENV)


def ensure_env(extras: str, env: Path = VENV) -> None:
    python = _python(env)
    stamp = env / f".graphc-installed-{extras or 'base'}"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want and python.exists():
        return
    if not python.exists():
        print(f"[dev] creating virtual environment in {env}", flush=True)
        venv.EnvBuilder(with_pip=True).create(env)
    target = f".[{extras}]" if extras else "."
    print(f"[dev] installing graphc{'[' + extras + ']' if extras else ''} (editable) into {env}", flush=True)
    subprocess.check_call([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], cwd=ROOT)
    subprocess.check_call([str(python), "-m", "pip", "install", "--quiet", "-e", target], cwd=ROOT)
    stamp.write_text(want)


def compile_bytecode() -> None:
    """Write graphc's bytecode, as ``pip install`` would for a user. An editable install
    never writes it, and where PYTHONDONTWRITEBYTECODE is set (this project's CI machines)
    neither does importing: then every process compiled graphc's modules from source,
    0.12-0.2 s of every ``import graphc``. Files that are up to date are skipped. Run by the
    environment's Python, whose version names the bytecode. Best effort: a read-only
    checkout still runs, from source."""
    subprocess.call([str(PYTHON), "-m", "compileall", "-q", "graphc"], cwd=ROOT)


def main(argv: list) -> int:
    if not argv or argv[0] not in ("demo", "test", "bench"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "demo":
        ensure_env("demo")
        compile_bytecode()
        return subprocess.call([str(PYTHON), "-m", "graphc", "demo", *rest], cwd=ROOT)
    if command == "bench":
        ensure_env("test")
        ensure_env("bench", BENCH_VENV)
        compile_bytecode()
        return subprocess.call([str(_python(BENCH_VENV)), "benchmarks/run.py", "--python", f"graphc={PYTHON}",
                                *rest], cwd=ROOT)
    ensure_env("test")
    compile_bytecode()
    return run_tests(rest)


# The CUDA pass: the op tests, the registry samples, the training-step and state tests and
# the CUDA backend's own tests, on device="cuda" under numba's simulator (no GPU needed).
CUDA_SIMULATOR_TESTS = [
    "tests/ops", "tests/test_registry.py", "tests/codegen/test_cuda.py", "tests/train/test_optimizers.py",
    "tests/test_state.py", "tests/runtime/test_session.py", "tests/autodiff/test_gradient_rules.py",
    "tests/test_fuzz_state.py", "tests/autodiff/test_fuzz_gradients.py", "tests/keras/test_models.py",
    "tests/test_profiler.py",
    "tests/test_debugging.py", "tests/onnx/test_backend_sample.py", "tests/distribute/test_api.py",
]


def run_tests(rest: list) -> int:
    """Two pytest passes: the whole suite (reference and CPU backends, CUDA kernels lowered
    to PTX where the toolkit is present), then the CUDA pass under the simulator. Given test
    paths, only the first pass runs them, or only the CUDA pass with ``--cuda``."""
    cuda_only = "--cuda" in rest
    rest = [a for a in rest if a != "--cuda"]
    paths = [a for a in rest if not a.startswith("-") and (ROOT / a.split("::")[0]).exists()]
    # compiling kernels dominates the suite's time: use every core unless told otherwise
    workers = [] if any(a == "-n" or a.startswith("-n") for a in rest) else ["-n", "auto"]
    env = dict(os.environ, GRAPHC_VALIDATE="1")
    passes = []
    if not cuda_only:
        passes.append(("cpu", [], env))
    if cuda_only or not paths:
        sim_env = dict(env, NUMBA_ENABLE_CUDASIM="1", GRAPHC_TEST_DEVICES="cuda")
        passes.append(("cuda (simulator)", [] if paths else CUDA_SIMULATOR_TESTS, sim_env))
    failed = []
    for name, targets, pass_env in passes:
        print(f"[dev] test pass: {name}", flush=True)
        # the slowest tests are printed so that the CI budget (30 min on 2 cores) can be kept
        durations = [] if any(a.startswith("--durations") for a in rest) else ["--durations=30"]
        code = subprocess.call([str(PYTHON), "-m", "pytest", *workers, *durations, *rest, *targets], cwd=ROOT,
                               env=pass_env)
        if code == 5:  # pytest: no tests were collected; that is a failure, not a pass
            print(f"[dev] {name}: no tests were collected", file=sys.stderr)
        if code != 0:
            failed.append(f"{name} (exit {code})")
    if failed:
        print(f"[dev] failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env bash
# One prepared run of the CUDA backend on a real GPU (the device tool's machine, or any
# machine with an NVIDIA GPU and numba-cuda). Writes everything under $OUT (default ./gpu-out):
#   env.txt        the GPU, driver and package versions
#   smoke.log      a tiny graph on device="cuda", compared with NumPy
#   bench.log      benchmarks/cuda_run.py at full sizes (RESULTS-CUDA.md beside it)
#   tests.log      the CUDA test list of dev.py on the real device, with the slowest tests
# Usage: bash tools/gpu_check.sh [bench_seconds] [test_seconds] [pytest paths...]
set -o pipefail
OUT=${OUT:-./gpu-out}; mkdir -p "$OUT"
BENCH_S=${1:-150}; TEST_S=${2:-270}; shift 2 2>/dev/null
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD GRAPHC_CACHE_DIR=${GRAPHC_CACHE_DIR:-/tmp/graphc-cache}
PY=${PY:-python3}
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  $PY -c "import sys, numpy, numba, llvmlite, scipy, networkx; print(sys.version.split()[0], 'numpy', numpy.__version__, 'numba', numba.__version__, 'llvmlite', llvmlite.__version__)"
  $PY -m pip show numba-cuda 2>/dev/null | head -2
  nproc; } 2>&1 | tee "$OUT/env.txt"
timeout 120 $PY - <<'PYEOF' 2>&1 | tee "$OUT/smoke.log"
import numpy as np, graphc as gc
x = gc.placeholder(gc.float32, [None, 8], name="x")
w = gc.Variable(np.arange(24, dtype=np.float32).reshape(8, 3) / 10, name="w")
y = gc.nn.softmax(gc.tanh(gc.matmul(x, w)) * 2.0)
loss = gc.reduce_mean(y * y)
step = gc.train.GradientDescentOptimizer(0.1).minimize(loss)
xv = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
with gc.Session(device="cuda") as s, gc.Session(device="reference") as r:
    s.run(gc.global_variables_initializer()); r.run(gc.global_variables_initializer())
    for _ in range(3):
        a = s.run([loss, step], {x: xv})[0]; b = r.run([loss, step], {x: xv})[0]
    print("cuda", a, "reference", b, "max|dw|", float(np.abs(s.run(w) - r.run(w)).max()))
    s.explain(loss, {x: xv}, print_result=False)  # the kernels and buffers it would print
PYEOF
timeout "$BENCH_S" $PY benchmarks/cuda_run.py --out "$OUT/RESULTS-CUDA.md" 2>&1 | tee "$OUT/bench.log"
paths=("$@"); [ ${#paths[@]} -eq 0 ] && paths=($($PY -c "import dev; print(' '.join(dev.CUDA_SIMULATOR_TESTS))"))
GRAPHC_TEST_DEVICES=cuda GRAPHC_VALIDATE=1 timeout "$TEST_S" $PY -m pytest -q -p no:cacheprovider -n ${NPROC:-12} \
  --timeout 200 --durations 25 -rfE "${paths[@]}" 2>&1 | tee "$OUT/tests.log"
echo "exit ${PIPESTATUS[0]}" | tee -a "$OUT/tests.log"

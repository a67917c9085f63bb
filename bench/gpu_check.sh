#!/usr/bin/env bash
# The one script to run on a lent GPU machine (H100/H200, torch with CUDA, no internet):
# build claus with CUDA kernels, run the CUDA tests, run the benchmarks, print a short table.
#
#   bash bench/gpu_check.sh            # everything; logs and tables under ${OUT:-/tmp/claus-gpu}
#
# Each step's status is collected; the script exits non-zero if any step failed, after running
# the rest, so one broken op does not hide the others' figures.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/claus-gpu}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# The benchmarks' CSV rows (bench/common.py) go to $out/results, which comes back with the logs;
# `python bench/tables.py --merge DIR` appends them to bench/results/ and rewrites RESULTS.md's
# tables. A copy of the tree without .git records its commit from CLAUS_COMMIT (set it).
export CLAUS_BENCH_RESULTS=${CLAUS_BENCH_RESULTS:-$out/results}
declare -a names=() statuses=()

step() {  # step NAME COMMAND...: run, log to $out/NAME.log, record the status
  local name=$1
  shift
  echo "== $name: $*"
  local t0=$SECONDS
  "$@" 2>&1 | tee "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  names+=("$name")
  statuses+=("$([ "$rc" -eq 0 ] && echo ok || echo "FAILED ($rc)") in $((SECONDS - t0))s")
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
arch=$(python3 -c "import torch; c = torch.cuda.get_device_capability(); print(f'{c[0]}.{c[1]}')")
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$arch}
export MAX_JOBS=${MAX_JOBS:-16}

step build env FORCE_CUDA=1 python3 -m pip install --no-build-isolation --no-deps -v -e .
python3 -c "import claus_ext; print(claus_ext.build_info())" | tee "$out/build_info.txt"
# The ops' tests in full on the GPU build (CPU paths too), CUDA parity tests included; the
# framework's tests run in CI on the CPU. One process per op, so that a kernel fault (which
# poisons the CUDA context) cannot hide the other ops' results.
pytest_q=(python3 -m pytest -q -rs -p no:cacheprovider)
step tests_stew timeout 300 "${pytest_q[@]}" tests/test_stew.py
step tests_scoring timeout 300 "${pytest_q[@]}" tests/test_scoring_ops.py
step tests_cluster timeout 300 "${pytest_q[@]}" tests/test_cluster_ops.py tests/test_kmeans.py

# --- stew ---
step bench_stew timeout 300 python3 bench/bench_stew.py --device cuda --no-compile


# --- scoring ---
# CUDA parity of frame_uncertainty (fp32/fp16/bf16, vector and scalar paths) and select_frames
# runs in cuda_tests above. The benchmark: op vs eager reference and % of device-to-device copy
# bandwidth at R=10, N=16, T=8, 112² and 224²; select_frames vs the NumPy baseline, 2000 videos.
step bench_scoring timeout 300 python3 bench/bench_scoring.py --device cuda --reps 20

# --- cluster ---
# CUDA parity of cluster_assign (fp32/fp64/fp16/bf16; K=1, D=1, odd shapes, cancellation, NaN,
# duplicate centres), cluster_loss forward/backward, update_centers_ and opcheck runs in
# cuda_tests above (tests/test_cluster_ops.py, tests/test_kmeans.py). The benchmark: assignment
# vs torch.cdist + argmin at (3000,408,5), (200000,256,64) and (1000000,128,256), the fraction of
# the bound max(read x once, cuBLAS fp32 GEMM without TF32) reached (target >= 0.6), fp16/bf16
# inputs, fp64 mismatch counts, and the loss / centre update vs the PyTorch references.
step bench_cluster timeout 300 python3 bench/bench_cluster.py --device cuda --repeats 20

echo
echo "| step | status |"
echo "|---|---|"
failed=0
for i in "${!names[@]}"; do
  echo "| ${names[$i]} | ${statuses[$i]} |"
  [[ ${statuses[$i]} == ok* ]] || failed=1
done
echo
for f in "$out"/bench_*.log; do
  [ -f "$f" ] && { echo "### $(basename "$f" .log)"; grep -E '^\|' "$f"; echo; }
done
exit $failed

#!/usr/bin/env bash
# GPU checks for a lent GPU machine: the CUDA parity tests and the benchmarks of every op family.
# Run from anywhere, after a CUDA build (pip install --no-build-isolation -e .). Each section
# belongs to one op family; sections are independent, keep them short.
set -euo pipefail
cd "$(dirname "$0")/.."

python - <<'PY'
import torch, claus_ext
print("build:", claus_ext.build_info())
assert torch.cuda.is_available(), "no GPU visible"
assert claus_ext.has_cuda(), "claus was built without CUDA kernels: rebuild with FORCE_CUDA=1"
print("GPU:", torch.cuda.get_device_name())
PY

# --- scoring ---
# frame_uncertainty (fp32/fp16/bf16, scalar and vector paths) and select_frames parity with the
# CPU kernels, then the benchmark: op vs eager reference and % of device-to-device copy
# bandwidth at R=10, N=16, T=8, 112² and 224²; select_frames vs the NumPy baseline (2000 videos).
python -m pytest -q tests/test_scoring_ops.py -k cuda
python bench/bench_scoring.py --device cuda --reps 20

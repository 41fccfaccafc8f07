#!/usr/bin/env bash
# GPU check for anyone with a CUDA GPU (about 5 to 10 minutes on one modern GPU):
#   1. the GPU-marked tests (pytest.ini marker "gpu": the CUDA selective-scan backends, Triton's and
#      mamba-ssm's, against the pure-PyTorch scans, and stacked folds against one-at-a-time training;
#      a test skips itself where its kernel is not installed);
#   2. benchmarks/gpu_fold_timing.py: the first FOLDS folds of a LOSO on random inputs of the
#      MEGC2019 composite's size (442 samples, 3 classes, 68 subjects) at the paper's settings
#      (default HMRM, batch 32, AdamW lr 5e-4) for EPOCHS epochs each; prints seconds per epoch and
#      the extrapolated seconds per fold at 1000 epochs and for the whole LOSO;
#   3. benchmarks/fold_throughput.py: folds per hour of the paper's HMRM at 112 px trained one fold at
#      a time and stacked (every fold at once, engine "stacked"), checking that both agree;
#   4. benchmarks/scan_bench.py: the selective-scan backends (sequential, parallel, triton, and
#      mamba-ssm where installed) at (8, 384, 196, 16) and at the paper's training shapes (batch 32,
#      D 384, N 16, L 49 / 196 / 784).
# Usage, from the repository root:  bash benchmarks/gpu_check.sh [EPOCHS] [FOLDS]   (defaults 5 and 2)
# PYTHON (default .venv/bin/python, else python3) picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
EPOCHS="${1:-5}"
FOLDS="${2:-2}"

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: no CUDA GPU visible to torch ($("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo 'torch not importable')); nothing to check. Run this on a machine with a CUDA GPU." >&2
    exit 2
fi
"$PY" -c 'import torch; print("gpu_check:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda)'

echo "== 1/4 GPU-marked tests (pytest -m gpu)"
status=0
timeout 240 "$PY" -m pytest -m gpu -p no:cacheprovider -q tests || status=$?

echo "== 2/4 LOSO fold timing: composite size, paper settings, ${EPOCHS} epochs x ${FOLDS} folds"
timeout 300 "$PY" benchmarks/gpu_fold_timing.py --device cuda --epochs "$EPOCHS" --folds "$FOLDS" || status=$?

echo "== 3/4 folds per hour: one at a time against stacked, paper HMRM at 112 px, ${EPOCHS} epochs x 8 folds"
timeout 300 "$PY" benchmarks/fold_throughput.py --device cuda --network paper --size 112 --epochs "$EPOCHS" --subjects 8 || status=$?

echo "== 4/4 selective-scan backends on the GPU: (8, 384, 196, 16), then batch 32 at L 49 / 196 / 784"
timeout 120 "$PY" benchmarks/scan_bench.py --device cuda --lengths 196 --sequential-max-length 196 || status=$?
timeout 240 "$PY" benchmarks/scan_bench.py --device cuda --batch 32 --lengths 49 196 784 --sequential-max-length 49 || status=$?

if [ "$status" -ne 0 ]; then
    echo "gpu_check: FAILED (exit $status; 124 = a step ran past its time limit)" >&2
fi
exit "$status"

#!/usr/bin/env bash
# The CUDA paths on a GPU machine: the CUDA-only tests, then benchmarks/gpu_check.py
# (kNN, moments, linear CKA, neural collapse: GPU against CPU, checked and timed).
# Run from the repository root; results go to $OUT (default ./gpu-check) for BENCHMARKS.md.
# It uses the Python that has a CUDA build of torch: PYTHON=... to choose (default: .venv's
# if it sees CUDA, else python3). It installs nothing (GPU machines here have no network).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check}"
mkdir -p "$OUT"
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    if [ -x .venv/bin/python ] && .venv/bin/python -c 'import torch,sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
        PYTHON=.venv/bin/python
    fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.__version__, torch.cuda.get_device_name(0))' | tee "$OUT/device.txt" || exit 1
status=0
# The tests that exercise CUDA (device mismatches, GPU-resident inputs); skipped elsewhere.
if "$PYTHON" -c 'import pytest' 2>/dev/null; then
    "$PYTHON" -m pytest -q -p no:cacheprovider -k "cuda or device or gpu" tests 2>&1 | tail -25 | tee "$OUT/tests.txt"
    status=${PIPESTATUS[0]}
else
    echo "pytest is not installed for $PYTHON: tests skipped" | tee "$OUT/tests.txt"
fi
"$PYTHON" benchmarks/gpu_check.py --out "$OUT/gpu_check.md" || status=1
exit "$status"

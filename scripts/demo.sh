#!/usr/bin/env bash
# Set up .venv (CPU torch first, so no CUDA build is pulled in), then run the main job on
# its built-in data: two MLPs trained on scikit-learn's digits from different seeds,
# every layer extracted and compared, and the report written to subspaces-demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
.venv/bin/subspaces demo --out subspaces-demo "$@"

#!/usr/bin/env bash
# Set up .venv (CPU torch first, so no CUDA build is pulled in; scripts/_venv.sh), then run
# the main job on its built-in data: two MLPs trained on scikit-learn's digits from
# different seeds, every layer extracted and compared, and the report written to
# subspaces-demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/_venv.sh
.venv/bin/subspaces demo --out subspaces-demo "$@"

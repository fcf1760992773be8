#!/usr/bin/env bash
# Set up .venv (CPU torch first, so no CUDA build is pulled in) and run the example on
# scikit-learn's digits (shipped, no download).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e . scikit-learn
.venv/bin/python examples/quickstart.py

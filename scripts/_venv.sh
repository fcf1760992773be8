#!/usr/bin/env bash
# Shared by demo.sh and test.sh: create .venv with the CPU build of torch, then the package
# with the extras given as $1 (e.g. "[test]"). uv (from PyPI) installs in seconds what pip
# takes minutes over; pip is the fallback wherever uv cannot be had.
#
# torch comes first, as the CPU build, so that no multi-GB CUDA build is pulled in: from the
# wheel folders pip is configured with (`pip config get global.find-links`) when one holds
# torch 2.13.0 for this Python (torch alone: its dependencies come from PyPI with the
# package's), otherwise by pip itself, exactly as before.
set -euo pipefail
extras="${1:-}"
[ -x .venv/bin/python ] || python3 -m venv .venv
py=.venv/bin/python
quiet=(-q --disable-pip-version-check)
[ -x .venv/bin/uv ] || "$py" -m pip install "${quiet[@]}" uv >/dev/null 2>&1 || true

if ! "$py" -c "import torch" >/dev/null 2>&1; then
    links=()
    for folder in $("$py" -m pip config get global.find-links 2>/dev/null || true); do
        links+=(--find-links "$folder")
    done
    if [ -x .venv/bin/uv ] && [ ${#links[@]} -gt 0 ] \
        && .venv/bin/uv pip install -q --python "$py" --no-index --no-deps "${links[@]}" "torch==2.13.0" \
            >/dev/null 2>&1; then
        :
    else
        "$py" -m pip install "${quiet[@]}" "torch==2.13.0"
    fi
fi

if [ -x .venv/bin/uv ]; then
    .venv/bin/uv pip install -q --python "$py" -e ".${extras}"
else
    "$py" -m pip install "${quiet[@]}" -e ".${extras}"
fi

"""The ``store_path`` fixture: a small complete store with labels and metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.io.store._helpers import _write


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    _write(path, metadata={"model": "toy", "data": {"seed": 0}})
    return path

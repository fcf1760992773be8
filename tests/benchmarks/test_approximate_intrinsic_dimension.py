"""The approximate intrinsic-dimension benchmark runs (``--quick``: tiny sizes, seconds): it
guards the script against API drift. Its real numbers are in BENCHMARKS.md."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = (
    Path(__file__).resolve().parents[2]
    / "benchmarks"
    / ("bench_approximate_intrinsic_dimension.py")
)


@pytest.mark.skipif(
    importlib.util.find_spec("faiss") is None, reason="faiss (subspaces[ann]) not installed"
)
def test_quick_run_prints_both_tables(capsys):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_approximate_id", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick"])
    out = capsys.readouterr().out
    for name in ("TwoNN", "MLE k=20", "GRIDE k=(1,2)"):
        assert f"| 1,000 | {name} |" in out and f"| 1,500 | {name} |" in out

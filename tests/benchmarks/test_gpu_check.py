"""The GPU check script runs (on the CPU, tiny sizes): it guards the script against API drift.

The real check needs CUDA (``bash scripts/gpu_check.sh`` on a GPU machine); its numbers
are in BENCHMARKS.md.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def _load():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_runs_and_agrees_on_cpu(tmp_path, capsys):  # type: ignore[no-untyped-def]
    out = tmp_path / "gpu_check.md"
    assert _load().main(["--quick", "--device", "cpu", "--repeats", "1", "--out", str(out)]) == 0
    table = out.read_text()
    for path in ("exact kNN", "centered moments", "linear CKA", "neural collapse"):
        assert f"| {path}" in table
    assert "FAILED" not in table


def test_agree_flags_differing_indices_and_values():  # type: ignore[no-untyped-def]
    import torch

    agree = _load().agree
    a = (torch.tensor([1.0, 2.0]), torch.tensor([0, 1]))
    assert agree(a, (torch.tensor([1.0, 2.0]), torch.tensor([0, 1]))) == 0.0
    assert agree(a, (torch.tensor([1.0, 2.0]), torch.tensor([1, 0]))) == float("inf")
    assert abs(agree(a, (torch.tensor([1.0, 2.2]), torch.tensor([0, 1]))) - 0.1) < 1e-6

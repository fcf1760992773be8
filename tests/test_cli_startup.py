"""The command line starts light: ``import subspaces.cli`` (and so ``subspaces --help``)
imports none of the heavy libraries, which the commands import when they run (issue 11)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "torchmetrics", "sklearn", "scipy")
HELP = "from subspaces.cli import app\ntry:\n    app({args!r})\nexcept SystemExit:\n    pass"


def _imported_after(code: str) -> list[str]:
    """The heavy modules that a fresh interpreter holds after running ``code``."""
    report = f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    probe = f"{code}\nimport json, sys\n{report}"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import subspaces",
        "import subspaces.cli",
        HELP.format(args=["--help"]),
        HELP.format(args=["compare", "--help"]),
    ],
    ids=["package", "cli", "help", "compare-help"],
)
def test_startup_imports_no_heavy_library(code: str) -> None:
    assert _imported_after(code) == []


def test_the_package_still_exports_its_errors() -> None:
    import subspaces
    from subspaces import NotFittedError, SubspacesError
    from subspaces._checks import ShapeError

    assert subspaces.ShapeError is ShapeError and issubclass(NotFittedError, SubspacesError)
    assert set(subspaces.__all__) <= set(dir(subspaces))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        subspaces.nope

"""Set-up of the doctest run over src/subspaces (pytest's doctest runner; see pyproject.toml).

It sits at the repository root, outside the package, so that it is not installed with it.

Every ``>>>`` example runs with one torch thread (fast and repeatable on small data) and
torch's and numpy's global generators seeded, so that an example's printed value does not
depend on the examples run before it. A module that needs an optional extra is left out
where that extra is not installed.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from _pytest.doctest import DoctestItem

# Module of the package -> the optional package its examples need (the extras of pyproject).
NEEDS_EXTRA = {
    "subspaces.linalg.ann": "faiss",
    "subspaces.io.hf": "transformers",
}

# Models come from packages on disk; never ask a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# The modules to leave out of the doctest run here: their extra is not installed (their
# import, or their examples, would fail for that reason alone).
collect_ignore = [
    str(Path("src", *module.split(".")).with_suffix(".py"))
    for module, extra in NEEDS_EXTRA.items()
    if importlib.util.find_spec(extra) is None
]


@pytest.fixture(autouse=True)
def _seeded_single_thread(request: pytest.FixtureRequest) -> None:
    """One torch thread and seeded global generators for every example."""
    if isinstance(request.node, DoctestItem):
        torch.set_num_threads(1)
        torch.manual_seed(0)
        np.random.seed(0)  # noqa: NPY002  (the legacy global generator, for examples using it)

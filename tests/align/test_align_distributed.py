"""Translators fitted under torch.distributed: each rank ``partial_fit``s its share of the rows
and every rank gets the fit on all of them (2 CPU processes over gloo; tests/_distributed.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _distributed import ProcessGroupPool, distributed_available, rank_rows

from subspaces.align import LinearTranslator, Procrustes, ProjectedAlignment, SubspaceProjection

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.skipif(not distributed_available(), reason="torch.distributed with gloo needed"),
]

WORLD_SIZE = 2


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessGroupPool]:
    with ProcessGroupPool(WORLD_SIZE, timeout=60.0) as p:
        yield p


def _make(kind: str) -> Any:
    if kind == "procrustes":
        return Procrustes(scale=True)
    if kind == "linear":
        return LinearTranslator(ridge=0.5)
    if kind == "projected":
        return ProjectedAlignment(method="cca", n_components=3, translator="linear")
    return SubspaceProjection(method="pls", n_components=3)


def _fitted_values(estimator: Any, x: np.ndarray) -> np.ndarray:
    if isinstance(estimator, SubspaceProjection):
        return estimator.transform_x(torch.from_numpy(x)).numpy()
    return estimator.transform(torch.from_numpy(x)).numpy()


def _fit_on_ranks(rank: int, world_size: int, kind: str, x: np.ndarray, y: np.ndarray) -> Any:
    estimator = _make(kind)
    rows = rank_rows(x.shape[0], rank, world_size)
    for start in range(rows.start, rows.stop, 7):  # uneven batches
        stop = min(start + 7, rows.stop)
        estimator.partial_fit(torch.from_numpy(x[start:stop]), torch.from_numpy(y[start:stop]))
    return _fitted_values(estimator, x), estimator.n_samples_seen_


@pytest.mark.parametrize("kind", ["procrustes", "linear", "projected", "subspace"])
def test_partial_fit_on_ranks_equals_one_fit_on_all_rows(pool: ProcessGroupPool, kind: str) -> None:
    rng = np.random.default_rng(len(kind))
    x = rng.standard_normal((81, 6)) + 2.0
    y = np.tanh(x @ rng.standard_normal((6, 5))) + 0.1 * rng.standard_normal((81, 5))
    expected = _fitted_values(_make(kind).fit(torch.from_numpy(x), torch.from_numpy(y)), x)
    results = pool.run(_fit_on_ranks, kind, x, y)
    for rank, (values, seen) in enumerate(results):
        # float64 sums added across ranks: only the summation order differs
        np.testing.assert_allclose(values, expected, rtol=1e-9, atol=1e-10)
        assert seen == rank_rows(81, rank, WORLD_SIZE).stop - rank_rows(81, rank, WORLD_SIZE).start

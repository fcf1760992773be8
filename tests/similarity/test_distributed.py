"""Streaming classes under torch.distributed: each rank updates with its share, every rank
gets the one-shot value (2 CPU processes over gloo; see tests/_distributed.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _distributed import (
    DistributedRunError,
    ProcessGroupPool,
    assert_plain_close,
    check_streaming_matches_one_shot,
    distributed_available,
    rank_rows,
    to_plain,
)

from subspaces import geometry as geo
from subspaces import similarity as sim
from subspaces.similarity.cka import LinearCKA, linear_cka
from subspaces.similarity.kernel_cka import MinibatchCKA, minibatch_cka

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.skipif(not distributed_available(), reason="torch.distributed with gloo needed"),
]

WORLD_SIZE = 2
BATCH = 10  # rows per update; each rank's 40 rows are 4 batches


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessGroupPool]:
    with ProcessGroupPool(WORLD_SIZE, timeout=60.0) as p:
        yield p


def _data(seed: int, n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)) + 3.0
    y = np.tanh(x @ rng.standard_normal((6, 4))) + 0.2 * rng.standard_normal((n, 4))
    return x, y


# (metric factory, one-shot function); the factory must pickle. Minibatch CKA depends on the
# batches: ranks own contiguous halves cut into batches of BATCH rows, which are the batches
# of minibatch_cka(x, y, batch_size=BATCH) because each half is a multiple of BATCH.
STREAMING_CASES: dict[str, tuple[Callable[[], Any], Callable[[Any, Any], torch.Tensor]]] = {
    "LinearCKA": (LinearCKA, linear_cka),
    "LinearCKA-debiased": (
        partial(LinearCKA, debiased=True),
        partial(linear_cka, debiased=True),
    ),
    "MinibatchCKA": (MinibatchCKA, partial(minibatch_cka, batch_size=BATCH)),
    "CCA": (partial(sim.CCA, method="mean"), sim.mean_cca),
    "SVCCA": (partial(sim.SVCCA, keep_variance=0.9), partial(sim.svcca, keep_variance=0.9)),
    "PWCCA": (sim.PWCCA, sim.pwcca),
    "LinearRegressionR2": (sim.LinearRegressionR2, sim.linear_regression_r2),
    "ProcrustesDistance": (sim.ProcrustesDistance, sim.procrustes_distance),
    "ShapeMetric": (partial(sim.ShapeMetric, alpha=0.5), partial(sim.shape_metric, alpha=0.5)),
    "PermutationProcrustesDistance": (
        sim.PermutationProcrustesDistance,
        sim.permutation_procrustes_distance,
    ),
    "RSMNormDifference": (sim.RSMNormDifference, sim.rsm_norm_difference),
    "MagnitudeDifference": (sim.MagnitudeDifference, sim.magnitude_difference),
    "ConcentricityDifference": (sim.ConcentricityDifference, sim.concentricity_difference),
}

# Streaming classes of one representation: update(x).
SINGLE_CASES: dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]] = {
    "Magnitude": (sim.Magnitude, sim.magnitude),
    "Concentricity": (sim.Concentricity, sim.concentricity),
    "CovarianceSpectrum": (geo.CovarianceSpectrum, geo.covariance_spectrum),
    "CodingRate": (partial(geo.CodingRate, eps=0.5), partial(geo.coding_rate, eps=0.5)),
}


@pytest.mark.parametrize("case", list(STREAMING_CASES), ids=list(STREAMING_CASES))
def test_every_rank_gets_the_one_shot_value(pool: ProcessGroupPool, case: str) -> None:
    # float64 data, float64 states summed across ranks: only summation order differs.
    factory, one_shot = STREAMING_CASES[case]
    x, y = _data(seed=len(case))
    check_streaming_matches_one_shot(pool, factory, one_shot, x, y, batch_size=BATCH)


@pytest.mark.parametrize("case", list(SINGLE_CASES), ids=list(SINGLE_CASES))
def test_one_representation_every_rank_gets_the_one_shot_value(
    pool: ProcessGroupPool, case: str
) -> None:
    factory, one_shot = SINGLE_CASES[case]
    x, _ = _data(seed=len(case))
    check_streaming_matches_one_shot(pool, factory, one_shot, x, None, batch_size=BATCH)


def test_uneven_shares_give_the_one_shot_value(pool: ProcessGroupPool) -> None:
    # 81 rows: rank 0 holds 41, rank 1 holds 40; LinearCKA states do not depend on the split.
    x, y = _data(seed=7, n=81)
    check_streaming_matches_one_shot(pool, LinearCKA, linear_cka, x, y, batch_size=BATCH)


def _fail_on_rank_one(rank: int, world_size: int) -> int:
    if rank == 1:
        raise ValueError("deliberate failure")
    return rank


def test_a_failing_rank_is_reported_and_the_pool_recovers(pool: ProcessGroupPool) -> None:
    with pytest.raises(DistributedRunError, match=r"ranks \[1\](.|\n)*deliberate failure"):
        pool.run(_fail_on_rank_one)
    x, y = _data(seed=3)
    check_streaming_matches_one_shot(pool, LinearCKA, linear_cka, x, y, batch_size=BATCH)


@pytest.mark.parametrize(("n", "expected"), [(80, [40, 40]), (81, [41, 40]), (3, [2, 1])])
def test_rank_rows_cover_every_row_once(n: int, expected: list[int]) -> None:
    slices = [rank_rows(n, r, WORLD_SIZE) for r in range(WORLD_SIZE)]
    assert [s.stop - s.start for s in slices] == expected
    assert np.array_equal(np.concatenate([np.arange(n)[s] for s in slices]), np.arange(n))


@dataclass(frozen=True)
class _Result:
    value: torch.Tensor
    parts: tuple[torch.Tensor, ...]
    label: str


def test_results_become_plain_values_and_compare_field_by_field() -> None:
    result = _Result(torch.tensor(0.5), (torch.ones(2), torch.tensor(2.0)), "cka")
    plain = to_plain(result)
    assert plain["value"] == 0.5 and plain["label"] == "cka"
    np.testing.assert_array_equal(plain["parts"][0], np.ones(2))
    assert_plain_close(plain, to_plain(result), rtol=0, atol=0, where="same")
    other = to_plain(_Result(torch.tensor(0.5), (torch.ones(2), torch.tensor(2.5)), "cka"))
    with pytest.raises(AssertionError, match=r"parts\[1\]"):
        assert_plain_close(plain, other, rtol=0, atol=1e-3, where="result")

"""Correlation dimension: exact pair counts, the log slope, invariance."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
)
from subspaces.geometry.intrinsic_dimension import (
    correlation_dimension,
)
from subspaces.geometry.intrinsic_dimension.correlation import _count_pairs_below

from ._helpers import (
    FAST,
    SEEDS,
    _brute_distances,
    _close,
    _gen,
    _rotation,
    ball,
)


@pytest.mark.parametrize("chunk_size", [1, 7, 4096], ids=["chunk1", "chunk7", "default"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_pair_counts_match_brute_force(chunk_size: int, dtype: torch.dtype) -> None:
    x = (ball(n=150, d=3) * 3 + 10).to(dtype)
    x64 = x.double()
    diff = x64[None, :, :] - x64[:, None, :]  # as the kNN kernel: float64 differences
    dist = torch.linalg.vecdot(diff, diff).sqrt()
    dist.fill_diagonal_(torch.inf)
    # radii exactly at pair distances: strict "<" must leave those pairs out
    radii = torch.stack([dist[0, 5], dist[3, 9], torch.tensor(0.5, dtype=torch.float64)])
    counts = _count_pairs_below(x, radii, chunk_size)
    expected = [int((dist < r).sum()) for r in radii]
    assert counts.tolist() == expected


def test_correlation_dimension_is_the_log_slope_of_the_correlation_integral() -> None:
    x = ball(n=400, d=3)
    r = _brute_distances(x)
    r1, r2 = r[:, 4].quantile(0.5), r[:, 14].quantile(0.5)
    full = torch.cdist(x, x)
    full.fill_diagonal_(torch.inf)
    c1, c2 = (full < r1).sum(), (full < r2).sum()
    expected = math.log(float(c2) / float(c1)) / math.log(float(r2) / float(r1))
    _close(correlation_dimension(x, k=(5, 15)), expected)


@FAST
@given(seed=SEEDS, scale=st.floats(0.01, 100.0), shift=st.floats(-100.0, 100.0))
def test_correlation_dimension_is_invariant_up_to_boundary_pairs(
    seed: int, scale: float, shift: float
) -> None:
    # r1, r2 are medians of neighbor distances, and a median can equal a pair distance
    # (mutual neighbors give the same value twice): whether that pair counts in C(r) < r is
    # then decided by rounding, which a rotation changes. One pair more or less moves the
    # estimate by ~1/(number of pairs below r1) ~ 1%, hence the 3% tolerance.
    x = ball(n=120, d=3, seed=seed % 10_000, ambient=6)
    y = scale * x @ _rotation(6, seed % 10_000 + 7) + shift
    a = correlation_dimension(x, k=(3, 9))
    _close(correlation_dimension(y, k=(3, 9)), a, rtol=3e-2)
    perm = torch.randperm(120, generator=_gen(seed))
    _close(correlation_dimension(x[perm], k=(3, 9)), a, rtol=0.0)  # exact: same distances


def test_correlation_dimension_with_many_duplicates_raises() -> None:
    x = ball(n=20).repeat(12, 1)
    with pytest.raises(DegenerateInputError, match="r1=0"):
        correlation_dimension(x)

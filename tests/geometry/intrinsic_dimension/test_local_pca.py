"""Local PCA: the thresholding rules, pointwise neighborhoods, degenerate spectra."""

from __future__ import annotations

import pytest
import torch

from subspaces._checks import (
    DegenerateInputError,
)
from subspaces.data.manifolds import (
    benchmark_manifold,
    random_isometric_embedding,
)
from subspaces.geometry.intrinsic_dimension import (
    LPCA_METHODS,
    local_pca_id,
)

from ._helpers import (
    _close,
    _gen,
    ball,
)


@pytest.mark.parametrize("method", [v for v in LPCA_METHODS if v != "Fan"])
def test_local_pca_finds_an_exactly_isotropic_subspace(method: str) -> None:
    # 3 centered orthonormal columns rotated into R^10: covariance = I_3 / (n - 1) exactly,
    # so every rule reads 3 (participation ratio (Σλ)²/Σλ² = 3 too). Fan's rule gives 2 here
    # (a quirk of its definition, checked against skdim in the oracle tests).
    g = _gen(0)
    z = torch.randn(200, 3, generator=g, dtype=torch.float64)
    q = torch.linalg.qr(z - z.mean(0)).Q
    x = random_isometric_embedding(q, 10, seed=g) + 5.0
    _close(local_pca_id(x, method=method), 3.0, rtol=1e-9)


def test_local_pca_pointwise_reads_each_neighborhood() -> None:
    # a 2-plane and a 5-ball far apart in R^8: FO on 30 neighbors gives 2 and 5
    plane = random_isometric_embedding(ball(200, 2, seed=1), 8, seed=_gen(2))
    blob = random_isometric_embedding(ball(200, 5, seed=3), 8, seed=_gen(4)) + 100.0
    x = torch.cat([plane, blob])
    local = local_pca_id(x, pointwise=True, k=30)
    assert local.shape == (400,)
    assert local[:200].tolist() == [2.0] * 200
    assert local[200:].tolist() == [5.0] * 200


def test_local_pca_pointwise_wide_data_uses_the_gram_form() -> None:
    # d > k: the k × k Gram gives the same nonzero spectrum as the d × d covariance
    x = random_isometric_embedding(ball(120, 3, seed=5), 40, seed=_gen(6))
    local = local_pca_id(x, pointwise=True, k=20, method="participation_ratio")
    for i in (0, 17, 99):
        nb = x[torch.cdist(x[i : i + 1], x)[0].argsort()[1:21]]
        ev = torch.linalg.eigvalsh(torch.cov(nb.T))
        _close(local[i], ev.sum() ** 2 / (ev * ev).sum(), rtol=1e-8)


def test_local_pca_reads_the_span_of_affine_data() -> None:
    x, d = benchmark_manifold("M2_Affine_3to5", 500, seed=_gen(0), dtype=torch.float64)
    assert float(local_pca_id(x)) == d


def test_local_pca_of_a_constant_raises() -> None:
    with pytest.raises(DegenerateInputError, match="zero variance"):
        local_pca_id(torch.ones(10, 3))


def test_local_pca_pointwise_of_repeated_points_raises() -> None:
    x = torch.cat([ball(n=50), torch.ones(30, 4, dtype=torch.float64)])
    with pytest.raises(DegenerateInputError, match="single repeated point"):
        local_pca_id(x, pointwise=True, k=10)


def test_fan_on_isotropic_data_raises() -> None:
    x = torch.eye(4, dtype=torch.float64).repeat(2, 1)
    x = torch.cat([x, -x])  # covariance proportional to the identity
    with pytest.raises(DegenerateInputError, match="Fan"):
        local_pca_id(x, method="Fan")

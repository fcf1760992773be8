"""kmeans: k-means++ seeding and Lloyd iterations, the one clustering kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from subspaces import InputTypeError, InvalidOptionError
from subspaces.linalg.kmeans import KMeans, kmeans


def _blobs(seed: int, k: int = 4, per: int = 25, d: int = 5) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = 20.0 * np.eye(k, d)
    labels = np.repeat(np.arange(k), per)
    x = centers[labels] + 0.5 * rng.normal(size=(k * per, d))
    return torch.tensor(x, dtype=torch.float32), labels


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_separated_blobs_are_recovered_with_their_means(seed: int) -> None:
    x, labels = _blobs(seed)
    result = kmeans(x, 4, n_init=3, seed=seed)
    assert isinstance(result, KMeans)
    assert _same_partition(result.labels.numpy(), labels)
    for j in range(4):
        members = x[result.labels == j].to(torch.float64)
        torch.testing.assert_close(result.centers[j], members.mean(0))
    expected = sum(
        float(((x[result.labels == j].double() - result.centers[j]) ** 2).sum()) for j in range(4)
    )
    assert float(result.inertia) == pytest.approx(expected, rel=1e-12)
    assert result.centers.dtype == torch.float64 and result.labels.dtype == torch.int64


def test_same_seed_same_result_and_generators_advance() -> None:
    x = torch.randn(60, 3, generator=torch.Generator().manual_seed(0))
    a, b = kmeans(x, 5, seed=7), kmeans(x, 5, seed=7)
    torch.testing.assert_close(a.labels, b.labels)
    torch.testing.assert_close(a.centers, b.centers)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    torch.testing.assert_close(kmeans(x, 5, seed=g1).centers, kmeans(x, 5, seed=g2).centers)


def test_more_inits_never_increase_the_inertia() -> None:
    x = torch.randn(80, 2, generator=torch.Generator().manual_seed(3))
    one = kmeans(x, 6, n_init=1, seed=torch.Generator().manual_seed(1))
    many = kmeans(x, 6, n_init=8, seed=torch.Generator().manual_seed(1))
    assert float(many.inertia) <= float(one.inertia) + 1e-12


def test_duplicates_still_give_k_distinct_seeds() -> None:
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    result = kmeans(x, 5, seed=0)
    assert float(result.inertia) == 0.0
    assert result.labels.shape == (5,)


@pytest.mark.parametrize("k", [1, 20])
def test_one_cluster_and_one_per_row(k: int) -> None:
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    result = kmeans(x, k, seed=0)
    if k == 1:
        assert result.labels.unique().tolist() == [0]
        torch.testing.assert_close(result.centers[0], x.mean(0))
    else:
        assert sorted(result.labels.tolist()) == list(range(20))
        assert float(result.inertia) == 0.0


def test_max_iter_bounds_the_iterations() -> None:
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    assert kmeans(x, 8, max_iter=1, seed=0).n_iter == 1


def test_nearby_points_far_from_the_origin_are_separated() -> None:
    # ||x||² - 2x·c + ||c||² would cancel here; differences in float64 do not
    x = torch.tensor([[1e4], [1e4 + 1e-3], [1e4 + 1.0], [1e4 + 1.0 + 1e-3]], dtype=torch.float64)
    labels = kmeans(x, 2, seed=0).labels.tolist()
    assert labels[0] == labels[1] != labels[2] == labels[3]


def test_numpy_input_is_accepted() -> None:
    assert kmeans(np.eye(3), 3, seed=0).labels.shape == (3,)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"k": 0}, InvalidOptionError),
        ({"k": 11}, InvalidOptionError),
        ({"k": 2, "n_init": 0}, InvalidOptionError),
        ({"k": 2, "max_iter": 0}, InvalidOptionError),
        ({"k": 2, "seed": "zero"}, InputTypeError),
    ],
    ids=["k-zero", "k-too-many", "n_init", "max_iter", "seed"],
)
def test_bad_options_are_refused(options: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        kmeans(torch.randn(10, 2), **options)  # type: ignore[arg-type]

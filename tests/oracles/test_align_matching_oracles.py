"""Neuron matching against scikit-learn: Lasso and SpectralClustering.

* ``sklearn.linear_model.Lasso(alpha)`` minimizes 1/(2n) ||y - Xw - b||² + α ||w||₁ by
  coordinate descent on the data; ours minimizes the same objective in covariance form
  from float64 moments. With ``standardize=True`` ours fits z-scored units (population
  standard deviation, as ``StandardScaler``) and returns raw-unit weights, so the oracle is
  Lasso on ``StandardScaler`` output, mapped back by σ_y / σ_x. The problem is strictly
  convex here (n > d, full rank), so both converge to the one solution: both run to tight
  tolerances and agree to 1e-8.
* ``sklearn.cluster.SpectralClustering(affinity="precomputed")`` embeds with the
  normalized-Laplacian eigenvectors divided by √degree (no row normalization), ours with
  Ng–Jordan–Weiss row-normalized eigenvectors: the partitions agree (adjusted Rand index 1)
  where the clusters are clear, which is what we check.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from subspaces.align import (
    joint_correlation,
    sparse_prediction,
    spectral_unit_clusters,
    spectral_unit_clusters_from_correlation,
)

pytestmark = pytest.mark.oracle

F64 = torch.float64
ALPHAS = [0.003, 0.03, 0.1, 0.4]


def _data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(200, 7, generator=g, dtype=F64) @ (
        torch.eye(7, dtype=F64) + 0.3 * torch.randn(7, 7, generator=g, dtype=F64)
    )
    w = torch.randn(7, 3, generator=g, dtype=F64) * (torch.rand(7, 3, generator=g) < 0.4)
    y = x @ w + 0.5 * torch.randn(200, 3, generator=g, dtype=F64) + 2.0
    return x * 3.0 - 1.0, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lasso_equals_sklearn_on_raw_units(seed: int) -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    x, y = _data(seed)
    ours = sparse_prediction(x, y, alphas=ALPHAS, standardize=False, tol=1e-12, max_iter=20_000)
    for k, alpha in enumerate(ALPHAS):
        peer = linear_model.Lasso(alpha=alpha, tol=1e-14, max_iter=200_000)
        peer.fit(x.numpy(), y.numpy())
        np.testing.assert_allclose(ours.weights[k].numpy(), peer.coef_.T, atol=1e-8)
        np.testing.assert_allclose(ours.intercepts[k].numpy(), peer.intercept_, atol=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_standardized_lasso_equals_sklearn_on_scaled_units(seed: int) -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    x, y = _data(seed)
    sx = preprocessing.StandardScaler().fit(x.numpy())
    sy = preprocessing.StandardScaler().fit(y.numpy())
    xs, ys = sx.transform(x.numpy()), sy.transform(y.numpy())
    ours = sparse_prediction(x, y, alphas=ALPHAS, tol=1e-12, max_iter=20_000)
    for k, alpha in enumerate(ALPHAS):
        peer = linear_model.Lasso(alpha=alpha, tol=1e-14, max_iter=200_000).fit(xs, ys)
        raw = peer.coef_.T * sy.scale_[None, :] / sx.scale_[:, None]
        np.testing.assert_allclose(ours.weights[k].numpy(), raw, atol=1e-8)
        assert ours.n_predictors[k].tolist() == (peer.coef_ != 0).sum(1).tolist()
        np.testing.assert_allclose(
            ours.r2[k].numpy(),
            [1 - ((ys[:, j] - peer.predict(xs)[:, j]) ** 2).sum() / len(ys) for j in range(3)],
            atol=1e-10,
        )


def _block_case(seed: int, k: int, *, flip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Units of x and y in k groups sharing a latent; ``flip``: random unit signs."""
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(300, k, generator=g, dtype=F64)
    sizes_x = [int(s) for s in torch.randint(2, 5, (k,), generator=g)]
    sizes_y = [int(s) for s in torch.randint(2, 5, (k,), generator=g)]

    def layer(sizes: list[int]) -> torch.Tensor:
        cols = [
            latent[:, [i]] * (torch.randn(1, s, generator=g, dtype=F64).sign() if flip else 1.0)
            + 0.6 * torch.randn(300, s, generator=g, dtype=F64)
            for i, s in enumerate(sizes)
        ]
        return torch.cat(cols, 1)

    return layer(sizes_x), layer(sizes_y)


@pytest.mark.parametrize(("seed", "k"), [(0, 2), (1, 3), (2, 4), (3, 5)], ids=str)
def test_spectral_partition_equals_sklearn(seed: int, k: int) -> None:
    cluster = pytest.importorskip("sklearn.cluster")
    metrics = pytest.importorskip("sklearn.metrics")
    x, y = _block_case(seed, k)
    ours = spectral_unit_clusters(x, y, n_clusters=k, seed=torch.Generator().manual_seed(0))
    peer = cluster.SpectralClustering(k, affinity="precomputed", random_state=0)
    peer_labels = peer.fit(ours.affinity.numpy()).labels_
    labels = torch.cat([ours.labels_x, ours.labels_y]).numpy()
    assert metrics.adjusted_rand_score(peer_labels, labels) == 1.0


def test_spectral_positive_affinity_equals_sklearn() -> None:
    cluster = pytest.importorskip("sklearn.cluster")
    metrics = pytest.importorskip("sklearn.metrics")
    x, y = _block_case(4, 3, flip=False)  # negated units would split groups under max(r, 0)
    joint = joint_correlation(x, y)
    ours = spectral_unit_clusters_from_correlation(
        joint, n_clusters=3, affinity="positive", seed=torch.Generator().manual_seed(0)
    )
    peer = cluster.SpectralClustering(3, affinity="precomputed", random_state=0)
    peer_labels = peer.fit(ours.affinity.numpy()).labels_
    labels = torch.cat([ours.labels_x, ours.labels_y]).numpy()
    assert metrics.adjusted_rand_score(peer_labels, labels) == 1.0

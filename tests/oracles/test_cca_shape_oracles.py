"""CCA, regression and shape distances against scikit-learn, scipy and direct numpy forms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from subspaces.similarity.cca import cca_correlations
from subspaces.similarity.regression import linear_regression_r2
from subspaces.similarity.shape import (
    permutation_procrustes_distance,
    procrustes_distance,
)

pytestmark = pytest.mark.oracle


def latent_pair(seed: int, n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Well-conditioned x (n, 4), y (n, 3) sharing three latents of distinct strengths."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    x = np.column_stack([z[:, 0], 0.7 * z[:, 1], 0.3 * z[:, 2], np.zeros(n)])
    x = (x + 0.5 * rng.normal(size=(n, 4))) @ rng.normal(size=(4, 4)) + 1.0
    y = np.column_stack([z[:, 0], z[:, 1], z[:, 2]]) + 0.8 * rng.normal(size=(n, 3))
    return x, y @ rng.normal(size=(3, 3)) - 2.0


def centered(a: np.ndarray) -> np.ndarray:
    return a - a.mean(0)


def unit(a: np.ndarray) -> np.ndarray:
    return centered(a) / np.linalg.norm(centered(a))


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_canonical_correlations_match_bjorck_golub_qr(seed: int) -> None:
    x, y = latent_pair(seed)
    qx, _ = np.linalg.qr(centered(x))
    qy, _ = np.linalg.qr(centered(y))
    expected = np.linalg.svd(qx.T @ qy, compute_uv=False)  # cosines of principal angles
    # both float64 on a well-conditioned problem (condition of Cxx < 1e3): ~1e-13 apart
    np.testing.assert_allclose(cca_correlations(x, y).numpy(), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1], ids=lambda s: f"seed{s}")
def test_canonical_correlations_match_sklearn_cca(seed: int) -> None:
    cross_decomposition = pytest.importorskip("sklearn.cross_decomposition")
    x, y = latent_pair(seed)
    model = cross_decomposition.CCA(n_components=3, scale=False, max_iter=5000, tol=1e-14)
    xs, ys = model.fit(x, y).transform(x, y)
    expected = [abs(np.corrcoef(xs[:, i], ys[:, i])[0, 1]) for i in range(3)]
    # sklearn runs NIPALS power iterations with deflation; with correlations ~0.2 apart it
    # converges to ~1e-8, so 1e-6 bounds the disagreement
    np.testing.assert_allclose(cca_correlations(x, y).numpy(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("d1", "d2"), [(4, 4), (5, 3), (2, 6)], ids=["equal", "x-wider", "y-wider"]
)
def test_procrustes_matches_scipy_orthogonal_procrustes_residual(d1: int, d2: int) -> None:
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(80, d1)) + 2.0
    y = x[:, :1] @ rng.normal(size=(1, d2)) + rng.normal(size=(80, d2))
    d = max(d1, d2)
    a = np.hstack([unit(x), np.zeros((80, d - d1))])  # zero-pad the smaller side
    b = np.hstack([unit(y), np.zeros((80, d - d2))])
    rotation, _ = linalg.orthogonal_procrustes(a, b)
    residual = np.linalg.norm(a @ rotation - b)
    assert float(procrustes_distance(x, y)) == pytest.approx(residual, abs=1e-10)


@pytest.mark.parametrize(("d1", "d2"), [(4, 4), (5, 3)], ids=["equal", "unequal"])
def test_permutation_procrustes_matches_linear_sum_assignment_on_the_data(d1: int, d2: int) -> None:
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(70, d1))
    y = x[:, rng.permutation(d1)[:d2]] + 0.7 * rng.normal(size=(70, d2))
    a, b = unit(x), unit(y)
    rows, cols = optimize.linear_sum_assignment(a.T @ b, maximize=True)
    residual = np.sqrt(np.sum(a**2) + np.sum(b**2) - 2 * np.sum((a.T @ b)[rows, cols]))
    assert float(permutation_procrustes_distance(x, y)) == pytest.approx(residual, abs=1e-10)


def test_permutation_procrustes_matches_brute_force_over_all_permutations() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    a, b = unit(x), unit(y)
    best = min(np.linalg.norm(a[:, list(p)] - b) for p in itertools.permutations(range(4)))
    assert float(permutation_procrustes_distance(x, y)) == pytest.approx(best, abs=1e-10)


def test_linear_regression_r2_matches_sklearn_variance_weighted_score() -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    metrics = pytest.importorskip("sklearn.metrics")
    x, y = latent_pair(6)
    fit = linear_model.LinearRegression().fit(x, y)
    expected = metrics.r2_score(y, fit.predict(x), multioutput="variance_weighted")
    assert float(linear_regression_r2(x, y)) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("ridge", [0.01, 1.0], ids=lambda r: f"ridge{r}")
def test_ridge_r2_matches_sklearn_ridge(ridge: float) -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    metrics = pytest.importorskip("sklearn.metrics")
    x, y = latent_pair(7)
    alpha = ridge * np.trace(centered(x).T @ centered(x)) / x.shape[1]  # our relative penalty
    fit = linear_model.Ridge(alpha=alpha, fit_intercept=True, solver="svd").fit(x, y)
    expected = metrics.r2_score(y, fit.predict(x), multioutput="variance_weighted")
    assert float(linear_regression_r2(x, y, ridge=ridge)) == pytest.approx(expected, abs=1e-10)


def test_float32_torch_input_agrees_with_the_float64_oracle_on_the_same_values() -> None:
    x, y = latent_pair(8)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    qx, _ = np.linalg.qr(centered(x32.astype(np.float64)))
    qy, _ = np.linalg.qr(centered(y32.astype(np.float64)))
    expected = np.linalg.svd(qx.T @ qy, compute_uv=False)
    result = cca_correlations(torch.from_numpy(x32), torch.from_numpy(y32))
    # products run in float64 (cond(Xc) ≈ 130 here; float32 products would err by ~1e-5)
    np.testing.assert_allclose(result.numpy(), expected, rtol=0, atol=1e-10)

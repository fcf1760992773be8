"""Translators and subspace projections against scipy and scikit-learn.

* ``scipy.linalg.orthogonal_procrustes(A, B)`` returns the orthogonal R minimizing
  ||A R - B||_F and the nuclear norm of Aᵀ B; ours on the same centered data gives the same
  R (unique for full-rank generic data) and singular values.
* ``sklearn.linear_model.LinearRegression`` / ``Ridge(alpha)`` solve least squares (lstsq /
  Cholesky on centered data); ours solves the normal equations in float64 from moments.
  Both are exact solutions of a well-conditioned problem: agreement to 1e-9. With a
  duplicated feature LinearRegression's lstsq returns the minimum-norm solution, as our
  pseudo-inverse does.
* ``sklearn.cross_decomposition.PLSSVD(scale=False)`` takes the singular vectors of Xcᵀ Yc,
  ``sklearn.decomposition.PCA`` the eigenvectors of each covariance: ours agree up to the
  sign of each direction.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from subspaces.align.projected import subspace_projection
from subspaces.align.translators import linear_map, procrustes_map

pytestmark = pytest.mark.oracle


def data(seed: int, n: int = 60, d1: int = 5, d2: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d1)) + 2.0
    y = x[:, : min(d1, d2)] @ rng.normal(size=(min(d1, d2), d2)) + rng.normal(size=(n, d2)) - 1
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_procrustes_matches_scipy(seed: int) -> None:
    from scipy.linalg import orthogonal_procrustes

    x, y = data(seed)
    xc, yc = x - x.mean(0), y - y.mean(0)
    r, nuclear = orthogonal_procrustes(xc, yc)
    ours = procrustes_map(x, y)
    np.testing.assert_allclose(ours.rotation.numpy(), r, atol=1e-10)
    np.testing.assert_allclose(float(ours.singular_values.sum()), nuclear, rtol=1e-12)


@pytest.mark.parametrize("bias", [True, False], ids=["affine", "linear"])
@pytest.mark.parametrize("ridge", [0.0, 0.05], ids=["ols", "ridge"])
def test_linear_map_matches_sklearn(bias: bool, ridge: float) -> None:
    lm = pytest.importorskip("sklearn.linear_model")
    x, y = data(3, d1=6, d2=4)
    if ridge == 0.0:
        ref = lm.LinearRegression(fit_intercept=bias).fit(x, y)
    else:  # our ridge is relative: scikit-learn's alpha = ridge · tr(C) / d
        xc = x - x.mean(0) if bias else x
        alpha = ridge * np.trace(xc.T @ xc) / x.shape[1]
        ref = lm.Ridge(alpha=alpha, fit_intercept=bias, solver="cholesky").fit(x, y)
    ours = linear_map(x, y, bias=bias, ridge=ridge)
    np.testing.assert_allclose(ours.weight.numpy(), ref.coef_.T, atol=1e-9)
    expected_bias = ref.intercept_ if bias else np.zeros(4)
    np.testing.assert_allclose(ours.bias.numpy(), expected_bias, atol=1e-9)


def test_rank_deficient_linear_map_matches_sklearn_minimum_norm() -> None:
    lm = pytest.importorskip("sklearn.linear_model")
    x, y = data(4, d1=4, d2=3)
    x = np.concatenate([x, x[:, :2]], axis=1)  # two duplicated features
    ref = lm.LinearRegression().fit(x, y)
    ours = linear_map(x, y)
    assert ours.rank == 4
    np.testing.assert_allclose(ours.weight.numpy(), ref.coef_.T, atol=1e-9)
    np.testing.assert_allclose(ours.bias.numpy(), ref.intercept_, atol=1e-9)


def _same_up_to_sign(a: np.ndarray, b: np.ndarray) -> None:
    signs = np.sign(np.sum(a * b, axis=0))
    np.testing.assert_allclose(a * signs, b, atol=1e-8)


def test_pls_matches_sklearn_plssvd() -> None:
    cd = pytest.importorskip("sklearn.cross_decomposition")
    x, y = data(5, d1=6, d2=4)
    ref = cd.PLSSVD(n_components=3, scale=False).fit(x, y)
    ours = subspace_projection(torch.as_tensor(x), torch.as_tensor(y), method="pls", n_components=3)
    _same_up_to_sign(ours.x_components.numpy(), ref.x_weights_)
    _same_up_to_sign(ours.y_components.numpy(), ref.y_weights_)


def test_pca_matches_sklearn_pca() -> None:
    dec = pytest.importorskip("sklearn.decomposition")
    x, y = data(6, d1=6, d2=4)
    ours = subspace_projection(torch.as_tensor(x), torch.as_tensor(y), method="pca", n_components=3)
    _same_up_to_sign(ours.x_components.numpy(), dec.PCA(3).fit(x).components_.T)
    _same_up_to_sign(ours.y_components.numpy(), dec.PCA(3).fit(y).components_.T)

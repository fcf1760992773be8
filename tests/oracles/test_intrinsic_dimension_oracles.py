"""Intrinsic dimension against scikit-dimension (``skdim``), on skdim's own data generators.

Same definitions, same values: float64 inputs; skdim finds neighbors with scikit-learn and
fits with numpy / scipy (brentq, lstsq), we with the blocked kNN and closed forms or Newton,
so continuous estimates agree to rounding (1e-10 relative) and integer rules exactly.

Where a definition differs, the comparison is left out and the reason given here:

- TwoNN ``method="linear"`` with ``discard_fraction=0``: the largest ratio has F_emp = 1 and
  an infinite ordinate; skdim passes it to LinearRegression (which refuses inf), we leave
  that point out of the fit. Not compared.
- lPCA ``ver="ratio"``: skdim's default ``alphaRatio=0.05`` is kept as an explicit argument
  (our default is 0.95, the usual "95% of the variance"); the rule itself is the same.
- lPCA on rank-deficient data: we set eigenvalues below m · eps · λ_1 to 0, skdim keeps the
  rounding noise, so ``"maxgap"`` can differ there; the data below are full rank.
- GRIDE with n2 = n1 + 1 keeps tied ratios (mu = 1); skdim drops them. Continuous data have
  no ties, so the values below agree.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch

from subspaces.data.manifolds import BENCHMARK_MANIFOLDS
from subspaces.geometry.intrinsic_dimension import (
    GRIDE,
    LPCA_METHODS,
    correlation_dimension,
    gride,
    gride_multiscale,
    local_pca_id,
    mle_id,
    twonn,
)

skdim = pytest.importorskip("skdim")

pytestmark = [
    pytest.mark.oracle,
    # skdim's lPCA divides by zero eigenvalues for its unused "gaps" output
    pytest.mark.filterwarnings("ignore::RuntimeWarning:skdim.*"),
]

TOL = 1e-10


def _wide_ball() -> np.ndarray:
    # a 5-ball linearly mapped into R^30, plus a little noise: skdim's TwoNN takes its other
    # (D > 25) code path
    rng = np.random.default_rng(7)
    x = skdim.datasets.hyperBall(300, 5, random_state=7) @ rng.normal(size=(5, 30))
    return x + 0.01 * rng.normal(size=x.shape)  # full rank: see the note on lPCA above


DATASETS: dict[str, Callable[[], np.ndarray]] = {
    "ball5": lambda: skdim.datasets.hyperBall(500, 5, random_state=0),
    "sphere3": lambda: skdim.datasets.hyperSphere(400, 3, random_state=1),
    "twinpeaks2": lambda: skdim.datasets.hyperTwinPeaks(400, 2, random_state=2),
    "swissroll-sphere": lambda: skdim.datasets.swissRoll3Sph(300, 100, random_state=3),
    "wide-ball5": _wide_ball,
}


@pytest.fixture(params=list(DATASETS), scope="module")
def data(request: pytest.FixtureRequest) -> np.ndarray:
    return DATASETS[request.param]()


def _close(ours: torch.Tensor, theirs: object, rtol: float = TOL) -> None:
    np.testing.assert_allclose(ours.numpy(), np.asarray(theirs, dtype=np.float64), rtol=rtol)


def test_twonn_reference_value() -> None:
    # REFERENCES.md: TwoNN().fit(hyperBall(500, 5, random_state=0)).dimension_
    x = skdim.datasets.hyperBall(500, 5, random_state=0)
    _close(twonn(x), 4.159093274086606, rtol=1e-13)


@pytest.mark.parametrize(
    ("method", "discard_fraction"),
    [("linear", 0.1), ("linear", 0.25), ("mle", 0.0), ("mle", 0.1)],
    ids=["linear-0.1", "linear-0.25", "mle-0", "mle-0.1"],
)
def test_twonn(data: np.ndarray, method: str, discard_fraction: float) -> None:
    ref = skdim.id.TwoNN(discard_fraction=discard_fraction, method=method).fit(data)
    _close(twonn(data, method=method, discard_fraction=discard_fraction), ref.dimension_)  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [5, 20])
@pytest.mark.parametrize("comb", ["mle", "mean", "median"])
def test_mle(data: np.ndarray, k: int, comb: str) -> None:
    ref = skdim.id.MLE().fit(data, n_neighbors=k, comb=comb)
    average = {"mle": "inverse", "mean": "mean", "median": "median"}[comb]
    _close(mle_id(data, k=k, average=average), ref.dimension_)  # type: ignore[arg-type]
    _close(mle_id(data, k=k, pointwise=True), ref.dimension_pw_)


def test_mle_unbiased(data: np.ndarray) -> None:
    ref = skdim.id.MLE(unbiased=True).fit(data, n_neighbors=10)
    _close(mle_id(data, k=10, unbiased=True), ref.dimension_)
    _close(mle_id(data, k=10, unbiased=True, pointwise=True), ref.dimension_pw_)


@pytest.mark.parametrize(
    ("n1", "n2"), [(1, 2), (1, 3), (2, 4), (3, 7), (8, 16)], ids=lambda v: str(v)
)
def test_gride(data: np.ndarray, n1: int, n2: int) -> None:
    ref = skdim.id.GRIDE(n1=n1, n2=n2).fit(data)
    ours = GRIDE(k=(n1, n2)).fit(data)
    _close(ours.dimension_, ref.dimension_)
    _close(gride(data, k=(n1, n2)), ref.dimension_)
    _close(ours.error_, ref.error_, rtol=1e-8)  # error at the root: a derivative, 1e-8


def test_gride_multiscale(data: np.ndarray) -> None:
    ref = skdim.id.GRIDE(multiscale=True, range_max=32).fit(data)
    ours = gride_multiscale(data, range_max=32)
    np.testing.assert_array_equal(ours.k[:, 0].numpy(), ref.scales_)
    _close(ours.dimension, ref.dimension_scales_)
    _close(ours.error, ref.error_scales_, rtol=1e-8)
    _close(ours.radius, ref.radius_scales_)


# skdim's parameter names for our keyword options; "ratio" with our 0.95 passed explicitly
LPCA_OPTIONS = {"alphaRatio": 0.95}


@pytest.mark.parametrize("ver", LPCA_METHODS)
def test_local_pca_global(data: np.ndarray, ver: str) -> None:
    ref = skdim.id.lPCA(ver=ver, **LPCA_OPTIONS).fit(data)
    _close(local_pca_id(data, method=ver), ref.dimension_)


def test_local_pca_ratio_with_skdim_default_threshold(data: np.ndarray) -> None:
    ref = skdim.id.lPCA(ver="ratio").fit(data)  # alphaRatio = 0.05
    _close(local_pca_id(data, method="ratio", alpha_ratio=0.05), ref.dimension_)


@pytest.mark.parametrize("ver", LPCA_METHODS)
def test_local_pca_pointwise(ver: str) -> None:
    x = skdim.datasets.hyperTwinPeaks(200, 3, random_state=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skdim's own deprecation noise
        ref = skdim.id.lPCA(ver=ver, **LPCA_OPTIONS).fit_pw(x, n_neighbors=30)
    _close(local_pca_id(x, method=ver, pointwise=True, k=30), ref.dimension_pw_)


@pytest.mark.parametrize(("k1", "k2"), [(10, 20), (3, 12)], ids=["default", "3-12"])
def test_correlation_dimension(data: np.ndarray, k1: int, k2: int) -> None:
    ref = skdim.id.CorrInt(k1=k1, k2=k2).fit(data)
    ours = correlation_dimension(data, k=(k1, k2))
    # A median radius can equal a pair's distance (mutual neighbors give it twice). We leave
    # such a pair out (strict <, the pair measured as the kNN measured it); skdim measures the
    # pairs with sklearn's |a|² + |b|² - 2ab and includes or excludes it by rounding. Then one
    # or two pairs in ~1000 differ: 5e-3 relative. Otherwise the values agree to rounding.
    knn_dist = np.sort(np.linalg.norm(data[:, None] - data[None], axis=-1), axis=1)
    radii = [np.median(knn_dist[:, k]) for k in (k1, k2)]  # column 0 is the point itself
    on_a_pair = any(np.isclose(knn_dist, r, rtol=1e-13, atol=0).any() for r in radii)
    _close(ours, ref.dimension_, rtol=5e-3 if on_a_pair else TOL)


def _with_duplicates() -> np.ndarray:
    x = skdim.datasets.hyperBall(300, 4, random_state=11)
    return np.vstack([x, x[:7]])


def test_twonn_drops_duplicates_like_skdim() -> None:
    x = _with_duplicates()
    with pytest.warns(UserWarning, match="Dropping 14 points"):
        ref = skdim.id.TwoNN().fit(x)
    with pytest.warns(UserWarning, match="leaving out 14 of 307 points"):
        ours = twonn(x, duplicates="drop")
    _close(ours, ref.dimension_)


def test_gride_drops_duplicates_like_skdim() -> None:
    x = _with_duplicates()
    with pytest.warns(UserWarning, match="dropping 14 points"):
        ref = skdim.id.GRIDE(n1=1, n2=3).fit(x)
    with pytest.warns(UserWarning, match="leaving out 14 of 307 points"):
        ours = gride(x, k=(1, 3), duplicates="drop")
    _close(ours, ref.dimension_)


def test_benchmark_suite_has_skdims_names_and_dimensions() -> None:
    pytest.importorskip("pandas")  # skdim's BenchmarkManifolds imports it
    truth = skdim.datasets.BenchmarkManifolds(random_state=0).truth
    assert list(truth.index) == list(BENCHMARK_MANIFOLDS)
    for name, spec in BENCHMARK_MANIFOLDS.items():
        row = truth.loc[name]
        assert int(row["Intrinsic Dimension"]) == spec.intrinsic_dimension, name
        assert int(row["Number of variables"]) == spec.ambient_dimension, name

"""RDMs and RSA against rsatoolbox, scipy and a brute-force Kendall tau-a.

rsatoolbox's ``"euclidean"`` RDM is the *squared* Euclidean distance divided by the number
of features (``calc_rdm_euclidean``: (|a|² + |b|² - 2 a·b) / d); ours ``"euclidean"`` is the
plain distance, as scipy's ``pdist``. The tests compare rsatoolbox's with ours
``"sqeuclidean"`` / d; the definitions are not changed to match.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from subspaces.similarity.rsa import compare_rdms, rdm, rsa

pytestmark = pytest.mark.oracle

# float64 inputs throughout: the peers compute in float64 with other summation orders, so
# agreement is to rounding (1e-12 relative on RDMs; 1e-10 on the comparisons).
RDM_TOL = 1e-12
TOL = 1e-10

RSATOOLBOX_COMPARE = {
    "pearson": "corr",
    "spearman": "spearman",
    "kendall_tau_a": "tau-a",
    "cosine": "cosine",
}


def _paired(seed: int, n: int = 25) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y = np.tanh(x @ rng.normal(size=(6, 8))) + 0.5 * rng.normal(size=(n, 8))
    return x, y


def _brute_force_tau_a(a: np.ndarray, b: np.ndarray) -> float:
    """(concordant - discordant) / (m(m-1)/2), O(m²): tied pairs count 0."""
    m = a.size
    total = 0.0
    for i in range(m - 1):
        total += float(np.sum(np.sign(a[i] - a[i + 1 :]) * np.sign(b[i] - b[i + 1 :])))
    return total / (m * (m - 1) / 2)


# --- scipy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "correlation", "cosine"])
def test_rdm_matches_scipy_pdist(metric: str) -> None:
    from scipy.spatial.distance import pdist

    x, _ = _paired(0)
    np.testing.assert_allclose(
        rdm(x, dissimilarity=metric, chunk_size=7).numpy(),
        pdist(x, metric=metric),
        rtol=RDM_TOL,
        atol=RDM_TOL,
    )


def test_float32_rdm_is_close_to_float64_pdist() -> None:
    from scipy.spatial.distance import pdist

    x, _ = _paired(1)
    # float32 products: relative error ~1e-6 on distances of order 1.
    np.testing.assert_allclose(
        rdm(torch.tensor(x, dtype=torch.float32)).numpy(), pdist(x), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    ("compare", "scipy_name"), [("pearson", "pearsonr"), ("spearman", "spearmanr")]
)
@pytest.mark.parametrize("metric", ["euclidean", "correlation"])
def test_rsa_matches_scipy_correlations_of_pdist(
    metric: str, compare: str, scipy_name: str
) -> None:
    import scipy.stats
    from scipy.spatial.distance import pdist

    x, y = _paired(2)
    expected = getattr(scipy.stats, scipy_name)(pdist(x, metric), pdist(y, metric)).statistic
    got = rsa(x, y, dissimilarity=metric, method=compare, chunk_size=6)
    assert float(got) == pytest.approx(expected, abs=TOL)


def test_spearman_with_ties_matches_scipy() -> None:
    import scipy.stats

    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 5, size=200).astype(float), rng.integers(0, 7, size=200).astype(float)
    expected = scipy.stats.spearmanr(a, b).statistic
    assert float(compare_rdms(a, b, method="spearman")) == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("levels", [3, 10, 10_000], ids=["many_ties", "some_ties", "no_ties"])
def test_kendall_tau_a_matches_brute_force(levels: int) -> None:
    rng = np.random.default_rng(levels)
    a = rng.integers(0, levels, size=300).astype(float)
    b = a + rng.integers(0, levels, size=300)
    got = compare_rdms(a, b, method="kendall_tau_a")
    assert float(got) == pytest.approx(_brute_force_tau_a(a, b), abs=1e-14)


def test_kendall_tau_a_differs_from_scipy_tau_b_under_ties() -> None:
    import scipy.stats

    a = np.array([1.0, 1.0, 2.0, 3.0, 3.0, 4.0])
    b = np.array([1.0, 2.0, 2.0, 3.0, 5.0, 4.0])
    tau_a = float(compare_rdms(a, b, method="kendall_tau_a"))
    assert tau_a == pytest.approx(_brute_force_tau_a(a, b), abs=1e-14)
    assert tau_a < scipy.stats.kendalltau(a, b).statistic


def test_rsa_kendall_tau_a_matches_brute_force_on_rdms() -> None:
    from scipy.spatial.distance import pdist

    x, y = _paired(4, n=15)
    expected = _brute_force_tau_a(pdist(x), pdist(y))
    assert float(rsa(x, y, method="kendall_tau_a")) == pytest.approx(expected, abs=1e-14)


# --- rsatoolbox ----------------------------------------------------------------------------


def test_rdm_correlation_matches_rsatoolbox() -> None:
    rsatoolbox = pytest.importorskip("rsatoolbox")
    x, _ = _paired(5)
    theirs = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(x), method="correlation")
    np.testing.assert_allclose(
        rdm(x, dissimilarity="correlation").numpy(), theirs.get_vectors()[0], rtol=1e-10, atol=1e-12
    )


def test_rsatoolbox_euclidean_rdm_is_our_squared_distance_over_features() -> None:
    rsatoolbox = pytest.importorskip("rsatoolbox")
    x, _ = _paired(6)
    theirs = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(x), method="euclidean")
    ours = rdm(x, dissimilarity="sqeuclidean").numpy() / x.shape[1]
    np.testing.assert_allclose(ours, theirs.get_vectors()[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("compare", list(RSATOOLBOX_COMPARE))
def test_compare_matches_rsatoolbox_on_correlation_rdms(compare: str) -> None:
    rsatoolbox = pytest.importorskip("rsatoolbox")
    x, y = _paired(7)
    rx = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(x), method="correlation")
    ry = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(y), method="correlation")
    expected = rsatoolbox.rdm.compare(rx, ry, method=RSATOOLBOX_COMPARE[compare])[0, 0]
    got = rsa(x, y, dissimilarity="correlation", method=compare)
    assert float(got) == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("compare", list(RSATOOLBOX_COMPARE))
def test_compare_matches_rsatoolbox_on_rdms_with_ties(compare: str) -> None:
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rng = np.random.default_rng(8)
    # 45 pairs (n = 10) with values from a few levels: many ties.
    a = rng.integers(1, 4, size=45).astype(float)
    b = rng.integers(1, 6, size=45).astype(float)
    ra = rsatoolbox.rdm.RDMs(dissimilarities=a[None, :])
    rb = rsatoolbox.rdm.RDMs(dissimilarities=b[None, :])
    expected = rsatoolbox.rdm.compare(ra, rb, method=RSATOOLBOX_COMPARE[compare])[0, 0]
    got = compare_rdms(a, b, method=compare)
    assert float(got) == pytest.approx(expected, abs=TOL)

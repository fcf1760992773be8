"""Tests of subspaces.similarity.cca: canonical correlations, mean CCA, R²_CCA, SVCCA, PWCCA."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    ShapeError,
    SmallSampleWarning,
    TooFewSamplesError,
)
from subspaces.linalg.moments import paired_moments
from subspaces.similarity.cca import (
    CCA,
    PWCCA,
    SVCCA,
    cca_correlations,
    cca_correlations_from_moments,
    cca_r2,
    mean_cca,
    pwcca,
    pwcca_from_moments,
    svcca,
    svcca_from_moments,
)

F64 = torch.float64
SEEDS = st.integers(0, 2**31 - 1)
FAST = settings(max_examples=25, deadline=None)


def correlated(seed: int, n: int = 80, d1: int = 4, d2: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """x and y sharing a latent signal, well conditioned, with non-zero means."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    x = z @ rng.normal(size=(2, d1)) + rng.normal(size=(n, d1)) + rng.normal(size=d1)
    y = z @ rng.normal(size=(2, d2)) + rng.normal(size=(n, d2)) - 2.0
    return x, y


def well_conditioned(rng: np.random.Generator, d: int) -> np.ndarray:
    """An invertible d × d map with singular values in [0.5, 2]."""
    q1, _ = np.linalg.qr(rng.normal(size=(d, d)))
    q2, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q1 @ np.diag(rng.uniform(0.5, 2.0, size=d)) @ q2


def orthogonal(rng: np.random.Generator, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def exact_pair(rho: list[float], d1: int, d2: int, n: int, seed: int) -> tuple[np.ndarray, ...]:
    """x (n, d1), y (n, d2) whose canonical correlations are exactly ``rho`` (then zeros)."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n, d1 + d2))
    q, _ = np.linalg.qr(g - g.mean(0))  # orthonormal, centered columns
    x = q[:, :d1] @ well_conditioned(rng, d1) + 5.0
    y = q[:, d1 : d1 + d2].copy()
    for i, r in enumerate(rho):
        y[:, i] = r * q[:, i] + np.sqrt(1.0 - r * r) * q[:, d1 + i]
    return x, y @ well_conditioned(rng, d2) - 1.0


def centered(a: np.ndarray) -> np.ndarray:
    return a - a.mean(0)


def np_cca(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference CCA from the data (full-rank sides): bases, then SVD of Qxᵀ Qy."""
    qx = np.linalg.svd(centered(x), full_matrices=False)[0]
    qy = np.linalg.svd(centered(y), full_matrices=False)[0]
    u, rho, _ = np.linalg.svd(qx.T @ qy)
    return rho, qx, u


# ---------------------------------------------------------------------------------------
# Canonical correlations


@pytest.mark.parametrize(
    ("rho", "d1", "d2"),
    [([0.9, 0.5, 0.2], 3, 3), ([0.99, 0.3], 4, 2), ([0.8, 0.1], 2, 5)],
    ids=["square", "wide-x", "wide-y"],
)
def test_correlations_equal_a_constructed_closed_form(rho: list[float], d1: int, d2: int) -> None:
    x, y = exact_pair(rho, d1, d2, n=50, seed=0)
    result = cca_correlations(x, y)
    # float64 data: only eigh/svd rounding on well-conditioned 3 × 3 problems
    torch.testing.assert_close(result, torch.tensor(rho, dtype=F64), rtol=0, atol=1e-10)


@FAST
@given(seed=SEEDS)
def test_correlations_are_decreasing_in_unit_interval_with_min_d_entries(seed: int) -> None:
    x, y = correlated(seed, d1=5, d2=3)
    rho = cca_correlations(x, y)
    assert rho.shape == (3,) and rho.dtype == F64
    assert torch.all(rho[:-1] >= rho[1:])
    assert torch.all((rho >= 0) & (rho <= 1))


def test_correlations_of_a_representation_with_itself_are_one() -> None:
    x, _ = correlated(2)
    torch.testing.assert_close(cca_correlations(x, x), torch.ones(4, dtype=F64))


@FAST
@given(seed=SEEDS)
def test_correlations_are_symmetric(seed: int) -> None:
    x, y = correlated(seed)
    torch.testing.assert_close(cca_correlations(x, y), cca_correlations(y, x))


@FAST
@given(seed=SEEDS)
def test_correlations_are_invariant_to_invertible_affine_maps(seed: int) -> None:
    x, y = correlated(seed)
    rng = np.random.default_rng(seed + 1)
    xt = x @ well_conditioned(rng, 4) + rng.normal(size=4) * 10
    yt = y @ well_conditioned(rng, 3) - 3.0
    # condition numbers <= 16 on float64 data: agreement to ~1e-12, 1e-9 leaves margin
    torch.testing.assert_close(cca_correlations(xt, yt), cca_correlations(x, y), rtol=0, atol=1e-9)


def test_rank_deficient_side_uses_its_numerical_range() -> None:
    x, y = correlated(3, d1=3, d2=4)
    x_dup = np.hstack([x, x[:, :1] * 2.0 - x[:, 1:2]])  # a collinear fourth feature
    rho = cca_correlations(x_dup, y)
    assert rho.shape == (3,)  # min(r_x = 3, r_y = 4)
    torch.testing.assert_close(rho, cca_correlations(x, y), rtol=0, atol=1e-9)


def test_fewer_samples_than_features_is_handled() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(6, 10)), rng.normal(size=(6, 3))
    with pytest.warns(SmallSampleWarning, match=r"n - 1 = 5 ≤ 10\): every canonical"):
        rho = cca_correlations(x, y)
    # Cxx has rank n - 1 = 5 >= r_y = 3, and the column space of Xc is all of the centered
    # space, so every correlation is 1 (CCA over-fits; the module docstring says so).
    torch.testing.assert_close(rho, torch.ones(3, dtype=F64), rtol=0, atol=1e-8)


def test_mean_cca_and_r2_summarize_the_correlations() -> None:
    x, y = correlated(5)
    rho = cca_correlations(x, y)
    torch.testing.assert_close(mean_cca(x, y), rho.mean())
    torch.testing.assert_close(cca_r2(x, y), (rho**2).mean())
    assert mean_cca(x, y).ndim == 0


def test_float32_input_gives_the_float64_result_of_the_same_values() -> None:
    x, y = correlated(6, n=200)
    x32, y32 = torch.tensor(x).float(), torch.tensor(y).float()
    r32 = cca_correlations(x32, y32)
    r64 = cca_correlations(x32.double(), y32.double())
    # products run in float64 whatever the input: only float64 rounding separates the two
    torch.testing.assert_close(r32, r64, rtol=0, atol=1e-12)


def test_float32_and_float64_data_agree() -> None:
    x, y = correlated(6, n=200)
    r64 = cca_correlations(torch.tensor(x, dtype=F64), torch.tensor(y, dtype=F64))
    r32 = cca_correlations(torch.tensor(x).float(), torch.tensor(y).float())
    # rounding the data to float32 (6e-8 relative) moves correlations by ~6e-8 · cond(Xc)²
    # (cond < 10 here)
    torch.testing.assert_close(r32, r64, rtol=0, atol=1e-5)


# The third feature of x is z1 + z2 + 2e-7 · z3: the eigenvalue ratio of its weakest
# direction is ~3e-15 in float64 (kept: above scatter_rtol(3, float64) = 6.7e-16) and
# float32 rounding buries it in noise of the same size, below scatter_rtol(3, float32)
# = 1.3e-13 (dropped).
def nearly_collinear(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(100, 3))
    x = np.column_stack([z[:, 0], z[:, 1], z[:, 0] + z[:, 1] + 2e-7 * z[:, 2]])
    return x, rng.normal(size=(100, 3)) + z


def test_from_moments_default_tolerance_is_that_of_float32() -> None:
    x, y = nearly_collinear(7)
    assert cca_correlations(x, y).shape == (3,)
    assert cca_correlations(x.astype(np.float32), y.astype(np.float32)).shape == (2,)
    m = paired_moments(torch.tensor(x), torch.tensor(y))
    assert cca_correlations_from_moments(m).shape == (2,)
    assert cca_correlations_from_moments(m, input_dtype=F64).shape == (3,)
    assert cca_correlations_from_moments(m, rtol=0.0).shape == (3,)


def test_streaming_class_tracks_the_input_dtype_for_its_tolerance() -> None:
    x, y = nearly_collinear(7)
    metric = CCA()
    metric.update(x, y)
    assert metric.compute().shape == (3,)
    metric.update(x.astype(np.float32), y.astype(np.float32))  # one float32 batch
    assert metric.compute().shape == (2,)
    metric.reset()
    metric.update(x, y)
    assert metric.compute().shape == (3,)


# ---------------------------------------------------------------------------------------
# SVCCA


def np_svcca(x: np.ndarray, y: np.ndarray, keep: float) -> float:
    def reduce(a: np.ndarray) -> np.ndarray:
        _, s, vt = np.linalg.svd(centered(a), full_matrices=False)
        ratio = np.cumsum(s**2) / np.sum(s**2)
        k = int(np.searchsorted(ratio, keep - 1e-12)) + 1
        return centered(a) @ vt[:k].T

    return float(np_cca(reduce(x), reduce(y))[0].mean())


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99], ids=lambda k: f"keep{k}")
def test_svcca_matches_a_direct_svd_then_cca(keep: float) -> None:
    rng = np.random.default_rng(8)
    scales = np.array([5.0, 3.0, 1.0, 0.3, 0.1, 0.03])
    x = rng.normal(size=(120, 6)) * scales
    y = x @ orthogonal(rng, 6) * scales[::-1] + rng.normal(size=(120, 6))
    assert float(svcca(x, y, keep_variance=keep)) == pytest.approx(np_svcca(x, y, keep), abs=1e-10)


def test_svcca_keeping_all_variance_is_mean_cca() -> None:
    x, y = correlated(9)
    torch.testing.assert_close(svcca(x, y, keep_variance=1.0), mean_cca(x, y))


@FAST
@given(seed=SEEDS, scale=st.floats(0.01, 100.0))
def test_svcca_is_invariant_to_orthogonal_maps_scaling_and_translation(
    seed: int, scale: float
) -> None:
    x, y = correlated(seed, d1=5, d2=4)
    rng = np.random.default_rng(seed)
    xt = scale * x @ orthogonal(rng, 5) + 7.0
    torch.testing.assert_close(svcca(xt, y), svcca(x, y), rtol=0, atol=1e-9)


@FAST
@given(seed=SEEDS)
def test_svcca_is_symmetric(seed: int) -> None:
    x, y = correlated(seed)
    torch.testing.assert_close(svcca(x, y), svcca(y, x))


# ---------------------------------------------------------------------------------------
# PWCCA


def np_pwcca(x: np.ndarray, y: np.ndarray) -> float:
    """Morcos et al.'s weights from the data: α_i ∝ Σ_j |⟨h_i, xc_j⟩|, h_i unit-norm variates."""
    rho, qx, u = np_cca(x, y)
    k = rho.shape[0]
    variates = qx @ u[:, :k]
    weights = np.abs(variates.T @ centered(x)).sum(1)
    return float((weights / weights.sum() * rho).sum())


@pytest.mark.parametrize(
    ("d1", "d2"), [(4, 3), (3, 4), (3, 3)], ids=["x-wider", "y-wider", "equal"]
)
def test_pwcca_matches_the_weights_computed_from_data(d1: int, d2: int) -> None:
    x, y = correlated(10, d1=d1, d2=d2)
    assert float(pwcca(x, y)) == pytest.approx(np_pwcca(x, y), abs=1e-10)


def test_pwcca_is_not_symmetric_and_weights_from_y_is_the_swap() -> None:
    x, y = correlated(11, d1=4, d2=4)
    assert abs(float(pwcca(x, y)) - float(pwcca(y, x))) > 1e-4
    torch.testing.assert_close(pwcca(x, y, weights_from="y"), pwcca(y, x))


def test_pwcca_weights_from_smaller_picks_the_side_with_fewer_features() -> None:
    x, y = correlated(12, d1=5, d2=3)
    torch.testing.assert_close(pwcca(x, y, weights_from="smaller"), pwcca(x, y, weights_from="y"))
    torch.testing.assert_close(pwcca(y, x, weights_from="smaller"), pwcca(y, x, weights_from="x"))


def test_pwcca_of_a_representation_with_itself_is_one() -> None:
    x, _ = correlated(13)
    torch.testing.assert_close(pwcca(x, x), torch.tensor(1.0, dtype=F64))


@FAST
@given(seed=SEEDS, scale=st.floats(0.01, 100.0))
def test_pwcca_is_invariant_to_maps_of_y_and_to_neuron_permutation_and_sign_of_x(
    seed: int, scale: float
) -> None:
    x, y = correlated(seed)
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=4)
    xt = scale * x[:, rng.permutation(4)] * signs + 2.0
    yt = y @ well_conditioned(rng, 3) + 1.0
    torch.testing.assert_close(pwcca(xt, yt), pwcca(x, y), rtol=0, atol=1e-9)


def test_pwcca_lies_between_the_smallest_and_largest_correlation() -> None:
    x, y = correlated(14)
    rho = cca_correlations(x, y)
    assert float(rho.min()) <= float(pwcca(x, y)) <= float(rho.max())


# ---------------------------------------------------------------------------------------
# Streaming


def split_batches(x: np.ndarray, y: np.ndarray, cuts: list[int]) -> list[tuple[np.ndarray, ...]]:
    edges = [0, *sorted(set(cuts)), x.shape[0]]
    return [(x[a:b], y[a:b]) for a, b in itertools.pairwise(edges) if b > a]


@FAST
@given(seed=SEEDS, cuts=st.lists(st.integers(1, 79), max_size=5))
def test_streaming_cca_equals_one_shot_over_any_split(seed: int, cuts: list[int]) -> None:
    x, y = correlated(seed)
    metrics = {
        "correlations": (CCA(), cca_correlations(x, y)),
        "mean": (CCA(method="mean"), mean_cca(x, y)),
        "r2": (CCA(method="r2"), cca_r2(x, y)),
        "svcca": (SVCCA(keep_variance=0.9), svcca(x, y, keep_variance=0.9)),
        "pwcca": (PWCCA(), pwcca(x, y)),
    }
    for xb, yb in split_batches(x, y, cuts):
        for metric, _ in metrics.values():
            metric.update(xb, yb)
    for name, (metric, expected) in metrics.items():
        torch.testing.assert_close(metric.compute(), expected, rtol=0, atol=1e-10, msg=name)


def test_from_moments_cores_match_the_functions() -> None:
    x, y = correlated(15)
    m = paired_moments(torch.tensor(x), torch.tensor(y))
    torch.testing.assert_close(svcca_from_moments(m, input_dtype=F64), svcca(x, y))
    torch.testing.assert_close(pwcca_from_moments(m, input_dtype=F64), pwcca(x, y))


# ---------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "measure",
    [cca_correlations, mean_cca, cca_r2, svcca, pwcca],
    ids=["cca", "mean_cca", "cca_r2", "svcca", "pwcca"],
)
@pytest.mark.parametrize("side", ["x", "y"])
def test_zero_variance_is_refused(measure: object, side: str) -> None:
    x, y = correlated(16)
    if side == "x":
        x = np.full_like(x, 0.1)
    else:
        y = np.full_like(y, 3.7)
    with pytest.raises(DegenerateInputError, match=f"{side} has zero variance"):
        measure(x, y)  # type: ignore[operator]


def test_zero_variance_is_detected_across_chunks() -> None:
    x, y = correlated(22)
    x = np.full_like(x, 0.1)  # not representable: chunk means round differently
    with pytest.raises(DegenerateInputError, match="x has zero variance"):
        cca_correlations(x, y, chunk_size=7)
    metric = CCA(chunk_size=7)
    metric.update(x[:30], y[:30])
    metric.update(x[30:], y[30:])
    with pytest.raises(DegenerateInputError, match="x has zero variance"):
        metric.compute()


def test_different_sample_counts_are_refused() -> None:
    x, y = correlated(17)
    with pytest.raises(ShapeError, match="same samples in the same order"):
        cca_correlations(x, y[:-1])


@pytest.mark.parametrize("keep", [0.0, -0.5, 1.5], ids=["zero", "negative", "above-one"])
def test_keep_variance_outside_unit_interval_is_refused(keep: float) -> None:
    x, y = correlated(18)
    with pytest.raises(InvalidOptionError, match=r"keep_variance must lie in \(0.0, 1.0\]"):
        svcca(x, y, keep_variance=keep)
    with pytest.raises(InvalidOptionError, match="keep_variance must lie in"):
        SVCCA(keep_variance=keep)


@pytest.mark.parametrize("rtol", [1.0, -1e-3], ids=["one", "negative"])
def test_rtol_outside_unit_interval_is_refused(rtol: float) -> None:
    x, y = correlated(19)
    with pytest.raises(InvalidOptionError, match=r"rtol must lie in \[0.0, 1.0\)"):
        cca_correlations(x, y, rtol=rtol)
    with pytest.raises(InvalidOptionError, match="rtol must lie in"):
        CCA(rtol=rtol)


def test_unknown_method_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="method must be one of"):
        CCA(method="median")  # type: ignore[arg-type]


def test_unknown_weights_side_is_refused() -> None:
    x, y = correlated(20)
    with pytest.raises(InvalidOptionError, match="weights_from must be one of"):
        pwcca(x, y, weights_from="z")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="weights_from must be one of"):
        PWCCA(weights_from="both")  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric CCA was called before")
def test_streaming_compute_before_enough_samples_is_refused() -> None:
    metric = CCA()
    with pytest.raises(TooFewSamplesError, match="has seen 0 samples"):
        metric.compute()


def test_streaming_batches_of_other_widths_are_refused() -> None:
    x, y = correlated(21)
    metric = CCA()
    metric.update(x, y)
    with pytest.raises(ShapeError, match="earlier batches had"):
        metric.update(x[:, :2], y)

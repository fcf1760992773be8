"""Tests of subspaces.geometry.spectrum: covariance spectrum, effective rank, participation
ratio, stable rank, numerical rank, spectral decay, von Neumann entropy, streaming."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.geometry.spectrum import (
    CovarianceSpectrum,
    Spectrum,
    covariance_spectrum,
    effective_rank,
    numerical_rank,
    participation_ratio,
    spectral_decay,
    spectrum_from_moments,
    stable_rank,
    von_neumann_entropy,
)
from subspaces.linalg.moments import paired_moments

F64 = torch.float64
SEEDS = st.integers(0, 2**31 - 1)
FAST = settings(max_examples=25, deadline=None)

SCALARS: dict[str, Callable[[object], torch.Tensor]] = {
    "effective_rank": effective_rank,
    "participation_ratio": participation_ratio,
    "stable_rank": stable_rank,
    "numerical_rank": numerical_rank,
    "spectral_decay": spectral_decay,
    "von_neumann_entropy": von_neumann_entropy,
}


def generic(seed: int, n: int = 60, d: int = 5) -> np.ndarray:
    """Correlated Gaussian data with a non-zero mean and a well-spread spectrum."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d) * 3.0


def orthogonal(rng: np.random.Generator, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def with_spectrum(eigenvalues: np.ndarray, n: int, seed: int, offset: float = 2.0) -> np.ndarray:
    """(n, d) data whose sample covariance has exactly ``eigenvalues`` (in a random basis)."""
    rng = np.random.default_rng(seed)
    d = eigenvalues.shape[0]
    g = rng.normal(size=(n, d))
    q, _ = np.linalg.qr(g - g.mean(0))  # orthonormal, centered columns
    scale = np.sqrt(eigenvalues * (n - 1))
    return (q * scale) @ orthogonal(rng, d).T + offset


def isotropic(n: int, d: int, seed: int) -> np.ndarray:
    return with_spectrum(np.full(d, 1.5), n, seed)


def rank_one(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.outer(rng.normal(size=n), rng.normal(size=d)) + rng.normal(size=d)


def np_singular_values(x: np.ndarray) -> np.ndarray:
    return np.linalg.svd(x - x.mean(0), compute_uv=False)


def np_entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


# ---------------------------------------------------------------------------------------
# Against numpy (float64 data: agreement to ~1e-10 relative, eigen-solver rounding)


def test_eigenvalues_match_numpy_covariance() -> None:
    x = generic(0)
    expected = np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1]
    spec = covariance_spectrum(x)
    np.testing.assert_allclose(spec.eigenvalues.numpy(), expected, rtol=1e-10)
    assert spec.eigenvalues.dtype == F64
    assert spec.n_samples == 60 and spec.n_features == 5


def test_explained_variance_ratio_matches_sklearn_pca() -> None:
    sklearn_decomposition = pytest.importorskip("sklearn.decomposition")
    x = generic(1)
    pca = sklearn_decomposition.PCA().fit(x)
    spec = covariance_spectrum(x)
    np.testing.assert_allclose(
        spec.explained_variance_ratio.numpy(), pca.explained_variance_ratio_, rtol=1e-9
    )
    np.testing.assert_allclose(spec.eigenvalues.numpy(), pca.explained_variance_, rtol=1e-9)


def test_singular_values_are_those_of_the_centered_data() -> None:
    x = generic(2)
    np.testing.assert_allclose(
        covariance_spectrum(x).singular_values.numpy(), np_singular_values(x), rtol=1e-9
    )


def test_effective_rank_is_roy_vetterli_on_singular_values() -> None:
    x = generic(3)
    s = np_singular_values(x)
    expected = math.exp(np_entropy(s / s.sum()))
    assert float(effective_rank(x)) == pytest.approx(expected, rel=1e-10)


def test_effective_rank_of_eigenvalues_is_exp_entropy_of_variance_ratios() -> None:
    x = generic(4)
    lam = np_singular_values(x) ** 2
    expected = math.exp(np_entropy(lam / lam.sum()))
    assert float(effective_rank(x, method="eigen")) == pytest.approx(expected, rel=1e-10)
    assert float(effective_rank(x, method="eigen")) < float(effective_rank(x))


def test_participation_ratio_matches_numpy() -> None:
    x = generic(5)
    lam = np.linalg.eigvalsh(np.cov(x.T))
    assert float(participation_ratio(x)) == pytest.approx(
        lam.sum() ** 2 / (lam**2).sum(), rel=1e-10
    )


def test_stable_rank_is_frobenius_over_spectral_norm_squared() -> None:
    x = generic(6)
    xc = x - x.mean(0)
    expected = np.linalg.norm(xc, "fro") ** 2 / np.linalg.norm(xc, 2) ** 2
    assert float(stable_rank(x)) == pytest.approx(expected, rel=1e-10)


def test_von_neumann_entropy_matches_numpy_density_matrix() -> None:
    x = generic(7)
    ridge = 0.3
    cov = np.cov(x.T)
    sigma = cov + ridge * np.trace(cov) / 5 * np.eye(5)  # relative ridge: λ · tr / d
    rho = sigma / np.trace(sigma)
    expected = np_entropy(np.linalg.eigvalsh(rho))
    assert float(von_neumann_entropy(x, ridge=ridge)) == pytest.approx(expected, rel=1e-10)
    # relative, so a rescaling of the data leaves it unchanged
    assert float(von_neumann_entropy(1e3 * x, ridge=ridge)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("rank", [1, 3, 6], ids=["rank1", "rank3", "full"])
def test_numerical_rank_matches_numpy_matrix_rank(rank: int, dtype: type) -> None:
    rng = np.random.default_rng(rank)
    x = (rng.normal(size=(200, rank)) @ rng.normal(size=(rank, 6)) + 4.0).astype(dtype)
    expected = np.linalg.matrix_rank(x - x.mean(0))  # numpy's default tolerance, in x's dtype
    assert expected == rank
    assert float(numerical_rank(x)) == rank


def test_numerical_rank_with_a_loose_tolerance_drops_small_directions() -> None:
    lam = np.array([1.0, 0.5, 1e-4, 1e-6])  # σ ratios 1, 0.71, 0.01, 0.001
    x = with_spectrum(lam, 100, 0)
    assert float(numerical_rank(x)) == 4
    assert float(numerical_rank(x, rtol=0.05)) == 2
    assert float(numerical_rank(x, rtol=0.005)) == 3


# ---------------------------------------------------------------------------------------
# Closed forms


ISOTROPIC_VALUES = {
    "effective_rank": lambda d: d,
    "effective_rank_eigen": lambda d: d,
    "participation_ratio": lambda d: d,
    "stable_rank": lambda d: d,
    "numerical_rank": lambda d: d,
    "von_neumann_entropy": lambda d: math.log(d),
}


def _measure(spec: Spectrum, name: str) -> torch.Tensor:
    if name == "effective_rank_eigen":
        return spec.effective_rank(method="eigen")
    method: Callable[[], torch.Tensor] = getattr(spec, name)
    return method()


@pytest.mark.parametrize("d", [1, 4, 16], ids=lambda d: f"d{d}")
@pytest.mark.parametrize("name", list(ISOTROPIC_VALUES))
def test_isotropic_data_closed_forms(name: str, d: int) -> None:
    spec = covariance_spectrum(isotropic(80, d, seed=d))
    assert float(_measure(spec, name)) == pytest.approx(ISOTROPIC_VALUES[name](d), rel=1e-10)


def test_isotropic_data_has_a_flat_spectrum() -> None:
    spec = covariance_spectrum(isotropic(50, 6, seed=1))
    np.testing.assert_allclose(spec.eigenvalues.numpy(), 1.5, rtol=1e-12)
    np.testing.assert_allclose(spec.explained_variance_ratio.numpy(), 1 / 6, rtol=1e-12)
    assert float(spec.spectral_decay()) == pytest.approx(0.0, abs=1e-10)


RANK_ONE_VALUES = {
    "effective_rank": 1.0,
    "effective_rank_eigen": 1.0,
    "participation_ratio": 1.0,
    "stable_rank": 1.0,
    "numerical_rank": 1.0,
    "von_neumann_entropy": 0.0,
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(RANK_ONE_VALUES))
def test_rank_one_data_closed_forms(name: str, dtype: type) -> None:
    """Exact: the noise directions of rank-one data fall below the resolution and are 0."""
    spec = covariance_spectrum(rank_one(300, 40, seed=2).astype(dtype))
    assert float(_measure(spec, name)) == pytest.approx(RANK_ONE_VALUES[name], abs=1e-12)


def test_rank_one_spectrum_has_exact_zeros() -> None:
    spec = covariance_spectrum(rank_one(100, 7, seed=3))
    assert int((spec.eigenvalues > 0).sum()) == 1
    assert float(spec.explained_variance_ratio[0]) == 1.0


def test_rank_one_entropy_with_ridge_matches_its_closed_form() -> None:
    d, ridge = 5, 0.01
    x = rank_one(100, d, seed=4)
    lam = float(covariance_spectrum(x).eigenvalues[0])
    eps = ridge * lam / d  # the relative ridge: ridge · tr Σ / d
    mu = np.array([lam + eps] + [eps] * (d - 1)) / (lam + d * eps)
    assert float(von_neumann_entropy(x, ridge=ridge)) == pytest.approx(np_entropy(mu), rel=1e-10)


@pytest.mark.parametrize("weighted", [False, True], ids=["ols", "weighted"])
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0], ids=lambda a: f"alpha{a}")
def test_spectral_decay_recovers_an_exact_power_law(alpha: float, weighted: bool) -> None:
    d = 30
    lam = 7.0 * np.arange(1, d + 1) ** -alpha
    x = with_spectrum(lam, 200, seed=5)
    got = spectral_decay(x, weighted=weighted)
    assert float(got) == pytest.approx(alpha, rel=1e-9)


@pytest.mark.parametrize("fit_range", [(1, None), (3, 20), (6, 100)], ids=str)
def test_spectral_decay_fit_range_selects_the_ranks(fit_range: tuple[int, int | None]) -> None:
    """A broken power law: ranks 1-5 decay with α=3, later ranks with α=1."""
    i = np.arange(1, 41, dtype=float)
    lam = np.where(i <= 5, i**-3.0, 5.0**-2.0 * i**-1.0)
    x = with_spectrum(lam, 200, seed=6)
    first, last = fit_range
    stop = 40 if last is None else min(last, 40)
    ranks = np.arange(first, stop + 1)
    expected = -np.polyfit(np.log(ranks), np.log(lam[ranks - 1]), 1)[0]
    assert float(spectral_decay(x, fit_range=fit_range)) == pytest.approx(expected, rel=1e-9)


def test_spectral_decay_weighted_matches_stringer_formula() -> None:
    """Weights 1/i as in Stringer et al.'s get_powerlaw (solve (XᵀWX) b = XᵀWy)."""
    rng = np.random.default_rng(7)
    lam = np.sort(rng.uniform(0.1, 1.0, size=25) * np.arange(1, 26) ** -1.3)[::-1]
    x = with_spectrum(lam, 120, seed=7)
    ranks = np.arange(2, 21)
    design = np.column_stack([-np.log(ranks), np.ones_like(ranks, dtype=float)])
    w = 1.0 / ranks
    b = np.linalg.solve(
        design.T @ (design * w[:, None]), (design * w[:, None]).T @ np.log(lam[1:20])
    )
    got = spectral_decay(x, fit_range=(2, 20), weighted=True)
    assert float(got) == pytest.approx(b[0], rel=1e-9)


# ---------------------------------------------------------------------------------------
# Properties


def _summary(x: np.ndarray) -> dict[str, float]:
    return {k: float(v) for k, v in covariance_spectrum(x).summary().items()}


@FAST
@given(seed=SEEDS)
def test_invariant_to_orthogonal_transforms_of_the_features(seed: int) -> None:
    x = generic(seed)
    q = orthogonal(np.random.default_rng(seed + 1), x.shape[1])
    a, b = _summary(x), _summary(x @ q)
    assert a.keys() == b.keys()
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-8, abs=1e-12), key


@FAST
@given(seed=SEEDS)
def test_invariant_to_sample_order(seed: int) -> None:
    x = generic(seed)
    perm = np.random.default_rng(seed).permutation(x.shape[0])
    a, b = _summary(x), _summary(x[perm])
    for key in a:
        # Reordering rows reorders the float64 sums: the smallest eigenvalues, to which
        # spectral_decay's log-log fit is most sensitive, move by ~1e-10 relative (seed
        # 103477490), so the same tolerance as under rotations.
        assert b[key] == pytest.approx(a[key], rel=1e-8, abs=1e-12), key


@FAST
@given(seed=SEEDS, scale=st.floats(0.01, 100.0), shift=st.floats(-50.0, 50.0))
def test_scale_free_measures_invariant_to_scaling_and_translation(
    seed: int, scale: float, shift: float
) -> None:
    x = generic(seed)
    a, b = _summary(x), _summary(scale * x + shift)
    for key in ("effective_rank", "participation_ratio", "stable_rank"):
        assert b[key] == pytest.approx(a[key], rel=1e-8), key
    # spectral_decay is a log-log fit down to the smallest eigenvalues, which carry the
    # float64 rounding of scale · x relative to the largest: 6e-8 at seed 22661586, scale 3
    assert b["spectral_decay"] == pytest.approx(a["spectral_decay"], rel=1e-6)
    assert b["von_neumann_entropy"] == pytest.approx(a["von_neumann_entropy"], rel=1e-8)


@FAST
@given(seed=SEEDS)
def test_ranges(seed: int) -> None:
    spec = covariance_spectrum(generic(seed, d=6))
    rank = float(spec.numerical_rank())
    for name in ("effective_rank", "participation_ratio", "stable_rank"):
        value = float(getattr(spec, name)())
        assert 1.0 - 1e-12 <= value <= rank + 1e-9, name
    assert 0.0 <= float(spec.von_neumann_entropy()) <= math.log(6) + 1e-12
    assert float(spec.explained_variance_ratio.sum()) == pytest.approx(1.0, rel=1e-12)
    assert bool((spec.eigenvalues[:-1] >= spec.eigenvalues[1:]).all())


def split_rows(x: np.ndarray, cuts: list[int]) -> list[np.ndarray]:
    edges = [0, *sorted(set(cuts)), x.shape[0]]
    return [x[a:b] for a, b in itertools.pairwise(edges) if b > a]


@FAST
@given(seed=SEEDS, cuts=st.lists(st.integers(1, 59), max_size=5))
def test_streaming_equals_one_shot_over_any_split(seed: int, cuts: list[int]) -> None:
    x = generic(seed)
    metric = CovarianceSpectrum()
    for batch in split_rows(x, cuts):
        metric.update(batch)
    got = metric.compute()
    expected = covariance_spectrum(x)
    assert isinstance(got, Spectrum)
    # float64 eigh resolves eigenvalues to ~eps64 · λ_max in absolute terms: a random draw
    # can make the smallest eigenvalue ~1e-10 λ_max, which no rtol on it alone can hold.
    top = float(expected.eigenvalues[0])
    np.testing.assert_allclose(
        got.eigenvalues.numpy(), expected.eigenvalues.numpy(), rtol=1e-9, atol=1e-13 * top
    )
    for key, value in expected.summary().items():
        assert float(got.summary()[key]) == pytest.approx(float(value), rel=1e-9), key


# ---------------------------------------------------------------------------------------
# Types, precision and streaming details


@pytest.mark.parametrize("name", list(SCALARS))
def test_scalars_are_0_dim_float64_tensors(name: str) -> None:
    value = SCALARS[name](generic(8).astype(np.float32))
    assert isinstance(value, torch.Tensor)
    assert value.shape == () and value.dtype == F64


def test_float32_input_agrees_with_float64() -> None:
    """float32 products accumulated in float64: ~1e-6 relative on a well-spread spectrum."""
    x = generic(9, n=500)
    a, b = _summary(x), _summary(x.astype(np.float32))
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-5), key


def test_large_offset_float64_data_keeps_its_rank() -> None:
    """The centering of the moments loses ~eps·n·|mean|²; the floor tracks it."""
    x = rank_one(500, 10, seed=10) + 1e3
    assert float(numerical_rank(x)) == 1
    assert float(effective_rank(x)) == pytest.approx(1.0, abs=1e-12)


def test_spectrum_from_moments_is_the_shared_core() -> None:
    x = torch.as_tensor(generic(11))
    spec = spectrum_from_moments(paired_moments(x), input_dtype=F64)
    torch.testing.assert_close(spec.eigenvalues, covariance_spectrum(x).eigenvalues)


def test_spectrum_methods_equal_the_functions() -> None:
    x = generic(12)
    spec = covariance_spectrum(x)
    for name, fn in SCALARS.items():
        assert float(getattr(spec, name)()) == float(fn(x)), name


def test_streaming_tracks_the_least_precise_input_dtype() -> None:
    x = generic(13)
    metric = CovarianceSpectrum()
    metric.update(x)
    assert metric.compute().input_dtype == F64
    metric.update(x.astype(np.float32))
    assert metric.compute().input_dtype == torch.float32
    metric.reset()
    metric.update(x)
    assert metric.compute().input_dtype == F64


def test_streaming_single_feature_keeps_a_1d_spectrum() -> None:
    metric = CovarianceSpectrum()
    metric.update(generic(14)[:, :1])
    spec = metric.compute()
    assert spec.eigenvalues.shape == (1,)
    assert float(spec.effective_rank()) == 1.0


def test_summary_without_two_nonzero_eigenvalues_omits_spectral_decay() -> None:
    summary = covariance_spectrum(rank_one(30, 3, seed=15)).summary()
    assert "spectral_decay" not in summary
    assert set(summary) == {
        "total_variance",
        "effective_rank",
        "participation_ratio",
        "stable_rank",
        "numerical_rank",
        "von_neumann_entropy",
    }


def test_numpy_float32_and_torch_inputs_are_accepted() -> None:
    x = generic(16)
    a = float(effective_rank(x))
    assert float(effective_rank(torch.as_tensor(x))) == a
    assert float(effective_rank(x.astype(np.float32))) == pytest.approx(a, rel=1e-5)


# ---------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("value", [0.1, 3.7, -1e5], ids=["0.1", "3.7", "-1e5"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_zero_variance_is_degenerate(value: float, dtype: type) -> None:
    x = np.full((50, 4), value, dtype=dtype)
    with pytest.raises(DegenerateInputError, match="zero variance"):
        covariance_spectrum(x)


@pytest.mark.parametrize("name", list(SCALARS))
def test_every_scalar_refuses_zero_variance(name: str) -> None:
    with pytest.raises(DegenerateInputError, match="constant or dead layer"):
        SCALARS[name](np.ones((10, 3)))


def test_one_sample_is_too_few() -> None:
    with pytest.raises(TooFewSamplesError, match="needs at least 2"):
        effective_rank(np.ones((1, 3)))


def test_one_dimensional_input_is_refused() -> None:
    with pytest.raises(ShapeError, match=r"reshape\(-1, 1\)"):
        effective_rank(np.arange(5.0))


@pytest.mark.parametrize(
    "fit_range",
    [(0, None), (3, 3), (5, 2), (1,), "1:10", (1.5, None)],
    ids=["zero", "single", "reversed", "short", "string", "float"],
)
def test_bad_fit_range_is_refused(fit_range: object) -> None:
    with pytest.raises((InvalidOptionError, TypeError), match="fit_range"):
        spectral_decay(generic(17), fit_range=fit_range)  # type: ignore[arg-type]


def test_fit_range_beyond_the_numerical_rank_is_degenerate() -> None:
    x = rank_one(40, 5, seed=18) + rank_one(40, 5, seed=19)  # rank 2
    with pytest.raises(DegenerateInputError, match="holds 0 non-zero eigenvalues"):
        spectral_decay(x, fit_range=(3, 5))


@pytest.mark.parametrize("rtol", [-0.1, 1.0, float("nan")], ids=["negative", "one", "nan"])
def test_bad_rtol_is_refused(rtol: float) -> None:
    with pytest.raises(InvalidOptionError, match="rtol must lie in"):
        numerical_rank(generic(20), rtol=rtol)


def test_negative_entropy_ridge_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="ridge must lie in"):
        von_neumann_entropy(generic(21), ridge=-1e-3)


def test_unknown_effective_rank_kind_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="method must be one of"):
        effective_rank(generic(22), method="svd")  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
def test_streaming_compute_before_two_samples_is_refused() -> None:
    metric = CovarianceSpectrum()
    with pytest.raises(TooFewSamplesError, match="has seen 0 samples"):
        metric.compute()
    metric.update(generic(23)[:1])
    with pytest.raises(TooFewSamplesError, match="has seen 1 samples"):
        metric.compute()


def test_streaming_batches_of_other_widths_are_refused() -> None:
    metric = CovarianceSpectrum()
    metric.update(generic(24))
    with pytest.raises(ShapeError, match="earlier batches had 5"):
        metric.update(generic(24)[:, :3])


def test_spectrum_as_dict_is_plain_python() -> None:
    spec = covariance_spectrum(generic(23).astype(np.float32))
    plain = spec.as_dict()
    assert plain["input_dtype"] == "float32"
    assert isinstance(plain["eigenvalues"], list) and isinstance(plain["n_samples"], int)
    assert plain["noise_floor"] == spec.noise_floor

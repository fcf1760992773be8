"""Neuron matching (Convergent Learning): correlations, matchings, curves, lasso, clusters."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.align.matching import (
    UnitCorrelation,
    joint_correlation,
    match_units,
    matched_correlation_curves,
    sparse_prediction,
    sparse_prediction_from_moments,
    spectral_unit_clusters,
    unit_correlation,
    unit_correlation_from_moments,
    unit_matching,
    unit_matching_from_correlation,
)
from subspaces.linalg.moments import MomentSums, accumulate_moments, center_moments

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mixed(n: int, d: int, seed: int, dtype: torch.dtype = F64) -> torch.Tensor:
    """Activations with correlated units (a random mixing of Gaussian sources)."""
    g = _gen(seed)
    return (torch.randn(n, d, generator=g) @ torch.randn(d, d, generator=g)).to(dtype)


def _latent(n: int, k: int, seed: int) -> torch.Tensor:
    return torch.randn(n, k, generator=_gen(seed), dtype=F64)


def _blocks(
    latent: torch.Tensor, sizes: tuple[int, ...], seed: int, noise: float = 0.5
) -> torch.Tensor:
    """Units in groups, each a noisy copy of one latent (group k copies latent column k)."""
    g, n = _gen(seed), latent.shape[0]
    cols = [
        latent[:, [k]].repeat(1, size) + noise * torch.randn(n, size, generator=g, dtype=F64)
        for k, size in enumerate(sizes)
    ]
    return torch.cat(cols, 1)


# ---------------------------------------------------------------------------------------
# correlations


def test_unit_correlation_equals_numpy_corrcoef() -> None:
    x, y = _mixed(50, 4, 0), _mixed(50, 3, 1)
    expected = np.corrcoef(x.numpy(), y.numpy(), rowvar=False)[:4, 4:]
    # float64 input and float64 moments: only rounding differs
    np.testing.assert_allclose(unit_correlation(x, y).numpy(), expected, atol=1e-12)


def test_within_correlation_equals_corrcoef_with_unit_diagonal() -> None:
    x = _mixed(40, 5, 2)
    within = unit_correlation(x)
    np.testing.assert_allclose(within.numpy(), np.corrcoef(x.numpy(), rowvar=False), atol=1e-12)
    assert bool((torch.diagonal(within) == 1).all())


def test_joint_correlation_blocks_are_the_three_matrices() -> None:
    x, y = _mixed(40, 4, 3), _mixed(40, 3, 4)
    joint = joint_correlation(x, y)
    torch.testing.assert_close(joint.cross, unit_correlation(x, y))
    torch.testing.assert_close(joint.within_x, unit_correlation(x))
    torch.testing.assert_close(joint.within_y, unit_correlation(y))


def test_float32_input_gives_float64_correlation_close_to_float64_path() -> None:
    x, y = _mixed(400, 6, 5), _mixed(400, 4, 6)
    r32 = unit_correlation(x.float(), y.float())
    assert r32.dtype == F64
    # the float32 rounding of the inputs and products: ~1e-7 relative
    torch.testing.assert_close(r32, unit_correlation(x, y), atol=1e-5, rtol=0)


@pytest.mark.parametrize("splits", [(10, 30, 60), (1, 99), (50, 50)], ids=str)
def test_streaming_equals_one_shot(splits: tuple[int, ...]) -> None:
    x, y = _mixed(100, 4, 7) * 10 + 3, _mixed(100, 3, 8)
    metric = UnitCorrelation()
    for xb, yb in zip(x.split(list(splits)), y.split(list(splits)), strict=True):
        metric.update(xb, yb)
    torch.testing.assert_close(metric.compute(), unit_correlation(x, y), atol=1e-12, rtol=0)
    torch.testing.assert_close(metric.joint().within_y, unit_correlation(y), atol=1e-12, rtol=0)


def test_constant_unit_of_x_raises_with_its_index() -> None:
    x = _mixed(30, 4, 9)
    x[:, 2] = 5.3  # constant far from the origin: rounding must not pass for variance
    with pytest.raises(DegenerateInputError, match=r"x has 1 constant unit.*indices \[2\]"):
        unit_correlation(x, _mixed(30, 3, 10))


def test_constant_unit_of_y_raises() -> None:
    y = _mixed(30, 3, 11)
    y[:, 0] = 0.0
    with pytest.raises(DegenerateInputError, match=r"y has 1 constant unit.*constant='zero'"):
        match_units(_mixed(30, 3, 12), y)


def test_constant_zero_policy_gives_zero_correlation() -> None:
    x = _mixed(30, 3, 13)
    x[:, 1] = -2.0
    joint = joint_correlation(x, _mixed(30, 2, 14), constant="zero")
    assert bool((joint.cross[1] == 0).all())
    assert joint.within_x[1, 1] == 1 and bool((joint.within_x[1, [0, 2]] == 0).all())
    assert joint.constant_x.tolist() == [False, True, False]


def test_different_sample_counts_are_refused() -> None:
    with pytest.raises(ShapeError, match=r"x has 20 rows.*y has 19"):
        unit_correlation(torch.randn(20, 3), torch.randn(19, 3))


def test_one_sample_is_too_few() -> None:
    with pytest.raises(TooFewSamplesError, match="x has 1 samples"):
        match_units(torch.randn(1, 3), torch.randn(1, 3))


def test_unknown_constant_policy_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="constant must be one of 'raise', 'zero'"):
        unit_correlation(torch.randn(5, 2), torch.randn(5, 2), constant="drop")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# one-to-one matching


@pytest.mark.parametrize("method", ["hungarian", "semi"])
@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["float32", "float64"])
def test_permuted_copy_matches_with_the_permutation(method: str, dtype: torch.dtype) -> None:
    x = _mixed(200, 16, 15, dtype)
    perm = torch.randperm(16, generator=_gen(16))
    y = x[:, perm]
    idx = match_units(x, y, method=method)  # type: ignore[arg-type]
    # y[:, j] = x[:, perm[j]], so unit i of x is unit argsort(perm)[i] of y
    assert idx.tolist() == torch.argsort(perm).tolist()
    assert torch.equal(y[:, idx], x)


def test_permuted_copy_has_matched_correlation_one() -> None:
    x = _mixed(100, 6, 17)
    result = unit_matching(x, x[:, [3, 1, 0, 5, 4, 2]] * 2 + 7)
    torch.testing.assert_close(result.correlations, torch.ones(6, dtype=F64))
    assert result.method == "hungarian" and bool(result.matched.all())


def test_hungarian_is_one_to_one_when_x_is_narrower() -> None:
    idx = match_units(_mixed(80, 4, 18), _mixed(80, 7, 19))
    assert len(set(idx.tolist())) == 4 and bool((idx >= 0).all()) and bool((idx < 7).all())


def test_hungarian_leaves_extra_units_of_x_unmatched() -> None:
    x = _mixed(80, 6, 20)
    y = x[:, [4, 0, 2]]  # units 1, 3 and 5 of x have no copy in y
    result = unit_matching(x, y)
    assert result.indices.tolist() == [1, -1, 2, -1, 0, -1]
    assert result.matched.tolist() == [True, False, True, False, True, False]
    assert bool(torch.isnan(result.correlations[~result.matched]).all())


def test_hungarian_maximizes_the_total_correlation() -> None:
    corr = torch.rand(5, 5, generator=_gen(21), dtype=F64) * 2 - 1
    best = max(
        sum(float(corr[i, p[i]]) for i in range(5)) for p in itertools.permutations(range(5))
    )
    result = unit_matching_from_correlation(corr)
    assert float(result.correlations.sum()) == pytest.approx(best, abs=1e-12)


def test_semi_matching_reuses_a_unit_hungarian_does_not() -> None:
    y = _mixed(100, 3, 22)
    noise = torch.randn(100, 2, generator=_gen(23), dtype=F64)
    x = y[:, [0, 0]] + 0.1 * noise  # two units of x both resemble unit 0 of y
    assert match_units(x, y, method="semi").tolist() == [0, 0]
    assert len(set(match_units(x, y).tolist())) == 2


def test_absolute_matches_a_negated_copy() -> None:
    x = _mixed(100, 5, 24)
    y = -x[:, [2, 0, 1, 4, 3]]
    assert match_units(x, y, absolute=True).tolist() == [1, 2, 0, 4, 3]
    result = unit_matching(x, y, absolute=True)
    torch.testing.assert_close(result.correlations, -torch.ones(5, dtype=F64))


def test_matching_from_numpy_correlation() -> None:
    corr = np.array([[0.1, 0.9], [0.8, 0.7]])
    assert unit_matching_from_correlation(corr).indices.tolist() == [1, 0]
    assert unit_matching_from_correlation(corr, method="semi").indices.tolist() == [1, 0]


def test_unknown_method_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="method must be one of 'hungarian', 'semi'"):
        match_units(torch.randn(5, 2), torch.randn(5, 2), method="greedy")  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    d1=st.integers(1, 6),
    d2=st.integers(1, 6),
    method=st.sampled_from(["hungarian", "semi"]),
)
def test_permuting_units_of_y_permutes_the_match(seed: int, d1: int, d2: int, method: str) -> None:
    x, y = _mixed(40, d1, seed), _mixed(40, d2, seed + 1)
    perm = torch.randperm(d2, generator=_gen(seed + 2))
    before = match_units(x, y, method=method)  # type: ignore[arg-type]
    after = match_units(x, y[:, perm], method=method)  # type: ignore[arg-type]
    inverse = torch.argsort(perm)
    expected = torch.where(before >= 0, inverse[before.clamp_min(0)], before)
    assert after.tolist() == expected.tolist()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    log_scale=st.lists(st.floats(-3, 3), min_size=4, max_size=4),
    shift=st.floats(-100, 100),
    method=st.sampled_from(["hungarian", "semi"]),
)
def test_match_is_invariant_to_positive_affine_maps_of_units(
    seed: int, log_scale: list[float], shift: float, method: str
) -> None:
    x, y = _mixed(40, 4, seed), _mixed(40, 4, seed + 1)
    scale = torch.tensor(log_scale, dtype=F64).exp()
    before = match_units(x, y, method=method)  # type: ignore[arg-type]
    after = match_units(x * scale + shift, y / scale - shift, method=method)  # type: ignore[arg-type]
    assert after.tolist() == before.tolist()


# ---------------------------------------------------------------------------------------
# matched correlation curves


def test_curves_of_a_permuted_copy_are_one_above_the_baseline() -> None:
    x = _mixed(200, 8, 25)
    curves = matched_correlation_curves(x, x[:, torch.randperm(8, generator=_gen(26))])
    ones = torch.ones(8, dtype=F64)
    torch.testing.assert_close(curves.semi, ones)
    torch.testing.assert_close(curves.one_to_one, ones)
    assert curves.baseline is not None and float(curves.baseline.mean()) < 0.9


def test_curves_semi_is_sorted_and_at_least_one_to_one() -> None:
    curves = matched_correlation_curves(_mixed(100, 6, 27), _mixed(100, 6, 28), n_random=0)
    assert bool((curves.semi[:-1] >= curves.semi[1:]).all())
    assert bool((curves.semi >= curves.one_to_one - 1e-12).all())
    assert curves.baseline is None
    assert sorted(curves.order.tolist()) == list(range(6))


def test_curves_baseline_is_reproducible_with_a_generator() -> None:
    x, y = _mixed(60, 5, 29), _mixed(60, 3, 30)
    a = matched_correlation_curves(x, y, generator=_gen(0)).baseline
    b = matched_correlation_curves(x, y, generator=_gen(0)).baseline
    assert a is not None and b is not None and torch.equal(a, b) and a.shape == (5,)


def test_curves_refuse_negative_draws() -> None:
    with pytest.raises(InvalidOptionError, match="n_random must be at least 0"):
        matched_correlation_curves(torch.randn(5, 2), torch.randn(5, 2), n_random=-1)


# ---------------------------------------------------------------------------------------
# one-to-many: lasso


def _sparse_targets(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.randn(300, 8, generator=_gen(seed), dtype=F64)
    coefs = torch.zeros(8, 3, dtype=F64)
    coefs[0, 0], coefs[3, 0] = 1.0, -2.0  # y0 = x0 - 2 x3
    coefs[5, 1] = 1.5  # y1 = 1.5 x5
    coefs[[1, 2, 6], 2] = torch.tensor([1.0, 1.0, -1.0], dtype=F64)  # y2 = x1 + x2 - x6
    return x, x @ coefs + 4.0, coefs


def test_lasso_recovers_the_support_of_sparse_combinations() -> None:
    x, y, coefs = _sparse_targets(31)
    result = sparse_prediction(x, y, alphas=[1e-3])
    assert result.n_predictors[0].tolist() == [2, 1, 3]
    assert torch.equal(result.weights[0] != 0, coefs != 0)
    assert bool((result.r2[0] > 0.999).all())


def test_lasso_without_penalty_is_least_squares() -> None:
    g = _gen(32)
    x, y = torch.randn(100, 5, generator=g, dtype=F64), torch.randn(100, 2, generator=g, dtype=F64)
    result = sparse_prediction(x, y, alphas=0.0, standardize=False, tol=1e-12)
    design = torch.cat([x, torch.ones(100, 1, dtype=F64)], 1)
    solution = torch.linalg.lstsq(design, y).solution
    # coordinate descent to tol 1e-12 on a well-conditioned 5 × 5 problem
    torch.testing.assert_close(result.weights[0], solution[:5], atol=1e-8, rtol=0)
    torch.testing.assert_close(result.intercepts[0], solution[5], atol=1e-8, rtol=0)


def test_lasso_with_a_large_penalty_uses_no_predictor() -> None:
    x, y, _ = _sparse_targets(34)
    # standardized, the smallest penalty that zeroes everything is max |corr(x_i, y_j)| <= 1
    result = sparse_prediction(x, y, alphas=[1.5])
    assert result.n_predictors.tolist() == [[0, 0, 0]]
    torch.testing.assert_close(result.r2[0], torch.zeros(3, dtype=F64))
    torch.testing.assert_close(result.intercepts[0], y.mean(0))


@pytest.mark.parametrize("standardize", [True, False], ids=["standardized", "raw"])
def test_lasso_weights_predict_in_raw_units_with_the_reported_r2(standardize: bool) -> None:
    x, y = _mixed(120, 6, 35) * 3 + 1, _mixed(120, 2, 36) - 5
    result = sparse_prediction(x, y, alphas=[0.05, 0.3], standardize=standardize, tol=1e-10)
    for k in range(2):
        pred = x @ result.weights[k] + result.intercepts[k]
        r2 = 1 - ((y - pred) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
        torch.testing.assert_close(result.r2[k], r2, atol=1e-10, rtol=0)
    torch.testing.assert_close(result.nmse, 1 - result.r2)


def test_lasso_keeps_the_order_of_the_penalties() -> None:
    x, y, _ = _sparse_targets(37)
    result = sparse_prediction(x, y, alphas=[0.1, 1.5, 1e-3])
    assert result.alphas.tolist() == [0.1, 1.5, 1e-3]
    assert result.n_predictors[1].tolist() == [0, 0, 0]
    assert result.n_predictors[2].tolist() == [2, 1, 3]


def test_standardized_lasso_is_invariant_to_rescaling_units() -> None:
    x, y = _mixed(100, 5, 38), _mixed(100, 2, 39)
    scale = torch.tensor([0.01, 1.0, 30.0, 2.0, 0.5], dtype=F64)
    a = sparse_prediction(x, y, alphas=[0.1], tol=1e-12)
    b = sparse_prediction(x * scale + 3, y * 7, alphas=[0.1], tol=1e-12)
    assert torch.equal(a.n_predictors, b.n_predictors)
    torch.testing.assert_close(a.r2, b.r2, atol=1e-9, rtol=0)


def test_lasso_from_streaming_moments_equals_the_function() -> None:
    x, y, _ = _sparse_targets(40)
    metric = UnitCorrelation()
    for xb, yb in zip(x.split(70), y.split(70), strict=True):
        metric.update(xb, yb)
    streamed = sparse_prediction_from_moments(metric.moments(), alphas=[0.01])
    direct = sparse_prediction(x, y, alphas=[0.01])
    torch.testing.assert_close(streamed.weights, direct.weights, atol=1e-9, rtol=0)


def test_constant_unit_of_x_never_predicts() -> None:
    x, y, _ = _sparse_targets(41)
    x[:, 7] = 2.5
    result = sparse_prediction(x, y, alphas=[1e-3])
    assert bool((result.weights[0, 7] == 0).all())


def test_lasso_constant_unit_of_y_raises() -> None:
    y = torch.randn(30, 2, dtype=F64)
    y[:, 1] = 1.0
    with pytest.raises(DegenerateInputError, match=r"y has 1 constant unit.*indices \[1\]"):
        sparse_prediction(torch.randn(30, 3, dtype=F64), y, alphas=[0.1])


@pytest.mark.parametrize(
    ("alphas", "error", "message"),
    [
        ([], InvalidOptionError, "alphas is empty"),
        ([0.1, -1.0], InvalidOptionError, "alphas must be finite and >= 0, got -1.0"),
        ([float("nan")], InvalidOptionError, "alphas must be finite"),
        ("0.1", InputTypeError, "alphas must be a number or a sequence"),
        (["a"], InputTypeError, "alphas must hold real numbers"),
    ],
    ids=["empty", "negative", "nan", "string", "non-numeric"],
)
def test_bad_penalties_are_refused(alphas: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        sparse_prediction(torch.randn(10, 2), torch.randn(10, 2), alphas=alphas)


def test_bad_tolerance_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match=r"tol must lie in \(0.0, inf\), got 0"):
        sparse_prediction(torch.randn(10, 2), torch.randn(10, 2), alphas=[0.1], tol=0)


def test_lasso_warns_when_not_converged() -> None:
    x = _mixed(50, 6, 42)
    x = torch.cat([x, x[:, :3] + 1e-3 * _mixed(50, 3, 43)], 1)  # nearly collinear units
    with pytest.warns(UserWarning, match="did not converge for alpha=1e-06 in max_iter=1"):
        result = sparse_prediction(x, _mixed(50, 2, 44), alphas=[1e-6], max_iter=1)
    assert result.converged.tolist() == [False]


# ---------------------------------------------------------------------------------------
# many-to-many: spectral clustering


def test_spectral_clusters_recover_shared_latent_groups() -> None:
    latent = _latent(400, 3, 45)
    x = _blocks(latent, (4, 4, 4), 1)
    y = _blocks(latent, (3, 3, 3), 2, noise=0.6)  # the same latents, other noise
    clusters = spectral_unit_clusters(x, y, n_clusters=3, generator=_gen(0))
    assert clusters.labels_x.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert clusters.labels_y.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    assert clusters.affinity.shape == (21, 21)


def test_spectral_absolute_affinity_ignores_sign_flips() -> None:
    latent = _latent(300, 2, 46)
    x, y = _blocks(latent, (3, 3), 1), _blocks(latent, (2, 2), 2, noise=0.4)
    flipped = y * torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=F64)
    a = spectral_unit_clusters(x, y, n_clusters=2, generator=_gen(1))
    b = spectral_unit_clusters(x, flipped, n_clusters=2, generator=_gen(1))
    assert a.labels_y.tolist() == b.labels_y.tolist() == [0, 0, 1, 1]


def test_spectral_labels_are_reproducible_with_a_generator() -> None:
    x, y = _mixed(80, 6, 47), _mixed(80, 5, 48)
    a = spectral_unit_clusters(x, y, n_clusters=4, generator=_gen(3))
    b = spectral_unit_clusters(x, y, n_clusters=4, generator=_gen(3))
    assert torch.equal(a.labels_x, b.labels_x) and torch.equal(a.labels_y, b.labels_y)


def test_spectral_refuses_more_clusters_than_units() -> None:
    with pytest.raises(InvalidOptionError, match=r"n_clusters=6 exceeds the 5 units.*\(3 \+ 2\)"):
        spectral_unit_clusters(torch.randn(20, 3), torch.randn(20, 2), n_clusters=6)


def test_spectral_refuses_zero_clusters() -> None:
    with pytest.raises(InvalidOptionError, match="n_clusters must be at least 1"):
        spectral_unit_clusters(torch.randn(20, 3), torch.randn(20, 2), n_clusters=0)


def test_spectral_refuses_an_unknown_affinity() -> None:
    with pytest.raises(InvalidOptionError, match="affinity must be one of 'absolute', 'positive'"):
        spectral_unit_clusters(
            torch.randn(20, 3),
            torch.randn(20, 2),
            n_clusters=2,
            affinity="signed",  # type: ignore[arg-type]
        )


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), log_scale=st.floats(-3, 3), shift=st.floats(-50, 50))
def test_spectral_is_invariant_to_positive_affine_maps(
    seed: int, log_scale: float, shift: float
) -> None:
    latent = _latent(100, 2, seed)
    x, y = _blocks(latent, (2, 3), seed + 1), _blocks(latent, (3, 2), seed + 2, noise=0.7)
    scale = float(np.exp(log_scale))
    a = spectral_unit_clusters(x, y, n_clusters=2, generator=_gen(0))
    b = spectral_unit_clusters(x * scale + shift, y - shift, n_clusters=2, generator=_gen(0))
    assert a.labels_x.tolist() == b.labels_x.tolist()
    assert a.labels_y.tolist() == b.labels_y.tolist()


def test_absolute_curves_report_magnitudes() -> None:
    x = _mixed(100, 5, 49)
    curves = matched_correlation_curves(x, -x[:, [1, 0, 2, 4, 3]], absolute=True)
    torch.testing.assert_close(curves.semi, torch.ones(5, dtype=F64))
    torch.testing.assert_close(curves.one_to_one, torch.ones(5, dtype=F64))
    assert curves.baseline is not None and bool((curves.baseline >= 0).all())


def test_correlation_from_moments_without_cross_terms_raises() -> None:
    state = MomentSums()
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    accumulate_moments(state, x, x + 1.0, cross=False)
    with pytest.raises(InvalidOptionError, match="need the self and cross moments"):
        unit_correlation_from_moments(center_moments(state))

"""Tests of subspaces.similarity.regression: linear (and ridge) regression R²."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import DegenerateInputError, InvalidOptionError, ShapeError
from subspaces.linalg.moments import paired_moments
from subspaces.similarity.regression import (
    LinearRegressionR2,
    RegressionR2,
    linear_regression_r2,
    linear_regression_r2_both_ways,
    linear_regression_r2_from_moments,
)

F64 = torch.float64
SEEDS = st.integers(0, 2**31 - 1)
FAST = settings(max_examples=25, deadline=None)


def correlated(seed: int, n: int = 80, d1: int = 4, d2: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d1)) + rng.normal(size=d1)
    y = x @ rng.normal(size=(d1, d2)) + rng.normal(size=(n, d2)) + 4.0
    return x, y


def well_conditioned(rng: np.random.Generator, d: int) -> np.ndarray:
    q1, _ = np.linalg.qr(rng.normal(size=(d, d)))
    q2, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q1 @ np.diag(rng.uniform(0.5, 2.0, size=d)) @ q2


def np_r2(x: np.ndarray, y: np.ndarray, lam: float = 0.0) -> float:
    """In-sample R² of the (ridge) least-squares fit with intercept, from the data."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    if lam == 0.0:
        b = np.linalg.lstsq(xc, yc, rcond=None)[0]
    else:
        b = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ yc)
    return float(1.0 - np.sum((yc - xc @ b) ** 2) / np.sum(yc**2))


@FAST
@given(seed=SEEDS)
def test_r2_matches_a_least_squares_fit_on_the_data(seed: int) -> None:
    x, y = correlated(seed)
    assert float(linear_regression_r2(x, y)) == pytest.approx(np_r2(x, y), abs=1e-10)


def test_r2_is_one_for_an_affine_function_of_x() -> None:
    x, _ = correlated(1)
    y = x @ np.random.default_rng(1).normal(size=(4, 6)) + 3.0  # d2 > d1: still exact
    torch.testing.assert_close(linear_regression_r2(x, y), torch.tensor(1.0, dtype=F64))


def test_r2_is_in_unit_interval_and_small_for_independent_data() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(2000, 3)), rng.normal(size=(2000, 2))
    r2 = float(linear_regression_r2(x, y))
    # E[R²] ≈ d1 / n = 0.0015 under independence
    assert 0.0 <= r2 < 0.01


@FAST
@given(seed=SEEDS, scale=st.floats(0.01, 100.0))
def test_r2_is_invariant_to_invertible_maps_of_x_and_orthogonal_scaling_of_y(
    seed: int, scale: float
) -> None:
    x, y = correlated(seed)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    xt = x @ well_conditioned(rng, 4) - 5.0
    yt = scale * y @ q + 1.0
    torch.testing.assert_close(
        linear_regression_r2(xt, yt), linear_regression_r2(x, y), rtol=0, atol=1e-10
    )


def test_r2_is_not_symmetric_and_directions_are_consistent() -> None:
    x, y = correlated(3, d1=4, d2=2)
    forward, backward = linear_regression_r2(x, y), linear_regression_r2(y, x)
    assert abs(float(forward) - float(backward)) > 1e-3
    torch.testing.assert_close(linear_regression_r2(x, y, direction="y_to_x"), backward)
    torch.testing.assert_close(
        linear_regression_r2(x, y, direction="symmetric"), 0.5 * (forward + backward)
    )
    both = linear_regression_r2_both_ways(x, y)
    assert isinstance(both, RegressionR2)
    torch.testing.assert_close(both.x_to_y, forward)
    torch.testing.assert_close(both.y_to_x, backward)
    torch.testing.assert_close(both.symmetric, 0.5 * (forward + backward))


def test_collinear_predictor_features_are_handled_by_the_pseudo_inverse() -> None:
    x, y = correlated(4)
    x_dup = np.hstack([x, x[:, :2] @ np.array([[1.0], [-3.0]])])
    torch.testing.assert_close(
        linear_regression_r2(x_dup, y), linear_regression_r2(x, y), rtol=0, atol=1e-10
    )


@pytest.mark.parametrize("ridge", [1e-3, 0.1, 1.0], ids=lambda r: f"ridge{r}")
def test_ridge_r2_matches_the_closed_form_fit(ridge: float) -> None:
    x, y = correlated(5)
    xc = x - x.mean(0)
    lam = ridge * np.trace(xc.T @ xc) / x.shape[1]
    expected = np_r2(x, y, lam=lam)
    assert float(linear_regression_r2(x, y, ridge=ridge)) == pytest.approx(expected, abs=1e-10)


def test_ridge_lowers_r2_monotonically_and_tends_to_ols() -> None:
    x, y = correlated(6)
    values = [float(linear_regression_r2(x, y, ridge=r)) for r in (0.0, 1e-9, 0.01, 0.1, 1.0)]
    assert values[0] == pytest.approx(values[1], abs=1e-8)
    assert all(a >= b for a, b in itertools.pairwise(values))


@FAST
@given(seed=SEEDS, scale=st.floats(0.01, 100.0))
def test_ridge_r2_is_invariant_to_isotropic_scaling_of_x(seed: int, scale: float) -> None:
    x, y = correlated(seed)
    torch.testing.assert_close(
        linear_regression_r2(scale * x, y, ridge=0.1),
        linear_regression_r2(x, y, ridge=0.1),
        rtol=0,
        atol=1e-10,
    )


def test_float32_and_float64_agree() -> None:
    x, y = correlated(7, n=300)
    x32, y32 = torch.tensor(x).float(), torch.tensor(y).float()
    r32 = linear_regression_r2(x32, y32)
    # products run in float64: float32 input gives the float64 result of the same values
    torch.testing.assert_close(
        r32, linear_regression_r2(x32.double(), y32.double()), atol=1e-12, rtol=0
    )
    # and rounding the data to float32 moves R² by ~6e-8 · cond (well conditioned here)
    r64 = linear_regression_r2(torch.tensor(x, dtype=F64), torch.tensor(y, dtype=F64))
    torch.testing.assert_close(r32, r64, rtol=0, atol=1e-5)


@FAST
@given(
    seed=SEEDS,
    cuts=st.lists(st.integers(1, 79), max_size=5),
    direction=st.sampled_from(["x_to_y", "y_to_x", "symmetric"]),
    ridge=st.sampled_from([0.0, 0.5]),
)
def test_streaming_equals_one_shot_over_any_split(
    seed: int, cuts: list[int], direction: str, ridge: float
) -> None:
    x, y = correlated(seed)
    metric = LinearRegressionR2(direction=direction, ridge=ridge)  # type: ignore[arg-type]
    edges = [0, *sorted(set(cuts)), x.shape[0]]
    for a, b in itertools.pairwise(edges):
        metric.update(x[a:b], y[a:b])
    expected = linear_regression_r2(x, y, direction=direction, ridge=ridge)  # type: ignore[arg-type]
    torch.testing.assert_close(metric.compute(), expected, rtol=0, atol=1e-10)


def test_from_moments_core_matches_the_function() -> None:
    x, y = correlated(8)
    m = paired_moments(torch.tensor(x), torch.tensor(y))
    torch.testing.assert_close(
        linear_regression_r2_from_moments(m, input_dtype=F64), linear_regression_r2(x, y)
    )


# ---------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("side", ["x", "y"])
def test_zero_variance_is_refused(side: str) -> None:
    x, y = correlated(9)
    if side == "x":
        x = np.zeros_like(x)
    else:
        y = np.full_like(y, -2.5)
    with pytest.raises(DegenerateInputError, match=f"{side} has zero variance"):
        linear_regression_r2(x, y)


def test_different_sample_counts_are_refused() -> None:
    x, y = correlated(10)
    with pytest.raises(ShapeError, match="same samples in the same order"):
        linear_regression_r2(x[:-2], y)


@pytest.mark.parametrize("ridge", [-0.1, float("inf"), float("nan")], ids=["neg", "inf", "nan"])
def test_invalid_ridge_is_refused(ridge: float) -> None:
    x, y = correlated(11)
    with pytest.raises(InvalidOptionError, match="ridge must lie in"):
        linear_regression_r2(x, y, ridge=ridge)
    with pytest.raises(InvalidOptionError, match="ridge must lie in"):
        LinearRegressionR2(ridge=ridge)


def test_unknown_direction_is_refused() -> None:
    x, y = correlated(12)
    with pytest.raises(InvalidOptionError, match="direction must be one of"):
        linear_regression_r2(x, y, direction="both")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="direction must be one of"):
        LinearRegressionR2(direction="forward")  # type: ignore[arg-type]

"""One-to-many unit matching: sparse prediction by lasso (Convergent Learning)."""

from __future__ import annotations

import pytest
import torch

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
)
from subspaces.align import (
    UnitCorrelation,
    sparse_prediction,
    sparse_prediction_from_moments,
)
from tests.align._units import F64, gen, mixed


def _sparse_targets(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.randn(300, 8, generator=gen(seed), dtype=F64)
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
    g = gen(32)
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
    x, y = mixed(120, 6, 35) * 3 + 1, mixed(120, 2, 36) - 5
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
    x, y = mixed(100, 5, 38), mixed(100, 2, 39)
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
    x = mixed(50, 6, 42)
    x = torch.cat([x, x[:, :3] + 1e-3 * mixed(50, 3, 43)], 1)  # nearly collinear units
    with pytest.warns(UserWarning, match="did not converge for alpha=1e-06 in max_iter=1"):
        result = sparse_prediction(x, mixed(50, 2, 44), alphas=[1e-6], max_iter=1)
    assert result.converged.tolist() == [False]

"""Least squares from moments with the one relative ridge λ = ridge · tr(C) / d."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from subspaces import DegenerateInputError, InputTypeError, InvalidOptionError, ShapeError
from subspaces.linalg.lstsq import (
    LeastSquares,
    check_ridge,
    lstsq_from_moments,
    ridge_eigh,
    ridge_value,
)

F64 = torch.float64


def _data(seed: int, n: int = 40, d1: int = 5, d2: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d1, generator=g, dtype=F64), torch.randn(n, d2, generator=g, dtype=F64)


def test_ols_equals_numpy_lstsq() -> None:
    x, y = _data(0)
    sol = lstsq_from_moments(x.T @ x, x.T @ y)
    expected = np.linalg.lstsq(x.numpy(), y.numpy(), rcond=None)[0]
    np.testing.assert_allclose(sol.weight.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert isinstance(sol, LeastSquares) and sol.rank == 5 and sol.ridge == 0.0


def test_rank_deficient_gives_the_minimum_norm_solution() -> None:
    x, y = _data(1)
    x = torch.cat([x, x[:, :2] + x[:, 2:4]], dim=1)  # two collinear columns: rank 5 of 7
    sol = lstsq_from_moments(x.T @ x, x.T @ y, input_dtype=F64)
    expected = np.linalg.pinv(x.numpy()) @ y.numpy()
    np.testing.assert_allclose(sol.weight.numpy(), expected, rtol=1e-8, atol=1e-10)
    assert sol.rank == 5


def test_ridge_is_relative_to_the_mean_eigenvalue() -> None:
    x, y = _data(2)
    c, g = x.T @ x, x.T @ y
    lam = 0.3 * float(torch.trace(c)) / 5
    expected = torch.linalg.solve(c + lam * torch.eye(5, dtype=F64), g)
    sol = lstsq_from_moments(c, g, ridge=0.3)
    torch.testing.assert_close(sol.weight, expected)
    assert sol.ridge == pytest.approx(lam) and sol.rank == 5


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e4])
def test_ridge_solution_does_not_change_when_x_is_rescaled_with_y(scale: float) -> None:
    x, y = _data(3)
    ref = lstsq_from_moments(x.T @ x, x.T @ y, ridge=0.5).weight
    xs, ys = scale * x, scale * y
    torch.testing.assert_close(lstsq_from_moments(xs.T @ xs, xs.T @ ys, ridge=0.5).weight, ref)


def test_ridge_value_and_eigh_agree() -> None:
    c = torch.diag(torch.tensor([4.0, 2.0, 0.0], dtype=F64))
    assert ridge_value(c, 0.5) == pytest.approx(1.0)
    e = ridge_eigh(c, ridge=0.5)
    torch.testing.assert_close(e.eigenvalues, torch.tensor([5.0, 3.0, 1.0], dtype=F64))
    assert e.rank == 3 and e.ridge == pytest.approx(1.0)
    without = ridge_eigh(c)
    assert without.rank == 2 and without.ridge == 0.0


def test_solve_applies_the_pseudo_inverse() -> None:
    x, _ = _data(4)
    c = x.T @ x
    rhs = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    torch.testing.assert_close(
        ridge_eigh(c, input_dtype=F64).solve(rhs), torch.linalg.pinv(c) @ rhs
    )


def test_ridge_on_a_zero_matrix_is_refused() -> None:
    with pytest.raises(DegenerateInputError, match="no variance"):
        ridge_eigh(torch.zeros(3, 3, dtype=F64), ridge=0.1)


def test_rtol_sets_the_rank() -> None:
    c = torch.diag(torch.tensor([1.0, 1e-6], dtype=F64))
    assert ridge_eigh(c, rtol=1e-3).rank == 1
    assert ridge_eigh(c, rtol=1e-9).rank == 2


def test_mismatched_right_hand_side_is_refused() -> None:
    with pytest.raises(ShapeError, match="cross must be"):
        lstsq_from_moments(torch.eye(3, dtype=F64), torch.ones(2, 1, dtype=F64))


@pytest.mark.parametrize(
    ("ridge", "error"),
    [(-0.1, InvalidOptionError), (float("nan"), InvalidOptionError), ("1", InputTypeError)],
    ids=["negative", "nan", "string"],
)
def test_bad_ridge_is_refused(ridge: object, error: type) -> None:
    with pytest.raises(error, match="ridge"):
        check_ridge(ridge)
    with pytest.raises(error, match="ridge"):
        lstsq_from_moments(torch.eye(2, dtype=F64), torch.ones(2, 1, dtype=F64), ridge=ridge)  # type: ignore[arg-type]


def test_result_as_dict_is_plain() -> None:
    sol = lstsq_from_moments(torch.eye(2, dtype=F64), torch.ones(2, 1, dtype=F64), ridge=1.0)
    assert sol.as_dict() == {"weight": [[0.5], [0.5]], "rank": 2, "ridge": 1.0}

"""Least squares from moments, with the package's one ridge convention (floor 1).

The ridge-regularized normal equations of ``min_B ||Y - X B||_F² + λ ||B||_F²`` are
``(C + λ I) B = G`` with ``C = Xᵀ X`` (d × d, centered or not) and ``G = Xᵀ Y``. ``ridge``
is always **relative** (docs/conventions.md): ``λ = ridge · tr(C) / d``, the ridge times
the mean eigenvalue of ``C``, so that the solution does not change when the data are
rescaled. ``ridge = 0`` is ordinary least squares, solved by the pseudo-inverse on the
numerical range of ``C`` (eigenvalues above ``rtol · λ_max``), the minimum-norm solution
``numpy.linalg.lstsq`` gives for rank-deficient ``X``.

Both go through one float64 eigen-decomposition of ``C`` (:func:`ridge_eigh`); from it
:func:`lstsq_from_moments` forms ``B = U diag(1 / (λ_i + λ)) Uᵀ G``, and measures that need
only the fit's residual (regression R²) use the eigenpairs directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    DegenerateInputError,
    ShapeError,
    check_finite,
    check_float_dtype,
    check_matrix,
    check_optional_rtol,
    check_positive_real,
    check_same_device,
)
from subspaces.linalg.decomp import psd_eigh, psd_range, scatter_rtol

__all__ = [
    "LeastSquares",
    "RidgeEigh",
    "check_ridge",
    "lstsq_from_moments",
    "ridge_eigh",
    "ridge_value",
]

_F64 = torch.float64


def check_ridge(ridge: Any) -> float:
    """A relative ridge option: a finite real ``>= 0`` (``0`` is no ridge).

    Raises:
        InputTypeError, InvalidOptionError: not a real number, negative or not finite.

    Examples:
        >>> check_ridge(0.1)
        0.1
    """
    return check_positive_real(ridge, name="ridge", allow_zero=True)


def _check_square(c: Any, *, name: str = "c") -> Tensor:
    """A finite ``(d, d)`` floating matrix (no magnitude bound: a scatter squares the data)."""
    t = check_matrix(c, name=name, min_samples=1, finite=False)
    if t.shape[0] != t.shape[1]:
        raise ShapeError(f"{name} must be a square (d, d) matrix, got shape {tuple(t.shape)}.")
    return check_finite(t, name=name)


def _check_rhs(rhs: Any, d: int, *, name: str) -> Tensor:
    """A finite ``(d, k)`` right-hand side."""
    t = check_finite(check_matrix(rhs, name=name, min_samples=1, finite=False), name=name)
    if t.shape[0] != d:
        raise ShapeError(
            f"{name} must be ({d}, k) to match the ({d}, {d}) matrix, got shape {tuple(t.shape)}."
        )
    return t


def ridge_value(c: Tensor, ridge: float) -> float:
    """The absolute ridge ``λ = ridge · tr(C) / d`` added to the diagonal of the d × d ``C``.

    Examples:
        >>> import torch
        >>> ridge_value(torch.diag(torch.tensor([3.0, 1.0])), 0.5)
        1.0
    """
    c = _check_square(c)
    ridge = check_ridge(ridge)
    if ridge == 0.0:
        return 0.0
    return ridge * float(torch.trace(c.to(_F64))) / c.shape[0]


@dataclass(frozen=True)
class RidgeEigh(Result):
    """The eigenpairs of ``C + λ I`` that the solution uses (from :func:`ridge_eigh`).

    Attributes:
        eigenvalues: ``(r,)`` float64, decreasing: ``λ_i + λ`` (``λ_i`` on the numerical
            range when ``ridge = 0``, every eigenvalue otherwise).
        eigenvectors: ``(d, r)`` float64, orthonormal columns.
        ridge: the absolute ridge ``λ`` (0.0 without ridge).
        rank: ``r``, the number of eigenpairs used.

    Examples:
        >>> import torch
        >>> e = ridge_eigh(torch.diag(torch.tensor([3.0, 1.0])), ridge=0.5)
        >>> e.eigenvalues.tolist(), e.ridge, e.rank
        ([4.0, 2.0], 1.0, 2)
    """

    eigenvalues: Tensor
    eigenvectors: Tensor
    ridge: float
    rank: int

    def solve(self, rhs: Tensor) -> Tensor:
        """``(C + λ I)⁺ rhs`` for a ``(d, k)`` right-hand side, in float64."""
        u = self.eigenvectors
        rhs = _check_rhs(rhs, u.shape[0], name="rhs")
        check_same_device(u, rhs, names=("the eigenvectors", "rhs"))
        return (u / self.eigenvalues) @ (u.T @ rhs.to(_F64))


def ridge_eigh(
    c: Tensor,
    *,
    ridge: float = 0.0,
    rtol: float | None = None,
    input_dtype: torch.dtype = torch.float32,
) -> RidgeEigh:
    """Eigen-decomposition of the regularized normal matrix ``C + λ I``, ``λ = ridge·tr(C)/d``.

    With ``ridge = 0`` only the numerical range of ``C`` is kept (eigenvalues above
    ``rtol · λ_max``), so that :meth:`RidgeEigh.solve` applies the pseudo-inverse; with
    ``ridge > 0`` every eigenpair, shifted by ``λ``.

    Args:
        c: ``(d, d)`` symmetric PSD matrix (a scatter ``Xᵀ X``, centered or not).
        ridge: relative ridge ``>= 0``.
        rtol: relative rank tolerance with ``ridge = 0``; default
            :func:`~subspaces.linalg.decomp.scatter_rtol` ``(d, input_dtype)``.
        input_dtype: the dtype of the data ``C`` was accumulated from.

    Examples:
        >>> import torch
        >>> ridge_eigh(torch.diag(torch.tensor([2.0, 0.0]))).rank
        1
    """
    c = _check_square(c)
    ridge = check_ridge(ridge)
    rtol = check_optional_rtol(rtol)
    check_float_dtype(input_dtype, name="input_dtype", optional=False)
    d = c.shape[0]
    if ridge == 0.0:
        tol = rtol if rtol is not None else scatter_rtol(d, input_dtype)
        evals, evecs = psd_range(c, rtol=tol)
        return RidgeEigh(evals, evecs, 0.0, int(evals.shape[0]))
    lam = ridge_value(c, ridge)
    evals, evecs = psd_eigh(c)
    if lam <= 0.0:  # a zero matrix: no ridge can make it invertible
        raise DegenerateInputError(
            "the matrix to regularize is zero, so the relative ridge λ = ridge · tr(C) / d is "
            "0 too; the data have no variance."
        )
    return RidgeEigh(evals + lam, evecs, lam, d)


@dataclass(frozen=True)
class LeastSquares(Result):
    """The solution of the (ridge) normal equations (from :func:`lstsq_from_moments`).

    Attributes:
        weight: ``(d1, d2)`` float64, ``B = (C + λ I)⁺ G``.
        rank: the rank of ``C`` used (``d1`` with ridge).
        ridge: the absolute ridge ``λ`` (0.0 without).

    Examples:
        >>> import torch
        >>> sol = lstsq_from_moments(torch.eye(2), torch.tensor([[1.0], [2.0]]), ridge=1.0)
        >>> sol.weight.flatten().tolist(), sol.rank
        ([0.5, 1.0], 2)
    """

    weight: Tensor
    rank: int
    ridge: float


def lstsq_from_moments(
    c: Tensor,
    cross: Tensor,
    *,
    ridge: float = 0.0,
    rtol: float | None = None,
    input_dtype: torch.dtype = torch.float32,
) -> LeastSquares:
    """Solve ``min_B ||Y - X B||_F² + λ ||B||_F²`` from ``C = Xᵀ X`` and ``G = Xᵀ Y``.

    ``B = (C + λ I)⁺ G`` with the relative ridge ``λ = ridge · tr(C) / d``; with
    ``ridge = 0`` the pseudo-inverse on the numerical range of ``C`` (the minimum-norm
    least-squares solution). Pass centered scatters for an affine fit (the intercept is then
    ``μy - Bᵀ μx``, never penalized), raw ones for a linear fit. float64.

    Args:
        c: ``(d1, d1)`` symmetric PSD matrix.
        cross: ``(d1, d2)`` right-hand side.
        ridge: relative ridge ``>= 0``.
        rtol: relative rank tolerance with ``ridge = 0``; default
            :func:`~subspaces.linalg.decomp.scatter_rtol` ``(d1, input_dtype)``.
        input_dtype: the dtype of the data the moments were accumulated from.

    Raises:
        ShapeError: ``cross`` has another number of rows than ``c``.

    Examples:
        >>> import torch
        >>> x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> y = x @ torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
        >>> [round(v, 4) for v in lstsq_from_moments(x.T @ x, x.T @ y).weight.flatten().tolist()]
        [1.0, 2.0, 3.0]
    """
    c = _check_square(c)
    cross = _check_rhs(cross, c.shape[0], name="cross")
    check_same_device(c, cross, names=("c", "cross"))
    e = ridge_eigh(c, ridge=ridge, rtol=rtol, input_dtype=input_dtype)
    return LeastSquares(e.solve(cross), e.rank, e.ridge)

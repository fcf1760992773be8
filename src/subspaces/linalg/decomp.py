"""Stable decompositions of symmetric positive semi-definite (PSD) matrices, in float64.

Covariance-based measures (CCA, regression, shape metrics) need functions of a scatter
matrix ``C = Xc^T Xc`` that may be singular or nearly so: its inverse square root, its
pseudo-inverse, its numerical rank. This module computes them from one symmetric
eigen-decomposition in float64, keeping only the *numerical range*: the eigenvectors whose
eigenvalue exceeds ``rtol * λ_max``. Directions below that threshold are treated as exact
zeros (their inverse is 0, not ``1/λ``), so rounding noise is never amplified.

The tolerance is relative to the largest eigenvalue of ``C`` itself. Its default,
:func:`default_rtol` ``= d · eps(dtype)``, is the convention of ``numpy.linalg.pinv`` and
``torch.linalg.pinv`` for a matrix known to its own precision (use ``torch.float32`` when
``C`` was formed with float32 products). For a scatter matrix ``C = Xcᵀ Xc`` formed with
exact (float64) products from data stored in a lower precision, :func:`scatter_rtol` is
the tolerance on the data's singular values instead (numpy's ``matrix_rank`` convention,
``d · eps`` of the data), squared for eigenvalues of ``C``.

Every eigen- and singular-value decomposition of the package goes through :func:`eigh`,
:func:`eigvalsh`, :func:`svd` or :func:`svdvals` (defined in
:mod:`subspaces.linalg.robust`, re-exported here), so that ``torch.linalg``'s failures
become the package's errors: a matrix with infinite or NaN entries (products of finite data
that overflowed) is refused with :class:`~subspaces._checks.NumericRangeError`, and a
decomposition that fails to converge (or returns non-finite values) is retried in float64
on the matrix scaled to largest magnitude about 1 (an exact power of two), then on that
matrix plus a jitter of relative size 1e-10, then refused with
:class:`~subspaces._checks.NumericalError` (a
:class:`~subspaces._checks.DegenerateInputError`), never a raw ``LinAlgError``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from subspaces._checks import InvalidOptionError, ShapeError
from subspaces.linalg.robust import eigh, eigh_with_bound, eigvalsh, svd, svdvals

__all__ = [
    "default_rtol",
    "eigh",
    "eigvalsh",
    "numerical_rank",
    "psd_eigh",
    "psd_inv_sqrt",
    "psd_pinv",
    "psd_range",
    "psd_sqrt",
    "scatter_rtol",
    "scatter_tolerance",
    "svd",
    "svdvals",
]

_F64 = torch.float64


def default_rtol(d: int, dtype: torch.dtype = torch.float32) -> float:
    """The default relative rank tolerance for a ``d × d`` PSD matrix built in ``dtype``.

    ``d · eps(dtype)``: eigenvalues at most this fraction of the largest one are taken as
    zero. ``dtype`` is the precision of the products that formed the matrix (float32 for
    moments of float32 activations, although they are accumulated in float64).

    Examples:
        >>> default_rtol(10, torch.float64) == 10 * torch.finfo(torch.float64).eps
        True
    """
    if not dtype.is_floating_point:
        raise InvalidOptionError(f"dtype must be a floating dtype, got {dtype}.")
    return max(int(d), 1) * float(torch.finfo(dtype).eps)


def scatter_rtol(d: int, data_dtype: torch.dtype = torch.float32) -> float:
    """Relative eigenvalue tolerance for ``C = Xcᵀ Xc`` formed with float64 products.

    ``max((d · eps(data_dtype))², d · eps64)``: directions of the data whose singular
    value is at most ``d · eps`` of its storage precision times the largest are taken as
    zero (float32: collinear features rounded to float32 stay collinear), and never less
    than what a float64 eigen-solver resolves on ``C``. float32 data: ``1.4e-14 · d²``;
    float64 data: ``2.2e-16 · d``.

    Examples:
        >>> f"{scatter_rtol(10, torch.float32):.2e}"
        '1.42e-12'
    """
    return max(default_rtol(d, data_dtype) ** 2, default_rtol(d, _F64))


def scatter_tolerance(rtol: float | None, d: int, data_dtype: torch.dtype) -> float:
    """The rank tolerance of a measure's ``rtol`` option: ``rtol`` as given, else
    :func:`scatter_rtol` ``(d, data_dtype)``.

    Examples:
        >>> scatter_tolerance(None, 10, torch.float64) == scatter_rtol(10, torch.float64)
        True
        >>> scatter_tolerance(1e-6, 10, torch.float64)
        1e-06
    """
    if not isinstance(data_dtype, torch.dtype) or not data_dtype.is_floating_point:
        raise InvalidOptionError(f"data_dtype must be a floating torch.dtype, got {data_dtype!r}.")
    return rtol if rtol is not None else scatter_rtol(d, data_dtype)


def _check_square(c: Any, name: str) -> Tensor:
    if not isinstance(c, Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor, got {type(c).__name__}.")
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise ShapeError(
            f"{name} must be a non-empty square (d, d) matrix, got shape {tuple(c.shape)}."
        )
    return c


def _resolve_rtol(rtol: float | None, d: int, dtype: torch.dtype) -> float:
    if rtol is None:
        return default_rtol(d, dtype if dtype.is_floating_point else _F64)
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0.0 <= rtol < 1.0:
        raise InvalidOptionError(f"rtol must be a real number in [0, 1), got {rtol!r}.")
    return float(rtol)


def psd_eigh(c: Tensor) -> tuple[Tensor, Tensor]:
    """Eigen-decomposition of a symmetric PSD matrix, in float64, eigenvalues decreasing.

    ``c`` is symmetrised (``(c + c^T) / 2``) and cast to float64 on its own device;
    eigenvalues that rounding made negative are clipped to 0.

    Returns:
        ``(eigenvalues, eigenvectors)``: a ``(d,)`` decreasing float64 tensor and a
        ``(d, d)`` float64 matrix whose columns are the matching orthonormal eigenvectors.

    Examples:
        >>> import torch
        >>> psd_eigh(torch.tensor([[1.0, 0.0], [0.0, 4.0]]))[0].tolist()
        [4.0, 1.0]
    """
    c = _check_square(c, "c").to(_F64)
    evals, evecs, bound = eigh_with_bound(0.5 * (c + c.T), what="the scatter matrix")
    # after a regularized retry (robust.REGULARIZATION), an eigenvalue within the jitter's
    # norm of 0 is 0 (Weyl): a null space the jitter lifted stays out of the range
    floor = bound if bound > 0.0 else 0.0
    evals = torch.where(evals > floor, evals, torch.zeros_like(evals))
    return evals.flip(0), evecs.flip(1)


def _rank_of(evals: Tensor, rtol: float) -> int:
    """Count of eigenvalues (decreasing, non-negative) above ``rtol * λ_max``."""
    top = float(evals[0]) if evals.numel() else 0.0
    if top <= 0.0:
        return 0
    return int((evals > rtol * top).sum())


def numerical_rank(c: Tensor, *, rtol: float | None = None) -> int:
    """The numerical rank of a symmetric PSD matrix: eigenvalues above ``rtol · λ_max``.

    Args:
        c: ``(d, d)`` symmetric PSD matrix.
        rtol: relative tolerance in [0, 1); default :func:`default_rtol` ``(d, c.dtype)``.

    Examples:
        >>> import torch
        >>> numerical_rank(torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64))
        1
    """
    c = _check_square(c, "c")
    evals, _ = psd_eigh(c)
    return _rank_of(evals, _resolve_rtol(rtol, c.shape[0], c.dtype))


def psd_range(c: Tensor, *, rtol: float | None = None) -> tuple[Tensor, Tensor]:
    """The eigenpairs of a PSD matrix on its numerical range (eigenvalues above ``rtol·λ_max``).

    Returns:
        ``(eigenvalues, eigenvectors)``: ``(r,)`` positive decreasing float64 eigenvalues
        and the ``(d, r)`` float64 orthonormal basis of the numerical range, ``r`` the
        numerical rank (0 for a zero matrix: empty tensors).

    Examples:
        >>> import torch
        >>> evals, basis = psd_range(torch.diag(torch.tensor([3.0, 0.0])))
        >>> evals.tolist(), basis.abs().flatten().tolist()
        ([3.0], [1.0, 0.0])
    """
    c = _check_square(c, "c")
    tol = _resolve_rtol(rtol, c.shape[0], c.dtype)
    evals, evecs = psd_eigh(c)
    r = _rank_of(evals, tol)
    return evals[:r], evecs[:, :r]


def _spectral_function(c: Tensor, power: float, rtol: float | None) -> Tensor:
    evals, evecs = psd_range(c, rtol=rtol)
    return (evecs * evals.pow(power)) @ evecs.T


def psd_pinv(c: Tensor, *, rtol: float | None = None) -> Tensor:
    """Moore–Penrose pseudo-inverse of a symmetric PSD matrix on its numerical range.

    ``C⁺ = U_r diag(1/λ_r) U_rᵀ`` with ``(λ_r, U_r)`` from :func:`psd_range`; float64.

    Examples:
        >>> import torch
        >>> psd_pinv(torch.diag(torch.tensor([4.0, 0.0]))).tolist()
        [[0.25, 0.0], [0.0, 0.0]]
    """
    return _spectral_function(c, -1.0, rtol)


def psd_inv_sqrt(c: Tensor, *, rtol: float | None = None) -> Tensor:
    """Pseudo-inverse square root of a symmetric PSD matrix: ``U_r diag(λ_r^{-1/2}) U_rᵀ``.

    The symmetric (ZCA) whitening matrix on the numerical range: for ``C = Xcᵀ Xc`` of
    full rank, ``Xc C^{-1/2}`` has orthonormal columns. float64.

    Examples:
        >>> import torch
        >>> psd_inv_sqrt(torch.diag(torch.tensor([4.0, 16.0]))).diagonal().tolist()
        [0.5, 0.25]
    """
    return _spectral_function(c, -0.5, rtol)


def psd_sqrt(c: Tensor) -> Tensor:
    """Principal square root of a symmetric PSD matrix, ``U diag(λ^{1/2}) Uᵀ``, in float64.

    Examples:
        >>> import torch
        >>> psd_sqrt(torch.diag(torch.tensor([4.0, 9.0]))).diagonal().tolist()
        [2.0, 3.0]
    """
    evals, evecs = psd_eigh(c)
    return (evecs * evals.sqrt()) @ evecs.T

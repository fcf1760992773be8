"""Decompositions whose failures are the package's errors, retried on safer paths first.

Every eigen-, singular-value and Cholesky decomposition of the package goes through
:func:`eigh`, :func:`eigvalsh`, :func:`svd`, :func:`svdvals` or :func:`cholesky` (also
reachable from :mod:`subspaces.linalg.decomp`). Each runs its ``torch.linalg`` operation
and checks what comes back. When the solver raises ``torch.linalg.LinAlgError`` (LAPACK or
cuSOLVER did not converge, or a Cholesky factor met a non-positive pivot) or returns NaN or
infinite values, it is tried again:

1. **in float64**, on the matrix scaled by an exact power of two to largest magnitude in
   [0.5, 1) (no rounding; the result is scaled back exactly), when it was not float64;
2. **regularized**, in float64 on that scaled matrix ``A`` plus a perturbation of
   relative size ``REGULARIZATION`` = 1e-10:

   * :func:`eigh`, :func:`eigvalsh`: a symmetric jitter ``E = δ ‖A‖_F S / ‖S‖_F``
     (``S`` the symmetric part of a standard normal matrix drawn with seed 0), which
     splits the clusters of equal eigenvalues that stall the solver; every eigenvalue
     moves by at most ``‖E‖₂ ≤ δ ‖A‖_F`` (Weyl);
   * :func:`svd`, :func:`svdvals`: the same jitter without symmetry; every singular
     value moves by at most ``δ ‖A‖_F`` (Weyl);
   * :func:`cholesky`: a ridge ``δ · tr(A) / d · I`` (the "jitter" of Gaussian
     processes), which makes a PSD matrix that rounding left slightly indefinite
     positive definite;

   the result is that of the perturbed matrix, and nothing in it says so: each eigen- or
   singular value is off by at most ``δ ‖A‖_F`` (≤ ``δ √d ‖A‖₂``, about 2e-9 of the
   largest at d = 384, below what float32 data resolve), but a null space is lifted to
   ``±δ ‖A‖_F``, above the rank tolerance :func:`~subspaces.linalg.decomp.scatter_rtol`
   of float64 data. :func:`~subspaces.linalg.decomp.psd_eigh` (hence ``psd_range`` and
   every covariance measure) therefore sets the eigenvalues within that bound of 0 to 0
   (:func:`eigh_with_bound` returns it): without it, a regularized retry on a rank-5
   scatter of width 10 added 3 spurious zero canonical correlations and moved mean CCA
   from 0.634 to 0.396; with it, by 2e-11;
3. :class:`~subspaces._checks.NumericalError`, naming the operation, the shape, the
   dtype, the solver's own message and what to do.

A float16 or bfloat16 matrix, for which ``torch.linalg`` has no kernels, starts at step 1;
the result comes back in the input's dtype, and a result that exceeds that dtype's range
(finite only in float64) is refused with :class:`~subspaces._checks.NumericRangeError`
rather than returned as ``inf``.

Batches of matrices (``(..., m, n)``) are accepted as by ``torch.linalg``; the jitter and
the ridge are then relative to each matrix. A matrix that holds NaN or infinite entries
*before* any solver runs is refused at once
with :class:`~subspaces._checks.NumericRangeError` (products of finite data overflowed,
or NaN entered the computation): no solver ever sees it.

Examples:
    >>> import torch
    >>> from subspaces.linalg.robust import svdvals
    >>> svdvals(torch.tensor([[3.0, 0.0], [0.0, 4.0]])).tolist()
    [4.0, 3.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

from subspaces._checks import NumericalError, NumericRangeError, ShapeError
from subspaces.linalg.scaling import ldexp, max_abs

__all__ = [
    "REGULARIZATION",
    "cholesky",
    "eigh",
    "eigh_with_bound",
    "eigvalsh",
    "svd",
    "svdvals",
]

REGULARIZATION = 1e-10
"""Relative size δ of the jitter (or ridge) of the last retry: ``‖E‖_F = δ ‖A‖_F``."""

_F64 = torch.float64
_UNSUPPORTED = (torch.float16, torch.bfloat16)
_Result = TypeVar("_Result")


def _finite(result: object) -> bool:
    parts = result if isinstance(result, tuple) else (result,)
    return all(bool(torch.isfinite(t).all()) for t in parts if isinstance(t, Tensor))


def _jitter(a: Tensor, *, symmetric: bool) -> Tensor:
    """``δ ‖a‖_F`` times a fixed random direction of unit Frobenius norm (seed 0)."""
    g = torch.randn(a.shape, generator=torch.Generator().manual_seed(0), dtype=_F64)
    g = g.to(a.device)
    if symmetric:
        g = 0.5 * (g + g.mT)
    # per matrix of a batch: ‖E‖_F = δ ‖A‖_F
    norms = torch.linalg.matrix_norm(a, keepdim=True) / torch.linalg.matrix_norm(g, keepdim=True)
    return g * (REGULARIZATION * norms)


def _ridge(a: Tensor) -> Tensor:
    """``δ · tr(a) / d · I`` per matrix, a relative ridge (``δ · max |a|`` where tr(a) <= 0)."""
    d = a.shape[-1]
    scale = torch.diagonal(a, dim1=-2, dim2=-1).sum(-1, keepdim=True) / d
    scale = torch.where(scale > 0.0, scale, torch.full_like(scale, max_abs(a)))
    eye = torch.eye(d, dtype=a.dtype, device=a.device)
    return REGULARIZATION * scale.unsqueeze(-1) * eye


def _in_range(result: _Result, name: str, a: Tensor, what: str) -> _Result:
    """``result``, unless scaling it back to ``a``'s dtype overflowed."""
    if _finite(result):
        return result
    raise NumericRangeError(
        f"the result of torch.linalg.{name} on {what} (shape {tuple(a.shape)}, {a.dtype}) "
        f"exceeds the range of {a.dtype} (it is finite only in float64 with a scaling): "
        "rescale the data (e.g. divide it by its largest magnitude) or cast it to float64."
    )


def _solve(
    name: str,
    op: Callable[[Tensor], _Result],
    a: Tensor,
    *,
    rescale: Callable[[_Result, int], _Result],
    regularize: Callable[[Tensor], Tensor],
    what: str,
    hint: str,
) -> tuple[_Result, float]:
    """``(op(a), ε)`` with the retries of the module docstring.

    ``rescale(result, e)`` turns the result for ``a · 2**-e`` (float64) into the one for
    ``a`` in ``a``'s dtype; ``regularize(b)`` is the perturbation added to the scaled ``b``.
    ``ε`` is the largest Frobenius norm of that perturbation over the batch, in ``a``'s
    units (0.0 when none was added): a bound on how far it moved each eigen- or singular
    value (Weyl), which :func:`~subspaces.linalg.decomp.psd_eigh` uses so that a jittered
    null space stays null.
    """
    if a.ndim < 2:
        raise ShapeError(
            f"{what} must be a matrix (or a batch of matrices), got shape {tuple(a.shape)}."
        )
    if a.numel() and not bool(torch.isfinite(a).all()):
        n_nan, n_inf = int(torch.isnan(a).sum()), int(torch.isinf(a).sum())
        raise NumericRangeError(
            f"{what} has {n_nan + n_inf} infinite or NaN entries ({n_nan} NaN, {n_inf} "
            f"infinite; shape {tuple(a.shape)}, {a.dtype}) before torch.linalg.{name}: "
            "products of the data overflowed, or NaN entered the computation; rescale the "
            "data (e.g. divide it by its largest magnitude), cast it to float64, or remove "
            "the NaN."
        )
    failures: list[str] = []

    def attempt(t: Tensor) -> _Result | None:
        try:
            result = op(t)
        except torch.linalg.LinAlgError as err:
            failures.append(str(err).splitlines()[0] if str(err) else type(err).__name__)
            return None
        if not _finite(result):
            failures.append(f"torch.linalg.{name} returned NaN or infinite values")
            return None
        return result

    if a.dtype in _UNSUPPORTED:  # torch.linalg has no half-precision kernels
        failures.append(f"torch.linalg.{name} does not support {a.dtype}")
    else:
        result = attempt(a)
        if result is not None:
            return result, 0.0
    e = math.frexp(max_abs(a))[1]  # largest magnitude in [0.5, 1)
    scaled = ldexp(a.to(_F64), -e)
    if a.dtype != _F64:
        result = attempt(scaled)
        if result is not None:
            return _in_range(rescale(result, e), name, a, what), 0.0
    perturbation = regularize(scaled)
    result = attempt(scaled + perturbation)
    if result is not None:
        size = float(torch.linalg.matrix_norm(perturbation).max()) if perturbation.numel() else 0.0
        return _in_range(rescale(result, e), name, a, what), math.ldexp(size, e)
    raise NumericalError(
        f"torch.linalg.{name} did not converge on {what} (shape {tuple(a.shape)}, {a.dtype}), "
        f"even in float64 and with a relative regularization of {REGULARIZATION:g} "
        f"({failures[-1]}). {hint}"
    )


_HINT = (
    "The matrix is too ill-conditioned or has too many repeated values: check the data for "
    "constant, duplicated or collinear features, use more samples than features, or reduce "
    "the widths first (e.g. PCA, or svcca instead of mean_cca)."
)


def _as(dtype: torch.dtype, *tensors: Tensor) -> tuple[Tensor, ...]:
    return tuple(t.to(dtype) for t in tensors)


def eigh(a: Tensor, *, what: str = "the matrix") -> tuple[Tensor, Tensor]:
    """``torch.linalg.eigh(a)`` (increasing eigenvalues), with the module's retries.

    ``what`` names the matrix in the error messages.

    Raises:
        NumericRangeError: ``a`` holds NaN or infinite entries.
        NumericalError: the solver failed on every path.

    Examples:
        >>> import torch
        >>> evals, evecs = eigh(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
        >>> evals.tolist()
        [1.0, 2.0]
    """
    return _solve(
        "eigh",
        torch.linalg.eigh,
        a,
        rescale=lambda r, e: _as(a.dtype, ldexp(r[0], e), r[1]),
        regularize=lambda b: _jitter(b, symmetric=True),
        what=what,
        hint=_HINT,
    )[0]


def eigh_with_bound(a: Tensor, *, what: str = "the matrix") -> tuple[Tensor, Tensor, float]:
    """:func:`eigh` and ``ε``, the Frobenius norm of the jitter it added (0.0 if none).

    Each eigenvalue returned is within ``ε`` of the matrix's own (Weyl), so an eigenvalue
    of magnitude at most ``ε`` cannot be told from 0.

    Examples:
        >>> import torch
        >>> evals, evecs, bound = eigh_with_bound(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
        >>> evals.tolist(), bound
        ([1.0, 2.0], 0.0)
    """
    (evals, evecs), bound = _solve(
        "eigh",
        torch.linalg.eigh,
        a,
        rescale=lambda r, e: _as(a.dtype, ldexp(r[0], e), r[1]),
        regularize=lambda b: _jitter(b, symmetric=True),
        what=what,
        hint=_HINT,
    )
    return evals, evecs, bound


def eigvalsh(a: Tensor, *, what: str = "the matrix") -> Tensor:
    """``torch.linalg.eigvalsh(a)`` (increasing), with the module's retries.

    Examples:
        >>> import torch
        >>> eigvalsh(torch.tensor([[2.0, 1.0], [1.0, 2.0]])).tolist()
        [1.0, 3.0]
    """
    return _solve(
        "eigvalsh",
        torch.linalg.eigvalsh,
        a,
        rescale=lambda r, e: ldexp(r, e).to(a.dtype),
        regularize=lambda b: _jitter(b, symmetric=True),
        what=what,
        hint=_HINT,
    )[0]


def svd(
    a: Tensor, *, full_matrices: bool = False, what: str = "the matrix"
) -> tuple[Tensor, Tensor, Tensor]:
    """``torch.linalg.svd(a, full_matrices=...)``, with the module's retries.

    Examples:
        >>> import torch
        >>> u, s, vh = svd(torch.tensor([[3.0, 0.0], [0.0, -2.0]]))
        >>> s.tolist()
        [3.0, 2.0]
    """
    return _solve(
        "svd",
        lambda t: torch.linalg.svd(t, full_matrices=full_matrices),
        a,
        rescale=lambda r, e: _as(a.dtype, r[0], ldexp(r[1], e), r[2]),
        regularize=lambda b: _jitter(b, symmetric=False),
        what=what,
        hint=_HINT,
    )[0]


def svdvals(a: Tensor, *, what: str = "the matrix") -> Tensor:
    """``torch.linalg.svdvals(a)`` (decreasing), with the module's retries.

    Needs no singular vectors, so LAPACK runs its QR iteration rather than the
    divide-and-conquer of :func:`svd`, which is the one that stalls on clusters of equal
    singular values: prefer it where only the values are used.

    Examples:
        >>> import torch
        >>> svdvals(torch.tensor([[0.0, 2.0], [1.0, 0.0]])).tolist()
        [2.0, 1.0]
    """
    return _solve(
        "svdvals",
        torch.linalg.svdvals,
        a,
        rescale=lambda r, e: ldexp(r, e).to(a.dtype),
        regularize=lambda b: _jitter(b, symmetric=False),
        what=what,
        hint=_HINT,
    )[0]


def cholesky(a: Tensor, *, what: str = "the matrix") -> Tensor:
    """``torch.linalg.cholesky(a)`` (lower factor L, ``a = L Lᵀ``), with the module's retries.

    A positive semi-definite ``a`` that rounding left slightly indefinite is factored after
    the ridge ``1e-10 · tr(a) / d · I`` (the factor of ``a`` plus that ridge).

    Examples:
        >>> import torch
        >>> cholesky(torch.tensor([[4.0, 2.0], [2.0, 2.0]])).tolist()
        [[2.0, 0.0], [1.0, 1.0]]
    """
    return _solve(
        "cholesky",
        torch.linalg.cholesky,
        a,
        rescale=lambda r, e: ldexp(r, e // 2).to(a.dtype) * (math.sqrt(2.0) if e % 2 else 1.0),
        regularize=_ridge,
        what=what,
        hint=(
            "The matrix is not positive definite even after a small ridge: check that it is "
            "a covariance (symmetric, positive semi-definite) and that its data have no "
            "constant or collinear features, or pass a larger ridge where the function "
            "takes one."
        ),
    )[0]

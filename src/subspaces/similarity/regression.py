"""Linear predictivity: R² of the least-squares (or ridge) fit of one representation from another.

From centered moments only (d × d work, streamable): with ``Cxx = Xcᵀ Xc``, ``Cyy`` and
``Cxy = Xcᵀ Yc``, the in-sample least-squares fit of y from x (with intercept) has

    R²(x → y) = 1 - ||Yc - Xc B||_F² / ||Yc||_F² = tr(Cyx Cxx⁺ Cxy) / tr(Cyy),

the fraction of y's total variance explained (pooled over y's features, i.e. scikit-learn's
``r2_score(..., multioutput="variance_weighted")``). This is the in-sample R², an upper
bound on held-out predictivity: with ``d1 >= n - 1`` it is 1 whatever the data. ``Cxx⁺``
is the pseudo-inverse on the numerical range of ``Cxx`` (see
:mod:`subspaces.linalg.decomp`), so collinear features of x are handled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    check_choice,
    check_optional_rtol,
)
from subspaces.linalg.lstsq import check_ridge, ridge_eigh
from subspaces.linalg.moments import (
    CHUNK_SIZE,
    CenteredMoments,
    check_variance,
    require_moments,
)
from subspaces.linalg.streaming import Float64MomentsMetric
from subspaces.similarity._caveats import regression_caveat, warn_small_sample
from subspaces.similarity._moments import paired_float64_moments

__all__ = [
    "LinearRegressionR2",
    "RegressionR2",
    "linear_regression_r2",
    "linear_regression_r2_both_ways",
    "linear_regression_r2_from_moments",
]

Direction = Literal["x_to_y", "y_to_x", "symmetric"]

_F64 = torch.float64
_DIRECTIONS = ("x_to_y", "y_to_x", "symmetric")
_MEASURE = "linear regression R²"


@dataclass(frozen=True)
class RegressionR2(Result):
    """R² in both directions: ``x_to_y`` predicts y from x, ``y_to_x`` predicts x from y.

    Both are 0-dim float64 tensors; :attr:`symmetric` is their mean.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import linear_regression_r2_both_ways
        >>> x = torch.randn(100, 4, generator=torch.Generator().manual_seed(0))
        >>> r2 = linear_regression_r2_both_ways(x, x[:, :2])
        >>> round(float(r2.x_to_y), 4), round(float(r2.y_to_x), 4)
        (1.0, 0.5589)
    """

    x_to_y: Tensor
    y_to_x: Tensor

    @property
    def symmetric(self) -> Tensor:
        """The mean of the two directions (a symmetric summary)."""
        return 0.5 * (self.x_to_y + self.y_to_x)


def _one_way(
    c_in: Tensor,
    c_out: Tensor,
    cross: Tensor,
    *,
    ridge: float,
    rtol: float | None,
    input_dtype: torch.dtype,
) -> Tensor:
    """R² of predicting the ``out`` side from the ``in`` side; ``cross`` is (d_in, d_out).

    With the eigenpairs ``(s_i, u_i)`` of ``C_in + λI`` (:func:`~subspaces.linalg.lstsq.ridge_eigh`,
    on the numerical range when λ = 0) and ``p_i = u_iᵀ C_cross``, the fit
    ``B = (C_in + λI)⁺ C_cross`` leaves ``||Yc - Xc B||² = tr C_out - Σ p_i² (s_i + λ) / s_i²``.
    """
    total = torch.trace(c_out)
    e = ridge_eigh(c_in, ridge=ridge, rtol=rtol, input_dtype=input_dtype)
    weights = (e.eigenvectors.T @ cross.to(_F64)).square().sum(1)  # (r,): |p_i|²
    s = e.eigenvalues
    # the shrink factor first: |p|² · (s + λ) alone over- or underflows at extreme scales
    explained = (
        (weights / s).sum() if e.ridge == 0.0 else (weights * ((s + e.ridge) / s.square())).sum()
    )
    return (explained / total).clamp(0.0, 1.0)


def _both(
    m: CenteredMoments, *, ridge: float, rtol: float | None, input_dtype: torch.dtype, which: str
) -> tuple[Tensor | None, Tensor | None]:
    cxx, cyy, cxy = require_moments(m, _MEASURE)
    check_variance(cxx, m.mean_x, m.n, name="x", measure=_MEASURE)
    check_variance(cyy, m.mean_y, m.n, name="y", measure=_MEASURE)
    caveat = regression_caveat(m.n, cxx.shape[0], cyy.shape[0], ridge=ridge, direction=which)
    warn_small_sample(caveat)
    forward = backward = None
    options = {"ridge": ridge, "rtol": rtol, "input_dtype": input_dtype}
    if which in ("x_to_y", "symmetric", "both"):
        forward = _one_way(cxx, cyy, cxy, **options)  # type: ignore[arg-type]
    if which in ("y_to_x", "symmetric", "both"):
        backward = _one_way(cyy, cxx, cxy.T, **options)  # type: ignore[arg-type]
    return forward, backward


def linear_regression_r2_from_moments(
    m: CenteredMoments,
    *,
    direction: Direction = "x_to_y",
    ridge: float = 0.0,
    rtol: float | None = None,
    input_dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Linear regression R² from centered moments (core of :func:`linear_regression_r2`).

    Args:
        m: centered moments with ``cxx``, ``cyy``, ``cxy``.
        direction: ``"x_to_y"``, ``"y_to_x"`` or ``"symmetric"`` (mean of both).
        ridge: relative ridge penalty (see :func:`linear_regression_r2`).
        rtol: relative rank tolerance of the predictor's scatter; default
            ``scatter_rtol(d, input_dtype)``.
        input_dtype: the dtype of the data the moments were accumulated from.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import linear_regression_r2_from_moments
        >>> from subspaces.linalg.moments import paired_moments64
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(linear_regression_r2_from_moments(paired_moments64(x, y), ridge=0.1)), 4)
        0.9126
    """
    which = check_choice(direction, name="direction", choices=_DIRECTIONS)
    forward, backward = _both(
        m,
        ridge=check_ridge(ridge),
        rtol=check_optional_rtol(rtol),
        input_dtype=input_dtype,
        which=which,
    )
    if forward is not None and backward is not None:
        return 0.5 * (forward + backward)
    result = forward if forward is not None else backward
    return cast(Tensor, result)


def linear_regression_r2(
    x: Any,
    y: Any,
    *,
    direction: Direction = "x_to_y",
    ridge: float = 0.0,
    rtol: float | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Tensor:
    """In-sample R² of the linear least-squares fit (with intercept) of y from x.

    R²(x → y) = 1 - ||Yc - Xc B||_F² / ||Yc||_F² = tr(Cyx Cxx⁺ Cxy) / tr(Cyy), the fraction
    of y's total variance linearly explained by x (Yamins et al. 2014 and later
    "linear predictivity" comparisons, here in-sample and pooled over y's features).
    ``Cxx⁺`` is the pseudo-inverse on the numerical range of ``Cxx``.

    ``ridge > 0`` fits B = (Cxx + λ I)^{-1} Cxy with λ = ``ridge`` · tr(Cxx) / d1 (relative
    to x's mean eigenvalue, so the penalty does not depend on x's units) and returns that
    fit's in-sample R² (= scikit-learn ``Ridge(alpha=λ)``), which is at most the OLS value.

    Invariances of R²(x → y): any invertible linear map and translation of x; orthogonal
    transforms, isotropic scaling and translation of y. Not symmetric (use
    ``direction="symmetric"`` for the mean of both directions, or
    :func:`linear_regression_r2_both_ways`). In [0, 1]; 1 when y is an affine function of x.
    With ridge, invariance in x shrinks to orthogonal transforms and isotropic scaling.

    Args:
        x: (n, d1) predictor. y: (n, d2) target, the same n inputs.
        direction: ``"x_to_y"`` (default), ``"y_to_x"`` or ``"symmetric"`` (mean of both).
        ridge: relative ridge penalty, >= 0.
        rtol: relative rank tolerance of the predictor's scatter; default
            ``scatter_rtol(d, input dtype)`` (used only when ``ridge == 0``).
        chunk_size: rows per product (upcast to float64).

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import linear_regression_r2
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(linear_regression_r2(x, y)), 4)
        0.9202
    """
    check_choice(direction, name="direction", choices=_DIRECTIONS)
    ridge = check_ridge(ridge)
    rtol = check_optional_rtol(rtol)
    moments, input_dtype = paired_float64_moments(x, y, chunk_size=chunk_size)
    return linear_regression_r2_from_moments(
        moments, direction=direction, ridge=ridge, rtol=rtol, input_dtype=input_dtype
    )


def linear_regression_r2_both_ways(
    x: Any,
    y: Any,
    *,
    ridge: float = 0.0,
    rtol: float | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> RegressionR2:
    """R² of :func:`linear_regression_r2` in both directions, from one pass over the data.

    Returns:
        A :class:`RegressionR2` with ``x_to_y`` (y predicted from x), ``y_to_x`` and the
        property ``symmetric`` (their mean); 0-dim float64 tensors.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import linear_regression_r2_both_ways
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> r2 = linear_regression_r2_both_ways(x, y)
        >>> round(float(r2.x_to_y), 4), round(float(r2.y_to_x), 4)
        (0.9202, 0.6879)
    """
    ridge = check_ridge(ridge)
    rtol = check_optional_rtol(rtol)
    moments, input_dtype = paired_float64_moments(x, y, chunk_size=chunk_size)
    forward, backward = _both(
        moments, ridge=ridge, rtol=rtol, input_dtype=input_dtype, which="both"
    )
    return RegressionR2(cast(Tensor, forward), cast(Tensor, backward))


class LinearRegressionR2(Float64MomentsMetric):
    """Streaming linear regression R² (:func:`linear_regression_r2`).

    ``update(x, y)`` per batch, ``compute()`` at the end; equals the function on the
    concatenated batches whatever the split, and the global value under
    ``torch.distributed``.

    Args:
        direction: ``"x_to_y"`` (default), ``"y_to_x"`` or ``"symmetric"``.
        ridge: relative ridge penalty, >= 0.
        rtol: relative rank tolerance; default ``scatter_rtol(d, batches' dtype)``.
        chunk_size: rows per product (upcast to float64).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import LinearRegressionR2
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = LinearRegressionR2(direction="y_to_x")
        >>> metric.update(x[:50], y[:50])
        >>> metric.update(x[50:], y[50:])
        >>> round(float(metric.compute()), 4)
        0.6879
    """

    higher_is_better = True

    def __init__(
        self,
        *,
        direction: Direction = "x_to_y",
        ridge: float = 0.0,
        rtol: float | None = None,
        chunk_size: int = CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(chunk_size=chunk_size, **kwargs)
        self.rtol = check_optional_rtol(rtol)
        check_choice(direction, name="direction", choices=_DIRECTIONS)
        self.direction: Direction = direction
        self.ridge = check_ridge(ridge)

    def compute(self) -> Tensor:
        """R² of every sample seen so far."""
        return linear_regression_r2_from_moments(
            self.moments(),
            direction=self.direction,
            ridge=self.ridge,
            rtol=self.rtol,
            input_dtype=self.input_dtype(),
        )

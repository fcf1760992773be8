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

from subspaces._checks import (
    check_choice,
    check_optional_rtol,
    check_paired,
    check_positive_real,
)
from subspaces.linalg.decomp import psd_eigh, psd_range
from subspaces.linalg.moments import DEFAULT_CHUNK_SIZE, CenteredMoments
from subspaces.similarity._streaming import (
    _check_variance,
    _Float64MomentsMetric,
    _input_dtype,
    _paired_moments64,
    _require_moments,
    _side_rtol,
)

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
class RegressionR2:
    """R² in both directions: ``x_to_y`` predicts y from x, ``y_to_x`` predicts x from y."""

    x_to_y: Tensor
    y_to_x: Tensor

    @property
    def symmetric(self) -> Tensor:
        """The mean of the two directions (a symmetric summary)."""
        return 0.5 * (self.x_to_y + self.y_to_x)


def _check_ridge(ridge: float) -> float:
    return check_positive_real(ridge, name="ridge", allow_zero=True)


def _one_way(c_in: Tensor, c_out: Tensor, cross: Tensor, *, ridge: float, rtol: float) -> Tensor:
    """R² of predicting the ``out`` side from the ``in`` side; ``cross`` is (d_in, d_out)."""
    total = torch.trace(c_out)
    cross = cross.to(_F64)
    if ridge == 0.0:
        evals, evecs = psd_range(c_in, rtol=rtol)
        proj = evecs.T @ cross  # (r, d_out): coordinates of Cxy on the range of Cxx
        explained = (proj.square().sum(1) / evals).sum()
    else:
        # B = (Cxx + λI)^{-1} Cxy; ||Yc - Xc B||² = tr Cyy - Σ p² (λ_i + 2λ) / (λ_i + λ)².
        evals, evecs = psd_eigh(c_in)
        lam = ridge * float(torch.trace(c_in)) / c_in.shape[0]
        proj = evecs.T @ cross
        shrink = (evals + 2.0 * lam) / (evals + lam).square()
        explained = (proj.square().sum(1) * shrink).sum()
    return (explained / total).clamp(0.0, 1.0)


def _both(
    m: CenteredMoments, *, ridge: float, rtol: float | None, input_dtype: torch.dtype, which: str
) -> tuple[Tensor | None, Tensor | None]:
    cxx, cyy, cxy = _require_moments(m, _MEASURE)
    _check_variance(cxx, m.mean_x, m.n, name="x", measure=_MEASURE)
    _check_variance(cyy, m.mean_y, m.n, name="y", measure=_MEASURE)
    forward = backward = None
    if which in ("x_to_y", "symmetric", "both"):
        tol = _side_rtol(rtol, cxx.shape[0], input_dtype)
        forward = _one_way(cxx, cyy, cxy, ridge=ridge, rtol=tol)
    if which in ("y_to_x", "symmetric", "both"):
        tol = _side_rtol(rtol, cyy.shape[0], input_dtype)
        backward = _one_way(cyy, cxx, cxy.T, ridge=ridge, rtol=tol)
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
    """
    which = check_choice(direction, name="direction", choices=_DIRECTIONS)
    forward, backward = _both(
        m,
        ridge=_check_ridge(ridge),
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
    chunk_size: int = DEFAULT_CHUNK_SIZE,
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
    """
    check_choice(direction, name="direction", choices=_DIRECTIONS)
    ridge = _check_ridge(ridge)
    rtol = check_optional_rtol(rtol)
    x, y = check_paired(x, y)
    moments = _paired_moments64(x, y, chunk_size=chunk_size)
    return linear_regression_r2_from_moments(
        moments, direction=direction, ridge=ridge, rtol=rtol, input_dtype=_input_dtype(x, y)
    )


def linear_regression_r2_both_ways(
    x: Any,
    y: Any,
    *,
    ridge: float = 0.0,
    rtol: float | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> RegressionR2:
    """R² of :func:`linear_regression_r2` in both directions, from one pass over the data.

    Returns:
        A :class:`RegressionR2` with ``x_to_y`` (y predicted from x), ``y_to_x`` and the
        property ``symmetric`` (their mean); 0-dim float64 tensors.
    """
    ridge = _check_ridge(ridge)
    rtol = check_optional_rtol(rtol)
    x, y = check_paired(x, y)
    moments = _paired_moments64(x, y, chunk_size=chunk_size)
    forward, backward = _both(
        moments, ridge=ridge, rtol=rtol, input_dtype=_input_dtype(x, y), which="both"
    )
    return RegressionR2(cast(Tensor, forward), cast(Tensor, backward))


class LinearRegressionR2(_Float64MomentsMetric):
    """Streaming linear regression R² (:func:`linear_regression_r2`).

    ``update(x, y)`` per batch, ``compute()`` at the end; equals the function on the
    concatenated batches whatever the split, and the global value under
    ``torch.distributed``.

    Args:
        direction: ``"x_to_y"`` (default), ``"y_to_x"`` or ``"symmetric"``.
        ridge: relative ridge penalty, >= 0.
        rtol: relative rank tolerance; default ``scatter_rtol(d, batches' dtype)``.
        chunk_size: rows per product (upcast to float64).
    """

    higher_is_better = True

    def __init__(
        self,
        *,
        direction: Direction = "x_to_y",
        ridge: float = 0.0,
        rtol: float | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(chunk_size=chunk_size, **kwargs)
        self.rtol = check_optional_rtol(rtol)
        check_choice(direction, name="direction", choices=_DIRECTIONS)
        self.direction: Direction = direction
        self.ridge = _check_ridge(ridge)

    def compute(self) -> Tensor:
        """R² of every sample seen so far."""
        return linear_regression_r2_from_moments(
            self.moments(),
            direction=self.direction,
            ridge=self.ridge,
            rtol=self.rtol,
            input_dtype=self.input_dtype(),
        )

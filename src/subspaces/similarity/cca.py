"""Canonical correlation analysis (CCA) and its summaries: mean CCA, R²_CCA, SVCCA, PWCCA.

Every measure here is a function of the centered scatter matrices ``Cxx = Xcᵀ Xc``,
``Cyy = Yc^T Yc`` and ``Cxy = Xcᵀ Yc`` (see :mod:`subspaces.linalg.moments`), computed in
feature space (d × d), never n × n, and streamable.

**Canonical correlations.** ρ_1 ≥ ρ_2 ≥ ... are the singular values of
``Cxx^{-1/2} Cxy Cyy^{-1/2}``; equivalently the cosines of the principal angles between the
column spaces of ``Xc`` and ``Yc`` in Rⁿ (Björck & Golub 1973). They are computed from a
float64 eigen-decomposition of each side, keeping only its *numerical range*: the
eigenvectors whose eigenvalue exceeds ``rtol · λ_max`` (default
:func:`~subspaces.linalg.decomp.scatter_rtol`: singular values of the centered data below
``d · eps`` of its dtype times the largest count as zero). A rank-deficient side
(collinear features, or ``n - 1 < d``) is thus handled with the pseudo-inverse square root
on its range, and there are ``min(r_x, r_y)`` correlations, ``r`` the numerical ranks.
When ``r_x + r_y > n - 1`` some correlations are 1 by construction (CCA over-fits): use
many more samples than features, or :func:`svcca`.

**Direction of values.** Every function of this module returns a *similarity* in [0, 1]
(1 = identical up to the measure's invariances). The matching distances used in the
literature are ``1 - value`` (e.g. Morcos et al.'s PWCCA distance).

Numerical note: whitening amplifies the rounding of ``Cxx`` by its condition number
(cond(Xc)²). The moments of this module (and of :mod:`~subspaces.similarity.regression`
and :mod:`~subspaces.similarity.shape`) are therefore accumulated with float64 products,
float32 input being upcast chunk by chunk (memory O(chunk · d); about twice the time of a
float32 pass on a CPU). With float32 products, correlations on float32 data would err by
~1e-8 · cond(Xc)² (1e-4 at cond(Xc) = 100); with float64 products the result is that of
the float32 values computed in float64. The ``*_from_moments`` cores assume such moments;
for moments formed with float32 products, pass
``rtol=subspaces.linalg.decomp.default_rtol(d, torch.float32)`` (``d · eps32``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from subspaces._checks import (
    check_choice,
    check_float_dtype,
    check_optional_rtol,
    check_scalar_in_range,
)
from subspaces.linalg.decomp import psd_range, scatter_tolerance, svd, svdvals
from subspaces.linalg.moments import (
    CHUNK_SIZE,
    CenteredMoments,
    check_variance,
    require_moments,
)
from subspaces.linalg.streaming import Float64MomentsMetric
from subspaces.similarity._caveats import cca_caveat, kept_directions_caveat, warn_small_sample
from subspaces.similarity._moments import paired_float64_moments

__all__ = [
    "CCA",
    "PWCCA",
    "SVCCA",
    "cca_correlations",
    "cca_correlations_from_moments",
    "cca_r2",
    "cca_r2_from_moments",
    "mean_cca",
    "mean_cca_from_moments",
    "pwcca",
    "pwcca_from_moments",
    "svcca",
    "svcca_from_moments",
]

CCAMethod = Literal["correlations", "mean", "r2"]
WeightsFrom = Literal["x", "y", "smaller"]

_F64 = torch.float64
_METHODS = ("correlations", "mean", "r2")
_WEIGHTS_FROM = ("x", "y", "smaller")


# ---------------------------------------------------------------------------------------
# The maths core


@dataclass(frozen=True)
class _Canonical:
    """Canonical decomposition on the numerical ranges.

    ``lx`` (r_x,), ``ux`` (d1, r_x): eigenpairs of Cxx kept; likewise ``ly``, ``uy``;
    ``rho`` (k,) the correlations, ``u`` (r_x, k), ``v`` (r_y, k) the singular vectors of
    ``T = diag(lx^{-1/2}) uxᵀ Cxy uy diag(ly^{-1/2})``, k = min(r_x, r_y) (``None`` when
    only the correlations were asked for).
    """

    lx: Tensor
    ux: Tensor
    ly: Tensor
    uy: Tensor
    rho: Tensor
    u: Tensor | None
    v: Tensor | None


def _n_kept_for_variance(evals: Tensor, keep_variance: float) -> int:
    """Smallest k whose top-k eigenvalues explain ``keep_variance`` of the total."""
    ratio = torch.cumsum(evals, 0) / evals.sum()
    return min(int((ratio < keep_variance * (1.0 - 1e-12)).sum()) + 1, evals.shape[0])


def _canonical(
    m: CenteredMoments,
    *,
    rtol: float | None,
    input_dtype: torch.dtype,
    measure: str,
    keep_variance: float | None = None,
    vectors: bool = False,
) -> _Canonical:
    check_float_dtype(input_dtype, name="input_dtype", optional=False)
    cxx, cyy, cxy = require_moments(m, measure)
    check_variance(cxx, m.mean_x, m.n, name="x", measure=measure)
    check_variance(cyy, m.mean_y, m.n, name="y", measure=measure)
    lx, ux = psd_range(cxx, rtol=scatter_tolerance(rtol, cxx.shape[0], input_dtype))
    ly, uy = psd_range(cyy, rtol=scatter_tolerance(rtol, cyy.shape[0], input_dtype))
    if keep_variance is None and lx.shape[0] + ly.shape[0] > m.n - 1:
        # the numerical ranks meet the criterion (as the widths do for full-rank data):
        # some correlations are 1 by construction; the text is the registry's, on widths
        warn_small_sample(cca_caveat(m.n, cxx.shape[0], cyy.shape[0]))
    if keep_variance is not None:
        kx, ky = _n_kept_for_variance(lx, keep_variance), _n_kept_for_variance(ly, keep_variance)
        lx, ux, ly, uy = lx[:kx], ux[:, :kx], ly[:ky], uy[:, :ky]
        warn_small_sample(kept_directions_caveat(m.n, kx, ky))
    t = (ux * lx.rsqrt()).T @ cxy.to(_F64) @ (uy * ly.rsqrt())
    what = f"the whitened cross-covariance of {measure}"
    if not vectors:
        # Only the values: LAPACK's QR iteration, which a cluster of correlations at 1 (the
        # rule when n is small against the widths) does not stall, unlike the
        # divide-and-conquer that computes the vectors.
        rho = svdvals(t, what=what)
        return _Canonical(lx, ux, ly, uy, rho.clamp(0.0, 1.0), None, None)
    u, rho, vh = svd(t, full_matrices=False, what=what)
    return _Canonical(lx, ux, ly, uy, rho.clamp(0.0, 1.0), u, vh.T)


def cca_correlations_from_moments(
    m: CenteredMoments, *, rtol: float | None = None, input_dtype: torch.dtype = torch.float32
) -> Tensor:
    """Canonical correlations from centered moments (core of :func:`cca_correlations`).

    Args:
        m: centered moments with ``cxx``, ``cyy``, ``cxy``.
        rtol: relative eigenvalue tolerance of each side's numerical range; default
            ``scatter_rtol(d, input_dtype)`` per side.
        input_dtype: the dtype of the data the moments were accumulated from.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import cca_correlations_from_moments
        >>> from subspaces.linalg.moments import paired_moments64
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> tuple(cca_correlations_from_moments(paired_moments64(x, y)).shape)
        (4,)
    """
    return _canonical(m, rtol=check_optional_rtol(rtol), input_dtype=input_dtype, measure="CCA").rho


def mean_cca_from_moments(
    m: CenteredMoments, *, rtol: float | None = None, input_dtype: torch.dtype = torch.float32
) -> Tensor:
    """Mean canonical correlation ρ̄ from centered moments (core of :func:`mean_cca`).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import mean_cca_from_moments
        >>> from subspaces.linalg.moments import paired_moments64
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(mean_cca_from_moments(paired_moments64(x, y))), 4)
        0.9182
    """
    return cca_correlations_from_moments(m, rtol=rtol, input_dtype=input_dtype).mean()


def cca_r2_from_moments(
    m: CenteredMoments, *, rtol: float | None = None, input_dtype: torch.dtype = torch.float32
) -> Tensor:
    """Mean squared canonical correlation R²_CCA from centered moments (core of :func:`cca_r2`).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import cca_r2_from_moments
        >>> from subspaces.linalg.moments import paired_moments64
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(cca_r2_from_moments(paired_moments64(x, y))), 4)
        0.8488
    """
    return cca_correlations_from_moments(m, rtol=rtol, input_dtype=input_dtype).square().mean()


def _cca_statistic(
    m: CenteredMoments, statistic: str, rtol: float | None, input_dtype: torch.dtype
) -> Tensor:
    rho = cca_correlations_from_moments(m, rtol=rtol, input_dtype=input_dtype)
    if statistic == "mean":
        return rho.mean()
    if statistic == "r2":
        return rho.square().mean()
    return rho


def svcca_from_moments(
    m: CenteredMoments,
    *,
    keep_variance: float = 0.99,
    rtol: float | None = None,
    input_dtype: torch.dtype = torch.float32,
) -> Tensor:
    """SVCCA from centered moments (core of :func:`svcca`).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import svcca_from_moments
        >>> from subspaces.linalg.moments import paired_moments64
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(svcca_from_moments(paired_moments64(x, y))), 4)
        0.9182
    """
    keep_variance = check_scalar_in_range(
        keep_variance, name="keep_variance", low=0.0, high=1.0, low_open=True
    )
    parts = _canonical(
        m,
        rtol=check_optional_rtol(rtol),
        input_dtype=input_dtype,
        measure="SVCCA",
        keep_variance=keep_variance,
    )
    return parts.rho.mean()


def pwcca_from_moments(
    m: CenteredMoments,
    *,
    weights_from: WeightsFrom = "x",
    rtol: float | None = None,
    input_dtype: torch.dtype = torch.float32,
) -> Tensor:
    """PWCCA from centered moments (core of :func:`pwcca`).

    With the canonical directions ``a_i = Cxx^{-1/2} u_i`` of x, the canonical variates
    ``h_i = Xc a_i`` have unit norm and ``⟨h_i, xc_j⟩ = (Cxx a_i)_j`` for the centered
    neuron (column) ``xc_j``, so the weights need only ``Cxx``.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import pwcca_from_moments
        >>> from subspaces.linalg.moments import paired_moments64
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(pwcca_from_moments(paired_moments64(x, y))), 4)
        0.9194
    """
    side = check_choice(weights_from, name="weights_from", choices=_WEIGHTS_FROM)
    parts = _canonical(
        m, rtol=check_optional_rtol(rtol), input_dtype=input_dtype, measure="PWCCA", vectors=True
    )
    assert parts.u is not None and parts.v is not None
    if side == "smaller":
        side = "x" if parts.ux.shape[0] <= parts.uy.shape[0] else "y"
    if side == "x":
        loadings = (parts.ux * parts.lx.sqrt()) @ parts.u  # (d1, k): Cxx a_i
    else:
        loadings = (parts.uy * parts.ly.sqrt()) @ parts.v  # (d2, k): Cyy b_i
    weights = loadings.abs().sum(0)
    return (weights * parts.rho).sum() / weights.sum()


# ---------------------------------------------------------------------------------------
# Functions


def cca_correlations(
    x: Any, y: Any, *, rtol: float | None = None, chunk_size: int = CHUNK_SIZE
) -> Tensor:
    """Canonical correlations between two representations of the same inputs.

    ρ_i = σ_i(Cxx^{-1/2} Cxy Cyy^{-1/2}), in decreasing order, Cxx = Xcᵀ Xc, Xc = X
    centered over samples (Hotelling 1936); the cosines of the principal angles between
    the column spaces of Xc and Yc (Björck & Golub 1973). Each side is restricted to its
    numerical range (eigenvalues of its scatter above ``rtol · λ_max``), i.e. the
    pseudo-inverse square root is used, and ``min(r_x, r_y)`` correlations are returned.

    Invariant to any invertible linear map and translation of either side (hence to
    orthogonal transforms, scaling, feature permutation); symmetric; each ρ_i in [0, 1].

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        rtol: relative rank tolerance per side; default ``scatter_rtol(d, input dtype)``.
        chunk_size: rows per float32 product when accumulating moments.

    Returns:
        A 1-D float64 tensor of ``min(r_x, r_y)`` correlations on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import cca_correlations
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> [round(float(r), 4) for r in cca_correlations(x, y)]
        [0.9827, 0.9579, 0.9436, 0.7884]
    """
    moments, input_dtype = paired_float64_moments(x, y, chunk_size=chunk_size)
    return cca_correlations_from_moments(moments, rtol=rtol, input_dtype=input_dtype)


def mean_cca(x: Any, y: Any, *, rtol: float | None = None, chunk_size: int = CHUNK_SIZE) -> Tensor:
    """Mean canonical correlation ρ̄ = (1/k) Σ_i ρ_i (Kornblith et al. 2019 notation).

    The mean of :func:`cca_correlations` over the ``k = min(r_x, r_y)`` correlations
    (``min(d1, d2)`` for full-rank data). Same invariances as CCA (invertible linear maps
    and translation of either side); symmetric; in [0, 1]. ``1 - ρ̄`` is the CCA distance.

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        rtol: relative rank tolerance per side; default ``scatter_rtol(d, input dtype)``.
        chunk_size: rows per product (upcast to float64).

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import mean_cca
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(mean_cca(x, y)), 4)
        0.9182
    """
    return cca_correlations(x, y, rtol=rtol, chunk_size=chunk_size).mean()


def cca_r2(x: Any, y: Any, *, rtol: float | None = None, chunk_size: int = CHUNK_SIZE) -> Tensor:
    """R²_CCA = (1/k) Σ_i ρ_i², the mean squared canonical correlation.

    Kornblith et al. (2019), Yanai's generalized coefficient of determination: equals
    ``||Q_Yᵀ Q_X||_F² / k`` for orthonormal bases Q of the centered column spaces, with
    ``k = min(r_x, r_y)`` (``min(d1, d2)`` for full-rank data). Same invariances as CCA
    (invertible linear maps and translation of either side); symmetric; in [0, 1].

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        rtol: relative rank tolerance per side; default ``scatter_rtol(d, input dtype)``.
        chunk_size: rows per product (upcast to float64).

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import cca_r2
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(cca_r2(x, y)), 4)
        0.8488
    """
    return cca_correlations(x, y, rtol=rtol, chunk_size=chunk_size).square().mean()


def svcca(
    x: Any,
    y: Any,
    *,
    keep_variance: float = 0.99,
    rtol: float | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Tensor:
    """SVCCA: mean canonical correlation after keeping each side's top principal directions.

    Raghu et al. (2017): on each side, keep the smallest number of top principal directions
    (eigenvectors of its covariance) whose variance is at least ``keep_variance`` of the
    total (0.99 in the paper), project onto them, then return the mean canonical
    correlation ρ̄ of the projections. Equivalent to CCA on
    ``diag(λ_k)^{-1/2} U_kᵀ Cxy V_k diag(μ_k)^{-1/2}``; never more directions than the
    numerical rank.

    Invariant to orthogonal transforms, isotropic scaling and translation of either side
    (not to general invertible maps: the truncation depends on the variance spectrum);
    symmetric; in [0, 1]. ``keep_variance=1`` gives :func:`mean_cca`.

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        keep_variance: fraction of variance kept on each side, in (0, 1].
        rtol: relative rank tolerance per side; default ``scatter_rtol(d, input dtype)``.
        chunk_size: rows per product (upcast to float64).

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import svcca
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(svcca(x, y, keep_variance=0.99)), 4)
        0.9182
    """
    keep_variance = check_scalar_in_range(
        keep_variance, name="keep_variance", low=0.0, high=1.0, low_open=True
    )
    moments, input_dtype = paired_float64_moments(x, y, chunk_size=chunk_size)
    return svcca_from_moments(
        moments, keep_variance=keep_variance, rtol=rtol, input_dtype=input_dtype
    )


def pwcca(
    x: Any,
    y: Any,
    *,
    weights_from: WeightsFrom = "x",
    rtol: float | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Tensor:
    """Projection-weighted CCA (PWCCA) similarity, Σ_i α_i ρ_i.

    Morcos et al. (2018): with the canonical variates h_i = Xc a_i of x (unit norm), the
    weight of correlation ρ_i is ``α_i ∝ Σ_j |⟨h_i, xc_j⟩|``, summed over the centered
    neurons (columns) xc_j of x, normalized to sum to 1; this is how much of x's activity
    the i-th canonical variate accounts for. Computed from ``Cxx`` alone:
    ``⟨h_i, xc_j⟩ = (Cxx a_i)_j``.

    **Not symmetric.** The weights come from one side: ``weights_from="x"`` (default, the
    paper's definition with x the representation being compared); ``"y"`` uses y's
    canonical variates and neurons; ``"smaller"`` mimics Google's reference code
    (``pwcca.compute_pwcca``), which weights by the side with fewer neurons (x on ties).
    The reference code also adds the neuron means back before its weights; here both the
    variates and the neurons are centered, as CCA itself is.

    Returns a similarity in [0, 1]; Morcos et al.'s PWCCA *distance* is ``1 - pwcca``.
    Invariant to translation and isotropic scaling of either side, to any invertible linear
    map of the side that does not give the weights, and to permutations and sign flips of
    the neurons of the side that does (not to its rotations).

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        weights_from: ``"x"``, ``"y"`` or ``"smaller"``.
        rtol: relative rank tolerance per side; default ``scatter_rtol(d, input dtype)``.
        chunk_size: rows per product (upcast to float64).

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import pwcca
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(pwcca(x, y)), 4)
        0.9194
    """
    check_choice(weights_from, name="weights_from", choices=_WEIGHTS_FROM)
    moments, input_dtype = paired_float64_moments(x, y, chunk_size=chunk_size)
    return pwcca_from_moments(
        moments, weights_from=weights_from, rtol=rtol, input_dtype=input_dtype
    )


# ---------------------------------------------------------------------------------------
# Streaming classes


class CCA(Float64MomentsMetric):
    """Streaming CCA: ``update(x, y)`` per batch, ``compute()`` at the end.

    ``method="correlations"`` (default) returns the canonical correlations of
    :func:`cca_correlations` (a 1-D tensor); ``"mean"`` returns ρ̄ (:func:`mean_cca`);
    ``"r2"`` returns R²_CCA (:func:`cca_r2`). Equals the function on the concatenated
    batches, whatever the split; under ``torch.distributed``, the global value.

    Args:
        method: ``"correlations"``, ``"mean"`` or ``"r2"``.
        rtol: relative rank tolerance per side; default ``scatter_rtol(d, batches' dtype)``.
        chunk_size: rows per product (upcast to float64).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import CCA
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = CCA(method="mean")
        >>> metric.update(x[:50], y[:50])
        >>> metric.update(x[50:], y[50:])
        >>> round(float(metric.compute()), 4)
        0.9182
    """

    higher_is_better = True

    def __init__(
        self,
        *,
        method: CCAMethod = "correlations",
        rtol: float | None = None,
        chunk_size: int = CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(chunk_size=chunk_size, **kwargs)
        self.rtol = check_optional_rtol(rtol)
        self.method = check_choice(method, name="method", choices=_METHODS)

    def compute(self) -> Tensor:
        """The chosen CCA statistic of every sample seen so far."""
        return _cca_statistic(self.moments(), self.method, self.rtol, self.input_dtype())


class SVCCA(Float64MomentsMetric):
    """Streaming SVCCA (:func:`svcca`): ``update(x, y)`` per batch, ``compute()`` at the end.

    The principal directions are those of the covariance of every sample seen (not per
    batch), so the result equals :func:`svcca` on the concatenated batches.

    Args:
        keep_variance: fraction of variance kept on each side, in (0, 1].
        rtol: relative rank tolerance per side; default ``scatter_rtol(d, batches' dtype)``.
        chunk_size: rows per product (upcast to float64).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import SVCCA
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = SVCCA()
        >>> metric.update(x[:50], y[:50])
        >>> metric.update(x[50:], y[50:])
        >>> round(float(metric.compute()), 4)
        0.9182
    """

    higher_is_better = True

    def __init__(
        self,
        *,
        keep_variance: float = 0.99,
        rtol: float | None = None,
        chunk_size: int = CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(chunk_size=chunk_size, **kwargs)
        self.rtol = check_optional_rtol(rtol)
        self.keep_variance = check_scalar_in_range(
            keep_variance, name="keep_variance", low=0.0, high=1.0, low_open=True
        )

    def compute(self) -> Tensor:
        """SVCCA of every sample seen so far."""
        return svcca_from_moments(
            self.moments(),
            keep_variance=self.keep_variance,
            rtol=self.rtol,
            input_dtype=self.input_dtype(),
        )


class PWCCA(Float64MomentsMetric):
    """Streaming PWCCA similarity (:func:`pwcca`; not symmetric, weights from one side).

    Args:
        weights_from: ``"x"`` (default), ``"y"`` or ``"smaller"``.
        rtol: relative rank tolerance per side; default ``scatter_rtol(d, batches' dtype)``.
        chunk_size: rows per product (upcast to float64).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import PWCCA
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = PWCCA()
        >>> metric.update(x[:50], y[:50])
        >>> metric.update(x[50:], y[50:])
        >>> round(float(metric.compute()), 4)
        0.9194
    """

    higher_is_better = True

    def __init__(
        self,
        *,
        weights_from: WeightsFrom = "x",
        rtol: float | None = None,
        chunk_size: int = CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(chunk_size=chunk_size, **kwargs)
        self.rtol = check_optional_rtol(rtol)
        check_choice(weights_from, name="weights_from", choices=_WEIGHTS_FROM)
        self.weights_from: WeightsFrom = weights_from

    def compute(self) -> Tensor:
        """PWCCA of every sample seen so far."""
        return pwcca_from_moments(
            self.moments(),
            weights_from=self.weights_from,
            rtol=self.rtol,
            input_dtype=self.input_dtype(),
        )

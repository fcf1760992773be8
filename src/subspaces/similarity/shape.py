"""Shape distances: orthogonal and permutation Procrustes, and generalized shape metrics.

Each representation is centered over samples and scaled to unit Frobenius norm (its
*pre-shape*, in statistical shape analysis), then the two are aligned by the best
orthogonal map (or neuron permutation) and compared. Everything is a function of the
centered scatter matrices ``Cxx = Xcᵀ Xc``, ``Cyy``, ``Cxy = Xcᵀ Yc`` (d × d, streamable):
for the pre-shapes X̂ = Xc / ||Xc||_F, Ŷ = Yc / ||Yc||_F,

    cos θ = max_Q ⟨X̂ Q, Ŷ⟩_F = ||Cxy||_* / sqrt(tr Cxx · tr Cyy),

the maximum over orthogonal Q (Schönemann 1966), ``||·||_*`` the nuclear norm. When
``d1 ≠ d2`` the smaller side is zero-padded, which leaves ``||Cxy||_*`` unchanged.
Two distances follow (Williams et al. 2021, "Generalized shape metrics on neural
representations", NeurIPS; Dryden & Mardia 2016):

* angular (Riemannian shape distance): θ = arccos(cos θ), in [0, π/2] for the orthogonal
  group;
* Euclidean (partial Procrustes distance): min_Q ||X̂ Q - Ŷ||_F = sqrt(2 - 2 cos θ), in
  [0, √2]. Its square is Ding et al.'s (2021) orthogonal Procrustes distance
  ``d_Proc = ||X̂||² + ||Ŷ||² - 2 ||X̂ᵀŶ||_*`` on normalized centered data.

Both are metrics (symmetric, triangle inequality) on representations modulo translation,
isotropic scaling and orthogonal transforms. They are 0 exactly when y = c·x·Q + v.

Numerical note: both are computed from cos θ, so a distance near 0 is resolved only to
about sqrt(δ), δ the relative rounding of the moments. Moments are accumulated with
float64 products (float32 input upcast chunk by chunk), so δ ≈ eps64 · (|mean| / std)²
and 0 reads as ≲ 1e-7 for data whose mean is within ~10 standard deviations of 0
(whitening, α < 1, amplifies δ by the conditioning: up to ~1e-6). Identical inputs are the
exception: when the moments say Xc = Yc to the last bit (Cxx = Cyy = sym(Cxy), as for
``f(x, x)`` and the diagonal of :func:`~subspaces.similarity.pairwise`), every distance
here is exactly 0.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from subspaces._checks import (
    check_choice,
    check_float_dtype,
    check_optional_rtol,
    check_scalar_in_range,
)
from subspaces.linalg.decomp import psd_range, scatter_tolerance, svdvals
from subspaces.linalg.moments import (
    CHUNK_SIZE,
    CenteredMoments,
    check_variance,
    require_moments,
)
from subspaces.linalg.streaming import Float64MomentsMetric
from subspaces.similarity._caveats import shape_metric_caveat, warn_small_sample
from subspaces.similarity._moments import paired_float64_moments

__all__ = [
    "PermutationProcrustesDistance",
    "ProcrustesDistance",
    "ShapeMetric",
    "angular_procrustes_distance",
    "permutation_procrustes_distance",
    "permutation_procrustes_distance_from_moments",
    "procrustes_distance",
    "procrustes_distance_from_moments",
    "shape_metric",
    "shape_metric_from_moments",
]

Distance = Literal["euclidean", "angular"]

_F64 = torch.float64
_DISTANCES = ("euclidean", "angular")


def _to_distance(cosine: Tensor, distance: str) -> Tensor:
    cosine = cosine.clamp(-1.0, 1.0)
    if distance == "angular":
        return torch.arccos(cosine)
    return (2.0 - 2.0 * cosine).clamp(min=0.0).sqrt()


def _traces(m: CenteredMoments, measure: str) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    cxx, cyy, cxy = require_moments(m, measure)
    tx = check_variance(cxx, m.mean_x, m.n, name="x", measure=measure)
    ty = check_variance(cyy, m.mean_y, m.n, name="y", measure=measure)
    return cxx, cyy, cxy.to(_F64), tx, ty


def _nuclear(a: Tensor) -> Tensor:
    return svdvals(a).sum()


def _same_centered_data(cxx: Tensor, cyy: Tensor, cxy: Tensor) -> bool:
    """Whether the moments say Xc = Yc: Cxx = Cyy = sym(Cxy), to the last bit.

    ||Xc − Yc||_F² = tr Cxx + tr Cyy − 2 tr Cxy, so these equalities make every shape
    distance exactly 0. They hold for identical inputs (both accumulations round alike)
    and on the diagonal of :func:`~subspaces.similarity.pairwise`, where the computed
    cos θ would otherwise be 1 − O(eps64 · cond), and arccos of it ~1e-8 to 1e-6.
    """
    if cxx.shape != cyy.shape or cxy.shape != cxx.shape:
        return False
    return torch.equal(cxx, cyy) and torch.equal(0.5 * (cxy + cxy.T), cxx)


def _zero(like: Tensor) -> Tensor:
    return torch.zeros((), dtype=_F64, device=like.device)


# ---------------------------------------------------------------------------------------
# Cores


def procrustes_distance_from_moments(
    m: CenteredMoments, *, distance: Distance = "euclidean"
) -> Tensor:
    """Orthogonal Procrustes distance from centered moments (core of :func:`procrustes_distance`).

    Args:
        m: centered moments with ``cxx``, ``cyy``, ``cxy``.
        distance: ``"euclidean"`` (sqrt(2 - 2 cos θ)) or ``"angular"`` (θ).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import procrustes_distance_from_moments
        >>> from subspaces.linalg.moments import paired_moments64
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(procrustes_distance_from_moments(paired_moments64(x, y))), 4)
        0.6392
    """
    kind = check_choice(distance, name="distance", choices=_DISTANCES)
    cxx, cyy, cxy, tx, ty = _traces(m, "the Procrustes distance")
    if _same_centered_data(cxx, cyy, cxy):
        return _zero(cxy)
    return _to_distance(_nuclear(cxy) / torch.sqrt(tx * ty), kind)


def shape_metric_from_moments(
    m: CenteredMoments,
    *,
    alpha: float = 1.0,
    distance: Distance = "angular",
    rtol: float | None = None,
    input_dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Generalized shape metric from centered moments (core of :func:`shape_metric`).

    Args:
        m: centered moments with ``cxx``, ``cyy``, ``cxy``.
        alpha: whitening regularization in [0, 1] (1: Procrustes, 0: CCA-like).
        distance: ``"angular"`` (θ) or ``"euclidean"`` (sqrt(2 - 2 cos θ)).
        rtol: relative rank tolerance per side; default ``scatter_rtol(d, input_dtype)``.
        input_dtype: the dtype of the data the moments were accumulated from.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import shape_metric_from_moments
        >>> from subspaces.linalg.moments import paired_moments64
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(shape_metric_from_moments(paired_moments64(x, y))), 4)
        0.6506
    """
    alpha = check_scalar_in_range(alpha, name="alpha", low=0.0, high=1.0)
    kind = check_choice(distance, name="distance", choices=_DISTANCES)
    rtol = check_optional_rtol(rtol)
    check_float_dtype(input_dtype, name="input_dtype", optional=False)
    measure = "the shape metric"
    cxx, cyy, cxy, tx, ty = _traces(m, measure)
    warn_small_sample(shape_metric_caveat(m.n, cxx.shape[0], cyy.shape[0], alpha=alpha))
    if _same_centered_data(cxx, cyy, cxy):
        return _zero(cxy)
    if alpha == 1.0:
        return _to_distance(_nuclear(cxy) / torch.sqrt(tx * ty), kind)
    lx, ux = psd_range(cxx, rtol=scatter_tolerance(rtol, cxx.shape[0], input_dtype))
    ly, uy = psd_range(cyy, rtol=scatter_tolerance(rtol, cyy.shape[0], input_dtype))
    # Partial whitening φ_α(Xc) = Xc (α I + (1 - α) Σ̃x)^{-1/2} on the numerical range, with
    # Σ̃x = Cxx / mean(λ_r): weights w = (α + (1 - α) λ / mean(λ_r))^{-1/2} per eigenvector.
    wx = (alpha + (1.0 - alpha) * lx / lx.mean()).rsqrt()
    wy = (alpha + (1.0 - alpha) * ly / ly.mean()).rsqrt()
    cross = (ux * wx).T @ cxy @ (uy * wy)  # φxᵀ φy in the eigenbases
    norm_x = (lx * wx.square()).sum()  # ||φ_α(Xc)||_F²
    norm_y = (ly * wy.square()).sum()
    return _to_distance(_nuclear(cross) / torch.sqrt(norm_x * norm_y), kind)


def _best_permutation_score(cxy: Tensor) -> Tensor:
    """max over one-to-one neuron matchings of Σ Cxy[i, π(i)] (scipy, on the CPU)."""
    weights = cxy.detach().cpu().numpy()
    rows, cols = linear_sum_assignment(weights, maximize=True)
    score = float(np.asarray(weights[rows, cols], dtype=np.float64).sum())
    return torch.tensor(score, dtype=_F64, device=cxy.device)


def permutation_procrustes_distance_from_moments(
    m: CenteredMoments, *, distance: Distance = "euclidean"
) -> Tensor:
    """Permutation Procrustes distance from moments (core of the function of that name).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import permutation_procrustes_distance_from_moments
        >>> from subspaces.linalg.moments import paired_moments64
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(permutation_procrustes_distance_from_moments(paired_moments64(x, y))), 4)
        1.0305
    """
    kind = check_choice(distance, name="distance", choices=_DISTANCES)
    cxx, cyy, cxy, tx, ty = _traces(m, "the permutation Procrustes distance")
    if _same_centered_data(cxx, cyy, cxy):
        return _zero(cxy)
    return _to_distance(_best_permutation_score(cxy) / torch.sqrt(tx * ty), kind)


# ---------------------------------------------------------------------------------------
# Functions


def procrustes_distance(x: Any, y: Any, *, chunk_size: int = CHUNK_SIZE) -> Tensor:
    """Orthogonal Procrustes (Euclidean shape) distance between two representations.

    d(X, Y) = min_Q ||X̂ Q - Ŷ||_F = sqrt(2 - 2 ||Cxy||_* / sqrt(tr Cxx · tr Cyy)), with
    X̂ = Xc / ||Xc||_F the centered representation scaled to unit Frobenius norm and Q
    orthogonal (the smaller side zero-padded when d1 ≠ d2). This is the partial
    Procrustes distance of shape analysis and the Euclidean shape metric of Williams et
    al. (2021) at α = 1 on normalized data; its square is the orthogonal Procrustes
    distance of Ding et al. (2021).

    Invariant to translation, isotropic scaling and orthogonal transforms of either side;
    symmetric; a metric (triangle inequality); in [0, √2]; 0 iff y = c·x·Q + v.

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        chunk_size: rows per product (upcast to float64).

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import procrustes_distance
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(procrustes_distance(x, y)), 4)
        0.6392
    """
    moments, _ = paired_float64_moments(x, y, chunk_size=chunk_size)
    return procrustes_distance_from_moments(moments)


def angular_procrustes_distance(x: Any, y: Any, *, chunk_size: int = CHUNK_SIZE) -> Tensor:
    """Angular Procrustes (Riemannian shape) distance, θ = arccos(||Cxy||_* / sqrt(tr Cxx tr Cyy)).

    The angle between the pre-shapes X̂ Q and Ŷ after the best orthogonal alignment
    (Williams et al. 2021, angular shape metric at α = 1; Dryden & Mardia's Riemannian
    distance with reflections allowed). Invariant to translation, isotropic scaling and
    orthogonal transforms of either side; symmetric; a metric; in [0, π/2].

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        chunk_size: rows per product (upcast to float64).

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import angular_procrustes_distance
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(angular_procrustes_distance(x, y)), 4)
        0.6506
    """
    moments, _ = paired_float64_moments(x, y, chunk_size=chunk_size)
    return procrustes_distance_from_moments(moments, distance="angular")


def shape_metric(
    x: Any,
    y: Any,
    *,
    alpha: float = 1.0,
    distance: Distance = "angular",
    rtol: float | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Tensor:
    """Generalized shape metric of Williams et al. (2021), with partial whitening.

    Each side is centered and partially whitened, φ_α(Xc) = Xc (α I + (1 - α) Σ̃x)^{-1/2},
    then compared by the Procrustes distance of :func:`procrustes_distance`:
    θ = arccos(||φ_α(Xc)ᵀ φ_α(Yc)||_* / (||φ_α(Xc)||_F ||φ_α(Yc)||_F)) (``"angular"``) or
    sqrt(2 - 2 cos θ) (``"euclidean"``, on unit-norm φ).

    * α = 1: no whitening, :func:`angular_procrustes_distance` / :func:`procrustes_distance`.
    * α = 0: full whitening; cos θ = Σ ρ_i / sqrt(r_x r_y), the mean canonical correlation
      for full-rank sides of equal width (Williams et al.'s CCA-based metric).

    Σ̃x = Cxx / mean(λ_1..λ_r) is x's scatter scaled to unit mean eigenvalue over its
    numerical range (the r eigenvalues above ``rtol · λ_max``), and the whitening acts on
    that range only. Williams et al. write the raw covariance; the scaling makes I and Σ̃
    commensurate, so that the metric does not depend on the units of x, nor on dead
    (constant) or zero-padded features, and it changes nothing at α = 0 or α = 1. (netrep's
    ``LinearMetric`` interpolates differently, with α I + (1 - α) Σ^{-1/2}; the two agree at
    α = 0 and α = 1.) Rank-deficient sides are fine.

    Invariances: translation, isotropic scaling and orthogonal transforms of either side
    for every α; at α = 0, any invertible linear map. Symmetric; a metric for every α;
    angular in [0, π/2], Euclidean in [0, √2].

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        alpha: regularization in [0, 1].
        distance: ``"angular"`` (default, as netrep) or ``"euclidean"``.
        rtol: relative rank tolerance per side; default ``scatter_rtol(d, input dtype)``.
        chunk_size: rows per product (upcast to float64).

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import shape_metric
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(shape_metric(x, y, alpha=0.5)), 4)
        0.6102
    """
    alpha = check_scalar_in_range(alpha, name="alpha", low=0.0, high=1.0)
    kind = cast(Distance, check_choice(distance, name="distance", choices=_DISTANCES))
    rtol = check_optional_rtol(rtol)
    moments, input_dtype = paired_float64_moments(x, y, chunk_size=chunk_size)
    return shape_metric_from_moments(
        moments, alpha=alpha, distance=kind, rtol=rtol, input_dtype=input_dtype
    )


def permutation_procrustes_distance(
    x: Any, y: Any, *, distance: Distance = "euclidean", chunk_size: int = CHUNK_SIZE
) -> Tensor:
    """Procrustes distance under the best one-to-one matching of neurons (permutation).

    cos θ = max_P tr(Pᵀ Cxy) / sqrt(tr Cxx · tr Cyy) over permutation matrices P (partial
    matchings when d1 ≠ d2, i.e. the smaller side zero-padded), solved exactly as a linear
    assignment on the d1 × d2 cross matrix (``scipy.optimize.linear_sum_assignment`` on the
    CPU; the result comes back on the inputs' device). ``"euclidean"``:
    min_P ||X̂ P - Ŷ||_F = sqrt(2 - 2 cos θ), in [0, 2]; ``"angular"``: θ, in [0, π]
    (Williams et al. 2021, permutation group).

    Invariant to translation, isotropic scaling and permutation of the neurons of either
    side (not to rotations); symmetric; a metric; always >= :func:`procrustes_distance`.

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        distance: ``"euclidean"`` (default) or ``"angular"``.
        chunk_size: rows per product (upcast to float64).

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import permutation_procrustes_distance
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(permutation_procrustes_distance(x, y)), 4)
        1.0305
    """
    kind = cast(Distance, check_choice(distance, name="distance", choices=_DISTANCES))
    moments, _ = paired_float64_moments(x, y, chunk_size=chunk_size)
    return permutation_procrustes_distance_from_moments(moments, distance=kind)


# ---------------------------------------------------------------------------------------
# Streaming classes


class ProcrustesDistance(Float64MomentsMetric):
    """Streaming orthogonal Procrustes distance (:func:`procrustes_distance`).

    ``distance="euclidean"`` (default) gives sqrt(2 - 2 cos θ), ``"angular"`` gives θ
    (:func:`angular_procrustes_distance`). Equals the function on the concatenated
    batches, whatever the split; under ``torch.distributed``, the global value.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import ProcrustesDistance
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = ProcrustesDistance()
        >>> metric.update(x[:50], y[:50])
        >>> metric.update(x[50:], y[50:])
        >>> round(float(metric.compute()), 4)
        0.6392
    """

    higher_is_better = False

    def __init__(
        self,
        *,
        distance: Distance = "euclidean",
        chunk_size: int = CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(chunk_size=chunk_size, **kwargs)
        self.distance = cast(Distance, check_choice(distance, name="distance", choices=_DISTANCES))

    def compute(self) -> Tensor:
        """The Procrustes distance of every sample seen so far."""
        return procrustes_distance_from_moments(self.moments(), distance=self.distance)


class ShapeMetric(Float64MomentsMetric):
    """Streaming generalized shape metric (:func:`shape_metric`).

    Args:
        alpha: regularization in [0, 1] (1: Procrustes, 0: CCA-like).
        distance: ``"angular"`` (default) or ``"euclidean"``.
        rtol: relative rank tolerance per side; default ``scatter_rtol(d, batches' dtype)``.
        chunk_size: rows per product (upcast to float64).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import ShapeMetric
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = ShapeMetric(alpha=0.5)
        >>> metric.update(x[:50], y[:50])
        >>> metric.update(x[50:], y[50:])
        >>> round(float(metric.compute()), 4)
        0.6102
    """

    higher_is_better = False

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        distance: Distance = "angular",
        rtol: float | None = None,
        chunk_size: int = CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(chunk_size=chunk_size, **kwargs)
        self.rtol = check_optional_rtol(rtol)
        self.alpha = check_scalar_in_range(alpha, name="alpha", low=0.0, high=1.0)
        self.distance = cast(Distance, check_choice(distance, name="distance", choices=_DISTANCES))

    def compute(self) -> Tensor:
        """The shape metric of every sample seen so far."""
        return shape_metric_from_moments(
            self.moments(),
            alpha=self.alpha,
            distance=self.distance,
            rtol=self.rtol,
            input_dtype=self.input_dtype(),
        )


class PermutationProcrustesDistance(Float64MomentsMetric):
    """Streaming permutation Procrustes distance (:func:`permutation_procrustes_distance`).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import PermutationProcrustesDistance
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = PermutationProcrustesDistance()
        >>> metric.update(x[:50], y[:50])
        >>> metric.update(x[50:], y[50:])
        >>> round(float(metric.compute()), 4)
        1.0305
    """

    higher_is_better = False

    def __init__(
        self,
        *,
        distance: Distance = "euclidean",
        chunk_size: int = CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(chunk_size=chunk_size, **kwargs)
        self.distance = cast(Distance, check_choice(distance, name="distance", choices=_DISTANCES))

    def compute(self) -> Tensor:
        """The permutation Procrustes distance of every sample seen so far."""
        return permutation_procrustes_distance_from_moments(self.moments(), distance=self.distance)

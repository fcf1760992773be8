"""Translators: maps from one representation space to another, fitted on paired samples.

Given the same ``n`` inputs seen by two models, ``x`` (n × d1) and ``y`` (n × d2), a
translator is a map ``T`` with ``T(x_i) ≈ y_i``, fitted on training pairs and applied to new
rows of ``x``. Two families:

* **Orthogonal Procrustes** (:class:`Procrustes`, :func:`procrustes_map`; Schönemann 1966,
  the "latent space translation" of Maiorca et al. 2023):
  ``T(x) = s (x - μx) W + μy`` with ``W = U Vᵀ`` from the SVD ``Xcᵀ Yc = U Σ Vᵀ``: the
  orthogonal ``W`` minimizing ``||Xc W - Yc||_F``. Optional centering (μ = 0 without) and
  isotropic scaling ``s = tr Σ / ||Xc W||_F²`` (the least-squares scale for that ``W``,
  ``tr Σ / ||Xc||_F²`` unless d1 > d2; ``s = 1`` without).
* **Least squares** (:class:`LinearTranslator`, :func:`linear_map`): ``T(x) = x B + b``
  minimizing ``||Y - X B - 1 bᵀ||_F² + λ ||B||_F²`` (ridge on the weights, never on the
  bias), i.e. ``B = (Cxx + λ I)⁺ Cxy``, ``b = μy - μxᵀ B`` (affine, ``bias=True``), or the
  same with uncentered moments and ``b = 0`` (linear, ``bias=False``). The ridge is
  relative, ``λ = ridge · tr(Cxx) / d1`` (:mod:`subspaces.linalg.lstsq`), so the fit does
  not change when x is rescaled.

Both depend on the data only through float64 sums (:mod:`subspaces.linalg.moments`):
means, ``Xcᵀ Yc``, ``Xcᵀ Xc`` (only its trace for Procrustes). So ``partial_fit`` over any
split of the rows gives the one-shot fit (to float64 rounding), memory is O(d1 d2 + d1²)
whatever ``n`` is, and each ``*_from_moments`` function is the maths core of its class.

:func:`~subspaces.align.scores.translation_scores` scores a translation on held-out pairs:
MSE, mean cosine, cross-space retrieval top-k accuracy and mean reciprocal rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    check_flag,
    check_float_dtype,
    check_optional_rtol,
    check_paired,
    check_positive_int,
)
from subspaces.align._estimators import _checked_rows, _MomentTranslator
from subspaces.linalg.decomp import svd
from subspaces.linalg.lstsq import check_ridge, lstsq_from_moments
from subspaces.linalg.moments import (
    CHUNK_SIZE,
    CenteredMoments,
    check_moments,
    check_variance,
    paired_moments64,
)

__all__ = [
    "LinearMap",
    "LinearTranslator",
    "Procrustes",
    "ProcrustesMap",
    "linear_map",
    "linear_map_from_moments",
    "procrustes_map",
    "procrustes_map_from_moments",
]

_F64 = torch.float64


# ---------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class ProcrustesMap(Result):
    """A fitted Procrustes map ``T(x) = scale · (x - x_mean) @ rotation + y_mean``.

    ``rotation`` (d1, d2) float64 is orthogonal when d1 = d2 and semi-orthogonal otherwise
    (orthonormal rows when d1 < d2, orthonormal columns when d1 > d2); ``scale`` a 0-dim
    float64 tensor (1 without scaling); ``x_mean`` (d1,), ``y_mean`` (d2,) (zeros without
    centering); ``singular_values`` the ``min(d1, d2)`` singular values of ``Xcᵀ Yc``.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 4, generator=g, dtype=torch.float64)
        >>> q = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))[0]
        >>> m = procrustes_map(x, 2.0 * x @ q + 1.0, scale=True)
        >>> round(float(m.scale), 4)
        2.0
        >>> bool(torch.allclose(m.apply(x), 2.0 * x @ q + 1.0))
        True
    """

    rotation: Tensor
    scale: Tensor
    x_mean: Tensor
    y_mean: Tensor
    singular_values: Tensor

    def apply(self, x: Tensor) -> Tensor:
        """``T(x)`` for an ``(m, d1)`` array (validated: finite, d1 columns, the map's device),
        in ``x``'s dtype (at least float32)."""
        x = _checked_rows(x, name="x", fitted=self.x_mean, what="Procrustes map")
        weight = (self.scale * self.rotation).to(x.dtype)
        return torch.addmm(self.y_mean.to(x.dtype), x - self.x_mean.to(x.dtype), weight)


@dataclass(frozen=True)
class LinearMap(Result):
    """A fitted least-squares map ``T(x) = x @ weight + bias``.

    ``weight`` (d1, d2) and ``bias`` (d2,) float64 (``bias`` is zero for a linear map);
    ``rank`` the numerical rank of the (centered, for an affine map) scatter of x that the
    pseudo-inverse used (d1 with a positive ridge).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 4, generator=g, dtype=torch.float64)
        >>> m = linear_map(x, x[:, :2] - 3.0)
        >>> m.weight.shape, m.rank
        (torch.Size([4, 2]), 4)
        >>> [round(v, 4) for v in m.bias.tolist()]
        [-3.0, -3.0]
    """

    weight: Tensor
    bias: Tensor
    rank: int

    def apply(self, x: Tensor) -> Tensor:
        """``T(x)`` for an ``(m, d1)`` array (validated: finite, d1 columns, the map's device),
        in ``x``'s dtype (at least float32)."""
        x = _checked_rows(x, name="x", fitted=self.weight[:, 0], what="linear map")
        return torch.addmm(self.bias.to(x.dtype), x, self.weight.to(x.dtype))


# ---------------------------------------------------------------------------------------
# Shared helpers


def _require(m: CenteredMoments, *, need_cyy: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    needs = ("cxx", "cxy", "mean_y", "cyy") if need_cyy else ("cxx", "cxy", "mean_y")
    check_moments(m, what="Procrustes" if need_cyy else "the linear map", needs=needs)
    assert m.cxx is not None and m.cxy is not None and m.mean_y is not None
    return m.cxx.to(_F64), m.cxy.to(_F64), m.mean_x.to(_F64), m.mean_y.to(_F64)


def _raw(c: Tensor, n: int, a: Tensor, b: Tensor) -> Tensor:
    """Uncentered second moment ``Σ a_i b_iᵀ`` from the centered one and the means."""
    return c + n * torch.outer(a, b)


# ---------------------------------------------------------------------------------------
# Procrustes


def procrustes_map_from_moments(
    m: CenteredMoments, *, center: bool = True, scale: bool = False
) -> ProcrustesMap:
    """Orthogonal Procrustes map from moments (core of :func:`procrustes_map`, :class:`Procrustes`).

    Args:
        m: centered moments of paired ``(x, y)`` with ``cxx``, ``cyy`` and ``cxy``.
        center: center both sides on their training means before rotating.
        scale: fit the isotropic scale ``s = tr Σ / ||Xc W||_F²``.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 4, generator=g, dtype=torch.float64)
        >>> q = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))[0]
        >>> from subspaces.linalg.moments import paired_moments64
        >>> m = procrustes_map_from_moments(paired_moments64(x, x @ q))
        >>> round(float((m.rotation - q).abs().max()), 6)
        0.0
    """
    cxx, cxy, mean_x, mean_y = _require(m, need_cyy=True)
    assert m.cyy is not None  # _require checked it
    center = check_flag(center, name="center")
    scale = check_flag(scale, name="scale")
    cyy = m.cyy.to(_F64)
    n = m.n
    what = "the Procrustes map"
    if center:
        check_variance(cxx, mean_x, n, name="x", measure=what)
        check_variance(cyy, mean_y, n, name="y", measure=what)
        cross, scatter = cxy, cxx
    else:
        cross, scatter = _raw(cxy, n, mean_x, mean_y), _raw(cxx, n, mean_x, mean_x)
        check_variance(scatter, None, n, name="x", measure=what)
        check_variance(_raw(cyy, n, mean_y, mean_y), None, n, name="y", measure=what)
        mean_x, mean_y = torch.zeros_like(mean_x), torch.zeros_like(mean_y)
    u, sv, vh = svd(cross, full_matrices=False)
    rotation = u @ vh
    if scale:  # least squares for this W: tr Σ / ||Xc W||² (= ||Xc||² unless d1 > d2)
        s = sv.sum() / ((scatter @ rotation) * rotation).sum().clamp(min=torch.finfo(_F64).tiny)
    else:
        s = torch.ones((), dtype=_F64, device=cross.device)
    return ProcrustesMap(rotation, s, mean_x, mean_y, sv)


def procrustes_map(
    x: Any,
    y: Any,
    *,
    center: bool = True,
    scale: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> ProcrustesMap:
    """Fit the orthogonal Procrustes map from x to y (Schönemann 1966).

    ``W = U Vᵀ`` with ``Xcᵀ Yc = U Σ Vᵀ`` (thin SVD), the orthogonal
    ``argmin_W ||Xc W - Yc||_F`` when d1 = d2 (other widths: below), ``Xc = X - 1 μxᵀ``
    (``μ = 0`` with ``center=False``); with ``scale=True`` also ``s = tr Σ / ||Xc W||_F²``
    (the least-squares isotropic scale for that W, which is ``tr Σ / ||Xc||_F²`` when
    d1 ≤ d2), and the map is ``T(x) = s (x - μx) W + μy``. When d1 ≤ d2 the residual
    ``||s Xc W - Yc||_F`` is the (unnormalized) Procrustes distance of
    :mod:`subspaces.similarity.shape`.

    **Different widths.** When ``d1 ≠ d2`` the narrower side is zero-padded, as in the shape
    distances, and ``W = U Vᵀ`` is ``(d1, d2)`` semi-orthogonal: for ``d1 < d2`` it embeds x
    isometrically in a d1-dimensional subspace of y's space (``W Wᵀ = I``), the exact
    minimizer over such maps; for ``d1 > d2`` it rotates x and keeps d2 coordinates
    (``Wᵀ W = I``), the restriction of the padded problem's orthogonal solution (not the
    least-squares minimizer over such maps, which has no closed form); the scale is then
    the least-squares one for that W, not the padded problem's ``tr Σ / ||Xc||_F²``.

    **Uniqueness.** W is unique when ``Xcᵀ Yc`` has full rank ``min(d1, d2)``; otherwise any
    orthogonal completion on its null space is optimal, and the one returned is whatever
    the SVD gives.

    Exactly recovers ``y = c x Q + v`` (c > 0, Q orthogonal) with ``scale=True`` when Xc has
    full column rank. Equivariances: ``T`` commutes with rotating x (Q acting on W) and
    with translating either side (when centered).

    Args:
        x: (n, d1) source representation. y: (n, d2) target representation of the same inputs.
        center: center both sides on their means (default); without, the map is linear.
        scale: fit an isotropic scale (default: a pure rotation, s = 1).
        chunk_size: rows per product (upcast to float64).

    Returns:
        A :class:`ProcrustesMap` (float64 tensors on the inputs' device).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 4, generator=g, dtype=torch.float64)
        >>> q = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))[0]
        >>> m = procrustes_map(x, x @ q + 5.0)
        >>> round(float((m.rotation - q).abs().max()), 6)
        0.0
        >>> [round(v, 4) for v in m.y_mean.tolist()][:2]
        [5.0902, 5.0388]
    """
    x, y = check_paired(x, y)
    return procrustes_map_from_moments(
        paired_moments64(x, y, chunk_size=check_positive_int(chunk_size, name="chunk_size")),
        center=check_flag(center, name="center"),
        scale=check_flag(scale, name="scale"),
    )


# ---------------------------------------------------------------------------------------
# Least squares


def linear_map_from_moments(
    m: CenteredMoments,
    *,
    bias: bool = True,
    ridge: float = 0.0,
    rtol: float | None = None,
    input_dtype: torch.dtype = torch.float32,
) -> LinearMap:
    """Least-squares (ridge) map from moments: the core of :func:`linear_map` and its class.

    Args:
        m: centered moments of paired ``(x, y)`` with ``cxx`` and ``cxy``.
        bias: fit an intercept (affine map) or not (linear map through the origin).
        ridge: relative ridge ≥ 0: ``λ = ridge · tr(C) / d1`` on ``||B||_F²``.
        rtol: relative rank tolerance of the pseudo-inverse (``ridge = 0``); default
            ``scatter_rtol(d1, input_dtype)``.
        input_dtype: the dtype of the data the moments were accumulated from.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 4, generator=g, dtype=torch.float64)
        >>> from subspaces.linalg.moments import paired_moments64
        >>> y = x @ torch.ones(4, 1, dtype=torch.float64)
        >>> m = linear_map_from_moments(paired_moments64(x, y), ridge=0.1)
        >>> [round(v, 3) for v in m.weight.flatten().tolist()]
        [0.882, 0.912, 0.894, 0.918]
    """
    ridge = check_ridge(ridge)
    rtol = check_optional_rtol(rtol)
    bias = check_flag(bias, name="bias")
    check_float_dtype(input_dtype, name="input_dtype", optional=False)
    cxx, cxy, mean_x, mean_y = _require(m, need_cyy=False)
    n = m.n
    if bias:
        check_variance(cxx, mean_x, n, name="x", measure="the linear map")
        c, cross = cxx, cxy
    else:
        c, cross = _raw(cxx, n, mean_x, mean_x), _raw(cxy, n, mean_x, mean_y)
        check_variance(c, None, n, name="x", measure="the linear map")
    solution = lstsq_from_moments(c, cross, ridge=ridge, rtol=rtol, input_dtype=input_dtype)
    weight = solution.weight
    offset = mean_y - mean_x @ weight if bias else torch.zeros_like(mean_y)
    return LinearMap(weight, offset, solution.rank)


def linear_map(
    x: Any,
    y: Any,
    *,
    bias: bool = True,
    ridge: float = 0.0,
    rtol: float | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> LinearMap:
    """Fit the least-squares (optionally ridge) linear or affine map from x to y.

    ``min_{B, b} ||Y - X B - 1 bᵀ||_F² + λ ||B||_F²`` (the intercept is not penalized), so
    ``B = (Cxx + λ I)⁺ Cxy`` and ``b = μy - Bᵀ μx`` with centered scatters ``Cxx = Xcᵀ Xc``,
    ``Cxy = Xcᵀ Yc`` (scikit-learn's ``Ridge(alpha=λ)`` / ``LinearRegression``). With
    ``bias=False``: ``B = (Xᵀ X + λ I)⁺ Xᵀ Y``, ``b = 0``. The ridge is relative,
    ``λ = ridge · tr(C) / d1`` for the scatter ``C`` used (the mean eigenvalue times
    ``ridge``), so the fit does not change when x is rescaled. Solved in float64 from one
    eigen-decomposition of the d1 × d1 scatter
    (:func:`~subspaces.linalg.lstsq.lstsq_from_moments`).

    **Rank-deficient x** (collinear features, or n - 1 < d1) with ``ridge=0``: the
    pseudo-inverse on the numerical range of the scatter (eigenvalues above
    ``rtol · λ_max``) gives the minimum-norm least-squares solution, as
    ``numpy.linalg.lstsq`` does; ``LinearMap.rank`` reports the rank used.

    Equivariant to invertible linear maps of y (the fitted map composes with them); with
    ``ridge=0``, to invertible linear maps of x too (and with ``bias=True``, translations
    of either side).

    Args:
        x: (n, d1) source representation. y: (n, d2) target representation of the same inputs.
        bias: fit an intercept (affine map, default) or not (linear map).
        ridge: relative ridge ≥ 0 on the weights: ``λ = ridge · tr(C) / d1``.
        rtol: relative rank tolerance with ``ridge=0``; default ``scatter_rtol(d1, dtype)``.
        chunk_size: rows per product (upcast to float64).

    Returns:
        A :class:`LinearMap` (float64 tensors on the inputs' device).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 4, generator=g, dtype=torch.float64)
        >>> y = x @ torch.tensor([[1.0], [2.0], [0.0], [0.0]], dtype=torch.float64) + 1.0
        >>> m = linear_map(x, y)
        >>> [round(v, 4) for v in m.weight.flatten().tolist()[:2]], round(float(m.bias), 4)
        ([1.0, 2.0], 1.0)
    """
    x, y = check_paired(x, y)
    return linear_map_from_moments(
        paired_moments64(x, y, chunk_size=check_positive_int(chunk_size, name="chunk_size")),
        bias=check_flag(bias, name="bias"),
        ridge=ridge,
        rtol=rtol,
        input_dtype=torch.promote_types(x.dtype, y.dtype),
    )


# ---------------------------------------------------------------------------------------
# Classes


class Procrustes(_MomentTranslator):
    """Orthogonal Procrustes translator (see :func:`procrustes_map` for the maths).

    ``fit(x, y)``, ``partial_fit(x, y)`` (streaming: the fit depends only on float64 sums, so
    any split of the rows gives the one-shot fit), ``transform(x)``, ``fit_transform``,
    ``score(x, y)`` (:class:`~subspaces.align.scores.TranslationScores` on held-out pairs).

    Attributes (after fitting): ``rotation_`` (d1, d2) float64 (semi-)orthogonal,
    ``scale_`` (0-dim), ``x_mean_`` (d1,), ``y_mean_`` (d2,), ``singular_values_``,
    ``map_`` (the :class:`ProcrustesMap`), ``n_samples_seen_``. Before fitting they raise
    :class:`~subspaces.NotFittedError` (an ``AttributeError``, so ``hasattr`` is False).

    Args:
        center: center both sides on their training means (default True).
        scale: fit an isotropic scale ``s = tr Σ / ||Xc W||_F²`` (default False: s = 1).
        chunk_size: rows per product (upcast to float64).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 4, generator=g, dtype=torch.float64)
        >>> q = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))[0]
        >>> model = Procrustes().fit(x[:30], x[:30] @ q)
        >>> float(model.score(x[30:], x[30:] @ q).top_k[1])
        1.0
        >>> model.rotation_.shape, model.n_samples_seen_
        (torch.Size([4, 4]), 30)
    """

    def __init__(
        self, *, center: bool = True, scale: bool = False, chunk_size: int = CHUNK_SIZE
    ) -> None:
        self.center = center
        self.scale = scale
        self.chunk_size = chunk_size

    def _check_params(self) -> None:
        super()._check_params()
        check_flag(self.center, name="center")
        check_flag(self.scale, name="scale")

    def _solve(self, m: CenteredMoments) -> ProcrustesMap:
        return procrustes_map_from_moments(m, center=self.center, scale=self.scale)

    @property
    def map_(self) -> ProcrustesMap:
        """The fitted :class:`ProcrustesMap`."""
        fitted = self._fitted()
        assert isinstance(fitted, ProcrustesMap)
        return fitted

    @property
    def rotation_(self) -> Tensor:
        """(d1, d2) float64 (semi-)orthogonal map."""
        return self.map_.rotation

    @property
    def scale_(self) -> Tensor:
        """0-dim float64 isotropic scale (1 when ``scale=False``)."""
        return self.map_.scale

    @property
    def x_mean_(self) -> Tensor:
        """(d1,) training mean of x (zeros when ``center=False``)."""
        return self.map_.x_mean

    @property
    def y_mean_(self) -> Tensor:
        """(d2,) training mean of y (zeros when ``center=False``)."""
        return self.map_.y_mean

    @property
    def singular_values_(self) -> Tensor:
        """Singular values of the (centered) cross scatter ``Xcᵀ Yc``."""
        return self.map_.singular_values


class LinearTranslator(_MomentTranslator):
    """Least-squares linear / affine translator with optional ridge (see :func:`linear_map`).

    ``fit``, ``partial_fit`` (streaming, any split equals one-shot), ``transform``,
    ``fit_transform``, ``score``.

    Attributes (after fitting): ``weight_`` (d1, d2) and ``bias_`` (d2,) float64 (zero
    bias when ``bias=False``), ``rank_`` (numerical rank of x's scatter used), ``map_``
    (the :class:`LinearMap`), ``n_samples_seen_``.

    Args:
        bias: fit an intercept (affine map, default) or not (linear map).
        ridge: relative ridge ≥ 0 on ``||B||_F²`` (not on the bias): ``λ = ridge · tr(C) / d1``
            (scikit-learn's ``alpha`` is ``λ``).
        rtol: relative rank tolerance with ``ridge=0``; default ``scatter_rtol(d1, dtype)``.
        chunk_size: rows per product (upcast to float64).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 4, generator=g, dtype=torch.float64)
        >>> y = 3.0 * x[:, :2]
        >>> model = LinearTranslator().partial_fit(x[:25], y[:25]).partial_fit(x[25:], y[25:])
        >>> round(float((model.transform(x) - y).abs().max()), 6)
        0.0
        >>> model.n_samples_seen_
        50
    """

    def __init__(
        self,
        *,
        bias: bool = True,
        ridge: float = 0.0,
        rtol: float | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.bias = bias
        self.ridge = ridge
        self.rtol = rtol
        self.chunk_size = chunk_size

    def _check_params(self) -> None:
        super()._check_params()
        check_flag(self.bias, name="bias")
        check_ridge(self.ridge)
        check_optional_rtol(self.rtol)

    def _solve(self, m: CenteredMoments) -> LinearMap:
        return linear_map_from_moments(
            m, bias=self.bias, ridge=self.ridge, rtol=self.rtol, input_dtype=self._input_dtype
        )

    @property
    def map_(self) -> LinearMap:
        """The fitted :class:`LinearMap`."""
        fitted = self._fitted()
        assert isinstance(fitted, LinearMap)
        return fitted

    @property
    def weight_(self) -> Tensor:
        """(d1, d2) float64 weights B."""
        return self.map_.weight

    @property
    def bias_(self) -> Tensor:
        """(d2,) float64 intercept b (zeros when ``bias=False``)."""
        return self.map_.bias

    @property
    def rank_(self) -> int:
        """Numerical rank of x's scatter used by the solve (d1 with a positive ridge)."""
        return self.map_.rank

"""Subspace-projected alignment: project both spaces onto low-dimensional subspaces, then align.

Hadgi et al. (2025, "Escaping Plato's Cave: Towards the Alignment of 3D and Text Latent
Spaces", CVPR) find that naive post-hoc alignment of two independently trained encoders
works poorly, and that projecting both representations onto well-chosen low-dimensional
subspaces first (they use CCA) makes alignment markedly better for matching and retrieval.
This module provides the projections, fitted on paired training rows, and the pipeline.

With centered scatters ``Cxx = Xcᵀ Xc``, ``Cyy``, ``Cxy = Xcᵀ Yc`` (float64, streamable; see
:mod:`subspaces.linalg.moments`), the k directions of each side are

* ``"cca"`` — canonical directions (Hotelling 1936): ``A = Cxx^{-1/2} U_k``,
  ``B = Cyy^{-1/2} V_k`` with ``Cxx^{-1/2} Cxy Cyy^{-1/2} = U diag(ρ) Vᵀ``, scaled by
  ``sqrt(n - 1)`` so that each projected coordinate has unit variance; pairs of coordinates
  have correlation ρ_1 ≥ ρ_2 ≥ ... and distinct coordinates are uncorrelated. Inverse
  square roots on each side's numerical range (as :mod:`subspaces.similarity.cca`).
  ``ridge = λ`` adds ``λ tr(C) / d`` to the diagonal of each scatter,
  ``C ← C + λ (tr C / d) I`` (regularized CCA, for d close to n; the conventions' relative
  ridge, so the result does not change when a side is rescaled);
* ``"pls"`` — partial least squares (PLS-SVD, Wegelin 2000; scikit-learn's ``PLSSVD``):
  the leading k left and right singular vectors of ``Cxy``, orthonormal, the directions of
  maximal covariance;
* ``"pca"`` — each side's own k leading principal directions (eigenvectors of ``Cxx``,
  ``Cyy``), orthonormal, paired by rank with signs chosen so that paired coordinates
  covary non-negatively. Uses no pairing information beyond that sign.

A point is projected as ``z = (x - μx) A`` (k coordinates). :class:`ProjectedAlignment`
then fits a translator (:mod:`subspaces.align.translators`) from ``z_x`` to ``z_y``, whose
moments are ``Aᵀ Cxx A``, ``Bᵀ Cyy B``, ``Aᵀ Cxy B``: the whole pipeline needs one pass over
the data, and ``partial_fit`` over any split equals one ``fit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    check_choice,
    check_flag,
    check_float_dtype,
    check_optional_rtol,
    check_paired,
    check_positive_int,
)
from subspaces.align._estimators import _checked_rows, _MomentTranslator, _PairedSumsFit
from subspaces.align.translators import (
    LinearMap,
    ProcrustesMap,
    linear_map_from_moments,
    procrustes_map_from_moments,
)
from subspaces.linalg.decomp import psd_eigh, psd_range, scatter_rtol, svd
from subspaces.linalg.lstsq import check_ridge, ridge_value
from subspaces.linalg.moments import (
    CHUNK_SIZE,
    CenteredMoments,
    check_moments,
    check_variance,
    paired_moments64,
)

__all__ = [
    "ProjectedAlignment",
    "SubspaceBases",
    "SubspaceProjection",
    "project_moments",
    "subspace_projection",
    "subspace_projection_from_moments",
]

ProjectionMethod = Literal["cca", "pls", "pca"]
AlignmentMethod = Literal["none", "cca", "pls", "pca"]
TranslatorKind = Literal["procrustes", "linear"]

_F64 = torch.float64
_METHODS = ("cca", "pls", "pca")
_TRANSLATORS = ("procrustes", "linear")


@dataclass(frozen=True)
class SubspaceBases(Result):
    """Fitted projections of both sides: ``z_x = (x - x_mean) @ x_components`` (likewise y).

    ``x_components`` (d1, k) and ``y_components`` (d2, k) float64; ``x_mean`` (d1,),
    ``y_mean`` (d2,); ``correlations`` (k,) the training correlation of each pair of
    projected coordinates (the canonical correlations for CCA); ``method`` the method name.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> z = torch.randn(200, 2, generator=g, dtype=torch.float64)
        >>> x = torch.cat([z, torch.randn(200, 3, generator=g, dtype=torch.float64)], 1)
        >>> mix = torch.tensor([[1.0, 1.0], [0.0, 2.0]], dtype=torch.float64)
        >>> y = torch.cat([z @ mix, torch.randn(200, 2, generator=g, dtype=torch.float64)], 1)
        >>> bases = subspace_projection(x, y, n_components=2)
        >>> bases.x_components.shape, bases.project_y(y).shape
        (torch.Size([5, 2]), torch.Size([200, 2]))
        >>> [round(v, 4) for v in bases.correlations.tolist()]
        [1.0, 1.0]
    """

    x_components: Tensor
    y_components: Tensor
    x_mean: Tensor
    y_mean: Tensor
    correlations: Tensor
    method: str

    def project_x(self, x: Tensor) -> Tensor:
        """``(x - x_mean) @ x_components`` for an ``(m, d1)`` array (validated), in x's dtype."""
        x = _checked_rows(x, name="x", fitted=self.x_mean, what="projection of x")
        return (x - self.x_mean.to(x.dtype)) @ self.x_components.to(x.dtype)

    def project_y(self, y: Tensor) -> Tensor:
        """``(y - y_mean) @ y_components`` for an ``(m, d2)`` array (validated), in y's dtype."""
        y = _checked_rows(y, name="y", fitted=self.y_mean, what="projection of y")
        return (y - self.y_mean.to(y.dtype)) @ self.y_components.to(y.dtype)


def _pair_correlations(a: Tensor, b: Tensor, m: CenteredMoments) -> Tensor:
    assert m.cxx is not None and m.cyy is not None and m.cxy is not None
    cross = (a.T @ m.cxy.to(_F64) @ b).diagonal()
    var_x = ((m.cxx.to(_F64) @ a) * a).sum(0)
    var_y = ((m.cyy.to(_F64) @ b) * b).sum(0)
    return cross / (var_x * var_y).sqrt().clamp(min=torch.finfo(_F64).tiny)


def _too_many(k: int, available: int, method: str, why: str) -> InvalidOptionError:
    return InvalidOptionError(
        f"n_components={k} but method={method!r} offers only {available} directions here "
        f"({why}); ask for at most {available}."
    )


def _ridged(c: Tensor, ridge: float) -> Tensor:
    """``C + λ tr(C) / d I``: the relative ridge of the conventions."""
    if ridge == 0.0:
        return c
    return c + ridge_value(c, ridge) * torch.eye(c.shape[0], dtype=c.dtype, device=c.device)


def subspace_projection_from_moments(
    m: CenteredMoments,
    *,
    method: ProjectionMethod = "cca",
    n_components: int | None = None,
    ridge: float = 0.0,
    rtol: float | None = None,
    input_dtype: torch.dtype = torch.float32,
) -> SubspaceBases:
    """Fit the k-dimensional projections of both sides from moments (core of the class).

    Args:
        m: centered moments of paired ``(x, y)`` with ``cxx``, ``cyy`` and ``cxy``.
        method: ``"cca"``, ``"pls"`` or ``"pca"``.
        n_components: k, the dimension of both subspaces; ``None``: as many as the method
            offers (the smaller numerical rank for CCA, the smaller width otherwise).
        ridge: CCA only: λ ≥ 0, ``λ tr(C) / d`` added to the diagonal of each scatter.
        rtol: relative rank tolerance of each side (CCA); default ``scatter_rtol(d, dtype)``.
        input_dtype: the dtype of the data the moments were accumulated from.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> z = torch.randn(200, 2, generator=g, dtype=torch.float64)
        >>> x = torch.cat([z, torch.randn(200, 3, generator=g, dtype=torch.float64)], 1)
        >>> mix = torch.tensor([[1.0, 1.0], [0.0, 2.0]], dtype=torch.float64)
        >>> y = torch.cat([z @ mix, torch.randn(200, 2, generator=g, dtype=torch.float64)], 1)
        >>> from subspaces.linalg.moments import paired_moments64
        >>> m = paired_moments64(x, y)
        >>> bases = subspace_projection_from_moments(m, method="pls", n_components=1)
        >>> bases.method, bases.y_components.shape
        ('pls', torch.Size([4, 1]))
    """
    kind = check_choice(method, name="method", choices=_METHODS)
    k = None if n_components is None else check_positive_int(n_components, name="n_components")
    reg = check_ridge(ridge)
    rtol = check_optional_rtol(rtol)
    check_float_dtype(input_dtype, name="input_dtype", optional=False)
    if reg and kind != "cca":
        raise InvalidOptionError(
            f"ridge applies to method='cca' only, got ridge={reg} with method={kind!r}; "
            "leave it at 0."
        )
    check_moments(m, what="the projection", needs=("cxx", "cyy", "cxy", "mean_y"))
    assert m.cxx is not None and m.cyy is not None and m.cxy is not None
    assert m.mean_y is not None
    cxx, cyy, cxy = m.cxx.to(_F64), m.cyy.to(_F64), m.cxy.to(_F64)
    (d1, d2), n = cxy.shape, m.n
    what = f"the {kind.upper()} projection"
    check_variance(cxx, m.mean_x.to(_F64), n, name="x", measure=what)
    check_variance(cyy, m.mean_y.to(_F64), n, name="y", measure=what)
    if kind == "cca":
        tol_x = rtol if rtol is not None else scatter_rtol(d1, input_dtype)
        tol_y = rtol if rtol is not None else scatter_rtol(d2, input_dtype)
        lx, ux = psd_range(_ridged(cxx, reg), rtol=tol_x)
        ly, uy = psd_range(_ridged(cyy, reg), rtol=tol_y)
        available = min(lx.shape[0], ly.shape[0])
        k = available if k is None else k
        if k > available:
            raise _too_many(k, available, kind, "the smaller numerical rank of the two sides")
        wx, wy = ux * lx.rsqrt(), uy * ly.rsqrt()
        u, _, vh = svd(wx.T @ cxy @ wy, full_matrices=False)
        unit = max(n - 1, 1) ** 0.5  # unit-variance coordinates
        a, b = wx @ u[:, :k] * unit, wy @ vh[:k].T * unit
    elif kind == "pls":
        available = min(d1, d2)
        k = available if k is None else k
        if k > available:
            raise _too_many(k, available, kind, "the smaller width of the two sides")
        u, _, vh = svd(cxy, full_matrices=False)
        a, b = u[:, :k], vh[:k].T
    else:
        available = min(d1, d2)
        k = available if k is None else k
        if k > available:
            raise _too_many(k, available, kind, "the smaller width of the two sides")
        a, b = psd_eigh(cxx)[1][:, :k], psd_eigh(cyy)[1][:, :k]
        signs = torch.where((a.T @ cxy @ b).diagonal() < 0, -1.0, 1.0).to(_F64)
        b = b * signs
    corr = _pair_correlations(a, b, m)
    return SubspaceBases(a, b, m.mean_x.to(_F64), m.mean_y.to(_F64), corr, kind)


def subspace_projection(
    x: Any,
    y: Any,
    *,
    method: ProjectionMethod = "cca",
    n_components: int | None = None,
    ridge: float = 0.0,
    rtol: float | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> SubspaceBases:
    """Fit k-dimensional subspaces of x and y from paired rows (CCA, PLS or PCA).

    See the module docstring for each method's formula. CCA coordinates have unit variance
    and correlations ρ_i (the canonical correlations); PLS and PCA directions are
    orthonormal. The subspaces found by CCA and PLS are invariant to translation and
    rotation of either side (CCA: to any invertible linear map); PCA's to translation and
    rotation. Directions are defined up to sign (and rotation within tied values).

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        method: ``"cca"`` (default), ``"pls"`` or ``"pca"``.
        n_components: k ≥ 1; at most the smaller numerical rank (CCA) or width (PLS, PCA);
            ``None`` (default): that many.
        ridge: CCA only: λ ≥ 0, ``λ tr(C) / d`` added to the diagonal of each scatter.
        rtol: relative rank tolerance of each side (CCA).
        chunk_size: rows per product (upcast to float64).

    Returns:
        A :class:`SubspaceBases` (float64 tensors on the inputs' device).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> z = torch.randn(200, 2, generator=g, dtype=torch.float64)
        >>> x = torch.cat([z, torch.randn(200, 3, generator=g, dtype=torch.float64)], 1)
        >>> mix = torch.tensor([[1.0, 1.0], [0.0, 2.0]], dtype=torch.float64)
        >>> y = torch.cat([z @ mix, torch.randn(200, 2, generator=g, dtype=torch.float64)], 1)
        >>> bases = subspace_projection(x, y, n_components=3, ridge=0.01)
        >>> [round(v, 3) for v in bases.correlations.tolist()]
        [1.0, 1.0, 0.108]
    """
    x, y = check_paired(x, y)
    return subspace_projection_from_moments(
        paired_moments64(x, y, chunk_size=check_positive_int(chunk_size, name="chunk_size")),
        method=method,
        n_components=n_components,
        ridge=ridge,
        rtol=rtol,
        input_dtype=torch.promote_types(x.dtype, y.dtype),
    )


def project_moments(m: CenteredMoments, bases: SubspaceBases) -> CenteredMoments:
    """Centered moments of the projected pairs ``(z_x, z_y)`` from those of ``(x, y)``.

    ``z_x = (x - μx) A`` has mean ``(m.mean_x - μx) A`` (zero when the bases were fitted on
    the same data) and scatter ``Aᵀ Cxx A``; likewise ``Bᵀ Cyy B`` and ``Aᵀ Cxy B``.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> z = torch.randn(200, 2, generator=g, dtype=torch.float64)
        >>> x = torch.cat([z, torch.randn(200, 3, generator=g, dtype=torch.float64)], 1)
        >>> mix = torch.tensor([[1.0, 1.0], [0.0, 2.0]], dtype=torch.float64)
        >>> y = torch.cat([z @ mix, torch.randn(200, 2, generator=g, dtype=torch.float64)], 1)
        >>> from subspaces.linalg.moments import paired_moments64
        >>> m = paired_moments64(x, y)
        >>> zm = project_moments(m, subspace_projection_from_moments(m, n_components=2))
        >>> zm.cxy.shape, round(float(zm.cxx[0, 0]) / (zm.n - 1), 4)
        (torch.Size([2, 2]), 1.0)
    """
    check_moments(m, what="the projection", needs=("cxx", "cyy", "cxy", "mean_y"))
    assert m.cxx is not None and m.cyy is not None and m.cxy is not None
    assert m.mean_y is not None
    if not isinstance(bases, SubspaceBases):
        raise InputTypeError(
            f"bases must be SubspaceBases (from subspace_projection), got {type(bases).__name__}."
        )
    d1, d2 = m.cxy.shape
    if (bases.x_components.shape[0], bases.y_components.shape[0]) != (d1, d2):
        raise ShapeError(
            f"bases were fitted on {bases.x_components.shape[0]} and "
            f"{bases.y_components.shape[0]} features but m holds moments of {d1} and {d2}."
        )
    a, b = bases.x_components, bases.y_components
    return CenteredMoments(
        m.n,
        (m.mean_x.to(_F64) - bases.x_mean) @ a,
        (m.mean_y.to(_F64) - bases.y_mean) @ b,
        a.T @ m.cxx.to(_F64) @ a,
        b.T @ m.cyy.to(_F64) @ b,
        a.T @ m.cxy.to(_F64) @ b,
    )


class SubspaceProjection(_PairedSumsFit):
    """Projections of two paired spaces onto k-dimensional subspaces (CCA, PLS or PCA).

    ``fit(x, y)`` / ``partial_fit(x, y)`` on paired training rows (streaming: float64 sums,
    any split equals one-shot), then ``transform_x(x)``, ``transform_y(y)`` or
    ``transform(x, y)`` on any rows. See :func:`subspace_projection` for the maths.

    Attributes (after fitting): ``x_components_`` (d1, k), ``y_components_`` (d2, k),
    ``x_mean_``, ``y_mean_``, ``correlations_`` (k,), ``bases_`` (:class:`SubspaceBases`),
    ``n_samples_seen_``.

    Args:
        method: ``"cca"`` (default), ``"pls"`` or ``"pca"``.
        n_components: k; ``None`` (default): as many as the method offers.
        ridge: CCA only: λ ≥ 0, ``λ tr(C) / d`` added to the diagonal of each scatter.
        rtol: relative rank tolerance of each side (CCA).
        chunk_size: rows per product (upcast to float64).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> z = torch.randn(200, 2, generator=g, dtype=torch.float64)
        >>> x = torch.cat([z, torch.randn(200, 3, generator=g, dtype=torch.float64)], 1)
        >>> mix = torch.tensor([[1.0, 1.0], [0.0, 2.0]], dtype=torch.float64)
        >>> y = torch.cat([z @ mix, torch.randn(200, 2, generator=g, dtype=torch.float64)], 1)
        >>> proj = SubspaceProjection(method="cca", n_components=2).fit(x, y)
        >>> zx, zy = proj.transform(x, y)
        >>> round(float(torch.corrcoef(torch.stack([zx[:, 0], zy[:, 0]]))[0, 1]), 4)
        1.0
    """

    def __init__(
        self,
        *,
        method: ProjectionMethod = "cca",
        n_components: int | None = None,
        ridge: float = 0.0,
        rtol: float | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.method = method
        self.n_components = n_components
        self.ridge = ridge
        self.rtol = rtol
        self.chunk_size = chunk_size

    def _check_params(self) -> None:
        super()._check_params()
        method = check_choice(self.method, name="method", choices=_METHODS)
        if self.n_components is not None:
            check_positive_int(self.n_components, name="n_components")
        if check_ridge(self.ridge) and method != "cca":
            raise InvalidOptionError("ridge applies to method='cca' only.")
        check_optional_rtol(self.rtol)

    def _solve(self, m: CenteredMoments) -> SubspaceBases:
        return subspace_projection_from_moments(
            m,
            method=self.method,
            n_components=self.n_components,
            ridge=self.ridge,
            rtol=self.rtol,
            input_dtype=self._input_dtype,
        )

    @property
    def bases_(self) -> SubspaceBases:
        """The fitted :class:`SubspaceBases`."""
        bases: SubspaceBases = self._solved()
        return bases

    @property
    def x_components_(self) -> Tensor:
        """(d1, k) float64 directions of x."""
        return self.bases_.x_components

    @property
    def y_components_(self) -> Tensor:
        """(d2, k) float64 directions of y."""
        return self.bases_.y_components

    @property
    def x_mean_(self) -> Tensor:
        """(d1,) training mean of x."""
        return self.bases_.x_mean

    @property
    def y_mean_(self) -> Tensor:
        """(d2,) training mean of y."""
        return self.bases_.y_mean

    @property
    def correlations_(self) -> Tensor:
        """(k,) training correlation of each pair of projected coordinates."""
        return self.bases_.correlations

    def transform_x(self, x: Any) -> Tensor:
        """Project rows of x: ``(m, k)`` in x's dtype."""
        bases = self.bases_
        return bases.project_x(
            self._check_side(
                x,
                name="x",
                width=bases.x_components.shape[0],
                what="the representation fitted as x",
            )
        )

    def transform_y(self, y: Any) -> Tensor:
        """Project rows of y: ``(m, k)`` in y's dtype."""
        bases = self.bases_
        return bases.project_y(
            self._check_side(
                y,
                name="y",
                width=bases.y_components.shape[0],
                what="the representation fitted as y",
            )
        )

    def transform(self, x: Any, y: Any) -> tuple[Tensor, Tensor]:
        """``(transform_x(x), transform_y(y))``."""
        return self.transform_x(x), self.transform_y(y)


@dataclass(frozen=True)
class _ProjectedMap(Result):
    """Projection (or none) followed by a translator in the projected space."""

    bases: SubspaceBases | None
    translator: ProcrustesMap | LinearMap

    def apply(self, x: Tensor) -> Tensor:
        z = x if self.bases is None else self.bases.project_x(x)
        return self.translator.apply(z)

    def target(self, y: Tensor) -> Tensor:
        return y if self.bases is None else self.bases.project_y(y)


class ProjectedAlignment(_MomentTranslator):
    """Align two spaces after projecting both onto k-dimensional subspaces (Hadgi et al. 2025).

    ``fit(x, y)`` fits the projections (:class:`SubspaceProjection`; ``method="none"`` skips
    them, the naive baseline) and a translator from the projected x to the projected y
    (``"procrustes"``: centered orthogonal Procrustes, optionally scaled; ``"linear"``:
    affine least squares, optionally with a ridge), in one pass (the translator is solved from
    the projected moments). ``transform(x)`` gives ``T(z_x)`` in y's projected space
    (``(m, k)``; ``(m, d2)`` with ``method="none"``), ``transform_y(y)`` gives ``z_y``, and
    ``score(x, y)`` compares them with :func:`~subspaces.align.scores.translation_scores`
    (retrieval among the held-out rows of y, in the subspace).

    Attributes (after fitting): ``bases_`` (:class:`SubspaceBases`, or ``None`` for
    ``"none"``), ``translator_map_`` (the fitted ProcrustesMap or LinearMap),
    ``n_samples_seen_``.

    Args:
        method: ``"cca"`` (default), ``"pls"``, ``"pca"`` or ``"none"``.
        n_components: k; ``None`` (default): as many as the method offers (and nothing
            else with ``method="none"``).
        translator: ``"procrustes"`` (default) or ``"linear"``.
        scale: Procrustes only: fit an isotropic scale.
        ridge: λ ≥ 0, ``λ tr(C) / d`` added to the diagonal of every scatter the fit
            inverts: each side's for ``method="cca"``, the projected x's for
            ``translator="linear"``; used by one of them at least.
        rtol: relative rank tolerance (CCA sides, linear solve).
        chunk_size: rows per product (upcast to float64).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> z = torch.randn(200, 2, generator=g, dtype=torch.float64)
        >>> x = torch.cat([z, torch.randn(200, 3, generator=g, dtype=torch.float64)], 1)
        >>> mix = torch.tensor([[1.0, 1.0], [0.0, 2.0]], dtype=torch.float64)
        >>> y = torch.cat([z @ mix, torch.randn(200, 2, generator=g, dtype=torch.float64)], 1)
        >>> model = ProjectedAlignment(n_components=2).fit(x[:150], y[:150])
        >>> model.transform(x[150:]).shape
        torch.Size([50, 2])
        >>> round(float(model.score(x[150:], y[150:]).top_k[5]), 2)
        1.0
    """

    def __init__(
        self,
        *,
        method: AlignmentMethod = "cca",
        n_components: int | None = None,
        translator: TranslatorKind = "procrustes",
        scale: bool = False,
        ridge: float = 0.0,
        rtol: float | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.method = method
        self.n_components = n_components
        self.translator = translator
        self.scale = scale
        self.ridge = ridge
        self.rtol = rtol
        self.chunk_size = chunk_size

    def _check_params(self) -> None:
        super()._check_params()
        method = check_choice(self.method, name="method", choices=("none", *_METHODS))
        if self.n_components is not None:
            if method == "none":
                raise InvalidOptionError(
                    f"method='none' projects nothing, so n_components must be None; got "
                    f"{self.n_components!r}."
                )
            check_positive_int(self.n_components, name="n_components")
        translator = check_choice(self.translator, name="translator", choices=_TRANSLATORS)
        if check_flag(self.scale, name="scale") and translator != "procrustes":
            raise InvalidOptionError("scale=True applies to translator='procrustes' only.")
        if check_ridge(self.ridge) and method != "cca" and translator != "linear":
            raise InvalidOptionError(
                "ridge applies to method='cca' (whitening) or translator='linear' only."
            )
        check_optional_rtol(self.rtol)

    def _solve(self, m: CenteredMoments) -> _ProjectedMap:
        bases = None
        if self.method != "none":
            bases = subspace_projection_from_moments(
                m,
                method=self.method,
                n_components=self.n_components,
                ridge=self.ridge if self.method == "cca" else 0.0,
                rtol=self.rtol,
                input_dtype=self._input_dtype,
            )
            m = project_moments(m, bases)
        fitted: ProcrustesMap | LinearMap
        if self.translator == "procrustes":
            fitted = procrustes_map_from_moments(m, scale=self.scale)
        else:
            fitted = linear_map_from_moments(
                m, ridge=self.ridge, rtol=self.rtol, input_dtype=self._input_dtype
            )
        return _ProjectedMap(bases, fitted)

    def _projected(self) -> _ProjectedMap:
        fitted = self._fitted()
        assert isinstance(fitted, _ProjectedMap)
        return fitted

    def _target(self, fitted: Any, y: Tensor) -> Tensor:
        assert isinstance(fitted, _ProjectedMap)
        return fitted.target(y)

    @property
    def bases_(self) -> SubspaceBases | None:
        """The fitted projections (``None`` for ``method="none"``)."""
        return self._projected().bases

    @property
    def translator_map_(self) -> ProcrustesMap | LinearMap:
        """The translator fitted between the projected spaces."""
        return self._projected().translator

    def transform_y(self, y: Any) -> Tensor:
        """Project rows of y into the space that :meth:`transform` maps x to."""
        fitted = self._projected()
        d2 = self._state.sum_y.shape[0]
        t = self._check_side(y, name="y", width=d2, what="the representation fitted as y")
        return fitted.target(t)

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
  same with uncentered moments and ``b = 0`` (linear, ``bias=False``).

Both depend on the data only through float64 sums (:mod:`subspaces.linalg.moments`):
means, ``Xcᵀ Yc``, ``Xcᵀ Xc`` (only its trace for Procrustes). So ``partial_fit`` over any
split of the rows gives the one-shot fit (to float64 rounding), memory is O(d1 d2 + d1²)
whatever ``n`` is, and each ``*_from_moments`` function is the maths core of its class.

:func:`translation_scores` scores a translation on held-out pairs: MSE, mean cosine,
cross-space retrieval top-k accuracy and mean reciprocal rank (blocked, never n × n).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    NotFittedError,
    ShapeError,
    check_flag,
    check_float_dtype,
    check_matrix,
    check_optional_rtol,
    check_paired,
    check_positive_int,
    check_positive_ints,
    check_positive_real,
    check_same_device,
)
from subspaces.linalg.decomp import psd_eigh, psd_range, scatter_rtol, svd
from subspaces.linalg.moments import (
    DEFAULT_CHUNK_SIZE,
    CenteredMoments,
    MomentsMetric,
    MomentSums,
    accumulate_moments,
    center_moments,
    check_moments,
)
from subspaces.linalg.retrieval import paired_ranks, unit_rows

__all__ = [
    "LinearMap",
    "LinearTranslator",
    "Procrustes",
    "ProcrustesMap",
    "TranslationScores",
    "linear_map",
    "linear_map_from_moments",
    "procrustes_map",
    "procrustes_map_from_moments",
    "translation_scores",
]

_F64 = torch.float64


# ---------------------------------------------------------------------------------------
# Results


def _checked_rows(a: Any, *, name: str, fitted: Tensor, what: str) -> Tensor:
    """``a`` as a validated ``(m, d)`` tensor for a map fitted on ``d = fitted.shape[0]``
    features: finite, m >= 1, on ``fitted``'s device."""
    t = check_matrix(a, name=name, min_samples=1)
    width = fitted.shape[0]
    if t.shape[1] != width:
        raise ShapeError(
            f"{name} has {t.shape[1]} features (shape {tuple(t.shape)}) but the {what} was "
            f"fitted with {width}; pass rows of the representation it was fitted on."
        )
    check_same_device(t, fitted, names=(name, f"the {what}"))
    return t


@dataclass(frozen=True)
class ProcrustesMap:
    """A fitted Procrustes map ``T(x) = scale · (x - x_mean) @ rotation + y_mean``.

    ``rotation`` (d1, d2) float64 is orthogonal when d1 = d2 and semi-orthogonal otherwise
    (orthonormal rows when d1 < d2, orthonormal columns when d1 > d2); ``scale`` a 0-dim
    float64 tensor (1 without scaling); ``x_mean`` (d1,), ``y_mean`` (d2,) (zeros without
    centering); ``singular_values`` the ``min(d1, d2)`` singular values of ``Xcᵀ Yc``.
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
class LinearMap:
    """A fitted least-squares map ``T(x) = x @ weight + bias``.

    ``weight`` (d1, d2) and ``bias`` (d2,) float64 (``bias`` is zero for a linear map);
    ``rank`` the numerical rank of the (centered, for an affine map) scatter of x that the
    pseudo-inverse used (d1 with a positive ridge).
    """

    weight: Tensor
    bias: Tensor
    rank: int

    def apply(self, x: Tensor) -> Tensor:
        """``T(x)`` for an ``(m, d1)`` array (validated: finite, d1 columns, the map's device),
        in ``x``'s dtype (at least float32)."""
        x = _checked_rows(x, name="x", fitted=self.weight[:, 0], what="linear map")
        return torch.addmm(self.bias.to(x.dtype), x, self.weight.to(x.dtype))


@dataclass(frozen=True)
class TranslationScores:
    """How well ``y_pred`` matches ``y_true`` row by row (see :func:`translation_scores`).

    ``mse`` and ``cosine`` are 0-dim float64 tensors; ``top_k`` maps each k to the
    retrieval top-k accuracy (0-dim float64 tensors in [0, 1]); ``mrr`` is the mean
    reciprocal rank in (0, 1].
    """

    mse: Tensor
    cosine: Tensor
    top_k: dict[int, Tensor]
    mrr: Tensor

    def as_dict(self) -> dict[str, float]:
        """Plain floats, keyed ``mse``, ``cosine``, ``top1``, ``top5``..., ``mrr`` (for tables)."""
        out = {"mse": float(self.mse), "cosine": float(self.cosine)}
        out.update({f"top{k}": float(v) for k, v in self.top_k.items()})
        out["mrr"] = float(self.mrr)
        return out


# ---------------------------------------------------------------------------------------
# Shared helpers


def _accumulate(state: MomentSums, x: Tensor, y: Tensor, *, chunk_size: int) -> None:
    """Add paired rows to ``state`` with float64 products (each chunk upcast, O(chunk·d))."""
    for start in range(0, x.shape[0], chunk_size):
        xb = x[start : start + chunk_size].to(_F64)
        yb = y[start : start + chunk_size].to(_F64)
        accumulate_moments(state, xb, yb, chunk_size=chunk_size)


def _moments(x: Tensor, y: Tensor, *, chunk_size: int) -> CenteredMoments:
    state = MomentSums()
    _accumulate(state, x, y, chunk_size=chunk_size)
    return center_moments(state)


def _require(m: CenteredMoments, *, need_cyy: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    needs = ("cxx", "cxy", "mean_y", "cyy") if need_cyy else ("cxx", "cxy", "mean_y")
    check_moments(m, what="Procrustes" if need_cyy else "the linear map", needs=needs)
    assert m.cxx is not None and m.cxy is not None and m.mean_y is not None
    return m.cxx.to(_F64), m.cxy.to(_F64), m.mean_x.to(_F64), m.mean_y.to(_F64)


def _check_spread(total: Tensor, mean_sq: float, n: int, d: int, *, name: str, what: str) -> None:
    """Raise DegenerateInputError if a scatter trace is zero to float64 rounding.

    A constant representation leaves rounding of order ``eps64 · n · |μ|²`` in the centered
    scatter (formed as ``Σ x xᵀ - n μ μᵀ``), which counts as zero.
    """
    floor = 8.0 * d * torch.finfo(_F64).eps * n * mean_sq
    if not float(total) > floor:
        raise DegenerateInputError(
            f"{name} has zero variance (every sample is the same point), so {what} is "
            f"undefined; check that {name} is not a constant or dead layer."
        )


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
    """
    cxx, cxy, mean_x, mean_y = _require(m, need_cyy=True)
    assert m.cyy is not None  # _require checked it
    center = check_flag(center, name="center")
    scale = check_flag(scale, name="scale")
    cyy = m.cyy.to(_F64)
    n, (d1, d2) = m.n, cxy.shape
    what = "the Procrustes map"
    if center:
        _check_spread(torch.trace(cxx), float(mean_x @ mean_x), n, d1, name="x", what=what)
        _check_spread(torch.trace(cyy), float(mean_y @ mean_y), n, d2, name="y", what=what)
        cross, scatter = cxy, cxx
    else:
        cross, scatter = _raw(cxy, n, mean_x, mean_y), _raw(cxx, n, mean_x, mean_x)
        _check_spread(torch.trace(scatter), 0.0, n, d1, name="x", what=what)
        _check_spread(torch.trace(cyy) + n * (mean_y @ mean_y), 0.0, n, d2, name="y", what=what)
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
    chunk_size: int = DEFAULT_CHUNK_SIZE,
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
    """
    x, y = check_paired(x, y)
    return procrustes_map_from_moments(
        _moments(x, y, chunk_size=check_positive_int(chunk_size, name="chunk_size")),
        center=check_flag(center, name="center"),
        scale=check_flag(scale, name="scale"),
    )


# ---------------------------------------------------------------------------------------
# Least squares


def _check_ridge(ridge: Any) -> float:
    return check_positive_real(ridge, name="ridge", allow_zero=True)


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
        ridge: penalty λ ≥ 0 on ``||B||_F²``.
        rtol: relative rank tolerance of the pseudo-inverse (``ridge = 0``); default
            ``scatter_rtol(d1, input_dtype)``.
        input_dtype: the dtype of the data the moments were accumulated from.
    """
    ridge = _check_ridge(ridge)
    rtol = check_optional_rtol(rtol)
    bias = check_flag(bias, name="bias")
    check_float_dtype(input_dtype, name="input_dtype", optional=False)
    cxx, cxy, mean_x, mean_y = _require(m, need_cyy=False)
    n, d1 = m.n, cxx.shape[0]
    if bias:
        _check_spread(
            torch.trace(cxx), float(mean_x @ mean_x), n, d1, name="x", what="the linear map"
        )
        c, cross = cxx, cxy
    else:
        c, cross = _raw(cxx, n, mean_x, mean_x), _raw(cxy, n, mean_x, mean_y)
        _check_spread(torch.trace(c), 0.0, n, d1, name="x", what="the linear map")
    if ridge == 0.0:
        tol = rtol if rtol is not None else scatter_rtol(d1, input_dtype)
        evals, evecs = psd_range(c, rtol=tol)
        rank = int(evals.shape[0])
    else:
        evals, evecs = psd_eigh(c)
        rank = d1
        evals = evals + ridge
    weight = (evecs / evals) @ (evecs.T @ cross)
    offset = mean_y - mean_x @ weight if bias else torch.zeros_like(mean_y)
    return LinearMap(weight, offset, rank)


def linear_map(
    x: Any,
    y: Any,
    *,
    bias: bool = True,
    ridge: float = 0.0,
    rtol: float | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> LinearMap:
    """Fit the least-squares (optionally ridge) linear or affine map from x to y.

    ``min_{B, b} ||Y - X B - 1 bᵀ||_F² + λ ||B||_F²`` (the intercept is not penalized), so
    ``B = (Cxx + λ I)⁺ Cxy`` and ``b = μy - Bᵀ μx`` with centered scatters ``Cxx = Xcᵀ Xc``,
    ``Cxy = Xcᵀ Yc`` (scikit-learn's ``Ridge(alpha=λ)`` / ``LinearRegression``). With
    ``bias=False``: ``B = (Xᵀ X + λ I)⁺ Xᵀ Y``, ``b = 0``. Solved in float64 from one
    eigen-decomposition of the d1 × d1 scatter.

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
        ridge: penalty λ ≥ 0 on the weights (absolute, in units of x's squared scale × n).
        rtol: relative rank tolerance with ``ridge=0``; default ``scatter_rtol(d1, dtype)``.
        chunk_size: rows per product (upcast to float64).

    Returns:
        A :class:`LinearMap` (float64 tensors on the inputs' device).
    """
    x, y = check_paired(x, y)
    return linear_map_from_moments(
        _moments(x, y, chunk_size=check_positive_int(chunk_size, name="chunk_size")),
        bias=check_flag(bias, name="bias"),
        ridge=ridge,
        rtol=rtol,
        input_dtype=torch.promote_types(x.dtype, y.dtype),
    )


# ---------------------------------------------------------------------------------------
# Scores


def _check_ks(ks: Any) -> tuple[int, ...]:
    return tuple(sorted(set(check_positive_ints(ks, name="ks"))))


def translation_scores(
    y_pred: Any,
    y_true: Any,
    *,
    ks: Sequence[int] = (1, 5),
    block_size: int = 1024,
) -> TranslationScores:
    """Score translated rows ``y_pred`` against their targets ``y_true`` (held-out pairs).

    * ``mse = (1 / (n d)) Σ_ij (ŷ_ij - y_ij)²`` (the mean over entries, as
      ``torch.nn.functional.mse_loss``), accumulated in float64; ≥ 0.
    * ``cosine = (1/n) Σ_i cos(ŷ_i, y_i)``, in [-1, 1].
    * Retrieval: row ``i`` of ``y_pred`` queries the gallery of all n rows of ``y_true`` by
      cosine similarity; ``rank_i = 1 + #{j ≠ i : cos(ŷ_i, y_j) ≥ cos(ŷ_i, y_i)}``. **Ties
      count against the true match** (a gallery row scoring exactly as high ranks above
      it), so duplicated targets never inflate the scores. ``top_k[k] = (1/n) Σ 1[rank_i ≤
      k]`` in [0, 1] (chance level k / n), ``mrr = (1/n) Σ 1 / rank_i`` in (0, 1].

    The scores are computed in row blocks of ``y_pred``: memory O(block_size × n), never
    n × n; the true match's score is read from the same product as the others, so a
    perfect translation ranks first even with rounding. Products run in the inputs' dtype
    (float32 ties are ties to ~1e-7; pass float64 for finer ranks).

    Invariant to a common rotation of both arguments; the retrieval scores also to
    rescaling any row.

    Args:
        y_pred: (n, d) translated rows. y_true: (n, d) their targets, in the same order.
        ks: the k of the top-k accuracies (default 1 and 5).
        block_size: query rows per block.

    Returns:
        A :class:`TranslationScores`.
    """
    ks_ = _check_ks(ks)
    block = check_positive_int(block_size, name="block_size")
    pred, true = check_paired(y_pred, y_true, names=("y_pred", "y_true"), min_samples=1)
    if pred.shape[1] != true.shape[1]:
        raise ShapeError(
            f"y_pred and y_true must have the same width, got {pred.shape[1]} and "
            f"{true.shape[1]}; translate x into y's space first (e.g. Procrustes().fit(x, y))."
        )
    mse = (pred - true).to(_F64).square().sum() / pred.numel()
    p, t = unit_rows(pred, name="y_pred"), unit_rows(true, name="y_true")
    p64, t64 = pred.to(_F64), true.to(_F64)  # O(n d): the paired cosines in float64
    paired = (p64 * t64).sum(1) / (p64.norm(dim=1) * t64.norm(dim=1))
    cosine = paired.clamp(-1.0, 1.0).mean()
    ranks = paired_ranks(p, t, block_size=block)
    top_k = {k: (ranks <= k).to(_F64).mean() for k in ks_}
    return TranslationScores(mse=mse, cosine=cosine, top_k=top_k, mrr=ranks.reciprocal().mean())


# ---------------------------------------------------------------------------------------
# Classes


class _Fitted(Protocol):
    """A fitted map: anything with ``apply(x)`` on a validated tensor."""

    def apply(self, x: Tensor) -> Tensor: ...  # pragma: no cover


_Self = TypeVar("_Self", bound="_PairedSumsFit")


class _PairedSums(MomentsMetric):
    """The float64 paired moment sums behind the estimators of this family.

    A ``torchmetrics.Metric`` (:class:`~subspaces.linalg.moments.MomentsMetric`): under
    ``torch.distributed``, ``compute()`` adds every rank's sums (about one common shift)
    and returns the centered moments of all rows.
    """

    is_differentiable = False
    higher_is_better: bool | None = None
    n: Tensor
    sum_x: Tensor
    sum_y: Tensor

    def __init__(self, *, chunk_size: int) -> None:
        super().__init__()
        self.chunk_size = chunk_size

    def update(self, x: Tensor, y: Tensor) -> None:
        _accumulate(self, x, y, chunk_size=self.chunk_size)  # type: ignore[arg-type]

    def compute(self) -> CenteredMoments:
        return center_moments(self)

    def global_moments(self) -> CenteredMoments:
        """The centered moments of every rank's rows (this rank's outside ``torch.distributed``).

        Syncs through ``sync_context`` rather than ``compute()``, whose result cache cannot
        hold a frozen dataclass.
        """
        with self.sync_context(should_unsync=True):
            return center_moments(self)


class _PairedSumsFit:
    """``fit`` / ``partial_fit`` over float64 sums of paired rows, shared by every estimator
    of this family that is a function of the centered moments.

    ``partial_fit`` only adds to the sums; ``_solve(centered moments)`` runs when the
    solution is first needed and is cached until the next batch. Under
    ``torch.distributed`` the sums of all ranks are added first (every rank must have
    ``partial_fit`` at least one batch and then use the estimator at the same point, e.g.
    call ``transform`` or read an attribute: that is a collective step), so each rank
    feeds its own share of the rows to ``partial_fit`` and every rank gets the fit on all.
    """

    def __init__(self, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.chunk_size = check_positive_int(chunk_size, name="chunk_size")
        self._reset()

    def _reset(self) -> None:
        self._state = _PairedSums(chunk_size=self.chunk_size)
        self._input_dtype = torch.float64
        self._solution: Any = None

    def _solve(self, m: CenteredMoments) -> Any:  # pragma: no cover
        raise NotImplementedError

    @property
    def n_samples_seen_(self) -> int:
        """Paired rows seen since the last ``fit`` (by this process)."""
        n = self._state.n
        return round(float(n)) if n.numel() else 0

    def fit(self: _Self, x: Any, y: Any) -> _Self:
        """Fit on paired rows ``x`` (n, d1), ``y`` (n, d2), forgetting earlier data."""
        tx, ty = check_paired(x, y, min_samples=2)
        self._reset()
        self._add(tx, ty)
        self._solved()  # solve now, so that degenerate data fail here
        return self

    def partial_fit(self: _Self, x: Any, y: Any) -> _Self:
        """Add paired rows; any split of the rows gives the same fit as one ``fit``."""
        tx, ty = check_paired(x, y, min_samples=1)
        self._add(tx, ty)
        return self

    def _add(self, tx: Tensor, ty: Tensor) -> None:
        if self._state.sum_x.numel():
            d1, d2 = self._state.sum_x.shape[0], self._state.sum_y.shape[0]
            if (tx.shape[1], ty.shape[1]) != (d1, d2):
                raise ShapeError(
                    f"this batch has {tx.shape[1]} and {ty.shape[1]} features but earlier "
                    f"batches had {d1} and {d2}; call fit() to start again on other data."
                )
            check_same_device(tx, self._state.sum_x, names=("x", "the fitted state"))
        self._state.update(tx, ty)
        if torch.finfo(tx.dtype).eps > torch.finfo(self._input_dtype).eps:
            self._input_dtype = tx.dtype
        self._solution = None

    def _check_side(self, a: Any, *, name: str, width: int, what: str) -> Tensor:
        t = check_matrix(a, name=name, min_samples=1)
        if t.shape[1] != width:
            raise ShapeError(
                f"{name} has {t.shape[1]} features (shape {tuple(t.shape)}) but this "
                f"{type(self).__name__} was fitted with {width}; pass rows of {what}."
            )
        check_same_device(t, self._state.sum_x, names=(name, "the fitted state"))
        return t

    def _solved(self) -> Any:
        if self._solution is None:
            seen = self.n_samples_seen_
            moments = self._state.global_moments() if seen else None  # all ranks' rows
            total = round(float(moments.n)) if moments is not None else 0
            if moments is None or total < 2:
                raise NotFittedError(
                    f"this {type(self).__name__} is not fitted (it has seen {total} paired "
                    "rows, and needs at least 2); call fit(x, y) with paired training rows first."
                )
            self._solution = self._solve(moments)
        return self._solution


class _MomentTranslator(_PairedSumsFit):
    """Shared transform / score of the translators fitted from moments.

    The map is solved when first needed (``transform``, ``score`` or an attribute) and
    cached until the next ``partial_fit``.
    """

    def _solve(self, m: CenteredMoments) -> _Fitted:  # pragma: no cover
        raise NotImplementedError

    def _fitted(self) -> _Fitted:
        fitted: _Fitted = self._solved()
        return fitted

    def transform(self, x: Any) -> Tensor:
        """Translate rows of x into y's space: an ``(m, d2)`` tensor in x's dtype."""
        fitted = self._fitted()
        d1 = self._state.sum_x.shape[0]
        t = self._check_side(x, name="x", width=d1, what="the representation fitted as x")
        return fitted.apply(t)

    def fit_transform(self, x: Any, y: Any) -> Tensor:
        """``fit(x, y)`` then ``transform(x)``."""
        return self.fit(x, y).transform(x)

    def score(
        self, x: Any, y: Any, *, ks: Sequence[int] = (1, 5), block_size: int = 1024
    ) -> TranslationScores:
        """:func:`translation_scores` of ``transform(x)`` against ``y`` (held-out pairs)."""
        pred = self.transform(x)
        d2 = self._state.sum_y.shape[0]
        target = self._check_side(y, name="y", width=d2, what="the representation fitted as y")
        if target.shape[0] != pred.shape[0]:
            raise ShapeError(
                f"x and y must hold the same samples in the same order, but x has "
                f"{pred.shape[0]} rows and y has {target.shape[0]}."
            )
        return translation_scores(
            pred, self._target(self._fitted(), target), ks=ks, block_size=block_size
        )

    def _target(self, fitted: _Fitted, y: Tensor) -> Tensor:
        """Where ``score`` compares the translations: y itself (projected, in subclasses)."""
        return y


class Procrustes(_MomentTranslator):
    """Orthogonal Procrustes translator (see :func:`procrustes_map` for the maths).

    ``fit(x, y)``, ``partial_fit(x, y)`` (streaming: the fit depends only on float64 sums, so
    any split of the rows gives the one-shot fit), ``transform(x)``, ``fit_transform``,
    ``score(x, y)`` (:class:`TranslationScores` on held-out pairs).

    Attributes (after fitting): ``rotation_`` (d1, d2) float64 (semi-)orthogonal,
    ``scale_`` (0-dim), ``x_mean_`` (d1,), ``y_mean_`` (d2,), ``singular_values_``,
    ``map_`` (the :class:`ProcrustesMap`), ``n_samples_seen_``. Before fitting they raise
    :class:`NotFittedError` (an ``AttributeError``, so ``hasattr`` is False).

    Args:
        center: center both sides on their training means (default True).
        scale: fit an isotropic scale ``s = tr Σ / ||Xc W||_F²`` (default False: s = 1).
        chunk_size: rows per product (upcast to float64).
    """

    def __init__(
        self, *, center: bool = True, scale: bool = False, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> None:
        self.center = check_flag(center, name="center")
        self.scale = check_flag(scale, name="scale")
        super().__init__(chunk_size=chunk_size)

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
        ridge: penalty λ ≥ 0 on ``||B||_F²`` (not on the bias), as scikit-learn's ``alpha``.
        rtol: relative rank tolerance with ``ridge=0``; default ``scatter_rtol(d1, dtype)``.
        chunk_size: rows per product (upcast to float64).
    """

    def __init__(
        self,
        *,
        bias: bool = True,
        ridge: float = 0.0,
        rtol: float | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.bias = check_flag(bias, name="bias")
        self.ridge = _check_ridge(ridge)
        self.rtol = check_optional_rtol(rtol)
        super().__init__(chunk_size=chunk_size)

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

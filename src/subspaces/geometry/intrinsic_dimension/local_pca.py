"""Intrinsic dimension from the PCA spectrum, globally or per neighborhood (local PCA)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    check_choice,
    check_flag,
    check_positive_int,
    check_positive_real,
    check_scalar_in_range,
)
from subspaces.geometry.intrinsic_dimension._common import (
    _CHUNK,
    _F64,
    _check_data,
    _check_neighbors,
    _column_mean,
    _IDEstimator,
    _scalar,
)
from subspaces.linalg.ann import (
    ANNOptions,
    ApproximateKNNResult,
    ApproximateValue,
    approximate_knn,
    check_neighbor_search,
    with_recall,
)
from subspaces.linalg.constants import CHUNK_SIZE
from subspaces.linalg.decomp import default_rtol, eigvalsh, scatter_rtol
from subspaces.linalg.knn import knn
from subspaces.linalg.scaling import ldexp, to_safe_range

__all__ = ["LPCA_METHODS", "LocalPCA", "local_pca_id"]


LPCA_METHODS: tuple[str, ...] = (
    "FO",
    "Fan",
    "maxgap",
    "ratio",
    "participation_ratio",
    "Kaiser",
    "broken_stick",
)
"""``method`` values of :func:`local_pca_id` (``skdim.id.lPCA``'s ``ver``)."""


@dataclass(frozen=True)
class _LpcaParams:
    method: str
    alpha_fo: float
    alpha_ratio: float
    alpha_fan: float
    beta_fan: float
    p_fan: float


def _first_true(mask: Tensor, default: int) -> Tensor:
    """Index of the first True along the last dim, ``default`` where there is none."""
    idx = torch.arange(mask.shape[-1], device=mask.device).expand_as(mask)
    big = torch.full_like(idx, mask.shape[-1])
    first = torch.where(mask, idx, big).min(dim=-1).values
    return torch.where(first == mask.shape[-1], torch.full_like(first, default), first)


def _gaps(ev: Tensor) -> Tensor:
    return ev[:, :-1] / ev[:, 1:]


def _lpca_rule(ev: Tensor, p: _LpcaParams) -> Tensor:
    """Apply a thresholding rule to ``(b, m)`` eigenvalues (decreasing) -> ``(b,)`` float64."""
    m = ev.shape[1]
    if p.method == "FO":
        return (ev > p.alpha_fo * ev[:, :1]).sum(dim=1).to(_F64)
    if p.method == "Kaiser":
        return (ev > ev.mean(dim=1, keepdim=True)).sum(dim=1).to(_F64)
    if p.method == "participation_ratio":
        return ev.sum(dim=1) ** 2 / (ev * ev).sum(dim=1)
    if p.method == "ratio":
        cum = ev.cumsum(dim=1)
        cum = cum / cum.max(dim=1, keepdim=True).values
        return ((cum < p.alpha_ratio).sum(dim=1) + 1).to(_F64)
    if p.method == "maxgap":
        if m < 2:
            return torch.ones(ev.shape[0], dtype=_F64, device=ev.device)
        gaps = _gaps(ev)
        gaps = torch.where(torch.isnan(gaps), torch.full_like(gaps, -torch.inf), gaps)
        return (gaps.argmax(dim=1) + 1).to(_F64)
    if p.method == "broken_stick":
        harmonic = 1.0 / torch.arange(1, m + 1, dtype=_F64, device=ev.device)
        stick = harmonic.flip(0).cumsum(0).flip(0) / m  # (1/m) Σ_{j >= i} 1/(j+1)
        below = stick[None, :] > ev / ev.sum(dim=1, keepdim=True)
        return _first_true(below, 0).to(_F64)
    # Fan et al. (2010), as implemented by skdim
    total = ev.sum(dim=1, keepdim=True)
    r = _first_true(ev.cumsum(dim=1) / total > p.p_fan, m - 1)
    cols = torch.arange(m, device=ev.device)[None, :]
    tail = cols >= r[:, None]
    sigma = (ev * tail).sum(dim=1, keepdim=True) / tail.sum(dim=1, keepdim=True)
    shifted = ev - sigma
    big_gap = _first_true(_gaps(shifted) > p.alpha_fan, m) if m > 1 else r.new_full(r.shape, m)
    enough = _first_true(shifted.cumsum(dim=1) / shifted.sum(dim=1, keepdim=True) > p.beta_fan, m)
    first = torch.minimum(big_gap, enough)
    if bool((first == m).any()):
        raise DegenerateInputError(
            "local PCA method='Fan': the rule finds neither a large gap nor a dominant block of "
            "eigenvalues (all eigenvalues are equal, e.g. isotropic data); use another method."
        )
    return (first + 1).to(_F64)


def _zero_rounding_noise(ev: Tensor, rtol: float) -> Tensor:
    """Set eigenvalues at most ``rtol`` times each row's largest to exactly 0 (decreasing rows)."""
    ev = ev.clamp(min=0.0)
    return torch.where(ev <= rtol * ev[..., :1], torch.zeros_like(ev), ev)


def _covariance_eigenvalues(t: Tensor) -> Tensor:
    """min(n, d) eigenvalues of the sample covariance (divisor n - 1), decreasing, float64.

    Returned as a ``(1, m)`` row; numerical zeros (rounding noise) are set to 0.
    """
    n, d = t.shape
    m = min(n, d)
    if d <= n:  # d × d scatter: two passes, data centered in float64 before the products
        mean = _column_mean(t)
        scatter = torch.zeros(d, d, dtype=_F64, device=t.device)
        for start in range(0, n, _CHUNK):
            c = (t[start : start + _CHUNK].to(_F64) - mean).to(t.dtype)
            scatter += (c.T @ c).to(_F64)
        ev = eigvalsh(0.5 * (scatter + scatter.T)).flip(0)
        rtol = default_rtol(m, t.dtype)
    else:  # the n × n Gram matrix is the smaller form here, in float64
        xc = t.to(_F64)
        xc = xc - xc.mean(dim=0)
        ev = eigvalsh(xc @ xc.T).flip(0)
        rtol = scatter_rtol(m, t.dtype)
    return _zero_rounding_noise(ev / (n - 1), rtol)[None, :]


def _neighborhood_eigenvalues(t: Tensor, idx: Tensor, *, max_elements: int = 1 << 22) -> Tensor:
    """Covariance eigenvalues of each point's neighborhood ``t[idx[i]]`` -> ``(n, min(k, d))``.

    Batched float64 eigen-decompositions of the k × k Gram or d × d scatter (the smaller);
    numerical zeros are set to 0.
    """
    n, k = idx.shape
    d = t.shape[1]
    m = min(k, d)
    rtol = scatter_rtol(m, t.dtype)
    out = torch.empty(n, m, dtype=_F64, device=t.device)
    step = max(1, max_elements // max(k * max(k, d), 1))
    for start in range(0, n, step):
        stop = min(start + step, n)
        nb = t[idx[start:stop]].to(_F64)  # (b, k, d)
        nb = nb - nb.mean(dim=1, keepdim=True)
        gram = nb.transpose(1, 2) @ nb if d <= k else nb @ nb.transpose(1, 2)
        ev = eigvalsh(gram).flip(-1)[:, :m]
        out[start:stop] = _zero_rounding_noise(ev / (k - 1), rtol)
    return out


def _lpca_params(
    method: Any, alpha_fo: Any, alpha_ratio: Any, alpha_fan: Any, beta_fan: Any, p_fan: Any
) -> _LpcaParams:
    return _LpcaParams(
        method=check_choice(method, name="method", choices=LPCA_METHODS),
        alpha_fo=check_scalar_in_range(alpha_fo, name="alpha_fo", low=0.0, high=1.0),
        alpha_ratio=check_scalar_in_range(alpha_ratio, name="alpha_ratio", low=0.0, high=1.0),
        alpha_fan=check_positive_real(alpha_fan, name="alpha_fan", allow_zero=True),
        beta_fan=check_scalar_in_range(beta_fan, name="beta_fan", low=0.0, high=1.0),
        p_fan=check_scalar_in_range(p_fan, name="p_fan", low=0.0, high=1.0),
    )


def _lpca_fit(
    x: Any,
    params: _LpcaParams,
    *,
    pointwise: bool,
    k: int,
    chunk_size: int,
    neighbors: Any = "exact",
) -> tuple[Tensor, Tensor, Tensor | None, ApproximateKNNResult | None]:
    """Global dimension, global eigenvalues, (if ``pointwise``) the local dimensions, and
    the approximate neighbor search (if one ran)."""
    # the dimensions do not depend on the scale: an exact power of two brings extreme data
    # into range (float32 squares of 1e20 overflow, of 1e-25 vanish); the eigenvalues
    # are scaled back in float64
    t, e = to_safe_range(_check_data(x, min_samples=2))
    pointwise = check_flag(pointwise, name="pointwise")
    k = check_positive_int(k, name="k", minimum=2)
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    options = check_neighbor_search(neighbors)
    search: ApproximateKNNResult | None = None
    ev = ldexp(_covariance_eigenvalues(t), 2 * e)
    if float(ev[0, 0]) <= 0.0:
        raise DegenerateInputError(
            "local PCA: x has zero variance (every sample is the same point); the spectrum "
            "is all zeros and no dimension can be read from it."
        )
    global_d = _lpca_rule(ev, params)[0]
    local: Tensor | None = None
    if pointwise:
        _check_neighbors(t.shape[0], k, estimator="local PCA", what="k")
        if options is None:
            idx = knn(t, k, exclude_self=True, chunk_size=chunk_size).indices
        else:
            search = approximate_knn(t, k, exclude_self=True, options=options)
            idx = search.indices
        local_ev = _neighborhood_eigenvalues(t, idx)
        flat = local_ev[:, 0] <= 0.0
        if bool(flat.any()):
            raise DegenerateInputError(
                f"local PCA: the neighborhoods of {int(flat.sum())} points are a single "
                "repeated point (zero variance); remove duplicate rows or raise k."
            )
        local = _lpca_rule(local_ev, params)
    return _scalar(global_d, t.device), ev[0], local, search


def local_pca_id(
    x: Any,
    *,
    method: str = "FO",
    pointwise: bool = False,
    k: int = 100,
    alpha_fo: float = 0.05,
    alpha_ratio: float = 0.95,
    alpha_fan: float = 10.0,
    beta_fan: float = 0.8,
    p_fan: float = 0.95,
    chunk_size: int = CHUNK_SIZE,
    neighbors: str | ANNOptions = "exact",
) -> Tensor | ApproximateValue:
    """Intrinsic dimension from the PCA spectrum, globally or in each point's neighborhood.

    With λ_1 >= ... >= λ_m the m = min(n, d) eigenvalues of the sample covariance (divisor
    n - 1), the rules of ``skdim.id.lPCA`` (same names and definitions):

    - ``"FO"`` (Fukunaga & Olsen, 1971): #{j : λ_j > alpha_fo · λ_1}.
    - ``"Fan"`` (Fan et al., 2010): with r the first index where the cumulative explained
      variance exceeds p_fan and σ = mean(λ_r..λ_m), λ'_j = λ_j - σ: 1 + the first j where
      λ'_j / λ'_{j+1} > alpha_fan or Σ_{i<=j} λ'_i / Σ λ' > beta_fan.
    - ``"maxgap"``: argmax_j λ_j / λ_{j+1} (1-based).
    - ``"ratio"``: the fewest leading components whose share of the variance reaches
      alpha_ratio, i.e. 1 + #{j : Σ_{i<=j} λ_i / Σ λ < alpha_ratio}. Default 0.95 here;
      skdim's default ``alphaRatio=0.05`` makes it nearly always 1.
    - ``"participation_ratio"``: (Σ λ)² / Σ λ² (real-valued).
    - ``"Kaiser"``: #{j : λ_j > mean(λ)}.
    - ``"broken_stick"`` (Jackson, 1993): the number of leading λ_j / Σ λ above the
      broken-stick expectation (1/m) Σ_{i>=j} 1/i, counted up to the first one below it.

    With ``pointwise=True`` the rule is applied to the covariance of each point's
    ``k`` nearest neighbors (the point itself excluded, as skdim's ``fit_pw``), a
    local estimate; neighborhoods come from the blocked kNN and their spectra from batched
    k × k (or d × d) eigen-decompositions. Eigenvalues at most m · eps times the largest
    (eps of the precision the products were formed in) are rounding noise of rank-deficient
    data and are set to 0, so that ``"maxgap"`` finds the rank there (skdim keeps the noise).

    Invariant to rotation, translation, isotropic scaling and sample order. Integer-valued
    except for ``"participation_ratio"``; in [0, min(n, d)].

    Args:
        x: ``(n, d)`` points.
        method: the rule, one of :data:`LPCA_METHODS`.
        pointwise: return the ``(n,)`` local estimates instead of the global one.
        k: neighborhood size for ``pointwise``.
        alpha_fo, alpha_ratio, alpha_fan, beta_fan, p_fan: the rules' thresholds (skdim's
            ``alphaFO``, ``alphaRatio``, ``alphaFan``, ``betaFan``, ``PFan``).
        chunk_size: the most query rows per block of the k-nearest-neighbor search.
        neighbors: ``"exact"`` (default) or ``"approximate"`` (or an
            :class:`~subspaces.linalg.ann.ANNOptions`): the neighborhoods of ``pointwise``
            (the global estimate uses no neighbors and is returned as is).

    Returns:
        A 0-dim float64 tensor, or ``(n,)`` float64 local estimates when ``pointwise``
        (with ``neighbors="approximate"``, an
        :class:`~subspaces.linalg.ann.ApproximateValue` holding them and the recall).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import local_pca_id
        >>> flat = x @ torch.randn(3, 6, generator=g, dtype=torch.float64)  # rank 3 in R^6
        >>> float(local_pca_id(flat))
        3.0
        >>> round(float(local_pca_id(flat, method="participation_ratio")), 2)
        2.09
        >>> local_pca_id(flat, pointwise=True, k=20).shape
        torch.Size([400])
    """
    params = _lpca_params(method, alpha_fo, alpha_ratio, alpha_fan, beta_fan, p_fan)
    global_d, _, local, search = _lpca_fit(
        x, params, pointwise=pointwise, k=k, chunk_size=chunk_size, neighbors=neighbors
    )
    if pointwise:
        assert local is not None
        return with_recall(local, search)
    return global_d


class LocalPCA(_IDEstimator):
    """PCA-spectrum dimension, global and per neighborhood; see :func:`local_pca_id`.

    Attributes (after ``fit``):
        dimension_: 0-dim float64 tensor from the global spectrum.
        explained_variance_: the global covariance eigenvalues, decreasing.
        dimension_pw_: ``(n,)`` local estimates on each point's ``k`` nearest
            neighbors (only when ``pointwise=True``).
        recall_, recall_queries_: the recall of the neighbor search and its sample size
            with ``pointwise=True`` and ``neighbors="approximate"`` (else ``None``).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import LocalPCA
        >>> flat = x @ torch.randn(3, 6, generator=g, dtype=torch.float64)  # rank 3 in R^6
        >>> est = LocalPCA(method="maxgap").fit(flat)
        >>> float(est.dimension_)
        3.0
        >>> est.explained_variance_.shape
        torch.Size([6])
    """

    def __init__(
        self,
        *,
        method: str = "FO",
        pointwise: bool = False,
        k: int = 100,
        alpha_fo: float = 0.05,
        alpha_ratio: float = 0.95,
        alpha_fan: float = 10.0,
        beta_fan: float = 0.8,
        p_fan: float = 0.95,
        chunk_size: int = CHUNK_SIZE,
        neighbors: str | ANNOptions = "exact",
    ) -> None:
        self.method = method
        self.pointwise = pointwise
        self.k = k
        self.alpha_fo = alpha_fo
        self.alpha_ratio = alpha_ratio
        self.alpha_fan = alpha_fan
        self.beta_fan = beta_fan
        self.p_fan = p_fan
        self.chunk_size = chunk_size
        self.neighbors = neighbors

    def fit(self, x: Any) -> LocalPCA:
        """Estimate the dimension of ``x`` (``(n, d)``); returns self."""
        params = _lpca_params(
            self.method, self.alpha_fo, self.alpha_ratio, self.alpha_fan, self.beta_fan, self.p_fan
        )
        self.dimension_, self.explained_variance_, local, search = _lpca_fit(
            x,
            params,
            pointwise=self.pointwise,
            k=self.k,
            chunk_size=self.chunk_size,
            neighbors=self.neighbors,
        )
        self._set_recall(search)
        if local is not None:
            self.dimension_pw_ = local
        return self

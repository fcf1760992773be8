"""Maximum-likelihood intrinsic dimension (Levina & Bickel, 2005; MacKay & Ghahramani, 2005)."""

from __future__ import annotations

import math
from typing import Any, Literal, overload

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    check_choice,
    check_flag,
    check_positive_int,
)
from subspaces.geometry.intrinsic_dimension._common import (
    _DUPLICATE_POLICIES,
    _F64,
    Duplicates,
    _check_data,
    _check_neighbors,
    _duplicate_mask,
    _IDEstimator,
    _neighbor_search,
    _quantile_linear,
    _scalar,
)
from subspaces.linalg.ann import (
    ANNOptions,
    ApproximateKNNResult,
    ApproximateValue,
    check_neighbor_search,
    with_recall,
)
from subspaces.linalg.constants import CHUNK_SIZE

__all__ = ["MLE", "MLE_AVERAGES", "mle_id"]


MLE_AVERAGES: tuple[str, ...] = ("inverse", "mean", "median")
"""``average`` values of :func:`mle_id`: how the per-point estimates are combined."""


def _mle_pointwise_from_distances(dist: Tensor, *, unbiased: bool) -> Tensor:
    """Per-point MLE from ``(n, k)`` positive neighbor distances (nearest first).

    m_i = (k - 1) / Σ_{j<=k} log(T_k / T_j)  (k - 2 when ``unbiased``); may be +inf when all
    k neighbors are equidistant (Σ = 0).
    """
    k = dist.shape[1]
    log_ratio = torch.log(dist[:, -1:] / dist).sum(dim=1)
    return (k - 2 if unbiased else k - 1) / log_ratio


def _mle_fit(
    x: Any,
    *,
    k: int,
    unbiased: bool,
    average: str,
    duplicates: str,
    pointwise: bool,
    chunk_size: int,
    neighbors: Any = "exact",
) -> tuple[Tensor, Tensor, ApproximateKNNResult | None]:
    t = _check_data(x)
    unbiased = check_flag(unbiased, name="unbiased")
    pointwise = check_flag(pointwise, name="pointwise")
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    k = check_positive_int(k, name="k", minimum=3 if unbiased else 2)
    average = check_choice(average, name="average", choices=MLE_AVERAGES)
    duplicates = check_choice(duplicates, name="duplicates", choices=_DUPLICATE_POLICIES)
    options = check_neighbor_search(neighbors)
    _check_neighbors(t.shape[0], k, estimator="MLE")
    dist, search = _neighbor_search(t, k, chunk_size, options)
    keep = _duplicate_mask(dist[:, 0] == 0, duplicates, estimator="MLE")
    local = torch.full((t.shape[0],), torch.nan, dtype=_F64, device=t.device)
    local[keep] = _mle_pointwise_from_distances(dist[keep], unbiased=unbiased)
    kept = local[keep]
    if kept.numel() == 0:
        raise DegenerateInputError("MLE: every point has a duplicate; no estimate is possible.")
    n_inf = int(torch.isinf(kept).sum())
    if n_inf and (pointwise or average != "inverse"):
        raise DegenerateInputError(
            f"MLE: for {n_inf} points all k={k} nearest neighbors are at the same distance, "
            "so their local estimate is infinite; use a larger k (or average='inverse' for "
            "the global estimate, to which they contribute 1/m = 0)."
        )
    if average == "inverse":
        global_d = 1.0 / (1.0 / kept).mean()
    elif average == "mean":
        global_d = kept.mean()
    else:
        global_d = _quantile_linear(torch.sort(kept).values, 0.5)
    if not math.isfinite(float(global_d)):
        raise DegenerateInputError(
            f"MLE: for every point all k={k} nearest neighbors are at the same distance, so "
            "the estimate is infinite; the data look like a lattice. Use a larger k."
        )
    return _scalar(global_d, t.device), local, search


@overload
def mle_id(
    x: Any,
    *,
    k: int = ...,
    pointwise: bool = ...,
    average: Literal["inverse", "mean", "median"] = ...,
    unbiased: bool = ...,
    duplicates: Duplicates = ...,
    chunk_size: int = ...,
    neighbors: Literal["exact"] = ...,
) -> Tensor: ...


@overload
def mle_id(
    x: Any,
    *,
    k: int = ...,
    pointwise: bool = ...,
    average: Literal["inverse", "mean", "median"] = ...,
    unbiased: bool = ...,
    duplicates: Duplicates = ...,
    chunk_size: int = ...,
    neighbors: Literal["approximate"] | ANNOptions,
) -> ApproximateValue: ...


def mle_id(
    x: Any,
    *,
    k: int = 20,
    pointwise: bool = False,
    average: Literal["inverse", "mean", "median"] = "inverse",
    unbiased: bool = False,
    duplicates: Duplicates = "raise",
    chunk_size: int = CHUNK_SIZE,
    neighbors: str | ANNOptions = "exact",
) -> Tensor | ApproximateValue:
    """Maximum-likelihood intrinsic dimension (Levina & Bickel, 2005; MacKay & Ghahramani, 2005).

    For point i with distances T_1 <= ... <= T_k to its k nearest neighbors, the local
    estimate is m_i = (k - 1) / Σ_{j=1}^{k} log(T_k / T_j) (the j = k term is 0). The global
    estimate combines them by ``average``:

    - ``"inverse"`` (default): m = [ (1/n) Σ 1/m_i ]^(-1), the averaging of inverses that
      MacKay & Ghahramani (2005) showed to be the likelihood-consistent one; it equals
      ``skdim.id.MLE().fit(x, n_neighbors=k).dimension_`` (whose default ``comb="mle"``).
    - ``"mean"``: Levina & Bickel's mean of the m_i; ``"median"``: their median.

    ``unbiased=True`` uses k - 2 in place of k - 1 (skdim's ``unbiased=True``).
    Invariant to rotation, translation, isotropic scaling and sample order; in (0, ∞).

    Args:
        x: ``(n, d)`` points, n >= k + 1.
        k: neighbors per point (>= 2; >= 3 when ``unbiased``).
        pointwise: return the ``(n,)`` local estimates m_i instead of the global one
            (entries of points left out by ``duplicates="drop"`` are NaN, with the warning).
        average: how to combine the local estimates (see above).
        unbiased: use k - 2 instead of k - 1.
        duplicates: ``"raise"`` (default) or ``"drop"`` points at distance 0 from their
            nearest neighbor (with a warning).
        chunk_size: the most query rows per block of the k-nearest-neighbor search.
        neighbors: ``"exact"`` (default) or ``"approximate"`` (or an
            :class:`~subspaces.linalg.ann.ANNOptions`): the neighbor search
            (:mod:`subspaces.linalg.ann`).

    Returns:
        A 0-dim float64 tensor, or the ``(n,)`` float64 local estimates when ``pointwise``;
        with ``neighbors="approximate"`` an :class:`~subspaces.linalg.ann.ApproximateValue`
        whose ``value`` is that tensor, with the search's recall.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import mle_id
        >>> round(float(mle_id(x, k=10)), 2)
        3.1
        >>> mle_id(x, k=10, pointwise=True).shape
        torch.Size([400])
    """
    global_d, local, search = _mle_fit(
        x,
        k=k,
        unbiased=unbiased,
        average=average,
        duplicates=duplicates,
        pointwise=pointwise,
        chunk_size=chunk_size,
        neighbors=neighbors,
    )
    return with_recall(local if pointwise else global_d, search)


class MLE(_IDEstimator):
    """Levina-Bickel MLE with MacKay-Ghahramani averaging; see :func:`mle_id`.

    Attributes (after ``fit``):
        dimension_: 0-dim float64 tensor (the combined estimate).
        dimension_pw_: ``(n,)`` float64 local estimates m_i.
        recall_, recall_queries_: the recall of the neighbor search and its sample size
            with ``neighbors="approximate"`` (``None`` after an exact search).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import MLE
        >>> est = MLE(k=10).fit(x)
        >>> round(float(est.dimension_), 2)
        3.1
        >>> est.dimension_pw_.shape
        torch.Size([400])
    """

    def __init__(
        self,
        *,
        k: int = 20,
        average: Literal["inverse", "mean", "median"] = "inverse",
        unbiased: bool = False,
        duplicates: Duplicates = "raise",
        chunk_size: int = CHUNK_SIZE,
        neighbors: str | ANNOptions = "exact",
    ) -> None:
        self.k = k
        self.average = average
        self.unbiased = unbiased
        self.duplicates = duplicates
        self.chunk_size = chunk_size
        self.neighbors = neighbors

    def fit(self, x: Any) -> MLE:
        """Estimate the dimension of ``x`` (``(n, d)``); returns self."""
        self.dimension_, self.dimension_pw_, search = _mle_fit(
            x,
            k=self.k,
            unbiased=self.unbiased,
            average=self.average,
            duplicates=self.duplicates,
            pointwise=True,  # dimension_pw_ is exposed: an infinite local estimate raises
            chunk_size=self.chunk_size,
            neighbors=self.neighbors,
        )
        self._set_recall(search)
        return self

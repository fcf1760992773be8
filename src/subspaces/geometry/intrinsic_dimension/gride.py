"""GRIDE, the generalized-ratios intrinsic dimension estimator (Denti et al., 2022)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal, overload

import torch
from torch import Tensor

from subspaces._base import Result
from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    TooFewSamplesError,
    check_choice,
    check_flag,
    check_positive_int,
)
from subspaces.geometry.intrinsic_dimension._common import (
    _DUPLICATE_POLICIES,
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

__all__ = ["GRIDE", "GrideScales", "gride", "gride_multiscale"]


def _gride_from_log_ratios(log_mu: Tensor, k1: int, k2: int) -> tuple[Tensor, Tensor]:
    """GRIDE maximum-likelihood estimate and its standard error from log(r_k2 / r_k1).

    ``log_mu``: finite, >= 0 (ties equal to 0 already handled by the caller).
    """
    device = log_mu.device
    if log_mu.numel() and float(log_mu.max()) <= 0.0:
        raise DegenerateInputError(
            f"GRIDE (k=({k1}, {k2})): every ratio r_k2/r_k1 equals 1, so the likelihood "
            "has no maximum; the data look like a lattice, not a sample of a manifold."
        )
    if log_mu.numel() >= 2:
        mu_sorted = torch.sort(log_mu.exp()).values
        q95 = _quantile_linear(mu_sorted, 0.95)
        q50 = _quantile_linear(mu_sorted, 0.5)
        log_mu = log_mu[log_mu.exp() < 20 * (q95 - q50) + q50]
    n = log_mu.numel()
    if n < 2:
        raise TooFewSamplesError(
            f"GRIDE (k=({k1}, {k2})): fewer than 2 usable ratios r_k2/r_k1 are left "
            f"({n}); use more samples."
        )
    total = log_mu.sum()
    if float(total) <= 0.0:
        raise DegenerateInputError(
            f"GRIDE (k=({k1}, {k2})): every ratio r_k2/r_k1 equals 1, so the likelihood "
            "has no maximum; the data look like a lattice, not a sample of a manifold."
        )
    extra = k2 - k1 - 1

    def score(d: float) -> float:
        value = (n - 1) / d - (k2 - 1) * float(total)
        if extra:
            value += extra * float((log_mu / -torch.expm1(-d * log_mu)).sum())
        return value

    def curvature(d: float) -> float:  # minus the derivative of the score
        value = (n - 1) / d**2
        if extra:
            value += extra * float(((log_mu / (2 * torch.sinh(d * log_mu / 2))) ** 2).sum())
        return value

    # the score decreases from +inf (d -> 0) to -k1 Σ log mu < 0: one root, bracketed here
    lo, hi = 0.0, 1.0
    while score(hi) > 0:
        lo, hi = hi, 2 * hi
    d = 0.5 * (lo + hi) if lo > 0 else 0.5 * hi
    for _ in range(200):  # safeguarded Newton
        s = score(d)
        if s > 0:
            lo = d
        else:
            hi = d
        step = d + s / curvature(d)
        new = step if lo < step < hi else 0.5 * (lo + hi)
        if abs(new - d) <= 1e-14 * max(abs(new), 1.0) or hi - lo <= 1e-14 * hi:
            d = new
            break
        d = new
    info = n / d**2
    if extra:
        info += extra * float(((log_mu / (2 * torch.sinh(d * log_mu / 2))) ** 2).sum())
    return _scalar(d, device), _scalar(1.0 / math.sqrt(info), device)


def _gride_at(dist: Tensor, k1: int, k2: int, duplicates: str) -> tuple[Tensor, Tensor]:
    """GRIDE at one scale from the ``(n, >= k2)`` neighbor distances."""
    r1, r2 = dist[:, k1 - 1], dist[:, k2 - 1]
    nth = "its nearest neighbor" if k1 == 1 else f"its {k1}-th nearest neighbor"
    keep = _duplicate_mask(r1 == 0, duplicates, estimator=f"GRIDE (k=({k1}, {k2}))", what=nth)
    log_mu = torch.log(r2[keep] / r1[keep])
    if k2 - k1 > 1:
        # the likelihood is 0 at mu = 1 when k2 > k1 + 1: such ties carry no information
        ties = log_mu == 0
        n_ties = int(ties.sum())
        if n_ties:
            warnings.warn(
                f"GRIDE (k=({k1}, {k2})): leaving out {n_ties} points whose k1-th and "
                "k2-th neighbors are equidistant (r_k2 / r_k1 = 1).",
                UserWarning,
                stacklevel=3,
            )
            log_mu = log_mu[~ties]
    return _gride_from_log_ratios(log_mu, k1, k2)


def _check_gride_orders(k: Any) -> tuple[int, int]:
    """``k`` as the pair (k1, k2) of neighbor orders: an int k1 means (k1, 2 k1)."""
    if isinstance(k, (tuple, list)):
        if len(k) != 2:
            raise InvalidOptionError(
                f"k must be one neighbor order k1 or a pair (k1, k2), got {len(k)} values {k!r}."
            )
        k1 = check_positive_int(k[0], name="k[0]")
        k2 = check_positive_int(k[1], name="k[1]")
    else:
        k1 = check_positive_int(k, name="k")
        k2 = 2 * k1
    if k2 <= k1:
        raise InvalidOptionError(
            f"GRIDE needs k=(k1, k2) with k2 > k1 (the farther over the nearer neighbor), got "
            f"k=({k1}, {k2})."
        )
    return k1, k2


@overload
def gride(
    x: Any,
    *,
    k: int | tuple[int, int] = ...,
    duplicates: Duplicates = ...,
    chunk_size: int = ...,
    neighbors: Literal["exact"] = ...,
) -> Tensor: ...


@overload
def gride(
    x: Any,
    *,
    k: int | tuple[int, int] = ...,
    duplicates: Duplicates = ...,
    chunk_size: int = ...,
    neighbors: Literal["approximate"] | ANNOptions,
) -> ApproximateValue: ...


def gride(
    x: Any,
    *,
    k: int | tuple[int, int] = (1, 2),
    duplicates: Duplicates = "raise",
    chunk_size: int = CHUNK_SIZE,
    neighbors: str | ANNOptions = "exact",
) -> Tensor | ApproximateValue:
    """GRIDE, the generalized-ratios intrinsic dimension estimator (Denti et al., 2022).

    For each point, mu = r_{k2} / r_{k1}, the ratio of its distances to its k2-th and k1-th
    nearest neighbors. Under local uniformity mu has density
    d (mu^d - 1)^(k2 - k1 - 1) / (B(k2 - k1, k1) mu^((k2 - 1) d + 1)), mu > 1, and the ID is
    the root of the score (N - 1)/d + (k2 - k1 - 1) Σ log mu / (1 - mu^(-d)) - (k2 - 1) Σ
    log mu (concave likelihood, one root; N - 1 in place of N as in DADApy). Ratios above
    q50 + 20 (q95 - q50) are discarded first (DADApy's outlier cut, as in
    ``skdim.id.GRIDE``). With k1 = 1, k2 = 2 it is the unbiased TwoNN likelihood estimate
    (N - 1) / Σ log mu. Larger k1 probe larger scales without decimating the data, which
    reduces the effect of small-scale noise; see :func:`gride_multiscale`.

    Matches ``skdim.id.GRIDE(n1=k1, n2=k2).fit(x).dimension_`` to ~1e-10 relative. One
    difference: for k2 = k1 + 1 tied distances (mu = 1, which has positive density there) are kept,
    skdim drops them; for k2 > k1 + 1 both drop them (the density is 0 at mu = 1), here with
    a warning. Invariant to rotation, translation, isotropic scaling and sample order.

    Args:
        x: ``(n, d)`` points, n >= k2 + 1.
        k: the orders ``(k1, k2)`` of the nearer (>= 1) and the farther (> k1) neighbor;
            an int k1 means ``(k1, 2 * k1)``.
        duplicates: ``"raise"`` (default) or ``"drop"`` points at distance 0 from their
            k1-th nearest neighbor (with a warning).
        chunk_size: the most query rows per block of the k-nearest-neighbor search.
        neighbors: ``"exact"`` (default) or ``"approximate"`` (or an
            :class:`~subspaces.linalg.ann.ANNOptions`): the neighbor search
            (:mod:`subspaces.linalg.ann`).

    Returns:
        A 0-dim float64 tensor on ``x``'s device; with ``neighbors="approximate"`` an
        :class:`~subspaces.linalg.ann.ApproximateValue` ``(value, recall, recall_queries)``.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import gride
        >>> round(float(gride(x, k=(2, 4))), 2)
        3.19
        >>> round(float(gride(x, k=2)), 2)  # k=2 means (2, 4)
        3.19
    """
    d, _, search = _gride_fit(
        x, k=k, duplicates=duplicates, chunk_size=chunk_size, neighbors=neighbors
    )
    return with_recall(d, search)


def _gride_fit(
    x: Any, *, k: Any, duplicates: str, chunk_size: int, neighbors: Any = "exact"
) -> tuple[Tensor, Tensor, ApproximateKNNResult | None]:
    t = _check_data(x)
    k1, k2 = _check_gride_orders(k)
    duplicates = check_choice(duplicates, name="duplicates", choices=_DUPLICATE_POLICIES)
    options = check_neighbor_search(neighbors)
    _check_neighbors(t.shape[0], k2, estimator="GRIDE", what="k2")
    dist, search = _neighbor_search(t, k2, chunk_size, options)
    return (*_gride_at(dist, k1, k2, duplicates), search)


@dataclass(frozen=True)
class GrideScales(Result):
    """GRIDE at several scales (k1, k2 = 2 k1); every field is a 1-D tensor, one per scale.

    Attributes:
        k: ``(S, 2)`` int64, the neighbor orders (k1, k2) of each scale: k1 = 1, 2, 4, ...
            and k2 = 2 k1.
        dimension: the ID estimate at each scale (float64).
        error: its standard error, 1 / sqrt(observed Fisher information).
        radius: the mean distance to the k2-th neighbor: the length scale probed.
        recall, recall_queries: with ``neighbors="approximate"``, the recall of the
            neighbor search (0-dim float64) and its sample size; ``None`` otherwise.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import gride_multiscale
        >>> scales = gride_multiscale(x, range_max=8)
        >>> list(scales.as_dict())
        ['k', 'dimension', 'error', 'radius', 'recall', 'recall_queries']
        >>> scales.k[:, 1].tolist()
        [2, 4, 8]
    """

    k: Tensor
    dimension: Tensor
    error: Tensor
    radius: Tensor
    recall: Tensor | None = None
    recall_queries: int | None = None


def _gride_scales_from_distances(dist: Tensor, duplicates: str) -> GrideScales:
    kmax = dist.shape[1]
    k1s = [2**i for i in range(int(math.log2(kmax)))]
    dims, errs = [], []
    for s in k1s:
        d, e = _gride_at(dist, s, 2 * s, duplicates)
        dims.append(d)
        errs.append(e)
    k1 = torch.tensor(k1s, dtype=torch.long, device=dist.device)
    return GrideScales(
        k=torch.stack([k1, 2 * k1], dim=1),
        dimension=torch.stack(dims),
        error=torch.stack(errs),
        radius=dist[:, 2 * k1 - 1].mean(dim=0),
    )


def gride_multiscale(
    x: Any,
    *,
    range_max: int = 64,
    duplicates: Duplicates = "raise",
    chunk_size: int = CHUNK_SIZE,
    neighbors: str | ANNOptions = "exact",
) -> GrideScales:
    """GRIDE at the scales k1 = 1, 2, 4, ..., k2 = 2 k1 <= min(range_max, n - 1).

    As ``skdim.id.GRIDE(multiscale=True, range_max=...)``: the scales are
    ``2 ** arange(int(log2(min(range_max, n - 1))))``. Plot ``dimension`` against
    ``radius`` (or ``k2``) and read the ID off the plateau (Denti et al., 2022).

    Args:
        x: ``(n, d)`` points, n >= 3.
        range_max: the largest neighbor order used (>= 2).
        duplicates: ``"raise"`` or ``"drop"`` (see :func:`gride`).
        chunk_size: the most query rows per block of the k-nearest-neighbor search.
        neighbors: ``"exact"`` (default) or ``"approximate"`` (or an
            :class:`~subspaces.linalg.ann.ANNOptions`); the recall is then reported in the
            result.

    Returns:
        A :class:`GrideScales`.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import gride_multiscale
        >>> scales = gride_multiscale(x, range_max=16)
        >>> scales.k.tolist()
        [[1, 2], [2, 4], [4, 8], [8, 16]]
        >>> [round(d, 2) for d in scales.dimension.tolist()]
        [2.74, 3.19, 3.08, 3.14]
    """
    t = _check_data(x)
    range_max = check_positive_int(range_max, name="range_max", minimum=2)
    policy = check_choice(duplicates, name="duplicates", choices=_DUPLICATE_POLICIES)
    options = check_neighbor_search(neighbors)
    kmax = min(range_max, t.shape[0] - 1)
    dist, search = _neighbor_search(t, kmax, chunk_size, options)
    scales = _gride_scales_from_distances(dist, policy)
    if search is None:
        return scales
    return dataclasses.replace(scales, recall=search.recall, recall_queries=search.recall_queries)


class GRIDE(_IDEstimator):
    """GRIDE (Denti et al., 2022); see :func:`gride` and :func:`gride_multiscale`.

    Attributes (after ``fit``):
        dimension_, error_: the estimate at (k1, k2) and its standard error.
        With ``multiscale=True`` also ``scales_`` (k1 values), ``dimension_scales_``,
        ``error_scales_`` and ``radius_scales_``, as skdim's GRIDE.
        recall_, recall_queries_: the recall of the neighbor search and its sample size
            with ``neighbors="approximate"`` (``None`` after an exact search).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import GRIDE
        >>> est = GRIDE(k=(1, 2), multiscale=True, range_max=16).fit(x)
        >>> round(float(est.dimension_), 2), round(float(est.error_), 2)
        (2.74, 0.14)
        >>> est.scales_.tolist()
        [1, 2, 4, 8]
    """

    def __init__(
        self,
        *,
        k: int | tuple[int, int] = (1, 2),
        multiscale: bool = False,
        range_max: int = 64,
        duplicates: Duplicates = "raise",
        chunk_size: int = CHUNK_SIZE,
        neighbors: str | ANNOptions = "exact",
    ) -> None:
        self.k = k
        self.multiscale = multiscale
        self.range_max = range_max
        self.duplicates = duplicates
        self.chunk_size = chunk_size
        self.neighbors = neighbors

    def fit(self, x: Any) -> GRIDE:
        """Estimate the dimension of ``x`` (``(n, d)``); returns self."""
        t = _check_data(x)
        k1, k2 = _check_gride_orders(self.k)
        duplicates = check_choice(self.duplicates, name="duplicates", choices=_DUPLICATE_POLICIES)
        multiscale = check_flag(self.multiscale, name="multiscale")
        range_max = check_positive_int(self.range_max, name="range_max", minimum=2)
        options = check_neighbor_search(self.neighbors)
        _check_neighbors(t.shape[0], k2, estimator="GRIDE", what="k2")
        span = k2
        if multiscale:
            span = min(range_max, t.shape[0] - 1)
        dist, search = _neighbor_search(t, max(k2, span), self.chunk_size, options)
        self.dimension_, self.error_ = _gride_at(dist, k1, k2, duplicates)
        self._set_recall(search)
        if multiscale:
            scales = _gride_scales_from_distances(dist[:, :span], duplicates)
            self.scales_ = scales.k[:, 0]
            self.dimension_scales_ = scales.dimension
            self.error_scales_ = scales.error
            self.radius_scales_ = scales.radius
        return self

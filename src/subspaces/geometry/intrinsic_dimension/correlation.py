"""Correlation dimension (Grassberger & Procaccia, 1983)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    check_positive_int,
)
from subspaces.geometry.intrinsic_dimension._common import (
    _CHUNK,
    _F64,
    _check_data,
    _check_neighbors,
    _column_mean,
    _IDEstimator,
    _neighbor_distances,
    _quantile_linear,
    _scalar,
)
from subspaces.linalg.ann import refuse_approximate
from subspaces.linalg.constants import CHUNK_SIZE
from subspaces.linalg.knn import _matmul_rounding
from subspaces.linalg.scaling import rescaled

__all__ = ["CorrelationDimension", "correlation_dimension"]


def _count_pairs_below(t: Tensor, radii: Tensor, chunk_size: int) -> Tensor:
    """For each radius r, #{(i, j), i != j : ||t_i - t_j|| < r}, blocked, exact.

    Squared distances are screened in the input dtype (one matmul per block of rows, on data
    centered in float64); pairs within the screen's rounding bound of a threshold are
    re-measured in float64 from the differences of the original rows, as the kNN kernel
    measures them, so a radius equal to a pair's distance excludes that pair consistently.
    """
    n, d = t.shape
    mean = _column_mean(t)
    c = torch.empty_like(t)
    for start in range(0, n, _CHUNK):
        c[start : start + _CHUNK] = (t[start : start + _CHUNK].to(_F64) - mean).to(t.dtype)
    sq = (c.to(_F64) ** 2).sum(dim=1)
    sq_screen = sq.to(t.dtype)
    radii64 = radii.to(_F64)
    squares = (radii64**2).tolist()
    # rounding bound of the screen: the dot product (d terms) and the norms' rounding, plus
    # the factors' rounding when float32 matmuls may run in TF32 or bfloat16
    _, delta = _matmul_rounding(t.dtype, t.device)
    slack = 2 * (d + 4) * torch.finfo(t.dtype).eps + 3 * delta
    # at most chunk_size rows per block, fewer where a block would exceed 64 MiB
    chunk_size = max(1, min(chunk_size, n, (64 * 2**20) // max(4 * n * t.element_size(), 1)))
    counts = torch.zeros(len(squares), dtype=torch.long, device=t.device)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        block = c[start:stop]
        screen = (sq_screen[start:stop, None] + sq_screen[None, :] - 2 * (block @ c.T)).to(_F64)
        tol = slack * (sq[start:stop, None] + sq[None, :]) + 1e-300
        rows = torch.arange(stop - start, device=t.device)
        screen[rows, rows + start] = torch.inf  # never count a point with itself
        for i, square in enumerate(squares):
            total = (screen < square - tol).sum()
            unsure = (screen - square).abs() <= tol
            if bool(unsure.any()):
                qi, rj = unsure.nonzero(as_tuple=True)
                diff = t[rj].to(_F64) - t[start + qi].to(_F64)
                total = total + (torch.linalg.vecdot(diff, diff).sqrt() < radii64[i]).sum()
            counts[i] += total
    return counts


def _check_sizes(k: Any) -> tuple[int, int]:
    if not isinstance(k, (tuple, list)) or len(k) != 2:
        raise InvalidOptionError(
            f"correlation dimension needs k=(k1, k2), two neighborhood sizes, got {k!r}."
        )
    k1 = check_positive_int(k[0], name="k[0]")
    k2 = check_positive_int(k[1], name="k[1]")
    if k1 >= k2:
        raise InvalidOptionError(
            f"correlation dimension needs k=(k1, k2) with k1 < k2 (two neighborhood sizes), got "
            f"k=({k1}, {k2})."
        )
    return k1, k2


def _corrint_fit(x: Any, *, k: Any, chunk_size: int, neighbors: Any = "exact") -> Tensor:
    refuse_approximate(
        neighbors,
        measure="correlation dimension",
        why="its pair counts are exact O(n² d) sums over all pairs, so an approximate "
        "neighbor search (which only picks the radii) would not make it faster; use twonn, "
        "mle_id or gride with neighbors='approximate' at scale.",
    )
    t = rescaled(_check_data(x))  # scale invariant: extreme data brought into range, exactly
    k1, k2 = _check_sizes(k)
    _check_neighbors(t.shape[0], k2, estimator="correlation dimension", what="k2")
    dist = _neighbor_distances(t, k2, chunk_size)
    r1 = _quantile_linear(torch.sort(dist[:, k1 - 1]).values, 0.5)
    r2 = _quantile_linear(torch.sort(dist[:, k2 - 1]).values, 0.5)
    if float(r1) <= 0.0 or float(r2) <= float(r1):
        raise DegenerateInputError(
            f"correlation dimension: the median distances to the k1-th and k2-th neighbors "
            f"are r1={float(r1):.6g} and r2={float(r2):.6g}; the estimate needs 0 < r1 < r2 "
            "(many duplicate points make r1 = 0). Remove duplicates or change k."
        )
    counts = _count_pairs_below(t, torch.stack([r1, r2]), chunk_size)
    c1, c2 = int(counts[0]), int(counts[1])
    if c1 == 0:
        raise DegenerateInputError(
            f"correlation dimension: no pair of points is closer than r1={float(r1):.6g}; "
            "raise k[0]."
        )
    return _scalar(math.log(c2 / c1) / math.log(float(r2) / float(r1)), t.device)


def correlation_dimension(
    x: Any,
    *,
    k: tuple[int, int] = (10, 20),
    chunk_size: int = CHUNK_SIZE,
    neighbors: str = "exact",
) -> Tensor:
    """Correlation dimension (Grassberger & Procaccia, 1983), as ``skdim.id.CorrInt``.

    C(r) = #{(i, j), i != j : ||x_i - x_j|| < r} / n², the correlation integral, scales as
    r^d on a d-dimensional manifold. With r1, r2 the medians over points of the distances to
    the k1-th and k2-th nearest neighbors, d = log(C(r2) / C(r1)) / log(r2 / r1).
    The pair counts are computed in row blocks (O(block × n) memory, exact thresholds; see
    the source); cost O(n² d).

    Invariant to rotation, translation, isotropic scaling and sample order.

    Args:
        x: ``(n, d)`` points, n >= k2 + 1.
        k: the two neighborhood sizes ``(k1, k2)``, 1 <= k1 < k2 (skdim's defaults 10, 20).
        chunk_size: rows per block of the neighbor search and of the pair counting.
        neighbors: ``"exact"`` only (``"approximate"`` raises
            :class:`~subspaces.InvalidOptionError`: the pair counts cost O(n² d) anyway).

    Returns:
        A 0-dim float64 tensor on ``x``'s device.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import correlation_dimension
        >>> round(float(correlation_dimension(x)), 2)
        2.86
        >>> round(float(correlation_dimension(x, k=(5, 15))), 2)
        2.89
    """
    return _corrint_fit(x, k=k, chunk_size=chunk_size, neighbors=neighbors)


class CorrelationDimension(_IDEstimator):
    """Grassberger-Procaccia correlation dimension; see :func:`correlation_dimension`.

    Attributes (after ``fit``):
        dimension_: 0-dim float64 tensor.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import CorrelationDimension
        >>> est = CorrelationDimension(k=(5, 15)).fit(x)
        >>> round(float(est.dimension_), 2)
        2.89
    """

    def __init__(
        self,
        *,
        k: tuple[int, int] = (10, 20),
        chunk_size: int = CHUNK_SIZE,
        neighbors: str = "exact",
    ) -> None:
        self.k = k
        self.chunk_size = chunk_size
        self.neighbors = neighbors

    def fit(self, x: Any) -> CorrelationDimension:
        """Estimate the dimension of ``x`` (``(n, d)``); returns self."""
        self.dimension_ = _corrint_fit(
            x, k=self.k, chunk_size=self.chunk_size, neighbors=self.neighbors
        )
        return self

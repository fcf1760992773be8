"""Shared pieces of the intrinsic-dimension estimators: neighbor distances, the
duplicates policy, quantiles, the estimator base."""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import torch
from torch import Tensor

from subspaces._base import Estimator
from subspaces._checks import (
    DegenerateInputError,
    TooFewSamplesError,
    check_matrix,
    check_positive_int,
)
from subspaces.linalg.ann import (
    ANNOptions,
    ApproximateKNNResult,
    approximate_knn,
)
from subspaces.linalg.constants import CHUNK_SIZE
from subspaces.linalg.knn import knn

_F64 = torch.float64
Duplicates = Literal["raise", "drop"]
_DUPLICATE_POLICIES = ("raise", "drop")
_CHUNK = CHUNK_SIZE  # rows per float product when forming the covariance


def _scalar(value: float | Tensor, device: torch.device) -> Tensor:
    if isinstance(value, Tensor):
        return value.to(device=device, dtype=_F64).reshape(())
    return torch.tensor(value, dtype=_F64, device=device)


def _check_data(x: Any, *, min_samples: int = 3) -> Tensor:
    return check_matrix(x, name="x", min_samples=min_samples)


def _check_neighbors(
    n: int, k: int, *, estimator: str, what: str = "k", needed: int | None = None
) -> None:
    """Raise :class:`TooFewSamplesError` unless ``n`` samples give ``k`` neighbors each."""
    need = k + 1 if needed is None else needed
    if n < need:
        raise TooFewSamplesError(
            f"{estimator} with {what}={k} needs at least {need} samples (each point's "
            f"neighbors exclude the point itself), but x has {n}. Use a smaller {what} or "
            "more samples."
        )


def _neighbor_distances(x: Tensor, k: int, chunk_size: int) -> Tensor:
    """``(n, k)`` float64 distances to the k nearest other points, nearest first."""
    return knn(x, k, metric="euclidean", exclude_self=True, chunk_size=chunk_size).values


def _neighbor_search(
    x: Tensor, k: int, chunk_size: int, options: ANNOptions | None
) -> tuple[Tensor, ApproximateKNNResult | None]:
    """:func:`_neighbor_distances`, or the approximate search's distances and result when
    ``options`` (from :func:`~subspaces.linalg.ann.check_neighbor_search`) is given."""
    if options is None:
        return _neighbor_distances(x, k, chunk_size), None
    check_positive_int(chunk_size, name="chunk_size")  # refused alike on both paths
    found = approximate_knn(x, k, metric="euclidean", exclude_self=True, options=options)
    return found.values, found


def _duplicate_mask(
    zero: Tensor, duplicates: str, *, estimator: str, what: str = "its nearest neighbor"
) -> Tensor:
    """Apply the ``duplicates`` policy to the points flagged in ``zero``; return a keep mask."""
    count = int(zero.sum())
    if count == 0:
        return ~zero
    if duplicates == "raise":
        raise DegenerateInputError(
            f"{estimator}: {count} of {zero.numel()} points are at distance 0 from {what} "
            "(duplicate rows), which makes the distance ratios undefined. Remove duplicates "
            "first (e.g. torch.unique(x, dim=0)) or pass duplicates='drop' to leave those "
            "points out with a warning."
        )
    warnings.warn(
        f"{estimator}: leaving out {count} of {zero.numel()} points at distance 0 from {what} "
        "(duplicate rows).",
        UserWarning,
        stacklevel=3,
    )
    return ~zero


def _quantile_linear(sorted_values: Tensor, q: float) -> Tensor:
    """Quantile with linear interpolation (numpy's default) of a sorted 1-D tensor."""
    pos = q * (sorted_values.numel() - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, sorted_values.numel() - 1)
    frac = pos - lo
    return sorted_values[lo] + frac * (sorted_values[hi] - sorted_values[lo])


def _column_mean(t: Tensor) -> Tensor:
    total = torch.zeros(t.shape[1], dtype=_F64, device=t.device)
    for start in range(0, t.shape[0], _CHUNK):
        total += t[start : start + _CHUNK].to(_F64).sum(dim=0)
    return total / t.shape[0]


class _IDEstimator(Estimator):
    """Base of the intrinsic-dimension estimators (a fitted attribute such as ``dimension_``
    read before ``fit`` raises :class:`~subspaces.NotFittedError`, as for every estimator)."""

    def _set_recall(self, search: ApproximateKNNResult | None) -> None:
        """``recall_`` and ``recall_queries_`` of an approximate search (``None`` if exact)."""
        self.recall_ = None if search is None else search.recall
        self.recall_queries_ = None if search is None else search.recall_queries

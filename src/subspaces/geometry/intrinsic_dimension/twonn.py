"""TwoNN intrinsic dimension (Facco et al., 2017): the ratio of the two nearest-neighbor
distances."""

from __future__ import annotations

from typing import Any, Literal, overload

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    TooFewSamplesError,
    check_choice,
    check_scalar_in_range,
)
from subspaces.geometry.intrinsic_dimension._common import (
    _DUPLICATE_POLICIES,
    _F64,
    Duplicates,
    _check_data,
    _duplicate_mask,
    _IDEstimator,
    _neighbor_search,
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

__all__ = ["TWONN_METHODS", "TwoNN", "twonn"]


TWONN_METHODS: tuple[str, ...] = ("linear", "mle")
"""``method`` values of :func:`twonn`: Facco's line fit, or the closed-form likelihood."""


def _twonn_from_ratios(
    mu: Tensor, *, discard_fraction: float, method: str
) -> tuple[Tensor, Tensor, Tensor]:
    """TwoNN from the ratios mu = r2 / r1 (1-D float64, finite, >= 1).

    Returns ``(dimension, log_mu, neg_log_survival)``, the last two being the points of the
    line fit (sorted log mu and -log(1 - F_emp)).
    """
    n = mu.numel()
    n_keep = int(n * (1 - discard_fraction))
    if n_keep < 2:
        raise TooFewSamplesError(
            f"TwoNN keeps int(N · (1 - discard_fraction)) = {n_keep} of the N = {n} ratios, "
            "fewer than the 2 it needs; use more samples or a smaller discard_fraction."
        )
    log_mu = torch.sort(mu).values[:n_keep].log()
    f_emp = torch.arange(1, n_keep + 1, dtype=_F64, device=mu.device) / n
    neg_log_surv = -torch.log1p(-f_emp)
    if method == "mle":
        denom = log_mu.sum() + (n - n_keep) * log_mu[-1]
        if float(denom) <= 0.0:
            raise DegenerateInputError(
                "TwoNN: every kept ratio r2/r1 equals 1 (each point's two nearest neighbors "
                "are equidistant), so the dimension is unbounded; the data look like a "
                "lattice, not a sample of a manifold."
            )
        return (n_keep - 1) / denom, log_mu, neg_log_surv
    # line through the origin; F = 1 (no discarding) has -log(1 - F) = inf: leave it out
    fit = slice(None) if n_keep < n else slice(0, n_keep - 1)
    xs, ys = log_mu[fit], neg_log_surv[fit]
    sxx = (xs * xs).sum()
    if float(sxx) <= 0.0:
        raise DegenerateInputError(
            "TwoNN: every ratio r2/r1 used in the fit equals 1 (each point's two nearest "
            "neighbors are equidistant), so the slope is undefined; the data look like a "
            "lattice, not a sample of a manifold."
        )
    return (xs * ys).sum() / sxx, log_mu, neg_log_surv


def _twonn_ratios(
    x: Tensor,
    duplicates: str,
    chunk_size: int,
    estimator: str,
    options: ANNOptions | None = None,
) -> tuple[Tensor, ApproximateKNNResult | None]:
    r, search = _neighbor_search(x, 2, chunk_size, options)
    keep = _duplicate_mask(r[:, 0] == 0, duplicates, estimator=estimator)
    r = r[keep]
    return r[:, 1] / r[:, 0], search


def _twonn_fit(
    x: Any,
    *,
    discard_fraction: float,
    method: str,
    duplicates: str,
    chunk_size: int,
    neighbors: Any = "exact",
) -> tuple[Tensor, Tensor, Tensor, ApproximateKNNResult | None]:
    t = _check_data(x)
    discard_fraction = check_scalar_in_range(
        discard_fraction, name="discard_fraction", low=0.0, high=1.0, high_open=True
    )
    method = check_choice(method, name="method", choices=TWONN_METHODS)
    duplicates = check_choice(duplicates, name="duplicates", choices=_DUPLICATE_POLICIES)
    options = check_neighbor_search(neighbors)
    mu, search = _twonn_ratios(t, duplicates, chunk_size, "TwoNN", options)
    d, log_mu, y = _twonn_from_ratios(mu, discard_fraction=discard_fraction, method=method)
    return _scalar(d, t.device), log_mu, y, search


@overload
def twonn(
    x: Any,
    *,
    discard_fraction: float = ...,
    method: Literal["linear", "mle"] = ...,
    duplicates: Duplicates = ...,
    chunk_size: int = ...,
    neighbors: Literal["exact"] = ...,
) -> Tensor: ...


@overload
def twonn(
    x: Any,
    *,
    discard_fraction: float = ...,
    method: Literal["linear", "mle"] = ...,
    duplicates: Duplicates = ...,
    chunk_size: int = ...,
    neighbors: Literal["approximate"] | ANNOptions,
) -> ApproximateValue: ...


def twonn(
    x: Any,
    *,
    discard_fraction: float = 0.1,
    method: Literal["linear", "mle"] = "linear",
    duplicates: Duplicates = "raise",
    chunk_size: int = CHUNK_SIZE,
    neighbors: str | ANNOptions = "exact",
) -> Tensor | ApproximateValue:
    """TwoNN intrinsic dimension (Facco, d'Errico, Rodriguez & Laio, 2017).

    For each point, mu_i = r2 / r1, its distances to its second and first nearest neighbors.
    On a d-dimensional manifold with locally uniform density mu follows the Pareto law
    F(mu) = 1 - mu^(-d), so -log(1 - F(mu)) = d log mu.

    - ``method="linear"`` (Facco et al.; scikit-dimension's default): sort the N ratios, keep
      the n = int(N (1 - discard_fraction)) smallest, set F_emp(mu_(i)) = i / N, and fit
      d = Σ log mu_(i) · (-log(1 - i/N)) / Σ (log mu_(i))², the least-squares line through
      the origin. With ``discard_fraction=0`` the largest ratio (F_emp = 1, an infinite
      ordinate) is left out of the fit.
    - ``method="mle"``: log mu ~ Exponential(d); keeping the n smallest ratios is type-II
      censoring, whose unbiased estimate is (n - 1) / (Σ_{i<=n} log mu_(i) + (N - n) log mu_(n)).
      With ``discard_fraction=0`` it is (N - 1) / Σ log mu (Denti et al. 2022; DADApy's
      ``compute_id_2NN(algorithm="ml")``).

    Both match ``skdim.id.TwoNN(discard_fraction, method=...)`` to float64 rounding.
    Invariant to rotation, translation, isotropic scaling and sample order; in (0, ∞).

    Args:
        x: ``(n, d)`` points, n >= 3.
        discard_fraction: fraction of the largest ratios left out, in [0, 1) (Facco: 0.1).
        method: ``"linear"`` or ``"mle"``.
        duplicates: ``"raise"`` (default) or ``"drop"`` points at distance 0 from their
            nearest neighbor (with a warning).
        chunk_size: the most query rows per block of the k-nearest-neighbor search
            (default ``CHUNK_SIZE``; fewer where a block would exceed a fixed memory budget).
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
        >>> from subspaces.geometry import twonn
        >>> round(float(twonn(x)), 2)
        2.76
        >>> round(float(twonn(x, method="mle")), 2)
        2.72
    """
    d, _, _, search = _twonn_fit(
        x,
        discard_fraction=discard_fraction,
        method=method,
        duplicates=duplicates,
        chunk_size=chunk_size,
        neighbors=neighbors,
    )
    return with_recall(d, search)


class TwoNN(_IDEstimator):
    """TwoNN estimator (Facco et al., 2017); see :func:`twonn` for the definition.

    Attributes (after ``fit``):
        dimension_: 0-dim float64 tensor.
        x_: sorted log mu of the kept ratios; y_: -log(1 - F_emp), the points of the line fit
            (as skdim's ``x_``, ``y_``).
        recall_, recall_queries_: the recall of the neighbor search and its sample size
            with ``neighbors="approximate"`` (``None`` after an exact search).

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> from subspaces.geometry import TwoNN
        >>> est = TwoNN(discard_fraction=0.1).fit(x)
        >>> round(float(est.dimension_), 2)
        2.76
        >>> est.x_.shape == est.y_.shape
        True
    """

    def __init__(
        self,
        *,
        discard_fraction: float = 0.1,
        method: Literal["linear", "mle"] = "linear",
        duplicates: Duplicates = "raise",
        chunk_size: int = CHUNK_SIZE,
        neighbors: str | ANNOptions = "exact",
    ) -> None:
        self.discard_fraction = discard_fraction
        self.method = method
        self.duplicates = duplicates
        self.chunk_size = chunk_size
        self.neighbors = neighbors

    def fit(self, x: Any) -> TwoNN:
        """Estimate the dimension of ``x`` (``(n, d)``); returns self."""
        self.dimension_, self.x_, self.y_, search = _twonn_fit(
            x,
            discard_fraction=self.discard_fraction,
            method=self.method,
            duplicates=self.duplicates,
            chunk_size=self.chunk_size,
            neighbors=self.neighbors,
        )
        self._set_recall(search)
        return self

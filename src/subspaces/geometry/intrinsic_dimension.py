"""Intrinsic dimension: TwoNN, MLE, GRIDE, local PCA, correlation dimension, scale sweeps.

Every estimator is a function (tensor in, 0-dim float64 tensor or small dataclass out) and a
scikit-learn-style class (``fit(x)`` returns ``self`` and sets ``dimension_``, and
``dimension_pw_`` for per-point estimates) on the same functional core. Neighbors come from
the blocked exact k-nearest-neighbor kernel :func:`subspaces.linalg.knn.knn`: nothing
``n × n`` is allocated, and the work runs on the input's device.

The definitions follow scikit-dimension (``skdim.id``) so that values can be compared; where
they differ it is said in the docstring. All estimates are invariant to rotations,
translations, isotropic scaling and the order of the samples.

Duplicate points (a zero distance to a neighbor) make the nearest-neighbor estimators
undefined (a ratio r2 / 0). By default they raise :class:`DegenerateInputError` naming how
many points are affected; ``duplicates="drop"`` leaves those points out with a warning
(scikit-dimension drops them with a warning too). No estimate is ever a silent inf or NaN.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    TooFewSamplesError,
    check_choice,
    check_flag,
    check_generator,
    check_matrix,
    check_optional_int,
    check_positive_int,
    check_positive_real,
    check_scalar_in_range,
)
from subspaces.linalg.decomp import default_rtol, eigvalsh, scatter_rtol
from subspaces.linalg.knn import _matmul_rounding, knn
from subspaces.linalg.scaling import ldexp, rescaled, to_safe_range

__all__ = [
    "GRIDE",
    "LPCA_VERSIONS",
    "MLE",
    "MLE_AVERAGES",
    "SWEEP_METHODS",
    "TWONN_METHODS",
    "CorrelationDimension",
    "GrideScales",
    "LocalPCA",
    "ScaleSweep",
    "TwoNN",
    "correlation_dimension",
    "gride",
    "gride_multiscale",
    "id_scale_sweep",
    "local_pca_id",
    "mle_id",
    "twonn",
]

_F64 = torch.float64
Duplicates = Literal["raise", "drop"]
_DUPLICATE_POLICIES = ("raise", "drop")
_CHUNK = 4096  # rows per float product when forming the covariance

TWONN_METHODS: tuple[str, ...] = ("linear", "mle")
"""``method`` values of :func:`twonn`: Facco's line fit, or the closed-form likelihood."""

MLE_AVERAGES: tuple[str, ...] = ("inverse", "mean", "median")
"""``average`` values of :func:`mle_id`: how the per-point estimates are combined."""

LPCA_VERSIONS: tuple[str, ...] = (
    "FO",
    "Fan",
    "maxgap",
    "ratio",
    "participation_ratio",
    "Kaiser",
    "broken_stick",
)
"""Thresholding rules of :func:`local_pca_id` (the names of ``skdim.id.lPCA``'s ``ver``)."""

SWEEP_METHODS: tuple[str, ...] = ("mle", "gride", "twonn")
"""``method`` values of :func:`id_scale_sweep`."""


# --- shared helpers ----------------------------------------------------------------------


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


def _neighbor_distances(x: Tensor, k: int, block_size: int | None) -> Tensor:
    """``(n, k)`` float64 distances to the k nearest other points, nearest first."""
    return knn(x, k, metric="euclidean", exclude_self=True, block_size=block_size).values


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


# --- TwoNN ------------------------------------------------------------------------------


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


def _twonn_ratios(x: Tensor, duplicates: str, block_size: int | None, estimator: str) -> Tensor:
    r = _neighbor_distances(x, 2, block_size)
    keep = _duplicate_mask(r[:, 0] == 0, duplicates, estimator=estimator)
    r = r[keep]
    return r[:, 1] / r[:, 0]


def _twonn_fit(
    x: Any,
    *,
    discard_fraction: float,
    method: str,
    duplicates: str,
    block_size: int | None,
) -> tuple[Tensor, Tensor, Tensor]:
    t = _check_data(x)
    discard_fraction = check_scalar_in_range(
        discard_fraction, name="discard_fraction", low=0.0, high=1.0, high_open=True
    )
    method = check_choice(method, name="method", choices=TWONN_METHODS)
    duplicates = check_choice(duplicates, name="duplicates", choices=_DUPLICATE_POLICIES)
    mu = _twonn_ratios(t, duplicates, block_size, "TwoNN")
    d, log_mu, y = _twonn_from_ratios(mu, discard_fraction=discard_fraction, method=method)
    return _scalar(d, t.device), log_mu, y


def twonn(
    x: Any,
    *,
    discard_fraction: float = 0.1,
    method: Literal["linear", "mle"] = "linear",
    duplicates: Duplicates = "raise",
    block_size: int | None = None,
) -> Tensor:
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
        block_size: query rows per block of the k-nearest-neighbor search (default: sized
            to a fixed memory budget).

    Returns:
        A 0-dim float64 tensor on ``x``'s device.
    """
    return _twonn_fit(
        x,
        discard_fraction=discard_fraction,
        method=method,
        duplicates=duplicates,
        block_size=block_size,
    )[0]


# --- MLE (Levina & Bickel) ----------------------------------------------------------------


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
    block_size: int | None,
) -> tuple[Tensor, Tensor]:
    t = _check_data(x)
    unbiased = check_flag(unbiased, name="unbiased")
    pointwise = check_flag(pointwise, name="pointwise")
    block_size = check_optional_int(block_size, name="block_size")
    k = check_positive_int(k, name="k", minimum=3 if unbiased else 2)
    average = check_choice(average, name="average", choices=MLE_AVERAGES)
    duplicates = check_choice(duplicates, name="duplicates", choices=_DUPLICATE_POLICIES)
    _check_neighbors(t.shape[0], k, estimator="MLE")
    dist = _neighbor_distances(t, k, block_size)
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
    return _scalar(global_d, t.device), local


def mle_id(
    x: Any,
    *,
    k: int = 20,
    pointwise: bool = False,
    average: Literal["inverse", "mean", "median"] = "inverse",
    unbiased: bool = False,
    duplicates: Duplicates = "raise",
    block_size: int | None = None,
) -> Tensor:
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
        block_size: query rows per block of the k-nearest-neighbor search.

    Returns:
        A 0-dim float64 tensor, or the ``(n,)`` float64 local estimates when ``pointwise``.
    """
    global_d, local = _mle_fit(
        x,
        k=k,
        unbiased=unbiased,
        average=average,
        duplicates=duplicates,
        pointwise=pointwise,
        block_size=block_size,
    )
    return local if pointwise else global_d


# --- GRIDE -----------------------------------------------------------------------------


def _gride_from_log_ratios(log_mu: Tensor, n1: int, n2: int) -> tuple[Tensor, Tensor]:
    """GRIDE maximum-likelihood estimate and its standard error from log(r_n2 / r_n1).

    ``log_mu``: finite, >= 0 (ties equal to 0 already handled by the caller).
    """
    device = log_mu.device
    if log_mu.numel() and float(log_mu.max()) <= 0.0:
        raise DegenerateInputError(
            f"GRIDE (n1={n1}, n2={n2}): every ratio r_n2/r_n1 equals 1, so the likelihood "
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
            f"GRIDE (n1={n1}, n2={n2}): fewer than 2 usable ratios r_n2/r_n1 are left "
            f"({n}); use more samples."
        )
    total = log_mu.sum()
    if float(total) <= 0.0:
        raise DegenerateInputError(
            f"GRIDE (n1={n1}, n2={n2}): every ratio r_n2/r_n1 equals 1, so the likelihood "
            "has no maximum; the data look like a lattice, not a sample of a manifold."
        )
    extra = n2 - n1 - 1

    def score(d: float) -> float:
        value = (n - 1) / d - (n2 - 1) * float(total)
        if extra:
            value += extra * float((log_mu / -torch.expm1(-d * log_mu)).sum())
        return value

    def curvature(d: float) -> float:  # minus the derivative of the score
        value = (n - 1) / d**2
        if extra:
            value += extra * float(((log_mu / (2 * torch.sinh(d * log_mu / 2))) ** 2).sum())
        return value

    # the score decreases from +inf (d -> 0) to -n1 Σ log mu < 0: one root, bracketed here
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


def _gride_at(dist: Tensor, n1: int, n2: int, duplicates: str) -> tuple[Tensor, Tensor]:
    """GRIDE at one scale from the ``(n, >= n2)`` neighbor distances."""
    r1, r2 = dist[:, n1 - 1], dist[:, n2 - 1]
    nth = "its nearest neighbor" if n1 == 1 else f"its {n1}-th nearest neighbor"
    keep = _duplicate_mask(r1 == 0, duplicates, estimator=f"GRIDE (n1={n1}, n2={n2})", what=nth)
    log_mu = torch.log(r2[keep] / r1[keep])
    if n2 - n1 > 1:
        # the likelihood is 0 at mu = 1 when n2 > n1 + 1: such ties carry no information
        ties = log_mu == 0
        n_ties = int(ties.sum())
        if n_ties:
            warnings.warn(
                f"GRIDE (n1={n1}, n2={n2}): leaving out {n_ties} points whose n1-th and "
                "n2-th neighbors are equidistant (r_n2 / r_n1 = 1).",
                UserWarning,
                stacklevel=3,
            )
            log_mu = log_mu[~ties]
    return _gride_from_log_ratios(log_mu, n1, n2)


def _check_gride_orders(n1: Any, n2: Any) -> tuple[int, int]:
    n1 = check_positive_int(n1, name="n1")
    n2 = 2 * n1 if n2 is None else check_positive_int(n2, name="n2")
    if n2 <= n1:
        raise InvalidOptionError(
            f"GRIDE needs n2 > n1 (the farther over the nearer neighbor), got n1={n1}, n2={n2}."
        )
    return n1, n2


def gride(
    x: Any,
    *,
    n1: int = 1,
    n2: int | None = None,
    duplicates: Duplicates = "raise",
    block_size: int | None = None,
) -> Tensor:
    """GRIDE, the generalized-ratios intrinsic dimension estimator (Denti et al., 2022).

    For each point, mu = r_{n2} / r_{n1}, the ratio of its distances to its n2-th and n1-th
    nearest neighbors. Under local uniformity mu has density
    d (mu^d - 1)^(n2 - n1 - 1) / (B(n2 - n1, n1) mu^((n2 - 1) d + 1)), mu > 1, and the ID is
    the root of the score (N - 1)/d + (n2 - n1 - 1) Σ log mu / (1 - mu^(-d)) - (n2 - 1) Σ
    log mu (concave likelihood, one root; N - 1 in place of N as in DADApy). Ratios above
    q50 + 20 (q95 - q50) are discarded first (DADApy's outlier cut, as in
    ``skdim.id.GRIDE``). With n1 = 1, n2 = 2 it is the unbiased TwoNN likelihood estimate
    (N - 1) / Σ log mu. Larger n1 probe larger scales without decimating the data, which
    reduces the effect of small-scale noise; see :func:`gride_multiscale`.

    Matches ``skdim.id.GRIDE(n1, n2).fit(x).dimension_`` to ~1e-10 relative. One difference:
    for n2 = n1 + 1 tied distances (mu = 1, which has positive density there) are kept,
    skdim drops them; for n2 > n1 + 1 both drop them (the density is 0 at mu = 1), here with
    a warning. Invariant to rotation, translation, isotropic scaling and sample order.

    Args:
        x: ``(n, d)`` points, n >= n2 + 1.
        n1: order of the nearer neighbor (>= 1). n2: order of the farther one (> n1),
            default 2 n1.
        duplicates: ``"raise"`` (default) or ``"drop"`` points at distance 0 from their
            n1-th nearest neighbor (with a warning).
        block_size: query rows per block of the k-nearest-neighbor search.

    Returns:
        A 0-dim float64 tensor on ``x``'s device.
    """
    return _gride_fit(x, n1=n1, n2=n2, duplicates=duplicates, block_size=block_size)[0]


def _gride_fit(
    x: Any, *, n1: int, n2: int | None, duplicates: str, block_size: int | None
) -> tuple[Tensor, Tensor]:
    t = _check_data(x)
    n1, n2_ = _check_gride_orders(n1, n2)
    duplicates = check_choice(duplicates, name="duplicates", choices=_DUPLICATE_POLICIES)
    _check_neighbors(t.shape[0], n2_, estimator="GRIDE", what="n2")
    dist = _neighbor_distances(t, n2_, block_size)
    return _gride_at(dist, n1, n2_, duplicates)


@dataclass(frozen=True)
class GrideScales:
    """GRIDE at several scales (n1, n2 = 2 n1); every field is a 1-D tensor, one per scale.

    Attributes:
        n1: orders of the nearer neighbor (1, 2, 4, ...), int64. n2: ``2 * n1``.
        dimension: the ID estimate at each scale (float64).
        error: its standard error, 1 / sqrt(observed Fisher information).
        radius: the mean distance to the n2-th neighbor: the length scale probed.
    """

    n1: Tensor
    n2: Tensor
    dimension: Tensor
    error: Tensor
    radius: Tensor


def _gride_scales_from_distances(dist: Tensor, duplicates: str) -> GrideScales:
    kmax = dist.shape[1]
    n1s = [2**i for i in range(int(math.log2(kmax)))]
    dims, errs = [], []
    for s in n1s:
        d, e = _gride_at(dist, s, 2 * s, duplicates)
        dims.append(d)
        errs.append(e)
    n1 = torch.tensor(n1s, dtype=torch.long, device=dist.device)
    return GrideScales(
        n1=n1,
        n2=2 * n1,
        dimension=torch.stack(dims),
        error=torch.stack(errs),
        radius=dist[:, 2 * n1 - 1].mean(dim=0),
    )


def gride_multiscale(
    x: Any,
    *,
    range_max: int = 64,
    duplicates: Duplicates = "raise",
    block_size: int | None = None,
) -> GrideScales:
    """GRIDE at the scales n1 = 1, 2, 4, ..., n2 = 2 n1 <= min(range_max, n - 1).

    As ``skdim.id.GRIDE(multiscale=True, range_max=...)``: the scales are
    ``2 ** arange(int(log2(min(range_max, n - 1))))``. Plot ``dimension`` against
    ``radius`` (or ``n2``) and read the ID off the plateau (Denti et al., 2022).

    Args:
        x: ``(n, d)`` points, n >= 3.
        range_max: the largest neighbor order used (>= 2).
        duplicates: ``"raise"`` or ``"drop"`` (see :func:`gride`).
        block_size: query rows per block of the k-nearest-neighbor search.

    Returns:
        A :class:`GrideScales`.
    """
    t = _check_data(x)
    range_max = check_positive_int(range_max, name="range_max", minimum=2)
    policy = check_choice(duplicates, name="duplicates", choices=_DUPLICATE_POLICIES)
    kmax = min(range_max, t.shape[0] - 1)
    dist = _neighbor_distances(t, kmax, block_size)
    return _gride_scales_from_distances(dist, policy)


# --- local PCA ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _LpcaParams:
    ver: str
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
    if p.ver == "FO":
        return (ev > p.alpha_fo * ev[:, :1]).sum(dim=1).to(_F64)
    if p.ver == "Kaiser":
        return (ev > ev.mean(dim=1, keepdim=True)).sum(dim=1).to(_F64)
    if p.ver == "participation_ratio":
        return ev.sum(dim=1) ** 2 / (ev * ev).sum(dim=1)
    if p.ver == "ratio":
        cum = ev.cumsum(dim=1)
        cum = cum / cum.max(dim=1, keepdim=True).values
        return ((cum < p.alpha_ratio).sum(dim=1) + 1).to(_F64)
    if p.ver == "maxgap":
        if m < 2:
            return torch.ones(ev.shape[0], dtype=_F64, device=ev.device)
        gaps = _gaps(ev)
        gaps = torch.where(torch.isnan(gaps), torch.full_like(gaps, -torch.inf), gaps)
        return (gaps.argmax(dim=1) + 1).to(_F64)
    if p.ver == "broken_stick":
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
            "local PCA ver='Fan': the rule finds neither a large gap nor a dominant block of "
            "eigenvalues (all eigenvalues are equal, e.g. isotropic data); use another ver."
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
    ver: Any, alpha_fo: Any, alpha_ratio: Any, alpha_fan: Any, beta_fan: Any, p_fan: Any
) -> _LpcaParams:
    return _LpcaParams(
        ver=check_choice(ver, name="ver", choices=LPCA_VERSIONS),
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
    n_neighbors: int,
    block_size: int | None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Global dimension, global eigenvalues and (if ``pointwise``) the local dimensions."""
    # the dimensions do not depend on the scale: an exact power of two brings extreme data
    # into range (float32 squares of 1e20 overflow, of 1e-25 vanish); the eigenvalues
    # are scaled back in float64
    t, e = to_safe_range(_check_data(x, min_samples=2))
    pointwise = check_flag(pointwise, name="pointwise")
    n_neighbors = check_positive_int(n_neighbors, name="n_neighbors", minimum=2)
    block_size = check_optional_int(block_size, name="block_size")
    ev = ldexp(_covariance_eigenvalues(t), 2 * e)
    if float(ev[0, 0]) <= 0.0:
        raise DegenerateInputError(
            "local PCA: x has zero variance (every sample is the same point); the spectrum "
            "is all zeros and no dimension can be read from it."
        )
    global_d = _lpca_rule(ev, params)[0]
    local: Tensor | None = None
    if pointwise:
        _check_neighbors(t.shape[0], n_neighbors, estimator="local PCA", what="n_neighbors")
        idx = knn(t, n_neighbors, exclude_self=True, block_size=block_size).indices
        local_ev = _neighborhood_eigenvalues(t, idx)
        flat = local_ev[:, 0] <= 0.0
        if bool(flat.any()):
            raise DegenerateInputError(
                f"local PCA: the neighborhoods of {int(flat.sum())} points are a single "
                "repeated point (zero variance); remove duplicate rows or raise n_neighbors."
            )
        local = _lpca_rule(local_ev, params)
    return _scalar(global_d, t.device), ev[0], local


def local_pca_id(
    x: Any,
    *,
    ver: str = "FO",
    pointwise: bool = False,
    n_neighbors: int = 100,
    alpha_fo: float = 0.05,
    alpha_ratio: float = 0.95,
    alpha_fan: float = 10.0,
    beta_fan: float = 0.8,
    p_fan: float = 0.95,
    block_size: int | None = None,
) -> Tensor:
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
    ``n_neighbors`` nearest neighbors (the point itself excluded, as skdim's ``fit_pw``), a
    local estimate; neighborhoods come from the blocked kNN and their spectra from batched
    k × k (or d × d) eigen-decompositions. Eigenvalues at most m · eps times the largest
    (eps of the precision the products were formed in) are rounding noise of rank-deficient
    data and are set to 0, so that ``"maxgap"`` finds the rank there (skdim keeps the noise).

    Invariant to rotation, translation, isotropic scaling and sample order. Integer-valued
    except for ``"participation_ratio"``; in [0, min(n, d)].

    Args:
        x: ``(n, d)`` points.
        ver: the rule, one of :data:`LPCA_VERSIONS`.
        pointwise: return the ``(n,)`` local estimates instead of the global one.
        n_neighbors: neighborhood size for ``pointwise``.
        alpha_fo, alpha_ratio, alpha_fan, beta_fan, p_fan: the rules' thresholds (skdim's
            ``alphaFO``, ``alphaRatio``, ``alphaFan``, ``betaFan``, ``PFan``).
        block_size: query rows per block of the k-nearest-neighbor search.

    Returns:
        A 0-dim float64 tensor, or ``(n,)`` float64 local estimates when ``pointwise``.
    """
    params = _lpca_params(ver, alpha_fo, alpha_ratio, alpha_fan, beta_fan, p_fan)
    global_d, _, local = _lpca_fit(
        x, params, pointwise=pointwise, n_neighbors=n_neighbors, block_size=block_size
    )
    if pointwise:
        assert local is not None
        return local
    return global_d


# --- correlation dimension ----------------------------------------------------------------


def _count_pairs_below(t: Tensor, radii: Tensor, block_size: int | None) -> Tensor:
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
    if block_size is None:
        block_size = max(1, min(n, (64 * 2**20) // max(4 * n * t.element_size(), 1)))
    counts = torch.zeros(len(squares), dtype=torch.long, device=t.device)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
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


def _column_mean(t: Tensor) -> Tensor:
    total = torch.zeros(t.shape[1], dtype=_F64, device=t.device)
    for start in range(0, t.shape[0], _CHUNK):
        total += t[start : start + _CHUNK].to(_F64).sum(dim=0)
    return total / t.shape[0]


def _corrint_fit(x: Any, *, k1: int, k2: int, block_size: int | None) -> Tensor:
    t = rescaled(_check_data(x))  # scale invariant: extreme data brought into range, exactly
    k1 = check_positive_int(k1, name="k1")
    k2 = check_positive_int(k2, name="k2")
    if k1 >= k2:
        raise InvalidOptionError(
            f"correlation dimension needs k1 < k2 (two neighborhood sizes), got k1={k1}, k2={k2}."
        )
    _check_neighbors(t.shape[0], k2, estimator="correlation dimension", what="k2")
    dist = _neighbor_distances(t, k2, block_size)
    r1 = _quantile_linear(torch.sort(dist[:, k1 - 1]).values, 0.5)
    r2 = _quantile_linear(torch.sort(dist[:, k2 - 1]).values, 0.5)
    if float(r1) <= 0.0 or float(r2) <= float(r1):
        raise DegenerateInputError(
            f"correlation dimension: the median distances to the k1-th and k2-th neighbors "
            f"are r1={float(r1):.6g} and r2={float(r2):.6g}; the estimate needs 0 < r1 < r2 "
            "(many duplicate points make r1 = 0). Remove duplicates or change k1, k2."
        )
    counts = _count_pairs_below(t, torch.stack([r1, r2]), block_size)
    c1, c2 = int(counts[0]), int(counts[1])
    if c1 == 0:
        raise DegenerateInputError(
            f"correlation dimension: no pair of points is closer than r1={float(r1):.6g}; raise k1."
        )
    return _scalar(math.log(c2 / c1) / math.log(float(r2) / float(r1)), t.device)


def correlation_dimension(
    x: Any, *, k1: int = 10, k2: int = 20, block_size: int | None = None
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
        k1, k2: the two neighborhood sizes, 1 <= k1 < k2 (skdim's defaults 10, 20).
        block_size: rows per block of the neighbor search and of the pair counting.

    Returns:
        A 0-dim float64 tensor on ``x``'s device.
    """
    return _corrint_fit(x, k1=k1, k2=k2, block_size=block_size)


# --- scale sweep --------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleSweep:
    """Intrinsic dimension against neighborhood size (one entry per scale).

    Attributes:
        scale: the neighborhood sizes k (int64; their meaning depends on ``method``).
        dimension: the ID estimate at each scale (float64).
        radius: the mean distance, at that scale, that the estimate looks at (float64).
        method: the estimator used.
    """

    scale: Tensor
    dimension: Tensor
    radius: Tensor
    method: str


def _default_scales(method: str, n: int) -> list[int]:
    if method == "mle":
        return [k for k in (5, 10, 20, 40, 80) if k <= n - 1] or [min(2, n - 1)]
    if method == "gride":
        return [k for k in (1, 2, 4, 8, 16, 32) if 2 * k <= n - 1]
    return [k for k in (1, 2, 4, 8, 16, 32) if n // k >= 3]


def _check_scales(ks: Any, method: str, n: int) -> list[int]:
    if ks is None:
        scales = _default_scales(method, n)
    else:
        if isinstance(ks, (str, bytes)) or not isinstance(ks, (Sequence, Tensor)):
            raise InputTypeError(
                f"ks must be a sequence of positive integers, got {type(ks).__name__}."
            )
        scales = [
            int(check_positive_int(int(k) if isinstance(k, Tensor) else k, name="ks")) for k in ks
        ]
        if not scales:
            raise InvalidOptionError("ks is empty; pass at least one neighborhood size.")
    for k in scales:
        if method == "mle":
            if k < 2:
                raise InvalidOptionError(f"method='mle' needs every k >= 2 in ks, got {k}.")
            _check_neighbors(n, k, estimator="id_scale_sweep(method='mle')", what="k")
        elif method == "gride":
            _check_neighbors(n, 2 * k, estimator="id_scale_sweep(method='gride')", what="2k")
        elif n // k < 3:
            raise TooFewSamplesError(
                f"id_scale_sweep(method='twonn') splits the n={n} samples into k={k} random "
                f"subsets of n // k = {n // k} points, fewer than the 3 TwoNN needs; use "
                "smaller ks or more samples."
            )
    if not scales:
        raise TooFewSamplesError(f"x has {n} samples, too few for any scale of method={method!r}.")
    return scales


def id_scale_sweep(
    x: Any,
    *,
    ks: Sequence[int] | None = None,
    method: Literal["mle", "gride", "twonn"] = "mle",
    discard_fraction: float = 0.1,
    duplicates: Duplicates = "raise",
    generator: torch.Generator | None = None,
    block_size: int | None = None,
) -> ScaleSweep:
    """Intrinsic dimension against neighborhood size: the ID depends on scale.

    - ``method="mle"``: :func:`mle_id` with each k in ``ks`` (default 5, 10, 20, 40, 80);
      radius = mean distance to the k-th neighbor.
    - ``method="gride"``: :func:`gride` with n1 = k, n2 = 2k (default k = 1, 2, ..., 32);
      radius = mean distance to the 2k-th neighbor.
    - ``method="twonn"``: decimation (Facco et al., 2017): the samples are split at random
      into k disjoint subsets of n // k points (default k = 1, 2, ..., 32), TwoNN is fitted
      on each and the estimates averaged; radius = mean second-neighbor distance within the
      subsets. Needs ``generator`` for reproducible splits.

    One kNN search with the largest k serves every scale (except for decimation). A plateau
    of the curve is the ID; a rise at small radius is noise, a fall at large radius curvature.

    Args:
        x: ``(n, d)`` points.
        ks: neighborhood sizes (positive integers); default as above, limited by n.
        method: ``"mle"``, ``"gride"`` or ``"twonn"``.
        discard_fraction: TwoNN's discarded fraction (``method="twonn"``).
        duplicates: ``"raise"`` or ``"drop"`` (see :func:`twonn`).
        generator: ``torch.Generator`` (CPU) for the random splits of ``method="twonn"``.
        block_size: query rows per block of the k-nearest-neighbor search.

    Returns:
        A :class:`ScaleSweep`.
    """
    t = _check_data(x)
    how = check_choice(method, name="method", choices=SWEEP_METHODS)
    policy = check_choice(duplicates, name="duplicates", choices=_DUPLICATE_POLICIES)
    fraction = check_scalar_in_range(
        discard_fraction, name="discard_fraction", low=0.0, high=1.0, high_open=True
    )
    generator = check_generator(generator)
    n = t.shape[0]
    scales = _check_scales(ks, how, n)
    dims: list[Tensor] = []
    radii: list[Tensor] = []
    if how == "twonn":
        for k in scales:
            perm = torch.randperm(n, generator=generator).to(t.device)
            size = n // k
            sub_dims, sub_radii = [], []
            for part in range(k):
                sub = t[perm[part * size : (part + 1) * size]]
                r = _neighbor_distances(sub, 2, block_size)
                keep = _duplicate_mask(r[:, 0] == 0, policy, estimator="TwoNN")
                d, _, _ = _twonn_from_ratios(
                    r[keep, 1] / r[keep, 0], discard_fraction=fraction, method="linear"
                )
                sub_dims.append(_scalar(d, t.device))
                sub_radii.append(r[keep, 1].mean())
            dims.append(torch.stack(sub_dims).mean())
            radii.append(torch.stack(sub_radii).mean())
    elif how == "mle":
        dist = _neighbor_distances(t, max(scales), block_size)
        dist = dist[_duplicate_mask(dist[:, 0] == 0, policy, estimator="MLE")]
        for k in scales:
            local = _mle_pointwise_from_distances(dist[:, :k], unbiased=False)
            inverse_mean = float((1.0 / local).mean())
            if inverse_mean <= 0.0:
                raise DegenerateInputError(
                    f"MLE: for every point all k={k} nearest neighbors are at the same "
                    "distance, so the estimate is infinite; the data look like a lattice. "
                    "Use larger ks."
                )
            dims.append(_scalar(1.0 / inverse_mean, t.device))
            radii.append(dist[:, k - 1].mean())
    else:
        dist = _neighbor_distances(t, 2 * max(scales), block_size)
        for k in scales:
            d, _ = _gride_at(dist, k, 2 * k, policy)
            dims.append(d)
            radii.append(dist[:, 2 * k - 1].mean())
    return ScaleSweep(
        scale=torch.tensor(scales, dtype=torch.long, device=t.device),
        dimension=torch.stack([_scalar(d, t.device) for d in dims]),
        radius=torch.stack([_scalar(r, t.device) for r in radii]),
        method=how,
    )


# --- scikit-learn-style classes ------------------------------------------------------------


class _Estimator:
    """Common face: ``fit(x)`` returns self; ``fit_transform(x)`` returns ``dimension_``."""

    dimension_: Tensor

    def fit(self, x: Any) -> _Estimator:  # pragma: no cover - overridden
        raise NotImplementedError

    def fit_transform(self, x: Any) -> Tensor:
        """Fit on ``x`` and return ``dimension_``."""
        return self.fit(x).dimension_

    def _params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


class TwoNN(_Estimator):
    """TwoNN estimator (Facco et al., 2017); see :func:`twonn` for the definition.

    Attributes (after ``fit``):
        dimension_: 0-dim float64 tensor.
        x_: sorted log mu of the kept ratios; y_: -log(1 - F_emp), the points of the line fit
            (as skdim's ``x_``, ``y_``).
    """

    def __init__(
        self,
        *,
        discard_fraction: float = 0.1,
        method: Literal["linear", "mle"] = "linear",
        duplicates: Duplicates = "raise",
        block_size: int | None = None,
    ) -> None:
        self.discard_fraction = discard_fraction
        self.method = method
        self.duplicates = duplicates
        self.block_size = block_size

    def fit(self, x: Any) -> TwoNN:
        """Estimate the dimension of ``x`` (``(n, d)``); returns self."""
        self.dimension_, self.x_, self.y_ = _twonn_fit(
            x,
            discard_fraction=self.discard_fraction,
            method=self.method,
            duplicates=self.duplicates,
            block_size=self.block_size,
        )
        return self


class MLE(_Estimator):
    """Levina-Bickel MLE with MacKay-Ghahramani averaging; see :func:`mle_id`.

    Attributes (after ``fit``):
        dimension_: 0-dim float64 tensor (the combined estimate).
        dimension_pw_: ``(n,)`` float64 local estimates m_i.
    """

    def __init__(
        self,
        *,
        k: int = 20,
        average: Literal["inverse", "mean", "median"] = "inverse",
        unbiased: bool = False,
        duplicates: Duplicates = "raise",
        block_size: int | None = None,
    ) -> None:
        self.k = k
        self.average = average
        self.unbiased = unbiased
        self.duplicates = duplicates
        self.block_size = block_size

    def fit(self, x: Any) -> MLE:
        """Estimate the dimension of ``x`` (``(n, d)``); returns self."""
        self.dimension_, self.dimension_pw_ = _mle_fit(
            x,
            k=self.k,
            unbiased=self.unbiased,
            average=self.average,
            duplicates=self.duplicates,
            pointwise=True,  # dimension_pw_ is exposed: an infinite local estimate raises
            block_size=self.block_size,
        )
        return self


class GRIDE(_Estimator):
    """GRIDE (Denti et al., 2022); see :func:`gride` and :func:`gride_multiscale`.

    Attributes (after ``fit``):
        dimension_, error_: the estimate at (n1, n2) and its standard error.
        With ``multiscale=True`` also ``scales_`` (n1 values), ``dimension_scales_``,
        ``error_scales_`` and ``radius_scales_``, as skdim's GRIDE.
    """

    def __init__(
        self,
        *,
        n1: int = 1,
        n2: int | None = None,
        multiscale: bool = False,
        range_max: int = 64,
        duplicates: Duplicates = "raise",
        block_size: int | None = None,
    ) -> None:
        self.n1 = n1
        self.n2 = n2
        self.multiscale = multiscale
        self.range_max = range_max
        self.duplicates = duplicates
        self.block_size = block_size

    def fit(self, x: Any) -> GRIDE:
        """Estimate the dimension of ``x`` (``(n, d)``); returns self."""
        t = _check_data(x)
        n1, n2 = _check_gride_orders(self.n1, self.n2)
        duplicates = check_choice(self.duplicates, name="duplicates", choices=_DUPLICATE_POLICIES)
        multiscale = check_flag(self.multiscale, name="multiscale")
        range_max = check_positive_int(self.range_max, name="range_max", minimum=2)
        _check_neighbors(t.shape[0], n2, estimator="GRIDE", what="n2")
        span = n2
        if multiscale:
            span = min(range_max, t.shape[0] - 1)
        dist = _neighbor_distances(t, max(n2, span), self.block_size)
        self.dimension_, self.error_ = _gride_at(dist, n1, n2, duplicates)
        if multiscale:
            scales = _gride_scales_from_distances(dist[:, :span], duplicates)
            self.scales_ = scales.n1
            self.dimension_scales_ = scales.dimension
            self.error_scales_ = scales.error
            self.radius_scales_ = scales.radius
        return self


class LocalPCA(_Estimator):
    """PCA-spectrum dimension, global and per neighborhood; see :func:`local_pca_id`.

    Attributes (after ``fit``):
        dimension_: 0-dim float64 tensor from the global spectrum.
        explained_variance_: the global covariance eigenvalues, decreasing.
        dimension_pw_: ``(n,)`` local estimates on each point's ``n_neighbors`` nearest
            neighbors (only when ``pointwise=True``).
    """

    def __init__(
        self,
        *,
        ver: str = "FO",
        pointwise: bool = False,
        n_neighbors: int = 100,
        alpha_fo: float = 0.05,
        alpha_ratio: float = 0.95,
        alpha_fan: float = 10.0,
        beta_fan: float = 0.8,
        p_fan: float = 0.95,
        block_size: int | None = None,
    ) -> None:
        self.ver = ver
        self.pointwise = pointwise
        self.n_neighbors = n_neighbors
        self.alpha_fo = alpha_fo
        self.alpha_ratio = alpha_ratio
        self.alpha_fan = alpha_fan
        self.beta_fan = beta_fan
        self.p_fan = p_fan
        self.block_size = block_size

    def fit(self, x: Any) -> LocalPCA:
        """Estimate the dimension of ``x`` (``(n, d)``); returns self."""
        params = _lpca_params(
            self.ver, self.alpha_fo, self.alpha_ratio, self.alpha_fan, self.beta_fan, self.p_fan
        )
        self.dimension_, self.explained_variance_, local = _lpca_fit(
            x,
            params,
            pointwise=self.pointwise,
            n_neighbors=self.n_neighbors,
            block_size=self.block_size,
        )
        if local is not None:
            self.dimension_pw_ = local
        return self


class CorrelationDimension(_Estimator):
    """Grassberger-Procaccia correlation dimension; see :func:`correlation_dimension`.

    Attributes (after ``fit``):
        dimension_: 0-dim float64 tensor.
    """

    def __init__(self, *, k1: int = 10, k2: int = 20, block_size: int | None = None) -> None:
        self.k1 = k1
        self.k2 = k2
        self.block_size = block_size

    def fit(self, x: Any) -> CorrelationDimension:
        """Estimate the dimension of ``x`` (``(n, d)``); returns self."""
        self.dimension_ = _corrint_fit(x, k1=self.k1, k2=self.k2, block_size=self.block_size)
        return self

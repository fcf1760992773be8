"""Kernel CKA with Gaussian (RBF) kernels, and the minibatch CKA estimator.

Both work from the n × n (or m × m) Gram matrices, which RBF kernels make inherent: the RBF
Gram is built in row blocks, so memory is O(block × n), and only its sums are kept, in
float64. HSIC from those sums (K, L Gram matrices, H = I − 11ᵀ/n):

* biased (Gretton et al. 2005): tr(KHLH) = Σ K∘L − (2/n) (K1)·(L1) + (1ᵀK1)(1ᵀL1)/n²;
* unbiased (Song et al. 2012), with K̃, L̃ the Grams with zeroed diagonals:
  HSIC₁ = [Σ K̃∘L̃ + (1ᵀK̃1)(1ᵀL̃1)/((n−1)(n−2)) − 2/(n−2) (K̃1)·(L̃1)] / (n(n−3)).

CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) (Kornblith et al. 2019).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
    check_flag,
    check_not_constant,
    check_paired,
    check_positive_int,
    check_positive_real,
    check_same_device,
)
from subspaces.linalg.metric import StreamingMetric
from subspaces.linalg.scaling import sqrt_product, to_safe_range, unscale

__all__ = ["MinibatchCKA", "minibatch_cka", "rbf_cka"]

_F64 = torch.float64

_BLOCK_ENTRIES = 2**22
"""Entries of one (block × n) kernel block when ``chunk_size`` is left to us (16 MB in float32)."""

_EXACT_MEDIAN_PAIRS = 2**23
"""Up to this many pairs n(n−1)/2 (n ≲ 4,096) every pairwise distance is gathered at once."""

_MEDIAN_SAMPLE = 2**20
"""Pairs sampled (fixed seed) to bracket the median when there are more pairs than the above."""

_MEDIAN_SEED = 0


# --------------------------------------------------------------------------------------------
# The shared maths core: HSIC from Gram sums.
# --------------------------------------------------------------------------------------------


def _hsic_from_sums(
    sum_kl: Tensor, rows_k: Tensor, rows_l: Tensor, n: int, *, debiased: bool
) -> Tensor:
    """HSIC from Σ K∘L and the row sums K1, L1 (all float64).

    Biased: tr(KHLH) / (n − 1)², with the full Grams. Debiased: the unbiased estimator of
    Song et al. (2012); the sums must then be those of the Grams with zeroed diagonals.
    """
    total_k, total_l = rows_k.sum(), rows_l.sum()
    if debiased:
        return (
            sum_kl
            + total_k * total_l / ((n - 1.0) * (n - 2.0))
            - 2.0 / (n - 2.0) * (rows_k @ rows_l)
        ) / (n * (n - 3.0))
    return (sum_kl - 2.0 / n * (rows_k @ rows_l) + total_k * total_l / float(n) ** 2) / (
        (n - 1.0) ** 2
    )


def _cka_from_hsic(h_xy: Tensor, h_xx: Tensor, h_yy: Tensor, *, what: str) -> Tensor:
    if float(h_xx) <= 0.0 or float(h_yy) <= 0.0:
        raise DegenerateInputError(
            f"the HSIC of a representation with itself is not positive for {what} "
            f"(x: {float(h_xx):.3g}, y: {float(h_yy):.3g}), so CKA is undefined; the data is "
            "constant or too degenerate (for debiased estimators: too few samples). Use more "
            "samples, or check for constant or dead layers."
        )
    return h_xy / sqrt_product(h_xx, h_yy)


# --------------------------------------------------------------------------------------------
# RBF CKA.
# --------------------------------------------------------------------------------------------


def _centered(x: Tensor) -> Tensor:
    """``x`` minus its float64 column mean, in ``x``'s dtype (distances are unchanged)."""
    return x - x.mean(0, dtype=_F64).to(x.dtype)


def _sq_distances(rows: Tensor, cols: Tensor, sq_rows: Tensor, sq_cols: Tensor) -> Tensor:
    """Squared Euclidean distances ||r_i − c_j||² (b × m), clamped at zero."""
    d = torch.addmm(sq_cols.unsqueeze(0), rows, cols.T, beta=1.0, alpha=-2.0)
    d.add_(sq_rows.unsqueeze(1))
    return d.clamp_(min=0.0)


def _upper_blocks(n: int, chunk_size: int) -> Iterable[tuple[int, int]]:
    for start in range(0, n, chunk_size):
        yield start, min(start + chunk_size, n)


def _upper_pair_values(d: Tensor) -> Tensor:
    """Entries (i, j), j > i, of a block of rows [s, e) against columns [s, n)."""
    b = d.shape[0]
    square = d[:, :b]
    mask = torch.ones(b, b, dtype=torch.bool, device=d.device).triu_(1)
    return torch.cat([square[mask], d[:, b:].reshape(-1)])


def _pair_sq_distance_order_stats(x: Tensor, ranks: list[int], chunk_size: int) -> list[Tensor]:
    """The ``ranks``-th smallest (1-based) of the n(n−1)/2 squared distances ||x_i − x_j||², i < j.

    Exact, in memory O(block × n + kept): one blocked pass keeps the distances inside a
    bracket around the wanted ranks. For up to ``_EXACT_MEDIAN_PAIRS`` pairs the bracket is
    everything; beyond, it comes from the quantiles of ``_MEDIAN_SAMPLE`` pairs drawn with a
    fixed seed, widened by ±5 binomial standard deviations (and widened again on the rare miss),
    so the result does not depend on the draw.
    """
    n = x.shape[0]
    n_pairs = n * (n - 1) // 2
    sq = (x * x).sum(1)
    low: Tensor | None = None
    high: Tensor | None = None
    sample: Tensor | None = None
    width = 5.0
    if n_pairs > _EXACT_MEDIAN_PAIRS:
        gen = torch.Generator(device=x.device).manual_seed(_MEDIAN_SEED)
        i = torch.randint(0, n, (_MEDIAN_SAMPLE,), generator=gen, device=x.device)
        j = torch.randint(0, n - 1, (_MEDIAN_SAMPLE,), generator=gen, device=x.device)
        j = j + (j >= i).to(j.dtype)
        parts = [
            ((x[i[s : s + 2**14]] - x[j[s : s + 2**14]]) ** 2).sum(1)
            for s in range(0, _MEDIAN_SAMPLE, 2**14)
        ]
        sample = torch.sort(torch.cat(parts)).values
    while True:
        if sample is not None:
            low, high = _bracket(sample, ranks, n_pairs, width)
        below = torch.zeros((), dtype=torch.long, device=x.device)
        kept = []
        for start, stop in _upper_blocks(n, chunk_size):
            d = _sq_distances(x[start:stop], x[start:], sq[start:stop], sq[start:])
            values = _upper_pair_values(d)
            if low is not None:
                below += (values < low).sum()
                values = values[values >= low]
            if high is not None:
                values = values[values <= high]
            kept.append(values)
        pool = torch.cat(kept)
        offset = int(below)
        if all(1 <= r - offset <= pool.numel() for r in ranks):
            return _order_stats(pool, [r - offset for r in ranks])
        if sample is None:  # pragma: no cover - the pool held every pair
            raise RuntimeError("internal error: an order statistic fell outside all pairs")
        width *= 4.0  # a 5-sigma miss: widen (after a few misses the bracket is unbounded)


def _order_stats(pool: Tensor, ranks: list[int]) -> list[Tensor]:
    """The ``ranks``-th smallest (1-based, increasing) entries of ``pool``.

    A rank that follows the previous one is read off with a count and a min, not a second
    selection (the two middle values of an even-sized median).
    """
    values: list[Tensor] = []
    previous = -2
    for r in ranks:
        if values and r == previous + 1:
            last = values[-1]
            if int((pool <= last).sum()) >= r:
                values.append(last)
            else:
                values.append(pool[pool > last].min())
        else:
            values.append(torch.kthvalue(pool, r).values)
        previous = r
    return values


def _bracket(
    sample: Tensor, ranks: list[int], n_pairs: int, width: float
) -> tuple[Tensor | None, Tensor | None]:
    """Sample quantiles around the wanted ranks, ``width`` standard deviations either side."""
    s = sample.numel()
    q_low, q_high = (min(ranks) - 0.5) / n_pairs, (max(ranks) - 0.5) / n_pairs
    spread_low = width * math.sqrt(q_low * (1 - q_low) / s) + 1.0 / s
    spread_high = width * math.sqrt(q_high * (1 - q_high) / s) + 1.0 / s
    a, b = q_low - spread_low, q_high + spread_high
    low = None if a <= 0 else sample[int(a * s)]
    high = None if b >= 1 else sample[min(s - 1, math.ceil(b * s))]
    return low, high


def _median_sq_distance(x: Tensor, chunk_size: int) -> Tensor:
    """Median of the n² squared distances ||x_i − x_j||² over all (i, j), diagonal included.

    Kornblith et al.'s ``np.median`` convention: for even n² the mean of the two middle
    values. The n zeros of the diagonal come first; every pair then appears twice.
    """
    n = x.shape[0]
    total = n * n
    positions = [(total + 1) // 2] if total % 2 else [total // 2, total // 2 + 1]
    ranks = [(p - n + 1) // 2 for p in positions]  # rank among the pairs, 0 = a diagonal zero
    wanted = sorted({r for r in ranks if r > 0})
    stats = dict(zip(wanted, _pair_sq_distance_order_stats(x, wanted, chunk_size), strict=True))
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    values = [stats[r] if r > 0 else zero for r in ranks]
    return torch.stack(values).to(_F64).mean()


def _rbf_gram_sums(
    x: Tensor, y: Tensor, gamma_x: float, gamma_y: float, chunk_size: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Σ K∘L, Σ K∘K, Σ L∘L, K1, L1 (float64) of the RBF Grams K_ij = exp(−γ_x ||x_i − x_j||²).

    Only the upper triangle is built, block by block (rows [s, e) against columns [s, n));
    each strictly-upper entry counts twice, and the diagonal (exactly 1) is added at the end.
    """
    n = x.shape[0]
    dev = x.device
    sq_x, sq_y = (x * x).sum(1), (y * y).sum(1)
    s_kl = torch.zeros((), dtype=_F64, device=dev)
    s_kk = torch.zeros((), dtype=_F64, device=dev)
    s_ll = torch.zeros((), dtype=_F64, device=dev)
    rows_k = torch.zeros(n, dtype=_F64, device=dev)
    rows_l = torch.zeros(n, dtype=_F64, device=dev)
    for start, stop in _upper_blocks(n, chunk_size):
        b = stop - start
        k = _sq_distances(x[start:stop], x[start:], sq_x[start:stop], sq_x[start:])
        k.mul_(-gamma_x).exp_()
        k[:, :b].triu_(1)
        lg = _sq_distances(y[start:stop], y[start:], sq_y[start:stop], sq_y[start:])
        lg.mul_(-gamma_y).exp_()
        lg[:, :b].triu_(1)
        s_kl += 2.0 * (k * lg).sum(dtype=_F64)
        s_kk += 2.0 * (k * k).sum(dtype=_F64)
        s_ll += 2.0 * (lg * lg).sum(dtype=_F64)
        rows_k[start:stop] += k.sum(1, dtype=_F64)
        rows_k[start:] += k.sum(0, dtype=_F64)
        rows_l[start:stop] += lg.sum(1, dtype=_F64)
        rows_l[start:] += lg.sum(0, dtype=_F64)
    return s_kl + n, s_kk + n, s_ll + n, rows_k + 1.0, rows_l + 1.0


def _check_bandwidths(
    sigma: float | tuple[float, float] | None, threshold: float
) -> tuple[float | None, float | None]:
    check_positive_real(threshold, name="threshold")
    if sigma is None:
        return None, None
    if threshold != 1.0:
        raise InvalidOptionError(
            f"threshold={threshold} only scales the median-distance bandwidth, but sigma={sigma} "
            "was given; pass either sigma or threshold."
        )
    if isinstance(sigma, (tuple, list)):
        if len(sigma) != 2:
            raise InvalidOptionError(
                f"sigma must be a positive number or a pair (sigma_x, sigma_y), got {sigma!r}."
            )
        pair = (sigma[0], sigma[1])
    else:
        pair = (sigma, sigma)
    names = ("sigma", "sigma") if not isinstance(sigma, (tuple, list)) else ("sigma[0]", "sigma[1]")
    checked = [check_positive_real(s, name=nm) for s, nm in zip(pair, names, strict=True)]
    return checked[0], checked[1]


def _gamma(sigma: float, e: int, dtype: torch.dtype) -> float:
    """1 / (2 σ'²) for σ' = σ · 2**-e, the bandwidth of data divided by 2**e.

    Computed from σ's exponent, so neither σ' nor σ'² overflows; a bandwidth so small that
    the kernel is the identity on distinct points is clamped to the dtype's largest value.
    """
    mantissa, exponent = math.frexp(sigma)
    power = -2 * (exponent - e)
    top = float(torch.finfo(dtype).max)
    if power > 1000:
        return top
    return min(math.ldexp(0.5 / (mantissa * mantissa), power), top)


def _median_bandwidth(t: Tensor, name: str, threshold: float, chunk_size: int) -> float:
    median = float(_median_sq_distance(t, chunk_size))
    if median <= 0.0:
        raise DegenerateInputError(
            f"at least half of the n² pairwise distances of {name} are zero (many duplicate "
            f"samples), so the median-distance bandwidth is 0; pass sigma= explicitly or remove "
            "duplicates."
        )
    return threshold * math.sqrt(median)


def rbf_cka(
    x: Any,
    y: Any,
    *,
    sigma: float | tuple[float, float] | None = None,
    threshold: float = 1.0,
    debiased: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """CKA with Gaussian (RBF) kernels between two representations of the same inputs.

    K_ij = exp(−||x_i − x_j||² / (2σ_x²)), L likewise on ``y`` with σ_y, and
    CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) (Kornblith et al., 2019, "Similarity of
    neural network representations revisited"), HSIC biased (Gretton et al. 2005) or, with
    ``debiased=True``, the unbiased estimator of Song et al. (2012) (Kornblith's
    ``cka(..., debiased=True)``, ckatorch's ``unbiased=True``).

    Bandwidth. ``sigma=None`` sets each side's σ from its own data, as Kornblith's
    ``gram_rbf(x, threshold)``: σ² = threshold² · median of the n² squared distances
    ||x_i − x_j||² over all (i, j), diagonal zeros included, with numpy's median (the mean of
    the two middle values when n is even). For odd n this is threshold × the median of those
    distances. ckatorch's ``cka_base(kernel="rbf", threshold=...)`` does the same but with
    ``torch.median``, which takes the lower middle value: for even n the two differ slightly;
    for odd n they agree. The median is exact for every n, in O(block × n) memory (for
    n ≳ 4,096 a sample of pairs drawn with a fixed seed only brackets it). A float ``sigma``
    uses that σ for both sides, a pair ``(sigma_x, sigma_y)`` one for each.

    Invariant to orthogonal transforms, translation and sample permutation of either side;
    with ``sigma=None`` also to isotropic scaling (a fixed σ is not). Symmetric; in [0, 1]
    (debiased: in [−1, 1], nearly unbiased, may be slightly negative); 1 when ``y`` is ``x``
    up to those transforms.

    Cost: O(n² (d1 + d2)) time (three blocked passes: one per median, one for the kernels);
    memory O(block × n). The Grams are built in the inputs' dtype from centered data; their sums
    accumulate in float64.

    Args:
        x: (n, d1) representation. y: (n, d2) representation of the same n inputs.
        sigma: RBF bandwidth, one for both sides or a pair; ``None``: the median heuristic.
        threshold: the fraction of the median distance used as σ when ``sigma`` is ``None``.
        debiased: use the unbiased HSIC estimator (needs n >= 4).
        chunk_size: rows of the kernel built at once; ``None`` keeps a block near 4M entries.

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import rbf_cka
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(rbf_cka(x, y)), 4)
        0.6928
    """
    debiased = check_flag(debiased, name="debiased")
    x, y = check_paired(x, y, min_samples=4 if debiased else 2)
    sigma_x, sigma_y = _check_bandwidths(sigma, threshold)
    n = x.shape[0]
    if chunk_size is None:
        block = max(1, min(n, _BLOCK_ENTRIES // n))
    else:
        block = check_positive_int(chunk_size, name="chunk_size")
    check_not_constant(x, name="x", measure="CKA")
    check_not_constant(y, name="y", measure="CKA")
    # the kernel depends on x / σ only: an exact power of two brings extreme data into
    # range (float32 squares of 1e20 overflow, of 1e-25 vanish), a given σ follows it
    (x, ex), (y, ey) = to_safe_range(x), to_safe_range(y)
    x, y = _centered(x), _centered(y)
    if sigma_x is None or sigma_y is None:
        gamma_x = _gamma(_median_bandwidth(x, "x", threshold, block), 0, x.dtype)
        gamma_y = _gamma(_median_bandwidth(y, "y", threshold, block), 0, y.dtype)
    else:
        gamma_x, gamma_y = _gamma(sigma_x, ex, x.dtype), _gamma(sigma_y, ey, y.dtype)
    s_kl, s_kk, s_ll, rows_k, rows_l = _rbf_gram_sums(x, y, gamma_x, gamma_y, block)
    if debiased:  # zero the diagonals: K_ii = L_ii = 1
        s_kl, s_kk, s_ll = s_kl - n, s_kk - n, s_ll - n
        rows_k, rows_l = rows_k - 1.0, rows_l - 1.0
    h_xy = _hsic_from_sums(s_kl, rows_k, rows_l, n, debiased=debiased)
    h_xx = _hsic_from_sums(s_kk, rows_k, rows_k, n, debiased=debiased)
    h_yy = _hsic_from_sums(s_ll, rows_l, rows_l, n, debiased=debiased)
    bandwidth = "sigma" if sigma is not None else "threshold"
    what = (
        f"RBF CKA with {bandwidth}={sigma if sigma is not None else threshold} (a bandwidth "
        "far above the distances between samples makes the kernel constant)"
    )
    return _cka_from_hsic(h_xy, h_xx, h_yy, what=what)


# --------------------------------------------------------------------------------------------
# Minibatch CKA.
# --------------------------------------------------------------------------------------------

_MINIBATCH_STATES = ("hsic_xy", "hsic_xx", "hsic_yy", "n_batches")


@dataclass
class _MinibatchSums:
    """The functional path's counterpart of :class:`MinibatchCKA`'s states."""

    hsic_xy: Tensor
    hsic_xx: Tensor
    hsic_yy: Tensor
    n_batches: Tensor

    @classmethod
    def zeros(cls, device: torch.device | None) -> _MinibatchSums:
        return cls(*(torch.zeros((), dtype=_F64, device=device) for _ in _MINIBATCH_STATES))


def _linear_hsic1(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Unbiased HSIC₁ of the linear Grams of one minibatch: (K, L), (K, K), (L, L), float64.

    HSIC₁ is unchanged by translating a batch, so each is centered on its float64 mean first
    (it keeps float32 Grams accurate; a constant batch becomes exactly zero, not rounding
    noise); the m × m Grams then go to float64 for the sums.
    """
    m = x.shape[0]
    # each batch is brought into range by an exact power of two (float32 Grams of 1e20 data
    # overflow); the float64 HSICs, of degree 2 in each Gram, are scaled back exactly
    (x, ex), (y, ey) = to_safe_range(x), to_safe_range(y)
    xc, yc = (torch.zeros_like(t) if bool((t == t[0]).all()) else _centered(t) for t in (x, y))
    k = (xc @ xc.T).to(_F64)
    lg = (yc @ yc.T).to(_F64)
    k.fill_diagonal_(0.0)
    lg.fill_diagonal_(0.0)
    rows_k, rows_l = k.sum(1), lg.sum(1)
    h_xy = _hsic_from_sums((k * lg).sum(), rows_k, rows_l, m, debiased=True)
    h_xx = _hsic_from_sums((k * k).sum(), rows_k, rows_k, m, debiased=True)
    h_yy = _hsic_from_sums((lg * lg).sum(), rows_l, rows_l, m, debiased=True)
    what = "the minibatch HSIC"
    return (
        unscale(h_xy, 2 * (ex + ey), name="x, y", what=what),
        unscale(h_xx, 4 * ex, name="x", what=what),
        unscale(h_yy, 4 * ey, name="y", what=what),
    )


def _minibatch_update(state: Any, x: Tensor, y: Tensor) -> None:
    h_xy, h_xx, h_yy = _linear_hsic1(x, y)
    state.hsic_xy = state.hsic_xy + h_xy
    state.hsic_xx = state.hsic_xx + h_xx
    state.hsic_yy = state.hsic_yy + h_yy
    state.n_batches = state.n_batches + 1.0


def _minibatch_compute(state: Any) -> Tensor:
    if float(state.n_batches) == 0.0:
        raise TooFewSamplesError(
            "minibatch CKA has seen no batch; call update(x, y) with at least one batch of 4 or "
            "more rows before compute()."
        )
    # the means over batches of the paper are sums here: the 1/k factors cancel
    return _cka_from_hsic(state.hsic_xy, state.hsic_xx, state.hsic_yy, what="minibatch CKA")


def _check_batch(x: Any, y: Any, index: int | None = None) -> tuple[Tensor, Tensor]:
    names = ("x", "y") if index is None else (f"x[{index}]", f"y[{index}]")
    return check_paired(x, y, names=names, min_samples=4)


def _is_array(obj: Any) -> bool:
    return isinstance(obj, (Tensor, np.ndarray))


def _batches(
    x: Any, y: Any, batch_size: int | None, drop_last: bool
) -> Iterable[tuple[Tensor, Tensor]]:
    """Pair the minibatches of :func:`minibatch_cka` (see its docstring)."""
    drop_last = check_flag(drop_last, name="drop_last")
    if _is_array(x) and _is_array(y) and x.ndim == 2 and y.ndim == 2:
        if batch_size is None:
            raise InvalidOptionError(
                f"x and y are 2-D (shapes {tuple(x.shape)} and {tuple(y.shape)}), so batch_size "
                "is needed to split their rows into minibatches; pass batch_size=, or pass "
                "sequences of batches."
            )
        size = check_positive_int(batch_size, name="batch_size", minimum=4)
        tx, ty = check_paired(x, y, min_samples=4)
        n, remainder = tx.shape[0], tx.shape[0] % size
        stop = n - remainder if drop_last else n
        if stop == 0:
            raise TooFewSamplesError(
                f"x has {n} rows, fewer than one batch of batch_size={size}, and drop_last=True "
                "drops it; use a smaller batch_size."
            )
        if not drop_last and 0 < remainder < 4:
            raise TooFewSamplesError(
                f"the last minibatch holds {remainder} rows (n = {n}, batch_size = {size}), but "
                "the unbiased HSIC needs at least 4; pass drop_last=True or a batch_size that "
                "leaves a remainder of 0 or at least 4."
            )
        return (
            (tx[s : min(s + size, stop)], ty[s : min(s + size, stop)]) for s in range(0, stop, size)
        )
    if batch_size is not None:
        raise InvalidOptionError(
            f"batch_size={batch_size} splits 2-D arrays only; x and y are already batched "
            "(sequences or 3-D arrays), so leave batch_size=None."
        )
    for name, obj in (("x", x), ("y", y)):
        if _is_array(obj) and obj.ndim != 3:
            raise ShapeError(
                f"{name} must be a 2-D (n, d) array with batch_size=, a 3-D (n_batches, m, d) "
                f"array, or a sequence of 2-D batches; got shape {tuple(obj.shape)}."
            )
        if not _is_array(obj) and not isinstance(obj, Iterable):
            raise InputTypeError(
                f"{name} must be an array or an iterable of (m, d) batches, got "
                f"{type(obj).__name__}."
            )
    return _zip_batches(x, y)


def _zip_batches(x: Iterable[Any], y: Iterable[Any]) -> Iterable[tuple[Tensor, Tensor]]:
    sentinel = object()
    it_x, it_y = iter(x), iter(y)
    index = 0
    while True:
        bx, by = next(it_x, sentinel), next(it_y, sentinel)
        if bx is sentinel and by is sentinel:
            return
        if bx is sentinel or by is sentinel:
            short, long_ = ("x", "y") if bx is sentinel else ("y", "x")
            raise ShapeError(
                f"{short} ran out of batches after {index} while {long_} has more; x and y must "
                "hold the same minibatches, paired in order."
            )
        yield _check_batch(bx, by, index)
        index += 1


def minibatch_cka(
    x: Any,
    y: Any,
    *,
    batch_size: int | None = None,
    drop_last: bool = False,
) -> Tensor:
    """Minibatch linear CKA of Nguyen, Raghu & Kornblith (2021).

    CKA_mb = mean_b HSIC₁(K_b, L_b) / sqrt(mean_b HSIC₁(K_b, K_b) · mean_b HSIC₁(L_b, L_b)),
    K_b = X_b X_bᵀ, L_b = Y_b Y_bᵀ the linear Grams of minibatch b and HSIC₁ the unbiased
    estimator of Song et al. (2012) ("Do wide and deep networks learn the same things?",
    ICLR 2021, eq. 3). Because HSIC₁ is unbiased, averaging it over minibatches estimates the
    full-data HSIC without the bias that would come with averaging biased per-batch values.
    With one batch holding every row it equals ``linear_cka(x, y, debiased=True)``.

    The minibatches are given in one of three ways:

    * ``x``, ``y`` 2-D ``(n, d)`` arrays and ``batch_size``: consecutive slices of
      ``batch_size`` rows (shuffle the rows first if they are sorted, e.g. by class). A last,
      smaller batch is kept (it needs at least 4 rows) unless ``drop_last=True``;
    * ``x``, ``y`` 3-D ``(n_batches, m, d)`` arrays (ckatorch's ``cka_batch`` layout);
    * ``x``, ``y`` iterables of 2-D batches, paired in order (sizes may differ).

    For data that arrive batch by batch (a DataLoader), use :class:`MinibatchCKA`.

    Invariant, per batch and therefore overall, to orthogonal transforms, isotropic scaling and
    translation of either side; symmetric; in [−1, 1] (nearly always [0, 1]); 1 when ``y`` is
    ``x`` up to those transforms.

    Args:
        x, y: the minibatches, as above.
        batch_size: rows per minibatch when ``x`` and ``y`` are 2-D (at least 4).
        drop_last: drop a last batch smaller than ``batch_size``.

    Returns:
        A 0-dim float64 tensor on the inputs' device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import minibatch_cka
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(minibatch_cka(x, y, batch_size=50)), 4)
        0.6621
    """
    state: _MinibatchSums | None = None
    for bx, by in _batches(x, y, batch_size, drop_last):
        if state is None:
            state = _MinibatchSums.zeros(bx.device)
        check_same_device(bx, state.hsic_xy, names=("this batch", "the first batch"))
        _minibatch_update(state, bx, by)
    return _minibatch_compute(_MinibatchSums.zeros(None) if state is None else state)


class MinibatchCKA(StreamingMetric):
    """Streaming minibatch linear CKA (Nguyen, Raghu & Kornblith 2021).

    Each ``update(x, y)`` is one minibatch (at least 4 rows); ``compute()`` returns
    Σ_b HSIC₁(K_b, L_b) / sqrt(Σ_b HSIC₁(K_b, K_b) Σ_b HSIC₁(L_b, L_b)), as
    :func:`minibatch_cka` on the same batches. States are the three HSIC₁ sums and the batch
    count, reduced by summation, so under ``torch.distributed`` every rank returns the value
    over all ranks' batches. Memory O(m²) per batch, nothing kept between batches.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import MinibatchCKA
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = MinibatchCKA()
        >>> metric.update(x[:50], y[:50])
        >>> metric.update(x[50:], y[50:])
        >>> round(float(metric.compute()), 4)
        0.6621
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name in _MINIBATCH_STATES:
            self.add_state(name, default=torch.zeros((), dtype=_F64), dist_reduce_fx="sum")

    def update(self, x: Any, y: Any) -> None:
        """Add one minibatch of paired rows: ``x`` (m, d1) and ``y`` (m, d2), m >= 4."""
        tx, ty = _check_batch(x, y)
        check_same_device(
            tx,
            cast(Tensor, self.hsic_xy),
            names=("x", "the metric's states (move it with metric.to(device))"),
        )
        _minibatch_update(self, tx, ty)

    def compute(self) -> Tensor:
        """Minibatch CKA over every batch seen so far (on every rank, after sync)."""
        return _minibatch_compute(self)

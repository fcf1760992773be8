"""Descriptive statistics of a representation, and their differences between two.

As in Klabunde et al. (2023, "Similarity of neural network models: a survey", and their
ReSi benchmark, github.com/mklabunde/resi): a representation is summarized by one number
and two representations are compared by the absolute difference of their numbers.

* magnitude: the length of the mean row (ReSi), or the mean length of the rows;
* concentricity: the mean cosine similarity of each row to the mean row;
* uniformity (Wang & Isola, 2020): log of the mean Gaussian potential exp(-t ||x_i - x_j||²).

Magnitude and concentricity are sums over samples and stream (:class:`Magnitude`,
:class:`Concentricity` and their ``*Difference`` counterparts); uniformity is a sum over
pairs, computed in row blocks of at most 256 MiB (O(chunk × n) memory).

The two representations of a difference need not have the same samples (or the same
number of them): each statistic is computed on its own.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, Literal, cast

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    ShapeError,
    TooFewSamplesError,
    check_choice,
    check_flag,
    check_matrix,
    check_positive_int,
    check_positive_real,
    check_same_device,
)
from subspaces.linalg.constants import CHUNK_SIZE, rows_within_budget
from subspaces.linalg.metric import StreamingMetric
from subspaces.linalg.normalize import normalize_rows
from subspaces.linalg.scaling import row_norms, to_safe_range, unscale

__all__ = [
    "MAGNITUDE_METHODS",
    "Concentricity",
    "ConcentricityDifference",
    "Magnitude",
    "MagnitudeDifference",
    "concentricity",
    "concentricity_difference",
    "magnitude",
    "magnitude_difference",
    "uniformity",
    "uniformity_difference",
]

MagnitudeMethod = Literal["norm_of_mean", "mean_norm"]
MAGNITUDE_METHODS: tuple[str, ...] = ("norm_of_mean", "mean_norm")
"""``"norm_of_mean"``: ||mean_i x_i|| (ReSi); ``"mean_norm"``: mean_i ||x_i||."""

_ROW_STATES = ("n", "sum", "sum_unit", "sum_norm")
_STREAMING_EPS = float(torch.finfo(torch.float32).eps)
"""Streaming classes do not know the batches' dtype: they judge a zero mean as for float32."""


# --------------------------------------------------------------------------------------------
# Row sums: the maths core of magnitude and concentricity


def _add(state: Any, name: str, value: Tensor) -> None:
    current = getattr(state, name)
    setattr(state, name, value if current.numel() == 0 else current + value)


def _row_sums_update(state: Any, x: Tensor, prefix: str = "") -> None:
    """Add n, Σ x_i, Σ x_i/||x_i|| (zero rows add 0) and Σ ||x_i||, all float64, to ``state``."""
    if x.shape[0] == 0:
        return
    f64 = torch.float64
    _add(state, prefix + "n", torch.tensor(float(x.shape[0]), dtype=f64, device=x.device))
    for start in range(0, x.shape[0], CHUNK_SIZE):
        xb = x[start : start + CHUNK_SIZE].to(f64)
        norms = torch.linalg.vector_norm(xb, dim=1)
        unit = normalize_rows(xb, zero_rows="keep")
        _add(state, prefix + "sum", xb.sum(0))
        _add(state, prefix + "sum_unit", unit.sum(0))
        _add(state, prefix + "sum_norm", norms.sum())


def _empty_row_sums(device: torch.device) -> SimpleNamespace:
    return SimpleNamespace(
        **{name: torch.zeros(0, dtype=torch.float64, device=device) for name in _ROW_STATES}
    )


def _magnitude_compute(n: Tensor, total: Tensor, sum_norm: Tensor, method: str) -> Tensor:
    if method == "mean_norm":
        return sum_norm / n
    return torch.linalg.vector_norm(total / n)


_DEGENERATE_MEAN = 100.0
"""The mean row counts as zero when shorter than this many ulps of the mean row length."""


def _concentricity_compute(
    n: Tensor, total: Tensor, sum_unit: Tensor, sum_norm: Tensor, name: str, eps: float
) -> Tensor:
    """mean_i cos(x_i, m) = (Σ_i x_i/||x_i||)·m / (n ||m||), m the mean row."""
    mean = total / n
    norm = torch.linalg.vector_norm(mean)
    if float(norm) <= _DEGENERATE_MEAN * eps * float(sum_norm / n):
        raise DegenerateInputError(
            f"the mean row of {name} is the zero vector (to rounding: its length is "
            f"{float(norm):.3g}, the mean row length {float(sum_norm / n):.3g}), so the cosine "
            "of each row to it (concentricity) is undefined; this happens for centered data. "
            f"Do not center {name} before this statistic."
        )
    return (sum_unit @ mean) / (n * norm)


def _check_method(method: Any) -> str:
    return check_choice(method, name="method", choices=MAGNITUDE_METHODS)


def _check_two(x: Any, y: Any, *, min_samples: int = 1) -> tuple[Tensor, Tensor]:
    tx = check_matrix(x, name="x", min_samples=min_samples)
    ty = check_matrix(y, name="y", min_samples=min_samples)
    check_same_device(tx, ty, names=("x", "y"))
    return tx, ty


def magnitude(x: Any, *, method: MagnitudeMethod = "norm_of_mean") -> Tensor:
    """Magnitude of a representation.

    ``method="norm_of_mean"`` (default, ReSi's ``magnitude_difference``, Klabunde et al. 2023):
    ||(1/n) Σ_i x_i||_2, the length of the mean row. ``method="mean_norm"``:
    (1/n) Σ_i ||x_i||_2, the mean length of the rows. No normalization (ReSi's per-sample
    ``magnitude_nrmse`` is a different measure, not provided here).

    Invariant to orthogonal transforms and to permutations of samples; scales with the data
    (isotropic scaling by c multiplies it by |c|). In [0, ∞); ``norm_of_mean`` <= ``mean_norm``.

    Args:
        x: (n, d) representation.
        method: which magnitude.

    Returns:
        A 0-dim float64 tensor on ``x``'s device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import magnitude
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(magnitude(x + 1.0)), 4)
        2.3873
        >>> round(float(magnitude(x, method="mean_norm")), 4)
        2.1336
    """
    _check_method(method)
    t = check_matrix(x, name="x", min_samples=1)
    sums = _empty_row_sums(t.device)
    _row_sums_update(sums, t)
    return _magnitude_compute(sums.n, sums.sum, sums.sum_norm, method)


def concentricity(x: Any) -> Tensor:
    """Concentricity: the mean cosine similarity of the rows to the mean row.

    C(X) = (1/n) Σ_i cos(x_i, m), m = (1/n) Σ_j x_j (Klabunde et al. 2023; ReSi). A zero row
    counts with cosine 0 (as sklearn's cosine, which ReSi uses).

    Invariant to orthogonal transforms, isotropic scaling (c > 0) and permutations of
    samples; not to translation. In [-1, 1]; 1 iff every row points along the mean (it is
    negative only when a few long rows outweigh many rows pointing the other way).

    Args:
        x: (n, d) representation whose mean row is not zero (do not center it).

    Returns:
        A 0-dim float64 tensor on ``x``'s device.

    Raises:
        DegenerateInputError: the mean row is zero (e.g. centered data): shorter than 100 ulps
            of ``x``'s dtype times the mean row length (float32's ulp for the streaming
            classes, which do not know the dtype).

    Examples:
        >>> import torch
        >>> from subspaces.similarity import concentricity
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(concentricity(x + 1.0)), 4)
        0.7419
    """
    t = check_matrix(x, name="x", min_samples=1)
    sums = _empty_row_sums(t.device)
    _row_sums_update(sums, t)
    eps = torch.finfo(t.dtype).eps
    return _concentricity_compute(sums.n, sums.sum, sums.sum_unit, sums.sum_norm, "x", eps)


def magnitude_difference(x: Any, y: Any, *, method: MagnitudeMethod = "norm_of_mean") -> Tensor:
    """|magnitude(x) - magnitude(y)| (ReSi's ``magnitude_difference`` for the default method).

    Invariant to orthogonal transforms and sample permutations of either side; symmetric;
    in [0, ∞), 0 for y = x. ``x`` and ``y`` may have different numbers of samples.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import magnitude_difference
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(magnitude_difference(x + 1.0, y)), 4)
        2.0486
    """
    _check_method(method)
    tx, ty = _check_two(x, y)
    return (magnitude(tx, method=method) - magnitude(ty, method=method)).abs()


def concentricity_difference(x: Any, y: Any) -> Tensor:
    """|concentricity(x) - concentricity(y)| (ReSi's ``concentricity_difference``).

    Invariant to orthogonal transforms, isotropic scaling and sample permutations of either
    side; symmetric; in [0, 2], 0 for y = x.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import concentricity_difference
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(concentricity_difference(x + 1.0, y)), 4)
        0.6616
    """
    tx, ty = _check_two(x, y)
    return (concentricity(tx) - concentricity(ty)).abs()


# --------------------------------------------------------------------------------------------
# Uniformity (blocked over pairs)


def _log_potential_sum(z: Tensor, t: float, chunk_size: int, scale: int = 0) -> Tensor:
    """log Σ_{i<j} exp(-t ||z_i - z_j||²) in float64, by row blocks over the upper triangle.

    ``z`` may be the data divided by a power of two: each squared distance is multiplied by
    ``2**scale`` in float64 before the exponential (exact; no float32 square overflows).
    """
    n = z.shape[0]
    sq = (z * z).sum(dim=1)
    # per row, held at once: the block of squared distances and its upper-triangle copy (z's
    # dtype), that copy in float64, rescaled, and the exponentials of the log-sum-exp
    chunk_size = rows_within_budget(chunk_size, n * (2 * z.element_size() + 3 * 8))
    parts = []
    for start in range(0, n - 1, chunk_size):
        stop = min(start + chunk_size, n - 1)
        d2 = torch.addmm(sq[None, start:], z[start:stop], z[start:].T, alpha=-2.0)
        d2.add_(sq[start:stop, None]).clamp_min_(0.0)
        # Row r of the block is sample start + r; its pairs j > start + r are columns > r.
        upper = torch.cat([d2[r, r + 1 :] for r in range(stop - start)]).to(torch.float64)
        upper = unscale(upper, scale, name="x", what="the squared distances")
        parts.append(torch.logsumexp(upper.mul_(-t), dim=0))
    return torch.logsumexp(torch.stack(parts), dim=0)


def _prepare_uniformity(x: Tensor, normalize: bool, name: str) -> Tensor:
    if normalize:
        norms = row_norms(x, keepdim=True)
        zero = int((norms == 0).sum())
        if zero:
            raise DegenerateInputError(
                f"{name} has {zero} zero rows, which cannot be normalized to the unit sphere; "
                "drop them or use normalize=False."
            )
        return x / norms.to(x.dtype)
    # Translation does not change distances: centering on the float64 mean shrinks the norms
    # and the cancellation in |a|² + |b|² - 2 a·b.
    return x - x.mean(dim=0, dtype=torch.float64).to(x.dtype)


def uniformity(
    x: Any,
    *,
    t: float = 2.0,
    normalize: bool = False,
    exclude_self: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> Tensor:
    """Uniformity (Wang & Isola, 2020) as in ReSi: log of the mean Gaussian potential.

    U(X) = log( (1/n²) Σ_{i,j} exp(-t ||x_i - x_j||²) ), t = 2, over all n² ordered pairs
    including i = j and on the rows as given (ReSi's ``uniformity_difference``).
    Wang & Isola's loss uses distinct pairs (``exclude_self=True``: divide by n(n-1) and
    drop i = j) of L2-normalized features (``normalize=True``).

    Computed with a running float64 log-sum-exp (no underflow for spread-out data) in row
    blocks over the upper triangle: O(n² d) time, O(chunk × n) memory (chunk: at most
    ``chunk_size`` rows, fewer where a block would exceed 256 MiB).

    Invariant to orthogonal transforms, translation and sample permutations
    (``normalize=True``: orthogonal transforms and positive scaling of each row, not
    translation); not to scaling. In [-log n, 0] (``exclude_self``: (-∞, 0]); lower is more
    uniform.

    Args:
        x: (n, d) representation, n >= 2.
        t: the temperature, > 0.
        normalize: L2-normalize the rows first.
        exclude_self: average over the n(n-1) pairs i != j only.
        chunk_size: rows per block: at most ``chunk_size`` and fewer where a block would
            exceed 256 MiB.

    Returns:
        A 0-dim float64 tensor on ``x``'s device.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import uniformity
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(uniformity(x, normalize=True)), 4)
        -2.5569
    """
    t = check_positive_real(t, name="t")
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    normalize = check_flag(normalize, name="normalize")
    exclude_self = check_flag(exclude_self, name="exclude_self")
    tx = check_matrix(x, name="x", min_samples=2)
    # an exact power of two brings extreme data into range; the squared distances are
    # scaled back in float64 (unit rows, with normalize=True, do not depend on it)
    scaled, e = to_safe_range(tx)
    z = _prepare_uniformity(scaled, normalize, "x")
    n = z.shape[0]
    # Each unordered pair counts twice among the ordered pairs.
    log_sum = _log_potential_sum(z, t, chunk_size, 0 if normalize else 2 * e) + math.log(2.0)
    if exclude_self:
        return log_sum - math.log(n * (n - 1))
    # The n pairs i = j each contribute exp(0) = 1.
    log_sum = torch.logaddexp(log_sum, torch.tensor(math.log(n), dtype=torch.float64))
    return log_sum - 2.0 * math.log(n)


def uniformity_difference(
    x: Any,
    y: Any,
    *,
    t: float = 2.0,
    normalize: bool = False,
    exclude_self: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> Tensor:
    """|uniformity(x) - uniformity(y)| (ReSi's ``uniformity_difference`` with the defaults).

    Invariant to orthogonal transforms, translation and sample permutations of either side
    (see :func:`uniformity` for ``normalize``); symmetric; in [0, ∞), 0 for y = x.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import uniformity_difference
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> round(float(uniformity_difference(x, y, normalize=True)), 4)
        0.4263
    """
    tx, ty = _check_two(x, y, min_samples=2)
    options: dict[str, Any] = {
        "t": t,
        "normalize": normalize,
        "exclude_self": exclude_self,
        "chunk_size": chunk_size,
    }
    return (uniformity(tx, **options) - uniformity(ty, **options)).abs()


# --------------------------------------------------------------------------------------------
# Streaming classes


class _RowSumsMetric(StreamingMetric):
    """Float64 row sums of one representation (and of a second, under the prefix ``y_``)."""

    full_state_update = False
    is_differentiable = False
    higher_is_better: bool | None = None

    def __init__(self, *, paired: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._prefixes = ("", "y_") if paired else ("",)
        for prefix in self._prefixes:
            for name in _ROW_STATES:
                self.add_state(
                    prefix + name, default=torch.zeros(0, dtype=torch.float64), dist_reduce_fx="sum"
                )

    def _get(self, name: str) -> Tensor:
        return cast(Tensor, getattr(self, name))

    def _update_one(self, t: Tensor, prefix: str, name: str) -> None:
        total = self._get(prefix + "sum")
        if total.numel() and t.shape[1] != total.shape[0]:
            raise ShapeError(
                f"this batch of {name} has {t.shape[1]} features but earlier batches had "
                f"{total.shape[0]}; every batch must come from the same layer."
            )
        _row_sums_update(self, t, prefix)

    def _sums(self, prefix: str, name: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        n = self._get(prefix + "n")
        if n.numel() == 0 or float(n) == 0:
            raise TooFewSamplesError(
                f"{type(self).__name__} has seen no samples of {name}; call update() before "
                "compute()."
            )
        return (
            n,
            self._get(prefix + "sum"),
            self._get(prefix + "sum_unit"),
            self._get(prefix + "sum_norm"),
        )


class Magnitude(_RowSumsMetric):
    """Streaming :func:`magnitude`: ``update(x)`` per batch, ``compute()`` at the end.

    Equals :func:`magnitude` of the concatenated batches, whatever the split; its float64
    states sum across ``torch.distributed`` ranks.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import Magnitude
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = Magnitude(method="mean_norm")
        >>> metric.update(x[:50])
        >>> metric.update(x[50:])
        >>> round(float(metric.compute()), 4)
        2.1336
    """

    def __init__(self, *, method: MagnitudeMethod = "norm_of_mean", **kwargs: Any) -> None:
        super().__init__(paired=False, **kwargs)
        self.method = _check_method(method)

    def update(self, x: Any) -> None:
        """Add a batch of rows ``x`` (m, d)."""
        self._update_one(check_matrix(x, name="x", min_samples=1), "", "x")

    def compute(self) -> Tensor:
        """The magnitude of every row seen so far."""
        n, total, _, sum_norm = self._sums("", "x")
        return _magnitude_compute(n, total, sum_norm, self.method)


class Concentricity(_RowSumsMetric):
    """Streaming :func:`concentricity`: ``update(x)`` per batch, ``compute()`` at the end.

    Exact for any split: mean_i cos(x_i, m) = (Σ_i x_i/||x_i||)·m/(n||m||) needs only the
    float64 sums of the rows and of the unit rows, which sum across ranks.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import Concentricity
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = Concentricity()
        >>> metric.update(x[:50])
        >>> metric.update(x[50:])
        >>> round(float(metric.compute()), 4)
        0.0906
    """

    higher_is_better = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(paired=False, **kwargs)

    def update(self, x: Any) -> None:
        """Add a batch of rows ``x`` (m, d)."""
        self._update_one(check_matrix(x, name="x", min_samples=1), "", "x")

    def compute(self) -> Tensor:
        """The concentricity of every row seen so far."""
        n, total, sum_unit, sum_norm = self._sums("", "x")
        return _concentricity_compute(n, total, sum_unit, sum_norm, "x", _STREAMING_EPS)


class _PairedRowSumsMetric(_RowSumsMetric):
    higher_is_better = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(paired=True, **kwargs)

    def update(self, x: Any, y: Any) -> None:
        """Add a batch of rows of each representation (the batches may differ in length)."""
        tx, ty = _check_two(x, y)
        self._update_one(tx, "", "x")
        self._update_one(ty, "y_", "y")


class MagnitudeDifference(_PairedRowSumsMetric):
    """Streaming :func:`magnitude_difference`: ``update(x, y)`` per batch, ``compute()``.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import MagnitudeDifference
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = MagnitudeDifference()
        >>> metric.update(x[:50], y[:50])
        >>> metric.update(x[50:], y[50:])
        >>> round(float(metric.compute()), 4)
        0.1081
    """

    def __init__(self, *, method: MagnitudeMethod = "norm_of_mean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.method = _check_method(method)

    def compute(self) -> Tensor:
        """|magnitude(x) - magnitude(y)| over every row seen so far."""
        nx, sx, _, normx = self._sums("", "x")
        ny, sy, _, normy = self._sums("y_", "y")
        return (
            _magnitude_compute(nx, sx, normx, self.method)
            - _magnitude_compute(ny, sy, normy, self.method)
        ).abs()


class ConcentricityDifference(_PairedRowSumsMetric):
    """Streaming :func:`concentricity_difference`: ``update(x, y)`` per batch, ``compute()``.

    Examples:
        >>> import torch
        >>> from subspaces.similarity import ConcentricityDifference
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 5, generator=g)
        >>> y = x @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(100, 4, generator=g)
        >>> metric = ConcentricityDifference()
        >>> metric.update(x[:50], y[:50])
        >>> metric.update(x[50:], y[50:])
        >>> round(float(metric.compute()), 4)
        0.0102
    """

    def compute(self) -> Tensor:
        """|concentricity(x) - concentricity(y)| over every row seen so far."""
        nx, sx, ux, normx = self._sums("", "x")
        ny, sy, uy, normy = self._sums("y_", "y")
        cx = _concentricity_compute(nx, sx, ux, normx, "x", _STREAMING_EPS)
        cy = _concentricity_compute(ny, sy, uy, normy, "y", _STREAMING_EPS)
        return (cx - cy).abs()

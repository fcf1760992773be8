"""Coding rate R, class-conditional coding rate R_c and rate reduction ΔR (MCR², Yu et al. 2020).

For features ``Z`` with m samples as ROWS (m × d, like everywhere in subspaces) and a
distortion ``eps`` > 0:

* R(Z, ε) = ½ logdet(I_d + d / (m ε²) · Zᵀ Z), the rate (nats) needed to code the
  features up to distortion ε under a zero-mean Gaussian model;
* R_c(Z, ε | Π) = Σ_j tr(Π_j) / (2m) · logdet(I_d + d / (tr(Π_j) ε²) · Zᵀ Π_j Z), the rate
  when each class j is coded separately; Π_j = diag(π_1j, ..., π_mj) is column j of a
  membership matrix Π (m × k, rows summing to 1): one-hot for hard labels, any
  probabilities for soft assignments (as in the MCR² clustering objective);
* ΔR = R - R_c ≥ 0 (concavity of logdet), the rate reduction MCR² maximizes.

**The parameter is ε, not ε².** The two public implementations disagree: PyPI ``mcr2``
(``mcr2.primitives.coding_rate.R``, ``Rc``, ``DeltaR``) takes ε and squares it, like this
module; the original MCR² repository (Ma-Lab-Berkeley/MCR2) takes "eps squared" (its
``--eps`` option, default 0.5, is ε²). To reproduce a number from the original code run
with ``--eps e2``, pass ``eps=math.sqrt(e2)``.

**No centering.** Unlike the spectrum measures, Z is used as it is: MCR² codes (usually
unit-normalized) features under a zero-mean model, so a common offset raises the rate.
Normalize the rows first (``x / x.norm(dim=1, keepdim=True)``) to follow the papers.

**Computation.** logdet(I + a AᵀA) = logdet(I + a AAᵀ): each term uses the d × d form or the
(rows × rows) form, whichever is smaller, through a float64 Cholesky factorization (an
eigenvalue fallback if rounding made it fail). Zᵀ Z, Zᵀ Π_j Z and tr(Π_j) are sums over
samples, so :class:`CodingRate` and :class:`CodingRateReduction` stream them (float64
states summed across ``torch.distributed`` ranks); the streaming classes always use the
d × d form and hold k d² floats for k classes.

Invariances: orthogonal transforms of the features (x → x Q), sample order (with the
labels permuted alongside); R_c and ΔR also to relabeling the classes. Not invariant to
scaling or translation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor
from torchmetrics import Metric

from subspaces._base import Result
from subspaces._checks import (
    InvalidOptionError,
    NumericRangeError,
    ShapeError,
    TooFewSamplesError,
    as_float_tensor,
    check_finite,
    check_fits_in_memory,
    check_labels,
    check_matrix,
    check_positive_int,
    check_positive_real,
    check_same_device,
)
from subspaces.linalg.decomp import eigvalsh
from subspaces.linalg.metric import StreamingMetric
from subspaces.linalg.moments import CHUNK_SIZE, MomentSums, accumulate_moments
from subspaces.linalg.streaming import DataclassResultMetric

__all__ = [
    "CodingRate",
    "CodingRateReduction",
    "RateReduction",
    "class_coding_rate",
    "coding_rate",
    "coding_rate_reduction",
]

_F64 = torch.float64
_F64_MAX = float(torch.finfo(_F64).max)

_MCR2_EPS = math.sqrt(0.5)
"""The default distortion ε: ε² = 0.5, the setting of the MCR² experiments (Yu et al. 2020)."""


@dataclass(frozen=True)
class RateReduction(Result):
    """The three quantities of MCR², 0-dim float64 tensors (nats).

    ``rate`` = R(Z, ε), ``class_rate`` = R_c(Z, ε | Π), ``reduction`` = ΔR = R - R_c ≥ 0.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g, dtype=torch.float64)
        >>> x = x / x.norm(dim=1, keepdim=True)
        >>> from subspaces.geometry import coding_rate_reduction
        >>> rr = coding_rate_reduction(x, torch.arange(50) % 2)
        >>> {k: round(v, 3) for k, v in rr.as_dict().items()}
        {'rate': 4.26, 'class_rate': 4.179, 'reduction': 0.081}
    """

    rate: Tensor
    class_rate: Tensor
    reduction: Tensor


# ---------------------------------------------------------------------------------------
# Validation


def _check_eps(eps: Any) -> float:
    return check_positive_real(
        eps,
        name="eps",
        hint="It is the distortion ε itself, not ε² (the original MCR² code takes ε²: pass "
        "eps=sqrt(its value)).",
    )


@dataclass(frozen=True)
class _Membership:
    """Validated class membership: hard ``labels`` (m,) int64 or soft ``pi`` (m, k)."""

    num_classes: int
    labels: Tensor | None = None
    pi: Tensor | None = None


def _membership(
    labels: Any, x: Tensor, *, num_classes: int | None = None, name: str = "labels"
) -> _Membership:
    """Parse hard labels (1-D integers) or a soft membership matrix (m × k, rows sum to 1)."""
    m = x.shape[0]
    ndim = getattr(labels, "ndim", None)
    if ndim == 2:
        pi = as_float_tensor(labels, name=name)
        if pi.shape[0] != m:
            raise ShapeError(
                f"{name} is a membership matrix with {pi.shape[0]} rows (shape "
                f"{tuple(pi.shape)}) but x has {m} samples; pass one row per sample."
            )
        if pi.shape[1] == 0:
            raise ShapeError(f"{name} has shape {tuple(pi.shape)}: it needs at least one class.")
        if num_classes is not None and pi.shape[1] != num_classes:
            raise ShapeError(
                f"{name} has {pi.shape[1]} columns (classes) but this metric was built for "
                f"num_classes={num_classes}."
            )
        check_same_device(x, pi, names=("x", name))
        check_finite(pi, name=name)
        if m and float(pi.min()) < 0.0:
            raise InvalidOptionError(
                f"{name} has negative entries (minimum {float(pi.min()):.3g}); a membership "
                "matrix holds probabilities π_ij ≥ 0."
            )
        tol = math.sqrt(float(torch.finfo(pi.dtype).eps))
        sums = pi.sum(1, dtype=_F64)
        bad = (sums - 1.0).abs() > tol
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0])
            raise InvalidOptionError(
                f"rows of the membership matrix {name} must sum to 1 (within {tol:.1e}); "
                f"{int(bad.sum())} rows do not, e.g. row {row} sums to {float(sums[row]):.6g}. "
                f"Normalize it ({name} / {name}.sum(1, keepdim=True)) or pass hard labels."
            )
        return _Membership(num_classes=int(pi.shape[1]), pi=pi)
    if ndim is not None and ndim != 1:
        raise ShapeError(
            f"{name} must be 1-D class indices of shape ({m},) or a 2-D membership matrix "
            f"of shape ({m}, k), got shape {tuple(labels.shape)}."
        )
    hard = check_labels(labels, m, name=name, device=x.device)
    if m and int(hard.min()) < 0:
        raise InvalidOptionError(
            f"{name} must be non-negative class indices, got minimum {int(hard.min())}."
        )
    top = int(hard.max()) + 1 if m else 0
    if num_classes is not None and top > num_classes:
        raise InvalidOptionError(
            f"{name} holds class {top - 1} but this metric was built for num_classes={num_classes} "
            f"(classes 0..{num_classes - 1})."
        )
    return _Membership(num_classes=num_classes if num_classes is not None else top, labels=hard)


def _classes(member: _Membership) -> list[int]:
    """The classes to visit: those present (hard labels) or every column (membership)."""
    if member.labels is not None:
        return [int(j) for j in torch.unique(member.labels).tolist()]
    return list(range(member.num_classes))


def _class_rows(x: Tensor, member: _Membership, j: int) -> tuple[Tensor, Tensor]:
    """Rows of class j weighted by sqrt(π_ij) (zero rows dropped) and tr(Π_j) in float64."""
    if member.labels is not None:
        rows = x[member.labels == j]
        return rows, torch.tensor(float(rows.shape[0]), dtype=_F64, device=x.device)
    col = cast(Tensor, member.pi)[:, j]
    keep = col > 0
    weights = col[keep].to(x.dtype).sqrt()
    return x[keep] * weights[:, None], col.sum(dtype=_F64)


# ---------------------------------------------------------------------------------------
# The maths core


def _gram(a: Tensor, chunk_size: int) -> Tensor:
    """Σ_i a_i a_iᵀ (d × d) in float64, products in the input dtype over row chunks."""
    state = MomentSums()
    accumulate_moments(state, a, about_origin=True, chunk_size=chunk_size)
    if state.sxx.numel() == 0:
        return torch.zeros(a.shape[1], a.shape[1], dtype=_F64, device=a.device)
    return 0.5 * (state.sxx + state.sxx.T)


def _row_gram(a: Tensor, chunk_size: int) -> Tensor:
    """A Aᵀ (rows × rows) in float64, accumulated over feature blocks."""
    out = torch.zeros(a.shape[0], a.shape[0], dtype=_F64, device=a.device)
    for start in range(0, a.shape[1], chunk_size):
        block = a[:, start : start + chunk_size].to(_F64)
        out += block @ block.T
    return out


def _logdet_identity_plus(scale: float, g: Tensor) -> Tensor:
    """logdet(I + scale · G) for a symmetric PSD float64 G, by Cholesky (eigvalsh fallback)."""
    a = scale * g
    a.diagonal().add_(1.0)
    factor, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        return 2.0 * factor.diagonal().log().sum()
    evals = eigvalsh(a)
    return evals.clamp(min=1.0).log().sum()


def _half_rate(d: int, count: Tensor, eps: float, gram: Tensor) -> Tensor:
    """½ logdet(I + d / (count ε²) · G): the coding rate of ``count`` samples with Gram G.

    Raises :class:`NumericRangeError` naming ``eps`` when ``d / (count ε²) · G`` overflows
    float64 (ε below about 1e-154 for unit-scale features), before any NaN can appear.
    """
    top = float(gram.diagonal().max()) if gram.numel() else 0.0  # the largest entry of a PSD G
    if top == 0.0:  # G = 0: logdet(I) = 0 at any ε (the scale may be inf: inf · 0 is NaN)
        return torch.zeros((), dtype=_F64, device=gram.device)
    denominator = float(count) * eps * eps
    scale = d / denominator if denominator > 0.0 else math.inf
    if not math.isfinite(scale * top):
        log_min = 0.5 * (math.log(d) + math.log(top) - math.log(float(count)) - math.log(_F64_MAX))
        raise NumericRangeError(
            f"eps={eps} is too small for these features: d / (m ε²) · ZᵀZ overflows float64; "
            f"pass eps >= {math.exp(log_min):.3g} (or rescale x)."
        )
    return 0.5 * _logdet_identity_plus(scale, gram)


def _rate_of_rows(a: Tensor, count: Tensor, eps: float, chunk_size: int) -> Tensor:
    """½ logdet(I + d/(count ε²) AᵀA) via the smaller of the d × d and rows × rows Grams."""
    d = a.shape[1]
    if a.shape[0] == 0:
        return torch.zeros((), dtype=_F64, device=a.device)
    gram = _gram(a, chunk_size) if d <= a.shape[0] else _row_gram(a, chunk_size)
    return _half_rate(d, count, eps, gram)


def _class_rate_from_sums(
    n: Tensor, d: int, class_weight: Tensor, class_gram: Tensor, eps: float
) -> Tensor:
    """R_c from the per-class sums tr(Π_j) and Zᵀ Π_j Z (the streaming core)."""
    total = torch.zeros((), dtype=_F64, device=class_weight.device)
    for j in range(class_weight.shape[0]):
        w = class_weight[j]
        if float(w) > 0.0:
            total = total + w / n * _half_rate(d, w, eps, class_gram[j])
    return total


def _check_samples(x: Any, chunk_size: int) -> Tensor:
    check_positive_int(chunk_size, name="chunk_size")
    return check_matrix(x, name="x", min_samples=1)


def coding_rate(x: Any, *, eps: float = _MCR2_EPS, chunk_size: int = CHUNK_SIZE) -> Tensor:
    """Coding rate R(Z, ε) = ½ logdet(I + d / (m ε²) · Zᵀ Z) of features ``x`` (Yu et al. 2020).

    Samples are ROWS of ``x`` (m × d). ``eps`` is the distortion ε, NOT ε² (PyPI ``mcr2``
    agrees; the original MCR² code takes ε²): see the module notes. ``x`` is not centered.
    In nats, ≥ 0, 0 only for Z = 0; for isotropic unit-norm features spanning an
    r-dimensional subspace (Zᵀ Z / m = P_r / r), R = (r/2) log(1 + d / (r ε²)). Invariant to
    orthogonal transforms of the features and to sample order.

    Args:
        x: (m, d) features, m ≥ 1.
        eps: the distortion ε > 0 (default sqrt(0.5): MCR² uses ε² = 0.5);
            an ε so small that d / (m ε²) · ZᵀZ overflows float64 (below about 1e-154 for
            unit-scale features) is refused with :class:`NumericRangeError`.
        chunk_size: rows (or features) per block of the Gram products.

    Returns:
        A 0-dim float64 tensor on ``x``'s device.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g, dtype=torch.float64)
        >>> x = x / x.norm(dim=1, keepdim=True)
        >>> from subspaces.geometry import coding_rate
        >>> round(float(coding_rate(x, eps=0.5)), 3)
        6.24
    """
    e = _check_eps(eps)
    t = _check_samples(x, chunk_size)
    count = torch.tensor(float(t.shape[0]), dtype=_F64, device=t.device)
    return _rate_of_rows(t, count, e, chunk_size)


def _class_rate(t: Tensor, member: _Membership, eps: float, chunk_size: int) -> Tensor:
    m = t.shape[0]
    total = torch.zeros((), dtype=_F64, device=t.device)
    for j in _classes(member):
        rows, weight = _class_rows(t, member, j)
        if float(weight) > 0.0:
            total = total + weight / m * _rate_of_rows(rows, weight, eps, chunk_size)
    return total


def class_coding_rate(
    x: Any, labels: Any, *, eps: float = _MCR2_EPS, chunk_size: int = CHUNK_SIZE
) -> Tensor:
    """Class-conditional coding rate R_c(Z, ε | Π) of features ``x`` (Yu et al. 2020).

    R_c = Σ_j tr(Π_j) / (2m) · logdet(I + d / (tr(Π_j) ε²) · Zᵀ Π_j Z), Π_j = diag of column j
    of the membership matrix. ``labels`` is either hard labels (m,) of non-negative integers
    (one-hot Π; classes 0..max, empty ones contribute 0) or a soft membership matrix (m, k)
    of probabilities whose rows sum to 1 (within sqrt(eps) of its dtype). ``eps`` is ε, not
    ε² (module notes); ``x`` is not centered. In nats, 0 ≤ R_c ≤ R(Z, ε). Invariant to
    relabeling the classes, orthogonal transforms of the features and sample order.

    Args:
        x: (m, d) features, samples as rows, m ≥ 1.
        labels: (m,) class indices or (m, k) membership matrix.
        eps: the distortion ε > 0 (default sqrt(0.5), i.e. ε² = 0.5 as in MCR²).
        chunk_size: rows (or features) per block of the Gram products.

    Returns:
        A 0-dim float64 tensor on ``x``'s device.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g, dtype=torch.float64)
        >>> x = x / x.norm(dim=1, keepdim=True)
        >>> labels = torch.arange(50) % 2
        >>> from subspaces.geometry import class_coding_rate
        >>> round(float(class_coding_rate(x, labels, eps=0.5)), 3)
        6.116
    """
    e = _check_eps(eps)
    t = _check_samples(x, chunk_size)
    return _class_rate(t, _membership(labels, t), e, chunk_size)


def coding_rate_reduction(
    x: Any, labels: Any, *, eps: float = _MCR2_EPS, chunk_size: int = CHUNK_SIZE
) -> RateReduction:
    """Rate reduction ΔR(Z, ε | Π) = R(Z, ε) - R_c(Z, ε | Π), the MCR² objective (Yu et al. 2020).

    See :func:`coding_rate` and :func:`class_coding_rate` for the two terms, the ``labels``
    formats (hard labels or a soft membership matrix) and the ε (not ε²) convention.
    ΔR ≥ 0; it is large when classes span mutually orthogonal subspaces that are each
    low-dimensional and together diverse. Same invariances as R_c.

    Returns:
        A :class:`RateReduction` with ``rate``, ``class_rate`` and ``reduction``.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g, dtype=torch.float64)
        >>> x = x / x.norm(dim=1, keepdim=True)
        >>> labels = torch.arange(50) % 2
        >>> from subspaces.geometry import coding_rate_reduction
        >>> rr = coding_rate_reduction(x, labels, eps=0.5)
        >>> [round(float(v), 3) for v in (rr.rate, rr.class_rate, rr.reduction)]
        [6.24, 6.116, 0.124]
    """
    e = _check_eps(eps)
    t = _check_samples(x, chunk_size)
    member = _membership(labels, t)
    count = torch.tensor(float(t.shape[0]), dtype=_F64, device=t.device)
    rate = _rate_of_rows(t, count, e, chunk_size)
    class_rate = _class_rate(t, member, e, chunk_size)
    return RateReduction(rate=rate, class_rate=class_rate, reduction=rate - class_rate)


# ---------------------------------------------------------------------------------------
# Streaming


def _check_width(gram: Tensor, d: int) -> None:
    """Raise :class:`ShapeError` unless a batch of ``d`` features fits the Gram so far."""
    if gram.numel() and d != gram.shape[0]:
        raise ShapeError(
            f"this batch has {d} features but earlier batches had {gram.shape[0]}; "
            "every batch must come from the same layer."
        )


def _samples_seen(metric: Metric) -> Tensor:
    """A streaming metric's sample count ``n``; raise when it has seen none."""
    n = cast(Tensor, metric.n)
    if float(n) < 1:
        raise TooFewSamplesError(
            f"{type(metric).__name__} has seen 0 samples but needs at least 1; call "
            "update() with data before compute()."
        )
    return n


class CodingRate(StreamingMetric):
    """Streaming coding rate R(Z, ε): ``update(x)`` per batch, ``compute()`` at the end.

    Accumulates m and Zᵀ Z (d × d, float64; states summed across ``torch.distributed``
    ranks, each of which must have seen a batch before ``compute()``). Equals
    :func:`coding_rate` of the concatenated batches whatever the split. ``eps`` is ε, not ε².

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g, dtype=torch.float64)
        >>> x = x / x.norm(dim=1, keepdim=True)
        >>> from subspaces.geometry import CodingRate, coding_rate
        >>> metric = CodingRate(eps=0.5)
        >>> metric.update(x[:20])
        >>> metric.update(x[20:])
        >>> round(float(metric.compute()), 3) == round(float(coding_rate(x, eps=0.5)), 3)
        True
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better: bool | None = None

    def __init__(
        self, *, eps: float = _MCR2_EPS, chunk_size: int = CHUNK_SIZE, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.eps = _check_eps(eps)
        self.chunk_size = check_positive_int(chunk_size, name="chunk_size")
        self.add_state("n", default=torch.tensor(0.0, dtype=_F64), dist_reduce_fx="sum")
        self.add_state("gram", default=torch.zeros(0, dtype=_F64), dist_reduce_fx="sum")

    def _state(self, name: str) -> Tensor:
        return cast(Tensor, getattr(self, name))

    def _add_batch(self, t: Tensor) -> None:
        gram = self._state("gram")
        _check_width(gram, t.shape[1])
        batch = _gram(t, self.chunk_size)
        self.gram = batch if gram.numel() == 0 else gram + batch
        self.n = self._state("n") + t.shape[0]

    def update(self, x: Any) -> None:
        """Add a batch of feature rows ``x`` (m, d)."""
        self._add_batch(check_matrix(x, name="x", min_samples=1))

    def compute(self) -> Tensor:
        """R(Z, ε) of every sample seen so far, a 0-dim float64 tensor."""
        n = _samples_seen(self)
        gram = self._state("gram")
        return _half_rate(gram.shape[0], n, self.eps, gram)


class CodingRateReduction(DataclassResultMetric):
    """Streaming R, R_c and ΔR: ``update(x, labels)`` per batch, ``compute()`` at the end.

    ``labels`` per batch: hard labels in 0..num_classes-1 or a membership matrix with
    ``num_classes`` columns (rows summing to 1). Accumulates m, Zᵀ Z, tr(Π_j) and Zᵀ Π_j Z for
    every class: (num_classes + 1) d² float64 numbers, summed across ``torch.distributed``
    ranks (each rank must have seen a batch before ``compute()``). ``compute()`` returns a
    :class:`RateReduction` equal to :func:`coding_rate_reduction` on the concatenated
    batches whatever the split. ``eps`` is ε, not ε².

    Args:
        num_classes: the number of classes k, honored as given (a batch may lack classes);
            refused when its k d² states exceed the device's memory.
        eps: the distortion ε > 0 (default sqrt(0.5), i.e. ε² = 0.5 as in MCR²).
        chunk_size: rows per block of the Gram products.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 8, generator=g, dtype=torch.float64)
        >>> x = x / x.norm(dim=1, keepdim=True)
        >>> labels = torch.arange(50) % 2
        >>> from subspaces.geometry import CodingRateReduction
        >>> metric = CodingRateReduction(num_classes=2, eps=0.5)
        >>> metric.update(x[:20], labels[:20])
        >>> metric.update(x[20:], labels[20:])
        >>> round(float(metric.compute().reduction), 3)
        0.124
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better: bool | None = None

    def __init__(
        self,
        *,
        num_classes: int,
        eps: float = _MCR2_EPS,
        chunk_size: int = CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = check_positive_int(num_classes, name="num_classes")
        self.eps = _check_eps(eps)
        self.chunk_size = check_positive_int(chunk_size, name="chunk_size")
        check_fits_in_memory(
            self.num_classes,
            dtype=_F64,
            device="cpu",
            name="num_classes",
            value=self.num_classes,
            what="the per-class weights",
        )
        self.add_state("n", default=torch.tensor(0.0, dtype=_F64), dist_reduce_fx="sum")
        self.add_state("gram", default=torch.zeros(0, dtype=_F64), dist_reduce_fx="sum")
        self.add_state(
            "class_weight",
            default=torch.zeros(self.num_classes, dtype=_F64),
            dist_reduce_fx="sum",
        )
        self.add_state("class_gram", default=torch.zeros(0, dtype=_F64), dist_reduce_fx="sum")

    def _state(self, name: str) -> Tensor:
        return cast(Tensor, getattr(self, name))

    def update(self, x: Any, labels: Any) -> None:
        """Add a batch: features ``x`` (m, d) and their ``labels`` (m,) or membership (m, k)."""
        t = check_matrix(x, name="x", min_samples=1)
        member = _membership(labels, t, num_classes=self.num_classes)
        gram = self._state("gram")
        d = t.shape[1]
        _check_width(gram, d)
        batch = _gram(t, self.chunk_size)
        class_gram = self._state("class_gram")
        if class_gram.numel() == 0:
            check_fits_in_memory(
                self.num_classes * d * d,
                dtype=_F64,
                device=t.device,
                name="num_classes",
                value=self.num_classes,
                what=f"the per-class Gram matrices (C, d, d) = ({self.num_classes}, {d}, {d})",
            )
            class_gram = torch.zeros(self.num_classes, d, d, dtype=_F64, device=t.device)
        class_weight = self._state("class_weight").to(t.device)
        for j in _classes(member):
            rows, weight = _class_rows(t, member, j)
            if rows.shape[0]:
                class_gram[j] += _gram(rows, self.chunk_size)
                class_weight[j] += weight
        self.gram = batch if gram.numel() == 0 else gram + batch
        self.class_gram = class_gram
        self.class_weight = class_weight
        self.n = self._state("n") + t.shape[0]

    def compute(self) -> RateReduction:
        """The :class:`RateReduction` of every sample seen so far."""
        n = _samples_seen(self)
        gram = self._state("gram")
        d = gram.shape[0]
        rate = _half_rate(d, n, self.eps, gram)
        class_rate = _class_rate_from_sums(
            n, d, self._state("class_weight"), self._state("class_gram"), self.eps
        )
        return RateReduction(rate=rate, class_rate=class_rate, reduction=rate - class_rate)

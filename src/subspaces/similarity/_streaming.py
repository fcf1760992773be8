"""The streaming base class of every similarity measure built on centered moments."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    ShapeError,
    TooFewSamplesError,
    check_float_dtype,
    check_paired,
    check_positive_int,
)
from subspaces.linalg.decomp import scatter_rtol
from subspaces.linalg.moments import (
    DEFAULT_CHUNK_SIZE,
    CenteredMoments,
    MomentsMetric,
    MomentSums,
    accumulate_moments,
    center_moments,
    check_moments,
)

__all__ = ["PairedMomentsMetric"]

_F64 = torch.float64


class PairedMomentsMetric(MomentsMetric):
    """Accumulates the float64 centered moments of paired batches ``(x, y)``.

    Subclasses implement :meth:`compute` from :meth:`moments`. The states are moment sums
    (:class:`~subspaces.linalg.moments.MomentsMetric`): they sync across
    ``torch.distributed`` ranks by summation about a common shift; each rank must have
    seen at least one batch before ``compute()`` (states are sized by the first batch).

    Args:
        self_terms: accumulate ``X^T X`` and ``Y^T Y`` (all measures except cross-only ones).
        row_norms: accumulate the row-norm sums that debiased estimators need.
        chunk_size: rows per float32 product inside one update.
        min_samples: the fewest samples :meth:`compute` accepts.
    """

    is_differentiable = False
    higher_is_better: bool | None = None

    def __init__(
        self,
        *,
        self_terms: bool = True,
        row_norms: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        min_samples: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.self_terms = self_terms
        self.row_norms = row_norms
        self.chunk_size = check_positive_int(chunk_size, name="chunk_size")
        self.min_samples = min_samples

    def update(self, x: Any, y: Any) -> None:
        """Add a batch of paired rows: ``x`` (m, d1) and ``y`` (m, d2)."""
        tx, ty = check_paired(x, y, min_samples=1)
        sum_x, sum_y = self._state("sum_x"), self._state("sum_y")
        if sum_x.numel() and (tx.shape[1], ty.shape[1]) != (sum_x.shape[0], sum_y.shape[0]):
            raise ShapeError(
                f"this batch has {tx.shape[1]} and {ty.shape[1]} features but earlier batches had "
                f"{sum_x.shape[0]} and {sum_y.shape[0]}; every batch must come from the "
                "same two layers."
            )
        accumulate_moments(
            self,
            tx,
            ty,
            self_terms=self.self_terms,
            row_norms=self.row_norms,
            chunk_size=self.chunk_size,
        )

    def moments(self) -> CenteredMoments:
        """The centered moments of everything seen so far (after sync under DDP)."""
        n = self._state("n")
        seen = 0 if n.numel() == 0 else round(float(n))
        if seen < self.min_samples:
            raise TooFewSamplesError(
                f"{type(self).__name__} has seen {seen} samples but needs at least "
                f"{self.min_samples}; call update() with more data before compute()."
            )
        return center_moments(self)

    def compute(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------------------------------
# Helpers of the measures built on float64 moments (CCA, regression, shape metrics)


def _require_moments(m: CenteredMoments, measure: str) -> tuple[Tensor, Tensor, Tensor]:
    check_moments(m, what=measure, needs=("cxx", "cyy", "cxy"))
    assert m.cxx is not None and m.cyy is not None and m.cxy is not None
    return m.cxx, m.cyy, m.cxy


def _check_variance(c: Tensor, mean: Tensor | None, n: int, *, name: str, measure: str) -> Tensor:
    """Raise DegenerateInputError if the scatter ``c`` is zero (to float64 rounding).

    The centered scatter is formed as ``Σ x xᵀ - n μ μᵀ``; a constant representation leaves
    rounding of order ``eps64 · n · |μ|²``, which is treated as zero. Returns ``tr(c)``.
    """
    total = torch.trace(c)
    mean_sq = float(mean @ mean) if mean is not None else 0.0
    floor = 8.0 * c.shape[0] * torch.finfo(_F64).eps * n * mean_sq
    if float(total) <= floor:
        raise DegenerateInputError(
            f"{name} has zero variance (every sample is the same point), so {measure} is "
            f"undefined; check that {name} is not a constant or dead layer."
        )
    return total


def _side_rtol(rtol: float | None, d: int, input_dtype: torch.dtype) -> float:
    check_float_dtype(input_dtype, name="input_dtype", optional=False)
    return rtol if rtol is not None else scatter_rtol(d, input_dtype)


def _input_dtype(x: Tensor, y: Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, y.dtype)


def _paired_moments64(x: Tensor, y: Tensor, *, chunk_size: int) -> CenteredMoments:
    """Centered moments with float64 products: each chunk is upcast, so memory stays O(chunk·d).

    Whitening and pseudo-inverses amplify rounding by the condition number of ``Cxx``;
    with float32 products CCA on float32 data errs by ~1e-8 · cond(Xc)² (1e-4 at
    cond(Xc) = 100), with float64 products only float64 rounding remains.
    """
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    state = MomentSums()
    for start in range(0, x.shape[0], chunk_size):
        xb = x[start : start + chunk_size].to(_F64)
        yb = y[start : start + chunk_size].to(_F64)
        accumulate_moments(state, xb, yb, chunk_size=chunk_size)
    return center_moments(state)


class _Float64MomentsMetric(PairedMomentsMetric):
    """A :class:`PairedMomentsMetric` with float64 products that tracks its input precision.

    Each batch is upcast to float64 chunk by chunk before accumulation (as the functions
    do). The state ``input_eps`` (the largest machine epsilon of the batches' dtypes,
    reduced by ``max`` across ranks) sets the default rank tolerance as the functions do.
    """

    def __init__(self, *, chunk_size: int = DEFAULT_CHUNK_SIZE, **kwargs: Any) -> None:
        super().__init__(chunk_size=chunk_size, **kwargs)
        self.add_state("input_eps", default=torch.tensor(0.0, dtype=_F64), dist_reduce_fx="max")

    def update(self, x: Any, y: Any) -> None:
        """Add a batch of paired rows: ``x`` (m, d1) and ``y`` (m, d2)."""
        tx, ty = check_paired(x, y, min_samples=1)
        for start in range(0, tx.shape[0], self.chunk_size):
            stop = start + self.chunk_size
            super().update(tx[start:stop].to(_F64), ty[start:stop].to(_F64))
        current = self._state("input_eps")
        eps = torch.finfo(_input_dtype(tx, ty)).eps
        self.input_eps = torch.clamp(current, min=eps)

    def input_dtype(self) -> torch.dtype:
        """The least precise dtype seen so far (float32 or float64)."""
        eps = float(self._state("input_eps"))
        return torch.float64 if 0.0 < eps <= torch.finfo(_F64).eps else torch.float32

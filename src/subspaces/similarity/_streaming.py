"""The streaming base class of every similarity measure built on centred moments."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor
from torchmetrics import Metric

from subspaces._checks import ShapeError, TooFewSamplesError, check_paired, check_positive_int
from subspaces.linalg.moments import (
    DEFAULT_CHUNK_SIZE,
    MOMENT_STATES,
    CentredMoments,
    accumulate_moments,
    centre_moments,
)

__all__ = ["PairedMomentsMetric"]


class PairedMomentsMetric(Metric):
    """Accumulates the float64 centred moments of paired batches ``(x, y)``.

    Subclasses implement :meth:`compute` from :meth:`moments`. Every state is a sum, so the
    metric syncs across ``torch.distributed`` ranks by summation; each rank must have seen
    at least one batch before ``compute()`` (states are sized by the first batch).

    Args:
        self_terms: accumulate ``X^T X`` and ``Y^T Y`` (all measures except cross-only ones).
        row_norms: accumulate the row-norm sums that debiased estimators need.
        chunk_size: rows per float32 product inside one update.
        min_samples: the fewest samples :meth:`compute` accepts.
    """

    full_state_update = False
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
        for name in MOMENT_STATES:
            self.add_state(name, default=torch.zeros(0, dtype=torch.float64), dist_reduce_fx="sum")

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

    def moments(self) -> CentredMoments:
        """The centred moments of everything seen so far (after sync under DDP)."""
        n = self._state("n")
        seen = 0 if n.numel() == 0 else round(float(n))
        if seen < self.min_samples:
            raise TooFewSamplesError(
                f"{type(self).__name__} has seen {seen} samples but needs at least "
                f"{self.min_samples}; call update() with more data before compute()."
            )
        return centre_moments(self)

    def _state(self, name: str) -> Tensor:
        return cast(Tensor, getattr(self, name))

    def compute(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

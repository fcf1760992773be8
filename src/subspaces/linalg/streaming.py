"""The bases of the streaming classes (``torchmetrics.Metric``) of every family (floor 1).

* :class:`PairedMomentsMetric`: accumulates the float64 centered moments of paired batches
  ``(x, y)`` (CKA, CCA, shape metrics, regression, neuron matching);
  :class:`Float64MomentsMetric` does so with float64 products and tracks the least precise
  input dtype for the default rank tolerance.
* :class:`DataclassResultMetric`: a ``Metric`` whose ``compute()`` returns a frozen
  dataclass (a :class:`~subspaces._base.Result`), which torchmetrics' compute wrapper
  would otherwise try to rebuild field by field.

Their states are sums: they merge (``merge_state``) and sync across ``torch.distributed``
ranks by addition, so ``compute()`` equals the function on the concatenated batches.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from subspaces._checks import (
    ShapeError,
    TooFewSamplesError,
    check_paired,
    check_positive_int,
)
from subspaces.linalg.constants import CHUNK_SIZE
from subspaces.linalg.metric import StreamingMetric
from subspaces.linalg.moments import (
    CenteredMoments,
    MomentsMetric,
    accumulate_moments,
    center_moments,
)

__all__ = ["DataclassResultMetric", "Float64MomentsMetric", "PairedMomentsMetric"]

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

    Examples:
        >>> import torch
        >>> class Covariance(PairedMomentsMetric):
        ...     def compute(self):
        ...         m = self.moments()
        ...         return m.cxy / (m.n - 1)
        >>> metric, g = Covariance(), torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 1, generator=g)
        >>> metric.update(x[:60], 3 * x[:60])
        >>> metric.update(x[60:], 3 * x[60:])
        >>> round(float(metric.compute() / x.var()), 4)
        3.0
    """

    is_differentiable = False
    higher_is_better: bool | None = None

    def __init__(
        self,
        *,
        self_terms: bool = True,
        row_norms: bool = False,
        chunk_size: int = CHUNK_SIZE,
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

    def compute(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class Float64MomentsMetric(PairedMomentsMetric):
    """A :class:`PairedMomentsMetric` with float64 products that tracks its input precision.

    Each batch is upcast to float64 chunk by chunk before accumulation (as
    :func:`~subspaces.linalg.moments.paired_moments64` does). The state ``input_eps`` (the
    largest machine epsilon of the batches' dtypes, reduced by ``max`` across ranks) gives
    :meth:`input_dtype`, from which the measures take their default rank tolerance.

    Examples:
        >>> import torch
        >>> class Moments(Float64MomentsMetric):
        ...     def compute(self):
        ...         return self.moments().n
        >>> metric = Moments()
        >>> metric.update(torch.zeros(3, 2), torch.ones(3, 1))
        >>> metric.input_dtype(), metric.compute()
        (torch.float32, 3)
    """

    def __init__(self, *, chunk_size: int = CHUNK_SIZE, **kwargs: Any) -> None:
        super().__init__(chunk_size=chunk_size, **kwargs)
        self.add_state("input_eps", default=torch.tensor(0.0, dtype=_F64), dist_reduce_fx="max")

    def update(self, x: Any, y: Any) -> None:
        """Add a batch of paired rows: ``x`` (m, d1) and ``y`` (m, d2)."""
        tx, ty = check_paired(x, y, min_samples=1)
        for start in range(0, tx.shape[0], self.chunk_size):
            stop = start + self.chunk_size
            super().update(tx[start:stop].to(_F64), ty[start:stop].to(_F64))
        current = self._state("input_eps")
        eps = torch.finfo(torch.promote_types(tx.dtype, ty.dtype)).eps
        self.input_eps = torch.clamp(current, min=eps)

    def input_dtype(self) -> torch.dtype:
        """The least precise dtype seen so far (float32 or float64)."""
        eps = float(self._state("input_eps"))
        return torch.float64 if 0.0 < eps <= torch.finfo(_F64).eps else torch.float32


class _Boxed:
    """An opaque holder: torchmetrics leaves objects that are not collections untouched."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class DataclassResultMetric(StreamingMetric):
    """A ``Metric`` whose ``compute()`` returns a frozen dataclass.

    torchmetrics' compute wrapper squeezes and clones every tensor inside the result,
    rebuilding dataclasses field by field, which a frozen dataclass refuses (and which would
    squeeze a ``(1,)`` spectrum to 0-dim). Here the result travels through the wrapper
    boxed, so synchronization across ranks and caching work as usual and the dataclass comes
    back as built (compute it from fresh tensors, never the states themselves). The cache is
    cleared by ``update``, ``reset`` and ``merge_state``; a subclass with another method that
    changes the states clears it with :meth:`_clear_computed`. Put this base first among the
    bases.

    Examples:
        >>> import dataclasses, torch
        >>> @dataclasses.dataclass(frozen=True)
        ... class Total:
        ...     value: torch.Tensor
        >>> class Summed(DataclassResultMetric):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.add_state("total", torch.zeros(1, dtype=torch.float64), "sum")
        ...     def update(self, x):
        ...         self.total += x.sum()
        ...     def compute(self):
        ...         return Total(self.total.clone())
        >>> metric = Summed()
        >>> metric.update(torch.ones(3))
        >>> metric.compute()
        Total(value=tensor([3.], dtype=torch.float64))
    """

    def _wrap_compute(self, compute: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(compute)
        def boxed(*args: Any, **kwargs: Any) -> _Boxed:
            return _Boxed(compute(*args, **kwargs))

        wrapped = super()._wrap_compute(boxed)

        @functools.wraps(compute)
        def unboxed(*args: Any, **kwargs: Any) -> Any:
            return wrapped(*args, **kwargs).value

        return unboxed

    def _clear_computed(self) -> None:
        """Forget the cached ``compute()`` result (after a change of the states)."""
        self._computed = None

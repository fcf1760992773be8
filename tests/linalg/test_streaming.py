"""The bases of the streaming classes: paired moments, float64 moments, dataclass results."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from subspaces import ShapeError, TooFewSamplesError
from subspaces.linalg.moments import paired_moments, paired_moments64
from subspaces.linalg.streaming import (
    DataclassResultMetric,
    Float64MomentsMetric,
    PairedMomentsMetric,
)

F64 = torch.float64


class _Cross(PairedMomentsMetric):
    def compute(self) -> torch.Tensor:
        m = self.moments()
        assert m.cxy is not None
        return m.cxy


class _Cross64(Float64MomentsMetric):
    def compute(self) -> torch.Tensor:
        m = self.moments()
        assert m.cxy is not None
        return m.cxy


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(50, 4, generator=g), torch.randn(50, 3, generator=g)


@pytest.mark.parametrize("cls", [_Cross, _Cross64])
def test_batches_equal_the_one_shot_moments(cls: type) -> None:
    x, y = _data()
    metric = cls(chunk_size=7)
    for start in range(0, 50, 13):
        metric.update(x[start : start + 13], y[start : start + 13])
    expected = paired_moments(x.double(), y.double()).cxy  # exact products
    assert expected is not None
    torch.testing.assert_close(metric.compute(), expected, rtol=1e-5, atol=1e-5)


def test_float64_metric_equals_paired_moments64_and_tracks_the_dtype() -> None:
    x, y = _data(1)
    metric = _Cross64()
    metric.update(x, y)
    assert metric.input_dtype() == torch.float32
    expected = paired_moments64(x, y).cxy
    assert expected is not None
    torch.testing.assert_close(metric.compute(), expected, rtol=0, atol=0)
    only64 = _Cross64()
    only64.update(x.double(), y.double())
    assert only64.input_dtype() == F64


def test_too_few_samples_and_width_changes_are_refused() -> None:
    metric = _Cross(min_samples=3)
    metric.update(torch.ones(2, 2), torch.ones(2, 1))
    with pytest.raises(TooFewSamplesError, match="has seen 2 samples but needs at least 3"):
        metric.compute()
    with pytest.raises(ShapeError, match="earlier batches had 2 and 1"):
        metric.update(torch.ones(2, 3), torch.ones(2, 1))


@dataclasses.dataclass(frozen=True)
class _Total:
    value: torch.Tensor
    count: int


class _Summed(DataclassResultMetric):
    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.zeros(1, dtype=F64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=F64), dist_reduce_fx="sum")

    def update(self, x: torch.Tensor) -> None:
        self.total += x.sum()
        self.count += x.numel()

    def add_without_update(self, value: float) -> None:
        self.total += value
        self._clear_computed()

    def compute(self) -> _Total:
        return _Total(self.total.clone(), round(float(self.count)))


def test_frozen_dataclass_results_come_back_as_built() -> None:
    metric = _Summed()
    metric.update(torch.ones(3))
    result = metric.compute()
    assert isinstance(result, _Total)
    assert result.value.shape == (1,)  # not squeezed
    assert result.count == 3
    assert metric.compute() is result  # cached until the states change


def test_the_cache_is_cleared_by_update_merge_and_clear_computed() -> None:
    metric = _Summed()
    metric.update(torch.ones(2))
    assert metric.compute().count == 2
    metric.update(torch.ones(2))
    assert metric.compute().count == 4
    other = _Summed()
    other.update(torch.ones(5))
    metric.merge_state(other)
    assert metric.compute().count == 9
    metric.add_without_update(10.0)
    assert float(metric.compute().value) == 19.0
    metric.reset()
    metric.update(torch.ones(1))
    assert metric.compute().count == 1

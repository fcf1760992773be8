"""Linear CKA: closed forms, streaming, forward, degenerate input."""

from __future__ import annotations

import pytest
import torch

from subspaces._checks import DegenerateInputError, TooFewSamplesError
from subspaces.similarity import LinearCKA, linear_cka


def test_independent_features_closed_form() -> None:
    # x = [a, b], y = [a]: with a, b orthogonal, centered and of equal norm, CKA = 1/sqrt(2).
    a = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    b = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    x, y = torch.stack([a, b], 1), a[:, None]
    torch.testing.assert_close(linear_cka(x, y), torch.tensor(2**-0.5, dtype=torch.float64))


@pytest.mark.parametrize("debiased", [False, True], ids=["biased", "debiased"])
def test_forward_returns_batch_value_and_accumulates(debiased: bool) -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 4, generator=g), torch.randn(60, 3, generator=g)
    metric = LinearCKA(debiased=debiased)
    first = metric(x[:30], y[:30])
    metric(x[30:], y[30:])
    torch.testing.assert_close(first, linear_cka(x[:30], y[:30], debiased=debiased))
    torch.testing.assert_close(metric.compute(), linear_cka(x, y, debiased=debiased))


def test_reset_forgets_everything() -> None:
    x, y = torch.randn(20, 3), torch.randn(20, 2)
    metric = LinearCKA()
    metric.update(x * 5 + 1, y)
    metric.reset()
    metric.update(x, y)
    torch.testing.assert_close(metric.compute(), linear_cka(x, y))


def test_constant_layer_far_from_origin_is_degenerate() -> None:
    # rounding of the raw sums must not pass for variance
    with pytest.raises(DegenerateInputError, match="x has zero variance"):
        linear_cka(torch.full((100, 3), 5.3), torch.randn(100, 2))


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
def test_compute_before_update() -> None:
    with pytest.raises(
        TooFewSamplesError, match="LinearCKA has seen 0 samples but needs at least 2"
    ):
        LinearCKA().compute()


def test_debiased_needs_four_samples() -> None:
    with pytest.raises(TooFewSamplesError, match="at least 4"):
        linear_cka(torch.randn(3, 2), torch.randn(3, 2), debiased=True)


def test_batches_from_different_layers_are_refused() -> None:
    metric = LinearCKA()
    metric.update(torch.randn(5, 3), torch.randn(5, 2))
    with pytest.raises(ValueError, match="every batch must come from the same two layers"):
        metric.update(torch.randn(5, 4), torch.randn(5, 2))

"""Unit correlations (Convergent Learning): between, within, streaming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.align import (
    UnitCorrelation,
    joint_correlation,
    match_units,
    unit_correlation,
    unit_correlation_from_moments,
)
from subspaces.linalg.moments import MomentSums, accumulate_moments, center_moments
from tests.align._units import F64, mixed


def test_unit_correlation_equals_numpy_corrcoef() -> None:
    x, y = mixed(50, 4, 0), mixed(50, 3, 1)
    expected = np.corrcoef(x.numpy(), y.numpy(), rowvar=False)[:4, 4:]
    # float64 input and float64 moments: only rounding differs
    np.testing.assert_allclose(unit_correlation(x, y).numpy(), expected, atol=1e-12)


def test_within_correlation_equals_corrcoef_with_unit_diagonal() -> None:
    x = mixed(40, 5, 2)
    within = unit_correlation(x)
    np.testing.assert_allclose(within.numpy(), np.corrcoef(x.numpy(), rowvar=False), atol=1e-12)
    assert bool((torch.diagonal(within) == 1).all())


def test_joint_correlation_blocks_are_the_three_matrices() -> None:
    x, y = mixed(40, 4, 3), mixed(40, 3, 4)
    joint = joint_correlation(x, y)
    torch.testing.assert_close(joint.cross, unit_correlation(x, y))
    torch.testing.assert_close(joint.within_x, unit_correlation(x))
    torch.testing.assert_close(joint.within_y, unit_correlation(y))


def test_float32_input_gives_float64_correlation_close_to_float64_path() -> None:
    x, y = mixed(400, 6, 5), mixed(400, 4, 6)
    r32 = unit_correlation(x.float(), y.float())
    assert r32.dtype == F64
    # the float32 rounding of the inputs and products: ~1e-7 relative
    torch.testing.assert_close(r32, unit_correlation(x, y), atol=1e-5, rtol=0)


@pytest.mark.parametrize("splits", [(10, 30, 60), (1, 99), (50, 50)], ids=str)
def test_streaming_equals_one_shot(splits: tuple[int, ...]) -> None:
    x, y = mixed(100, 4, 7) * 10 + 3, mixed(100, 3, 8)
    metric = UnitCorrelation()
    for xb, yb in zip(x.split(list(splits)), y.split(list(splits)), strict=True):
        metric.update(xb, yb)
    torch.testing.assert_close(metric.compute(), unit_correlation(x, y), atol=1e-12, rtol=0)
    torch.testing.assert_close(metric.joint().within_y, unit_correlation(y), atol=1e-12, rtol=0)


def test_constant_unit_of_x_raises_with_its_index() -> None:
    x = mixed(30, 4, 9)
    x[:, 2] = 5.3  # constant far from the origin: rounding must not pass for variance
    with pytest.raises(DegenerateInputError, match=r"x has 1 constant unit.*indices \[2\]"):
        unit_correlation(x, mixed(30, 3, 10))


def test_constant_unit_of_y_raises() -> None:
    y = mixed(30, 3, 11)
    y[:, 0] = 0.0
    with pytest.raises(DegenerateInputError, match=r"y has 1 constant unit.*constant='zero'"):
        match_units(mixed(30, 3, 12), y)


def test_constant_zero_policy_gives_zero_correlation() -> None:
    x = mixed(30, 3, 13)
    x[:, 1] = -2.0
    joint = joint_correlation(x, mixed(30, 2, 14), constant="zero")
    assert bool((joint.cross[1] == 0).all())
    assert joint.within_x[1, 1] == 1 and bool((joint.within_x[1, [0, 2]] == 0).all())
    assert joint.constant_x.tolist() == [False, True, False]


def test_different_sample_counts_are_refused() -> None:
    with pytest.raises(ShapeError, match=r"x has 20 rows.*y has 19"):
        unit_correlation(torch.randn(20, 3), torch.randn(19, 3))


def test_one_sample_is_too_few() -> None:
    with pytest.raises(TooFewSamplesError, match="x has 1 samples"):
        match_units(torch.randn(1, 3), torch.randn(1, 3))


def test_unknown_constant_policy_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="constant must be one of 'raise', 'zero'"):
        unit_correlation(torch.randn(5, 2), torch.randn(5, 2), constant="drop")  # type: ignore[arg-type]


def test_correlation_from_moments_without_cross_terms_raises() -> None:
    state = MomentSums()
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    accumulate_moments(state, x, x + 1.0, cross=False)
    with pytest.raises(InvalidOptionError, match="need the self and cross moments"):
        unit_correlation_from_moments(center_moments(state))

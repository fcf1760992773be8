"""MLE (Levina-Bickel, MacKay-Ghahramani): local and global estimates, the class."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
)
from subspaces.geometry.intrinsic_dimension import (
    MLE,
    mle_id,
)

from ._helpers import (
    _brute_distances,
    _close,
    ball,
)


def test_mle_pointwise_is_levina_bickel() -> None:
    x, k = ball(), 7
    t = _brute_distances(x)[:, :k]
    expected = (k - 1) / torch.log(t[:, -1:] / t[:, :-1]).sum(dim=1)
    _close(mle_id(x, k=k, pointwise=True), expected)


@pytest.mark.parametrize(
    ("average", "combine"),
    [
        ("inverse", lambda m: 1.0 / (1.0 / m).mean()),
        ("mean", lambda m: m.mean()),
        ("median", lambda m: m.median() if m.numel() % 2 else m.quantile(0.5)),
    ],
    ids=["inverse", "mean", "median"],
)
def test_mle_global_combines_the_pointwise_estimates(
    average: str, combine: Callable[[Tensor], Tensor]
) -> None:
    x = ball(n=301)
    local = mle_id(x, k=10, pointwise=True)
    _close(mle_id(x, k=10, average=average), combine(local))  # type: ignore[arg-type]


def test_mle_unbiased_uses_k_minus_two() -> None:
    x, k = ball(), 9
    _close(
        mle_id(x, k=k, pointwise=True, unbiased=True),
        mle_id(x, k=k, pointwise=True) * (k - 2) / (k - 1),
    )


def test_mle_inverse_average_is_at_most_the_mean() -> None:
    x = ball(seed=3)
    assert float(mle_id(x, average="inverse")) <= float(mle_id(x, average="mean"))


def test_mle_equidistant_neighbors_raise_for_pointwise() -> None:
    grid = torch.cartesian_prod(torch.arange(6.0), torch.arange(6.0)).double()
    with pytest.raises(DegenerateInputError, match="local estimate is infinite"):
        mle_id(grid, k=2, pointwise=True)


def test_non_integer_k_is_a_type_error() -> None:
    with pytest.raises(InputTypeError, match=r"k must be an integer, got float"):
        mle_id(ball(), k=2.5)  # type: ignore[arg-type]


def test_mle_class_refuses_infinite_local_estimates() -> None:
    grid = torch.cartesian_prod(torch.arange(6.0), torch.arange(6.0)).double()
    # k = 4: interior points have 4 equidistant neighbors (m = inf), the border ones do not
    assert math.isfinite(float(mle_id(grid, k=4)))  # global: those points add 1/m = 0
    with pytest.raises(DegenerateInputError, match="local estimate is infinite"):
        MLE(k=4).fit(grid)
    with pytest.raises(DegenerateInputError, match="for every point all k=2"):
        mle_id(grid, k=2)

"""Data and comparisons shared by the intrinsic-dimension tests."""

from __future__ import annotations

import torch
from hypothesis import settings
from hypothesis import strategies as st
from torch import Tensor

from subspaces.data.manifolds import (
    hyperball,
    random_isometric_embedding,
)

SEEDS = st.integers(0, 2**31 - 1)
FAST = settings(max_examples=25, deadline=None)
# float64 data: reordering sums or rotating points changes estimates by rounding only
ROUNDING = 1e-9


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ball(n: int = 300, d: int = 4, seed: int = 0, ambient: int | None = None) -> Tensor:
    x = hyperball(n, d, seed=_gen(seed), dtype=torch.float64)
    if ambient is not None:
        x = random_isometric_embedding(x, ambient, seed=_gen(seed + 1))
    return x


def _brute_distances(x: Tensor) -> Tensor:
    """Sorted distances to the other points, full float64 matrix (small n only)."""
    x = x.double()
    dist = torch.cdist(x, x)
    dist.fill_diagonal_(torch.inf)
    return dist.sort(dim=1).values[:, :-1]


def _close(a: Tensor, b: Tensor | float, rtol: float = ROUNDING) -> None:
    torch.testing.assert_close(
        torch.as_tensor(a, dtype=torch.float64),
        torch.as_tensor(b, dtype=torch.float64),
        rtol=rtol,
        atol=0.0,
    )


# 1,000 points of each manifold: the estimators' spread over seeds is ~3-8% of d here (their
# standard error ~ d / sqrt(n), plus curvature and boundary bias), so 15% of d is the bound.
TRUTH_TOL = 0.15


def _rotation(d: int, seed: int) -> Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=_gen(seed), dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def _with_duplicates() -> Tensor:
    x = ball(n=200)
    return torch.cat([x, x[:5]])

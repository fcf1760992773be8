"""Data shared by the tests of the unit-level methods (correlation, matching, sparse
prediction, clusters)."""

from __future__ import annotations

import torch

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mixed(n: int, d: int, seed: int, dtype: torch.dtype = F64) -> torch.Tensor:
    """Activations with correlated units (a random mixing of Gaussian sources)."""
    g = gen(seed)
    return (torch.randn(n, d, generator=g) @ torch.randn(d, d, generator=g)).to(dtype)

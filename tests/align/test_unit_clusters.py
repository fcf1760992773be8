"""Many-to-many unit matching: spectral clustering of both networks' units."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    InvalidOptionError,
)
from subspaces.align import (
    spectral_unit_clusters,
)
from tests.align._units import F64, gen, mixed


def _latent(n: int, k: int, seed: int) -> torch.Tensor:
    return torch.randn(n, k, generator=gen(seed), dtype=F64)


def _blocks(
    latent: torch.Tensor, sizes: tuple[int, ...], seed: int, noise: float = 0.5
) -> torch.Tensor:
    """Units in groups, each a noisy copy of one latent (group k copies latent column k)."""
    g, n = gen(seed), latent.shape[0]
    cols = [
        latent[:, [k]].repeat(1, size) + noise * torch.randn(n, size, generator=g, dtype=F64)
        for k, size in enumerate(sizes)
    ]
    return torch.cat(cols, 1)


def test_spectral_clusters_recover_shared_latent_groups() -> None:
    latent = _latent(400, 3, 45)
    x = _blocks(latent, (4, 4, 4), 1)
    y = _blocks(latent, (3, 3, 3), 2, noise=0.6)  # the same latents, other noise
    clusters = spectral_unit_clusters(x, y, n_clusters=3, seed=0)
    assert clusters.labels_x.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert clusters.labels_y.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    assert clusters.affinity.shape == (21, 21)


def test_spectral_absolute_affinity_ignores_sign_flips() -> None:
    latent = _latent(300, 2, 46)
    x, y = _blocks(latent, (3, 3), 1), _blocks(latent, (2, 2), 2, noise=0.4)
    flipped = y * torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=F64)
    a = spectral_unit_clusters(x, y, n_clusters=2, seed=1)
    b = spectral_unit_clusters(x, flipped, n_clusters=2, seed=1)
    assert a.labels_y.tolist() == b.labels_y.tolist() == [0, 0, 1, 1]


def test_spectral_labels_are_reproducible_with_a_seed() -> None:
    x, y = mixed(80, 6, 47), mixed(80, 5, 48)
    a = spectral_unit_clusters(x, y, n_clusters=4, seed=3)
    b = spectral_unit_clusters(x, y, n_clusters=4, seed=3)
    assert torch.equal(a.labels_x, b.labels_x) and torch.equal(a.labels_y, b.labels_y)


def test_spectral_refuses_more_clusters_than_units() -> None:
    with pytest.raises(InvalidOptionError, match=r"n_clusters=6 exceeds the 5 units.*\(3 \+ 2\)"):
        spectral_unit_clusters(torch.randn(20, 3), torch.randn(20, 2), n_clusters=6)


def test_spectral_refuses_zero_clusters() -> None:
    with pytest.raises(InvalidOptionError, match="n_clusters must be at least 1"):
        spectral_unit_clusters(torch.randn(20, 3), torch.randn(20, 2), n_clusters=0)


def test_spectral_refuses_an_unknown_affinity() -> None:
    with pytest.raises(InvalidOptionError, match="affinity must be one of 'absolute', 'positive'"):
        spectral_unit_clusters(
            torch.randn(20, 3),
            torch.randn(20, 2),
            n_clusters=2,
            affinity="signed",  # type: ignore[arg-type]
        )


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), log_scale=st.floats(-3, 3), shift=st.floats(-50, 50))
def test_spectral_is_invariant_to_positive_affine_maps(
    seed: int, log_scale: float, shift: float
) -> None:
    latent = _latent(100, 2, seed)
    x, y = _blocks(latent, (2, 3), seed + 1), _blocks(latent, (3, 2), seed + 2, noise=0.7)
    scale = float(np.exp(log_scale))
    a = spectral_unit_clusters(x, y, n_clusters=2, seed=0)
    b = spectral_unit_clusters(x * scale + shift, y - shift, n_clusters=2, seed=0)
    assert a.labels_x.tolist() == b.labels_x.tolist()
    assert a.labels_y.tolist() == b.labels_y.tolist()

"""ID against scale: each method agrees with its estimator at each scale."""

from __future__ import annotations

import pytest
import torch

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
)
from subspaces.geometry.intrinsic_dimension import (
    ScaleSweep,
    gride,
    id_scale_sweep,
    mle_id,
    twonn,
)

from ._helpers import (
    _brute_distances,
    _close,
    ball,
)

# --- scale sweep ------------------------------------------------------------------------


def test_sweep_mle_matches_mle_at_each_k() -> None:
    x = ball()
    sweep = id_scale_sweep(x, ks=[4, 10, 25], method="mle")
    assert isinstance(sweep, ScaleSweep)
    assert sweep.method == "mle"
    assert sweep.scale.tolist() == [4, 10, 25]
    for i, k in enumerate([4, 10, 25]):
        _close(sweep.dimension[i], mle_id(x, k=k))
    r = _brute_distances(x)
    _close(sweep.radius, r[:, [3, 9, 24]].mean(dim=0))


def test_sweep_gride_matches_gride_at_each_scale() -> None:
    x = ball()
    sweep = id_scale_sweep(x, ks=[1, 3, 8], method="gride")
    for i, k in enumerate([1, 3, 8]):
        _close(sweep.dimension[i], gride(x, k=(k, 2 * k)))


def test_sweep_twonn_decimation_is_reproducible_and_starts_at_twonn() -> None:
    x = ball(n=400)
    a = id_scale_sweep(x, ks=[1, 2, 4], method="twonn", seed=0)
    b = id_scale_sweep(x, ks=[1, 2, 4], method="twonn", seed=0)
    torch.testing.assert_close(a.dimension, b.dimension, rtol=0, atol=0)
    _close(a.dimension[0], twonn(x))
    assert bool((a.radius[1:] > a.radius[:-1]).all())  # sparser subsets, larger scale


def test_sweep_default_scales_fit_small_samples() -> None:
    sweep = id_scale_sweep(ball(n=30))
    assert sweep.scale.tolist() == [5, 10, 20]
    assert bool(torch.isfinite(sweep.dimension).all())


def test_ks_must_be_a_sequence() -> None:
    with pytest.raises(InputTypeError, match=r"ks must be a sequence"):
        id_scale_sweep(ball(), ks=5)  # type: ignore[arg-type]


def test_sweep_mle_on_a_lattice_scale_raises() -> None:
    grid = torch.cartesian_prod(torch.arange(6.0), torch.arange(6.0)).double()
    with pytest.raises(DegenerateInputError, match="for every point all k=2"):
        id_scale_sweep(grid, ks=[2, 8])

"""GRIDE: the score equation, multiscale, the class, duplicates."""

from __future__ import annotations

import math
import warnings

import torch

from subspaces.geometry.intrinsic_dimension import (
    GRIDE,
    GrideScales,
    gride,
    gride_multiscale,
    twonn,
)

from ._helpers import (
    _brute_distances,
    _close,
    _with_duplicates,
    ball,
)


def test_gride_first_scale_is_the_twonn_likelihood() -> None:
    # with n1 = 1, n2 = 2 the GRIDE likelihood is Pareto: (N - 1) / Σ log mu (no outlier is
    # cut on a 4-ball of 300 points: the cut sits at mu ~ 12, where P(mu > 12) ~ 5e-5)
    x = ball()
    _close(gride(x), twonn(x, method="mle", discard_fraction=0.0))


def test_gride_root_solves_the_score_equation() -> None:
    x, n1, n2 = ball(), 3, 7
    d = float(gride(x, k=(n1, n2)))
    r = _brute_distances(x)
    log_mu = torch.log(r[:, n2 - 1] / r[:, n1 - 1])
    n = log_mu.numel()
    score = (
        (n - 1) / d
        + (n2 - n1 - 1) * (log_mu / -torch.expm1(-d * log_mu)).sum()
        - (n2 - 1) * log_mu.sum()
    )
    assert abs(float(score)) < 1e-8 * n


def test_gride_multiscale_matches_single_scales() -> None:
    x = ball(n=200)
    scales = gride_multiscale(x, range_max=32)
    assert isinstance(scales, GrideScales)
    assert scales.k.tolist() == [[1, 2], [2, 4], [4, 8], [8, 16], [16, 32]]
    for i, n1 in enumerate(scales.k[:, 0].tolist()):
        _close(scales.dimension[i], gride(x, k=n1))
    r = _brute_distances(x)
    _close(scales.radius, r[:, scales.k[:, 1] - 1].mean(dim=0))
    assert bool((scales.error > 0).all())


def test_gride_class_error_is_positive_and_shrinks_with_n() -> None:
    small = GRIDE().fit(ball(n=100)).error_
    large = GRIDE().fit(ball(n=1000)).error_
    assert 0 < float(large) < float(small)


def test_gride_class_multiscale_attributes() -> None:
    x = ball(n=200)
    est = GRIDE(multiscale=True, range_max=16).fit(x)
    scales = gride_multiscale(x, range_max=16)
    assert est.scales_.tolist() == [1, 2, 4, 8]
    _close(est.dimension_scales_, scales.dimension)
    _close(est.error_scales_, scales.error)
    _close(est.radius_scales_, scales.radius)


def test_duplicates_drop_in_gride_counts_the_n1_th_neighbor() -> None:
    # points with one copy have r1 = 0 but r2 > 0: they only matter at n1 = 1
    x = _with_duplicates()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = gride(x, k=(2, 4))
    assert math.isfinite(float(value))

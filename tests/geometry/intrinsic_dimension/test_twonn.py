"""TwoNN: the line fit, the censored likelihood, the class."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from subspaces.data.manifolds import (
    hypersphere,
)
from subspaces.geometry.intrinsic_dimension import (
    TwoNN,
    twonn,
)

from ._helpers import (
    TRUTH_TOL,
    _brute_distances,
    _close,
    _gen,
    ball,
)


@pytest.mark.parametrize("discard_fraction", [0.0, 0.1, 0.3], ids=lambda f: f"discard{f}")
def test_twonn_linear_is_the_line_fit_through_the_origin(discard_fraction: float) -> None:
    x = ball()
    r = _brute_distances(x)
    mu = np.sort((r[:, 1] / r[:, 0]).numpy())
    n = mu.size
    keep = int(n * (1 - discard_fraction))
    xs = np.log(mu[:keep])
    if keep == n:  # F_emp = 1 has an infinite ordinate and is left out
        xs, keep = xs[:-1], keep - 1
    ys = -np.log(1 - np.arange(1, keep + 1) / n)
    slope = np.linalg.lstsq(xs[:, None], ys, rcond=None)[0][0]
    _close(twonn(x, discard_fraction=discard_fraction), slope)


def test_twonn_mle_without_discarding_is_the_pareto_likelihood() -> None:
    x = ball()
    r = _brute_distances(x)
    log_mu = torch.log(r[:, 1] / r[:, 0])
    _close(twonn(x, method="mle", discard_fraction=0.0), (x.shape[0] - 1) / log_mu.sum())


def test_twonn_on_a_ball_embedded_in_a_wide_space() -> None:
    # a 6-ball isometrically in R^100 (as a wide representation): TwoNN sees 6, not 100
    x = ball(n=1500, d=6, ambient=100)
    assert abs(float(twonn(x)) - 6) <= TRUTH_TOL * 6


def test_twonn_class_keeps_the_fit_points() -> None:
    est = TwoNN().fit(ball(n=100))
    assert est.x_.shape == est.y_.shape == (90,)
    _close(est.dimension_, (est.x_ * est.y_).sum() / (est.x_ * est.x_).sum())


def test_hypersphere_estimate_is_scale_free() -> None:
    # a sanity check on a closed manifold: no boundary, TwoNN close to d
    x = hypersphere(1500, 3, seed=_gen(0), dtype=torch.float64)
    assert abs(float(twonn(x)) - 3) <= TRUTH_TOL * 3

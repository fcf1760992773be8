"""Intrinsic-dimension estimators: second computations, known truths, invariances, errors.

Agreement with scikit-dimension is in tests/oracles/test_intrinsic_dimension_oracles.py.
Data are float64 unless a test is about dtypes, so that comparisons are to rounding.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    InputTypeError,
    InvalidOptionError,
    NonFiniteError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.data.manifolds import (
    benchmark_manifold,
    hyperball,
    hypersphere,
    random_isometric_embedding,
)
from subspaces.geometry.intrinsic_dimension import (
    GRIDE,
    LPCA_VERSIONS,
    MLE,
    CorrelationDimension,
    GrideScales,
    LocalPCA,
    ScaleSweep,
    TwoNN,
    _count_pairs_below,
    correlation_dimension,
    gride,
    gride_multiscale,
    id_scale_sweep,
    local_pca_id,
    mle_id,
    twonn,
)

SEEDS = st.integers(0, 2**31 - 1)
FAST = settings(max_examples=25, deadline=None)
# float64 data: reordering sums or rotating points changes estimates by rounding only
ROUNDING = 1e-9


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ball(n: int = 300, d: int = 4, seed: int = 0, ambient: int | None = None) -> Tensor:
    x = hyperball(n, d, generator=_gen(seed), dtype=torch.float64)
    if ambient is not None:
        x = random_isometric_embedding(x, ambient, generator=_gen(seed + 1))
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


# --- second computations --------------------------------------------------------------


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


def test_gride_first_scale_is_the_twonn_likelihood() -> None:
    # with n1 = 1, n2 = 2 the GRIDE likelihood is Pareto: (N - 1) / Σ log mu (no outlier is
    # cut on a 4-ball of 300 points: the cut sits at mu ~ 12, where P(mu > 12) ~ 5e-5)
    x = ball()
    _close(gride(x), twonn(x, method="mle", discard_fraction=0.0))


def test_gride_root_solves_the_score_equation() -> None:
    x, n1, n2 = ball(), 3, 7
    d = float(gride(x, n1=n1, n2=n2))
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
    assert scales.n1.tolist() == [1, 2, 4, 8, 16]
    assert scales.n2.tolist() == [2, 4, 8, 16, 32]
    for i, n1 in enumerate(scales.n1.tolist()):
        _close(scales.dimension[i], gride(x, n1=n1))
    r = _brute_distances(x)
    _close(scales.radius, r[:, scales.n2 - 1].mean(dim=0))
    assert bool((scales.error > 0).all())


def test_gride_class_error_is_positive_and_shrinks_with_n() -> None:
    small = GRIDE().fit(ball(n=100)).error_
    large = GRIDE().fit(ball(n=1000)).error_
    assert 0 < float(large) < float(small)


@pytest.mark.parametrize("ver", [v for v in LPCA_VERSIONS if v != "Fan"])
def test_local_pca_finds_an_exactly_isotropic_subspace(ver: str) -> None:
    # 3 centered orthonormal columns rotated into R^10: covariance = I_3 / (n - 1) exactly,
    # so every rule reads 3 (participation ratio (Σλ)²/Σλ² = 3 too). Fan's rule gives 2 here
    # (a quirk of its definition, checked against skdim in the oracle tests).
    g = _gen(0)
    z = torch.randn(200, 3, generator=g, dtype=torch.float64)
    q = torch.linalg.qr(z - z.mean(0)).Q
    x = random_isometric_embedding(q, 10, generator=g) + 5.0
    _close(local_pca_id(x, ver=ver), 3.0, rtol=1e-9)


def test_local_pca_pointwise_reads_each_neighborhood() -> None:
    # a 2-plane and a 5-ball far apart in R^8: FO on 30 neighbors gives 2 and 5
    plane = random_isometric_embedding(ball(200, 2, seed=1), 8, generator=_gen(2))
    blob = random_isometric_embedding(ball(200, 5, seed=3), 8, generator=_gen(4)) + 100.0
    x = torch.cat([plane, blob])
    local = local_pca_id(x, pointwise=True, n_neighbors=30)
    assert local.shape == (400,)
    assert local[:200].tolist() == [2.0] * 200
    assert local[200:].tolist() == [5.0] * 200


def test_local_pca_pointwise_wide_data_uses_the_gram_form() -> None:
    # d > n_neighbors: the k × k Gram gives the same nonzero spectrum as the d × d covariance
    x = random_isometric_embedding(ball(120, 3, seed=5), 40, generator=_gen(6))
    local = local_pca_id(x, pointwise=True, n_neighbors=20, ver="participation_ratio")
    for i in (0, 17, 99):
        nb = x[torch.cdist(x[i : i + 1], x)[0].argsort()[1:21]]
        ev = torch.linalg.eigvalsh(torch.cov(nb.T))
        _close(local[i], ev.sum() ** 2 / (ev * ev).sum(), rtol=1e-8)


@pytest.mark.parametrize("block_size", [1, 7, None], ids=["block1", "block7", "auto"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_pair_counts_match_brute_force(block_size: int | None, dtype: torch.dtype) -> None:
    x = (ball(n=150, d=3) * 3 + 10).to(dtype)
    x64 = x.double()
    diff = x64[None, :, :] - x64[:, None, :]  # as the kNN kernel: float64 differences
    dist = torch.linalg.vecdot(diff, diff).sqrt()
    dist.fill_diagonal_(torch.inf)
    # radii exactly at pair distances: strict "<" must leave those pairs out
    radii = torch.stack([dist[0, 5], dist[3, 9], torch.tensor(0.5, dtype=torch.float64)])
    counts = _count_pairs_below(x, radii, block_size)
    expected = [int((dist < r).sum()) for r in radii]
    assert counts.tolist() == expected


def test_correlation_dimension_is_the_log_slope_of_the_correlation_integral() -> None:
    x = ball(n=400, d=3)
    r = _brute_distances(x)
    r1, r2 = r[:, 4].quantile(0.5), r[:, 14].quantile(0.5)
    full = torch.cdist(x, x)
    full.fill_diagonal_(torch.inf)
    c1, c2 = (full < r1).sum(), (full < r2).sum()
    expected = math.log(float(c2) / float(c1)) / math.log(float(r2) / float(r1))
    _close(correlation_dimension(x, k1=5, k2=15), expected)


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
        _close(sweep.dimension[i], gride(x, n1=k, n2=2 * k))


def test_sweep_twonn_decimation_is_reproducible_and_starts_at_twonn() -> None:
    x = ball(n=400)
    a = id_scale_sweep(x, ks=[1, 2, 4], method="twonn", generator=_gen(0))
    b = id_scale_sweep(x, ks=[1, 2, 4], method="twonn", generator=_gen(0))
    torch.testing.assert_close(a.dimension, b.dimension, rtol=0, atol=0)
    _close(a.dimension[0], twonn(x))
    assert bool((a.radius[1:] > a.radius[:-1]).all())  # sparser subsets, larger scale


def test_sweep_default_scales_fit_small_samples() -> None:
    sweep = id_scale_sweep(ball(n=30))
    assert sweep.scale.tolist() == [5, 10, 20]
    assert bool(torch.isfinite(sweep.dimension).all())


# --- known truths -----------------------------------------------------------------------

# 1,000 points of each manifold: the estimators' spread over seeds is ~3-8% of d here (their
# standard error ~ d / sqrt(n), plus curvature and boundary bias), so 15% of d is the bound.
TRUTH_TOL = 0.15
TRUTH_MANIFOLDS = [
    "M2_Affine_3to5",
    "M4_Nonlinear",
    "M5a_Helix1d",
    "M7_Roll",
    "M11_Moebius",
    "M13a_Scurve",
]
ESTIMATORS: dict[str, Callable[[Tensor], Tensor]] = {
    "twonn": lambda x: twonn(x),
    "twonn-mle": lambda x: twonn(x, method="mle"),
    "mle": lambda x: mle_id(x),
    "gride": lambda x: gride(x, n1=2),
    "corrint": lambda x: correlation_dimension(x),
}


@pytest.mark.parametrize("estimator", list(ESTIMATORS))
@pytest.mark.parametrize("name", TRUTH_MANIFOLDS)
def test_estimate_is_near_the_true_dimension(name: str, estimator: str) -> None:
    x, d = benchmark_manifold(name, 1000, generator=_gen(0), dtype=torch.float64)
    estimate = float(ESTIMATORS[estimator](x))
    assert abs(estimate - d) <= TRUTH_TOL * d, (name, estimator, estimate, d)


def test_twonn_on_a_ball_embedded_in_a_wide_space() -> None:
    # a 6-ball isometrically in R^100 (as a wide representation): TwoNN sees 6, not 100
    x = ball(n=1500, d=6, ambient=100)
    assert abs(float(twonn(x)) - 6) <= TRUTH_TOL * 6


def test_local_pca_reads_the_span_of_affine_data() -> None:
    x, d = benchmark_manifold("M2_Affine_3to5", 500, generator=_gen(0), dtype=torch.float64)
    assert float(local_pca_id(x)) == d


# --- invariances (hypothesis) -----------------------------------------------------------


def _estimators_for_invariance() -> dict[str, Callable[[Tensor], Tensor]]:
    return {
        "twonn": lambda x: twonn(x),
        "mle-pointwise": lambda x: mle_id(x, k=8, pointwise=True),
        "gride": lambda x: gride(x, n1=2, n2=5),
        "lpca-pr": lambda x: local_pca_id(x, ver="participation_ratio"),
        "lpca-pointwise": lambda x: local_pca_id(
            x, ver="participation_ratio", pointwise=True, n_neighbors=15
        ),
    }


INVARIANCE = _estimators_for_invariance()


def _rotation(d: int, seed: int) -> Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=_gen(seed), dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


@pytest.mark.parametrize("estimator", list(INVARIANCE))
@FAST
@given(
    seed=SEEDS,
    scale=st.floats(0.01, 100.0),
    shift=st.floats(-100.0, 100.0),
)
def test_invariant_to_rotation_translation_and_scaling(
    estimator: str, seed: int, scale: float, shift: float
) -> None:
    x = ball(n=120, d=3, seed=seed % 10_000, ambient=6)
    y = scale * x @ _rotation(6, seed % 10_000 + 7) + shift
    _close(INVARIANCE[estimator](y), INVARIANCE[estimator](x), rtol=1e-7)


@FAST
@given(seed=SEEDS, scale=st.floats(0.01, 100.0), shift=st.floats(-100.0, 100.0))
def test_correlation_dimension_is_invariant_up_to_boundary_pairs(
    seed: int, scale: float, shift: float
) -> None:
    # r1, r2 are medians of neighbor distances, and a median can equal a pair distance
    # (mutual neighbors give the same value twice): whether that pair counts in C(r) < r is
    # then decided by rounding, which a rotation changes. One pair more or less moves the
    # estimate by ~1/(number of pairs below r1) ~ 1%, hence the 3% tolerance.
    x = ball(n=120, d=3, seed=seed % 10_000, ambient=6)
    y = scale * x @ _rotation(6, seed % 10_000 + 7) + shift
    a = correlation_dimension(x, k1=3, k2=9)
    _close(correlation_dimension(y, k1=3, k2=9), a, rtol=3e-2)
    perm = torch.randperm(120, generator=_gen(seed))
    _close(correlation_dimension(x[perm], k1=3, k2=9), a, rtol=0.0)  # exact: same distances


@pytest.mark.parametrize("estimator", list(INVARIANCE))
@FAST
@given(seed=SEEDS)
def test_invariant_to_sample_order(estimator: str, seed: int) -> None:
    x = ball(n=120, d=3, seed=seed % 10_000)
    perm = torch.randperm(120, generator=_gen(seed))
    a, b = INVARIANCE[estimator](x), INVARIANCE[estimator](x[perm])
    if a.ndim == 1:  # per-point estimates follow their points
        a = a[perm]
    _close(b, a, rtol=1e-10)


def test_float32_input_agrees_with_float64() -> None:
    x = ball(n=300, d=4).float()
    # the kNN re-measures distances in float64: same estimate as the float64 copy
    _close(twonn(x), twonn(x.double()), rtol=1e-12)
    _close(mle_id(x), mle_id(x.double()), rtol=1e-12)


def test_numpy_input_is_accepted() -> None:
    x = ball()
    _close(twonn(x.numpy()), twonn(x), rtol=0.0)


def test_outputs_are_float64_on_the_input_device() -> None:
    x = ball(n=120).float()
    for value in (twonn(x), mle_id(x), gride(x), local_pca_id(x), correlation_dimension(x)):
        assert value.dtype == torch.float64
        assert value.ndim == 0
        assert value.device == x.device


# --- classes ----------------------------------------------------------------------------


def test_classes_share_the_functional_core() -> None:
    x = ball()
    assert TwoNN().fit(x) is not None
    _close(TwoNN(discard_fraction=0.2).fit(x).dimension_, twonn(x, discard_fraction=0.2))
    _close(TwoNN(method="mle").fit_transform(x), twonn(x, method="mle"))
    mle = MLE(k=12).fit(x)
    _close(mle.dimension_, mle_id(x, k=12))
    _close(mle.dimension_pw_, mle_id(x, k=12, pointwise=True))
    _close(GRIDE(n1=2, n2=6).fit(x).dimension_, gride(x, n1=2, n2=6))
    lpca = LocalPCA(ver="Kaiser", pointwise=True, n_neighbors=20).fit(x)
    _close(lpca.dimension_, local_pca_id(x, ver="Kaiser"))
    _close(lpca.dimension_pw_, local_pca_id(x, ver="Kaiser", pointwise=True, n_neighbors=20))
    assert lpca.explained_variance_.shape == (4,)
    _close(
        CorrelationDimension(k1=4, k2=12).fit(x).dimension_, correlation_dimension(x, k1=4, k2=12)
    )


def test_fit_returns_self_and_repr_shows_parameters() -> None:
    est = TwoNN(discard_fraction=0.2)
    assert est.fit(ball()) is est
    assert repr(est).startswith("TwoNN(discard_fraction=0.2")


def test_twonn_class_keeps_the_fit_points() -> None:
    est = TwoNN().fit(ball(n=100))
    assert est.x_.shape == est.y_.shape == (90,)
    _close(est.dimension_, (est.x_ * est.y_).sum() / (est.x_ * est.x_).sum())


def test_gride_class_multiscale_attributes() -> None:
    x = ball(n=200)
    est = GRIDE(multiscale=True, range_max=16).fit(x)
    scales = gride_multiscale(x, range_max=16)
    assert est.scales_.tolist() == [1, 2, 4, 8]
    _close(est.dimension_scales_, scales.dimension)
    _close(est.error_scales_, scales.error)
    _close(est.radius_scales_, scales.radius)


# --- duplicates -------------------------------------------------------------------------


def _with_duplicates() -> Tensor:
    x = ball(n=200)
    return torch.cat([x, x[:5]])


DUPLICATE_SENSITIVE: dict[str, Callable[..., Tensor]] = {
    "twonn": twonn,
    "mle": mle_id,
    "gride": gride,
}


@pytest.mark.parametrize("estimator", list(DUPLICATE_SENSITIVE))
def test_duplicates_raise_by_default(estimator: str) -> None:
    with pytest.raises(DegenerateInputError, match=r"10 of 205 points are at distance 0"):
        DUPLICATE_SENSITIVE[estimator](_with_duplicates())


@pytest.mark.parametrize("estimator", list(DUPLICATE_SENSITIVE))
def test_duplicates_drop_warns_and_leaves_them_out(estimator: str) -> None:
    x = _with_duplicates()
    with pytest.warns(UserWarning, match=r"leaving out 10 of 205 points"):
        value = DUPLICATE_SENSITIVE[estimator](x, duplicates="drop")
    assert math.isfinite(float(value))


def test_duplicates_drop_gives_nan_pointwise_only_for_those_points() -> None:
    x = _with_duplicates()
    with pytest.warns(UserWarning, match="leaving out 10"):
        local = mle_id(x, duplicates="drop", pointwise=True)
    nan = torch.isnan(local)
    assert nan.sum() == 10
    assert bool(nan[:5].all()) and bool(nan[200:].all())


def test_duplicates_drop_in_gride_counts_the_n1_th_neighbor() -> None:
    # points with one copy have r1 = 0 but r2 > 0: they only matter at n1 = 1
    x = _with_duplicates()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = gride(x, n1=2, n2=4)
    assert math.isfinite(float(value))


def test_lattice_makes_twonn_and_gride_degenerate() -> None:
    grid = torch.cartesian_prod(torch.arange(6.0), torch.arange(6.0)).double()
    with pytest.raises(DegenerateInputError, match="equidistant"):
        twonn(grid)
    with pytest.raises(DegenerateInputError, match="equals 1"):
        gride(grid)


def test_mle_equidistant_neighbors_raise_for_pointwise() -> None:
    grid = torch.cartesian_prod(torch.arange(6.0), torch.arange(6.0)).double()
    with pytest.raises(DegenerateInputError, match="local estimate is infinite"):
        mle_id(grid, k=2, pointwise=True)


def test_correlation_dimension_with_many_duplicates_raises() -> None:
    x = ball(n=20).repeat(12, 1)
    with pytest.raises(DegenerateInputError, match="r1=0"):
        correlation_dimension(x)


def test_local_pca_of_a_constant_raises() -> None:
    with pytest.raises(DegenerateInputError, match="zero variance"):
        local_pca_id(torch.ones(10, 3))


def test_local_pca_pointwise_of_repeated_points_raises() -> None:
    x = torch.cat([ball(n=50), torch.ones(30, 4, dtype=torch.float64)])
    with pytest.raises(DegenerateInputError, match="single repeated point"):
        local_pca_id(x, pointwise=True, n_neighbors=10)


def test_fan_on_isotropic_data_raises() -> None:
    x = torch.eye(4, dtype=torch.float64).repeat(2, 1)
    x = torch.cat([x, -x])  # covariance proportional to the identity
    with pytest.raises(DegenerateInputError, match="Fan"):
        local_pca_id(x, ver="Fan")


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: mle_id(x[:15]), r"MLE with k=20 needs at least 21 samples.*x has 15"),
        (lambda x: gride(x[:8], n1=4), r"GRIDE with n2=8 needs at least 9 samples"),
        (lambda x: correlation_dimension(x[:15]), r"k2=20 needs at least 21"),
        (
            lambda x: local_pca_id(x[:50], pointwise=True),
            r"local PCA with n_neighbors=100 needs at least 101",
        ),
        (lambda x: twonn(x[:2]), r"x has 2 samples.*at least 3"),
        (lambda x: twonn(x[:5], discard_fraction=0.7), r"keeps .* = 1 of the N = 5"),
        (
            lambda x: id_scale_sweep(x[:20], ks=[8], method="twonn"),
            r"n // k = 2 points, fewer than the 3",
        ),
        (
            lambda x: id_scale_sweep(x[:20], ks=[10], method="gride"),
            r"2k=20 needs at least 21 samples",
        ),
    ],
    ids=["mle", "gride", "corrint", "lpca-pointwise", "twonn", "twonn-discard", "sweep", "sweep-g"],
)
def test_too_few_samples(call: Callable[[Tensor], Tensor], match: str) -> None:
    with pytest.raises(TooFewSamplesError, match=match):
        call(ball())


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: mle_id(x, k=0), r"k must be at least 2, got 0"),
        (lambda x: mle_id(x, k=1), r"k must be at least 2, got 1"),
        (lambda x: mle_id(x, k=2, unbiased=True), r"k must be at least 3, got 2"),
        (lambda x: gride(x, n1=0), r"n1 must be at least 1, got 0"),
        (lambda x: gride(x, n1=3, n2=3), r"n2 > n1.*n1=3, n2=3"),
        (lambda x: gride_multiscale(x, range_max=1), r"range_max must be at least 2"),
        (lambda x: correlation_dimension(x, k1=5, k2=5), r"k1 < k2.*k1=5, k2=5"),
        (lambda x: correlation_dimension(x, k1=0), r"k1 must be at least 1"),
        (lambda x: local_pca_id(x, pointwise=True, n_neighbors=1), r"n_neighbors must be at"),
        (lambda x: id_scale_sweep(x, ks=[1], method="mle"), r"every k >= 2 in ks, got 1"),
        (lambda x: id_scale_sweep(x, ks=[]), r"ks is empty"),
        (lambda x: id_scale_sweep(x, ks=[0]), r"ks must be at least 1, got 0"),
    ],
    ids=[
        "mle-k0",
        "mle-k1",
        "mle-unbiased-k2",
        "gride-n1",
        "gride-n2",
        "range-max",
        "corrint-order",
        "corrint-k1",
        "lpca-neighbors",
        "sweep-mle-k1",
        "sweep-empty",
        "sweep-k0",
    ],
)
def test_bad_neighbor_counts(call: Callable[[Tensor], Tensor], match: str) -> None:
    with pytest.raises(InvalidOptionError, match=match):
        call(ball())


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: twonn(x, method="ols"), r"method must be one of 'linear', 'mle'; got 'ols'"),
        (lambda x: local_pca_id(x, ver="fo"), r"ver must be one of 'FO'.*got 'fo'"),
        (lambda x: mle_id(x, average="harmonic"), r"average must be one of"),
        (lambda x: twonn(x, duplicates="ignore"), r"duplicates must be one of 'raise', 'drop'"),
        (lambda x: id_scale_sweep(x, method="pca"), r"method must be one of 'mle', 'gride'"),
        (lambda x: twonn(x, discard_fraction=1.0), r"discard_fraction must lie in \[0.0, 1.0\)"),
        (lambda x: local_pca_id(x, alpha_fo=2.0), r"alpha_fo must lie in \[0.0, 1.0\]"),
        (lambda x: LocalPCA(ver="PCA").fit(x), r"ver must be one of"),
        (lambda x: MLE(average="max").fit(x), r"average must be one of"),
    ],
    ids=[
        "twonn-method",
        "lpca-ver",
        "mle-average",
        "duplicates",
        "sweep-method",
        "discard",
        "alpha",
        "class-ver",
        "class-average",
    ],
)
def test_bad_option_names_and_values(call: Callable[[Tensor], object], match: str) -> None:
    with pytest.raises(InvalidOptionError, match=match):
        call(ball())


def test_non_integer_k_is_a_type_error() -> None:
    with pytest.raises(InputTypeError, match=r"k must be an integer, got float"):
        mle_id(ball(), k=2.5)  # type: ignore[arg-type]


def test_ks_must_be_a_sequence() -> None:
    with pytest.raises(InputTypeError, match=r"ks must be a sequence"):
        id_scale_sweep(ball(), ks=5)  # type: ignore[arg-type]


def test_nan_input_is_refused() -> None:
    x = ball()
    x[3, 1] = torch.nan
    with pytest.raises(NonFiniteError, match="1 NaN"):
        twonn(x)


def test_one_dimensional_input_is_refused() -> None:
    with pytest.raises(ShapeError, match=r"reshape\(-1, 1\)"):
        twonn(torch.randn(50))


def test_hypersphere_estimate_is_scale_free() -> None:
    # a sanity check on a closed manifold: no boundary, TwoNN close to d
    x = hypersphere(1500, 3, generator=_gen(0), dtype=torch.float64)
    assert abs(float(twonn(x)) - 3) <= TRUTH_TOL * 3


def test_mle_class_refuses_infinite_local_estimates() -> None:
    grid = torch.cartesian_prod(torch.arange(6.0), torch.arange(6.0)).double()
    # k = 4: interior points have 4 equidistant neighbors (m = inf), the border ones do not
    assert math.isfinite(float(mle_id(grid, k=4)))  # global: those points add 1/m = 0
    with pytest.raises(DegenerateInputError, match="local estimate is infinite"):
        MLE(k=4).fit(grid)
    with pytest.raises(DegenerateInputError, match="for every point all k=2"):
        mle_id(grid, k=2)


def test_sweep_mle_on_a_lattice_scale_raises() -> None:
    grid = torch.cartesian_prod(torch.arange(6.0), torch.arange(6.0)).double()
    with pytest.raises(DegenerateInputError, match="for every point all k=2"):
        id_scale_sweep(grid, ks=[2, 8])

"""Every intrinsic-dimension estimator: known truths, invariances, classes, duplicates,
bad input.

Agreement with scikit-dimension is in tests/oracles/test_intrinsic_dimension_oracles.py.
Data are float64 unless a test is about dtypes, so that comparisons are to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone
from torch import Tensor

from subspaces._checks import (
    DegenerateInputError,
    InvalidOptionError,
    NonFiniteError,
    NotFittedError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.data.manifolds import (
    benchmark_manifold,
)
from subspaces.geometry.intrinsic_dimension import (
    GRIDE,
    MLE,
    CorrelationDimension,
    LocalPCA,
    TwoNN,
    correlation_dimension,
    gride,
    gride_multiscale,
    id_scale_sweep,
    local_pca_id,
    mle_id,
    twonn,
)

from ._helpers import (
    FAST,
    SEEDS,
    TRUTH_TOL,
    _close,
    _gen,
    _rotation,
    _with_duplicates,
    ball,
)

# --- known truths -----------------------------------------------------------------------


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
    "gride": lambda x: gride(x, k=2),
    "corrint": lambda x: correlation_dimension(x),
}


@pytest.mark.parametrize("estimator", list(ESTIMATORS))
@pytest.mark.parametrize("name", TRUTH_MANIFOLDS)
def test_estimate_is_near_the_true_dimension(name: str, estimator: str) -> None:
    x, d = benchmark_manifold(name, 1000, seed=_gen(0), dtype=torch.float64)
    estimate = float(ESTIMATORS[estimator](x))
    assert abs(estimate - d) <= TRUTH_TOL * d, (name, estimator, estimate, d)


# --- invariances (hypothesis) -----------------------------------------------------------


def _estimators_for_invariance() -> dict[str, Callable[[Tensor], Tensor]]:
    return {
        "twonn": lambda x: twonn(x),
        "mle-pointwise": lambda x: mle_id(x, k=8, pointwise=True),
        "gride": lambda x: gride(x, k=(2, 5)),
        "lpca-pr": lambda x: local_pca_id(x, method="participation_ratio"),
        "lpca-pointwise": lambda x: local_pca_id(
            x, method="participation_ratio", pointwise=True, k=15
        ),
    }


INVARIANCE = _estimators_for_invariance()


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
    est = TwoNN()
    assert est.fit(x) is est
    _close(TwoNN(discard_fraction=0.2).fit(x).dimension_, twonn(x, discard_fraction=0.2))
    _close(TwoNN(method="mle").fit(x).dimension_, twonn(x, method="mle"))
    mle = MLE(k=12).fit(x)
    _close(mle.dimension_, mle_id(x, k=12))
    _close(mle.dimension_pw_, mle_id(x, k=12, pointwise=True))
    _close(GRIDE(k=(2, 6)).fit(x).dimension_, gride(x, k=(2, 6)))
    lpca = LocalPCA(method="Kaiser", pointwise=True, k=20).fit(x)
    _close(lpca.dimension_, local_pca_id(x, method="Kaiser"))
    _close(lpca.dimension_pw_, local_pca_id(x, method="Kaiser", pointwise=True, k=20))
    assert lpca.explained_variance_.shape == (4,)
    _close(CorrelationDimension(k=(4, 12)).fit(x).dimension_, correlation_dimension(x, k=(4, 12)))


def test_fit_returns_self_and_repr_shows_parameters() -> None:
    est = TwoNN(discard_fraction=0.2)
    assert est.fit(ball()) is est
    assert repr(est).startswith("TwoNN(discard_fraction=0.2")


# --- duplicates -------------------------------------------------------------------------


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


def test_lattice_makes_twonn_and_gride_degenerate() -> None:
    grid = torch.cartesian_prod(torch.arange(6.0), torch.arange(6.0)).double()
    with pytest.raises(DegenerateInputError, match="equidistant"):
        twonn(grid)
    with pytest.raises(DegenerateInputError, match="equals 1"):
        gride(grid)


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: mle_id(x[:15]), r"MLE with k=20 needs at least 21 samples.*x has 15"),
        (lambda x: gride(x[:8], k=4), r"GRIDE with k2=8 needs at least 9 samples"),
        (lambda x: correlation_dimension(x[:15]), r"k2=20 needs at least 21"),
        (
            lambda x: local_pca_id(x[:50], pointwise=True),
            r"local PCA with k=100 needs at least 101",
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
        (lambda x: gride(x, k=0), r"k must be at least 1, got 0"),
        (lambda x: gride(x, k=(3, 3)), r"k2 > k1.*k=\(3, 3\)"),
        (lambda x: gride_multiscale(x, range_max=1), r"range_max must be at least 2"),
        (lambda x: correlation_dimension(x, k=(5, 5)), r"k1 < k2.*k=\(5, 5\)"),
        (lambda x: correlation_dimension(x, k=(0, 20)), r"k\[0\] must be at least 1"),
        (lambda x: local_pca_id(x, pointwise=True, k=1), r"k must be at"),
        (lambda x: id_scale_sweep(x, ks=[1], method="mle"), r"every k >= 2 in ks, got 1"),
        (lambda x: id_scale_sweep(x, ks=[]), r"ks is empty"),
        (lambda x: id_scale_sweep(x, ks=[0]), r"ks must be at least 1, got 0"),
    ],
    ids=[
        "mle-k0",
        "mle-k1",
        "mle-unbiased-k2",
        "gride-k",
        "gride-k-pair",
        "range-max",
        "corrint-order",
        "corrint-k",
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
        (lambda x: local_pca_id(x, method="fo"), r"method must be one of 'FO'.*got 'fo'"),
        (lambda x: mle_id(x, average="harmonic"), r"average must be one of"),
        (lambda x: twonn(x, duplicates="ignore"), r"duplicates must be one of 'raise', 'drop'"),
        (lambda x: id_scale_sweep(x, method="pca"), r"method must be one of 'mle', 'gride'"),
        (lambda x: twonn(x, discard_fraction=1.0), r"discard_fraction must lie in \[0.0, 1.0\)"),
        (lambda x: local_pca_id(x, alpha_fo=2.0), r"alpha_fo must lie in \[0.0, 1.0\]"),
        (lambda x: LocalPCA(method="PCA").fit(x), r"method must be one of"),
        (lambda x: MLE(average="max").fit(x), r"average must be one of"),
    ],
    ids=[
        "twonn-method",
        "lpca-method",
        "mle-average",
        "duplicates",
        "sweep-method",
        "discard",
        "alpha",
        "class-method",
        "class-average",
    ],
)
def test_bad_option_names_and_values(call: Callable[[Tensor], object], match: str) -> None:
    with pytest.raises(InvalidOptionError, match=match):
        call(ball())


def test_nan_input_is_refused() -> None:
    x = ball()
    x[3, 1] = torch.nan
    with pytest.raises(NonFiniteError, match="1 NaN"):
        twonn(x)


def test_one_dimensional_input_is_refused() -> None:
    with pytest.raises(ShapeError, match=r"reshape\(-1, 1\)"):
        twonn(torch.randn(50))


@pytest.mark.parametrize("cls", [TwoNN, MLE, GRIDE, LocalPCA, CorrelationDimension])
def test_estimators_are_scikit_learn_estimators(cls: type) -> None:
    est = cls()
    copy = clone(est)
    assert copy is not est and copy.get_params() == est.get_params()
    with pytest.raises(NotFittedError, match="not fitted"):
        _ = est.dimension_
    assert not hasattr(est, "dimension_")  # NotFittedError is an AttributeError
    assert not hasattr(est, "fit_transform")  # no transform, so no fit_transform


def test_set_params_is_validated_in_fit() -> None:
    est = GRIDE().set_params(k=(3, 3))  # not checked here...
    with pytest.raises(InvalidOptionError, match=r"k2 > k1"):
        est.fit(ball())  # ...but in fit
    assert float(clone(est).set_params(k=(2, 4)).fit(ball()).dimension_) > 0

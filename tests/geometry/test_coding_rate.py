"""Tests of subspaces.geometry.coding_rate: R, R_c, ΔR (MCR²), functions and streaming."""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from subspaces._checks import (
    InputTypeError,
    InvalidOptionError,
    NonFiniteError,
    NumericRangeError,
    ShapeError,
    TooFewSamplesError,
)
from subspaces.geometry.coding_rate import (
    CodingRate,
    CodingRateReduction,
    RateReduction,
    class_coding_rate,
    coding_rate,
    coding_rate_reduction,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _memory import address_space_headroom

F64 = torch.float64
SEEDS = st.integers(0, 2**31 - 1)
FAST = settings(max_examples=25, deadline=None)
EPS = 0.5


def features(seed: int, m: int = 40, d: int = 6) -> np.ndarray:
    """Unit-norm rows, as MCR² uses, with some correlation between features."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(m, d)) @ rng.normal(size=(d, d)) + 0.3
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def labels_for(seed: int, m: int = 40, k: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    return np.concatenate([np.arange(k), rng.integers(0, k, size=m - k)])


def soft_membership(seed: int, m: int = 40, k: int = 3) -> np.ndarray:
    return np.random.default_rng(seed + 2).dirichlet(np.ones(k), size=m)


def orthogonal(rng: np.random.Generator, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def np_rate(z: np.ndarray, eps: float) -> float:
    m, d = z.shape
    return 0.5 * np.linalg.slogdet(np.eye(d) + d / (m * eps**2) * z.T @ z)[1]


def np_class_rate(z: np.ndarray, pi: np.ndarray, eps: float) -> float:
    """The MCR² formula with Π_j = diag(pi[:, j]), straight from the definition."""
    m, d = z.shape
    total = 0.0
    for j in range(pi.shape[1]):
        tr = pi[:, j].sum()
        if tr > 0:
            zpz = z.T @ np.diag(pi[:, j]) @ z
            total += tr / (2 * m) * np.linalg.slogdet(np.eye(d) + d / (tr * eps**2) * zpz)[1]
    return total


def one_hot(labels: np.ndarray, k: int | None = None) -> np.ndarray:
    k = int(labels.max()) + 1 if k is None else k
    return np.eye(k)[labels]


# ---------------------------------------------------------------------------------------
# Against the definition (numpy, float64: ~1e-12 relative)

SHAPES = {"tall": (50, 6), "wide": (8, 20), "square": (10, 10)}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_coding_rate_matches_numpy_logdet(shape: str) -> None:
    m, d = SHAPES[shape]
    z = features(0, m=m, d=d)
    assert float(coding_rate(z, eps=EPS)) == pytest.approx(np_rate(z, EPS), rel=1e-12)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_class_coding_rate_hard_labels_matches_numpy(shape: str) -> None:
    m, d = SHAPES[shape]
    z, y = features(1, m=m, d=d), labels_for(1, m=m)
    expected = np_class_rate(z, one_hot(y), EPS)
    assert float(class_coding_rate(z, y, eps=EPS)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_class_coding_rate_soft_membership_matches_numpy(shape: str) -> None:
    m, d = SHAPES[shape]
    z, pi = features(2, m=m, d=d), soft_membership(2, m=m)
    expected = np_class_rate(z, pi, EPS)
    assert float(class_coding_rate(z, pi, eps=EPS)) == pytest.approx(expected, rel=1e-12)


def test_coding_rate_reduction_is_rate_minus_class_rate() -> None:
    z, y = features(3), labels_for(3)
    result = coding_rate_reduction(z, y, eps=EPS)
    assert isinstance(result, RateReduction)
    assert float(result.rate) == pytest.approx(np_rate(z, EPS), rel=1e-12)
    assert float(result.class_rate) == pytest.approx(np_class_rate(z, one_hot(y), EPS), rel=1e-12)
    assert float(result.reduction) == float(result.rate - result.class_rate)


def test_hard_labels_equal_their_one_hot_membership() -> None:
    z, y = features(4), labels_for(4)
    hard = class_coding_rate(z, y, eps=EPS)
    soft = class_coding_rate(z, one_hot(y), eps=EPS)
    assert float(hard) == pytest.approx(float(soft), rel=1e-12)


def test_eps_is_the_distortion_not_its_square() -> None:
    """One unit vector in R²: R = ½ log(1 + 2/ε²), so ε=0.5 gives ½ log 9."""
    z = np.array([[1.0, 0.0]])
    assert float(coding_rate(z, eps=0.5)) == pytest.approx(0.5 * math.log(9.0), rel=1e-14)


# ---------------------------------------------------------------------------------------
# Closed forms


def subspace_frame(m_per_direction: int, d: int, r: int, seed: int) -> np.ndarray:
    """Unit-norm rows ±u_1..±u_r of an orthonormal frame: Zᵀ Z / m = U Uᵀ / r exactly."""
    u = orthogonal(np.random.default_rng(seed), d)[:, :r]
    rows = [sign * u[:, i] for i in range(r) for sign in (1.0, -1.0)]
    return np.array(rows * m_per_direction)


@pytest.mark.parametrize("eps", [0.1, 0.5, 2.0], ids=lambda e: f"eps{e}")
@pytest.mark.parametrize(("d", "r"), [(8, 1), (8, 3), (8, 8), (30, 5)], ids=str)
def test_isotropic_data_in_a_subspace_has_the_closed_form_rate(d: int, r: int, eps: float) -> None:
    z = subspace_frame(3, d, r, seed=d + r)
    assert np.allclose(np.linalg.norm(z, axis=1), 1.0)
    expected = 0.5 * r * math.log(1.0 + d / (r * eps**2))
    assert float(coding_rate(z, eps=eps)) == pytest.approx(expected, rel=1e-12)


def test_orthogonal_subspace_classes_have_the_closed_form_reduction() -> None:
    """Two classes, each isotropic in its own r-dim subspace, orthogonal to the other.

    R_c = Σ ½ · ½ r log(1 + d/(r ε²)); R = ½ (2r) log(1 + d/(2r ε²)).
    """
    d, r, eps = 12, 3, 0.5
    u = orthogonal(np.random.default_rng(5), d)
    a = np.array([s * u[:, i] for i in range(r) for s in (1.0, -1.0)] * 2)
    b = np.array([s * u[:, r + i] for i in range(r) for s in (1.0, -1.0)] * 2)
    z, y = np.vstack([a, b]), np.repeat([0, 1], a.shape[0])
    result = coding_rate_reduction(z, y, eps=eps)
    class_rate = 0.5 * r * math.log(1.0 + d / (r * eps**2))
    rate = 0.5 * (2 * r) * math.log(1.0 + d / (2 * r * eps**2))
    assert float(result.class_rate) == pytest.approx(class_rate, rel=1e-12)
    assert float(result.rate) == pytest.approx(rate, rel=1e-12)


def test_one_class_has_zero_reduction() -> None:
    z = features(6)
    result = coding_rate_reduction(z, np.zeros(40, dtype=int), eps=EPS)
    assert float(result.reduction) == pytest.approx(0.0, abs=1e-12)


def test_zero_features_have_zero_rate() -> None:
    assert float(coding_rate(np.zeros((5, 3)), eps=EPS)) == 0.0


def test_empty_classes_contribute_nothing() -> None:
    z, y = features(7), labels_for(7)
    gapped = np.where(y == 2, 5, y)  # classes 0, 1, 5: 2, 3 and 4 are empty
    assert float(class_coding_rate(z, gapped, eps=EPS)) == pytest.approx(
        float(class_coding_rate(z, y, eps=EPS)), rel=1e-14
    )


def test_a_stray_label_sizes_nothing() -> None:
    z, y = features(7), labels_for(7)
    stray = np.where(y == 2, 10**12, y)  # one class numbered 10**12: the others are empty
    with address_space_headroom():
        value = class_coding_rate(z, stray, eps=EPS)
    assert float(value) == pytest.approx(float(class_coding_rate(z, y, eps=EPS)), rel=1e-14)


# ---------------------------------------------------------------------------------------
# Properties


@FAST
@given(seed=SEEDS, k=st.integers(1, 5), soft=st.booleans())
def test_reduction_is_non_negative_and_class_rate_bounded_by_rate(
    seed: int, k: int, soft: bool
) -> None:
    z = features(seed, m=30)
    labels = soft_membership(seed, m=30, k=k) if soft else labels_for(seed, m=30, k=k)
    result = coding_rate_reduction(z, labels, eps=EPS)
    assert float(result.reduction) >= -1e-12
    assert -1e-12 <= float(result.class_rate) <= float(result.rate) + 1e-12


@FAST
@given(seed=SEEDS, soft=st.booleans())
def test_invariant_to_orthogonal_transforms_of_the_features(seed: int, soft: bool) -> None:
    z = features(seed)
    labels = soft_membership(seed) if soft else labels_for(seed)
    q = orthogonal(np.random.default_rng(seed + 3), z.shape[1])
    a, b = coding_rate_reduction(z, labels, eps=EPS), coding_rate_reduction(z @ q, labels, eps=EPS)
    assert float(b.rate) == pytest.approx(float(a.rate), rel=1e-10)
    assert float(b.class_rate) == pytest.approx(float(a.class_rate), rel=1e-10)


@FAST
@given(seed=SEEDS, soft=st.booleans())
def test_invariant_to_sample_order(seed: int, soft: bool) -> None:
    z = features(seed)
    labels = soft_membership(seed) if soft else labels_for(seed)
    perm = np.random.default_rng(seed).permutation(z.shape[0])
    a = coding_rate_reduction(z, labels, eps=EPS)
    b = coding_rate_reduction(z[perm], labels[perm], eps=EPS)
    assert float(b.rate) == pytest.approx(float(a.rate), rel=1e-10)
    assert float(b.class_rate) == pytest.approx(float(a.class_rate), rel=1e-10)


@FAST
@given(seed=SEEDS, soft=st.booleans())
def test_class_rate_invariant_to_relabeling(seed: int, soft: bool) -> None:
    z = features(seed)
    relabel = np.random.default_rng(seed + 4).permutation(3)
    if soft:
        pi = soft_membership(seed)
        a, b = class_coding_rate(z, pi, eps=EPS), class_coding_rate(z, pi[:, relabel], eps=EPS)
    else:
        y = labels_for(seed)
        a, b = class_coding_rate(z, y, eps=EPS), class_coding_rate(z, relabel[y], eps=EPS)
    assert float(b) == pytest.approx(float(a), rel=1e-12)


def split_edges(m: int, cuts: list[int]) -> list[tuple[int, int]]:
    edges = [0, *sorted(set(cuts)), m]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


@FAST
@given(seed=SEEDS, cuts=st.lists(st.integers(1, 39), max_size=5))
def test_streaming_coding_rate_equals_one_shot_over_any_split(seed: int, cuts: list[int]) -> None:
    z = features(seed)
    metric = CodingRate(eps=EPS)
    for a, b in split_edges(40, cuts):
        metric.update(z[a:b])
    assert float(metric.compute()) == pytest.approx(float(coding_rate(z, eps=EPS)), rel=1e-12)


@FAST
@given(seed=SEEDS, cuts=st.lists(st.integers(1, 39), max_size=5), soft=st.booleans())
def test_streaming_reduction_equals_one_shot_over_any_split(
    seed: int, cuts: list[int], soft: bool
) -> None:
    z = features(seed)
    labels = soft_membership(seed) if soft else labels_for(seed)
    metric = CodingRateReduction(num_classes=3, eps=EPS)
    for a, b in split_edges(40, cuts):
        metric.update(z[a:b], labels[a:b])
    got, expected = metric.compute(), coding_rate_reduction(z, labels, eps=EPS)
    assert isinstance(got, RateReduction)
    for field in ("rate", "class_rate", "reduction"):
        assert float(getattr(got, field)) == pytest.approx(
            float(getattr(expected, field)), rel=1e-10, abs=1e-12
        ), field


def test_streaming_wide_batches_equal_the_one_shot_row_gram_form() -> None:
    """Streaming always uses d × d; the function uses m × m when m < d: same value."""
    z, y = features(8, m=12, d=30), labels_for(8, m=12)
    metric = CodingRateReduction(num_classes=3, eps=EPS)
    metric.update(z[:5], y[:5])
    metric.update(z[5:], y[5:])
    expected = coding_rate_reduction(z, y, eps=EPS)
    assert float(metric.compute().rate) == pytest.approx(float(expected.rate), rel=1e-10)
    assert float(metric.compute().class_rate) == pytest.approx(
        float(expected.class_rate), rel=1e-10
    )


# ---------------------------------------------------------------------------------------
# Types and precision


def test_results_are_0_dim_float64_tensors() -> None:
    z, y = features(9).astype(np.float32), labels_for(9)
    result = coding_rate_reduction(z, y, eps=EPS)
    for value in (
        coding_rate(z, eps=EPS),
        class_coding_rate(z, y, eps=EPS),
        *vars(result).values(),
    ):
        assert isinstance(value, torch.Tensor)
        assert value.shape == () and value.dtype == F64


def test_float32_input_agrees_with_float64() -> None:
    """float32 products accumulated in float64: ~1e-7 relative."""
    z, y = features(10), labels_for(10)
    a = coding_rate_reduction(z, y, eps=EPS)
    b = coding_rate_reduction(z.astype(np.float32), y, eps=EPS)
    assert float(b.rate) == pytest.approx(float(a.rate), rel=1e-6)
    assert float(b.class_rate) == pytest.approx(float(a.class_rate), rel=1e-6)


def test_torch_labels_and_integer_one_hot_are_accepted() -> None:
    z, y = features(11), labels_for(11)
    expected = float(class_coding_rate(z, y, eps=EPS))
    zt = torch.as_tensor(z)
    yt = torch.as_tensor(y)
    assert float(class_coding_rate(zt, yt, eps=EPS)) == pytest.approx(expected, rel=1e-12)
    membership = torch.nn.functional.one_hot(yt)  # int64 (m, k)
    assert float(class_coding_rate(zt, membership, eps=EPS)) == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------------------------------
# Errors


def test_labels_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ShapeError, match="has 39 entries but the representation has 40"):
        class_coding_rate(features(12), labels_for(12)[:39], eps=EPS)


def test_membership_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ShapeError, match="membership matrix with 39 rows"):
        coding_rate_reduction(features(13), soft_membership(13)[:39], eps=EPS)


def test_membership_rows_not_summing_to_one_are_refused() -> None:
    pi = soft_membership(14)
    pi[3] *= 0.8
    with pytest.raises(InvalidOptionError, match=r"must sum to 1.*row 3 sums to 0\.8"):
        class_coding_rate(features(14), pi, eps=EPS)


def test_negative_membership_is_refused() -> None:
    pi = np.tile([1.5, -0.5], (40, 1))
    with pytest.raises(InvalidOptionError, match="negative entries"):
        class_coding_rate(features(15), pi, eps=EPS)


def test_non_finite_membership_is_refused() -> None:
    pi = soft_membership(16)
    pi[0, 0] = np.nan
    with pytest.raises(NonFiniteError, match="labels contains 1 NaN"):
        class_coding_rate(features(16), pi, eps=EPS)


def test_negative_labels_are_refused() -> None:
    y = labels_for(17)
    y[0] = -1
    with pytest.raises(InvalidOptionError, match="non-negative class indices"):
        class_coding_rate(features(17), y, eps=EPS)


def test_three_dimensional_labels_are_refused() -> None:
    with pytest.raises(ShapeError, match=r"1-D class indices.*or a 2-D membership"):
        class_coding_rate(features(18), np.zeros((40, 2, 2)), eps=EPS)


@pytest.mark.parametrize(
    "eps", [0.0, -0.5, float("nan"), float("inf")], ids=["zero", "negative", "nan", "inf"]
)
def test_non_positive_eps_is_refused(eps: float) -> None:
    with pytest.raises(InvalidOptionError, match=r"eps must lie in \(0.0, inf\), got .* not ε²"):
        coding_rate(features(19), eps=eps)


def test_non_numeric_eps_is_refused() -> None:
    with pytest.raises(InputTypeError, match="eps must be a real number"):
        coding_rate(features(20), eps="0.5")  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [CodingRate, CodingRateReduction], ids=["rate", "reduction"])
def test_streaming_classes_refuse_bad_eps(cls: type) -> None:
    kwargs = {} if cls is CodingRate else {"num_classes": 3}
    with pytest.raises(InvalidOptionError, match="not ε²"):
        cls(**kwargs, eps=0.0)


def test_no_samples_are_too_few() -> None:
    with pytest.raises(TooFewSamplesError, match="needs at least 1"):
        coding_rate(np.zeros((0, 4)), eps=EPS)
    with pytest.raises(TooFewSamplesError, match="needs at least 1"):
        coding_rate_reduction(np.zeros((0, 4)), np.zeros(0, dtype=int), eps=EPS)


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
@pytest.mark.parametrize("cls", [CodingRate, CodingRateReduction], ids=["rate", "reduction"])
def test_streaming_compute_before_update_is_refused(cls: type) -> None:
    metric = cls(eps=EPS) if cls is CodingRate else cls(num_classes=3, eps=EPS)
    with pytest.raises(TooFewSamplesError, match="has seen 0 samples"):
        metric.compute()


def test_streaming_batches_of_other_widths_are_refused() -> None:
    metric = CodingRateReduction(num_classes=3, eps=EPS)
    metric.update(features(21), labels_for(21))
    with pytest.raises(ShapeError, match="earlier batches had 6"):
        metric.update(features(21, d=4), labels_for(21))
    rate = CodingRate(eps=EPS)
    rate.update(features(21))
    with pytest.raises(ShapeError, match="earlier batches had 6"):
        rate.update(features(21, d=4))


def test_streaming_labels_beyond_num_classes_are_refused() -> None:
    metric = CodingRateReduction(num_classes=2, eps=EPS)
    with pytest.raises(InvalidOptionError, match="holds class 2 but this metric was built"):
        metric.update(features(22), labels_for(22, k=3))


def test_streaming_num_classes_that_cannot_fit_is_refused() -> None:
    with (
        address_space_headroom(),
        pytest.raises(
            InvalidOptionError, match=r"num_classes=1000000000000 needs the per-class weights"
        ),
    ):
        CodingRateReduction(num_classes=10**12, eps=EPS)


def test_streaming_class_grams_that_cannot_fit_are_refused() -> None:
    metric = CodingRateReduction(num_classes=10**6, eps=EPS)
    z = torch.eye(2, 2000, dtype=F64)
    with (
        address_space_headroom(),
        pytest.raises(
            InvalidOptionError, match=r"num_classes=1000000 needs the per-class Gram matrices"
        ),
    ):
        metric.update(z, torch.tensor([0, 1]))


def test_streaming_membership_with_other_class_count_is_refused() -> None:
    metric = CodingRateReduction(num_classes=4, eps=EPS)
    with pytest.raises(ShapeError, match=r"3 columns .* num_classes=4"):
        metric.update(features(23), soft_membership(23, k=3))


@pytest.mark.parametrize(
    "rate",
    [coding_rate, lambda z, eps: class_coding_rate(z, np.arange(12) % 2, eps=eps)],
    ids=["coding_rate", "class_coding_rate"],
)
def test_an_eps_whose_scale_overflows_is_refused_naming_it(rate: Any) -> None:
    # issue 9, item 7: eps=1e-300 raised a raw ZeroDivisionError (ε² underflows to 0)
    with pytest.raises(NumericRangeError, match=r"eps=1e-300 is too small .* pass eps >= "):
        rate(np.random.default_rng(0).standard_normal((12, 4)), eps=1e-300)


def test_a_tiny_but_representable_eps_gives_the_log_determinant() -> None:
    z = np.random.default_rng(0).standard_normal((12, 4))  # full rank: every λ resolved
    eps = 1e-100
    lam = np.linalg.eigvalsh(z.T @ z)
    expected = 0.5 * np.sum(np.log(4 / 12) - 2 * np.log(eps) + np.log(lam))  # log1p(h) = log h
    assert float(coding_rate(z, eps=eps)) == pytest.approx(expected, rel=1e-12)


def test_extreme_large_eps_gives_a_zero_rate() -> None:
    assert float(coding_rate(torch.randn(10, 4), eps=1e300)) == 0.0


@pytest.mark.parametrize(
    "rate",
    [
        coding_rate,
        lambda z, eps: coding_rate_reduction(z, np.arange(12) % 2, eps=eps).reduction,
    ],
    ids=["coding_rate", "coding_rate_reduction"],
)
def test_zero_features_give_a_zero_rate_at_any_eps(rate: Any) -> None:
    # G = 0 makes logdet(I + s G) = 0 for every s: no overflow to refuse (a raw
    # "math domain error" before)
    assert float(rate(np.zeros((12, 4)), eps=1e-300)) == 0.0
